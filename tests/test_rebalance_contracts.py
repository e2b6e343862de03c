"""The contract of ``policy.rebalance`` as its docstrings and messages state it (issue 12, item 5:
the survivors of the mutation run): the knobs' refusals, the blackout windows' edges and text,
egress between places, and the figures a price move reports. Every expected value is computed by
hand in the comments, never read off the code."""

from __future__ import annotations

import calendar
from typing import Any

import pytest

from ray_multicloud.policy.place import describe_offer
from ray_multicloud.policy.rebalance import (
    DailyWindow,
    MovePlan,
    RebalanceConfig,
    Window,
    egress_usd,
    move_cost,
    plan,
    region_egress_usd,
)
from ray_multicloud.types import CapacityType, FleetNode, InstanceId, NodeState, Offer, PoolSpec, RequestId

SPOT, OD = CapacityType.SPOT, CapacityType.ON_DEMAND
MIDNIGHT = float(calendar.timegm((2026, 11, 28, 0, 0, 0)))


def mk(cloud: str, region: str, zone: str, price: float, *, cap: CapacityType = SPOT) -> Offer:
    return Offer(
        cloud=cloud, region=region, zone=zone, instance_type="g4dn.xlarge", accelerator="T4",
        accelerator_count=1, vcpus=4, memory_gib=16, capacity=cap, price_per_hour=price,
        ondemand_price_per_hour=1.0 if cap is SPOT else price,
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
