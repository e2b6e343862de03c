"""What the AWS, GCP and Azure drivers send and how they read failures, beyond the shared contract:
spot request shapes, error mapping, throttling retries, failover through the provider, and that no
credential ever reaches an error message or a log line."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import aws_session, gpu_offer, moto_server
from fakes.aws_faults import Ec2Faults
from fakes.azure_server import FakeAzure, FakeAzureCredential
from fakes.gcp_server import LABEL_KEY, LABEL_VALUE, FakeGcp
from test_cloud_contract import make_request

from ray_multicloud.clouds import make_cloud
from ray_multicloud.clouds._retry import Backoff, retry_throttled
from ray_multicloud.clouds._startup import render_startup_script
from ray_multicloud.clouds.aws import AwsCloud, client_token
from ray_multicloud.clouds.azure import AzureCloud
from ray_multicloud.clouds.base import REQUIRED_TAGS, TAG_OFFER, TAG_REQUEST, RayBootstrap
from ray_multicloud.clouds.gcp import GcpCloud, instance_name, label_value
from ray_multicloud.errors import CapacityError, CloudError, ConfigError, QuotaError, ThrottledError
from ray_multicloud.types import CapacityType, InstanceId

SECRET = "SECRET-do-not-leak-4f2a9c"
SUBNET = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/w"
NSG = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/networkSecurityGroups/rmc"


class Target:
    """A minimal stand-in for ``CloudTarget`` where only ``gcs_address`` is read."""

    gcs_address = "10.8.0.1:6379"


def request_for(offer: Any, **kwargs: Any) -> Any:
    return make_request(Target(), offer, **kwargs)  # type: ignore[arg-type]


# -- the retry helper ---------------------------------------------------------------------------------


def test_retry_throttled_retries_then_succeeds_with_growing_waits() -> None:
    waits: list[float] = []
    calls = iter([ThrottledError("x", "slow down"), ThrottledError("x", "slow down"), "ok"])

    def call() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return str(item)

    assert (
        retry_throttled(call, backoff=Backoff(attempts=5, base_s=1, jitter=False), sleep=waits.append) == "ok"
    )
    assert waits == [1, 2]


def test_retry_throttled_is_bounded_and_leaves_other_errors_alone() -> None:
    waits: list[float] = []

    def throttled() -> None:
        raise ThrottledError("x", "slow down")

    with pytest.raises(ThrottledError):
        retry_throttled(
            throttled, backoff=Backoff(attempts=3, base_s=1, max_s=1.5, jitter=False), sleep=waits.append
        )
    assert waits == [1, 1.5]

    def capacity() -> None:
        raise CapacityError("x", "none left")

    with pytest.raises(CapacityError):
        retry_throttled(capacity, sleep=waits.append)
    assert waits == [1, 1.5]


# -- the startup script -------------------------------------------------------------------------------


def test_startup_script_joins_ray_with_resources_labels_env_and_starts_the_watcher() -> None:
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    boot = RayBootstrap(
        gcs_address="10.8.0.1:6379",
        node_type="v100_spot",
        resources={"GPU": 1.0, "accelerator_type:V100": 1.0},
        labels={"rmc/pool": "v100_spot", "rmc/cloud": "gcp", "rmc/instance-type": "n1-standard-8+V100"},
        env={"EXTRA": "it's quoted"},
    )
    script = render_startup_script(
        boot, offer, watcher_cloud="gcp", instance_id_lines=["RMC_INSTANCE_ID=zone/name"]
    )
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    assert "--address=10.8.0.1:6379" in script
    assert '"accelerator_type:V100": 1.0' in script
    # Ray refuses label values outside [A-Za-z0-9_.-]: the GCP type's "+" would keep the node out.
    assert "--labels=rmc/cloud=gcp,rmc/instance-type=n1-standard-8_V100,rmc/pool=v100_spot" in script
    from ray._private.label_utils import parse_node_labels_string, validate_node_labels

    labels_flag = next(part for part in script.split() if part.startswith("--labels="))
    validate_node_labels(parse_node_labels_string(labels_flag.removeprefix("--labels=")))
    assert 'export RAY_CLOUD_INSTANCE_ID="$RMC_INSTANCE_ID"' in script
    for line in ("RAY_NODE_MARKET_TYPE=spot", "RAY_NODE_REGION=us-central1", "RAY_NODE_ZONE=us-central1-a"):
        assert f"export {line}" in script
    assert "python3 -m ray_multicloud.worker.watcher --cloud gcp --gcs-address 10.8.0.1:6379" in script
    assert "EXTRA='it'\"'\"'s quoted'" in script


# -- AWS ----------------------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[tuple[AwsCloud, Ec2Faults]]:
    faults = Ec2Faults()
    with moto_server() as endpoint:
        cloud = AwsCloud(
            "aws",
            regions=("us-east-1",),
            image_id="ami-12345678",
            endpoint_url=endpoint,
            session=aws_session(faults, secret=SECRET),
            sleep=lambda _s: None,
            spot_max_price="offer",
        )
        yield cloud, faults


def test_aws_spot_request_shape(aws: tuple[AwsCloud, Ec2Faults]) -> None:
    cloud, faults = aws
    offer = gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")
    request = request_for(offer)
    inst = cloud.launch(request)
    (params,) = faults.run_instances_calls
    assert params["ClientToken"] == request.request_id
    assert params["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
            "MaxPrice": f"{offer.price_per_hour * 1.2:.5f}",
        },
    }
    assert params["Placement"] == {"AvailabilityZoneId": "use1-az1"}
    specs = {
        s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]} for s in params["TagSpecifications"]
    }
    for key in REQUIRED_TAGS:
        assert specs["instance"][key] == request.tags[key]
        assert specs["volume"][key] == request.tags[key]
    user_data = params["UserData"]
    script = user_data if user_data.startswith("#!") else base64.b64decode(user_data).decode()
    assert "meta-data/instance-id" in script and 'RMC_INSTANCE_ID="us-east-1.$EC2_ID"' in script
    assert inst.instance_id.startswith("us-east-1.i-")


def test_instance_ids_are_valid_ray_label_values(aws: tuple[AwsCloud, Ec2Faults]) -> None:
    import re

    from ray_multicloud.clouds.gcp import instance_name

    cloud, _ = aws
    inst = cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    gcp_id = "northamerica-northeast1-a." + instance_name("autoscaler-request-" + "x" * 100)
    for instance_id in (inst.instance_id, gcp_id):
        assert len(instance_id) <= 63 and re.fullmatch(
            r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?", instance_id
        )


def test_aws_on_demand_has_no_market_options(aws: tuple[AwsCloud, Ec2Faults]) -> None:
    cloud, faults = aws
    cloud.launch(
        request_for(gpu_offer("aws", "us-east-1", "us-east-1a", "p3.2xlarge", CapacityType.ON_DEMAND))
    )
    (params,) = faults.run_instances_calls
    assert "InstanceMarketOptions" not in params
    assert params["Placement"] == {"AvailabilityZone": "us-east-1a"}


def test_aws_client_token_fits_ec2_limit() -> None:
    assert client_token("short") == "short"
    long = client_token("x" * 200)
    assert len(long) <= 64 and long == client_token("x" * 200)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("InsufficientInstanceCapacity", CapacityError),
        ("SpotMaxPriceTooLow", CapacityError),
        ("MaxSpotInstanceCountExceeded", QuotaError),
        ("VcpuLimitExceeded", QuotaError),
        ("InstanceLimitExceeded", QuotaError),
        ("UnauthorizedOperation", CloudError),
    ],
)
def test_aws_errors_are_typed(aws: tuple[AwsCloud, Ec2Faults], code: str, error: type[CloudError]) -> None:
    cloud, faults = aws
    offer = gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")
    faults.zones["use1-az1"] = code
    with pytest.raises(CloudError) as info:
        cloud.launch(request_for(offer))
    assert type(info.value) is error
    assert info.value.code == code and info.value.offer_id == offer.offer_id


def test_aws_throttling_is_retried_with_backoff(aws: tuple[AwsCloud, Ec2Faults]) -> None:
    cloud, faults = aws
    faults.throttle_next = 2
    inst = cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    assert len(faults.run_instances_calls) == 3
    assert cloud.get(inst.instance_id) is not None


def test_aws_throttling_gives_up_after_the_bound() -> None:
    faults = Ec2Faults(throttle_next=100)
    waits: list[float] = []
    with moto_server() as endpoint:
        cloud = AwsCloud(
            image_id="ami-12345678",
            endpoint_url=endpoint,
            session=aws_session(faults),
            backoff=Backoff(attempts=3, jitter=False),
            sleep=waits.append,
        )
        with pytest.raises(ThrottledError):
            cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    assert len(faults.run_instances_calls) == 3 and waits == [0.5, 1.0]


def test_aws_secret_never_in_errors_or_logs(
    aws: tuple[AwsCloud, Ec2Faults], caplog: pytest.LogCaptureFixture
) -> None:
    cloud, faults = aws
    caplog.set_level(logging.DEBUG, logger="ray_multicloud")
    faults.zones["use1-az1"] = "InsufficientInstanceCapacity"
    with pytest.raises(CapacityError) as info:
        cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)
    assert SECRET not in caplog.text
    with pytest.raises(ConfigError) as bad:
        make_cloud("aws", {"aws_secret_access_key": SECRET, "image_id": "ami-1"}, state_dir="/tmp")
    assert SECRET not in str(bad.value)


# -- GCP ----------------------------------------------------------------------------------------------


@pytest.fixture
def gcp() -> Iterator[tuple[GcpCloud, FakeGcp]]:
    from google.auth.credentials import AnonymousCredentials

    with FakeGcp() as fake:
        cloud = GcpCloud(
            project=fake.project,
            zones={"us-central1": ["us-central1-b", "us-central1-a"]},
            api_endpoint=fake.url,
            credentials=AnonymousCredentials(),
            sleep=lambda _s: None,
        )
        yield cloud, fake


@pytest.mark.parametrize(
    "raw",
    [
        "contract",
        "gcp/us-central1/us-central1-a/n1-standard-8+V100/spot",
        "UPPER.case",
        "x" * 100,
        "",
        "a_b-c",
    ],
)
def test_gcp_label_values_are_valid_and_distinct(raw: str) -> None:
    value = label_value(raw)
    assert LABEL_VALUE.match(value), value
    assert label_value(raw) == value
    assert label_value(raw + "!") != value


def test_gcp_instance_names_are_valid_and_stable() -> None:
    for rid in ("req-1", "REQ_1", "a" * 200, "---", "autoscaler/launch#7"):
        name = instance_name(rid)
        assert len(name) <= 63 and name == instance_name(rid)
        assert name[0].isalpha() and name[-1].isalnum()
    assert instance_name("REQ_1") != instance_name("req-1")


def test_gcp_spot_insert_shape(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    request = request_for(offer)
    inst = cloud.launch(request)
    (body,) = fake.inserted_bodies
    assert body["scheduling"] == {
        "provisioningModel": "SPOT",
        "instanceTerminationAction": "DELETE",
        "onHostMaintenance": "TERMINATE",
        "automaticRestart": False,
    }
    assert body["guestAccelerators"] == [
        {"acceleratorType": "zones/us-central1-a/acceleratorTypes/nvidia-tesla-v100", "acceleratorCount": 1}
    ]
    assert body["machineType"] == "zones/us-central1-a/machineTypes/n1-standard-8"
    assert all(LABEL_KEY.match(k) and LABEL_VALUE.match(v) for k, v in body["labels"].items())
    items = {i["key"]: i["value"] for i in body["metadata"]["items"]}
    assert json.loads(items["rmc-tags"])[TAG_OFFER] == offer.offer_id  # the raw value, "/" and "+" kept
    assert f"RMC_INSTANCE_ID={inst.instance_id}" in items["startup-script"]
    insert = next(r for r in fake.requests if r.method == "POST" and r.path.endswith("/instances"))
    assert uuid.UUID(insert.query["requestId"])  # GCE's own idempotency key, derived from the request id
    assert inst.tags[TAG_OFFER] == offer.offer_id and inst.instance_id == f"us-central1-a.{body['name']}"
    assert inst.launched_at == 1795867200.0  # creationTimestamp 2026-11-28T04:00:00-08:00


def test_gcp_on_demand_and_regional_offer_uses_configured_zone(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "", "a2-highgpu-1g", CapacityType.ON_DEMAND)
    inst = cloud.launch(request_for(offer))
    (body,) = fake.inserted_bodies
    assert body["scheduling"]["provisioningModel"] == "STANDARD"
    assert "guestAccelerators" not in body  # A2 machine types carry their GPUs
    assert inst.instance_id.startswith("us-central1-b.")


def test_gcp_regional_offer_tries_each_configured_zone(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    cloud._zones["us-central1"] = ["us-central1-a", "us-central1-b"]
    fake.exhausted_zones.add("us-central1-a")
    offer = gpu_offer("gcp", "us-central1", "", "n1-standard-8+V100")
    inst = cloud.launch(request_for(offer))
    assert inst.instance_id.startswith("us-central1-b.")
    assert [b["machineType"].split("/")[1] for b in fake.inserted_bodies] == [
        "us-central1-a",
        "us-central1-b",
    ]
    fake.exhausted_zones.add("us-central1-b")
    with pytest.raises(CapacityError) as info:
        cloud.launch(request_for(offer))
    assert info.value.offer_id == offer.offer_id


def test_gcp_quota_and_throttling(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    fake.quota_zones.add("us-central1-a")
    with pytest.raises(QuotaError) as info:
        cloud.launch(request_for(offer))
    assert info.value.code == "QUOTA_EXCEEDED" and "NVIDIA_V100_GPUS" in str(info.value)
    fake.quota_zones.clear()
    fake.throttle_next = 2
    assert cloud.launch(request_for(offer)).state.value in ("pending", "running")


def test_gcp_exhausted_zone_names_the_offer(gcp: tuple[GcpCloud, FakeGcp]) -> None:
    cloud, fake = gcp
    offer = gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100")
    fake.exhausted_zones.add("us-central1-a")
    with pytest.raises(CapacityError) as info:
        cloud.launch(request_for(offer))
    assert info.value.code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert info.value.offer_id == offer.offer_id
    assert "does not have enough resources" in str(info.value)
    assert fake.instances == {}


# -- Azure --------------------------------------------------------------------------------------------


@pytest.fixture
def azure() -> Iterator[tuple[AzureCloud, FakeAzure]]:
    with FakeAzure() as fake:
        cloud = AzureCloud(
            subscription_id=fake.subscription,
            resource_group=fake.resource_group,
            subnet_ids={"eastus": SUBNET},
            network_security_group_ids={"eastus": NSG},
            ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests rmc",
            base_url=fake.url,
            credential=FakeAzureCredential(SECRET),
            sleep=lambda _s: None,
            polling_interval_s=0,
            sdk_retry_total=0,
        )
        yield cloud, fake


def test_azure_spot_vm_shape_and_api_versions(azure: tuple[AzureCloud, FakeAzure]) -> None:
    cloud, fake = azure
    offer = gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")
    request = request_for(offer)
    inst = cloud.launch(request)
    (body,) = fake.vm_puts
    props = body["properties"]
    assert (props["priority"], props["evictionPolicy"], props["billingProfile"]) == (
        "Spot",
        "Delete",
        {"maxPrice": -1.0},
    )
    assert props["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert props["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"] == "Delete"
    assert {k: body["tags"][k] for k in REQUIRED_TAGS} == {k: request.tags[k] for k in REQUIRED_TAGS}
    script = base64.b64decode(props["osProfile"]["customData"]).decode()
    assert f"RMC_INSTANCE_ID={inst.instance_id}" in script and "--cloud azure" in script
    assert all(r.query.get("api-version") for r in fake.requests)
    nic = fake.nics[f"{inst.instance_id}-nic"]
    assert nic["tags"][TAG_REQUEST] == request.request_id and nic["properties"]["networkSecurityGroup"][
        "id"
    ].endswith("/rmc")
    assert inst.internal_ip.startswith("10.1.0.")
    assert inst.launched_at == 1795838400.123456  # properties.timeCreated


def test_azure_regular_priority(azure: tuple[AzureCloud, FakeAzure]) -> None:
    cloud, fake = azure
    cloud.launch(request_for(gpu_offer("azure", "eastus", "", "Standard_NC6s_v3", CapacityType.ON_DEMAND)))
    (body,) = fake.vm_puts
    assert body["properties"]["priority"] == "Regular" and "billingProfile" not in body["properties"]


@pytest.mark.parametrize(
    ("field", "error", "code"),
    [
        ("sku_not_available", CapacityError, "SkuNotAvailable"),
        ("allocation_failed", CapacityError, "AllocationFailed"),
        ("quota_exceeded", QuotaError, "OperationNotAllowed"),
    ],
)
def test_azure_capacity_and_quota_leak_nothing(
    azure: tuple[AzureCloud, FakeAzure], field: str, error: type[CloudError], code: str
) -> None:
    cloud, fake = azure
    getattr(fake, field).add("eastus")
    offer = gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")
    with pytest.raises(CloudError) as info:
        cloud.launch(request_for(offer))
    assert type(info.value) is error and info.value.code == code and info.value.offer_id == offer.offer_id
    assert fake.vms == {} and fake.nics == {}  # the Failed VM and the NIC were deleted
    assert SECRET not in str(info.value)


def test_azure_throttling_is_retried(azure: tuple[AzureCloud, FakeAzure]) -> None:
    cloud, fake = azure
    fake.throttle_next = 2
    inst = cloud.launch(request_for(gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")))
    assert cloud.get(inst.instance_id) is not None


def test_azure_refuses_plain_http_off_loopback_and_credentials_in_yaml() -> None:
    with pytest.raises(ConfigError):
        AzureCloud(
            subscription_id="s",
            resource_group="r",
            subnet_ids={},
            ssh_public_key="k",
            base_url="http://10.0.0.5:8080",
            credential=FakeAzureCredential(),
        )
    with pytest.raises(ConfigError) as bad:
        make_cloud("azure", {"client_secret": SECRET, "resource_group": "r"}, state_dir="/tmp")
    assert SECRET not in str(bad.value)


def test_gcp_refuses_credentials_in_yaml() -> None:
    with pytest.raises(ConfigError) as bad:
        make_cloud("gcp", {"project": "p", "credentials": {"private_key": SECRET}}, state_dir="/tmp")
    assert SECRET not in str(bad.value)


# -- failover through the provider --------------------------------------------------------------------

CATALOG_HEADER = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
)


@pytest.fixture
def provider_config(tmp_path: Path) -> Iterator[tuple[dict[str, Any], FakeGcp, FakeAzure]]:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        CATALOG_HEADER
        + "gcp,us-central1,us-central1-a,n1-standard-8+V100,V100,1,8,30,2.95,0.80,full_vm,test\n"
        + "gcp,us-central1,us-central1-b,n1-standard-8+V100,V100,1,8,30,2.95,0.85,full_vm,test\n"
        + "azure,eastus,,Standard_NC6s_v3,V100,1,6,112,3.06,0.95,full_vm,test\n"
    )
    with FakeGcp() as gcp_fake, FakeAzure() as az_fake:
        config = {
            "type": "external",
            "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "10.8.0.1:6379",
            "state_dir": str(tmp_path / "state"),
            "catalog": str(catalog),
            "cooldown_seconds": 600,
            "clouds": {
                "gcp": {"driver": "loopback-gcp", "project": gcp_fake.project, "api_endpoint": gcp_fake.url},
                "azure": {
                    "driver": "loopback-azure",
                    "subscription_id": az_fake.subscription,
                    "resource_group": az_fake.resource_group,
                    "subnet_ids": {"eastus": SUBNET},
                    "base_url": az_fake.url,
                },
            },
        }
        yield config, gcp_fake, az_fake


def loopback_clouds(config: dict[str, Any]) -> dict[str, Any]:
    """The real GCP and Azure drivers against the loopback fakes, handed to the provider (the
    entries' ``loopback-*`` drivers are in no registry: nothing else can build them)."""
    from fakes.loopback_drivers import LoopbackAzure, LoopbackGcp

    specs = config["clouds"]
    state = config["state_dir"]
    return {
        "gcp": LoopbackGcp.from_config("gcp", specs["gcp"], state_dir=state),
        "azure": LoopbackAzure.from_config("azure", specs["azure"], state_dir=state),
    }


def test_provider_fails_over_zone_then_cloud_and_cools_down(
    provider_config: tuple[dict[str, Any], FakeGcp, FakeAzure],
) -> None:
    from ray.autoscaler.tags import TAG_RAY_LAUNCH_REQUEST, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

    from ray_multicloud.provider import MultiCloudNodeProvider

    config, gcp_fake, az_fake = provider_config
    provider = MultiCloudNodeProvider(config, "failover", clouds=loopback_clouds(config))
    node_config = {"pool": {"accelerator": "V100", "accelerator_count": 1, "capacity_types": ["spot"]}}

    def launch(request: str) -> Any:
        tags = {TAG_RAY_NODE_KIND: "worker", TAG_RAY_USER_NODE_TYPE: "v100", TAG_RAY_LAUNCH_REQUEST: request}
        created = provider.create_node_with_resources_and_labels(node_config, tags, 1, {"GPU": 1.0}, {})
        (inst,) = created.values()
        return inst

    def zones_tried() -> list[str]:
        return [b["machineType"].split("/")[1] for b in gcp_fake.inserted_bodies]

    # us-central1-a (cheapest) has no capacity -> us-central1-b, in the same autoscaler request.
    gcp_fake.exhausted_zones.add("us-central1-a")
    first = launch("r1")
    assert first.tags[TAG_OFFER] == "gcp/us-central1/us-central1-b/n1-standard-8+V100/spot"
    assert zones_tried() == ["us-central1-a", "us-central1-b"]

    # Now the whole of GCP is out: zone a is cooling down (not tried again), b fails, Azure wins.
    gcp_fake.exhausted_zones.add("us-central1-b")
    second = launch("r2")
    assert second.tags[TAG_OFFER] == "azure/eastus/-/Standard_NC6s_v3/spot"
    assert zones_tried() == ["us-central1-a", "us-central1-b", "us-central1-b"]
    assert len(az_fake.vms) == 1

    # Both nodes are found again by a provider restarted from the same config (tags are the state).
    again = MultiCloudNodeProvider(config, "failover", clouds=loopback_clouds(config))
    assert set(again.non_terminated_nodes({})) == {first.instance_id, second.instance_id}
    again.terminate_nodes([first.instance_id, second.instance_id])
    assert again.non_terminated_nodes({}) == [] and gcp_fake.instances == {} and az_fake.vms == {}


def test_orphan_from_a_crash_after_launch_is_found_and_terminated(
    azure: tuple[AzureCloud, FakeAzure],
) -> None:
    """A provider that dies after ``launch`` returned but before it recorded the node leaks nothing:
    the instance is tagged from birth, so ``list(cluster)`` finds it by its request id and
    reconciliation terminates it."""
    cloud, fake = azure
    request = request_for(gpu_offer("azure", "eastus", "", "Standard_NC6s_v3"), cluster="crashy")
    cloud.launch(request)  # ... and the provider crashes here, before recording the node
    orphans = [i for i in cloud.list("crashy") if i.tags.get(TAG_REQUEST) == request.request_id]
    assert len(orphans) == 1
    cloud.terminate(InstanceId(orphans[0].instance_id))
    assert cloud.list("crashy") == [] and fake.nics == {}


@pytest.mark.parametrize(
    ("cloud", "spec", "sdk"),
    [
        ("aws", {"image_id": "ami-1"}, "boto3"),
        ("gcp", {"project": "p"}, "google"),
        (
            "azure",
            {"resource_group": "r", "subscription_id": "s", "subnet_ids": {}, "ssh_public_key": "k"},
            "azure",
        ),
    ],
)
def test_missing_sdk_is_a_config_error_with_the_pip_extra(
    cloud: str, spec: dict[str, Any], sdk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    class Block:
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            if name.split(".")[0] == sdk:
                raise ImportError(f"No module named {name!r}", name=name)

    for mod in [m for m in sys.modules if m.split(".")[0] == sdk]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [Block(), *sys.meta_path])
    with pytest.raises(ConfigError) as info:
        make_cloud(cloud, spec, state_dir="/tmp")
    assert f"ray_multicloud[{cloud}]" in str(info.value)
