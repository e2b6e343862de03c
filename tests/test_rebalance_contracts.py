"""The contract of ``policy.rebalance`` as its docstrings and messages state it (issue 12, item 5:
the survivors of the mutation run): the knobs' refusals, the blackout windows' edges and text,
egress between places, and the figures a price move reports. Every expected value is computed by
hand in the comments, never read off the code."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ray_multicloud.policy.deadline import ON_DEMAND, POLICIES, WAIT, Choice, JobView, Memory, Step, spot
from ray_multicloud.policy.place import describe_offer
from ray_multicloud.policy.rebalance import (
    DailyWindow,
    JobProgress,
    MovePlan,
    RebalanceConfig,
    Window,
    checkpoint_home,
    egress_usd,
    gang_moves,
    idle_step,
    idle_view,
    move_cost,
    plan,
    region_egress_usd,
    regroup,
)
from ray_multicloud.types import (
    CapacityType,
    Colocate,
    FleetNode,
    InstanceId,
    Move,
    NodeState,
    Offer,
    PoolSpec,
    RequestId,
)

SPOT, OD = CapacityType.SPOT, CapacityType.ON_DEMAND
MIDNIGHT = float(calendar.timegm((2026, 11, 28, 0, 0, 0)))


def mk(cloud: str, region: str, zone: str, price: float, *, cap: CapacityType = SPOT, od: float = 1.0) -> Offer:
    return Offer(
        cloud=cloud, region=region, zone=zone, instance_type="g4dn.xlarge", accelerator="T4",
        accelerator_count=1, vcpus=4, memory_gib=16, capacity=cap, price_per_hour=price,
        ondemand_price_per_hour=od if cap is SPOT else price,
    )


@pytest.mark.parametrize(
    "name",
    [
        "horizon_hours", "checkpoint_s", "restart_s", "launch_s", "state_gb", "egress_usd_per_gb",
        "intra_cloud_egress_usd_per_gb", "min_relative_saving", "min_interval_s", "tick_s",
    ],
)
def test_config_refuses_a_negative_or_nan_knob_by_name(name: str) -> None:
    with pytest.raises(ValueError) as err:
        RebalanceConfig(**{name: -0.5})
    assert str(err.value) == f"RebalanceConfig.{name} must be >= 0, got -0.5"
    with pytest.raises(ValueError) as err:
        RebalanceConfig(**{name: float("nan")})
    assert str(err.value) == f"RebalanceConfig.{name} must be >= 0, got nan"
    RebalanceConfig(**{name: 0.0})  # 0 is allowed


def test_config_refuses_negative_max_moves_and_an_unknown_policy() -> None:
    with pytest.raises(ValueError) as err:
        RebalanceConfig(max_moves=-1)
    assert str(err.value) == "RebalanceConfig.max_moves must be >= 0, got -1"
    RebalanceConfig(max_moves=0)
    with pytest.raises(ValueError) as err:
        RebalanceConfig(deadline_policy="nope")
    message = str(err.value)
    assert message.startswith("RebalanceConfig.deadline_policy 'nope' is not a deadline policy; use one of: ")
    assert "multicloud" in message.split("use one of: ")[1].split(", ")


def test_config_defaults_and_restart_hours() -> None:
    c = RebalanceConfig()
    assert (c.horizon_hours, c.checkpoint_s, c.restart_s, c.launch_s, c.state_gb) == (4.0, 60.0, 120.0, 60.0, 20.0)
    assert (c.min_relative_saving, c.min_interval_s, c.max_moves, c.tick_s) == (0.10, 1800.0, 1, 60.0)
    assert c.deadline_policy == "multicloud" and c.deadline_overrides_blackout is True
    assert c.restart_hours == 180.0 / 3600.0  # persist 60 s + restore 120 s


def test_window_edges_and_text() -> None:
    w = Window(MIDNIGHT + 3600, MIDNIGHT + 7200)
    assert not w.contains(MIDNIGHT + 3599.5)
    assert w.contains(MIDNIGHT + 3600)  # start included
    assert w.contains(MIDNIGHT + 7199.5)
    assert not w.contains(MIDNIGHT + 7200)  # end excluded
    assert str(w) == "blackout 2026-11-28T01:00:00Z..2026-11-28T02:00:00Z"
    with pytest.raises(ValueError) as err:
        Window(10.0, 10.0)
    assert str(err.value) == "blackout window ends (10.0) at or before it starts (10.0)"
    with pytest.raises(ValueError) as err:
        Window(10.0, 5.0)
    assert str(err.value) == "blackout window ends (5.0) at or before it starts (10.0)"


@pytest.fixture
def honolulu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local zone at UTC-10 for one test (the text must still be UTC)."""
    monkeypatch.setenv("TZ", "Pacific/Honolulu")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_window_text_is_utc_whatever_the_local_zone(honolulu: None) -> None:
    assert time.localtime(MIDNIGHT).tm_hour == 14  # the zone took effect: 00:00 UTC is 14:00 the day before
    assert str(Window(MIDNIGHT + 3600, MIDNIGHT + 7200)) == "blackout 2026-11-28T01:00:00Z..2026-11-28T02:00:00Z"


@pytest.mark.parametrize(
    ("start", "end", "hour", "inside"),
    [
        (8.5, 17.0, 8.49, False), (8.5, 17.0, 8.5, True), (8.5, 17.0, 16.99, True), (8.5, 17.0, 17.0, False),
        (0.0, 24.0, 0.0, True), (0.0, 24.0, 23.99, True),  # the whole day
        (22.0, 2.0, 22.0, True), (22.0, 2.0, 1.99, True), (22.0, 2.0, 2.0, False), (22.0, 2.0, 21.99, False),
    ],
)
def test_daily_window_edges(start: float, end: float, hour: float, inside: bool) -> None:
    # the next day at the same hour: the window is daily
    assert DailyWindow(start, end).contains(MIDNIGHT + 86400 + hour * 3600) is inside


