"""Budgets in the cluster YAML: per pool (a node type's ``budget:``, next to ``pool:`` and
``migration:``) and per cluster (``provider.budget``)::

    provider:
      ledger: /var/lib/ray_multicloud/ledger.db   # required by monthly_usd (spend is read from it)
      budget:
        max_usd_per_hour: 40          # the running nodes of the whole cluster, summed
        monthly_usd: 20000            # per calendar month, UTC
        warn_at: 0.8                  # warn (log, Ray metric, webhook) at 80% of either limit
        webhook: https://hooks.example.com/finops   # POSTed a JSON body on each warn/over
        webhook_timeout_seconds: 5
    available_node_types:
      a100_spot:
        node_config:
          pool: {accelerator: A100, capacity_types: [spot]}
          budget: {max_usd_per_hour: 12, monthly_usd: 5000}

How a budget is enforced is ``policy/budget.py``: past a limit a new node goes to cheaper capacity
within the $/h cap, or is refused with the reason (the autoscaler logs it and shows it as a
failed launch); nothing already running is stopped.

Contract: the parsers are pure (no file, clock or logging). Every problem raises
``ConfigError(key, message)`` naming the full YAML key and what to change: a non-mapping, an
unknown key (with close matches), a limit that is not a number > 0, a ``warn_at`` outside (0, 1),
a webhook that is not an http(s) URL, a section with no limit at all, a budget on a pinned
``offer:`` node type, a monthly budget without ``provider.ledger``; and (``check_pool_budget``,
called by ``check_cluster``) a $/h cap, the pool's or the cluster's, below the cheapest offer the
pool admits (no node of it could ever launch), or a pool's own cap that cannot pay for its
``min_workers`` at that price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ray_multicloud.cluster_config.pools import _check_keys, _number, _type_name, node_config_key
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy import OfferIndex, matching_offers
from ray_multicloud.policy.budget import DEFAULT_WARN_AT, Budget
from ray_multicloud.types import PoolSpec

BUDGET_KEYS: tuple[str, ...] = (
    "max_usd_per_hour", "monthly_usd", "warn_at", "webhook", "webhook_timeout_seconds",
)
CLUSTER = "cluster"
CLUSTER_KEY = "provider.budget"


@dataclass(frozen=True, slots=True)
class Budgets:
    """The cluster's budget (None: none) and each pool's, by node type."""

    cluster: Budget | None = None
    pools: Mapping[str, Budget] = field(default_factory=dict)

    def for_pool(self, pool: str) -> tuple[Budget, ...]:
        """The budgets a launch into ``pool`` must respect: the pool's, then the cluster's."""
        return tuple(b for b in (self.pools.get(pool), self.cluster) if b is not None)

    def all(self) -> tuple[Budget, ...]:
        return tuple(b for b in (self.cluster, *self.pools.values()) if b is not None)


def budget_key(node_type: str) -> str:
    return f"{node_config_key(node_type)}.budget"


def parse_budget(key: str, scope: str, raw: object) -> Budget | None:
    """The ``Budget`` of the section at ``key`` (None when the section is absent or null)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"must be a mapping (e.g. {{max_usd_per_hour: 10, monthly_usd: 5000}}), "
                          f"got {_type_name(raw)}")
    _check_keys(key, raw, BUDGET_KEYS)
    limits: dict[str, float | None] = {}
    for name in ("max_usd_per_hour", "monthly_usd"):
        value = raw.get(name)
        if value is None:
            limits[name] = None
            continue
        number = _number(f"{key}.{name}", value, minimum=0)
        if number <= 0:
            raise ConfigError(f"{key}.{name}", f"must be > 0, got {value!r}; to stop every launch of "
                              "this pool set its max_workers to 0, to have no limit drop the key")
        limits[name] = number
    if limits["max_usd_per_hour"] is None and limits["monthly_usd"] is None:
        raise ConfigError(key, "sets no limit: give max_usd_per_hour (running nodes' $/h) and/or "
                          "monthly_usd (USD per calendar month), or drop the section")
    warn_at = _number(f"{key}.warn_at", raw.get("warn_at", DEFAULT_WARN_AT), minimum=0, strict=True)
    if warn_at >= 1:
        raise ConfigError(f"{key}.warn_at", f"is a share of the limit below 1 (0.8 = 80%), got {warn_at!r}")
    webhook = raw.get("webhook")
    if webhook is not None:
        url = urlparse(webhook) if isinstance(webhook, str) else None
        if url is None or url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"{key}.webhook", f"must be an http(s) URL, got {webhook!r}")
    timeout = _number(f"{key}.webhook_timeout_seconds", raw.get("webhook_timeout_seconds", 5.0),
                      minimum=0, strict=True)
    return Budget(scope=scope, key=key, max_usd_per_hour=limits["max_usd_per_hour"],
                  monthly_usd=limits["monthly_usd"], warn_at=warn_at, webhook=webhook,
                  webhook_timeout_s=timeout)


