"""What ``SkyNomad`` remembers (its virtual instances, §3.4 / §A.3 of its paper) and its safety net's
exact ``Step``: the contracts a mutation run (CONTRIBUTING.md, "Mutation testing") found untested
after the rewrite. Expected values by hand in the comments."""

from __future__ import annotations

import math

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    SkyNomad,
    SpotOption,
    Step,
    VirtualInstance,
    _hazard_knots,
    _jump,
    spot,
)

INF = math.inf
A, B = "us-east-1a", "us-east-1b"


def zone(name: str, up: bool = True, price: float = 1.0) -> SpotOption:
    return SpotOption(name, name[:-1], up, price)


def view(t: float, *, current: Choice = WAIT, zones: tuple[SpotOption, ...] = (zone(A),), done: float = 4.0,
         total: float = 10.0, deadline: float = 20.0, restart: float = 0.2, tick: float = 0.1,
         preempted: str = "") -> JobView:
    return JobView(elapsed_hours=t, work_done_hours=done, checkpointed_hours=done, work_total_hours=total,
                   deadline_hours=deadline, restart_hours=restart, checkpoint_hours=0.1, tick_hours=tick,
                   current=current, overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=3.0,
                   preempted=bool(preempted), preempted_zone=preempted)


# --- the virtual instance ---------------------------------------------------------------------


def test_censor_records_a_right_censored_run() -> None:
    # up since 2 h, left at 5 h: a censored 3 h lifetime, a run (2, 5) that did not fail
    assert VirtualInstance(up_since=2.0).censor(5.0) == VirtualInstance(INF, (), (3.0,), ((2.0, 5.0, False),))
    assert VirtualInstance().censor(5.0) == VirtualInstance()  # not up: nothing to censor


def test_observed_failure_records_the_run() -> None:
    assert VirtualInstance(up_since=2.0).observe(5.0, False) == VirtualInstance(
        INF, (3.0,), (), ((2.0, 5.0, True),)
    )
    assert VirtualInstance(up_since=2.0).observe(2.5, False).failures == (0.5,)  # under an hour counts as is


def test_jump_is_zero_off_the_knots() -> None:
    knots = _hazard_knots((1.0, 3.0), ())  # h(1) = 1/2, h(3) = 1
    assert (_jump(knots, 1.0), _jump(knots, 3.0), _jump(knots, 2.0)) == (0.5, 1.0, 0.0)


def test_volatility_below_one_when_the_zone_fails_less_than_expected() -> None:
    # Runs (0, 2) and (2, 3) failed (lifetimes 2 and 1), up again since 3 h; now 7 h.
    # h(1) = 1/2 (2 at risk), h(2) = 1/1: H(1) = 0.5, H(2) = H(4) = 1.5.
    # Window from the failure at 2 h: both failures over h(2) + H(1) [run (2,3)] + H(4) [open run]
    #   = 1 + 0.5 + 1.5 = 3: 2/3. From the failure at 3 h: one over h(1) + H(4) = 2: 1/2.
    # Whole history: 2 over H(2) + H(1) + H(4) = 3.5: 0.571. gamma* = 2/3.
    inst = VirtualInstance(up_since=3.0, failures=(2.0, 1.0), runs=((0.0, 2.0, True), (2.0, 3.0, True)))
    assert abs(inst.volatility(7.0) - 2 / 3) < 1e-12


def test_volatility_counts_a_failure_of_lifetime_zero() -> None:
    # Runs (0, 3) and (3, 3) failed: lifetimes 3 and 0. h(0) = 1/2 (both at risk), h(3) = 1/1;
    # H(0) = 0.5, H(3) = 1.5. From the failure at 3 h (run (0,3)): both failures (they end at 3 h)
    # over h(3) + H(0) = 1.5: 4/3. From the 0-lifetime failure: both over h(0) + H(0) = 1: 2.
    # Whole history: 2 over H(3) + H(0) = 2: 1. gamma* = 2.
    inst = VirtualInstance(failures=(3.0, 0.0), runs=((0.0, 3.0, True), (3.0, 3.0, True)))
    assert abs(inst.volatility(4.0) - 2.0) < 1e-12


# --- SkyNomad.decide: what it observes, and its safety net ------------------------------------


def test_first_step_probes_and_watches_its_own_node() -> None:
    # First step: a probe round (probed_at -inf), A up: its virtual run starts now (t = 1).
    step = SkyNomad().decide(view(1.0, current=spot(A)), Memory())
    assert step.memory.virtual == (VirtualInstance(up_since=1.0),)
    assert step.memory.probed_at == 1.0


