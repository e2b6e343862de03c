"""Gangs: a colocated pool's nodes placed together, moved together, and brought back together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from ray_multicloud.clouds.base import Instance
from ray_multicloud.cluster_config.pools import parse_pool
from ray_multicloud.controller import NodeTypeSpec, RayNode, move_group
from ray_multicloud.errors import CapacityError, ConfigError, LaunchFailed
from ray_multicloud.policy import OfferIndex
from ray_multicloud.policy.rebalance import RebalanceConfig, gang_moves, regroup
from ray_multicloud.types import Colocate, InstanceId, Move, NodeState, Offer, PoolSpec
from tests.test_policy_place import decide, mk, node

Z = Colocate.ZONE
# us-east-1a is cheapest, then us-east-1b, then gcp.
A = mk("aws", "us-east-1", "us-east-1a", 1.0)
B = mk("aws", "us-east-1", "us-east-1b", 1.1)
B2 = mk("aws", "us-east-1", "us-east-1b", 1.3, itype="m2")
G = mk("gcp", "us-central1", "", 1.2)
OFFERS = [A, B, B2, G]
GANG = PoolSpec(name="train", accelerator="A100", accelerator_count=1, colocate=Z)


def test_a_new_member_joins_the_gang_even_where_it_costs_more() -> None:
    got = decide(GANG, 1, OFFERS, fleet=[node("train", B, 1)])
    [p] = got.placements
    # By hand: the gang is in us-east-1b; A (1.0) is cheaper but elsewhere; B (1.1) is there.
    assert p.offer == B
    assert p.fallbacks == (B2,)  # fails over only within us-east-1b
    assert any(
        "colocate=zone: with the pool's other node(s) in aws/us-east-1/us-east-1b" in r for r in p.reasons
    )


def test_without_colocate_the_cheapest_wins() -> None:
    pool = PoolSpec(name="train", accelerator="A100", accelerator_count=1)
    assert decide(pool, 1, OFFERS, fleet=[node("train", B, 1)]).placements[0].offer == A


def test_two_new_members_of_an_empty_gang_land_together() -> None:
    got = decide(GANG, 2, OFFERS)
    assert [p.offer for p in got.placements] == [A, A]
    assert got.placements[1].fallbacks == ()  # nothing else in us-east-1a


def test_the_gang_place_with_most_members_anchors_a_split_gang() -> None:
    fleet = [node("train", G, 1), node("train", B, 2), node("train", B, 3)]
    assert decide(GANG, 1, OFFERS, fleet=fleet).placements[0].offer == B


def test_no_capacity_where_the_gang_is_places_apart_and_says_so() -> None:
    got = decide(
        GANG, 1, OFFERS, fleet=[node("train", B, 1)], cooldowns={B.offer_id: 2000.0, B2.offer_id: 2000.0}
    )
    [p] = got.placements
    assert p.offer == A
    assert any("placed apart until the controller moves the gang together" in r for r in p.reasons)


def test_region_and_cloud_granularity() -> None:
    region = PoolSpec(name="train", accelerator="A100", accelerator_count=1, colocate=Colocate.REGION)
    assert decide(region, 1, OFFERS, fleet=[node("train", B, 1)]).placements[0].offer == A  # same region
    cloud = PoolSpec(name="train", accelerator="A100", accelerator_count=1, colocate=Colocate.CLOUD)
    assert decide(cloud, 1, OFFERS, fleet=[node("train", G, 1)]).placements[0].offer == G


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"colocate": "rack"}, "not one of none, zone, region, cloud"),
        ({"colocate": "zones"}, "did you mean 'zone'"),
        ({"colocate": "zone", "min_clouds": 2}, "min_clouds=2 spreads them"),
    ],
)
def test_bad_colocate_is_named(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_pool("train", {"pool": {"accelerator": "A100", **raw}}, OfferIndex.build(OFFERS))
    assert err.value.key == "available_node_types.train.node_config.pool.colocate"
    assert needle in str(err.value)


def test_colocate_parses() -> None:
    pool = parse_pool(
        "train", {"pool": {"accelerator": "A100", "colocate": "region"}}, OfferIndex.build(OFFERS)
    )
    assert pool.colocate is Colocate.REGION


def price_move(node_offer: Offer, target: Offer, iid: str = "i-1") -> Move:
    return Move(InstanceId(iid), "train", node_offer, target, 0.1, 0.01, ("price move",))


def test_a_move_of_one_member_takes_the_gang_along() -> None:
    fleet = [node("train", A, 1), node("train", A, 2), node("train", G, 3, NodeState.RUNNING)]
    group = gang_moves(price_move(A, B), fleet, GANG, RebalanceConfig())
    # i-1 (the proposed move), then i-2 and i-3 to B; nobody was in us-east-1b already.
    assert [(str(m.instance_id), m.to_offer) for m in group] == [("i-1", B), ("i-2", B), ("i-3", B)]
    assert group[1].reasons[0] == "gang of i-1 (colocate=zone)"
    solo = PoolSpec(name="train", accelerator="A100", accelerator_count=1)
    assert gang_moves(price_move(A, B), fleet, solo, RebalanceConfig()) == (price_move(A, B),)


def test_regroup_brings_the_minority_home_or_waits_for_pending_members() -> None:
    fleet = [node("train", B, 1), node("train", B, 2), node("train", A, 3)]
    moves = regroup(GANG, fleet, OFFERS, now=1000.0, config=RebalanceConfig())
    assert [(str(m.instance_id), m.to_offer) for m in moves] == [("i-3", B)]
    assert (
        regroup(
            GANG,
            [*fleet, node("train", A, 4, NodeState.PENDING)],
            OFFERS,
            now=1000.0,
            config=RebalanceConfig(),
        )
        == ()
    )
    assert regroup(GANG, fleet[:2], OFFERS, now=1000.0, config=RebalanceConfig()) == ()
    # Nothing left in us-east-1b: the whole gang goes to the best place (us-east-1a).
    cooled = {B.offer_id: 5000.0, B2.offer_id: 5000.0}
    moves = regroup(GANG, fleet, OFFERS, now=1000.0, config=RebalanceConfig(), cooldowns=cooled)
    assert [(str(m.instance_id), m.to_offer) for m in moves] == [("i-1", A), ("i-2", A)]


# --------------------------------------------------------------------------- moving a group


@dataclass
class Provider:
    fail_on: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    n: int = 0

    def launch_on_offer(
        self, node_type: str, offer: Offer, *, resources: Mapping[str, float], labels: Mapping[str, str],
        request_id: str | None = None,
    ) -> Instance:  # fmt: skip
        self.n += 1
        new = f"new-{self.n}"
        self.calls.append(f"launch {new}")
        if new in self.fail_on:
            raise LaunchFailed(node_type, "r", [CapacityError(offer.cloud, "no capacity")])
        return Instance(InstanceId(new), offer.cloud, NodeState.PENDING, {}, "127.0.0.1")

    def terminate_node(self, node_id: str) -> None:
        self.calls.append(f"terminate {node_id}")


class Gcs:
    """new-1 up at 2 s, new-2 at ``second_up`` s; old nodes busy until drained + 3 s."""

    def __init__(self, second_up: float | None) -> None:
        self.t = 0.0
        self.second_up = second_up
        self.drained: dict[str, float] = {}
        self.events: list[str] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s

    def nodes(self, _: str) -> dict[str, RayNode]:
        gpu = {"GPU": 1.0}
        out = {}
        for old in ("old-1", "old-2"):
            free = old in self.drained and self.t >= self.drained[old] + 3
            out[old] = RayNode(old + "-n", old, "RUNNING", gpu, gpu if free else {"GPU": 0.0})
        if self.t >= 2:
            out["new-1"] = RayNode("n1", "new-1", "IDLE", gpu, gpu)
        if self.second_up is not None and self.t >= self.second_up:
            out["new-2"] = RayNode("n2", "new-2", "IDLE", gpu, gpu)
        return out

    def drain(
        self, _: str, node_id: str, *, deadline_s: float, reason: str, message: str
    ) -> tuple[bool, str]:
        self.drained[node_id.removesuffix("-n")] = self.t
        self.events.append(f"drain {node_id} at {self.t:g} (up: new-2 {self.second_up})")
        return True, ""


def run_group(provider: Provider, gcs: Gcs) -> list[Any]:
    moves = [price_move(A, B, "old-1"), price_move(A, B, "old-2")]
    return move_group(
        provider, moves, spec=NodeTypeSpec(resources={"GPU": 1.0}), gcs_address="x", drain_deadline_s=20,
        up_timeout_s=30, poll_s=1.0, nodes=gcs.nodes, drain=gcs.drain, clock=gcs.clock, sleep=gcs.sleep,
    )  # fmt: skip


def test_no_member_is_drained_before_every_replacement_is_up() -> None:
    provider, gcs = Provider(), Gcs(second_up=6)
    results = run_group(provider, gcs)
    assert [r.status for r in results] == ["moved", "moved"]
    # Both drains happen at 6 s, when the slower replacement came up — never at 2 s.
    assert gcs.drained == {"old-1": 6.0, "old-2": 6.0}
    assert all(r.up_s == 6.0 for r in results)
    assert provider.calls == ["launch new-1", "launch new-2", "terminate old-1", "terminate old-2"]
    assert all(r.drained_s == pytest.approx(9.0) for r in results)  # free 3 s after the drain


def test_one_replacement_not_up_rolls_the_whole_group_back() -> None:
    provider, gcs = Provider(), Gcs(second_up=None)
    results = run_group(provider, gcs)
    assert [r.status for r in results] == ["not-up", "not-up"]
    assert gcs.drained == {}  # the old gang keeps running untouched
    assert provider.calls == ["launch new-1", "launch new-2", "terminate new-1", "terminate new-2"]


def test_one_launch_failing_rolls_the_launched_ones_back() -> None:
    provider, gcs = Provider(fail_on={"new-2"}), Gcs(second_up=1)
    results = run_group(provider, gcs)
    assert [r.status for r in results] == ["launch-failed", "launch-failed"]
    assert gcs.drained == {}
    assert provider.calls == ["launch new-1", "launch new-2", "terminate new-1"]


def test_a_move_without_room_beside_the_old_nodes_is_skipped_with_the_key_to_raise(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Make-before-break runs the replacement beside the old node; past max_workers the autoscaler
    would kill the replacement and the move would fail after its timeout, so it is not started."""
    import logging

    from fakes import memory_cloud

    from ray_multicloud.controller import Controller

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["available_node_types"]["t4_spot"]["max_workers"] = 1
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster)
        [node] = provider.fleet()
        cheaper_elsewhere(provider, node)
        controller = Controller(
            cluster,
            config=RebalanceConfig(min_interval_s=0, state_gb=0),
            provider=provider,
            nodes=lambda _: {},  # the GCS answers
        )
        with caplog.at_level(logging.WARNING, logger="ray_multicloud.controller"):
            assert controller.tick() == []
        assert controller.last_plan is not None and len(controller.last_plan.moves) == 1  # it was planned
        assert any(
            "raise available_node_types.t4_spot.max_workers to at least 2" in r.getMessage()
            for r in caplog.records
        )
        assert [n.instance_id for n in provider.fleet()] == [node.instance_id]  # nothing launched


