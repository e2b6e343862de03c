"""A three-cloud fleet on the fakes (moto's EC2, the loopback Compute Engine and ARM servers) for the
scale test (``test_fleet_burst.py``) and benchmark (``benchmarks/bench_fleet_scale.py``).

One node type per cloud (``v100-aws``, ``v100-gcp``, ``v100-azure``: a pool restricted to that cloud),
so a burst spreads over the three. API calls are counted per cloud at the HTTP level: botocore's
``before-send`` event for EC2 (one per HTTP request, retries included), and the fakes' request logs
for GCP and Azure (every request, operation polls included).

``burst(provider, requests)`` does what Ray's ``NodeProviderAdapter`` does with launch requests:
one ``create_node_with_resources_and_labels`` per request and node type, at most
``AUTOSCALER_MAX_LAUNCH_BATCH`` (5) nodes a call, ``AUTOSCALER_MAX_CONCURRENT_LAUNCHES`` (10)
nodes in flight (2 batches at once).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud_factories import aws_session, moto_server
from fakes.azure_server import FakeAzure
from fakes.gcp_server import FakeGcp
from fakes.loopback_drivers import LoopbackAzure, LoopbackGcp

from ray_multicloud.clouds.aws import AwsCloud
from ray_multicloud.clouds.base import TAG_CLUSTER, TAG_REQUEST, Cloud
from ray_multicloud.provider import MultiCloudNodeProvider

CLUSTER = "fleet"
CLOUDS = ("aws", "gcp", "azure")
NODE_TYPES = {c: f"v100-{c}" for c in CLOUDS}
MAX_BATCH = 5  # ray.autoscaler._private.constants.AUTOSCALER_MAX_LAUNCH_BATCH
CONCURRENT_BATCHES = 2  # AUTOSCALER_MAX_CONCURRENT_LAUNCHES (10) / MAX_BATCH
CATALOG = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
    "aws,us-east-1,us-east-1a,p3.2xlarge,V100,1,8,61,3.06,0.92,full_vm,test\n"
    "gcp,us-central1,us-central1-a,n1-standard-8+V100,V100,1,8,30,2.95,0.80,full_vm,test\n"
    "azure,eastus,,Standard_NC6s_v3,V100,1,6,112,3.06,0.95,full_vm,test\n"
)
SUBNET = (
    "/subscriptions/00000000-0000-0000-0000-00000000abcd/resourceGroups/rmc-rg"
    "/providers/Microsoft.Network/virtualNetworks/rmc-vnet/subnets/workers"
)


def node_config(cloud: str) -> dict[str, Any]:
    return {"pool": {"accelerator": "V100", "accelerator_count": 1, "capacity_types": ["spot"],
                     "clouds": [cloud]}}


@dataclass
class Fleet:
    """The fakes, a way to build providers on them, and per-cloud HTTP call counts."""

    config: dict[str, Any]
    gcp: FakeGcp
    azure: FakeAzure
    endpoint: str
    aws_calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def drivers(self) -> dict[str, Cloud]:
        """Fresh drivers (a new process's); EC2 requests are counted by operation."""
        session = aws_session()

        def count(request: Any = None, **_: Any) -> None:
            body = getattr(request, "body", b"") or b""
            text = body.decode() if isinstance(body, bytes) else str(body)
            action = next((p.split("=", 1)[1] for p in text.split("&") if p.startswith("Action=")), "?")
            with self._lock:
                self.aws_calls[action] += 1

        session.events.register("before-send.ec2", count)
        spec = self.config["clouds"]
        state = self.config["state_dir"]
        return {
            "aws": AwsCloud("aws", regions=("us-east-1",), image_id="ami-12345678", endpoint_url=self.endpoint,
                            session=session, sleep=lambda _s: None),
            "gcp": LoopbackGcp.from_config("gcp", spec["gcp"], state_dir=state),
            "azure": LoopbackAzure.from_config("azure", spec["azure"], state_dir=state),
        }

    def provider(self) -> MultiCloudNodeProvider:
        return MultiCloudNodeProvider(self.config, CLUSTER, clouds=self.drivers())

    def calls(self) -> dict[str, int]:
        """HTTP requests each cloud has answered so far."""
        with self._lock:
            aws = sum(self.aws_calls.values())
        return {"aws": aws, "gcp": len(self.gcp.requests), "azure": len(self.azure.requests)}

    def calls_by_kind(self) -> dict[str, Counter[str]]:
        gcp = Counter(_gcp_kind(r.method, r.path) for r in list(self.gcp.requests))
        azure = Counter(_azure_kind(r.method, r.path) for r in list(self.azure.requests))
        with self._lock:
            aws = Counter(self.aws_calls)
        return {"aws": aws, "gcp": gcp, "azure": azure}

    def reset_counts(self) -> None:
        with self._lock:
            self.aws_calls.clear()
        with self.gcp.lock:
            self.gcp.requests.clear()
        with self.azure.lock:
            self.azure.requests.clear()

    def request_ids(self) -> dict[str, list[str]]:
        """The request-id tag of every live instance of the cluster, per cloud (from the fakes)."""
        import json

        ec2 = aws_session().client("ec2", region_name="us-east-1", endpoint_url=self.endpoint)
        aws: list[str] = []
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": f"tag:{TAG_CLUSTER}", "Values": [CLUSTER]},
                     {"Name": "instance-state-name", "Values": ["pending", "running"]}])
        for page in pages:
            for res in page["Reservations"]:
                for inst in res["Instances"]:
                    aws += [t["Value"] for t in inst.get("Tags", []) if t["Key"] == TAG_REQUEST]
        with self.gcp.lock:
            gcp = [json.loads(next(i["value"] for i in inst["metadata"]["items"] if i["key"] == "rmc-tags"))
                   [TAG_REQUEST] for inst in self.gcp.instances.values()]
        with self.azure.lock:
            azure = [vm["tags"][TAG_REQUEST] for vm in self.azure.vms.values()]
        return {"aws": aws, "gcp": gcp, "azure": azure}


