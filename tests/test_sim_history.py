"""The zones' trailing availability history (``sim.history``, ``simulate(history_window_hours=...)``)
and the age model seeded from it (``policy.deadline.age_model(history=...)``).

Expected values are computed by hand in the comments; the hypothesis tests compare against a
tick-by-tick scan written here (an independent reference) and check that the history at a tick
reads nothing after it (no lookahead) and nothing before its window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.deadline import (
    WAIT,
    JobView,
    Memory,
    MultiCloud,
    SpotHistory,
    SpotOption,
    Step,
    age_model,
    dp_point,
    spot,
)
from ray_multicloud.policy.stochastic import AgeSolution
from ray_multicloud.sim import JobSpec, SimulationError, simulate
from ray_multicloud.sim.history import HistoryIndex, runs
from ray_multicloud.sim.traces import TraceSet

# --- runs and the history at a tick, by hand ------------------------------------------------------


def test_runs_by_hand() -> None:
    assert runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert runs([1, 1]) == [(0, 2)]
    assert runs([0, 0]) == []
    assert runs([]) == []


# zone 0: 0 1 1 0 1 1      zone 1: 1 1 0 0 0 1      no zone up: 0 0 0 1 0 0
GRID = [[0, 1, 1, 0, 1, 1], [1, 1, 0, 0, 0, 1]]


def test_history_at_tick_3_by_hand() -> None:
    """Ticks of 0.5 h, a 2 h window (4 ticks), the job started at tick 2, looking at tick 3: the
    window is ticks 0..3. Zone 0's run 1..2 is seen to begin (tick 0 down, in the window) and end
    (tick 3 down): a lifetime of 2 ticks = 1 h. Zone 1's run 0..1 begins at the window's first
    tick (start unseen): censored at 2 ticks = 1 h. Nothing is up at tick 3: an outage begun at 3
    (seen: tick 2 had zone 0 up), open, censored at 0, since elapsed (3 - 2) * 0.5 = 0.5 h."""
    h = HistoryIndex(GRID, 0.5, 2.0).at(3, origin=2)
    assert h == SpotHistory(window_hours=2.0, lifetimes=((1.0,), ()), lifetimes_censored=((), (1.0,)),
                            outages=(), outages_censored=(0.0,), born=(math.inf, math.inf), outage_since=0.5)


def test_history_at_tick_4_and_5_by_hand() -> None:
    """At tick 4 the window is 1..4: zone 0's run 1..2 now begins at the window's first tick
    (censored at 3 - 1 = 2 ticks, 1 h), its run from 4 is open (censored at 0, born (4 - 2) * 0.5 =
    1 h); zone 1's run 0..1 is cut at tick 1: censored at 2 - 1 = 1 tick; the outage at tick 3 was
    seen to begin and end: 1 tick = 0.5 h. At tick 5 (window 2..5) zone 1's run 0..1 has left the
    window; zone 0's run 1..2 is cut (3 - 2 = 1 tick), its run from 4 open for 1 tick; zone 1 came
    up at 5 (born 1.5 h, censored at 0)."""
    idx = HistoryIndex(GRID, 0.5, 2.0)
    assert idx.at(4, origin=2) == SpotHistory(
        window_hours=2.0, lifetimes=((), ()), lifetimes_censored=((1.0, 0.0), (0.5,)), outages=(0.5,),
        outages_censored=(), born=(1.0, math.inf), outage_since=math.inf)
    assert idx.at(5, origin=2) == SpotHistory(
        window_hours=2.0, lifetimes=((), ()), lifetimes_censored=((0.5, 0.5), (0.0,)), outages=(0.5,),
        outages_censored=(), born=(1.0, 1.5), outage_since=math.inf)


def test_history_window_is_whole_ticks_and_validated() -> None:
    """A 1.2 h window on 0.5 h ticks is 2 ticks (1 h); at tick 2 it is ticks 1..2 of zone
    ``0 1 1 1``: the run from 1 begins at the window's edge: born -inf (before the window), censored
    at 2 - 1 = 1 tick; an outage since before the window is -inf."""
    h = HistoryIndex([[0, 1, 1, 1]], 0.5, 1.2).at(2)
    assert HistoryIndex([[0, 0, 1]], 0.5, 1.5).at(2).born == (1.0,)  # origin 0 by default: tick 2 is 1 h
    assert h.window_hours == 1.0
    assert h.born == (-math.inf,)
    assert h.lifetimes_censored == ((0.5,),)
    assert HistoryIndex([[0, 0, 0, 1]], 0.5, 1.0).at(2).outage_since == -math.inf
    with pytest.raises(ValueError, match="window"):
        HistoryIndex(GRID, 0.5, 0.0)
    with pytest.raises(ValueError, match="tick"):
        HistoryIndex(GRID, 0.0, 1.0)


# --- an independent reference: scan the window tick by tick ------------------------------------


def scan(series: list[bool], lo: int, t: int) -> tuple[list[int], list[int], int | None]:
    """(lifetimes, censored, start of the run open at t or None; -1 when it began before lo) of one
    series over ticks lo..t, walking them one by one."""
    done: list[int] = []
    cut: list[int] = []
    start: int | None = None  # first up tick of the current run
    seen = False  # whether the down tick before it lies in the window
    for i in range(lo, t + 1):
        if series[i] and start is None:
            start, seen = i, i > lo
        elif not series[i] and start is not None:
            (done if seen else cut).append(i - start)
            start = None
    if start is not None:
        cut.append(t - start)
        return done, cut, (start if seen else -1)
    return done, cut, None


grids = st.integers(1, 3).flatmap(
    lambda z: st.integers(1, 30).flatmap(
        lambda n: st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=z, max_size=z)))


@settings(max_examples=300, deadline=None)
@given(grid=grids, data=st.data())
def test_history_matches_a_tick_by_tick_scan(grid: list[list[bool]], data: st.DataObject) -> None:
    n = len(grid[0])
    t = data.draw(st.integers(0, n - 1))
    win = data.draw(st.integers(1, n + 2))
    origin = data.draw(st.integers(0, n - 1))
    th = 0.25
    h = HistoryIndex(grid, th, win * th).at(t, origin)
    lo = max(0, t + 1 - win)
    lifetimes: list[list[float]] = []
    censored: list[list[float]] = []
    born: list[float] = []
    for row in grid:
        done, cut, start = scan(row, lo, t)
        lifetimes.append([x * th for x in done])
        censored.append([x * th for x in cut])
        born.append(math.inf if start is None else -math.inf if start < 0 else (start - origin) * th)
    outs, outs_cut, ostart = scan([not any(col) for col in zip(*grid, strict=True)], lo, t)
    assert len(h.lifetimes) == len(h.lifetimes_censored) == len(grid)
    for z in range(len(grid)):
        assert sorted(h.lifetimes[z]) == pytest.approx(sorted(lifetimes[z]))
        assert sorted(h.lifetimes_censored[z]) == pytest.approx(sorted(censored[z]))
    assert sorted(h.outages) == pytest.approx(sorted(x * th for x in outs))
    assert sorted(h.outages_censored) == pytest.approx(sorted(x * th for x in outs_cut))
    assert h.born == pytest.approx(tuple(born))
    since = math.inf if ostart is None else -math.inf if ostart < 0 else (ostart - origin) * th
    assert h.outage_since == since
    # every up tick of the window is in a sample, but the tick of now of a zone up now
    up_ticks = sum(sum(row[lo:t + 1]) for row in grid) - sum(1 for row in grid if row[t])
    seen = sum(sum(x) for x in h.lifetimes) + sum(sum(x) for x in h.lifetimes_censored)
    assert seen == pytest.approx(up_ticks * th)


@settings(max_examples=300, deadline=None)
@given(grid=grids, data=st.data())
def test_history_reads_neither_the_future_nor_before_its_window(
    grid: list[list[bool]], data: st.DataObject
) -> None:
    """Redraw every tick after ``t`` and every tick before the window: the history at ``t`` is the same."""
    n = len(grid[0])
    t = data.draw(st.integers(0, n - 1))
    win = data.draw(st.integers(1, n))
    lo = max(0, t + 1 - win)
    other = [
        [data.draw(st.booleans()) if (i > t or i < lo) else x for i, x in enumerate(row)] for row in grid
    ]
    assert HistoryIndex(other, 0.5, win * 0.5).at(t, 0) == HistoryIndex(grid, 0.5, win * 0.5).at(t, 0)


# --- through the simulator ------------------------------------------------------------------------


class Recorder:
    """Waits every tick (costs nothing) and keeps every view."""

    name = "recorder"

    def __init__(self) -> None:
        self.views: list[JobView] = []

    def decide(self, view: JobView, memory: Memory) -> Step:
        self.views.append(view)
        return Step(WAIT, ("wait",), memory)


def one_zone(counts: list[int], gap: float = 1800.0) -> TraceSet:
    return TraceSet(
        names=("us-east-1a",), regions=("us-east-1",), files=("aws-x/us-east-1a_v100_1.json",),
        gap_seconds=gap, counts=np.array([counts], dtype=np.int64),
        spot_prices=np.array([[1.0] * len(counts)]), priced_by_file=(True,), clouds=("aws",),
    )


SPEC = JobSpec(work_hours=1.0, deadline_hours=None, checkpoint_minutes=30, restart_minutes=0)


def test_simulate_hands_each_view_the_history_up_to_its_tick() -> None:
    """Half-hour ticks, zone ``1 0 1 1 0 0``, the job from tick 2, a 1.5 h (3-tick) window. At tick
    2 (elapsed 0) the window is 0..2: the run at 0 is cut (censored 1 tick, 0.5 h), the run from 2
    is seen to begin (tick 1 down): born 0.0, censored at 0. At tick 4 (elapsed 1 h), window 2..4:
    the run 2..3 begins at the window's edge and ends at 4: censored 2 ticks (1 h); the outage
    from 4 is open (born 1.0 elapsed, censored 0); tick 1's outage has left the window."""
    rec = Recorder()
    simulate(one_zone([1, 0, 1, 1, 0, 0]), SPEC, rec, ondemand_price=3.0, start_tick=2,
             history_window_hours=1.5)
    h0, h2 = rec.views[0].history, rec.views[2].history
    assert h0 == SpotHistory(window_hours=1.5, lifetimes=((),), lifetimes_censored=((0.5, 0.0),),
                             outages=(0.5,), outages_censored=(), born=(0.0,), outage_since=math.inf)
    assert h2 == SpotHistory(window_hours=1.5, lifetimes=((),), lifetimes_censored=((1.0,),), outages=(),
                             outages_censored=(0.0,), born=(math.inf,), outage_since=1.0)