def test_daily_window_text_and_refusals() -> None:
    assert str(DailyWindow(8.5, 17.0)) == "daily blackout 08:30-17:00 UTC"
    assert str(DailyWindow(22.0, 0.25)) == "daily blackout 22:00-00:15 UTC"
    assert str(DailyWindow(0.0, 24.0)) == "daily blackout 00:00-24:00 UTC"
    for bad in (-0.5, 24.5):
        with pytest.raises(ValueError) as err:
            DailyWindow(bad, 3.0)
        assert str(err.value) == f"daily blackout hours must be within 0..24, got {bad}"
        with pytest.raises(ValueError) as err:
            DailyWindow(3.0, bad)
        assert str(err.value) == f"daily blackout hours must be within 0..24, got {bad}"
    with pytest.raises(ValueError) as err:
        DailyWindow(3.0, 3.0)
    assert str(err.value) == "daily blackout window is empty (start_hour == end_hour)"


# 20 GB of state; $0.09/GB between clouds, $0.02/GB between regions of one cloud.
CONFIG = RebalanceConfig()


@pytest.mark.parametrize(
    ("src", "dst", "pairs", "usd"),
    [
        (("aws", "us-east-1"), ("aws", "us-east-1"), (), 0.0),  # one region: free
        (("aws", "us-east-1"), ("aws", "us-west-2"), (), 20 * 0.02),
        (("aws", "us-east-1"), ("gcp", "us-central1"), (), 20 * 0.09),
        # a cloud pair overrides the default, for that direction only
        (("aws", "us-east-1"), ("gcp", "us-central1"), (("aws", "gcp", 0.5),), 20 * 0.5),
        (("gcp", "us-central1"), ("aws", "us-east-1"), (("aws", "gcp", 0.5),), 20 * 0.09),
        # the region pair before the cloud pair
        (("aws", "us-east-1"), ("gcp", "us-central1"),
         (("aws", "gcp", 0.5), ("aws/us-east-1", "gcp/us-central1", 0.25)), 20 * 0.25),
        (("aws", "us-west-2"), ("gcp", "us-central1"),
         (("aws", "gcp", 0.5), ("aws/us-east-1", "gcp/us-central1", 0.25)), 20 * 0.5),
        # a cloud pair within one cloud covers its regions
        (("aws", "us-east-1"), ("aws", "us-west-2"), (("aws", "aws", 0.01),), 20 * 0.01),
        # within one region it is free whatever the pairs say
        (("aws", "us-east-1"), ("aws", "us-east-1"), (("aws", "aws", 0.01),), 0.0),
    ],
)
def test_region_egress(src: tuple[str, str], dst: tuple[str, str], pairs: Any, usd: float) -> None:
    config = RebalanceConfig(egress_pairs=pairs)
    assert region_egress_usd(src, dst, config) == pytest.approx(usd, abs=1e-12)
    a, b = mk(src[0], src[1], src[1] + "a", 0.5), mk(dst[0], dst[1], dst[1] + "b", 0.2)
    assert egress_usd(a, b, config) == pytest.approx(usd, abs=1e-12)


def test_move_cost_is_stall_at_the_source_price_plus_overlap_at_the_target_price_plus_egress() -> None:
    # checkpoint 30 s + restart 90 s = 120 s at $0.60/h = $0.02; overlap 360 s at $0.30/h = $0.03;
    # 10 GB x $0.05 between clouds = $0.50.
    config = RebalanceConfig(checkpoint_s=30, restart_s=90, launch_s=360, state_gb=10, egress_usd_per_gb=0.05)
    src, dst = mk("aws", "us-east-1", "us-east-1a", 0.60), mk("gcp", "us-central1", "us-central1-a", 0.30)
    assert move_cost(src, dst, config) == pytest.approx(0.02 + 0.03 + 0.50)


# ---------------------------------------------------------------- price moves, in full
NOON = MIDNIGHT + 12 * 3600
A_1A = mk("aws", "us-east-1", "us-east-1a", 0.50)
A_1B = mk("aws", "us-east-1", "us-east-1b", 0.20)
A_1C = mk("aws", "us-east-1", "us-east-1c", 0.25)
POOL = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, capacity_types=(SPOT,))


def running(iid: str, offer: Offer, *, launched: float = NOON - 7200, pool: str = "t4") -> FleetNode:
    return FleetNode(instance_id=InstanceId(iid), pool=pool, offer=offer, request_id=RequestId("r-" + iid),
                     launched_at=launched, state=NodeState.RUNNING)


def price_plan(fleet: list[FleetNode], offers: list[Offer], config: RebalanceConfig = CONFIG, *,
               last_moved: dict[str, float] | None = None, pool: PoolSpec = POOL) -> MovePlan:
    return plan(fleet, offers, {pool.name: pool}, now=NOON, config=config,
                last_moved={InstanceId(k): v for k, v in (last_moved or {}).items()})


def test_a_price_move_reports_its_figures_in_full() -> None:
    # $0.50 -> $0.20 within us-east-1: saves $0.30/h (60%), $1.20 over 4 h; the move costs a
    # 180 s stall at $0.50/h = $0.025 plus 60 s of overlap at $0.20/h = $0.00333, no egress (one
    # region): $0.0283 (four decimals below 10 cents); net $1.20 - $0.0283 = $1.17 > $0.00.
    got = price_plan([running("a", A_1A)], [A_1A, A_1B])
    [move] = got.moves
    assert (move.instance_id, move.pool, move.from_offer, move.to_offer) == ("a", "t4", A_1A, A_1B)
    assert move.saving_per_hour == pytest.approx(0.30)
    assert move.move_cost_usd == pytest.approx(0.025 + 0.2 / 60)
    assert move.reasons == (
        f"price move: {describe_offer(A_1A)} -> {describe_offer(A_1B)}",
        "saves $0.30/h (60%), $1.20 over 4 h",
        "move costs $0.0283: stall 180 s at $0.50/h, overlap 60 s, egress $0.00 for 20 GB",
        "net $1.17 > $0.00",
    )
    assert got.notes == ()


