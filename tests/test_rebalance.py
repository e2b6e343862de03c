"""Table-driven tests of the pure rebalancing policy over literal offers and fleets."""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from ray_multicloud.policy.rebalance import (
    DailyWindow,
    JobProgress,
    RebalanceConfig,
    Window,
    move_cost,
    plan,
    rebalance,
)
from ray_multicloud.types import (
    CapacityType,
    FleetNode,
    InstanceId,
    NodeState,
    Offer,
    PoolSpec,
    RequestId,
)

SPOT = CapacityType.SPOT
OD = CapacityType.ON_DEMAND
NOW = float(calendar.timegm((2026, 11, 28, 12, 0, 0)))  # noon UTC


def mk(
    cloud: str, region: str, zone: str, price: float, *, cap: CapacityType = SPOT, od: float = 1.0
) -> Offer:
    return Offer(
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type="g4dn.xlarge",
        accelerator="T4",
        accelerator_count=1,
        vcpus=4,
        memory_gib=16,
        capacity=cap,
        price_per_hour=price,
        ondemand_price_per_hour=od if cap is SPOT else price,
    )


AWS_1A = mk("aws", "us-east-1", "us-east-1a", 0.50)
AWS_1B = mk("aws", "us-east-1", "us-east-1b", 0.20)
AWS_W2 = mk("aws", "us-west-2", "us-west-2a", 0.20)
GCP = mk("gcp", "us-central1", "us-central1-a", 0.20)
GCP_CHEAPISH = mk("gcp", "us-central1", "us-central1-a", 0.47)
AZ_OD = mk("azure", "eastus", "", 0.90, cap=OD)
ONPREM = mk("onprem", "dc1", "", 0.60)

POOL = PoolSpec(name="t4", accelerator="T4", accelerator_count=1, capacity_types=(SPOT,))
POOL_ANY = PoolSpec(name="t4", accelerator="T4", accelerator_count=1)
POOL_PREF = replace(POOL, source_preference=("onprem",))
POOL_MIN_OD = replace(POOL_ANY, min_on_demand=1)

# 180 s stall, 60 s overlap, 20 GB of state.
BASE = RebalanceConfig(
    horizon_hours=4.0,
    checkpoint_s=60,
    restart_s=120,
    launch_s=60,
    state_gb=20,
    egress_usd_per_gb=0.09,
    intra_cloud_egress_usd_per_gb=0.02,
    min_relative_saving=0.10,
    min_interval_s=1800,
    max_moves=5,
)


def node(
    iid: str,
    offer: Offer,
    *,
    pool: str = "t4",
    launched: float = NOW - 7200,
    state: NodeState = NodeState.RUNNING,
) -> FleetNode:
    return FleetNode(
        instance_id=InstanceId(iid),
        pool=pool,
        offer=offer,
        request_id=RequestId("r-" + iid),
        launched_at=launched,
        state=state,
    )


def moves_of(
    fleet: Sequence[FleetNode],
    offers: Sequence[Offer],
    pool: PoolSpec = POOL,
    *,
    config: RebalanceConfig = BASE,
    last_moved: Mapping[str, float] | None = None,
    now: float = NOW,
) -> list[tuple[str, str]]:
    got = rebalance(
        fleet,
        offers,
        {pool.name: pool},
        now=now,
        config=config,
        last_moved={InstanceId(k): v for k, v in (last_moved or {}).items()},
    )
    return [(m.instance_id, m.to_offer.offer_id) for m in got]


