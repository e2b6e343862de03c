"""End to end on the local simulated multi-cloud: a load that breaks the SLO with one replica makes the
SLO policy add a replica on the cheapest offer that keeps it, and when the load drops the most expensive
replica is removed (not Serve's default pick, the newest).

Numbers (SLO p95 300 ms, 50 ms per request served one at a time, max 8 in a replica; clients us-east-1):
- the pool's first node goes on its cheapest offer, azure westus2 NC4as_T4_v3 spot ($0.0616/h); the
  test then moves that offer's price to $1/h on the price board (a price move);
- 30 req/s on one replica that serves 20 req/s: the replica's queue fills (8 x 50 = 400 ms, + RTT
  us-east-1 -> westus2 70 ms) -> p95 > 300 ms -> add one. Every pool offer keeps the SLO for us-east-1
  clients (westus2: 70 + 50 = 120 ms), so the cheapest: azure eastus NC4as_T4_v3 spot ($0.0627/h);
- 2 req/s: p95 about 50-120 ms <= 150 ms (0.5 x SLO) and the two replicas would each be far below 60%
  busy as one -> remove the most expensive: the $1/h westus2 replica, the older one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

pytestmark = pytest.mark.e2e

WESTUS2 = "azure/westus2/-/Standard_NC4as_T4_v3/spot"
EASTUS = "azure/eastus/-/Standard_NC4as_T4_v3/spot"


def test_slo_breach_adds_the_cheapest_keeping_replica_and_low_load_removes_the_dearest(tmp_path: Path) -> None:
    import ray
    from ray import serve

    from ray_multicloud.pricing.board import PriceBoard
    from ray_multicloud.scenarios.loadtest import LoadGenerator
    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port
    from ray_multicloud.scenarios.serve_migration import replica_states, serve_start, serving_nodes
    from ray_multicloud.scenarios.serve_slo import POOL, pool_offers, slo_cluster_overrides, slo_deployment
    from ray_multicloud.serve.ranking import Slo
    from ray_multicloud.serve.slo_autoscale import slo_autoscaling_config
    from ray_multicloud.serve.spread import multicloud_deployment_options

    with LocalCluster(workdir=tmp_path, overrides=slo_cluster_overrides(max_replicas=3)) as cluster:
        cluster.connect()
        try:
            first = cluster.wait_for(lambda: [n for n in serving_nodes(cluster) if n.ray_node_id], timeout_s=120)[0]
            assert first.offer_id == WESTUS2
            PriceBoard(cluster.state_dir).set(WESTUS2, 1.0)
            offers = pool_offers(cluster)
            port = free_port()
            serve_start(port)
            autoscaling = slo_autoscaling_config(
                p95_ms=300, service_ms=50, clients={"us-east-1": 1.0}, offers=offers, min_replicas=1,
                max_replicas=2, cluster_name=cluster.cluster_name, pool=POOL, state_dir=str(cluster.state_dir),
                upscale_delay_s=2, downscale_delay_s=6, look_back_period_s=3)
            options = multicloud_deployment_options(
                slo=Slo(300, 50), state_dir=str(cluster.state_dir), min_clouds=1, min_on_demand=0,
                autoscaling_config=autoscaling)
            serve.run(slo_deployment(options, work_ms=50, state_dir=str(cluster.state_dir), window_s=5),
                      route_prefix="/")
            cluster.wait_for(lambda: replica_states().get("RUNNING", 0) == 1, timeout_s=90)

            high = LoadGenerator(port, rate_per_s=30, duration_s=150, client_regions=("us-east-1",),
                                 threads=16).start()
            try:
                cluster.wait_for(lambda: replica_states().get("RUNNING", 0) == 2, timeout_s=120)
            finally:
                high.stop()
                high.join()
            added = [n for n in serving_nodes(cluster) if n.instance_id != first.instance_id]
            assert [n.offer_id for n in added] == [EASTUS], added

            low = LoadGenerator(port, rate_per_s=2, duration_s=150, client_regions=("us-east-1",),
                                threads=2).start()
            try:
                cluster.wait_for(lambda: replica_states() == {"RUNNING": 1}, timeout_s=120)
                time.sleep(2)
                mark = len(low.samples)
                cluster.wait_for(lambda: len([s for s in low.samples[mark:] if s.ok]) >= 4, timeout_s=30)
                served = {s.body.get("region") for s in low.samples[mark:] if s.ok}
            finally:
                low.stop()
                low.join()
            assert served == {"eastus"}, served  # the $1/h westus2 replica went, the newer one stayed
            failed = [s for s in high.samples + low.samples if not s.ok]
            assert not failed, failed[:3]
            # the removed replica's node is idle, and the autoscaler reclaims it
            driver = cluster.clouds()["azure"]
            cluster.wait_for(lambda: driver.get(first.instance_id) is None
                             or driver.get(first.instance_id).state.value not in ("running", "pending"),
                             timeout_s=90)
        finally:
            try:
                serve.shutdown()
            finally:
                ray.shutdown()
