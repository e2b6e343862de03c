"""The cost gauges on a real node's Prometheus endpoint: a single-node Ray head on loopback with a
fixed ``--metrics-export-port``, a driver that publishes a known ledger, and a scrape whose values
must equal ``cost_figures`` over the same rows.

    ledger rows (aws spot + on-demand, gcp spot ending between two publishes, azure spot, another
    cluster) -> driver: publish(now=T1), publish(now=T2) -> node metrics agent
    -> GET http://127.0.0.1:<metrics-export-port>/metrics -> ray_multicloud_*{cluster, cloud}
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cloud_factories import priced_offer as offer

from ray_multicloud.ledger import Ledger
from ray_multicloud.metrics import CostFigures, cost_figures
from ray_multicloud.scenarios.local_cluster import free_port, ray_env
from ray_multicloud.types import CapacityType

pytestmark = pytest.mark.e2e

H = 3600.0
CLUSTER = "metrics-e2e"
T1 = 1.5 * H  # every node of CLUSTER runs
T2 = 3.0 * H  # the gcp node ended at 2 h: its per-hour gauges must go back to 0
SCRAPE_TIMEOUT_S = 60.0

# The names a Prometheus user queries (metrics.py's docstring): Ray exports a ray.util.metrics
# gauge under the "ray_" namespace.
PER_HOUR = ("ray_multicloud_cost_per_hour_usd", "ray_multicloud_ondemand_cost_per_hour_usd")
TO_DATE = ("ray_multicloud_spend_usd", "ray_multicloud_ondemand_spend_usd", "ray_multicloud_savings_fraction")

Series = tuple[str, str]  # (metric name, cloud label; "" for the per-cluster gauges)


def write_ledger(path: Path) -> None:
    with Ledger(path) as led:
        led.record_launch("i-aws-spot", CLUSTER, "gpu", offer("aws", "us-east-1a", 1.0, 3.0), "r1", at=0.0)
        led.record_price("i-aws-spot", 1.5, at=1.0 * H)
        led.record_launch(
            "i-aws-od",
            CLUSTER,
            "gpu",
            offer("aws", "us-east-1b", 3.0, 3.0, CapacityType.ON_DEMAND),
            "r2",
            at=0.5 * H,
        )
        led.record_launch("gcp-spot", CLUSTER, "gpu", offer("gcp", "us-central1-a", 0.6, 2.4), "r3", at=0.0)
        led.record_end("gcp-spot", at=2.0 * H, reason="preempted")
        led.record_launch("az-spot", CLUSTER, "gpu", offer("azure", "eastus-1", 0.4, 1.6), "r4", at=0.25 * H)
        # Another cluster's node in the same ledger: not this cluster's gauges.
        other = offer("aws", "us-east-1a", 9.0, 9.0)
        led.record_launch("i-other", "other-cluster", "gpu", other, "r5", at=0.0)


def figures_at(path: Path, now: float) -> CostFigures:
    with Ledger(path, create=False) as led:
        return cost_figures([r for r in led.spend(now) if r.cluster == CLUSTER])


def expected_series(path: Path) -> dict[Series, float]:
    """What the endpoint must show after publish(T1) then publish(T2)."""
    before, after = figures_at(path, T1), figures_at(path, T2)
    want: dict[Series, float] = {
        (PER_HOUR[0], "all"): after.cost_per_hour,
        (PER_HOUR[1], "all"): after.ondemand_cost_per_hour,
        (TO_DATE[0], ""): after.spend_usd,
        (TO_DATE[1], ""): after.ondemand_spend_usd,
        (TO_DATE[2], ""): after.savings_fraction,
    }
    for cloud, _, _ in before.cost_per_hour_by_cloud:  # clouds that stopped running read 0
        want[(PER_HOUR[0], cloud)] = want[(PER_HOUR[1], cloud)] = 0.0
    for cloud, cost, od in after.cost_per_hour_by_cloud:
        want[(PER_HOUR[0], cloud)] = cost
        want[(PER_HOUR[1], cloud)] = od
    return want


def test_expected_figures_are_the_hand_computed_ones(tmp_path: Path) -> None:
    """The reference the scrape is compared with, checked by hand once (no Ray needed)."""
    write_ledger(tmp_path / "ledger.db")
    want = expected_series(tmp_path / "ledger.db")
    spend = 1.0 * 1.0 + 2.0 * 1.5 + 2.5 * 3.0 + 2.0 * 0.6 + 2.75 * 0.4  # aws spot, aws od, gcp, azure
    od_spend = 3.0 * 3.0 + 2.5 * 3.0 + 2.0 * 2.4 + 2.75 * 1.6
    assert want == pytest.approx(
        {
            (PER_HOUR[0], "all"): 1.5 + 3.0 + 0.4,
            (PER_HOUR[1], "all"): 3.0 + 3.0 + 1.6,
            (PER_HOUR[0], "aws"): 4.5,
            (PER_HOUR[1], "aws"): 6.0,
            (PER_HOUR[0], "azure"): 0.4,
            (PER_HOUR[1], "azure"): 1.6,
            (PER_HOUR[0], "gcp"): 0.0,
            (PER_HOUR[1], "gcp"): 0.0,
            (TO_DATE[0], ""): spend,
            (TO_DATE[1], ""): od_spend,
            (TO_DATE[2], ""): 1 - spend / od_spend,
        }
    )


# --- a head of our own, and every process it started ---------------------------------------------


@dataclass(frozen=True)
class Head:
    address: str
    metrics_url: str
    env: dict[str, str]


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process, from /proc."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        state, ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
        table[int(entry)] = (int(ppid), int(pgid), state)
    return table


def _group_and_descendants(pgid: int) -> set[int]:
    """The processes of group ``pgid`` and all their descendants (Ray workers make groups of their own)."""
    table = _proc_table()
    found = {pid for pid, (_, group, _) in table.items() if group == pgid}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _stop_all(pgid: int) -> list[int]:
    """SIGKILL group ``pgid`` and its descendants; the pids still running (not zombies) after 15 s."""
    pids = _group_and_descendants(pgid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15.0
    while True:
        table = _proc_table()
        alive = sorted(pid for pid in pids if pid in table and table[pid][2] != "Z")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.fixture
def head() -> Iterator[Head]:
    """A single-node head on 127.0.0.1 with its own HOME (the machine's ~/.ray/auth_token must not
    turn token auth on) and its own temp dir (the machine's /tmp/ray/ray_current_cluster is left
    alone); no dashboard, but the per-node metrics agent runs."""
    scratch = tempfile.mkdtemp(prefix="rmcm-")  # short: Ray's unix socket paths live under it
    home = os.path.join(scratch, "home")
    os.mkdir(home)
    env = {**ray_env(), "HOME": home}
    gcs_port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs_port}",
            f"--metrics-export-port={metrics_port}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--temp-dir={os.path.join(scratch, 'ray')}",
            "--num-cpus=0",  # nothing is scheduled: no worker processes
            "--include-dashboard=false",
            "--object-store-memory=80000000",
            "--disable-usage-stats",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.wait(timeout=90) == 0, "ray start --head failed"
        yield Head(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{metrics_port}/metrics", env)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        left = _stop_all(proc.pid)
        shutil.rmtree(scratch, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


# --- the driver: a process of its own, alive while the endpoint is scraped ---------------------


def publish_and_hold(address: str, ledger_path: str) -> None:
    """Driver body (run as ``python -c``): connect, publish at T1 then T2, print "published", and
    stay connected until stdin closes; a process's series leave the endpoint when it exits."""
    import ray

    from ray_multicloud.metrics import CostMetrics

    ray.init(address=address, log_to_driver=False)
    metrics = CostMetrics(CLUSTER)
    with Ledger(ledger_path, create=False) as led:
        metrics.publish(led, now=T1)
        metrics.publish(led, now=T2)
    print("published", flush=True)
    sys.stdin.read()
    ray.shutdown()


