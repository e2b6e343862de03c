"""Business calendars: weekly windows in a time zone and iCalendar files as blackouts, read from a
pool's migration section, checked by plan, and seen by the rebalance policy."""

from __future__ import annotations

import calendar as cal
import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cli import main
from ray_multicloud.cluster_config.migration import parse_migration, read_ical
from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.calendar import CalendarWindows, WeeklyWindow
from ray_multicloud.policy.rebalance import DailyWindow, Window, plan
from ray_multicloud.types import InstanceId
from tests.fakes.memory_cloud import LOCAL_CONFIG
from tests.test_rebalance import AWS_1A, AWS_1B, BASE, NOW, POOL, node

KEY = "available_node_types.gpu.node_config.migration"


def utc(*t: int) -> float:
    return float(cal.timegm((*t, 0)[:6] if len(t) == 5 else t))


def blackouts(*windows: Any, **extra: Any) -> tuple[Any, ...]:
    m = parse_migration("gpu", {"pool": {}, "migration": {"blackouts": list(windows), **extra}}, now=NOW)
    return m.rebalance.blackouts


# --------------------------------------------------------------------------- weekly windows

# 2026-03-27 is a Friday; Europe/Berlin moves from UTC+1 to UTC+2 on Sunday 2026-03-29.
BERLIN_OFFICE = WeeklyWindow(frozenset(range(5)), 9 * 60, 18 * 60, "Europe/Berlin")


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (utc(2026, 3, 27, 8, 30), True),    # Fri 09:30 CET
        (utc(2026, 3, 27, 7, 30), False),   # Fri 08:30 CET
        (utc(2026, 3, 27, 16, 59), True),   # Fri 17:59 CET
        (utc(2026, 3, 27, 17, 0), False),   # Fri 18:00 CET
        (utc(2026, 3, 28, 10, 0), False),   # Saturday
        (utc(2026, 3, 30, 7, 30), True),    # Mon 09:30 CEST (summer time: UTC+2)
        (utc(2026, 3, 30, 16, 30), False),  # Mon 18:30 CEST
    ],
)
def test_weekly_window_in_a_time_zone(when: float, inside: bool) -> None:
    assert BERLIN_OFFICE.contains(when) is inside


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (utc(2026, 11, 27, 23, 0), True),   # Fri 23:00
        (utc(2026, 11, 28, 1, 0), True),    # Sat 01:00: the Friday window runs past midnight
        (utc(2026, 11, 28, 3, 0), False),   # Sat 03:00
        (utc(2026, 11, 26, 23, 0), False),  # Thu 23:00
        (utc(2026, 11, 27, 1, 0), False),   # Fri 01:00: no Thursday window to run into it
    ],
)
def test_weekly_window_past_midnight(when: float, inside: bool) -> None:
    assert WeeklyWindow(frozenset({4}), 22 * 60, 2 * 60).contains(when) is inside


def test_yaml_forms_old_and_new() -> None:
    raw = yaml.safe_load(
        """
        - "22:00-02:00"
        - {start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z}
        - {days: [mon..fri], from: "09:00", to: "18:00", tz: Europe/Berlin}
        - {days: [sat, sun], from: 09:00, to: 12:30}
        - "08:00-09:00 America/New_York"
        - {start: "2026-12-31T18:00", end: "2027-01-01T06:00", tz: Asia/Tokyo}
        """
    )
    daily, once, office, weekend, ny, tokyo = blackouts(*raw)
    assert daily == DailyWindow(22, 2)
    assert once == Window(utc(2026, 12, 24, 0, 0), utc(2026, 12, 27, 0, 0))
    assert office == BERLIN_OFFICE
    assert weekend == WeeklyWindow(frozenset({5, 6}), 540, 750, "UTC")  # YAML read 09:00 as 540
    assert ny == WeeklyWindow(frozenset(range(7)), 480, 540, "America/New_York")
    assert tokyo == Window(utc(2026, 12, 31, 9, 0), utc(2026, 12, 31, 21, 0))  # UTC+9
    assert str(office) == "blackout mon-fri 09:00-18:00 Europe/Berlin"


@pytest.mark.parametrize(
    ("window", "key", "fragment"),
    [
        ({"days": ["mon"], "from": "09:00", "to": "18:00", "tz": "Mars/Olympus"}, "[0].tz", "time zone"),
        ({"days": ["funday"], "from": "09:00", "to": "18:00"}, "[0].days[0]", "not a day"),
        ({"days": "mon-fri", "to": "18:00"}, "[0].from", "missing"),
        ({"from": "09:00", "to": "09:00"}, "[0]", "never ends"),
        ({"days": ["mon"], "from": "25:00", "to": "18:00"}, "[0].from", "time of day"),
        ({"days": ["mon"], "from": 45, "to": "18:00"}, "[0].from", "quote the time"),
        ({"days": ["mon"], "from": "09:00", "to": "18:00", "zone": "UTC"}, "[0].zone", "unknown key"),
        ({"start": "2026-12-24T00:00", "end": "2026-12-25T00:00"}, "[0].start", "no time zone"),
        ("08:00-09:00 Nowhere/Town", "[0]", "unknown time zone"),
    ],
)
def test_bad_windows_name_the_key(window: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        blackouts(window)
    assert err.value.key == f"{KEY}.blackouts{key}" and fragment in str(err.value)


WINDOW_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-100, 2000), st.text(max_size=8),
                          st.sampled_from(["09:00", "24:00", "mon-fri", "Europe/Berlin", "sun..tue"]),
                          st.lists(st.sampled_from(["mon", "fri", "xyz", "sat-mon", 3]), max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["days", "from", "to", "tz", "start", "end", "bogus"]),
                       WINDOW_VALUES, max_size=4))
