"""Rebalancing: which running nodes to move to another offer now, and why.

Pure: no I/O, no clock (``now`` is passed in), no logging, no Ray. Same inputs, same answer.
The controller on the head (``ray_multicloud.controller``) asks once per tick and applies each
``Move`` by bringing the replacement up first, then draining the old node (reason PREEMPTION, so
Ray Train restores from its last checkpoint and Ray Serve re-places replicas), then terminating it.

**Price moves.** A ``RUNNING`` node of a pool in ``pools`` is moved to the matching offer
(``place.matching_offers``: the pool's accelerator, clouds, regions, capacity types, price cap)
with the largest *net saving* when all of these hold, checked in this order (the notes of
``plan`` name the first one that failed):

1. ``now`` is in no blackout window (``RebalanceConfig.blackouts``);
2. hysteresis: the node has not been moved (``last_moved``) and was not launched within the last
   ``min_interval_s`` seconds;
3. the target is not less preferred than the current offer under the pool's
   ``source_preference`` (a private pool is never left for a public cloud because of price);
4. relative saving ``(current - target) / current >= min_relative_saving``;
5. net saving ``saving_per_hour * horizon_hours - move_cost_usd > min_net_saving_usd``, where the
   move cost is what the move burns (``move_cost``):

   - the job stalls for ``checkpoint_s + restart_s`` (persist the state, start and restore on the
     replacement): charged at the current node's price (RAY_NOTES: minutes for large jobs — a 1B
     state with Adam took 15.6 s to persist and 11.4 s to restore on one H200; 7B needs ~110 s);
   - the replacement runs beside the old node for ``launch_s`` before the drain: charged at the
     target's price;
   - ``state_gb`` of checkpoint crosses the network: ``egress_usd_per_gb`` between clouds,
     ``intra_cloud_egress_usd_per_gb`` between regions of one cloud, nothing within a region;

6. the move keeps the pool's ``min_on_demand`` and ``min_clouds`` as satisfied as they are now.

At most ``max_moves`` moves are proposed per call, the largest net saving first; a node is
proposed once. For example, with a 4 h horizon and a 2-minute move:
``aws us-east-1a T4 spot $0.50/h -> gcp us-central1-a T4 spot $0.20/h (saves $1.19 net: move)``;
``... -> ... $0.48/h (4% < 10% minimum: stay)``.

**Deadline moves.** A pool may run one job with a deadline (``RebalanceConfig.jobs``). Its nodes
are then also judged with the guards of ``policy.deadline`` (Uniform Progress, "Can't Be Late",
NSDI'24): a spot node whose job could not survive one more preemption and still finish on
on-demand by the deadline (``off_ondemand_is_safe(keep=True)`` false) is moved to the cheapest
matching on-demand offer, whatever the price and whatever the hysteresis (and, unless
``deadline_overrides_blackout`` is false, inside a blackout too); a price move *into* spot is only
proposed while it is safe (``off_ondemand_is_safe(keep=False)``), and a move from on-demand back to
spot only while the slack exceeds ``back_reserves`` preemption reserves:
``aws us-east-1a spot (slack 0.3 h < one reserve) -> azure eastus on-demand (done on time)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    JobView,
    off_ondemand_is_safe,
    ondemand_slack,
    reserve_hours,
    spot,
)
from ray_multicloud.policy.place import OfferIndex, describe_offer, matching_offers, money
from ray_multicloud.types import CapacityType, FleetNode, InstanceId, Move, NodeState, Offer, PoolSpec

_EPS = 1e-9


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class Window:
    """A blackout window ``[start, end)`` in POSIX seconds (e.g. a release freeze)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"blackout window ends ({self.end}) at or before it starts ({self.start})")

    def contains(self, now: float) -> bool:
        return self.start <= now < self.end

    def __str__(self) -> str:
        return f"blackout {_iso(self.start)}..{_iso(self.end)}"


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """A blackout window every day, ``[start_hour, end_hour)`` UTC; wraps midnight when start > end
    (``DailyWindow(22, 2)`` is 22:00-02:00). Hours may be fractional (``8.5`` is 08:30)."""

    start_hour: float
    end_hour: float

    def __post_init__(self) -> None:
        for h in (self.start_hour, self.end_hour):
            if not 0.0 <= h <= 24.0:
                raise ValueError(f"daily blackout hours must be within 0..24, got {h}")
        if self.start_hour == self.end_hour:
            raise ValueError("daily blackout window is empty (start_hour == end_hour)")

    def contains(self, now: float) -> bool:
        hour = (now % 86400.0) / 3600.0
        if self.start_hour < self.end_hour:
            return self.start_hour <= hour < self.end_hour
        return hour >= self.start_hour or hour < self.end_hour

    def __str__(self) -> str:
        return f"daily blackout {_hhmm(self.start_hour)}-{_hhmm(self.end_hour)} UTC"


