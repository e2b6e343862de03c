"""Table-driven tests of the pure rebalancing policy over literal offers and fleets."""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from ray_multicloud.policy.deadline import ON_DEMAND, WAIT, Choice, JobView, Memory, SpotOption, spot
from ray_multicloud.policy.place import describe_offer
from ray_multicloud.policy.rebalance import (
    DailyWindow,
    JobProgress,
    MovePlan,
    RebalanceConfig,
    Window,
    idle_step,
    move_cost,
    node_view,
    plan,
)
from ray_multicloud.types import (
    CapacityType,
    FleetNode,
    InstanceId,
    NodeState,
    Offer,
    OfferId,
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
    got = plan(
        fleet,
        offers,
        {pool.name: pool},
        now=now,
        config=config,
        last_moved={InstanceId(k): v for k, v in (last_moved or {}).items()},
    ).moves
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
    [move] = plan(
        [node("a", AWS_1A)], [AWS_1A, AWS_1B], {"t4": POOL}, now=NOW, config=BASE, last_moved={}
    ).moves
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
    """A job submitted 5 h ago with ``done`` hours of work (all checkpointed, 30-minute checkpoints)
    and the given slack before the restart: deadline - now - (work_total - checkpointed).

    With ``BASE`` (a 0.05 h restart, 1-minute ticks) the policy's ``ondemand_slack`` is
    ``slack_hours - 0.05`` and the deadline is ``10 + slack_hours`` h after submission.
    """
    return JobProgress(
        submitted_at=NOW - 5 * 3600,
        deadline_at=NOW + (work_total - done + slack_hours) * 3600,
        work_total_hours=work_total,
        work_done_hours=done,
        checkpointed_hours=done,
        checkpoint_hours=0.5,
    )


def job_plan(
    fleet: Sequence[FleetNode],
    offers: Sequence[Offer],
    pool: PoolSpec = POOL_ANY,
    *,
    config: RebalanceConfig,
    now: float = NOW,
    memories: Mapping[str, Memory] | None = None,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> MovePlan:
    return plan(
        fleet,
        offers,
        {pool.name: pool},
        now=now,
        config=config,
        last_moved={},
        memories=memories,
        cooldowns=cooldowns,
    )


# Zones of POOL_ANY over [AWS_1A, AWS_1B, AZ_OD], in offer id order: us-east-1a, us-east-1b.
UP_4H = Memory(up_since=(4.0, 4.0))  # both spot zones up since 1 h before NOW (elapsed 5 h)


@pytest.mark.parametrize(
    ("case", "fleet", "slack", "memory", "expected"),
    [
        # slack 0.03 - 0.05 < 0: one more tick on spot and a preemption would miss the deadline, so
        # on-demand now, though the node launched 1 minute ago (no hysteresis for deadline moves).
        (
            "spot, slack too low",
            [node("a", AWS_1A, launched=NOW - 60)],
            0.03,
            Memory(),
            [("a", AZ_OD.offer_id)],
        ),
        # Plenty of slack, us-east-1b 0.30 $/h cheaper over 5 h of work (1.50 > 2 x a 0.01 restart), but
        # first seen up just now (< move_min_uptime_hours 0.5): keep.
        ("spot, cheaper zone just seen", [node("a", AWS_1A)], 10.0, Memory(), []),
        # ... up for an hour: move.
        ("spot, cheaper zone up 1 h", [node("a", AWS_1A)], 10.0, UP_4H, [("a", AWS_1B.offer_id)]),
        # On on-demand with slack 0.45 h: a spot run (0.05 h restart + a 0.5 h segment) would be cut
        # by the guard before its first checkpoint (0.45 - 0.05 - 0.5 + 1/60 < 0): stay.
        ("on-demand, thin slack", [node("a", AZ_OD)], 0.5, Memory(), []),
        # Slack 9.95 h: back to the cheapest spot zone, even 1 minute after launch.
        ("on-demand, rebuilt slack", [node("a", AZ_OD)], 10.0, Memory(), [("a", AWS_1B.offer_id)]),
        (
            "on-demand, rebuilt slack, fresh node",
            [node("a", AZ_OD, launched=NOW - 60)],
            10.0,
            Memory(),
            [("a", AWS_1B.offer_id)],
        ),
        # Already on the cheapest spot zone with plenty of slack: keep.
        ("spot, cheapest", [node("a", AWS_1B)], 10.0, UP_4H, []),
    ],
)
def test_deadline_moves(
    case: str, fleet: list[FleetNode], slack: float, memory: Memory, expected: list[tuple[str, str]]
) -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=slack)})
    answer = job_plan(fleet, [AWS_1A, AWS_1B, AZ_OD], config=config, memories={"t4": memory})
    assert [(m.instance_id, m.to_offer.offer_id) for m in answer.moves] == expected, case
    for move in answer.moves:
        assert move.reasons[0].startswith("deadline move (multicloud)")


