"""Rebalancing: which running nodes to move to another offer now, and why.

Pure: no I/O, no clock (``now`` is passed in), no logging, no Ray. Same inputs, same answer.
The controller on the head (``ray_multicloud.controller``) asks once per tick and applies each
``Move`` by bringing the replacement up first, then draining the old node (reason PREEMPTION, so
Ray Train restores from its last checkpoint and Ray Serve re-places replicas), then terminating it.

**Price moves.** A ``RUNNING`` node of a pool in ``pools`` that runs no deadline job (see
"Deadline moves") is moved to the matching offer (``place.matching_offers``: the pool's
accelerator, clouds, regions, capacity types, price cap) with the largest *net saving* when all
of these hold, checked in this order (the notes of ``plan`` name the first one that failed):

1. ``now`` is in no blackout window (``RebalanceConfig.blackouts``: one-off intervals, daily UTC
   hours, weekly hours in a time zone, an iCalendar file's events; ``Blackout``);
2. hysteresis: the node has not been moved (``last_moved``) and was not launched within the last
   ``min_interval_s`` seconds;
3. the target is not less preferred than the current offer under the pool's
   ``source_preference`` (a private pool is never left for a public cloud because of price), and
   not blocked in ``cooldowns`` (an offer that just answered "no capacity", or a private machine
   kind whose every machine is in use: the controller passes those too). A node that burst to a
   public cloud comes back this way once a private machine frees ("repatriation"): the private
   offer is more preferred and, at its amortised price, cheaper;
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
are then judged by the pool's deadline policy, ``policy.deadline.POLICIES[config.deadline_policy]``
(``multicloud`` by default) — the very ``DeadlinePolicy.decide`` that ``ray-multicloud simulate``
scores — and by nothing else: no price move is made for such a pool (the policy has its own price,
payback and uptime rules). Each ``RUNNING`` node of the pool is asked about once per call
(``node_step``) with a ``JobView`` built as the simulator builds it (``job_view``):

- times in hours since ``JobProgress.submitted_at``; work and checkpoints from ``JobProgress``;
  ``tick_hours = tick_s / 3600``; ``restart_hours = (checkpoint_s + restart_s) / 3600``;
- ``zones``: one ``SpotOption`` per spot offer the pool admits (``place.matching_offers``, cooling
  down or not), sorted by offer id so that ``Memory.up_since`` lines up from one call to the next;
  ``zone`` is the offer id, ``available`` is "not cooling down" (``cooldowns``), the price is the
  offer's price now;
  ``egress_usd`` is what the start would pay to carry ``state_gb`` of checkpoint from the region the
  job's state lives in (``checkpoint_home``: the spot node running it or just lost, else
  ``JobProgress.checkpoint_region``; none before anything is saved) at the pool's egress rates
  (``egress_usd``) — the simulator's model of egress, so its rules on egress (``MultiCloud``'s
  payback and ``free_wait_share``) act live as they were measured;
- ``current``: ``spot(offer_id)`` or ``ON_DEMAND``; ``overhead_left_hours``: the restart still to
  pay, ``restart_hours`` less the time since the node launched (at least 0);
- ``ondemand_price_per_hour``: the node's own price on on-demand, else the on-demand offer a move
  would take (``ondemand_offer``), else the spot offer's on-demand price.

The policy's ``Step`` maps to at most one ``Move``: the same placement -> no move (the notes carry
the step's reasons); ``spot(offer)`` -> a move to that offer, inside no blackout, never breaking
``min_on_demand``/``min_clouds``, but whatever ``min_interval_s``; ``ON_DEMAND`` from spot -> a move
to ``ondemand_offer`` whatever the hysteresis and (unless ``deadline_overrides_blackout`` is false)
inside a blackout too, or a note asking to add on-demand to the pool's ``capacity_types`` when it
admits none; ``WAIT`` -> no move (a running node is released by the autoscaler, not moved). The
policy's memory is threaded per pool: ``plan(memories=...)`` in, ``MovePlan.memories`` out. A job whose
pool has no running node (just preempted, or not placed yet) is asked through ``idle_step``; its
answer is what the pool should launch next. Moves to on-demand come first under ``max_moves``,
then the policy's moves onto spot, then price moves of other pools:
``aws us-east-1a spot (slack 0.3 h cannot absorb another preemption) -> azure eastus on-demand``;
``aws us-east-1a spot (preempted) -> idle_step: us-east-1c spot``.

**Gangs.** A pool with ``colocate`` (the nodes of one Ray Train worker group, ``PoolSpec.colocate``)
is moved as a whole: whatever the reason one of its nodes moves, ``gang_moves`` takes every other
running member to the same offer, and the controller brings all replacements up before it drains
any old node. A gang left split by a placement that found no capacity where the others were is
brought back together by ``regroup``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ray_multicloud.policy.calendar import CalendarWindows, WeeklyWindow
from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    POLICIES,
    WAIT,
    Choice,
    JobView,
    Kind,
    Memory,
    SpotOption,
    Step,
    spot,
)
from ray_multicloud.policy.place import (
    OfferIndex,
    describe_offer,
    full_reservations,
    matching_offers,
    money,
    reserved_in_use,
)
from ray_multicloud.types import (
    CapacityType,
    Colocate,
    FleetNode,
    InstanceId,
    Move,
    NodeState,
    Offer,
    OfferId,
    PoolSpec,
)

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


# A business calendar's windows (time zones, weekdays, iCalendar events): ``policy.calendar``.
Blackout = Window | DailyWindow | WeeklyWindow | CalendarWindows


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where the one deadline job of a pool stands (the controller fills it from the job's reports).

    Times are POSIX seconds; work is in hours of running on one placement. ``checkpoint_hours`` is
    the work between two checkpoints. ``checkpoint_region`` is where the job's state lives,
    ``"cloud/region"`` (``"aws/us-east-1"``): the region of the spot node that last held the job
    (the controller records it each tick); "" when not known yet. A spot node running the job, or
    the spot node it just lost, says it directly (``checkpoint_home``).
    """

    submitted_at: float
    deadline_at: float
    work_total_hours: float
    work_done_hours: float
    checkpointed_hours: float
    checkpoint_hours: float
    checkpoint_region: str = ""