def test_own_node_watched_between_probes() -> None:
    # Probed at 1 h (A was down then); at 1.5 h, no probe due, its own node in A runs: observed up.
    m = Memory(up_since=(1.5,), virtual=(VirtualInstance(),), probed_at=1.0)
    step = SkyNomad().decide(view(1.5, current=spot(A)), m)
    assert step.memory.virtual == (VirtualInstance(up_since=1.5),)
    assert step.memory.probed_at == 1.0


def test_own_preemption_is_an_observed_failure() -> None:
    # A up since 1 h in its virtual instance; preempted at 1.5 h (A down), no probe due: a 0.5 h failure.
    m = Memory(up_since=(1.0,), virtual=(VirtualInstance(up_since=1.0),), probed_at=1.0)
    step = SkyNomad().decide(view(1.5, zones=(zone(A, up=False),), preempted=A), m)
    assert step.memory.virtual[0].failures == (0.5,)
    assert step.memory.virtual[0].runs == ((1.0, 1.5, True),)


def test_preemption_in_a_zone_no_longer_listed_is_ignored() -> None:
    m = Memory(up_since=(1.0,), virtual=(VirtualInstance(up_since=1.0),), probed_at=1.0)
    step = SkyNomad().decide(view(1.5, preempted="us-west-2a"), m)
    assert step.memory.virtual == (VirtualInstance(up_since=1.0),)


def test_safety_net_step_exactly() -> None:
    # Idle at t = 14.5 with 4 h done of 10 h, D = 20.2, d = 0.2: 6.2 h needed > 5.7 - 0.1 left after
    # a tick: on-demand until completion. First step: the probe round sees A up (virtual run from now).
    v = view(14.5, deadline=20.2)
    assert SkyNomad().decide(v, Memory()) == Step(
        ON_DEMAND,
        ("safety net: idle and time left < work left + d: on-demand until completion",),
        Memory(up_since=(14.5,), locked_ondemand=True, virtual=(VirtualInstance(up_since=14.5),),
               probed_at=14.5),
    )


def test_safety_net_needs_only_one_restart() -> None:
    # d = 0.5 h, 0.25 h ticks, 6 h of work left, 6.875 h to the deadline: one restart still fits
    # after a tick (6.5 <= 6.625): not the net (which would lock on-demand), though two would not.
    v = view(10.0, deadline=16.875, restart=0.5, tick=0.25, zones=(zone(A, up=False),))
    step = SkyNomad().decide(v, Memory())
    assert not step.memory.locked_ondemand
    assert not step.reasons[0].startswith("safety net")
    assert step.choice in (WAIT, ON_DEMAND)


# --- SkyNomad.decide: utilities, ties and the reason's figures --------------------------------
# At t = 3.5 h with 1.75 h of 10 h done, due at 20 h: theta = 8.25 / 16.5 = 0.5, theta~ = 0.5:
# V = 3 x 0.5 / 0.5 = 3.00 USD/h (eq. 8); on-demand's utility V - C_od = 0. d = 0.2 h.


def v3(**kw: object) -> JobView:
    return view(3.5, done=1.75, **kw)  # type: ignore[arg-type]


def why(v: float, choice: str, score: float, tried: int) -> tuple[str]:
    return (f"V={v:.2f} USD/h of progress: {choice} has the highest utility that launched "
            f"({score:.2f}; {tried} spot launch(es) tried)",)


# Zone A's virtual instance: failed runs (0, 2) and (2, 3), up again since 3 h. At 3.5 h (window from
# the failure at 3 h: one failure over h(1) = 1/2: 2; from 2 h: two over h(2) + H(1) = 1.5: 4/3;
# whole: 2 / 2 = 1) gamma* = 2. Age 0.5, samples 1 and 2 h: S = 1 on [0.5, 1), e^(-2 x 1/2) on [1, 2):
# L = 0.5 + e^-1 = 0.868 h (with gamma 1: 0.5 + e^-0.5 = 1.107 h; from age 0: 1 + e^-1).
VA = VirtualInstance(up_since=3.0, failures=(2.0, 1.0), runs=((0.0, 2.0, True), (2.0, 3.0, True)))
MA = Memory(up_since=(3.0,), virtual=(VA,), probed_at=3.0)


def spot_u(life: float, price: float = 1.0, cold: float = 0.2, v: float = 3.0) -> float:
    return v * (life - cold) / life - price


