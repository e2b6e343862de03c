"""The local simulated cloud: "instances" are real Ray nodes on 127.0.0.1, one process group each.

Several simulated clouds (named aws, gcp, azure, ... in a cluster config) share one SQLite state
file under the cluster's ``state_dir``, so the ``ray up`` client and the autoscaler monitor on the
head see the same fleet, as they would see a real cloud's API.

Instance life cycle, as a cloud's:
``launch`` (row written with every tag, state pending) -> instance process starts a Ray worker node
and marks itself running -> ``terminate`` (SIGTERM to its process group, SIGKILL after a grace) or
``preempt`` (a notice: the instance drains its own Ray node with reason PREEMPTION and the
notice's deadline, then dies at the deadline, as a spot VM does).

A worker instance boots like a cloud VM: its process is ``bash`` running the startup script every
driver renders (``clouds/_startup.py``: the cluster YAML's initialization and worker setup
commands, inlined ``file_mounts``, with ``$HOME`` the instance's own directory), whose last line
``exec``s the instance process below in its place (same pid, same process group). ``docker:`` is
skipped here (the local cloud runs no containers) and a failed setup step ends the instance, so a
launch never hangs on it.

A head instance (no ``RayBootstrap``) is a placeholder process leading its own process group in
the caller's session; ``LocalCommandRunner`` runs ``ray up``'s head commands inside that group, so
terminating the instance ends the head's Ray processes and nothing else on the machine.

Faults are configured as data (``exhausted_offers``, ``max_instances``) or recorded in the shared
state (``outage(down_s=...)``: the whole cloud refuses launches for a while; ``withdraw("spot")``:
the cloud's spot market empties, its spot instances are preempted and spot launches refused until
``give_back("spot")``), never patched in.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray_multicloud.auth.secrets import FileSecretStore
from ray_multicloud.clouds._startup import literal_instance_id, render_startup_script
from ray_multicloud.clouds.base import (
    TAG_CAPACITY,
    TAG_OFFER,
    CloudFeatures,
    Instance,
    LaunchRequest,
    RayBootstrap,
)
from ray_multicloud.clouds.schemas import LOCAL as LOCAL_SCHEMA
from ray_multicloud.errors import CapacityError, CloudError, InstanceNotFound, QuotaError
from ray_multicloud.schema import check_section
from ray_multicloud.types import InstanceId, NodeState

STATE_FILE = "local-cloud.db"
TERMINATE_GRACE_S = 8.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    cloud TEXT NOT NULL,
    request_id TEXT NOT NULL,
    cluster TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    bootstrap TEXT,
    state TEXT NOT NULL,
    pid INTEGER,
    ray_node_id TEXT,
    launched_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT,
    preempt_deadline REAL
);
CREATE INDEX IF NOT EXISTS by_request ON instances (cloud, request_id);
CREATE INDEX IF NOT EXISTS by_cluster ON instances (cluster, state);
CREATE TABLE IF NOT EXISTS outages (
    cloud TEXT PRIMARY KEY,
    down_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS withdrawn (
    cloud TEXT NOT NULL,
    capacity TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (cloud, capacity)
);
"""


