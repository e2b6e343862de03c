"""Table-driven tests of the pure placement policy, over literal offers and over real catalog rows."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from ray_multicloud.policy import OfferIndex, check_pool, matching_offers, place
from ray_multicloud.pricing import load_catalog
from ray_multicloud.types import (
    CapacityType,
    Decision,
    FleetNode,
    Infeasible,
    InstanceId,
    NodeState,
    Offer,
    OfferId,
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
    od: float | None = None,
    itype: str = "m1",
    acc: str = "A100",
    n: float = 1,
    vcpus: float = 8,
    mem: float = 64,
) -> Offer:
    return Offer(
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type=itype,
        accelerator=acc,
        accelerator_count=n,
        vcpus=vcpus,
        memory_gib=mem,
        capacity=cap,
        price_per_hour=price,
        ondemand_price_per_hour=od if od is not None else (price if cap is OD else price * 3),
    )


def decide(pool: PoolSpec, count: int, offers: Sequence[Offer] | OfferIndex, **kw: object) -> Decision:
    answer = place(pool, count, offers, now=kw.pop("now", 1000.0), **kw)  # type: ignore[arg-type]
    assert isinstance(answer, Decision), answer
    return answer


def infeasible(pool: PoolSpec, offers: Sequence[Offer] | OfferIndex, **kw: object) -> Infeasible:
    answer = place(pool, 1, offers, now=kw.pop("now", 1000.0), **kw)  # type: ignore[arg-type]
    assert isinstance(answer, Infeasible), answer
    return answer


def node(pool: str, offer: Offer, i: int = 0, state: NodeState = NodeState.RUNNING) -> FleetNode:
    return FleetNode(InstanceId(f"i-{i}"), pool, offer, RequestId(f"r-{i}"), 0.0, state)


AWS_E1A = mk("aws", "us-east-1", "us-east-1a", 1.0)
AWS_E1A_OD = mk("aws", "us-east-1", "us-east-1a", 3.0, cap=OD)
AWS_W2A = mk("aws", "us-west-2", "us-west-2a", 1.5)
AWS_EU = mk("aws", "eu-west-1", "eu-west-1a", 2.0)
GCP_C1 = mk("gcp", "us-central1", "", 1.2)
GCP_C1_OD = mk("gcp", "us-central1", "", 2.5, cap=OD)
GCP_EU = mk("gcp", "europe-west4", "", 1.8)
AZ_E = mk("azure", "eastus", "", 1.4)
PRIV = mk("private", "onprem", "rack1", 5.0, cap=OD)
A100_80 = mk("gcp", "us-central1", "", 0.1, acc="A100-80GB")
BIG = mk("aws", "us-east-1", "us-east-1b", 4.0, itype="m8", n=8, vcpus=96, mem=1152)
LITERAL = [AWS_E1A, AWS_E1A_OD, AWS_W2A, AWS_EU, GCP_C1, GCP_C1_OD, GCP_EU, AZ_E, PRIV, A100_80, BIG]


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        pytest.param(PoolSpec("p", "A100", 1), AWS_E1A, id="cheapest-wins"),
        pytest.param(PoolSpec("p", "a100", 1), AWS_E1A, id="accelerator-case-insensitive"),
        pytest.param(PoolSpec("p", "A100-80GB", 1), A100_80, id="exact-name-a100-80gb"),
        pytest.param(PoolSpec("p", "A100", 1, capacity_types=(OD,)), GCP_C1_OD, id="capacity-on-demand-only"),
        pytest.param(PoolSpec("p", "A100", 1, regions=("eu-*",)), AWS_EU, id="region-glob"),
        pytest.param(PoolSpec("p", "A100", 1, regions=("europe-west4",)), GCP_EU, id="region-exact"),
        pytest.param(PoolSpec("p", "A100", 1, regions=("*",)), AWS_E1A, id="region-star-is-any"),
        pytest.param(PoolSpec("p", "A100", 1, clouds=("gcp", "azure")), GCP_C1, id="clouds"),
        pytest.param(PoolSpec("p", "A100", 2), BIG, id="count-at-least"),
        pytest.param(PoolSpec("p", "A100", 1, min_vcpus=16), BIG, id="min-vcpus"),
        pytest.param(PoolSpec("p", "A100", 1, min_memory_gib=128), BIG, id="min-memory"),
        pytest.param(
            PoolSpec("p", "A100", 1, source_preference=("private", "aws")), PRIV, id="private-first"
        ),
        pytest.param(
            PoolSpec("p", "A100", 1, source_preference=("private",), max_price_per_hour=2.0),
            AWS_E1A,
            id="max-price-beats-preference",
        ),
        pytest.param(
            PoolSpec("p", "A100", 1, source_preference=("gcp",), capacity_types=(SPOT,)),
            GCP_C1,
            id="preference-over-price",
        ),
        pytest.param(
            PoolSpec("p", "A100", 1, source_preference=("azure",), regions=("us-*",)),
            AWS_E1A,
            id="preferred-cloud-filtered-out-by-region",
        ),
    ],
)
def test_chooses(pool: PoolSpec, expected: Offer) -> None:
    (placement,) = decide(pool, 1, LITERAL).placements
    assert placement.offer == expected


def test_unlisted_clouds_come_after_listed_ones_by_price() -> None:
    pool = PoolSpec("p", "A100", 1, source_preference=("azure",), capacity_types=(SPOT,))
    ranked = matching_offers(pool, LITERAL)
    assert ranked[0] == AZ_E
    assert ranked[1:] == sorted(ranked[1:], key=lambda o: (o.price_per_hour, o.offer_id))


@pytest.mark.parametrize(
    ("now", "expected"),
    [(1000.0, GCP_C1), (1999.9, GCP_C1), (2000.0, AWS_E1A), (3000.0, AWS_E1A)],
    ids=["cooling", "just-before", "until-reached", "after"],
)
def test_cooldown(now: float, expected: Offer) -> None:
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), clouds=("aws", "gcp"))
    cooldowns = {AWS_E1A.offer_id: 2000.0}
    (placement,) = decide(pool, 1, LITERAL, now=now, cooldowns=cooldowns).placements
    assert placement.offer == expected
    assert AWS_E1A not in placement.fallbacks or now >= 2000.0


def test_reason_text_names_offer_price_and_discount() -> None:
    offer = mk("aws", "us-east-1", "us-east-1a", 0.918, itype="p3.2xlarge", od=3.06)
    (placement,) = decide(PoolSpec("gpu", "A100", 1), 1, [offer]).placements
    assert placement.reasons[0] == (
        "cheapest spot A100x1 matching pool 'gpu': aws us-east-1a p3.2xlarge $0.92/h (on-demand $3.06/h, 70% off)"
    )


# ---------------------------------------------------------------- spread and min_on_demand


def test_spread_over_two_clouds() -> None:
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_clouds=2)
    placements = decide(pool, 3, LITERAL).placements
    assert [p.offer for p in placements] == [AWS_E1A, GCP_C1, AWS_E1A]
    assert any(r.startswith("spread: gcp not yet covered") for r in placements[1].reasons)
    assert not any(r.startswith("spread") for r in placements[2].reasons)


def test_spread_counts_the_existing_fleet_of_this_pool_only() -> None:
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_clouds=2)
    fleet = [node("p", AWS_E1A, 1), node("other", GCP_C1, 2), node("p", AZ_E, 3, NodeState.DRAINING)]
    placements = decide(pool, 2, LITERAL, fleet=fleet).placements
    # aws is covered by a live node; gcp by another pool's node, azure by a draining one: neither counts.
    assert [p.offer for p in placements] == [GCP_C1, AWS_E1A]


def test_spread_already_met_by_fleet() -> None:
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), min_clouds=2)
    fleet = [node("p", AZ_E, 1), node("p", GCP_EU, 2)]
    assert [p.offer for p in decide(pool, 2, LITERAL, fleet=fleet).placements] == [AWS_E1A, AWS_E1A]


def test_spread_that_cannot_be_met_says_so() -> None:
    pool = PoolSpec("p", "A100", 1, clouds=("aws",), min_clouds=2)
    (placement,) = decide(pool, 1, LITERAL, fleet=[node("p", AWS_W2A)]).placements
    assert placement.offer == AWS_E1A
    assert any("min_clouds=2 unmet" in r for r in placement.reasons)


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [
        ((), [GCP_C1_OD, AWS_E1A, AWS_E1A]),
        ((node("p", AWS_E1A_OD),), [AWS_E1A, AWS_E1A, AWS_E1A]),
        ((node("p", AWS_E1A_OD, state=NodeState.TERMINATED),), [GCP_C1_OD, AWS_E1A, AWS_E1A]),
    ],
    ids=["empty-fleet", "fleet-has-on-demand", "terminated-does-not-count"],
)
def test_min_on_demand(fleet: tuple[FleetNode, ...], expected: list[Offer]) -> None:
    pool = PoolSpec("p", "A100", 1, clouds=("aws", "gcp"), min_on_demand=1)
    placements = decide(pool, 3, LITERAL, fleet=fleet).placements
    assert [p.offer for p in placements] == expected


def test_min_on_demand_and_spread_together() -> None:
    pool = PoolSpec("p", "A100", 1, clouds=("aws", "gcp"), min_on_demand=1, min_clouds=2)
    fleet = [node("p", GCP_C1)]
    placements = decide(pool, 2, LITERAL, fleet=fleet).placements
    # First node: on-demand in the uncovered cloud (aws); then cheapest anything.
    assert [p.offer for p in placements] == [AWS_E1A_OD, AWS_E1A]


# ---------------------------------------------------------------- infeasible


@pytest.mark.parametrize(
    ("pool", "kw", "fragments"),
    [
        (
            PoolSpec("p", "B200", 1),
            {},
            ["accelerator: no offers for accelerator 'B200'", "known: A100, A100-80GB"],
        ),
        (PoolSpec("p", "A100", 16), {}, ["accelerator_count:", "none with at least 16 GPUs", "(largest: 8)"]),
        (
            PoolSpec("p", "A100", 1, regions=("ap-*",)),
            {},
            ["regions: 10 A100 offers with at least 1 GPU, none in allowed regions ['ap-*']", "eu-west-1"],
        ),
        (PoolSpec("p", "A100", 1, clouds=("oracle",)), {}, ["clouds:", "none in allowed clouds ['oracle']"]),
        (
            PoolSpec("p", "A100", 1, clouds=("azure",), capacity_types=(OD,)),
            {},
            ["capacity_types:", "none of capacity types ['on-demand']", "(available: spot)"],
        ),
        (
            PoolSpec("p", "A100", 1, max_price_per_hour=0.5),
            {},
            [
                "max_price_per_hour:",
                "none at or below $0.50/h",
                "cheapest matching is aws us-east-1a m1 $1.00/h",
            ],
        ),
        (
            PoolSpec("p", "A100", 1, clouds=("azure",)),
            {"cooldowns": {AZ_E.offer_id: 1600.0}},
            ["cooldown: all 1 matching A100 offers are cooling down", "free again in 600 s"],
        ),
    ],
    ids=["unknown-accelerator", "gpu-count", "regions", "clouds", "capacity", "max-price", "cooldown"],
)
def test_infeasible_reasons_name_the_limit(
    pool: PoolSpec, kw: dict[str, object], fragments: list[str]
) -> None:
    answer = infeasible(pool, LITERAL, **kw)
    text = " ".join(answer.reasons)
    assert answer.pool == "p"
    for fragment in fragments:
        assert fragment in text, text


def test_count_zero_is_an_empty_decision() -> None:
    assert decide(PoolSpec("p", "A100", 1), 0, LITERAL).placements == ()
    with pytest.raises(ValueError):
        place(PoolSpec("p", "A100", 1), -1, LITERAL, now=0.0)


# ---------------------------------------------------------------- failover order


def test_fallbacks_go_zone_then_region_then_cloud() -> None:
    chosen = mk("aws", "us-east-1", "us-east-1a", 1.0)
    zone_c = mk("aws", "us-east-1", "us-east-1c", 1.1)
    zone_b = mk("aws", "us-east-1", "us-east-1b", 1.2)
    other_type = mk("aws", "us-east-1", "us-east-1a", 1.03, itype="m2")
    west = mk("aws", "us-west-2", "us-west-2a", 1.05)
    od = mk("aws", "us-east-1", "us-east-1a", 3.0, cap=OD)
    gcp = mk("gcp", "us-central1", "", 1.01)
    azure = mk("azure", "eastus", "", 1.02)
    offers = [gcp, od, west, zone_b, chosen, azure, zone_c, other_type]
    (placement,) = decide(PoolSpec("p", "A100", 1), 1, offers).placements
    assert placement.offer == chosen
    assert placement.fallbacks == (zone_c, zone_b, other_type, west, od, gcp, azure)
    assert placement.candidates[0] == chosen
    assert (
        "fallbacks: 2 other zone(s) of us-east-1, then 3 more in aws, then 2 in other clouds"
        in placement.reasons
    )

    (short,) = decide(PoolSpec("p", "A100", 1), 1, offers, max_fallbacks=3).placements
    assert short.fallbacks == (zone_c, zone_b, other_type)
    (none,) = decide(PoolSpec("p", "A100", 1), 1, offers, max_fallbacks=0).placements
    assert none.fallbacks == ()


def test_fallbacks_respect_the_pool_and_cooldowns() -> None:
    chosen = mk("aws", "us-east-1", "us-east-1a", 1.0)
    zone_b = mk("aws", "us-east-1", "us-east-1b", 1.2)
    zone_c_od = mk("aws", "us-east-1", "us-east-1c", 1.1, cap=OD)
    gcp = mk("gcp", "us-central1", "", 1.01)
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,))
    (placement,) = decide(
        pool, 1, [chosen, zone_b, zone_c_od, gcp], cooldowns={zone_b.offer_id: 5000.0}
    ).placements
    assert placement.fallbacks == (gcp,)


# ---------------------------------------------------------------- determinism


def test_ties_break_by_offer_id_whatever_the_input_order() -> None:
    tied = [
        mk(c, r, z, 1.0)
        for c, r, z in [("gcp", "b", ""), ("aws", "z", "z1"), ("aws", "a", "a1"), ("azure", "c", "")]
    ]
    answers = set()
    for seed in range(5):
        shuffled = list(tied)
        random.Random(seed).shuffle(shuffled)
        (placement,) = decide(PoolSpec("p", "A100", 1), 1, shuffled).placements
        answers.add((placement.offer.offer_id, tuple(o.offer_id for o in placement.fallbacks)))
    assert answers == {
        (
            OfferId("aws/a/a1/m1/spot"),
            (OfferId("aws/z/z1/m1/spot"), OfferId("azure/c/-/m1/spot"), OfferId("gcp/b/-/m1/spot")),
        )
    }


def test_index_and_sequence_give_the_same_decision() -> None:
    pool = PoolSpec("p", "A100", 1, min_clouds=3, min_on_demand=1)
    assert decide(pool, 4, LITERAL) == decide(pool, 4, OfferIndex.build(LITERAL))


# ---------------------------------------------------------------- real catalog rows


@pytest.fixture(scope="module")
def real() -> OfferIndex:
    return OfferIndex.build(load_catalog().offers)


@pytest.mark.parametrize(
    ("pool", "expected_id", "price"),
    [
        # line 170: aws,eu-north-1,eun1-az3,p4d.24xlarge,A100,8,...,23.71569,6.1657
        (PoolSpec("p", "A100", 8, regions=("eu-*",), capacity_types=(SPOT,)), "aws/eu-north-1/eun1-az3/p4d.24xlarge/spot", 6.1657),
        # line 209: aws eu-north-1 eun1-az3 p5.48xlarge H100x8 spot 28.3188 (eun1-az1/az2 have no spot price)
        (PoolSpec("p", "H100", 8, clouds=("aws",), regions=("eu-north-1",), capacity_types=(SPOT,)),
         "aws/eu-north-1/eun1-az3/p5.48xlarge/spot", 28.3188),
        # line 188's spot (above on-demand) is gone: only its on-demand offer is left in apse1-az3.
        (PoolSpec("p", "A100-80GB", 8, regions=("ap-southeast-1",), capacity_types=(OD,), clouds=("aws",)),
         "aws/ap-southeast-1/apse1-az2/p4de.24xlarge/on-demand", 32.93646),
    ],
    ids=["a100x8-spot-eu", "h100x8-aws-eu-north-1", "a100-80gb-ap-southeast-1-on-demand"],
)  # fmt: skip
def test_real_catalog_rows(real: OfferIndex, pool: PoolSpec, expected_id: str, price: float) -> None:
    (placement,) = decide(pool, 1, real).placements
    assert placement.offer.offer_id == expected_id
    assert placement.offer.price_per_hour == price


def _brute_force(pool: PoolSpec, offers: Sequence[Offer]) -> Offer | None:
    def ok(o: Offer) -> bool:
        region_ok = not pool.regions or any(
            o.region.startswith(r[:-1]) if r.endswith("*") else o.region == r for r in pool.regions
        )
        return (
            o.accelerator.lower() == (pool.accelerator or "").lower()
            and o.accelerator_count >= pool.accelerator_count
            and (not pool.clouds or o.cloud in pool.clouds)
            and region_ok
            and o.capacity in pool.capacity_types
            and (pool.max_price_per_hour is None or o.price_per_hour <= pool.max_price_per_hour)
        )

    rank = {c: i for i, c in enumerate(pool.source_preference)}
    ok_offers = [o for o in offers if ok(o)]
    if not ok_offers:
        return None
    return min(ok_offers, key=lambda o: (rank.get(o.cloud, len(rank)), o.price_per_hour, o.offer_id))


POOLS = [
    PoolSpec("a", "A100", 1),
    PoolSpec("b", "A100", 8, capacity_types=(OD,)),
    PoolSpec("c", "H100", 8, regions=("us-*", "europe-*")),
    PoolSpec("d", "L4", 1, clouds=("gcp",), regions=("asia-*",), capacity_types=(SPOT,)),
    PoolSpec("e", "T4", 1, source_preference=("azure", "aws")),
    PoolSpec("f", "V100", 1, max_price_per_hour=1.0),
    PoolSpec("g", "A100-80GB", 4, regions=("us-central1", "us-east4")),
    PoolSpec("h", "H100", 1, source_preference=("gcp",), capacity_types=(OD,)),
    PoolSpec("i", "RTXPRO6000", 0.25),
    PoolSpec("j", "H100", 16),
]


@pytest.mark.parametrize("pool", POOLS, ids=[p.name for p in POOLS])
def test_real_catalog_matches_brute_force(real: OfferIndex, pool: PoolSpec) -> None:
    expected = _brute_force(pool, load_catalog().offers)
    answer = place(pool, 1, real, now=0.0)
    if expected is None:
        assert isinstance(answer, Infeasible)
        assert check_pool(pool, real)
    else:
        assert isinstance(answer, Decision), answer
        assert answer.placements[0].offer == expected
        assert not check_pool(pool, real)


def test_real_catalog_spread_covers_three_clouds(real: OfferIndex) -> None:
    pool = PoolSpec("s", "A100", 8, capacity_types=(SPOT,), min_clouds=3)
    placements = decide(pool, 3, real).placements
    assert {p.offer.cloud for p in placements} == {"aws", "gcp", "azure"}
    assert all(len(p.fallbacks) == 8 for p in placements)


# --- boundaries of the price cap and of region names (issue 12, item 5) ------------------------

GCP_EW1 = mk("gcp", "europe-west1", "europe-west1-b", 1.4)
GCP_EW10 = mk("gcp", "europe-west10", "europe-west10-a", 0.9)


def test_offer_priced_exactly_at_the_cap_is_admitted() -> None:
    pool = PoolSpec("p", "A100", 1, max_price_per_hour=1.0)  # AWS_E1A costs exactly 1.0
    offers = [AWS_E1A, AWS_W2A, GCP_C1]
    assert [p.offer for p in decide(pool, 1, offers).placements] == [AWS_E1A]
    assert matching_offers(pool, offers) == [AWS_E1A]
    assert check_pool(pool, offers) == []  # the diagnosis path admits it too
    below = PoolSpec("p", "A100", 1, max_price_per_hour=0.99)
    assert [p.key for p in check_pool(below, offers)] == ["max_price_per_hour"]


def test_region_names_match_whole_not_as_prefixes() -> None:
    # europe-west1 must not admit europe-west10 (cheaper here); a trailing * is the only prefix form.
    offers = [GCP_EW1, GCP_EW10]
    exact = PoolSpec("p", "A100", 1, regions=("europe-west1",))
    assert [p.offer for p in decide(exact, 1, offers).placements] == [GCP_EW1]
    assert matching_offers(exact, offers) == [GCP_EW1]
    only_10 = [GCP_EW10]
    assert [p.key for p in check_pool(exact, only_10)] == ["regions"]
    assert matching_offers(PoolSpec("p", "A100", 1, regions=("europe-west10",)), offers) == [GCP_EW10]
    glob = PoolSpec("p", "A100", 1, regions=("europe-west1*",))
    assert matching_offers(glob, offers) == [GCP_EW10, GCP_EW1]


def test_infeasible_hints_name_what_the_candidates_offer() -> None:
    # Found by mutmut: each hint's text, by hand from the offers below.
    from ray_multicloud.policy.place import _hint

    pool = PoolSpec("p", "A100", 1)
    rem = [mk("aws", "us-east-1", "us-east-1a", 1.0, vcpus=8, mem=64),
           mk("gcp", "us-central1", "", 2.0, vcpus=96, mem=1152.5, cap=OD)]
    assert _hint("min_vcpus", rem, pool) == " (largest: 96)"
    assert _hint("min_memory_gib", rem, pool) == " (largest: 1152.5 GiB)"
    assert _hint("clouds", rem, pool) == " (clouds with offers: aws, gcp)"
    assert _hint("capacity_types", rem, pool) == " (available: on-demand, spot)"
    assert _hint("regions", rem, pool) == " (regions with offers: us-central1, us-east-1)"
    assert _hint("cooldown", rem, pool) == ""
    # more than 8 regions: the first 8 by name, then how many more (r0..r9: 10, so 2 more)
    many = [mk("aws", f"r{i}", f"r{i}a", 1.0) for i in range(10)]
    first8 = " (regions with offers: r0, r1, r2, r3, r4, r5, r6, r7"
    assert _hint("regions", many, pool) == first8 + ", ... 2 more)"
    assert _hint("regions", many[:9], pool) == first8 + ", ... 1 more)"
    # exactly 8: all of them, nothing more
    assert _hint("regions", many[:8], pool) == " (regions with offers: r0, r1, r2, r3, r4, r5, r6, r7)"


def test_gang_anchor_is_the_place_with_most_live_nodes_then_the_best_ranked() -> None:
    # Found by mutmut: the anchor's two rules, on clouds. Ranked: aws (1.0) before gcp (2.0).
    from ray_multicloud.policy.place import _colocated
    from ray_multicloud.types import Colocate

    pool = PoolSpec("p", "A100", 1, colocate=Colocate.CLOUD)
    aws, gcp = mk("aws", "us-east-1", "us-east-1a", 1.0), mk("gcp", "us-central1", "", 2.0)
    ranked = [aws, gcp]
    # most live nodes wins even though it ranks second (2 on gcp, 1 on aws)
    here, why = _colocated(pool, ranked, [aws, gcp, gcp])
    assert (here, why) == ([gcp], "colocate=cloud: with the pool's other node(s) in gcp")
    # a tie (1 and 1): the place whose offer ranks first, whatever order the live nodes come in
    assert _colocated(pool, ranked, [gcp, aws])[0] == [aws]
    # a place not in the ranking loses a tie to one that is (azure: no offer left)
    azure = mk("azure", "eastus", "", 1.5)
    assert _colocated(pool, ranked, [azure, gcp])[0] == [gcp]


def test_offers_for_an_unknown_accelerator_is_empty() -> None:
    assert OfferIndex.build(LITERAL).offers_for("B200") == ()


@pytest.mark.parametrize(
    ("now", "cooling"), [(1999.9, True), (2000.0, False), (None, False)], ids=["cooling", "until", "no-clock"]
)
def test_matching_offers_leaves_out_offers_cooling_down(now: float | None, cooling: bool) -> None:
    # Found by mutmut (``matching_offers`` 11, 14, 16, 17: the cooldowns were never passed in a
    # test). AWS_E1A (1.0 USD/h, the cheapest spot A100 of aws/gcp) cools down until t = 2000:
    # left out before then; at 2000 free again; without a clock, nothing is cooling down.
    pool = PoolSpec("p", "A100", 1, capacity_types=(SPOT,), clouds=("aws", "gcp"))
    ranked = matching_offers(pool, LITERAL, now=now, cooldowns={AWS_E1A.offer_id: 2000.0})
    assert (AWS_E1A not in ranked) is cooling
    assert ranked[0] == (GCP_C1 if cooling else AWS_E1A)


def test_gang_placed_apart_says_so_exactly() -> None:
    # Found by mutmut (``_colocated`` 35: the reason was only matched as a substring). The live
    # node is on azure, where no offer is left: the whole ranking stays, and the reason says why.
    from ray_multicloud.policy.place import _colocated
    from ray_multicloud.types import Colocate

    pool = PoolSpec("p", "A100", 1, colocate=Colocate.CLOUD)
    aws, azure = mk("aws", "us-east-1", "us-east-1a", 1.0), mk("azure", "eastus", "", 1.5)
    assert _colocated(pool, [aws], [azure]) == (
        [aws],
        "colocate=cloud: no matching offer left in azure (capacity or cooldown); "
        "placed apart until the controller moves the gang together",
    )
