"""The offline optimum's tie-break: "among cheapest schedules it reports the earliest finish"
(``sim/optimal.py``). Mutation testing (mutmut, CONTRIBUTING.md) found it untested; writing the
test found that ties inside one tick were broken by column order (the later finish) instead.
Expected values are computed by hand in the comments and checked against an independent brute
force over every schedule, written here from the engine's docstring."""

from __future__ import annotations

import numpy as np
import pytest
from fakes.policies import SpotScript

from ray_multicloud.sim import JobSpec, optimal_cost, simulate
from ray_multicloud.sim.traces import TraceSet


def hourly(counts: list[list[int]], prices: list[list[float]]) -> TraceSet:
    names = tuple(f"us-east-1{chr(ord('a') + z)}" for z in range(len(counts)))
    return TraceSet(
        names=names, regions=("us-east-1",) * len(names), files=names, gap_seconds=3600.0,
        counts=np.array(counts, dtype=np.int64), spot_prices=np.array(prices, dtype=float),
        priced_by_file=(True,) * len(names),
    )


def brute_force_finish(
    counts: list[list[int]], prices: list[list[float]], od: float, *, work: float, restart: float,
    horizon: int,
) -> tuple[float, float]:
    """(least cost, earliest finish among the schedules within 1e-9 of it), on hourly ticks, one
    node, saving on notice (no work lost at a release), every choice sequence of the engine's
    model: wait, on-demand or an available zone at each tick; a change restarts (``restart`` ticks
    of paid overhead); the finishing tick pays only its used share."""
    eps = 1e-9
    done: list[tuple[float, float]] = []
    options = [-1, -2, *range(len(counts))]

    def go(t: int, place: int, w: float, over: float, cost: float) -> None:
        if t >= horizon:
            return
        if place >= 0 and counts[place][t] < 1:
            place, over = -1, 0.0
        for c in options:
            if c >= 0 and counts[c][t] < 1:
                continue
            p, o2 = place, over
            if c != p:
                p, o2 = c, (restart if c != -1 else 0.0)
            if p == -1:
                go(t + 1, p, w, o2, cost)
                continue
            price = prices[p][t] if p >= 0 else od
            paid_over = min(1.0, o2)
            worked = 1.0 - paid_over
            if worked > eps and w + worked >= work - eps:
                used = paid_over + work - w
                done.append((cost + price * used, t + used))
                continue
            go(t + 1, p, w + worked, max(0.0, o2 - paid_over), cost + price)

    go(0, -1, 0.0, 0.0, 0.0)
    least = min(c for c, _ in done)
    return least, min(f for c, f in done if c <= least + 1e-9)


