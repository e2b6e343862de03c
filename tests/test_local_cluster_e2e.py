"""End to end on the embedded local cloud: ``ray up`` the multi-cloud YAML, scale on real Ray demand,
scale down idle nodes, tear down only our own processes; a malformed YAML launches nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray_multicloud.clouds.base import TAG_OFFER
from ray_multicloud.clouds.local import _alive
from ray_multicloud.cluster_config.cluster import check_cluster
from ray_multicloud.errors import MultiCloudError
from ray_multicloud.policy import place
from ray_multicloud.provider import MultiCloudNodeProvider
from ray_multicloud.scenarios.local_cluster import LocalCluster
from ray_multicloud.types import Decision

pytestmark = pytest.mark.e2e


def first_choice(cluster: LocalCluster, node_type: str) -> str:
    """The offer the policy ranks first for an empty pool, on the cluster's own offer book."""
    provider = MultiCloudNodeProvider(dict(cluster.config["provider"]), cluster.cluster_name)
    target = check_cluster(cluster.config)[node_type]
    decision = place(target, 1, provider.offers.index(), (), now=0.0)  # type: ignore[arg-type]
    assert isinstance(decision, Decision)
    return decision.placements[0].offer.offer_id


def test_scale_up_label_selector_scale_down_teardown(tmp_path: Path) -> None:
    import ray

    cluster = LocalCluster(workdir=tmp_path, overrides={"idle_timeout_minutes": 0.1})
    pids: list[int] = []
    lock = cluster.state_dir / f"controller-{cluster.cluster_name}.lock"
    try:
        cluster.up()
        # `ray up` started the controller on the head: it holds the cluster's lock file.
        controller = int(cluster.wait_for(lambda: lock.exists() and lock.read_text().strip(), timeout_s=60))
        assert _alive(controller)
        # A second one (as a re-run `ray up` would start) sees the lock and exits at once.
        command = [sys.executable, "-m", "ray_multicloud.controller", "--config", str(cluster.config_path)]
        again = subprocess.run(
            [*command, "--no-metrics"], capture_output=True, text=True, timeout=120, check=False
        )
        assert again.returncode == 0 and "another controller" in again.stderr
        assert _alive(controller)
        ray.init(cluster.address, log_to_driver=False)

        @ray.remote(num_gpus=1, resources={"accelerator_type:T4": 1})
        def where_t4() -> dict[str, str]:
            return dict(ray.get_runtime_context().get_node_labels())

        labels = ray.get(where_t4.remote(), timeout=120)
        t4_nodes = [i for i in cluster.workers() if i.tags.get("ray-user-node-type") == "t4_spot"]
        assert len(t4_nodes) == 1
        assert t4_nodes[0].tags[TAG_OFFER] == first_choice(cluster, "t4_spot")
        assert labels["ray.io/market-type"] == "spot"
        assert labels["rmc/cloud"] == t4_nodes[0].tags[TAG_OFFER].split("/")[0]

        @ray.remote(num_gpus=1, label_selector={"ray.io/market-type": "on-demand"})
        def where_on_demand() -> dict[str, str]:
            return dict(ray.get_runtime_context().get_node_labels())

        od = ray.get(where_on_demand.remote(), timeout=120)
        assert od["ray.io/market-type"] == "on-demand"
        assert od["rmc/cloud"] == "onprem"  # the private pool is preferred for this pool

        @ray.remote(num_gpus=1, label_selector={"ray.io/market-type": "spot"})
        def where_spot() -> str:
            return str(ray.get_runtime_context().get_node_labels()["ray.io/market-type"])

        assert ray.get(where_spot.remote(), timeout=120) == "spot"

        clouds = cluster.clouds()
        for inst in cluster.instances():
            pid = clouds[inst.cloud].process_group(inst.instance_id)
            assert pid is not None
            pids.append(pid)
        # Idle workers are drained and removed by Ray's own scale-down.
        cluster.wait_for(lambda: not cluster.workers(), timeout_s=120)
        assert len(cluster.instances()) == 1  # the head
    finally:
        ray.shutdown()
        cluster.down()
    assert cluster.down_returncode == 0, (tmp_path / "ray-down.log").read_text()[-2000:]
    assert cluster.instances() == []
    assert not any(_alive(pid) for pid in pids)
    assert not _alive(controller)  # `ray down` ended it with the head


def test_malformed_yaml_fails_clearly_and_launches_nothing(tmp_path: Path) -> None:
    cluster = LocalCluster(
        workdir=tmp_path,
        overrides={"available_node_types": {"t4_spot": {"node_config": {"pool": {"accelerator": "T5"}}}}},
    )
    with pytest.raises(MultiCloudError) as info:
        cluster.up()
    assert "available_node_types.t4_spot.node_config.pool.accelerator" in str(info.value)
    assert "unknown accelerator 'T5'" in str(info.value)
    assert cluster.instances() == []
