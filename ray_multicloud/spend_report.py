"""``ray-multicloud report``'s figures: spend, savings and idle cost per job, team, pool or cloud.

Pure over ledger rows (``Ledger.spend``) and the declared reservations; no I/O, no clock. Per group:

- ``instances`` and ``hours``: the group's nodes and their hours (an unused reserved hour counts
  as an hour, of no node);
- ``spend_usd``: what was paid: the ledger's cost of the group's nodes (a reserved node at its
  term price), plus the reserved hours no node used (a commitment is paid whether used or not);
- ``ondemand_usd``: the on-demand list price of the node hours that ran (``savings.BASELINE``);
  an unused reserved hour ran nothing, so it adds nothing here;
- ``saved_usd = ondemand_usd - spend_usd`` (negative when unused commitments cost more than the
  group saved);
- ``idle_usd``: paid for nothing: the cost of nodes no workload was seen on (the ledger's ``job``
  is empty: no Train run, Serve deployment or Ray job's actor ran there while the controller
  attributed, ``attribution.py``; the head node and nodes of a cluster run without the controller
  count here), plus the unused reserved hours.

Unused reserved hours form one group of their own, keyed by what the reservation says: its cloud,
region, team (``-`` without one) and capacity ``reserved``; under ``pool`` and ``job`` (a commitment
belongs to no pool nor job) it is :data:`UNUSED`.

A reservation's *committed hours* over a report window ``[start, until]`` are ``count`` times the
hours it was active in that window; its *used hours* are the hours of the window's reserved nodes
on its machine (same cloud, region, instance type, and zone when it names one) while it was active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ray_multicloud.ledger import GROUP_KEYS, LedgerError, SpendRow
from ray_multicloud.types import CapacityType, Reservation

UNUSED = "(reserved, unused)"


@dataclass(frozen=True, slots=True)
class ReservationUse:
    """One reservation over a report window: hours committed, hours nodes used it."""

    reservation: Reservation
    committed_hours: float
    used_hours: float

    @property
    def idle_hours(self) -> float:
        return max(0.0, self.committed_hours - self.used_hours)

    @property
    def paid_usd(self) -> float:
        return self.committed_hours * self.reservation.term_price_per_hour

    @property
    def idle_usd(self) -> float:
        return self.idle_hours * self.reservation.term_price_per_hour

    @property
    def utilisation(self) -> float:
        return min(1.0, self.used_hours / self.committed_hours) if self.committed_hours > 0 else 0.0


def _overlap_hours(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0)) / 3600.0


def _covers(r: Reservation, row: SpendRow) -> bool:
    return (row.capacity == CapacityType.RESERVED.value and row.cloud == r.cloud and row.region == r.region
            and row.instance_type == r.instance_type and (not r.zone or row.zone == r.zone))


def reservation_use(
    reservations: Sequence[Reservation], rows: Sequence[SpendRow], start: float, until: float
) -> list[ReservationUse]:
    """Each reservation's committed and used hours over ``[start, until]`` (module docstring)."""
    out: list[ReservationUse] = []
    for r in reservations:
        lo = start if r.starts is None else max(start, r.starts)
        hi = until if r.ends is None else min(until, r.ends)
        committed = r.count * max(0.0, hi - lo) / 3600.0
        used = 0.0
        for row in rows:
            if _covers(r, row):
                end = row.ended_at if row.ended_at is not None else row.launched_at + row.hours * 3600.0
                used += _overlap_hours(row.launched_at, end, lo, hi)
        out.append(ReservationUse(r, committed, used))
    return out


@dataclass(frozen=True, slots=True)
class ReportGroup:
    """One line of the report (module docstring for what each figure counts)."""

    key: str
    instances: int
    hours: float
    spend_usd: float
    ondemand_usd: float
    idle_usd: float

    @property
    def saved_usd(self) -> float:
        return self.ondemand_usd - self.spend_usd

    @property
    def savings_fraction(self) -> float:
        return self.saved_usd / self.ondemand_usd if self.ondemand_usd > 0 else 0.0


def _unused_key(r: Reservation, by: str) -> str:
    if by == "cloud":
        return r.cloud
    if by == "region":
        return r.region
    if by == "team":
        return r.team or "-"
    if by == "capacity":
        return CapacityType.RESERVED.value
    return UNUSED


def report_groups(
    rows: Sequence[SpendRow], by: str, uses: Sequence[ReservationUse] = ()
) -> list[ReportGroup]:
    """``rows`` and the unused hours of ``uses`` summed per value of ``by`` (one of
    ``ledger.GROUP_KEYS``), most spend first, ties by key."""
    if by not in GROUP_KEYS:
        raise LedgerError(f"cannot group by {by!r}: use one of {', '.join(GROUP_KEYS)}")
    acc: dict[str, list[float]] = {}
    for row in rows:
        a = acc.setdefault(row.key(by), [0, 0.0, 0.0, 0.0, 0.0])
        a[0] += 1
        a[1] += row.hours
        a[2] += row.cost_usd
        a[3] += row.ondemand_cost_usd
        if not row.job:
            a[4] += row.cost_usd
    for use in uses:
        if use.idle_usd <= 0:
            continue
        a = acc.setdefault(_unused_key(use.reservation, by), [0, 0.0, 0.0, 0.0, 0.0])
        a[1] += use.idle_hours
        a[2] += use.idle_usd
        a[4] += use.idle_usd
    groups = [ReportGroup(k, int(a[0]), a[1], a[2], a[3], a[4]) for k, a in acc.items()]
    return sorted(groups, key=lambda g: (-g.spend_usd, g.key))


def total(groups: Sequence[ReportGroup]) -> ReportGroup:
    """The TOTAL line of ``groups``."""
    return ReportGroup(
        "TOTAL",
        sum(g.instances for g in groups),
        sum((g.hours for g in groups), 0.0),
        sum((g.spend_usd for g in groups), 0.0),
        sum((g.ondemand_usd for g in groups), 0.0),
        sum((g.idle_usd for g in groups), 0.0),
    )
