"""SLO-driven serving capacity: how many replicas, where to add one, which one to remove (pure).

A serving pool declares a latency SLO: ``p95_ms`` (95% of requests answered within it, as a client in
its region sees them) and ``service_ms`` (one request's time on an idle replica). The *client mix* is
the share of requests from each client region. Requests are routed to a replica that keeps the SLO
for them (``serve.ranking``), so a replica in region R *keeps the SLO for client region c* when
``RTT(c, R) + service_ms <= p95_ms``.

Coverage: the share of the client mix for which some replica (or offer) keeps the SLO. A set of
replicas (or one offer) *keeps the SLO for the mix* when its coverage is at least 95%: then at most 5%
of requests must miss the target on the network alone, which is what a p95 target allows.

``decide`` (one autoscaling step, one replica at a time; the caller paces the steps):

1. fewer replicas than ``min_replicas``: add one;
2. a replica's measured p95 (client-seen: its own processing time plus the RTT of the clients it
   served) above ``p95_ms``: add one, unless at ``max_replicas``. Where: the cheapest offer that keeps
   the SLO for the mix alone (ties: higher coverage, lower network p95, offer id); when no offer does,
   the one with the highest coverage (then cheapest), and the reason says no offer keeps it;
3. every replica's p95 at most ``scale_in_below`` x ``p95_ms`` and the load spread over one replica
   fewer (sum of ``busy`` / (n - 1)) at most ``max_busy_after_scale_in`` -- or an idle pool: no
   replica served a request in the window and none had one in flight (every p95 None, every ``busy``
   0) -- remove one, unless at ``min_replicas``. (Some replica busy but none measured, e.g. requests
   longer than the window: hold.) Which: the most expensive replica whose removal leaves the mix
   covered (a replica with an unknown price goes after every priced one; ties: the one with the worse
   network p95, then replica id);
4. otherwise hold.

``impossible`` is the check ``plan`` runs: the client regions whose nearest offer alone misses the
SLO (``RTT + service_ms > p95_ms``); when they are more than 5% of the mix, no set of replicas can
keep the SLO, and the message names each region, its nearest offer, the RTT and the sum.

Worked example (SLO p95 200 ms, service 20 ms; mix us-east-1 60%, eu-west-1 40%)::

    offers: aws us-east-1 $0.53 (RTT us 1, eu 68), azure westus2 $0.06 (RTT us 62, eu 130)
    coverage: us-east-1 keeps both (21, 88 ms) = 100%; westus2 keeps both (82, 150 ms) = 100%
    replica p95 260 ms > 200 -> add one on azure westus2 ($0.06, the cheapest that keeps the SLO)
    SLO 120 ms -> westus2 keeps us (82) only: 60% < 95%; us-east-1 keeps both -> add on us-east-1

Contract: no I/O, no clock, no logging. ``rtt(a, b)`` returns ms or None for a pair it does not
know; an unknown pair never keeps the SLO, and the reason names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Rtt = Callable[[str, str], "float | None"]
COVERAGE = 0.95


@dataclass(frozen=True, slots=True)
class SloTarget:
    """The pool's latency SLO and its scaling thresholds."""

    p95_ms: float
    service_ms: float = 20.0
    scale_in_below: float = 0.5
    max_busy_after_scale_in: float = 0.6

    def __post_init__(self) -> None:
        if not (self.p95_ms > 0 and math.isfinite(self.p95_ms)):
            raise ValueError(f"slo p95_ms must be a positive number of ms, got {self.p95_ms!r}")
        if not (self.service_ms >= 0 and math.isfinite(self.service_ms)):
            raise ValueError(f"slo service_ms must be a number of ms >= 0, got {self.service_ms!r}")
        if self.service_ms >= self.p95_ms:
            raise ValueError(
                f"slo service_ms {self.service_ms:g} must be below p95_ms {self.p95_ms:g}: "
                "a request's own service time alone would miss the target"
            )
        if not 0 < self.scale_in_below < 1:
            raise ValueError(f"slo scale_in_below must be in (0, 1), got {self.scale_in_below!r}")
        if not 0 < self.max_busy_after_scale_in <= 1:
            raise ValueError(
                f"slo max_busy_after_scale_in must be in (0, 1], got {self.max_busy_after_scale_in!r}"
            )


@dataclass(frozen=True, slots=True)
class CapacityOption:
    """An offer a new replica's node could be bought on."""

    offer_id: str
    region: str
    price_per_hour: float


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    """One running replica as measured over the last window.

    ``p95_ms``: client-seen p95 (processing + the RTT of the clients it served); None when it served
    nothing in the window. ``busy``: the fraction of the window it had at least one request in flight
    (0..1). ``price_per_hour``: its node's price, None when unknown.
    """

    replica_id: str
    region: str
    price_per_hour: float | None
    p95_ms: float | None
    busy: float = 0.0


@dataclass(frozen=True, slots=True)
class SloDecision:
    """``action``: add, remove or hold; ``replicas``: the target count; ``add``: the offer to buy for
    the new one; ``remove``: the replica to take away; ``reasons``: why, with the numbers."""

    action: str
    replicas: int
    add: CapacityOption | None = None
    remove: ReplicaLoad | None = None
    reasons: tuple[str, ...] = ()


