"""The availability model's contracts (``policy/risk.py``): the default windows, the refusals and
their messages, the edges of the live window, and a risk term that never makes an offer cheaper
than its price.

Written for the survivors of the mutmut run of ``policy/risk.py`` (benchmarks/README.md, "Mutation
testing"); every expected value is worked out by hand from the module's and the functions'
docstrings. Pure: no Ray, no ledger.
"""

from __future__ import annotations

import math

import pytest

from ray_multicloud.policy.risk import interruptions_per_hour, observed_interruption_rates, useful_hour_cost

H = 3600.0
NOW = 1000 * H


# --------------------------------------------------------------------------- interruptions_per_hour


def test_the_default_window_is_the_last_24_hours() -> None:
    # 30 hourly ticks, all available but tick 5: the interruption (tick 4 up, tick 5 down) is 25
    # ticks back, outside the last 24 (ticks 6..29: no interruption, 24 h up) -> 0.
    hist = [True] * 30
    hist[5] = False
    assert interruptions_per_hour(hist, 1.0) == 0.0
    # A 25 h window reaches it: 1 interruption over the 24 available hours of ticks 5..29.
    assert interruptions_per_hour(hist, 1.0, 25.0) == pytest.approx(1 / 24)


def test_a_window_of_one_tick_sees_only_the_last_tick() -> None:
    # up, up, down, up: the last tick alone is up and holds no interruption (the one into tick 2
    # lies before it); two ticks see it, over the one hour up among them.
    hist = [True, True, False, True]
    assert interruptions_per_hour(hist, 1.0, 1.0) == 0.0
    assert interruptions_per_hour(hist, 1.0, 2.0) == pytest.approx(1.0)


def test_refusals_say_what_is_wrong() -> None:
    with pytest.raises(ValueError) as err:
        interruptions_per_hour([], 1.0)
    assert str(err.value) == "availability history is empty: give at least one tick"
    for tick in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError) as err:
            interruptions_per_hour([True, False], tick)
        assert str(err.value) == f"tick hours must be > 0, got {tick}"


# --------------------------------------------------------------------------- observed_interruption_rates


def test_the_default_live_window_is_a_week() -> None:
    # Preempted 168.5 h ago, after half an hour: before the 168 h window, so unknown (absent).
    lives = [("aws:a", NOW - 169 * H, NOW - 168.5 * H, True)]
    assert observed_interruption_rates(lives, now=NOW) == {}
    # A 169 h window holds that half hour and the preemption: 1 / 0.5 h.
    assert observed_interruption_rates(lives, now=NOW, window_hours=169.0) == {"aws:a": pytest.approx(2.0)}


def test_any_positive_window_and_its_refusal() -> None:
    # Half an hour back: half an hour held by a node running for an hour, nothing preempted.
    lives = [("aws:a", NOW - H, None, False)]
    assert observed_interruption_rates(lives, now=NOW, window_hours=0.5) == {"aws:a": 0.0}
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError) as err:
            observed_interruption_rates(lives, now=NOW, window_hours=bad)
        assert str(err.value) == f"window_hours must be > 0, got {bad}"


def test_a_node_ended_as_it_started_adds_no_hours() -> None:
    # 1 h held and preempted, plus a node that ended the moment it started: 1 preemption / 1.0 h.
    lives = [("gcp:b", NOW - 2 * H, NOW - H, True), ("gcp:b", NOW - 0.5 * H, NOW - 0.5 * H, False)]
    assert observed_interruption_rates(lives, now=NOW) == {"gcp:b": pytest.approx(1.0, rel=1e-12)}


def test_the_window_includes_both_of_its_ends() -> None:
    # The window is [now - window_hours, now], both ends in. A preemption exactly a week ago is
    # seen, over no hour held inside the window: counted over min_hours (1 min) -> 60 an hour.
    at_start = [("azure:c", NOW - 200 * H, NOW - 168 * H, True)]
    assert observed_interruption_rates(at_start, now=NOW) == {"azure:c": pytest.approx(60.0)}
    # A preemption at now, after an hour held: 1 an hour.
    at_now = [("azure:c", NOW - H, NOW, True)]
    assert observed_interruption_rates(at_now, now=NOW) == {"azure:c": pytest.approx(1.0)}


def test_only_preemptions_count_and_each_one_counts() -> None:
    # Two nodes of one hour each at one location, both preempted: 2 / 2 h. A node that ended
    # normally (scale-down) is hours held, not an interruption.
    lives = [
        ("aws:a", NOW - 4 * H, NOW - 3 * H, True),
        ("aws:a", NOW - 2 * H, NOW - H, True),
        ("aws:b", NOW - 2 * H, NOW - H, False),
    ]
    assert observed_interruption_rates(lives, now=NOW) == {"aws:a": pytest.approx(1.0), "aws:b": 0.0}


# --------------------------------------------------------------------------- useful_hour_cost


def test_the_risk_term_never_makes_an_offer_cheaper_than_its_price() -> None:
    # price * (1 + weight * rate * (restart + checkpoint / 2)) with rate and weight >= 0; a rate or
    # a weight at or below 0 leaves the bare price (no negative risk).
    assert useful_hour_cost(2.0, 0.5, 0.1, 0.5, weight=-1.0) == 2.0
    assert useful_hour_cost(2.0, -0.5, 0.1, 0.5) == 2.0
    # Never interrupted, or the risk weighed at 0: the price, whatever a restart would cost.
    assert useful_hour_cost(2.0, 0.0, math.inf, 0.5) == 2.0
    assert useful_hour_cost(2.0, 0.5, math.inf, 0.5, weight=0.0) == 2.0
    # weight 2 doubles the term: 2 * (1 + 2 * 0.5 * 0.35) = 2.7
    assert useful_hour_cost(2.0, 0.5, 0.1, 0.5, weight=2.0) == pytest.approx(2.7)
