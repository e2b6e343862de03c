"""The router comparison's figures (``scenarios/router_compare.py``), worked by hand."""

from __future__ import annotations

import math

import pytest

from ray_multicloud.scenarios.router_compare import Answered, format_comparison, percentile, router_figures
from ray_multicloud.serve.ranking import RttTable

TABLE = RttTable({("a", "b"): 100.0}, same_region_ms=1.0)
SAMPLES = [
    Answered("a", True, 0.010, "a", 0.36),  # 10 + 1 = 11 ms, $0.000001
    Answered("a", True, 0.020, "b", 3.6),  # 20 + 100 = 120 ms, $0.00002
    Answered("b", False, 30.0),  # failed: counts as sent, outside the SLO, no cost
    Answered("b", True, 0.050, "b", 0.36),  # 50 + 1 = 51 ms, $0.000005
]


def test_figures_by_hand() -> None:
    f = router_figures("x", SAMPLES, TABLE, slo_ms=100)
    # $0.000026 over 3 answered requests, per 1,000.
    assert f.cost_per_1000_usd == pytest.approx(1000 * 0.000026 / 3)
    everyone, a, b = f.regions
    assert (everyone.region, everyone.sent, everyone.failed) == ("all", 4, 1)
    assert (everyone.p50_ms, everyone.p95_ms) == pytest.approx((51, 120))  # nearest rank of [11, 51, 120]
    assert everyone.attainment == 0.5  # 11 and 51 of 4 sent
    assert (a.region, a.p50_ms, a.p95_ms, a.attainment) == ("a", pytest.approx(11), pytest.approx(120), 0.5)
    assert (b.region, b.sent, b.failed, b.p50_ms, b.attainment) == ("b", 2, 1, pytest.approx(51), 0.5)
    assert f.served_by == {"a": 1, "b": 2}
    text = "\n".join(format_comparison([f], slo_ms=100))
    assert "| x | all | 4 | 1 | 51 | 120 | 50.0% | $0.008667 |" in text
    assert "x: answered from a 33%, b 67%" in text
    assert f.routes == {"a": {"a": 1, "b": 1}, "b": {"b": 1}}
    assert "  clients in a: a 50%, b 50%" in text


def test_nearest_rank_percentile() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0  # ceil(4.75) = 5th
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0  # ceil(2.5) = 3rd
    assert math.isnan(percentile([], 0.5))


def test_missing_pair_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="a <-> c"):
        router_figures("x", [Answered("a", True, 0.01, "c", 1.0)], TABLE, slo_ms=100)


def test_cost_uses_the_replicas_own_time_when_it_said() -> None:
    # 0.5 s in the client's view, 0.02 s on the replica at $3.6/h: 0.02 x 3.6 / 3600 = $0.00002.
    f = router_figures("x", [Answered("a", True, 0.5, "a", 3.6, replica_s=0.02)], TABLE, slo_ms=100)
    assert f.cost_per_1000_usd == pytest.approx(1000 * 0.00002)
