"""Pool and pinned-offer settings of a cluster YAML node type, checked before any node is launched.

Contract: ``parse_pool`` and ``parse_offer`` are pure given their arguments (no file, no clock, no
logging). Every problem raises ``ConfigError(key, message)`` where ``key`` is the full YAML path,
e.g. ``available_node_types.gpu_spot.node_config.pool.accelerator``, and the message says what to
do. ``parse_pool`` rejects, in this order: a non-mapping, unknown keys (with close matches), wrong
types or out-of-range values, an unknown accelerator or cloud (listing known ones), contradictory
limits, and a pool no offer of the index can ever match (naming the filter that removed the last
candidates, e.g. ``max_price_per_hour`` below the cheapest matching offer).

A node type has either a ``pool:`` (the policy chooses the offer per node) or an ``offer:`` (the
node type is pinned to one offer, e.g. the CPU head node on the local cloud).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.assess import Criticality
from ray_multicloud.policy.place import OfferIndex, check_pool
from ray_multicloud.schema import check_keys, suggestion
from ray_multicloud.types import CapacityType, Colocate, Offer, PoolSpec

POOL_KEYS: tuple[str, ...] = (
    "accelerator",
    "accelerator_count",
    "min_vcpus",
    "min_memory_gib",
    "clouds",
    "regions",
    "capacity_types",
    "max_price_per_hour",
    "source_preference",
    "min_clouds",
    "min_on_demand",
    "colocate",
    "team",
    "criticality",
)
OFFER_REQUIRED: tuple[str, ...] = ("cloud", "region", "zone", "instance_type", "capacity", "price_per_hour")
OFFER_OPTIONAL: tuple[str, ...] = (
    "ondemand_price_per_hour",
    "accelerator",
    "accelerator_count",
    "vcpus",
    "memory_gib",
)


def node_config_key(node_type: str) -> str:
    return f"available_node_types.{node_type}.node_config"


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    return suggestion(word, choices)


def _section(node_type: str, node_config: object, name: str) -> tuple[str, Mapping[str, Any]]:
    base = node_config_key(node_type)
    if not isinstance(node_config, Mapping):
        raise ConfigError(base, f"must be a mapping, got {_type_name(node_config)}")
    key = f"{base}.{name}"
    if name not in node_config:
        raise ConfigError(key, f"missing: add a '{name}:' mapping to node type {node_type!r}")
    section = node_config[name]
    if not isinstance(section, Mapping):
        raise ConfigError(key, f"must be a mapping, got {_type_name(section)}")
    return key, section


def _check_keys(key: str, section: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    check_keys(key, section, allowed)  # the one unknown-key check (ray_multicloud/schema.py)


def _number(key: str, value: object, *, minimum: float, strict: bool = False) -> float:
    # bool is an int subclass; "true" as a GPU count is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, got {_type_name(value)} {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum or (strict and number == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(key, f"must be a finite number {bound}, got {value!r}")
    return number


def _integer(key: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be an integer, got {_type_name(value)} {value!r}")
    if value < minimum:
        raise ConfigError(key, f"must be >= {minimum}, got {value}")
    return value


def _string(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"must be a non-empty string, got {_type_name(value)} {value!r}")
    return value.strip()


def _strings(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"must be a list of strings, e.g. [{value!r}], got {_type_name(value)}")
    return tuple(_string(f"{key}[{i}]", item) for i, item in enumerate(value))


def _known_clouds(key: str, names: tuple[str, ...], index: OfferIndex) -> None:
    known = index.clouds()
    lowered = {c.lower() for c in known}
    for i, name in enumerate(names):
        if name.lower() not in lowered:
            raise ConfigError(
                f"{key}[{i}]",
                f"no offers from cloud {name!r}{_suggest(name, list(known))} "
                f"(clouds with offers: {', '.join(known)})",
            )


def parse_pool(
    node_type: str, node_config: Mapping[str, Any], index: OfferIndex, *, max_workers: int | None = None
) -> PoolSpec:
    """Build the ``PoolSpec`` of a node type from its ``node_config.pool`` and check it against ``index``.

    ``max_workers``: the node type's ``max_workers`` (``node_type_max_workers``), which decides the
    default of ``colocate`` when the pool does not set it (``default_colocate``); ``None`` (not known,
    e.g. the provider inside the autoscaler, which sees only ``node_config``) defaults to ``none``. The
    ``ray up`` path writes the resolved default into the pool (``fill_pool_defaults``), so the
    autoscaler's provider and the controller see the same value."""
    key, raw = _section(node_type, node_config, "pool")
    _check_keys(key, raw, POOL_KEYS)

    accelerator: str | None = None
    if raw.get("accelerator") is not None:
        name = _string(f"{key}.accelerator", raw["accelerator"])
        canonical = index.canonical_accelerator(name)
        if canonical is None:
            known = index.accelerators()
            raise ConfigError(
                f"{key}.accelerator",
                f"unknown accelerator {name!r}{_suggest(name, list(known))} (known: {', '.join(known)})",
            )
        accelerator = canonical
    count = 0.0
    if "accelerator_count" in raw:
        count = _number(f"{key}.accelerator_count", raw["accelerator_count"], minimum=0, strict=True)
        if accelerator is None:
            raise ConfigError(
                f"{key}.accelerator_count", "is set but accelerator is not; name the accelerator"
            )
    elif accelerator is not None:
        count = 1.0
    min_vcpus = _number(f"{key}.min_vcpus", raw.get("min_vcpus", 0), minimum=0)
    min_memory = _number(f"{key}.min_memory_gib", raw.get("min_memory_gib", 0), minimum=0)

    clouds = _strings(f"{key}.clouds", raw["clouds"]) if "clouds" in raw else ()
    _known_clouds(f"{key}.clouds", clouds, index)
    regions = _strings(f"{key}.regions", raw["regions"]) if "regions" in raw else ()
    for i, region in enumerate(regions):
        if "*" in region[:-1]:
            raise ConfigError(
                f"{key}.regions[{i}]", f"{region!r}: '*' is allowed only at the end (e.g. 'eu-*')"
            )

    # Unset: any, a declared reservation included (a cloud applies a commitment to matching usage).
    capacity: tuple[CapacityType, ...] = (CapacityType.SPOT, CapacityType.ON_DEMAND, CapacityType.RESERVED)
    if "capacity_types" in raw:
        names = _strings(f"{key}.capacity_types", raw["capacity_types"])
        if not names:
            raise ConfigError(f"{key}.capacity_types",
                              "is empty; allow at least one of 'spot', 'on-demand', 'reserved'")
        parsed: list[CapacityType] = []
        for i, text in enumerate(names):
            try:
                value = CapacityType.parse(text)
            except ValueError as exc:
                raise ConfigError(f"{key}.capacity_types[{i}]", str(exc)) from None
            if value not in parsed:
                parsed.append(value)
        capacity = tuple(parsed)

    max_price: float | None = None
    if raw.get("max_price_per_hour") is not None:
        max_price = _number(f"{key}.max_price_per_hour", raw["max_price_per_hour"], minimum=0, strict=True)
    preference = (
        _strings(f"{key}.source_preference", raw["source_preference"]) if "source_preference" in raw else ()
    )
    _known_clouds(f"{key}.source_preference", preference, index)
    if clouds:
        allowed = {c.lower() for c in clouds}
        for i, name in enumerate(preference):
            if name.lower() not in allowed:
                raise ConfigError(
                    f"{key}.source_preference[{i}]",
                    f"{name!r} is not in clouds {list(clouds)}; add it there or drop it here",
                )
    min_clouds = _integer(f"{key}.min_clouds", raw.get("min_clouds", 1), minimum=1)
    min_on_demand = _integer(f"{key}.min_on_demand", raw.get("min_on_demand", 0), minimum=0)
    colocate = default_colocate(max_workers, min_clouds, min_on_demand, bool(preference))
    if "colocate" in raw:
        text = _string(f"{key}.colocate", raw["colocate"])
        names = tuple(c.value for c in Colocate)
        if text not in names:
            raise ConfigError(
                f"{key}.colocate", f"{text!r} is not one of {', '.join(names)}{_suggest(text, names)}"
            )
        colocate = Colocate(text)
        if colocate is not Colocate.NONE and min_clouds > 1:
            raise ConfigError(
                f"{key}.colocate",
                f"colocate={text} keeps the pool's nodes together, min_clouds={min_clouds} spreads them; "
                "drop one (a training gang wants colocate, a serving pool min_clouds)",
            )

    pool_team(node_type, node_config)  # checked here; the provider tags nodes with it
    pool_criticality(node_type, node_config)  # checked here; `ray-multicloud assess` reads it
    pool = PoolSpec(
        name=node_type,
        accelerator=accelerator,
        accelerator_count=count,
        min_vcpus=min_vcpus,
        min_memory_gib=min_memory,
        clouds=clouds,
        regions=regions,
        capacity_types=capacity,
        max_price_per_hour=max_price,
        source_preference=preference,
        min_clouds=min_clouds,
        min_on_demand=min_on_demand,
        colocate=colocate,
    )
    problems = check_pool(pool, index)
    if problems:
        first = problems[0]
        raise ConfigError(f"{key}.{first.key}", first.message)
    return pool