class LocalState:
    """The shared SQLite state of every local cloud of one cluster. Safe across threads and processes:
    each call opens its own connection and commits before returning."""

    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / STATE_FILE
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    def insert(self, row: Mapping[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._conn() as conn:
            conn.execute(f"INSERT INTO instances ({cols}) VALUES ({marks})", tuple(row.values()))

    def update(self, instance_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._conn() as conn:
            conn.execute(
                f"UPDATE instances SET {sets} WHERE instance_id = ?", (*fields.values(), instance_id)
            )

    def get(self, instance_id: str) -> sqlite3.Row | None:
        with self._conn() as conn:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            return row

    def live(self, *, cloud: str | None = None, cluster: str | None = None) -> list[sqlite3.Row]:
        query = "SELECT * FROM instances WHERE state != 'terminated'"
        args: list[str] = []
        if cloud is not None:
            query += " AND cloud = ?"
            args.append(cloud)
        if cluster is not None:
            query += " AND cluster = ?"
            args.append(cluster)
        with self._conn() as conn:
            return list(conn.execute(query + " ORDER BY launched_at", args).fetchall())

    def rows(self, *, cluster: str) -> list[sqlite3.Row]:
        """Every instance the cluster ever had here, terminated ones included, in launch order."""
        with self._conn() as conn:
            return list(conn.execute(
                "SELECT * FROM instances WHERE cluster = ? ORDER BY launched_at", (cluster,)
            ).fetchall())

    def by_request(self, cloud: str, request_id: str) -> sqlite3.Row | None:
        with self._conn() as conn:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM instances WHERE cloud = ? AND request_id = ? AND state != 'terminated'",
                (cloud, request_id),
            ).fetchone()
            return row

    def set_down_until(self, cloud: str, until: float | None) -> None:
        """Record that ``cloud`` refuses launches until the epoch time ``until`` (None: it is up)."""
        with self._conn() as conn:
            if until is None:
                conn.execute("DELETE FROM outages WHERE cloud = ?", (cloud,))
            else:
                conn.execute(
                    "INSERT INTO outages (cloud, down_until) VALUES (?, ?) "
                    "ON CONFLICT(cloud) DO UPDATE SET down_until = excluded.down_until",
                    (cloud, until),
                )

    def down_until(self, cloud: str) -> float | None:
        """The epoch time until which ``cloud`` refuses launches, None when none was recorded."""
        with self._conn() as conn:
            row = conn.execute("SELECT down_until FROM outages WHERE cloud = ?", (cloud,)).fetchone()
            return None if row is None else float(row["down_until"])

    def set_withdrawn_until(self, cloud: str, capacity: str, until: float | None) -> None:
        """Record that ``cloud`` sells no ``capacity`` (a capacity type's value, e.g. ``"spot"``)
        until the epoch time ``until`` (None: it sells it again)."""
        with self._conn() as conn:
            if until is None:
                conn.execute("DELETE FROM withdrawn WHERE cloud = ? AND capacity = ?", (cloud, capacity))
            else:
                conn.execute(
                    "INSERT INTO withdrawn (cloud, capacity, until) VALUES (?, ?, ?) "
                    "ON CONFLICT(cloud, capacity) DO UPDATE SET until = excluded.until",
                    (cloud, capacity, until),
                )

    def withdrawn_until(self, cloud: str, capacity: str) -> float | None:
        """The epoch time until which ``cloud`` sells no ``capacity``, None when none was recorded."""
        with self._conn() as conn:
            row = conn.execute("SELECT until FROM withdrawn WHERE cloud = ? AND capacity = ?",
                               (cloud, capacity)).fetchone()
            return None if row is None else float(row["until"])

    def node_home(self, instance_id: str) -> Path:
        """The instance's own "disk": its HOME for commands run on it, and where its logs go."""
        home = self.dir / "nodes" / instance_id
        home.mkdir(parents=True, exist_ok=True)
        return home


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done = 0
    return done == 0


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class LocalCloud:
    """A simulated cloud whose instances are Ray nodes on this machine. See the module docstring."""

    features = CloudFeatures(
        spot=True, interruption_notices=True, simulated_preemption=True, local_commands=True
    )

    def __init__(
        self,
        name: str,
        state_dir: str | Path,
        *,
        max_instances: int | None = None,
        exhausted_offers: frozenset[str] = frozenset(),
        object_store_bytes: int = 80 * 1024 * 1024,
    ) -> None:
        self.name = name
        self.state = LocalState(state_dir)
        self.max_instances = max_instances
        self.exhausted_offers = set(exhausted_offers)
        self.object_store_bytes = object_store_bytes
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> LocalCloud:
        check_section(f"provider.clouds.{name}", spec, LOCAL_SCHEMA)  # clouds/schemas.py
        max_instances = spec.get("max_instances")
        return cls(
            name,
            state_dir,
            max_instances=int(max_instances) if max_instances is not None else None,
            exhausted_offers=frozenset(str(o) for o in spec.get("exhausted_offers", ())),
        )

    # -- the Cloud protocol -------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> Instance:
        with self._lock:
            existing = self.state.by_request(self.name, request.request_id)
            if existing is not None:
                return self._instance(existing)
            offer_id = request.offer.offer_id
            down_until = self.state.down_until(self.name)
            if down_until is not None and time.time() < down_until:
                raise CapacityError(
                    self.name, f"the cloud is down (simulated outage) for another "
                    f"{down_until - time.time():.0f} s",
                    offer_id=offer_id, code="ServiceUnavailable",
                )
            capacity = request.offer.capacity.value
            withdrawn_until = self.state.withdrawn_until(self.name, capacity)
            if withdrawn_until is not None and time.time() < withdrawn_until:
                raise CapacityError(
                    self.name, f"no {capacity} capacity left on the cloud (simulated shortage) for "
                    f"another {withdrawn_until - time.time():.0f} s",
                    offer_id=offer_id, code="InsufficientInstanceCapacity",
                )
            if offer_id in self.exhausted_offers:
                raise CapacityError(
                    self.name, f"no {request.offer.capacity.value} capacity for {offer_id}",
                    offer_id=offer_id, code="InsufficientInstanceCapacity",
                )
            if self.max_instances is not None and len(self.state.live(cloud=self.name)) >= self.max_instances:
                raise QuotaError(
                    self.name, f"instance quota of {self.max_instances} reached",
                    offer_id=offer_id, code="InstanceLimitExceeded",
                )
            instance_id = InstanceId(f"{self.name}-{uuid.uuid4().hex[:10]}")
            self.state.insert(
                {
                    "instance_id": instance_id,
                    "cloud": self.name,
                    "request_id": request.request_id,
                    "cluster": request.cluster,
                    "offer_id": offer_id,
                    "tags": json.dumps(dict(request.tags)),
                    "bootstrap": (json.dumps(_bootstrap_json(request.bootstrap))
                                  if request.bootstrap else None),
                    "state": NodeState.PENDING.value,
                    "launched_at": time.time(),
                }
            )
            try:
                pid = self._spawn(instance_id, head=request.bootstrap is None, request=request)
            except OSError as exc:
                self.state.update(instance_id, state=NodeState.TERMINATED.value, end_reason=f"spawn: {exc}")
                raise CloudError(self.name, f"could not start instance process: {exc}",
                                 offer_id=offer_id) from exc
            fields: dict[str, Any] = {"pid": pid}
            if request.bootstrap is None:
                fields["state"] = NodeState.RUNNING.value
            self.state.update(instance_id, **fields)
            row = self.state.get(instance_id)
            assert row is not None
            return self._instance(row)

    def terminate(self, instance_id: InstanceId) -> None:
        row = self.state.get(instance_id)
        if row is None or row["cloud"] != self.name or row["state"] == NodeState.TERMINATED.value:
            return
        pid = row["pid"]
        if pid:
            _kill_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + TERMINATE_GRACE_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            # Whatever ignored SIGTERM (or outlived its leader) in the group goes now.
            _kill_group(pid, signal.SIGKILL)
        self.state.update(
            instance_id, state=NodeState.TERMINATED.value, ended_at=time.time(),
            end_reason=row["end_reason"] or "terminated",
        )

    def get(self, instance_id: InstanceId) -> Instance | None:
        row = self.state.get(instance_id)
        if row is None or row["cloud"] != self.name:
            return None
        row = self._refresh(row)
        if row["state"] == NodeState.TERMINATED.value:
            return None
        return self._instance(row)

    def list(self, cluster: str) -> list[Instance]:
        out = []
        for stored in self.state.live(cloud=self.name, cluster=cluster):
            row = self._refresh(stored)
            if row["state"] != NodeState.TERMINATED.value:
                out.append(self._instance(row))
        return out

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        with self._lock:
            row = self.state.get(instance_id)
            if row is None or row["cloud"] != self.name or row["state"] == NodeState.TERMINATED.value:
                raise InstanceNotFound(self.name, f"instance {instance_id} does not exist")
            merged = {**json.loads(row["tags"]), **tags}
            self.state.update(instance_id, tags=json.dumps(merged))

    # -- simulated faults, as a cloud would cause them -----------------------------------------

    def preempt(self, instance_id: InstanceId, *, notice_s: float = 30.0) -> float:
        """Take a spot instance back: deliver a notice now, kill it ``notice_s`` later.

        The instance drains its own Ray node (reason PREEMPTION, deadline = now + notice_s) on the
        notice, as the interruption watcher on a real VM does. Returns the deadline (POSIX s).
        Raises ``InstanceNotFound`` for an instance that is gone.
        """
        row = self.state.get(instance_id)
        if row is None or row["cloud"] != self.name or row["state"] == NodeState.TERMINATED.value:
            raise InstanceNotFound(self.name, f"instance {instance_id} does not exist")
        deadline = time.time() + notice_s
        self.state.update(instance_id, preempt_deadline=deadline, end_reason="preempted")
        if row["bootstrap"] is None or not row["pid"]:
            self.terminate(instance_id)
            return deadline
        try:
            os.kill(row["pid"], signal.SIGUSR1)
        except ProcessLookupError:
            self.terminate(instance_id)
        return deadline

    def outage(
        self, cluster: str, *, notice_s: float = 0.0, down_s: float = 0.0
    ) -> builtins.list[InstanceId]:
        """The whole cloud goes down: every live instance of ``cluster`` is preempted at once, and
        for ``down_s`` seconds from now every launch on this cloud (from any process sharing the
        state directory: ``ray up``, the autoscaler's provider) fails with a
        :class:`CapacityError`, so the provider fails over to another cloud. ``down_s`` 0: the cloud
        takes launches again at once. :meth:`restore` ends the outage early."""
        if down_s > 0:
            self.state.set_down_until(self.name, time.time() + down_s)
        ids = [i.instance_id for i in self.list(cluster)]
        for instance_id in ids:
            with contextlib.suppress(InstanceNotFound):
                self.preempt(instance_id, notice_s=notice_s)
        return ids

    def restore(self) -> None:
        """End a simulated outage: launches on this cloud succeed again."""
        self.state.set_down_until(self.name, None)

    def withdraw(
        self, cluster: str, capacity: str = "spot", *, notice_s: float = 30.0, down_s: float = math.inf
    ) -> builtins.list[InstanceId]:
        """The cloud runs out of ``capacity`` (a capacity type's value: ``"spot"``, ``"on-demand"``):
        every live instance of ``cluster`` of that capacity is preempted (a notice now, gone
        ``notice_s`` later, as :meth:`preempt`), and for ``down_s`` seconds from now (default: until
        :meth:`give_back`) every launch of that capacity on this cloud, from any process sharing the
        state directory, fails with a :class:`CapacityError` (``InsufficientInstanceCapacity``),
        while launches of other capacity types succeed. That is how a spot market empties: the
        provider cools the refused offers down and falls back to what the pool allows next.
        Returns the preempted instances' ids."""
        if not down_s > 0:
            raise ValueError(f"down_s must be > 0, got {down_s}")
        self.state.set_withdrawn_until(self.name, capacity, time.time() + down_s)
        ids = [i.instance_id for i in self.list(cluster) if _capacity_of(i) == capacity]
        for instance_id in ids:
            with contextlib.suppress(InstanceNotFound):
                self.preempt(instance_id, notice_s=notice_s)
        return ids

    def give_back(self, capacity: str = "spot") -> None:
        """End a :meth:`withdraw`: launches of ``capacity`` on this cloud succeed again."""
        self.state.set_withdrawn_until(self.name, capacity, None)

    def ray_node_id(self, instance_id: InstanceId) -> str | None:
        """The Ray node id the instance's node registered with (None until it is up)."""
        row = self.state.get(instance_id)
        return None if row is None else row["ray_node_id"]

    def process_group(self, instance_id: InstanceId) -> int | None:
        """The instance's process group id (its instance process's pid), None once it is gone."""
        row = self.state.get(instance_id)
        if row is None or row["state"] == NodeState.TERMINATED.value or not _alive(row["pid"]):
            return None
        pid: int = row["pid"]
        return pid

    # -- internals ------------------------------------------------------------------------------

    def startup_script(self, instance_id: str, request: LaunchRequest) -> str:
        """The script a worker instance boots with: the drivers' own (``render_startup_script``),
        ending in an ``exec`` of this instance's process instead of ``ray start``."""
        assert request.bootstrap is not None
        node = [sys.executable, "-m", "ray_multicloud.clouds.local.node", "--state-dir", str(self.state.dir),
                "--instance-id", instance_id, "--object-store-bytes", str(self.object_store_bytes)]
        home = os.environ.get("HOME", "")
        return render_startup_script(
            request.bootstrap,
            request.offer,
            watcher_cloud=self.name,
            instance_id_lines=literal_instance_id(instance_id),
            python=shlex.quote(sys.executable),
            start_lines=[
                f"export HOME={shlex.quote(home)}" if home else "unset HOME",
                "exec " + " ".join(shlex.quote(part) for part in node),
            ],
            docker=False,
            on_failure=":",  # the instance process ends: _refresh marks the instance gone
            secret_store=self.secret_store(request.cluster),
        )

    def secret_store(self, cluster: str) -> FileSecretStore:
        """The cluster's secrets: 0600 files under ``<state_dir>/secrets/<cluster>/``, which a worker
        instance (a process of this machine) copies into its own home at boot."""
        from ray_multicloud.auth import local_store

        return local_store(self.state.dir, cluster)

    def _spawn(self, instance_id: str, *, head: bool, request: LaunchRequest | None = None) -> int:
        home = self.state.node_home(instance_id)
        cmd = [sys.executable, "-m", "ray_multicloud.clouds.local.node", "--state-dir", str(self.state.dir),
               "--instance-id", instance_id, "--object-store-bytes", str(self.object_store_bytes)]
        env: dict[str, str] | None = None
        if head:
            cmd.append("--hold")
        elif request is not None and request.bootstrap is not None:
            script = home / "startup.sh"
            script.write_text(self.startup_script(instance_id, request), encoding="utf-8")
            cmd = ["bash", str(script)]
            env = {**os.environ, "HOME": str(home)}
        log = open(home / "instance.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            # A head placeholder leads a new group in *our* session so that our command runner can
            # put the head's Ray processes into it; a worker gets a session of its own, like a VM.
            if head:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        cwd=home, process_group=0)
            else:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        cwd=home, start_new_session=True, env=env)
        finally:
            log.close()
        return proc.pid

    def _refresh(self, row: sqlite3.Row) -> sqlite3.Row:
        """Notice instances whose process died on its own (preempted, crashed) and mark them gone."""
        if row["state"] != NodeState.TERMINATED.value and row["pid"] and not _alive(row["pid"]):
            self.state.update(
                row["instance_id"], state=NodeState.TERMINATED.value, ended_at=time.time(),
                end_reason=row["end_reason"] or "instance process exited",
            )
            fresh = self.state.get(row["instance_id"])
            assert fresh is not None
            return fresh
        return row

    def _instance(self, row: sqlite3.Row) -> Instance:
        return Instance(
            instance_id=InstanceId(row["instance_id"]),
            cloud=self.name,
            state=NodeState(row["state"]),
            tags=json.loads(row["tags"]),
            internal_ip="127.0.0.1",
            external_ip="127.0.0.1",
            launched_at=float(row["launched_at"]),
        )


def _capacity_of(inst: Instance) -> str:
    """An instance's capacity type's value: its ``rmc-capacity`` tag, else its offer id's last part."""
    tagged = inst.tags.get(TAG_CAPACITY)
    if tagged:
        return tagged
    return inst.tags.get(TAG_OFFER, "").rsplit("/", 1)[-1]


def _bootstrap_json(boot: RayBootstrap) -> dict[str, Any]:
    data = asdict(boot)
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
