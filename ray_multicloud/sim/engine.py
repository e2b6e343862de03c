"""Replay spot traces tick by tick and drive a ``policy.deadline`` policy through a training job.

The job model (shared, tick for tick, with :mod:`ray_multicloud.sim.optimal`)
--------------------------------------------------------------------------------
Time advances in the traces' ticks (``gap_seconds``); decisions and preemptions happen at tick
boundaries. A job is converted to ticks once (:class:`TickJob`), exactly: work
``W = hours / tick``, restart overhead ``R = minutes / tick`` and checkpoint interval
``M = minutes / tick`` are real numbers of ticks (a 0.2 h restart on 10-minute ticks is 1.2 ticks,
not 2); only the deadline is rounded, down, to ``D = floor(hours / tick)`` ticks (a policy decides
once a tick, so a deadline inside a tick is the one before it). At each tick ``t``:

1. Availability of every zone during ``t`` is revealed. A job on spot in a zone that is
   unavailable is *preempted*: it loses its node and rolls back to its last checkpoint.
2. The policy chooses spot in a zone available now, on-demand, or wait. A choice other than the
   current placement releases the current node (rolling back to the last checkpoint — Ray Train
   restores from its latest checkpoint on every restart) and starts the new one, which first
   spends ``R`` ticks of paid restart overhead. Spot in an unavailable zone fails to launch and
   the tick is spent waiting.
3. The tick is paid at the placement's price (spot: the zone's price for that tick; on-demand:
   the on-demand price) times ``nodes``. Its first ``min(1, overhead left)`` is overhead, the rest
   is work (a 1.2-tick restart: one tick of overhead, then a tick of 0.2 overhead and 0.8 work).
   Checkpoints exist at every multiple of ``M`` of work; the job finishes the moment its work
   reaches ``W``, holds nothing from then on, and pays only the used share of its last tick
   (clouds bill by the second).

A job with ``checkpoint_on_notice`` saves a checkpoint when it is told it is about to lose its
node — a spot interruption notice, or the drain with reason PREEMPTION that precedes every move
(``ray.train.get_preemption_info()`` in the worker; ``ray_multicloud.scenarios.train_migration`` does it) —
so a preemption or a release keeps all the work done (the checkpoint is the work done; ``M`` is
reported as 1 tick, and a policy's view carries a 1-tick checkpoint interval). It assumes the
state saves within the notice (AWS gives 2 minutes, GCP and Azure 30 s; RAY_NOTES.md: a 7B
job's state needs ~110 s to persist, so large jobs do not qualify unless they snapshot to host
memory first). The time a periodic checkpoint takes is not modelled.

What saving on notice still costs is measured, not assumed: ``notice_loss_minutes`` charges, at
every preemption and every release of a node that had finished its restart, the time the real loop
spends between its last useful step and the node's end (the save, and the idle rest of the notice
once no further step fits: ``ray_multicloud.train.notice``). ``benchmarks/bench_train_migration.py``
measures it ("last useful step -> node gone"). It is charged exactly as lost work: each such
interruption takes ``notice_loss_minutes`` of work off the job (no more than the work done). The
default 0 charges nothing (the figures published before it existed). The offline optimum does
not charge it, so it stays a lower bound.

Egress (``checkpoint_gb`` > 0). The job's state lives in the region of the node that last held
it (on-demand runs in that region; a job that starts on on-demand runs it in the region of the
first spot zone it goes to — a single-zone policy's home — so that first move pays nothing).
Every start of a node in another region — a move, or a restart after a preemption — while the job
has saved work (its checkpoint after the rollback is above 0) pays ``checkpoint_gb`` times the
egress rate from the old region's cloud to the new one's (:mod:`ray_multicloud.pricing.egress`:
within a region free, between two regions of one cloud that cloud's inter-region rate, between
clouds the source cloud's internet rate), once per move, not per node (the checkpoint is the
job's). Every zone must have a known cloud (``TraceSet.clouds``) and the table every pair of
them, else :class:`SimulationError` / ``EgressError`` names what is missing. Each
:class:`SpotOption` carries in ``egress_usd`` what starting there would pay now.
``checkpoint_gb`` 0 charges nothing (the behaviour before egress).

The deadline is met when the job finishes within ``D`` ticks of its start. ``ondemand_cost_usd``
is what the job would cost on on-demand alone (``W + R`` ticks), the baseline for savings.
Work, restart and checkpoint figures in :class:`SimResult` (``*_ticks``) are real numbers of ticks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ray_multicloud.errors import MultiCloudError
from ray_multicloud.policy.deadline import (
    WAIT,
    Choice,
    DeadlinePolicy,
    JobView,
    Kind,
    Memory,
    SpotOption,
)
from ray_multicloud.pricing.egress import PUBLISHED, EgressTable, egress_usd_per_gb
from ray_multicloud.sim.history import HistoryIndex
from ray_multicloud.sim.traces import TraceSet

_EPS = 1e-9
Progress = Callable[[float], None]


class SimulationError(MultiCloudError):
    """The job or the trace window cannot be simulated; the message says which limit."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A training job as users state it."""

    work_hours: float
    deadline_hours: float | None
    checkpoint_minutes: float
    restart_minutes: float
    nodes: int = 1
    checkpoint_on_notice: bool = False
    notice_loss_minutes: float = 0.0

    def validate(self) -> None:
        if not (math.isfinite(self.work_hours) and self.work_hours > 0):
            raise SimulationError(f"job hours must be > 0, got {self.work_hours}")
        if self.deadline_hours is not None and not self.deadline_hours > 0:
            raise SimulationError(f"deadline hours must be > 0, got {self.deadline_hours}")
        if not self.checkpoint_minutes > 0:
            raise SimulationError(f"checkpoint minutes must be > 0, got {self.checkpoint_minutes}")
        if not self.restart_minutes >= 0:
            raise SimulationError(f"restart minutes must be >= 0, got {self.restart_minutes}")
        if self.nodes < 1:
            raise SimulationError(f"nodes must be >= 1, got {self.nodes}")
        if not (math.isfinite(self.notice_loss_minutes) and self.notice_loss_minutes >= 0):
            raise SimulationError(f"notice loss minutes must be >= 0, got {self.notice_loss_minutes}")
        if self.notice_loss_minutes > 0 and not self.checkpoint_on_notice:
            raise SimulationError(
                "notice loss minutes apply to a job that checkpoints on notice; set checkpoint_on_notice "
                "(a periodic job loses the work since its last checkpoint instead)"
            )


