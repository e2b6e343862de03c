"""End to end with the SSH driver: ``ray up`` a cluster whose private GPU pool is three real ``sshd``
"hosts" on loopback, a GPU task lands on one of them, and ``ray down`` leaves no Ray process of the
cluster on any host (and no claim in any host's marker directory).

The head is a local-cloud instance (as in ``test_local_cluster_e2e.py``); the workers are started by
the SSH driver over SSH with the real ``ray start`` (``fakes.sshd.loopback_ray``: the one change is
that a 127.0.0.1 head address stays 127.0.0.1). GPUs are logical: nothing here has nvidia-smi.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from fakes.sshd import SshdFarm, loopback_ray, node_processes, ssh_cloud_spec, sshd_available

from ray_multicloud.clouds.ssh import SshCloud
from ray_multicloud.scenarios.local_cluster import LocalCluster

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sshd_available(), reason="OpenSSH's sshd is not installed")]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def farm() -> Iterator[SshdFarm]:
    # Short: Ray's unix socket paths live under each host's --temp-dir.
    root = Path(tempfile.mkdtemp(prefix="rmcs-"))
    with SshdFarm(root / "s", 3) as farm:
        yield farm


def cluster_yaml(tmp: Path, farm: SshdFarm) -> Path:
    root = farm.root.parent

    def host(i: int) -> dict[str, object]:
        # Every "host" is this machine: each Ray node gets its own temp dir (its own socket names)
        # and a random dashboard-agent port; real hosts need neither.
        return {"accelerator": "A100", "instance_type": "a100-box",
                "ray_start_args": [f"--temp-dir={root}/r{i}", "--dashboard-agent-listen-port=0",
                                   "--object-store-memory=80000000"]}

    dc1 = ssh_cloud_spec(farm, ray=str(loopback_ray(root / "ray")), extra_host=host,
                         env={"PYTHONPATH": str(REPO)})
    config = {
        "cluster_name": "rmc-ssh",
        "max_workers": 3,
        "upscaling_speed": 10.0,
        "idle_timeout_minutes": 5,
        "provider": {
            "type": "external",
            "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "127.0.0.1:6390",
            "cooldown_seconds": 30,
            "disable_node_updaters": True,
            "clouds": {"aws": {"driver": "local", "prices_from": "aws"}, "dc1": dc1},
        },
        "auth": {"ssh_user": "ray"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 1}, "min_workers": 0, "max_workers": 0,
                     "node_config": {"offer": {"cloud": "aws", "region": "us-east-1", "zone": "use1-az1",
                                               "instance_type": "m5.xlarge", "capacity": "on-demand",
                                               "price_per_hour": 0.192, "vcpus": 4, "memory_gib": 16}}},
            "a100_private": {
                "resources": {"CPU": 1, "GPU": 1, "accelerator_type:A100": 1},
                "min_workers": 0, "max_workers": 3,
                "node_config": {"pool": {"accelerator": "A100", "accelerator_count": 1,
                                         "capacity_types": ["on-demand"], "clouds": ["dc1"],
                                         "source_preference": ["dc1"]}},
            },
        },
        "file_mounts": {}, "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
        "initialization_commands": [], "worker_start_ray_commands": [], "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    }
    path = tmp / "ssh-cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_gpu_task_lands_on_an_ssh_host_and_ray_down_leaves_nothing(
    tmp_path: Path, farm: SshdFarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    # This process's own HOME: a ~/.ray/auth_token of the machine's user must not turn token auth on.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    cluster = LocalCluster(cluster_yaml(tmp_path, farm), workdir=tmp_path / "cluster")
    ours = SshCloud.from_config("dc1", cluster.settings.clouds["dc1"], state_dir=str(tmp_path / "check"))
    prefix = "dc1-127.0.0.1-"
    try:
        cluster.up()
        ray.init(cluster.address, log_to_driver=False)

        @ray.remote(num_gpus=1, resources={"accelerator_type:A100": 1})
        def where() -> tuple[str, dict[str, str]]:
            return os.environ["RAY_CLOUD_INSTANCE_ID"], dict(ray.get_runtime_context().get_node_labels())

        instance_id, labels = ray.get(where.remote(), timeout=300)
        ray.shutdown()
        ports = {str(h.port) for h in farm.hosts}
        match = re.fullmatch(r"dc1-127\.0\.0\.1-(\d+)-[0-9a-f]{10}", instance_id)
        assert match is not None and match.group(1) in ports, instance_id
        assert labels["rmc/cloud"] == "dc1"
        assert labels["rmc/pool"] == "a100_private"
        assert labels["ray.io/market-type"] == "on-demand"
        # The provider's view, rebuilt from the hosts by a driver that launched nothing.
        held = ours.list(cluster.cluster_name)
        assert instance_id in {i.instance_id for i in held}
        assert set(node_processes(instance_id)), "the node's Ray processes carry its instance id"
    finally:
        ray.shutdown()
        cluster.down()
    assert cluster.down_returncode == 0
    deadline = time.monotonic() + 30
    while node_processes(prefix) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = node_processes(prefix)
    try:
        assert left == {}, f"Ray processes of the cluster outlived ray down: {left}"
        for host in farm.hosts:
            assert not (host.dir / "home" / ".ray_multicloud" / "instance_id").exists(), host.name
        assert ours.list(cluster.cluster_name) == []
    finally:
        for inst in ours._all_nodes():  # a safety net: nothing is left when the asserts hold
            ours.terminate(inst.instance_id)
        ours.close()
