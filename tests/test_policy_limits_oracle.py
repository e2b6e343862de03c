"""The "oracle preemption warning" diagnostic of ``benchmarks/bench_policy_limits.py`` on traces small
enough to follow by hand.

Every case: ticks of 10 minutes, a periodic job of 2 h of work (12 ticks) checkpointing every 30 minutes
(3 ticks), no deadline; zone ``a`` at 1 USD/h, zone ``b`` at 2 USD/h and always available. The inner
policy is a stub, so the decisions can be followed: spot in the cheapest zone it is shown available,
kept while it is available; wait when none is. (The engine counts as a move only a change from one
node to another: starting from nothing, or after a preemption, is not one.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ray_multicloud.policy.deadline import WAIT, JobView, Kind, Memory, Step, spot
from ray_multicloud.sim import JobSpec, SimResult, simulate
from ray_multicloud.sim.traces import TraceSet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_policy_limits import OracleWarning, remaining_runs

TICK_S = 600.0


@dataclass(frozen=True)
class Cheapest:
    name: str = "cheapest"
    seen: list[JobView] = field(default_factory=list)  # every view it was asked with

    def decide(self, view: JobView, memory: Memory) -> Step:
        self.seen.append(view)
        if view.current.kind is Kind.SPOT:
            return Step(view.current, ("keep",), memory)
        up = [o for o in view.zones if o.available]
        if not up:
            return Step(WAIT, ("none up",), memory)
        return Step(spot(min(up, key=lambda o: o.price_per_hour).zone), ("cheapest",), memory)


def _traces(a_up_ticks: int, ticks: int = 30) -> TraceSet:
    counts = np.ones((2, ticks), dtype=np.int64)
    counts[0, a_up_ticks:] = 0
    prices = np.array([[1.0] * ticks, [2.0] * ticks])
    return TraceSet(("a", "b"), ("r", "r"), ("a.json", "b.json"), TICK_S, counts, prices, (True, True))


def _run(ts: TraceSet, restart_minutes: float, warned: bool, own_only: bool = False) -> SimResult:
    spec = JobSpec(2.0, None, 30.0, restart_minutes)
    policy: object = Cheapest()
    if warned:
        policy = OracleWarning(
            Cheapest(), remaining_runs(ts.available()), 0, TICK_S / 3600, own_only=own_only
        )
    return simulate(ts, spec, policy, ondemand_price=3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("own_only", [False, True])
def test_warned_job_leaves_at_its_checkpoint_and_loses_nothing(own_only: bool) -> None:
    # a is up for ticks 0-4, down from tick 5. Unwarned: a for ticks 0-4 (work 5 ticks), preempted at
    # tick 5 back to the checkpoint at 3 ticks: 2 ticks = 1/3 h lost; then b for the 9 ticks left
    # (ticks 5-13). Cost 5 ticks x 1 USD/h + 9 ticks x 2 USD/h = 5/6 + 3 = 23/6 USD.
    # Warned: at tick 3 (work 3 = a checkpoint) the next checkpoint needs 3 more ticks and a has 2
    # left, so it leaves for b at once: a for ticks 0-2 (0.5 USD), b for ticks 3-11 (3 USD), no loss.
    ts = _traces(5)
    plain, warned = _run(ts, 0.0, False), _run(ts, 0.0, True, own_only)
    assert (plain.preemptions, plain.moves) == (1, 0)
    assert plain.lost_work_hours == pytest.approx(1 / 3)
    assert plain.cost_usd == pytest.approx(23 / 6)
    assert plain.hours_elapsed == pytest.approx(14 / 6)
    assert (warned.preemptions, warned.moves) == (0, 1)
    assert warned.lost_work_hours == pytest.approx(0.0)
    assert warned.cost_usd == pytest.approx(3.5)
    assert warned.hours_elapsed == pytest.approx(12 / 6)


def test_no_warning_when_the_next_checkpoint_is_reached_in_time() -> None:
    # a is up for ticks 0-5: at tick 3 the next checkpoint (work 6) needs exactly the 3 ticks a has
    # left, so the warned job stays, as the unwarned one does; preempted at tick 6 with work 6, all
    # saved. Both: a for 6 ticks (1 USD) + b for 6 ticks (2 USD) = 3 USD, nothing lost.
    ts = _traces(6)
    for warned in (False, True):
        r = _run(ts, 0.0, warned)
        assert (r.preemptions, r.moves) == (1, 0)
        assert r.lost_work_hours == pytest.approx(0.0)
        assert r.cost_usd == pytest.approx(3.0)


def test_doomed_zone_is_not_started_restart_counted() -> None:
    # Restart 10 min = 1 tick. A fresh start needs 1 tick of restart + 3 of work to save anything.
    # a is up for ticks 0-2 only (3 ticks < 4): unwarned, a for ticks 0 (restart), 1, 2 (work 2),
    # preempted at tick 3 back to 0: 1/3 h lost; b: tick 3 restart, ticks 4-15 work. Cost 3 ticks x 1
    # + 13 ticks x 2 USD/h = 0.5 + 13/3 USD. Warned: a is never shown; b from tick 0: 13 ticks = 13/3.
    ts = _traces(3)
    plain, warned = _run(ts, 10.0, False), _run(ts, 10.0, True)
    assert plain.preemptions == 1
    assert plain.lost_work_hours == pytest.approx(1 / 3)
    assert plain.cost_usd == pytest.approx(0.5 + 13 / 3)
    assert (warned.preemptions, warned.moves) == (0, 0)
    assert warned.lost_work_hours == pytest.approx(0.0)
    assert warned.cost_usd == pytest.approx(13 / 3)


def test_zone_lasting_restart_plus_checkpoint_is_started() -> None:
    # Restart 1 tick, a up for ticks 0-3 (4 ticks = restart + one checkpoint interval): both start on
    # a, are preempted at tick 4 with work 3 = a checkpoint (nothing lost), and finish on b (tick 4
    # restart, ticks 5-13 work). Cost 4 ticks x 1 + 10 ticks x 2 USD/h = 4/6 + 20/6 = 4 USD.
    ts = _traces(4)
    for warned in (False, True):
        r = _run(ts, 10.0, warned)
        assert (r.preemptions, r.moves) == (1, 0)
        assert r.lost_work_hours == pytest.approx(0.0)
        assert r.cost_usd == pytest.approx(4.0)


def test_inner_policy_is_asked_as_if_preempted_at_the_warning() -> None:
    # Restart 5 min = half a tick, so checkpoints fall mid-tick. a is up for ticks 0-5. The fresh start
    # needs 0.5 + 3 = 3.5 ticks (a has 6): a is started. Work at the decision of tick t is t - 0.5; the
    # checkpoint at 3 ticks is saved during tick 3. At tick 4 (work 3.5) the next one (6) needs 2.5
    # ticks and a has 2: warned, the inner policy sees a preemption of a at 4 ticks = 2/3 h, its node
    # gone (WAIT, no restart left), its work rolled back to the checkpoint (0.5 h), a shown down.
    # Unwarned: a for ticks 0-5 (work 5.5), preempted at tick 6 back to 3: 2.5 ticks = 25 min lost;
    # b: 0.5 restart + 9 ticks of work. Cost 6 ticks x 1 + 9.5 ticks x 2 USD/h = 1 + 19/6 USD.
    # Warned: 0.5 tick (5 min) lost on the move, a for ticks 0-3 (4/6 USD), b 9.5 ticks (19/6 USD).
    ts = _traces(6)
    spec = JobSpec(2.0, None, 30.0, 5.0)
    plain = simulate(ts, spec, Cheapest(), ondemand_price=3.0)
    assert plain.lost_work_hours == pytest.approx(25 / 60)
    assert plain.cost_usd == pytest.approx(1 + 19 / 6)
    inner = Cheapest()
    policy = OracleWarning(inner, remaining_runs(ts.available()), 0, TICK_S / 3600)
    warned_run = simulate(ts, spec, policy, ondemand_price=3.0)  # type: ignore[arg-type]
    assert warned_run.lost_work_hours == pytest.approx(5 / 60)
    assert warned_run.cost_usd == pytest.approx(4 / 6 + 19 / 6)
    assert (warned_run.preemptions, warned_run.moves) == (0, 1)
    before, warned = inner.seen[3], inner.seen[4]
    assert (before.preempted, before.current, [o.available for o in before.zones]) == (
        False,
        spot("a"),
        [True, True],
    )
    assert warned.elapsed_hours == pytest.approx(4 / 6)
    assert (warned.preempted, warned.preempted_zone, warned.current) == (True, "a", WAIT)
    assert [o.available for o in warned.zones] == [False, True]
    assert warned.work_done_hours == pytest.approx(0.5)
    assert warned.checkpointed_hours == pytest.approx(0.5)
    assert warned.overhead_left_hours == 0.0
    # one tick later a is still hidden: it goes down before a job there could save again
    assert [o.available for o in inner.seen[5].zones] == [False, True]


def test_warned_of_its_own_zone_only() -> None:
    # The doomed-start case told only of the zone it runs in. Tick 0: a is shown, started (restart).
    # Tick 1: on a, restart done, work 0; the checkpoint at 3 needs 3 ticks, a has 2: warned, it
    # leaves for b (work 0, nothing lost; a move). b: tick 1 restart, ticks 2-13 work. Tick 2: a (up
    # until tick 3) stays hidden. Cost 1 tick x 1 + 13 ticks x 2 USD/h = 1/6 + 13/3 USD.
    ts = _traces(3)
    inner = Cheapest()
    policy = OracleWarning(inner, remaining_runs(ts.available()), 0, TICK_S / 3600, own_only=True)
    r = simulate(ts, JobSpec(2.0, None, 30.0, 10.0), policy, ondemand_price=3.0)  # type: ignore[arg-type]
    assert (r.preemptions, r.moves) == (0, 1)
    assert r.lost_work_hours == pytest.approx(0.0)
    assert r.cost_usd == pytest.approx(1 / 6 + 13 / 3)
    assert [o.available for o in inner.seen[0].zones] == [True, True]
    assert (inner.seen[1].preempted, [o.available for o in inner.seen[1].zones]) == (True, [False, True])
    assert (inner.seen[2].current, [o.available for o in inner.seen[2].zones]) == (spot("b"), [False, True])
