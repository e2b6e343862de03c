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

The rate-driven forecast path, live, is the second test: a rate-driven forecast needs ``lead + 20``
ticks of history, and an hour-seasonal one two hours of it, so the test writes three hours of past
rates (a surge every hour) into the pool's rate log, after the live Serve policy has logged what it
measured under a few seconds of real load, and the controller forecasts the next surge from that log
(details in its docstring). The same step with ``request_resources``, Serve and the clock faked:
tests/test_predictive.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
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
TICK_S = 5  # the pool's history tick (local-predictive.yaml)
BASE_RPS = 5.0
SURGE_RPS = 30.0  # 3 replicas at replica_rps 10
SURGE_S = 300.0


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Run:
    """What one run of the pool saw: the peak, the pool's nodes launched for it, the GCS's standing
    constraint, the published floor, the controller's predictive log lines and the rate log."""

    peak_start: float
    extra: list[Any]
    nodes: list[Any]
    status_bundles: list[tuple[tuple[str, float], ...]]
    floor: int | None
    floor_reason: str
    predictive_lines: list[str]
    log: str
    rates: list[tuple[float, float]] = field(default_factory=list)
    load_began: float = 0.0


def run_pool(tmp_path: Path, predictive: dict[str, Any], *,
             prepare: Callable[[Any, float, dict[str, Any]], None], load_s: float = 0.0) -> Run:
    """Bring up cluster_configs/local-predictive.yaml with ``predictive`` as the pool's section, run
    the SLO-measured deployment on its first node, optionally drive ``load_s`` seconds of requests
    (about 8/s), then call ``prepare(cluster, peak_start, pool_section)`` (it may rewrite the
    section the controller reads, or the rate log) and start the controller, the very command
    ``ray up`` puts on the head, with the peak ``PEAK_AFTER_S`` from now (a whole number of history
    ticks). Returns what it saw once the pool has ``PEAK_REPLICAS`` nodes and replicas."""
    import ray
    from ray import serve

    from ray_multicloud.clouds.base import TAG_POOL
    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port, ray_env
    from ray_multicloud.scenarios.serve_migration import replica_states, serve_start
    from ray_multicloud.scenarios.serve_slo import slo_deployment
    from ray_multicloud.serve.rate_log import floor_path, rate_log_path, read_floor, read_rates
    from ray_multicloud.serve.slo_autoscale import slo_autoscaling_config
    from ray_multicloud.serve.spread import multicloud_deployment_options

    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    began = time.time()
    overrides = {"provider": {"start_controller": False},
                 "available_node_types": {POOL: {"node_config": {"predictive": predictive}}}}
    marks: dict[str, float] = {}
    controller: subprocess.Popen[bytes] | None = None
    load_began = 0.0
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
            rate_log = rate_log_path(cluster.state_dir, cluster.cluster_name, POOL)
            if load_s > 0:
                load_began = time.time()
                drive(port, load_s)
                # The pool's Serve autoscaling policy logs the rate its replicas' meters report.
                cluster.wait_for(lambda: any(r > 0 and t >= load_began for t, r in read_rates(rate_log)),
                                 timeout_s=90, interval_s=1)
                marks["rate logged"] = time.time() - began

            # The controller, on the cluster's YAML, PEAK_AFTER_S before the peak.
            started = time.time()
            tick_s = float(TICK_S)
            peak_start = math.ceil((started + PEAK_AFTER_S) / tick_s) * tick_s
            config = dict(cluster.config)
            section = config["available_node_types"][POOL]["node_config"]["predictive"]
            prepare(cluster, peak_start, section)
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
            status_bundles = cluster_constraint(cluster.address)
            floor = read_floor(floor_path(cluster.state_dir, cluster.cluster_name), POOL,
                               now=time.time(), max_age_s=120)
            floors = json.loads(floor_path(cluster.state_dir, cluster.cluster_name).read_text())
            floor_reason = str(floors[POOL]["reason"])
            cluster.wait_for(lambda: replica_states().get("RUNNING", 0) >= PEAK_REPLICAS, timeout_s=300,
                             interval_s=1)
            marks["replicas up"] = time.time() - began
            marks["peak opens"] = peak_start - began
            rates = read_rates(rate_log)
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
    extra = nodes[1:]
    print({k: round(v, 1) for k, v in marks.items()}, "lead", LEAD_S)
    print("launch - peak start (s):", [round(i.launched_at - peak_start, 1) for i in extra])
    print("\n".join(line[:300] for line in predictive_lines))
    print("floor's reason:", floor_reason)
    return Run(peak_start, extra, nodes, status_bundles, floor, floor_reason, predictive_lines, log, rates,
               load_began)


def drive(port: int, seconds: float) -> None:
    """About 8 GETs a second to the deployment for ``seconds`` (bounded; every answer must be 200)."""
    end = time.time() + seconds
    while time.time() < end:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200
        time.sleep(0.12)


