"""A serving pool's ``predictive:`` section: forecast its demand and ask for capacity ``lead`` ahead.

    available_node_types:
      serve_pool:
        resources: {CPU: 4, GPU: 1}
        node_config:
          pool: {accelerator: T4, capacity_types: [spot, on-demand]}
          slo: {p95_ms: 200}       # its Serve policy measures the request rate the forecast reads
          predictive:
            replica_rps: 12        # requests/s one replica serves within the SLO (required)
            replicas_per_node: 1   # replicas one node of this type holds (default 1)
            lead: 6m               # node start + replica ready; without it: measured (below)
            replica_ready: 60s     # replica start + model load, added to measured node starts
            tick: 30s              # one sample of the rate history (default 30s)
            history: 15d           # history kept and backtested on (default 15d: two weeks, the
                                   # least a weekly season is offered with)
            refit: 1h              # choose the forecaster again this often (default 1h)
            quantile: 0.9          # of the backtest's pinball loss (default 0.9)
            min_replicas: 1        # never ask for fewer (default 0)
            max_replicas: 16       # never ask for more (default: no cap but the pool's max_workers)
            enabled: true          # false: keep the section, ask for nothing
            peaks:                 # known peaks, asked for `lead` before they open
              - {days: [mon-fri], from: "09:00", to: "11:00", tz: Europe/Berlin, replicas: 8}
              - {start: 2026-11-27T00:00:00Z, end: 2026-11-28T00:00:00Z, replicas: 20}
            peaks_ical: {path: /etc/ray_multicloud/launches.ics, tz: UTC, replicas: 12}

A peak window is written as a ``migration.blackouts`` window (``cluster_config.migration``: a weekly
``{days, from, to, tz}`` or a one-off ``{start, end, tz}``) plus ``replicas``; ``peaks_ical`` reads
an iCalendar file's events as ``migration.blackouts_ical`` does, each event a peak of ``replicas``.
The lead: a ``lead:`` given is used as written. Without one, the controller measures the pool's node
starts (launch to its Ray node alive, as it sees them; ``predictive_guard``) and, from the third on,
uses their median plus ``replica_ready`` (default 60 s); until then 5 minutes.

Durations are a number of seconds or ``20s`` / ``30m`` / ``4h`` / ``1d`` (``cluster_config.idle``).

Contract: pure but for ``peaks_ical``'s file (read with the clock for the recurrence horizon
unless ``now`` is given). Every problem raises ``ConfigError(key, message)`` naming the full YAML
key: a non-mapping, an unknown key (with close matches), a missing ``replica_rps``, a value of the
wrong type or out of range, ``max_replicas`` below ``min_replicas``, a ``tick`` longer than
``lead`` or a ``history`` not longer than it, a peak without ``replicas`` or with a window that does
not parse, and a calendar that cannot be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray_multicloud.cluster_config.idle import parse_duration
from ray_multicloud.cluster_config.migration import _blackout, _check_keys, _instant, _zone, read_ical
from ray_multicloud.cluster_config.pools import node_config_key
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.predictive import Peak, PredictiveSpec
from ray_multicloud.schema import Field, Section, boolean, check_section, number

DEFAULT_LEAD_S = 300.0
DEFAULT_TICK_S = 30.0
DEFAULT_HISTORY_S = 15 * 86_400.0
DEFAULT_REFIT_S = 3600.0
DEFAULT_REPLICA_READY_S = 60.0


def _duration(key: str, value: Any) -> None:
    parse_duration(key, value)


def _list(key: str, value: Any) -> None:
    if not isinstance(value, list):
        raise ConfigError(key, f"must be a list of peak windows, e.g. [{{days: [mon-fri], from: '09:00', "
                          f"to: '11:00', replicas: 8}}], got {type(value).__name__}")


SECTION = Section(
    {
        "enabled": Field(boolean(), doc="false: ask for nothing"),
        "replica_rps": Field(number(minimum=0, strict=True), required=True,
                             doc="requests/s one replica serves within the SLO, e.g. replica_rps: 12"),
        "replicas_per_node": Field(number(minimum=1, integer=True)),
        "lead": Field(_duration),
        "replica_ready": Field(_duration),
        "tick": Field(_duration),
        "history": Field(_duration),
        "refit": Field(_duration),
        "quantile": Field(number(minimum=0, strict=True)),
        "min_replicas": Field(number(minimum=0, integer=True)),
        "max_replicas": Field(number(minimum=1, integer=True), nullable=True),
        "peaks": Field(_list),
        "peaks_ical": Field(nullable=True),
    },
    example="{replica_rps: 12, lead: 6m}",
)


@dataclass(frozen=True, slots=True)
class PoolPredictive:
    """One pool's predictive settings: the decision's spec, its peaks, how much history to keep and
    how often to choose the forecaster again."""

    node_type: str
    spec: PredictiveSpec
    peaks: tuple[Peak, ...] = ()
    history_s: float = DEFAULT_HISTORY_S
    refit_s: float = DEFAULT_REFIT_S
    enabled: bool = True
    lead_measured: bool = False  # no ``lead:`` written: measured node starts + replica_ready_s
    replica_ready_s: float = DEFAULT_REPLICA_READY_S

    def describe(self) -> str:
        s = self.spec
        cap = f", at most {s.max_replicas}" if s.max_replicas is not None else ""
        lead = (f"lead measured (node starts + {self.replica_ready_s:g} s; {s.lead_s:g} s until then)"
                if self.lead_measured else f"lead {s.lead_s:g} s")
        return (f"predictive: {s.replica_rps:g} req/s per replica, {s.replicas_per_node} per node, {lead}, "
                f"at least {s.min_replicas}{cap}, {len(self.peaks)} peak window(s)"
                + ("" if self.enabled else " (disabled)"))


def predictive_key(node_type: str) -> str:
    return f"{node_config_key(node_type)}.predictive"


def parse_predictive(node_type: str, node_config: Mapping[str, Any], *,
                     now: float | None = None) -> PoolPredictive | None:
    """The node type's ``predictive:`` section, or None when it has none (module docstring)."""
    key = predictive_key(node_type)
    raw = node_config.get("predictive") if isinstance(node_config, Mapping) else None
    if raw is None:
        return None
    raw = check_section(key, raw, SECTION)
    lead = parse_duration(f"{key}.lead", raw["lead"]) if "lead" in raw else DEFAULT_LEAD_S
    tick = parse_duration(f"{key}.tick", raw["tick"]) if "tick" in raw else DEFAULT_TICK_S
    history = parse_duration(f"{key}.history", raw["history"]) if "history" in raw else DEFAULT_HISTORY_S
    refit = parse_duration(f"{key}.refit", raw["refit"]) if "refit" in raw else DEFAULT_REFIT_S
    ready = (parse_duration(f"{key}.replica_ready", raw["replica_ready"]) if "replica_ready" in raw
             else DEFAULT_REPLICA_READY_S)
    if tick > lead:
        raise ConfigError(f"{key}.tick", f"{tick:g} s is longer than lead ({lead:g} s): a forecast one "
                          "tick ahead would come too late; make tick at most the lead")
    if history <= lead:
        raise ConfigError(f"{key}.history", f"{history:g} s is not longer than lead ({lead:g} s): nothing "
                          "could be backtested; keep more history")
    quantile = float(raw.get("quantile", 0.9))
    if not quantile < 1.0:
        raise ConfigError(f"{key}.quantile", f"must be in (0, 1), got {quantile!r}")
    minimum = int(raw.get("min_replicas", 0))
    maximum = raw.get("max_replicas")
    if maximum is not None and int(maximum) < minimum:
        raise ConfigError(f"{key}.max_replicas", f"{maximum} is below min_replicas ({minimum})")
    spec = PredictiveSpec(
        replica_rps=float(raw["replica_rps"]), lead_s=lead, tick_s=tick,
        replicas_per_node=int(raw.get("replicas_per_node", 1)), min_replicas=minimum,
        max_replicas=None if maximum is None else int(maximum), quantile=quantile,
    )
    peaks = [_peak(f"{key}.peaks[{i}]", item) for i, item in enumerate(raw.get("peaks") or [])]
    if raw.get("peaks_ical") is not None:
        peaks.append(_ical_peak(f"{key}.peaks_ical", raw["peaks_ical"], now))
    if maximum is not None:
        for i, p in enumerate(peaks):
            if p.replicas > int(maximum):
                raise ConfigError(f"{key}.peaks[{i}].replicas" if i < len(raw.get("peaks") or [])
                                  else f"{key}.peaks_ical.replicas",
                                  f"{p.replicas} is above max_replicas ({maximum}); raise max_replicas "
                                  "or ask the peak for fewer")
    return PoolPredictive(str(node_type), spec, tuple(peaks), history, refit, bool(raw.get("enabled", True)),
                          lead_measured="lead" not in raw, replica_ready_s=ready)