def test_spot_utility_uses_the_lifetime_at_the_zones_age_and_volatility() -> None:
    life = 0.5 + math.exp(-1)
    step = SkyNomad().decide(v3(), MA)
    assert step == Step(spot(A), why(3.0, f"{A} spot", spot_u(life), 1), MA)  # 1.31 > 0 + delta 1


def test_spot_utility_without_volatility() -> None:
    life = 0.5 + math.exp(-0.5)
    assert SkyNomad(volatility=False).decide(v3(), MA).reasons == why(3.0, f"{A} spot", spot_u(life), 1)


def test_launch_in_a_zone_last_seen_down_starts_its_run() -> None:
    # B's instance: one failure at 2 h, not up (age 0): L = 2 h; U = 3 x 1.8 / 2 - 1 = 1.70. The
    # launch succeeds: a virtual provisioning at 3.5 h.
    vb = VirtualInstance(failures=(2.0,))
    m = Memory(up_since=(3.0,), virtual=(vb,), probed_at=3.0)
    step = SkyNomad().decide(v3(zones=(zone(B),)), m)
    assert step == Step(spot(B), why(3.0, f"{B} spot", 1.7, 1),
                        Memory(up_since=(3.0,), virtual=(VirtualInstance(3.5, (2.0,)),), probed_at=3.0))


def test_running_spot_scores_itself_without_egress_or_cold_start() -> None:
    # On its own node in A (no overhead left): U = V - 1 = 2.00; nothing beats 2 + delta: kept
    step = SkyNomad().decide(v3(current=spot(A)), MA)
    assert step == Step(spot(A), why(3.0, f"{A} spot", 2.0, 0), MA)


def test_leaves_on_demand_for_spot() -> None:
    # On on-demand (U = V - C_od = 0): A's spot without a known lifetime, U = 3 - 1 = 2 > 0 + 1
    m = Memory(up_since=(3.0,), virtual=(VirtualInstance(up_since=3.0),), probed_at=3.0)
    assert SkyNomad().decide(v3(current=ON_DEMAND), m).choice == spot(A)


def test_node_gone_and_nothing_better_waits() -> None:
    # The node's zone (A) is down and not flagged preempted: A is not a candidate (its own zone), idle
    # and on-demand (0) do not beat 0 + delta: idle, 0 launches tried.
    m = Memory(up_since=(INF,), virtual=(VirtualInstance(),), probed_at=3.0)
    step = SkyNomad().decide(v3(current=spot(A), zones=(zone(A, up=False),)), m)
    assert step == Step(WAIT, why(3.0, "wait", 0.0, 0), m)


def test_node_in_an_unlisted_zone_counts_as_gone() -> None:
    # V at t = 5 with 5 of 10 h done, due at 20: 3 x (5/15) / 1 = 1.00; A: U = 1 - 1 = 0: idle
    m = Memory(up_since=(3.0,), virtual=(VirtualInstance(up_since=3.0),), probed_at=4.0)
    step = SkyNomad().decide(view(5.0, done=5.0, current=spot("us-west-2a")), m)
    assert step == Step(WAIT, why(1.0, "wait", 0.0, 0), m)


def test_idle_job_behind_schedule_takes_on_demand() -> None:
    # t = 5, 2.5 of 10 h done, due at 15: theta = 7.5 / 10, theta~ = 0.5: V = 4.50; on-demand 1.50 > 1.
    # A (down, U = 4.5 - 1 = 3.5) ranks first and is tried (availability is known only by trying).
    m = Memory(up_since=(INF,), virtual=(VirtualInstance(),), probed_at=4.0)
    step = SkyNomad().decide(view(5.0, done=2.5, deadline=15.0, zones=(zone(A, up=False),)), m)
    assert step == Step(ON_DEMAND, why(4.5, "on-demand", 1.5, 1), m)


def test_on_demand_before_spot_on_a_tie() -> None:
    # As above, A up at the on-demand price (no known lifetime): U = 4.5 - 3 = 1.5 = on-demand's:
    # the tie goes to on-demand, no launch tried.
    m = Memory(up_since=(4.0,), virtual=(VirtualInstance(up_since=4.0),), probed_at=4.0)
    step = SkyNomad().decide(view(5.0, done=2.5, deadline=15.0, zones=(zone(A, price=3.0),)), m)
    assert step == Step(ON_DEMAND, why(4.5, "on-demand", 1.5, 0), m)
