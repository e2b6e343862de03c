"""Spot hedging live on the local simulated multi-cloud, as the end-to-end test runs it.

The cluster is ``cluster_configs/local-spot-hedge.yaml``: a ``serve_pool`` of three T4 nodes,
``min_on_demand: 1`` and ``min_clouds: 3`` over aws, gcp and azure (so one on-demand node and two spot
nodes on two clouds), the controller on the head. The event sequence it shows (SkyServe's SpotHedge):

``aws on-demand + azure spot + gcp spot`` -> every cloud's spot market empties (``withdraw_spot``:
the spot nodes get a notice and go, spot launches answer "no capacity") -> the autoscaler's
replacements are refused on spot, cooled down, and land on on-demand (three on-demand nodes) ->
spot comes back (``give_back_spot``) -> the controller moves the on-demand nodes beyond
``min_on_demand`` back onto spot, one per tick (``max_disrupted: 1``), replacement first -> one
on-demand + two spot again. ``MixWatch`` samples the pool's mix throughout, so a test can say the
pool never had fewer than ``min_on_demand`` on-demand nodes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.clouds.base import TAG_CAPACITY, TAG_POOL
from ray_multicloud.scenarios.serve_migration import POOL
from ray_multicloud.types import NodeState

CONFIG = Path(__file__).resolve().parents[2] / "cluster_configs" / "local-spot-hedge.yaml"
MIN_ON_DEMAND = 1


@dataclass(frozen=True, slots=True)
class Mix:
    """The serving pool's nodes whose Ray node is up, by capacity type; ``spot_clouds``: the clouds
    the spot ones are on; ``starting``: nodes launched whose Ray node is not up yet."""

    on_demand: int
    spot: int
    spot_clouds: frozenset[str]
    starting: int


def pool_mix(cluster: Any) -> Mix:
    """The serving pool's mix now, from the local clouds' state as the provider sees it: a node is
    up once its instance is ``running`` (the instance process marks it so when its Ray node has
    started; a noticed node stays up until its deadline)."""
    nodes = [i for i in cluster.workers() if i.tags.get(TAG_POOL) == POOL]
    up = [i for i in nodes if i.state is NodeState.RUNNING]
    spot = [i for i in up if i.tags.get(TAG_CAPACITY) == "spot"]
    return Mix(on_demand=sum(1 for i in up if i.tags.get(TAG_CAPACITY) == "on-demand"), spot=len(spot),
               spot_clouds=frozenset(i.cloud for i in spot), starting=len(nodes) - len(up))


def withdraw_spot(cluster: Any, *, notice_s: float) -> list[str]:
    """Every local cloud of the cluster runs out of spot (``LocalCloud.withdraw``): its spot nodes
    get a notice and go ``notice_s`` later; spot launches are refused until ``give_back_spot``.
    Returns the preempted instances' ids."""
    out: list[str] = []
    for cloud in cluster.clouds().values():
        out.extend(str(i) for i in cloud.withdraw(cluster.cluster_name, "spot", notice_s=notice_s))
    return out


def give_back_spot(cluster: Any) -> None:
    """Spot capacity comes back on every local cloud of the cluster."""
    for cloud in cluster.clouds().values():
        cloud.give_back("spot")


class MixWatch:
    """Samples ``pool_mix`` every ``interval_s`` in a thread of its own, from ``start()`` to ``stop()``;
    ``samples`` keeps every one in order."""

    def __init__(self, cluster: Any, *, interval_s: float = 0.5) -> None:
        self.cluster = cluster
        self.interval_s = interval_s
        self.samples: list[Mix] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mix-watch", daemon=True)

    def start(self) -> MixWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(pool_mix(self.cluster))
            self._stop.wait(self.interval_s)


__all__ = ["CONFIG", "MIN_ON_DEMAND", "POOL", "Mix", "MixWatch", "give_back_spot", "pool_mix",
           "withdraw_spot"]