def parse_pool_budget(node_type: str, node_config: Mapping[str, Any]) -> Budget | None:
    """A node type's ``budget:`` (None: none). Pinned ``offer:`` node types take none."""
    key = budget_key(node_type)
    raw = node_config.get("budget") if isinstance(node_config, Mapping) else None
    if raw is not None and "offer" in node_config:
        raise ConfigError(key, "a node type pinned to one `offer:` has no pool to budget; put the limit "
                          "under provider.budget (the whole cluster) instead")
    return parse_budget(key, str(node_type), raw)


def parse_cluster_budget(provider_config: Mapping[str, Any]) -> Budget | None:
    """``provider.budget`` (None: none)."""
    return parse_budget(CLUSTER_KEY, CLUSTER, provider_config.get("budget"))


def parse_budgets(cluster_config: Mapping[str, Any]) -> Budgets:
    """Every budget of a cluster YAML; ``ConfigError`` naming the key of the first problem, including
    a ``monthly_usd`` without ``provider.ledger`` to read this month's spend from."""
    provider = cluster_config.get("provider")
    provider = provider if isinstance(provider, Mapping) else {}
    cluster = parse_cluster_budget(provider)
    pools: dict[str, Budget] = {}
    types = cluster_config.get("available_node_types")
    for node_type, spec in (types.items() if isinstance(types, Mapping) else ()):
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        if isinstance(node_config, Mapping):
            budget = parse_pool_budget(str(node_type), node_config)
            if budget is not None:
                pools[str(node_type)] = budget
    budgets = Budgets(cluster, pools)
    for b in budgets.all():
        if b.monthly_usd is not None and not provider.get("ledger"):
            raise ConfigError(f"{b.key}.monthly_usd", "a monthly budget is tracked from the ledger: set "
                              "provider.ledger (a SQLite file path), or use max_usd_per_hour only")
    return budgets


def check_pool_budget(budget: Budget, pool: PoolSpec, index: OfferIndex, *, min_workers: int = 0) -> None:
    """``ConfigError`` when a $/h cap (the pool's or the cluster's) is below every offer the pool
    admits, so it would refuse every launch of the pool, or below what the pool's ``min_workers``
    cost at that cheapest price, so the pool could never reach them."""
    cap = budget.max_usd_per_hour
    offers = list(matching_offers(pool, index))
    if cap is None or not offers:
        return
    cheapest = min(offers, key=lambda o: o.price_per_hour)
    if cheapest.price_per_hour > cap:
        raise ConfigError(
            f"{budget.key}.max_usd_per_hour",
            f"${cap:,.4f}/h is below the cheapest offer pool {pool.name!r} admits ({cheapest.offer_id} at "
            f"${cheapest.price_per_hour:,.4f}/h): no node could ever launch; raise it",
        )
    if budget.scope == pool.name and min_workers * cheapest.price_per_hour > cap:
        raise ConfigError(
            f"{budget.key}.max_usd_per_hour",
            f"${cap:,.4f}/h cannot pay for the pool's min_workers: {min_workers} at the cheapest "
            f"${cheapest.price_per_hour:,.4f}/h cost ${min_workers * cheapest.price_per_hour:,.4f}/h; "
            "raise it or lower min_workers",
        )