def test_job_pool_gets_no_price_moves() -> None:
    # The same node and offers without a job: a price move (see the table above); with a job, the
    # policy alone decides, and a zone first seen just now is not yet worth moving to.
    config = replace(BASE, jobs={"t4": job(slack_hours=10.0)})
    answer = job_plan([node("a", AWS_1A)], [AWS_1A, AWS_1B], config=config)
    assert answer.moves == ()
    assert answer.notes == (
        f"a: deadline policy multicloud: keep ({AWS_1A.offer_id} spot running, slack 9.95h)",
    )


def test_memory_is_threaded_through_plan() -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=10.0)})
    fleet = [node("a", AWS_1A)]
    first = job_plan(fleet, [AWS_1A, AWS_1B, AZ_OD], config=config)
    assert first.moves == ()
    # Both spot zones seen available at elapsed 5 h.
    assert first.memories == {"t4": Memory(up_since=(5.0, 5.0))}
    # Half an hour later (the job's figures unchanged), us-east-1b has been up move_min_uptime_hours.
    second = job_plan(fleet, [AWS_1A, AWS_1B, AZ_OD], config=config, now=NOW + 1800, memories=first.memories)
    assert [m.to_offer for m in second.moves] == [AWS_1B]
    # A cooling-down zone is unavailable: it restarts its uptime and is not a target.
    cooled = job_plan(
        fleet,
        [AWS_1A, AWS_1B, AZ_OD],
        config=config,
        now=NOW + 1800,
        memories=first.memories,
        cooldowns={AWS_1B.offer_id: NOW + 3600},
    )
    assert cooled.moves == ()
    assert cooled.memories["t4"].up_since == (5.0, math.inf)


def test_other_pools_memories_pass_through() -> None:
    other = Memory(home_zone="x")
    answer = job_plan(
        [], [AWS_1A], config=replace(BASE, jobs={"t4": job(slack_hours=1)}), memories={"p": other}
    )
    assert answer.memories == {"p": other}


def test_deadline_policy_is_chosen_by_name() -> None:
    # The "ondemand" policy moves a spot node to on-demand whatever the slack.
    config = replace(BASE, jobs={"t4": job(slack_hours=10.0)}, deadline_policy="ondemand")
    answer = job_plan([node("a", AWS_1A)], [AWS_1A, AWS_1B, AZ_OD], config=config)
    assert [m.to_offer for m in answer.moves] == [AZ_OD]
    assert answer.moves[0].reasons[:2] == (
        f"deadline move (ondemand): {describe_offer(AWS_1A)} -> {describe_offer(AZ_OD)}",
        "on-demand only",
    )


def test_deadline_policy_must_exist() -> None:
    with pytest.raises(ValueError, match="eager-next-region, greedy, multicloud, ondemand, uniform-progress"):
        RebalanceConfig(deadline_policy="cheapest")


def test_finished_job_holds_nothing_but_is_not_moved() -> None:
    done = replace(job(slack_hours=10.0), work_done_hours=10.0, checkpointed_hours=10.0)
    answer = job_plan([node("a", AWS_1A)], [AWS_1A, AWS_1B, AZ_OD], config=replace(BASE, jobs={"t4": done}))
    assert answer.moves == ()
    assert answer.notes == (
        "a: deadline policy multicloud would hold nothing (job finished); "
        "a running node is not moved for that",
    )


