"""Reserved capacity (issue 15, item 3): declared commitments are read from the YAML, matched to the
catalogue, filled first at $0 marginal while slots are free, and recorded at their term price."""

from __future__ import annotations

import calendar
import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cluster_config.reservations import parse_reservations, reserved_offers
from ray_multicloud.dry_run import dry_run
from ray_multicloud.errors import ConfigError
from ray_multicloud.ledger import Ledger
from ray_multicloud.policy.place import full_reservations, place
from ray_multicloud.types import (
    CapacityType,
    Decision,
    FleetNode,
    Infeasible,
    InstanceId,
    NodeState,
    Offer,
    PoolSpec,
    RequestId,
    Reservation,
)

ROOT = Path(__file__).resolve().parents[1]
LOCAL = yaml.safe_load((ROOT / "cluster_configs" / "local-multicloud.yaml").read_text())
H = 3600.0
KEY = "provider.reservations[0]"


def od(zone: str, itype: str = "g4dn.xlarge", price: float = 0.526, region: str = "us-east-1") -> Offer:
    return Offer("aws", region, zone, itype, "T4", 1, 4, 16, CapacityType.ON_DEMAND, price, price)


def spot(zone: str, price: float) -> Offer:
    return Offer("aws", "us-east-1", zone, "g4dn.xlarge", "T4", 1, 4, 16, CapacityType.SPOT, price, 0.526)


CATALOGUE = [od("use1-az2"), od("use1-az1"), od("usw2-az1", region="us-west-2"),
             od("use1-az1", itype="g5.xlarge", price=1.006), spot("use1-az1", 0.2158), spot("use1-az2", 0.2)]


def declared(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"cloud": "aws", "instance_type": "g4dn.xlarge", "region": "us-east-1", "count": 2,
                            "term_price_per_hour": 0.33}
    item.update(changes)
    return item


# --------------------------------------------------------------------------- reading the YAML


def test_reads_the_issue_example_with_a_yaml_date() -> None:
    text = """
reservations:
  - {cloud: aws, instance_type: p3.2xlarge, region: us-east-1, count: 2, term_price_per_hour: 1.95,
     ends: 2027-06-30, team: ml-research}
"""
    (r,) = parse_reservations(yaml.safe_load(text))
    assert r == Reservation(cloud="aws", instance_type="p3.2xlarge", region="us-east-1", count=2,
                            term_price_per_hour=1.95, ends=float(calendar.timegm((2027, 6, 30, 0, 0, 0))),
                            team="ml-research", key="provider.reservations[0]")
    assert r.active(calendar.timegm((2027, 6, 29, 23, 0, 0)))
    assert not r.active(calendar.timegm((2027, 6, 30, 0, 0, 0)))


def test_absent_means_none() -> None:
    assert parse_reservations({}) == ()


@pytest.mark.parametrize(
    ("item", "key", "fragment"),
    [
        (declared(count=0), "provider.reservations[0].count", "whole number of nodes >= 1"),
        (declared(count=True), "provider.reservations[0].count", "whole number"),
        (declared(count=1.5), "provider.reservations[0].count", "whole number"),
        (declared(term_price_per_hour=-1), "provider.reservations[0].term_price_per_hour", ">= 0"),
        (declared(term_price_per_hour="1.95"), "provider.reservations[0].term_price_per_hour", "number"),
        (declared(term_price_per_hour=float("nan")), "provider.reservations[0].term_price_per_hour",
         "finite"),
        (declared(ends="next year"), "provider.reservations[0].ends", "YYYY-MM-DD"),
        (declared(starts=dt.date(2027, 1, 1), ends=dt.date(2026, 1, 1)), "provider.reservations[0].ends",
         "not after starts"),
        (declared(cloud=""), "provider.reservations[0].cloud", "non-empty string"),
        (declared(price=1.0), "provider.reservations[0].price", "unknown key"),
        ({"cloud": "aws"}, "provider.reservations[0].instance_type", "missing"),
    ],
)
def test_bad_reservations_name_the_key(item: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_reservations({"reservations": [item]})
    assert err.value.key == key
    assert fragment in str(err.value)


def test_not_a_list_names_the_section() -> None:
    with pytest.raises(ConfigError) as err:
        parse_reservations({"reservations": declared()})
    assert err.value.key == "provider.reservations"


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.text(max_size=12), st.dates(), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["cloud", "instance_type", "region", "count", "term_price_per_hour",
                                        "zone", "starts", "ends", "team", "other"]), _values, max_size=10))
