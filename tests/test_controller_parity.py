"""Parity through the live path: ``Controller`` + ``MultiCloudNodeProvider`` decide as ``simulate`` does.

``test_decision_parity`` shows it for the pure functions (``rebalance.plan``/``idle_step``); this
replays the same real trace through the live objects on an in-memory cloud, tick by tick, on an
accelerated fake clock (one controller tick per trace tick, no waiting anywhere):

* the cloud (``fakes.fixed_offer_cloud``) sells one spot offer per trace zone and an on-demand
  offer; the trace's spot price of each zone is written to the price board at every tick, and a
  zone the trace marks unavailable is cooling down in the provider (``_cooldowns``, what a
  capacity error or a preemption records) and refuses launches (``exhausted``) until the next tick;
* a zone that goes away under the pool's node takes the node with it (the cloud terminates the
  instance, as a preemption does), and "the autoscaler" relaunches the pool's node at once through
  ``create_node_with_resources_and_labels``, which follows the controller's standing launch
  directive (``directives``); a ``wait`` directive launches nothing;
* the job's progress is declared with ``set_job`` from the engine's numbers for that tick (the
  replay of ``test_decision_parity``), then ``controller.tick(now)`` plans the pool, moves its node
  (``move_group``: the replacement up at once, the drain done at once) and publishes the directive
  for the next loss; a pool still empty after the tick gets the node that directive names;
* what the pool holds then (a zone, on-demand, or nothing) is that tick's decision.

The sequence must equal the engine's choices tick for tick, and the window must hold preemptions,
a spot->spot move and an on-demand stint (a replay that never moves would prove nothing).

The provider tells time by the wall clock (``time.time()`` for cooldowns and the directive's age,
not the controller's injectable clock), so the replay's clock starts a day after now, on a whole
second: cooldowns set on it are still ahead of the wall clock, and a directive stamped on it is
never older than ``DIRECTIVE_MAX_AGE_S`` by the wall clock. Times relative to the submission are
the same as the engine's to the bit (whole seconds shifted by whole seconds).
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fakes.fixed_offer_cloud import FixedOfferCloud
from fakes.memory_cloud import MemoryWorld
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    TAG_RAY_LAUNCH_REQUEST,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)
from test_decision_parity import (
    CASES,
    POOL_NAME,
    T0,
    Case,
    config_of,
    engine_run,
    live_tick,
    name_of,
    needs_traces,
    traces,
)

from ray_multicloud.controller import Controller, RayNode
from ray_multicloud.errors import LaunchFailed
from ray_multicloud.policy.rebalance import current_choice
from ray_multicloud.pricing.board import PriceBoard
from ray_multicloud.provider import MultiCloudNodeProvider
from ray_multicloud.types import CapacityType, NodeState, Offer, OfferId

CLUSTER = "parity"
CLOUD = "aws"  # the trace's cloud: its offers are named aws/REGION/ZONE/TYPE/CAPACITY
GPU_SPEC = {"resources": {"CPU": 1, "GPU": 1}}
GPU = "T4"  # the trace's offers carry no accelerator; the live pool selects by one


def cluster_config(state_dir: Path) -> dict[str, Any]:
    """One cloud selling the trace's offers; a pinned head and the movable pool ``POOL_NAME``."""
    return {
        "cluster_name": CLUSTER,
        "provider": {
            "type": "external",
            "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "127.0.0.1:6390",
            "state_dir": str(state_dir),
            "clouds": {CLOUD: {"driver": "fixed-offers"}},
        },
        "head_node_type": "head",
        "available_node_types": {
            "head": {
                "resources": {"CPU": 1},
                "node_config": {
                    "offer": {
                        "cloud": CLOUD,
                        "region": "us-east-1",
                        "zone": "use1-az1",
                        "instance_type": "m5.xlarge",
                        "capacity": "on-demand",
                        "price_per_hour": 0.192,
                        "vcpus": 4,
                        "memory_gib": 16,
                    }
                },
            },
            POOL_NAME: {**GPU_SPEC, "node_config": {"pool": {"clouds": [CLOUD], "accelerator": GPU}}},
        },
    }


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class Outcome:
    engine: tuple[str, ...]
    live: tuple[str, ...]
    preemptions: int
    moves: int  # moves the controller made (move_group), all completed
    transitions: frozenset[str]


