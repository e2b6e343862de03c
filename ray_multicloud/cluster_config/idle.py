"""Idle governance in the cluster YAML: a GPU node type's ``idle:`` (next to ``pool:``,
``migration:`` and ``budget:``) and the cluster's ``provider.idle``::

    provider:
      idle:
        hibernate_after: 12h      # no GPU of the cluster in use this long: hibernate (state kept)
        gpu_busy_percent: 5       # a real GPU above 5% utilisation is in use (Ray's metric)
        gpu_signal: auto          # auto | utilisation | allocation
    available_node_types:
      t4_spot:
        resources: {CPU: 4, GPU: 1}
        min_workers: 0
        node_config:
          pool: {accelerator: T4, capacity_types: [spot]}
          idle: {downsize_after: 4h, downsize_to: cpu_worker}
      cpu_worker:
        resources: {CPU: 4}
        node_config:
          pool: {min_vcpus: 4, capacity_types: [spot, on-demand]}

Durations are a number of seconds or a string of a number and a unit: ``20s``, ``30m``, ``4h``,
``1d``, or several (``1h30m``). What the rules do: ``policy/idle.py``.

Contract: pure (no file, clock or logging). Every problem raises ``ConfigError(key, message)``
naming the full YAML key and what to change: a non-mapping, an unknown key (with close matches),
a duration that does not parse or is not > 0, a ``downsize_to`` that is not a node type, is the
head, is the node type itself or has GPUs, an ``idle:`` on a node type without GPUs, or with
``min_workers`` > 0 (the autoscaler would launch the GPU node again), a ``downsize_to`` without
``downsize_after`` or the reverse, ``hibernate_after`` not longer than a pool's
``downsize_after`` (the cluster would hibernate before any downsize), a ``gpu_busy_percent``
outside [0, 100) and an unknown ``gpu_signal``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ray_multicloud.cluster_config.pools import _number, _suggest, _type_name, node_config_key
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.idle import IdleSettings, PoolIdle, human
from ray_multicloud.schema import check_section

POOL_KEYS: tuple[str, ...] = ("downsize_after", "downsize_to")
CLUSTER_KEYS: tuple[str, ...] = ("hibernate_after", "gpu_busy_percent", "gpu_signal")
CLUSTER_KEY = "provider.idle"
SIGNALS: tuple[str, ...] = ("auto", "utilisation", "allocation")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def parse_duration(key: str, value: object) -> float:
    """Seconds in ``value``: a number (seconds) or ``20s`` / ``30m`` / ``4h`` / ``1d`` / ``1h30m``;
    ``ConfigError(key, ...)`` unless it is finite and > 0."""
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a duration such as 4h, 30m or 20s, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if not text or pos != len(text):
            raise ConfigError(key, f"{value!r} is not a duration; write a number and a unit "
                              "(s, m, h, d) such as 4h, 30m, 20s or 1h30m, or a number of seconds")
    else:
        raise ConfigError(key, f"must be a duration such as 4h, 30m or 20s, got {_type_name(value)}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(key, f"must be longer than 0, got {value!r}")
    return seconds


def idle_key(node_type: str) -> str:
    return f"{node_config_key(node_type)}.idle"


def _gpus(spec: object) -> float:
    resources = spec.get("resources") if isinstance(spec, Mapping) else None
    gpu = resources.get("GPU", 0) if isinstance(resources, Mapping) else 0
    return float(gpu) if isinstance(gpu, (int, float)) and not isinstance(gpu, bool) else 0.0


def parse_pool_idle(node_type: str, spec: Mapping[str, Any], types: Mapping[str, Any],
                    head: object) -> PoolIdle | None:
    """A node type's ``node_config.idle`` checked against the other node types (None: none)."""
    node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
    raw = node_config.get("idle") if isinstance(node_config, Mapping) else None
    if raw is None:
        return None
    key = idle_key(node_type)
    raw = check_section(key, raw, POOL_KEYS, example="{downsize_after: 4h, downsize_to: cpu_worker}")
    if node_type == head:
        raise ConfigError(key, "the head is never downsized; put idle: on a GPU worker node type")
    if "downsize_after" not in raw or "downsize_to" not in raw:
        missing = "downsize_to" if "downsize_after" in raw else "downsize_after"
        raise ConfigError(f"{key}.{missing}", "missing: a downsize needs both downsize_after (how long "
                          "the GPUs are idle) and downsize_to (the CPU node type that replaces the node)")
    after = parse_duration(f"{key}.downsize_after", raw["downsize_after"])
    target = raw["downsize_to"]
    if _gpus(spec) <= 0:
        raise ConfigError(key, f"node type {node_type!r} declares no GPU in its resources: there is "
                          "nothing to downsize; drop the section or add resources: {GPU: ...}")
    minimum = spec.get("min_workers", 0)
    if isinstance(minimum, int) and minimum > 0:
        raise ConfigError(key, f"{node_type!r} has min_workers {minimum}: the autoscaler would launch "
                          "the GPU node again after each downsize; set min_workers: 0")
    names = [str(t) for t in types]
    if not isinstance(target, str) or target not in types:
        hint = _suggest(str(target), names)
        raise ConfigError(f"{key}.downsize_to", f"{target!r} is not a node type{hint} "
                          f"(available_node_types: {', '.join(names)})")
    if target == node_type:
        raise ConfigError(f"{key}.downsize_to", "names the node type itself; name a CPU node type")
    if target == head:
        raise ConfigError(f"{key}.downsize_to", f"{target!r} is the head node type; name a CPU worker "
                          "node type (with max_workers > 0)")
    if _gpus(types[target]) > 0:
        raise ConfigError(f"{key}.downsize_to", f"{target!r} has GPUs ({_gpus(types[target]):g}); a "
                          "downsize replaces an idle GPU node by a CPU node type")
    tmax = types[target].get("max_workers") if isinstance(types[target], Mapping) else None
    if isinstance(tmax, int) and tmax < 1:
        raise ConfigError(f"{key}.downsize_to", f"{target!r} has max_workers {tmax}: no node of it can "
                          "launch; raise its max_workers")
    return PoolIdle(node_type=str(node_type), downsize_after_s=after, downsize_to=target)