@dataclass(frozen=True, slots=True)
class TickJob:
    """A :class:`JobSpec` in ticks of one trace: exact real numbers, the deadline rounded down
    (see the module docstring)."""

    tick_seconds: float
    work: float
    restart: float
    checkpoint: float  # ticks of work between checkpoints; 1.0 (reported only) when on notice
    deadline: int | None
    nodes: int
    notice_loss: float = 0.0  # ticks of work lost per interruption by a job saving on notice
    on_notice: bool = False  # the checkpoint is all the work done

    @classmethod
    def from_spec(cls, spec: JobSpec, tick_seconds: float) -> TickJob:
        spec.validate()
        per_hour = 3600.0 / tick_seconds
        eps = 1e-9
        return cls(
            tick_seconds=tick_seconds,
            work=spec.work_hours * per_hour,
            restart=spec.restart_minutes * 60.0 / tick_seconds,
            checkpoint=1.0 if spec.checkpoint_on_notice else spec.checkpoint_minutes * 60.0 / tick_seconds,
            deadline=None
            if spec.deadline_hours is None
            else math.floor(spec.deadline_hours * per_hour + eps),
            nodes=spec.nodes,
            notice_loss=spec.notice_loss_minutes * 60.0 / tick_seconds if spec.checkpoint_on_notice else 0.0,
            on_notice=spec.checkpoint_on_notice,
        )

    @property
    def tick_hours(self) -> float:
        return self.tick_seconds / 3600.0

    def checkpointed(self, work: float) -> float:
        """The last checkpoint at or below ``work`` (ticks)."""
        if self.on_notice:
            return work
        return math.floor(work / self.checkpoint + _EPS) * self.checkpoint


