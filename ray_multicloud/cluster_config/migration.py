"""A pool's ``migration:`` section of the cluster YAML: how the controller may move its nodes.

Every setting of the controller on the head lives here, per pool, next to the pool's ``pool:``::

    available_node_types:
      t4_spot:
        node_config:
          pool: {accelerator: T4, capacity_types: [spot, on-demand]}
          migration:
            enabled: true                 # false: this pool's nodes are never moved
            policy: multicloud            # the deadline policy (ray-multicloud simulate --policy NAME)
            horizon_hours: 4              # a price move must pay for itself within this
            min_saving: 0.10              # ... and save at least this share of the current price
            min_net_saving_usd: 0         # ... and this much net over the horizon
            hysteresis_seconds: 1800      # no move of a node launched or moved more recently
            blackouts:                    # no price move inside any of these windows
              - "22:00-02:00"             # every day, UTC (or "22:00-02:00 Europe/Berlin")
              - {start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z}   # once (tz: for naive times)
              - {days: [mon-fri], from: "09:00", to: "18:00", tz: Europe/Berlin}  # business hours
            blackouts_ical: /etc/ray_multicloud/freeze.ics   # or {path: ..., tz: Europe/Berlin}
            egress_usd_per_gb: {inter_cloud: 0.09, inter_region: 0.02, "aws->gcp": 0.12}
            checkpoint_gb: 20             # state a move carries, or "measure" (the job's newest checkpoint)
            checkpoint_seconds: 60        # persisting it
            restart_seconds: 120          # starting and restoring on the replacement
            launch_seconds: 60            # the replacement runs beside the old node this long
            max_disrupted: 1              # nodes of the pool moved at once: a count or "25%"
            drain_deadline_seconds: 30    # the notice a moved node's workload gets
            up_timeout_seconds: 300       # a replacement not up by then is rolled back
            replace_on_notice: restart    # on a spot notice: launch the replacement at once, then
                                          # bring the drain forward so the job restarts onto it
                                          # (true); "launch": the replacement only, the notice's
                                          # own deadline kept (Serve moves its replicas off a
                                          # draining node by itself, model load included); false: off

Business calendars: a weekly window (``days``, ``from``, ``to``, ``tz``) is ``policy.calendar.
WeeklyWindow``: ``days`` lists mon..sun or ranges ("mon-fri", "mon..fri"; default every day),
``from``/``to`` are local times in ``tz`` (an IANA zone, default UTC; daylight saving time follows
the zone), and a window whose ``to`` is not after ``from`` runs past midnight. Quote the times
("09:00"): YAML reads an unquoted 09:00 as the number 540, which is taken as minutes after midnight.
``blackouts_ical`` is an iCalendar (RFC 5545) file read with ``icalendar``: every VEVENT (DTSTART with
DTEND or DURATION; an all-day event lasts its days) is a window; RRULE recurrences (less EXDATE) are
expanded from a year before the file is read to two years after; floating times and all-day dates
are in ``tz`` (default UTC). The file is read where the YAML is checked (``ray up``, ``plan``) and
again by the controller on the head: give an absolute path and put the file there with ``ray up``'s
``file_mounts``. A calendar that cannot be read, does not parse or holds no event is a
``ConfigError`` naming the key and the file.

Contract: ``parse_migration`` is pure (no clock or logging; no file but ``blackouts_ical``'s,
read with the clock for the expansion horizon unless ``now`` is given). Every problem raises
``ConfigError(key, message)`` with the full YAML key (``available_node_types.t4_spot.node_config.
migration.blackouts[0]``) and what to change: a wrong type, an unknown key (with close matches), a
value out of range, an unknown policy, a blackout that never ends (no ``end``, or a daily window of
the whole day: set ``enabled: false`` instead). Defaults are those of ``RebalanceConfig``, which suit
a real cloud; ``cluster_configs/local-multicloud.yaml`` tunes them for the embedded cloud.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ray_multicloud.cluster_config.pools import (
    _check_keys,
    _integer,
    _number,
    _string,
    _suggest,
    _type_name,
    node_config_key,
)
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.calendar import DAY_NAMES, CalendarWindows, WeeklyWindow
from ray_multicloud.policy.deadline import POLICIES
from ray_multicloud.policy.rebalance import Blackout, DailyWindow, RebalanceConfig, Window
from ray_multicloud.pricing.egress import PUBLISHED

MIGRATION_KEYS: tuple[str, ...] = (
    "enabled",
    "policy",
    "horizon_hours",
    "min_saving",
    "min_net_saving_usd",
    "hysteresis_seconds",
    "blackouts",
    "blackouts_ical",
    "egress_usd_per_gb",
    "checkpoint_gb",
    "checkpoint_seconds",
    "restart_seconds",
    "launch_seconds",
    "max_disrupted",
    "drain_deadline_seconds",
    "up_timeout_seconds",
    "replace_on_notice",
)
MEASURE = "measure"
NOTICE_MODES: tuple[str, ...] = ("restart", "launch", "off")
# Without an ``egress_usd_per_gb`` key a pool pays the published rates per ordered cloud pair
# (``pricing.egress.PUBLISHED``) — the rates ``ray-multicloud simulate --checkpoint-gb`` charges — so
# the policy that runs live sees the egress it was measured with.
PUBLISHED_PAIRS: tuple[tuple[str, str, float], ...] = tuple(
    (src, dst, usd) for (src, dst), usd in sorted(PUBLISHED.rates.items())
)
_DEFAULTS = replace(RebalanceConfig(), egress_pairs=PUBLISHED_PAIRS)


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """How many nodes of a pool may be moved at once: ``count``, or ``percent`` of the pool's nodes
    rounded up (at least one while the pool has a node). ``DisruptionBudget(count=0)`` blocks moves."""

    count: int | None = 1
    percent: float | None = None

    def allowed(self, pool_nodes: int) -> int:
        if self.percent is not None:
            return math.ceil(self.percent / 100.0 * pool_nodes - 1e-9) if pool_nodes > 0 else 0
        return int(self.count or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True, slots=True)
class Migration:
    """One pool's parsed ``migration:`` section (module docstring). ``rebalance`` holds the policy's
    knobs; ``checkpoint_gb`` None means "measure it from the job's newest checkpoint"."""

    enabled: bool = True
    rebalance: RebalanceConfig = _DEFAULTS
    checkpoint_gb: float | None = _DEFAULTS.state_gb
    budget: DisruptionBudget = DisruptionBudget()
    drain_deadline_s: float = 30.0
    up_timeout_s: float = 300.0
    replace_on_notice: str = "restart"  # "restart", "launch" or "off" (module docstring)

    def describe(self) -> str:
        """One line for logs and ``ray-multicloud plan``."""
        if not self.enabled:
            return "never moved (migration.enabled: false)"
        c = self.rebalance
        size = "measured" if self.checkpoint_gb is None else f"{self.checkpoint_gb:g} GB"
        blackouts = (f", {len(c.blackouts)} blackout window(s): {'; '.join(str(b) for b in c.blackouts)}"
                     if c.blackouts else "")
        return (
            f"moved by the controller: policy {c.deadline_policy}, a move must save "
            f"{c.min_relative_saving:.0%} and pay back within {c.horizon_hours:g} h, hysteresis "
            f"{c.min_interval_s:.0f} s, checkpoint {size}, at most {self.budget} node(s) at once{blackouts}"
            + {"restart": "", "launch": "; on a notice, replacement launched (drain deadline kept)",
               "off": "; not replaced on a notice"}[self.replace_on_notice]
        )

    def config_for(self, *, measured_gb: float | None = None) -> RebalanceConfig:
        """The ``RebalanceConfig`` of one tick: ``state_gb`` is the measured checkpoint size when the
        section says ``measure`` and a size is known, else the declared (or default) size."""
        if self.checkpoint_gb is None and measured_gb is not None:
            return replace(self.rebalance, state_gb=measured_gb)
        return self.rebalance


def migration_key(node_type: str) -> str:
    return f"{node_config_key(node_type)}.migration"


def parse_migration(
    node_type: str, node_config: Mapping[str, Any], *, now: float | None = None
) -> Migration:
    """The ``Migration`` of a node type; a missing section means the defaults (enabled). ``now``:
    the instant ``blackouts_ical`` recurrences are expanded around (default: the clock)."""
    key = migration_key(node_type)
    raw = node_config.get("migration") if isinstance(node_config, Mapping) else None
    if raw is None:
        return Migration()
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"must be a mapping (e.g. {{enabled: true}}), got {_type_name(raw)}")
    _check_keys(key, raw, MIGRATION_KEYS)

    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{key}.enabled", f"must be true or false, got {_type_name(enabled)} {enabled!r}")
    on_notice = raw.get("replace_on_notice", True)
    if isinstance(on_notice, bool):
        on_notice = "restart" if on_notice else "off"
    if on_notice not in NOTICE_MODES:
        raise ConfigError(
            f"{key}.replace_on_notice",
            f'must be true (= "restart"), false (= "off"), "restart" or "launch", got {on_notice!r}',
        )
    policy = _string(f"{key}.policy", raw.get("policy", _DEFAULTS.deadline_policy))
    if policy not in POLICIES:
        names = tuple(POLICIES)
        raise ConfigError(
            f"{key}.policy",
            f"unknown policy {policy!r}{_suggest(policy, names)} (one of: {', '.join(names)})",
        )

    def num(name: str, default: float, *, strict: bool = False) -> float:
        return _number(f"{key}.{name}", raw.get(name, default), minimum=0, strict=strict)

    inter_cloud, inter_region, pairs = _egress(f"{key}.egress_usd_per_gb", raw.get("egress_usd_per_gb"))
    checkpoint_gb: float | None
    size = raw.get("checkpoint_gb", _DEFAULTS.state_gb)
    if size == MEASURE:
        checkpoint_gb = None
    elif isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 <= size < math.inf:
        raise ConfigError(
            f"{key}.checkpoint_gb", f'must be a finite number of GB >= 0 or "{MEASURE}", got {size!r}'
        )
    else:
        checkpoint_gb = float(size)
    rebalance = RebalanceConfig(
        horizon_hours=num("horizon_hours", _DEFAULTS.horizon_hours, strict=True),
        checkpoint_s=num("checkpoint_seconds", _DEFAULTS.checkpoint_s),
        restart_s=num("restart_seconds", _DEFAULTS.restart_s),
        launch_s=num("launch_seconds", _DEFAULTS.launch_s),
        state_gb=checkpoint_gb if checkpoint_gb is not None else _DEFAULTS.state_gb,
        egress_usd_per_gb=inter_cloud,
        intra_cloud_egress_usd_per_gb=inter_region,
        egress_pairs=pairs,
        min_relative_saving=_fraction(
            f"{key}.min_saving", raw.get("min_saving", _DEFAULTS.min_relative_saving)
        ),
        min_net_saving_usd=num("min_net_saving_usd", _DEFAULTS.min_net_saving_usd),
        min_interval_s=num("hysteresis_seconds", _DEFAULTS.min_interval_s),
        blackouts=_blackouts(f"{key}.blackouts", raw.get("blackouts", []))
        + _ical(f"{key}.blackouts_ical", raw.get("blackouts_ical"), now),
        deadline_policy=policy,
    )
    return Migration(
        enabled=enabled,
        rebalance=rebalance,
        checkpoint_gb=checkpoint_gb,
        budget=_budget(f"{key}.max_disrupted", raw.get("max_disrupted", 1)),
        drain_deadline_s=num("drain_deadline_seconds", 30.0, strict=True),
        up_timeout_s=num("up_timeout_seconds", 300.0, strict=True),
        replace_on_notice=on_notice,
    )


def _fraction(key: str, value: object) -> float:
    number = _number(key, value, minimum=0)
    if number >= 1:
        raise ConfigError(key, f"is a share of the current price, below 1 (0.10 = 10%), got {value!r}")
    return number


def _budget(key: str, value: object) -> DisruptionBudget:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                percent = math.nan
            if not 0 <= percent <= 100:
                raise ConfigError(key, f"{value!r}: a percentage must be within 0%..100%, e.g. '25%'")
            return DisruptionBudget(count=None, percent=percent)
        raise ConfigError(key, f"{value!r}: give a whole number of nodes (1) or a percentage ('25%')")
    return DisruptionBudget(count=_integer(key, value, minimum=0))


def _egress(key: str, value: object) -> tuple[float, float, tuple[tuple[str, str, float], ...]]:
    """``egress_usd_per_gb``: a number (between clouds; regions of one cloud keep the default) or a
    mapping of ``inter_cloud``, ``inter_region`` and ``"SRC->DST"`` pairs, where SRC and DST are a
    cloud (``aws``) or a cloud region (``aws/us-east-1``). Absent: the published rates of every
    ordered pair of aws, gcp and azure (``PUBLISHED_PAIRS``), the others at the defaults."""
    inter_cloud = _DEFAULTS.egress_usd_per_gb
    inter_region = _DEFAULTS.intra_cloud_egress_usd_per_gb
    if value is None:
        return inter_cloud, inter_region, PUBLISHED_PAIRS
    if not isinstance(value, Mapping):
        return _number(key, value, minimum=0), inter_region, ()
    pairs: list[tuple[str, str, float]] = []
    for name, price in value.items():
        sub = f"{key}.{name}"
        if name == "inter_cloud":
            inter_cloud = _number(sub, price, minimum=0)
        elif name == "inter_region":
            inter_region = _number(sub, price, minimum=0)
        elif isinstance(name, str) and "->" in name:
            src, _, dst = (part.strip() for part in name.partition("->"))
            if not src or not dst:
                raise ConfigError(sub, "a pair reads 'SRC->DST' with a cloud or cloud/region on each side")
            pairs.append((src, dst, _number(sub, price, minimum=0)))
        else:
            raise ConfigError(
                sub,
                "unknown key; use inter_cloud, inter_region, or a pair 'aws->gcp' / "
                "'aws/us-east-1->aws/us-west-2'",
            )
    return inter_cloud, inter_region, tuple(pairs)


def _blackouts(key: str, value: object) -> tuple[Blackout, ...]:
    if not isinstance(value, list):
        raise ConfigError(key, f"must be a list of windows (e.g. ['22:00-02:00']), got {_type_name(value)}")
    return tuple(_blackout(f"{key}[{i}]", item) for i, item in enumerate(value))


def _blackout(key: str, value: object) -> Blackout:
    """``"22:00-02:00"`` (every day, UTC; ``"22:00-02:00 Europe/Berlin"`` in that zone),
    ``{start: ISO-8601, end: ISO-8601, tz: ...}`` (once) or ``{days, from, to, tz}`` (weekly)."""
    if isinstance(value, str):
        text, _, tz_name = value.strip().partition(" ")
        start, sep, end = text.partition("-")
        if not sep:
            raise ConfigError(key, f"{value!r}: a daily window reads 'HH:MM-HH:MM' (UTC), e.g. "
                              "'22:00-02:00', or 'HH:MM-HH:MM Europe/Berlin'")
        a, b = _hour(key, start), _hour(key, end)
        if a % 24 == b % 24:
            raise ConfigError(
                key,
                f"{value!r} covers the whole day, so it never ends; to stop moves of this pool set "
                "migration.enabled: false",
            )
        if tz_name.strip():
            zone = _zone(key, tz_name.strip())
            return WeeklyWindow(frozenset(range(7)), round(a * 60), round(b * 60), zone)
        return DailyWindow(a, b)
    if isinstance(value, Mapping):
        if any(k in value for k in ("days", "from", "to")):
            return _weekly(key, value)
        _check_keys(key, value, ("start", "end", "tz"))
        if "end" not in value or value.get("end") is None:
            raise ConfigError(
                f"{key}.end", "missing: a one-off window needs an end (ISO-8601 with a time zone)"
            )
        if "start" not in value or value.get("start") is None:
            raise ConfigError(
                f"{key}.start", "missing: a one-off window needs a start (ISO-8601 with a time zone)"
            )
        tz = _zone(f"{key}.tz", value["tz"]) if value.get("tz") is not None else None
        start_s = _instant(f"{key}.start", value["start"], tz)
        end_s = _instant(f"{key}.end", value["end"], tz)
        if end_s <= start_s:
            raise ConfigError(f"{key}.end", "is not after start; the window would never open")
        return Window(start_s, end_s)
    raise ConfigError(
        key,
        f"must be 'HH:MM-HH:MM', {{start: ..., end: ...}} or {{days: [mon-fri], from: '09:00', to: '18:00', "
        f"tz: Europe/Berlin}}, got {_type_name(value)} {value!r}",
    )


def _zone(key: str, name: object) -> str:
    from ray_multicloud.policy.calendar import zone

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(key, f"must be an IANA time zone name such as Europe/Berlin, got {name!r}")
    try:
        zone(name.strip())
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    return name.strip()


def _weekly(key: str, value: Mapping[str, Any]) -> WeeklyWindow:
    """``{days: [mon-fri], from: "09:00", to: "18:00", tz: Europe/Berlin}`` (module docstring)."""
    _check_keys(key, value, ("days", "from", "to", "tz"))
    for name in ("from", "to"):
        if value.get(name) is None:
            raise ConfigError(f"{key}.{name}", "missing: a weekly window needs from and to, e.g. '09:00'")
    days = _days(f"{key}.days", value.get("days", ["mon-sun"]))
    start = _minute(f"{key}.from", value["from"])
    end = _minute(f"{key}.to", value["to"])
    tz = _zone(f"{key}.tz", value.get("tz", "UTC"))
    if start % 1440 == end % 1440 and len(days) == 7:
        raise ConfigError(key, "covers the whole week, so it never ends; to stop moves of this pool set "
                          "migration.enabled: false")
    return WeeklyWindow(days, start, end, tz)


def _days(key: str, value: object) -> frozenset[int]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(key, f"must be a list of days, e.g. [mon-fri] or [sat, sun], got {value!r}")
    out: set[int] = set()
    for i, item in enumerate(items):
        text = str(item).strip().lower()
        first, sep, last = text.replace("..", "-").partition("-")
        a, b = _day(f"{key}[{i}]", first), _day(f"{key}[{i}]", last if sep else first)
        out.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    return frozenset(out)


def _day(key: str, text: str) -> int:
    name = text.strip().lower()[:3]
    if name not in DAY_NAMES or len(text.strip()) < 3:
        raise ConfigError(key, f"{text!r} is not a day: use {', '.join(DAY_NAMES)} or a range like mon-fri")
    return DAY_NAMES.index(name)


def _minute(key: str, value: object) -> int:
    # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540: minutes after midnight.
    if isinstance(value, int) and not isinstance(value, bool):
        if not (value == 0 or 60 <= value <= 1440):
            raise ConfigError(key, f"{value!r}: quote the time, e.g. '00:45' (a bare number is read as "
                              "minutes after midnight, as YAML reads an unquoted HH:MM)")
        return value
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a time of day 'HH:MM', got {_type_name(value)} {value!r}")
    return round(_hour(key, value) * 60)


def _ical(key: str, value: object, now: float | None) -> tuple[Blackout, ...]:
    """``blackouts_ical: PATH`` or ``{path: PATH, tz: ZONE}`` (module docstring)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        _check_keys(key, value, ("path", "tz"))
        path, tz = value.get("path"), _zone(f"{key}.tz", value.get("tz", "UTC"))
    else:
        path, tz = value, "UTC"
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(key, f"must be the path of an iCalendar (.ics) file, got {path!r}")
    return (read_ical(key, path.strip(), tz=tz, now=now),)