@dataclass(frozen=True, slots=True)
class RebalanceConfig:
    """The knobs of ``rebalance`` (see the module docstring for how each is used).

    Defaults suit a small training job: a 4 h horizon, a 1-minute checkpoint and a 2-minute
    restore, 20 GB of state, no move more than once per 30 minutes, 10% minimum saving.
    ``deadline_policy`` names the ``policy.deadline.POLICIES`` entry that judges the pools of
    ``jobs``; ``tick_s`` is how often the controller asks (the policy's ``tick_hours``).
    """

    horizon_hours: float = 4.0
    checkpoint_s: float = 60.0
    restart_s: float = 120.0
    launch_s: float = 60.0
    state_gb: float = 20.0
    egress_usd_per_gb: float = 0.09
    intra_cloud_egress_usd_per_gb: float = 0.02
    # (SRC, DST, $/GB) overrides; SRC and DST are a cloud ("aws") or a cloud region ("aws/us-east-1").
    egress_pairs: tuple[tuple[str, str, float], ...] = ()
    min_relative_saving: float = 0.10
    min_net_saving_usd: float = 0.0
    min_interval_s: float = 1800.0
    blackouts: tuple[Blackout, ...] = ()
    max_moves: int = 1
    jobs: Mapping[str, JobProgress] = field(default_factory=dict)
    tick_s: float = 60.0
    deadline_policy: str = "multicloud"
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
        if self.deadline_policy not in POLICIES:
            raise ValueError(
                f"RebalanceConfig.deadline_policy {self.deadline_policy!r} is not a deadline policy; "
                f"use one of: {', '.join(sorted(POLICIES))}"
            )

    @property
    def restart_hours(self) -> float:
        """The stall one move (or preemption) costs the job: persist + restore."""
        return (self.checkpoint_s + self.restart_s) / 3600.0


