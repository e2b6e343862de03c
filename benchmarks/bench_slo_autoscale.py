"""SLO-driven Serve autoscaling, live, on one local Ray node: the Serve side of issue 14 item 1.

Run:  .venv/bin/python benchmarks/bench_slo_autoscale.py

A single-node Ray (``address="local"``, loopback, 2 CPUs, 3 ``serve_slot``s) runs ``SloWhereAmI``
(``scenarios/serve_slo.py``: one request at a time, 50 ms each, at most 8 in the replica, measured by
``serve.slo_autoscale.SloMeasured``) with ``slo_autoscaling_config(p95_ms=300, service_ms=50)`` as its
Serve autoscaling policy, 1..2 replicas. 30 req/s (one replica serves 20) until Serve runs two replicas,
10 s more, then 2 req/s until it runs one again. Prints when it scaled, p50/p95 per phase (from the
repo's open-loop generator, latency from each request's due time) and the policy's own lines from the
Serve controller's log. Nodes, offers and the launch directive are not exercised here (one node, no
autoscaler): ``tests/test_slo_e2e.py`` does that on the local multi-cloud.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from ray import serve

from ray_multicloud.policy.slo import CapacityOption
from ray_multicloud.scenarios.loadtest import LoadGenerator, summarise
from ray_multicloud.scenarios.local_cluster import free_port
from ray_multicloud.scenarios.serve_migration import replica_states
from ray_multicloud.scenarios.serve_slo import slo_deployment
from ray_multicloud.serve.slo_autoscale import slo_autoscaling_config


def main() -> int:
    ctx = ray.init(
        address="local",
        num_cpus=2,
        resources={"serve_slot": 3},
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
    )
    port = free_port()
    state_dir = tempfile.mkdtemp(prefix="bench_slo_")
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    offers = [CapacityOption("azure/eastus/-/Standard_NC4as_T4_v3/spot", "eastus", 0.0627)]
    auto = slo_autoscaling_config(
        p95_ms=300,
        service_ms=50,
        clients={"us-east-1": 1},
        offers=offers,
        min_replicas=1,
        max_replicas=2,
        upscale_delay_s=2,
        downscale_delay_s=6,
        look_back_period_s=3,
    )
    opts = {
        "max_ongoing_requests": 8,
        "autoscaling_config": auto,
        "ray_actor_options": {"num_cpus": 0, "resources": {"serve_slot": 1}},
    }
    serve.run(slo_deployment(opts, work_ms=50, state_dir=str(state_dir), window_s=5), route_prefix="/")
    t0 = time.time()
    print("deployed", replica_states(), flush=True)
    high = LoadGenerator(
        port, rate_per_s=30, duration_s=120, client_regions=("us-east-1",), threads=16
    ).start()
    high.set_phase("high 30 req/s")
    while replica_states().get("RUNNING", 0) < 2 and time.time() - t0 < 150:
        time.sleep(1)
    print("scaled up after", round(time.time() - t0), "s:", replica_states(), flush=True)
    time.sleep(10)
    high.stop()
    high.join()
    low = LoadGenerator(port, rate_per_s=2, duration_s=150, client_regions=("us-east-1",), threads=2).start()
    low.set_phase("low 2 req/s")
    t1 = time.time()
    while replica_states() != {"RUNNING": 1} and time.time() - t1 < 150:
        time.sleep(1)
    print("scaled down after", round(time.time() - t1), "s:", replica_states(), flush=True)
    low.stop()
    low.join()
    for s in summarise(high.samples + low.samples, ["high 30 req/s", "low 2 req/s"]):
        print(
            s.phase,
            "sent",
            s.sent,
            "failed",
            s.failed,
            "p50",
            round(s.p50_ms),
            "p95",
            round(s.p95_ms),
            flush=True,
        )
    logs = glob.glob(os.path.join(ctx.address_info["session_dir"], "logs", "serve", "controller_*.log"))
    for f in logs:
        with open(f) as fh:
            for line in fh:
                if "SLO autoscaling" in line or "scaling Deployment" in line:
                    print(line.strip()[:400], flush=True)
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
