"""Keep a Serve deployment's replicas on at least two clouds, mixing on-demand and spot.

Spread is decided where nodes are bought, not where actors are placed: a *serving pool* node type
(``serving_pool_node_type``) asks the provider's placement policy for ``min_clouds`` clouds and
``min_on_demand`` on-demand nodes, and offers exactly one ``slot_resource`` per node; the deployment
(``multicloud_deployment_options``) asks one slot per replica. So each replica sits on its own node,
the pool's nodes span the clouds, and a replica that must move (drain, preemption) makes the autoscaler
buy a node of the same pool, placed under the same policy::

    at least 1 on-demand + the rest on the cheapest spot, over >= 2 clouds:
    replica 1 -> aws us-east-1 on-demand; replica 2 -> azure westus2 spot
    azure westus2 spot preempted -> (notice) new azure node, replica re-placed -> old node gone

Pure: these functions build plain dicts for a cluster YAML and for ``serve.deployment(**options)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ray_multicloud.serve.ranking import Slo, Weights

DEFAULT_SLOT = "serve_slot"
ROUTER_PATH = "ray_multicloud.serve.router:CostLatencyRouter"
DEFAULT_SLO = Slo()
DEFAULT_WEIGHTS = Weights()


def serving_pool_node_type(
    *,
    accelerator: str | None = "T4",
    clouds: Sequence[str] = (),
    regions: Sequence[str] = (),
    min_clouds: int = 2,
    min_on_demand: int = 1,
    replicas: int = 2,
    max_workers: int | None = None,
    slot_resource: str = DEFAULT_SLOT,
    cpus: int = 1,
) -> dict[str, Any]:
    """An ``available_node_types`` entry for a serving pool that spreads over ``min_clouds`` clouds.

    ``min_workers = replicas`` keeps the pool's nodes up; ``max_workers`` (default ``replicas + 1``)
    leaves room for one replacement bought before an old node goes.
    """
    _check(replicas=replicas, min_clouds=min_clouds, min_on_demand=min_on_demand)
    if clouds and len(set(clouds)) < min_clouds:
        raise ValueError(f"min_clouds={min_clouds} but only clouds {list(clouds)} are allowed")
    pool: dict[str, Any] = {"min_clouds": min_clouds, "min_on_demand": min_on_demand}
    if accelerator:
        pool["accelerator"] = accelerator
        pool["accelerator_count"] = 1
    if clouds:
        pool["clouds"] = list(clouds)
    if regions:
        pool["regions"] = list(regions)
    return {
        "resources": {"CPU": cpus, slot_resource: 1},
        "min_workers": replicas,
        "max_workers": replicas + 1 if max_workers is None else max_workers,
        "node_config": {"pool": pool},
    }


def router_config(
    slo: Slo = DEFAULT_SLO,
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    default_client_region: str | None = None,
    state_dir: str | None = None,
    prices: Mapping[str, float] | None = None,
    rtt_table: str | None = None,
) -> dict[str, Any]:
    """``request_router_config`` for ``serve.deployment``: the cost/latency router, its SLO and weights."""
    kwargs: dict[str, Any] = {
        "slo_ms": slo.target_ms,
        "service_ms": slo.service_ms,
        "price_weight": weights.price,
        "latency_weight": weights.latency,
    }
    optional = {"default_client_region": default_client_region, "state_dir": state_dir,
                "prices": dict(prices) if prices else None, "rtt_table": rtt_table}
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    return {"request_router_class": ROUTER_PATH, "request_router_kwargs": kwargs}


def multicloud_deployment_options(
    *,
    replicas: int = 2,
    min_clouds: int = 2,
    min_on_demand: int = 1,
    slot_resource: str = DEFAULT_SLOT,
    slo: Slo | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    default_client_region: str | None = None,
    state_dir: str | None = None,
    max_ongoing_requests: int = 8,
    graceful_shutdown_timeout_s: float = 20.0,
    autoscaling_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Options for ``serve.deployment(**options)``: one replica per serving-pool node, cost/latency routed.

    ``min_clouds``/``min_on_demand`` are checked against ``replicas`` here (a pool cannot spread two
    replicas over three clouds) and must match the pool's node type. ``slo=None`` keeps Serve's
    default router. The graceful shutdown timeout bounds how long a draining replica finishes its
    in-flight requests; keep it below the shortest interruption notice you expect.
    ``autoscaling_config`` (e.g. ``serve.slo_autoscale.slo_autoscaling_config``) replaces the fixed
    count: ``replicas`` is then its ``min_replicas``.
    """
    if autoscaling_config is not None:
        replicas = int(autoscaling_config.get("min_replicas", replicas) or 1)
    _check(replicas=replicas, min_clouds=min_clouds, min_on_demand=min_on_demand)
    options: dict[str, Any] = {
        "num_replicas": replicas,
        "max_ongoing_requests": max_ongoing_requests,
        "graceful_shutdown_timeout_s": graceful_shutdown_timeout_s,
        "ray_actor_options": {"num_cpus": 0, "resources": {slot_resource: 1}},
    }
    if autoscaling_config is not None:
        del options["num_replicas"]
        options["autoscaling_config"] = dict(autoscaling_config)
    if slo is not None:
        options["request_router_config"] = router_config(
            slo, weights, default_client_region=default_client_region, state_dir=state_dir)
    return options


def _check(*, replicas: int, min_clouds: int, min_on_demand: int) -> None:
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if min_clouds < 1:
        raise ValueError(f"min_clouds must be >= 1, got {min_clouds}")
    if min_clouds > replicas:
        raise ValueError(f"min_clouds={min_clouds} needs at least that many replicas, got {replicas}")
    if not 0 <= min_on_demand <= replicas:
        raise ValueError(f"min_on_demand must be between 0 and replicas={replicas}, got {min_on_demand}")
