"""Demand forecasts (policy/forecast.py) and the ``predictive`` serving-fleet policy (sim/serving.py).

Expected values are worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.forecast import (
    MIN_SCORED_TICKS,
    Candidate,
    candidates,
    choose,
    forecast_series,
    pinball,
    sized,
    too_short,
)
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
    assert names == ["persistence", "recent-max/3", "recent-max/10", "seasonal-naive/24",
                     "seasonal-mean/24/3", "seasonal-max/24/3", "seasonal-mean/24/7", "seasonal-max/24/7"]
    assert "seasonal-naive/168" in [c.name for c in candidates(3600.0, 400)]
    # 25 ticks, lead 0: persistence needs 20, recent-max/3 2 + 20 = 22, recent-max/10 9 + 20 = 29.
    assert [c.name for c in candidates(3600.0, 25)] == ["persistence", "recent-max/3"]
    # lead 3: recent-max/3 needs 2 + 3 + 20 = 25 ticks, so 24 leave persistence alone.
    assert [c.name for c in candidates(3600.0, 24, 3)] == ["persistence"]
    # seasonal-mean/24/7 looks back 168 ticks: with lead 5 it needs 193 (two seasons: 48; k+1: 192).
    assert "seasonal-mean/24/7" not in [c.name for c in candidates(3600.0, 192, 5)]
    assert "seasonal-mean/24/7" in [c.name for c in candidates(3600.0, 193, 5)]


def test_too_short_is_the_lead_plus_the_scored_ticks() -> None:
    assert MIN_SCORED_TICKS == 20
    # lead 1: 21 ticks leave 20 ticks t with rate[t + 1] known -> enough; 20 ticks -> too short.
    assert too_short(20, 1) and not too_short(21, 1)
    assert choose(np.ones(20), 3600.0, 1) is None
    choice = choose(np.ones(21), 3600.0, 1)
    assert choice is not None and choice.best.name == "persistence" and choice.scored_ticks == 20


def test_recent_max_is_the_highest_rate_of_the_window() -> None:
    rate = np.array([0.0, 1.0, 5.0, 2.0, 0.0, 0.0, 3.0])
    # window 3: max of rate[t-2..t]; the first ticks take what there is.
    assert forecast_series(rate, Candidate("recent-max", 3), 2).tolist() == [0, 1, 5, 5, 5, 2, 3]
    assert forecast_series(rate, Candidate("recent-max", 1), 0).tolist() == rate.tolist()
    assert Candidate("recent-max", 3).lookback == 2 and Candidate("seasonal-mean", 24, 3).lookback == 72


def test_sized_candidates_scale_and_add_headroom() -> None:
    c = Candidate("persistence", margin=2.0, plus=1.0)
    assert forecast_series(RATE, c, 0).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]  # 2 r + 1
    assert c.name == "persistence x2 +1"
    pool = sized([Candidate("persistence"), Candidate("recent-max", 3)], (1.0, 1.5), (0.0, 2.5))
    assert [p.name for p in pool] == [
        "persistence", "persistence +2.5", "persistence x1.5", "persistence x1.5 +2.5",
        "recent-max/3", "recent-max/3 +2.5", "recent-max/3 x1.5", "recent-max/3 x1.5 +2.5",
    ]
    with pytest.raises(ValueError, match="margin must be a number >= 1"):
        sized(pool, (0.5,))
    with pytest.raises(ValueError, match="headroom must be a rate >= 0"):
        sized(pool, (1.0,), (-1.0,))


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
       st.sampled_from(["persistence", "seasonal-naive", "seasonal-mean", "seasonal-max", "recent-max"]),
       st.integers(1, 6), st.integers(1, 3), st.sampled_from([1.0, 1.5]), st.sampled_from([0.0, 2.0]))
def test_a_forecast_uses_only_the_past(
    values: list[float], lead: int, kind: str, season: int, k: int, margin: float, plus: float
) -> None:
    """Changing the future never changes a forecast already made (sized or not)."""
    rate = np.array(values)
    c = Candidate(kind, 0 if kind == "persistence" else season, k, margin, plus)
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
    # Lead: 10 min start-up on 10 min ticks = 1 tick, so a forecast needs 1 + 20 = 21 ticks of history.
    # The first 2% is int(14.4) = 14 ticks: too short.
    pred = simulate_fleet(ts, demand, FLEET, "predictive", ondemand_price=3.0, held_out_from=0.02)
    hedge = simulate_fleet(ts, demand, FLEET, "spot-hedge", ondemand_price=3.0, held_out_from=0.02)
    assert pred.forecaster is None
    assert pred.note == ("demand history of 14 steps of 600 s (2.33 h) is too short to forecast 1 steps "
                         "ahead (needs 21: the start-up lead plus 20 steps to score forecasters on): "
                         "scaled reactively, as spot-hedge")
    assert (pred.cost_usd, pred.slo_violation_fraction) == (hedge.cost_usd, hedge.slo_violation_fraction)
    # The first 3% is int(21.6) = 21 ticks: just enough to run the backtest (which here finds no
    # forecaster within the cost bound on 3.5 h: the bursts of the first hours are not yet a season).
    enough = simulate_fleet(ts, demand, FLEET, "predictive", ondemand_price=3.0, held_out_from=0.03)
    assert "too short" not in enough.note and "no forecaster kept the fleet within" in enough.note


def test_predictive_buys_headroom_against_bursts_no_season_foresees() -> None:
    """1 request/s, 2 in every 13th tick (t % 13 == 3: 130 min apart); spot $1/h, on-demand $20/h,
    10 min ticks and start-up (lead 1), no extra spot replica. No forecaster without headroom has
    2 replicas ready at a burst tick: recent-max/10's order is kept 2 ticks, so it covers 11 ticks
    after a burst, not 13; the hourly season (6 ticks) looks back 6j - 1 ticks for the tick ahead,
    and 6j is not 0 modulo 13 for j <= 7; the daily one (144 = 1 mod 13) forecasts a burst only
    at the burst tick itself, a tick too late.

    spot-hedge: each burst tick finds 1 ready replica (a violation), buys 1 spot and 1 on-demand
    (ready a tick later) and drops them the next tick: 1 + 1 + 20 = 22 $-ticks, 1 on other ticks.
    Held out: ticks 360..719 hold the 28 bursts 367, 380, ..., 718 -> 28 / 360 violation ticks,
    (360 + 28 * 21) / 6 = 948 / 6 USD. A forecast with 1 replica of headroom (every forecast >= 1)
    orders 2 or 3 replicas at every tick, so none violates (demand never needs more than 2), at
    2 * 60 h * $1 = 120 USD or more; 2 replicas of headroom cost 3 * 60 = 180 or more. The headroom
    is spot only: on-demand covers the forecast without it, which spot always covers here. (Without
    the ``hold`` candidates, whose sizing this reasoning does not cover.)"""
    rps = np.where(np.arange(N) % 13 == 3, 2.0, 1.0)
    demand = Demand(TICK, rps, "bursts every 130 min")
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=10, min_replicas=1, extra_spot=0, downscale_minutes=10,
                      holds=(False,))
    hedge = simulate_fleet(one_zone(), demand, fleet, "spot-hedge", ondemand_price=20.0, held_out_from=0.5)
    pred = simulate_fleet(one_zone(), demand, fleet, "predictive", ondemand_price=20.0, held_out_from=0.5)
    assert hedge.slo_violation_fraction == pytest.approx(28 / 360)
    assert hedge.cost_usd == pytest.approx(948 / 6)
    assert pred.slo_violation_fraction == 0.0
    assert pred.forecaster is not None and pred.forecaster.endswith(" +1 spot"), pred.forecaster
    assert 120.0 - 1e-9 <= pred.cost_usd < 180.0


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


def test_headroom_is_bought_on_spot_only() -> None:
    """A flat forecast of 1 request/s with 2 requests/s of headroom (replica: 1 request/s), no extra
    spot, no start-up: with spot there, 1 + 2 = 3 spot replicas at $1/h, 3 USD per hour; with spot
    gone, on-demand covers the forecast alone: 1 replica at $3/h, 3 USD per hour, not 9."""
    from ray_multicloud.sim.serving import _run

    n = 6
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=0, min_replicas=1, extra_spot=0, downscale_minutes=0)
    rate = np.ones(n)

    def zone(up: int) -> TraceSet:
        return TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=3600.0,
                        counts=np.full((1, n), up, dtype=np.int64), spot_prices=np.ones((1, n)),
                        priced_by_file=(True,))

    cost, violations, _, _, replica_ticks = _run(zone(1), rate, fleet, "predictive", 3.0, rate, 0, 2.0)
    assert (cost, violations, replica_ticks) == (pytest.approx(18.0), 0, 18)
    cost, violations, _, _, replica_ticks = _run(zone(0), rate, fleet, "predictive", 3.0, rate, 0, 2.0)
    assert (cost, violations, replica_ticks) == (pytest.approx(18.0), 0, 6)


def test_hold_never_sizes_below_the_reactive_scale_down_window() -> None:
    """Rates [3, 1, 1, 1] (1 request/s per replica), a flat forecast of 1, one zone always up ($1/h
    spot, $3/h on-demand), 1-hour steps, no start-up, a 2-hour scale-down window, no extra spot.
    Without hold the forecast alone sizes the fleet: 1 spot replica every hour, step 0 (3 needed)
    violates: 4 USD, 1 violation. With hold: the larger of the forecast and the need over the
    window, [3, 3, 1, 1] spot replicas: 8 USD, none."""
    from ray_multicloud.sim.serving import _run

    n = 4
    ts = TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=3600.0,
                  counts=np.ones((1, n), dtype=np.int64), spot_prices=np.ones((1, n)), priced_by_file=(True,))
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=0, min_replicas=1, extra_spot=0, downscale_minutes=120)
    rate, flat = np.array([3.0, 1.0, 1.0, 1.0]), np.ones(n)
    cost, violations, _, _, replica_steps = _run(ts, rate, fleet, "predictive", 3.0, flat, 0)
    assert (cost, violations, replica_steps) == (pytest.approx(4.0), 1, 4)
    cost, violations, _, _, replica_steps = _run(ts, rate, fleet, "predictive", 3.0, flat, 0, hold=True)
    assert (cost, violations, replica_steps) == (pytest.approx(8.0), 0, 8)


def test_predictive_falls_back_to_reactive_when_no_forecaster_beats_it() -> None:
    """Flat demand, spot always there: every candidate at best ties spot-hedge's 0 violations and
    none is cheaper (spot-hedge holds the need plus its extra spot replica, and so does every
    candidate), so reactive scaling wins the backtest and predictive is spot-hedge, saying why."""
    flat = Demand(TICK, np.ones(N), "flat")
    pred = simulate_fleet(one_zone(), flat, FLEET, "predictive", ondemand_price=3.0, held_out_from=0.5)
    hedge = simulate_fleet(one_zone(), flat, FLEET, "spot-hedge", ondemand_price=3.0, held_out_from=0.5)
    assert pred.forecaster is None and pred.note.startswith("no forecaster beat reactive scaling"), pred.note
    assert (pred.cost_usd, pred.slo_violation_fraction) == (hedge.cost_usd, hedge.slo_violation_fraction)


def test_backtest_holds_a_candidate_to_the_cost_bound_in_each_half_of_the_history() -> None:
    """One zone whose spot is gone for the first 180 of 360 hourly ticks ($1/h spot, $30/h
    on-demand), 1 request/s flat, 1 h start-up, no extra spot.

    spot-hedge: on-demand for ticks 0..179 (180 * 30 = 5400); at 180 a spot replica starts while
    the on-demand one stays (31), then spot alone (179 * 1): halves 5400 + 210 = 5610 USD, one
    violation (tick 0, nothing ready yet). persistence +1 spot: the same first half (headroom is
    spot only, and there is none), then 2 spot starting next to the on-demand one (32) and
    2 spot (179 * 2): 5400 + 390 = 5790. Over the whole history that is 1.032x spot-hedge,
    within 5%; in the second half 390 / 210 = 1.86x: ruled out. persistence alone is spot-hedge:
    score 1 violation + (5610 / 5610) / 2.05."""
    from ray_multicloud.sim.serving import _backtest

    n = 360
    counts = np.where(np.arange(n) < 180, 0, 1).astype(np.int64)[None, :]
    ts = TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=3600.0, counts=counts,
                  spot_prices=np.ones((1, n)), priced_by_file=(True,))
    rate = np.ones(n)
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=60, min_replicas=1, extra_spot=0, downscale_minutes=60)
    score = _backtest(ts, rate, fleet, 30.0)
    assert score(Candidate("persistence"), rate, 0, n - 1) == pytest.approx(1 + 1 / 2.05)
    assert score(Candidate("persistence", plus=1.0), rate + 1.0, 0, n - 1) is None


def test_a_margin_above_one_is_spot_only_headroom() -> None:
    """``_split``: persistence x1.5 +2 on rates [2, 4] -> base [2, 4] (what on-demand covers) and
    headroom 0.5 x base + 2 = [3, 4] (bought on spot only); margin 1 keeps the scalar headroom."""
    from ray_multicloud.sim.serving import _split

    base, headroom = _split(np.array([2.0, 4.0]), Candidate("persistence", margin=1.5, plus=2.0), 1)
    assert base.tolist() == [2.0, 4.0] and np.asarray(headroom).tolist() == [3.0, 4.0]
    base, headroom = _split(np.array([2.0, 4.0]), Candidate("persistence", plus=2.0), 1)
    assert base.tolist() == [2.0, 4.0] and headroom == 2.0


def test_recent_max_on_a_history_shorter_than_its_window() -> None:
    # recent-max/5 on 3 ticks [1, 3, 2]: the running max of what there is (hypothesis found the crash).
    assert forecast_series(np.array([1.0, 3.0, 2.0]), Candidate("recent-max", 5), 0).tolist() == [1, 3, 3]


@settings(max_examples=60, deadline=None)
@given(
    gap=st.sampled_from([30.0, 32.5, 60.0, 195.0, 600.0]),
    step=st.sampled_from([1.0, 20.0, 60.0, 90.0, 300.0]),
    prices=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=12),
    counts=st.lists(st.integers(0, 3), min_size=12, max_size=12),
)
def test_spot_on_steps_keeps_cost_exact_and_counts_conservative(
    gap: float, step: float, prices: list[float], counts: list[int]
) -> None:
    """One VM held over every step costs the integral of the price over those steps' span, taken
    tick by tick (independent of how the steps cut the ticks), and a step's count is the fewest
    VMs of the spot ticks it overlaps."""
    from ray_multicloud.sim.serving import spot_on_steps

    n_ticks = len(prices)
    ts = TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=gap,
                  counts=np.array([counts[:n_ticks]], dtype=np.int64), spot_prices=np.array([prices]),
                  priced_by_file=(True,))
    n = int(n_ticks * gap / step + 1e-9)
    if n < 1:
        return
    out = spot_on_steps(ts, step, n)
    span = n * step
    integral = sum(p * max(0.0, min((k + 1) * gap, span) - k * gap) for k, p in enumerate(prices))
    assert float(out.spot_prices[0].sum() * step) == pytest.approx(integral, rel=1e-9)
    for i in range(n):
        lo, hi = i * step, (i + 1) * step
        overlapped = [counts[k] for k in range(n_ticks) if k * gap < hi - 1e-9 and (k + 1) * gap > lo + 1e-9]
        assert int(out.counts[0, i]) == min(overlapped)