def test_the_largest_net_saving_is_taken_not_the_first_offer() -> None:
    # 1b ($0.20) nets more than 1c ($0.25) whatever order the offers come in.
    for offers in ([A_1A, A_1C, A_1B], [A_1A, A_1B, A_1C]):
        assert price_plan([running("a", A_1A)], offers).moves[0].to_offer == A_1B


def test_why_a_node_is_not_moved_in_full() -> None:
    a = running("a", A_1A)
    # moved 5 s ago: hysteresis, from the later of the last move and the launch
    assert price_plan([a], [A_1A, A_1B], last_moved={"a": NOON - 5}).notes == (
        "a: hysteresis, moved or launched 5 s ago < min_interval_s 1800 s",)
    assert price_plan([running("a", A_1A, launched=NOON - 600)], [A_1A, A_1B],
                      last_moved={"a": NOON - 7200}).notes == (
        "a: hysteresis, moved or launched 600 s ago < min_interval_s 1800 s",)
    # exactly min_interval_s ago: allowed
    assert len(price_plan([running("a", A_1A, launched=NOON - 1800)], [A_1A, A_1B]).moves) == 1
    # $0.50 -> $0.48: 4% < 10%
    near = mk("aws", "us-east-1", "us-east-1b", 0.48)
    assert price_plan([a], [A_1A, near]).notes == (
        f"a: best saving 4% ({describe_offer(near)}) < min_relative_saving 10%",)
    # a horizon of 0.01 h: $0.30/h x 0.01 h = $0.0030 does not pay $0.0283
    short = RebalanceConfig(horizon_hours=0.01)
    assert price_plan([a], [A_1A, A_1B], short).notes == (
        f"a: saving $0.30/h x 0.01 h = $0.0030 does not pay a move costing $0.0283 to {describe_offer(A_1B)}",)
    # nothing else matches
    assert price_plan([a], [A_1A]).notes == ("a: no other matching offer",)
    # inside a blackout
    held = RebalanceConfig(blackouts=(DailyWindow(11.5, 12.5),))
    assert price_plan([a], [A_1A, A_1B], held).notes == ("a: daily blackout 11:30-12:30 UTC",)


def test_relative_saving_exactly_at_the_minimum_moves_and_net_exactly_at_the_minimum_does_not() -> None:
    a = running("a", A_1A)
    # $0.50 -> $0.45 is exactly 10%
    ten = mk("aws", "us-east-1", "us-east-1b", 0.45)
    cheap = RebalanceConfig(checkpoint_s=0, restart_s=0, launch_s=0)  # the move costs nothing
    assert price_plan([a], [A_1A, ten], cheap).moves[0].to_offer == ten
    # net = $0.05/h x 4 h - 0 = $0.20: a minimum of exactly $0.20 is not exceeded ($0.0500: four
    # decimals below 10 cents)
    at_min = RebalanceConfig(checkpoint_s=0, restart_s=0, launch_s=0, min_net_saving_usd=0.2)
    got = price_plan([a], [A_1A, ten], at_min)
    assert got.moves == ()
    assert got.notes == (
        f"a: saving $0.0500/h x 4 h = $0.20 does not pay a move costing $0.00 to {describe_offer(ten)}",)


def test_max_moves_says_which_node_waits() -> None:
    # two nodes, one move per tick: "a" (first by id, same net) moves, "b" waits
    fleet = [running("b", A_1A), running("a", A_1A)]
    got = price_plan(fleet, [A_1A, A_1B], RebalanceConfig(max_moves=1))
    assert [m.instance_id for m in got.moves] == ["a"]
    assert got.notes == ("b: max_moves=1 reached this tick",)
    assert price_plan(fleet, [A_1A, A_1B], RebalanceConfig(max_moves=0)).notes == (
        "a: max_moves=0 reached this tick", "b: max_moves=0 reached this tick")


# ---------------------------------------------------------------- deadline moves: Step -> Move
# A scripted deadline policy answers a fixed choice with one reason, so that what ``plan`` makes
# of each kind of step (the module docstring, "The policy's Step maps to at most one Move") is
# tested apart from any real policy's rules.
class Scripted:
    name = "scripted"

    def __init__(self, choice: Choice) -> None:
        self.choice = choice
        self.seen: list[JobView] = []
        self.memory = Memory(home_zone="scripted")

    def decide(self, view: JobView, memory: Memory) -> Step:
        self.seen.append(view)
        return Step(self.choice, ("because",), self.memory)


OD_OFFER = mk("aws", "us-east-1", "", 1.00, cap=OD)
POOL_ANY = PoolSpec(name="t4", accelerator="T4", accelerator_count=1)
JOB = JobProgress(submitted_at=NOON - 5 * 3600, deadline_at=NOON + 5 * 3600, work_total_hours=6.0,
                  work_done_hours=2.0, checkpointed_hours=1.5, checkpoint_hours=0.5)
BLACKOUT = DailyWindow(11.5, 12.5)


def scripted_plan(monkeypatch: pytest.MonkeyPatch, choice: Choice, *, pool: PoolSpec = POOL_ANY,
                  offers: tuple[Offer, ...] = (A_1A, A_1B, OD_OFFER), blackout: bool = False,
                  overrides: bool = True, cooldowns: dict[Any, float] | None = None,
                  fleet: list[FleetNode] | None = None) -> tuple[MovePlan, Scripted]:
    policy = Scripted(choice)
    monkeypatch.setitem(POLICIES, "scripted", policy)  # type: ignore[index]
    config = RebalanceConfig(jobs={"t4": JOB}, deadline_policy="scripted", max_moves=5,
                             blackouts=(BLACKOUT,) if blackout else (), deadline_overrides_blackout=overrides)
    got = plan(fleet or [running("a", A_1A, launched=NOON - 10)], list(offers), {pool.name: pool}, now=NOON,
               config=config, last_moved={}, cooldowns=cooldowns)
    return got, policy


def test_the_same_placement_keeps_and_threads_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    got, policy = scripted_plan(monkeypatch, spot(A_1A.offer_id))
    assert got.moves == ()
    assert got.notes == ("a: deadline policy scripted: keep (because)",)
    assert got.memories == {"t4": policy.memory}