def replay_live(case: Case, state_dir: Path) -> Outcome:
    ts = traces(case.folder, case.spot_price)
    log = engine_run(case)
    # The live clock: a whole second a day ahead of the wall clock (module docstring).
    shift = float(math.ceil(time.time()) + 86_400) - T0
    clock = Clock(T0 + shift)
    first = live_tick(case, 0, log[0][0])
    cloud = FixedOfferCloud(CLOUD, MemoryWorld(), gpu_offers(first.offers), clock)

    cluster = cluster_config(state_dir)
    provider = MultiCloudNodeProvider(copy.deepcopy(cluster["provider"]), CLUSTER, clouds={CLOUD: cloud})

    def gcs(_address: str) -> dict[str, RayNode]:
        # Every instance's Ray node is up as soon as it exists, and never busy (drains end at once).
        return {
            i.instance_id: RayNode(i.instance_id, i.instance_id, "RUNNING", {}, {})
            for i in cloud.list(CLUSTER)
        }

    controller = Controller(
        cluster,
        config=config_of(case, first.job),
        interval_s=ts.gap_seconds,
        provider=provider,
        nodes=gcs,
        drain=lambda *a, **k: (True, "drained"),
        clock=clock,
        sleep=lambda _s: None,
    )
    board = PriceBoard(state_dir)
    requests = itertools.count()

    def pool_nodes() -> list[Any]:
        return [n for n in provider.fleet() if n.pool == POOL_NAME and n.state is NodeState.RUNNING]

    def autoscale() -> None:
        """The autoscaler replaces the pool's missing node; the provider follows the standing
        directive, and refuses the launch while the policy waits for spot."""
        if pool_nodes():
            return
        tags = {
            TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
            TAG_RAY_USER_NODE_TYPE: POOL_NAME,
            TAG_RAY_LAUNCH_REQUEST: f"r{next(requests)}",
        }
        node_config = cluster["available_node_types"][POOL_NAME]["node_config"]
        try:
            provider.create_node_with_resources_and_labels(node_config, tags, 1, GPU_SPEC["resources"], {})
        except LaunchFailed as exc:
            assert "waiting for spot" in str(exc), exc

    engine_seq: list[str] = []
    live_seq: list[str] = []
    transitions: set[str] = set()
    preemptions = moves = 0
    for rel, (view, step) in enumerate(log):
        t = live_tick(case, rel, view)
        clock.now = t.now + shift
        # The trace at this tick: prices on the board, unavailable zones cooling down.
        spots = {o.offer_id: o.price_per_hour for o in t.offers if o.capacity is CapacityType.SPOT}
        board.set_many(spots, now=clock.now)
        # The board's version is its mtime; coarse file timestamps can repeat within a few ms.
        stamp = (rel + 1) * 1_000_000_000
        os.utime(board.path, ns=(stamp, stamp))
        provider._cooldowns.clear()
        provider._cooldowns.update({OfferId(o): until + shift for o, until in t.cooldowns.items()})
        cloud.exhausted.clear()
        cloud.exhausted.update(t.cooldowns)
        # A zone gone under the pool's node takes the node; the autoscaler relaunches at once.
        for node in pool_nodes():
            if node.offer.offer_id in t.cooldowns:
                cloud.terminate(node.instance_id)
                preemptions += 1
                autoscale()
        job = replace(t.job, submitted_at=t.job.submitted_at + shift, deadline_at=t.job.deadline_at + shift)
        controller.set_job(POOL_NAME, job)
        results = controller.tick(clock.now)
        assert all(r.ok for r in results), results
        moves += len(results)
        autoscale()
        held = pool_nodes()
        assert len(held) <= 1, held
        live_seq.append(name_of(current_choice(held[0]), ts) if held else "wait")
        engine_seq.append(name_of(step.choice, ts))
        if step.choice != view.current:
            before = "preempted" if view.preempted else view.current.kind.value
            transitions.add(f"{before}->{step.choice.kind.value}")
    return Outcome(tuple(engine_seq), tuple(live_seq), preemptions, moves, frozenset(transitions))


def gpu_offers(offers: tuple[Offer, ...]) -> list[Offer]:
    return [replace(o, accelerator=GPU, accelerator_count=1) for o in offers]


def offers_sorted_as_trace(case: Case, offers: tuple[Offer, ...]) -> bool:
    ts = traces(case.folder, case.spot_price)
    spots = sorted((o for o in offers if o.capacity is CapacityType.SPOT), key=lambda o: o.offer_id)
    return [o.zone for o in spots] == list(ts.names)


# Every case of test_decision_parity, reproduced tick for tick through the live path:
# aws-04-19-2023 from tick 12106 (3 zones at real prices, 34-s ticks, an 8-minute restart:
# preemptions, a spot->spot move by the controller, a fall back to on-demand) and from tick 104
# (on-demand back to spot),
# aws-04-22-2023 (614 ticks: waits, on-demand bridges and a move back to spot), aws-02-15-2023 (from
# tick 42, 195-s ticks, 9 zones at one price) and the same with checkpoints on notice (140 ticks: every
# zone down at once, the policy waits; the provider refuses the autoscaler's relaunch meanwhile),
# and from tick 370 with 50 GB checkpoints (after a preemption the policy waits for the checkpoint's
# region rather than pay 1 USD of egress: only if the controller knows where the checkpoint lives,
# Controller._note_home, since set_job here carries no region).
LIVE_CASES = tuple(CASES)


@needs_traces
@pytest.mark.parametrize("case", LIVE_CASES, ids=[c.id for c in LIVE_CASES])
def test_controller_decides_as_the_simulator(case: Case, tmp_path: Path) -> None:
    first = live_tick(case, 0, engine_run(case)[0][0])
    assert offers_sorted_as_trace(case, first.offers)  # the live zone order is the engine's
    r = replay_live(case, tmp_path)
    first_diff = next((i for i, (a, b) in enumerate(zip(r.engine, r.live, strict=True)) if a != b), None)
    assert first_diff is None, (
        f"tick {first_diff}: simulator {r.engine[first_diff]}, live {r.live[first_diff]} "
        f"(simulator before: {r.engine[max(0, first_diff - 3) : first_diff]}, "
        f"live before: {r.live[max(0, first_diff - 3) : first_diff]})"
    )
    assert r.engine == r.live
    # Guards the test itself: the window preempts, and moves the node and runs on on-demand, or
    # (the on-notice case) waits with no node while every zone is down.
    if case is CASES[4]:
        assert r.preemptions >= 2 and "wait" in r.live[1:], r.live
    elif case.checkpoint_gb > 0:
        assert r.preemptions >= 1 and "wait" in r.live[1:], r.live
    else:
        assert r.preemptions >= 2 and r.moves >= 1 and "on-demand" in r.live
    assert case.expects <= r.transitions, r.transitions
