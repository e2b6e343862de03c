"""The controller holds a move's replacements to the pool's budget (the governance issue's item 1:
the provider checks the autoscaler's launches, the controller the moves it makes)."""

from __future__ import annotations

from pathlib import Path

from fakes import memory_cloud

from ray_multicloud.controller import Controller

def test_a_move_to_dearer_offers_is_held_to_the_pools_budget(tmp_path: Path) -> None:
    """The provider checks the autoscaler's launches against a budget, not a move's replacements:
    the controller does, before a deadline or regroup move to a dearer offer."""
    from ray_multicloud.types import CapacityType, InstanceId, Move

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        (inst,) = memory_cloud.launch_workers(provider, cluster)
        (node,) = provider.fleet()
        t4 = provider.offers.index().offers_for("T4")
        dear = max((o for o in t4 if o.capacity is CapacityType.ON_DEMAND), key=lambda o: o.price_per_hour)
        cheap = min(t4, key=lambda o: o.price_per_hour)
        cap = node.offer.price_per_hour + 0.01  # room for this node, not for a dearer one
        cluster["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": cap}
        controller = Controller(cluster, provider=provider, nodes=lambda _: {})

        def move_to(offer: object) -> Move:
            return Move(InstanceId(inst.instance_id), "t4_spot", node.offer, offer, 0.0, 0.0, ("test",))  # type: ignore[arg-type]

        assert controller._over_budget([move_to(dear)], provider.fleet()) != ""
        assert controller._over_budget([move_to(cheap)], provider.fleet()) == ""