def _gcp_kind(method: str, path: str) -> str:
    if "/operations/" in path:
        return "zoneOperations.wait"
    if path.endswith("/aggregated/instances"):
        return "instances.aggregatedList"
    if method == "POST" and path.endswith("/instances"):
        return "instances.insert"
    return f"instances.{ {'GET': 'get', 'DELETE': 'delete'}.get(method, method.lower()) }"


def _azure_kind(method: str, path: str) -> str:
    if "/operations/" in path:
        return "operation poll (read)"
    kind = "NIC" if "/networkInterfaces" in path else "VM"
    listing = path.endswith("/networkInterfaces") or path.endswith("/virtualMachines")
    return f"{kind} {'list' if listing else method} ({'read' if method == 'GET' else 'write'})"


@contextlib.contextmanager
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "catalog.csv").write_text(CATALOG)
    with moto_server() as endpoint, FakeGcp(zones=("us-central1-a",)) as gcp, FakeAzure() as azure:
        config = {
            "type": "external",
            "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "10.8.0.1:6379",
            "state_dir": str(tmp_path / "state"),
            "catalog": str(tmp_path / "catalog.csv"),
            "clouds": {
                "aws": {"driver": "moto-aws", "prices_from": "aws", "regions": ["us-east-1"]},
                "gcp": {"driver": "loopback-gcp", "prices_from": "gcp", "project": gcp.project,
                        "api_endpoint": gcp.url},
                "azure": {"driver": "loopback-azure", "prices_from": "azure",
                          "subscription_id": azure.subscription, "resource_group": azure.resource_group,
                          "subnet_ids": {"eastus": SUBNET}, "base_url": azure.url},
            },
        }
        yield Fleet(config=config, gcp=gcp, azure=azure, endpoint=endpoint)


@dataclass(frozen=True)
class Launch:
    """One launch request of the autoscaler: ``count`` nodes of ``cloud``'s node type."""

    request_id: str
    cloud: str
    count: int = 1


def batches(requests: list[Launch]) -> list[tuple[Launch, int]]:
    """The ``create_node`` calls Ray's adapter makes: per request, batches of at most MAX_BATCH."""
    out = []
    for req in requests:
        left = req.count
        while left > 0:
            out.append((req, min(MAX_BATCH, left)))
            left -= MAX_BATCH
    return out


def create(provider: MultiCloudNodeProvider, req: Launch, count: int) -> Mapping[str, Any]:
    from ray.autoscaler.tags import TAG_RAY_LAUNCH_REQUEST, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

    tags = {TAG_RAY_NODE_KIND: "worker", TAG_RAY_USER_NODE_TYPE: NODE_TYPES[req.cloud],
            TAG_RAY_LAUNCH_REQUEST: req.request_id}
    return provider.create_node_with_resources_and_labels(node_config(req.cloud), tags, count,
                                                          {"GPU": 1.0}, {})