def _replicas(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, f"must be a whole number of replicas >= 1, got {value!r}")
    return value


def _peak(key: str, value: object) -> Peak:
    """``{<a migration.blackouts window as a mapping>, replicas: N}``."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a mapping such as {days: [mon-fri], from: '09:00', to: '11:00', "
                          f"tz: Europe/Berlin, replicas: 8}} or {{start: ..., end: ..., replicas: 8}}, got "
                          f"{type(value).__name__} {value!r}")
    _check_keys(key, value, ("days", "from", "to", "tz", "start", "end", "replicas"))
    if value.get("replicas") is None:
        raise ConfigError(f"{key}.replicas", "missing: how many replicas the peak needs, e.g. replicas: 8")
    replicas = _replicas(f"{key}.replicas", value["replicas"])
    window = _blackout(key, {k: v for k, v in value.items() if k != "replicas"})
    return Peak(window, replicas, str(window).replace("blackout ", "", 1))


def _ical_peak(key: str, value: object, now: float | None) -> Peak:
    """``peaks_ical: {path: PATH, tz: ZONE, replicas: N}``."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a mapping {{path: FILE.ics, replicas: 8, tz: UTC}}, got {value!r}")
    _check_keys(key, value, ("path", "tz", "replicas"))
    if value.get("replicas") is None:
        raise ConfigError(f"{key}.replicas", "missing: how many replicas each event needs, e.g. replicas: 8")
    replicas = _replicas(f"{key}.replicas", value["replicas"])
    path = value.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"{key}.path", f"must be the path of an iCalendar (.ics) file, got {path!r}")
    tz = _zone(f"{key}.tz", value.get("tz", "UTC"))
    windows = read_ical(f"{key}.path", path.strip(), tz=tz, now=now)
    return Peak(windows, replicas, f"calendar {windows.label}")


