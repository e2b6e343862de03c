"""policy/slo.py: SLO-driven scaling decisions, expected values computed by hand in each test.

RTT table of these tests (ms): us-east-1 <-> eu-west-1 68, us-east-1 <-> westus2 62,
eu-west-1 <-> westus2 130, same region 1.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.slo import (
    CapacityOption,
    ReplicaLoad,
    SloTarget,
    cheapest_keeping,
    coverage,
    decide,
    impossible,
    network_p95_ms,
)

PAIRS = {
    frozenset(("us-east-1", "eu-west-1")): 68.0,
    frozenset(("us-east-1", "westus2")): 62.0,
    frozenset(("eu-west-1", "westus2")): 130.0,
}


def rtt(a: str, b: str) -> float | None:
    return 1.0 if a == b else PAIRS.get(frozenset((a, b)))


US = CapacityOption("aws/us-east-1/-/g4dn.xlarge/on_demand", "us-east-1", 0.53)
WEST = CapacityOption("azure/westus2/-/NC4as_T4_v3/spot", "westus2", 0.06)
MIX = {"us-east-1": 0.6, "eu-west-1": 0.4}


def test_network_p95_is_the_rtt_where_the_mix_reaches_95_percent() -> None:
    # sorted RTTs to us-east-1: us 1 (60%), eu 68 (cum 100%) -> 68
    assert network_p95_ms("us-east-1", MIX, rtt) == 68.0
    # us 96% alone reaches 95% -> 1
    assert network_p95_ms("us-east-1", {"us-east-1": 96, "eu-west-1": 4}, rtt) == 1.0
    # westus2: us 62 (60%), eu 130 -> 130
    assert network_p95_ms("westus2", MIX, rtt) == 130.0


def test_coverage_counts_the_clients_some_region_keeps() -> None:
    slo = SloTarget(120, 20)
    # westus2: us 62+20=82 <= 120 keeps, eu 130+20=150 misses -> 60%
    assert coverage(["westus2"], MIX, rtt, slo) == pytest.approx(0.6)
    # us-east-1: 21 and 88 -> 100%
    assert coverage(["us-east-1"], MIX, rtt, slo) == pytest.approx(1.0)
    # an unknown pair never keeps it
    assert coverage(["ap-south-1"], MIX, rtt, slo) == 0.0


def test_add_goes_to_the_cheapest_offer_that_keeps_the_slo() -> None:
    # SLO 200: both regions keep both clients (westus2: 82, 150) -> the $0.06 spot offer
    offer, why = cheapest_keeping([US, WEST], MIX, rtt, SloTarget(200, 20))
    assert offer == WEST and "cheapest offer that keeps" in why
    # SLO 120: westus2 covers 60% only; us-east-1 covers 100% -> us-east-1 despite $0.53
    offer, _ = cheapest_keeping([US, WEST], MIX, rtt, SloTarget(120, 20))
    assert offer == US
    # SLO 80: us-east-1 keeps us (21) but not eu (88): 60%; westus2 keeps nobody (82 > 80): 0%
    offer, why = cheapest_keeping([US, WEST], MIX, rtt, SloTarget(80, 20))
    assert offer == US and "no offer keeps" in why and "60%" in why


def test_a_breach_adds_one_replica_on_the_cheapest_keeping_offer() -> None:
    replicas = [ReplicaLoad("r1", "us-east-1", 0.53, p95_ms=260.0, busy=1.0)]
    d = decide(SloTarget(200, 20), replicas, [US, WEST], MIX, rtt, min_replicas=1, max_replicas=3)
    assert (d.action, d.replicas, d.add) == ("add", 2, WEST)
    assert "p95 260 ms > SLO 200 ms" in d.reasons[0]


def test_a_breach_at_max_replicas_holds() -> None:
    replicas = [
        ReplicaLoad("r1", "us-east-1", 0.53, 260.0, 1.0),
        ReplicaLoad("r2", "westus2", 0.06, 250.0, 1.0),
    ]
    d = decide(SloTarget(200, 20), replicas, [US, WEST], MIX, rtt, min_replicas=1, max_replicas=2)
    assert (d.action, d.replicas) == ("hold", 2) and "max_replicas 2" in d.reasons[0]


def test_low_latency_and_spare_capacity_remove_the_most_expensive() -> None:
    # low water 0.5 x 200 = 100; worst p95 90 <= 100; busy (0.2 + 0.2) / 1 = 40% <= 60%
    replicas = [
        ReplicaLoad("r1", "us-east-1", 0.53, 60.0, 0.2),
        ReplicaLoad("r2", "westus2", 0.06, 90.0, 0.2),
    ]
    d = decide(SloTarget(200, 20), replicas, [US, WEST], MIX, rtt, min_replicas=1, max_replicas=3)
    assert (d.action, d.replicas, d.remove) == ("remove", 1, replicas[0])
    assert "$0.53/h" in d.reasons[1]


def test_removal_keeps_the_client_mix_covered() -> None:
    # SLO 120: without us-east-1, westus2 covers 60% < 95% -> r1 stays although dearer; r2 goes
    slo = SloTarget(120, 20)
    replicas = [
        ReplicaLoad("r1", "us-east-1", 0.53, 50.0, 0.1),
        ReplicaLoad("r2", "westus2", 0.06, 40.0, 0.1),
    ]
    d = decide(slo, replicas, [US, WEST], MIX, rtt, min_replicas=1, max_replicas=3)
    assert (d.action, d.remove) == ("remove", replicas[1])


def test_unknown_price_is_removed_after_priced_ones() -> None:
    replicas = [
        ReplicaLoad("r1", "us-east-1", None, 50.0, 0.1),
        ReplicaLoad("r2", "us-east-1", 0.06, 40.0, 0.1),
    ]
    d = decide(SloTarget(200, 20), replicas, [US], MIX, rtt, min_replicas=1, max_replicas=3)
    assert d.remove == replicas[1]


def test_busy_replicas_are_not_removed() -> None:
    # (0.5 + 0.5) / 1 = 100% busy after removal > 60%
    replicas = [
        ReplicaLoad("r1", "us-east-1", 0.53, 50.0, 0.5),
        ReplicaLoad("r2", "westus2", 0.06, 40.0, 0.5),
    ]
    d = decide(SloTarget(200, 20), replicas, [US, WEST], MIX, rtt, min_replicas=1, max_replicas=3)
    assert d.action == "hold" and "100% busy" in d.reasons[0]


def test_between_the_marks_holds_and_min_replicas_is_kept() -> None:
    one = [ReplicaLoad("r1", "us-east-1", 0.53, 150.0, 0.3)]
    assert decide(SloTarget(200, 20), one, [US], MIX, rtt, min_replicas=1).action == "hold"
    two = [ReplicaLoad("r1", "us-east-1", 0.53, 150.0, 0.1), ReplicaLoad("r2", "us-east-1", 0.53, 10.0, 0.1)]
    d = decide(SloTarget(200, 20), two, [US], MIX, rtt, min_replicas=1)
    assert d.action == "hold" and "worst p95 150 ms" in d.reasons[0]
    assert decide(SloTarget(200, 20), [], [US], MIX, rtt, min_replicas=1).add == US


def test_impossible_slo_names_the_numbers() -> None:
    # eu-west-1 clients, only westus2 sold: 130 + 20 = 150 > 100
    why = impossible(SloTarget(100, 20), [WEST], {"eu-west-1": 1.0}, rtt)
    assert why is not None
    assert "eu-west-1 (100% of requests)" in why and "130 ms away" in why and "= 150 ms > p95 100 ms" in why
    assert "at least 150 ms" in why
    # 3% of requests unreachable is within the 5% a p95 allows
    assert impossible(SloTarget(100, 20), [WEST], {"us-east-1": 97, "eu-west-1": 3}, rtt) is None
    assert impossible(SloTarget(100, 20), [US, WEST], {"eu-west-1": 1.0}, rtt) is None  # 68 + 20 = 88
    assert "no offer" in (impossible(SloTarget(100, 20), [], MIX, rtt) or "")


def test_slo_target_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="service_ms 200 must be below p95_ms 100"):
        SloTarget(100, 200)
    with pytest.raises(ValueError, match="positive"):
        SloTarget(0)


replica_st = st.builds(
    ReplicaLoad,
    replica_id=st.text("abc", min_size=1, max_size=3),
    region=st.sampled_from(["us-east-1", "eu-west-1", "westus2", "ap-south-1"]),
    price_per_hour=st.one_of(st.none(), st.floats(0, 10)),
    p95_ms=st.one_of(st.none(), st.floats(0, 1000)),
    busy=st.floats(0, 1),
)


@settings(max_examples=200, deadline=None)
@given(
    replicas=st.lists(replica_st, max_size=6),
    lo=st.integers(0, 3),
    extra=st.integers(0, 4),
    p95=st.floats(30, 500),
)
def test_one_step_moves_by_at_most_one_and_stays_in_bounds(
    replicas: list[ReplicaLoad], lo: int, extra: int, p95: float
) -> None:
    hi = max(lo, 1) + extra
    d = decide(SloTarget(p95, 20), replicas, [US, WEST], MIX, rtt, min_replicas=lo, max_replicas=hi)
    n = len(replicas)
    assert abs(d.replicas - n) <= 1
    if d.action == "add":
        assert d.replicas == n + 1 and d.add is not None and (n < lo or n < hi)
    if d.action == "remove":
        assert d.replicas == n - 1 >= lo and d.remove in replicas
        priced = [r.price_per_hour for r in replicas if r.price_per_hour is not None]
        if d.remove is not None and d.remove.price_per_hour is not None and priced:
            # nothing dearer was left when it could have gone (coverage permitting): at least, the pick is
            # no cheaper than every other priced replica unless coverage forced it
            assert d.remove.price_per_hour <= max(priced)
