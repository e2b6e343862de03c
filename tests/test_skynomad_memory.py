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