@dataclass(frozen=True, slots=True)
class SimResult:
    """The outcome of one simulated job. Money in USD, durations in hours."""

    policy: str
    cost_usd: float
    ondemand_cost_usd: float
    finished: bool
    met_deadline: bool
    hours_elapsed: float
    preemptions: int
    moves: int
    spot_hours: float
    ondemand_hours: float
    overhead_hours: float
    lost_work_hours: float
    start_tick: int
    tick_seconds: float
    work_ticks: float
    restart_ticks: float
    checkpoint_ticks: float
    deadline_ticks: int | None
    egress_usd: float = 0.0  # included in cost_usd
    egress_moves: int = 0  # starts that carried the checkpoint to another region

    @property
    def savings_fraction(self) -> float:
        return 1.0 - self.cost_usd / self.ondemand_cost_usd if self.ondemand_cost_usd > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "cost_usd": round(self.cost_usd, 6),
            "ondemand_cost_usd": round(self.ondemand_cost_usd, 6),
            "savings_fraction": round(self.savings_fraction, 6),
            "finished": self.finished,
            "met_deadline": self.met_deadline,
            "hours_elapsed": round(self.hours_elapsed, 6),
            "preemptions": self.preemptions,
            "moves": self.moves,
            "spot_hours": round(self.spot_hours, 6),
            "ondemand_hours": round(self.ondemand_hours, 6),
            "overhead_hours": round(self.overhead_hours, 6),
            "lost_work_hours": round(self.lost_work_hours, 6),
            "start_tick": self.start_tick,
            "tick_seconds": self.tick_seconds,
            "work_ticks": self.work_ticks,
            "restart_ticks": self.restart_ticks,
            "checkpoint_ticks": self.checkpoint_ticks,
            "deadline_ticks": self.deadline_ticks,
            "egress_usd": round(self.egress_usd, 6),
            "egress_moves": self.egress_moves,
        }


def ondemand_cost(job: TickJob, ondemand_price: float) -> float:
    """What the job costs on on-demand alone: ``W + R`` ticks."""
    return (job.work + job.restart) * job.tick_hours * ondemand_price * job.nodes


def check_window(traces: TraceSet, start_tick: int) -> None:
    if not 0 <= start_tick < traces.ticks:
        raise SimulationError(
            f"start tick {start_tick} is outside the trace ({traces.ticks} ticks of {traces.gap_seconds:g}s)"
        )


def interruption_rates(
    traces: TraceSet, nodes: int = 1, window_hours: float = 24.0
) -> npt.NDArray[np.float64]:
    """``[z, t]``: zone ``z``'s interruptions per available hour over the window ending at ``t``.

    Uses only ticks up to and including ``t`` (what an observer knows at ``t``). A zone with no
    available tick in the window gets the rate of one interruption per tick (``3600 /
    gap_seconds`` per hour: as if its spot lasted one tick); the policies were tuned with this
    floor.
    """
    avail = traces.available(nodes).astype(np.int64)
    lost = np.zeros_like(avail)
    lost[:, 1:] = (avail[:, :-1] == 1) & (avail[:, 1:] == 0)
    win = max(1, round(window_hours * 3600.0 / traces.gap_seconds))
    zeros = np.zeros((avail.shape[0], 1), dtype=np.int64)
    c_lost = np.concatenate([zeros, np.cumsum(lost, axis=1)], axis=1)
    c_up = np.concatenate([zeros, np.cumsum(avail, axis=1)], axis=1)
    t = np.arange(avail.shape[1])
    lo = np.maximum(0, t + 1 - win)
    events = c_lost[:, t + 1] - c_lost[:, lo]
    up_hours = (c_up[:, t + 1] - c_up[:, lo]) * traces.gap_seconds / 3600.0
    floor = traces.gap_seconds / 3600.0
    rates: npt.NDArray[np.float64] = np.maximum(events, 1 * (up_hours < floor)) / np.maximum(up_hours, floor)
    return rates


@dataclass(frozen=True, slots=True)
class Locations:
    """Where each zone is, for egress: ``zone_loc[z]`` indexes ``locs`` (``(cloud, region)``), and
    ``usd[a][b]`` is what carrying the job's checkpoint from ``locs[a]`` to ``locs[b]`` costs."""

    locs: tuple[tuple[str, str], ...]
    zone_loc: tuple[int, ...]
    usd: tuple[tuple[float, ...], ...]