def test_any_reservation_is_read_or_refused_naming_its_key(item: dict[str, Any]) -> None:
    """Whatever a user writes, the reader returns reservations it checked, or a ConfigError whose key is
    inside provider.reservations; never another exception."""
    try:
        (r,) = parse_reservations({"reservations": [item]})
    except ConfigError as exc:
        assert exc.key.startswith("provider.reservations[0]")
        return
    assert r.count >= 1 and r.term_price_per_hour >= 0
    assert r.cloud and r.instance_type and r.region


# --------------------------------------------------------------------------- matching the catalogue


def test_reserved_offer_is_the_first_zone_at_zero_marginal_and_its_term_price_paid() -> None:
    (r,) = parse_reservations({"reservations": [declared()]})
    (offer,) = reserved_offers([r], CATALOGUE)
    assert offer.offer_id == "aws/us-east-1/use1-az1/g4dn.xlarge/reserved"
    assert offer.price_per_hour == 0.0
    assert offer.paid_price_per_hour == 0.33
    assert offer.ondemand_price_per_hour == 0.526
    assert offer.reserved_count == 2
    assert offer.capacity.market == "on-demand"


def test_a_zonal_reservation_keeps_its_zone() -> None:
    (r,) = parse_reservations({"reservations": [declared(zone="use1-az2")]})
    assert reserved_offers([r], CATALOGUE)[0].zone == "use1-az2"


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"instance_type": "p3.2xlarge"}, f"{KEY}.instance_type", "'p3.2xlarge' matches no"),
        ({"instance_type": "g4dn.xlargee"}, f"{KEY}.instance_type", "did you mean 'g4dn.xlarge'"),
        ({"region": "eu-west-1"}, "provider.reservations[0].region", "us-east-1, us-west-2"),
        ({"cloud": "gcp"}, "provider.reservations[0].cloud", "offered: aws"),
        ({"zone": "use1-az9"}, "provider.reservations[0].zone", "use1-az1, use1-az2"),
    ],
)
def test_a_reservation_matching_no_offer_names_its_key(
    changes: dict[str, Any], key: str, fragment: str
) -> None:
    (r,) = parse_reservations({"reservations": [declared(**changes)]})
    with pytest.raises(ConfigError) as err:
        reserved_offers([r], CATALOGUE)
    assert err.value.key == key
    assert fragment in str(err.value)


def test_expired_reservations_sell_nothing_and_overlapping_ones_are_refused() -> None:
    old, new = parse_reservations({"reservations": [declared(ends=dt.date(2025, 1, 1)),
                                                    declared(starts=dt.date(2025, 1, 1))]})
    now = calendar.timegm((2026, 1, 1, 0, 0, 0))
    assert [o.source for o in reserved_offers([old, new], CATALOGUE, now=now)] == ["provider.reservations[1]"]
    twice = parse_reservations({"reservations": [declared(), declared(count=1)]})
    with pytest.raises(ConfigError) as err:
        reserved_offers(twice, CATALOGUE)
    assert err.value.key == "provider.reservations[1]"


# --------------------------------------------------------------------------- placement


def _reserved(count: int) -> Offer:
    (r,) = parse_reservations({"reservations": [declared(count=count)]})
    return reserved_offers([r], CATALOGUE)[0]


def _node(i: int, offer: Offer, pool: str = "other", state: NodeState = NodeState.RUNNING) -> FleetNode:
    return FleetNode(InstanceId(f"i-{i}"), pool, offer, RequestId(f"r{i}"), 0.0, state)


