"""Cloud factories for the contract suite: one entry per driver, each a context manager that
starts what the driver needs (a local fake API, moto, a Ray head, ...) and yields a ``CloudTarget``.

Adding a driver is a few lines::

    @contextlib.contextmanager
    def local_case(tmp_path: Path) -> Iterator[CloudTarget]:
        cloud = LocalCloud.from_config("local", {...}, state_dir=str(tmp_path))
        yield CloudTarget(cloud=cloud, offer=..., unknown_id=InstanceId("local-nope"))

    CLOUDS["local"] = CloudCase(local_case, marks=(pytest.mark.slow,))

A factory that cannot run here calls ``pytest.skip(...)``; ``marks`` are applied to every test the
case parametrizes. ``exhaust`` (optional) makes an offer answer "no capacity"; cases without it
skip the capacity contract.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakes.aws_faults import Ec2Faults

from ray_multicloud.clouds.base import Cloud, RayBootstrap
from ray_multicloud.types import CapacityType, InstanceId, Offer


@dataclass
class CloudTarget:
    """What the contract suite needs from one driver under test."""

    cloud: Cloud
    offer: Offer  # an offer the driver can launch here
    unknown_id: InstanceId  # a well-formed id of an instance that never existed
    exhaust: Callable[[Offer], None] | None = None  # make this offer answer "no capacity"
    other_offer: Offer | None = None  # a second launchable offer (another zone) for failover
    extras: dict[str, Any] = field(default_factory=dict)
    # Where workers would join Ray. Real-cloud drivers only render it into a startup script; the local
    # drivers start real Ray nodes, so their cases point it at a head they started on loopback.
    gcs_address: str = "127.0.0.1:6379"


@dataclass(frozen=True)
class CloudCase:
    factory: Callable[[Path], AbstractContextManager[CloudTarget]]
    marks: tuple[Any, ...] = ()


def gpu_offer(
    cloud: str,
    region: str,
    zone: str,
    instance_type: str,
    capacity: CapacityType = CapacityType.SPOT,
) -> Offer:
    return Offer(
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type=instance_type,
        accelerator="V100",
        accelerator_count=1,
        vcpus=8,
        memory_gib=61,
        capacity=capacity,
        price_per_hour=0.9 if capacity is CapacityType.SPOT else 3.06,
        ondemand_price_per_hour=3.06,
    )


def priced_offer(
    cloud: str = "aws",
    zone: str = "us-east-1a",
    price: float = 1.0,
    od: float = 3.0,
    capacity: CapacityType = CapacityType.SPOT,
) -> Offer:
    """A one-V100 offer at ``price`` (``od`` on-demand) USD/h; an aws zone's region drops its letter."""
    return Offer(
        cloud=cloud,
        region=zone[:-1] if cloud == "aws" else zone,
        zone=zone,
        instance_type="p3.2xlarge",
        accelerator="V100",
        accelerator_count=1,
        vcpus=8,
        memory_gib=61,
        capacity=capacity,
        price_per_hour=price,
        ondemand_price_per_hour=od,
    )


