"""The offline optimum: the cheapest schedule for a job, computed with the whole trace known.

What it optimises
-----------------
Exactly the model of :mod:`ray_multicloud.sim.engine` (read its docstring): decisions at the
trace's ticks; placements = spot in any zone available during the tick, on-demand (always
available), or nothing; every start or change of placement costs ``R`` ticks of paid overhead and
rolls back to the last checkpoint (every ``M`` of work, or all the work when saving on notice); a
preemption is a forced release; prices per zone per tick and one on-demand price, times
``job.nodes``; the job must reach ``W`` of work within ``D`` ticks of its start (or before the trace
ends when there is no deadline), and pays only the used share of the tick it finishes in.

Fractional restart, checkpoint and work. ``R``, ``M`` and ``W`` are real numbers of ticks. Time
stays in whole ticks (decisions are taken at ticks) while work is counted in units of ``1/q``
tick, with ``q`` the smallest integer up to :data:`MAX_UNITS_PER_TICK` that makes ``R * q``,
``M * q`` and ``W * q`` whole (within 1e-6): then the optimum is *exact* (a 0.2 h restart on
10-minute ticks: ``q = 5``; 6 minutes on 195-second ticks: ``q = 13``). When no such ``q`` exists,
``q = MAX_UNITS_PER_TICK`` and ``R``, ``M`` and ``W`` are each rounded *down* to a multiple of
``1/q`` tick: the result is then the exact optimum of a job whose restart, checkpoint interval and
work are each shorter by less than ``1/q`` tick — still a lower bound for every online policy on
the real job, and no further below the real optimum than that job's is.
(``tests/test_optimal_fractional.py`` holds both cases against a brute-force search.)

Algorithm: exact dynamic programme over (tick, placement, overhead ticks left, work done), the
value being the least cost of reaching that state. Its transitions are a superset of every
policy's (any placement may be chosen at any tick with full knowledge of availability), so its
cost is a lower bound for the cost of every online policy that finishes by the deadline (resp.
before the trace ends), under the same cost model. Among cheapest schedules it reports the
earliest finish. Preemptions are reported as 0: some cheapest schedule never suffers one
(releasing a spot node at its last checkpoint before the preemption costs no more).

Egress (``checkpoint_gb`` > 0, the engine's model). On-demand becomes one placement per
region (on-demand in the region the state lives in, or in another one, paying egress to get
there: a superset of the engine's rule, so still a lower bound); the idle states remember the
region of the node that last held the job's state, and a start at a placement in another region
from a saved checkpoint (level above 0) pays ``checkpoint_gb`` times the rate for the pair. With
``checkpoint_gb`` 0 there is one location and one on-demand placement, as before.

Cost: ``O(D * placements * q * (W + R * W / M))`` array work, vectorised over work with numpy
(with egress, ``O(D * regions * placements * K)`` more for the starts).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ray_multicloud.pricing.egress import EgressTable
from ray_multicloud.sim.engine import (
    JobSpec,
    Locations,
    SimResult,
    SimulationError,
    TickJob,
    check_window,
    locations,
    ondemand_cost,
)
from ray_multicloud.sim.traces import TraceSet

Progress = Callable[[float], None]

MAX_UNITS_PER_TICK = 60
"""The finest work unit the optimum uses: 1/60 of a tick (see the module docstring)."""


def work_units(job: TickJob) -> tuple[int, int, int, int, bool]:
    """``(q, W, R, M, exact)``: units per tick, then work, restart and checkpoint interval in units
    (``M`` is 1 unit when the job saves on notice), and whether they are exact (module docstring)."""
    values = [job.work, job.restart] + ([] if job.on_notice else [job.checkpoint])
    for q in range(1, MAX_UNITS_PER_TICK + 1):
        if all(abs(v * q - round(v * q)) <= 1e-6 for v in values):
            ck = 1 if job.on_notice else max(1, round(job.checkpoint * q))
            return q, max(1, round(job.work * q)), round(job.restart * q), ck, True
    q = MAX_UNITS_PER_TICK
    ck = 1 if job.on_notice else max(1, math.floor(job.checkpoint * q + 1e-9))
    return q, max(1, math.floor(job.work * q + 1e-9)), math.floor(job.restart * q + 1e-9), ck, False


def optimal_cost(
    traces: TraceSet,
    spec: JobSpec,
    *,
    ondemand_price: float,
    start_tick: int = 0,
    progress: Progress | None = None,
    checkpoint_gb: float = 0.0,
    egress: EgressTable | None = None,
) -> SimResult:
    """The cheapest schedule's cost and finish time (see the module docstring); with
    ``checkpoint_gb`` > 0, egress included at ``egress``'s rates (default: the published ones).

    If the deadline cannot be met even on on-demand from the start, the cheapest schedule that
    finishes before the trace ends is returned with ``met_deadline`` false. Raises
    :class:`SimulationError` when no schedule finishes before the trace ends.
    """
    check_window(traces, start_tick)
    job = TickJob.from_spec(spec, traces.gap_seconds)
    remaining = traces.ticks - start_tick
    horizon = remaining if job.deadline is None else min(job.deadline, remaining)
    where = locations(traces, checkpoint_gb, egress) if checkpoint_gb > 0 else None
    cost, finish = _dp(traces, job, ondemand_price, start_tick, horizon, progress, where)
    met = finish is not None
    if finish is None and horizon < remaining:
        cost, finish = _dp(traces, job, ondemand_price, start_tick, remaining, progress, where)
    if finish is None:
        raise SimulationError(
            f"no schedule finishes the job before the trace ends: {remaining} ticks "
            f"({remaining * job.tick_hours:.2f} h) left after the start, the job needs at least "
            f"{job.work + job.restart} ticks ({(job.work + job.restart) * job.tick_hours:.2f} h)"
        )
    return SimResult(
        policy="optimal",
        cost_usd=cost,
        ondemand_cost_usd=ondemand_cost(job, ondemand_price),
        finished=True,
        met_deadline=met,
        hours_elapsed=finish * job.tick_hours,
        preemptions=0,
        moves=0,
        spot_hours=math.nan,
        ondemand_hours=math.nan,
        overhead_hours=math.nan,
        lost_work_hours=0.0,
        start_tick=start_tick,
        tick_seconds=traces.gap_seconds,
        work_ticks=job.work,
        restart_ticks=job.restart,
        checkpoint_ticks=job.checkpoint,
        deadline_ticks=job.deadline,
    )


def _cheapest_earliest(total: npt.NDArray[np.float64], at: npt.NDArray[np.float64]) -> tuple[float, float]:
    """The least of ``total`` (placements x columns; some entry finite) and, among the columns
    holding a cost within 1e-12 of it, the earliest finish ``at[column]`` (the tie-break of the
    module docstring: a plain argmin would take the first such column, not the earliest)."""
    least = float(total.min())
    cols = np.flatnonzero((total <= least + 1e-12).any(axis=0))
    j = int(cols[np.argmin(at[cols])])
    return float(total[:, j].min()), float(at[j])


def _dp(
    traces: TraceSet,
    job: TickJob,
    ondemand_price: float,
    start: int,
    horizon: int,
    progress: Progress | None,
    where: Locations | None = None,
) -> tuple[float, float | None]:
    q, W, Ru, M, _ = work_units(job)
    Rc = -(-Ru // q)  # ticks a start spends before work runs at full speed
    e0 = Rc * q - Ru  # units of work done in the last of them
    Z = len(traces.names)
    L = 1 if where is None else len(where.locs)  # locations the job's state can be in
    P = Z + L  # placements: zones 0..Z-1, then on-demand in each location
    K = -(-W // M)  # checkpoint levels k*M < W
    loc_of = np.array(([0] * Z if where is None else list(where.zone_loc)) + list(range(L)))
    by_loc = [np.flatnonzero(loc_of == g) for g in range(L)]
    # egress[g, p, k]: carrying level k's checkpoint from location g to placement p (none at k 0)
    moved = np.zeros((L, L)) if where is None else np.array(where.usd)
    egress = moved[:, loc_of][:, :, None] * (np.arange(K) > 0)[None, None, :]
    inf = math.inf
    per_tick = job.tick_hours * job.nodes
    avail = traces.available(job.nodes)[:, start : start + horizon]
    spot_cost = traces.spot_prices[:, start : start + horizon] * per_tick
    od_cost = ondemand_price * per_tick
    kM = np.arange(K) * M
    entry = kM + e0  # work (units) when the restart from level k is over

    # Running sums of each placement's tick costs (0 where it cannot be held) and of the ticks it
    # cannot be held: a restart on p over ticks s..t costs cum[p, t+1] - cum[p, s], if p can be
    # held throughout. A restart is never cut short in a cheapest schedule (not starting it costs
    # less), so a start at s from checkpoint k is simply work at k + e0 after tick s + Rc - 1.
    tick_cost = np.vstack([np.where(avail, spot_cost, 0.0), np.full((L, horizon), od_cost)])
    blocked_ticks = np.vstack([~avail, np.zeros((L, horizon), dtype=bool)]).astype(np.int64)
    zeros = np.zeros((P, 1))
    cum = np.concatenate([zeros, np.cumsum(tick_cost, axis=1)], axis=1)
    bad = np.concatenate([zeros.astype(np.int64), np.cumsum(blocked_ticks, axis=1)], axis=1)
    hist = np.full((max(Rc, 1), P, K), inf)  # start costs of the last Rc ticks (a ring)

    idle = np.full((L, K), inf)  # [location of the state, checkpoint level]
    idle[:, 0] = 0.0
    # Working states in diagonal coordinates: run[p, w + q * (H - t)] is the least cost of being
    # on placement p at the start of tick t with w units of work done and no overhead left (the
    # column is the work it would have at the horizon), so a tick of work is an in-place add.
    H = horizon
    run = np.full((P, W + q * H + 1), inf)
    best = inf
    best_at: float | None = None
    cost_col = np.empty(P)
    report_every = max(1, horizon // 200)

    def offer(cost: float, at: float) -> None:
        nonlocal best, best_at
        if cost < best - 1e-12 or (cost <= best + 1e-12 and best_at is not None and at < best_at - 1e-12):
            best, best_at = cost, at

    for t in range(horizon):
        # Only states that can still finish within the horizon matter (lo); none has more
        # work than ticks elapsed (hi). Columns that leave the band never re-enter it.
        lo = max(0, W - q * (horizon - t))
        hi = min(q * t, W - 1)
        shift = q * (H - t)
        a = avail[:, t]
        cost_col[:Z] = np.where(a, spot_cost[:, t], inf)  # inf = cannot be held during t
        cost_col[Z:] = od_cost
        c2 = cost_col[:, None]
        # Released or preempted states fall back to their checkpoint, then wait or start.
        pool = idle
        k_lo = lo // M
        if hi >= lo:
            seg = run[:, lo + shift : hi + shift + 1]
            k_hi = hi // M
            bounds = np.maximum(kM[k_lo : k_hi + 1], lo) - lo
            lowest = np.stack([seg[rows].min(axis=0) for rows in by_loc])  # (L, work)
            grouped = lowest if M == 1 else np.minimum.reduceat(lowest, bounds, axis=1)
            np.minimum(pool[:, k_lo : k_hi + 1], grouped, out=pool[:, k_lo : k_hi + 1])
            # States that finish during t on p pay the used share of the tick.
            f_lo = max(lo, W - q)
            if hi >= f_lo:
                ws = np.arange(f_lo, hi + 1)
                share = (W - ws) / q
                tail = seg[:, f_lo - lo :]
                total = tail + share[None, :] * c2
                if np.isfinite(total).any():
                    offer(*_cheapest_earliest(total, t + share))
                tail[:] = inf
            # Keep working on p (only while p can be held during t): w -> w + q, in place.
            np.add(seg, c2, out=seg)
        pool[:, :k_lo] = inf
        top = min(K - 1, max(k_lo, hi // M if hi >= 0 else 0))  # no level above this is reached yet
        if L == 1:
            hist[t % max(Rc, 1)] = pool[0][None, :]
        else:  # a start on p from the cheapest location, egress paid
            hist[t % max(Rc, 1)] = (pool[:, None, :] + egress).min(axis=0)
        s0 = t - max(Rc, 1) + 1  # the start tick of restarts that end with tick t (Rc 0: t itself)
        if s0 < 0:
            done = None
        else:
            ok = bad[:, t + 1] == bad[:, s0]
            window = np.where(ok, cum[:, t + 1] - cum[:, s0], inf)[:, None]
            done = hist[s0 % max(Rc, 1), :, k_lo : top + 1] + window  # (P, levels)
        # ``done``: tick t was the last (or only) tick of the restart; e0 units of work done in it
        # (Rc == 0: the whole tick was work).
        if done is not None:
            ks = slice(k_lo, top + 1)
            gained = entry[ks] if Rc > 0 else kM[ks] + q
            inside = gained < W
            n_in = int(inside.sum())  # gained rises with k: the inside ones come first
            if n_in:
                c0 = int(gained[0]) + q * (H - t - 1)
                cols = slice(c0, c0 + M * (n_in - 1) + 1, M)  # strided: levels are M units apart
                np.minimum(run[:, cols], done[:, :n_in], out=run[:, cols])
            if (~inside).any():
                over = (gained[~inside] - W) / q  # unused share of tick t
                finite = np.where(np.isfinite(cost_col), cost_col, 0.0)[:, None]
                total = done[:, ~inside] - over[None, :] * finite
                if np.isfinite(total).any():
                    offer(*_cheapest_earliest(total, t + 1 - over))
        idle = pool
        if progress is not None and t % report_every == 0:
            progress(t / horizon)
    if progress is not None:
        progress(1.0)
    return (best, best_at) if best_at is not None else (inf, None)