def test_reserved_slots_are_filled_first_then_the_cheapest_spot() -> None:
    offers = [*CATALOGUE, _reserved(2)]
    pool = PoolSpec("t4", accelerator="T4", accelerator_count=1)
    decision = place(pool, 3, offers, now=0.0)
    assert isinstance(decision, Decision)
    ids = [p.offer.offer_id for p in decision.placements]
    # two reserved slots at $0 marginal, then spot use1-az2 at $0.20 (cheaper than az1's $0.2158)
    reserved = "aws/us-east-1/use1-az1/g4dn.xlarge/reserved"
    cheapest_spot = "aws/us-east-1/use1-az2/g4dn.xlarge/spot"
    assert ids == [reserved, reserved, cheapest_spot]
    assert "reserved slot 1 of 2" in " ".join(decision.placements[0].reasons)
    assert "reserved slot 2 of 2" in " ".join(decision.placements[1].reasons)
    assert all(o.capacity is not CapacityType.RESERVED for o in decision.placements[2].fallbacks)


def test_a_live_node_of_any_pool_takes_a_slot_and_ended_ones_do_not() -> None:
    reserved = _reserved(2)
    offers = [*CATALOGUE, reserved]
    pool = PoolSpec("t4", accelerator="T4", accelerator_count=1)
    fleet = [_node(1, reserved), _node(2, reserved, state=NodeState.TERMINATED)]
    decision = place(pool, 2, offers, fleet, now=0.0)
    assert isinstance(decision, Decision)
    assert [p.offer.capacity for p in decision.placements] == [CapacityType.RESERVED, CapacityType.SPOT]
    assert full_reservations(offers, fleet) == frozenset()
    assert full_reservations(offers, [*fleet, _node(3, reserved, state=NodeState.PENDING)]) == {
        reserved.offer_id}


def test_a_pool_without_reserved_in_its_capacity_types_does_not_use_it() -> None:
    offers = [*CATALOGUE, _reserved(2)]
    pool = PoolSpec("t4", accelerator="T4", capacity_types=(CapacityType.SPOT, CapacityType.ON_DEMAND))
    decision = place(pool, 1, offers, now=0.0)
    assert isinstance(decision, Decision)
    assert decision.placements[0].offer.offer_id == "aws/us-east-1/use1-az2/g4dn.xlarge/spot"


def test_a_reserved_only_pool_past_its_slots_is_infeasible_with_a_reason() -> None:
    reserved = _reserved(1)
    pool = PoolSpec("t4", accelerator="T4", capacity_types=(CapacityType.RESERVED,))
    full = place(pool, 1, [*CATALOGUE, reserved], [_node(1, reserved)], now=0.0)
    assert isinstance(full, Infeasible)
    assert "every slot" in full.reasons[0]
    two = place(pool, 2, [*CATALOGUE, reserved], now=0.0)
    assert isinstance(two, Infeasible)
    assert "taken by this request" in two.reasons[0]


# --------------------------------------------------------------------------- ledger and plan


