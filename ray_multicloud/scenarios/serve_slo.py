"""SLO-driven Serve autoscaling on the local simulated multi-cloud, as the end-to-end test runs it.

A serving pool of 1..3 T4 nodes over aws and azure (``us-east-1``, ``eastus``, ``westus2``), one Serve
slot per node; a deployment (``SloWhereAmI``) that serves one request at a time for ``work_ms`` (a GPU
running one batch: a queue builds inside the replica under load) and measures itself
(``serve.slo_autoscale.SloMeasured``); the SLO policy (``slo_autoscaling_config``) as Serve's
autoscaling policy, told the pool's offers and the cluster's launch-directive file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray_multicloud.policy.slo import CapacityOption
from ray_multicloud.serve.spread import serving_pool_node_type

POOL = "serve_pool"
POOL_CLOUDS = ("aws", "azure")
POOL_REGIONS = ("us-east-1", "eastus", "westus2")
# Replicas push their autoscaling metrics every second (Serve's default is 10 s).
FAST_METRICS = {"RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1"}


def slo_cluster_overrides(*, max_replicas: int = 3, idle_timeout_minutes: float = 0.15) -> dict[str, Any]:
    """``LocalCluster(overrides=...)``: a serving pool that starts with one node and may grow to
    ``max_replicas``; an idle node (a removed replica's) is reclaimed after ``idle_timeout_minutes``."""
    return {
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {"start_controller": False},
        "available_node_types": {
            POOL: serving_pool_node_type(clouds=POOL_CLOUDS, regions=POOL_REGIONS, replicas=1,
                                         min_clouds=1, min_on_demand=0, max_workers=max_replicas),
        },
    }


def pool_offers(cluster: Any) -> list[CapacityOption]:
    """The serving pool's matching offers on the cluster's offer book, best first."""
    from ray_multicloud.cluster_config.pools import parse_pool
    from ray_multicloud.policy.place import matching_offers
    from ray_multicloud.provider import MultiCloudNodeProvider

    provider = MultiCloudNodeProvider(dict(cluster.config["provider"]), cluster.cluster_name)
    index = provider.offers.index()
    pool = parse_pool(POOL, cluster.config["available_node_types"][POOL]["node_config"], index)
    return [CapacityOption(o.offer_id, o.region, o.price_per_hour) for o in matching_offers(pool, index)]


def slo_deployment(options: Mapping[str, Any], *, work_ms: float, state_dir: str,
                   window_s: float = 5.0) -> Any:
    """A bound Serve app of ``SloWhereAmI``: one request at a time, ``work_ms`` each, measured."""
    from ray import serve

    from ray_multicloud.serve.slo_autoscale import SloMeasured

    actor_options = dict(options.get("ray_actor_options") or {})
    actor_options["runtime_env"] = {"env_vars": dict(FAST_METRICS)}
    merged = {**options, "ray_actor_options": actor_options}

    @serve.deployment(**merged)
    class SloWhereAmI(SloMeasured):
        slo_state_dir = state_dir
        slo_window_s = window_s

        def __init__(self) -> None:
            import asyncio

            import ray

            labels = {str(k): str(v) for k, v in ray.get_runtime_context().get_node_labels().items()}
            self.where: dict[str, str] = {
                "cloud": labels.get("rmc/cloud", ""),
                "region": labels.get("ray.io/availability-region", ""),
                "node": ray.get_runtime_context().get_node_id()[:12],
            }
            self.gpu = asyncio.Lock()
            self.slo_meter()

        async def __call__(self, request: Any) -> dict[str, str]:
            import asyncio

            with self.slo_measure(request):
                async with self.gpu:
                    await asyncio.sleep(work_ms / 1000.0)
            return self.where

    return SloWhereAmI.bind()  # type: ignore[attr-defined]


__all__ = ["POOL", "pool_offers", "slo_cluster_overrides", "slo_deployment"]
