"""The head falls and comes back: a local cluster with GCS fault tolerance (an external Redis), one
serving worker node, a Serve deployment on it, and the head's Ray processes killed and started again.

What is measured (``FailoverResult``): every request a probe sent to the deployment through the
outage (failed count, longest gap between two answered requests), whether the worker's Ray node
and the Serve replica are the same ones after the head came back, how long the head was down,
and what the ledger and the controller did.

The probe (``ServeProbe``) is a detached actor pinned to the worker node that calls the deployment
through a Serve handle every ``interval_s``: Serve's data path (handle -> router -> replica) on the
worker side, the part of Serve that must keep answering while the head (GCS, Serve controller,
head-only proxy) is gone. An HTTP proxy on the worker is what a real cluster puts behind its load
balancer; on one machine every node's proxy would bind the same loopback port, so the local test
measures the handle path (docs/head-fault-tolerance.md).

The head is killed as a crash would: SIGKILL to every process of the head instance's process group
but the instance's own placeholder (so: the GCS, the head raylet, the autoscaler monitor, the
controller, the Serve controller and proxy, the dashboard agent), then ``ray up --restart-only``
runs the head start commands again, in the same group, as an operator (or a supervisor) would.
Only processes of this cluster's head are touched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ray_multicloud.errors import MultiCloudError
from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port, ray_env

SERVE_POOL = "serve_pool"
PROBE_NAME = "rmc_head_failover_probe"
PROBE_NAMESPACE = "rmc_head_failover"


def redis_server_path() -> str | None:
    """The ``redis-server`` binary on PATH (or /usr/bin, /usr/sbin), None if not installed."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 and a free port, no persistence, in its own process
    group; ``stop()`` ends that group only. The cluster's external GCS store in tests."""

    def __init__(self, workdir: str | Path) -> None:
        binary = redis_server_path()
        if binary is None:
            raise MultiCloudError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.workdir / "redis.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--dir", str(self.workdir)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise MultiCloudError(f"redis-server did not start; see {self.workdir / 'redis.log'}")
            time.sleep(0.1)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _ask(self, command: bytes) -> bytes:
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(command + b"\r\n")
            return sock.recv(64)

    def ping(self) -> bool:
        try:
            return self._ask(b"PING").startswith(b"+PONG")
        except OSError:
            return False

    def dbsize(self) -> int:
        """How many keys this Redis holds (the GCS's tables, when a cluster uses it). Inline RESP:
        no Redis client library needed."""
        reply = self._ask(b"DBSIZE")
        if not reply.startswith(b":"):
            raise MultiCloudError(f"redis-server answered DBSIZE with {reply!r}")
        return int(reply[1:].split(b"\r\n", 1)[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def failover_overrides(redis_address: str) -> dict[str, Any]:
    """``LocalCluster(overrides=...)``: GCS fault tolerance on, and a serving pool of one worker node."""
    from ray_multicloud.serve.spread import serving_pool_node_type

    return {
        "idle_timeout_minutes": 5.0,
        "provider": {"gcs_fault_tolerance": {"redis_address": redis_address}},
        "available_node_types": {
            SERVE_POOL: serving_pool_node_type(clouds=("aws",), regions=("us-east-1",), replicas=1,
                                               min_clouds=1, min_on_demand=0),
        },
    }


def head_instance(cluster: LocalCluster) -> Any:
    from ray.autoscaler.tags import NODE_KIND_HEAD, TAG_RAY_NODE_KIND

    heads = [i for i in cluster.instances() if i.tags.get(TAG_RAY_NODE_KIND) == NODE_KIND_HEAD]
    if len(heads) != 1:
        raise MultiCloudError(f"expected one head instance of {cluster.cluster_name}, found {len(heads)}")
    return heads[0]


def head_group(cluster: LocalCluster) -> int:
    head = head_instance(cluster)
    pgid = cluster.clouds()[head.cloud].process_group(head.instance_id)
    if pgid is None:
        raise MultiCloudError(f"head instance {head.instance_id} has no live process group")
    return pgid


def group_processes(pgid: int) -> dict[int, str]:
    """pid -> the first word of its command line, for every process of group ``pgid`` (Linux /proc)."""
    out: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getpgid(pid) != pgid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        name = os.path.basename(words[0]) if words else "?"
        if name.startswith("python") and len(words) > 1:  # a Python process: name its script or module
            name = next((w for w in words[1:] if not w.startswith("-")), name)
            name = os.path.basename(name)
        out[pid] = name
    return out


def kill_head(cluster: LocalCluster, *, require_gcs: bool = True) -> dict[int, str]:
    """SIGKILL every process of the head instance's group but the instance's placeholder (the group
    leader): the head's Ray processes die as in a crash. Returns what was killed (pid -> name).
    ``MultiCloudError`` if ``require_gcs`` and no GCS runs there (nothing would be tested)."""
    pgid = head_group(cluster)
    victims = {pid: name for pid, name in group_processes(pgid).items() if pid != pgid}
    if require_gcs and not any("gcs_server" in name for name in victims.values()):
        raise MultiCloudError(f"no gcs_server in the head's process group {pgid}: {victims}")
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
        time.sleep(0.1)
    return victims


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return False


def restart_head(cluster: LocalCluster, *, timeout_s: float = 300.0, attempts: int = 2) -> float:
    """Run the head's start commands again (``ray up --restart-only``); seconds it took. On a loaded
    machine ``ray start --head`` can give up waiting for its own raylet (Ray's fixed 30 s): then
    what it left running is killed and it is tried again, up to ``attempts`` times."""
    _allow_head_restart_beside_workers(cluster)
    start = time.monotonic()
    for attempt in range(1, attempts + 1):
        log = cluster.workdir / f"ray-up-restart-{attempt}.log"
        with open(log, "wb") as out:
            proc = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "ray"), "up", "-y", "--restart-only",
                 "--no-config-cache", str(cluster.config_path)],
                stdout=out, stderr=subprocess.STDOUT, env=ray_env(), timeout=timeout_s,
                cwd=cluster.workdir, check=False,
            )
        if proc.returncode == 0:
            return time.monotonic() - start
        if attempt == attempts:
            raise MultiCloudError(f"ray up --restart-only failed (exit {proc.returncode}); see {log}:\n"
                                  f"{log.read_text(errors='replace')[-3000:]}")
        kill_head(cluster, require_gcs=False)
    raise AssertionError("unreachable")