def test_the_ledger_records_a_reserved_node_at_its_term_price(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.record_launch("i-1", "c", "t4", _reserved(2), "r", at=0.0, team="ml")
        (row,) = led.spend(until=2 * H)
    assert row.capacity == "reserved"
    assert row.cost_usd == pytest.approx(2 * 0.33)  # paid, not the $0 the decision saw
    assert row.ondemand_cost_usd == pytest.approx(2 * 0.526)
    assert row.team == "ml"


def _local_with_reservation(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(LOCAL)
    config["provider"]["reservations"] = [declared(count=1, **changes)]
    t4 = config["available_node_types"]["t4_spot"]
    t4["labels"].pop("ray.io/market-type")
    t4["node_config"]["pool"]["capacity_types"] = ["spot", "reserved"]
    t4["min_workers"] = 2
    return config


def test_plan_places_the_first_node_on_the_reservation() -> None:
    result = dry_run(_local_with_reservation(), now=calendar.timegm((2026, 11, 29, 0, 0, 0)))
    (pool,) = [p for p in result.pools if p.node_type == "t4_spot"]
    first, second = (p[0] for p in pool.placements)
    assert first.offer_id == "aws/us-east-1/use1-az1/g4dn.xlarge/reserved"
    assert second.capacity is CapacityType.SPOT


def test_plan_refuses_a_reservation_matching_no_offer() -> None:
    with pytest.raises(ConfigError) as err:
        dry_run(_local_with_reservation(instance_type="p3.2xlarge"))
    assert err.value.key == "provider.reservations[0].instance_type"


# --------------------------------------------------------------------------- the provider


def test_provider_fills_the_reservation_then_spot_and_records_term_price_and_team(tmp_path: Path) -> None:
    from fakes.memory_cloud import launch_workers, memory_cluster, memory_provider

    from ray_multicloud.provider import TAG_TEAM

    with memory_cluster(tmp_path) as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        cluster["provider"]["reservations"] = [declared(count=1)]
        pool = cluster["available_node_types"]["t4_spot"]["node_config"]["pool"]
        pool["capacity_types"] = ["spot", "reserved"]
        pool["team"] = "ml"
        provider = memory_provider(cluster, world)
        first = launch_workers(provider, cluster, request="r1")[0]
        second = launch_workers(provider, cluster, request="r2")[0]
        assert first.tags["rmc-offer"] == "aws/us-east-1/use1-az1/g4dn.xlarge/reserved"
        assert first.tags[TAG_TEAM] == "ml"
        assert first.tags["rmc-price"] == "0.33"  # what it is paid, not the $0 the decision saw
        assert second.tags["rmc-offer"].endswith("/spot")  # the one slot is taken
        with Ledger(tmp_path / "ledger.db", create=False) as led:
            rows = {r.instance_id: r for r in led.spend()}
    row = rows[first.instance_id]
    assert (row.capacity, row.team, row.price_per_hour) == ("reserved", "ml", 0.33)
    assert rows[second.instance_id].team == "ml"


# --------------------------------------------------------------------------- moves


def test_price_moves_fill_a_free_reservation_and_never_leave_one() -> None:
    from ray_multicloud.policy.rebalance import RebalanceConfig, plan

    reserved = _reserved(1)
    pool = PoolSpec("t4", accelerator="T4", accelerator_count=1)
    config = RebalanceConfig(state_gb=0.0, min_interval_s=0)
    offers = [*CATALOGUE, reserved]
    # A spot node at $0.2158/h: the free reserved slot ($0/h marginal, the same zone) saves all of it.
    on_spot = plan([_node(1, CATALOGUE[4], pool="t4")], offers, {"t4": pool}, now=1e9, config=config,
                   last_moved={})
    assert [m.to_offer.offer_id for m in on_spot.moves] == [reserved.offer_id]
    # A node on the reservation: nothing is cheaper than $0, so it stays.
    on_reserved = plan([_node(2, reserved, pool="t4")], offers, {"t4": pool}, now=1e9, config=config,
                       last_moved={})
    assert on_reserved.moves == ()


def test_a_deadline_policy_keeps_a_node_on_a_reserved_slot() -> None:
    from dataclasses import replace

    from ray_multicloud.policy.rebalance import JobProgress, RebalanceConfig, plan

    reserved = _reserved(1)
    pool = PoolSpec("t4", accelerator="T4", accelerator_count=1)
    # Plenty of slack: on an on-demand node the policy would go to the cheapest spot zone.
    job = JobProgress(submitted_at=1e9 - 3600, deadline_at=1e9 + 20 * H, work_total_hours=6.0,
                      work_done_hours=1.0, checkpointed_hours=1.0, checkpoint_hours=0.5)
    config = replace(RebalanceConfig(state_gb=0.0, min_interval_s=0), jobs={"t4": job})
    got = plan([_node(1, reserved, pool="t4")], [*CATALOGUE, reserved], {"t4": pool}, now=1e9,
               config=config, last_moved={})
    assert got.moves == ()
    assert any("reserved slot" in n for n in got.notes)


def test_one_free_slot_takes_one_move_and_a_full_reservation_none() -> None:
    from ray_multicloud.policy.rebalance import RebalanceConfig, plan

    reserved = _reserved(2)
    pool = PoolSpec("t4", accelerator="T4", accelerator_count=1)
    config = RebalanceConfig(state_gb=0.0, min_interval_s=0, max_moves=5)
    spot_az1 = CATALOGUE[4]
    # 2 slots, one held by another pool's node: of two spot nodes, one moves onto the free slot.
    fleet = [_node(1, spot_az1, pool="t4"), _node(2, spot_az1, pool="t4"), _node(3, reserved)]
    got = plan(fleet, [*CATALOGUE, reserved], {"t4": pool}, now=1e9, config=config, last_moved={})
    assert [(m.instance_id, m.to_offer.offer_id) for m in got.moves] == [("i-1", reserved.offer_id)]
    taken = f"i-2: the reserved slots of {reserved.offer_id} are taken by this tick's other moves"
    assert got.notes == (taken,)
    # Both slots held: no move targets the reservation.
    full = [*fleet[:2], _node(3, reserved), _node(4, reserved)]
    got = plan(full, [*CATALOGUE, reserved], {"t4": pool}, now=1e9, config=config, last_moved={})
    assert all(m.to_offer.offer_id != reserved.offer_id for m in got.moves)


def test_aws_launches_a_reserved_node_on_the_on_demand_path() -> None:
    """A Reserved Instance is a billing discount on matching on-demand usage: the launch is a plain
    on-demand RunInstances (no InstanceMarketOptions), and Ray's market-type label says on-demand."""
    import boto3
    from moto import mock_aws

    from ray_multicloud.clouds.aws import AwsCloud
    from ray_multicloud.clouds.base import LaunchRequest, RayBootstrap

    offer = _reserved(1)
    request = LaunchRequest(
        request_id="r-1", cluster="c", pool="t4", offer=offer,
        tags={"rmc-cluster": "c", "rmc-pool": "t4", "rmc-offer": offer.offer_id, "rmc-request-id": "r-1"},
        bootstrap=RayBootstrap(gcs_address="10.0.0.1:6379", node_type="t4", resources={"GPU": 1}),
    )
    with mock_aws():
        session = boto3.Session(aws_access_key_id="AKIATESTING", aws_secret_access_key="testing",
                                region_name="us-east-1")
        params = AwsCloud("aws", image_id={"us-east-1": "ami-mine"}, session=session).run_instances_params(
            request)
    assert "InstanceMarketOptions" not in params
    assert params["InstanceType"] == "g4dn.xlarge"
    assert params["Placement"] == {"AvailabilityZoneId": "use1-az1"}
    assert "RAY_NODE_MARKET_TYPE=on-demand" in params["UserData"].replace("'", "").replace('"', "")


def test_an_ended_reservation_is_not_placed_on_but_its_offer_stays_known(tmp_path: Path) -> None:
    from fakes.memory_cloud import launch_workers, memory_cluster, memory_provider

    with memory_cluster(tmp_path) as (cluster, world):
        cluster["provider"]["reservations"] = [declared(count=1, ends=dt.date(2020, 1, 1))]
        pool = cluster["available_node_types"]["t4_spot"]["node_config"]["pool"]
        pool["capacity_types"] = ["spot", "reserved"]
        provider = memory_provider(cluster, world)
        (node,) = launch_workers(provider, cluster)
        assert node.tags["rmc-offer"].endswith("/spot")
        assert provider.offers.get("aws/us-east-1/use1-az1/g4dn.xlarge/reserved") is not None
        assert provider.offers.index().reserved() == ()


def test_plan_warns_of_a_reservation_no_pool_can_use() -> None:
    config = copy.deepcopy(LOCAL)
    config["provider"]["reservations"] = [declared(count=2)]  # the t4 pool lists [spot] only
    result = dry_run(config, now=calendar.timegm((2026, 11, 29, 0, 0, 0)))
    head = "provider.reservations[0]: no pool can use the reservation"
    assert any(w.startswith(head) and "2 node(s) at $0.33/h" in w for w in result.warnings)
    used = dry_run(_local_with_reservation(), now=calendar.timegm((2026, 11, 29, 0, 0, 0)))
    assert not any("no pool can use" in w for w in used.warnings)


def test_a_pool_that_sets_no_capacity_types_uses_the_reservation() -> None:
    config = _local_with_reservation()
    del config["available_node_types"]["t4_spot"]["node_config"]["pool"]["capacity_types"]
    result = dry_run(config, now=calendar.timegm((2026, 11, 29, 0, 0, 0)))
    (pool,) = [p for p in result.pools if p.node_type == "t4_spot"]
    assert pool.placements[0][0].capacity is CapacityType.RESERVED
