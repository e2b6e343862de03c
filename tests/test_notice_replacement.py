"""A spot notice answered before the node is gone (``policy.notices``, ``Controller.answer_notices``):
the replacement is launched on the notice, and once it is up the drain is brought forward so the job
restarts onto it while the noticed node still runs. Expected offers and deadlines are worked out by
hand from the offers written here, not from the code under test."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fakes import memory_cloud

from ray_multicloud.controller import RayNode
from ray_multicloud.policy.notices import notice_moves
from ray_multicloud.policy.place import OfferIndex
from ray_multicloud.types import CapacityType, Colocate, FleetNode, InstanceId, Offer, PoolSpec, RequestId


def offer(cloud: str, zone: str, price: float, capacity: CapacityType = CapacityType.SPOT) -> Offer:
    return Offer(cloud=cloud, region="r1", zone=zone, instance_type="g", accelerator="T4", accelerator_count=1,
                 vcpus=4, memory_gib=16, capacity=capacity, price_per_hour=price, ondemand_price_per_hour=1.0)


A = offer("aws", "a", 0.30)
B = offer("aws", "b", 0.20)
C = offer("gcp", "c", 0.25)
OD = offer("aws", "a", 1.00, CapacityType.ON_DEMAND)
INDEX = OfferIndex.build([A, B, C, OD])


def node(iid: str, o: Offer, pool: str = "p") -> FleetNode:
    return FleetNode(instance_id=InstanceId(iid), pool=pool, offer=o, request_id=RequestId("r"), launched_at=0.0)


def test_noticed_node_goes_where_a_new_node_would() -> None:
    pools = {"p": PoolSpec(name="p", accelerator="T4")}
    fleet = [node("n1", B), node("n2", A)]
    moves, notes = notice_moves(pools, fleet, {InstanceId("n1"): 130.0}, INDEX, now=100.0)
    assert notes == []
    assert [(m.instance_id, m.to_offer) for m in moves] == [("n1", B)]  # B is still the cheapest (0.20)
    assert moves[0].move_cost_usd == 0.0
    assert abs(moves[0].saving_per_hour - 0.0) < 1e-12
    assert "gone in 30.0 s" in moves[0].reasons[0]


def test_cooling_offer_is_avoided_and_saving_is_the_price_difference() -> None:
    pools = {"p": PoolSpec(name="p", accelerator="T4")}
    fleet = [node("n1", B)]
    moves, _ = notice_moves(pools, fleet, {InstanceId("n1"): 130.0}, INDEX, now=100.0,
                            cooldowns={B.offer_id: 200.0})
    assert moves[0].to_offer == C  # next cheapest after B: C at 0.25
    assert abs(moves[0].saving_per_hour - (0.20 - 0.25)) < 1e-12


def test_gang_replacement_stays_with_the_rest_of_the_gang() -> None:
    pools = {"p": PoolSpec(name="p", accelerator="T4", colocate=Colocate.ZONE)}
    # the gang runs in zone a; B (zone b) is cheaper, but the replacement joins the gang in zone a
    fleet = [node("n1", A), node("n2", A)]
    moves, _ = notice_moves(pools, fleet, {InstanceId("n1"): 130.0}, INDEX, now=100.0)
    assert moves[0].to_offer == A


def test_noticed_nodes_do_not_count_for_min_on_demand() -> None:
    pools = {"p": PoolSpec(name="p", accelerator="T4", min_on_demand=1)}
    fleet = [node("n1", OD), node("n2", B)]
    # the on-demand node is noticed (a maintenance event): its replacement must be on-demand again
    moves, _ = notice_moves(pools, fleet, {InstanceId("n1"): 130.0}, INDEX, now=100.0)
    assert moves[0].to_offer == OD


def test_passed_deadline_other_pools_and_infeasible_pools_get_no_move() -> None:
    pools = {"p": PoolSpec(name="p", accelerator="T4"), "q": PoolSpec(name="q", accelerator="A100")}
    fleet = [node("n1", B), node("n2", B, pool="other"), node("n3", A, pool="q")]
    noticed = {InstanceId("n1"): 99.0, InstanceId("n2"): 130.0, InstanceId("n3"): 130.0}
    moves, notes = notice_moves(pools, fleet, noticed, INDEX, now=100.0)
    assert moves == []
    assert any(n.startswith("n1: notice's deadline passed 1.0 s ago") for n in notes)
    assert any(n.startswith("pool 'q': no replacement on notice") for n in notes)


# --------------------------------------------------------------------------- the controller


def busy_gcs(provider: Any) -> Any:
    """Every node of the fleet RUNNING and busy (a GPU in use), Ray node id = instance id."""
    def nodes(_gcs: str) -> dict[str, RayNode]:
        return {i.instance_id: RayNode(i.instance_id, i.instance_id, "RUNNING", {"GPU": 1.0}, {"GPU": 0.0})
                for i in provider.fleet()}
    return nodes


def test_controller_launches_on_notice_and_brings_the_drain_forward(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        old = memory_cloud.launch_workers(provider, cluster, request="r1")[0]
        t = [time.time()]
        notice_deadline = t[0] + 30.0
        draining = {old.instance_id: notice_deadline}
        drains: list[tuple[str, float]] = []

        def drain(_gcs: str, node_id: str, *, deadline_s: float, **_: Any) -> tuple[bool, str]:
            drains.append((node_id, deadline_s))
            return True, ""

        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), drain=drain, draining=lambda _g: draining)
        deadline_s = controller.migrations["t4_spot"].drain_deadline_s
        assert deadline_s < 30.0  # local-multicloud.yaml's drain deadline is shorter than this notice
        started = controller.answer_notices(block=True)
        assert [m.instance_id for m in started] == [old.instance_id]
        result = controller.results[-1]
        assert result.status == "moved" and result.new_instance_id
        # the drain was brought forward to drain_deadline_s after the replacement was up: before the
        # notice's own deadline
        assert len(drains) == 1 and drains[0][0] == old.instance_id
        assert drains[0][1] < notice_deadline
        assert abs(drains[0][1] - (result.started_at + float(result.up_s or 0) + deadline_s)) < 1.0
        live = {n.instance_id for n in provider.fleet()}
        assert old.instance_id not in live and result.new_instance_id in live
        # answered once: the same notice seen again starts nothing
        assert controller.answer_notices(block=True) == []


def test_short_notice_keeps_its_own_deadline(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        old = memory_cloud.launch_workers(provider, cluster, request="r1")[0]
        t = [time.time()]
        notice_deadline = t[0] + 2.0  # shorter than the drain deadline: never pushed later
        drains: list[float] = []

        def drain(_gcs: str, _node: str, *, deadline_s: float, **_: Any) -> tuple[bool, str]:
            drains.append(deadline_s)
            return True, ""

        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), drain=drain,
            draining=lambda _g: {old.instance_id: notice_deadline})
        controller.answer_notices(block=True)
        assert drains == [notice_deadline]


def test_idle_operator_drained_opted_out_and_moving_nodes_are_left_alone(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        a, b = (memory_cloud.launch_workers(provider, cluster, request=f"r{i}")[0] for i in range(2))
        t = [time.time()]
        idle = memory_cloud.running_gcs(provider)  # nothing in use
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=idle, draining=lambda _g: {a.instance_id: t[0] + 30})
        assert controller.answer_notices(block=True) == []  # idle: nothing to restart anywhere

        # a drain without a deadline (an operator's) is no notice
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), draining=lambda _g: {a.instance_id: 0.0})
        assert controller.answer_notices(block=True) == []

        # a node a move of the controller's own holds (its drain shows as draining too)
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), draining=lambda _g: {b.instance_id: t[0] + 30})
        controller._claimed.add(InstanceId(b.instance_id))
        assert controller.answer_notices(block=True) == []

        # the pool opted out
        cluster["available_node_types"]["t4_spot"]["node_config"].setdefault("migration", {})[
            "replace_on_notice"] = False
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), draining=lambda _g: {a.instance_id: t[0] + 30})
        assert controller.answer_notices(block=True) == []
        assert len(provider.fleet()) == 2


def test_unreadable_drain_state_is_no_notice(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster, request="r1")
        t = [time.time()]

        def broken(_g: str) -> dict[str, float]:
            raise ConnectionError("GCS unreachable")

        controller = memory_cloud.memory_controller(cluster, provider, t, nodes=busy_gcs(provider), draining=broken)
        assert controller.answer_notices(block=True) == []


def test_launch_mode_keeps_the_notices_deadline(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["available_node_types"]["t4_spot"]["node_config"].setdefault("migration", {})[
            "replace_on_notice"] = "launch"
        provider = memory_cloud.memory_provider(cluster, world)
        old = memory_cloud.launch_workers(provider, cluster, request="r1")[0]
        t = [time.time()]
        notice_deadline = t[0] + 60.0  # far beyond drain_deadline_s: "restart" would bring it forward
        drains: list[float] = []

        def drain(_gcs: str, _node: str, *, deadline_s: float, **_: Any) -> tuple[bool, str]:
            drains.append(deadline_s)
            return True, ""

        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), drain=drain,
            draining=lambda _g: {old.instance_id: notice_deadline})
        assert [m.instance_id for m in controller.answer_notices(block=True)] == [old.instance_id]
        assert drains == [notice_deadline]
        assert controller.results[-1].status == "moved"


def test_the_packages_own_drains_are_no_notice(tmp_path: Path) -> None:
    """A move's, an idle downsize's or an SLO scale-down's drain (message "rmc ...") gets no
    replacement; a cloud's notice (the watcher's or the local cloud's message) does."""
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        a, b = (memory_cloud.launch_workers(provider, cluster, request=f"r{i}")[0] for i in range(2))
        t = [time.time()]
        messages = {a.instance_id: "rmc idle downsize x -> y", b.instance_id: "spot preemption of b"}
        asked: list[list[str]] = []

        def read(_gcs: str, nodes: list[str]) -> dict[str, str]:
            asked.append(nodes)
            return {n: messages[n] for n in nodes}

        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), drain_messages=read,
            draining=lambda _g: {a.instance_id: t[0] + 30, b.instance_id: t[0] + 30})
        started = controller.answer_notices(block=True)
        assert [m.instance_id for m in started] == [b.instance_id]
        assert sorted(asked[0]) == sorted([a.instance_id, b.instance_id])