def parse_all_predictive(cluster_config: Mapping[str, Any], *,
                         now: float | None = None) -> dict[str, PoolPredictive]:
    """Every node type's ``predictive:`` section (node types without one are left out)."""
    types = cluster_config.get("available_node_types")
    out: dict[str, PoolPredictive] = {}
    if not isinstance(types, Mapping):
        return out
    for name, spec in types.items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        if isinstance(node_config, Mapping):
            found = parse_predictive(str(name), node_config, now=now)
            if found is not None:
                out[str(name)] = found
    return out


PEAKS_FILE_KEYS = ("peaks", "peaks_ical", "trace_start")


def read_peaks_file(path: str, *, now: float | None = None) -> tuple[float | None, tuple[Peak, ...]]:
    """``simulate-serving --peaks FILE``: a YAML mapping with a pool section's ``peaks:`` and
    ``peaks_ical:`` and, optionally, ``trace_start`` (ISO-8601 with a time zone: the wall-clock time
    of the traces' first tick). Returns (trace_start or None, the peaks); ``ConfigError`` naming the
    file and key on a problem."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(path, f"cannot read the peaks file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"is not YAML: {exc}") from None
    raw = check_section(path, raw, PEAKS_FILE_KEYS,
                        example="{peaks: [{days: [mon-fri], from: '09:00', to: '11:00', replicas: 8}]}")
    items = raw.get("peaks") or []
    _list(f"{path}.peaks", items)
    peaks = [_peak(f"{path}.peaks[{i}]", item) for i, item in enumerate(items)]
    if raw.get("peaks_ical") is not None:
        peaks.append(_ical_peak(f"{path}.peaks_ical", raw["peaks_ical"], now))
    if not peaks:
        raise ConfigError(path, "holds no peak: give peaks: [...] or peaks_ical: {...}")
    start = None if raw.get("trace_start") is None else _instant(f"{path}.trace_start", raw["trace_start"])
    return start, tuple(peaks)