def test_deadline_move_overrides_blackout_unless_told_not_to() -> None:
    fleet = [node("a", AWS_1A)]
    blackout = (Window(NOW - 60, NOW + 60),)
    config = replace(BASE, jobs={"t4": job(slack_hours=0.03)}, blackouts=blackout)
    assert moves_of(fleet, [AWS_1A, AZ_OD], POOL_ANY, config=config) == [("a", AZ_OD.offer_id)]
    strict = replace(config, deadline_overrides_blackout=False)
    answer = job_plan(fleet, [AWS_1A, AZ_OD], config=strict)
    assert answer.moves == ()
    assert any("blocked by blackout" in n for n in answer.notes), answer.notes


def test_policy_move_onto_spot_waits_out_a_blackout() -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=10.0)}, blackouts=(Window(NOW - 60, NOW + 60),))
    answer = job_plan([node("a", AZ_OD)], [AWS_1A, AWS_1B, AZ_OD], config=config)
    assert answer.moves == ()
    assert any(f"asks for {AWS_1B.offer_id}" in n and "held by blackout" in n for n in answer.notes)


def test_deadline_at_risk_in_spot_only_pool_is_reported() -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=0.03)})
    answer = plan([node("a", AWS_1A)], [AWS_1A, AZ_OD], {"t4": POOL}, now=NOW, config=config, last_moved={})
    assert answer.moves == ()
    assert any("admits no on-demand offer; add 'on-demand' to its capacity_types" in n for n in answer.notes)


def test_cooling_ondemand_offer_is_not_a_target() -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=0.03)})
    answer = job_plan(
        [node("a", AWS_1A)], [AWS_1A, AZ_OD], config=config, cooldowns={AZ_OD.offer_id: NOW + 1}
    )
    assert answer.moves == ()
    assert any("cooling down" in n for n in answer.notes)


def test_deadline_moves_go_before_price_moves() -> None:
    # One move per tick: the deadline move of pool t4 beats the price move of pool "p", whose node
    # id sorts first and whose net saving is larger.
    pool_p = replace(POOL, name="p")
    fleet = [node("z", AWS_1A), node("a", replace(AWS_1A, zone="us-east-1c", price_per_hour=0.9), pool="p")]
    config = replace(BASE, jobs={"t4": job(slack_hours=0.03)}, max_moves=1)
    offers = [AWS_1A, AWS_1B, AZ_OD, replace(AWS_1A, zone="us-east-1c", price_per_hour=0.9)]
    answer = plan(fleet, offers, {"t4": POOL_ANY, "p": pool_p}, now=NOW, config=config, last_moved={})
    assert [(m.instance_id, m.to_offer.offer_id) for m in answer.moves] == [("z", AZ_OD.offer_id)]
    assert "a: max_moves=1 reached this tick" in answer.notes


# --- idle_step: what a job with no running node starts --------------------------------------


@pytest.mark.parametrize(
    ("case", "slack", "offers", "pool", "cooldowns", "choice"),
    [
        # Spot available and safe: the cheapest zone.
        ("cheapest spot", 10.0, [AWS_1A, AWS_1B, AZ_OD], POOL_ANY, {}, spot(AWS_1B.offer_id)),
        # us-east-1b cooling down (a capacity error): the next one.
        (
            "cooling zone skipped",
            10.0,
            [AWS_1A, AWS_1B, AZ_OD],
            POOL_ANY,
            {AWS_1B.offer_id: NOW + 60},
            spot(AWS_1A.offer_id),
        ),
        # No spot anywhere; slack 9.95 h > kept max(1.5 x 0.55, 0.6 x 9.95 x 0.75, 0.25 x 5) = 4.48 h: wait.
        ("no spot, slack to wait", 10.0, [AWS_1A, AZ_OD], POOL_ANY, {AWS_1A.offer_id: NOW + 60}, WAIT),
        # Slack 0.65 h < kept 0.825 h (1.5 reserves of a 0.05 h restart + a 0.5 h checkpoint; more
        # than 0.15 h per hour of the 5 h of work left, 0.75 h): on-demand.
        ("no spot, slack low", 0.7, [AWS_1A, AZ_OD], POOL_ANY, {AWS_1A.offer_id: NOW + 60}, ON_DEMAND),
        # Spot available but a run could not reach its checkpoint before the guard: on-demand.
        ("spot, slack too low for a run", 0.5, [AWS_1A, AWS_1B, AZ_OD], POOL_ANY, {}, ON_DEMAND),
        # The cooldown has expired: us-east-1b is available again.
        (
            "cooldown over",
            10.0,
            [AWS_1A, AWS_1B, AZ_OD],
            POOL_ANY,
            {AWS_1B.offer_id: NOW},
            spot(AWS_1B.offer_id),
        ),
    ],
)
def test_idle_step(
    case: str,
    slack: float,
    offers: list[Offer],
    pool: PoolSpec,
    cooldowns: Mapping[OfferId, float],
    choice: Choice,
) -> None:
    config = replace(BASE, jobs={"t4": job(slack_hours=slack)})
    step = idle_step(pool, offers, job(slack_hours=slack), config, Memory(), now=NOW, cooldowns=cooldowns)
    assert step.choice == choice, (case, step.reasons)