def locations(traces: TraceSet, checkpoint_gb: float, egress: EgressTable | None = None) -> Locations:
    """The egress costs of moving ``checkpoint_gb`` between the trace set's regions (module
    docstring). Raises :class:`SimulationError` for a zone of unknown cloud, ``EgressError`` for a
    cloud pair the table lacks."""
    if not (math.isfinite(checkpoint_gb) and checkpoint_gb >= 0):
        raise SimulationError(f"checkpoint GB must be >= 0, got {checkpoint_gb}")
    table = PUBLISHED if egress is None else egress
    clouds = [traces.cloud_of(z) for z in range(len(traces.names))]
    unknown = [f"{traces.names[z]} ({traces.files[z]})" for z, c in enumerate(clouds) if not c]
    if checkpoint_gb > 0 and unknown:
        raise SimulationError(
            f"cannot tell the cloud of zone(s) {', '.join(unknown)}: egress needs each zone's cloud; put "
            "the trace files in a directory named aws-*, gcp-* or azure-*"
        )
    if checkpoint_gb > 0:
        table.require(clouds)
    pairs = [(c, r) for c, r in zip(clouds, traces.regions, strict=True)]
    locs = tuple(dict.fromkeys(pairs))
    idx = {loc: i for i, loc in enumerate(locs)}
    usd = tuple(
        tuple(0.0 if checkpoint_gb == 0 else checkpoint_gb * egress_usd_per_gb(table, a, b) for b in locs)
        for a in locs
    )
    return Locations(locs, tuple(idx[p] for p in pairs), usd)


def _rollback(job: TickJob, work: float, overhead: float) -> float:
    """The work (ticks) a job keeps when its node goes: its last checkpoint, less the measured
    notice loss when it saves on notice and its node had finished restarting (never below 0)."""
    ck = job.checkpointed(work)
    if job.notice_loss > 0 and overhead <= _EPS:
        ck = max(0.0, ck - job.notice_loss)
    return ck