def test_wait_moves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    got, _ = scripted_plan(monkeypatch, WAIT)
    assert got.notes == ("a: deadline policy scripted would hold nothing (because); a running node is not moved for that",)


def test_on_demand_moves_to_the_on_demand_offer_whatever_hysteresis_and_blackout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # launched 10 s ago, inside a blackout: moved anyway. Cost: 180 s at $0.50/h = $0.025, 60 s
    # of overlap at $1.00/h = $0.01667, one region: $0.0417; the "saving" is 0.50 - 1.00.
    got, _ = scripted_plan(monkeypatch, ON_DEMAND, blackout=True)
    [move] = got.moves
    assert (move.instance_id, move.pool, move.from_offer, move.to_offer) == ("a", "t4", A_1A, OD_OFFER)
    assert move.saving_per_hour == pytest.approx(-0.5)
    assert move.move_cost_usd == pytest.approx(0.025 + 1.0 / 60)
    assert move.reasons == (
        f"deadline move (scripted): {describe_offer(A_1A)} -> {describe_offer(OD_OFFER)}",
        "because",
        "move costs $0.0417",
    )
    # unless the blackout is told to hold deadline moves too
    got, _ = scripted_plan(monkeypatch, ON_DEMAND, blackout=True, overrides=False)
    assert got.moves == ()
    assert got.notes == ("a: deadline move to on-demand (because) blocked by daily blackout 11:30-12:30 UTC",)


def test_on_demand_without_an_on_demand_offer_says_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    got, _ = scripted_plan(monkeypatch, ON_DEMAND, pool=POOL)
    assert got.notes == (
        "a: deadline policy scripted asks for on-demand (because) but pool 't4' admits no on-demand offer; "
        "add 'on-demand' to its capacity_types",)
    got, _ = scripted_plan(monkeypatch, ON_DEMAND, cooldowns={OD_OFFER.offer_id: NOON + 1})
    assert got.notes == (
        "a: deadline policy scripted asks for on-demand (because) but every on-demand offer of pool 't4' "
        "is cooling down after failures",)
    # cooling until exactly now: usable again
    got, _ = scripted_plan(monkeypatch, ON_DEMAND, cooldowns={OD_OFFER.offer_id: NOON})
    assert [m.to_offer for m in got.moves] == [OD_OFFER]


def test_a_spot_choice_moves_unless_held_or_not_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    # launched 10 s ago: a deadline move onto spot ignores min_interval_s
    got, _ = scripted_plan(monkeypatch, spot(A_1B.offer_id))
    [move] = got.moves
    assert move.to_offer == A_1B
    assert move.reasons == (
        f"deadline move (scripted): {describe_offer(A_1A)} -> {describe_offer(A_1B)}", "because",
        "move costs $0.0283")
    got, _ = scripted_plan(monkeypatch, spot(A_1B.offer_id), blackout=True)
    assert got.notes == (
        f"a: deadline policy scripted asks for {A_1B.offer_id} (because); held by daily blackout 11:30-12:30 UTC",)
    got, _ = scripted_plan(monkeypatch, spot("aws/us-east-1/us-east-1z/g4dn.xlarge/spot"))
    assert got.notes == (
        "a: deadline policy scripted chose aws/us-east-1/us-east-1z/g4dn.xlarge/spot, which pool 't4' does "
        "not admit",)


def test_a_spot_choice_keeps_min_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    # the pool needs one on-demand node; "a" is its only one: moving it onto spot would break it
    pool = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, min_on_demand=1)
    got, _ = scripted_plan(monkeypatch, spot(A_1B.offer_id), pool=pool, fleet=[running("a", OD_OFFER)])
    assert got.notes == ("a: moving to aws/us-east-1/us-east-1b/g4dn.xlarge/spot would break "
                         "min_on_demand/min_clouds of 't4'",)


def test_the_policy_sees_the_job_as_the_simulator_would(monkeypatch: pytest.MonkeyPatch) -> None:
    # Submitted 5 h ago, due in 5 h: elapsed 5 h, deadline 10 h; restart (60 + 120) s = 0.05 h;
    # the node launched 10 s ago owes 0.05 - 10/3600 h; ticks of 60 s; the zones are the pool's
    # spot offers by id (1a, 1b), 1b cooling down; saved work lives in us-east-1 (the spot node
    # running it): both zones are in that region, no egress; on-demand at the offer's $1.00/h.
    _, policy = scripted_plan(monkeypatch, WAIT, cooldowns={A_1B.offer_id: NOON + 60})
    [view] = policy.seen
    assert view.elapsed_hours == 5.0 and view.deadline_hours == 10.0
    assert (view.work_total_hours, view.work_done_hours, view.checkpointed_hours, view.checkpoint_hours) == (
        6.0, 2.0, 1.5, 0.5)
    assert view.restart_hours == pytest.approx(0.05)
    assert view.overhead_left_hours == pytest.approx(0.05 - 10 / 3600)
    assert view.tick_hours == pytest.approx(1 / 60)
    assert view.current == spot(A_1A.offer_id)
    assert [(z.zone, z.region, z.available, z.price_per_hour, z.egress_usd) for z in view.zones] == [
        (A_1A.offer_id, "us-east-1", True, 0.5, 0.0), (A_1B.offer_id, "us-east-1", False, 0.2, 0.0)]
    assert view.ondemand_price_per_hour == 1.0
    assert view.preempted is False


# ---------------------------------------------------------------- a pool with no running node
def test_idle_view_after_a_preemption() -> None:
    # lost on 1a just now: current WAIT, preempted there, no restart owed yet; the checkpoint is in
    # us-east-1 (the lost node's region): gcp pays 20 GB x $0.09 = $1.80; on-demand at $1.00/h.
    gcp = mk("gcp", "us-central1", "us-central1-a", 0.3)
    config = RebalanceConfig(jobs={"t4": JOB})
    view = idle_view(POOL_ANY, [A_1A, A_1B, gcp, OD_OFFER], JOB, config, now=NOON, preempted_offer=A_1A.offer_id)
    assert view.current == WAIT and view.overhead_left_hours == 0.0
    assert view.preempted is True and view.preempted_zone == A_1A.offer_id
    assert [z.zone for z in view.zones] == [A_1A.offer_id, A_1B.offer_id, gcp.offer_id]
    assert [z.egress_usd for z in view.zones] == pytest.approx([0.0, 0.0, 1.8])
    assert view.ondemand_price_per_hour == 1.0
    later = idle_view(POOL_ANY, [A_1A, OD_OFFER], JOB, config, now=NOON)
    assert later.preempted is False and later.preempted_zone == ""