def test_simulate_has_no_history_unless_asked_and_rejects_a_bad_window() -> None:
    rec = Recorder()
    simulate(one_zone([1, 0, 1, 1]), SPEC, rec, ondemand_price=3.0)
    assert all(v.history is None for v in rec.views)
    with pytest.raises(SimulationError, match="history window"):
        simulate(one_zone([1, 0, 1, 1]), SPEC, Recorder(), ondemand_price=3.0, history_window_hours=-1.0)


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(0, 1), min_size=3, max_size=16), data=st.data())
def test_simulate_history_has_no_lookahead(counts: list[int], data: st.DataObject) -> None:
    """Through the simulator: change the trace after tick ``cut``; every view up to ``cut`` keeps
    its history."""
    start = data.draw(st.integers(0, len(counts) - 2))
    cut = data.draw(st.integers(start, len(counts) - 1))
    changed = counts[: cut + 1] + [1 - x for x in counts[cut + 1:]]
    a, b = Recorder(), Recorder()
    for rec, c in ((a, counts), (b, changed)):
        simulate(one_zone(c), SPEC, rec, ondemand_price=3.0, start_tick=start, history_window_hours=2.0)
    keep = cut - start + 1
    assert [v.history for v in a.views[:keep]] == [v.history for v in b.views[:keep]]


