"""The GCP driver and its fake held to Google's own documents (issue 16 item 3), and GCP's leak and
token findings (issue 13 findings 3 and 4).

Vendor documents used (copies in ``tests/data/api_examples/gcp``, sources in its README): the
reduced Compute Engine v1 discovery document ``compute-v1-instance-schemas.json`` (from the
google-api-python-client 2.202.0 wheel, discovery revision 20261106) and ``capacity-errors.json``
(Google's troubleshooting pages, quoted).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import gpu_offer
from fakes.gcp_server import FakeGcp
from test_cloud_contract import make_request

from ray_multicloud.clouds import make_cloud
from ray_multicloud.clouds.base import TAG_REQUEST
from ray_multicloud.clouds.gcp import _STATES, GcpCloud, OperationError, map_api_error
from ray_multicloud.errors import CapacityError, CloudError, ConfigError, QuotaError
from ray_multicloud.types import CapacityType, InstanceId, NodeState

EXAMPLES = Path(__file__).parent / "data" / "api_examples" / "gcp"
DISCOVERY = json.loads((EXAMPLES / "compute-v1-instance-schemas.json").read_text())
SCHEMAS = DISCOVERY["schemas"]


class Target:
    gcs_address = "10.8.0.1:6379"


def request_for(offer: Any, **kwargs: Any) -> Any:
    return make_request(Target(), offer, **kwargs)  # type: ignore[arg-type]


def driver(fake: FakeGcp, **kwargs: Any) -> GcpCloud:
    from google.auth.credentials import AnonymousCredentials

    return GcpCloud(
        project=fake.project,
        zones={"us-central1": ["us-central1-a", "us-central1-b"]},
        api_endpoint=fake.url,
        credentials=AnonymousCredentials(),
        sleep=lambda _s: None,
        operation_timeout_s=30,
        **kwargs,
    )


@pytest.fixture
def gcp() -> Iterator[tuple[GcpCloud, FakeGcp]]:
    with FakeGcp() as fake:
        yield driver(fake), fake


# -- field names and nesting, against the discovery document -----------------------------------------


def schema_violations(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Keys of ``value`` that the discovery schema does not define, recursively (``$ref`` resolved
    where the reduced document has the schema; unresolved refs are not descended into)."""
    if "$ref" in schema:
        ref = SCHEMAS.get(schema["$ref"])
        return [] if ref is None else schema_violations(value, ref, path)
    out: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            prop = schema["properties"].get(key)
            if prop is None:
                out.append(f"{path}.{key}")
            else:
                out += schema_violations(item, prop, f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            out += schema_violations(item, schema["additionalProperties"], f"{path}[{key}]")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += schema_violations(item, schema["items"], f"{path}[{i}]")
    return out


def enum_of(schema: str, prop: str) -> list[str]:
    return list(SCHEMAS[schema]["properties"][prop]["enum"])


def test_every_documented_instance_status_is_mapped_and_none_alive_while_going_down() -> None:
    statuses = enum_of("Instance", "status")
    assert {"DEPROVISIONING", "PENDING", "PENDING_STOP"} <= set(statuses)
    assert sorted(_STATES) == sorted(statuses)
    assert _STATES["PENDING"] is NodeState.PENDING  # flex-start waiting for capacity
    for going in ("DEPROVISIONING", "PENDING_STOP", "STOPPING", "STOPPED", "SUSPENDED", "TERMINATED"):
        assert _STATES[going] is NodeState.DRAINING, going  # not running, still listed for deletion


def test_insert_body_and_fake_answers_use_only_documented_fields(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    request = request_for(offer)
    assert schema_violations(cloud.instance_body(request), SCHEMAS["Instance"]) == []
    cloud.launch(request)
    fake.quota_zones.add("us-central1-b")
    with pytest.raises(QuotaError):
        cloud.launch(request_for(gpu_offer("gcp", "us-central1", "us-central1-b", "n1-standard-8+V100")))
    assert fake.instances and fake.operations
    for instance in fake.instances.values():
        assert schema_violations(instance, SCHEMAS["Instance"]) == []
        assert instance["status"] in enum_of("Instance", "status")
    for op in fake.operations.values():
        assert schema_violations(op, SCHEMAS["Operation"]) == []
        assert op["status"] in enum_of("Operation", "status")
    with urllib.request.urlopen(f"{fake.url}/compute/v1/projects/{fake.project}/aggregated/instances") as r:
        listing = json.loads(r.read())
    assert schema_violations(listing, SCHEMAS["InstanceAggregatedList"]) == []


def test_fake_accepts_the_documented_accelerator_url_forms(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    """AcceleratorConfig.acceleratorType: "Full or partial URL ... For example:
    projects/my-project/zones/us-central1-c/acceleratorTypes/nvidia-tesla-p100"."""
    doc = SCHEMAS["AcceleratorConfig"]["properties"]["acceleratorType"]["description"]
    assert "projects/my-project/zones/us-central1-c/acceleratorTypes/nvidia-tesla-p100" in doc
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    zone = "us-central1-a"
    forms = [
        f"projects/{fake.project}/zones/{zone}/acceleratorTypes/nvidia-tesla-p100",
        f"https://www.googleapis.com/compute/v1/projects/{fake.project}/zones/{zone}/acceleratorTypes/nvidia-tesla-p100",
        f"zones/{zone}/acceleratorTypes/nvidia-tesla-p100",
    ]
    for i, form in enumerate(forms):
        body = cloud.instance_body(request_for(offer, request_id=f"accel-{i}"), zone)
        body["guestAccelerators"][0]["acceleratorType"] = form
        req = urllib.request.Request(
            f"{fake.url}/compute/v1/projects/{fake.project}/zones/{zone}/instances",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req) as reply:
            assert json.loads(reply.read())["kind"] == "compute#operation", form
    assert len(fake.instances) == len(forms)


# -- operations: polled, on the driver's endpoint, failures typed from the operation itself -----------


def test_running_operations_are_polled_on_the_api_endpoint(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    fake.operation_polls = 3  # each operation answers RUNNING to the insert and two polls
    inst = cloud.launch(request_for(gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")))
    polls = [r for r in fake.requests if "/operations/" in r.path]
    assert len(polls) == 3 and all(r.path.endswith("/wait") for r in polls)
    cloud.terminate(inst.instance_id)
    assert fake.instances == {} and fake.disks == {}


def test_failed_operation_without_http_error_fields_is_typed(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    """Operation.httpErrorStatusCode/httpErrorMessage are optional output fields; the capacity
    code in error.errors[] alone must make a CapacityError (and the fake omits them by default)."""
    cloud, fake = gcp
    assert fake.http_error_fields is False
    fake.exhausted_zones.add("us-central1-a")
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    with pytest.raises(CapacityError) as info:
        cloud.launch(request_for(offer))
    assert info.value.code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    failed = [op for op in fake.operations.values() if "error" in op]
    assert failed and all("httpErrorStatusCode" not in op for op in failed)
    # The message is the documented template (capacity-errors.json) with the zone filled in.
    documented = json.loads((EXAMPLES / "capacity-errors.json").read_text())
    template = documented["resource_availability_errors"]["documented_common_error_messages"][2]
    expected = template.replace("PROJECT_ID", fake.project).replace("ZONE", "us-central1-a")
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("errors", "http", "error", "code"),
    [
        # A capacity code nested in errorDetails[].errorInfo.reason under a generic top-level code.
        (
            [
                {
                    "code": "RESOURCE_NOT_READY",
                    "errorDetails": [{"errorInfo": {"reason": "ZONE_RESOURCE_POOL_EXHAUSTED"}}],
                }
            ],
            0,
            CapacityError,
            "ZONE_RESOURCE_POOL_EXHAUSTED",
        ),
        # QuotaExceededInfo comes with QUOTA_EXCEEDED (discovery doc): a quotaInfo detail is a quota error.
        (
            [
                {
                    "code": "FORBIDDEN",
                    "errorDetails": [{"quotaInfo": {"limitName": "GPUS-per-region", "limit": 0}}],
                }
            ],
            403,
            QuotaError,
            "QUOTA_EXCEEDED",
        ),
        (
            [{"code": "zone_resource_pool_exhausted_with_details"}],
            0,
            CapacityError,
            "zone_resource_pool_exhausted_with_details",
        ),
        ([{"code": "SOMETHING_ELSE", "message": "no"}], 0, CloudError, "SOMETHING_ELSE"),
    ],
)
def test_operation_error_codes_are_read_from_nested_details(
    errors: list[dict[str, Any]], http: int, error: type[CloudError], code: str
) -> None:
    got = map_api_error(OperationError(errors, http, ""), offer_id="o")
    assert type(got) is error and got.code == code and got.offer_id == "o"


def test_nested_codes_are_read_from_the_sdk_proto_messages() -> None:
    """What ``_wait`` hands over: google-cloud-compute's own Operation.error.errors messages."""
    from google.cloud import compute_v1

    detail = compute_v1.ErrorDetails(error_info=compute_v1.ErrorInfo(reason="ZONE_RESOURCE_POOL_EXHAUSTED"))
    quota = compute_v1.ErrorDetails(quota_info=compute_v1.QuotaExceededInfo(limit_name="GPUS-per-region"))
    op = compute_v1.Operation(
        error=compute_v1.Error(
            errors=[compute_v1.Errors(code="UNKNOWN", message="m", error_details=[detail])]
        )
    )
    got = map_api_error(OperationError(list(op.error.errors), 0, ""))
    assert type(got) is CapacityError and got.code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    op = compute_v1.Operation(
        error=compute_v1.Error(errors=[compute_v1.Errors(code="X", error_details=[quota])])
    )
    assert type(map_api_error(OperationError(list(op.error.errors), 0, ""))) is QuotaError


def test_http_error_details_are_read() -> None:
    """An HTTP error whose google.rpc.ErrorInfo detail names the capacity code (api_core parses the
    REST ``error.details`` into ``exc.details`` / ``exc.reason``)."""
    from google.api_core import exceptions

    exc = exceptions.from_http_status(
        503,
        "unavailable",
        errors=[{"message": "unavailable", "domain": "global", "reason": "backendError"}],
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "STOCKOUT",
                "domain": "compute.googleapis.com",
            }
        ],
    )
    got = map_api_error(exc)
    assert type(got) is CapacityError and got.code == "STOCKOUT"


def test_documented_403_quota_and_rate_quota_answers(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    """capacity-errors.json (quotas/troubleshoot): "Google Cloud typically returns an HTTP 403
    QUOTA_EXCEEDED status code ... If the quota is a rate quota, then 403 RATE_LIMIT_EXCEEDED"."""
    documented = json.loads((EXAMPLES / "capacity-errors.json").read_text())["quota_errors"][
        "documented_text"
    ]
    assert "403 QUOTA_EXCEEDED" in documented and "403 RATE_LIMIT_EXCEEDED" in documented
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    fake.quota_http_zones.add("us-central1-a")
    with pytest.raises(QuotaError) as info:
        cloud.launch(request_for(offer))
    assert info.value.code == "QUOTA_EXCEEDED"
    fake.quota_http_zones.clear()
    fake.rate_quota_403, fake.throttle_next = True, 2
    assert cloud.launch(request_for(offer)).state in (NodeState.PENDING, NodeState.RUNNING)  # retried


# -- issue 13 finding 3: instance_termination_action STOP leaks nothing -------------------------------


def test_stopped_spot_vm_stays_listed_and_is_deleted_with_its_disks() -> None:
    with FakeGcp() as fake:
        cloud = driver(fake, instance_termination_action="STOP")
        request = request_for(
            gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100"), cluster="stoppy"
        )
        inst = cloud.launch(request)
        zone, name = inst.instance_id.split(".", 1)
        assert fake.inserted_bodies[0]["scheduling"]["instanceTerminationAction"] == "STOP"
        fake.preempt(zone, name)
        assert fake.instances[(zone, name)]["status"] == "TERMINATED" and (zone, name) in fake.disks
        listed = cloud.list("stoppy")
        assert [i.instance_id for i in listed] == [inst.instance_id]
        assert listed[0].state is NodeState.DRAINING
        got = cloud.get(inst.instance_id)
        assert got is not None and got.state is NodeState.DRAINING
        cloud.terminate(InstanceId(inst.instance_id))
        assert fake.instances == {} and fake.disks == {}
        assert cloud.list("stoppy") == [] and cloud.get(inst.instance_id) is None


def test_relaunching_a_request_whose_vm_was_stopped_replaces_it() -> None:
    with FakeGcp() as fake:
        cloud = driver(fake, instance_termination_action="STOP")
        request = request_for(gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100"))
        first = cloud.launch(request)
        zone, name = first.instance_id.split(".", 1)
        fake.preempt(zone, name)
        again = cloud.launch(request)
        assert again.instance_id == first.instance_id and again.state is not NodeState.DRAINING
        assert fake.instances[(zone, name)]["status"] != "TERMINATED" and len(fake.inserted_bodies) == 2


def test_ray_down_through_the_provider_deletes_stopped_vms(tmp_path: Path) -> None:
    from fakes.loopback_drivers import LoopbackGcp
    from ray.autoscaler.tags import TAG_RAY_LAUNCH_REQUEST, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

    from ray_multicloud.provider import MultiCloudNodeProvider

    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
        "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
        "gcp,us-central1,us-central1-a,n1-standard-8+V100,V100,1,8,30,2.95,0.80,full_vm,test\n"
    )
    with FakeGcp() as fake:
        spec = {
            "driver": "loopback-gcp",
            "project": fake.project,
            "api_endpoint": fake.url,
            "instance_termination_action": "STOP",
        }
        config = {
            "type": "external",
            "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "10.8.0.1:6379",
            "state_dir": str(tmp_path / "state"),
            "catalog": str(catalog),
            "clouds": {"gcp": spec},
        }

        def provider() -> MultiCloudNodeProvider:
            clouds = {"gcp": LoopbackGcp.from_config("gcp", spec, state_dir=config["state_dir"])}
            return MultiCloudNodeProvider(config, "stopcluster", clouds=clouds)

        tags = {TAG_RAY_NODE_KIND: "worker", TAG_RAY_USER_NODE_TYPE: "v100", TAG_RAY_LAUNCH_REQUEST: "r1"}
        node_config = {"pool": {"accelerator": "V100", "accelerator_count": 1, "capacity_types": ["spot"]}}
        (node_id,) = provider().create_node_with_resources_and_labels(node_config, tags, 1, {"GPU": 1.0}, {})
        zone, name = node_id.split(".", 1)
        fake.preempt(zone, name)  # stopped, not deleted: disks still billed
        restarted = provider()  # e.g. `ray down` from a fresh process
        assert restarted.non_terminated_nodes({}) == [node_id]
        assert not restarted.is_running(node_id) and not restarted.is_terminated(node_id)
        restarted.terminate_nodes([node_id])
        assert fake.instances == {} and fake.disks == {}
        assert provider().non_terminated_nodes({}) == []


# -- issue 13 finding 4: the access token never goes over plain http ---------------------------------


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8080", "http://compute.example.com", "HTTP://metadata.evil"]
)
def test_api_endpoint_over_plain_http_off_loopback_is_refused(url: str) -> None:
    from google.auth.credentials import AnonymousCredentials

    with pytest.raises(ConfigError) as info:
        GcpCloud(project="p", api_endpoint=url, credentials=AnonymousCredentials())
    assert info.value.key == "provider.clouds.gcp.api_endpoint"
    with pytest.raises(ConfigError):
        make_cloud("gcp", {"project": "p", "api_endpoint": url}, state_dir="/tmp")
    with pytest.raises(ConfigError) as feed:  # refused when the driver is built (ray up), not later
        make_cloud("gcp", {"project": "p", "prices_endpoint": url}, state_dir="/tmp")
    assert feed.value.key == "provider.clouds.gcp.prices_endpoint"


def test_https_and_loopback_endpoints_are_accepted() -> None:
    from google.auth.credentials import AnonymousCredentials

    for url in (
        "https://compute.example.com",
        "compute.googleapis.com",
        "http://127.0.0.1:9",
        "http://localhost:9",
    ):
        GcpCloud(project="p", api_endpoint=url, credentials=AnonymousCredentials())


def test_price_feed_never_sends_the_token_over_plain_http() -> None:
    from ray_multicloud.pricing.feeds import build_feeds
    from ray_multicloud.pricing.gcp_feed import GcpPriceFeed

    fetched: list[str] = []

    def token() -> str:
        fetched.append("token")
        return "SECRET-TOKEN"

    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    with pytest.raises(ConfigError) as info:
        GcpPriceFeed(offers=[offer], endpoint="http://prices.example.com", token=token, name="gcp-east")
    assert "prices_endpoint" in info.value.key and "gcp-east" in info.value.key and fetched == []
    with pytest.raises(ConfigError):
        build_feeds([offer], {"gcp": "http://10.1.2.3:8080"})
    GcpPriceFeed(offers=[offer], endpoint="http://127.0.0.1:8080", token=token)  # a loopback test server
    GcpPriceFeed(offers=[offer], endpoint="https://cloudbilling.googleapis.com", token=token)
    assert fetched == []


def test_on_demand_vm_and_request_tags_survive_the_polling_path(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    fake.operation_polls = 2
    offer = gpu_offer("gcp", "us-central1", "", "a2-highgpu-1g", CapacityType.ON_DEMAND)
    request = request_for(offer)
    inst = cloud.launch(request)
    cloud.set_tags(inst.instance_id, {"extra": "v"})
    got = cloud.get(inst.instance_id)
    assert got is not None and got.tags["extra"] == "v" and got.tags[TAG_REQUEST] == request.request_id


# -- property: any operation error is typed, never a crash -------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(["code", "message", "reason", "errorDetails", "errorInfo", "quotaInfo", "x"]),
            c,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(errors=st.lists(_JSON, max_size=3), http=st.sampled_from([0, 400, 403, 404, 429, 503]))
def test_any_operation_error_is_typed(errors: list[Any], http: int) -> None:
    got = map_api_error(OperationError(errors, http, ""))
    assert isinstance(got, CloudError) and isinstance(got.code, str)
