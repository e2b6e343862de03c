"""Predictive capacity's pure helpers, their contracts (``policy/predictive.py``): the measured lead
(a median), and ``open_within`` at the edges of intervals, of calendars and of sampled windows.

Written for the survivors of the mutmut run of ``policy/predictive.py`` (benchmarks/README.md,
"Mutation testing"); every expected value is worked out by hand from the docstrings: a window is
open "at some instant of ``[start, end]``", intervals are ``[a, b)``. Pure: no Ray.
"""

from __future__ import annotations

import pytest

from ray_multicloud.policy.calendar import CalendarWindows
from ray_multicloud.policy.predictive import Peak, bucket, lead_from_starts, open_within
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