def _allow_head_restart_beside_workers(cluster: LocalCluster) -> None:
    """Make the head's ``ray start --head`` name its Redis with ``--address`` too (the form Ray 2.60
    still accepts, deprecated, for an external Redis; with it the GCS reads the same store as with
    ``RAY_REDIS_ADDRESS``), in this local cluster's YAML only.

    Why: ``ray start --head`` refuses to start when a process on this host carries
    ``--gcs-address=<its address>`` and the host's last-started-cluster file names that address (a
    guard against starting a head twice, ``ray/scripts/scripts.py``). On a real cluster, after the
    head's processes died, no such process is left on the head's host; here the worker nodes share
    the host, and their raylets carry that flag. ``--address`` skips the guard."""
    ft = cluster.config["provider"]["gcs_fault_tolerance"]
    commands = [str(c) for c in cluster.config["head_start_ray_commands"]]
    flag = f" --address={ft['redis_address']}"
    changed = [c + flag if "ray start --head" in c and flag not in c else c for c in commands]
    if changed != commands:
        import yaml

        cluster.config["head_start_ray_commands"] = changed
        cluster.config_path.write_text(yaml.safe_dump(cluster.config, sort_keys=False))


def probe_class() -> Any:
    """The ``ServeProbe`` actor class (built lazily: importing this module must not import ray)."""
    import ray

    @ray.remote(num_cpus=0, max_restarts=0)
    class ServeProbe:
        """Calls one deployment through a handle every ``interval_s``; keeps (sent, answered, ok)."""

        def __init__(self, deployment: str, app: str, interval_s: float, timeout_s: float) -> None:
            from ray import serve

            self.handle = serve.get_deployment_handle(deployment, app)
            self.interval_s = interval_s
            self.timeout_s = timeout_s
            self.samples: list[tuple[float, float, bool]] = []
            self.stopped = False

        async def run(self) -> int:
            import asyncio

            while not self.stopped:
                sent = time.time()
                try:
                    await asyncio.wait_for(self.handle.remote(None), timeout=self.timeout_s)
                    ok = True
                except Exception:  # noqa: BLE001 - any failure is a failed request, counted
                    ok = False
                self.samples.append((sent, time.time(), ok))
                await asyncio.sleep(max(0.0, self.interval_s - (time.time() - sent)))
            return len(self.samples)

        async def stop(self) -> list[tuple[float, float, bool]]:
            self.stopped = True
            return self.samples

        async def count(self) -> int:
            return sum(1 for s in self.samples if s[2])

    return ServeProbe


