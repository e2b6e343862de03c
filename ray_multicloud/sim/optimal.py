"""The offline optimum: the cheapest schedule for a job, computed with the whole trace known.

What it optimises
-----------------
Exactly the model of :mod:`ray_multicloud.sim.engine` (read its docstring): ticks of the trace;
placements = spot in any zone available during the tick, on-demand (always available), or
nothing; every start or change of placement costs ``R`` paid overhead ticks and rolls back to the
last checkpoint (every ``M`` ticks of work); a preemption is a forced release; prices per zone per
tick and one on-demand price; the job must reach ``W`` ticks of work within ``D`` ticks of its
start (or before the trace ends when there is no deadline).

Algorithm: exact dynamic programme over (tick, placement, overhead ticks left, work done), the
value being the least cost of reaching that state. Its transitions are a superset of every
policy's (any placement may be chosen at any tick with full knowledge of availability), so its
cost is a lower bound for the cost of every online policy that finishes by the deadline (resp.
before the trace ends), under the same cost model. Among cheapest schedules it reports the
earliest finish. Preemptions are reported as 0: some cheapest schedule never suffers one
(releasing a spot node at its last checkpoint before the preemption costs no more).

Cost: ``O(D * placements * (W + R * W / M))`` array work, vectorised over work with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ray_multicloud.sim.engine import (
    JobSpec,
    SimResult,
    SimulationError,
    TickJob,
    check_window,
    ondemand_cost,
)
from ray_multicloud.sim.traces import TraceSet

Progress = Callable[[float], None]


def optimal_cost(
    traces: TraceSet,
    spec: JobSpec,
    *,
    ondemand_price: float,
    start_tick: int = 0,
    progress: Progress | None = None,
) -> SimResult:
    """The cheapest schedule's cost and finish time (see the module docstring).

    If the deadline cannot be met even on on-demand from the start, the cheapest schedule that
    finishes before the trace ends is returned with ``met_deadline`` false. Raises
    :class:`SimulationError` when no schedule finishes before the trace ends.
    """
    check_window(traces, start_tick)
    job = TickJob.from_spec(spec, traces.gap_seconds)
    remaining = traces.ticks - start_tick
    horizon = remaining if job.deadline is None else min(job.deadline, remaining)
    cost, finish = _dp(traces, job, ondemand_price, start_tick, horizon, progress)
    met = finish is not None
    if finish is None and horizon < remaining:
        cost, finish = _dp(traces, job, ondemand_price, start_tick, remaining, progress)
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


def _dp(
    traces: TraceSet,
    job: TickJob,
    ondemand_price: float,
    start: int,
    horizon: int,
    progress: Progress | None,
) -> tuple[float, int | None]:
    W, R, M = job.work, job.restart, job.checkpoint
    Z = len(traces.names)
    P = Z + 1  # placements: zones 0..Z-1, then on-demand
    K = -(-W // M)  # checkpoint levels k*M < W
    inf = math.inf
    per_tick = job.tick_hours * job.nodes
    avail = traces.available(job.nodes)[:, start : start + horizon]
    spot_cost = traces.spot_prices[:, start : start + horizon] * per_tick
    od_cost = ondemand_price * per_tick
    kM = np.arange(K) * M

    idle = np.full(K, inf)
    idle[0] = 0.0
    # Working states in diagonal coordinates: run[p, w - t + H] is the least cost of being on
    # placement p at the start of tick t with w ticks of work done and no overhead left, so
    # that a tick of work (w + 1 at t + 1) stays in the same column and is an in-place add.
    H = horizon
    run = np.full((P, W + H + 2), inf)
    ov = np.full((max(R, 1), P, K), inf)  # ov[i, p, k]: on p, at checkpoint k, i+1 overhead ticks left
    best = inf
    best_at: int | None = None
    cost_col = np.empty(P)
    report_every = max(1, horizon // 200)

    for t in range(horizon):
        # Only states that can still finish within the horizon matter (lo); none has more
        # work than ticks elapsed (hi). Columns that leave the band never re-enter it.
        lo = max(0, W - (horizon - t))
        hi = min(t, W - 1)
        a = avail[:, t]
        cost_col[:Z] = np.where(a, spot_cost[:, t], inf)  # inf = cannot be held during t
        cost_col[Z] = od_cost
        c2 = cost_col[:, None]
        # Released or preempted states fall back to their checkpoint, then wait or start.
        pool = idle.copy()
        k_lo = lo // M
        fin = inf
        if hi >= lo:
            seg = run[:, lo - t + H : hi - t + H + 1]
            k_hi = hi // M
            bounds = np.maximum(kM[k_lo : k_hi + 1], lo) - lo
            grouped = np.minimum.reduceat(seg.min(axis=0), bounds)
            np.minimum(pool[k_lo : k_hi + 1], grouped, out=pool[k_lo : k_hi + 1])
            # Keep working on p (only while p can be held during t): w -> w + 1, in place.
            np.add(seg, c2, out=seg)
            if hi == W - 1:
                jw = W - 1 - t + H
                fin = float(run[:, jw].min())
                run[:, jw] = inf
        if R > 0:
            np.minimum(pool, ov.reshape(-1, K).min(axis=0), out=pool)
        pool[:k_lo] = inf
        starts = pool[None, :] + c2  # (P, K): start p from checkpoint k, first tick paid
        if R == 0:
            w1 = kM + 1  # work starts in the first tick
            inside = w1 < W
            if inside.any():
                cols = w1[inside] - (t + 1) + H
                run[:, cols] = np.minimum(run[:, cols], starts[:, inside])
            if (~inside).any():
                fin = min(fin, float(starts[:, ~inside].min()))
        else:
            ovc = ov + c2  # (R, P, K) + (P, 1)
            if R >= 2:
                done = ovc[0]
                ov[:-1] = ovc[1:]
                ov[R - 2] = starts
            else:
                done = np.minimum(ovc[0], starts)
            cols = kM - (t + 1) + H
            run[:, cols] = np.minimum(run[:, cols], done)
        if fin < best - 1e-12:
            best, best_at = fin, t + 1
        idle = pool
        if progress is not None and t % report_every == 0:
            progress(t / horizon)
    if progress is not None:
        progress(1.0)
    return (best, best_at) if best_at is not None else (inf, None)