def test_a_restarted_controller_resumes_a_gang_move_as_one_group(tmp_path: Any) -> None:
    """Both members of a gang move were saved as replacement-up when the controller died; the next
    controller drains both old nodes in one go (one deadline, so the job restarts once) and ends
    them, without launching anything."""

    from fakes import memory_cloud

    from ray_multicloud.ledger import Ledger
    from ray_multicloud.moves import MoveState, new_record

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        provider = memory_cloud.memory_provider(cluster, world)
        spec = cluster["available_node_types"]["t4_spot"]
        memory_cloud.launch_workers(provider, cluster, count=2)
        old = sorted(provider.fleet(), key=lambda n: n.instance_id)
        target = next(
            o
            for o in provider.offers.index().offers_for("T4")
            if o.capacity is old[0].offer.capacity and o.cloud != old[0].offer.cloud
        )
        saved = []
        with Ledger(tmp_path / "ledger.db") as ledger:
            for i, node in enumerate(old):
                rec = new_record(
                    pool="t4_spot", old_instance=node.instance_id, target_offer=target.offer_id, number=1,
                    reason="price move", at=1000.0,
                )  # fmt: skip
                new = provider.launch_on_offer(
                    "t4_spot", target, resources=spec["resources"], labels={}, request_id=rec.request_id
                )
                up = rec.to(MoveState.REPLACEMENT_UP, at=1001.0 + i, new_instance=new.instance_id)
                ledger.journal_put(rec)
                ledger.journal_put(up)
                saved.append(up)
        launches = len(world.launch_calls)
        drains: list[tuple[str, float]] = []
        t = [2000.0]

        def drain(_: str, node_id: str, *, deadline_s: float, reason: str, message: str) -> tuple[bool, str]:
            drains.append((node_id, deadline_s))
            return True, ""

        controller = memory_cloud.memory_controller(cluster, provider, t, drain=drain)
        results = controller.resume()
        assert [r.status for r in results] == ["moved", "moved"]
        assert sorted(n for n, _ in drains) == sorted(n.instance_id for n in old)
        assert len({d for _, d in drains}) == 1  # one deadline for the whole gang
        assert len(world.launch_calls) == launches  # nothing launched again
        assert sorted(n.instance_id for n in provider.fleet()) == sorted(r.new_instance for r in saved)
        with Ledger(tmp_path / "ledger.db") as ledger:
            assert [r.state for r in ledger.journal()] == [MoveState.DONE, MoveState.DONE]