def test_idle_on_demand_price_without_an_on_demand_offer() -> None:
    # a spot-only pool: the cheapest on-demand price its spot offers quote ($0.80), else 0
    cheap_od = mk("aws", "us-east-1", "us-east-1b", 0.2, od=0.8)
    config = RebalanceConfig(jobs={"t4": JOB})
    assert idle_view(POOL, [A_1A, cheap_od], JOB, config, now=NOON).ondemand_price_per_hour == 0.8
    assert idle_view(POOL, [cheap_od, A_1A], JOB, config, now=NOON).ondemand_price_per_hour == 0.8
    assert idle_view(POOL, [], JOB, config, now=NOON).ondemand_price_per_hour == 0.0
    # the on-demand offer cooling down: the spot offers' on-demand price again
    cooled = idle_view(POOL_ANY, [A_1A, cheap_od, OD_OFFER], JOB, config, now=NOON,
                       cooldowns={OD_OFFER.offer_id: NOON + 1})
    assert cooled.ondemand_price_per_hour == 0.8


def test_idle_step_on_demand_that_cannot_launch_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = Scripted(ON_DEMAND)
    monkeypatch.setitem(POLICIES, "scripted", policy)  # type: ignore[index]
    config = RebalanceConfig(jobs={"t4": JOB}, deadline_policy="scripted")
    step = idle_step(POOL_ANY, [A_1A, OD_OFFER], JOB, config, Memory(), now=NOON,
                     cooldowns={OD_OFFER.offer_id: NOON + 1})
    assert step.choice == ON_DEMAND and step.memory is policy.memory
    assert step.reasons == ("because", "every on-demand offer of pool 't4' is cooling down after failures")
    step = idle_step(POOL_ANY, [A_1A, OD_OFFER], JOB, config, Memory(), now=NOON)
    assert step.reasons == ("because",)  # it can launch: nothing added
    assert policy.seen[-1].current == WAIT
    assert policy.seen[-1].preempted is False and policy.seen[-1].preempted_zone == ""  # none lost by default


@pytest.mark.parametrize(
    ("region", "home"),
    [("aws/us-east-1", ("aws", "us-east-1")), ("aws/", None), ("/us-east-1", None), ("aws", None), ("", None)],
)
def test_checkpoint_home_reads_only_a_whole_cloud_region(region: str, home: tuple[str, str] | None) -> None:
    job = JobProgress(submitted_at=0.0, deadline_at=3600.0, work_total_hours=1.0, work_done_hours=0.5,
                      checkpointed_hours=0.5, checkpoint_hours=0.5, checkpoint_region=region)
    assert checkpoint_home(job, OD_OFFER, CONFIG) == home
    assert checkpoint_home(job, None, CONFIG) == home
    # a spot holder says it directly; nothing saved or no state: no home
    assert checkpoint_home(job, A_1B, CONFIG) == ("aws", "us-east-1")
    assert checkpoint_home(job, A_1B, RebalanceConfig(state_gb=0.0)) is None
    unsaved = JobProgress(0.0, 3600.0, 1.0, 0.5, 0.0, 0.5, region)
    assert checkpoint_home(unsaved, A_1B, CONFIG) is None


# ---------------------------------------------------------------- gangs
GANG = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, capacity_types=(SPOT,), colocate=Colocate.ZONE)
A_W2 = mk("aws", "us-west-2", "us-west-2a", 0.30)


def member(iid: str, offer: Offer, state: NodeState = NodeState.RUNNING, pool: str = "t4") -> FleetNode:
    return FleetNode(instance_id=InstanceId(iid), pool=pool, offer=offer, request_id=RequestId("r-" + iid),
                     launched_at=NOON - 7200, state=state)


def test_gang_moves_carry_each_members_own_figures() -> None:
    # "a" moves 1a -> 1b; "b" on us-west-2a ($0.30) goes along: saves $0.10/h; its move costs a
    # 180 s stall at $0.30/h = $0.015, 60 s overlap at $0.20/h, and 20 GB x $0.02 between two
    # regions of aws = $0.40. "c" is already in 1b, "d" is pending, "e" is another pool's: all stay.
    first = Move(InstanceId("a"), "t4", A_1A, A_1B, 0.3, 0.03, ("price move: x",))
    fleet = [member("e", A_1A, pool="other"), member("d", A_1A, NodeState.PENDING), member("c", A_1B),
             member("b", A_W2), member("a", A_1A)]
    group = gang_moves(first, fleet, GANG, CONFIG)
    assert group[0] == first
    [b] = group[1:]
    assert (b.instance_id, b.pool, b.from_offer, b.to_offer) == ("b", "t4", A_W2, A_1B)
    assert b.saving_per_hour == pytest.approx(0.10)
    assert b.move_cost_usd == pytest.approx(0.015 + 0.2 / 60 + 0.40)
    assert b.reasons == ("gang of a (colocate=zone)", "price move: x")