def scrape(url: str) -> dict[Series, float]:
    """This cluster's ray_multicloud_* samples on the endpoint, by (name, cloud)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ray_multicloud_") and sample.labels.get("cluster") == CLUSTER:
                key = (sample.name, sample.labels.get("cloud", ""))
                assert key not in out, f"two series for {key}: {sample.labels}"
                out[key] = sample.value
    return out


def test_cost_gauges_reach_the_node_prometheus_endpoint(head: Head, tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.db"
    write_ledger(ledger_path)
    want = expected_series(ledger_path)
    log = tmp_path / "driver.log"
    with open(log, "w") as log_fh:
        driver = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); from test_metrics_export import "
                "publish_and_hold; publish_and_hold(sys.argv[2], sys.argv[3])",
                os.path.dirname(os.path.abspath(__file__)),
                head.address,
                str(ledger_path),
            ],
            # A 1 s report interval (Ray's default is 10 s) so the gauges reach the agent quickly.
            env={**head.env, "RAY_metrics_report_interval_ms": "1000"},
            stdin=subprocess.PIPE,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        got: dict[Series, float] = {}
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        while time.monotonic() < deadline:
            assert driver.poll() is None, f"driver exited early:\n{log.read_text()[-3000:]}"
            try:
                got = scrape(head.metrics_url)
            except (urllib.error.URLError, ConnectionError):
                got = {}  # the agent's HTTP server may not be up yet
            if got.keys() == want.keys() and got == pytest.approx(want):
                break
            time.sleep(0.5)
        assert "published" in log.read_text(), f"driver never published:\n{log.read_text()[-3000:]}"
        assert got == pytest.approx(want), f"endpoint {head.metrics_url} shows {got}, expected {want}"
    finally:
        assert driver.stdin is not None
        driver.stdin.close()
        try:
            driver.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
