"""SLO capacity's contracts (``policy/slo.py``): ``SloTarget``'s refusals and limits, the client mix's
normalisation and coverage at its edges.

Written for survivors of the mutmut run of ``policy/slo.py`` (benchmarks/README.md, "Mutation
testing"); every expected value is worked out by hand from the module docstring. Pure: no Ray.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from ray_multicloud.policy.slo import (
    CapacityOption,
    ReplicaLoad,
    SloDecision,
    SloTarget,
    cheapest_keeping,
    coverage,
    decide,
    impossible,
    network_p95_ms,
    normalised_mix,
)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"p95_ms": 0.0}, "slo p95_ms must be a positive number of ms, got 0.0"),
        ({"p95_ms": 200.0, "service_ms": -1.0}, "slo service_ms must be a number of ms >= 0, got -1.0"),
        ({"p95_ms": 200.0, "service_ms": math.inf}, "slo service_ms must be a number of ms >= 0, got inf"),
        ({"p95_ms": 100.0, "service_ms": 100.0},
         "slo service_ms 100 must be below p95_ms 100: a request's own service time alone would miss "
         "the target"),
        ({"p95_ms": 200.0, "scale_in_below": 0}, "slo scale_in_below must be in (0, 1), got 0"),
        ({"p95_ms": 200.0, "scale_in_below": 1}, "slo scale_in_below must be in (0, 1), got 1"),
        ({"p95_ms": 200.0, "scale_in_below": 1.5}, "slo scale_in_below must be in (0, 1), got 1.5"),
        ({"p95_ms": 200.0, "max_busy_after_scale_in": 0},
         "slo max_busy_after_scale_in must be in (0, 1], got 0"),
        ({"p95_ms": 200.0, "max_busy_after_scale_in": 1.5},
         "slo max_busy_after_scale_in must be in (0, 1], got 1.5"),
    ],
)
def test_slo_target_refusals(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        SloTarget(**kw)
    assert str(err.value) == message


def test_slo_target_limits() -> None:
    assert SloTarget(p95_ms=0.5, service_ms=0.25).p95_ms == 0.5  # under a millisecond is a number > 0
    assert SloTarget(p95_ms=200.0, service_ms=0.0).service_ms == 0.0
    assert SloTarget(p95_ms=200.0, service_ms=0.5).service_ms == 0.5
    assert SloTarget(p95_ms=200.0, max_busy_after_scale_in=1.0).max_busy_after_scale_in == 1.0


def test_the_mix_keeps_only_positive_finite_shares() -> None:
    assert normalised_mix({"us": 3.0, "eu": -1.0, "ap": 0.0}) == {"us": 1.0}
    assert normalised_mix({"us": 1.0, "eu": math.inf, "ap": math.nan}) == {"us": 1.0}
    assert normalised_mix({"us": 3.0, "eu": 1.0}) == {"us": 0.75, "eu": 0.25}
    assert normalised_mix({"us": 0.0}) == {}


def rtt(client: str, region: str) -> float | None:
    return {("us", "us-east-1"): 180.0, ("eu", "us-east-1"): 181.0}.get((client, region))


def test_coverage_at_its_edges() -> None:
    slo = SloTarget(p95_ms=200.0, service_ms=20.0)
    # RTT + service exactly the target keeps it (180 + 20 <= 200); 181 + 20 does not.
    assert coverage(["us-east-1"], {"us": 3.0, "eu": 1.0}, rtt, slo) == 0.75
    # No client mix known: any replica covers it, none covers nothing.
    assert coverage(["us-east-1"], {}, rtt, slo) == 1.0
    assert coverage([], {}, rtt, slo) == 0.0


def test_network_p95_is_where_the_cumulative_share_reaches_95_percent() -> None:
    def ms(table: dict[str, float]) -> Any:
        return lambda client, region: table.get(client)

    # 50% at 10 ms, 48% at 20 ms (98% reached), 2% at 30 ms: 20.
    three = ms({"a": 10.0, "b": 20.0, "c": 30.0})
    assert network_p95_ms("r", {"a": 0.5, "b": 0.48, "c": 0.02}, three) == 20.0
    # exactly 95% at 10 ms reaches it
    assert network_p95_ms("r", {"a": 0.95, "b": 0.05}, ms({"a": 10.0, "b": 50.0})) == 10.0
    # an unknown pair counts as infinite; an empty mix gives 0
    assert network_p95_ms("r", {"a": 0.5, "b": 0.5}, ms({"a": 10.0})) == math.inf
    assert network_p95_ms("r", {}, ms({})) == 0.0


US_EAST = CapacityOption("aws:us-east-1:t4", "us-east-1", 0.5)
FROM_US_EAST = {"us": 10.0, "eu": 80.0, "ap": 90.0}  # "sa": unknown


def from_us_east(client: str, region: str) -> float | None:
    return FROM_US_EAST.get(client) if region == "us-east-1" else None


def test_impossible_names_each_unreachable_region_and_the_target_to_raise_to() -> None:
    slo = SloTarget(p95_ms=100.0, service_ms=20.0)
    assert impossible(slo, [], {"us": 1.0}, from_us_east) == "no offer to place a replica on"
    # eu: 80 + 20 = 100, not above the target: reachable. ap: 90 + 20 = 110 > 100; sa: no RTT.
    # 5% + 5% = 10% lost > 5%. The smallest target keeping 95%: us 60% (10 ms), eu 90% (80),
    # ap 95% (90) -> 90 + 20 = 110.
    mix = {"us": 0.6, "eu": 0.3, "ap": 0.05, "sa": 0.05}
    assert impossible(slo, [US_EAST], mix, from_us_east) == (
        "p95 100 ms cannot be kept: ap (5% of requests): nearest offer aws:us-east-1:t4 is 90 ms away, "
        "+ service 20 ms = 110 ms > p95 100 ms; sa (5% of requests): no offer region has a known RTT "
        "to it — 10% of requests miss it on the network alone, more than the 5% a p95 allows; raise "
        "p95_ms to at least 110 ms or add offers nearer those clients")
    # exactly 5% lost is what a p95 allows
    assert impossible(slo, [US_EAST], {"us": 0.95, "ap": 0.05}, from_us_east) is None


REGION_RTT = {"r1": {"us": 10.0, "ap": 90.0}, "r2": {"us": 30.0, "ap": 50.0}, "r3": {"us": 5.0, "ap": 60.0},
              "r4": {"ap": 10.0}}


def by_region(client: str, region: str) -> float | None:
    return REGION_RTT.get(region, {}).get(client)


def test_cheapest_keeping_and_its_ties() -> None:
    slo = SloTarget(p95_ms=100.0, service_ms=20.0)
    mix = {"us": 0.95, "ap": 0.05}
    # r1 keeps us (10 + 20) but not ap (90 + 20 = 110): exactly 95%, which keeps the SLO; its
    # network p95 is us's 10 ms. r2 and r3 keep both: 100%, network p95 30 and 5 ms.
    a = CapacityOption("a:r1", "r1", 0.1)
    b = CapacityOption("b:r2", "r2", 0.2)
    c = CapacityOption("c:r3", "r3", 0.2)
    assert cheapest_keeping([], mix, by_region, slo) == (None, "no offer to add a replica on")
    assert cheapest_keeping([b, a], mix, by_region, slo) == (a, (
        "a:r1 $0.1/h is the cheapest offer that keeps p95 100 ms for the client mix (network p95 10 ms "
        "+ service 20 ms; covers 95%)"))
    # same price: the higher coverage, then the lower network p95 (then the offer id)
    a_same_price = CapacityOption("a:r1", "r1", 0.2)
    assert cheapest_keeping([a_same_price, b], mix, by_region, slo)[0] == b
    assert cheapest_keeping([b, c], mix, by_region, slo)[0] == c


SLO = SloTarget(p95_ms=100.0, service_ms=20.0)  # scale in below 50 ms, at most 60% busy after
MIX = {"us": 0.95, "ap": 0.05}
A = CapacityOption("a:r1", "r1", 0.1)
B = CapacityOption("b:r2", "r2", 0.2)


def load(rid: str, region: str, price: float | None, p95: float | None, busy: float = 0.1) -> ReplicaLoad:
    return ReplicaLoad(rid, region, price, p95, busy)


def test_decide_defaults_and_its_refusal() -> None:
    # min_replicas 1 by default: none running -> add one on the cheapest offer keeping the SLO.
    assert decide(SLO, [], [B, A], MIX, by_region) == SloDecision("add", 1, A, None, (
        "add: 0 replica(s) < min_replicas 1",
        "a:r1 $0.1/h is the cheapest offer that keeps p95 100 ms for the client mix (network p95 10 ms "
        "+ service 20 ms; covers 95%)"))
    # one running, p95 exactly at the SLO (not above it): hold at the minimum
    one = [load("x", "r2", 0.2, 100.0)]
    assert decide(SLO, one, [A], MIX, by_region) == SloDecision(
        "hold", 1, None, None, ("hold: 1 replica(s), min_replicas 1",))
    # max_replicas 10 by default: ten running, one above the SLO -> hold
    ten = [load(f"r{i}", "r2", 0.2, 150.0 if i == 0 else 40.0) for i in range(10)]
    assert decide(SLO, ten, [A], MIX, by_region).reasons == (
        "hold: replica r0 (r2) p95 150 ms > SLO 100 ms, but already at max_replicas 10",)
    with pytest.raises(ValueError) as err:
        decide(SLO, [], [A], MIX, by_region, min_replicas=3, max_replicas=2)
    assert str(err.value) == "need 0 <= min_replicas <= max_replicas, got 3, 2"


def test_decide_removes_the_most_expensive_replica_the_mix_can_spare() -> None:
    # Both cover the whole mix; worst p95 40 <= 50 ms; (0.1 + 0.1) / 1 = 20% busy after.
    x, y = load("x", "r2", 0.2, 40.0), load("y", "r3", 0.3, 30.0)
    assert decide(SLO, [x, y], [A], MIX, by_region) == SloDecision("remove", 1, None, y, (
        "remove: worst p95 40 ms <= 50 ms and 1 replicas would each be 20% busy",
        "replica y (r3, $0.3/h) is the most expensive whose removal keeps the client mix covered (100%)"))
    # An unknown price goes after every priced one, a free ($0/h) node included.
    free, unknown = load("f", "r3", 0.0, 30.0), load("u", "r2", None, 30.0)
    assert decide(SLO, [unknown, free], [A], MIX, by_region).remove == free


def test_decide_holds_when_every_replica_is_needed() -> None:
    # r1 keeps only us, r4 only ap: each is half of this mix, removing either leaves 50%.
    mix = {"us": 0.5, "ap": 0.5}
    pair = [load("x", "r1", 0.3, 40.0), load("y", "r4", 0.2, 40.0)]
    assert decide(SLO, pair, [A], mix, by_region) == SloDecision(
        "hold", 2, None, None, ("hold: every replica is needed to keep the client mix covered",))


def test_decide_holds_without_measurements_or_when_the_rest_would_be_too_busy() -> None:
    unmeasured = [load("x", "r2", 0.2, None), load("y", "r3", 0.3, None)]
    assert decide(SLO, unmeasured, [A], MIX, by_region) == SloDecision("hold", 2, None, None, (
        "hold: no request measured; scale in only below 50 ms (0.5 x SLO)",))
    # (0.5 + 0.4 + 0.4) / 2 = 65% > 60%
    busy = [load("x", "r2", 0.2, 40.0, 0.5), load("y", "r3", 0.3, 40.0, 0.4), load("z", "r3", 0.3, 40.0, 0.4)]
    assert decide(SLO, busy, [A], MIX, by_region) == SloDecision("hold", 3, None, None, (
        "hold: p95 40 ms is low, but 2 replicas would each be 65% busy > 60%",))


def test_decide_scale_in_edges() -> None:
    # worst p95 exactly 50 ms = 0.5 x SLO, and exactly 60% busy after, (0.6 + 0.6 + 0) / 2: removes.
    edge = [load("x", "r2", 0.2, 50.0, 0.6), load("y", "r3", 0.3, 30.0, 0.6), load("z", "r3", 0.1, 30.0, 0.0)]
    got = decide(SLO, edge, [A], MIX, by_region)
    assert got.action == "remove" and got.remove == edge[1]
    assert got.reasons[0] == "remove: worst p95 50 ms <= 50 ms and 2 replicas would each be 60% busy"
    # a busy share above 1 counts as 1: (1 + 0 + 0) / 2 = 50%
    over = [load("x", "r2", 0.2, 40.0, 1.5), load("y", "r3", 0.3, 30.0, 0.0), load("z", "r3", 0.1, 30.0, 0.0)]
    assert decide(SLO, over, [A], MIX, by_region).action == "remove"


def test_decide_removal_ties_and_an_unknown_price() -> None:
    # Same price: the worse network p95 goes first (r2: 30 ms, r3: 5 ms), whatever the ids.
    a, b = load("a", "r3", 0.2, 30.0), load("b", "r2", 0.2, 30.0)
    assert decide(SLO, [a, b], [A], MIX, by_region).remove == b
    # Only unknown prices: the reason says so.
    u, v = load("u", "r2", None, 30.0), load("v", "r3", None, 30.0)
    got = decide(SLO, [u, v], [A], MIX, by_region)
    assert got.remove == u and got.reasons[1] == (
        "replica u (r2, price unknown) is the most expensive whose removal keeps the client mix "
        "covered (100%)")


def test_decide_names_the_worst_measured_p95_even_below_one_ms() -> None:
    # The worst replica is the one with the highest measured p95: 0.9 ms beside 0.0 ms, shown
    # rounded to whole ms ("1 ms"); both cover the mix, (0.1 + 0.1) / 1 = 20% busy after.
    x, y = load("x", "r2", 0.2, 0.0), load("y", "r3", 0.3, 0.9)
    got = decide(SLO, [x, y], [A], MIX, by_region)
    assert got.reasons[0] == "remove: worst p95 1 ms <= 50 ms and 1 replicas would each be 20% busy"


def test_decide_removes_a_replica_leaving_exactly_95_percent_covered() -> None:
    # y (r2, $0.3/h) is the dearer; without it r1 keeps us (10 + 20 <= 100 ms) but not ap
    # (90 + 20 > 100): exactly 95% of the mix, which keeps the SLO, so y goes (not x).
    x, y = load("x", "r1", 0.1, 40.0), load("y", "r2", 0.3, 30.0)
    got = decide(SLO, [x, y], [A], MIX, by_region)
    assert got.action == "remove" and got.remove == y
    assert got.reasons[1] == (
        "replica y (r2, $0.3/h) is the most expensive whose removal keeps the client mix covered (95%)")


def test_decide_counts_an_infinite_price_as_no_price() -> None:
    # Neither price is a usable number (None, inf): both rank after every priced replica and tie,
    # so the worse network p95 goes first: u on r2 (30 ms) before i on r3 (5 ms). The docstring
    # names only "unknown"; the code's rule (a price must be finite to count) is stated here.
    u, i = load("u", "r2", None, 30.0), load("i", "r3", math.inf, 30.0)
    assert decide(SLO, [i, u], [A], MIX, by_region).remove == u


def test_decide_scales_an_idle_pool_in_and_holds_one_whose_requests_outlast_the_window() -> None:
    # No replica served a request in the window and none had one in flight: an idle pool (after a
    # peak that never came, say) gives back its most expensive replica the mix can spare, one per step.
    # r3 ($0.3) keeps us (5 + 20) and ap (60 + 20 <= 100); without it r2 still keeps both: 100%.
    idle = [load("x", "r2", 0.2, None, 0.0), load("y", "r3", 0.3, None, 0.0), load("z", "r1", 0.1, None, 0.0)]
    assert decide(SLO, idle, [A], MIX, by_region) == SloDecision("remove", 2, None, idle[1], (
        "remove: no request in the window on any of the 3 replicas",
        "replica y (r3, $0.3/h) is the most expensive whose removal keeps the client mix covered (100%)"))
    # ... never below min_replicas;
    assert decide(SLO, idle, [A], MIX, by_region, min_replicas=3).action == "hold"
    # ... and a replica busy with a request it has not finished yet (nothing measured) holds the pool.
    long_request = [*idle[:2], load("z", "r1", 0.1, None, 0.05)]
    assert decide(SLO, long_request, [A], MIX, by_region) == SloDecision("hold", 3, None, None, (
        "hold: no request measured; scale in only below 50 ms (0.5 x SLO)",))