def test_regroup_in_full() -> None:
    # one member on 1a, one on 1b: a tie in members; 1b's offer ranks first (cheaper), so all go
    # to 1b: "x" moves, saving $0.30/h, at move_cost(1a, 1b) = $0.025 + $0.00333.
    fleet = [member("y", A_1B), member("x", A_1A)]
    [move] = regroup(GANG, fleet, [A_1A, A_1B], now=NOON, config=CONFIG)
    assert (move.instance_id, move.from_offer, move.to_offer) == ("x", A_1A, A_1B)
    assert move.saving_per_hour == pytest.approx(0.30)
    assert move.move_cost_usd == pytest.approx(0.025 + 0.2 / 60)
    assert move.reasons == (
        "regroup: the gang of 't4' is split over 2 places; all to aws/us-east-1/us-east-1b (colocate=zone)",)
    # more members in 1a than in 1b: 1a holds the gang, whatever the price
    two = [member("y", A_1B), member("x", A_1A), member("z", A_1A)]
    assert [(m.instance_id, m.to_offer) for m in regroup(GANG, two, [A_1A, A_1B], now=NOON, config=CONFIG)] == [
        ("y", A_1A)]
    # no offer left anywhere (all cooling): nothing to do; other pools and stopped nodes are not members
    assert regroup(GANG, fleet, [A_1A, A_1B], now=NOON, config=CONFIG,
                   cooldowns={A_1A.offer_id: NOON + 1, A_1B.offer_id: NOON + 1}) == ()
    assert regroup(GANG, [member("y", A_1B), member("x", A_1A, pool="other")], [A_1A, A_1B], now=NOON,
                   config=CONFIG) == ()
    assert regroup(GANG, [member("y", A_1B), member("x", A_1A, NodeState.TERMINATED)], [A_1A, A_1B],
                   now=NOON, config=CONFIG) == ()
    assert regroup(POOL, fleet, [A_1A, A_1B], now=NOON, config=CONFIG) == ()  # not colocated


def test_a_member_already_there_does_not_stop_the_others() -> None:
    # by id: "a" (the move), "b" already on 1b (stays), "c" on us-west-2a (goes along)
    first = Move(InstanceId("a"), "t4", A_1A, A_1B, 0.3, 0.03, ("price move: x",))
    fleet = [member("a", A_1A), member("b", A_1B), member("c", A_W2)]
    assert [(m.instance_id, m.to_offer) for m in gang_moves(first, fleet, GANG, CONFIG)] == [
        ("a", A_1B), ("c", A_1B)]


def test_price_move_notes_name_the_first_reason_and_skip_offers_that_save_nothing() -> None:
    a = running("a", A_1A)
    # only dearer or equally priced offers: nothing to save, nothing to say about them
    dearer, same = mk("aws", "us-east-1", "us-east-1b", 0.60), mk("aws", "us-east-1", "us-east-1c", 0.50)
    assert price_plan([a], [A_1A, dearer, same]).notes == ("a: no other matching offer",)
    # the cheapest target cooling down: named, and the next one is taken
    cooled = plan([a], [A_1A, A_1B], {"t4": POOL}, now=NOON, config=CONFIG, last_moved={},
                  cooldowns={A_1B.offer_id: NOON + 60})
    assert cooled.notes == (f"a: {A_1B.offer_id} is cooling down or full",)
    both = plan([a], [A_1A, A_1B, A_1C], {"t4": POOL}, now=NOON, config=CONFIG, last_moved={},
                cooldowns={A_1B.offer_id: NOON + 60})
    assert [m.to_offer for m in both.moves] == [A_1C]
    # aws preferred: the node (on aws, ranked first as its cloud is) is not moved to a cheaper gcp
    prefer_aws = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, capacity_types=(SPOT,),
                          source_preference=("aws",))
    gcp = mk("gcp", "us-central1", "us-central1-a", 0.20)
    assert price_plan([a], [A_1A, gcp], pool=prefer_aws).notes == ("a: gcp is less preferred than aws",)


def test_a_dearer_target_that_pays_wins_over_a_cheaper_one_that_does_not() -> None:
    # gcp $0.20 saves $1.20 over 4 h but pays 20 GB x $0.09 = $1.80 of egress: it does not pay;
    # aws 1c $0.25 saves $1.00 at $0.025 + $0.00417 (one region): it does.
    gcp = mk("gcp", "us-central1", "us-central1-a", 0.20)
    assert [m.to_offer for m in price_plan([running("a", A_1A)], [A_1A, gcp, A_1C]).moves] == [A_1C]


def test_equal_nets_keep_the_best_ranked_target() -> None:
    # 1b and 1d both $0.20 in us-east-1: the same net; ranked by price then offer id, 1b first
    d = mk("aws", "us-east-1", "us-east-1d", 0.20)
    for offers in ([A_1A, d, A_1B], [A_1A, A_1B, d]):
        assert price_plan([running("a", A_1A)], offers).moves[0].to_offer == A_1B


def test_a_price_move_that_would_break_min_on_demand_says_so() -> None:
    # the pool's only on-demand node ($1.00/h) is not moved onto spot
    pool = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, min_on_demand=1)
    got = price_plan([running("a", OD_OFFER)], [OD_OFFER, A_1B], pool=pool)
    assert got.moves == ()
    assert got.notes == (f"a: moving to {A_1B.offer_id} would break min_on_demand/min_clouds of 't4'",)


def test_a_preferred_offer_that_saves_too_little_does_not_hide_a_cheaper_one() -> None:
    # aws preferred, then gcp: the node is on gcp at $0.50. The ranking puts aws first (preference
    # before price): aws at $0.60 saves nothing, aws at $0.48 saves 4% (< 10%); the gcp offer at
    # $0.20 in the node's own region still moves it.
    pool = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, capacity_types=(SPOT,),
                    source_preference=("aws", "gcp"))
    here = mk("gcp", "us-central1", "us-central1-a", 0.50)
    cheap = mk("gcp", "us-central1", "us-central1-b", 0.20)
    for dear in (mk("aws", "us-east-1", "us-east-1a", 0.60), mk("aws", "us-east-1", "us-east-1a", 0.48)):
        assert [m.to_offer for m in price_plan([running("a", here)], [here, dear, cheap], pool=pool).moves] == [
            cheap]


def test_a_target_breaking_min_on_demand_does_not_hide_one_that_keeps_it() -> None:
    # the only on-demand node ($1.00) of a pool with min_on_demand 1: spot 1b ($0.20) would break
    # it; on-demand at $0.80 in the same region keeps it and saves 20%.
    pool = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, min_on_demand=1)
    od2 = mk("aws", "us-east-1", "us-east-1b", 0.80, cap=OD)
    got = price_plan([running("a", OD_OFFER)], [OD_OFFER, A_1B, od2], pool=pool)
    assert [m.to_offer for m in got.moves] == [od2]