Blackout = Window | DailyWindow


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where the one deadline job of a pool stands (the controller fills it from the job's reports).

    Times are POSIX seconds; work is in hours of running on one placement. ``checkpoint_hours`` is
    the work between two checkpoints.
    """

    submitted_at: float
    deadline_at: float
    work_total_hours: float
    work_done_hours: float
    checkpointed_hours: float
    checkpoint_hours: float


@dataclass(frozen=True, slots=True)
class RebalanceConfig:
    """The knobs of ``rebalance`` (see the module docstring for how each is used).

    Defaults suit a small training job: a 4 h horizon, a 1-minute checkpoint and a 2-minute
    restore, 20 GB of state, no move more than once per 30 minutes, 10% minimum saving.
    """

    horizon_hours: float = 4.0
    checkpoint_s: float = 60.0
    restart_s: float = 120.0
    launch_s: float = 60.0
    state_gb: float = 20.0
    egress_usd_per_gb: float = 0.09
    intra_cloud_egress_usd_per_gb: float = 0.02
    min_relative_saving: float = 0.10
    min_net_saving_usd: float = 0.0
    min_interval_s: float = 1800.0
    blackouts: tuple[Blackout, ...] = ()
    max_moves: int = 1
    jobs: Mapping[str, JobProgress] = field(default_factory=dict)
    tick_s: float = 60.0
    back_reserves: float = 2.0
    deadline_overrides_blackout: bool = True

    def __post_init__(self) -> None:
        checks = {
            "horizon_hours": self.horizon_hours,
            "checkpoint_s": self.checkpoint_s,
            "restart_s": self.restart_s,
            "launch_s": self.launch_s,
            "state_gb": self.state_gb,
            "egress_usd_per_gb": self.egress_usd_per_gb,
            "intra_cloud_egress_usd_per_gb": self.intra_cloud_egress_usd_per_gb,
            "min_relative_saving": self.min_relative_saving,
            "min_interval_s": self.min_interval_s,
            "tick_s": self.tick_s,
        }
        for name, value in checks.items():
            if value < 0 or math.isnan(value):
                raise ValueError(f"RebalanceConfig.{name} must be >= 0, got {value}")
        if self.max_moves < 0:
            raise ValueError(f"RebalanceConfig.max_moves must be >= 0, got {self.max_moves}")

    @property
    def restart_hours(self) -> float:
        """The stall one move (or preemption) costs the job: persist + restore."""
        return (self.checkpoint_s + self.restart_s) / 3600.0


@dataclass(frozen=True, slots=True)
class Plan:
    """``plan``'s answer: the moves to make and, per node not moved, why not."""

    moves: tuple[Move, ...]
    notes: tuple[str, ...]


# --------------------------------------------------------------------------- cost model


def egress_usd(src: Offer, dst: Offer, config: RebalanceConfig) -> float:
    """What carrying ``config.state_gb`` from ``src`` to ``dst`` costs: inter-cloud, inter-region, or 0."""
    if src.cloud != dst.cloud:
        return config.state_gb * config.egress_usd_per_gb
    if src.region != dst.region:
        return config.state_gb * config.intra_cloud_egress_usd_per_gb
    return 0.0


def move_cost(src: Offer, dst: Offer, config: RebalanceConfig) -> float:
    """USD one move from ``src`` to ``dst`` burns: the stall at the current price, the overlap of the
    replacement at its price, and the egress of the state."""
    stall = config.restart_hours * src.price_per_hour
    overlap = config.launch_s / 3600.0 * dst.price_per_hour
    return stall + overlap + egress_usd(src, dst, config)


# --------------------------------------------------------------------------- the decision


def rebalance(
    fleet: Sequence[FleetNode],
    offers_index: OfferIndex | Sequence[Offer],
    pools: Mapping[str, PoolSpec],
    *,
    now: float,
    config: RebalanceConfig,
    last_moved: Mapping[InstanceId, float],
) -> list[Move]:
    """The moves to make now (see the module docstring); ``plan(...).moves`` as a list."""
    return list(plan(fleet, offers_index, pools, now=now, config=config, last_moved=last_moved).moves)


def plan(
    fleet: Sequence[FleetNode],
    offers_index: OfferIndex | Sequence[Offer],
    pools: Mapping[str, PoolSpec],
    *,
    now: float,
    config: RebalanceConfig,
    last_moved: Mapping[InstanceId, float],
) -> Plan:
    """``rebalance`` with the reasons nodes were *not* moved, for logs and the CLI.

    Only ``RUNNING`` nodes whose pool is in ``pools`` are considered (the head and pinned node
    types are never moved). ``last_moved`` maps an instance to the time it was last moved to
    (the controller records the replacement's id at the move).
    """
    index = offers_index if isinstance(offers_index, OfferIndex) else OfferIndex.build(offers_index)
    blackout = next((b for b in config.blackouts if b.contains(now)), None)
    live = [n for n in fleet if n.state in (NodeState.PENDING, NodeState.RUNNING)]
    candidates: list[tuple[int, float, str, Move]] = []
    notes: list[str] = []
    for node in sorted(fleet, key=lambda n: n.instance_id):
        if node.state is not NodeState.RUNNING:
            continue
        pool = pools.get(node.pool)
        if pool is None:
            continue
        job = config.jobs.get(node.pool)
        if job is not None:
            forced = _deadline_move(node, pool, index, job, config, now, live)
            if forced is not None:
                if isinstance(forced, str):
                    notes.append(forced)
                    continue
                if blackout is not None and not config.deadline_overrides_blackout:
                    notes.append(f"{node.instance_id}: deadline move blocked by {blackout}")
                    continue
                candidates.append((0, -math.inf, node.instance_id, forced))
                continue
        if blackout is not None:
            notes.append(f"{node.instance_id}: {blackout}")
            continue
        since = max(last_moved.get(node.instance_id, -math.inf), node.launched_at)
        if now - since < config.min_interval_s:
            notes.append(
                f"{node.instance_id}: hysteresis, moved or launched {now - since:.0f} s ago "
                f"< min_interval_s {config.min_interval_s:.0f} s"
            )
            continue
        move, why = _price_move(node, pool, index, config, now, live, job)
        if move is None:
            notes.append(f"{node.instance_id}: {why}")
            continue
        net = move.saving_per_hour * config.horizon_hours - move.move_cost_usd
        candidates.append((1, -net, node.instance_id, move))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    chosen = tuple(c[3] for c in candidates[: config.max_moves])
    for _, _, iid, _ in candidates[config.max_moves :]:
        notes.append(f"{iid}: max_moves={config.max_moves} reached this tick")
    return Plan(moves=chosen, notes=tuple(notes))


def _price_move(
    node: FleetNode,
    pool: PoolSpec,
    index: OfferIndex,
    config: RebalanceConfig,
    now: float,
    live: Sequence[FleetNode],
    job: JobProgress | None,
) -> tuple[Move | None, str]:
    current = node.offer
    ranked = matching_offers(pool, index, now=now)
    pref = _preference(pool)
    my_rank = pref(current)
    best: tuple[float, Offer, float, float] | None = None
    first_fail = "no other matching offer"
    for target in ranked:
        if target.offer_id == current.offer_id:
            continue
        if pref(target) > my_rank:
            first_fail = first_fail if best else f"{target.cloud} is less preferred than {current.cloud}"
            continue
        saving = current.price_per_hour - target.price_per_hour
        if current.price_per_hour <= 0 or saving <= 0:
            continue
        rel = saving / current.price_per_hour
        if rel + _EPS < config.min_relative_saving:
            if best is None:
                first_fail = (
                    f"best saving {rel:.0%} ({describe_offer(target)}) < min_relative_saving "
                    f"{config.min_relative_saving:.0%}"
                )
            continue
        cost = move_cost(current, target, config)
        net = saving * config.horizon_hours - cost
        if net <= config.min_net_saving_usd + _EPS:
            if best is None:
                first_fail = (
                    f"saving {money(saving)}/h x {config.horizon_hours:g} h = "
                    f"{money(saving * config.horizon_hours)} "
                    f"does not pay a move costing {money(cost)} to {describe_offer(target)}"
                )
            continue
        if not _keeps_constraints(node, target, pool, live):
            if best is None:
                first_fail = (
                    f"moving to {target.offer_id} would break min_on_demand/min_clouds of {pool.name!r}"
                )
            continue
        if job is not None and target.capacity is CapacityType.SPOT:
            unsafe = _unsafe_into_spot(node, target, job, config, now)
            if unsafe:
                if best is None:
                    first_fail = unsafe
                continue
        if best is None or net > best[0] + _EPS:
            best = (net, target, saving, cost)
    if best is None:
        return None, first_fail
    net, target, saving, cost = best
    reasons = (
        f"price move: {describe_offer(current)} -> {describe_offer(target)}",
        (
            f"saves {money(saving)}/h ({saving / current.price_per_hour:.0%}), "
            f"{money(saving * config.horizon_hours)} over {config.horizon_hours:g} h"
        ),
        (
            f"move costs {money(cost)}: stall {config.checkpoint_s + config.restart_s:.0f} s at "
            f"{money(current.price_per_hour)}/h, overlap {config.launch_s:.0f} s, egress "
            f"{money(egress_usd(current, target, config))} for {config.state_gb:g} GB"
        ),
        f"net {money(net)} > {money(config.min_net_saving_usd)}",
    )
    return Move(
        instance_id=node.instance_id,
        pool=node.pool,
        from_offer=current,
        to_offer=target,
        saving_per_hour=saving,
        move_cost_usd=cost,
        reasons=reasons,
    ), ""


def _preference(pool: PoolSpec) -> _Rank:
    return _Rank({c.lower(): i for i, c in enumerate(pool.source_preference)})


@dataclass(frozen=True, slots=True)
class _Rank:
    ranks: Mapping[str, int]

    def __call__(self, offer: Offer) -> int:
        return self.ranks.get(offer.cloud.lower(), len(self.ranks))


def _keeps_constraints(node: FleetNode, target: Offer, pool: PoolSpec, live: Sequence[FleetNode]) -> bool:
    """True when the pool's min_on_demand and min_clouds are no less satisfied after the move."""
    mine = [n.offer for n in live if n.pool == pool.name]
    after = [target if n.instance_id == node.instance_id else n.offer for n in live if n.pool == pool.name]
    if not any(n.instance_id == node.instance_id for n in live):
        return True

    def od(offers: Sequence[Offer]) -> int:
        return min(pool.min_on_demand, sum(1 for o in offers if o.capacity is CapacityType.ON_DEMAND))

    def clouds(offers: Sequence[Offer]) -> int:
        return min(pool.min_clouds, len({o.cloud for o in offers}))

    return od(after) >= od(mine) and clouds(after) >= clouds(mine)


def _view(node: FleetNode, job: JobProgress, config: RebalanceConfig, now: float) -> JobView:
    current = spot(node.offer.offer_id) if node.offer.capacity is CapacityType.SPOT else ON_DEMAND
    return JobView(
        elapsed_hours=(now - job.submitted_at) / 3600.0,
        work_done_hours=job.work_done_hours,
        checkpointed_hours=job.checkpointed_hours,
        work_total_hours=job.work_total_hours,
        deadline_hours=(job.deadline_at - job.submitted_at) / 3600.0,
        restart_hours=config.restart_hours,
        checkpoint_hours=job.checkpoint_hours,
        tick_hours=config.tick_s / 3600.0,
        current=current,
        overhead_left_hours=0.0,
        zones=(),
        ondemand_price_per_hour=node.offer.ondemand_price_per_hour,
    )


def _unsafe_into_spot(
    node: FleetNode, target: Offer, job: JobProgress, config: RebalanceConfig, now: float
) -> str:
    """Why a move of a deadline job onto spot ``target`` is unsafe ("" when it is safe)."""
    view = _view(node, job, config, now)
    if not off_ondemand_is_safe(view, keep=False):
        return f"deadline: moving onto spot {target.offer_id} would leave no on-demand rescue in time"
    if node.offer.capacity is CapacityType.ON_DEMAND:
        slack = ondemand_slack(view)
        need = config.back_reserves * reserve_hours(view)
        if slack - view.restart_hours < need - _EPS:
            return f"deadline: slack {slack:.2f} h too low to leave on-demand (need {need:.2f} h + a restart)"
    return ""


def _deadline_move(
    node: FleetNode,
    pool: PoolSpec,
    index: OfferIndex,
    job: JobProgress,
    config: RebalanceConfig,
    now: float,
    live: Sequence[FleetNode],
) -> Move | str | None:
    """A forced move to on-demand when the job's slack cannot absorb another preemption on spot.

    None when no deadline move is needed; a note (str) when one is needed but impossible.
    """
    if node.offer.capacity is not CapacityType.SPOT:
        return None
    view = _view(node, job, config, now)
    if off_ondemand_is_safe(view, keep=True):
        return None
    slack = ondemand_slack(view)
    ondemand = [o for o in matching_offers(pool, index, now=now) if o.capacity is CapacityType.ON_DEMAND]
    if not ondemand:
        return (
            f"{node.instance_id}: deadline at risk (slack {slack:.2f} h) but pool {pool.name!r} admits "
            "no on-demand offer; add 'on-demand' to its capacity_types"
        )
    target = ondemand[0]
    cost = move_cost(node.offer, target, config)
    return Move(
        instance_id=node.instance_id,
        pool=node.pool,
        from_offer=node.offer,
        to_offer=target,
        saving_per_hour=node.offer.price_per_hour - target.price_per_hour,
        move_cost_usd=cost,
        reasons=(
            (
                f"deadline move: slack {slack:.2f} h cannot absorb another preemption on spot "
                f"(reserve {reserve_hours(view):.2f} h)"
            ),
            f"{describe_offer(node.offer)} -> {describe_offer(target)}",
            f"move costs {money(cost)}",
        ),
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hhmm(hour: float) -> str:
    minutes = round(hour * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