# --- the age model seeded from the history ------------------------------------------------------


def _view(now: float, zones: tuple[SpotOption, ...], history: SpotHistory | None) -> JobView:
    return JobView(
        elapsed_hours=now, work_done_hours=0.0, checkpointed_hours=0.0, work_total_hours=4.0,
        deadline_hours=5.0, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=0.5,
        current=spot("a"), overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=1.0,
        history=history,
    )


def test_age_model_reads_the_history_not_the_memory() -> None:
    """History: lifetimes 0.1, 0.2 h (zone a) and 2 h (zone b), pooled, nothing censored, no
    prior (``prior_hours`` 0). Per uptime bucket (edges 0.25, 1, 4 h), Nelson-Aalen:
    h(0.1) = 1/3, h(0.2) = 1/2, h(2) = 1.
    Bucket 0: (1/3 + 1/2) / 0.25 = 3.33/h -> 4 in steps of 2x; bucket 1: no failure: 0 -> floor
    0.01 -> 2^-7 = 0.0078125; bucket 2: H(2) - H(1) = 1 over the span min(4, 2) - 1 = 1 h: 1/h;
    bucket 3: no exposure and no prior weight: the prior 0.5/h. Per 0.5 h unit, ``1 - exp(-r/2)``.
    Zone a born 0.5 h before now: bucket 1 (0.25 to 1 h); zone b up since before the window: the
    last. The memory's samples (a 3 h lifetime) and births are ignored."""
    zones = (SpotOption("a", "r", True, 0.3, 0.5), SpotOption("b", "r", True, 0.3, 0.5))
    hist = SpotHistory(window_hours=24.0, lifetimes=((0.1, 0.2), (2.0,)), lifetimes_censored=((), ()),
                       born=(1.5, -math.inf))
    mem = Memory(born=(math.inf, 0.0), lifetimes=(3.0,))
    m = age_model(_view(2.0, zones, hist), mem, zones[0], unit=0.5, prior_up_rate=0.5,
                  prior_back_rate=1.0, prior_hours=0.0, history=hist)
    expect = [1 - math.exp(-r * 0.5) for r in (4.0, 2.0 ** -7, 1.0, 0.5)]
    assert m.up_fail == pytest.approx(tuple(expect))
    assert (m.up_bucket, m.alt_bucket) == (1, 3)
    # without the history: the memory's (a 3 h lifetime; a down, b born at 0, so 2 h old: bucket 2)
    m0 = age_model(_view(2.0, zones, hist), mem, zones[1], unit=0.5, prior_up_rate=0.5,
                   prior_back_rate=1.0, prior_hours=0.0)
    assert m0.up_bucket == 2
    assert m0.up_fail[0] == pytest.approx(1 - math.exp(-(2.0 ** -7) * 0.5))  # no failure under 0.25 h


