"""End to end on the local simulated multi-cloud: spot hedging for a live Serve app (the serving issue's
item 3; the same mechanism on in-memory clouds: tests/test_spot_hedge_live.py).

The cluster is cluster_configs/local-spot-hedge.yaml: a serving pool of 3 T4 nodes, min_on_demand 1,
min_clouds 3 over aws, gcp and azure, the controller on the head; one Serve replica per node. Expected
(prices from the catalog snapshot, `ray-multicloud plan cluster_configs/local-spot-hedge.yaml`):
aws us-east-1 on-demand ($0.526/h, the cheapest on-demand T4), azure eastus2 spot ($0.058/h) and gcp
us-west4 spot ($0.187/h): 1 on-demand + 2 spot on 2 clouds.
1. every cloud's spot market empties: the 2 spot nodes get a 10 s notice and go; their replacements
   are refused on spot and land on on-demand -> 3 on-demand nodes, 3 replicas answering;
2. spot comes back: the controller moves the 2 on-demand nodes beyond min_on_demand back onto spot,
   one per tick -> 1 on-demand + 2 spot on 2 clouds again; never fewer than 1 on-demand node up.
A bounded loopback client (4 req/s) runs throughout: no request may fail.
Timeouts are generous: on a loaded machine a node's Ray start can take tens of seconds. It took 222-521 s
here (276 s at load 6-16 with every fix in; docs/serving.md has the figures), over the ~120 s an e2e
test should take: two moves back to spot, one per controller tick, are most of it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

pytestmark = pytest.mark.e2e

NOTICE_S = 10.0


def test_spot_goes_on_demand_fills_in_spot_returns_and_serve_keeps_answering(tmp_path: Path) -> None:
    import ray
    from ray import serve

    from ray_multicloud.scenarios.loadtest import LoadGenerator, format_table, summarise
    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port
    from ray_multicloud.scenarios.serve_migration import serve_start, wait_steady, where_am_i_deployment
    from ray_multicloud.scenarios.spot_hedge import (
        CONFIG,
        MIN_ON_DEMAND,
        Mix,
        MixWatch,
        give_back_spot,
        pool_mix,
        withdraw_spot,
    )
    from ray_multicloud.serve.spread import multicloud_deployment_options

    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    began = time.monotonic()
    marks: dict[str, float] = {}
    with LocalCluster(CONFIG, workdir=tmp_path) as cluster:
        cluster.connect()
        watch = MixWatch(cluster)
        load: LoadGenerator | None = None
        try:
            def hedged() -> bool:
                mix = pool_mix(cluster)
                return (mix.on_demand == MIN_ON_DEMAND and mix.spot == 2 and len(mix.spot_clouds) == 2
                        and mix.starting == 0)

            cluster.wait_for(hedged, timeout_s=240, interval_s=1)
            marks["pool up"] = time.monotonic() - began
            port = free_port()
            serve_start(port)
            options = multicloud_deployment_options(replicas=3, min_clouds=3, min_on_demand=MIN_ON_DEMAND)
            serve.run(where_am_i_deployment(options, work_ms=5), route_prefix="/")
            wait_steady(3, timeout_s=120)
            marks["serving"] = time.monotonic() - began
            watch.start()
            load = LoadGenerator(port, rate_per_s=4, duration_s=900, threads=4).start()
            time.sleep(3)

            # 1. Spot goes everywhere: on-demand replacements come up, Serve keeps 3 replicas.
            load.set_phase("spot-gone")
            gone = withdraw_spot(cluster, notice_s=NOTICE_S)
            assert len(gone) == 2, gone
            all_on_demand = Mix(on_demand=3, spot=0, spot_clouds=frozenset(), starting=0)
            cluster.wait_for(lambda: pool_mix(cluster) == all_on_demand, timeout_s=300, interval_s=1)
            wait_steady(3, timeout_s=120)
            marks["on-demand fallback"] = time.monotonic() - began
            time.sleep(3)
            fallback = [s for s in load.samples if s.phase == "spot-gone" and s.ok]
            assert fallback, "no request answered while spot was gone"

            # 2. Spot comes back: the controller retires the on-demand nodes beyond min_on_demand.
            load.set_phase("spot-back")
            give_back_spot(cluster)
            cluster.wait_for(hedged, timeout_s=600, interval_s=1)
            wait_steady(3, timeout_s=120)
            marks["back on spot"] = time.monotonic() - began
            load.set_phase("after")
            mark = len(load.samples)
            cluster.wait_for(lambda: sum(1 for s in load.samples[mark:] if s.ok) >= 20, timeout_s=60)
            served = {s.body.get("market") for s in load.samples[mark:] if s.ok}
        finally:
            watch.stop()
            if load is not None:
                load.stop()
                load.join()
            try:
                serve.shutdown()
            finally:
                ray.shutdown()
        samples = load.samples
        print(format_table(summarise(samples)))
        print({k: round(v, 1) for k, v in marks.items()})
        failed = [s for s in samples if not s.ok]
        assert not failed, (len(failed), len(samples), failed[:3])
        assert served == {"on-demand", "spot"}, served  # replicas on both kinds answer
        # Never fewer than min_on_demand on-demand nodes up, through both phases.
        assert watch.samples and min(m.on_demand for m in watch.samples) >= MIN_ON_DEMAND, watch.samples[:5]
        # The fallback really was on-demand: at some point all three nodes were.
        assert any(m.on_demand == 3 and m.spot == 0 for m in watch.samples)

