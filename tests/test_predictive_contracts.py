"""Predictive capacity's pure helpers, their contracts (``policy/predictive.py``): the measured lead
(a median), and ``open_within`` at the edges of intervals, of calendars and of sampled windows.

Written for the survivors of the mutmut run of ``policy/predictive.py`` (benchmarks/README.md,
"Mutation testing"); every expected value is worked out by hand from the docstrings: a window is
open "at some instant of ``[start, end]``", intervals are ``[a, b)``. Pure: no Ray.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from ray_multicloud.policy.calendar import CalendarWindows
from ray_multicloud.policy.forecast import Candidate
from ray_multicloud.policy.predictive import (
    Peak,
    PredictiveSpec,
    bucket,
    lead_from_starts,
    open_within,
    peak_floor,
    plan_capacity,
)
from ray_multicloud.policy.rebalance import Window

# --------------------------------------------------------------------------- lead_from_starts


def test_the_measured_lead_is_the_median_start_plus_the_replica() -> None:
    assert lead_from_starts([10.0, 20.0], 60.0) is None  # fewer than 3 starts
    assert lead_from_starts([30.0, 10.0, 20.0], 60.0) == 80.0  # median 20
    assert lead_from_starts([5.0, 1.0, 4.0, 2.0, 3.0], 0.5) == 3.5  # median 3
    # an even count: the mean of the middle two, (20 + 30) / 2 = 25
    assert lead_from_starts([40.0, 10.0, 30.0, 20.0], 60.0) == 85.0
    assert lead_from_starts([100.0, 300.0, 200.0, 400.0, 600.0, 500.0], 0.0) == 350.0


# --------------------------------------------------------------------------- open_within: intervals


def test_an_interval_is_open_within_a_closed_lead_window() -> None:
    w = Window(100.0, 200.0)  # [100, 200)
    assert open_within(w, 0.0, 100.0)  # opens at the lead's last instant
    assert not open_within(w, 0.0, 99.0)
    assert open_within(w, 199.0, 300.0)
    assert not open_within(w, 200.0, 300.0)  # closed at 200


def test_a_calendar_is_open_within_exactly() -> None:
    cal = CalendarWindows.from_intervals("x.ics", [(100.0, 200.0), (300.0, 400.0)])
    assert not open_within(cal, 0.0, 50.0)     # before the first
    assert open_within(cal, 0.0, 100.0)        # the first opens at the lead's end
    assert open_within(cal, 150.0, 160.0)      # inside the first
    assert not open_within(cal, 200.0, 250.0)  # between: the first closed at 200, the second not yet
    assert open_within(cal, 250.0, 350.0)      # the second opens inside
    assert open_within(cal, 399.0, 500.0)
    assert not open_within(cal, 400.0, 500.0)  # after the last
    # A 10 s event inside a 300 s lead: exact, not sampled (samples every 60 s would miss it).
    blip = CalendarWindows.from_intervals("blip.ics", [(130.0, 140.0)])
    assert open_within(blip, 0.0, 300.0)
    assert not open_within(CalendarWindows.from_intervals("none.ics", []), 0.0, 300.0)


class Spy:
    """A window that is never open and records the instants it was asked about."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def contains(self, now: float) -> bool:
        self.asked.append(now)
        return False


class StartOnly(Spy):
    """Has a ``start`` (say, a minute of the day) but no ``end``: not an interval, so sampled."""

    start = 5.0


class StartsOnly(Spy):
    """Has a ``starts`` tuple but no ``ends``: not a calendar, so sampled."""

    starts = (5.0,)


def test_any_other_window_is_sampled_every_minute_and_at_both_ends() -> None:
    spy = Spy()
    assert not open_within(spy, 0.0, 60.0)
    assert spy.asked == [0.0, 60.0]
    spy = Spy()
    assert not open_within(spy, 0.0, 150.0)  # ceil(150 / 60) = 3 steps of 50 s
    assert spy.asked == [0.0, 50.0, 100.0, 150.0]
    spy = Spy()
    assert not open_within(spy, 1000.0, 1000.0)  # an instant: asked once per end
    assert spy.asked == [1000.0, 1000.0]


@pytest.mark.parametrize("cls", [StartOnly, StartsOnly])
def test_half_an_interval_is_sampled_not_read(cls: type[Spy]) -> None:
    spy = cls()
    assert not open_within(spy, 0.0, 120.0)
    assert spy.asked == [0.0, 60.0, 120.0]


# --------------------------------------------------------------------------- Peak, bucket