def test_age_model_outage_from_the_history() -> None:
    """No zone up; the history's outage began 0.5 h ago (bucket 1) — the memory says none; an
    outage since before the window is in the last bucket."""
    zones = (SpotOption("a", "r", False, 0.3, 0.5),)
    hist = SpotHistory(window_hours=24.0, lifetimes=((),), lifetimes_censored=((),), outages=(1.0,),
                       born=(math.inf,), outage_since=1.5)
    m = age_model(_view(2.0, zones, hist), Memory(), zones[0], unit=0.5, prior_up_rate=0.5,
                  prior_back_rate=1.0, prior_hours=1.0, history=hist)
    assert m.down_bucket == 1
    old = SpotHistory(window_hours=24.0, lifetimes=((),), lifetimes_censored=((),), born=(math.inf,),
                      outage_since=-math.inf)
    m = age_model(_view(2.0, zones, old), Memory(), zones[0], unit=0.5, prior_up_rate=0.5,
                  prior_back_rate=1.0, prior_hours=1.0, history=old)
    assert m.down_bucket == 3


def test_history_option_is_off_by_default_and_ignored_without_a_history() -> None:
    """Off by default; on, with a view that has no history, the policy decides as without it."""
    assert MultiCloud().stochastic_age_history_hours == 0.0
    zones = (SpotOption("a", "r", True, 0.3, 0.5), SpotOption("b", "r", False, 0.2, 0.5))
    v = JobView(
        elapsed_hours=3.0, work_done_hours=2.0, checkpointed_hours=2.0, work_total_hours=4.0,
        deadline_hours=6.2, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=1 / 6,
        current=spot("a"), overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=1.0,
    )
    kw = dict(stochastic=True, stochastic_age=True, stochastic_slack_per_work=math.inf)
    off = MultiCloud(**kw).decide(v, Memory())  # type: ignore[arg-type]
    on = MultiCloud(**kw, stochastic_age_history_hours=24.0).decide(v, Memory())  # type: ignore[arg-type]
    assert (on.choice, on.reasons) == (off.choice, off.reasons)