def pool_team(node_type: str, node_config: Mapping[str, Any]) -> str:
    """The team a node type's spend is charged to: its ``pool.team`` (a non-empty string of at most
    64 characters, no control characters), "" when unset or the node type has no pool."""
    pool = node_config.get("pool") if isinstance(node_config, Mapping) else None
    if not isinstance(pool, Mapping) or pool.get("team") is None:
        return ""
    key = f"{node_config_key(node_type)}.pool.team"
    team = _string(key, pool["team"])
    if len(team) > 64 or any(ord(c) < 32 or c == "\x7f" for c in team):
        raise ConfigError(key, f"{team[:70]!r}: a team label is at most 64 printable characters, "
                          "e.g. ml-research")
    return team


def pool_criticality(node_type: str, node_config: Mapping[str, Any]) -> Criticality:
    """A node type's declared ``pool.criticality`` (low, medium, high; default medium), which
    ``ray-multicloud assess`` weighs when it ranks workloads to hand over to the policy."""
    pool = node_config.get("pool") if isinstance(node_config, Mapping) else None
    if not isinstance(pool, Mapping) or pool.get("criticality") is None:
        return Criticality.MEDIUM
    key = f"{node_config_key(node_type)}.pool.criticality"
    text = _string(key, pool["criticality"]).lower()
    names = tuple(c.value for c in Criticality)
    if text not in names:
        raise ConfigError(key, f"{text!r} is not one of {', '.join(names)}{_suggest(text, names)}")
    return Criticality(text)