_MOTO: dict[str, Any] = {}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's EC2 server on 127.0.0.1 (a free port), started once per test session and reset to
    empty (``POST /moto-api/reset``) for each user; yields its endpoint URL."""
    import atexit
    import urllib.request

    if "endpoint" not in _MOTO:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        _MOTO["endpoint"] = f"http://{host}:{port}"
        atexit.register(server.stop)
    endpoint: str = _MOTO["endpoint"]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=60)
    yield endpoint


_BOTO_LOADER: list[Any] = []


# The account's enabled regions, as DescribeRegions answers them to every test-built session.
# moto answers every region it knows (30+), and each region it is first asked about costs it
# seconds to set up; the AWS driver lists every enabled region, so an account with these two
# enabled keeps the tests fast and is the same case for the driver.
ENABLED_REGIONS = ("eu-west-1", "us-east-1")


def _enabled_regions_only(parsed: dict[str, Any], **_: Any) -> None:
    parsed["Regions"] = [r for r in parsed.get("Regions", []) if r.get("RegionName") in ENABLED_REGIONS]


def aws_session(
    faults: Ec2Faults | None = None, *, secret: str = "testing", botocore_max_attempts: int | None = 1
) -> Any:
    """A boto3 session for tests. ``botocore_max_attempts`` is the session's ``max_attempts``
    setting (what ``AWS_MAX_ATTEMPTS`` sets): 1 by default, so each driver call is one HTTP
    request and the driver's own retry counts stay visible and fast; ``None`` keeps botocore's
    default retry behaviour (``test_aws_faults.py`` measures it)."""
    import boto3

    # Test credentials handed to a test-built session (the driver itself only uses boto3's chain).
    session = boto3.Session(
        aws_access_key_id="AKIATESTING",
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    session.events.register("after-call.ec2.DescribeRegions", _enabled_regions_only)
    if botocore_max_attempts is not None:
        session._session.set_config_variable("max_attempts", botocore_max_attempts)
    if faults is not None:
        faults.install(session)
    return session


@contextlib.contextmanager
def aws_case(tmp_path: Path) -> Iterator[CloudTarget]:
    from ray_multicloud.clouds.aws import AwsCloud

    faults = Ec2Faults()
    with moto_server() as endpoint:
        cloud = AwsCloud(
            "aws",
            regions=("us-east-1",),
            image_id={"us-east-1": "ami-12345678"},
            endpoint_url=endpoint,
            session=aws_session(faults),
            sleep=lambda _s: None,
        )

        def exhaust(offer: Offer) -> None:
            faults.zones[offer.zone] = "InsufficientInstanceCapacity"

        yield CloudTarget(
            cloud=cloud,
            offer=gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge"),
            other_offer=gpu_offer("aws", "us-east-1", "use1-az2", "p3.2xlarge"),
            unknown_id=InstanceId("us-east-1.i-0123456789abcdef0"),
            exhaust=exhaust,
            extras={"faults": faults, "endpoint": endpoint},
        )


CLOUDS: dict[str, CloudCase] = {
    "aws": CloudCase(aws_case),
}


@contextlib.contextmanager
def gcp_case(tmp_path: Path) -> Iterator[CloudTarget]:
    from fakes.gcp_server import FakeGcp
    from google.auth.credentials import AnonymousCredentials

    from ray_multicloud.clouds.gcp import GcpCloud

    with FakeGcp(zones=("us-central1-a", "us-central1-b")) as fake:
        cloud = GcpCloud(
            "gcp",
            project=fake.project,
            zones={"us-central1": ["us-central1-a"]},
            image="projects/debian-cloud/global/images/family/debian-12",
            api_endpoint=fake.url,
            credentials=AnonymousCredentials(),
            sleep=lambda _s: None,
        )

        def exhaust(offer: Offer) -> None:
            fake.exhausted_zones.add(offer.zone)

        yield CloudTarget(
            cloud=cloud,
            offer=gpu_offer("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100"),
            other_offer=gpu_offer("gcp", "us-central1", "us-central1-b", "n1-standard-8+V100"),
            unknown_id=InstanceId("us-central1-a.rmc-never-existed"),
            exhaust=exhaust,
            extras={"fake": fake},
        )


CLOUDS["gcp"] = CloudCase(gcp_case)


# -- the local simulated clouds: real Ray worker nodes joining a real head on loopback ---------------

_HEAD: dict[str, Any] = {}


def local_ray_head() -> str:
    """A Ray head on 127.0.0.1 shared by the local contract cases, started once in its own process
    group and ended (by that group) when the test session exits. Returns its GCS address."""
    if "address" not in _HEAD:
        import atexit
        import os
        import signal
        import subprocess
        import sys

        from ray_multicloud.scenarios.local_cluster import free_port, ray_env

        port = free_port()
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        proc = subprocess.Popen(
            [
                ray,
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                "--num-cpus=0",
                "--include-dashboard=false",
                "--object-store-memory=80000000",
                "--disable-usage-stats",
            ],
            env=ray_env(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if proc.wait(timeout=120) != 0:
            raise RuntimeError("could not start the contract suite's Ray head")

        def stop() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        atexit.register(stop)
        _HEAD["address"] = f"127.0.0.1:{port}"
    address: str = _HEAD["address"]
    return address


def _sweep(cloud: Any) -> None:
    """Terminate whatever a contract test left running (its instances are real processes)."""
    for row in cloud.state.live():
        cloud.terminate(InstanceId(row["instance_id"]))


@contextlib.contextmanager
def local_case(tmp_path: Path) -> Iterator[CloudTarget]:
    from ray_multicloud.clouds.local import LocalCloud

    cloud = LocalCloud.from_config("aws", {"driver": "local"}, state_dir=str(tmp_path))

    def exhaust(offer: Offer) -> None:
        cloud.exhausted_offers.add(offer.offer_id)

    try:
        yield CloudTarget(
            cloud=cloud,
            offer=gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge"),
            other_offer=gpu_offer("aws", "us-east-1", "use1-az2", "p3.2xlarge"),
            unknown_id=InstanceId("aws-0000000000"),
            exhaust=exhaust,
            gcs_address=local_ray_head(),
        )
    finally:
        _sweep(cloud)


@contextlib.contextmanager
def private_case(tmp_path: Path) -> Iterator[CloudTarget]:
    from ray_multicloud.clouds.private import PrivateCloud

    cloud = PrivateCloud.from_config(
        "onprem",
        {
            "driver": "private",
            "region": "dc1",
            "machines": [
                {
                    "instance_type": "dgx-v100",
                    "accelerator": "V100",
                    "accelerator_count": 1,
                    "vcpus": 8,
                    "memory_gib": 61,
                    "count": 4,
                },
                {
                    "instance_type": "dgx-v100-b",
                    "accelerator": "V100",
                    "accelerator_count": 1,
                    "vcpus": 8,
                    "memory_gib": 61,
                    "count": 4,
                },
            ],
        },
        state_dir=str(tmp_path),
    )
    offer, other = cloud.offers()

    def exhaust(offer: Offer) -> None:
        # Fill the pool's machines of this kind, as other jobs would, in another cluster.
        for i in range(cloud.machines[offer.instance_type].count):
            from ray_multicloud.clouds.base import LaunchRequest
            from ray_multicloud.types import RequestId

            cloud.launch(LaunchRequest(RequestId(f"filler-{i}"), "someone-else", "x", offer, {}, None))

    try:
        yield CloudTarget(
            cloud=cloud,
            offer=offer,
            other_offer=other,
            unknown_id=InstanceId("onprem-0000000000"),
            exhaust=exhaust,
            gcs_address=local_ray_head(),
        )
    finally:
        _sweep(cloud)


CLOUDS["local"] = CloudCase(local_case)
CLOUDS["private"] = CloudCase(private_case)


@contextlib.contextmanager
def azure_case(tmp_path: Path) -> Iterator[CloudTarget]:
    from fakes.azure_server import FakeAzure, FakeAzureCredential

    from ray_multicloud.clouds.azure import AzureCloud

    with FakeAzure() as fake:
        subnet = (
            f"/subscriptions/{fake.subscription}/resourceGroups/{fake.resource_group}"
            "/providers/Microsoft.Network/virtualNetworks/rmc-vnet/subnets/workers"
        )
        cloud = AzureCloud(
            "azure",
            subscription_id=fake.subscription,
            resource_group=fake.resource_group,
            subnet_ids={"eastus": subnet, "westus2": subnet},
            ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests rmc",
            base_url=fake.url,
            credential=FakeAzureCredential(),
            sleep=lambda _s: None,
            polling_interval_s=0,
            sdk_retry_total=0,
        )

        def exhaust(offer: Offer) -> None:
            fake.allocation_failed.add(offer.region)

        yield CloudTarget(
            cloud=cloud,
            offer=gpu_offer("azure", "eastus", "", "Standard_NC6s_v3"),
            other_offer=gpu_offer("azure", "westus2", "", "Standard_NC6s_v3"),
            unknown_id=InstanceId("rmc-never-existed-0000000000"),
            exhaust=exhaust,
            extras={"fake": fake},
        )


CLOUDS["azure"] = CloudCase(azure_case)


@contextlib.contextmanager
def ssh_case(tmp_path: Path) -> Iterator[CloudTarget]:
    """Four real sshd "hosts" on loopback (three of one kind, one of another); ``ray start`` is a
    stand-in that leaves one process in the node's group (the e2e test runs real Ray)."""
    from fakes.sshd import fake_ray, ssh_cloud_spec, sshd_available, sshd_farm

    from ray_multicloud.clouds.ssh import SshCloud

    if not sshd_available():
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    with sshd_farm(tmp_path / "sshd", 4) as farm:
        spec = ssh_cloud_spec(farm, kinds={3: "v100-b"}, ray=str(fake_ray(tmp_path / "fake-ray")))
        cloud = SshCloud.from_config("dc1", spec, state_dir=str(tmp_path / "state"))
        offer = next(o for o in cloud.offers() if o.instance_type == "v100-a")
        other = next(o for o in cloud.offers() if o.instance_type == "v100-b")

        def exhaust(offer: Offer) -> None:
            from ray_multicloud.clouds.base import LaunchRequest
            from ray_multicloud.types import RequestId

            boot = RayBootstrap(gcs_address="127.0.0.1:1", node_type="x")
            for i, host in enumerate(cloud.hosts):
                if host.instance_type == offer.instance_type:
                    tags = {"rmc-cluster": "someone-else", "rmc-request-id": f"filler-{i}"}
                    rid = RequestId(f"filler-{i}")
                    cloud.launch(LaunchRequest(rid, "someone-else", "x", offer, tags, boot))

        try:
            yield CloudTarget(cloud=cloud, offer=offer, other_offer=other,
                              unknown_id=InstanceId(f"dc1-{cloud.hosts[0].slug}-0000000000"),
                              exhaust=exhaust, extras={"farm": farm})
        finally:
            for inst in cloud._all_nodes():
                cloud.terminate(inst.instance_id)
            cloud.close()


CLOUDS["ssh"] = CloudCase(ssh_case)
