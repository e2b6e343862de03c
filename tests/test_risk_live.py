"""Launch placement weighs the interruptions this cluster has seen (issue 12 item 7, live): the
ledger's spot history -> ``policy.risk.observed_interruption_rates`` -> ``place(..., risk=...)``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fakes import memory_cloud

from ray_multicloud.ledger import Ledger
from ray_multicloud.policy.risk import observed_interruption_rates

H = 3600.0


def test_rates_by_hand() -> None:
    now = 100 * H
    lives = [
        ("aws:a", now - 10 * H, None, False),  # running 10 h, never taken
        ("gcp:b", now - 3 * H, now - 1 * H, True),  # held 2 h, then preempted
        ("gcp:b", now - 1 * H, None, False),  # its successor, 1 h so far
        ("azure:c", now - 30 * H, now - 29 * H, True),  # preempted before the 24 h window: not seen
        ("azure:d", now - 26 * H, now - 22 * H, True),  # 2 of its 4 h inside the window, preempted inside
        ("aws:e", now - 61.0, now - 1.0, True),  # held one minute: one preemption per minute held
        ("aws:f", now - 10.0, now - 5.0, True),  # held 5 s: counted over min_hours (1 min), not 5 s
    ]
    rates = observed_interruption_rates(lives, now=now, window_hours=24.0)
    assert rates == {
        "aws:a": 0.0,
        "gcp:b": pytest.approx(1 / 3),  # 1 preemption over 2 + 1 h held
        "azure:d": pytest.approx(1 / 2),  # 1 over the 2 h inside the window
        "aws:e": pytest.approx(60.0),
        "aws:f": pytest.approx(60.0),
    }
    with pytest.raises(ValueError, match="window_hours"):
        observed_interruption_rates(lives, now=now, window_hours=0)


def test_ledger_spot_lives(tmp_path: Path) -> None:
    from ray_multicloud.types import CapacityType, Offer

    def offer(zone: str, capacity: CapacityType) -> Offer:
        return Offer(cloud="aws", region="us-east-1", zone=zone, instance_type="g4dn.xlarge",
                     capacity=capacity, price_per_hour=0.2, ondemand_price_per_hour=0.526,
                     accelerator="T4", accelerator_count=1, vcpus=4, memory_gib=16)

    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record_launch("i-1", "c", "p", offer("use1-az1", CapacityType.SPOT), "r1", 1000.0)
        ledger.record_launch("i-2", "c", "p", offer("use1-az2", CapacityType.SPOT), "r2", 1100.0)
        ledger.record_launch("i-3", "c", "p", offer("use1-az1", CapacityType.ON_DEMAND), "r3", 1200.0)
        ledger.record_launch("i-4", "c", "p", offer("use1-az2", CapacityType.SPOT), "r4", 1300.0)
        ledger.record_preemption("i-1", 1500.0, 1530.0)
        ledger.record_end("i-1", 1530.0, "terminated by the provider (scale-down or teardown)")
        ledger.record_end("i-2", 1600.0, "ended outside the provider (preempted or lost): missing")
        ledger.record_end("i-4", 500.0 + 1300.0, "terminated by the provider (scale-down or teardown)")
        assert ledger.spot_lives(0.0) == [
            ("aws:use1-az1", 1000.0, 1530.0, True),  # a notice was recorded
            ("aws:use1-az2", 1100.0, 1600.0, True),  # the cloud took it
            ("aws:use1-az2", 1300.0, 1800.0, False),  # we ended it
        ]
        assert [life[1] for life in ledger.spot_lives(1700.0)] == [1300.0]  # ended before 1700: left out


def offer_of(provider: Any, instance_id: str) -> Any:
    return next(n.offer for n in provider.fleet() if n.instance_id == instance_id)


def test_a_launch_avoids_the_location_that_was_just_preempted(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "state" / "ledger.db")
        provider = memory_cloud.memory_provider(cluster, world)
        (first,) = memory_cloud.launch_workers(provider, cluster, request="a")
        cheapest = offer_of(provider, first.instance_id)
        node_config = cluster["available_node_types"]["t4_spot"]["node_config"]
        assert provider.placement_risk("t4_spot", node_config) is None  # no interruption seen yet
        # The cloud gives a notice and takes the node back, 5 s after its launch.
        ledger = provider._ledger
        assert ledger is not None
        ledger.record_preemption(first.instance_id, time.time(), time.time() + 5)
        provider.terminate_node(first.instance_id)

        restarted = memory_cloud.memory_provider(cluster, world)
        risk = restarted.placement_risk("t4_spot", node_config)
        assert risk is not None and risk.rates[cheapest.location] == pytest.approx(60.0)  # 1 over min 1 min
        restart_h = node_config["migration"].get("restart_seconds", 120) / H
        (launched,) = memory_cloud.launch_workers(restarted, cluster, request="b")
        second = offer_of(restarted, launched.instance_id)
        # By hand: the preempted location costs price x (1 + 60/h x restart) per useful hour, above
        # the next offer's price, which has no history (ranked at its price).
        assert cheapest.price_per_hour * (1 + 60.0 * restart_h) > second.price_per_hour
        assert second.location != cheapest.location
        assert second.price_per_hour >= cheapest.price_per_hour

        # Without the history (a fresh ledger) the same launch goes to the cheapest again.
        cluster["provider"]["ledger"] = str(tmp_path / "state" / "fresh.db")
        plain = memory_cloud.memory_provider(cluster, world)
        (third,) = memory_cloud.launch_workers(plain, cluster, request="c")
        assert offer_of(plain, third.instance_id).offer_id == cheapest.offer_id