def default_colocate(
    max_workers: int | None, min_clouds: int, min_on_demand: int = 0, source_preference: bool = False
) -> Colocate:
    """``colocate`` of a pool that does not set it: ``zone`` when the node type may run more than one
    node (``max_workers > 1``: the nodes of a multi-node Ray Train worker group all-reduce every step,
    slow across zones and paying egress across regions and clouds) and the pool says nothing about
    spreading or sourcing its nodes; ``none`` when it does, because each of those is a serving or
    bursting pool's request that a gang would defeat: ``min_clouds > 1`` (spread over clouds),
    ``min_on_demand > 0`` (a spot/on-demand mix) or a ``source_preference`` (a private pool first,
    bursting to public clouds when it is full: a gang would leave the private machines to regroup).
    Such a pool that *is* a training gang says ``colocate: zone``."""
    if max_workers is None or max_workers <= 1:
        return Colocate.NONE
    if min_clouds > 1 or min_on_demand > 0 or source_preference:
        return Colocate.NONE
    return Colocate.ZONE


def node_type_max_workers(cluster_config: Mapping[str, Any], node_type: str) -> int | None:
    """A node type's ``max_workers``, else the cluster's (Ray's default for a node type), else ``None``;
    a value that is not a whole number counts as unknown (Ray's own schema check rejects it)."""
    spec = (cluster_config.get("available_node_types") or {}).get(node_type)
    value = spec.get("max_workers") if isinstance(spec, Mapping) else None
    if value is None:
        value = cluster_config.get("max_workers")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def fill_pool_defaults(cluster_config: dict[str, Any]) -> None:
    """Write each pool's defaulted ``colocate`` into its YAML section, in place.

    ``ray up`` does this in ``bootstrap_config``: the autoscaler's provider sees only a node type's
    ``node_config``, not its ``max_workers``, so the default must be spelled out in the bootstrap
    config the head runs from. A pool that sets ``colocate`` keeps it; a malformed pool is left as it
    is (``check_cluster`` reports it)."""
    for node_type, spec in (cluster_config.get("available_node_types") or {}).items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        pool = node_config.get("pool") if isinstance(node_config, dict) else None
        if not isinstance(pool, dict) or "colocate" in pool:
            continue
        min_clouds, min_on_demand = pool.get("min_clouds", 1), pool.get("min_on_demand", 0)
        counts = (min_clouds, min_on_demand)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in counts):
            continue
        chosen = default_colocate(node_type_max_workers(cluster_config, str(node_type)), min_clouds,
                                  min_on_demand, bool(pool.get("source_preference")))
        pool["colocate"] = chosen.value