@dataclass(frozen=True, slots=True)
class MovePlan:
    """``plan``'s answer: the moves to make and, per node not moved, why not.

    ``memories`` maps a pool to the deadline policy's memory to pass back to the next ``plan``
    (or ``idle_step``) call for that pool: the memory ``plan`` was given, advanced for every pool
    whose nodes the policy judged this call.
    """

    moves: tuple[Move, ...]
    notes: tuple[str, ...] = ()
    memories: Mapping[str, Memory] = field(default_factory=dict)


# --------------------------------------------------------------------------- cost model


def egress_usd(src: Offer, dst: Offer, config: RebalanceConfig) -> float:
    """What carrying ``config.state_gb`` from ``src`` to ``dst`` costs: inter-cloud, inter-region, or 0.

    A pair in ``config.egress_pairs`` wins, the region pair before the cloud pair
    (``aws/us-east-1 -> gcp/us-central1`` before ``aws -> gcp``); within one region egress is free.
    """
    return region_egress_usd((src.cloud, src.region), (dst.cloud, dst.region), config)


def region_egress_usd(src: tuple[str, str], dst: tuple[str, str], config: RebalanceConfig) -> float:
    """``egress_usd`` between two ``(cloud, region)`` places (the rules of ``egress_usd``)."""
    if src == dst:
        return 0.0
    pairs = {(a, b): usd for a, b, usd in config.egress_pairs}
    for key in ((f"{src[0]}/{src[1]}", f"{dst[0]}/{dst[1]}"), (src[0], dst[0])):
        if key in pairs:
            return config.state_gb * pairs[key]
    if src[0] != dst[0]:
        return config.state_gb * config.egress_usd_per_gb
    return config.state_gb * config.intra_cloud_egress_usd_per_gb


def move_cost(src: Offer, dst: Offer, config: RebalanceConfig) -> float:
    """USD one move from ``src`` to ``dst`` burns: the stall at the current price, the overlap of the
    replacement at its price, and the egress of the state."""
    stall = config.restart_hours * src.price_per_hour
    overlap = config.launch_s / 3600.0 * dst.price_per_hour
    return stall + overlap + egress_usd(src, dst, config)


# --------------------------------------------------------------------------- the decision


