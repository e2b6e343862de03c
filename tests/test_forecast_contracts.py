"""Demand forecasts, the contracts of ``policy/forecast.py``'s helpers: refusals and their messages,
``sized``'s hold flag, ``candidates``' defaults, the pinball loss on one tick, and ``choose``'s
scoring window, custom scores and ruled-out candidates.

Written for the survivors of the mutmut run of ``policy/forecast.py`` (benchmarks/README.md,
"Mutation testing"); every expected value is worked out by hand from the docstrings. Pure: no Ray.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ray_multicloud.policy.forecast import (
    Candidate,
    candidates,
    choose,
    forecast_series,
    pinball,
    sized,
    trailing_max,
)

P = Candidate("persistence")
RATE = np.arange(8, dtype=float)  # 0, 1, ..., 7


def test_sized_sets_the_hold_flag_of_each_copy() -> None:
    pool = sized([P], (1.0, 2.0), (0.0,), (False, True))
    assert [(c.name, c.hold) for c in pool] == [
        ("persistence", False), ("persistence x2", False),
        ("persistence hold", True), ("persistence x2 hold", True)]
    # hold comes from ``holds``, not from the candidate sized
    assert [c.hold for c in sized([Candidate("persistence", hold=True)])] == [False]


def test_candidates_default_to_no_lead_and_refuse_a_tick_not_above_zero() -> None:
    # 20 ticks with no lead score persistence on 20 ticks; a lead of 1 leaves 19: nothing.
    assert [c.name for c in candidates(3600.0, 20)] == ["persistence"]
    assert candidates(3600.0, 20, 1) == []
    # Half-second ticks: every season is longer than 30 ticks of history; recent-max/10 needs 29.
    assert [c.name for c in candidates(0.5, 30)] == ["persistence", "recent-max/3", "recent-max/10"]
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError) as err:
            candidates(bad, 100)
        assert str(err.value) == f"tick_seconds must be > 0, got {bad}"


def test_pinball_of_one_tick_and_of_none() -> None:
    assert pinball(np.array([10.0]), np.array([8.0]), 0.9) == pytest.approx(1.8)  # under by 2: 0.9 * 2
    assert pinball(np.array([10.0]), np.array([13.0]), 0.9) == pytest.approx(0.3)  # over by 3: 0.1 * 3
    assert math.isnan(pinball(np.array([]), np.array([]), 0.9))


def test_choose_refuses_a_quantile_outside_zero_one() -> None:
    for q in (0.0, 1.0, 1.5, -0.5):
        with pytest.raises(ValueError) as err:
            choose(np.ones(30), 3600.0, 0, quantile=q)
        assert str(err.value) == f"quantile must be in (0, 1), got {q}"


def test_choose_needs_twenty_scored_ticks_after_the_longest_look_back() -> None:
    # 30 ticks, no lead; a season of 15 looks back 15 ticks: 15 left to score < 20 -> None.
    assert choose(np.ones(30), 3600.0, 0, pool=[Candidate("seasonal-naive", 15)]) is None
    # a season of 10 leaves exactly 20
    got = choose(np.ones(30), 3600.0, 0, pool=[Candidate("seasonal-naive", 10)])
    assert got is not None and got.scored_ticks == 20


def test_a_custom_score_sees_the_scored_ticks_and_may_rule_a_candidate_out() -> None:
    seen: list[tuple[str, int, int]] = []

    def score(c: Candidate, series: np.ndarray, first: int, last: int) -> float | None:
        seen.append((c.name, first, last))
        return None if c.kind == "persistence" else float(last - first)

    # 25 ticks, lead 1; pool persistence and recent-max/3 (look-back 2): t in [2, 24).
    pool = [P, Candidate("recent-max", 3)]
    got = choose(np.ones(25), 3600.0, 1, pool=pool, score=score)
    assert seen == [("persistence", 2, 24), ("recent-max/3", 2, 24)]
    assert got is not None and got.best == Candidate("recent-max", 3)
    assert got.scores == (("persistence", math.inf), ("recent-max/3", 22.0)) and got.scored_ticks == 22
    # every candidate ruled out: no choice
    assert choose(np.ones(25), 3600.0, 1, pool=pool, score=lambda *a: None) is None


def test_a_season_is_offered_on_exactly_the_history_it_needs() -> None:
    # 3-minute ticks: an hour is 20 ticks. seasonal-naive/20 needs two seasons (40 ticks) and its
    # look-back plus 20 scored (40): offered at 40, not at 39.
    names = [c.name for c in candidates(180.0, 40)]
    assert names == ["persistence", "recent-max/3", "recent-max/10", "seasonal-naive/20"]
    assert "seasonal-naive/20" not in [c.name for c in candidates(180.0, 39)]
    # k seasons back need k + 1 seasons of history: /20/3 at 80 ticks (and 60 + 20 scored).
    at_80 = [c.name for c in candidates(180.0, 80)]
    assert "seasonal-mean/20/3" in at_80 and "seasonal-max/20/3" in at_80
    assert "seasonal-mean/20/3" not in [c.name for c in candidates(180.0, 79)]
    # Hourly ticks, day = 24: /24/3 needs 4 x 24 = 96 ticks (72 + 20 = 92 would score it),
    # /24/7 needs 8 x 24 = 192 (168 + 20 = 188 would score it).
    assert "seasonal-mean/24/3" not in [c.name for c in candidates(3600.0, 94)]
    assert "seasonal-mean/24/3" in [c.name for c in candidates(3600.0, 96)]
    assert "seasonal-mean/24/7" not in [c.name for c in candidates(3600.0, 190)]
    assert "seasonal-mean/24/7" in [c.name for c in candidates(3600.0, 192)]


def test_forecast_series_refusals() -> None:
    with pytest.raises(ValueError) as err:
        forecast_series(RATE, P, -1)
    assert str(err.value) == "lead must be >= 0 ticks, got -1"
    with pytest.raises(ValueError) as err:
        forecast_series(RATE, Candidate("bogus", 2), 0)
    assert str(err.value) == "unknown forecaster kind 'bogus'"


def test_persistence_is_the_rate_now_whatever_its_season() -> None:
    assert forecast_series(RATE, Candidate("persistence", 3), 0).tolist() == RATE.tolist()


def test_a_season_of_one_tick_and_a_lead_of_one_season() -> None:
    # season 1, lead 0: the target is t, one season before it is t - 1 (t = 0 has none: persistence).
    assert forecast_series(RATE, Candidate("seasonal-naive", 1), 0).tolist() == [0, 0, 1, 2, 3, 4, 5, 6]
    # season 2, k 2, lead 2: the target t + 2; 1 and 2 seasons before it are t and t - 2, known
    # from t = 2 on: (r[t] + r[t - 2]) / 2 = t - 1.
    mean = forecast_series(RATE, Candidate("seasonal-mean", 2, 2), 2)
    assert mean.tolist() == [0, 1, 1, 2, 3, 4, 5, 6]


def test_trailing_max_of_nothing_is_nothing() -> None:
    for window in (1, 3):
        out = trailing_max(np.array([], dtype=np.float64), window)
        assert out.shape == (0,) and out.dtype == np.float64
    assert trailing_max(np.array([4, 1, 2], dtype=np.int64), 2).tolist() == [4, 4, 2]


def test_a_season_is_offered_only_where_whole_ticks_come_within_one_percent_of_it() -> None:
    # By hand: 60 s ticks: an hour is 60 ticks, a day 1,440, a week 10,080 (exact).
    # 2,400 s (40 min) ticks: an hour is round(1.5) = 2 ticks = 80 min (33% off): not offered;
    # a day 36 ticks and a week 252 ticks (exact) are. 7 s ticks: an hour is round(514.29) = 514
    # ticks = 3,598 s (0.06% off): offered. 1,300 s ticks: an hour round(2.77) = 3 ticks = 3,900 s
    # (8.3% off): not; a day round(66.46) = 66 ticks = 85,800 s (0.69% off) and a week
    # round(465.23) = 465 ticks = 604,500 s (0.05% off): offered.
    def seasons(tick: float) -> list[int]:
        return sorted(c.season for c in candidates(tick, 10**6) if c.kind == "seasonal-naive")

    assert seasons(60.0) == [60, 1440, 10080]
    assert seasons(2400.0) == [36, 252]
    assert 514 in seasons(7.0)
    assert seasons(1300.0) == [66, 465]