def parse_offer(node_type: str, node_config: Mapping[str, Any]) -> Offer:
    """Build the fixed ``Offer`` of a node type pinned by ``node_config.offer``."""
    key, raw = _section(node_type, node_config, "offer")
    _check_keys(key, raw, OFFER_REQUIRED + OFFER_OPTIONAL)
    for name in OFFER_REQUIRED:
        if name not in raw:
            raise ConfigError(f"{key}.{name}", f"missing: a pinned offer needs {', '.join(OFFER_REQUIRED)}")
    zone = raw["zone"]
    if zone is None:
        zone = ""
    if not isinstance(zone, str):
        raise ConfigError(
            f"{key}.zone", f"must be a string ('' when the cloud prices by region), got {zone!r}"
        )
    try:
        capacity = CapacityType.parse(_string(f"{key}.capacity", raw["capacity"]))
    except ValueError as exc:
        raise ConfigError(f"{key}.capacity", str(exc)) from None
    if capacity is CapacityType.RESERVED:
        raise ConfigError(f"{key}.capacity", "a pinned offer is 'spot' or 'on-demand'; declare a commitment "
                          "under provider.reservations and let a pool use it")
    price = _number(f"{key}.price_per_hour", raw["price_per_hour"], minimum=0)
    ondemand = price
    if raw.get("ondemand_price_per_hour") is not None:
        ondemand = _number(f"{key}.ondemand_price_per_hour", raw["ondemand_price_per_hour"], minimum=0)
        if price > ondemand:
            raise ConfigError(
                f"{key}.price_per_hour",
                f"{price:g} is above ondemand_price_per_hour {ondemand:g}; "
                "a spot price cannot exceed on-demand",
            )
    accelerator = ""
    if raw.get("accelerator") is not None:
        accelerator = _string(f"{key}.accelerator", raw["accelerator"])
    count = _number(
        f"{key}.accelerator_count", raw.get("accelerator_count", 1 if accelerator else 0), minimum=0
    )
    if count > 0 and not accelerator:
        raise ConfigError(f"{key}.accelerator_count", "is set but accelerator is not; name the accelerator")
    return Offer(
        cloud=_string(f"{key}.cloud", raw["cloud"]),
        region=_string(f"{key}.region", raw["region"]),
        zone=zone.strip(),
        instance_type=_string(f"{key}.instance_type", raw["instance_type"]),
        accelerator=accelerator,
        accelerator_count=count,
        vcpus=_number(f"{key}.vcpus", raw.get("vcpus", 0), minimum=0),
        memory_gib=_number(f"{key}.memory_gib", raw.get("memory_gib", 0), minimum=0),
        capacity=capacity,
        price_per_hour=price,
        ondemand_price_per_hour=ondemand,
        source=f"{node_config_key(node_type)}.offer",
    )