def test_dp_point_and_the_policy_take_the_zone_age_from_the_history_only_when_asked() -> None:
    """The memory says zone a is up since first seen (the last uptime bucket); the history says it
    came up 10 minutes ago (the first). ``dp_point(age_history=True)`` and ``MultiCloud`` with
    ``stochastic_age_history_hours`` > 0 place it in the first bucket; without, in the last."""
    zones = (SpotOption("a", "r", True, 0.3, 0.5), SpotOption("b", "r", False, 0.2, 0.5))
    hist = SpotHistory(window_hours=24.0, lifetimes=((), ()), lifetimes_censored=((), ()),
                       born=(2.0 - 1 / 6, math.inf))
    v = JobView(
        elapsed_hours=2.0, work_done_hours=1.0, checkpointed_hours=1.0, work_total_hours=4.0,
        deadline_hours=5.0, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=1 / 6,
        current=spot("a"), overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=1.0,
        history=hist,
    )
    mem = Memory(born=(-math.inf, math.inf))
    kw = dict(prior_rate=0.1, prior_down_hours=1.0, age_prior_hours=2.0)
    young = dp_point(v, mem, zones[0], age_history=True, **kw)  # type: ignore[arg-type]
    old = dp_point(v, mem, zones[0], **kw)  # type: ignore[arg-type]
    assert young is not None and old is not None and isinstance(young.sol, AgeSolution)
    kd = len(young.sol.problem.down_back)
    assert (young.up_state, old.up_state) == (kd, kd + 3)
    pol = dict(stochastic=True, stochastic_age=True, stochastic_slack_per_work=math.inf,
               stochastic_age_prior_hours=2.0)
    on = MultiCloud(**pol, stochastic_age_history_hours=24.0)._dp(v, mem, zones[0])  # type: ignore[arg-type]
    off = MultiCloud(**pol)._dp(v, mem, zones[0])  # type: ignore[arg-type]
    assert on is not None and off is not None
    assert (on.up_state, off.up_state) == (kd, kd + 3)


def test_age_model_history_zone_reads_the_priced_zones_runs_only() -> None:
    """Zone a's up-runs: 0.1 and 0.2 h; zone b's: 2 h; no prior. Pooled (above) bucket 2 has
    h(2) = 1 per hour; with ``history_zone`` for zone a, its samples end at 0.2 h: bucket 0 is
    h(0.1) + h(0.2) = 1/2 + 1 over 0.2 h of span: 7.5/h -> 8 in steps of 2x; buckets 1 and 2 have
    no exposure and no prior weight: the prior 0.5/h. For zone b alone: bucket 0 (0, 0.25] has no
    failure: the floor 2^-7; bucket 2: h(2) = 1 over 1 h: 1/h."""
    zones = (SpotOption("a", "r", True, 0.3, 0.5), SpotOption("b", "r", True, 0.3, 0.5))
    hist = SpotHistory(window_hours=24.0, lifetimes=((0.1, 0.2), (2.0,)), lifetimes_censored=((), ()),
                       born=(1.5, -math.inf))
    kw = dict(unit=0.5, prior_up_rate=0.5, prior_back_rate=1.0, prior_hours=0.0, history=hist,
              history_zone=True)
    a = age_model(_view(2.0, zones, hist), Memory(), zones[0], **kw)  # type: ignore[arg-type]
    b = age_model(_view(2.0, zones, hist), Memory(), zones[1], **kw)  # type: ignore[arg-type]
    assert a.up_fail[:3] == pytest.approx(tuple(1 - math.exp(-r * 0.5) for r in (8.0, 0.5, 0.5)))
    expect_b = (1 - math.exp(-(2.0 ** -7) * 0.5), 1 - math.exp(-0.5))
    assert (b.up_fail[0], b.up_fail[2]) == pytest.approx(expect_b)


def test_policy_passes_history_zone_to_the_model() -> None:
    """Zone a's runs (0.1 and 0.2 h) fail young, zone b's (2 h) late: priced on a, the first uptime
    bucket's hazard is higher from a's own runs (1/2 + 1 over 0.2 h: 7.5/h) than pooled (1/3 + 1/2
    over 0.25 h: 3.3/h), whatever the prior; so ``stochastic_age_history_zone`` must reach the model."""
    zones = (SpotOption("a", "r", True, 0.3, 0.5), SpotOption("b", "r", True, 0.3, 0.5))
    hist = SpotHistory(window_hours=24.0, lifetimes=((0.1, 0.2), (2.0,)), lifetimes_censored=((), ()),
                       born=(2.0 - 1 / 6, -math.inf))
    v = JobView(
        elapsed_hours=2.0, work_done_hours=1.0, checkpointed_hours=1.0, work_total_hours=4.0,
        deadline_hours=5.0, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=1 / 6,
        current=spot("a"), overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=1.0,
        history=hist,
    )
    pol = dict(stochastic=True, stochastic_age=True, stochastic_slack_per_work=math.inf,
               stochastic_age_history_hours=24.0)
    own = MultiCloud(**pol, stochastic_age_history_zone=True)._dp(v, Memory(), zones[0])  # type: ignore[arg-type]
    pooled = MultiCloud(**pol)._dp(v, Memory(), zones[0])  # type: ignore[arg-type]
    assert own is not None and pooled is not None
    assert isinstance(own.sol, AgeSolution) and isinstance(pooled.sol, AgeSolution)
    assert own.sol.problem.up_fail[0] > pooled.sol.problem.up_fail[0]