def test_a_peak_needs_a_whole_number_of_replicas_of_at_least_one() -> None:
    w = Window(0.0, 1.0)
    assert Peak(w, 1).replicas == 1
    for bad in (0, -2, True, False, 2.5, "3"):
        with pytest.raises(ValueError) as err:
            Peak(w, bad)  # type: ignore[arg-type]
        assert str(err.value) == f"a peak needs a whole number of replicas >= 1, got {bad!r}"


def test_bucket_refuses_a_tick_or_window_not_above_zero() -> None:
    for tick, keep in ((0.0, 60.0), (-1.0, 60.0), (10.0, 0.0), (10.0, -5.0)):
        with pytest.raises(ValueError) as err:
            bucket([(1.0, 1.0)], tick_s=tick, now=100.0, keep_s=keep)
        assert str(err.value) == f"tick_s and keep_s must be > 0, got {tick}, {keep}"


def test_bucket_takes_ticks_and_windows_below_a_second() -> None:
    # Ticks of 0.5 s, now = 1.0: tick 2 runs; keep 1 s -> ticks 0 and 1: 4 and 6.
    assert bucket([(0.2, 4.0), (0.7, 6.0)], tick_s=0.5, now=1.0, keep_s=1.0) == [4.0, 6.0]
    # keep 0.5 s -> tick 1 alone.
    assert bucket([(0.2, 4.0), (0.7, 6.0)], tick_s=0.5, now=1.0, keep_s=0.5) == [6.0]


def test_bucket_keeps_rates_below_one_and_carries_to_the_last_tick() -> None:
    # Ticks of 10 s, now = 100, keep 50 s: ticks 5..9. One sample of 0.5/s in tick 5, carried on.
    assert bucket([(51.0, 0.5)], tick_s=10.0, now=100.0, keep_s=50.0) == [0.5] * 5
    # A negative rate counts as 0, a sample in the running tick (100 s) is left out.
    assert bucket([(61.0, -3.0), (100.0, 7.0)], tick_s=10.0, now=100.0, keep_s=50.0) == [0.0] * 4


# --------------------------------------------------------------------------- PredictiveSpec


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"replica_rps": 0.0}, "replica_rps must be a number > 0, got 0.0"),
        ({"replica_rps": math.inf}, "replica_rps must be a number > 0, got inf"),
        ({"replica_rps": 1.0, "lead_s": -1.0}, "lead_s must be a number > 0, got -1.0"),
        ({"replica_rps": 1.0, "tick_s": 0}, "tick_s must be a number > 0, got 0"),
        ({"replica_rps": 1.0, "tick_s": math.nan}, "tick_s must be a number > 0, got nan"),
        ({"replica_rps": 1.0, "replicas_per_node": 0}, "replicas_per_node must be >= 1, got 0"),
        ({"replica_rps": 1.0, "min_replicas": -1}, "min_replicas must be >= 0, got -1"),
        ({"replica_rps": 1.0, "max_replicas": 0}, "max_replicas (0) must be >= 1 and >= min_replicas (0)"),
        ({"replica_rps": 1.0, "min_replicas": 3, "max_replicas": 2},
         "max_replicas (2) must be >= 1 and >= min_replicas (3)"),
        ({"replica_rps": 1.0, "quantile": 0.0}, "quantile must be in (0, 1), got 0.0"),
        ({"replica_rps": 1.0, "quantile": 1.0}, "quantile must be in (0, 1), got 1.0"),
        ({"replica_rps": 1.0, "quantile": 1.5}, "quantile must be in (0, 1), got 1.5"),
    ],
)
def test_spec_refusals(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as err:
        PredictiveSpec(**kw)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_spec_limits_are_inclusive() -> None:
    assert PredictiveSpec(replica_rps=1.0, max_replicas=1).max_replicas == 1
    assert PredictiveSpec(replica_rps=1.0, min_replicas=3, max_replicas=3).max_replicas == 3


# --------------------------------------------------------------------------- peak_floor


def test_peak_floor_names_the_biggest_open_peak() -> None:
    spec = PredictiveSpec(replica_rps=1.0, lead_s=300.0)
    now = 1_000_000.0
    assert peak_floor([], now, spec) == (0, "")
    w = Window(now + 10, now + 3600)
    # No label: the window's own text names it.
    assert peak_floor([Peak(w, 3)], now, spec) == (3, str(w))
    # Equal replicas: the first listed is named (the docstring is silent; this pins it).
    assert peak_floor([Peak(w, 4, "a"), Peak(w, 4, "b"), Peak(w, 2, "c")], now, spec) == (4, "a")


# --------------------------------------------------------------------------- plan_capacity


def test_the_reactive_reason_in_full() -> None:
    # Lead 300 s / 30 s = 10 ticks; 29 ticks (14.5 min) < 10 + 20. Need ceil(25 / 10) = 3.
    spec = PredictiveSpec(replica_rps=10.0, lead_s=300.0, tick_s=30.0)
    plan = plan_capacity([5.0] * 28 + [25.0], spec, now=0.0)
    assert plan.reason == (
        "demand history of 29 ticks (14.5 min) is too short to forecast 10 ticks (300 s) ahead: it needs "
        "30 (the lead plus 20 to backtest on); scaling reactively on the rate now (25/s); "
        "3 replica(s) at 10/s each; -> 3 replica(s) on 3 node(s)")


def test_no_history_is_no_demand() -> None:
    plan = plan_capacity([], PredictiveSpec(replica_rps=10.0), now=0.0)
    assert (plan.rate_now, plan.replicas, plan.nodes) == (0.0, 0, 0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -4.0])