def test_no_move_while_the_gcs_cannot_be_read(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A head that is down (or being torn down by ``ray down``) gets no new replacement launched."""
    import logging

    from fakes import memory_cloud

    from ray_multicloud.controller import Controller

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster)
        [node] = provider.fleet()
        cheaper_elsewhere(provider, node)

        def down(_: str) -> dict[str, RayNode]:
            raise ConnectionError("GCS unreachable")

        controller = Controller(
            cluster, config=RebalanceConfig(min_interval_s=0, state_gb=0), provider=provider, nodes=down
        )
        launches = len(world.launch_calls)
        with caplog.at_level(logging.WARNING, logger="ray_multicloud.controller"):
            assert controller.tick() == []
        assert controller.last_plan is not None and len(controller.last_plan.moves) == 1  # it was planned
        assert len(world.launch_calls) == launches
        assert any("cannot be read; no move this tick" in r.getMessage() for r in caplog.records)


def test_an_idle_member_is_not_taken_along(tmp_path: Any) -> None:
    """A gang move replaces the members that run the job; an idle node of the pool (one the autoscaler
    launched in a race, about to be scaled down) gets no replacement."""
    from fakes import memory_cloud

    from ray_multicloud.controller import Controller

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster, count=2)
        busy, idle = sorted(provider.fleet(), key=lambda n: n.instance_id)
        cheaper_elsewhere(provider, busy)
        gpu = {"GPU": 1.0}

        def gcs(_: str) -> dict[str, RayNode]:
            out = {}
            for n in provider.fleet():
                used = n.instance_id == busy.instance_id
                out[n.instance_id] = RayNode(
                    n.instance_id, n.instance_id, "RUNNING", gpu, {"GPU": 0.0} if used else gpu
                )
            return out

        t = [5000.0]
        controller = Controller(
            cluster,
            config=RebalanceConfig(min_interval_s=0, state_gb=0),
            provider=provider,
            nodes=gcs,
            drain=lambda *a, **k: (True, ""),
            clock=lambda: t[0],
            sleep=lambda s: t.__setitem__(0, t[0] + s),
        )
        results = controller.tick(now=5000.0)
        assert [str(r.move.instance_id) for r in results] == [busy.instance_id]
        assert results[0].ok
        left = {n.instance_id for n in provider.fleet()}
        assert idle.instance_id in left and busy.instance_id not in left and len(left) == 2


def cheaper_elsewhere(provider: Any, node: Any) -> Offer:
    """An offer of ``node``'s capacity type on another cloud, priced on the board at a tenth of the
    node's price, so a price move of ``node`` pays."""
    from ray_multicloud.pricing.board import PriceBoard

    other = next(
        o
        for o in provider.offers.index().offers_for("T4")
        if o.capacity is node.offer.capacity and o.cloud != node.offer.cloud
    )
    PriceBoard(provider.settings.state_dir).set(other.offer_id, node.offer.price_per_hour / 10)
    return other


@pytest.mark.parametrize(
    ("max_workers", "extra", "expected"),
    [
        (4, {}, Colocate.ZONE),  # a node type that may run a multi-node worker group
        (1, {}, Colocate.NONE),  # one node: nothing to keep together
        (None, {}, Colocate.NONE),  # not known (the autoscaler's provider sees node_config only)
        (4, {"min_clouds": 2}, Colocate.NONE),  # asked to spread: a serving pool
        (4, {"min_on_demand": 1}, Colocate.NONE),  # a spot/on-demand mix: a serving pool
        (4, {"source_preference": ["aws"]}, Colocate.NONE),  # bursts from a preferred source
        (4, {"source_preference": ["aws"], "colocate": "zone"}, Colocate.ZONE),  # a gang that says so
        (4, {"colocate": "none"}, Colocate.NONE),  # said outright
        (1, {"colocate": "cloud"}, Colocate.CLOUD),
    ],
)
def test_colocate_default_follows_max_workers(
    max_workers: int | None, extra: dict[str, Any], expected: Colocate
) -> None:
    pool = parse_pool("train", {"pool": {"accelerator": "A100", **extra}}, OfferIndex.build(OFFERS),
                      max_workers=max_workers)
    assert pool.colocate is expected


def test_ray_up_writes_the_default_where_the_autoscaler_reads_it() -> None:
    """``fill_pool_defaults`` (run by ``bootstrap_config``) spells the default out in the pool, so the
    provider inside the autoscaler, which parses ``node_config`` alone, places a gang together."""
    from ray_multicloud.cluster_config.cluster import check_node_types
    from ray_multicloud.cluster_config.pools import fill_pool_defaults

    config: dict[str, Any] = {
        "max_workers": 8,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"max_workers": 0, "node_config": {"offer": {
                "cloud": "aws", "region": "us-east-1", "zone": "us-east-1a", "instance_type": "m1",
                "capacity": "on-demand", "price_per_hour": 0.1}}},
            "train": {"max_workers": 3, "node_config": {"pool": {"accelerator": "A100"}}},
            "serve": {"max_workers": 3, "node_config": {"pool": {"accelerator": "A100", "min_clouds": 2}}},
            "burst": {"max_workers": 3, "node_config": {"pool": {"accelerator": "A100",
                                                                 "source_preference": ["aws"]}}},
            "single": {"max_workers": 1, "node_config": {"pool": {"accelerator": "A100"}}},
            "inherits": {"node_config": {"pool": {"accelerator": "A100"}}},  # the cluster's max_workers
            "mine": {"max_workers": 3,
                     "node_config": {"pool": {"accelerator": "A100", "colocate": "region"}}},
        },
    }
    fill_pool_defaults(config)
    pools = {name: spec["node_config"]["pool"].get("colocate")
             for name, spec in config["available_node_types"].items() if "pool" in spec["node_config"]}
    assert pools == {"train": "zone", "serve": "none", "burst": "none", "single": "none", "inherits": "zone",
                     "mine": "region"}
    targets = check_node_types(config, OfferIndex.build(OFFERS), {"aws", "gcp"})
    by_node_config_alone = {name: parse_pool(name, config["available_node_types"][name]["node_config"],
                                             OfferIndex.build(OFFERS)).colocate for name in pools}
    resolved = {name: t.colocate for name, t in targets.items() if isinstance(t, PoolSpec)}
    assert resolved == by_node_config_alone
