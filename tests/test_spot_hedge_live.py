"""Spot hedging on the live pool (the serving issue's item 3, on the in-memory clouds): a serving
pool of spot replicas over several clouds plus ``min_on_demand``; when spot capacity goes, the
replacements the autoscaler asks for land on on-demand; when spot comes back, the controller moves
the on-demand nodes beyond ``min_on_demand`` back onto spot, one per tick (``max_disrupted``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fakes import memory_cloud

from ray_multicloud.errors import LaunchFailed
from ray_multicloud.types import CapacityType

POOL = "t4_serve"
SERVE_TYPE = {
    "resources": {"CPU": 1, "GPU": 1, "accelerator_type:T4": 1},
    "min_workers": 0,
    "max_workers": 6,
    "node_config": {
        "pool": {"accelerator": "T4", "accelerator_count": 1, "capacity_types": ["spot", "on-demand"],
                 "clouds": ["aws", "gcp", "azure"], "min_clouds": 2, "min_on_demand": 1},
        "migration": {"hysteresis_seconds": 60, "min_saving": 0.10, "max_disrupted": 1,
                      "checkpoint_gb": 0.0},
    },
}


def launch_retrying(provider: Any, cluster: dict[str, Any], request: str, attempts: int = 20) -> int:
    """Launch one node as the autoscaler does: a failed launch is asked again (each failure cools
    the refused offers down, so the next placement goes elsewhere). Returns the attempts it took."""
    for attempt in range(1, attempts + 1):
        try:
            memory_cloud.launch_workers(provider, cluster, node_type=POOL, request=f"{request}-{attempt}")
            return attempt
        except LaunchFailed:
            continue
    raise AssertionError(f"{request}: no launch in {attempts} attempts")


def capacities(provider: Any) -> list[str]:
    return sorted(n.offer.capacity.value for n in provider.fleet() if n.pool == POOL)


def test_spot_goes_to_on_demand_and_comes_back(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["available_node_types"][POOL] = SERVE_TYPE
        cluster["max_workers"] = 8
        provider = memory_cloud.memory_provider(cluster, world)
        for i in range(3):
            memory_cloud.launch_workers(provider, cluster, node_type=POOL, request=f"r{i}")
        assert capacities(provider) == ["on-demand", "spot", "spot"]  # min_on_demand 1, the rest spot
        assert len({n.offer.cloud for n in provider.fleet()}) >= 2  # min_clouds 2

        # Spot capacity goes everywhere: the spot replicas are preempted, and their replacements
        # (the autoscaler asks again) fall back to on-demand.
        spot_offers = {o.offer_id for o in provider.offers.index().offers_for("T4")
                       if o.capacity is CapacityType.SPOT}
        world.exhausted.update(spot_offers)
        for n in provider.fleet():
            if n.offer.capacity is CapacityType.SPOT:
                provider.terminate_node(n.instance_id)
        for i in range(2):
            launch_retrying(provider, cluster, f"again{i}")
        assert capacities(provider) == ["on-demand", "on-demand", "on-demand"]

        # Spot comes back (and the cool-downs of the refused offers run out): the on-demand nodes
        # beyond min_on_demand move back to spot, one per tick.
        world.exhausted.clear()
        t = [time.time() + 3600.0]  # the provider's cool-downs are on the wall clock

        controller = memory_cloud.memory_controller(cluster, provider, t)
        first = controller.tick()
        assert [r.status for r in first] == ["moved"], controller.last_plan
        assert first[0].move.to_offer.capacity is CapacityType.SPOT
        t[0] += 3600.0
        second = controller.tick()
        assert [r.status for r in second] == ["moved"]
        assert capacities(provider) == ["on-demand", "spot", "spot"]
        t[0] += 3600.0
        assert controller.tick() == []  # min_on_demand keeps the last on-demand node
        notes = controller.last_plan.notes  # type: ignore[union-attr]
        assert any("min_on_demand" in note for note in notes), notes