ICAL_PAST_DAYS = 366
ICAL_FUTURE_DAYS = 731


def read_ical(key: str, path: str, *, tz: str = "UTC", now: float | None = None) -> CalendarWindows:
    """The windows of the iCalendar file at ``path`` (module docstring); ``ConfigError(key, ...)``
    naming the file when it cannot be read, does not parse, or holds no event."""
    import time
    from datetime import date, timedelta
    from pathlib import Path
    from zoneinfo import ZoneInfo

    def bad(problem: str) -> ConfigError:
        return ConfigError(key, f"calendar {path}: {problem}")

    try:
        import icalendar
        from dateutil.rrule import rrulestr
    except ImportError:
        raise bad("reading it needs the icalendar package: pip install 'ray_multicloud[calendar]'") from None
    try:
        data = Path(path).expanduser().read_bytes()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: "~user" of no such user
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise bad(f"cannot be read ({why}); give an absolute path, and on the head put the file there "
                  "with file_mounts") from None
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except (ValueError, KeyError, IndexError) as exc:
        raise bad(f"is not an iCalendar (RFC 5545) file: {exc}") from None
    zone = ZoneInfo(tz)
    at = time.time() if now is None else now
    lo = datetime.fromtimestamp(at, zone) - timedelta(days=ICAL_PAST_DAYS)
    hi = datetime.fromtimestamp(at, zone) + timedelta(days=ICAL_FUTURE_DAYS)

    def moment(value: object, what: str) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=zone)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=zone)
        raise ValueError(f"{what} is not a date or a date-time")

    intervals: list[tuple[float, float]] = []
    events = list(calendar.walk("VEVENT"))
    for n, event in enumerate(events, 1):
        name = f"event {n} ({event.get('SUMMARY', 'no summary')})"
        try:
            if "DTSTART" not in event:
                raise ValueError("has no DTSTART")
            raw_start = event.decoded("DTSTART")
            start = moment(raw_start, "DTSTART")
            if "DTEND" in event:
                length = moment(event.decoded("DTEND"), "DTEND") - start
            elif "DURATION" in event:
                length = event.decoded("DURATION")
            elif not isinstance(raw_start, datetime):
                length = timedelta(days=1)  # RFC 5545: an all-day event without an end lasts its day
            else:
                raise ValueError("has neither DTEND nor DURATION")
            if not isinstance(length, timedelta) or length <= timedelta(0):
                raise ValueError("ends at or before it starts")
            starts = [start]
            if "RRULE" in event:
                text = event["RRULE"].to_ical()
                rule = rrulestr(text.decode() if isinstance(text, bytes) else str(text), dtstart=start)
                exdates = event.get("EXDATE") or []
                excluded: set[float] = {
                    moment(d.dt, "EXDATE").timestamp()
                    for entry in (exdates if isinstance(exdates, list) else [exdates])
                    for d in entry.dts
                }
                starts = [s for s in rule.between(lo - length, hi, inc=True) if s.timestamp() not in excluded]
        except (ValueError, TypeError, KeyError) as exc:
            raise bad(f"{name}: {exc}") from None
        intervals += [(s.timestamp(), (s + length).timestamp()) for s in starts]
    if not events:
        raise bad("holds no VEVENT: add the blackout windows as events, or drop blackouts_ical")
    return CalendarWindows.from_intervals(Path(path).name, intervals)


def _hour(key: str, text: str) -> float:
    hours, _, minutes = text.strip().partition(":")
    try:
        h, m = int(hours), int(minutes or 0)
    except ValueError:
        raise ConfigError(key, f"{text.strip()!r} is not HH:MM (UTC), e.g. '22:00'") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ConfigError(key, f"{text.strip()!r} is not a time of day between 00:00 and 24:00")
    return h + m / 60.0


def _instant(key: str, value: object, tz: str | None = None) -> float:
    # YAML reads an unquoted timestamp as a datetime already.
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(key, f"{value!r} is not an ISO-8601 time, e.g. 2026-12-24T00:00:00Z") from None
    else:
        raise ConfigError(key, f"must be an ISO-8601 time, got {_type_name(value)} {value!r}")
    if when.tzinfo is None:
        if tz is None:
            raise ConfigError(key, f"{value!s} has no time zone; end it with Z for UTC, or give the "
                              "window a tz (e.g. tz: Europe/Berlin)")
        from zoneinfo import ZoneInfo

        when = when.replace(tzinfo=ZoneInfo(tz))
    return when.timestamp()
