"""Cooldowns shared by the head's processes (ray_multicloud/pricing/cooldowns.py): an offer that refused
the autoscaler's launch for lack of capacity is skipped by the controller's provider too, and the
other way round; a board that is absent or malformed skips nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fakes import memory_cloud
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.errors import LaunchFailed
from ray_multicloud.pricing.cooldowns import COOLDOWN_FILE, CooldownBoard

OTHER = os.getpid() + 1  # another process's writer id


def test_a_writer_reads_the_others_cooldowns_not_its_own_and_expired_ones_go(tmp_path: Path) -> None:
    mine, theirs = CooldownBoard(tmp_path), CooldownBoard(tmp_path, writer=OTHER)
    mine.add({"a": 200.0, "b": 150.0}, now=100.0)
    theirs.add({"c": 300.0, "b": 120.0}, now=100.0)  # b: the later until (mine, 150) is kept
    assert mine.others(now=100.0) == {"c": 300.0}
    assert theirs.others(now=100.0) == {"a": 200.0, "b": 150.0}
    assert theirs.others(now=180.0) == {"a": 200.0}  # b ran out at 150
    theirs.add({"d": 400.0}, now=250.0)  # writing drops a (200) and b (150): expired
    assert set(json.loads((tmp_path / COOLDOWN_FILE).read_text())) == {"c", "d"}


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                              lambda kids: st.lists(kids, max_size=3)
                              | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                              max_leaves=10).map(json.dumps)))
def test_a_malformed_board_reads_as_no_cooldown(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    state = tmp_path_factory.mktemp("board")
    (state / COOLDOWN_FILE).write_text(text, encoding="utf-8")
    board = CooldownBoard(state, writer=OTHER)
    got = board.others(now=0.0)
    assert all(isinstance(until, float) for until in got.values())
    board.add({"x": 10.0}, now=0.0)  # and it can still be written over
    assert CooldownBoard(state).others(now=0.0)["x"] == 10.0


def test_an_offer_the_other_process_found_full_is_skipped_and_a_refusal_here_is_shared(
        tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        # What this pool places first when nothing is cooling down (on a provider of its own).
        probe = memory_cloud.memory_provider(cluster, memory_cloud.MemoryWorld())
        first = memory_cloud.launch_workers(probe, cluster, request="probe")[0]
        first_offer = first.tags["rmc-offer"]

        # The autoscaler's process (another writer) found it without capacity a moment ago.
        CooldownBoard(tmp_path / "state", writer=OTHER).add({first_offer: time.time() + 600}, now=time.time())
        assert first_offer in provider.cooldowns()
        placed = memory_cloud.launch_workers(provider, cluster, request="r1")[0]
        assert placed.tags["rmc-offer"] != first_offer
        assert first_offer not in world.launch_calls  # skipped, not tried and refused again

        # A refusal here goes on the board for the other process.
        world.exhausted.update(o.offer_id for o in provider.offers.index().offers_for("T4"))
        before = len(world.launch_calls)
        with pytest.raises(LaunchFailed):
            memory_cloud.launch_workers(provider, cluster, request="r2")
        refused = set(world.launch_calls[before:])
        assert refused
        seen_by_other = CooldownBoard(tmp_path / "state", writer=OTHER).others(now=time.time())
        assert refused <= set(seen_by_other), (refused, seen_by_other)


def test_the_controller_skips_the_offers_the_autoscaler_found_full(tmp_path: Path) -> None:
    from test_spot_hedge_live import POOL, SERVE_TYPE, capacities

    from ray_multicloud.types import CapacityType

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["available_node_types"][POOL] = SERVE_TYPE
        cluster["max_workers"] = 8
        provider = memory_cloud.memory_provider(cluster, world)
        spot = [o.offer_id for o in provider.offers.index().offers_for("T4")
                if o.capacity is CapacityType.SPOT]
        world.exhausted.update(spot)
        for i in range(3):  # spot is gone: every node lands on on-demand (each launch retried)
            for attempt in range(30):
                try:
                    memory_cloud.launch_workers(provider, cluster, node_type=POOL, request=f"r{i}-{attempt}")
                    break
                except LaunchFailed:
                    continue
        assert capacities(provider) == ["on-demand"] * 3
        world.exhausted.clear()
        provider._cooldowns.clear()  # this process's cooldowns run out ...
        t = [time.time() + 3600.0]
        # ... but the autoscaler's process has just found every spot offer full again.
        CooldownBoard(tmp_path / "state", writer=OTHER).add({o: t[0] + 600 for o in spot}, now=time.time())
        controller = memory_cloud.memory_controller(cluster, provider, t)
        assert controller.tick() == []  # no move onto an offer the autoscaler was refused
        t[0] += 700.0  # their cooldowns run out: the price moves back onto spot go ahead
        assert [r.status for r in controller.tick()] == ["moved"]
