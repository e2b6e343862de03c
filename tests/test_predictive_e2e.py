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

import contextlib
import copy
import datetime as dt
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


class Pool:
    """A live serving pool (``serving_pool``): its cluster, the Serve port, and the controller once
    ``start_controller`` has started it."""

    def __init__(self, cluster: Any, port: int, tmp_path: Path) -> None:
        self.cluster = cluster
        self.port = port
        self.tmp_path = tmp_path
        self.controller: subprocess.Popen[bytes] | None = None

    def nodes(self) -> list[Any]:
        """The pool's live instances, oldest launch first."""
        from ray_multicloud.clouds.base import TAG_POOL

        return sorted((i for i in self.cluster.workers() if i.tags.get(TAG_POOL) == POOL),
                      key=lambda i: i.launched_at)

    def start_controller(self, edit: Callable[[dict[str, Any]], None]) -> None:
        """Start the controller, the very command ``ray up`` puts on the head (ticking every 2 s), on
        the cluster's YAML after ``edit(predictive section)``."""
        from ray_multicloud.scenarios.local_cluster import ray_env

        config = copy.deepcopy(self.cluster.config)  # the edit must not reach the cluster's own config
        edit(config["available_node_types"][POOL]["node_config"]["predictive"])
        controller_yaml = self.tmp_path / "controller.yaml"
        controller_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {**ray_env(), **self.cluster.client_env()}
        with open(self.tmp_path / "controller.log", "wb") as out:
            self.controller = subprocess.Popen(
                [sys.executable, "-m", "ray_multicloud.controller", "--config", str(controller_yaml),
                 "--interval", "2"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.tmp_path,
                start_new_session=True)

    def log(self) -> str:
        return (self.tmp_path / "controller.log").read_text(errors="replace")

    def has(self, nodes: int, fewer: bool = False) -> bool:
        """Whether the pool has at least ``nodes`` nodes (fewer than, with ``fewer``); fails at once
        with the controller's log if the controller has exited."""
        assert self.controller is not None and self.controller.poll() is None, self.log()[-3000:]
        have = len(self.nodes())
        return have < nodes if fewer else have >= nodes


@contextlib.contextmanager
def serving_pool(tmp_path: Path, predictive: dict[str, Any], *, max_replicas: int = PEAK_REPLICAS,
                 downscale_delay_s: float = 600) -> Iterator[Pool]:
    """cluster_configs/local-predictive.yaml up with ``predictive`` as the pool's section (and the
    pool's ``max_workers`` raised to ``max_replicas``), the SLO-measured deployment running one replica
    on the pool's first node; on exit the controller (if started), Serve and the cluster stopped."""
    import ray
    from ray import serve

    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port
    from ray_multicloud.scenarios.serve_migration import replica_states, serve_start
    from ray_multicloud.scenarios.serve_slo import slo_deployment
    from ray_multicloud.serve.slo_autoscale import slo_autoscaling_config
    from ray_multicloud.serve.spread import multicloud_deployment_options

    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    overrides = {"provider": {"start_controller": False},
                 "available_node_types": {POOL: {"max_workers": max(3, max_replicas),
                                                 "node_config": {"predictive": predictive}}}}
    with LocalCluster(CONFIG, workdir=tmp_path, overrides=overrides) as cluster:
        cluster.connect()
        pool = Pool(cluster, free_port(), tmp_path)
        try:
            serve_start(pool.port)
            state_dir = str(cluster.state_dir)
            autoscaling = slo_autoscaling_config(
                p95_ms=300, service_ms=50, clients={"us-east-1": 1.0}, min_replicas=1,
                max_replicas=max_replicas, cluster_name=cluster.cluster_name, pool=POOL,
                state_dir=state_dir, upscale_delay_s=1, downscale_delay_s=downscale_delay_s,
                look_back_period_s=3)
            options = multicloud_deployment_options(
                state_dir=state_dir, min_clouds=1, min_on_demand=0, autoscaling_config=autoscaling)
            serve._run(slo_deployment(options, work_ms=5, state_dir=state_dir, window_s=5),
                       route_prefix="/", _blocking=False)
            cluster.wait_for(lambda: replica_states().get("RUNNING", 0) >= 1, timeout_s=420, interval_s=1)
            assert len(pool.nodes()) == 1, pool.nodes()
            yield pool
        finally:
            if pool.controller is not None:
                if pool.controller.poll() is None:
                    os.killpg(pool.controller.pid, signal.SIGTERM)
                pool.controller.wait(timeout=30)
            try:
                serve.shutdown()
            finally:
                ray.shutdown()


def run_pool(tmp_path: Path, predictive: dict[str, Any], *,
             prepare: Callable[[Any, float, dict[str, Any]], None], load_s: float = 0.0) -> Run:
    """Bring up the pool (``serving_pool``) with ``predictive`` as its section, optionally drive
    ``load_s`` seconds of requests (about 8/s), then call ``prepare(cluster, peak_start,
    pool_section)`` (it may rewrite the section the controller reads, or the rate log) and start the
    controller with the peak ``PEAK_AFTER_S`` from now (a whole number of history ticks). Returns what
    it saw once the pool has ``PEAK_REPLICAS`` nodes and replicas."""
    from ray_multicloud.scenarios.serve_migration import replica_states
    from ray_multicloud.serve.rate_log import floor_path, rate_log_path, read_floor, read_rates

    began = time.time()
    marks: dict[str, float] = {}
    load_began = 0.0
    with serving_pool(tmp_path, predictive) as pool:
        cluster = pool.cluster
        marks["first replica"] = time.time() - began
        rate_log = rate_log_path(cluster.state_dir, cluster.cluster_name, POOL)
        if load_s > 0:
            load_began = time.time()
            drive(pool.port, load_s)
            # The pool's Serve autoscaling policy logs the rate its replicas' meters report.
            cluster.wait_for(lambda: any(r > 0 and t >= load_began for t, r in read_rates(rate_log)),
                             timeout_s=90, interval_s=1)
            marks["rate logged"] = time.time() - began

        # The controller, on the cluster's YAML, PEAK_AFTER_S before the peak.
        tick_s = float(TICK_S)
        peak_start = math.ceil((time.time() + PEAK_AFTER_S) / tick_s) * tick_s
        pool.start_controller(lambda section: prepare(cluster, peak_start, section))

        # The peak's nodes: launched by the autoscaler for the controller's standing request.
        cluster.wait_for(lambda: len(pool.nodes()) >= PEAK_REPLICAS, timeout_s=PEAK_AFTER_S + 120,
                         interval_s=1)
        marks["extra launched"] = time.time() - began
        nodes = pool.nodes()
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
    marks["down"] = time.time() - began
    log = pool.log()
    predictive_lines = [line for line in log.splitlines() if "predictive" in line]
    extra = nodes[1:]
    print({k: round(v, 1) for k, v in marks.items()}, "lead", LEAD_S)
    print("launch - peak start (s):", [round(i.launched_at - peak_start, 1) for i in extra])
    print("\n".join(line[:300] for line in predictive_lines))
    print("floor's reason:", floor_reason)
    return Run(peak_start, extra, nodes, status_bundles, floor, floor_reason, predictive_lines, log, rates,
               load_began)


def drive(port: int, seconds: float, *, pause_s: float = 0.12, stop: threading.Event | None = None) -> int:
    """GETs to the deployment, one every ``pause_s`` (about 8 a second by default), for ``seconds``
    or until ``stop`` is set (bounded either way); every answer must be 200. Returns how many."""
    end = time.time() + seconds
    sent = 0
    while time.time() < end and not (stop is not None and stop.is_set()):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200
        sent += 1
        time.sleep(pause_s)
    return sent


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


REPLICA_READY_S = 15.0
MEASURED_PEAK = 4  # replicas (and nodes) of each peak: the first peak's 3 extra starts measure the lead
FIRST_PEAK_S, SECOND_PEAK_AT_S = 90.0, 360.0  # the first is open as the controller starts


def test_the_second_peak_is_asked_the_lead_measured_on_the_first(tmp_path: Path) -> None:
    """The measured lead, live: no ``lead:`` written, ``replica_ready: 15s``. Two calendar peaks of
    ``MEASURED_PEAK`` replicas: the first is open as the controller starts and lasts 90 s (open, it is
    asked for whatever the lead: a peak that opened later could fall outside a lead measured before
    it, as on a quiet machine whose nodes start in 3-10 s), the second opens 360 s after it. From the
    first peak's nodes on, a light load (~4 requests/s) runs, so the pool's SLO policy scales in on
    measured latencies (as a pool with traffic does).
    Expected, by hand:

    - the first plan asks for the open peak: 4 nodes, 3 launched; the controller times each from launch
      to Ray node alive (``started in`` lines); until the third the lead is the default 300 s, from the
      third on the median of those starts + 15 s, and it logs that line (the test recomputes it from
      the starts the line lists);
    - with that lead (tens of seconds here), once the first peak has closed and while the second is
      more than a lead away, the plan falls to ``min_replicas``: 1 node asked, the floor 1, the idle
      extra replicas removed by the SLO policy (p95 far below its scale-in line) and their idle nodes by
      the autoscaler (``idle_timeout_minutes: 0.5``). With the default 300 s lead the plan would never
      fall: the second peak is within 300 s of every tick from 60 s after the controller's start, before
      the first peak closes (at 90 s);
    - 4 nodes asked again at the first tick within the measured lead of the second peak: the nodes
      launched after the first peak closed are all launched in ``[second peak - lead, second peak]``."""
    from ray_multicloud.scenarios.serve_migration import replica_states

    predictive = {"replica_ready": f"{REPLICA_READY_S:g}s", "max_replicas": MEASURED_PEAK, "peaks": []}
    with serving_pool(tmp_path, predictive,
                      max_replicas=MEASURED_PEAK, downscale_delay_s=5) as pool:
        cluster = pool.cluster
        tick_s = float(TICK_S)
        started = time.time()
        first = math.floor(started / tick_s) * tick_s
        second = math.ceil((started + SECOND_PEAK_AT_S) / tick_s) * tick_s

        def two_peaks(section: dict[str, Any]) -> None:
            section.pop("lead")  # the YAML's lead: 40s, dropped: the lead is measured
            section["peaks"] = [
                {"start": iso(first), "end": iso(first + FIRST_PEAK_S), "replicas": MEASURED_PEAK},
                {"start": iso(second), "end": iso(second + 600), "replicas": MEASURED_PEAK}]

        pool.start_controller(two_peaks)
        cluster.wait_for(lambda: pool.has(MEASURED_PEAK), timeout_s=240, interval_s=1)
        # A light load throughout (~4/s): the SLO policy scales in only on measured latencies.
        with ThreadPoolExecutor(1) as executor:
            stop = threading.Event()
            load = executor.submit(drive, pool.port, second + 180 - time.time(), pause_s=0.25, stop=stop)
            try:
                # Between the peaks the extra replicas and nodes go (the plan fell to one node).
                cluster.wait_for(lambda: pool.has(MEASURED_PEAK, fewer=True),
                                 timeout_s=max(10.0, second - time.time()), interval_s=1)
                low = len(pool.nodes())
                cluster.wait_for(lambda: pool.has(MEASURED_PEAK), timeout_s=second + 120 - time.time(),
                                 interval_s=1)
                second_wave = [i for i in pool.nodes() if i.launched_at > first + FIRST_PEAK_S]
                cluster.wait_for(lambda: replica_states().get("RUNNING", 0) >= MEASURED_PEAK, timeout_s=300,
                                 interval_s=1)
            finally:
                stop.set()
            assert load.result() > 0  # every answer was a 200
    lines = [line for line in pool.log().splitlines() if "predictive" in line]
    print(f"first peak at +{first - started:.0f} s, second at +{second - started:.0f} s; pool low {low}")
    print("second wave, launch - second peak (s):", [round(i.launched_at - second, 1) for i in second_wave])
    print("\n".join(line[:300] for line in lines))

    asks = [(n, line) for n, line in enumerate(lines) if "asked the autoscaler for" in line]
    peak_asks = [n for n, line in asks if f"for {MEASURED_PEAK} {POOL} node(s)" in line]
    assert len(peak_asks) >= 2, lines
    # The plan fell between the peaks: one node asked after the first peak's ask, before the second's.
    assert any(f"for 1 {POOL} node(s)" in line and peak_asks[0] < n < peak_asks[-1]
               for n, line in asks), lines
    # The lead in force when the second peak was asked: the last lead line before that ask.
    leads = [line for n, line in enumerate(lines) if ": lead " in line and n < peak_asks[-1]]
    assert leads and "measured" in leads[-1], lines
    lead_line = leads[-1]
    lead = float(lead_line.split(": lead ")[1].split(" s")[0])
    listed = [float(x) for x in lead_line.split("node start(s) (")[1].split(" s)")[0].split(", ")]
    assert len(listed) >= 3
    assert abs(lead - (statistics.median(listed) + REPLICA_READY_S)) < 0.11, (lead, listed)
    # The starts it lists are those the controller logged for this pool's nodes.
    timed = [float(line.split(" started in ")[1].split(" s")[0]) for line in lines if " started in " in line]
    assert listed == [round(t, 1) for t in timed[:len(listed)]], (listed, timed)
    assert lead < SECOND_PEAK_AT_S - FIRST_PEAK_S, lead  # else the test cannot tell it from 300 s
    # The second peak's new nodes: launched one measured lead ahead.
    assert second_wave, pool.nodes()
    for inst in second_wave:
        assert second - lead - 0.5 <= inst.launched_at <= second, (
            inst.instance_id, inst.launched_at - second, lead)


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