def burst(provider: MultiCloudNodeProvider, requests: list[Launch], *,
          workers: int = CONCURRENT_BATCHES) -> list[BaseException]:
    """Launch ``requests`` as the adapter would; returns the errors of the calls that failed."""
    errors: list[BaseException] = []

    def one(call: tuple[Launch, int]) -> None:
        try:
            create(provider, *call)
        except Exception as exc:  # noqa: BLE001 - collected for the caller, as the adapter queues them
            errors.append(exc)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, batches(requests)))
    return errors


def spread(prefix: str, total: int) -> list[Launch]:
    """``total`` one-node requests spread round-robin over the three clouds."""
    return [Launch(f"{prefix}{i:04d}", CLOUDS[i % len(CLOUDS)]) for i in range(total)]


OFFERS = {
    "aws": "aws/us-east-1/us-east-1a/p3.2xlarge/spot",
    "gcp": "gcp/us-central1/us-central1-a/n1-standard-8+V100/spot",
    "azure": "azure/eastus/-/Standard_NC6s_v3/spot",
}


def seed(world: Fleet, total: int) -> dict[str, int]:
    """Put ``total`` nodes of the cluster into the fakes directly (a third per cloud), shaped and
    tagged exactly as the drivers launch them, without going through the provider (fast: a
    benchmark's fleet of 1,000). EC2's come from one ``RunInstances`` of many (they share one
    request-id tag); GCP's and Azure's are handed to the fakes' own request handlers in-process."""
    from ray.autoscaler.tags import TAG_RAY_LAUNCH_REQUEST, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

    from ray_multicloud.clouds.azure import vm_name
    from ray_multicloud.clouds.base import LaunchRequest
    from ray_multicloud.types import RequestId

    provider = world.provider()
    drivers = provider.clouds
    per = {c: total // 3 + (1 if i < total % 3 else 0) for i, c in enumerate(CLOUDS)}

    def request(cloud: str, rid: str) -> LaunchRequest:
        offer = provider.offers.get(OFFERS[cloud])
        assert offer is not None, OFFERS[cloud]
        ray_tags = {TAG_RAY_NODE_KIND: "worker", TAG_RAY_USER_NODE_TYPE: NODE_TYPES[cloud],
                    TAG_RAY_LAUNCH_REQUEST: "seed"}
        tags = provider._tags(ray_tags, NODE_TYPES[cloud], offer, rid)
        return LaunchRequest(RequestId(rid), CLUSTER, NODE_TYPES[cloud], offer, tags, None)

    aws = drivers["aws"]
    assert isinstance(aws, AwsCloud)
    if per["aws"]:
        params = aws.run_instances_params(request("aws", "seed-aws"))
        params.update(MinCount=per["aws"], MaxCount=per["aws"], ClientToken="seed-aws")
        ec2 = aws_session().client("ec2", region_name="us-east-1", endpoint_url=world.endpoint)
        ec2.run_instances(**params)
    gcp, az = drivers["gcp"], drivers["azure"]
    assert isinstance(gcp, LoopbackGcp) and isinstance(az, LoopbackAzure)
    base = f"/compute/v1/projects/{world.gcp.project}/zones/us-central1-a/instances"
    group = f"/subscriptions/{world.azure.subscription}/resourceGroups/{world.azure.resource_group}/providers"
    auth = {"authorization": "Bearer seed"}
    for i in range(per["gcp"]):
        body = gcp.instance_body(request("gcp", f"seed-gcp-{i}"), "us-central1-a")
        with world.gcp.lock:
            status, _, _ = world.gcp.handle("POST", base, {}, auth, body)
        assert status == 200, status
    for i in range(per["azure"]):
        req = request("azure", f"seed-azure-{i}")
        name = vm_name(req.request_id)
        with world.azure.lock:
            status, _, _ = world.azure.handle(
                "PUT", f"{group}/Microsoft.Network/networkInterfaces/{name}-nic", {"api-version": "2024-05-01"},
                auth, az.nic_body(req))
            assert status in (200, 201), status
            status, _, _ = world.azure.handle(
                "PUT", f"{group}/Microsoft.Compute/virtualMachines/{name}", {"api-version": "2024-07-01"},
                auth, az.vm_body(req))
            assert status in (200, 201), status
    world.reset_counts()
    return per
