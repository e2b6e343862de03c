"""``skynomad-rate`` (policy/deadline.py:SkyNomadRate), the earlier reading of SkyNomad's policy with
memoryless lifetimes L = 1 / rate: hand-computed progress values and utilities. The paper's own
lifetime model and Algorithm 1 (``skynomad``) are tested in test_skynomad.py."""

from __future__ import annotations

import pytest

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    SkyNomad,
    SkyNomadRate,
    SpotOption,
    _progress_value,
    spot,
)


def view(t: float, p: float, zones: tuple[SpotOption, ...], current: Choice = WAIT, *, total: float = 10.0,
         deadline: float = 20.0, overhead: float = 0.0) -> JobView:
    return JobView(elapsed_hours=t, work_done_hours=p, checkpointed_hours=p, work_total_hours=total,
                   deadline_hours=deadline, restart_hours=0.2, checkpoint_hours=0.1, tick_hours=0.1,
                   current=current, overhead_left_hours=overhead, zones=zones, ondemand_price_per_hour=3.0)


def test_progress_value_is_the_schedule_ratio_times_on_demand() -> None:
    # theta = (10 - 4) / (20 - 8) = 0.5; theta~ = 4 / 8 = 0.5: on schedule, V = C_od
    assert _progress_value(view(8.0, 4.0, ())) == pytest.approx(3.0)
    # behind: theta = 8 / 12, theta~ = 2 / 8: V = 3 * (2/3) / (1/4) = 8
    assert _progress_value(view(8.0, 2.0, ())) == pytest.approx(8.0)
    assert _progress_value(view(0.0, 0.0, ())) == 3.0


def test_utility_weighs_lifetime_price_and_egress() -> None:
    # On schedule (V = 3). Zone a: 1.0/h, 0.5 interruptions/h -> L = 2 h, eta = 1.8 / 2 = 0.9,
    # U = 2.7 - 1.0 = 1.7. Zone b: 0.8/h, L = 10 h, eta = 0.98, egress 5 USD: U = 2.94 - 0.8 - 0.5 = 1.64.
    a = SpotOption("us-east-1a", "us-east-1", True, 1.0, 0.5)
    b = SpotOption("us-west-2a", "us-west-2", True, 0.8, 0.1, 5.0)
    assert SkyNomadRate().decide(view(8.0, 4.0, (a, b)), Memory()).choice == spot("us-east-1a")
    # with 3 USD of egress b scores 1.84 and wins
    b3 = SpotOption("us-west-2a", "us-west-2", True, 0.8, 0.1, 3.0)
    assert SkyNomadRate().decide(view(8.0, 4.0, (a, b3)), Memory()).choice == spot("us-west-2a")


def test_on_demand_when_behind_idle_when_ahead() -> None:
    pricey = SpotOption("us-east-1a", "us-east-1", True, 2.9, 1.0)  # L 1 h: U = V * 0.8 - 2.9
    # behind, V = 8: on-demand U = 5 beats spot U = 3.5
    assert SkyNomadRate().decide(view(8.0, 2.0, (pricey,)), Memory()).choice == ON_DEMAND
    # ahead: theta = 2 / 12, theta~ = 8 / 8 -> V = 0.5: every option is negative: idle
    assert SkyNomadRate().decide(view(8.0, 8.0, (pricey,)), Memory()).choice == WAIT


def test_safety_net_when_idle() -> None:
    # 12.0 h left, 11.8 h of work + 0.2 h restart: after this tick it no longer fits
    for policy in (SkyNomadRate(), SkyNomad()):
        step = policy.decide(view(8.0, 0.2, (), total=12.0), Memory())
        assert step.choice == ON_DEMAND and step.memory.locked_ondemand
