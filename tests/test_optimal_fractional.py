"""Fractional restart, checkpoint and work: the engine charges them exactly (hand-computed cases),
and the optimum equals an independent brute-force search over every schedule — with several
nodes per job, so an optimum that ignored ``job.nodes`` would fail here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fakes.policies import Scripted

from ray_multicloud.policy.deadline import ON_DEMAND, POLICIES, spot
from ray_multicloud.sim import JobSpec, load_traces, optimal_cost, simulate
from ray_multicloud.sim.engine import TickJob
from ray_multicloud.sim.optimal import MAX_UNITS_PER_TICK, work_units
from ray_multicloud.sim.traces import TraceSet

TEN_MIN = 600.0


def traces(
    tmp_path: Path, zones: dict[str, tuple[list[int], list[float] | None]], gap: float = TEN_MIN
) -> TraceSet:
    for name, (data, prices) in zones.items():
        obj: dict[str, object] = {"metadata": {"gap_seconds": gap}, "data": data}
        if prices is not None:
            obj["prices"] = prices
        (tmp_path / f"{name}_v100_1.json").write_text(json.dumps(obj))
    return load_traces([tmp_path], default_spot_price=1.0)



# --- hand-computed: 10-minute ticks, a 12-minute restart (1.2 ticks) ---------------------------


def test_ondemand_pays_the_restart_exactly(tmp_path: Path) -> None:
    ts = traces(tmp_path, {"us-east-1a": ([1] * 12, None)})
    spec = JobSpec(work_hours=1.0, deadline_hours=2.0, checkpoint_minutes=30, restart_minutes=12)
    r = simulate(ts, spec, POLICIES["ondemand"], ondemand_price=3.0)
    # 1 h of work + 0.2 h of restart at 3 USD/h = 3.6 USD, done at 1.2 h (rounded up to whole
    # ticks it would be 4.0 USD and 1.33 h).
    assert r.cost_usd == pytest.approx(3.6)
    assert r.hours_elapsed == pytest.approx(1.2)
    assert r.overhead_hours == pytest.approx(0.2)
    assert r.ondemand_cost_usd == pytest.approx(3.6)
    assert (r.restart_ticks, r.work_ticks) == (pytest.approx(1.2), pytest.approx(6.0))


def test_preemption_with_a_fractional_restart(tmp_path: Path) -> None:
    # Work 50 min (5 ticks), checkpoint every 20 min (2 ticks), restart 1.2 ticks, spot 1 USD/h,
    # two nodes. spot: t0-t2 up, t3 down, then up.
    # t0 overhead; t1 0.2 overhead + 0.8 work; t2 w=1.8; t3 preempted: back to checkpoint 0
    # (1.8 ticks = 0.3 h lost), waits; t4 overhead; t5 w=0.8; t6-t9 w=4.8; t10 0.2 tick of work:
    # done at 10.2 ticks = 1.7 h. Paid: 3 + 6 + 0.2 = 9.2 ticks = 9.2/6 h x 1 USD x 2 nodes.
    ts = traces(tmp_path, {"us-east-1a": ([2, 2, 2, 0] + [2] * 10, None)})
    spec = JobSpec(work_hours=50 / 60, deadline_hours=2.5, checkpoint_minutes=20, restart_minutes=12, nodes=2)
    s = spot("us-east-1a")
    r = simulate(ts, spec, Scripted((s,) * 14), ondemand_price=3.0)
    assert r.cost_usd == pytest.approx(9.2 / 6 * 2)
    assert r.hours_elapsed == pytest.approx(1.7)
    assert r.lost_work_hours == pytest.approx(0.3)
    assert r.overhead_hours == pytest.approx(0.4)
    assert (r.preemptions, r.met_deadline) == (1, True)


def test_release_mid_interval_rolls_back_unsaved_work(tmp_path: Path) -> None:
    # Hourly ticks, restart 30 min, checkpoint every 2 h. Spot t0-t2, then on-demand by choice:
    # t0 0.5 overhead + 0.5 work, t1 1.5, t2 2.5 (checkpoint at 2); the release at t3 rolls back
    # to 2 (0.5 h lost); on-demand t3 0.5 overhead + 0.5 work (2.5), t4 3.5, t5 0.5 h -> 4:
    # done at 5.5 h.
    # Cost: 3 spot hours at 1 USD + 2.5 on-demand hours at 3 USD = 10.5 USD.
    ts = traces(tmp_path, {"us-east-1a": ([1] * 10, None)}, gap=3600.0)
    spec = JobSpec(work_hours=4, deadline_hours=9, checkpoint_minutes=120, restart_minutes=30)
    s = spot("us-east-1a")
    r = simulate(ts, spec, Scripted((s, s, s) + (ON_DEMAND,) * 7), ondemand_price=3.0)
    assert r.lost_work_hours == pytest.approx(0.5)
    assert r.hours_elapsed == pytest.approx(5.5)
    assert r.cost_usd == pytest.approx(3 * 1 + 2.5 * 3)


# --- an independent brute force over every schedule -------------------------------------------


def brute_force(
    counts: list[list[int]],
    prices: list[list[float]],
    od: float,
    *,
    work: float,
    restart: float,
    checkpoint: float | None,
    deadline: int,
    nodes: int,
    tick_hours: float,
) -> float:
    """Least cost over every choice sequence, in the engine's documented model, written here from
    its docstring (not from the engine): ``checkpoint`` None = saves on notice."""
    eps = 1e-9
    best = math.inf
    options: list[int] = [-1, -2, *range(len(counts))]  # -1 wait, -2 on-demand, z spot

    def ck(w: float) -> float:
        return w if checkpoint is None else math.floor(w / checkpoint + eps) * checkpoint

    def go(t: int, place: int, w: float, over: float, cost: float) -> None:
        nonlocal best
        if cost >= best - 1e-12 or t >= deadline:
            return
        if place >= 0 and counts[place][t] < nodes:  # preempted
            place, w, over = -1, ck(w), 0.0
        for c in options:
            if c >= 0 and counts[c][t] < nodes:
                continue
            p, w2, o2 = place, w, over
            if c != p:
                if p != -1:
                    w2 = ck(w2)
                p, o2 = c, (restart if c != -1 else 0.0)
            if p == -1:
                go(t + 1, p, w2, o2, cost)
                continue
            price = (prices[p][t] if p >= 0 else od) * nodes * tick_hours
            paid_over = min(1.0, o2)
            o3 = max(0.0, o2 - paid_over)
            worked = 1.0 - paid_over
            if worked > eps and w2 + worked >= work - eps:
                best = min(best, cost + price * (paid_over + work - w2))
                continue
            go(t + 1, p, w2 + worked, o3, cost + price)

    go(0, -1, 0.0, 0.0, 0.0)
    return best


COUNTS = [[2, 2, 1, 2, 2, 2, 0, 2, 2], [0, 2, 2, 2, 0, 2, 2, 2, 2]]
PRICES = [[1.0, 1.2, 0.9, 1.0, 1.1, 0.8, 1.0, 1.0, 0.7], [0.6, 0.7, 1.5, 0.5, 0.9, 0.6, 0.8, 0.9, 1.0]]


def two_zone_traces(tmp_path: Path) -> TraceSet:
    return traces(
        tmp_path,
        {"us-east-1a": (COUNTS[0], PRICES[0]), "us-west-2a": (COUNTS[1], PRICES[1])},
    )


@pytest.mark.parametrize(
    ("restart_min", "checkpoint_min", "on_notice"),
    [(12.0, 20.0, False), (12.0, 20.0, True), (7.0, 15.0, False), (10.0, 10.0, False), (0.0, 20.0, False)],
    ids=["1.2-ticks", "1.2-ticks-on-notice", "0.7-ticks-ckpt-1.5", "whole-ticks", "no-restart"],
)
def test_optimum_is_the_brute_force_optimum(
    tmp_path: Path, restart_min: float, checkpoint_min: float, on_notice: bool
) -> None:
    ts = two_zone_traces(tmp_path)
    spec = JobSpec(
        work_hours=35 / 60,
        deadline_hours=1.5,
        checkpoint_minutes=checkpoint_min,
        restart_minutes=restart_min,
        nodes=2,
        checkpoint_on_notice=on_notice,
    )
    job = TickJob.from_spec(spec, ts.gap_seconds)
    assert work_units(job)[4]  # representable exactly
    expect = brute_force(
        COUNTS,
        PRICES,
        3.0,
        work=3.5,
        restart=restart_min / 10,
        checkpoint=None if on_notice else checkpoint_min / 10,
        deadline=9,
        nodes=2,
        tick_hours=1 / 6,
    )
    opt = optimal_cost(ts, spec, ondemand_price=3.0)
    assert opt.met_deadline
    assert opt.cost_usd == pytest.approx(expect, abs=1e-9)
    # and no policy run by the engine beats it
    for policy in POLICIES.values():
        r = simulate(ts, spec, policy, ondemand_price=3.0)
        if r.met_deadline:
            assert r.cost_usd >= opt.cost_usd - 1e-9, policy.name


def test_optimum_rounding_is_bounded_as_documented(tmp_path: Path) -> None:
    # A restart of 100/61 tick needs 1/61-tick units: beyond MAX_UNITS_PER_TICK (60), so the
    # optimum rounds it down to 98/60 tick. The docstring's bound: it is then exactly the optimum
    # of the job with that shorter restart, and no more than the real job's optimum.
    assert MAX_UNITS_PER_TICK == 60
    ts = two_zone_traces(tmp_path)
    real = 10.0 * 100 / 61
    spec = JobSpec(
        work_hours=35 / 60, deadline_hours=1.5, checkpoint_minutes=20, restart_minutes=real, nodes=2
    )
    q, w_u, r_u, m_u, exact = work_units(TickJob.from_spec(spec, ts.gap_seconds))
    assert (q, w_u, r_u, m_u, exact) == (60, 210, 98, 120, False)
    opt = optimal_cost(ts, spec, ondemand_price=3.0).cost_usd
    common = {"work": 3.5, "checkpoint": 2.0, "deadline": 9, "nodes": 2, "tick_hours": 1 / 6}
    shorter = brute_force(COUNTS, PRICES, 3.0, restart=98 / 60, **common)  # type: ignore[arg-type]
    exact_real = brute_force(COUNTS, PRICES, 3.0, restart=100 / 61, **common)  # type: ignore[arg-type]
    assert opt == pytest.approx(shorter, abs=1e-9)
    assert opt <= exact_real + 1e-9


# --- the work unit the optimum picks (found by mutmut: each row pins one boundary) ---------------


@pytest.mark.parametrize(
    ("work_h", "checkpoint_min", "restart_min", "on_notice", "expect"),
    [
        # whole ticks (10-minute ticks): q = 1, a 1-tick checkpoint and a 1-tick job stay 1 unit
        (3 / 6, 10.0, 10.0, False, (1, 3, 1, 1, True)),
        (1 / 6, 10.0, 10.0, False, (1, 1, 1, 1, True)),
        # a 1.5-tick checkpoint alone needs half ticks: q = 2, W 6, R 2, M 3
        (3 / 6, 15.0, 10.0, False, (2, 6, 2, 3, True)),
        # a 10-second restart (1/60 tick) is exact at the finest unit, q = 60
        (3 / 6, 20.0, 10 / 60, False, (60, 180, 1, 120, True)),
        # a restart of 100/61 tick needs q = 61 > 60: rounded down to 98/60 tick, not exact
        (3 / 6, 20.0, 1000 / 61, False, (60, 180, 98, 120, False)),
        # the same on notice: the checkpoint is 1 unit whatever q is
        (3 / 6, 20.0, 1000 / 61, True, (60, 180, 98, 1, False)),
        # not exact, with a 1-unit job and a 1-unit checkpoint (10 s each): never below 1 unit
        (1 / 360, 10 / 60, 1000 / 61, False, (60, 1, 98, 1, False)),
        # not exact because of the work (100/61 tick -> 98 units); the 1-tick restart stays 60 units
        (100 / 61 / 6, 20.0, 10.0, False, (60, 98, 60, 120, False)),
    ],
    ids=["whole", "one-unit-job", "half-tick-ckpt", "finest-exact", "q61-rounded", "q61-on-notice",
         "rounded-one-unit", "rounded-work"],
)
def test_work_units_pick_the_smallest_exact_unit(
    work_h: float, checkpoint_min: float, restart_min: float, on_notice: bool, expect: tuple[object, ...]
) -> None:
    spec = JobSpec(
        work_hours=work_h,
        deadline_hours=2.0,
        checkpoint_minutes=checkpoint_min,
        restart_minutes=restart_min,
        checkpoint_on_notice=on_notice,
    )
    assert work_units(TickJob.from_spec(spec, TEN_MIN)) == expect
