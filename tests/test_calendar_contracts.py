"""Business-calendar windows, the pure core's contracts: validation messages, the text ``plan`` shows,
interval merging, and ``contains`` at the edges of a window (to the second).

Written for the survivors of the mutmut run of ``policy/calendar.py`` (benchmarks/README.md,
"Mutation testing"); every expected value is worked out by hand from the module's docstring:
windows are ``[start, end)``, a weekly window whose end is not after its start runs past midnight,
times shown are UTC (``...Z``). Pure: no Ray, no files.
"""

from __future__ import annotations

import calendar as cal

import pytest

from ray_multicloud.policy.calendar import CalendarWindows, WeeklyWindow

WEEK = frozenset(range(7))


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> float:
    return float(cal.timegm((y, mo, d, h, mi, s)))


# 2026-03-27 is a Friday (28 Sat, 29 Sun, 30 Mon, 31 Tue).
FRI, SAT, SUN, MON, TUE = 27, 28, 29, 30, 31


# --------------------------------------------------------------------------- WeeklyWindow: validation


@pytest.mark.parametrize(
    ("days", "start", "end", "message"),
    [
        (frozenset(), 0, 60, "days must be a non-empty set of 0..6 (0 = Monday), got []"),
        (frozenset({7}), 0, 60, "days must be a non-empty set of 0..6 (0 = Monday), got [7]"),
        (frozenset({0, 7}), 0, 60, "days must be a non-empty set of 0..6 (0 = Monday), got [0, 7]"),
        (frozenset({0}), -1, 60, "minutes after midnight must be within 0..1440, got -1"),
        (frozenset({0}), 60, 1441, "minutes after midnight must be within 0..1440, got 1441"),
        # the whole day on every day, however written: it never ends
        (WEEK, 600, 600, "a window of the whole day on every day never ends"),
        (WEEK, 0, 1440, "a window of the whole day on every day never ends"),
        (WEEK, 1440, 1440, "a window of the whole day on every day never ends"),
    ],
)
def test_weekly_window_refusals(days: frozenset[int], start: int, end: int, message: str) -> None:
    with pytest.raises(ValueError) as err:
        WeeklyWindow(days, start, end)
    assert str(err.value) == message


def test_weekly_window_limits_are_inclusive() -> None:
    # 0 and 1440 are both valid minutes (midnight, and the midnight that ends the day).
    assert WeeklyWindow(frozenset({0}), 0, 60).start_minute == 0
    assert WeeklyWindow(frozenset({0}), 1320, 1440).end_minute == 1440
    # start == end on some days only: a 24-hour window from that time, not an error.
    assert WeeklyWindow(frozenset({0}), 600, 600).days == frozenset({0})
    assert WeeklyWindow(frozenset(range(6)), 600, 600).start_minute == 600


# --------------------------------------------------------------------------- WeeklyWindow: contains


def test_contains_counts_seconds_at_both_edges() -> None:
    office = WeeklyWindow(frozenset(range(5)), 9 * 60, 18 * 60)  # mon-fri 09:00-18:00 UTC
    assert office.contains(utc(2026, 3, FRI, 9, 0, 0))
    assert office.contains(utc(2026, 3, FRI, 9, 0, 30))
    assert not office.contains(utc(2026, 3, FRI, 8, 59, 59))
    assert office.contains(utc(2026, 3, FRI, 17, 59, 30))
    assert office.contains(utc(2026, 3, FRI, 17, 59, 59))
    assert not office.contains(utc(2026, 3, FRI, 18, 0, 0))


def test_a_window_past_midnight_starts_and_ends_exactly() -> None:
    night = WeeklyWindow(frozenset({4}), 22 * 60, 2 * 60)  # fri 22:00 - sat 02:00 UTC
    assert not night.contains(utc(2026, 3, FRI, 21, 59, 59))
    assert night.contains(utc(2026, 3, FRI, 22, 0, 0))
    assert night.contains(utc(2026, 3, SAT, 1, 59, 59))
    assert not night.contains(utc(2026, 3, SAT, 2, 0, 0))
    assert not night.contains(utc(2026, 3, SAT, 22, 30))  # Saturday is not listed


def test_a_sunday_night_window_runs_into_monday() -> None:
    night = WeeklyWindow(frozenset({6}), 22 * 60, 2 * 60)  # sun 22:00 - mon 02:00 UTC
    assert night.contains(utc(2026, 3, MON, 1, 0))
    assert not night.contains(utc(2026, 3, TUE, 1, 0))


