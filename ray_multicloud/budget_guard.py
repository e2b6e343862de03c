"""Budgets at run time: the figures from the ledger and the fleet, the alerts, the launch verdict.

The edge around the pure ``policy/budget.py``. ``BudgetGuard.verdict`` is what the provider asks
before it adds a node; ``BudgetGuard.statuses`` grades every budget (the controller may call it
each tick so alerts fire while nothing launches). Figures:

- the running $/h of a scope is the summed current offer price of its live nodes (pending,
  running or draining: all bill) in the fleet the caller passes;
- this month's spend is the ledger's: per instance, its cost up to ``now`` less its cost up to
  the first instant of the month (UTC), summed over the cluster's (or the pool's) rows.

Alerts: when a budget's level rises (ok -> warn, warn -> over, ok -> over) the guard logs one
warning, POSTs the budget's webhook (JSON below; in a background thread, with the budget's
timeout; a failure is logged, never raised), and the level is remembered, so the same level is
not announced again until it has fallen and risen anew. Every call sets the Ray gauge
``ray_multicloud_budget_used_fraction`` (``metrics.CostMetrics.publish_budgets``). Webhook body::

    {"cluster": "rmc-local", "scope": "t4_spot", "level": "warn", "key": "available_node_types...budget",
     "usd_per_hour": 2.4, "max_usd_per_hour": 3.0, "month_spend_usd": 12.5, "monthly_usd": null,
     "forecast_usd": 1800.1, "reasons": ["pool 't4_spot' runs $2.4000/h of its $3.00/h cap (80%) ..."],
     "at": 1764409200.0}
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import urllib.request
from collections.abc import Callable, Sequence

from ray_multicloud.ledger import Ledger, LedgerError
from ray_multicloud.metrics import CostMetrics
from ray_multicloud.policy.budget import (
    Budget,
    BudgetLevel,
    BudgetStatus,
    LaunchVerdict,
    assess,
    launch_verdict,
    month_bounds,
)
from ray_multicloud.types import FleetNode, NodeState

logger = logging.getLogger(__name__)

Post = Callable[[str, bytes, float], None]
BILLING_STATES = frozenset({NodeState.PENDING, NodeState.RUNNING, NodeState.DRAINING})


def post_json(url: str, body: bytes, timeout_s: float) -> None:
    """POST ``body`` as JSON to ``url``; raises on a network error or a non-2xx answer."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        answer.read()


def usd_per_hour(fleet: Sequence[FleetNode], scope: str) -> float:
    """Summed current price of the live nodes of ``scope`` (``"cluster"``: all of them)."""
    return sum((n.offer.price_per_hour for n in fleet
                if n.state in BILLING_STATES and (scope == "cluster" or n.pool == scope)), 0.0)


def month_spend(ledger: Ledger, cluster: str, now: float) -> tuple[float, dict[str, float]]:
    """This calendar month's (UTC) spend of ``cluster`` up to ``now``: in total and per pool."""
    start, _ = month_bounds(now)
    before = {r.instance_id: r.cost_usd for r in ledger.spend(start) if r.cluster == cluster}
    per_pool: dict[str, float] = {}
    for r in ledger.spend(now):
        if r.cluster == cluster:
            per_pool[r.pool] = per_pool.get(r.pool, 0.0) + r.cost_usd - before.get(r.instance_id, 0.0)
    return sum(per_pool.values(), 0.0), per_pool


class BudgetGuard:
    """Budgets of one cluster at run time (module docstring). Thread-safe.

    ``post``: how a webhook is sent (a test passes a recorder); ``background``: send it from a
    daemon thread (False: inline, for tests); ``cache_s``: how long a ledger read is reused."""

    def __init__(self, cluster: str, ledger: Ledger | None, *, post: Post = post_json,
                 metrics: CostMetrics | None = None, background: bool = True, cache_s: float = 10.0) -> None:
        self.cluster = cluster
        self._ledger = ledger
        self._post = post
        self._metrics = metrics if metrics is not None else CostMetrics(cluster)
        self._background = background
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._levels: dict[str, BudgetLevel] = {}
        self._spend: tuple[float, float, dict[str, float]] | None = None  # (read at, total, per pool)

    def _month_spend(self, scope: str, now: float) -> float:
        with self._lock:
            cached = self._spend
        fresh = (cached is not None and 0 <= now - cached[0] < self._cache_s
                 and month_bounds(cached[0]) == month_bounds(now))
        if not fresh:
            if self._ledger is None:
                return 0.0
            try:
                total, per_pool = month_spend(self._ledger, self.cluster, now)
            except (LedgerError, sqlite3.Error, OSError) as exc:
                logger.warning("budget: cannot read this month's spend from the ledger (%s); using the "
                               "last figure read", exc)
                if cached is None:
                    return 0.0
            else:
                cached = (now, total, per_pool)
                with self._lock:
                    self._spend = cached
        assert cached is not None
        return cached[1] if scope == "cluster" else cached[2].get(scope, 0.0)

    def statuses(
        self, budgets: Sequence[Budget], fleet: Sequence[FleetNode], now: float
    ) -> list[BudgetStatus]:
        """Grade each budget now; announce levels that rose; set the gauge."""
        out = [
            assess(b, usd_per_hour=usd_per_hour(fleet, b.scope),
                   month_spend_usd=self._month_spend(b.scope, now), now=now)
            for b in budgets
        ]
        for status in out:
            self._announce(status, now)
        self._metrics.publish_budgets(out)
        return out

    def verdict(
        self, budgets: Sequence[Budget], fleet: Sequence[FleetNode], now: float, *,
        replacing: str | None = None,
    ) -> LaunchVerdict:
        """What one more node may cost under ``budgets`` (``policy.budget.launch_verdict``).
        ``replacing``: the instance a move's replacement takes over from; its price is freed, so a
        move to a dearer offer is judged on the difference (the controller's check before a move)."""
        if not budgets:
            return LaunchVerdict(True, None, ())
        kept = [n for n in fleet if n.instance_id != replacing]
        return launch_verdict(self.statuses(budgets, kept, now))

    def _announce(self, status: BudgetStatus, now: float) -> None:
        scope = status.budget.scope
        with self._lock:
            before = self._levels.get(scope, BudgetLevel.OK)
            self._levels[scope] = status.level
        if status.level.rank <= before.rank:
            return
        logger.warning("budget %s: %s", status.level.value.upper(), "; ".join(status.reasons))
        url = status.budget.webhook
        if url is None:
            return
        b = status.budget
        body = json.dumps({
            "cluster": self.cluster, "scope": scope, "level": status.level.value, "key": b.key,
            "usd_per_hour": status.usd_per_hour, "max_usd_per_hour": b.max_usd_per_hour,
            "month_spend_usd": status.month_spend_usd, "monthly_usd": b.monthly_usd,
            "forecast_usd": status.forecast_usd, "reasons": list(status.reasons), "at": now,
        }).encode()

        def send() -> None:
            try:
                self._post(url, body, b.webhook_timeout_s)
            except Exception as exc:  # noqa: BLE001 (a webhook's failure is logged, never raised)
                logger.warning("budget webhook %s failed: %s", url, exc)

        if self._background:
            threading.Thread(target=send, name="budget-webhook", daemon=True).start()
        else:
            send()