def test_idle_step_after_a_preemption_says_so() -> None:
    step = idle_step(
        POOL_ANY,
        [AWS_1A, AWS_1B, AZ_OD],
        job(slack_hours=10.0),
        BASE,
        Memory(),
        now=NOW,
        cooldowns={AWS_1A.offer_id: NOW + 60},
        preempted_offer=AWS_1A.offer_id,
    )
    assert step.choice == spot(AWS_1B.offer_id)
    assert step.reasons == (f"{AWS_1A.offer_id} preempted; cheapest available spot: {AWS_1B.offer_id}",)
    assert step.memory == Memory(up_since=(math.inf, 5.0), idle_since=5.0)  # idle since the preemption


def test_idle_step_in_a_spot_only_pool_says_what_to_change() -> None:
    step = idle_step(POOL, [AWS_1A, AZ_OD], job(slack_hours=0.03), BASE, Memory(), now=NOW, cooldowns={})
    assert step.choice == ON_DEMAND
    assert step.reasons[-1] == "pool 't4' admits no on-demand offer; add 'on-demand' to its capacity_types"


def test_plan_is_constructible_from_moves_and_notes() -> None:
    assert MovePlan((), ("x",)).memories == {}
    assert MovePlan(()).notes == ()


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


def test_node_view_is_built_from_live_inputs() -> None:
    # Submitted 5 h ago, deadline 10 + 2 h after submission, a 0.05 h restart, 1-minute ticks; the
    # node launched 1 minute ago still owes 0.05 - 1/60 h of restart; us-east-1b cools down.
    progress = job(slack_hours=2.0)
    view = node_view(
        node("a", AWS_1A, launched=NOW - 60),
        POOL_ANY,
        [AZ_OD, AWS_1B, AWS_1A],
        progress,
        BASE,
        now=NOW,
        cooldowns={AWS_1B.offer_id: NOW + 1},
    )
    assert view == JobView(
        elapsed_hours=5.0,
        work_done_hours=5.0,
        checkpointed_hours=5.0,
        work_total_hours=10.0,
        deadline_hours=12.0,
        restart_hours=0.05,
        checkpoint_hours=0.5,
        tick_hours=1 / 60,
        current=spot(AWS_1A.offer_id),
        overhead_left_hours=pytest.approx(0.05 - 1 / 60),  # type: ignore[arg-type]
        zones=(
            SpotOption(AWS_1A.offer_id, "us-east-1", True, 0.50),
            SpotOption(AWS_1B.offer_id, "us-east-1", False, 0.20),
        ),
        ondemand_price_per_hour=0.90,
    )


@pytest.mark.parametrize(
    ("fleet_offer", "offers", "expected"),
    [
        (AWS_1A, [AWS_1A, AZ_OD], 0.90),  # the on-demand offer a move would take
        (AWS_1A, [AWS_1A], 1.0),  # none: the spot offer's on-demand price
        (replace(AZ_OD, price_per_hour=1.5), [AZ_OD], 1.5),  # on on-demand: what the node pays
    ],
)
def test_node_view_ondemand_price(fleet_offer: Offer, offers: list[Offer], expected: float) -> None:
    view = node_view(node("a", fleet_offer), POOL_ANY, offers, job(slack_hours=1.0), BASE, now=NOW)
    assert view.ondemand_price_per_hour == expected
    assert view.overhead_left_hours == 0.0  # launched 2 h ago
