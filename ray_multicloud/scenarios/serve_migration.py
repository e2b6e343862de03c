"""Serve on the local simulated multi-cloud: a serving pool, a deployment that says where it ran, and
the three events a multi-cloud deployment must survive, as the end-to-end test and the benchmark run them.

- ``cluster_overrides``: a ``LocalCluster`` override adding the ``serve_pool`` node type (T4 nodes on
  aws and azure, >= 2 clouds, >= 1 on-demand, one Serve slot per node).
- ``WhereAmI``: a deployment that answers ``{"cloud", "region", "market", "node"}`` of its node after
  ``work_ms`` of simulated work, and ``"ms"``, the replica's own time on the request.
- ``price_move``: a price spike on one node's offer -> ``policy.place`` picks the replacement offer under
  the pool's policy (the node leaving does not count) -> ``controller.move_node``: replacement up first,
  then a PREEMPTION drain of the old node (Serve starts the new replica before stopping the old one),
  then the old instance is terminated.
- ``preempt`` / ``outage``: ``LocalCloud.preempt`` (notice, then loss) and ``LocalCloud.outage``.

Needs a running Ray driver connected to the cluster (``ray.init(cluster.address)``) for the Serve parts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray_multicloud.serve.spread import DEFAULT_SLOT, serving_pool_node_type

POOL = "serve_pool"
POOL_CLOUDS = ("aws", "azure")
POOL_REGIONS = ("us-east-1", "eastus", "westus2")


def cluster_overrides(*, replicas: int = 2, idle_timeout_minutes: float = 1.0) -> dict[str, Any]:
    """``LocalCluster(overrides=...)`` for a serving pool of ``replicas`` nodes over aws and azure.

    The idle timeout is longer than the repo default so a move's replacement node is not reclaimed as
    idle in the seconds before Serve places the new replica on it.
    """
    return {
        "idle_timeout_minutes": idle_timeout_minutes,
        # The scenarios move replicas' nodes themselves (``move_node``), so `ray up` starts no controller.
        "provider": {"start_controller": False},
        "available_node_types": {
            POOL: serving_pool_node_type(clouds=POOL_CLOUDS, regions=POOL_REGIONS, replicas=replicas,
                                         min_clouds=2, min_on_demand=1),
        },
    }


def where_am_i_deployment(options: Mapping[str, Any], *, work_ms: float = 5.0) -> Any:
    """A bound Serve app of ``WhereAmI`` with the given ``serve.deployment`` options."""
    from ray import serve

    @serve.deployment(**options)
    class WhereAmI:
        def __init__(self) -> None:
            import ray

            labels = {str(k): str(v) for k, v in ray.get_runtime_context().get_node_labels().items()}
            self.where: dict[str, str] = {
                "cloud": labels.get("rmc/cloud", ""),
                "region": labels.get("ray.io/availability-region", ""),
                "market": labels.get("ray.io/market-type", ""),
                "node": ray.get_runtime_context().get_node_id()[:12],
            }

        async def __call__(self, request: Any) -> dict[str, str]:
            import asyncio

            began = time.perf_counter()
            if work_ms > 0:
                await asyncio.sleep(work_ms / 1000.0)
            # "ms": this replica's own time on the request (what it costs; the client's time adds
            # the proxy, the router and queueing).
            return {**self.where, "ms": f"{(time.perf_counter() - began) * 1000.0:.3f}"}

    return WhereAmI.bind()  # type: ignore[attr-defined]


def serve_start(port: int) -> None:
    """Start Serve with its one HTTP proxy on the head, bound to loopback ``port``."""
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")


def replica_states(app: str = "default", deployment: str | None = None) -> dict[str, int]:
    """Replica counts by state of every deployment of ``app`` (summed; only ``deployment`` when
    given), from ``serve.status()``."""
    from ray import serve

    status = serve.status()
    out: dict[str, int] = {}
    application = status.applications.get(app)
    if application is None:
        return out
    for name, status_of in application.deployments.items():
        if deployment is not None and name != deployment:
            continue
        for state, n in status_of.replica_states.items():
            key = str(getattr(state, "value", state))
            out[key] = out.get(key, 0) + int(n)
    return out


def wait_steady(replicas: int, *, timeout_s: float, app: str = "default",
                deployment: str | None = None) -> float:
    """Wait until ``app`` (its ``deployment`` when given) has exactly ``replicas`` RUNNING replicas and
    no other; seconds waited."""
    start = time.monotonic()
    while True:
        states = replica_states(app, deployment)
        if states.get("RUNNING", 0) == replicas and sum(states.values()) == replicas:
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(
                f"deployment not back to {replicas} running replicas in {timeout_s:.0f}s: {states}")
        time.sleep(0.5)


@dataclass(frozen=True, slots=True)
class ServingNode:
    """A serving-pool node: its cloud instance, offer id and Ray node id."""

    instance_id: str
    cloud: str
    offer_id: str
    ray_node_id: str | None


def serving_nodes(cluster: Any) -> list[ServingNode]:
    """The live serving-pool nodes of a ``LocalCluster``, in launch order."""
    out = []
    clouds = cluster.clouds()
    for inst in cluster.workers():
        if inst.tags.get("rmc-pool") != POOL or inst.state.value not in ("running", "pending"):
            continue
        cloud = clouds.get(inst.cloud)
        out.append(ServingNode(inst.instance_id, inst.cloud, inst.tags.get("rmc-offer", ""),
                               cloud.ray_node_id(inst.instance_id) if cloud is not None else None))
    return out


def price_move(cluster: Any, instance_id: str, *, spike_to: float = 5.0,
               drain_deadline_s: float = 30.0) -> Any:
    """Raise the price of ``instance_id``'s offer to ``spike_to`` $/h on the cluster's price board and move
    the node to the offer the placement policy picks now (see the module docstring).

    Returns the ``controller.MoveResult``. Raises ``RuntimeError`` when the policy has no other offer.
    """
    from ray_multicloud.cluster_config.pools import parse_pool
    from ray_multicloud.controller import NodeTypeSpec, move_node
    from ray_multicloud.policy import place
    from ray_multicloud.pricing.board import PriceBoard
    from ray_multicloud.provider import MultiCloudNodeProvider
    from ray_multicloud.types import Decision, InstanceId, Move

    provider = MultiCloudNodeProvider(dict(cluster.config["provider"]), cluster.cluster_name)
    fleet = provider.fleet()
    old = next((n for n in fleet if n.instance_id == instance_id), None)
    if old is None:
        raise RuntimeError(f"{instance_id} is not in the fleet of {cluster.cluster_name}")
    PriceBoard(cluster.state_dir).set(old.offer.offer_id, spike_to)
    node_type = cluster.config["available_node_types"][POOL]
    pool = parse_pool(POOL, node_type["node_config"], provider.offers.index())
    others = [n for n in fleet if n.instance_id != instance_id]
    decision = place(pool, 1, provider.offers.index(), others, now=time.time())
    if not isinstance(decision, Decision) or not decision.placements:
        raise RuntimeError(f"no replacement offer for {instance_id}: {decision}")
    to_offer = decision.placements[0].offer
    fresh_from = provider.offers.get(old.offer.offer_id) or old.offer
    move = Move(instance_id=InstanceId(instance_id), pool=POOL, from_offer=fresh_from, to_offer=to_offer,
                saving_per_hour=fresh_from.price_per_hour - to_offer.price_per_hour, move_cost_usd=0.0,
                reasons=decision.placements[0].reasons)
    spec = NodeTypeSpec(resources=dict(node_type.get("resources", {})),
                        labels=dict(node_type.get("labels", {})))
    return move_node(provider, move, spec=spec, gcs_address=cluster.address,
                     drain_deadline_s=drain_deadline_s)


def preempt(cluster: Any, instance_id: str, cloud: str, *, notice_s: float) -> float:
    """Spot preemption of one serving node on the local cloud: notice now, loss ``notice_s`` later."""
    return float(cluster.clouds()[cloud].preempt(instance_id, notice_s=notice_s))


def outage(cluster: Any, cloud: str) -> list[str]:
    """The whole simulated ``cloud`` goes down at once (no notice)."""
    return [str(i) for i in cluster.clouds()[cloud].outage(cluster.cluster_name, notice_s=0.0)]


def quiet_env() -> None:
    """Environment every driver here sets before importing Ray: loopback only, no usage stats."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


__all__ = [
    "DEFAULT_SLOT",
    "POOL",
    "ServingNode",
    "cluster_overrides",
    "outage",
    "preempt",
    "price_move",
    "quiet_env",
    "replica_states",
    "serve_start",
    "serving_nodes",
    "wait_steady",
    "where_am_i_deployment",
]
