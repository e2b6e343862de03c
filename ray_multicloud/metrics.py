"""Cost figures from the ledger, exported as Ray metrics (Prometheus, the Ray dashboard).

``cost_figures`` is pure over ledger rows; ``CostMetrics.publish`` reads the ledger, computes
the figures and sets Ray gauges. ``ray.util.metrics`` is imported lazily, on the first publish
inside a Ray process, so importing this module needs no Ray. Outside a running Ray worker or
driver the figures are still returned and nothing is exported.

Gauges (tag ``cluster``; the per-hour ones also ``cloud``, with ``cloud="all"`` for the total), by
the names they have on a node's Prometheus endpoint (``http://<node>:<metrics-export-port>/metrics``):
``ray_multicloud_cost_per_hour_usd``, ``ray_multicloud_ondemand_cost_per_hour_usd`` (what the
running nodes would cost on on-demand), ``ray_multicloud_spend_usd`` and
``ray_multicloud_ondemand_spend_usd`` (to date), ``ray_multicloud_savings_fraction`` (to date),
``ray_multicloud_budget_used_fraction`` (tags ``cluster``, ``scope``, ``limit``: set by
``publish_budgets``, see ``budget_guard``).
Ray's metrics agent exports every ``ray.util.metrics`` metric under the ``ray_`` namespace, so the
gauges are created as ``multicloud_*`` (one created as ``ray_multicloud_*`` shows up as
``ray_ray_multicloud_*``). Ray adds its own labels (``Component``, ``NodeAddress``,
``SessionName``, ``Version``, ``WorkerId``, ``otel_scope_*``). A publish reaches the endpoint of
the publishing process's node within one ``metrics_report_interval_ms`` (Ray's default: 10 s).
Checked end to end by ``tests/test_metrics_export.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ray_multicloud.ledger import Ledger, SpendRow
from ray_multicloud.policy.budget import BudgetStatus


@dataclass(frozen=True, slots=True)
class CostFigures:
    """Running cost per hour (total and per cloud) and spend to date vs the on-demand baseline."""

    cost_per_hour: float
    ondemand_cost_per_hour: float
    spend_usd: float
    ondemand_spend_usd: float
    running_nodes: int
    cost_per_hour_by_cloud: tuple[tuple[str, float, float], ...] = field(default_factory=tuple)

    @property
    def savings_fraction(self) -> float:
        return 1.0 - self.spend_usd / self.ondemand_spend_usd if self.ondemand_spend_usd > 0 else 0.0


def cost_figures(rows: Sequence[SpendRow]) -> CostFigures:
    """Figures over ``Ledger.spend(now)`` rows; a row with ``ended_at`` None is running."""
    by_cloud: dict[str, list[float]] = {}
    running = 0
    for r in rows:
        if r.ended_at is None:
            running += 1
            acc = by_cloud.setdefault(r.cloud, [0.0, 0.0])
            acc[0] += r.price_per_hour
            acc[1] += r.ondemand_price_per_hour
    clouds = tuple(sorted((c, a[0], a[1]) for c, a in by_cloud.items()))
    return CostFigures(
        cost_per_hour=sum((c[1] for c in clouds), 0.0),
        ondemand_cost_per_hour=sum((c[2] for c in clouds), 0.0),
        spend_usd=sum((r.cost_usd for r in rows), 0.0),
        ondemand_spend_usd=sum((r.ondemand_cost_usd for r in rows), 0.0),
        running_nodes=running,
        cost_per_hour_by_cloud=clouds,
    )


class CostMetrics:
    """Ray gauges for one cluster; call :meth:`publish` after every ledger change."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._gauges: dict[str, Any] | None = None
        self._clouds: set[str] = set()  # clouds that had running nodes: reset to 0 when they have none

    def _make_gauges(self) -> dict[str, Any] | None:
        try:
            import ray
            from ray.util.metrics import Gauge
        except ImportError:
            return None
        if not ray.is_initialized():
            return None
        per_hour = ("cluster", "cloud")
        return {
            "cost": Gauge("multicloud_cost_per_hour_usd", "USD per hour of the running nodes", per_hour),
            "od": Gauge(
                "multicloud_ondemand_cost_per_hour_usd",
                "USD per hour the running nodes would cost on on-demand",
                per_hour,
            ),
            "spend": Gauge("multicloud_spend_usd", "USD spent to date", ("cluster",)),
            "od_spend": Gauge(
                "multicloud_ondemand_spend_usd", "USD the same node hours cost on on-demand", ("cluster",)
            ),
            "savings": Gauge(
                "multicloud_savings_fraction", "1 - spend / on-demand spend, to date", ("cluster",)
            ),
            "budget": Gauge(
                "multicloud_budget_used_fraction",
                "share of a budget used: running $/h over the cap (limit=per_hour), this month's spend "
                "over the monthly budget (limit=monthly); 1 or more is over",
                ("cluster", "scope", "limit"),
            ),
        }

    def publish(self, ledger: Ledger, *, now: float) -> CostFigures:
        """Compute the cluster's figures from ``ledger`` at ``now`` and set the gauges."""
        rows = [r for r in ledger.spend(now) if r.cluster == self.cluster]
        figures = cost_figures(rows)
        if self._gauges is None:
            self._gauges = self._make_gauges()
        g = self._gauges
        if g is None:
            return figures
        base = {"cluster": self.cluster}
        g["cost"].set(figures.cost_per_hour, tags={**base, "cloud": "all"})
        g["od"].set(figures.ondemand_cost_per_hour, tags={**base, "cloud": "all"})
        now_clouds = {c for c, _, _ in figures.cost_per_hour_by_cloud}
        for cloud in sorted(self._clouds - now_clouds):
            g["cost"].set(0.0, tags={**base, "cloud": cloud})
            g["od"].set(0.0, tags={**base, "cloud": cloud})
        for cloud, cost, od in figures.cost_per_hour_by_cloud:
            g["cost"].set(cost, tags={**base, "cloud": cloud})
            g["od"].set(od, tags={**base, "cloud": cloud})
        self._clouds |= now_clouds
        g["spend"].set(figures.spend_usd, tags=base)
        g["od_spend"].set(figures.ondemand_spend_usd, tags=base)
        g["savings"].set(figures.savings_fraction, tags=base)
        return figures

    def publish_budgets(self, statuses: Sequence[BudgetStatus]) -> None:
        """Set ``ray_multicloud_budget_used_fraction`` for each budget limit (tags ``scope``: the pool
        or ``cluster``; ``limit``: ``per_hour`` or ``monthly``). Nothing outside a Ray process."""
        if self._gauges is None:
            self._gauges = self._make_gauges()
        if self._gauges is None:
            return
        for s in statuses:
            for limit, used in (("per_hour", s.hourly_fraction), ("monthly", s.monthly_fraction)):
                if used is not None:
                    self._gauges["budget"].set(
                        used, tags={"cluster": self.cluster, "scope": s.budget.scope, "limit": limit}
                    )