def test_each_notice_is_recorded_once_in_the_ledger(tmp_path: Path) -> None:
    """Launch placement weighs the notices (``provider.placement_risk``), so the ledger must hold
    them even though the controller, not the cloud, ends the noticed node."""
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "state" / "ledger.db")
        provider = memory_cloud.memory_provider(cluster, world)
        old = memory_cloud.launch_workers(provider, cluster, request="r1")[0]
        t = [time.time()]
        draining = {old.instance_id: t[0] + 30.0}
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), draining=lambda _g: draining)
        assert controller.ledger is not None
        controller.answer_notices(block=True)
        controller.answer_notices(block=True)
        recorded = [(i, d) for i, _at, d in controller.ledger.preemptions()]
        assert recorded == [(old.instance_id, draining[old.instance_id])]
        (life,) = [life for life in controller.ledger.spot_lives(0.0) if life[3]]
        assert life[2] is not None  # the noticed node ended (moved), and counts as interrupted


HEDGED = {  # a serving pool that may fall back to on-demand (tests/test_spot_hedge_live.py's)
    "resources": {"CPU": 1, "GPU": 1, "accelerator_type:T4": 1},
    "min_workers": 0,
    "max_workers": 4,
    "node_config": {
        "pool": {"accelerator": "T4", "accelerator_count": 1, "capacity_types": ["spot", "on-demand"],
                 "clouds": ["aws", "gcp", "azure"]},
        "migration": {"hysteresis_seconds": 60, "max_disrupted": 1, "checkpoint_gb": 0.0,
                      "replace_on_notice": "launch"},
    },
}