@pytest.mark.parametrize(
    ("case", "fleet", "offers", "pool", "config", "last_moved", "now", "expected"),
    [
        # 0.30 $/h x 4 h = 1.20 < 1.80 egress + stall: a cross-cloud move does not pay over 4 hours...
        ("cross-cloud, short horizon", [node("a", AWS_1A)], [AWS_1A, GCP], POOL, BASE, None, NOW, []),
        # ... but does over 8 hours (2.40 > 1.83).
        (
            "cross-cloud, long horizon",
            [node("a", AWS_1A)],
            [AWS_1A, GCP],
            POOL,
            replace(BASE, horizon_hours=8),
            None,
            NOW,
            [("a", GCP.offer_id)],
        ),
        # Same saving within one region: no egress, so it pays over 4 hours.
        (
            "same region, other zone",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B, GCP],
            POOL,
            BASE,
            None,
            NOW,
            [("a", AWS_1B.offer_id)],
        ),
        # Inter-region within one cloud: 0.40 egress + 0.03 < 1.20.
        (
            "same cloud, other region",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_W2],
            POOL,
            BASE,
            None,
            NOW,
            [("a", AWS_W2.offer_id)],
        ),
        # Egress free and state small: cross-cloud pays even over 4 hours.
        (
            "no state to carry",
            [node("a", AWS_1A)],
            [AWS_1A, GCP],
            POOL,
            replace(BASE, state_gb=0),
            None,
            NOW,
            [("a", GCP.offer_id)],
        ),
        # A huge state: a minutes-long checkpoint at the current price kills even the same-zone move.
        (
            "large job stall",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            replace(BASE, checkpoint_s=3600, restart_s=3600 * 4),
            None,
            NOW,
            [],
        ),
        # 6% cheaper: below the 10% minimum relative saving whatever the horizon.
        (
            "below min relative saving",
            [node("a", AWS_1A)],
            [AWS_1A, GCP_CHEAPISH],
            POOL,
            replace(BASE, horizon_hours=1000, state_gb=0),
            None,
            NOW,
            [],
        ),
        ("nothing cheaper", [node("a", GCP)], [AWS_1A, GCP], POOL, BASE, None, NOW, []),
        # Hysteresis: moved 10 minutes ago (min 30) -> stay; moved 40 minutes ago -> move.
        (
            "hysteresis, recent move",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            BASE,
            {"a": NOW - 600},
            NOW,
            [],
        ),
        (
            "hysteresis, old move",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            BASE,
            {"a": NOW - 2400},
            NOW,
            [("a", AWS_1B.offer_id)],
        ),
        (
            "hysteresis, fresh node",
            [node("a", AWS_1A, launched=NOW - 60)],
            [AWS_1A, AWS_1B],
            POOL,
            BASE,
            None,
            NOW,
            [],
        ),
        # Blackouts: an absolute window around now; a daily window that wraps midnight.
        (
            "absolute blackout",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            replace(BASE, blackouts=(Window(NOW - 60, NOW + 60),)),
            None,
            NOW,
            [],
        ),
        (
            "absolute blackout over",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            replace(BASE, blackouts=(Window(NOW - 120, NOW - 60),)),
            None,
            NOW,
            [("a", AWS_1B.offer_id)],
        ),
        (
            "daily blackout 11-13 UTC",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            replace(BASE, blackouts=(DailyWindow(11, 13),)),
            None,
            NOW,
            [],
        ),
        (
            "daily blackout 22-02 UTC at noon",
            [node("a", AWS_1A)],
            [AWS_1A, AWS_1B],
            POOL,
            replace(BASE, blackouts=(DailyWindow(22, 2),)),
            None,
            NOW,
            [("a", AWS_1B.offer_id)],
        ),
        (
            "daily blackout 22-02 UTC at 01:00",
            [node("a", AWS_1A, launched=NOW - 86400)],
            [AWS_1A, AWS_1B],
            POOL,
            replace(BASE, blackouts=(DailyWindow(22, 2),)),
            None,
            NOW + 13 * 3600,
            [],
        ),
        # Source preference: the private pool is never left for a cheaper public cloud.
        ("source preference", [node("a", ONPREM)], [ONPREM, AWS_1B], POOL_PREF, BASE, None, NOW, []),
        # min_on_demand=1: the only on-demand node stays on-demand.
        ("min_on_demand kept", [node("a", AZ_OD)], [AZ_OD, AWS_1B], POOL_MIN_OD, BASE, None, NOW, []),
        (
            "min_on_demand, spot node moves",
            [node("a", AZ_OD), node("b", AWS_1A)],
            [AZ_OD, AWS_1A, AWS_1B],
            POOL_MIN_OD,
            BASE,
            None,
            NOW,
            [("b", AWS_1B.offer_id)],
        ),
        # Only running nodes of configured pools move.
        (
            "pending node",
            [node("a", AWS_1A, state=NodeState.PENDING)],
            [AWS_1A, AWS_1B],
            POOL,
            BASE,
            None,
            NOW,
            [],
        ),
        (
            "draining node",
            [node("a", AWS_1A, state=NodeState.DRAINING)],
            [AWS_1A, AWS_1B],
            POOL,
            BASE,
            None,
            NOW,
            [],
        ),
        ("other pool", [node("a", AWS_1A, pool="head")], [AWS_1A, AWS_1B], POOL, BASE, None, NOW, []),
        # max_moves: the larger net saving first (b saves more: it is on a dearer offer).
        (
            "max_moves=1",
            [node("a", AWS_1A), node("b", replace(AWS_1A, zone="us-east-1c", price_per_hour=0.9))],
            [AWS_1A, AWS_1B, replace(AWS_1A, zone="us-east-1c", price_per_hour=0.9)],
            POOL,
            replace(BASE, max_moves=1),
            None,
            NOW,
            [("b", AWS_1B.offer_id)],
        ),
    ],
)
def test_rebalance_table(
    case: str,
    fleet: list[FleetNode],
    offers: list[Offer],
    pool: PoolSpec,
    config: RebalanceConfig,
    last_moved: Mapping[str, float] | None,
    now: float,
    expected: list[tuple[str, str]],
) -> None:
    assert moves_of(fleet, offers, pool, config=config, last_moved=last_moved, now=now) == expected, case