def test_start_equal_to_end_is_a_whole_day_from_that_time() -> None:
    day = WeeklyWindow(frozenset({0}), 600, 600)  # Monday 10:00 to Tuesday 10:00 UTC
    assert not day.contains(utc(2026, 3, MON, 9, 59))
    assert day.contains(utc(2026, 3, MON, 10, 0))
    assert day.contains(utc(2026, 3, MON, 12, 0))
    assert day.contains(utc(2026, 3, TUE, 9, 59))
    assert not day.contains(utc(2026, 3, TUE, 10, 0))


# --------------------------------------------------------------------------- what plan shows


@pytest.mark.parametrize(
    ("days", "start", "end", "tz", "text"),
    [
        (WEEK, 22 * 60, 2 * 60, "UTC", "blackout every day 22:00-02:00 UTC"),
        (frozenset({0, 1, 2}), 540, 1080, "Europe/Berlin", "blackout mon-wed 09:00-18:00 Europe/Berlin"),
        (frozenset({2, 3, 4}), 540, 1080, "UTC", "blackout wed-fri 09:00-18:00 UTC"),
        (frozenset({4, 0, 2}), 0, 1440, "UTC", "blackout mon,wed,fri 00:00-24:00 UTC"),
    ],
)
def test_weekly_window_text(days: frozenset[int], start: int, end: int, tz: str, text: str) -> None:
    assert str(WeeklyWindow(days, start, end, tz)) == text


def test_calendar_text_names_the_file_the_count_and_the_span_in_utc(far_local_zone: None) -> None:
    w = CalendarWindows.from_intervals("team.ics", [
        (utc(2026, 12, 24), utc(2026, 12, 27)),
        (utc(2026, 12, 31, 18), utc(2027, 1, 2)),
        (utc(2026, 12, 1, 9, 30), utc(2026, 12, 1, 10)),
    ])
    assert str(w) == "blackout calendar team.ics (3 window(s), 2026-12-01T09:30Z..2027-01-02T00:00Z)"
    two = CalendarWindows.from_intervals("b.ics", [(utc(2026, 1, 5, 8), utc(2026, 1, 5, 9)),
                                                  (utc(2026, 2, 6, 8), utc(2026, 2, 6, 9))])
    assert str(two) == "blackout calendar b.ics (2 window(s), 2026-01-05T08:00Z..2026-02-06T09:00Z)"
    assert str(CalendarWindows.from_intervals("empty.ics", [])) == "blackout calendar empty.ics (no windows)"


# --------------------------------------------------------------------------- CalendarWindows: merging


@pytest.mark.parametrize(
    ("intervals", "starts", "ends"),
    [
        ([(5.0, 5.0)], (), ()),                                # an empty event holds no instant
        ([(5.0, 3.0)], (), ()),                                # nor does one ending before it starts
        ([(0.0, 10.0), (10.0, 20.0)], (0.0,), (20.0,)),        # back to back: one window
        ([(0.0, 10.0), (5.0, 8.0)], (0.0,), (10.0,)),          # inside another
        ([(0.0, 10.0), (5.0, 20.0)], (0.0,), (20.0,)),         # overlapping
        ([(4.0, 10.0), (0.0, 1.0)], (0.0, 4.0), (1.0, 10.0)),  # sorted
        ([(0.0, 1.0), (2.0, 3.0), (4.0, 10.0), (5.0, 6.0)], (0.0, 2.0, 4.0), (1.0, 3.0, 10.0)),
        ([(0.0, 1.0), (2.0, 3.0), (4.0, 5.0), (4.5, 7.0)], (0.0, 2.0, 4.0), (1.0, 3.0, 7.0)),
    ],
)
def test_from_intervals_merges(intervals: list[tuple[float, float]], starts: tuple[float, ...],
                               ends: tuple[float, ...]) -> None:
    w = CalendarWindows.from_intervals("x.ics", intervals)
    assert (w.starts, w.ends) == (starts, ends)


def test_calendar_contains_is_half_open() -> None:
    w = CalendarWindows.from_intervals("x.ics", [(10.0, 20.0), (30.0, 40.0)])
    inside = [w.contains(t) for t in (9.9, 10.0, 19.9, 20.0, 30.0, 40.0)]
    assert inside == [False, True, True, False, True, False]
