"""Business-calendar windows: weekly hours in a time zone, and intervals read from a calendar.

Pure: no I/O, no clock; ``contains(now)`` answers for a POSIX time. These join ``Window`` (one
interval) and ``DailyWindow`` (daily UTC hours) of ``policy.rebalance`` as a ``Blackout``; the
controller and anything else that evaluates ``RebalanceConfig.blackouts`` (the simulator's replay
of the live policy included) sees the same windows, since the check is this ``contains``.

- ``WeeklyWindow``: on the listed weekdays, from ``start`` to ``end`` local time in ``tz`` (an
  IANA name, e.g. ``Europe/Berlin``; daylight saving time follows the zone). A window whose end is
  not after its start runs past midnight into the next day (``fri 22:00-02:00`` ends Saturday 02:00).
  ``WeeklyWindow({0,1,2,3,4}, 540, 1080, "Europe/Berlin")`` is Monday to Friday, 09:00-18:00 Berlin.
- ``CalendarWindows``: sorted, merged ``[start, end)`` intervals (the events of an iCalendar file,
  recurring ones expanded by the reader in ``cluster_config.migration``); ``label`` names the file.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ``ValueError`` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from exc


def _days_text(days: frozenset[int]) -> str:
    ordered = sorted(days)
    if len(ordered) == 7:
        return "every day"
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{DAY_NAMES[ordered[0]]}-{DAY_NAMES[ordered[-1]]}"
    return ",".join(DAY_NAMES[d] for d in ordered)


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """On ``days`` (0 = Monday), from ``start_minute`` to ``end_minute`` after local midnight in
    ``tz``; past midnight when ``end_minute <= start_minute`` (module docstring)."""

    days: frozenset[int]
    start_minute: int
    end_minute: int
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"days must be a non-empty set of 0..6 (0 = Monday), got {sorted(self.days)}")
        for m in (self.start_minute, self.end_minute):
            if not 0 <= m <= 1440:
                raise ValueError(f"minutes after midnight must be within 0..1440, got {m}")
        if self.start_minute % 1440 == self.end_minute % 1440 and len(self.days) == 7:
            raise ValueError("a window of the whole day on every day never ends")
        zone(self.tz)

    def contains(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute + local.second / 60.0
        day = local.weekday()
        start, end = self.start_minute, self.end_minute
        if start < end:
            return day in self.days and start <= minute < end
        # Past midnight: the evening of a listed day, or the early hours after one.
        return (day in self.days and minute >= start) or ((day - 1) % 7 in self.days and minute < end)

    def __str__(self) -> str:
        return (f"blackout {_days_text(self.days)} {_hhmm(self.start_minute)}-{_hhmm(self.end_minute)} "
                f"{self.tz}")


@dataclass(frozen=True, slots=True)
class CalendarWindows:
    """``[starts[i], ends[i])`` intervals, sorted and not overlapping (``from_intervals`` merges)."""

    label: str
    starts: tuple[float, ...]
    ends: tuple[float, ...]

    @classmethod
    def from_intervals(cls, label: str, intervals: list[tuple[float, float]]) -> CalendarWindows:
        merged: list[list[float]] = []
        for a, b in sorted(i for i in intervals if i[1] > i[0]):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return cls(label, tuple(m[0] for m in merged), tuple(m[1] for m in merged))

    def contains(self, now: float) -> bool:
        i = bisect_right(self.starts, now) - 1
        return i >= 0 and now < self.ends[i]

    def __str__(self) -> str:
        if not self.starts:
            return f"blackout calendar {self.label} (no windows)"
        return (f"blackout calendar {self.label} ({len(self.starts)} window(s), "
                f"{_iso(self.starts[0])}..{_iso(self.ends[-1])})")


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")