def test_move_cost_parts() -> None:
    # stall 180 s at 0.50 $/h + overlap 60 s at 0.20 $/h + 20 GB x 0.09 $/GB
    assert move_cost(AWS_1A, GCP, BASE) == pytest.approx(0.025 + 0.2 / 60 + 1.8)
    assert move_cost(AWS_1A, AWS_W2, BASE) == pytest.approx(0.025 + 0.2 / 60 + 0.4)
    assert move_cost(AWS_1A, AWS_1B, BASE) == pytest.approx(0.025 + 0.2 / 60)


def test_move_carries_reasons_and_figures() -> None:
    [move] = rebalance(
        [node("a", AWS_1A)], [AWS_1A, AWS_1B], {"t4": POOL}, now=NOW, config=BASE, last_moved={}
    )
    assert move.from_offer == AWS_1A and move.to_offer == AWS_1B
    assert move.saving_per_hour == pytest.approx(0.30)
    assert move.move_cost_usd == pytest.approx(move_cost(AWS_1A, AWS_1B, BASE))
    text = " | ".join(move.reasons)
    assert "price move" in text and "us-east-1b" in text and "net" in text


@pytest.mark.parametrize(
    ("config", "last_moved", "launched", "needle"),
    [
        (
            replace(BASE, blackouts=(DailyWindow(11.5, 12.5),)),
            {},
            NOW - 7200,
            "daily blackout 11:30-12:30 UTC",
        ),
        (BASE, {"a": NOW - 5}, NOW - 7200, "hysteresis"),
        (replace(BASE, min_relative_saving=0.9), {}, NOW - 7200, "min_relative_saving"),
        (replace(BASE, horizon_hours=0.01), {}, NOW - 7200, "does not pay"),
    ],
)
def test_plan_says_why_not(
    config: RebalanceConfig, last_moved: Mapping[str, float], launched: float, needle: str
) -> None:
    answer = plan(
        [node("a", AWS_1A, launched=launched)],
        [AWS_1A, AWS_1B],
        {"t4": POOL},
        now=NOW,
        config=config,
        last_moved={InstanceId(k): v for k, v in last_moved.items()},
    )
    assert answer.moves == ()
    assert any(needle in n for n in answer.notes), answer.notes