def plan(
    fleet: Sequence[FleetNode],
    offers_index: OfferIndex | Sequence[Offer],
    pools: Mapping[str, PoolSpec],
    *,
    now: float,
    config: RebalanceConfig,
    last_moved: Mapping[InstanceId, float],
    memories: Mapping[str, Memory] | None = None,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> MovePlan:
    """The moves to make now (see the module docstring), with the reasons nodes were *not*
    moved, for logs and the CLI.

    Only ``RUNNING`` nodes whose pool is in ``pools`` are considered (the head and pinned node
    types are never moved). ``last_moved`` maps an instance to the time it was last moved to
    (the controller records the replacement's id at the move); it only gates price moves.
    ``memories`` maps a pool of ``config.jobs`` to its deadline policy's memory from the last
    call (a missing pool starts from ``Memory()``); ``cooldowns`` maps an offer to the time it
    may be used again, as ``place.place`` takes it: a cooling spot offer is an unavailable zone
    for the deadline policy, and no deadline or price move targets a cooling offer. ``MovePlan.memories``
    holds what to pass back next time.
    """
    index = _as_index(offers_index)
    blackout = next((b for b in config.blackouts if b.contains(now)), None)
    live = [n for n in fleet if n.state in (NodeState.PENDING, NodeState.RUNNING)]
    mems = dict(memories or {})
    # Reserved offers: a full one is no target; a free one takes no more moves than its free slots.
    full = full_reservations(index.reserved(), live)
    used = reserved_in_use(live)
    free = {o.offer_id: o.reserved_count - used.get(o.offer_id, 0) for o in index.reserved()}
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
            step = node_step(
                node, pool, index, job, config, mems.get(node.pool, Memory()), now=now, cooldowns=cooldowns
            )
            mems[node.pool] = step.memory
            move, why = _policy_move(
                node, step, pool, index, config, cooldowns=cooldowns, now=now, live=live, blackout=blackout
            )
            if move is None:
                notes.append(f"{node.instance_id}: {why}")
                continue
            rank = 0 if move.to_offer.capacity is CapacityType.ON_DEMAND else 1
            candidates.append((rank, -math.inf, node.instance_id, move))
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
        move, why = _price_move(node, pool, index, config, now, live, cooling(cooldowns, now) | full)
        if move is None:
            notes.append(f"{node.instance_id}: {why}")
            continue
        net = move.saving_per_hour * config.horizon_hours - move.move_cost_usd
        candidates.append((2, -net, node.instance_id, move))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    picked: list[Move] = []
    for _, _, iid, move in candidates:
        target = move.to_offer.offer_id
        if target in free and free[target] <= 0:
            notes.append(f"{iid}: the reserved slots of {target} are taken by this tick's other moves")
            continue
        if len(picked) >= config.max_moves:
            notes.append(f"{iid}: max_moves={config.max_moves} reached this tick")
            continue
        if target in free:
            free[target] -= 1
        picked.append(move)
    chosen = tuple(picked)
    return MovePlan(moves=chosen, notes=tuple(notes), memories=mems)


def _as_index(offers: OfferIndex | Sequence[Offer]) -> OfferIndex:
    return offers if isinstance(offers, OfferIndex) else OfferIndex.build(offers)


def _price_move(
    node: FleetNode,
    pool: PoolSpec,
    index: OfferIndex,
    config: RebalanceConfig,
    now: float,
    live: Sequence[FleetNode],
    blocked: frozenset[OfferId] = frozenset(),
) -> tuple[Move | None, str]:
    current = node.offer
    ranked = matching_offers(pool, index, now=now)
    pref = _preference(pool)
    my_rank = pref(current)
    best: tuple[float, Offer, float, float] | None = None
    fails: list[str] = []  # why each target failed, cheapest first; the note names the first
    for target in ranked:
        if target.offer_id == current.offer_id:
            continue
        if target.offer_id in blocked:
            fails.append(f"{target.offer_id} is cooling down or full")
            continue
        if pref(target) > my_rank:
            fails.append(f"{target.cloud} is less preferred than {current.cloud}")
            continue
        saving = current.price_per_hour - target.price_per_hour
        if current.price_per_hour <= 0 or saving <= 0:
            continue
        rel = saving / current.price_per_hour
        if rel + _EPS < config.min_relative_saving:
            fails.append(
                f"best saving {rel:.0%} ({describe_offer(target)}) < min_relative_saving "
                f"{config.min_relative_saving:.0%}"
            )
            continue
        cost = move_cost(current, target, config)
        net = saving * config.horizon_hours - cost
        if net <= config.min_net_saving_usd + _EPS:
            fails.append(
                f"saving {money(saving)}/h x {config.horizon_hours:g} h = "
                f"{money(saving * config.horizon_hours)} "
                f"does not pay a move costing {money(cost)} to {describe_offer(target)}"
            )
            continue
        if not _keeps_constraints(node, target, pool, live):
            fails.append(f"moving to {target.offer_id} would break min_on_demand/min_clouds of {pool.name!r}")
            continue
        if best is None or net > best[0] + _EPS:
            best = (net, target, saving, cost)
    if best is None:
        return None, fails[0] if fails else "no other matching offer"
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


# --------------------------------------------------------------------------- deadline jobs


def cooling(cooldowns: Mapping[OfferId, float] | None, now: float) -> frozenset[OfferId]:
    """The offers still cooling down at ``now`` (``now < until``), as ``place.place`` reads them."""
    if not cooldowns:
        return frozenset()
    return frozenset(oid for oid, until in cooldowns.items() if now < until)


def spot_options(
    pool: PoolSpec,
    index: OfferIndex | Sequence[Offer],
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
    home: tuple[str, str] | None = None,
    config: RebalanceConfig | None = None,
) -> tuple[SpotOption, ...]:
    """The ``JobView.zones`` of ``pool``: one option per spot offer it admits, sorted by offer id.

    An option's ``zone`` is the offer id and its ``region`` the offer's; it is available unless the
    offer is cooling down at ``now``. A cooling offer stays in the list, so each offer keeps its
    position (which ``Memory.up_since`` is indexed by) until the pool's offers themselves change.
    With ``home`` (the ``(cloud, region)`` the job's checkpoint lives in, ``checkpoint_home``) and
    ``config``, an option's ``egress_usd`` is what carrying ``config.state_gb`` from there to the
    offer costs (``region_egress_usd``); else 0.
    """
    blocked = cooling(cooldowns, now)
    offers = sorted(
        (o for o in matching_offers(pool, index) if o.capacity is CapacityType.SPOT),
        key=lambda o: o.offer_id,
    )
    def carry(o: Offer) -> float:
        return 0.0 if home is None or config is None else region_egress_usd(home, (o.cloud, o.region), config)

    return tuple(_spot_option(o, available=o.offer_id not in blocked, egress=carry(o)) for o in offers)


def _spot_option(offer: Offer, *, available: bool, egress: float = 0.0) -> SpotOption:
    return SpotOption(
        zone=offer.offer_id,
        region=offer.region,
        available=available,
        price_per_hour=offer.price_per_hour,
        interruptions_per_hour=offer.interruption_rate_per_hour,
        egress_usd=egress,
    )


def checkpoint_home(
    job: JobProgress, holder: Offer | None, config: RebalanceConfig
) -> tuple[str, str] | None:
    """Where a start would carry the job's checkpoint from, as the simulator models it
    (``sim.engine``, "Egress"): None — no egress in the view — when ``config.state_gb`` is 0 or the
    job has saved nothing yet (``checkpointed_hours`` 0); else the region of ``holder`` when it is a
    spot offer (the node running the job, or the spot node it just lost), else
    ``job.checkpoint_region`` (an on-demand node runs in the checkpoint's region: it never moves
    the state), else None (the job has not run on spot yet: its first spot start pays nothing).
    """
    if config.state_gb <= 0 or job.checkpointed_hours <= _EPS:
        return None
    if holder is not None and holder.capacity is CapacityType.SPOT:
        return (holder.cloud, holder.region)
    cloud, sep, region = job.checkpoint_region.partition("/")
    if sep and cloud and region:
        return (cloud, region)
    return None


def ondemand_offer(
    pool: PoolSpec,
    index: OfferIndex | Sequence[Offer],
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> Offer | None:
    """The on-demand offer a deadline move or launch takes: the best-ranked matching on-demand offer
    not cooling down at ``now`` (the cheapest, unless ``source_preference`` ranks another cloud
    first); None when there is none."""
    blocked = cooling(cooldowns, now)
    for offer in matching_offers(pool, index):
        if offer.capacity is CapacityType.ON_DEMAND and offer.offer_id not in blocked:
            return offer
    return None


def current_choice(node: FleetNode) -> Choice:
    """The placement ``node`` holds, as a deadline policy names it: ``spot(offer_id)`` or ``ON_DEMAND``."""
    return spot(node.offer.offer_id) if node.offer.capacity is CapacityType.SPOT else ON_DEMAND


def overhead_left(node: FleetNode, config: RebalanceConfig, now: float) -> float:
    """Hours of restart the job still pays on ``node``: ``restart_hours`` less the hours since the
    node launched, at least 0 (the simulator starts paying the restart at the launch tick)."""
    return max(0.0, config.restart_hours - (now - node.launched_at) / 3600.0)


def job_view(
    job: JobProgress,
    config: RebalanceConfig,
    *,
    now: float,
    current: Choice,
    zones: tuple[SpotOption, ...],
    ondemand_price_per_hour: float,
    overhead_left_hours: float = 0.0,
    preempted_offer: str = "",
) -> JobView:
    """The ``JobView`` a deadline policy sees at ``now`` (module docstring, "Deadline moves").

    ``preempted_offer`` is the offer id of the spot node the job lost just now ("" if none); the
    view is then ``preempted`` in that zone.
    """
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
        overhead_left_hours=overhead_left_hours,
        zones=zones,
        ondemand_price_per_hour=ondemand_price_per_hour,
        preempted=bool(preempted_offer),
        preempted_zone=preempted_offer,
    )


def node_view(
    node: FleetNode,
    pool: PoolSpec,
    index: OfferIndex | Sequence[Offer],
    job: JobProgress,
    config: RebalanceConfig,
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> JobView:
    """The ``JobView`` of ``job`` at ``now`` as seen from ``node``, a running node of ``pool``."""
    idx = _as_index(index)
    target = ondemand_offer(pool, idx, now=now, cooldowns=cooldowns)
    home = checkpoint_home(job, node.offer, config)
    return job_view(
        job,
        config,
        now=now,
        current=current_choice(node),
        zones=spot_options(pool, idx, now=now, cooldowns=cooldowns, home=home, config=config),
        ondemand_price_per_hour=_node_ondemand_price(node, target),
        overhead_left_hours=overhead_left(node, config, now),
    )


def node_step(
    node: FleetNode,
    pool: PoolSpec,
    index: OfferIndex | Sequence[Offer],
    job: JobProgress,
    config: RebalanceConfig,
    memory: Memory,
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> Step:
    """What ``config.deadline_policy`` decides at ``now`` for ``node``, a running node of ``pool``
    whose job is ``job`` (its ``node_view``); the step's memory is the pool's memory for the next
    call."""
    view = node_view(node, pool, index, job, config, now=now, cooldowns=cooldowns)
    return POLICIES[config.deadline_policy].decide(view, memory)


def idle_view(
    pool: PoolSpec,
    index: OfferIndex | Sequence[Offer],
    job: JobProgress,
    config: RebalanceConfig,
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
    preempted_offer: str = "",
) -> JobView:
    """The ``JobView`` of ``job`` at ``now`` while its pool has no running node (``current`` WAIT).

    The zones carry the egress of a start from the checkpoint's region (``checkpoint_home``: the
    lost node's region after a preemption, else ``job.checkpoint_region``)."""
    idx = _as_index(index)
    target = ondemand_offer(pool, idx, now=now, cooldowns=cooldowns)
    lost = _admitted(pool, idx, preempted_offer) if preempted_offer else None
    home = checkpoint_home(job, lost, config)
    return job_view(
        job,
        config,
        now=now,
        current=WAIT,
        zones=spot_options(pool, idx, now=now, cooldowns=cooldowns, home=home, config=config),
        ondemand_price_per_hour=_idle_ondemand_price(pool, idx, target),
        preempted_offer=preempted_offer,
    )


def idle_step(
    pool: PoolSpec,
    index: OfferIndex | Sequence[Offer],
    job: JobProgress,
    config: RebalanceConfig,
    memory: Memory,
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
    preempted_offer: str = "",
) -> Step:
    """What ``config.deadline_policy`` would start at ``now`` for ``job``, whose pool has no running
    node (it was just preempted, or is not placed yet): ``spot(offer_id)`` of an offer not cooling
    down, ``ON_DEMAND`` (launch ``ondemand_offer``), or ``WAIT`` (launch nothing yet).

    ``preempted_offer``: the offer id of the node the job lost, on the first call after the loss
    only. The policy sees ``idle_view``; the step's memory is the pool's memory for the next call.
    When the answer is ``ON_DEMAND`` but no on-demand offer can be launched, its last reason says
    why.
    """
    idx = _as_index(index)
    view = idle_view(pool, idx, job, config, now=now, cooldowns=cooldowns, preempted_offer=preempted_offer)
    step = POLICIES[config.deadline_policy].decide(view, memory)
    if step.choice.kind is Kind.ON_DEMAND and ondemand_offer(pool, idx, now=now, cooldowns=cooldowns) is None:
        return replace(step, reasons=(*step.reasons, _no_ondemand(pool, idx)))
    return step


def _node_ondemand_price(node: FleetNode, target: Offer | None) -> float:
    """What on-demand costs the job of ``node``: its own price on on-demand, else the target's."""
    if node.offer.capacity is CapacityType.ON_DEMAND:
        return node.offer.price_per_hour
    if target is not None:
        return target.price_per_hour
    return node.offer.ondemand_price_per_hour


def _idle_ondemand_price(pool: PoolSpec, index: OfferIndex, target: Offer | None) -> float:
    if target is not None:
        return target.price_per_hour
    spot_offers = [o for o in matching_offers(pool, index) if o.capacity is CapacityType.SPOT]
    return min((o.ondemand_price_per_hour for o in spot_offers), default=0.0)


def _no_ondemand(pool: PoolSpec, index: OfferIndex) -> str:
    if any(o.capacity is CapacityType.ON_DEMAND for o in matching_offers(pool, index)):
        return f"every on-demand offer of pool {pool.name!r} is cooling down after failures"
    return f"pool {pool.name!r} admits no on-demand offer; add 'on-demand' to its capacity_types"


def _policy_move(
    node: FleetNode,
    step: Step,
    pool: PoolSpec,
    index: OfferIndex,
    config: RebalanceConfig,
    *,
    cooldowns: Mapping[OfferId, float] | None,
    now: float,
    live: Sequence[FleetNode],
    blackout: Blackout | None,
) -> tuple[Move | None, str]:
    """The move ``step`` asks of running ``node``, or None and why not (module docstring)."""
    said = "; ".join(step.reasons)
    who = f"deadline policy {config.deadline_policy}"
    choice = step.choice
    if node.offer.capacity is CapacityType.RESERVED:
        # Never preempted, and paid whether used or not: nothing a deadline policy chooses is cheaper.
        return None, f"{who}: keep: {node.instance_id} is on a reserved slot ($0/h marginal, not preemptible)"
    if choice == current_choice(node):
        return None, f"{who}: keep ({said})"
    if choice.kind is Kind.WAIT:
        return None, f"{who} would hold nothing ({said}); a running node is not moved for that"
    if choice.kind is Kind.ON_DEMAND:
        target = ondemand_offer(pool, index, now=now, cooldowns=cooldowns)
        if target is None:
            return None, f"{who} asks for on-demand ({said}) but {_no_ondemand(pool, index)}"
        if blackout is not None and not config.deadline_overrides_blackout:
            return None, f"deadline move to on-demand ({said}) blocked by {blackout}"
        return _deadline_move(node, target, step, config), ""
    target = _admitted(pool, index, choice.zone)
    if target is None:
        return None, f"{who} chose {choice.zone}, which pool {pool.name!r} does not admit"
    if blackout is not None:
        return None, f"{who} asks for {target.offer_id} ({said}); held by {blackout}"
    if not _keeps_constraints(node, target, pool, live):
        return None, f"moving to {target.offer_id} would break min_on_demand/min_clouds of {pool.name!r}"
    return _deadline_move(node, target, step, config), ""


def _admitted(pool: PoolSpec, index: OfferIndex, offer_id: str) -> Offer | None:
    return next((o for o in matching_offers(pool, index) if o.offer_id == offer_id), None)


def _deadline_move(node: FleetNode, target: Offer, step: Step, config: RebalanceConfig) -> Move:
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
                f"deadline move ({config.deadline_policy}): "
                f"{describe_offer(node.offer)} -> {describe_offer(target)}"
            ),
            *step.reasons,
            f"move costs {money(cost)}",
        ),
    )