def assert_asked_one_lead_ahead(run: Run) -> None:
    """Asked for by the predictive step (its log line), through request_resources (the GCS holds the
    standing cluster constraint: 3 bundles of the node type's shape), the extra nodes launched one
    lead ahead (not before the lead window opened, and before the peak opens), the floor published,
    and each extra node's start (launch to Ray node alive) timed by the controller, the input of the
    measured lead."""
    assert any(f"asked the autoscaler for {PEAK_REPLICAS} {POOL} node(s)" in line
               for line in run.predictive_lines), run.log[-3000:]
    assert run.status_bundles.count((("CPU", 1.0), ("serve_slot", 1.0))) == PEAK_REPLICAS, run.status_bundles
    assert len(run.extra) == PEAK_REPLICAS - 1, run.nodes
    for inst in run.extra:
        assert run.peak_start - LEAD_S <= inst.launched_at <= run.peak_start, (
            inst.instance_id, inst.launched_at - run.peak_start)
    assert run.floor == PEAK_REPLICAS, run.floor
    # The measured lead's input, live: the controller timed each extra node from launch to alive.
    for inst in run.extra:
        started = f"node {inst.instance_id} started in"
        assert any(started in line for line in run.predictive_lines), run.log[-3000:]


def test_a_calendar_peak_gets_its_nodes_one_lead_ahead_through_request_resources(tmp_path: Path) -> None:
    def peak_in_calendar(cluster: Any, peak_start: float, section: dict[str, Any]) -> None:
        section["peaks"] = [{"start": iso(peak_start), "end": iso(peak_start + 600),
                             "replicas": PEAK_REPLICAS}]

    run = run_pool(tmp_path, {"lead": f"{LEAD_S:g}s", "peaks": []}, prepare=peak_in_calendar)
    assert_asked_one_lead_ahead(run)


def test_a_forecast_surge_gets_its_nodes_one_lead_ahead_from_the_rate_history(tmp_path: Path) -> None:
    """The rate-driven path, live: the pool's rate log holds three hours in which demand rose from
    ``BASE_RPS`` to ``SURGE_RPS`` for five minutes every hour (the history a deployment would have
    logged over those hours, written before the controller starts: a test cannot wait three hours),
    followed by what the live Serve policy logged since the deployment started, under load. The
    peak's next hourly surge opens ``PEAK_AFTER_S`` after the controller's start, and no calendar
    says so. Expected, by hand: the backtest (pinball loss at 0.9, policy/forecast.py) chooses the
    hour-seasonal forecast, ``seasonal-naive/720`` (720 ticks of 5 s): on the periodic hours it is
    exact, where persistence and recent-max miss each surge's first lead (8 ticks x 25/s under,
    weighted 0.9: 180 per surge, two surges in the scored span) and it loses only 0.1 x 5/s per live
    tick (a few dozen ticks); it forecasts ``SURGE_RPS`` = 30/s -> 3 replicas at ``replica_rps`` 10
    -> 3 nodes, asked for one lead before the surge, as the calendar's peak is above."""
    history_s = 3 * 3600.0

    def surge_in_history(cluster: Any, peak_start: float, section: dict[str, Any]) -> None:
        from ray_multicloud.serve.rate_log import rate_log_path, read_rates

        path = rate_log_path(cluster.state_dir, cluster.cluster_name, POOL)
        live = read_rates(path)
        until = min((t for t, _ in live), default=time.time())
        first = peak_start - history_s
        past = []
        t = first
        while t < until:
            surging = (t - peak_start) % 3600.0 < SURGE_S  # [peak - k h, peak - k h + SURGE_S)
            past.append((t, SURGE_RPS if surging else BASE_RPS))
            t += float(TICK_S)
        text = "".join(f"{at:.3f},{rate:g}\n" for at, rate in past)
        tmp = path.with_name(path.name + ".seed")
        tmp.write_text(text + "".join(f"{at:.3f},{rate:g}\n" for at, rate in live))
        os.replace(tmp, path)

    run = run_pool(tmp_path, {"lead": f"{LEAD_S:g}s", "tick": f"{TICK_S}s", "history": "3h",
                              "peaks": []}, prepare=surge_in_history, load_s=12.0)
    # The live policy logged the load it measured (Serve's own replica metrics).
    assert any(r > 0 and t >= run.load_began for t, r in run.rates), run.rates[-20:]
    chosen = [line for line in run.predictive_lines if "chosen by backtest" in line]
    assert chosen and "seasonal-naive/720" in chosen[0], run.log[-3000:]
    # The plan the floor file publishes once the nodes are there: the forecast of the surge.
    assert run.floor_reason.startswith("seasonal-naive/720 forecasts 30/s in 40 s"), run.floor_reason
    assert_asked_one_lead_ahead(run)


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