def test_a_rate_that_is_not_a_demand_counts_as_zero(bad: float) -> None:
    # NaN and negative rates count as 0 (docstring); so do the infinities (a meter fault, not a
    # demand: the plan would otherwise ask for 1e308 replicas, or forecast with them).
    plan = plan_capacity([3.0, bad], PredictiveSpec(replica_rps=1.0), now=0.0)
    assert plan.rate_now == 0.0 and plan.replicas == 0


def test_the_backtest_uses_the_specs_quantile() -> None:
    # 40 ticks of 30 s, lead 1 tick: r[t] = 10 when t % 3 == 2, else 0. Candidates: persistence,
    # recent-max/3 and /10 (an hour is 120 ticks: no season); scored on t = 9..38, 10 whole cycles.
    # Per cycle, persistence is over by 10 once and under by 10 once: 10 (1 - q) + 10 q = 10;
    # recent-max/3 always says 10, over by 10 twice: 20 (1 - q). At q = 0.9: 2 < 10, it wins (ahead
    # of recent-max/10, equal and later); at q = 0.1: 18 > 10, persistence wins.
    history = [10.0 if t % 3 == 2 else 0.0 for t in range(40)]
    high = plan_capacity(history, PredictiveSpec(replica_rps=1.0, lead_s=30.0, tick_s=30.0), now=0.0)
    assert high.forecaster == Candidate("recent-max", 3) and high.predicted_rate == 10.0
    low = plan_capacity(history, PredictiveSpec(replica_rps=1.0, lead_s=30.0, tick_s=30.0, quantile=0.1),
                        now=0.0)
    assert low.forecaster == Candidate("persistence") and low.predicted_rate == 0.0


def test_capped_is_said_only_when_the_cap_cuts() -> None:
    def reason(rate: float) -> str:
        spec = PredictiveSpec(replica_rps=1.0, lead_s=30.0, tick_s=30.0, max_replicas=5)
        return plan_capacity([rate], spec, now=0.0).reason

    assert reason(2.0).endswith("; 2 replica(s) at 1/s each; -> 2 replica(s) on 2 node(s)")
    assert "capped" not in reason(5.0)  # need 5 = the cap: not cut
    assert reason(7.0).endswith("; 7 replica(s) at 1/s each; capped at max_replicas 5; "
                                "-> 5 replica(s) on 5 node(s)")
    uncapped = plan_capacity([7.0], PredictiveSpec(replica_rps=1.0, lead_s=30.0, tick_s=30.0), now=0.0)
    assert "capped" not in uncapped.reason


def test_a_measured_lead_reads_to_a_tenth_of_a_second_in_the_reasons() -> None:
    # A lead measured from node starts is any float (33.0006 s); reasons print it to 0.1 s.
    spec = PredictiveSpec(replica_rps=10.0, lead_s=33.0006, tick_s=5.0)
    short = plan_capacity([], spec, now=0.0)
    assert "to forecast 7 ticks (33 s) ahead" in short.reason, short.reason
    steady = plan_capacity([10.0] * 40, spec, now=0.0)
    assert steady.mode == "predictive", steady.reason
    assert " forecasts 10/s in 33 s (rate now 10/s)" in steady.reason, steady.reason
    assert "(27.7 s)" in plan_capacity([], dataclasses.replace(spec, lead_s=27.66), now=0.0).reason
