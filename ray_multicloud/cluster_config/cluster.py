"""The whole cluster YAML checked before anything launches: the provider section, then every node
type's pool or pinned offer and its ``migration:``, ``slo:``, ``predictive:``, ``budget:`` and
``idle:`` sections (and ``provider.budget``, ``provider.idle``), against the offers the clouds sell.

``check_cluster`` raises ``ConfigError`` on the first problem, naming its YAML key; ``ray up``
calls it (``MultiCloudNodeProvider.bootstrap_config``), and so does the controller at start.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ray_multicloud.clouds import make_clouds
from ray_multicloud.clouds.base import Cloud
from ray_multicloud.cluster_config.budget import check_pool_budget, parse_budgets
from ray_multicloud.cluster_config.gcs_ft import check_head_commands
from ray_multicloud.cluster_config.idle import parse_idle
from ray_multicloud.cluster_config.migration import parse_migration
from ray_multicloud.cluster_config.pools import node_type_max_workers, parse_offer, parse_pool
from ray_multicloud.cluster_config.predictive import parse_predictive
from ray_multicloud.cluster_config.provider_section import load_settings
from ray_multicloud.cluster_config.slo import check_pool_slo, parse_slo
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy import OfferIndex
from ray_multicloud.types import Offer, PoolSpec

MARKET_LABEL = "ray.io/market-type"


def check_ray_schema(cluster_config: Mapping[str, Any]) -> None:
    """Ray's own cluster-config schema (``ray/autoscaler/ray-schema.json``, which ``ray up`` validates
    the YAML against first): ``ConfigError`` naming the key of the first violation, so ``plan``
    rejects what ``ray up`` would (a misspelt ``max_wrkers``, ``min_workers: two``) before the
    project's own checks. Only the schema: the defaults ``ray up`` fills in later are not required."""
    import json
    import os

    import jsonschema
    import ray.autoscaler

    with open(os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")) as fh:
        schema = json.load(fh)
    try:
        jsonschema.validate(dict(cluster_config), schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        if exc.validator == "additionalProperties":
            unexpected = sorted(set(exc.instance) - set(exc.schema.get("properties", {})))
            key = ".".join(x for x in (where, *unexpected[:1]) if x)
            raise ConfigError(key or "(top level)", f"{exc.message}; Ray's cluster schema has no such key "
                              "(check the spelling)") from None
        raise ConfigError(where or "(top level)", f"Ray's cluster schema: {exc.message}") from None


def check_cluster(
    cluster_config: Mapping[str, Any], *, clouds: Mapping[str, Cloud] | None = None
) -> dict[str, PoolSpec | Offer]:
    """Parse the provider section and every node type's pool or pinned offer; ``ConfigError`` on the first
    problem, naming its key. Returns node type -> its PoolSpec or pinned Offer.

    ``clouds``: the drivers whose offers the pools are checked against (a provider's own, so a
    test's fakes are used); by default each is built from its ``provider.clouds`` entry."""
    # The provider's offer book (catalog, live prices, private pools) is the one truth of what the
    # clouds sell; imported here because the provider itself imports this package.
    from ray_multicloud.provider import OfferBook

    cluster_name = str(cluster_config.get("cluster_name") or "default")
    provider = cluster_config.get("provider")
    if not isinstance(provider, Mapping):
        raise ConfigError("provider", "missing; see cluster_configs/local-multicloud.yaml")
    check_ray_schema(cluster_config)
    settings = load_settings(provider, cluster_name)
    check_head_commands(cluster_config, settings.gcs_ft)
    if clouds is None:
        clouds = make_clouds(settings.clouds, state_dir=str(settings.state_dir))
    book = OfferBook(settings, clouds)
    return check_node_types(cluster_config, book.index(), clouds)


def check_node_types(
    cluster_config: Mapping[str, Any], index: OfferIndex, cloud_names: Collection[str]
) -> dict[str, PoolSpec | Offer]:
    """Every node type's pool (checked against ``index``) or pinned offer (on one of
    ``cloud_names``), its declared market label and its ``migration:`` section, and the head's pin;
    ``ConfigError`` naming the key of the first problem. Shared by ``check_cluster`` and the CLI's
    dry run (which checks against live prices)."""
    types = cluster_config.get("available_node_types")
    if not isinstance(types, Mapping) or not types:
        raise ConfigError("available_node_types", "define at least the head node type")
    head = cluster_config.get("head_node_type")
    if head not in types:
        raise ConfigError("head_node_type", f"{head!r} is not one of available_node_types {sorted(types)}")
    targets: dict[str, PoolSpec | Offer] = {}
    for node_type, spec in types.items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        if not isinstance(node_config, Mapping):
            raise ConfigError(
                f"available_node_types.{node_type}.node_config",
                "missing; give a `pool:` policy or a pinned `offer:`",
            )
        target: PoolSpec | Offer
        if "offer" in node_config:
            if "migration" in node_config:
                raise ConfigError(
                    f"available_node_types.{node_type}.node_config.migration",
                    "a node type pinned to one `offer:` is never moved; drop this section",
                )
            for section in ("slo", "predictive"):
                if section in node_config:
                    raise ConfigError(
                        f"available_node_types.{node_type}.node_config.{section}",
                        f"`{section}:` scales a serving pool; give this node type a `pool:`, not a "
                        "pinned `offer:`",
                    )
            target = parse_offer(node_type, node_config)
            if target.cloud not in cloud_names:
                raise ConfigError(
                    f"available_node_types.{node_type}.node_config.offer.cloud",
                    f"{target.cloud!r} is not under provider.clouds ({sorted(cloud_names)})",
                )
        else:
            if node_type == head:
                raise ConfigError(
                    f"available_node_types.{head}.node_config",
                    "the head node type needs a pinned `offer:` (it is never moved)",
                )
            target = parse_pool(node_type, node_config, index,
                                max_workers=node_type_max_workers(cluster_config, str(node_type)))
            parse_migration(str(node_type), node_config)
            slo = parse_slo(str(node_type), node_config)
            if slo is not None:
                from ray_multicloud.serve.ranking import load_rtt_table

                check_pool_slo(str(node_type), slo, target, index, load_rtt_table())
            predictive = parse_predictive(str(node_type), node_config)
            if predictive is not None and not any(
                    isinstance(v, int | float) and v > 0 for v in (spec.get("resources") or {}).values()):
                raise ConfigError(f"available_node_types.{node_type}.resources",
                                  "missing: `predictive:` asks the autoscaler for nodes of this shape; give "
                                  "the node type its resources, e.g. {CPU: 4, GPU: 1}")
            market = (spec.get("labels") or {}).get(MARKET_LABEL)
            allowed = {c.value for c in target.capacity_types}
            if market is not None and allowed != {str(market)}:
                raise ConfigError(
                    f"available_node_types.{node_type}.labels.{MARKET_LABEL}",
                    f"declares {market!r} but the pool allows {sorted(allowed)}; make capacity_types "
                    f"[{market}] so every node of this type really is {market}",
                )
        targets[node_type] = target
    budgets = parse_budgets(cluster_config)
    for node_type, target in targets.items():
        if isinstance(target, PoolSpec):
            spec = types[node_type]
            minimum = spec.get("min_workers", 0) if isinstance(spec, Mapping) else 0
            for budget in budgets.for_pool(str(node_type)):
                check_pool_budget(budget, target, index,
                                  min_workers=minimum if isinstance(minimum, int) else 0)
    parse_idle(cluster_config)  # idle: sections and provider.idle (cluster_config/idle.py)
    return targets
