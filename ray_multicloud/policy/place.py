"""Placement: which offer each new node of a pool should use, in what failover order, and why.

Pure: no I/O, no clock (``now`` is passed in), no logging, no Ray. Same inputs, same answer.

**Matching.** An offer matches a pool when all of these hold, checked in this order (the order
the "infeasible" reasons use to say which limit removed the last candidates):

1. ``accelerator``: same name, case-insensitive and exact ("A100" does not match "A100-80GB");
   a pool with no accelerator matches only CPU-only offers;
2. ``accelerator_count``: the offer has at least that many;
3. ``min_vcpus`` and 4. ``min_memory_gib``: at least that much;
5. ``clouds``: the offer's cloud is listed, case-insensitively (empty = any);
6. ``regions``: the offer's region equals an entry, or starts with an entry ending in ``*``
   (``eu-*``); empty = any;
7. ``capacity_types``: the offer's capacity type is allowed;
8. ``max_price_per_hour``: price at or below it (None = no limit);
9. cooldown: ``cooldowns[offer_id]`` is absent or ``now >= until`` (a launcher cools an offer
   down after a capacity failure).

**Ranking.** ``(source preference rank, price, offer_id)``: an offer from a cloud listed earlier in
``source_preference`` wins over any later or unlisted one whatever the price; unlisted clouds
come after all listed ones; then cheaper first; ``offer_id`` breaks ties so the answer is
deterministic.

**Risk-weighted ranking** (optional: ``place(..., risk=PlacementRisk(...))``). Like AWS's
price-capacity-optimized allocation, the price is not the whole cost: a spot offer that is
interrupted often pays again for every restart and for the work redone since the last checkpoint.
With a :class:`PlacementRisk`, ``price`` in the ranking is replaced by the *expected cost per hour
of useful work* of :func:`ray_multicloud.policy.risk.useful_hour_cost` — the availability model the
deadline policy uses: the offer's zone's interruptions per hour (``PlacementRisk.rates`` by
``Offer.location``, estimated from the zone's own history with
:func:`ray_multicloud.policy.risk.interruptions_per_hour`; else the offer's
``interruption_rate_per_hour``; else unknown, ranked at its price, and the reasons say so), times
the job's restart plus half its checkpoint interval. On-demand offers are never interrupted. The
chosen node's reasons state the rate, the loss per interruption and the expected cost, and the
cheapest-by-price offer it was preferred to. Without ``risk`` the ranking is by price, as before.

**Per node.** Every new node takes the best-ranked matching offer, except while a constraint of
the pool is still unmet by the pool's live fleet (pending or running nodes; draining and
terminated ones do not count) plus the nodes already placed in this call:

- ``min_on_demand``: the node takes the best-ranked on-demand offer;
- ``min_clouds``: the node takes the best-ranked offer in a cloud the pool does not cover yet.

When both are unmet the node first tries an on-demand offer in an uncovered cloud, then an
on-demand offer anywhere, then any offer in an uncovered cloud. A constraint no matching offer
can meet is skipped for that node, and its reasons say so (config-time checks in
``check_pool`` catch the contradictions that make a constraint impossible).

**Gangs.** A pool with ``colocate`` (zone, region or cloud) keeps its live nodes together: a new
node only considers offers where most of the pool's live nodes already are (the first node of an
empty pool, or of this call, chooses as usual and anchors the rest); fallbacks stay there too. If
nothing matches there any more, the node is placed apart with a reason saying so, and the
controller's next move of the pool moves the whole gang (``policy.rebalance``, "Gangs").

**Reserved capacity.** A reserved offer (a declared commitment, ``Offer.reserved_count`` slots,
``price_per_hour`` 0 because its cost is sunk) ranks as a $0 offer, so it is taken first while it
has a free slot: a slot is free while fewer live nodes of the fleet (any pool) plus the nodes
placed in this call are on that offer than its ``reserved_count``. A full reservation is not a
candidate, nor a fallback.

**Failover order.** ``Placement.fallbacks`` holds up to ``max_fallbacks`` distinct matching offers
other than the chosen one, in three tiers, each tier in ranking order:

1. zone: the same instance type and capacity type in the other zones of the chosen region;
2. region: the rest of the chosen cloud (its other regions, and other machine or capacity types
   in the chosen region);
3. cloud: offers of the other clouds.

For example ``aws us-east-1a spot -> aws us-east-1b spot -> aws us-west-2a spot -> gcp us-central1 spot``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ray_multicloud.policy.risk import useful_hour_cost
from ray_multicloud.types import (
    CapacityType,
    Colocate,
    Decision,
    FleetNode,
    Infeasible,
    NodeState,
    Offer,
    OfferId,
    Placement,
    PoolSpec,
)

_ZoneKey = tuple[str, str, str, CapacityType]
_LIVE_STATES = frozenset({NodeState.PENDING, NodeState.RUNNING})


def _accelerator_key(name: str | None) -> str:
    return (name or "").strip().lower()


def _zone_key(o: Offer) -> _ZoneKey:
    return (o.cloud, o.region, o.instance_type, o.capacity)


@dataclass(frozen=True, slots=True)
class _Group:
    """The offers of one accelerator, sorted by (price, offer_id), with their prices for bisection."""

    offers: tuple[Offer, ...]
    prices: tuple[float, ...]
    ids: tuple[OfferId, ...]
    same_offer_zones: Mapping[_ZoneKey, tuple[Offer, ...]]


_EMPTY_GROUP = _Group((), (), (), {})


@dataclass(frozen=True, slots=True)
class OfferIndex:
    """Offers grouped by accelerator (lower-cased; "" for CPU-only), each group in (price, offer_id) order.

    Build it once per catalog or price update and reuse it across ``place`` calls: it turns each
    decision into a scan of one accelerator's offers, cut at the pool's maximum price.
    """

    groups: Mapping[str, _Group] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    size: int = 0

    @classmethod
    def build(cls, offers: Iterable[Offer]) -> OfferIndex:
        buckets: dict[str, list[Offer]] = {}
        names: dict[str, str] = {}
        size = 0
        for offer in offers:
            key = _accelerator_key(offer.accelerator)
            buckets.setdefault(key, []).append(offer)
            names.setdefault(key, offer.accelerator)
            size += 1
        groups: dict[str, _Group] = {}
        for key, items in buckets.items():
            items.sort(key=lambda o: (o.price_per_hour, o.offer_id))
            zones: dict[_ZoneKey, list[Offer]] = {}
            for o in items:
                zones.setdefault(_zone_key(o), []).append(o)
            groups[key] = _Group(
                offers=tuple(items),
                prices=tuple(o.price_per_hour for o in items),
                ids=tuple(o.offer_id for o in items),
                same_offer_zones={k: tuple(v) for k, v in zones.items()},
            )
        return cls(groups=groups, names=names, size=size)

    def __len__(self) -> int:
        return self.size

    def offers_for(self, accelerator: str | None) -> tuple[Offer, ...]:
        """The offers of one accelerator (case-insensitive exact name), cheapest first."""
        return self.groups.get(_accelerator_key(accelerator), _EMPTY_GROUP).offers

    def reserved(self) -> tuple[Offer, ...]:
        """The reserved offers (declared commitments) of every accelerator."""
        return tuple(o for g in self.groups.values() for o in g.offers if o.capacity is CapacityType.RESERVED)

    def accelerators(self) -> tuple[str, ...]:
        """Known accelerator names as the catalog spells them (CPU-only excluded), sorted."""
        return tuple(sorted((n for k, n in self.names.items() if k), key=str.lower))

    def canonical_accelerator(self, name: str) -> str | None:
        """The catalog's spelling of ``name`` (case-insensitive exact), or None when unknown."""
        return self.names.get(_accelerator_key(name)) if _accelerator_key(name) else None

    def clouds(self) -> tuple[str, ...]:
        return tuple(sorted({o.cloud for g in self.groups.values() for o in g.offers}))

    def _group(self, accelerator: str | None) -> _Group:
        return self.groups.get(_accelerator_key(accelerator), _EMPTY_GROUP)


