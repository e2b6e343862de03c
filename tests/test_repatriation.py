"""Burst and come back: a pool that prefers its private machines (``source_preference``) bursts to a
public cloud when they are full, and the controller moves the public node back onto a private
machine once one frees (make-before-break, like any move)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakes import memory_cloud

POOL = "a100_ondemand"


def test_a_burst_node_comes_back_when_a_private_machine_frees(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["available_node_types"][POOL]["max_workers"] = 3  # room for make-before-break
        provider = memory_cloud.memory_provider(cluster, world)
        (private,) = memory_cloud.launch_workers(provider, cluster, node_type=POOL, request="r1")
        (public,) = memory_cloud.launch_workers(provider, cluster, node_type=POOL, request="r2")
        offers = {n.instance_id: n.offer for n in provider.fleet()}
        assert offers[private.instance_id].cloud == "onprem"
        assert offers[public.instance_id].cloud != "onprem"  # the private pool was full: burst
        t = [max(n.launched_at for n in provider.fleet()) + 3600.0]
        controller = memory_cloud.memory_controller(cluster, provider, t)
        assert controller.tick() == []  # the private machine is taken: nothing to come back to
        assert controller.last_plan is not None and not controller.last_plan.moves
        notes = controller.last_plan.notes
        assert any("cooling down or full" in note for note in notes), notes
        launches = len(world.launch_calls)
        provider.terminate_node(private.instance_id)  # its job ended; the machine is free
        assert len(world.launch_calls) == launches  # nothing was tried on the full machine
        with caplog.at_level(logging.INFO, logger="ray_multicloud.provider"):
            results = controller.tick()
        assert [r.status for r in results] == ["moved"], controller.last_plan
        assert results[0].move.to_offer.cloud == "onprem"
        # The replacement's launch says what it is (the ledger keeps the same reason).
        target = results[0].move.to_offer.offer_id
        assert f"replacement of a move onto {target}" in caplog.text
        assert "is pinned to" not in caplog.text
        fleet = provider.fleet()
        assert [n.offer.cloud for n in fleet] == ["onprem"]
        assert public.instance_id not in {n.instance_id for n in fleet}


def test_private_pool_slots_are_its_machines(tmp_path: Path) -> None:
    from ray_multicloud.clouds.private import Machine, PrivateCloud

    cloud = PrivateCloud("dc", tmp_path, region="dc1", machines=[
        Machine("big", "A100", 8, 96, 1024, count=2), Machine("small", "T4", 1, 8, 32, count=5)])
    assert cloud.slots("any") == {"dc/dc1/-/big/on-demand": 2, "dc/dc1/-/small/on-demand": 5}


def test_a_full_private_kind_is_skipped_at_launch_without_a_failed_call(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster, node_type=POOL, request="r1")
        calls = len(world.launch_calls)
        (burst,) = memory_cloud.launch_workers(provider, cluster, node_type=POOL, request="r2")
        assert burst.cloud != "onprem"
        assert len(world.launch_calls) == calls + 1  # straight to the public offer
        assert provider.full_offers() == {"onprem/onprem-dc1/-/dgx-a100-slice/on-demand"}