# --------------------------------------------------------------------------- gangs


def gang_moves(
    move: Move, fleet: Sequence[FleetNode], pool: PoolSpec, config: RebalanceConfig
) -> tuple[Move, ...]:
    """The moves that take the whole gang along when ``move`` moves one node of a colocated pool.

    Every ``RUNNING`` node of ``pool`` not already on ``move.to_offer``'s place (``pool.colocate``)
    moves to ``move.to_offer`` too, ``move`` first; members already there stay. A pool without
    ``colocate`` gets ``(move,)``. The group is moved by the controller as one (all replacements up,
    one drain, one restart of the job): ``gcp us-central1-a x2 -> azure eastus2 x2``.
    """
    if pool.colocate is Colocate.NONE:
        return (move,)
    where = pool.colocate.key(move.to_offer)
    out = [move]
    for node in sorted(fleet, key=lambda n: n.instance_id):
        if (
            node.pool != pool.name
            or node.state is not NodeState.RUNNING
            or node.instance_id == move.instance_id
        ):
            continue
        if pool.colocate.key(node.offer) == where:
            continue
        out.append(
            Move(
                instance_id=node.instance_id,
                pool=node.pool,
                from_offer=node.offer,
                to_offer=move.to_offer,
                saving_per_hour=node.offer.price_per_hour - move.to_offer.price_per_hour,
                move_cost_usd=move_cost(node.offer, move.to_offer, config),
                reasons=(f"gang of {move.instance_id} (colocate={pool.colocate.value})", *move.reasons),
            )
        )
    return tuple(out)