@dataclass(frozen=True, slots=True)
class ProbeStats:
    """Requests in a time window: how many were sent, how many failed, and the longest time with no
    answered request (between two successive answers, or from the window's start/end)."""

    sent: int
    failed: int
    longest_gap_s: float


def probe_stats(samples: list[tuple[float, float, bool]], start: float, end: float) -> ProbeStats:
    """``ProbeStats`` of the samples sent in [start, end]. Pure."""
    window = [s for s in samples if start <= s[0] <= end]
    answers = sorted(s[1] for s in window if s[2])
    edges = [start, *answers, end]
    gap = max((b - a for a, b in itertools.pairwise(edges)), default=end - start)
    return ProbeStats(len(window), sum(1 for s in window if not s[2]), max(0.0, gap))


@dataclass
class FailoverResult:
    """What one head failover did (see the module docstring)."""

    killed: dict[int, str] = field(default_factory=dict)
    down_s: float = 0.0                 # head processes killed -> head start commands done
    serve_back_s: float = 0.0           # killed -> serve.status() answered RUNNING again
    outage: ProbeStats | None = None    # requests from the kill until Serve's control plane is back
    worker_node_before: str = ""
    worker_node_after: str = ""
    worker_alive_after: bool = False
    replica_before: str = ""
    replica_after: str = ""
    ledger_open_before: list[str] = field(default_factory=list)
    ledger_open_after: list[str] = field(default_factory=list)
    controller_starts: int = 0


def replica_actor_ids() -> list[str]:
    """Names of the live Serve replica actors (``SERVE_REPLICA::<app>#<deployment>#<id>``, from the
    GCS: no dashboard needed); a replica started again would have a new id."""
    import ray

    names = ray.util.list_named_actors(all_namespaces=True)
    return sorted(str(a["name"]) for a in names if str(a.get("name", "")).startswith("SERVE_REPLICA::"))


def open_ledger_nodes(cluster: LocalCluster) -> list[str]:
    """Instance ids with an open lifetime (no end) in the cluster's ledger."""
    import sqlite3

    path = cluster.config["provider"].get("ledger")
    if not path or not Path(path).exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT instance_id FROM instances WHERE ended_at IS NULL").fetchall()
    finally:
        conn.close()
    return sorted(str(r[0]) for r in rows)


def controller_starts(cluster: LocalCluster) -> int:
    """How many times the head's controller process started (its "controller of <cluster>: pools ..."
    log line, written once it holds the cluster's lock)."""
    head = head_instance(cluster)
    log = cluster.clouds()[head.cloud].state.node_home(head.instance_id) / "ray_multicloud_controller.log"
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if f"controller of {cluster.cluster_name}: pools" in line)


def serving_worker(cluster: LocalCluster) -> tuple[str, str] | None:
    """(instance id, Ray node id) of the serving pool's running worker, once it has a Ray node."""
    clouds = cluster.clouds()
    for inst in cluster.workers():
        if inst.tags.get("rmc-pool") == SERVE_POOL and inst.state.value == "running":
            node = clouds[inst.cloud].ray_node_id(inst.instance_id)
            if node:
                return inst.instance_id, node
    return None