@dataclass(frozen=True, slots=True)
class PoolProblem:
    """A reason a pool can never place a node. ``key`` is the pool field to change."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


# --------------------------------------------------------------------------- formatting helpers


def money(price: float) -> str:
    """``$0.92`` for prices from 10 cents up, four decimals below (shared-GPU rows cost cents)."""
    return f"${price:,.2f}" if price >= 0.1 or price == 0 else f"${price:.4f}"


def _count(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


def _what(pool: PoolSpec) -> str:
    if not pool.accelerator:
        return "CPU-only"
    return f"{pool.accelerator}x{_count(pool.accelerator_count or 1)}"


def describe_offer(o: Offer) -> str:
    """``aws us-east-1a p3.2xlarge $0.92/h (on-demand $3.06/h, 70% off)``."""
    where = o.zone or o.region
    if o.capacity is CapacityType.RESERVED:
        term = money(o.paid_price_per_hour)
        return (f"{o.cloud} {where} {o.instance_type} reserved ({o.reserved_count} committed at {term}/h, "
                f"paid whether used or not: $0/h marginal; on-demand {money(o.ondemand_price_per_hour)}/h)")
    text = f"{o.cloud} {where} {o.instance_type} {money(o.price_per_hour)}/h"
    if o.capacity is CapacityType.SPOT:
        text += f" (on-demand {money(o.ondemand_price_per_hour)}/h, {o.discount:.0%} off)"
    if not o.price_scope.startswith("full_vm"):
        text += f" [price scope {o.price_scope}]"
    if o.stale:
        seen = ""
        if o.as_of is not None:
            seen = f", last seen {datetime.fromtimestamp(o.as_of, UTC):%Y-%m-%dT%H:%MZ}"
        text += f" [stale price: its live feed failed or it is too old{seen}]"
    return text


# --------------------------------------------------------------------------- matching


def _region_matcher(regions: tuple[str, ...]) -> Callable[[str], bool] | None:
    if not regions:
        return None
    exact = frozenset(r for r in regions if not r.endswith("*"))
    prefixes = tuple(r[:-1] for r in regions if r.endswith("*"))
    if "" in prefixes:
        return None  # a bare "*" allows every region
    return lambda region: region in exact or region.startswith(prefixes)


def _stages(pool: PoolSpec) -> list[tuple[str, str, Callable[[Offer], bool]]]:
    """The matching filters, in the documented order, as (pool key, 'none ...' text, predicate)."""
    stages: list[tuple[str, str, Callable[[Offer], bool]]] = []
    if pool.accelerator and pool.accelerator_count > 0:
        n = pool.accelerator_count
        stages.append(
            (
                "accelerator_count",
                f"with at least {_count(n)} GPU{'' if n <= 1 else 's'}",
                lambda o: o.accelerator_count >= n,
            )
        )
    if pool.min_vcpus > 0:
        v = pool.min_vcpus
        stages.append(("min_vcpus", f"with at least {_count(v)} vCPUs", lambda o: o.vcpus >= v))
    if pool.min_memory_gib > 0:
        m = pool.min_memory_gib
        stages.append(
            ("min_memory_gib", f"with at least {_count(m)} GiB memory", lambda o: o.memory_gib >= m)
        )
    if pool.clouds:
        clouds = frozenset(c.lower() for c in pool.clouds)
        stages.append(
            ("clouds", f"in allowed clouds {list(pool.clouds)}", lambda o: o.cloud.lower() in clouds)
        )
    region_ok = _region_matcher(pool.regions)
    if region_ok is not None:
        ok = region_ok
        stages.append(("regions", f"in allowed regions {list(pool.regions)}", lambda o: ok(o.region)))
    caps = frozenset(pool.capacity_types)
    if caps != frozenset(CapacityType):
        shown = [c.value for c in pool.capacity_types]
        stages.append(("capacity_types", f"of capacity types {shown}", lambda o: o.capacity in caps))
    if pool.max_price_per_hour is not None:
        cap = pool.max_price_per_hour
        stages.append(
            ("max_price_per_hour", f"at or below {money(cap)}/h", lambda o: o.price_per_hour <= cap)
        )
    return stages


def _blocked(cooldowns: Mapping[OfferId, float] | None, now: float | None) -> frozenset[OfferId]:
    """The offer ids still cooling down at ``now``."""
    if not cooldowns or now is None:
        return frozenset()
    return frozenset(oid for oid, until in cooldowns.items() if now < until)


def _matching(pool: PoolSpec, group: _Group, blocked: frozenset[OfferId] = frozenset()) -> list[Offer]:
    """Offers of ``group`` passing filters 2-9, in (price, offer_id) order. The hot path of ``place``."""
    offers = group.offers
    ids = group.ids
    end = len(offers)
    if pool.max_price_per_hour is not None:
        # The group is sorted by price: everything past the cap is cut without being looked at.
        end = bisect_right(group.prices, pool.max_price_per_hour)
    gpus = pool.accelerator_count if pool.accelerator else 0.0
    vcpus = pool.min_vcpus
    mem = pool.min_memory_gib
    clouds = frozenset(c.lower() for c in pool.clouds) if pool.clouds else None
    region_ok = _region_matcher(pool.regions)
    caps = frozenset(pool.capacity_types)
    all_caps = caps == frozenset(CapacityType)
    out: list[Offer] = []
    append = out.append
    for i in range(end):
        o = offers[i]
        if o.accelerator_count < gpus or o.vcpus < vcpus or o.memory_gib < mem:
            continue
        if not all_caps and o.capacity not in caps:
            continue
        if clouds is not None and o.cloud.lower() not in clouds:
            continue
        if region_ok is not None and not region_ok(o.region):
            continue
        if blocked and ids[i] in blocked:
            continue
        append(o)
    return out


def _rank_order(pool: PoolSpec, offers: list[Offer]) -> list[Offer]:
    """Apply source preference on top of the (price, offer_id) order the index already gives."""
    if not pool.source_preference:
        return offers
    rank = {c.lower(): i for i, c in enumerate(pool.source_preference)}
    unlisted = len(rank)
    # sort is stable: within one preference rank the (price, offer_id) order is kept.
    return sorted(offers, key=lambda o: rank.get(o.cloud.lower(), unlisted))


def _diagnose(
    pool: PoolSpec, index: OfferIndex, *, now: float | None, cooldowns: Mapping[OfferId, float] | None
) -> list[PoolProblem]:
    """Why no offer matches: the filter that removed the last candidates, with what was left before."""
    group = index._group(pool.accelerator)
    if not group.offers:
        if pool.accelerator:
            known = ", ".join(index.accelerators()) or "none"
            return [
                PoolProblem("accelerator", f"no offers for accelerator {pool.accelerator!r} (known: {known})")
            ]
        return [PoolProblem("accelerator", "no CPU-only offers; set an accelerator or add CPU offers")]
    label = pool.accelerator or "CPU-only"
    remaining: list[Offer] = list(group.offers)
    passed: list[str] = []
    for key, text, pred in _stages(pool):
        kept = [o for o in remaining if pred(o)]
        if not kept:
            before = f"{len(remaining)} {label} offers" + (f" {' '.join(passed)}" if passed else "")
            return [PoolProblem(key, f"{before}, none {text}{_hint(key, remaining, pool)}")]
        remaining = kept
        passed.append(text)
    blocked = _blocked(cooldowns, now)
    if blocked and cooldowns and now is not None:
        cooling = [o for o in remaining if o.offer_id in blocked]
        if len(cooling) == len(remaining):
            soonest = min(cooldowns[o.offer_id] for o in cooling) - now
            return [
                PoolProblem(
                    "cooldown",
                    f"all {len(remaining)} matching {label} offers are cooling down after failures; "
                    f"the first is free again in {soonest:.0f} s",
                )
            ]
    return []


def _hint(key: str, remaining: Sequence[Offer], pool: PoolSpec) -> str:
    """What the candidates that reached a filter offer instead, so the user knows what to change."""
    if key == "accelerator_count":
        return f" (largest: {_count(max(o.accelerator_count for o in remaining))})"
    if key == "min_vcpus":
        return f" (largest: {_count(max(o.vcpus for o in remaining))})"
    if key == "min_memory_gib":
        return f" (largest: {_count(max(o.memory_gib for o in remaining))} GiB)"
    if key == "clouds":
        return f" (clouds with offers: {', '.join(sorted({o.cloud for o in remaining}))})"
    if key == "regions":
        regions = sorted({o.region for o in remaining})
        more = f", ... {len(regions) - 8} more" if len(regions) > 8 else ""
        return f" (regions with offers: {', '.join(regions[:8])}{more})"
    if key == "capacity_types":
        return f" (available: {', '.join(sorted({o.capacity.value for o in remaining}))})"
    if key == "max_price_per_hour":
        cheapest = min(remaining, key=lambda o: o.price_per_hour)
        return f" (cheapest matching is {describe_offer(cheapest)})"
    return ""


# --------------------------------------------------------------------------- risk


@dataclass(frozen=True, slots=True)
class PlacementRisk:
    """What a pool's job loses per interruption, and the zones' observed interruption rates.

    ``rates``: interruptions per hour by ``Offer.location`` (``"aws:us-east-1a"``), estimated from
    each zone's own history (``policy.risk.interruptions_per_hour``); a location absent here falls
    back to the offer's ``interruption_rate_per_hour``. ``checkpoint_hours`` 0 for a job that
    saves on notice (it loses only restarts).
    """

    restart_hours: float
    checkpoint_hours: float
    rates: Mapping[str, float] = field(default_factory=dict)
    source: str = "zone history"

    def rate(self, o: Offer) -> float | None:
        if o.capacity is CapacityType.ON_DEMAND:
            return 0.0
        r = self.rates.get(o.location)
        return r if r is not None else o.interruption_rate_per_hour

    def cost(self, o: Offer) -> float:
        """Expected cost per hour of useful work on ``o``."""
        return useful_hour_cost(o.price_per_hour, self.rate(o), self.restart_hours, self.checkpoint_hours)

    def explain(self, o: Offer, cheapest: Offer) -> str:
        rate = self.rate(o)
        loss = self.restart_hours + self.checkpoint_hours / 2
        if o.capacity is CapacityType.ON_DEMAND:
            text = f"risk: on-demand is not interrupted: {money(o.price_per_hour)} per useful hour"
        elif rate is None:
            text = "risk: interruption rate unknown for this zone: ranked at its price"
        else:
            half = self.checkpoint_hours / 2
            text = (f"risk: {rate:.3g} interruptions/h ({self.source}) x {loss:.2f} h lost each (restart "
                    f"{self.restart_hours:.2f} h + half a checkpoint interval {half:.2f} h): "
                    f"{money(self.cost(o))} per useful hour")
        if cheapest.offer_id != o.offer_id:
            where = cheapest.zone or cheapest.region
            text += (f"; preferred to the cheapest by price, {cheapest.cloud} {where} "
                     f"at {money(cheapest.price_per_hour)}/h = {money(self.cost(cheapest))} per useful hour")
        return text


def _risk_order(ranked: list[Offer], risk: PlacementRisk) -> list[Offer]:
    """``ranked`` by expected cost per useful hour (stable: ties keep the price order), source
    preference still first."""
    return sorted(ranked, key=lambda o: (round(risk.cost(o), 12), o.price_per_hour, o.offer_id))


# --------------------------------------------------------------------------- public API


def matching_offers(
    pool: PoolSpec,
    offers: OfferIndex | Sequence[Offer],
    *,
    now: float | None = None,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> list[Offer]:
    """Every offer the pool admits, best first (the ranking of the module docstring)."""
    index = offers if isinstance(offers, OfferIndex) else OfferIndex.build(offers)
    return _rank_order(pool, _matching(pool, index._group(pool.accelerator), _blocked(cooldowns, now)))


def check_pool(pool: PoolSpec, offers: OfferIndex | Sequence[Offer]) -> list[PoolProblem]:
    """Problems that make a pool unable ever to place a node, for config-time validation.

    Checks, in order: contradictory limits (no capacity types; ``min_on_demand`` with on-demand
    excluded; ``min_clouds`` above the number of allowed clouds); then that some offer matches
    (naming the filter that removed the last candidates, e.g. a ``max_price_per_hour`` below the
    cheapest matching offer); then that ``min_clouds`` clouds have matching offers.
    """
    index = offers if isinstance(offers, OfferIndex) else OfferIndex.build(offers)
    problems: list[PoolProblem] = []
    if not pool.capacity_types:
        problems.append(PoolProblem("capacity_types", "is empty; allow at least one of 'spot', 'on-demand'"))
    if pool.min_on_demand > 0 and CapacityType.ON_DEMAND not in pool.capacity_types:
        problems.append(
            PoolProblem(
                "min_on_demand",
                f"asks for {pool.min_on_demand} on-demand node(s) but capacity_types "
                f"{[c.value for c in pool.capacity_types]} excludes on-demand; "
                "add 'on-demand' or set it to 0",
            )
        )
    if pool.clouds and pool.min_clouds > len({c.lower() for c in pool.clouds}):
        problems.append(
            PoolProblem(
                "min_clouds",
                f"is {pool.min_clouds} but clouds allows only {list(pool.clouds)}; "
                "allow more clouds or lower it",
            )
        )
    if problems:
        return problems
    problems = _diagnose(pool, index, now=None, cooldowns=None)
    if problems:
        return problems
    if pool.min_clouds > 1:
        clouds = sorted({o.cloud for o in _matching(pool, index._group(pool.accelerator))})
        if len(clouds) < pool.min_clouds:
            problems.append(
                PoolProblem(
                    "min_clouds",
                    f"is {pool.min_clouds} but only {len(clouds)} cloud(s) have matching offers "
                    f"({', '.join(clouds)}); "
                    "widen the pool's other limits or lower min_clouds",
                )
            )
    return problems


def place(
    pool: PoolSpec,
    count: int,
    offers: OfferIndex | Sequence[Offer],
    fleet: Sequence[FleetNode] = (),
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
    max_fallbacks: int = 8,
    risk: PlacementRisk | None = None,
) -> Decision | Infeasible:
    """Choose an offer for each of ``count`` new nodes of ``pool`` (see the module docstring);
    with ``risk``, ranked by expected cost per useful hour instead of price.

    ``fleet`` may hold nodes of any pool; only live nodes of this pool count towards its
    ``min_clouds`` and ``min_on_demand``. Returns ``Infeasible`` (reasons name the limit that
    excluded the last offers) when no offer matches, ``Decision`` otherwise; ``count == 0`` gives
    an empty ``Decision``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if max_fallbacks < 0:
        raise ValueError(f"max_fallbacks must be >= 0, got {max_fallbacks}")
    index = offers if isinstance(offers, OfferIndex) else OfferIndex.build(offers)
    if count == 0:
        return Decision(pool=pool.name, placements=())
    group = index._group(pool.accelerator)
    blocked = _blocked(cooldowns, now)
    by_price = _matching(pool, group, blocked)
    ranked = _rank_order(pool, _risk_order(by_price, risk) if risk is not None and by_price else by_price)
    if not ranked:
        problems = _diagnose(pool, index, now=now, cooldowns=cooldowns)
        why = tuple(f"pool {pool.name!r}: {p}" for p in problems) or (
            f"pool {pool.name!r}: no offer matches",
        )
        return Infeasible(pool=pool.name, reasons=why)

    reserved_used = reserved_in_use(fleet)
    full = {o.offer_id for o in ranked if _reservation_full(o, reserved_used)}
    if full:
        ranked = [o for o in ranked if o.offer_id not in full]
        if not ranked:
            return Infeasible(pool=pool.name, reasons=(
                f"pool {pool.name!r}: capacity_types: every slot of the matching reservation(s) "
                f"{', '.join(sorted(full))} is in use; allow 'on-demand' or 'spot' to go beyond them",
            ))
    mine = [n for n in fleet if n.pool == pool.name and n.state in _LIVE_STATES]
    together = ""
    if pool.colocate is not Colocate.NONE and mine:
        ranked, together = _colocated(pool, ranked, [n.offer for n in mine])
    covered = {n.offer.cloud for n in mine}
    on_demand = sum(1 for n in mine if n.offer.capacity is CapacityType.ON_DEMAND)
    preferred = f" (source preference {list(pool.source_preference)})" if pool.source_preference else ""
    fallbacks_memo: dict[OfferId, tuple[tuple[Offer, ...], str]] = {}
    placements: list[Placement] = []
    for _ in range(count):
        if not ranked:  # a reservation this call filled was the last candidate
            return Infeasible(pool=pool.name, reasons=(
                f"pool {pool.name!r}: capacity_types: every slot of the matching reservation(s) "
                f"{', '.join(sorted(full))} is taken by this request; allow 'on-demand' or 'spot' "
                "to go beyond them",
            ))
        need_od = on_demand < pool.min_on_demand
        need_spread = pool.min_clouds > 1 and len(covered) < pool.min_clouds
        chosen, notes = _choose(ranked, covered, need_od, need_spread, pool)
        kind = chosen.capacity.value
        head = "best" if pool.source_preference else "cheapest"
        if risk is not None:
            head = "lowest expected cost per useful hour:" if not pool.source_preference else "best"
        if notes:
            head = f"{head} eligible"
        reasons = [
            f"{head} {kind} {_what(pool)} matching pool {pool.name!r}{preferred}: {describe_offer(chosen)}"
        ]
        if risk is not None:
            reasons.append(risk.explain(chosen, by_price[0]))
        reasons.extend(notes)
        if together:
            reasons.append(together)
        oid = chosen.offer_id
        if oid not in fallbacks_memo:
            fallbacks_memo[oid] = _fallbacks(chosen, ranked, group, pool, blocked, max_fallbacks)
        fallbacks, summary = fallbacks_memo[oid]
        if together and pool.colocate is not Colocate.NONE:
            # A gang member fails over only within the gang's place.
            where = pool.colocate.key(chosen)
            fallbacks = tuple(o for o in fallbacks if pool.colocate.key(o) == where)
            summary = f"fallbacks: {len(fallbacks)} within {'/'.join(where)}" if fallbacks else ""
        if full:
            fallbacks = tuple(o for o in fallbacks if o.offer_id not in full)
        if chosen.capacity is CapacityType.RESERVED:
            used = reserved_used.get(oid, 0) + 1
            reserved_used[oid] = used
            reasons.append(f"reserved slot {used} of {chosen.reserved_count} on {oid}")
            if used >= chosen.reserved_count:
                full.add(oid)
                ranked = [o for o in ranked if o.offer_id != oid]
        if summary:
            reasons.append(summary)
        placements.append(Placement(offer=chosen, fallbacks=fallbacks, reasons=tuple(reasons)))
        covered.add(chosen.cloud)
        if chosen.capacity is CapacityType.ON_DEMAND:
            on_demand += 1
        if pool.colocate is not Colocate.NONE and not together:
            # The first node of a gang sets where the rest of this call goes.
            ranked, together = _colocated(pool, ranked, [chosen])
    return Decision(pool=pool.name, placements=tuple(placements))