def job(*, slack_hours: float, work_total: float = 10.0, done: float = 5.0) -> JobProgress:
    """A job submitted 5 h ago with ``done`` hours of work (all checkpointed) and the given slack.

    Slack (restart excluded) = deadline - now - (work_total - checkpointed).
    """
    return JobProgress(
        submitted_at=NOW - 5 * 3600,
        deadline_at=NOW + (work_total - done + slack_hours) * 3600,
        work_total_hours=work_total,
        work_done_hours=done,
        checkpointed_hours=done,
        checkpoint_hours=0.5,
    )


@pytest.mark.parametrize(
    ("case", "fleet", "slack", "expected"),
    [
        # Little slack: spot -> on-demand, even 1 minute after launch (hysteresis does not apply).
        ("spot, slack too low", [node("a", AWS_1A, launched=NOW - 60)], 0.03, [("a", AZ_OD.offer_id)]),
        # Plenty of slack: the ordinary price move onto cheaper spot.
        ("spot, plenty of slack", [node("a", AWS_1A)], 10.0, [("a", AWS_1B.offer_id)]),
        # On on-demand with thin slack: never back to spot.
        ("on-demand, thin slack", [node("a", AZ_OD)], 0.5, []),
        ("on-demand, rebuilt slack", [node("a", AZ_OD)], 10.0, [("a", AWS_1B.offer_id)]),
    ],
)
def test_deadline_moves(
    case: str, fleet: list[FleetNode], slack: float, expected: list[tuple[str, str]]
) -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=slack)})
    assert moves_of(fleet, [AWS_1A, AWS_1B, AZ_OD], POOL_ANY, config=config) == expected, case


def test_deadline_move_overrides_blackout_unless_told_not_to() -> None:
    fleet = [node("a", AWS_1A)]
    blackout = (Window(NOW - 60, NOW + 60),)
    config = replace(BASE, jobs={"t4": job(slack_hours=0.03)}, blackouts=blackout)
    assert moves_of(fleet, [AWS_1A, AZ_OD], POOL_ANY, config=config) == [("a", AZ_OD.offer_id)]
    strict = replace(config, deadline_overrides_blackout=False)
    assert moves_of(fleet, [AWS_1A, AZ_OD], POOL_ANY, config=strict) == []


def test_deadline_at_risk_in_spot_only_pool_is_reported() -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=0.03)})
    answer = plan([node("a", AWS_1A)], [AWS_1A, AZ_OD], {"t4": POOL}, now=NOW, config=config, last_moved={})
    assert answer.moves == ()
    assert any("admits no on-demand offer" in n for n in answer.notes)


@pytest.mark.parametrize(
    ("hour", "inside"),
    [(21.99, False), (22.0, True), (23.5, True), (0.0, True), (1.99, True), (2.0, False), (12.0, False)],
)
def test_daily_window_wraps_midnight(hour: float, inside: bool) -> None:
    midnight = float(calendar.timegm((2026, 11, 28, 0, 0, 0)))
    assert DailyWindow(22, 2).contains(midnight + hour * 3600) is inside


@pytest.mark.parametrize("bad", [{"horizon_hours": -1}, {"max_moves": -1}, {"min_interval_s": float("nan")}])
def test_config_rejects_bad_values(bad: Mapping[str, float]) -> None:
    with pytest.raises(ValueError):
        RebalanceConfig(**bad)  # type: ignore[arg-type]


def test_bad_windows_rejected() -> None:
    with pytest.raises(ValueError):
        Window(10, 5)
    with pytest.raises(ValueError):
        DailyWindow(3, 3)