def test_a_notice_in_a_spot_shortage_falls_back_to_on_demand_before_the_node_is_gone(tmp_path: Path) -> None:
    from ray_multicloud.controller import NOTICE_ON_DEMAND_FROM

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["available_node_types"]["hedged"] = HEDGED
        provider = memory_cloud.memory_provider(cluster, world)
        old = memory_cloud.launch_workers(provider, cluster, node_type="hedged", request="r1")[0]
        assert old.tags["rmc-capacity"] == "spot"
        # Spot is gone everywhere, and the node has its notice.
        world.exhausted.update(o.offer_id for o in provider.offers.index().offers_for("T4")
                               if o.capacity is CapacityType.SPOT)
        t = [time.time()]
        draining = {old.instance_id: t[0] + 30.0}
        before = len(world.launch_calls)
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=busy_gcs(provider), draining=lambda _g: draining)
        controller.answer_notices(block=True)
        tried = world.launch_calls[before:]
        # spot offers planned (each refused, cooled down) by the first NOTICE_ON_DEMAND_FROM - 1
        # attempts, then on-demand: launched, the move done while the noticed node still ran.
        assert [o.endswith("/spot") for o in tried] == [True] * (NOTICE_ON_DEMAND_FROM - 1) + [False], tried
        result = controller.results[-1]
        assert result.status == "moved", result
        live = {n.instance_id: n.offer.capacity for n in provider.fleet()}
        assert live == {InstanceId(result.new_instance_id): CapacityType.ON_DEMAND}


def test_notice_moves_exactly() -> None:
    # Pool q (A100: no offers) comes first in fleet order and gets a note; pool p still gets its move.
    # n4's notice ends exactly now: nothing to gain (a deadline at or before now).
    pools = {"q": PoolSpec(name="q", accelerator="A100"), "p": PoolSpec(name="p", accelerator="T4")}
    fleet = [node("n3", A, pool="q"), node("n1", A), node("n4", B)]
    noticed = {InstanceId("n3"): 130.0, InstanceId("n1"): 130.0, InstanceId("n4"): 100.0}
    moves, notes = notice_moves(pools, fleet, noticed, INDEX, now=100.0)
    assert notes[0] == "n4: notice's deadline passed 0.0 s ago; nothing to gain"
    assert notes[1].startswith("pool 'q': no replacement on notice: pool 'q': accelerator: no offers")
    assert len(notes) == 2
    assert [(m.instance_id, m.pool, m.from_offer, m.to_offer) for m in moves] == [("n1", "p", A, B)]
    assert abs(moves[0].saving_per_hour - (0.30 - 0.20)) < 1e-12
    assert moves[0].reasons[0] == (
        "interruption notice: the node is gone in 30.0 s; its replacement is launched now, and the job "
        "restarts onto it once it is up"
    )