def reserved_in_use(fleet: Iterable[FleetNode]) -> dict[OfferId, int]:
    """Live nodes (pending or running, any pool) per reserved offer id."""
    used: dict[OfferId, int] = {}
    for n in fleet:
        if n.state in _LIVE_STATES and n.offer.capacity is CapacityType.RESERVED:
            used[n.offer.offer_id] = used.get(n.offer.offer_id, 0) + 1
    return used


def _reservation_full(offer: Offer, used: Mapping[OfferId, int]) -> bool:
    return offer.capacity is CapacityType.RESERVED and used.get(offer.offer_id, 0) >= offer.reserved_count


def full_reservations(offers: Iterable[Offer], fleet: Iterable[FleetNode]) -> frozenset[OfferId]:
    """The reserved offers among ``offers`` whose every slot holds a live node of ``fleet``: no
    launch or move may land there (the provider and the controller block them like full private
    machines)."""
    used = reserved_in_use(fleet)
    return frozenset(o.offer_id for o in offers if _reservation_full(o, used))


def _colocated(pool: PoolSpec, ranked: list[Offer], live: Sequence[Offer]) -> tuple[list[Offer], str]:
    """``ranked`` narrowed to where the pool's ``live`` nodes are (``pool.colocate``), and the reason.

    The anchor is the place holding most live nodes (ties: the one whose best offer ranks first).
    When no matching offer is left there (no capacity, cooling down), the whole ranking stays and
    the reason says the node is placed apart: the controller's next move of the pool moves the
    whole gang to one place.
    """
    key = pool.colocate.key
    counts: dict[tuple[str, ...], int] = {}
    for offer in live:
        counts[key(offer)] = counts.get(key(offer), 0) + 1
    order = {k: i for i, k in reversed(list(enumerate(key(o) for o in ranked)))}
    anchor = min(counts, key=lambda k: (-counts[k], order.get(k, len(order))))
    here = [o for o in ranked if key(o) == anchor]
    where = "/".join(anchor)
    if here:
        return here, f"colocate={pool.colocate.value}: with the pool's other node(s) in {where}"
    return ranked, (
        f"colocate={pool.colocate.value}: no matching offer left in {where} (capacity or cooldown); "
        "placed apart until the controller moves the gang together"
    )