def test_a_gang_in_one_place_is_not_regrouped_even_when_its_place_cools() -> None:
    fleet = [member("x", A_1A), member("y", A_1A)]
    assert regroup(GANG, fleet, [A_1A, A_1B], now=NOON, config=CONFIG, cooldowns={A_1A.offer_id: NOON + 60}) == ()


def test_regroup_tie_goes_to_the_best_ranked_place_whatever_the_fleet_order() -> None:
    for fleet in ([member("x", A_1A), member("y", A_1B)], [member("y", A_1B), member("x", A_1A)]):
        [move] = regroup(GANG, fleet, [A_1A, A_1B], now=NOON, config=CONFIG)
        assert (move.instance_id, move.pool, move.to_offer) == ("x", "t4", A_1B)
    # 1a cooling: a place with no offer left ranks after every place that has one
    fleet = [member("x", A_1A), member("y", A_1B)]
    [move] = regroup(GANG, fleet, [A_1A, A_1B], now=NOON, config=CONFIG, cooldowns={A_1A.offer_id: NOON + 60})
    assert (move.instance_id, move.to_offer) == ("x", A_1B)


# ---------------------------------------------------------------- plan: every node is looked at
# (the mutants of ``plan``, ``node_view``, ``idle_view``, ``_policy_move`` and
# ``_keeps_constraints`` that the whole run (2026-11-30) left: a node that is skipped must not stop the nodes
# after it, and the order of the candidates is the module docstring's)
class ByPlace:
    """A deadline policy that answers by where the node is: ``answers[view.current]``, else keep."""

    name = "by-place"

    def __init__(self, answers: dict[Choice, Choice]) -> None:
        self.answers = answers
        self.seen: list[JobView] = []

    def decide(self, view: JobView, memory: Memory) -> Step:
        self.seen.append(view)
        return Step(self.answers.get(view.current, view.current), ("r1", "r2"), memory)


def by_place(monkeypatch: pytest.MonkeyPatch, answers: dict[Choice, Choice]) -> ByPlace:
    policy = ByPlace(answers)
    monkeypatch.setitem(POLICIES, "by-place", policy)  # type: ignore[index]
    return policy


def pool_named(name: str, base: PoolSpec = POOL_ANY) -> PoolSpec:
    return replace(base, name=name)


def a10(region: str, zone: str, price: float) -> Offer:
    """An offer of another accelerator, for a second price pool that sees none of the T4 offers."""
    return replace(mk("aws", region, zone, price), instance_type="g5.xlarge", accelerator="A10G")


POOL_A10 = PoolSpec(name="a10", accelerator="A10G", accelerator_count=1, capacity_types=(SPOT,))


def test_a_node_plan_skips_does_not_stop_the_nodes_after_it() -> None:
    # "a" sorts first and is skipped for each reason in turn; "b" ($0.50 -> $0.20) still moves.
    b = running("b", A_1A)
    for first in (replace(running("a", A_1A), state=NodeState.PENDING),  # not running
                  running("a", A_1A, pool="other")):  # a pool plan was not given
        got = price_plan([first, b], [A_1A, A_1B])
        assert [(m.instance_id, m.to_offer) for m in got.moves] == [("b", A_1B)]
    # moved 5 s ago: held by hysteresis, named; "b" moves
    got = price_plan([running("a", A_1A), b], [A_1A, A_1B], RebalanceConfig(max_moves=5),
                     last_moved={"a": NOON - 5})
    assert [m.instance_id for m in got.moves] == ["b"]
    assert got.notes == ("a: hysteresis, moved or launched 5 s ago < min_interval_s 1800 s",)
    # inside a blackout: every node is named
    held = RebalanceConfig(blackouts=(BLACKOUT,))
    assert price_plan([running("a", A_1A), b], [A_1A, A_1B], held).notes == (
        "a: daily blackout 11:30-12:30 UTC", "b: daily blackout 11:30-12:30 UTC")


def test_a_deadline_node_does_not_stop_the_price_moves_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # pool "j" runs the deadline job; "b" of the price pool "t4" ($0.50 -> $0.20) sorts after "a".
    by_place(monkeypatch, {spot(A_1C.offer_id): spot(A_1B.offer_id)})
    config = RebalanceConfig(jobs={"j": JOB}, deadline_policy="by-place", max_moves=5)
    pools = {"j": pool_named("j"), "t4": POOL}
    offers = [A_1A, A_1B, A_1C, OD_OFFER]
    b = running("b", A_1A)
    # "a" on 1a is kept (the policy's two reasons, joined by "; "): "b" still moves
    got = plan([running("a", A_1A, pool="j"), b], offers, pools, now=NOON, config=config, last_moved={})
    assert [(m.instance_id, m.to_offer) for m in got.moves] == [("b", A_1B)]
    assert got.notes == ("a: deadline policy by-place: keep (r1; r2)",)
    # "a" on 1c is moved to 1b by the policy: "b" moves too
    got = plan([running("a", A_1C, pool="j"), b], offers, pools, now=NOON, config=config, last_moved={})
    assert [(m.instance_id, m.to_offer) for m in got.moves] == [("a", A_1B), ("b", A_1B)]


def test_deadline_moves_to_on_demand_come_before_those_onto_spot(monkeypatch: pytest.MonkeyPatch) -> None:
    # two deadline pools, one move per tick: "b" (j2, 1a -> on-demand) goes before "a" (j1, 1c -> 1b
    # spot) although "a" sorts first by id.
    by_place(monkeypatch, {spot(A_1C.offer_id): spot(A_1B.offer_id), spot(A_1A.offer_id): ON_DEMAND})
    config = RebalanceConfig(jobs={"j1": JOB, "j2": JOB}, deadline_policy="by-place", max_moves=1)
    got = plan([running("a", A_1C, pool="j1"), running("b", A_1A, pool="j2")], [A_1A, A_1B, A_1C, OD_OFFER],
               {"j1": pool_named("j1"), "j2": pool_named("j2")}, now=NOON, config=config, last_moved={})
    assert [(m.instance_id, m.to_offer) for m in got.moves] == [("b", OD_OFFER)]
    assert got.notes == ("a: max_moves=1 reached this tick",)


