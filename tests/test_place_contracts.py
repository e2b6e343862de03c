"""Contracts of ``policy.place`` that the mutation run of issue 12 item 5 found untested.

Pure, no Ray. Every expected value is worked out by hand from the module docstring and the
offers below (prices in USD/h), never read back from the code under test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ray_multicloud.policy import OfferIndex, check_pool, matching_offers, place
from ray_multicloud.policy.place import PlacementRisk, PoolProblem, describe_offer, money
from ray_multicloud.types import (
    CapacityType,
    Colocate,
    Decision,
    FleetNode,
    Infeasible,
    InstanceId,
    NodeState,
    Offer,
    PoolSpec,
    RequestId,
)

SPOT = CapacityType.SPOT
OD = CapacityType.ON_DEMAND


def mk(
    cloud: str,
    region: str,
    zone: str,
    price: float,
    *,
    cap: CapacityType = SPOT,
    itype: str = "m1",
    acc: str = "A100",
    n: float = 1,
) -> Offer:
    # on-demand price 4 x the spot price: every spot offer is "75% off"
    return Offer(cloud, region, zone, itype, acc, n, 8, 64, cap, price, price if cap is OD else price * 4)


def node(pool: str, offer: Offer, i: int = 0) -> FleetNode:
    return FleetNode(InstanceId(f"i-{i}"), pool, offer, RequestId(f"r-{i}"), 0.0, NodeState.RUNNING)


def decide(pool: PoolSpec, count: int, offers: list[Offer], **kw: object) -> Decision:
    answer = place(pool, count, offers, now=1000.0, **kw)  # type: ignore[arg-type]
    assert isinstance(answer, Decision), answer
    return answer


# ------------------------------------------------------------------ what the reasons call the pool

CPU = mk("aws", "us-east-1", "us-east-1a", 0.5, itype="c5", acc="", n=0)


def test_a_cpu_only_pool_is_called_cpu_only() -> None:
    (p,) = decide(PoolSpec("c"), 1, [CPU]).placements
    assert p.reasons[0] == (
        "cheapest spot CPU-only matching pool 'c': aws us-east-1a c5 $0.50/h (on-demand $2.00/h, 75% off)"
    )


def test_the_pool_is_named_by_its_gpu_count() -> None:
    a2 = mk("aws", "us-east-1", "us-east-1a", 2.0, n=2)
    (p,) = decide(PoolSpec("g", "A100", 2), 1, [a2]).placements
    assert p.reasons[0].startswith("cheapest spot A100x2 matching pool 'g': ")
    # a GPU pool that names no count asks for one GPU: "x1"
    (p,) = decide(PoolSpec("g", "A100", 0), 1, [a2]).placements
    assert p.reasons[0].startswith("cheapest spot A100x1 matching pool 'g': ")


# ------------------------------------------------------------------ min_on_demand / min_clouds notes

AWS = mk("aws", "us-east-1", "us-east-1a", 1.0)
AWS_OD = mk("aws", "us-east-1", "us-east-1a", 2.0, cap=OD)
GCP = mk("gcp", "us-central1", "", 1.2)
GCP_OD = mk("gcp", "us-central1", "", 2.5, cap=OD)
AZ = mk("azure", "eastus", "", 1.4)


def test_min_on_demand_alone_takes_the_cheapest_on_demand_wherever_it_is() -> None:
    # Only min_on_demand is unmet (min_clouds 1): the cheapest on-demand offer, aws at 2.0, not the
    # on-demand offer of a cloud the pool does not cover yet (gcp at 2.5).
    pool = PoolSpec("p", "A100", 1, min_on_demand=1)
    (p,) = decide(pool, 1, [AWS, AWS_OD, GCP, GCP_OD], fleet=[node("p", AWS)]).placements
    assert p.offer == AWS_OD
    assert p.reasons[:2] == (
        "cheapest eligible on-demand A100x1 matching pool 'p': aws us-east-1a m1 $2.00/h",
        "min_on_demand=1: this node is on-demand",
    )


def test_min_clouds_alone_takes_the_cheapest_offer_of_an_uncovered_cloud() -> None:
    # Only the spread is unmet: gcp spot at 1.2 (not gcp on-demand at 2.5), and no on-demand note.
    pool = PoolSpec("p", "A100", 1, min_clouds=2)
    (p,) = decide(pool, 1, [AWS, AWS_OD, GCP, GCP_OD], fleet=[node("p", AWS)]).placements
    assert p.offer == GCP
    assert p.reasons[1] == "spread: gcp not yet covered (1 of min_clouds=2 covered: aws)"
    assert not any(r.startswith("min_on_demand") for r in p.reasons)


def test_the_spread_note_lists_the_covered_clouds_or_none() -> None:
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_clouds=3)
    first, second, third = decide(pool, 3, [AWS, GCP, AZ]).placements
    assert first.offer == AWS
    assert first.reasons[1] == "spread: aws not yet covered (0 of min_clouds=3 covered)"
    assert second.reasons[1] == "spread: gcp not yet covered (1 of min_clouds=3 covered: aws)"
    assert third.reasons[1] == "spread: azure not yet covered (2 of min_clouds=3 covered: aws, gcp)"


def test_no_on_demand_in_an_uncovered_cloud_says_on_demand_comes_first() -> None:
    # Both unmet; the uncovered cloud (aws) has only spot: on-demand first, in the covered gcp.
    pool = PoolSpec("p", "A100", 1, min_on_demand=1, min_clouds=2)
    (p,) = decide(pool, 1, [AWS, GCP, GCP_OD], fleet=[node("p", GCP)]).placements
    assert p.offer == GCP_OD
    assert p.reasons[1:3] == (
        "spread: no on-demand offer in an uncovered cloud; on-demand first",
        "min_on_demand=1: this node is on-demand",
    )


def test_a_spot_node_taken_for_the_spread_is_not_called_on_demand() -> None:
    # Both unmet, no on-demand offer matches at all: the spread is met with azure spot, and the
    # reasons do not claim the node is on-demand; they say min_on_demand stays unmet.
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_on_demand=1, min_clouds=2)
    (p,) = decide(pool, 1, [AWS, AZ], fleet=[node("p", AWS)]).placements
    assert p.offer == AZ
    assert "spread: azure not yet covered (1 of min_clouds=2 covered: aws)" in p.reasons
    assert "min_on_demand=1 unmet: no matching on-demand offer" in p.reasons
    assert not any(r.startswith("min_on_demand=1: this node is on-demand") for r in p.reasons)


def test_unmet_constraints_name_what_is_missing_exactly() -> None:
    # min_on_demand with no on-demand offer; min_clouds with every matching cloud covered.
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_on_demand=1, min_clouds=3)
    (p,) = decide(pool, 1, [AWS, GCP], fleet=[node("p", AWS, 1), node("p", GCP, 2)]).placements
    assert p.offer == AWS
    assert p.reasons[1:3] == (
        "min_on_demand=1 unmet: no matching on-demand offer",
        "spread: min_clouds=3 unmet: no matching offer outside aws, gcp",
    )
    (p,) = decide(PoolSpec("p", "A100", 1, clouds=("aws",), min_clouds=2), 1, [AWS, GCP],
                  fleet=[node("p", AWS)]).placements
    assert p.reasons[1] == "spread: min_clouds=2 unmet: no matching offer outside aws"


# ------------------------------------------------------------------ fallbacks: the limit and tier 1

CHOSEN = mk("aws", "us-east-1", "us-east-1a", 1.0)
ZONE_B = mk("aws", "us-east-1", "us-east-1b", 1.1)
ZONE_C = mk("aws", "us-east-1", "us-east-1c", 1.3)
OTHER_TYPE = mk("aws", "us-east-1", "us-east-1a", 1.2, itype="m2")
WEST = mk("aws", "us-west-2", "us-west-2a", 1.25)
GCP_F = mk("gcp", "us-central1", "", 1.05)


def test_max_fallbacks_is_the_exact_number_kept() -> None:
    offers = [CHOSEN, ZONE_B, ZONE_C, OTHER_TYPE, WEST, GCP_F]
    pool = PoolSpec("p", "A100", 1)
    # tier 1 (zones b, c), tier 2 (aws by price: m2 1.2, us-west-2 1.25), tier 3 (gcp)
    expected = (ZONE_B, ZONE_C, OTHER_TYPE, WEST, GCP_F)
    for limit in range(7):
        (p,) = decide(pool, 1, offers, max_fallbacks=limit).placements
        assert p.offer == CHOSEN
        assert p.fallbacks == expected[:limit], limit
    (one,) = decide(pool, 1, offers, max_fallbacks=1).placements
    assert one.reasons[-1] == "fallbacks: 1 other zone(s) of us-east-1"
    (two,) = decide(pool, 1, offers, max_fallbacks=2).placements
    assert two.reasons[-1] == "fallbacks: 2 other zone(s) of us-east-1"


def test_no_fallbacks_asked_gives_no_fallback_reason() -> None:
    (p,) = decide(PoolSpec("p", "A100", 1), 1, [CHOSEN, ZONE_B, GCP_F], max_fallbacks=0).placements
    assert p.fallbacks == ()
    assert p.reasons == (
        "cheapest spot A100x1 matching pool 'p': aws us-east-1a m1 $1.00/h (on-demand $4.00/h, 75% off)",
    )


def test_a_cooling_zone_does_not_end_the_zone_tier() -> None:
    # zone b (1.1) cools down; zone c (1.3) is still the first fallback, before the cheaper m2 (1.2).
    offers = [CHOSEN, ZONE_B, ZONE_C, OTHER_TYPE]
    (p,) = decide(PoolSpec("p", "A100", 1), 1, offers, cooldowns={ZONE_B.offer_id: 5000.0}).placements
    assert p.fallbacks == (ZONE_C, OTHER_TYPE)
    assert p.reasons[-1] == "fallbacks: 1 other zone(s) of us-east-1, then 1 more in aws"


def test_the_only_matching_offer_says_it_has_no_fallback() -> None:
    (p,) = decide(PoolSpec("p", "A100", 1), 1, [CHOSEN]).placements
    assert p.fallbacks == ()
    assert p.reasons[-1] == "no fallback: this is the only matching offer"


# ------------------------------------------------------------------ place: its other answers


def test_the_reason_names_the_source_preference() -> None:
    pool = PoolSpec("p", "A100", 1, source_preference=("gcp",))
    (p,) = decide(pool, 1, [AWS, GCP]).placements
    assert p.offer == GCP
    assert p.reasons[0] == (
        "best spot A100x1 matching pool 'p' (source preference ['gcp']): "
        "gcp us-central1 m1 $1.20/h (on-demand $4.80/h, 75% off)"
    )


def test_the_head_of_a_risk_weighted_choice() -> None:
    # No zone's rate is known: every offer ranks at its price (aws 1.0), and the head says what
    # was minimised; with a source preference the head is "best", as without risk.
    risk = PlacementRisk(0.1, 0.5)
    (p,) = decide(PoolSpec("p", "A100", 1), 1, [AWS, GCP], risk=risk).placements
    assert p.reasons[0] == (
        "lowest expected cost per useful hour: spot A100x1 matching pool 'p': "
        "aws us-east-1a m1 $1.00/h (on-demand $4.00/h, 75% off)"
    )
    (p,) = decide(PoolSpec("p", "A100", 1, source_preference=("gcp",)), 1, [AWS, GCP], risk=risk).placements
    assert p.reasons[0] == (
        "best spot A100x1 matching pool 'p' (source preference ['gcp']): "
        "gcp us-central1 m1 $1.20/h (on-demand $4.80/h, 75% off)"
    )


def test_count_zero_names_the_pool_and_bad_arguments_say_what_they_got() -> None:
    assert decide(PoolSpec("p", "A100", 1), 0, [AWS]) == Decision(pool="p", placements=())
    with pytest.raises(ValueError, match=r"^count must be >= 0, got -1$"):
        place(PoolSpec("p", "A100", 1), -1, [AWS], now=0.0)
    with pytest.raises(ValueError, match=r"^max_fallbacks must be >= 0, got -2$"):
        place(PoolSpec("p", "A100", 1), 1, [AWS], now=0.0, max_fallbacks=-2)


def test_each_live_on_demand_node_counts_once_towards_min_on_demand() -> None:
    # min_on_demand=2 with one live on-demand node: the next node is still on-demand.
    pool = PoolSpec("p", "A100", 1, min_on_demand=2)
    (p,) = decide(pool, 1, [AWS, AWS_OD], fleet=[node("p", AWS_OD)]).placements
    assert p.offer == AWS_OD
    assert p.reasons[1] == "min_on_demand=2: this node is on-demand"


# ------------------------------------------------------------------ reservations


def reserved(zone: str, slots: int) -> Offer:
    return Offer("aws", "us-east-1", zone, "m1", "A100", 1, 8, 64, CapacityType.RESERVED, 0.0, 3.0,
                 term_price_per_hour=1.5, reserved_count=slots)


R_A, R_B = reserved("us-east-1a", 1), reserved("us-east-1b", 1)


def test_a_full_reservation_leaves_the_other_offers_to_the_pool() -> None:
    # R_A's one slot holds a live node (of another pool): the node goes to spot, and R_A is not a fallback.
    (p,) = decide(PoolSpec("p", "A100", 1), 1, [R_A, AWS, GCP], fleet=[node("other", R_A)]).placements
    assert p.offer == AWS
    assert p.fallbacks == (GCP,)


def test_full_reservations_are_named_when_nothing_else_is_allowed() -> None:
    pool = PoolSpec("p", "A100", 1, capacity_types=(CapacityType.RESERVED,))
    offers = [R_B, R_A, AWS]
    full = place(pool, 1, offers, [node("x", R_A, 1), node("x", R_B, 2)], now=0.0)
    assert full == Infeasible(pool="p", reasons=(
        "pool 'p': capacity_types: every slot of the matching reservation(s) "
        f"{R_A.offer_id}, {R_B.offer_id} is in use; allow 'on-demand' or 'spot' to go beyond them",
    ))
    # three nodes asked, two slots free: the third finds both taken by this request
    taken = place(pool, 3, offers, now=0.0)
    assert taken == Infeasible(pool="p", reasons=(
        "pool 'p': capacity_types: every slot of the matching reservation(s) "
        f"{R_A.offer_id}, {R_B.offer_id} is taken by this request; allow 'on-demand' or 'spot' "
        "to go beyond them",
    ))


def test_on_demand_nodes_placed_in_this_call_count_one_each() -> None:
    # min_on_demand=2, nothing live: two on-demand nodes, then the cheapest (spot).
    pool = PoolSpec("p", "A100", 1, min_on_demand=2)
    placed = decide(pool, 3, [AWS, AWS_OD]).placements
    assert [p.offer for p in placed] == [AWS_OD, AWS_OD, AWS]
    # one live on-demand node: one more on-demand, then spot
    placed = decide(pool, 2, [AWS, AWS_OD], fleet=[node("p", AWS_OD)]).placements
    assert [p.offer for p in placed] == [AWS_OD, AWS]


def test_a_pool_without_a_gang_gives_every_node_the_same_reasons() -> None:
    answer = decide(PoolSpec("p", "A100", 1), 2, [AWS, GCP])
    assert answer.pool == "p"
    first, second = answer.placements
    assert first.reasons == second.reasons == (
        "cheapest spot A100x1 matching pool 'p': aws us-east-1a m1 $1.00/h (on-demand $4.00/h, 75% off)",
        "fallbacks: 1 in other clouds",
    )


# ------------------------------------------------------------------ gangs: fallbacks of the anchored nodes

HEAD = "cheapest spot A100x1 matching pool 'g': aws us-east-1a m1 $1.00/h (on-demand $4.00/h, 75% off)"
HERE = "colocate=zone: with the pool's other node(s) in aws/us-east-1/us-east-1a"


def test_the_first_gang_node_fails_over_as_usual_and_the_rest_within_its_zone() -> None:
    pool = PoolSpec("g", "A100", 1, colocate=Colocate.ZONE)
    first, second = decide(pool, 2, [CHOSEN, ZONE_B, OTHER_TYPE, GCP_F]).placements
    # the first node anchors the gang: the usual tiers (zone b, then m2 in aws, then gcp)
    assert first.offer == CHOSEN
    assert first.fallbacks == (ZONE_B, OTHER_TYPE, GCP_F)
    assert first.reasons == (
        HEAD, "fallbacks: 1 other zone(s) of us-east-1, then 1 more in aws, then 1 in other clouds"
    )
    # the second stays in us-east-1a, and so do its fallbacks (m2 there)
    assert second.offer == CHOSEN
    assert second.fallbacks == (OTHER_TYPE,)
    assert second.reasons == (HEAD, HERE, "fallbacks: 1 within aws/us-east-1/us-east-1a")


def test_a_gang_node_with_no_fallback_in_its_zone_says_nothing_of_fallbacks() -> None:
    pool = PoolSpec("g", "A100", 1, colocate=Colocate.ZONE)
    _, second = decide(pool, 2, [CHOSEN, GCP_F]).placements
    assert second.fallbacks == ()
    assert second.reasons == (HEAD, HERE)


# ------------------------------------------------------------------ check_pool


def test_check_pool_names_each_contradiction() -> None:
    # contradictions are reported alone: the unknown accelerator is not diagnosed after them
    empty = PoolSpec("p", "B200", 1, capacity_types=())
    assert check_pool(empty, [AWS]) == [
        PoolProblem("capacity_types", "is empty; allow at least one of 'spot', 'on-demand'")
    ]
    spot_only = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_on_demand=1)
    (problem,) = check_pool(spot_only, [AWS, AWS_OD])
    assert str(problem) == (
        "min_on_demand: asks for 1 on-demand node(s) but capacity_types ['spot'] excludes on-demand; "
        "add 'on-demand' or set it to 0"
    )
    # clouds counted case-insensitively: aws and AWS are one cloud, so 2 allowed for 3 asked
    all_three = PoolSpec("p", "A100", 1, capacity_types=(), min_on_demand=2, clouds=("aws", "AWS", "gcp"),
                         min_clouds=3)
    assert check_pool(all_three, [AWS, GCP, AZ]) == [
        PoolProblem("capacity_types", "is empty; allow at least one of 'spot', 'on-demand'"),
        PoolProblem("min_on_demand", "asks for 2 on-demand node(s) but capacity_types [] excludes on-demand; "
                    "add 'on-demand' or set it to 0"),
        PoolProblem("min_clouds", "is 3 but clouds allows only ['aws', 'AWS', 'gcp']; "
                    "allow more clouds or lower it"),
    ]


def test_check_pool_counts_the_clouds_with_matching_offers() -> None:
    two = PoolSpec("p", "A100", 1, clouds=("aws", "gcp"), min_clouds=2)  # exactly as many as allowed
    assert check_pool(two, [AWS, GCP, AZ]) == []
    assert check_pool(two, [AWS, AWS_OD, AZ]) == [
        PoolProblem("min_clouds", "is 2 but only 1 cloud(s) have matching offers (aws); "
                    "widen the pool's other limits or lower min_clouds")
    ]
    three = PoolSpec("p", "A100", 1, min_clouds=3)
    assert check_pool(three, [AWS, GCP]) == [
        PoolProblem("min_clouds", "is 3 but only 2 cloud(s) have matching offers (aws, gcp); "
                    "widen the pool's other limits or lower min_clouds")
    ]


def test_check_pool_when_no_offer_has_the_pool_s_kind_of_machine() -> None:
    # a CPU-only pool over GPU offers; a GPU pool over a catalog with no GPU at all
    assert check_pool(PoolSpec("c"), [AWS, GCP]) == [
        PoolProblem("accelerator", "no CPU-only offers; set an accelerator or add CPU offers")
    ]
    assert check_pool(PoolSpec("p", "B200", 1), [CPU]) == [
        PoolProblem("accelerator", "no offers for accelerator 'B200' (known: none)")
    ]


def test_the_diagnosis_names_the_stages_passed_and_the_one_that_failed() -> None:
    two = [AWS, GCP]  # 1 GPU, 8 vCPUs, 64 GiB each; aws us-east-1 and gcp us-central1
    regions = " (regions with offers: us-central1, us-east-1)"
    assert check_pool(PoolSpec("p", "A100", 2), two) == [
        PoolProblem("accelerator_count", "2 A100 offers, none with at least 2 GPUs (largest: 1)")
    ]
    assert check_pool(PoolSpec("p", "A100", 1, min_vcpus=16), two) == [
        PoolProblem("min_vcpus",
                    "2 A100 offers with at least 1 GPU, none with at least 16 vCPUs (largest: 8)")
    ]
    assert check_pool(PoolSpec("p", "A100", 1, min_memory_gib=65), two) == [
        PoolProblem("min_memory_gib",
                    "2 A100 offers with at least 1 GPU, none with at least 65 GiB memory (largest: 64 GiB)")
    ]
    # every stage at its smallest positive limit is a stage, and is named when passed
    small = PoolSpec("p", "A100", 1, min_vcpus=1, min_memory_gib=1, regions=("x",))
    assert check_pool(small, two) == [PoolProblem(
        "regions",
        "2 A100 offers with at least 1 GPU with at least 1 vCPUs with at least 1 GiB memory, "
        "none in allowed regions ['x']" + regions,
    )]
    # a GPU pool asking for no particular count has no GPU-count stage
    assert check_pool(PoolSpec("p", "A100", 0, regions=("x",)), two) == [
        PoolProblem("regions", "2 A100 offers, none in allowed regions ['x']" + regions)
    ]
    # whole numbers are written whole, however large (not 2e+06)
    assert check_pool(PoolSpec("p", "A100", 1, min_memory_gib=2_000_000), two) == [
        PoolProblem("min_memory_gib",
                    "2 A100 offers with at least 1 GPU, none with at least 2000000 GiB memory "
                    "(largest: 64 GiB)")
    ]
    assert check_pool(PoolSpec("c", min_vcpus=16), [CPU]) == [
        PoolProblem("min_vcpus", "1 CPU-only offers, none with at least 16 vCPUs (largest: 8)")
    ]


def test_the_zone_tier_admits_zones_exactly_at_every_limit() -> None:
    # Zone b sits exactly at each of the pool's limits (8 vCPUs, 64 GiB, 1 GPU, price cap 1.1):
    # it is re-checked against the pool and admitted as a zone fallback, not found later in tier 2.
    pool = PoolSpec("p", "A100", 1, min_vcpus=8, min_memory_gib=64, clouds=("AWS",), regions=("us-east-1",),
                    capacity_types=(SPOT,), max_price_per_hour=1.1)
    (p,) = decide(pool, 1, [CHOSEN, ZONE_B, OTHER_TYPE, AWS_OD]).placements
    assert p.offer == CHOSEN
    assert p.fallbacks == (ZONE_B,)
    assert p.reasons[-1] == "fallbacks: 1 other zone(s) of us-east-1"
    # a glob region admits it the same way
    (p,) = decide(replace(pool, regions=("us-e*",)), 1, [CHOSEN, ZONE_B]).placements
    assert p.reasons[-1] == "fallbacks: 1 other zone(s) of us-east-1"


# ------------------------------------------------------------------ how offers and prices are written


def test_money_keeps_cents_from_ten_cents_up_and_four_decimals_below() -> None:
    assert [money(x) for x in (0.0, 0.1, 0.918, 1234.5, 0.05, 0.09999)] == [
        "$0.00", "$0.10", "$0.92", "$1,234.50", "$0.0500", "$0.1000"]


def test_describe_offer_writes_every_kind_of_offer() -> None:
    assert describe_offer(AWS_OD) == "aws us-east-1a m1 $2.00/h"
    assert describe_offer(GCP) == "gcp us-central1 m1 $1.20/h (on-demand $4.80/h, 75% off)"  # regional
    assert describe_offer(R_A) == (
        "aws us-east-1a m1 reserved (1 committed at $1.50/h, paid whether used or not: $0/h marginal; "
        "on-demand $3.00/h)"
    )
    shared = replace(AWS_OD, price_scope="gpu_share", price_per_hour=0.05)
    assert describe_offer(shared) == "aws us-east-1a m1 $0.0500/h [price scope gpu_share]"
    assert describe_offer(replace(AWS_OD, price_scope="full_vm_linux")) == "aws us-east-1a m1 $2.00/h"
    stale = replace(AWS_OD, stale=True)
    assert describe_offer(stale) == (
        "aws us-east-1a m1 $2.00/h [stale price: its live feed failed or it is too old]"
    )
    seen = replace(stale, as_of=1_796_083_200.0 + 8 * 3600 + 5 * 60)  # 2026-12-01 00:00 UTC + 8 h 5 min
    assert describe_offer(seen) == (
        "aws us-east-1a m1 $2.00/h [stale price: its live feed failed or it is too old, "
        "last seen 2026-12-01T08:05Z]"
    )


# ------------------------------------------------------------------ CPU-only pools and the index


def test_a_cpu_only_pool_ignores_a_gpu_count() -> None:
    # no accelerator: only CPU-only offers match, whatever accelerator_count says
    (p,) = decide(PoolSpec("c", accelerator_count=1), 1, [CPU, AWS]).placements
    assert p.offer == CPU
    assert matching_offers(PoolSpec("c", accelerator_count=1), [CPU, AWS]) == [CPU]


def test_canonical_accelerator_is_none_for_an_empty_or_unknown_name() -> None:
    index = OfferIndex.build([CPU, AWS])
    assert (len(index), len(OfferIndex.build([])), len(OfferIndex())) == (2, 0, 0)
    assert index.canonical_accelerator("a100") == "A100"
    assert index.canonical_accelerator("") is None  # CPU-only offers have no accelerator name
    assert index.canonical_accelerator("  ") is None
    assert index.canonical_accelerator("B200") is None
    assert index.accelerators() == ("A100",)


def test_a_bare_star_region_is_no_stage_at_all() -> None:
    # regions ["*"] allows every region: the diagnosis does not list it among the stages passed
    pool = PoolSpec("p", "A100", 1, regions=("*",), max_price_per_hour=0.5)
    assert check_pool(pool, [AWS, GCP]) == [PoolProblem(
        "max_price_per_hour",
        "2 A100 offers with at least 1 GPU, none at or below $0.50/h "
        "(cheapest matching is aws us-east-1a m1 $1.00/h (on-demand $4.00/h, 75% off))",
    )]


@pytest.mark.usefixtures("far_local_zone")
def test_a_stale_price_is_dated_in_utc_whatever_the_local_zone() -> None:
    seen = replace(AWS_OD, stale=True, as_of=1_796_083_200.0 + 8 * 3600 + 5 * 60)  # 2026-12-01 08:05 UTC
    assert describe_offer(seen).endswith(", last seen 2026-12-01T08:05Z]")