def _choose(
    ranked: list[Offer], covered: set[str], need_od: bool, need_spread: bool, pool: PoolSpec
) -> tuple[Offer, list[str]]:
    """The best-ranked offer meeting the pool's unmet constraints, with the notes that explain it."""
    if not need_od and not need_spread:
        return ranked[0], []
    od = CapacityType.ON_DEMAND
    attempts: list[tuple[bool, bool]] = []
    if need_od and need_spread:
        attempts.append((True, True))
    if need_od:
        attempts.append((True, False))
    if need_spread:
        attempts.append((False, True))
    for want_od, want_new_cloud in attempts:
        for o in ranked:
            if want_od and o.capacity is not od:
                continue
            if want_new_cloud and o.cloud in covered:
                continue
            notes: list[str] = []
            if need_spread:
                if want_new_cloud:
                    notes.append(
                        f"spread: {o.cloud} not yet covered ({len(covered)} of min_clouds={pool.min_clouds} "
                        f"covered{': ' + ', '.join(sorted(covered)) if covered else ''})"
                    )
                else:
                    notes.append("spread: no on-demand offer in an uncovered cloud; on-demand first")
            if need_od and want_od:
                notes.append(f"min_on_demand={pool.min_on_demand}: this node is on-demand")
            elif need_od:  # the spread-only attempt: no on-demand offer matched at all
                notes.append(f"min_on_demand={pool.min_on_demand} unmet: no matching on-demand offer")
            return o, notes
    # No offer meets any unmet constraint: take the best one and say which constraint is unmet.
    notes = []
    if need_od:
        notes.append(f"min_on_demand={pool.min_on_demand} unmet: no matching on-demand offer")
    if need_spread:
        notes.append(
            f"spread: min_clouds={pool.min_clouds} unmet: no matching offer outside "
            f"{', '.join(sorted(covered)) or 'the covered clouds'}"
        )
    return ranked[0], notes