def test_any_window_parses_or_names_its_key(window: dict[str, Any]) -> None:
    try:
        (b,) = blackouts(window)
    except ConfigError as exc:
        assert exc.key.startswith(f"{KEY}.blackouts[0]")
        return
    assert isinstance(b, (WeeklyWindow, Window))
    b.contains(NOW)


def test_the_policy_holds_a_move_inside_a_weekly_window() -> None:
    # NOW is Saturday 2026-11-28 12:00 UTC (13:00 in Berlin).
    weekend = WeeklyWindow(frozenset({5, 6}), 8 * 60, 20 * 60, "Europe/Berlin")
    weekdays = replace(weekend, days=frozenset(range(5)))
    fleet = [node("a", AWS_1A, launched=NOW - 7200)]
    held = plan(fleet, [AWS_1A, AWS_1B], {"t4": POOL}, now=NOW, config=replace(BASE, blackouts=(weekend,)),
                last_moved={})
    assert held.moves == () and any("sat,sun 08:00-20:00 Europe/Berlin" in n for n in held.notes)
    free = plan(fleet, [AWS_1A, AWS_1B], {"t4": POOL}, now=NOW, config=replace(BASE, blackouts=(weekdays,)),
                last_moved={})
    assert [m.instance_id for m in free.moves] == [InstanceId("a")]


# --------------------------------------------------------------------------- iCalendar files

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//ray_multicloud tests//EN
BEGIN:VEVENT
UID:freeze@example
SUMMARY:Release freeze
DTSTART:20261220T000000Z
DTEND:20270104T000000Z
END:VEVENT
BEGIN:VEVENT
UID:friday@example
SUMMARY:Friday demo
DTSTART;TZID=Europe/Berlin:20261106T150000
DURATION:PT2H
RRULE:FREQ=WEEKLY;BYDAY=FR
EXDATE;TZID=Europe/Berlin:20261113T150000
END:VEVENT
BEGIN:VEVENT
UID:holiday@example
SUMMARY:Holiday
DTSTART;VALUE=DATE:20261126
END:VEVENT
END:VCALENDAR
"""


def write(tmp_path: Path, text: str, name: str = "cal.ics") -> str:
    path = tmp_path / name
    path.write_text(text.replace("\n", "\r\n"))
    return str(path)


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (utc(2026, 12, 25, 12, 0), True),    # the freeze
        (utc(2027, 1, 4, 0, 0), False),      # the freeze's end is exclusive
        (utc(2026, 11, 6, 14, 30), True),    # Fri 15:30 Berlin (UTC+1), first demo
        (utc(2026, 11, 13, 14, 30), False),  # the excluded Friday
        (utc(2026, 11, 20, 15, 59), True),   # Fri 16:59 Berlin
        (utc(2026, 11, 20, 16, 0), False),   # Fri 17:00 Berlin: two hours are over
        (utc(2027, 6, 4, 13, 30), True),     # Fri 15:30 Berlin in summer (UTC+2)
        (utc(2026, 11, 26, 23, 0), True),    # the all-day holiday, in the calendar's tz (UTC)
        (utc(2026, 11, 27, 0, 0), False),
    ],
)
def test_ical_events_recurrences_and_all_day(tmp_path: Path, when: float, inside: bool) -> None:
    windows = read_ical("k", write(tmp_path, ICS), now=NOW)
    assert windows.contains(when) is inside


def test_ical_through_the_migration_section_with_a_zone(tmp_path: Path) -> None:
    path = write(tmp_path, ICS)
    (w,) = blackouts(blackouts_ical={"path": path, "tz": "America/New_York"})
    assert isinstance(w, CalendarWindows) and "cal.ics" in str(w)
    # The all-day holiday now runs 2026-11-26 00:00 to 24:00 New York time (UTC-5).
    assert w.contains(utc(2026, 11, 27, 4, 0)) and not w.contains(utc(2026, 11, 26, 4, 0))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("this is not a calendar", "not an iCalendar"),
        ("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", "holds no VEVENT"),
        (ICS.replace("DURATION:PT2H\n", ""), "event 2 (Friday demo): has neither DTEND nor DURATION"),
        (ICS.replace("DTEND:20270104T000000Z", "DTEND:20261201T000000Z"), "ends at or before it starts"),
    ],
)
def test_bad_calendar_names_the_key_and_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text, "bad.ics")
    with pytest.raises(ConfigError) as err:
        blackouts(blackouts_ical=path)
    assert err.value.key == f"{KEY}.blackouts_ical"
    assert f"calendar {path}" in str(err.value) and fragment in str(err.value)


def test_missing_calendar(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        blackouts(blackouts_ical=str(tmp_path / "nope.ics"))
    assert err.value.key == f"{KEY}.blackouts_ical" and "nope.ics: cannot be read" in str(err.value)


def test_plan_checks_the_calendar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = load_cluster_yaml(LOCAL_CONFIG)
    good = copy.deepcopy(raw)
    migration = good["available_node_types"]["t4_spot"]["node_config"]["migration"]
    migration["blackouts"] = [{"days": ["mon-fri"], "from": "09:00", "to": "18:00", "tz": "Europe/Berlin"}]
    migration["blackouts_ical"] = write(tmp_path, ICS)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(good))
    assert main(["plan", str(config)]) == 0
    out = capsys.readouterr().out
    assert "blackout mon-fri 09:00-18:00 Europe/Berlin; blackout calendar cal.ics" in out
    migration["blackouts_ical"] = write(tmp_path, "garbage", "broken.ics")
    config.write_text(yaml.safe_dump(good))
    assert main(["plan", str(config)]) == 2
    err = capsys.readouterr().err
    assert "available_node_types.t4_spot.node_config.migration.blackouts_ical" in err and "broken.ics" in err
