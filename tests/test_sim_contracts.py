"""Contracts of the simulator and the offline optimum that mutation testing (mutmut, CONTRIBUTING.md)
found untested: the optimum's error and missed-deadline paths, a one-unit job, and the progress
callback's cadence. Expected values are computed by hand in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.policies import SpotScript

from ray_multicloud.policy.deadline import WAIT, JobView, Memory, Step
from ray_multicloud.sim import JobSpec, SimulationError, load_traces, optimal_cost, simulate
from ray_multicloud.sim.traces import TraceSet


def hourly(tmp_path: Path, data: list[int], price: float = 1.0) -> TraceSet:
    obj = {"metadata": {"gap_seconds": 3600.0}, "data": data, "prices": [price] * len(data)}
    (tmp_path / "us-east-1a_v100_1.json").write_text(json.dumps(obj))
    return load_traces([tmp_path], default_spot_price=price)


class AlwaysWait:
    name = "wait"

    def decide(self, view: JobView, memory: Memory) -> Step:
        return Step(WAIT, ("wait",), memory)


def test_optimum_raises_when_no_schedule_finishes(tmp_path: Path) -> None:
    # 3 hourly ticks, 5 h of work: nothing finishes before the trace ends.
    ts = hourly(tmp_path, [1, 1, 1])
    spec = JobSpec(work_hours=5, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    with pytest.raises(SimulationError, match="no schedule finishes the job before the trace ends"):
        optimal_cost(ts, spec, ondemand_price=3.0)


def test_optimum_past_an_impossible_deadline_is_reported_missed(tmp_path: Path) -> None:
    # 3 h of work + a 1 h restart cannot fit a 2 h deadline; the cheapest schedule before the
    # trace ends: spot from t0, 1 restart + 3 work ticks at 1 USD = 4 USD, done at 4 h.
    ts = hourly(tmp_path, [1] * 10)
    spec = JobSpec(work_hours=3, deadline_hours=2, checkpoint_minutes=60, restart_minutes=60)
    opt = optimal_cost(ts, spec, ondemand_price=3.0)
    assert (opt.met_deadline, opt.finished) == (False, True)
    assert opt.cost_usd == pytest.approx(4.0)
    assert opt.hours_elapsed == pytest.approx(4.0)


def test_optimum_of_a_one_unit_job(tmp_path: Path) -> None:
    # 1 h of work, no restart, hourly ticks: one work unit, one spot hour at 1 USD, done at 1 h.
    ts = hourly(tmp_path, [1, 1, 1])
    spec = JobSpec(work_hours=1, deadline_hours=3, checkpoint_minutes=60, restart_minutes=0)
    opt = optimal_cost(ts, spec, ondemand_price=3.0)
    assert opt.cost_usd == pytest.approx(1.0)
    assert opt.hours_elapsed == pytest.approx(1.0)
    assert (opt.policy, opt.preemptions, opt.moves) == ("optimal", 0, 0)


def expected_reports(ticks: int, every: int) -> list[float]:
    return [t / ticks for t in range(0, ticks, every)] + [1.0]


@pytest.mark.parametrize(
    ("ticks", "every"),
    # every max(1, ticks // 200) ticks: 10 -> 1, 300 -> 1, 400 -> 2
    [(10, 1), (300, 1), (400, 2)],
)
def test_progress_is_reported_about_200_times_then_done(tmp_path: Path, ticks: int, every: int) -> None:
    ts = hourly(tmp_path, [1] * ticks)
    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    seen: list[float] = []
    optimal_cost(ts, spec, ondemand_price=3.0, progress=seen.append)
    assert seen == pytest.approx(expected_reports(ticks, every))
    # the engine: a policy that never starts runs through every tick
    seen.clear()
    r = simulate(ts, spec, AlwaysWait(), ondemand_price=3.0, progress=seen.append)
    assert not r.finished
    assert seen == pytest.approx(expected_reports(ticks, every))


def test_optimum_refunds_the_unused_share_of_a_restarts_last_tick(tmp_path: Path) -> None:
    # Hourly ticks, no restart, 1.5 h of work, a checkpoint every hour. Two zones up at t0,
    # down at t1, up again from t2; us-east-1a costs 2 USD/h, us-east-1b 1 USD/h; on-demand 3.
    # Cheapest: us-east-1b at t0 (1 h of work, saved: 1 USD), the preemption keeps it; us-east-1b
    # again at t2 for the last half hour (0.5 USD): 1.5 USD, done at 2.5 h. (On-demand at t1
    # for the half hour would cost 1 + 1.5 = 2.5 USD.)
    for name, price in (("us-east-1a", 2.0), ("us-east-1b", 1.0)):
        obj = {"metadata": {"gap_seconds": 3600.0}, "data": [1, 0, 1, 1, 1], "prices": [price] * 5}
        (tmp_path / f"{name}_v100_1.json").write_text(json.dumps(obj))
    ts = load_traces([tmp_path], default_spot_price=1.0)
    spec = JobSpec(work_hours=1.5, deadline_hours=5, checkpoint_minutes=60, restart_minutes=0)
    opt = optimal_cost(ts, spec, ondemand_price=3.0)
    assert opt.cost_usd == pytest.approx(1.5)
    assert opt.hours_elapsed == pytest.approx(2.5)
    assert opt.met_deadline


def test_optimum_counts_the_ticks_left_after_the_start(tmp_path: Path) -> None:
    # 5 hourly ticks, start at tick 2: 3 ticks left. 3 h of work (no restart) fit exactly, on
    # spot at 1 USD/h: 3 USD, done 3 h after the start; 4 h of work do not fit.
    ts = hourly(tmp_path, [1] * 5)
    fits = JobSpec(work_hours=3, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    opt = optimal_cost(ts, fits, ondemand_price=3.0, start_tick=2)
    assert (opt.cost_usd, opt.hours_elapsed) == (pytest.approx(3.0), pytest.approx(3.0))
    too_long = JobSpec(work_hours=4, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    with pytest.raises(SimulationError, match="3 ticks"):
        optimal_cost(ts, too_long, ondemand_price=3.0, start_tick=2)


def test_optimum_error_states_ticks_and_hours(tmp_path: Path) -> None:
    # 30-minute ticks, 6 of them, start at tick 2: 4 ticks (2.00 h) left. 2 h of work and a
    # 30-minute restart need 4 + 1 = 5 ticks (2.50 h).
    obj = {"metadata": {"gap_seconds": 1800.0}, "data": [1] * 6, "prices": [1.0] * 6}
    (tmp_path / "us-east-1a_v100_1.json").write_text(json.dumps(obj))
    ts = load_traces([tmp_path], default_spot_price=1.0)
    spec = JobSpec(work_hours=2, deadline_hours=None, checkpoint_minutes=30, restart_minutes=30)
    with pytest.raises(SimulationError) as err:
        optimal_cost(ts, spec, ondemand_price=3.0, start_tick=2)
    expect = "4 ticks (2.00 h) left after the start, the job needs at least 5.0 ticks (2.50 h)"
    assert expect in str(err.value)


def test_optimum_result_fields(tmp_path: Path) -> None:
    # 30-minute ticks at 1 USD/h, start at tick 1: a 30-minute restart and 1 h of work on spot,
    # 3 ticks = 1.5 h, 1.5 USD. In ticks: work 2, restart 1, checkpoint 1, deadline 2 h = 4.
    obj = {"metadata": {"gap_seconds": 1800.0}, "data": [1] * 8, "prices": [1.0] * 8}
    (tmp_path / "us-east-1a_v100_1.json").write_text(json.dumps(obj))
    ts = load_traces([tmp_path], default_spot_price=1.0)
    spec = JobSpec(work_hours=1, deadline_hours=2, checkpoint_minutes=30, restart_minutes=30)
    opt = optimal_cost(ts, spec, ondemand_price=3.0, start_tick=1)
    assert opt.cost_usd == pytest.approx(1.5)
    assert opt.hours_elapsed == pytest.approx(1.5)
    assert (opt.policy, opt.preemptions, opt.moves, opt.lost_work_hours) == ("optimal", 0, 0, 0.0)
    assert (opt.start_tick, opt.tick_seconds, opt.deadline_ticks) == (1, 1800.0, 4)
    assert (opt.work_ticks, opt.restart_ticks, opt.checkpoint_ticks) == (2.0, 1.0, 1.0)


def test_result_as_dict_names_every_field_rounded_to_6_places() -> None:
    # Found by mutmut: the JSON form (``simulate --json``, the benchmarks' records) was unpinned.
    from ray_multicloud.sim.engine import SimResult

    r = SimResult(
        policy="p", cost_usd=1.23456789, ondemand_cost_usd=3.0000004, finished=True, met_deadline=False,
        hours_elapsed=3.1234567, preemptions=2, moves=3, spot_hours=1.1111111, ondemand_hours=2.2222222,
        overhead_hours=0.3333333, lost_work_hours=0.4444444, start_tick=5, tick_seconds=600.0,
        work_ticks=6.5, restart_ticks=1.2, checkpoint_ticks=3.0, deadline_ticks=9,
        egress_usd=0.5555557, egress_moves=1,
    )
    assert r.as_dict() == {
        "policy": "p", "cost_usd": 1.234568, "ondemand_cost_usd": 3.0,
        "savings_fraction": 0.588477,  # 1 - 1.23456789 / 3.0000004 = 0.58847742
        "finished": True, "met_deadline": False, "hours_elapsed": 3.123457, "preemptions": 2, "moves": 3,
        "spot_hours": 1.111111, "ondemand_hours": 2.222222, "overhead_hours": 0.333333,
        "lost_work_hours": 0.444444, "start_tick": 5, "tick_seconds": 600.0, "work_ticks": 6.5,
        "restart_ticks": 1.2, "checkpoint_ticks": 3.0, "deadline_ticks": 9, "egress_usd": 0.555556,
        "egress_moves": 1,
    }


class SpotAlways:
    name = "spot-always"

    def decide(self, view: JobView, memory: Memory) -> Step:
        from ray_multicloud.policy.deadline import spot

        return Step(spot("us-east-1a"), ("spot",), memory)


def test_notice_loss_is_not_charged_during_a_restart(tmp_path: Path) -> None:
    # Hourly ticks, 4 h of work saved on notice with a 1 h notice loss, restart 2 h; spot is down
    # at t4 and t6. t0-t1 restart, t2-t3 work (w 2); t4 preempted: w 2 - 1 = 1 (1 h lost).
    # t5 restart; t6 preempted while still restarting: no work since the last save, nothing lost
    # (w stays 1). t7-t8 restart, t9-t11 work (w 4): done at 12 h; paid t0-t3, t5, t7-t11 = 10 USD.
    ts = hourly(tmp_path, [1, 1, 1, 1, 0, 1, 0] + [1] * 8)
    spec = JobSpec(work_hours=4, deadline_hours=None, checkpoint_minutes=60, restart_minutes=120,
                   checkpoint_on_notice=True, notice_loss_minutes=60)
    r = simulate(ts, spec, SpotAlways(), ondemand_price=3.0)
    assert (r.preemptions, r.lost_work_hours, r.hours_elapsed) == (2, 1.0, 12.0)
    assert r.cost_usd == pytest.approx(10.0)


@pytest.mark.parametrize("price", [0.0, -1.0, float("nan"), float("inf")])
def test_simulate_refuses_a_bad_ondemand_price(tmp_path: Path, price: float) -> None:
    ts = hourly(tmp_path, [1, 1, 1])
    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    with pytest.raises(SimulationError, match="on-demand price must be a positive USD/h, got"):
        simulate(ts, spec, AlwaysWait(), ondemand_price=price)


def test_moves_and_lost_work_accumulate(tmp_path: Path) -> None:
    # Hourly ticks, two zones always up at 1 USD/h; 4 h of work, a checkpoint every 2 h, no
    # restart. a: t0-t2 (w 3, saved 2); to b at t3: back to 2 (1 h lost, move 1), w 3; back to a
    # at t4: back to 2 (1 h lost, move 2), w 3; t5 w 4: done at 6 h, 6 USD.
    for name in ("us-east-1a", "us-east-1b"):
        obj = {"metadata": {"gap_seconds": 3600.0}, "data": [1] * 8, "prices": [1.0] * 8}
        (tmp_path / f"{name}_v100_1.json").write_text(json.dumps(obj))
    ts = load_traces([tmp_path], default_spot_price=1.0)
    spec = JobSpec(work_hours=4, deadline_hours=None, checkpoint_minutes=120, restart_minutes=0)
    a, b = "us-east-1a", "us-east-1b"
    r = simulate(ts, spec, SpotScript((a, a, a, b, a, a)), ondemand_price=3.0)
    assert (r.moves, r.lost_work_hours, r.preemptions, r.hours_elapsed) == (2, 2.0, 0, 6.0)
    assert r.cost_usd == pytest.approx(6.0)


def test_optimum_past_an_impossible_deadline_still_pays_egress_and_reports_progress() -> None:
    # Found by mutmut (``optimal_cost`` 59, 60, 66, 67: the fallback pass, run when the deadline
    # cannot be met, dropped egress or progress). Hourly ticks; us-east-1a (aws us-east-1) is up
    # at t0 only, us-west-2a (aws us-west-2) at t1 only, both 1 USD/h; on-demand 10 USD/h.
    # 2 h of work, a checkpoint every hour, no restart, deadline 1 h: impossible (2 ticks of work).
    # Cheapest before the trace ends: a at t0 (1 USD, checkpoint at 1 h), b at t1 carrying the
    # checkpoint to another region: 10 GB * 0.02 USD/GB = 0.2 USD, 1 USD: 2.2 USD, done at 2 h.
    import numpy as np

    from ray_multicloud.pricing.egress import EgressTable

    ts = TraceSet(
        names=("us-east-1a", "us-west-2a"), regions=("us-east-1", "us-west-2"), files=("a", "b"),
        gap_seconds=3600.0, counts=np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.int64),
        spot_prices=np.ones((2, 4)), priced_by_file=(True, True), clouds=("aws", "aws"),
    )
    spec = JobSpec(work_hours=2, deadline_hours=1, checkpoint_minutes=60, restart_minutes=0)
    seen: list[float] = []
    opt = optimal_cost(ts, spec, ondemand_price=10.0, checkpoint_gb=10.0,
                       egress=EgressTable({("aws", "aws"): 0.02}, "test"), progress=seen.append)
    assert (opt.finished, opt.met_deadline) == (True, False)
    assert opt.cost_usd == pytest.approx(2.2)
    assert opt.hours_elapsed == pytest.approx(2.0)
    # the deadline pass over 1 tick (0.0, done), then the fallback over all 4 ticks (0, 1/4, ...)
    assert seen == pytest.approx([0.0, 1.0, 0.0, 0.25, 0.5, 0.75, 1.0])