def _fallbacks(
    chosen: Offer,
    ranked: list[Offer],
    group: _Group,
    pool: PoolSpec,
    blocked: frozenset[OfferId],
    limit: int,
) -> tuple[tuple[Offer, ...], str]:
    """Up to ``limit`` fallbacks in zone -> region -> cloud tiers (module docstring), and a summary.
    Precondition: each offer once (the catalog and the live merge give each offer once; candidates
    are told apart by identity, so an offer listed twice would be a fallback twice)."""
    if limit == 0:
        return (), ""
    out: list[Offer] = []
    # Identity, not equality: every candidate is an object of the same index, and hashing a
    # 16-field dataclass per candidate would dominate this loop.
    taken = {id(chosen)}
    # Tier 1: the same instance and capacity type in other zones of the region. Read from the
    # index (a handful of offers) and re-checked against the pool, instead of scanning ``ranked``.
    stages = _stages(pool)
    zones = 0
    for o in group.same_offer_zones.get(_zone_key(chosen), ()):
        if len(out) >= limit:
            break
        if o.zone == chosen.zone or id(o) in taken:
            continue
        if not all(pred(o) for _, _, pred in stages):
            continue
        if o.offer_id in blocked:
            continue
        out.append(o)
        taken.add(id(o))
        zones += 1
    # Tiers 2 and 3 come from ``ranked`` (already filtered and in ranking order).
    same_cloud = 0
    other_cloud = 0
    if len(out) < limit:
        for o in ranked:
            if o.cloud == chosen.cloud and id(o) not in taken:
                out.append(o)
                taken.add(id(o))
                same_cloud += 1
                if len(out) >= limit:
                    break
    if len(out) < limit:
        for o in ranked:
            if o.cloud != chosen.cloud:
                out.append(o)
                other_cloud += 1
                if len(out) >= limit:
                    break
    if not out:
        return (), "no fallback: this is the only matching offer"
    parts = []
    if zones:
        parts.append(f"{zones} other zone(s) of {chosen.region}")
    if same_cloud:
        parts.append(f"{same_cloud} more in {chosen.cloud}")
    if other_cloud:
        parts.append(f"{other_cloud} in other clouds")
    return tuple(out), "fallbacks: " + ", then ".join(parts)