def alive_ray_nodes() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def run_failover(cluster: LocalCluster, *, interval_s: float = 0.05, settle_s: float = 3.0,
                 recover_timeout_s: float = 150.0, log: Any = None) -> FailoverResult:
    """On an up ``LocalCluster`` made with ``failover_overrides``: deploy, probe, kill the head, start
    it again, and measure (see the module docstring). Leaves Serve and the probe shut down and no Ray
    driver connected. ``log``: a ``print``-like callable for progress lines."""
    import ray

    say = log or (lambda *_: None)
    try:
        return _run_failover(cluster, interval_s=interval_s, settle_s=settle_s,
                             recover_timeout_s=recover_timeout_s, say=say)
    finally:
        # A driver left connected would be killed by Ray (with this process) once the cluster is down.
        if ray.is_initialized():
            ray.shutdown()


def _run_failover(cluster: LocalCluster, *, interval_s: float, settle_s: float, recover_timeout_s: float,
                  say: Any) -> FailoverResult:
    import ray
    from ray import serve
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from ray_multicloud.scenarios.serve_migration import wait_steady, where_am_i_deployment
    from ray_multicloud.serve.spread import DEFAULT_SLOT

    result = FailoverResult()
    cluster.connect(namespace=PROBE_NAMESPACE)
    worker = cluster.wait_for(lambda: serving_worker(cluster), timeout_s=150)
    cluster.wait_for(lambda: worker[1] in alive_ray_nodes(), timeout_s=60)
    result.worker_node_before = worker[1]
    serve.start(proxy_location="Disabled")
    options = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0, "resources": {DEFAULT_SLOT: 1}}}
    serve.run(where_am_i_deployment(options, work_ms=5), name="default", route_prefix=None)
    wait_steady(1, timeout_s=120)
    result.replica_before = ",".join(replica_actor_ids())
    result.ledger_open_before = open_ledger_nodes(cluster)
    say(f"serving on worker {worker[0]} (Ray node {worker[1][:12]}), replica {result.replica_before[:12]}")

    probe = probe_class().options(
        name=PROBE_NAME, namespace=PROBE_NAMESPACE, lifetime="detached",
        scheduling_strategy=NodeAffinitySchedulingStrategy(worker[1], soft=False),
    ).remote("WhereAmI", "default", interval_s, 2.0)
    probe.run.remote()
    cluster.wait_for(lambda: ray.get(probe.count.remote(), timeout=30) >= 10, timeout_s=60)
    ray.shutdown()  # this driver is a client of the head's raylet: it would die with it

    killed_at = time.time()
    result.killed = kill_head(cluster)
    say(f"killed the head's Ray processes: {sorted(result.killed.values())}")
    restart_head(cluster)
    result.down_s = time.time() - killed_at
    say(f"head start commands done {result.down_s:.1f} s after the kill")

    cluster.connect(namespace=PROBE_NAMESPACE)

    def serve_running() -> bool:
        try:
            status = serve.status()
        except Exception:  # noqa: BLE001 - the Serve controller is still coming back
            return False
        app = status.applications.get("default")
        return app is not None and str(getattr(app.status, "value", app.status)) == "RUNNING"

    cluster.wait_for(serve_running, timeout_s=recover_timeout_s, interval_s=1.0)
    back_at = time.time()
    result.serve_back_s = back_at - killed_at
    say(f"Serve's controller answers RUNNING {result.serve_back_s:.1f} s after the kill")
    time.sleep(settle_s)
    probe = ray.get_actor(PROBE_NAME, namespace=PROBE_NAMESPACE)
    samples: list[tuple[float, float, bool]] = ray.get(probe.stop.remote(), timeout=60)
    result.outage = probe_stats(samples, killed_at, back_at)
    ray.kill(probe)
    now_worker = serving_worker(cluster)
    result.worker_node_after = now_worker[1] if now_worker else ""
    result.worker_alive_after = result.worker_node_after in alive_ray_nodes()
    result.replica_after = ",".join(replica_actor_ids())
    result.ledger_open_after = open_ledger_nodes(cluster)
    with contextlib.suppress(TimeoutError):
        cluster.wait_for(lambda: controller_starts(cluster) >= 2, timeout_s=60)
    result.controller_starts = controller_starts(cluster)
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
    return result