def parse_idle(cluster_config: Mapping[str, Any]) -> IdleSettings:
    """Every ``idle:`` section of a cluster YAML, checked together; ``ConfigError`` naming the key
    of the first problem."""
    provider = cluster_config.get("provider")
    provider = provider if isinstance(provider, Mapping) else {}
    types = cluster_config.get("available_node_types")
    types = types if isinstance(types, Mapping) else {}
    head = cluster_config.get("head_node_type")
    pools: dict[str, PoolIdle] = {}
    for node_type, spec in types.items():
        if isinstance(spec, Mapping):
            rule = parse_pool_idle(str(node_type), spec, types, head)
            if rule is not None:
                pools[str(node_type)] = rule
    raw = provider.get("idle")
    if raw is None:
        return IdleSettings(pools=pools)
    raw = check_section(CLUSTER_KEY, raw, CLUSTER_KEYS, example="{hibernate_after: 12h}")
    hibernate = None
    if raw.get("hibernate_after") is not None:
        hibernate = parse_duration(f"{CLUSTER_KEY}.hibernate_after", raw["hibernate_after"])
        for rule in pools.values():
            if hibernate <= rule.downsize_after_s:
                raise ConfigError(
                    f"{CLUSTER_KEY}.hibernate_after",
                    f"{human(hibernate)} is not longer than {idle_key(rule.node_type)}.downsize_after "
                    f"({human(rule.downsize_after_s)}): the cluster would hibernate before that node type "
                    "is ever downsized; make hibernate_after longer or drop the downsize",
                )
    busy = _number(f"{CLUSTER_KEY}.gpu_busy_percent", raw.get("gpu_busy_percent", 5.0), minimum=0)
    if busy >= 100:
        raise ConfigError(f"{CLUSTER_KEY}.gpu_busy_percent",
                          f"is a utilisation below 100 (percent), got {busy!r}")
    signal = raw.get("gpu_signal", "auto")
    if signal not in SIGNALS:
        raise ConfigError(f"{CLUSTER_KEY}.gpu_signal", f"{signal!r} is not one of {', '.join(SIGNALS)}")
    return IdleSettings(pools=pools, hibernate_after_s=hibernate, gpu_busy_percent=busy,
                        gpu_signal=str(signal))
