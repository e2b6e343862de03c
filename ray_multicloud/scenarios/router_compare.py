"""Figures for comparing two Serve routers on one cluster under one load (``benchmarks/bench_router.py``).

Pure: it reads samples that are already collected. Each sample is one request a client sent from
``client_region``; the replica that answered says its region and offer (its ``body``). The cluster runs
on loopback, so a request's wire time holds no distance; the figures add it from the RTT table:

- **modelled latency** of a request = its measured response time (proxy + queue + work) + the table's
  RTT between the client's region and the serving replica's region (one round trip per request; no TLS
  or TCP setup, as on a kept-alive connection);
- **SLO attainment** = the share of requests whose modelled latency is <= the SLO;
- **cost per 1,000 requests** = the replica-seconds the requests held (each request's time on its
  replica, measured inside the replica; the response time when the replica did not say) x the hourly
  price of the replica that served it, per 1,000 requests.

A failed request (no answer) has no serving replica: it counts against attainment and is left out of the
latency percentiles and the cost, and the failures are reported beside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ray_multicloud.serve.ranking import RttTable


@dataclass(frozen=True, slots=True)
class Answered:
    """One request as the comparison sees it: sent from ``client_region``; ``ok`` when it was answered,
    by a replica in ``replica_region`` whose node costs ``price_per_hour``, after ``response_s``, of
    which ``replica_s`` on the replica."""

    client_region: str
    ok: bool
    response_s: float
    replica_region: str = ""
    price_per_hour: float = 0.0
    replica_s: float | None = None  # the replica's own time on it; None: unknown (response_s is used)


@dataclass(frozen=True, slots=True)
class RegionFigures:
    """The figures of one client region (or ``"all"``)."""

    region: str
    sent: int
    failed: int
    p50_ms: float
    p95_ms: float
    attainment: float  # share of the sent requests answered within the SLO (modelled latency)


@dataclass(frozen=True, slots=True)
class RouterFigures:
    """What one router did with its share of the load."""

    router: str
    cost_per_1000_usd: float
    regions: tuple[RegionFigures, ...]  # "all" first, then each client region, sorted
    served_by: Mapping[str, int]  # replica region -> answered requests
    routes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # client -> replica region -> n


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by the nearest-rank method (the value at rank ceil(q * n)); NaN when
    there are no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def modelled_ms(sample: Answered, table: RttTable) -> float:
    """Measured response time plus the table's client-to-replica RTT, in ms. Raises ``ValueError``
    naming the pair when the table lacks it (never a silent default)."""
    rtt = table.rtt(sample.client_region, sample.replica_region)
    if rtt is None:
        raise ValueError(table.missing_pair(sample.client_region, sample.replica_region))
    return sample.response_s * 1000.0 + rtt


def _region_figures(
    region: str, samples: Sequence[Answered], table: RttTable, slo_ms: float
) -> RegionFigures:
    answered = [modelled_ms(s, table) for s in samples if s.ok]
    within = sum(1 for ms in answered if ms <= slo_ms)
    return RegionFigures(
        region=region,
        sent=len(samples),
        failed=len(samples) - len(answered),
        p50_ms=percentile(answered, 0.50),
        p95_ms=percentile(answered, 0.95),
        attainment=within / len(samples) if samples else math.nan,
    )


def router_figures(
    router: str, samples: Iterable[Answered], table: RttTable, *, slo_ms: float
) -> RouterFigures:
    """The comparison's figures for one router's samples (module docstring)."""
    rows = list(samples)
    answered = [s for s in rows if s.ok]
    held = [s.response_s if s.replica_s is None else s.replica_s for s in answered]
    cost = sum(h * s.price_per_hour / 3600.0 for h, s in zip(held, answered, strict=True))
    per_1000 = 1000.0 * cost / len(answered) if answered else math.nan
    regions = sorted({s.client_region for s in rows})
    figures = [_region_figures("all", rows, table, slo_ms)]
    figures += [_region_figures(r, [s for s in rows if s.client_region == r], table, slo_ms) for r in regions]
    served: dict[str, int] = {}
    routes: dict[str, dict[str, int]] = {}
    for s in answered:
        served[s.replica_region] = served.get(s.replica_region, 0) + 1
        to = routes.setdefault(s.client_region, {})
        to[s.replica_region] = to.get(s.replica_region, 0) + 1
    return RouterFigures(
        router=router,
        cost_per_1000_usd=per_1000,
        regions=tuple(figures),
        served_by=dict(sorted(served.items())),
        routes={c: dict(sorted(to.items())) for c, to in sorted(routes.items())},
    )


def format_comparison(figures: Sequence[RouterFigures], *, slo_ms: float) -> list[str]:
    """A markdown table: one row per router and client region, then where each router sent requests."""
    lines = [
        f"| router | client region | requests | failed | p50 ms | p95 ms | within {slo_ms:g} ms | "
        "cost per 1,000 requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        for r in f.regions:
            cost = f"${f.cost_per_1000_usd:.6f}" if r.region == "all" else ""
            lines.append(
                f"| {f.router} | {r.region} | {r.sent} | {r.failed} | {r.p50_ms:.0f} | {r.p95_ms:.0f} | "
                f"{100 * r.attainment:.1f}% | {cost} |"
            )
    lines.append("")
    for f in figures:
        total = sum(f.served_by.values()) or 1
        shares = ", ".join(f"{region} {100 * n / total:.0f}%" for region, n in f.served_by.items())
        lines.append(f"{f.router}: answered from {shares}")
        for client, to in f.routes.items():
            n = sum(to.values()) or 1
            where = ", ".join(f"{region} {100 * k / n:.0f}%" for region, k in to.items())
            lines.append(f"  clients in {client}: {where}")
    return lines
