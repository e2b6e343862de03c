"""Small contracts of ``policy.deadline`` that mutation testing (mutmut, CONTRIBUTING.md) found
untested: a choice's text, a finished job's answer, and ``checkpoint_after_tick`` (the
controller's question "what would a preemption at the end of this tick roll the job back to?").
Expected values are computed by hand in the comments."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    EagerNextRegion,
    GreedySingleZone,
    JobView,
    Memory,
    OnDemandOnly,
    SpotOption,
    Step,
    UniformProgress,
    UniformProgressEager,
    checkpoint_after_tick,
    _uniform_slack,
    free_wait_patience,
    region_of,
    spot,
)


def view(*, work: float = 0.0, saved: float = 0.0, total: float = 4.0, over: float = 0.0,
         current: Choice = WAIT, tick: float = 0.5, ckpt: float = 1.0) -> JobView:
    return JobView(
        elapsed_hours=1.0, work_done_hours=work, checkpointed_hours=saved, work_total_hours=total,
        deadline_hours=10.0, restart_hours=0.25, checkpoint_hours=ckpt, tick_hours=tick, current=current,
        overhead_left_hours=over, zones=(SpotOption("us-east-1a", "us-east-1", True, 1.0),),
        ondemand_price_per_hour=3.0,
    )


def test_a_choice_reads_as_its_zone_or_kind() -> None:
    assert (str(spot("us-east-1a")), str(ON_DEMAND), str(WAIT)) == ("us-east-1a spot", "on-demand", "wait")


@pytest.mark.parametrize("policy", [GreedySingleZone(), UniformProgressEager()], ids=lambda p: p.name)
def test_a_finished_job_holds_nothing(policy: GreedySingleZone | UniformProgressEager) -> None:
    step = policy.decide(view(work=4.0, saved=4.0, current=spot("us-east-1a")), Memory())
    assert (step.choice, step.reasons, step.memory) == (WAIT, ("job finished",), Memory())


def test_up_eager_keeps_its_configured_home_zone() -> None:
    # Two zones up; us-east-1a is cheaper, but the home zone is configured as us-east-1b.
    zones = (SpotOption("us-east-1a", "us-east-1", True, 1.0),
             SpotOption("us-east-1b", "us-east-1", True, 2.0))
    v = replace(view(), zones=zones)
    step = UniformProgressEager(home_zone="us-east-1b").decide(v, Memory())
    assert step.choice == spot("us-east-1b")
    assert step.memory.home_zone == "us-east-1b"


@pytest.mark.parametrize(
    ("spare", "share", "rates", "expected"),
    [
        # the docstring's example: 7.9 h spare, lowest rate 0.15/h over 40 h of work left: N = 6
        (7.9, 1.0, (0.15, None, 0.3), 7.9 / 7),
        # under an hour of spare slack still earns a wait: 2 * 0.5 / (1 + 0) with no rate known
        (0.5, 2.0, (None,), 1.0),
        (0.0, 1.0, (0.1,), 0.0),
        (-1.0, 1.0, (0.1,), 0.0),
        (3.0, 0.0, (0.1,), 0.0),
    ],
)
def test_free_wait_patience(
    spare: float, share: float, rates: tuple[float | None, ...], expected: float
) -> None:
    home = [SpotOption(f"us-east-1{chr(97 + i)}", "us-east-1", False, 1.0, r) for i, r in enumerate(rates)]
    v = view(total=40.0)  # 40 h of work left
    assert free_wait_patience(v, home, spare=spare, share=share) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kw", "keep", "expected"),
    [
        # a new node saves nothing in its first tick (it restarts first): the checkpoint stays
        ({"work": 1.8, "saved": 1.0}, False, 1.0),
        # kept, 0.5 h of work on top of 0.8 h since the checkpoint reaches the 1 h interval: 2.0
        ({"work": 1.8, "saved": 1.0}, True, 2.0),
        # kept, 0.3 h since + 0.5 h = 0.8 h: no new checkpoint
        ({"work": 1.3, "saved": 1.0}, True, 1.0),
        # exactly at the interval (0.5 + 0.5 = 1.0): a checkpoint lands
        ({"work": 1.5, "saved": 1.0}, True, 2.0),
        # still restarting for the whole tick (0.5 h of overhead left): no work, no checkpoint
        ({"work": 1.8, "saved": 1.0, "over": 0.5}, True, 1.0),
        # 0.2 h of restart left: 0.3 h of work, 0.8 + 0.3 >= 1: a checkpoint
        ({"work": 1.8, "saved": 1.0, "over": 0.2}, True, 2.0),
        # the next checkpoint is at most the job's end (total 1.9 h: min(1.9, 2.0))
        ({"work": 1.8, "saved": 1.0, "total": 1.9}, True, 1.9),
    ],
)
def test_checkpoint_after_tick(kw: dict[str, float], keep: bool, expected: float) -> None:
    assert checkpoint_after_tick(view(**kw), keep=keep) == pytest.approx(expected)  # type: ignore[arg-type]


# --- eager-next-region and on-demand, every branch as an exact Step (mutmut survivors) -----------

MEM = Memory(home_zone="kept")  # a memory the policies must hand back untouched


def zview(zones: tuple[SpotOption, ...], *, current: Choice = WAIT, preempted: str = "",
          work: float = 0.0) -> JobView:
    return replace(view(work=work, saved=work, current=current), zones=zones,
                   preempted=bool(preempted), preempted_zone=preempted)


@pytest.mark.parametrize(
    ("zones", "current", "preempted", "fallback", "expected"),
    [
        # running on-demand: kept
        ((), ON_DEMAND, "", True, Step(ON_DEMAND, ("on-demand is never preempted: keep it",), MEM)),
        # running spot: kept
        ((SpotOption("z1", "r1", True, 1.0),), spot("z1"), "", True,
         Step(spot("z1"), ("z1 spot running",), MEM)),
        # preempted in r1 (the options' region, not the name's): z2 in r1 is cheaper, z3 in r2 wins
        ((SpotOption("z1", "r1", False, 1.0), SpotOption("z2", "r1", True, 0.5),
          SpotOption("z3", "r2", True, 0.9)),
         WAIT, "z1", True, Step(spot("z3"), ("z1 preempted: next region, z3 spot",), MEM)),
        # preempted, nothing elsewhere: any available location
        ((SpotOption("z1", "r1", False, 1.0), SpotOption("z2", "r1", True, 0.5)),
         WAIT, "z1", True, Step(spot("z2"), ("cheapest available spot: z2",), MEM)),
        # no spot anywhere: on-demand fallback, or wait without it
        ((SpotOption("z1", "r1", False, 1.0),), WAIT, "", True,
         Step(ON_DEMAND, ("no spot location launches: on-demand fallback",), MEM)),
        ((SpotOption("z1", "r1", False, 1.0),), WAIT, "", False,
         Step(WAIT, ("no spot location launches: retry later",), MEM)),
    ],
    ids=["on-demand", "spot", "next-region", "same-region", "fallback", "no-fallback"],
)
def test_eager_next_region_steps(zones: tuple[SpotOption, ...], current: Choice, preempted: str,
                                 fallback: bool, expected: Step) -> None:
    v = zview(zones, current=current, preempted=preempted)
    step = EagerNextRegion(ondemand_fallback=fallback).decide(v, MEM)
    assert step == expected


@pytest.mark.parametrize("policy", [EagerNextRegion(), OnDemandOnly()], ids=lambda p: p.name)
def test_a_finished_job_holds_nothing_and_keeps_memory(policy: EagerNextRegion | OnDemandOnly) -> None:
    step = policy.decide(zview((SpotOption("z1", "r1", True, 1.0),), work=4.0), MEM)
    assert step == Step(WAIT, ("job finished",), MEM)


# --- helpers of multicloud and skynomad (mutmut survivors) --------------------------------------


@pytest.mark.parametrize(
    ("rate", "egress", "expected"),
    [
        (0.5, 1.0, 2.0),  # egress and a rate: 1 / 0.5 = 2 h, under the 4 h of work left
        (0.1, 1.0, 4.0),  # 1 / 0.1 = 10 h: the work left, 4 h
        (None, 1.0, 4.0),  # no rate known: the work left
        (0.0, 1.0, 4.0),  # never interrupted: the work left
        (0.5, 0.0, 4.0),  # no egress: the work left (the rule the parameters were tuned with)
    ],
)
def test_stay_hours(rate: float | None, egress: float, expected: float) -> None:
    from ray_multicloud.policy.deadline import _stay_hours

    o = SpotOption("z1", "r1", True, 1.0, rate, egress)
    assert _stay_hours(view(total=4.0), o) == pytest.approx(expected)


def test_up_for() -> None:
    from ray_multicloud.policy.deadline import _up_for

    zones = (SpotOption("z1", "r1", True, 1.0), SpotOption("z2", "r1", True, 1.0))
    v = replace(view(), zones=zones)  # now t = 1.0
    assert _up_for(v, Memory(up_since=(0.25, 1.0)), "z1") == pytest.approx(0.75)
    assert _up_for(v, Memory(up_since=(0.25,)), "z2") == 0.0  # no record for z2
    assert _up_for(v, Memory(up_since=(0.25, 1.0)), "z9") == 0.0  # unknown zone


@pytest.mark.parametrize(
    ("t", "p", "deadline", "expected"),
    [
        (0.0, 0.0, 10.0, 3.0),  # at the start: C_od
        (1.0, 1.0, None, 3.0),  # no deadline: C_od
        (1.0, 0.0, 10.0, 3000.0),  # no progress yet after the start: the cap, 1000 C_od
        (10.0, 1.0, 10.0, 3000.0),  # no time left: the cap
        (1.0, 1.0, 10.0, 1.0),  # 3 * (3 / 9) / (1 / 1)
        (9.0, 0.001, 10.0, 3000.0),  # 3 * (3.999 / 1) / (0.001 / 9) = 107973: capped
    ],
)
def test_skynomad_progress_value(t: float, p: float, deadline: float | None, expected: float) -> None:
    from ray_multicloud.policy.deadline import _progress_value

    v = replace(view(work=p, saved=p, total=4.0), elapsed_hours=t, deadline_hours=deadline)
    assert _progress_value(v) == pytest.approx(expected)


# --- up-eager, every rule as an exact Step (mutmut survivors) ------------------------------------

HOME = Memory(home_zone="us-east-1a")


def uview(*, t: float = 2.0, p: float, saved: float | None = None, current: Choice = WAIT,
          up: bool = True,
          total: float = 4.0, deadline: float | None = 10.0, restart: float = 0.5) -> JobView:
    """Half-hour ticks, checkpoints every hour, home zone us-east-1a (up or down)."""
    return JobView(
        elapsed_hours=t, work_done_hours=p, checkpointed_hours=p if saved is None else saved,
        work_total_hours=total, deadline_hours=deadline, restart_hours=restart, checkpoint_hours=1.0,
        tick_hours=0.5, current=current, overhead_left_hours=0.0,
        zones=(SpotOption("us-east-1a", "us-east-1", up, 1.0),), ondemand_price_per_hour=3.0,
    )


LOCKED = replace(HOME, locked_ondemand=True)
A1 = spot("us-east-1a")


@pytest.mark.parametrize(
    ("v", "memory", "expected"),
    [
        # At t = 2 of a 10 h deadline, 4 h of work, d = 0.5: ep(t) = 0.4 t: ep(2) = 0.8, ep(t + 2d) = 1.2.
        # The net (7.5 h left after this tick vs at most 5 h needed) does not fire.
        (uview(p=1.0, current=ON_DEMAND), HOME,
         Step(ON_DEMAND, ("hysteresis: cp < ep(t+2d), stay on-demand",), HOME)),
        # cp 1.3 >= 1.2 (but < ep(t + 3d) = 1.4): back to spot
        (uview(p=1.3, current=ON_DEMAND), HOME, Step(A1, ("ahead of ep(t+2d): back to spot",), HOME)),
        (uview(p=1.3, current=ON_DEMAND, up=False), HOME,
         Step(WAIT, ("ahead of ep(t+2d), no spot: idle",), HOME)),
        (uview(p=1.3, saved=1.0, current=ON_DEMAND, up=False), HOME,
         Step(ON_DEMAND, ("ahead, no spot: on-demand until a checkpoint",), HOME)),
        (uview(p=1.0), HOME, Step(A1, ("us-east-1a spot available",), HOME)),
        # idle below the line (0.5 < 0.8): catch up; above it (1.0): wait
        (uview(p=0.5, up=False), HOME,
         Step(ON_DEMAND, ("idle and cp < ep(t): on-demand to catch up",), HOME)),
        (uview(p=1.0, up=False), HOME, Step(WAIT, ("idle, ahead of the uniform line: wait for spot",), HOME)),
        (uview(p=1.0), LOCKED, Step(ON_DEMAND, ("safety net: on-demand to the end",), LOCKED)),
        (uview(p=1.0, deadline=None), HOME, Step(A1, ("us-east-1a spot available",), HOME)),
        (uview(p=1.0, deadline=None, up=False), HOME, Step(WAIT, ("no deadline: wait for spot",), HOME)),
        # t = 6: 3.5 h left after this tick. Kept spot, 1.5 h done, saved 1.0: after the tick the
        # checkpoint is 2.0, so 4 - 2 + 2 * 0.5 = 3 h are needed: no net, spot kept.
        (uview(t=6.0, p=1.5, saved=1.0, current=A1), HOME, Step(A1, ("us-east-1a spot available",), HOME)),
        # idle with 1 h saved: 4 - 1 + 1 = 4 h > 3.5: the net fires and locks on-demand
        (uview(t=6.0, p=1.0), HOME,
         Step(ON_DEMAND, ("safety net: time left < work left + 2 restarts: on-demand to the end",), LOCKED)),
        # a 1 h deadline: ep(0) = 0, nothing is behind at the start: wait for spot
        (uview(t=0.0, p=0.0, up=False, total=0.1, deadline=1.0, restart=0.0), HOME,
         Step(WAIT, ("idle, ahead of the uniform line: wait for spot",), HOME)),
    ],
)
def test_up_eager_steps(v: JobView, memory: Memory, expected: Step) -> None:
    assert UniformProgressEager().decide(v, memory) == expected


# --- the paper's greedy and uniform progress, every rule as an exact Step (mutmut survivors) ------


@pytest.mark.parametrize(
    ("v", "memory", "expected"),
    [
        (uview(p=4.0), HOME, Step(WAIT, ("job finished",), HOME)),
        (uview(p=1.0), LOCKED, Step(ON_DEMAND, ("safety net: on-demand to the end",), LOCKED)),
        (uview(p=1.0), HOME, Step(A1, ("us-east-1a spot available",), HOME)),
        (uview(p=1.0, up=False), HOME, Step(WAIT, ("no spot: idle (Thrifty rule)",), HOME)),
        # t = 6.5 of 10: 3.5 h left, 3.0 after this tick. 1 h saved of 4, d 0.5: 3.5 > 3.0 -> the net.
        (uview(t=6.5, p=1.0, current=A1), HOME,
         Step(A1, ("safety net: keep the working spot node until preempted",), HOME)),
        (uview(t=6.5, p=0.9, restart=0.0), HOME, Step(A1, ("safety net, no restart cost: spot",), HOME)),
        (uview(t=6.5, p=1.0), HOME,
         Step(ON_DEMAND, ("safety net: time left < work left + a restart: on-demand to the end",), LOCKED)),
        # the same with the home zone down: no spot to keep, on-demand
        (uview(t=6.5, p=1.0, current=A1, up=False), HOME,
         Step(ON_DEMAND, ("safety net: time left < work left + a restart: on-demand to the end",), LOCKED)),
    ],
)
def test_greedy_steps(v: JobView, memory: Memory, expected: Step) -> None:
    from ray_multicloud.policy.deadline import Greedy

    assert Greedy().decide(v, memory) == expected


HYST = "hysteresis: on-demand until spot and c(t) >= C (t + 2d) / D"


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        (uview(p=4.0), (WAIT, "job finished")),
        (uview(p=1.0, deadline=None), (A1, "us-east-1a spot available")),
        (uview(p=1.0, deadline=None, up=False), (WAIT, "no deadline: wait for spot")),
        # t = 2, C/D = 0.4: the line is 0.8, with 2d (1 h) ahead 1.2.
        (uview(p=1.0), (A1, "us-east-1a spot available")),
        (uview(p=1.0, up=False), (WAIT, "no spot, not behind")),
        (uview(p=0.5, up=False), (ON_DEMAND, "no spot and c(t) < C t / D: on-demand")),
        (uview(p=1.0, current=ON_DEMAND), (ON_DEMAND, HYST)),  # 1.0 < 1.2
        (uview(p=1.3, current=ON_DEMAND, up=False), (ON_DEMAND, HYST)),  # no spot: stays
        (uview(p=1.3, current=ON_DEMAND), (A1, "us-east-1a spot available")),  # saved within a tick
        (uview(p=1.3, saved=0.5, current=ON_DEMAND),
         (ON_DEMAND, "on-demand until its next checkpoint (leaving now loses work)")),  # 0.8 h unsaved
        # the 2d net alone: d = 1, 7.25 h of work, 1 saved: 6.25 + 2 > 8 h left, but 6.25 + 1 <= 8 - 0.5
        (uview(p=1.0, total=7.25, restart=1.0),
         (ON_DEMAND, "safety net: time left < work left + 2d: on-demand")),
        # ... and not yet: 5.5 h of work left from the checkpoint + 2 = 7.5 <= 8 h left: spot
        (uview(p=1.0, total=6.5, restart=1.0), (A1, "us-east-1a spot available")),
        # the 1d net at t = 6.5 (3.0 h left after this tick; 3 h of work left from the checkpoint)
        (uview(t=6.5, p=1.0, current=A1), (A1, "safety net: keep the working spot node until preempted")),
        (uview(t=6.5, p=0.9, restart=0.0), (A1, "safety net, no restart cost: spot")),
        (uview(t=6.5, p=1.0), (ON_DEMAND, "safety net: time left < work left + d: on-demand")),
    ],
)
def test_uniform_progress_steps(v: JobView, expected: tuple[Choice, str]) -> None:
    from ray_multicloud.policy.deadline import UniformProgress

    choice, why = expected
    assert UniformProgress().decide(v, HOME) == Step(choice, (why,), HOME)


def test_uniform_slack_and_egress_note() -> None:
    from ray_multicloud.policy.deadline import _egress_note, _uniform_slack

    # deadline 10, 4 h of work, d 0.5: 5.5 h of slack at the start; at t = 2, 80% of it is ahead
    assert _uniform_slack(uview(p=1.0)) == pytest.approx(4.4)
    assert _uniform_slack(uview(p=1.0, deadline=None)) == 0.0
    assert _uniform_slack(uview(p=1.0, t=12.0)) == 0.0  # past the deadline
    assert _uniform_slack(uview(p=1.0, deadline=4.0)) == 0.0  # no slack at all (4 - 4 - 0.5 < 0)
    # a 1 h deadline for 0.25 h of work and a 0.5 h restart: 0.25 h of slack, all ahead at t = 0
    assert _uniform_slack(uview(t=0.0, p=0.0, total=0.25, deadline=1.0)) == pytest.approx(0.25)
    assert _egress_note(SpotOption("z", "r", True, 1.0, None, 0.0)) == ""
    note = _egress_note(SpotOption("z", "r", True, 1.0, None, 0.5))
    assert note == " (egress 0.50 USD to carry the checkpoint)"


def test_work_left_from_and_pick_home() -> None:
    from ray_multicloud.policy.deadline import _pick_home, _work_left_from

    # on-demand keeps its unsaved work (4 - 1.5); anything else restarts from the checkpoint (4 - 1)
    assert _work_left_from(uview(p=1.5, saved=1.0, current=ON_DEMAND)) == pytest.approx(2.5)
    assert _work_left_from(uview(p=1.5, saved=1.0, current=A1)) == pytest.approx(3.0)
    # the cheapest zone available now (a is cheaper but down), else nothing
    zones = (SpotOption("a", "r", False, 0.5), SpotOption("b", "r", True, 1.0),
             SpotOption("c", "r", True, 0.8))
    assert _pick_home(replace(uview(p=0.0), zones=zones)) == "c"
    assert _pick_home(replace(uview(p=0.0), zones=())) == ""


def test_a_single_zone_policy_remembers_its_home_zone() -> None:
    zones = (SpotOption("us-east-1a", "us-east-1", True, 1.0),
             SpotOption("us-east-1b", "us-east-1", True, 2.0))
    v = replace(uview(p=1.0), zones=zones)
    # first decision: the cheapest available zone becomes home, and the memory says so
    first = GreedySingleZone().decide(v, Memory())
    assert (first.choice, first.memory) == (spot("us-east-1a"), Memory(home_zone="us-east-1a"))
    # a remembered home is kept even when another zone is cheaper
    later = GreedySingleZone().decide(v, Memory(home_zone="us-east-1b"))
    assert (later.choice, later.memory) == (spot("us-east-1b"), Memory(home_zone="us-east-1b"))


def test_nets_never_fire_without_a_deadline_and_a_whole_tick_unsaved_is_not_within_a_tick() -> None:
    from ray_multicloud.policy.deadline import Greedy, UniformProgress

    no_deadline = Greedy().decide(uview(p=1.0, deadline=None), HOME)
    assert no_deadline == Step(A1, ("us-east-1a spot available",), HOME)
    # On on-demand, ahead (1.5 >= 1.2), spot up, exactly one tick (0.5 h) unsaved: leaving loses it
    step = UniformProgress().decide(uview(p=1.5, saved=1.0, current=ON_DEMAND), HOME)
    assert step.reasons == ("on-demand until its next checkpoint (leaving now loses work)",)


# --- the guards multicloud uses (mutmut survivors) -----------------------------------------------


def gview(*, work: float, saved: float, deadline: float, over: float = 0.0) -> JobView:
    """t = 1 h, half-hour ticks, 0.25 h restart, checkpoints every hour, 4 h of work."""
    v = view(work=work, saved=saved, over=over, current=spot("us-east-1a"))
    return replace(v, deadline_hours=deadline)


@pytest.mark.parametrize(
    ("kw", "keep", "safe"),
    [
        # deadline 1.6: 0.1 h left after this tick.
        # 3.6 h done, kept: 3.6 + 0.5 >= 4: finishes within the tick: safe
        ({"work": 3.6, "saved": 3.0, "deadline": 1.6}, True, True),
        # 3.5 h done, kept: 3.5 + 0.5 = 4.0: finishes exactly at the tick's end: safe
        ({"work": 3.5, "saved": 3.0, "deadline": 1.6}, True, True),
        # 3.5 h done, 0.1 h of restart left: 3.9 h by the tick's end, checkpoint still 3.0 (0.5 + 0.4
        # < 1): a rescue needs 0.25 + 1.0 > 0.1: unsafe
        ({"work": 3.5, "saved": 3.0, "deadline": 1.6, "over": 0.1}, True, False),
        # from the checkpoint (not kept): 1 h saved, 0.25 + 3 = 3.25 h needed; left after the tick:
        # deadline 4.75 -> 3.25: safe (exactly); 4.7 -> 3.2: unsafe
        ({"work": 1.5, "saved": 1.0, "deadline": 4.75}, False, True),
        ({"work": 1.5, "saved": 1.0, "deadline": 4.7}, False, False),
        # kept: 0.8 h since the checkpoint + 0.5 reaches the next one (2.0): 0.25 + 2 = 2.25 h needed,
        # 2.25 left after the tick with deadline 3.75: safe; from the old checkpoint it would not be
        ({"work": 1.8, "saved": 1.0, "deadline": 3.75}, True, True),
        ({"work": 1.8, "saved": 1.0, "deadline": 3.75}, False, False),
    ],
)
def test_off_ondemand_is_safe(kw: dict[str, float], keep: bool, safe: bool) -> None:
    from ray_multicloud.policy.deadline import off_ondemand_is_safe

    assert off_ondemand_is_safe(gview(**kw), keep=keep) is safe


@pytest.mark.parametrize(
    ("kw", "keep", "viable"),
    [
        # 1 h saved of 4: on-demand slack = deadline - 1 - (0.25 + 3); a 1 h segment; viable when
        # slack - start cost - 1 + 0.5 >= 0.
        ({"work": 1.0, "saved": 1.0, "deadline": 5.0}, False, True),  # slack 0.75: 0.75 - 0.25 - 0.5 = 0
        ({"work": 1.0, "saved": 1.0, "deadline": 4.9}, False, False),  # slack 0.65: -0.1
        ({"work": 1.0, "saved": 1.0, "deadline": 4.9}, True, True),  # kept: no restart: 0.15
        # 3.5 h saved: the segment is the 0.5 h left; slack 2.0 - 1 - 0.75 = 0.25: 0.25 - 0.5 + 0.5
        ({"work": 3.5, "saved": 3.5, "deadline": 2.0}, True, True),
    ],
)
def test_spot_run_viable(kw: dict[str, float], keep: bool, viable: bool) -> None:
    from ray_multicloud.policy.deadline import spot_run_viable

    assert spot_run_viable(gview(**kw), keep=keep) is viable


def test_work_left_near_the_end_and_on_demand_only() -> None:
    from ray_multicloud.policy.deadline import _work_left_from, remaining_work

    near = uview(p=3.5, saved=3.5, current=ON_DEMAND)  # 4 h of work
    assert (remaining_work(near), _work_left_from(near)) == (pytest.approx(0.5), pytest.approx(0.5))
    assert OnDemandOnly().decide(uview(p=1.0), MEM) == Step(ON_DEMAND, ("on-demand only",), MEM)


def test_best_spot_weighs_interruptions_and_egress() -> None:
    # Found by mutmut: multicloud's zone choice with its hazard weight was never tested (dropping
    # the weight, or the rate, survived). restart 0.25 h, checkpoints every 1 h: each interruption
    # costs 0.25 + 0.5 = 0.75 h. a: 1.00 USD/h, 0.8/h -> with w 0.5: 1 * (1 + 0.5 * 0.8 * 0.75) = 1.30;
    # b: 1.20 USD/h, 0.1/h -> 1.2 * (1 + 0.5 * 0.1 * 0.75) = 1.245: b. Without the weight: a.
    from ray_multicloud.policy.deadline import MultiCloud, _best_spot

    zones = (SpotOption("a", "r1", True, 1.0, 0.8), SpotOption("b", "r1", True, 1.2, 0.1))
    v = replace(uview(p=1.0, restart=0.25), zones=zones)
    assert _best_spot(v, Memory(), hazard_weight=0.5).zone == "b"  # type: ignore[union-attr]
    assert _best_spot(v, Memory()).zone == "a"  # type: ignore[union-attr]
    assert MultiCloud().hazard_weight == 0.5  # the default the policy passes on
    # egress 0.9 USD on a, 3 h of work left: + 0.3 USD/h: a 1.30 vs b 1.20 without the weight: b
    with_egress = replace(v, zones=(SpotOption("a", "r2", True, 1.0, None, 0.9),
                                    SpotOption("b", "r1", True, 1.2)))
    assert _best_spot(with_egress, Memory()).zone == "b"  # type: ignore[union-attr]
    # equal prices: the zone up longest (a up since t = 0.5, b since t = 0.2: b), or with newest
    # the one up the shortest (a)
    tie = replace(v, zones=(SpotOption("a", "r1", True, 1.0), SpotOption("b", "r1", True, 1.0)))
    ups = Memory(up_since=(0.5, 0.2))
    assert _best_spot(tie, ups).zone == "b"  # type: ignore[union-attr]
    assert _best_spot(tie, ups, newest=True).zone == "a"  # type: ignore[union-attr]
    # an exact tie everywhere: list order
    assert _best_spot(tie, Memory(up_since=(0.5, 0.5))).zone == "a"  # type: ignore[union-attr]


def test_eager_next_region_reads_a_vanished_zones_region_from_its_name() -> None:
    # The preempted zone is no longer listed: its region comes from its name (us-east-1a ->
    # us-east-1), so the cheaper us-east-1b is skipped for us-west-2a.
    zones = (SpotOption("us-east-1b", "us-east-1", True, 0.5),
             SpotOption("us-west-2a", "us-west-2", True, 0.9))
    step = EagerNextRegion().decide(zview(zones, preempted="us-east-1a"), MEM)
    assert step == Step(spot("us-west-2a"), ("us-east-1a preempted: next region, us-west-2a spot",), MEM)


def test_best_spot_hazard_uses_the_restart_the_checkpoint_and_the_weight() -> None:
    # a: 1.00 USD/h, 0.4/h; b: 1.16 USD/h, never interrupted. Each interruption costs restart 0.25
    # + half the 1 h checkpoint interval = 0.75 h. Weight 0.5: a = 1 * (1 + 0.5 * 0.4 * 0.75) =
    # 1.15 < 1.16: a. Weight 1: a = 1.30: b.
    from ray_multicloud.policy.deadline import _best_spot

    zones = (SpotOption("a", "r1", True, 1.0, 0.4), SpotOption("b", "r1", True, 1.16, 0.0))
    v = replace(uview(p=1.0, restart=0.25), zones=zones)
    assert _best_spot(v, Memory(), hazard_weight=0.5).zone == "a"  # type: ignore[union-attr]
    assert _best_spot(v, Memory(), hazard_weight=1.0).zone == "b"  # type: ignore[union-attr]


def test_uniform_progress_on_its_lines_and_its_home() -> None:
    from ray_multicloud.policy.deadline import UniformProgress

    up = UniformProgress()
    # exactly on the line (0.8 at t = 2, C/D = 0.4) is not behind: no spot -> wait
    assert up.decide(uview(p=0.8, up=False), HOME).reasons == ("no spot, not behind",)
    # exactly on the 2d line (1.2) from on-demand at a checkpoint: back to spot
    assert up.decide(uview(p=1.2, current=ON_DEMAND), HOME).choice == A1
    # a configured home zone is used (and remembered) over the cheaper one
    zones = (SpotOption("us-east-1a", "us-east-1", True, 1.0),
             SpotOption("us-east-1b", "us-east-1", True, 2.0))
    step = UniformProgress(home_zone="us-east-1b").decide(replace(uview(p=1.0), zones=zones), Memory())
    assert (step.choice, step.memory) == (spot("us-east-1b"), Memory(home_zone="us-east-1b"))


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("1a", "1"),  # digit + letter at the end, however short: drop the letter
        ("x-a", "x"),  # "-" + letter at the end, however short: drop both
        ("europe-west1-b", "europe-west1"),
        ("europe-west10", "europe-west10"),  # a region name (ends in digits) is its own region
        ("eu-1", "eu-1"),  # "-" + digit: looks like neither
    ],
)
def test_region_of_by_its_docstring(zone: str, region: str) -> None:
    assert region_of(zone) == region


def test_up_eager_net_counts_no_checkpoint_for_a_node_it_does_not_hold() -> None:
    # Idle, spot up, 1 h ticks and 1 h checkpoints, 8 h of work, t = 1, D = 10, d = 0.25: after
    # the tick 8 h are left, and the net needs 8 h of work (from the checkpoint at 0: a new node
    # saves nothing in its first tick, it pays the restart first) + 2d = 8.5 h > 8: on-demand, locked.
    v = view(total=8.0, tick=1.0, ckpt=1.0)
    step = UniformProgressEager().decide(v, Memory())
    assert step == Step(
        ON_DEMAND,
        ("safety net: time left < work left + 2 restarts: on-demand to the end",),
        Memory(home_zone="us-east-1a", locked_ondemand=True),
    )


def test_uniform_progress_short_deadline_is_a_deadline() -> None:
    # D = 1 h is a deadline like any other: at t = 0.2 with nothing done and no spot the job is
    # behind C t / D = 0.5 x 0.2 = 0.1 h: on-demand (the 1d net: 0.5 h needed <= 0.8 - 0.1 h)
    down = (SpotOption("us-east-1a", "us-east-1", False, 1.0),)
    v = replace(view(total=0.5, tick=0.1, ckpt=0.25), elapsed_hours=0.2, deadline_hours=1.0,
                restart_hours=0.0, zones=down)
    step = UniformProgress().decide(v, Memory())
    assert step == Step(ON_DEMAND, ("no spot and c(t) < C t / D: on-demand",), Memory(home_zone="us-east-1a"))


def test_a_zero_deadline_divides_nothing_by_zero() -> None:
    # D = 0 (an already-passed deadline): the rules that scale by t / D must not divide by it.
    # up-eager on on-demand: the uniform line ep(t + 2d) is infinite: it stays on on-demand.
    zero = replace(view(current=ON_DEMAND), deadline_hours=0.0)
    assert UniformProgressEager().decide(zero, Memory()).choice == ON_DEMAND
    # uniform-progress takes D = 0 as no deadline: spot when available
    assert UniformProgress().decide(replace(view(), deadline_hours=0.0), Memory()).choice == spot("us-east-1a")
    assert _uniform_slack(replace(view(), deadline_hours=0.0)) == 0.0
