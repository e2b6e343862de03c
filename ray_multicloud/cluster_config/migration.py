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
            blackouts: ["22:00-02:00", {start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z}]
            egress_usd_per_gb: {inter_cloud: 0.09, inter_region: 0.02, "aws->gcp": 0.12}
            checkpoint_gb: 20             # state a move carries, or "measure" (the job's newest checkpoint)
            checkpoint_seconds: 60        # persisting it
            restart_seconds: 120          # starting and restoring on the replacement
            launch_seconds: 60            # the replacement runs beside the old node this long
            max_disrupted: 1              # nodes of the pool moved at once: a count or "25%"
            drain_deadline_seconds: 30    # the notice a moved node's workload gets
            up_timeout_seconds: 300       # a replacement not up by then is rolled back

Contract: ``parse_migration`` is pure (no file, clock or logging). Every problem raises
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
from ray_multicloud.policy.deadline import POLICIES
from ray_multicloud.policy.rebalance import Blackout, DailyWindow, RebalanceConfig, Window

MIGRATION_KEYS: tuple[str, ...] = (
    "enabled",
    "policy",
    "horizon_hours",
    "min_saving",
    "min_net_saving_usd",
    "hysteresis_seconds",
    "blackouts",
    "egress_usd_per_gb",
    "checkpoint_gb",
    "checkpoint_seconds",
    "restart_seconds",
    "launch_seconds",
    "max_disrupted",
    "drain_deadline_seconds",
    "up_timeout_seconds",
)
MEASURE = "measure"
_DEFAULTS = RebalanceConfig()


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

    def describe(self) -> str:
        """One line for logs and ``ray-multicloud plan``."""
        if not self.enabled:
            return "never moved (migration.enabled: false)"
        c = self.rebalance
        size = "measured" if self.checkpoint_gb is None else f"{self.checkpoint_gb:g} GB"
        blackouts = f", {len(c.blackouts)} blackout window(s)" if c.blackouts else ""
        return (
            f"moved by the controller: policy {c.deadline_policy}, a move must save "
            f"{c.min_relative_saving:.0%} and pay back within {c.horizon_hours:g} h, hysteresis "
            f"{c.min_interval_s:.0f} s, checkpoint {size}, at most {self.budget} node(s) at once{blackouts}"
        )

    def config_for(self, *, measured_gb: float | None = None) -> RebalanceConfig:
        """The ``RebalanceConfig`` of one tick: ``state_gb`` is the measured checkpoint size when the
        section says ``measure`` and a size is known, else the declared (or default) size."""
        if self.checkpoint_gb is None and measured_gb is not None:
            return replace(self.rebalance, state_gb=measured_gb)
        return self.rebalance


def migration_key(node_type: str) -> str:
    return f"{node_config_key(node_type)}.migration"


def parse_migration(node_type: str, node_config: Mapping[str, Any]) -> Migration:
    """The ``Migration`` of a node type; a missing section means the defaults (enabled)."""
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
        blackouts=_blackouts(f"{key}.blackouts", raw.get("blackouts", [])),
        deadline_policy=policy,
    )
    return Migration(
        enabled=enabled,
        rebalance=rebalance,
        checkpoint_gb=checkpoint_gb,
        budget=_budget(f"{key}.max_disrupted", raw.get("max_disrupted", 1)),
        drain_deadline_s=num("drain_deadline_seconds", 30.0, strict=True),
        up_timeout_s=num("up_timeout_seconds", 300.0, strict=True),
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
    cloud (``aws``) or a cloud region (``aws/us-east-1``)."""
    inter_cloud = _DEFAULTS.egress_usd_per_gb
    inter_region = _DEFAULTS.intra_cloud_egress_usd_per_gb
    if value is None:
        return inter_cloud, inter_region, ()
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
    """``"22:00-02:00"`` (every day, UTC) or ``{start: ISO-8601, end: ISO-8601}`` (once)."""
    if isinstance(value, str):
        start, sep, end = value.partition("-")
        if not sep:
            raise ConfigError(key, f"{value!r}: a daily window reads 'HH:MM-HH:MM' (UTC), e.g. '22:00-02:00'")
        a, b = _hour(key, start), _hour(key, end)
        if a % 24 == b % 24:
            raise ConfigError(
                key,
                f"{value!r} covers the whole day, so it never ends; to stop moves of this pool set "
                "migration.enabled: false",
            )
        return DailyWindow(a, b)
    if isinstance(value, Mapping):
        _check_keys(key, value, ("start", "end"))
        if "end" not in value or value.get("end") is None:
            raise ConfigError(
                f"{key}.end", "missing: a one-off window needs an end (ISO-8601 with a time zone)"
            )
        if "start" not in value or value.get("start") is None:
            raise ConfigError(
                f"{key}.start", "missing: a one-off window needs a start (ISO-8601 with a time zone)"
            )
        start_s, end_s = _instant(f"{key}.start", value["start"]), _instant(f"{key}.end", value["end"])
        if end_s <= start_s:
            raise ConfigError(f"{key}.end", "is not after start; the window would never open")
        return Window(start_s, end_s)
    raise ConfigError(
        key, f"must be 'HH:MM-HH:MM' or {{start: ..., end: ...}}, got {_type_name(value)} {value!r}"
    )


def _hour(key: str, text: str) -> float:
    hours, _, minutes = text.strip().partition(":")
    try:
        h, m = int(hours), int(minutes or 0)
    except ValueError:
        raise ConfigError(key, f"{text.strip()!r} is not HH:MM (UTC), e.g. '22:00'") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ConfigError(key, f"{text.strip()!r} is not a time of day between 00:00 and 24:00")
    return h + m / 60.0


def _instant(key: str, value: object) -> float:
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
        raise ConfigError(key, f"{value!s} has no time zone; end it with Z for UTC")
    return when.timestamp()