def regroup(
    pool: PoolSpec,
    fleet: Sequence[FleetNode],
    offers_index: OfferIndex | Sequence[Offer],
    *,
    now: float,
    config: RebalanceConfig,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> tuple[Move, ...]:
    """Moves that bring a colocated pool's ``RUNNING`` nodes back to one place, or ``()``.

    A gang is split when a node had to be placed apart (no capacity where the others were,
    ``place``). The members away from the place holding most of them move to the best-ranked
    matching offer there (not cooling down); if no offer is left there, the whole gang moves to the
    best-ranked matching offer anywhere: ``us-east-1a x1 + us-east-1b x1 -> us-east-1a x2``.
    Nothing while a member is still ``PENDING`` (the gang is not settled yet).
    """
    if pool.colocate is Colocate.NONE:
        return ()
    members = [n for n in fleet if n.pool == pool.name and n.state in (NodeState.PENDING, NodeState.RUNNING)]
    if any(n.state is NodeState.PENDING for n in members):
        return ()
    key = pool.colocate.key
    places: dict[tuple[str, ...], int] = {}
    for n in members:
        places[key(n.offer)] = places.get(key(n.offer), 0) + 1
    if len(places) <= 1:
        return ()
    blocked = cooling(cooldowns, now)
    ranked = [o for o in matching_offers(pool, _as_index(offers_index), now=now) if o.offer_id not in blocked]
    rank = {key(o): i for i, o in reversed(list(enumerate(ranked)))}
    anchor = min(places, key=lambda k: (-places[k], rank.get(k, len(rank))))
    there = [o for o in ranked if key(o) == anchor]
    target = there[0] if there else (ranked[0] if ranked else None)
    if target is None:
        return ()
    reason = (
        f"regroup: the gang of {pool.name!r} is split over {len(places)} places; "
        f"all to {'/'.join(key(target))} (colocate={pool.colocate.value})"
    )
    return tuple(
        Move(
            instance_id=n.instance_id,
            pool=n.pool,
            from_offer=n.offer,
            to_offer=target,
            saving_per_hour=n.offer.price_per_hour - target.price_per_hour,
            move_cost_usd=move_cost(n.offer, target, config),
            reasons=(reason,),
        )
        for n in sorted(members, key=lambda n: n.instance_id)
        if key(n.offer) != key(target)
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hhmm(hour: float) -> str:
    minutes = round(hour * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