def normalised_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """Shares that sum to 1 (zero and negative shares dropped); empty when nothing is left."""
    positive = {str(r): float(s) for r, s in mix.items() if s > 0 and math.isfinite(s)}
    total = sum(positive.values())
    return {r: s / total for r, s in positive.items()} if total > 0 else {}


def network_p95_ms(region: str, mix: Mapping[str, float], rtt: Rtt) -> float:
    """The RTT at or below which 95% of the mix reaches ``region`` (the mix's 95th percentile of RTT).

    Client regions are sorted by RTT; the answer is the RTT of the first region at which the
    cumulative share reaches 95%. An unknown pair counts as infinite; an empty mix gives 0.
    """
    shares = normalised_mix(mix)
    ordered = sorted(((_rtt(rtt, c, region), s) for c, s in shares.items()), key=lambda x: x[0])
    cumulative = 0.0
    for ms, share in ordered:
        cumulative += share
        if cumulative >= COVERAGE - 1e-9:
            return ms
    return ordered[-1][0] if ordered else 0.0


def coverage(regions: Sequence[str], mix: Mapping[str, float], rtt: Rtt, slo: SloTarget) -> float:
    """The share of the mix for which a replica in one of ``regions`` keeps the SLO (0..1)."""
    shares = normalised_mix(mix)
    if not shares:
        return 1.0 if regions else 0.0
    return sum(
        s for c, s in shares.items() if any(_rtt(rtt, c, r) + slo.service_ms <= slo.p95_ms for r in regions)
    )


def cheapest_keeping(
    options: Sequence[CapacityOption], mix: Mapping[str, float], rtt: Rtt, slo: SloTarget
) -> tuple[CapacityOption | None, str]:
    """The offer to add a replica on, and why (see the module docstring, rule 2)."""
    if not options:
        return None, "no offer to add a replica on"
    scored = [(o, coverage([o.region], mix, rtt, slo), network_p95_ms(o.region, mix, rtt)) for o in options]
    keeping = [x for x in scored if x[1] >= COVERAGE - 1e-9]
    if keeping:
        best = min(keeping, key=lambda x: (x[0].price_per_hour, -x[1], x[2], x[0].offer_id))
        return best[0], (
            f"{best[0].offer_id} ${best[0].price_per_hour:.4g}/h is the cheapest offer that keeps "
            f"p95 {slo.p95_ms:g} ms for the client mix (network p95 {best[2]:g} ms + service "
            f"{slo.service_ms:g} ms; covers {best[1]:.0%})"
        )
    best = min(scored, key=lambda x: (-x[1], x[0].price_per_hour, x[2], x[0].offer_id))
    return best[0], (
        f"no offer keeps p95 {slo.p95_ms:g} ms for 95% of the client mix; {best[0].offer_id} "
        f"${best[0].price_per_hour:.4g}/h covers the most ({best[1]:.0%})"
    )


