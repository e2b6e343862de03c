"""Launch directives: the deadline policy's choice for a pool's next node, published by the controller
and followed by the provider when the autoscaler relaunches a preempted node."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import memory_cloud
from fakes.memory_cloud import MemoryWorld

from ray_multicloud.controller import Controller
from ray_multicloud.directives import Directive, LaunchDirectives
from ray_multicloud.errors import LaunchFailed
from ray_multicloud.policy.rebalance import JobProgress
from ray_multicloud.provider import MultiCloudNodeProvider
from ray_multicloud.types import CapacityType
from tests.test_train_progress import cluster, memory, world

__all__ = ["cluster", "memory", "world"]


def test_round_trip_stale_and_malformed(tmp_path: Path) -> None:
    board = LaunchDirectives(tmp_path)
    assert board.get("c", "p", now=0.0, max_age_s=60) is None
    board.publish(
        "c", {"p": Directive("spot", "aws/x", at=100.0, reason="r"), "q": Directive("wait", "", 100.0)}
    )
    assert board.get("c", "p", now=150.0, max_age_s=60) == Directive("spot", "aws/x", 100.0, "r")
    assert board.get("c", "p", now=161.0, max_age_s=60) is None  # 61 s old
    assert board.get("other", "p", now=150.0, max_age_s=60) is None
    board.publish("c", {"p": None})
    assert board.get("c", "p", now=150.0, max_age_s=60) is None
    assert board.get("c", "q", now=150.0, max_age_s=60) is not None
    (tmp_path / "directives.json").write_text('{"c": {"p": {"kind": "teleport", "at": 1}}}')
    assert board.get("c", "p", now=1.0, max_age_s=60) is None
    with pytest.raises(ValueError, match="teleport"):
        Directive("teleport", "", 0.0)


def job(now: float, *, slack_h: float) -> JobProgress:
    # 1 h of work, half checkpointed, a 0.1 h checkpoint interval; the deadline leaves ``slack_h``
    # after finishing on on-demand from the checkpoint (0.5 h of work + the 3-minute default restart).
    left = 0.5 + 180.0 / 3600
    return JobProgress(now - 1800, now + (left + slack_h) * 3600, 1.0, 0.5, 0.5, 0.1)


def frozen(cluster: dict[str, Any], world: MemoryWorld) -> Controller:
    """A controller that may not move anything (``max_disrupted: 0``) over one spot node."""
    cluster = copy.deepcopy(cluster)
    cluster["available_node_types"]["t4_spot"]["node_config"]["migration"] = {"max_disrupted": 0}
    provider = MultiCloudNodeProvider(
        copy.deepcopy(cluster["provider"]), cluster["cluster_name"], clouds=world.clouds(cluster)
    )
    launch(provider, cluster, "r0")
    return Controller(cluster, provider=provider)


def test_controller_publishes_what_the_policy_would_start_after_a_loss(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    controller = frozen(cluster, world)
    now = time.time()
    [node] = controller.provider.fleet()
    board = LaunchDirectives(controller.provider.settings.state_dir)

    controller.set_job("t4_spot", job(now, slack_h=5.0))
    assert controller.tick(now) == []  # nothing may move: max_disrupted 0
    relaxed = board.get(controller.cluster_name, "t4_spot", now=now, max_age_s=60)
    # Plenty of slack: another spot offer, never the one just lost.
    assert relaxed is not None and relaxed.kind == "spot" and relaxed.offer_id != node.offer.offer_id

    controller.set_job("t4_spot", job(now, slack_h=0.01))
    controller.tick(now)
    tight = board.get(controller.cluster_name, "t4_spot", now=now, max_age_s=60)
    assert tight is not None and tight.kind == "on-demand"

    controller.set_job("t4_spot", None)
    controller.tick(now)
    assert board.get(controller.cluster_name, "t4_spot", now=now, max_age_s=60) is None


def launch(provider: MultiCloudNodeProvider, cluster: dict[str, Any], request: str) -> Any:
    [inst] = memory_cloud.launch_workers(provider, cluster, request=request)
    return inst


def test_the_provider_follows_a_fresh_directive_and_ignores_a_stale_one(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    provider = MultiCloudNodeProvider(
        copy.deepcopy(cluster["provider"]), cluster["cluster_name"], clouds=world.clouds(cluster)
    )
    board = LaunchDirectives(provider.settings.state_dir)
    name = cluster["cluster_name"]
    now = time.time()
    cheapest = launch(provider, cluster, "r0")
    assert cheapest.tags["rmc-capacity"] == "spot"

    board.publish(name, {"t4_spot": Directive("on-demand", "", now, "slack too low")})
    assert launch(provider, cluster, "r1").tags["rmc-capacity"] == CapacityType.ON_DEMAND.value

    spot_offers = sorted(
        (
            o
            for o in provider.offers.index().offers_for("T4")
            if o.capacity is CapacityType.SPOT and o.cloud == "gcp"
        ),
        key=lambda o: -o.price_per_hour,
    )
    dear = spot_offers[0]  # the dearest gcp T4 spot offer: never the placement's own first choice
    board.publish(name, {"t4_spot": Directive("spot", dear.offer_id, now, "zone up longest")})
    assert launch(provider, cluster, "r2").tags["rmc-offer"] == dear.offer_id

    board.publish(name, {"t4_spot": Directive("spot", dear.offer_id, now - 3600, "old")})
    assert launch(provider, cluster, "r3").tags["rmc-offer"] == cheapest.tags["rmc-offer"]

    # The first choice is gone (cooling down after a failure): the next of ``then`` is taken.
    second = spot_offers[1]
    provider._cooldowns[dear.offer_id] = time.time() + 600
    board.publish(name, {"t4_spot": Directive("spot", dear.offer_id, now, "r", then=(second.offer_id,))})
    assert launch(provider, cluster, "r4").tags["rmc-offer"] == second.offer_id
    # None of them left: ``otherwise`` decides (on-demand here), not the cheapest-first placement.
    provider._cooldowns[second.offer_id] = time.time() + 600
    board.publish(
        name,
        {
            "t4_spot": Directive(
                "spot", dear.offer_id, now, "r", then=(second.offer_id,), otherwise="on-demand"
            )
        },
    )
    assert launch(provider, cluster, "r5").tags["rmc-capacity"] == CapacityType.ON_DEMAND.value
    # The policy waits for spot: the launch is refused with its reason, and nothing starts.
    before = len(provider.fleet())
    board.publish(name, {"t4_spot": Directive("wait", "", now, "no spot anywhere, slack 3.0h")})
    with pytest.raises(LaunchFailed, match=re.escape("no spot anywhere, slack 3.0h: waiting for spot")):
        launch(provider, cluster, "r6")
    assert len(provider.fleet()) == before


def test_the_controller_lists_what_the_policy_takes_next(cluster: dict[str, Any], world: MemoryWorld) -> None:
    """Each entry of ``then`` is the policy's own answer with the earlier ones taken away: for the
    ``multicloud`` policy with plenty of slack, the cheapest spot offers in price order."""
    controller = frozen(cluster, world)
    now = time.time()
    [node] = controller.provider.fleet()
    controller.set_job("t4_spot", job(now, slack_h=5.0))
    controller.tick(now)
    d = LaunchDirectives(controller.provider.settings.state_dir).get(
        controller.cluster_name, "t4_spot", now=now, max_age_s=60
    )
    assert d is not None and d.kind == "spot"
    listed = [d.offer_id, *d.then]
    assert node.offer.offer_id not in listed and len(listed) == len(set(listed))
    prices = [index_get(controller, o).price_per_hour for o in listed]
    assert prices == sorted(prices)
    assert d.otherwise in ("", "on-demand", "wait")


def index_get(controller: Controller, offer_id: str) -> Any:
    offer = controller.provider.offers.get(offer_id)
    assert offer is not None
    return offer


def test_a_controller_tick_keeps_the_slo_autoscalers_directive(tmp_path: Path) -> None:
    board = LaunchDirectives(tmp_path)
    now = time.time()
    slo = Directive("spot", "azure/eastus/-/x/spot", now, reason="slo: cheapest keeping")
    board.publish("c", {"serve": slo, "train": Directive("on-demand", "", now, reason="deadline")})
    # the controller's tick: no deadline job in either pool -> None for both
    board.publish("c", {"serve": None, "train": None}, keep_reasons=("slo: ",))
    kept = board.get("c", "serve", now=now, max_age_s=60)
    assert kept is not None and kept.offer_id == "azure/eastus/-/x/spot"
    assert board.get("c", "train", now=now, max_age_s=60) is None
    board.publish("c", {"serve": None})  # without keep_reasons a None removes it, as before
    assert board.get("c", "serve", now=now, max_age_s=60) is None
