"""The live controller's deadline view carries the egress the simulator charges (issue 12, item 6):
``policy.rebalance.checkpoint_home`` / ``spot_options`` / ``idle_view``, the controller's record of
where a job's checkpoint lives, and the published rates a pool pays by default. Expected values are
computed by hand in the comments."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ray_multicloud.cluster_config.migration import PUBLISHED_PAIRS, parse_migration
from ray_multicloud.policy.deadline import WAIT, JobView, Memory, MultiCloud, SpotOption, spot
from ray_multicloud.policy.rebalance import (
    JobProgress,
    RebalanceConfig,
    checkpoint_home,
    idle_step,
    idle_view,
    node_view,
    region_egress_usd,
)
from ray_multicloud.types import CapacityType, FleetNode, InstanceId, NodeState, Offer, PoolSpec, RequestId

SPOT, OD = CapacityType.SPOT, CapacityType.ON_DEMAND
T0 = 1_700_000_000.0
POOL = PoolSpec(name="gpu", accelerator="V100", accelerator_count=1)


def mk(cloud: str, region: str, zone: str, price: float, *, cap: CapacityType = SPOT,
       rate: float | None = None) -> Offer:
    return Offer(
        cloud=cloud, region=region, zone=zone, instance_type="p3.2xlarge", accelerator="V100",
        accelerator_count=1, vcpus=8, memory_gib=61, capacity=cap, price_per_hour=price,
        ondemand_price_per_hour=3.0, interruption_rate_per_hour=rate,
    )


HOME = mk("aws", "us-east-1", "us-east-1a", 1.0, rate=0.25)
AWAY = mk("aws", "us-west-2", "us-west-2a", 0.9, rate=0.1)
GCP = mk("gcp", "us-central1", "us-central1-a", 0.8, rate=0.1)
ONDEMAND = mk("aws", "us-east-1", "", 3.0, cap=OD)
OFFERS = (HOME, AWAY, GCP, ONDEMAND)

# 50 GB of checkpoint at the published rates, the tick 0.1 h, the restart 0.2 h (720 s).
CONFIG = RebalanceConfig(checkpoint_s=0.0, restart_s=720.0, state_gb=50.0, egress_pairs=PUBLISHED_PAIRS,
                         tick_s=360.0)


def job(*, saved: float = 2.0, region: str = "") -> JobProgress:
    """A 10 h job due 20 h after submission, ``saved`` hours done and saved, 30-minute checkpoints."""
    return JobProgress(submitted_at=T0, deadline_at=T0 + 20 * 3600, work_total_hours=10.0,
                       work_done_hours=saved, checkpointed_hours=saved, checkpoint_hours=0.5,
                       checkpoint_region=region)


def egress_by_zone(view: JobView) -> dict[str, float]:
    return {o.zone.split("/")[2]: o.egress_usd for o in view.zones}


def test_published_rates_by_hand() -> None:
    # 50 GB: within a region 0; aws -> aws 0.02/GB = 1.00; aws -> gcp 0.09/GB = 4.50;
    # gcp -> aws 0.12/GB = 6.00; azure -> gcp 0.087/GB = 4.35.
    at = CONFIG
    assert region_egress_usd(("aws", "us-east-1"), ("aws", "us-east-1"), at) == 0.0
    assert region_egress_usd(("aws", "us-east-1"), ("aws", "us-west-2"), at) == pytest.approx(1.0)
    assert region_egress_usd(("aws", "us-east-1"), ("gcp", "us-central1"), at) == pytest.approx(4.5)
    assert region_egress_usd(("gcp", "us-central1"), ("aws", "us-east-1"), at) == pytest.approx(6.0)
    assert region_egress_usd(("azure", "eastus"), ("gcp", "us-central1"), at) == pytest.approx(4.35)


def test_a_pool_without_egress_settings_pays_the_published_rates() -> None:
    want = {("gcp", "aws", 0.12), ("azure", "gcp", 0.087), ("aws", "aws", 0.02)}
    assert set(parse_migration("gpu", {}).rebalance.egress_pairs) >= want  # no migration: section
    assert set(parse_migration("gpu", {"migration": {"enabled": True}}).rebalance.egress_pairs) >= want
    # ... and one with its own rates pays those (an inter-cloud rate of 0.05 is not overridden).
    own = parse_migration("gpu", {"migration": {"egress_usd_per_gb": 0.05}}).rebalance
    assert own.egress_pairs == ()
    assert region_egress_usd(("gcp", "r"), ("aws", "s"), replace(own, state_gb=10)) == pytest.approx(0.5)


def test_idle_view_after_a_preemption_carries_egress_from_the_lost_nodes_region() -> None:
    view = idle_view(POOL, OFFERS, job(), CONFIG, now=T0 + 2 * 3600, preempted_offer=HOME.offer_id)
    assert egress_by_zone(view) == pytest.approx({"us-east-1a": 0.0, "us-west-2a": 1.0, "us-central1-a": 4.5})


def test_no_egress_before_anything_is_saved_without_state_or_without_a_known_region() -> None:
    at = T0 + 3600
    nothing_saved = idle_view(POOL, OFFERS, job(saved=0.0), CONFIG, now=at, preempted_offer=HOME.offer_id)
    assert set(egress_by_zone(nothing_saved).values()) == {0.0}
    no_state = idle_view(POOL, OFFERS, job(), replace(CONFIG, state_gb=0.0), now=at,
                         preempted_offer=HOME.offer_id)
    assert set(egress_by_zone(no_state).values()) == {0.0}
    never_on_spot = idle_view(POOL, OFFERS, job(), CONFIG, now=at)  # no lost node, no recorded region
    assert set(egress_by_zone(never_on_spot).values()) == {0.0}
    # Waiting ticks later (no lost node in the call): the recorded region says it.
    recorded = idle_view(POOL, OFFERS, job(region="gcp/us-central1"), CONFIG, now=at)
    want = {"us-east-1a": 6.0, "us-west-2a": 6.0, "us-central1-a": 0.0}
    assert egress_by_zone(recorded) == pytest.approx(want)


def test_home_of_a_running_node() -> None:
    spot_node = FleetNode(InstanceId("i-1"), "gpu", AWAY, RequestId("r-1"), T0, NodeState.RUNNING)
    od_node = replace(spot_node, offer=ONDEMAND)
    # On spot: the node's own region, whatever was recorded before.
    assert checkpoint_home(job(region="aws/us-east-1"), AWAY, CONFIG) == ("aws", "us-west-2")
    view = node_view(spot_node, POOL, OFFERS, job(region="aws/us-east-1"), CONFIG, now=T0 + 7200)
    assert egress_by_zone(view) == pytest.approx({"us-east-1a": 1.0, "us-west-2a": 0.0, "us-central1-a": 4.5})
    # On on-demand: the recorded region (on-demand never moves the state; the simulator's model).
    assert checkpoint_home(job(region="aws/us-east-1"), ONDEMAND, CONFIG) == ("aws", "us-east-1")
    view = node_view(od_node, POOL, OFFERS, job(region="aws/us-west-2"), CONFIG, now=T0 + 7200)
    assert egress_by_zone(view) == pytest.approx({"us-east-1a": 1.0, "us-west-2a": 0.0, "us-central1-a": 4.5})
    assert checkpoint_home(job(region="garbage"), ONDEMAND, CONFIG) is None


# The live decision equals the simulator's on the same state. The state: preempted at t = 2.0 h in
# us-east-1a (down now), 2.0 h saved; spot only in us-west-2a (1 USD of egress) and us-central1-a
# (4.50). multicloud's defaults: slack = 20 - 2 - (0.2 + 10 - 2) = 9.8 h; keep = max(1.5 x 0.7,
# 0.6 x (20 - 10 - 0.2) x (1 - 2/20), 0.15 x 8) = 5.292 h; home rate 0.25/h over 8 h: N = 2;
# patience = 4.0 x (9.8 - 5.292) / 3 = 6.0107 h: the job waits for its own region (0 + 0.1 h
# waited <= 6.01 h). Before the live view carried egress it moved to us-central1-a (the cheapest
# spot, 4.50 USD of egress unseen) at once.
def sim_view() -> JobView:
    zones = (  # in the live view's order (by offer id)
        SpotOption("us-east-1a", "us-east-1", False, 1.0, 0.25, 0.0),
        SpotOption("us-west-2a", "us-west-2", True, 0.9, 0.1, 1.0),
        SpotOption("us-central1-a", "us-central1", True, 0.8, 0.1, 4.5),
    )
    return JobView(elapsed_hours=2.0, work_done_hours=2.0, checkpointed_hours=2.0, work_total_hours=10.0,
                   deadline_hours=20.0, restart_hours=0.2, checkpoint_hours=0.5, tick_hours=0.1,
                   current=WAIT, overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=3.0,
                   preempted=True, preempted_zone="us-east-1a")


def test_live_decision_after_a_preemption_is_the_simulators() -> None:
    now = T0 + 2 * 3600
    cool = {HOME.offer_id: now + 360}
    live = idle_step(POOL, OFFERS, job(), CONFIG, Memory(), now=now, cooldowns=cool,
                     preempted_offer=HOME.offer_id)
    simulated = MultiCloud().decide(sim_view(), Memory())
    assert simulated.choice == WAIT
    assert "6.01h" in simulated.reasons[0] and "wait for the checkpoint's region" in simulated.reasons[0]
    assert live.choice == WAIT
    assert live.reasons == tuple(r.replace("us-east-1a", HOME.offer_id, 1) for r in simulated.reasons)
    assert live.memory.idle_since == simulated.memory.idle_since == pytest.approx(2.0)
    # Without egress in the view (the live path before this change) the same state moved at once.
    blind = idle_step(POOL, OFFERS, job(), replace(CONFIG, state_gb=0.0), Memory(), now=now,
                      cooldowns=cool, preempted_offer=HOME.offer_id)
    assert blind.choice == spot(GCP.offer_id)  # the cheapest, blind to its 4.50 USD of egress
