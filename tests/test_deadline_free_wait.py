"""multicloud's wait for an egress-free return (``MultiCloud.free_wait_share``,
``policy.deadline.free_wait_patience``): expected values computed by hand in the comments."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    MultiCloud,
    SpotOption,
    free_wait_patience,
    spot,
)
from ray_multicloud.sim import JobSpec, load_traces, simulate

TICK = 0.1
# The hand computations below use these parameters (the defaults before tune_policies' egress run),
# pinned so that a change of the shipped defaults does not move them.
P = {"keep_share": 0.6, "keep_per_work": 0.25, "wait_reserves": 1.5, "back_reserves": 0.0,
     "hazard_weight": 0.0}
HOME_DOWN = SpotOption("us-east-1a", "us-east-1", False, 1.0, 0.25, 0.0)
HOME_UP = SpotOption("us-east-1a", "us-east-1", True, 1.0, 0.25, 0.0)
AWAY_UP = SpotOption("us-west-2a", "us-west-2", True, 0.9, 0.1, 1.0)


def view(
    t: float, zones: tuple[SpotOption, ...], *, preempted: bool = False, current: Choice = WAIT
) -> JobView:
    """A 10 h job (20 h deadline, 0.2 h restart, 30-min checkpoints) preempted at t = 2.0 with
    2.0 h saved, standing idle since."""
    return JobView(
        elapsed_hours=t, work_done_hours=2.0, checkpointed_hours=2.0, work_total_hours=10.0,
        deadline_hours=20.0, restart_hours=0.2, checkpoint_hours=0.5, tick_hours=TICK, current=current,
        overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=3.0, preempted=preempted,
        preempted_zone="us-east-1a" if preempted else "",
    )


def test_patience_by_hand() -> None:
    # The docstring's example: 7.9 h spare, rate 0.15/h over 40 h left: N = 6; 7.9 / 7.
    v = JobView(0.0, 0.0, 0.0, 40.0, 60.0, 0.2, 0.5, TICK, WAIT, 0.0, (), 3.0)
    home = [SpotOption("a", "r", False, 1.0, 0.15), SpotOption("b", "r", False, 1.0, 0.3)]
    assert free_wait_patience(v, home, spare=7.9, share=1.0) == pytest.approx(7.9 / 7)
    assert free_wait_patience(v, home, spare=7.9, share=2.0) == pytest.approx(2 * 7.9 / 7)
    # No known rate: N = 0, the whole share of the spare slack.
    one = [SpotOption("a", "r", False, 1.0)]
    assert free_wait_patience(v, one, spare=3.0, share=0.5) == pytest.approx(1.5)
    assert free_wait_patience(v, home, spare=-1.0, share=1.0) == 0.0
    assert free_wait_patience(v, home, spare=5.0, share=0.0) == 0.0


# At t: slack = 20 - t - (0.2 + 10 - 2) = 11.8 - t; keep = max(1.5 * 0.7, 0.6 * 9.8 * (1 - t/20),
# 0.25 * 8) = 5.88 * (1 - t/20) here; home rate 0.25/h over 8 h left: N = 2; patience = (slack -
# keep) / 3. t = 2.0: (9.8 - 5.292) / 3 = 1.5027; t = 2.9: (8.9 - 5.0274) / 3 = 1.2909;
# t = 3.2: (8.6 - 4.9392) / 3 = 1.2203.
def test_waits_for_the_checkpoints_region_then_moves_when_patience_is_spent() -> None:
    p = MultiCloud(free_wait_share=1.0, **P)
    step = p.decide(view(2.0, (HOME_DOWN, AWAY_UP), preempted=True), Memory())
    assert step.choice == WAIT
    assert step.memory.idle_since == 2.0
    assert "1.50h" in step.reasons[0]
    # 0.9 h waited: 0.9 + 0.1 <= 1.2909 -> still waits.
    assert p.decide(view(2.9, (HOME_DOWN, AWAY_UP)), step.memory).choice == WAIT
    # 1.2 h waited: 1.3 > 1.2203 -> pays the egress and moves.
    assert p.decide(view(3.2, (HOME_DOWN, AWAY_UP)), step.memory).choice == spot("us-west-2a")


def test_moves_at_once_without_the_rule_or_without_egress_or_with_home_up() -> None:
    at_once = MultiCloud(free_wait_share=0.0, **P)
    preempted = view(2.0, (HOME_DOWN, AWAY_UP), preempted=True)
    assert at_once.decide(preempted, Memory()).choice == spot("us-west-2a")
    free_away = SpotOption("us-west-2a", "us-west-2", True, 0.9, 0.1, 0.0)
    p = MultiCloud(free_wait_share=1.0, **P)
    assert p.decide(view(2.0, (HOME_DOWN, free_away), preempted=True), Memory()).choice == spot("us-west-2a")
    # Home back: 1.0 there against 0.9 + 1.0 / 8 h (egress spread over the work left) away.
    assert p.decide(view(2.0, (HOME_UP, AWAY_UP), preempted=True), Memory()).choice == spot("us-east-1a")


def test_no_wait_when_the_slack_is_spent() -> None:
    # t = 10: slack 1.8 < keep 5.88 * 0.5 = 2.94: no spare slack, no wait; a spot run is still safe
    # (time left after a tick 9.9 >= 0.2 + 8) and viable (1.8 - 0.2 - 0.5 + 0.1 >= 0): it moves.
    p = MultiCloud(free_wait_share=4.0, **P)
    assert p.decide(view(10.0, (HOME_DOWN, AWAY_UP), preempted=True), Memory()).choice == spot("us-west-2a")
    # t = 11.8: not even safe to leave on-demand off for a tick: on-demand.
    assert p.decide(view(11.8, (HOME_DOWN, AWAY_UP), preempted=True), Memory()).choice == ON_DEMAND


def test_idle_clock_resets_on_a_node() -> None:
    p = MultiCloud(free_wait_share=1.0, **P)
    mem = Memory(idle_since=2.0)
    running = view(3.0, (HOME_UP, AWAY_UP), current=spot("us-east-1a"))
    assert p.decide(running, mem).memory.idle_since == math.inf


def _traces(tmp_path: Path) -> object:
    # 1 = spot available. us-east-1a is down in hour 2 only; us-west-2a is always up; both 1.0 USD/h,
    # hourly ticks.
    for name, data in (("us-east-1a", [1, 1, 0] + [1] * 9), ("us-west-2a", [1] * 12)):
        obj = {"metadata": {"gap_seconds": 3600.0}, "data": data, "prices": [1.0] * 12}
        (tmp_path / f"{name}_v100_1.json").write_text(json.dumps(obj))
    return load_traces([tmp_path])


def test_simulated_job_saves_the_egress(tmp_path: Path) -> None:
    ts = _traces(tmp_path)
    spec = JobSpec(work_hours=5, deadline_hours=10, checkpoint_minutes=60, restart_minutes=0,
                   checkpoint_on_notice=True)
    # Without the rule: hours 0-1 in us-east-1a, preempted at 2, moves (50 GB between AWS regions:
    # 1.00 USD), finishes at 5: 5 h at 1.0 + 1.00 = 6.00.
    r0 = simulate(ts, spec, MultiCloud(free_wait_share=0.0, **P), ondemand_price=3.0,  # type: ignore[arg-type]
                  checkpoint_gb=50)
    assert (r0.cost_usd, r0.egress_usd, r0.hours_elapsed) == (pytest.approx(6.0), pytest.approx(1.0), 5.0)
    # With it: at t = 2 slack 10 - 2 - 3 = 5, keep max(1.5 * 1, 0.6 * 5 * 0.8, 0.25 * 3) = 2.4,
    # patience (no rates known: N = 0) 2.6 h: waits hour 2, back in us-east-1a at 3, done at 6:
    # 5 h at 1.0, no egress, deadline met.
    r1 = simulate(ts, spec, MultiCloud(free_wait_share=1.0, **P), ondemand_price=3.0,  # type: ignore[arg-type]
                  checkpoint_gb=50)
    assert (r1.cost_usd, r1.egress_usd, r1.hours_elapsed) == (pytest.approx(5.0), 0.0, 6.0)
    assert r1.met_deadline


# --- leaving on-demand (or a spot zone) within the first tick after a checkpoint ----------------


def od_view(done: float, zone: SpotOption) -> JobView:
    """On on-demand at t = 4 with ``done`` h of a 10 h job done, checkpoint at 2.0 h."""
    return JobView(
        elapsed_hours=4.0, work_done_hours=done, checkpointed_hours=2.0, work_total_hours=10.0,
        deadline_hours=20.0, restart_hours=0.2, checkpoint_hours=0.5, tick_hours=TICK, current=ON_DEMAND,
        overhead_left_hours=0.0, zones=(zone,), ondemand_price_per_hour=3.0,
    )


def test_on_demand_returns_to_spot_within_a_tick_after_a_checkpoint() -> None:
    west = SpotOption("us-west-2a", "us-west-2", True, 0.9, 0.1, 0.0)
    # 0.05 h unsaved < a 0.1 h tick. slack 20 - 4 - (0.2 + 8) = 7.8; 7.8 - 0.2 >= 0.5 * 0.7 reserves;
    # gain (3 - 0.9) * 7.95 = 16.70 > 2 * (0.2 + 0.05) * 0.9 = 0.45: back to spot.
    assert MultiCloud().decide(od_view(2.05, west), Memory()).choice == spot("us-west-2a")
    # 0.15 h unsaved: more than a tick's work would be thrown away: wait for the next checkpoint.
    assert MultiCloud().decide(od_view(2.15, west), Memory()).choice == ON_DEMAND


def test_switch_cost_by_hand() -> None:
    from ray_multicloud.policy.deadline import _switch_cost

    # (restart 0.2 + unsaved 0.05) * 0.9 + egress 1.0
    assert _switch_cost(od_view(2.05, AWAY_UP), AWAY_UP) == pytest.approx(1.225)
    assert _switch_cost(od_view(2.0, HOME_UP), HOME_UP) == pytest.approx(0.2)


def test_periodic_job_leaves_on_demand_once_spot_returns(tmp_path: Path) -> None:
    # 10-minute ticks, 6-minute restart, 30-minute checkpoints: the restart leaves the work 4 minutes
    # off the ticks, so no decision ever lands exactly on a checkpoint. Spot is down for the first
    # 2 h, then up at 1.0 USD/h to the end; a 3 h job, 4 h deadline: slack is too low to wait, the
    # job starts on on-demand; spot comes back at 2 h, and it leaves on-demand within a tick of
    # its next checkpoint (before: on-demand to the end, 3.1 h of it).
    data = [0] * 12 + [1] * 24
    obj = {"metadata": {"gap_seconds": 600.0}, "data": data, "prices": [1.0] * len(data)}
    (tmp_path / "us-east-1a_v100_1.json").write_text(json.dumps(obj))
    ts = load_traces([tmp_path])
    spec = JobSpec(work_hours=3, deadline_hours=4, checkpoint_minutes=30, restart_minutes=6)
    r = simulate(ts, spec, MultiCloud(), ondemand_price=3.0)
    assert r.met_deadline
    assert r.spot_hours > 0.5
    assert r.ondemand_hours < 3.1 - 0.5