def test_price_moves_go_by_net_saving_over_the_horizon() -> None:
    # One move per tick; "a" (t4) 1a $0.50 -> 1b $0.20: saves $0.30/h x 4 h = $1.20 at a cost of
    # 180 s x $0.50/h = $0.025 + 60 s x $0.20/h = $0.00333, no egress: net $1.1717.
    a = running("a", A_1A)
    b_from = a10("us-east-1", "us-east-1a", 1.00)
    b = running("b", b_from, pool="a10")
    pools = {"t4": POOL, "a10": POOL_A10}
    # "b" (a10) $1.00 -> us-west-2 $0.60: saves $0.40/h x 4 h = $1.60; costs 180 s x $1.00/h = $0.05
    # + 60 s x $0.60/h = $0.01 + 20 GB x $0.02 between regions = $0.40: net $1.14 < $1.1717: "a" moves
    # (saving plus cost would put "b" first: $2.06 > $1.2283).
    west = a10("us-west-2", "us-west-2a", 0.60)
    got = plan([a, b], [A_1A, A_1B, b_from, west], pools, now=NOON, config=CONFIG, last_moved={})
    assert [(m.instance_id, m.to_offer) for m in got.moves] == [("a", A_1B)]
    assert got.notes == ("b: max_moves=1 reached this tick",)
    # "b" $1.00 -> $0.60 in its own region: costs $0.06, net $1.54 > $1.1717: "b" moves (the saving
    # divided by the horizon would put "a" first: $0.30 / 4 - $0.0283 = $0.0467 > $0.40 / 4 - $0.06).
    east = a10("us-east-1", "us-east-1b", 0.60)
    got = plan([a, b], [A_1A, A_1B, b_from, east], pools, now=NOON, config=CONFIG, last_moved={})
    assert [(m.instance_id, m.to_offer) for m in got.moves] == [("b", east)]
    assert got.notes == ("a: max_moves=1 reached this tick",)


def test_a_reservation_takes_as_many_moves_as_it_has_free_slots() -> None:
    # Two free slots at $0/h marginal in 1a: of three nodes on spot 1a ($0.50; net $2.00 - $0.025
    # each), "i1" and "i2" take them and "i3" is named; the a10 node "j" ($1.00 -> $0.60, net $1.54,
    # after them) still moves.
    reserved = replace(mk("aws", "us-east-1", "us-east-1a", 0.0, cap=CapacityType.RESERVED),
                       term_price_per_hour=0.3, reserved_count=2)
    b_from, east = a10("us-east-1", "us-east-1a", 1.00), a10("us-east-1", "us-east-1b", 0.60)
    fleet = [running("i1", A_1A), running("i2", A_1A), running("i3", A_1A),
             running("j", b_from, pool="a10")]
    got = plan(fleet, [A_1A, reserved, b_from, east], {"t4": POOL_ANY, "a10": POOL_A10}, now=NOON,
               config=RebalanceConfig(max_moves=5), last_moved={})
    assert [(m.instance_id, m.to_offer) for m in got.moves] == [
        ("i1", reserved), ("i2", reserved), ("j", east)]
    assert got.notes == (
        f"i3: the reserved slots of {reserved.offer_id} are taken by this tick's other moves",)


def test_min_on_demand_counts_each_on_demand_node_once() -> None:
    # min_on_demand 2, two on-demand nodes ($1.00): moving either onto spot 1b leaves one.
    pool = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, min_on_demand=2)
    got = price_plan([running("a", OD_OFFER), running("b", OD_OFFER)], [OD_OFFER, A_1B],
                     RebalanceConfig(max_moves=5), pool=pool)
    assert got.moves == ()
    assert got.notes == tuple(
        f"{i}: moving to {A_1B.offer_id} would break min_on_demand/min_clouds of 't4'" for i in "ab")


def test_the_node_sees_its_own_on_demand_quote_when_the_on_demand_offer_cools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # on spot 1a (whose on-demand quote is $1.00); the pool's on-demand offer is $0.90. Launchable:
    # $0.90; cooling down: the node's own quote, $1.00.
    od90 = mk("aws", "us-east-1", "", 0.90, cap=OD)
    _, policy = scripted_plan(monkeypatch, WAIT, offers=(A_1A, A_1B, od90))
    assert policy.seen[-1].ondemand_price_per_hour == 0.90
    _, policy = scripted_plan(monkeypatch, WAIT, offers=(A_1A, A_1B, od90),
                              cooldowns={od90.offer_id: NOON + 60})
    assert policy.seen[-1].ondemand_price_per_hour == 1.00


def test_an_idle_job_sees_the_on_demand_offers_own_price() -> None:
    # the on-demand offer at $0.90, the spot offers quoting $1.00 on-demand: $0.90
    od90 = mk("aws", "us-east-1", "", 0.90, cap=OD)
    view = idle_view(POOL_ANY, [A_1A, A_1B, od90], JOB, RebalanceConfig(jobs={"t4": JOB}), now=NOON)
    assert view.ondemand_price_per_hour == 0.90


def test_any_state_to_carry_gives_a_home() -> None:
    # state_gb only has to be above 0: half a GB saved on spot 1b lives in us-east-1, and a start in
    # gcp carries it at $0.09/GB: 0.5 x $0.09 = $0.045.
    small = RebalanceConfig(state_gb=0.5)
    assert checkpoint_home(JOB, A_1B, small) == ("aws", "us-east-1")
    gcp = mk("gcp", "us-central1", "us-central1-a", 0.3)
    view = idle_view(POOL_ANY, [A_1B, gcp], JOB, replace(small, jobs={"t4": JOB}), now=NOON,
                     preempted_offer=A_1B.offer_id)
    assert [z.egress_usd for z in view.zones] == pytest.approx([0.0, 0.045])
