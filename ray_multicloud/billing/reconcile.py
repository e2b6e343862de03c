"""Ledger against bill, per instance and per UTC day.

``ledger_days`` turns the ledger's list-price record into USD per (cloud, instance, day);
``reconcile`` (pure) lays the bill's lines beside it:

* a bill line whose resource is an instance the ledger knows (same cloud, same id) is that
  instance's, by category (compute, egress, disk, storage, other);
* any other line tagged with the cluster (``rmc-cluster``: the drivers tag every instance, and
  disks and NICs they create carry the same tags) is the cluster's but no instance's: disks,
  egress billed to the account, snapshots; it is listed per day and resource;
* lines of other clusters, or untagged lines of resources the ledger does not know, are not ours
  and are only counted (``ignored_usd``).

For each instance-day the difference is ``bill compute - ledger``: positive when the bill charged
more than the list price the ledger recorded (a price change the feed missed, a minimum billing
increment), negative when less (a discount, a spot price below the recorded one). Egress, disks and
storage have no ledger counterpart, so they are reported as what the ledger lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ray_multicloud.billing import BillLine, Category

DayKey = tuple[str, str, date]  # (cloud, instance id, day)


def day_bounds(day: date) -> tuple[float, float]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def ledger_days(ledger: Any, days: Iterable[date], *, cluster: str | None = None) -> dict[DayKey, float]:
    """USD per (cloud, instance, day) from ``ledger`` (a ``Ledger``: its ``spend(until)`` up to the
    day's end less up to its start), for ``days``; only ``cluster``'s instances when given."""
    out: dict[DayKey, float] = {}
    for day in sorted(set(days)):
        start, end = day_bounds(day)
        before = {r.instance_id: r.cost_usd for r in ledger.spend(until=start)}
        for row in ledger.spend(until=end):
            if cluster is not None and row.cluster != cluster:
                continue
            cost = row.cost_usd - before.get(row.instance_id, 0.0)
            if cost > 0:
                out[(row.cloud, row.instance_id, day)] = cost
    return out


@dataclass(frozen=True, slots=True)
class InstanceDay:
    cloud: str
    instance_id: str
    day: date
    ledger_usd: float
    bill_usd: Mapping[Category, float]

    @property
    def compute_diff_usd(self) -> float:
        """Bill's compute minus the ledger's: what the ledger got wrong about the instance's price."""
        return self.bill_usd.get(Category.COMPUTE, 0.0) - self.ledger_usd

    @property
    def missing_usd(self) -> float:
        """The instance's billed lines the ledger has no counterpart for (egress, disk, ...)."""
        return sum(v for k, v in self.bill_usd.items() if k is not Category.COMPUTE)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    instances: list[InstanceDay]
    cluster_extras: list[BillLine] = field(default_factory=list)
    ignored_usd: float = 0.0

    @property
    def ledger_usd(self) -> float:
        return sum(r.ledger_usd for r in self.instances)

    @property
    def bill_usd(self) -> float:
        instances = sum(sum(r.bill_usd.values()) for r in self.instances)
        return instances + sum(x.cost_usd for x in self.cluster_extras)

    def by_category(self) -> dict[Category, float]:
        out: dict[Category, float] = {}
        for r in self.instances:
            for k, v in r.bill_usd.items():
                out[k] = out.get(k, 0.0) + v
        for x in self.cluster_extras:
            out[x.category] = out.get(x.category, 0.0) + x.cost_usd
        return out


def reconcile(lines: Sequence[BillLine], ledger: Mapping[DayKey, float], *, cluster: str) -> Reconciliation:
    """Match ``lines`` to the ledger's instance-days (module docstring)."""
    known = {(cloud, iid) for cloud, iid, _ in ledger}
    billed: dict[DayKey, dict[Category, float]] = {}
    extras: list[BillLine] = []
    ignored = 0.0
    for line in lines:
        if (line.cloud, line.resource_id) in known:
            cats = billed.setdefault((line.cloud, line.resource_id, line.day), {})
            cats[line.category] = cats.get(line.category, 0.0) + line.cost_usd
        elif line.cluster == cluster:
            extras.append(line)
        else:
            ignored += line.cost_usd
    keys = sorted(set(ledger) | set(billed), key=lambda k: (k[2], k[0], k[1]))
    rows = [InstanceDay(c, i, d, ledger.get((c, i, d), 0.0), billed.get((c, i, d), {})) for c, i, d in keys]
    extras.sort(key=lambda x: (x.day, x.cloud, x.resource_id))
    return Reconciliation(rows, extras, ignored)