def test_a_tie_inside_one_tick_reports_the_earlier_finish() -> None:
    # Hourly ticks, 1.5 h of work saved on notice, a 30-minute restart, on-demand 100 USD/h.
    # us-east-1a is up at t0 only (1 USD/h); us-east-1b always, at 10, 1, 2, 10, 10 USD/h.
    # Two cheapest schedules, 3 USD each, both finishing during t2 on us-east-1b:
    #   a at t0 (0.5 h restart, 0.5 h work: 1 USD), preempted at t1, kept on notice; b at t1
    #   (0.5 restart, 0.5 work: w 1 h, 1 USD); t2 needs 0.5 h: 0.5 * 2 = 1 USD -> done at 2.5 h;
    #   b at t1 (w 0.5 h, 1 USD), t2 needs the whole tick (2 USD) -> done at 3.0 h.
    # Every other schedule costs more (b at t0 costs 10; a tick of on-demand 100; b at t3, t4 10).
    # The optimum reports the earlier: 2.5 h.
    counts = [[1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    prices = [[1.0] * 5, [10.0, 1.0, 2.0, 10.0, 10.0]]
    assert brute_force_finish(counts, prices, 100.0, work=1.5, restart=0.5, horizon=5) == (
        pytest.approx(3.0), pytest.approx(2.5))
    ts = hourly(counts, prices)
    spec = JobSpec(work_hours=1.5, deadline_hours=None, checkpoint_minutes=60, restart_minutes=30,
                   checkpoint_on_notice=True)
    opt = optimal_cost(ts, spec, ondemand_price=100.0)
    assert (opt.cost_usd, opt.hours_elapsed) == (pytest.approx(3.0), pytest.approx(2.5))
    # the engine, run on the earlier schedule, agrees
    r = simulate(ts, spec, SpotScript(("us-east-1a", "us-east-1b")), ondemand_price=100.0)
    assert (r.cost_usd, r.hours_elapsed) == (pytest.approx(3.0), pytest.approx(2.5))


def test_a_restart_finishing_earlier_than_a_running_finish_at_the_same_cost() -> None:
    # Found by mutmut (``_dp``'s tie-break, mutants 158, 160, 163): hourly ticks, 1.75 h of work
    # saved on notice, a 15-minute restart (work in quarter ticks), on-demand 50 USD/h. Four zones:
    #   a up at t1 (4); b up at t0 (2), t1 (4); c up at t1 (2); d up at t1 (3), t2 (3), t3 (2).
    # Two schedules cost 5 USD, both finishing in t3:
    #   d from t2: 0.25 restart + 0.75 work (3), then the whole of t3 for the last 1.0 h (2):
    #   5 USD, done at 4.0 h (a running state finishing: offered first);
    #   b at t0 (0.25 + 0.75 work: 2), c at t1 (restart, w 1.5 h: 2), wait t2, d at t3 (0.25 restart
    #   + the last 0.25 h: half the tick, 1): 5 USD, done at 3.5 h (a restart finishing).
    # The brute force finds nothing cheaper; the optimum reports the earlier: 3.5 h.
    counts = [[0, 1, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 1]]
    prices = [[2.0, 4.0, 2.0, 2.0], [2.0, 4.0, 2.0, 2.0], [4.0, 2.0, 2.0, 4.0], [2.0, 3.0, 3.0, 2.0]]
    assert brute_force_finish(counts, prices, 50.0, work=1.75, restart=0.25, horizon=4) == (
        pytest.approx(5.0), pytest.approx(3.5))
    spec = JobSpec(work_hours=1.75, deadline_hours=None, checkpoint_minutes=60, restart_minutes=15,
                   checkpoint_on_notice=True)
    opt = optimal_cost(hourly(counts, prices), spec, ondemand_price=50.0)
    assert (opt.cost_usd, opt.hours_elapsed) == (pytest.approx(5.0), pytest.approx(3.5))
    r = simulate(hourly(counts, prices), spec, SpotScript(("us-east-1b", "us-east-1c", "x", "us-east-1d")),
                 ondemand_price=50.0)
    assert (r.cost_usd, r.hours_elapsed) == (pytest.approx(5.0), pytest.approx(3.5))


def test_an_earlier_finish_never_buys_a_dearer_schedule() -> None:
    # Found by mutmut (mutant 159: a finish up to 1 USD dearer but earlier replaced the cheapest).
    # Hourly ticks, 1.75 h of work saved on notice, 15-minute restart, on-demand 50 USD/h:
    #   a up t0, t1, t5 (3, 3, -, -, -, 2); b up t0, t2, t4 (3, -, 1, -, 4, -);
    #   c up t1, t2, t4, t5 (-, 3, 2, -, 1, 1). Nothing is up at t3.
    # Cheapest: c at t4 (0.25 restart + 0.75 work, 1) and t5 (the last 1.0 h, 1): 2 USD, done at
    # 6.0 h; b at t2 then c from t4 finishes earlier (5.25 h) but costs 1 + 1 + 0.25 = 2.25.
    counts = [[1, 1, 0, 0, 0, 1], [1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 1, 1]]
    prices = [[3.0, 3.0, 2.0, 1.0, 3.0, 2.0], [3.0, 2.0, 1.0, 3.0, 4.0, 1.0], [4.0, 3.0, 2.0, 2.0, 1.0, 1.0]]
    assert brute_force_finish(counts, prices, 50.0, work=1.75, restart=0.25, horizon=6) == (
        pytest.approx(2.0), pytest.approx(6.0))
    spec = JobSpec(work_hours=1.75, deadline_hours=None, checkpoint_minutes=60, restart_minutes=15,
                   checkpoint_on_notice=True)
    opt = optimal_cost(hourly(counts, prices), spec, ondemand_price=50.0)
    assert (opt.cost_usd, opt.hours_elapsed) == (pytest.approx(2.0), pytest.approx(6.0))
