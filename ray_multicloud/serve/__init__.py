"""Ray Serve across clouds: a cost- and latency-aware request router and replica spread helpers.

- ``ranking``: the pure rule that orders replicas for one request (cheapest that keeps the SLO, else fastest).
- ``router``: ``CostLatencyRouter``, the Ray Serve ``RequestRouter`` that applies it (imported by path,
  ``ray_multicloud.serve.router.CostLatencyRouter``, so this package does not import Ray Serve).
- ``cluster_state``: the node table, draining nodes and prices the router reads per request, refreshed
  by a background thread so that no request waits on the GCS.
- ``spread``: deployment options and a pool node type that keep replicas on at least two clouds.
"""

from ray_multicloud.serve.ranking import (
    Ranked,
    ReplicaView,
    RttTable,
    Slo,
    Weights,
    client_region_from_key,
    estimate_ms,
    load_rtt_table,
    rank_replicas,
)

__all__ = [
    "Ranked",
    "ReplicaView",
    "RttTable",
    "Slo",
    "Weights",
    "client_region_from_key",
    "estimate_ms",
    "load_rtt_table",
    "rank_replicas",
]