def decide(
    slo: SloTarget,
    replicas: Sequence[ReplicaLoad],
    options: Sequence[CapacityOption],
    mix: Mapping[str, float],
    rtt: Rtt,
    *,
    min_replicas: int = 1,
    max_replicas: int = 10,
) -> SloDecision:
    """One autoscaling step (see the module docstring)."""
    if not 0 <= min_replicas <= max_replicas:
        raise ValueError(f"need 0 <= min_replicas <= max_replicas, got {min_replicas}, {max_replicas}")
    n = len(replicas)
    if n < min_replicas:
        offer, why = cheapest_keeping(options, mix, rtt, slo)
        return SloDecision(
            "add", n + 1, offer, None, (f"add: {n} replica(s) < min_replicas {min_replicas}", why)
        )
    measured = [r for r in replicas if r.p95_ms is not None]
    worst = max(measured, key=lambda r: (r.p95_ms or 0.0, r.replica_id)) if measured else None
    if worst is not None and worst.p95_ms is not None and worst.p95_ms > slo.p95_ms:
        breach = (
            f"replica {worst.replica_id} ({worst.region}) p95 {worst.p95_ms:.0f} ms > SLO {slo.p95_ms:g} ms"
        )
        if n >= max_replicas:
            return SloDecision(
                "hold", n, None, None, (f"hold: {breach}, but already at max_replicas {max_replicas}",)
            )
        offer, why = cheapest_keeping(options, mix, rtt, slo)
        return SloDecision("add", n + 1, offer, None, (f"add: {breach}", why))
    if n <= min_replicas or n < 2:
        return SloDecision("hold", n, None, None, (f"hold: {n} replica(s), min_replicas {min_replicas}",))
    low = slo.scale_in_below * slo.p95_ms
    idle = worst is None and all(r.busy <= 0.0 for r in replicas)
    if not idle and (worst is None or worst.p95_ms is None or worst.p95_ms > low):
        seen = "no request measured" if worst is None else f"worst p95 {worst.p95_ms:.0f} ms"
        return SloDecision(
            "hold",
            n,
            None,
            None,
            (f"hold: {seen}; scale in only below {low:g} ms ({slo.scale_in_below:g} x SLO)",),
        )
    spread = sum(min(max(r.busy, 0.0), 1.0) for r in replicas) / (n - 1)
    if worst is None or worst.p95_ms is None:  # idle (above): no load to spread
        why = f"remove: no request in the window on any of the {n} replicas"
    elif spread > slo.max_busy_after_scale_in:
        return SloDecision(
            "hold",
            n,
            None,
            None,
            (
                f"hold: p95 {worst.p95_ms:.0f} ms is low, but {n - 1} replicas "
                f"would each be {spread:.0%} busy > "
                f"{slo.max_busy_after_scale_in:.0%}",
            ),
        )
    else:
        why = (f"remove: worst p95 {worst.p95_ms:.0f} ms <= {low:g} ms and {n - 1} replicas "
               f"would each be {spread:.0%} busy")
    shares = normalised_mix(mix)

    def removal_key(r: ReplicaLoad) -> tuple[int, float, float, str]:
        priced = r.price_per_hour is not None and math.isfinite(r.price_per_hour)
        price = r.price_per_hour if priced and r.price_per_hour is not None else 0.0
        return (0 if priced else 1, -price, -network_p95_ms(r.region, shares, rtt), r.replica_id)

    needed = coverage([r.region for r in replicas], shares, rtt, slo)
    for candidate in sorted(replicas, key=removal_key):
        rest = [r.region for r in replicas if r is not candidate]
        left = coverage(rest, shares, rtt, slo)
        if left >= min(COVERAGE, needed) - 1e-9:
            price = (
                "price unknown" if candidate.price_per_hour is None else f"${candidate.price_per_hour:.4g}/h"
            )
            return SloDecision(
                "remove",
                n - 1,
                None,
                candidate,
                (
                    why,
                    f"replica {candidate.replica_id} ({candidate.region}, {price}) is the most expensive "
                    f"whose removal keeps the client mix covered ({left:.0%})",
                ),
            )
    return SloDecision(
        "hold", n, None, None, ("hold: every replica is needed to keep the client mix covered",)
    )


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A client region that no offer can serve within the SLO: its share, nearest offer and RTT."""

    client_region: str
    share: float
    offer_id: str | None
    rtt_ms: float


def impossible(
    slo: SloTarget, options: Sequence[CapacityOption], mix: Mapping[str, float], rtt: Rtt
) -> str | None:
    """Why no set of replicas on ``options`` can keep ``slo`` for ``mix``; None when some set can.

    A client region is unreachable when its nearest offer's RTT + ``service_ms`` exceeds ``p95_ms``;
    the SLO is impossible when unreachable regions carry more than 5% of the mix (or there is no
    offer at all).
    """
    if not options:
        return "no offer to place a replica on"
    shares = normalised_mix(mix)
    unreachable: list[Unreachable] = []
    for client, share in sorted(shares.items()):
        nearest = min(options, key=lambda o: (_rtt(rtt, client, o.region), o.price_per_hour, o.offer_id))
        ms = _rtt(rtt, client, nearest.region)
        if ms + slo.service_ms > slo.p95_ms:
            unreachable.append(
                Unreachable(client, share, nearest.offer_id if math.isfinite(ms) else None, ms)
            )
    lost = sum(u.share for u in unreachable)
    if lost <= 1 - COVERAGE + 1e-9:
        return None
    parts = []
    for u in unreachable:
        if u.offer_id is None:
            parts.append(
                f"{u.client_region} ({u.share:.0%} of requests): no offer region has a known RTT to it"
            )
        else:
            parts.append(
                f"{u.client_region} ({u.share:.0%} of requests): nearest offer {u.offer_id} is "
                f"{u.rtt_ms:g} ms away, + service {slo.service_ms:g} ms = "
                f"{u.rtt_ms + slo.service_ms:g} ms > p95 {slo.p95_ms:g} ms"
            )
    return (
        f"p95 {slo.p95_ms:g} ms cannot be kept: {'; '.join(parts)} — {lost:.0%} of requests miss it on the "
        f"network alone, more than the 5% a p95 allows; raise p95_ms to at least "
        f"{_needed_p95(slo, options, shares, rtt):g} ms or add offers nearer those clients"
    )


def _needed_p95(
    slo: SloTarget, options: Sequence[CapacityOption], shares: Mapping[str, float], rtt: Rtt
) -> float:
    """The smallest p95 target some set of these offers keeps for the mix (nearest-offer RTTs)."""
    nearest = sorted((min(_rtt(rtt, c, o.region) for o in options), s) for c, s in shares.items())
    cumulative = 0.0
    for ms, share in nearest:
        cumulative += share
        if cumulative >= COVERAGE - 1e-9:
            return ms + slo.service_ms
    return nearest[-1][0] + slo.service_ms


def _rtt(rtt: Rtt, a: str, b: str) -> float:
    ms = rtt(a, b)
    return math.inf if ms is None else float(ms)
