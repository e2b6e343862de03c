"""End to end on the local simulated multi-cloud: a known peak from the calendar is provisioned one lead
ahead by the controller's predictive step, through Ray's real ``request_resources``, the real
autoscaler (v2) and ``MultiCloudNodeProvider`` (the serving issue's item 2, live; the same step with
``request_resources``, Serve and the clock faked: tests/test_predictive.py).

The cluster is cluster_configs/local-predictive.yaml: a serving pool of one node (min_workers 1,
min_replicas 1), ``predictive: {lead: 40s, max_replicas: 3}``, ``migration.enabled: false``. A Serve
deployment measured by the SLO policy (``slo_autoscaling_config`` with the cluster's name, the pool and
its state dir, so it reads the controller's replica floor) runs one replica on the pool's first node.
Then the test starts the controller, the very command ``ray up`` puts on the head
(``python -m ray_multicloud.controller --config ...``, ticking every 2 s), on the cluster's YAML with
the pool's ``peaks:`` set to one one-off window of 3 replicas opening ``PEAK_AFTER_S`` later. The
controller is started by the test, not by ``ray up``, so that the peak opens a known time after the
cluster and Serve are up whatever a loaded machine makes of ``ray up`` (50-100 s here); that ``ray up``
starts the controller for such a pool is tests/test_predictive.py's
``test_ray_up_starts_the_controller_for_a_predictive_only_pool``. Expected, by hand:

- while ``now + lead`` is before the peak, the plan is 1 replica on 1 node (min_replicas; no load);
- at the first tick with ``now >= peak start - lead`` the plan becomes 3 replicas on 3 nodes: one
  ``request_resources`` of 3 bundles ``{CPU: 1, serve_slot: 1}`` (the node type's resources), which
  the autoscaler meets with 2 more serve_pool nodes, both launched at or after ``peak start - lead``
  and, the lead being longer than the autoscaler's reaction, before the peak opens; the floor file
  says 3 and the Serve policy raises the target to 3: 3 replicas RUNNING.

No load is driven: a rate-driven forecast needs ``lead + 20`` ticks of history (policy/forecast.py,
``too_short``): with a 5 s tick and a 40 s lead that is 140 s of load before the first forecast,
beyond this test's budget, so the calendar path is the live proof here (the forecast path is covered
with a faked Ray in tests/test_predictive.py).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).resolve().parents[1] / "cluster_configs" / "local-predictive.yaml"
POOL = "serve_pool"
LEAD_S = 40.0
CONTROLLER_UP_S = 20.0  # the controller's start (imports, catalog, ray.init) on a loaded machine
PEAK_AFTER_S = CONTROLLER_UP_S + LEAD_S + 15.0  # from the controller's start
PEAK_REPLICAS = 3


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_calendar_peak_gets_its_nodes_one_lead_ahead_through_request_resources(tmp_path: Path) -> None:
    import ray
    from ray import serve

    from ray_multicloud.clouds.base import TAG_POOL
    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port, ray_env
    from ray_multicloud.scenarios.serve_migration import replica_states, serve_start
    from ray_multicloud.scenarios.serve_slo import slo_deployment
    from ray_multicloud.serve.rate_log import floor_path, read_floor
    from ray_multicloud.serve.slo_autoscale import slo_autoscaling_config
    from ray_multicloud.serve.spread import multicloud_deployment_options

    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    began = time.time()
    overrides = {"provider": {"start_controller": False},
                 "available_node_types": {POOL: {"node_config": {"predictive": {
                     "lead": f"{LEAD_S:g}s", "peaks": []}}}}}
    marks: dict[str, float] = {}
    controller: subprocess.Popen[bytes] | None = None
    with LocalCluster(CONFIG, workdir=tmp_path, overrides=overrides) as cluster:
        marks["up"] = time.time() - began
        cluster.connect()

        def pool_nodes() -> list[Any]:
            return [i for i in cluster.workers() if i.tags.get(TAG_POOL) == POOL]

        try:
            port = free_port()
            serve_start(port)
            state_dir = str(cluster.state_dir)
            autoscaling = slo_autoscaling_config(
                p95_ms=300, service_ms=50, clients={"us-east-1": 1.0}, min_replicas=1,
                max_replicas=PEAK_REPLICAS, cluster_name=cluster.cluster_name, pool=POOL,
                state_dir=state_dir, upscale_delay_s=1, downscale_delay_s=600, look_back_period_s=3)
            options = multicloud_deployment_options(
                state_dir=state_dir, min_clouds=1, min_on_demand=0, autoscaling_config=autoscaling)
            serve._run(slo_deployment(options, work_ms=5, state_dir=state_dir, window_s=5),
                       route_prefix="/", _blocking=False)
            cluster.wait_for(lambda: replica_states().get("RUNNING", 0) >= 1, timeout_s=420, interval_s=1)
            marks["first replica"] = time.time() - began
            assert len(pool_nodes()) == 1, pool_nodes()

            # The controller, on the cluster's YAML with a peak PEAK_AFTER_S from now.
            started = time.time()
            peak_start = float(int(started + PEAK_AFTER_S))  # ISO-8601 to the second
            config = dict(cluster.config)
            pool_type = config["available_node_types"][POOL]
            pool_type["node_config"]["predictive"]["peaks"] = [
                {"start": iso(peak_start), "end": iso(peak_start + 600), "replicas": PEAK_REPLICAS}]
            controller_yaml = tmp_path / "controller.yaml"
            controller_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
            env = {**ray_env(), **cluster.client_env()}
            with open(tmp_path / "controller.log", "wb") as out:
                controller = subprocess.Popen(
                    [sys.executable, "-m", "ray_multicloud.controller", "--config", str(controller_yaml),
                     "--interval", "2"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                    start_new_session=True)

            # The peak's nodes: launched by the autoscaler for the controller's standing request.
            cluster.wait_for(lambda: len(pool_nodes()) >= PEAK_REPLICAS, timeout_s=PEAK_AFTER_S + 120,
                             interval_s=1)
            marks["extra launched"] = time.time() - began
            nodes = sorted(pool_nodes(), key=lambda i: i.launched_at)
            extra = nodes[1:]
            status_bundles = cluster_constraint(cluster.address)
            floor = read_floor(floor_path(cluster.state_dir, cluster.cluster_name), POOL,
                               now=time.time(), max_age_s=120)
            cluster.wait_for(lambda: replica_states().get("RUNNING", 0) >= PEAK_REPLICAS, timeout_s=300,
                             interval_s=1)
            marks["replicas up"] = time.time() - began
            marks["peak opens"] = peak_start - began
        finally:
            if controller is not None:
                if controller.poll() is None:
                    os.killpg(controller.pid, signal.SIGTERM)
                controller.wait(timeout=30)
            try:
                serve.shutdown()
            finally:
                ray.shutdown()
    marks["down"] = time.time() - began
    log = (tmp_path / "controller.log").read_text(errors="replace")
    predictive_lines = [line for line in log.splitlines() if "predictive" in line]
    print({k: round(v, 1) for k, v in marks.items()}, "lead", LEAD_S)
    print("launch - peak start (s):", [round(i.launched_at - peak_start, 1) for i in extra])
    print("\n".join(line[:300] for line in predictive_lines))
    # Asked for by the predictive step (its log line), through request_resources (the GCS holds the
    # standing cluster constraint: 3 bundles of the node type's shape).
    assert any(f"asked the autoscaler for {PEAK_REPLICAS} {POOL} node(s)" in line
               for line in predictive_lines), log[-3000:]
    assert status_bundles.count((("CPU", 1.0), ("serve_slot", 1.0))) == PEAK_REPLICAS, status_bundles
    # One lead ahead: not before the lead window opened, and before the peak opens.
    assert len(extra) == PEAK_REPLICAS - 1, nodes
    for inst in extra:
        assert peak_start - LEAD_S <= inst.launched_at <= peak_start, (
            inst.instance_id, inst.launched_at - peak_start)
    assert floor == PEAK_REPLICAS, floor


def cluster_constraint(address: str) -> list[tuple[tuple[str, float], ...]]:
    """The bundles of the cluster's standing ``request_resources`` constraint, as the autoscaler v2
    reads them from the GCS (each bundle sorted, counted once per copy)."""
    from ray.autoscaler.v2.sdk import get_cluster_status

    status = get_cluster_status(address)
    out: list[tuple[tuple[str, float], ...]] = []
    for demand in status.resource_demands.cluster_constraint_demand:
        for bundle in demand.bundles_by_count:
            shape = tuple(sorted((str(k), float(v)) for k, v in bundle.bundle.items()))
            out.extend([shape] * int(bundle.count))
    return out
