"""Demand forecasts (policy/forecast.py) and the ``predictive`` serving-fleet policy (sim/serving.py).

Expected values are worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.forecast import Candidate, candidates, choose, forecast_series, pinball
from ray_multicloud.sim.serving import Demand, FleetSpec, simulate_fleet
from ray_multicloud.sim.traces import TraceError, TraceSet

RATE = np.arange(8, dtype=float)  # 0, 1, ..., 7


def test_seasonal_naive_looks_one_season_back_from_the_target() -> None:
    # season 3, lead 1: f[t] = rate[t + 1 - 3] = rate[t - 2] from t = 2 on; before that, persistence.
    f = forecast_series(RATE, Candidate("seasonal-naive", 3), 1)
    assert f.tolist() == [0, 1, 0, 1, 2, 3, 4, 5]


def test_seasonal_mean_and_max_of_k_seasons() -> None:
    # season 2, k 2, lead 1: looks back 1 and 3 ticks; full history from t = 3.
    mean = forecast_series(RATE, Candidate("seasonal-mean", 2, 2), 1)
    assert mean.tolist() == [0, 1, 2, 1, 2, 3, 4, 5]  # t=3: (2 + 0) / 2
    top = forecast_series(RATE, Candidate("seasonal-max", 2, 2), 1)
    assert top.tolist() == [0, 1, 2, 2, 3, 4, 5, 6]


def test_a_lead_beyond_the_season_cannot_use_it() -> None:
    assert forecast_series(RATE, Candidate("seasonal-naive", 2), 3).tolist() == RATE.tolist()
    assert forecast_series(RATE, Candidate("persistence"), 5).tolist() == RATE.tolist()


def test_pinball_charges_an_under_forecast_more() -> None:
    # under by 2 at q=0.9: 1.8; over by 3: 0.1 * 3 = 0.3; mean 1.05
    assert pinball(np.array([10.0, 10.0]), np.array([8.0, 13.0]), 0.9) == pytest.approx(1.05)


def test_candidates_follow_the_tick_and_the_history() -> None:
    # Hourly ticks: an hour is one tick (no season); a day is 24; a week needs 336 ticks of history.
    names = [c.name for c in candidates(3600.0, 240)]
    assert names == ["persistence", "seasonal-naive/24", "seasonal-mean/24/3", "seasonal-max/24/3",
                     "seasonal-mean/24/7", "seasonal-max/24/7"]
    assert "seasonal-naive/168" in [c.name for c in candidates(3600.0, 400)]
    assert [c.name for c in candidates(3600.0, 30)] == ["persistence"]  # under two days


def test_too_short_a_history_chooses_nothing() -> None:
    assert choose(np.ones(47), 3600.0, 1) is None  # 47 h < 2 days


def test_a_periodic_demand_is_forecast_by_its_season() -> None:
    day = np.array([1.0] * 20 + [9.0, 9.0, 1.0, 1.0])
    rate = np.tile(day, 10)
    choice = choose(rate, 3600.0, 2)
    assert choice is not None
    # Every seasonal forecast is exact (loss 0); the simplest one wins the tie; persistence misses.
    assert choice.best.name == "seasonal-naive/24"
    scores = dict(choice.scores)
    assert scores["seasonal-naive/24"] == 0.0 and scores["persistence"] > 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=60), st.integers(0, 5),
       st.sampled_from(["persistence", "seasonal-naive", "seasonal-mean", "seasonal-max"]),
       st.integers(1, 6), st.integers(1, 3))
def test_a_forecast_uses_only_the_past(
    values: list[float], lead: int, kind: str, season: int, k: int
) -> None:
    """Changing the future never changes a forecast already made."""
    rate = np.array(values)
    c = Candidate(kind, 0 if kind == "persistence" else season, k)
    f = forecast_series(rate, c, lead)
    cut = len(rate) // 2
    changed = rate.copy()
    changed[cut + 1:] += 7.0
    assert forecast_series(changed, c, lead)[: cut + 1].tolist() == f[: cut + 1].tolist()


# --------------------------------------------------------------------------- the predictive fleet

TICK = 600.0
N = 720  # 5 days of 10-minute ticks


def one_zone() -> TraceSet:
    """One zone whose spot is always there, at 1 $/h."""
    return TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=TICK,
                    counts=np.ones((1, N), dtype=np.int64), spot_prices=np.ones((1, N)),
                    priced_by_file=(True,))


def hourly_bursts() -> Demand:
    """1 request/s, and 10 in the last tick of every hour (t % 6 == 5)."""
    rps = np.where(np.arange(N) % 6 == 5, 10.0, 1.0)
    return Demand(TICK, rps, "hourly bursts")


FLEET = FleetSpec(replica_rps=1.0, startup_minutes=10, min_replicas=1, extra_spot=0, downscale_minutes=10)


def test_predictive_is_ready_for_a_burst_reactive_scaling_misses() -> None:
    """Held-out second half: ticks 360..719, 60 hourly cycles of 6 ticks (1 h each, $1/h spot, $3/h
    on-demand, each tick 1/6 h).

    spot-hedge, per cycle: the burst tick finds 1 ready replica (a violation), orders 9 spot and 9
    on-demand to cover them, all ready a tick later, after the burst, and releases them then:
    (10 * 1 + 9 * 3) + 5 * 1 = 42 $-ticks -> 60 * 42 / 6 = 420 USD, 60 violations of 360 ticks.
    predictive (seasonal, forecasts the burst a tick ahead): orders 9 spot the tick before, keeps
    them through the burst: 10 + 10 + 4 = 24 -> 240 USD, no violation.
    ondemand: (10 + 5) * 3 = 45 -> 450 USD."""
    ts, demand = one_zone(), hourly_bursts()
    hedge = simulate_fleet(ts, demand, FLEET, "spot-hedge", ondemand_price=3.0, held_out_from=0.5)
    pred = simulate_fleet(ts, demand, FLEET, "predictive", ondemand_price=3.0, held_out_from=0.5)
    assert hedge.slo_violation_fraction == pytest.approx(60 / 360)
    assert hedge.cost_usd == pytest.approx(420.0)
    assert pred.slo_violation_fraction == 0.0
    assert pred.cost_usd == pytest.approx(240.0)
    assert pred.ondemand_cost_usd == pytest.approx(450.0)
    assert pred.forecaster is not None and pred.forecaster.startswith("seasonal")
    assert not pred.in_sample and pred.hours == pytest.approx(60.0)


def test_predictive_without_enough_history_is_spot_hedge_and_says_so() -> None:
    ts, demand = one_zone(), hourly_bursts()
    # The first 10% is 72 ticks = 12 h of history: too short.
    pred = simulate_fleet(ts, demand, FLEET, "predictive", ondemand_price=3.0, held_out_from=0.1)
    hedge = simulate_fleet(ts, demand, FLEET, "spot-hedge", ondemand_price=3.0, held_out_from=0.1)
    assert pred.forecaster is None and "too short to forecast" in pred.note
    assert (pred.cost_usd, pred.slo_violation_fraction) == (hedge.cost_usd, hedge.slo_violation_fraction)


def test_predictive_over_the_cost_bound_falls_back() -> None:
    """On a flat demand with an extra-cost bound of -100%, no forecaster is admissible."""
    flat = Demand(TICK, np.ones(N), "flat")
    strict = FleetSpec(replica_rps=1.0, extra_spot=0, max_extra_cost=-1.0)
    pred = simulate_fleet(one_zone(), flat, strict, "predictive", ondemand_price=3.0, held_out_from=0.5)
    assert pred.forecaster is None and "no forecaster kept the fleet within" in pred.note


def test_held_out_start_is_checked() -> None:
    with pytest.raises(TraceError, match="fraction in"):
        simulate_fleet(one_zone(), hourly_bursts(), FLEET, "spot-hedge", ondemand_price=3.0,
                       held_out_from=1.0)
