"""Pure ranking of Serve replicas by price and estimated latency under an SLO.

The rule, for one request from ``client_region``:

1. Estimate each replica's latency as
   ``RTT(client region, replica region) + (queue_len + 1) * service_ms``:
   the network round trip, the requests already queued on the replica, and this request's own service.
2. A replica *keeps the SLO* when that estimate is at most ``slo.target_ms``.
3. Replicas that keep the SLO come first, cheapest first: by
   ``weights.price * price_per_hour + weights.latency * estimated_ms`` (with the default weights, price
   alone); ties broken by locality (``ReplicaView.locality``: the router's prefer-same-node /
   prefer-same-zone options, lower is closer), then by the estimate, then by ``tie_break``, then by id.
   A replica whose price is unknown goes after every priced one.
4. Replicas that miss the SLO follow, fastest first; ties broken by locality, then price, ``tie_break``,
   id. So when no replica keeps the SLO, the first one is the fastest.

Locality never outranks price or the SLO: a same-node replica that costs more, or misses the SLO, still
ranks after a cheaper remote one that keeps it.

A replica whose queue length is unknown (``queue_known=False``) is not counted as empty: the caller
passes a pessimistic ``queue_len`` (the router passes the replica's ``max_ongoing_requests``, a full
queue), and the reason says so.

Examples (SLO 200 ms, 20 ms per request)::

    client eu-west-1; replicas: aws us-east-1 on-demand $0.53 (RTT 68), azure westus2 spot $0.06 (RTT 130)
      -> westus2 (130 + 20 = 150 ms keeps 200; cheaper) first, us-east-1 second
    same, westus2 has 4 queued -> westus2 estimates 230 ms: us-east-1 (88 ms) first, westus2 second
    SLO 50 ms -> neither keeps it: us-east-1 (fastest, 88 ms) first

Contract: no I/O, no clock, no logging; every ranked entry carries the reason it sits where it does.
A missing client region (no header) drops the network term for every replica, so the order falls back
to price and queue. A client/replica region pair the table does not know has an infinite estimate:
such a replica never keeps the SLO and ranks last.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

RTT_TABLE_RESOURCE = "region_rtt.json"


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """What the ranking needs to know about one replica: where it runs, what its node costs, its queue.

    ``queue_known=False``: ``queue_len`` is the caller's pessimistic stand-in, not a measurement.
    ``locality``: 0 same node as the router, 1 same zone, 2 elsewhere (only the order matters).
    ``tie_break``: orders replicas equal in everything else (the router draws it at random, so equal
    replicas share the load instead of the one with the smallest id taking it all).
    """

    replica_id: str
    cloud: str
    region: str
    price_per_hour: float | None
    queue_len: int = 0
    queue_known: bool = True
    locality: int = 0
    tie_break: int = 0


@dataclass(frozen=True, slots=True)
class Slo:
    """A latency target (read as a p95 target) and the time one request takes on a replica."""

    target_ms: float = 200.0
    service_ms: float = 20.0

    def __post_init__(self) -> None:
        if not (self.target_ms > 0 and math.isfinite(self.target_ms)):
            raise ValueError(f"slo target_ms must be a positive number of ms, got {self.target_ms!r}")
        if not (self.service_ms >= 0 and math.isfinite(self.service_ms)):
            raise ValueError(f"slo service_ms must be >= 0 ms, got {self.service_ms!r}")


@dataclass(frozen=True, slots=True)
class Weights:
    """How replicas that keep the SLO are ordered: ``price`` per $/h, ``latency`` in $/h per ms.

    The default (1, 0) is "the cheapest replica that keeps the SLO". A positive ``latency`` weight buys
    speed with money: with ``latency=0.001`` a replica 100 ms faster wins if it costs under $0.10/h more.
    """

    price: float = 1.0
    latency: float = 0.0

    def __post_init__(self) -> None:
        for name in ("price", "latency"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"weight {name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Ranked:
    """One replica in the ranking, with its latency estimate and why it is where it is."""

    replica: ReplicaView
    estimated_ms: float
    keeps_slo: bool
    score: float
    reason: str


class RttTable:
    """Symmetric region-to-region round-trip times in ms. ``rtt(a, a)`` is ``same_region_ms``."""

    def __init__(self, pairs: Mapping[tuple[str, str], float], *, same_region_ms: float = 1.0,
                 source: str = "", origin: str = "") -> None:
        self._ms: dict[frozenset[str], float] = {}
        for (a, b), ms in pairs.items():
            if a == b:
                raise ValueError(f"RTT pair {a!r}-{b!r} names one region twice; use same_region_ms")
            if not (ms >= 0 and math.isfinite(ms)):
                raise ValueError(f"RTT {a!r}-{b!r} must be a finite number of ms >= 0, got {ms!r}")
            self._ms[frozenset((a, b))] = float(ms)
        self.same_region_ms = float(same_region_ms)
        self.source = source
        self.origin = origin
        self.regions = frozenset(r for pair in self._ms for r in pair)

    def rtt(self, a: str, b: str) -> float | None:
        """The RTT between regions ``a`` and ``b`` in ms; None when the table does not know the pair."""
        if a == b:
            return self.same_region_ms
        return self._ms.get(frozenset((a, b)))

    def missing_pair(self, a: str, b: str) -> str:
        """The message for a pair this table lacks: which pair, and what to add where."""
        where = f" ({self.origin})" if self.origin else ""
        return (f"the RTT table{where} has no round-trip time for {a} <-> {b}: add [{a!r}, {b!r}, ms] to its "
                f"'pairs', with its source and date")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, origin: str = "") -> RttTable:
        """Build from the ``region_rtt.json`` layout: ``{"pairs": [[a, b, ms], ...], "same_region_ms": 1}``.

        A pair listed twice (in either order) is refused. When the file lists its ``regions`` (a list, or
        a mapping region -> description), every pair of them must be in ``pairs`` and no pair may name
        another region: a missing pair is an error naming it, never a silent default. ``source`` is kept
        as ``self.source``; every other key (``what``, ``caveat``, the per-pair provenance ``sources`` /
        ``pair_provenance`` of the shipped file) is documentation for people and is ignored here.
        """
        where = f"{origin}: " if origin else ""
        pairs: dict[tuple[str, str], float] = {}
        for i, entry in enumerate(data.get("pairs", ())):
            if not (isinstance(entry, Sequence) and len(entry) == 3):
                raise ValueError(f"{where}pairs[{i}] must be [region_a, region_b, ms], got {entry!r}")
            a, b, ms = entry
            key = (str(a), str(b))
            if key in pairs or (key[1], key[0]) in pairs:
                raise ValueError(f"{where}pairs[{i}]: {a}-{b} is listed twice")
            pairs[key] = float(ms)
        table = cls(pairs, same_region_ms=float(data.get("same_region_ms", 1.0)),
                    source=str(data.get("source", "")), origin=origin)
        listed = data.get("regions")
        if listed is not None:
            regions = sorted(str(r) for r in listed)
            strangers = sorted(table.regions - set(regions))
            if strangers:
                raise ValueError(f"{where}pairs name regions missing from 'regions': {strangers}; "
                                 f"add them to 'regions' (with every pair they need) or drop their pairs")
            missing = [(a, b) for i, a in enumerate(regions) for b in regions[i + 1:]
                       if table.rtt(a, b) is None]
            if missing:
                shown = ", ".join(f"{a} <-> {b}" for a, b in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise ValueError(f"{where}the RTT table lists {len(regions)} regions but has no round-trip "
                                 f"time for {shown}{more}: add each as [region_a, region_b, ms] to 'pairs', "
                                 f"with its source and date, or drop the region from 'regions'")
        return table


def load_rtt_table(path: str | Path | None = None) -> RttTable:
    """Read an RTT table: ``path``, or the one shipped in ``ray_multicloud/data/region_rtt.json``."""
    if path is None:
        text = resources.files("ray_multicloud.data").joinpath(RTT_TABLE_RESOURCE).read_text()
        origin = f"ray_multicloud/data/{RTT_TABLE_RESOURCE}"
    else:
        text = Path(path).read_text()
        origin = str(path)
    return RttTable.from_json(json.loads(text), origin=origin)


def client_region_from_key(key: str | None, known: Iterable[str]) -> str | None:
    """The client region a routing key names, or None.

    A key is the region itself (``eu-west-1``) or the region then ``/`` and anything
    (``eu-west-1/user-42``), so a session id can carry it. Unknown regions give None.
    """
    if not key:
        return None
    region = key.strip().split("/", 1)[0].strip()
    return region if region in set(known) else None


def estimate_ms(replica: ReplicaView, client_region: str | None, table: RttTable, slo: Slo) -> float:
    """RTT from the client's region to the replica's, plus queued and own service time (ms)."""
    work = (max(replica.queue_len, 0) + 1) * slo.service_ms
    if client_region is None:
        return work
    rtt = table.rtt(client_region, replica.region)
    return math.inf if rtt is None else rtt + work


def rank_replicas(
    replicas: Iterable[ReplicaView],
    client_region: str | None,
    table: RttTable,
    slo: Slo,
    weights: Weights = Weights(),
) -> tuple[Ranked, ...]:
    """Order ``replicas`` best first for a request from ``client_region`` (see the module docstring)."""
    keep: list[tuple[tuple[float, float, int, float, int, str], Ranked]] = []
    miss: list[tuple[tuple[float, int, float, float, int, str], Ranked]] = []
    for r in replicas:
        est = estimate_ms(r, client_region, table, slo)
        priced = r.price_per_hour is not None and math.isfinite(r.price_per_hour)
        price = r.price_per_hour if priced and r.price_per_hour is not None else 0.0
        latency_term = weights.latency * est if math.isfinite(est) else math.inf
        score = weights.price * price + latency_term
        where = f"{r.cloud}/{r.region}"
        price_text = f"${price:.4g}/h" if priced else "price unknown"
        if client_region is None:
            net = "no client region"
        elif math.isinf(est):
            net = f"no RTT for {client_region}->{r.region}"
        else:
            net = f"RTT {client_region}->{r.region} {table.rtt(client_region, r.region):g} ms"
        queued = f"{r.queue_len} queued" if r.queue_known else f"queue unknown, counted as {r.queue_len}"
        if est <= slo.target_ms:
            reason = (f"{where} {price_text}: keeps SLO {slo.target_ms:g} ms "
                      f"(est {est:.0f} ms = {net} + {queued})")
            keep.append(((0.0 if priced else 1.0, score, r.locality, est, r.tie_break, r.replica_id),
                         Ranked(r, est, True, score, reason)))
        else:
            reason = (f"{where} {price_text}: misses SLO {slo.target_ms:g} ms "
                      f"(est {est:.0f} ms = {net} + {queued}); ranked by speed")
            miss.append(((est, r.locality, 0.0 if priced else 1.0, price, r.tie_break, r.replica_id),
                         Ranked(r, est, False, score, reason)))
    keep.sort(key=lambda kv: kv[0])
    miss.sort(key=lambda kv: kv[0])
    return tuple(ranked for _, ranked in keep) + tuple(ranked for _, ranked in miss)
