"""Nothing leaks when the provider dies mid-launch (issue 13, "what must hold" 2).

For each public-cloud driver against its fake (moto for AWS, the loopback Compute Engine and ARM
servers for GCP and Azure), a provider is killed at every step of a launch: before each cloud API
call the driver makes from ``create_node`` on (the fleet listing, the idempotency lookup, each
create call, each operation poll, the reads after), and after the driver returned but before the
provider recorded the node. Killed means a ``BaseException`` the provider does not catch, raised
where the call would start: the state the cloud holds is that of a process that died right after
the previous call returned (or whose reply was lost).

Then a provider built afresh on the same fake (new driver objects: a restarted monitor, or the
``ray down`` client) must list every instance the dead one created and, ended as ``ray down``
ends a cluster (``non_terminated_nodes({})`` then ``terminate_nodes`` until nothing is left),
leave no instance, disk or NIC of the cluster in the fake; the ledger holds every node that
existed, and none open. The AWS case launches in eu-west-1 and is torn down by a provider whose
``regions`` says us-east-1 only.

Steps are found, not assumed: step j kills the provider at the start of its (j+1)-th API call; the
steps run until a launch completes with fewer calls (then one more step kills it after
``cloud.launch`` returned). Each step checks the fake is empty before it starts.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import aws_session, moto_server
from fakes.azure_server import FakeAzure
from fakes.gcp_server import FakeGcp
from fakes.loopback_drivers import LoopbackAzure, LoopbackGcp
from ray.autoscaler.tags import TAG_RAY_LAUNCH_REQUEST, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

from ray_multicloud.clouds.aws import AwsCloud
from ray_multicloud.clouds.base import TAG_CLUSTER, Cloud
from ray_multicloud.ledger import Ledger
from ray_multicloud.provider import MultiCloudNodeProvider

CLUSTER = "crashy"
HEADER = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
)
SUBNET = (
    "/subscriptions/00000000-0000-0000-0000-00000000abcd/resourceGroups/rmc-rg"
    "/providers/Microsoft.Network/virtualNetworks/rmc-vnet/subnets/workers"
)
NODE_CONFIG = {"pool": {"accelerator": "V100", "accelerator_count": 1, "capacity_types": ["spot"]}}
MAX_STEPS = 30  # a launch that needs more API calls than this is a finding in itself


class Crash(BaseException):
    """The provider process dies here (not an ``Exception``: nothing in the provider catches it)."""


@dataclass
class Backend:
    """One cloud's fake and how to build its driver afresh (``crashing``: the dying provider's
    driver; ``restarted``: the one a new process builds)."""

    name: str
    catalog_row: str
    spec: dict[str, Any]
    crashing: Callable[[], Cloud]
    restarted: Callable[[], Cloud]
    leftovers: Callable[[], dict[str, list[str]]]  # what of the cluster's still exists, by kind


def _aws(endpoint: str, regions: tuple[str, ...]) -> AwsCloud:
    return AwsCloud("aws", regions=regions, image_id="ami-12345678", endpoint_url=endpoint,
                    session=aws_session(), sleep=lambda _s: None)


def _aws_leftovers(endpoint: str) -> dict[str, list[str]]:
    """Instances (not terminated), volumes and ENIs of the cluster in every enabled region. moto
    keeps a terminated instance's primary ENI attached to it (EC2 deletes it with the instance,
    DeleteOnTermination being true for an interface created at launch), so an ENI counts when it
    is detached or held by an instance that is not terminated."""
    out: dict[str, list[str]] = {"instances": [], "volumes": [], "enis": []}
    session = aws_session()
    for region in ("eu-west-1", "us-east-1"):
        ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint)
        live: set[str] = set()
        for res in ec2.describe_instances()["Reservations"]:
            for inst in res["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                if inst["State"]["Name"] != "terminated":
                    live.add(inst["InstanceId"])
                    if tags.get(TAG_CLUSTER) == CLUSTER:
                        out["instances"].append(inst["InstanceId"])
        out["volumes"] += [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]]
        for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]:
            holder = (eni.get("Attachment") or {}).get("InstanceId")
            if holder is None or holder in live:
                out["enis"].append(eni["NetworkInterfaceId"])
    return out


@contextlib.contextmanager
def aws_backend() -> Iterator[Backend]:
    with moto_server() as endpoint:
        yield Backend(
            name="aws",
            catalog_row="aws,eu-west-1,eu-west-1a,p3.2xlarge,V100,1,8,61,3.06,0.92,full_vm,test\n",
            spec={"driver": "moto-aws", "prices_from": "aws"},
            crashing=lambda: _aws(endpoint, ()),
            restarted=lambda: _aws(endpoint, ("us-east-1",)),  # `regions` no longer names eu-west-1
            leftovers=lambda: _aws_leftovers(endpoint),
        )


@contextlib.contextmanager
def gcp_backend(tmp_path: Path) -> Iterator[Backend]:
    with FakeGcp() as fake:
        spec = {"driver": "loopback-gcp", "prices_from": "gcp", "project": fake.project,
                "api_endpoint": fake.url}

        def build() -> Cloud:
            return LoopbackGcp.from_config("gcp", spec, state_dir=str(tmp_path))

        yield Backend(
            name="gcp",
            catalog_row="gcp,us-central1,us-central1-a,n1-standard-8+V100,V100,1,8,30,2.95,0.80,full_vm,test\n",
            spec=spec, crashing=build, restarted=build,
            leftovers=lambda: {"instances": [n for _, n in fake.instances],
                               "disks": [n for _, n in fake.disks]},
        )


@contextlib.contextmanager
def azure_backend(tmp_path: Path) -> Iterator[Backend]:
    with FakeAzure() as fake:
        spec = {"driver": "loopback-azure", "prices_from": "azure", "subscription_id": fake.subscription,
                "resource_group": fake.resource_group, "subnet_ids": {"eastus": SUBNET},
                "base_url": fake.url}

        def crashing() -> Cloud:
            return LoopbackAzure.from_config("azure", spec, state_dir=str(tmp_path))

        def restarted() -> Cloud:
            cloud = LoopbackAzure.from_config("azure", spec, state_dir=str(tmp_path))
            cloud.orphan_grace_s = 0.0  # the restart comes after the grace (its own test below)
            return cloud

        yield Backend(
            name="azure",
            catalog_row="azure,eastus,,Standard_NC6s_v3,V100,1,6,112,3.06,0.95,full_vm,test\n",
            spec=spec, crashing=crashing, restarted=restarted,
            leftovers=lambda: {"vms": list(fake.vms), "nics": list(fake.nics), "disks": list(fake.disks)},
        )


def provider_config(tmp_path: Path, backend: Backend) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(HEADER + backend.catalog_row)
    return {
        "type": "external",
        "module": "ray_multicloud.provider.MultiCloudNodeProvider",
        "gcs_address": "10.8.0.1:6379",
        "state_dir": str(tmp_path / "state"),
        "catalog": str(catalog),
        "ledger": str(tmp_path / "ledger.db"),
        "clouds": {backend.name: dict(backend.spec)},
    }


def crash_at_call(cloud: Cloud, step: int) -> Callable[[], bool]:
    """Make ``cloud`` die at the start of its ``step``+1-th API call (its ``_call``); returns
    whether it did."""
    real = cloud._call  # type: ignore[attr-defined]
    seen = {"calls": 0, "crashed": False}

    @functools.wraps(real)
    def call(*args: Any, **kwargs: Any) -> Any:
        if seen["calls"] == step:
            seen["crashed"] = True
            raise Crash(f"killed before API call {step + 1}")
        seen["calls"] += 1
        return real(*args, **kwargs)

    cloud._call = call  # type: ignore[attr-defined]
    return lambda: bool(seen["crashed"])


def crash_after_launch(cloud: Cloud) -> None:
    real = cloud.launch

    def launch(request: Any) -> Any:
        real(request)
        raise Crash("killed after the driver returned, before the provider recorded the node")

    cloud.launch = launch  # type: ignore[method-assign]


def ray_down(provider: MultiCloudNodeProvider) -> list[str]:
    """What ``ray down`` does with the provider (Ray's ``teardown_cluster``): list, terminate, again
    until nothing is left. Returns every node it ended."""
    ended: list[str] = []
    for _ in range(5):
        nodes = provider.non_terminated_nodes({})
        if not nodes:
            return ended
        provider.terminate_nodes(nodes)
        ended += nodes
    raise AssertionError(f"ray down left {provider.non_terminated_nodes({})}")


def nothing_left(found: dict[str, list[str]]) -> bool:
    return not any(found.values())


@dataclass
class Step:
    step: int | None  # killed before API call step+1; None: after the driver returned
    died: bool
    created: dict[str, list[str]]  # what of the cluster existed after the kill, by kind
    ended: list[str]  # the nodes the restarted provider ended


def run_step(tmp_path: Path, backend: Backend, step: int | None, request: str) -> Step:
    """One crash step, then the restarted provider's ``ray down``, checked."""
    config = provider_config(tmp_path, backend)
    cloud = backend.crashing()
    crashed = crash_at_call(cloud, step) if step is not None else None
    if step is None:
        crash_after_launch(cloud)
    dying = MultiCloudNodeProvider(config, CLUSTER, clouds={backend.name: cloud})
    tags = {TAG_RAY_NODE_KIND: "worker", TAG_RAY_USER_NODE_TYPE: "v100", TAG_RAY_LAUNCH_REQUEST: request}
    died = True
    try:
        dying.create_node_with_resources_and_labels(NODE_CONFIG, tags, 1, {"GPU": 1.0}, {})
        died = False
    except Crash:
        pass
    if crashed is not None:
        died = died and crashed()
    created = backend.leftovers()
    restarted = MultiCloudNodeProvider(config, CLUSTER, clouds={backend.name: backend.restarted()})
    listed = restarted.non_terminated_nodes({})
    instance_ids = created.get("instances", created.get("vms", []))
    # Every instance the dead provider created is found (ids end with the cloud's own name/id).
    assert len(listed) == len(instance_ids) <= 1, (step, listed, created)
    assert all(any(node.endswith(i) for node in listed) for i in instance_ids), (listed, instance_ids)
    ended = ray_down(restarted)
    left = backend.leftovers()
    assert nothing_left(left), f"step {step}: left behind {left} (created {created})"
    with Ledger(config["ledger"]) as ledger:
        assert ledger.open_instances(CLUSTER) == []
        recorded = {row.instance_id for row in ledger.spend()}
    assert set(ended) <= recorded, (ended, recorded)
    return Step(step, died, created, ended)


def every_step(tmp_path: Path, backend: Backend) -> list[Step]:
    steps: list[Step] = []
    for step in range(MAX_STEPS):
        assert nothing_left(backend.leftovers())
        done = run_step(tmp_path / f"s{step}", backend, step, f"crash{step}")
        if not done.died:  # the launch needed no more than `step` calls: every call boundary was tried
            assert len(done.ended) == 1
            break
        steps.append(done)
    else:
        raise AssertionError(f"a launch made more than {MAX_STEPS} API calls")
    after = run_step(tmp_path / "after", backend, None, "crash-after")
    assert after.died and len(after.ended) == 1
    return [*steps, after]


def test_aws_crash_at_every_step_leaks_nothing(tmp_path: Path) -> None:
    with aws_backend() as backend:
        steps = every_step(tmp_path, backend)
    # RunInstances is the launch's last call: the kill that follows it is the one after the driver
    # returned, and the steps before it created nothing.
    assert [bool(s.ended) for s in steps] == [False] * (len(steps) - 1) + [True]
    assert len(steps) >= 3


def test_gcp_crash_at_every_step_leaks_nothing(tmp_path: Path) -> None:
    with gcp_backend(tmp_path) as backend:
        steps = every_step(tmp_path, backend)
    # Kills after the insert, before the driver returned (waiting on the operation, reading the VM
    # back) left a VM and its boot disk, which the restarted provider found and ended.
    assert any(s.created["instances"] and s.created["disks"] for s in steps[:-1])
    assert len(steps) >= 3


def test_azure_crash_at_every_step_leaks_nothing(tmp_path: Path) -> None:
    with azure_backend(tmp_path) as backend:
        steps = every_step(tmp_path, backend)
    # The kill between the NIC's PUT and the VM's left a NIC no VM holds, which the restarted
    # provider's listing deleted; the kill after the VM PUT left a VM, its OS disk and its NIC.
    assert any(s.created["nics"] and not s.created["vms"] for s in steps)
    assert steps[-1].created["vms"] and steps[-1].created["disks"] and steps[-1].created["nics"]
    assert len(steps) >= 3


def test_azure_orphan_nic_sweep_waits_for_its_grace_and_spares_launches_under_way(tmp_path: Path) -> None:
    """A NIC with no VM is left alone while younger than ``orphan_grace_s`` (another process may be
    between its NIC and VM PUTs) and while this process is launching its VM; then deleted."""
    from cloud_factories import gpu_offer
    from test_cloud_contract import make_request

    from ray_multicloud.clouds.azure import vm_name
    from ray_multicloud.types import RequestId

    class Target:
        gcs_address = "10.8.0.1:6379"

    now = [1_000_000.0]

    def driver(backend: Backend) -> LoopbackAzure:
        cloud = backend.crashing()
        assert isinstance(cloud, LoopbackAzure)
        cloud._clock = lambda: now[0]
        return cloud

    with azure_backend(tmp_path) as backend:
        request = make_request(Target(), gpu_offer("azure", "eastus", "", "Standard_NC6s_v3"),  # type: ignore[arg-type]
                               request_id=RequestId("orphan-1"), cluster=CLUSTER)
        dying = driver(backend)
        crash_at_call(dying, 2)  # call 1: the VM GET (404); call 2: the NIC PUT; killed at the VM PUT
        with pytest.raises(Crash):
            dying.launch(request)
        name = vm_name(request.request_id)
        assert backend.leftovers() == {"vms": [], "nics": [f"{name}-nic"], "disks": []}
        fresh = driver(backend)
        assert fresh.list(CLUSTER) == [] and backend.leftovers()["nics"] == [f"{name}-nic"]  # 0 s old
        now[0] += fresh.orphan_grace_s + 1
        fresh._launching.add(name)  # a launch of this process is under way with it
        assert fresh.list(CLUSTER) == [] and backend.leftovers()["nics"] == [f"{name}-nic"]
        fresh._launching.clear()
        assert fresh.list(CLUSTER) == [] and backend.leftovers()["nics"] == []  # old, no VM: deleted


def test_ray_down_right_after_a_crash_leaves_no_azure_nic(tmp_path: Path) -> None:
    """Killed between a worker's NIC PUT and its VM PUT, then `ray down` at once, well inside
    ``orphan_grace_s``: no listing after it would sweep that NIC; terminating the head does."""
    from ray.autoscaler.tags import NODE_KIND_HEAD

    head_config = {"offer": {"cloud": "azure", "region": "eastus", "zone": "",
                             "instance_type": "Standard_NC6s_v3", "capacity": "on-demand",
                             "price_per_hour": 3.06, "vcpus": 6, "memory_gib": 112}}
    with azure_backend(tmp_path) as backend:
        config = {**provider_config(tmp_path, backend), "auth_mode": "disabled"}
        monitor = MultiCloudNodeProvider(config, CLUSTER, clouds={"azure": backend.crashing()})
        (head,) = monitor.create_node(
            head_config, {TAG_RAY_NODE_KIND: NODE_KIND_HEAD, TAG_RAY_USER_NODE_TYPE: "head"}, 1)
        cloud = backend.crashing()
        real = cloud._call  # type: ignore[attr-defined]

        def call(*args: Any, **kwargs: Any) -> Any:  # killed at the first call after the NIC PUT
            if len(backend.leftovers()["nics"]) == 2:
                raise Crash("killed between the NIC PUT and the VM PUT")
            return real(*args, **kwargs)

        cloud._call = call  # type: ignore[attr-defined]
        dying = MultiCloudNodeProvider(config, CLUSTER, clouds={"azure": cloud})
        tags = {TAG_RAY_NODE_KIND: "worker", TAG_RAY_USER_NODE_TYPE: "v100", TAG_RAY_LAUNCH_REQUEST: "late"}
        with pytest.raises(Crash):
            dying.create_node_with_resources_and_labels(NODE_CONFIG, tags, 1, {"GPU": 1.0}, {})
        assert len(backend.leftovers()["nics"]) == 2  # the head's and the orphan

        down = MultiCloudNodeProvider(config, CLUSTER, clouds={"azure": backend.crashing()})
        assert down.clouds["azure"].orphan_grace_s == 120.0  # the default: the orphan is 0 s old
        assert ray_down(down) == [head]
        assert nothing_left(backend.leftovers()), backend.leftovers()