def simulate(
    traces: TraceSet,
    spec: JobSpec,
    policy: DeadlinePolicy,
    *,
    ondemand_price: float,
    start_tick: int = 0,
    progress: Progress | None = None,
    rate_window_hours: float | None = None,
    checkpoint_gb: float = 0.0,
    egress: EgressTable | None = None,
    history_window_hours: float | None = None,
) -> SimResult:
    """Run ``policy`` on the job from ``start_tick`` until it finishes or the trace ends.

    ``checkpoint_gb`` > 0 charges egress for every move between regions at ``egress``'s rates
    (default :data:`~ray_multicloud.pricing.egress.PUBLISHED`; module docstring).

    With ``rate_window_hours``, each zone's :class:`SpotOption` carries its interruption rate
    over that trailing window of the trace (ticks before the start included: that is the
    past; the window is the nearest whole number of ticks), rounded to 6 decimal places; else
    the rate is None (unknown).

    With ``history_window_hours`` (> 0), each view's ``history`` is the zones' availability over
    that trailing window of the trace, ending at the current tick (ticks before the start included;
    :class:`~ray_multicloud.sim.history.HistoryIndex`: up-runs and outages, those cut by the
    window's edges censored, the window the nearest whole number of ticks); else None.
    """
    check_window(traces, start_tick)
    if history_window_hours is not None and not (
        math.isfinite(history_window_hours) and history_window_hours > 0
    ):
        raise SimulationError(f"history window hours must be > 0, got {history_window_hours}")
    if not (math.isfinite(ondemand_price) and ondemand_price > 0):
        raise SimulationError(f"on-demand price must be a positive USD/h, got {ondemand_price}")
    job = TickJob.from_spec(spec, traces.gap_seconds)
    th = job.tick_hours
    names = traces.names
    index = {n: i for i, n in enumerate(names)}
    avail_rows = traces.available(job.nodes)[:, start_tick:].T.tolist()
    price_rows = traces.spot_prices[:, start_tick:].T.tolist()
    rate_rows: list[list[float | None]] | None = None
    if rate_window_hours is not None:
        rate_rows = np.round(
            interruption_rates(traces, spec.nodes, rate_window_hours)[:, start_tick:], 6
        ).T.tolist()
    no_rates: list[float | None] = [None] * len(names)
    hist = (
        None
        if history_window_hours is None
        else HistoryIndex(traces.available(job.nodes), th, history_window_hours)
    )
    regions = traces.regions
    W, R, M = job.work, job.restart, job.checkpoint
    deadline_h = None if job.deadline is None else job.deadline * th
    node_factor = th * job.nodes
    where = locations(traces, checkpoint_gb, egress)
    charge = checkpoint_gb > 0
    loc = -1  # where the job's state lives (index into where.locs); -1: nowhere yet
    egress_usd = 0.0
    egress_moves = 0

    place: Choice = WAIT
    zone_i = -1
    w = 0.0  # work done, ticks
    overhead = 0.0  # restart overhead left on the current placement, ticks
    cost = 0.0
    preemptions = moves = 0
    spot_t = od_t = over_t = lost_t = 0.0
    memory = Memory()
    finished_at: float | None = None
    horizon = len(avail_rows)
    report_every = max(1, horizon // 200)

    for rel in range(horizon):
        avail = avail_rows[rel]
        prices = price_rows[rel]
        preempted = False
        lost_zone = ""
        if place.kind is Kind.SPOT and not avail[zone_i]:
            preempted, lost_zone = True, place.zone
            preemptions += 1
            ck = _rollback(job, w, overhead)
            lost_t += w - ck
            w, overhead, place, zone_i = ck, 0.0, WAIT, -1
        rates = no_rates if rate_rows is None else rate_rows[rel]
        if charge and loc >= 0 and job.checkpointed(w) > _EPS:
            row = where.usd[loc]
            zones = tuple(
                SpotOption(names[z], regions[z], avail[z], prices[z], rates[z], row[where.zone_loc[z]])
                for z in range(len(names))
            )
        else:
            zones = tuple(
                SpotOption(names[z], regions[z], avail[z], prices[z], rates[z]) for z in range(len(names))
            )
        view = JobView(
            elapsed_hours=rel * th,
            work_done_hours=w * th,
            checkpointed_hours=job.checkpointed(w) * th,
            work_total_hours=W * th,
            deadline_hours=deadline_h,
            restart_hours=R * th,
            checkpoint_hours=M * th,
            tick_hours=th,
            current=place,
            overhead_left_hours=overhead * th,
            zones=zones,
            ondemand_price_per_hour=ondemand_price,
            preempted=preempted,
            preempted_zone=lost_zone,
            history=None if hist is None else hist.at(start_tick + rel, start_tick),
        )
        step = policy.decide(view, memory)
        memory = step.memory
        choice = step.choice
        if choice.kind is Kind.SPOT:
            zi = index.get(choice.zone, -1)
            if zi < 0 or not avail[zi]:
                choice = WAIT  # launch fails: spot is not obtainable there now
        if choice != place:
            if place.kind is not Kind.WAIT:
                ck = _rollback(job, w, overhead)
                lost_t += w - ck
                w = ck
                if choice.kind is not Kind.WAIT:
                    moves += 1
            place = choice
            overhead = R if choice.kind is not Kind.WAIT else 0.0
            zone_i = index[choice.zone] if choice.kind is Kind.SPOT else -1
            if choice.kind is not Kind.WAIT:
                to = where.zone_loc[zone_i] if zone_i >= 0 else loc
                if charge and loc >= 0 and to != loc and w > _EPS:
                    egress_usd += where.usd[loc][to]
                    egress_moves += 1
                loc = to
        if place.kind is not Kind.WAIT:
            used = 1.0  # share of the tick held (less in the tick the job finishes)
            paid_over = min(1.0, overhead)
            overhead -= paid_over
            if overhead <= _EPS:
                overhead = 0.0
            worked = 1.0 - paid_over
            done = worked > _EPS and w + worked >= W - _EPS
            if done:
                used = paid_over + max(0.0, W - w)
                w = W
            else:
                w += worked
            over_t += paid_over
            price = prices[zone_i] if place.kind is Kind.SPOT else ondemand_price
            cost += price * node_factor * used
            if place.kind is Kind.SPOT:
                spot_t += used
            else:
                od_t += used
            if done:
                finished_at = rel + used
                break
        if progress is not None and rel % report_every == 0:
            progress(rel / horizon)
    if progress is not None:
        progress(1.0)
    elapsed = finished_at if finished_at is not None else float(horizon)
    met = finished_at is not None and (job.deadline is None or finished_at <= job.deadline + _EPS)
    return SimResult(
        policy=policy.name,
        cost_usd=cost + egress_usd,
        ondemand_cost_usd=ondemand_cost(job, ondemand_price),
        finished=finished_at is not None,
        met_deadline=met,
        hours_elapsed=elapsed * th,
        preemptions=preemptions,
        moves=moves,
        spot_hours=spot_t * th,
        ondemand_hours=od_t * th,
        overhead_hours=over_t * th,
        lost_work_hours=lost_t * th,
        start_tick=start_tick,
        tick_seconds=traces.gap_seconds,
        work_ticks=W,
        restart_ticks=R,
        checkpoint_ticks=M,
        deadline_ticks=job.deadline,
        egress_usd=egress_usd,
        egress_moves=egress_moves,
    )
