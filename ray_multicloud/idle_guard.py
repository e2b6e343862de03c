"""Idle governance at run time: read GPU use, downsize idle GPU nodes, hibernate and restore.

The decisions are ``policy/idle.py``'s; the YAML is ``cluster_config/idle.py``'s. This module is
the I/O around them, run by the controller on the head once per tick (``IdleGuard.tick``) and by
``ray-multicloud restore``:

**GPU use** of each worker node, per ``provider.idle.gpu_signal``:

- *utilisation* (real GPUs): Ray's own metric ``ray_node_gpus_utilization`` (percent per GPU,
  ``ray/dashboard/modules/reporter/reporter_agent.py``), read from each node's metrics agent
  (``http://<NodeManagerAddress>:<MetricsExportPort>/metrics``, the endpoint Prometheus scrapes);
  a GPU above ``gpu_busy_percent`` is in use;
- *allocation* (logical GPUs, as on the local cloud): some of the node's ``GPU`` resource is
  allocated (the GCS's available < total) — a task, actor or placement group holds it;
- *auto* (default): utilisation for a node whose agent exports the metric, allocation for the
  others (the local cloud's GPUs are logical: no agent reports them).

**Downsize** (make-before-break, like a price move): a node of the ``downsize_to`` node type is
launched through the provider (its placement policy and budgets apply), and once its Ray node is
alive the GPU node is drained with reason PREEMPTION and a deadline (the pool's
``migration.drain_deadline_seconds``, default 30 s): Ray Train checkpoints and restarts, Serve and
restartable actors re-place, onto the CPU node; the GPU node is terminated once drained or at the
deadline. A CPU node that does not come up is terminated and the GPU node left alone.

**Hibernate**: the state is written first to ``hibernation-<cluster>.json`` next to the ledger
(or in ``provider.state_dir`` without one): worker node types and counts with their resource
shapes, every Serve application (its declarative config, when deployed from one, and its
deployments' replica targets), the Train runs found under the Train storage with their newest
checkpoint. From then on the provider refuses every worker launch with the reason "hibernated"
(the autoscaler shows it), Serve's declaratively deployed apps are deleted (their config kept;
an app deployed from Python by ``serve.run`` cannot be redeployed without its code, so it is
kept and its replicas wait for nodes), every worker is drained (PREEMPTION: Train takes its
just-in-time checkpoint) and terminated. The head stays.

**Restore** (``ray-multicloud restore CONFIG``, or the controller's start after ``ray up``): the
file is marked restored (launches allowed again), the recorded node shapes are asked of the
autoscaler with ``ray.autoscaler.sdk.request_resources`` (so the recorded node types and counts
come back through the normal launch path and stay while the request stands) and the recorded
Serve apps are deployed again. The request stands until the idle policy next acts (a downsize or
a hibernation withdraws it first), so a restored cluster is governed again as before.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.cluster_config.idle import parse_idle
from ray_multicloud.cluster_config.provider_section import ProviderSettings
from ray_multicloud.policy.idle import (
    ActionKind,
    GpuReading,
    IdleAction,
    IdleMemory,
    IdleSettings,
    decide,
    observe,
)

logger = logging.getLogger(__name__)

GPU_METRIC = "ray_node_gpus_utilization"
HIBERNATED = "hibernated"
RESTORED = "restored"


# --------------------------------------------------------------------------- the state file


def state_path(settings: ProviderSettings) -> Path:
    """Where a cluster's hibernation state lives: next to the ledger, else in the state dir."""
    base = Path(settings.ledger_path).parent if settings.ledger_path else settings.state_dir
    return base / f"hibernation-{settings.cluster_name}.json"


def read_state(settings: ProviderSettings) -> dict[str, Any] | None:
    """The recorded hibernation state, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(state_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(settings: ProviderSettings, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically (a reader sees the old or the new file, never half of one)."""
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def is_hibernated(settings: ProviderSettings) -> bool:
    """True while the cluster is hibernated: the provider then refuses worker launches."""
    state = read_state(settings)
    return state is not None and state.get("status") == HIBERNATED


# --------------------------------------------------------------------------- GPU use


_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


def parse_gpu_utilisation(text: str) -> list[float]:
    """Every ``ray_node_gpus_utilization`` sample (percent, one per GPU) in a Prometheus text
    exposition; an unparsable value is skipped."""
    out: list[float] = []
    for line in text.splitlines():
        if not line.startswith(GPU_METRIC):
            continue
        m = _LINE.match(line)
        if m is None or m.group("name") != GPU_METRIC:
            continue
        try:
            out.append(float(m.group("value")))
        except ValueError:
            continue
    return out


def scrape_utilisation(endpoints: Mapping[str, str], *, timeout_s: float = 2.0) -> dict[str, list[float]]:
    """Ray node id -> its GPUs' utilisation samples, read from each node's metrics agent
    (``endpoints``: node id -> ``host:port``). A node whose agent cannot be read, or exports no GPU
    sample, is absent (its GPUs are then judged by allocation, under ``gpu_signal: auto``)."""
    out: dict[str, list[float]] = {}
    for node_id, address in endpoints.items():
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout_s) as resp:
                samples = parse_gpu_utilisation(resp.read().decode("utf-8", "replace"))
        except (OSError, ValueError):
            continue
        if samples:
            out[node_id] = samples
    return out


def metrics_endpoints() -> dict[str, str]:
    """Live Ray node id -> its metrics agent's ``host:port`` (``ray.nodes()``; needs ``ray.init``)."""
    import ray

    out: dict[str, str] = {}
    for n in ray.nodes():
        if n.get("Alive") and n.get("MetricsExportPort"):
            out[str(n["NodeID"])] = f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}"
    return out


def readings(
    workers: Mapping[str, str],
    view: Mapping[str, Any],
    settings: IdleSettings,
    utilisation: Mapping[str, Sequence[float]],
) -> list[GpuReading]:
    """One ``GpuReading`` per worker (``workers``: instance id -> node type) that has a live Ray node
    in ``view`` (instance id -> ``controller.RayNode``); ``utilisation``: Ray node id -> samples."""
    out: list[GpuReading] = []
    for iid, node_type in workers.items():
        node = view.get(iid)
        if node is None or not node.alive:
            continue
        gpus = float(node.total.get("GPU", 0.0))
        allocated = node.available.get("GPU", 0.0) + 1e-9 < gpus
        samples = utilisation.get(node.node_id)
        if settings.gpu_signal == "allocation" or (settings.gpu_signal == "auto" and not samples):
            in_use = allocated
        else:
            in_use = any(s > settings.gpu_busy_percent for s in (samples or ()))
        out.append(GpuReading(iid, node_type, gpus, gpus > 0 and in_use, bool(node.busy)))
    return out


# --------------------------------------------------------------------------- Serve and Train


def _serve_client() -> Any:
    """Serve's client when this process is connected to Ray and Serve runs, else None. Never
    connects by itself (Ray's auto-init would join whatever cluster it finds on this machine)."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        from ray.serve.context import _get_global_client

        return _get_global_client(raise_if_no_controller_running=False)
    except Exception:  # noqa: BLE001 - no Serve in this cluster (or not importable): nothing to keep
        return None


def serve_snapshot(client: Any) -> list[dict[str, Any]]:
    """Each Serve app: name, declarative config (None when deployed from Python) and its
    deployments' target replica counts, from the Serve controller's details."""
    if client is None:
        return []
    details = client.get_serve_details() or {}
    apps = []
    for name, app in (details.get("applications") or {}).items():
        deployments = {d: int((info or {}).get("target_num_replicas") or 0)
                       for d, info in (app.get("deployments") or {}).items()}
        apps.append({"name": name, "config": app.get("deployed_app_config"), "replicas": deployments})
    return apps


def serve_deploy(client: Any, configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Deploy the declarative app ``configs`` again beside the declarative apps running now (Serve's
    apply is declarative: apps left out of it would be deleted). Returns the names deployed."""
    from ray.serve.schema import ServeDeploySchema

    current = {a["name"]: a["config"] for a in serve_snapshot(client) if a["config"]}
    for cfg in configs:
        current[str(cfg["name"])] = dict(cfg)
    if not current:
        return []
    # Keep the running instance's proxies and HTTP options (Serve refuses to change them in place).
    details = client.get_serve_details() or {}
    instance = {k: details[k] for k in ("proxy_location", "http_options") if details.get(k) is not None}
    client.deploy_apps(ServeDeploySchema(applications=list(current.values()), **instance))
    return sorted(str(c["name"]) for c in configs)


def train_checkpoints(roots: Sequence[str]) -> list[dict[str, str]]:
    """Each Train run directory under the local storage ``roots`` with its newest ``checkpoint*``."""
    runs: list[dict[str, str]] = []
    for root in roots:
        if "://" in root or not os.path.isdir(root):
            continue
        for run in sorted(os.listdir(root)):
            run_dir = os.path.join(root, run)
            if not os.path.isdir(run_dir):
                continue
            cks = sorted(c for c in os.listdir(run_dir) if c.startswith("checkpoint"))
            if cks:
                runs.append({"run_dir": run_dir, "checkpoint": os.path.join(run_dir, cks[-1])})
    return runs


# --------------------------------------------------------------------------- the guard


@dataclass
class DownsizeResult:
    old_instance: str
    new_instance: str
    status: str  # downsized | launch-failed | not-up | drain-rejected
    detail: str = ""


class IdleGuard:
    """The controller's idle governance: call ``tick`` once per controller tick.

    ``controller`` gives the provider, the GCS address, the cluster YAML and the I/O seams
    (``_io``: nodes, drain, clock, sleep) every move uses. ``utilisation`` reads Ray node id ->
    GPU utilisation samples (default: scrape each node's metrics agent when connected to Ray).
    """

    def __init__(self, controller: Any, settings: IdleSettings | None = None,
                 utilisation: Callable[[], Mapping[str, Sequence[float]]] | None = None) -> None:
        self.controller = controller
        self.settings = settings if settings is not None else parse_idle(controller.cluster_config)
        self.memory = IdleMemory()
        self.history: list[tuple[float, IdleAction, str]] = []
        self._utilisation = utilisation
        self._said: set[str] = set()
        self._restore_seen: object = None  # the state's restored_at of the last restore acted on
        self.types: Mapping[str, Any] = controller.cluster_config.get("available_node_types") or {}

    @property
    def provider_settings(self) -> ProviderSettings:
        return self.controller.provider.settings  # type: ignore[no-any-return]

    def _read_utilisation(self) -> Mapping[str, Sequence[float]]:
        if self.settings.gpu_signal == "allocation":
            return {}
        if self._utilisation is not None:
            return self._utilisation()
        from ray_multicloud.controller import _ray_connected

        if not _ray_connected():
            return {}
        try:
            return scrape_utilisation(metrics_endpoints())
        except Exception as exc:  # noqa: BLE001 - metrics down: judge by allocation this tick
            logger.warning("GPU utilisation not read (%s); judging GPUs by allocation", exc)
            return {}

    def workers(self) -> dict[str, str]:
        """Every live worker instance -> its node type, as the autoscaler sees them (the provider's
        tags; pinned-``offer:`` node types included, which ``provider.fleet()`` leaves out)."""
        from ray.autoscaler.tags import NODE_KIND_WORKER, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

        provider = self.controller.provider
        return {str(iid): str(provider.node_tags(iid).get(TAG_RAY_USER_NODE_TYPE, ""))
                for iid in provider.non_terminated_nodes({TAG_RAY_NODE_KIND: NODE_KIND_WORKER})}

    def tick(self, now: float) -> list[IdleAction]:
        """Read, decide, act. Never raises for a cloud or GCS failure (logged)."""
        from ray_multicloud.controller import nodes_or_none

        state = read_state(self.provider_settings)
        if state is not None and state.get("status") == HIBERNATED:
            # Forget the clocks: a restored cluster starts afresh, not hibernated again at once.
            self.memory = IdleMemory()
            return []
        restored_at = state.get("restored_at") if state is not None else None
        if state is not None and state.get("status") == RESTORED and restored_at != self._restore_seen:
            # A restore this guard has not seen (perhaps between two ticks, so no tick saw the cluster
            # hibernated): GPU idleness before it must not count again.
            self._restore_seen = restored_at
            self.memory = IdleMemory()
        view = nodes_or_none(self.controller._io["nodes"], self.controller.gcs_address)
        if view is None:
            return []
        workers = self.workers()
        reads = readings(workers, view, self.settings, self._read_utilisation())
        self.memory = observe(self.memory, reads, now=now)
        decision = decide(reads, self.memory, self.settings, now=now, hibernated=False)
        for note in decision.notes:
            self._once(note)
        done: list[IdleAction] = []
        for action in decision.actions:
            logger.info("idle: %s", action.reason)
            self._withdraw_restore_request(state)
            if action.kind is ActionKind.HIBERNATE:
                path = self.hibernate(action, workers, view)
                self.memory = IdleMemory()
                self.history.append((now, action, f"hibernated; state in {path}"))
            else:
                result = self.downsize(action, view, from_node_type=workers.get(action.instance_ids[0], ""))
                self.history.append((now, action, f"{result.status} {result.detail}".strip()))
            done.append(action)
        return done

    def _once(self, line: str) -> None:
        key = line.split(":", 1)[0]
        if key not in self._said:
            self._said.add(key)
            logger.info("idle: %s", line)

    def _withdraw_restore_request(self, state: Mapping[str, Any] | None) -> None:
        """A restore's standing ``request_resources`` would bring back what the policy releases."""
        if state is None or not state.get("resources_requested"):
            return
        try:
            import ray
            from ray.autoscaler.sdk import request_resources

            if not ray.is_initialized():
                raise RuntimeError("this process is not connected to Ray")
            request_resources(bundles=[])
        except Exception as exc:  # noqa: BLE001 - not connected: the request stays; say so
            logger.warning("could not withdraw the restore's resource request: %s", exc)
            return
        write_state(self.provider_settings, {**state, "resources_requested": False})

    def _spec(self, node_type: str) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
        spec = self.types.get(node_type) or {}
        return (dict(spec.get("node_config") or {}),
                {str(k): float(v) for k, v in (spec.get("resources") or {}).items()},
                {str(k): str(v) for k, v in (spec.get("labels") or {}).items()})

    def _timeouts(self, node_type: str) -> tuple[float, float]:
        migration = self.controller.migrations.get(node_type)
        if migration is None:
            return 30.0, 300.0
        return float(migration.drain_deadline_s), float(migration.up_timeout_s)

    def downsize(
        self, action: IdleAction, view: Mapping[str, Any], *, from_node_type: str = ""
    ) -> DownsizeResult:
        """Launch a ``action.to_node_type`` node, wait for its Ray node, drain the GPU node, terminate
        it (module docstring). Never raises for a cloud or GCS failure: the result says what happened."""
        from ray.autoscaler.tags import (
            NODE_KIND_WORKER,
            STATUS_UP_TO_DATE,
            TAG_RAY_LAUNCH_REQUEST,
            TAG_RAY_NODE_KIND,
            TAG_RAY_NODE_NAME,
            TAG_RAY_NODE_STATUS,
            TAG_RAY_USER_NODE_TYPE,
        )

        from ray_multicloud.controller import nodes_or_none
        from ray_multicloud.errors import MultiCloudError
        from ray_multicloud.worker.drain import PREEMPTION

        io = self.controller._io
        provider, gcs = self.controller.provider, self.controller.gcs_address
        old = action.instance_ids[0]
        drain_s, up_s = self._timeouts(from_node_type or action.to_node_type)
        node_config, resources, labels = self._spec(action.to_node_type)
        tags = {
            TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
            TAG_RAY_USER_NODE_TYPE: action.to_node_type,
            TAG_RAY_NODE_NAME: f"ray-{self.controller.cluster_name}-worker",
            TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            TAG_RAY_LAUNCH_REQUEST: f"idle-{uuid.uuid4().hex[:12]}",
        }
        up_by = io["clock"]() + up_s
        request, new = tags[TAG_RAY_LAUNCH_REQUEST], ""
        seen: Mapping[str, Any] = {}
        for attempt in (1, 2):  # a CPU node whose instance dies while starting is launched once more
            try:
                attempt_tags = {**tags, TAG_RAY_LAUNCH_REQUEST: f"{request}-{attempt}"}
                created = provider.create_node_with_resources_and_labels(
                    node_config, attempt_tags, 1, resources, labels
                )
            except MultiCloudError as exc:
                logger.warning("idle downsize of %s: no %s node: %s", old, action.to_node_type, exc)
                return DownsizeResult(old, "", "launch-failed", str(exc))
            new = str(next(iter(created)))
            logger.info("idle downsize of %s: %s node %s launched", old, action.to_node_type, new)
            while True:
                seen = nodes_or_none(io["nodes"], gcs) or {}
                n = seen.get(new)
                if n is not None and n.status in ("RUNNING", "IDLE"):
                    break
                if io["clock"]() >= up_by:
                    provider.terminate_node(new)
                    why = f"{new} not up within {up_s:.0f} s; GPU node kept"
                    logger.warning("idle downsize of %s: %s", old, why)
                    return DownsizeResult(old, new, "not-up", why)
                if provider.is_terminated(new):
                    break  # the instance is gone (its Ray node failed to start)
                io["sleep"](0.5)
            if n is not None and n.status in ("RUNNING", "IDLE"):
                break
            logger.warning("idle downsize of %s: %s ended while starting%s", old, new,
                           "; launching another" if attempt == 1 else "; GPU node kept")
        else:
            return DownsizeResult(old, new, "not-up", f"{new} ended while starting twice; GPU node kept")
        node = seen.get(old)
        if node is not None and node.alive:
            deadline = io["clock"]() + drain_s
            try:
                accepted, why = io["drain"](gcs, node.node_id, deadline_s=deadline, reason=PREEMPTION,
                                            message=f"rmc idle downsize {old} -> {new}")
            except Exception as exc:  # noqa: BLE001 - GCS hiccup: keep the GPU node, drop the new one
                accepted, why = False, str(exc)
            if not accepted:
                provider.terminate_node(new)
                return DownsizeResult(old, new, "drain-rejected", why)
            while io["clock"]() < deadline:
                n = (nodes_or_none(io["nodes"], gcs) or {}).get(old)
                if n is None or not n.alive or not n.busy:
                    break
                io["sleep"](0.5)
        provider.terminate_node(old)
        ledger = self.controller.ledger
        if ledger is not None:
            try:
                ledger.record_move(old, new, action.reason, io["clock"]())
            except Exception:
                logger.exception("ledger record of the downsize failed")
        logger.info("idle downsize of %s -> %s (%s) done", old, new, action.to_node_type)
        return DownsizeResult(old, new, "downsized")

    def hibernate(self, action: IdleAction, workers: Mapping[str, str], view: Mapping[str, Any]) -> Path:
        """Record the state, block launches, scale Serve to zero, drain and release every worker."""
        from ray_multicloud.controller import nodes_or_none
        from ray_multicloud.worker.drain import PREEMPTION

        io = self.controller._io
        provider, gcs = self.controller.provider, self.controller.gcs_address
        ids = set(action.instance_ids)
        counts: dict[str, int] = {}
        for iid, node_type in workers.items():
            if iid in ids:
                counts[node_type] = counts.get(node_type, 0) + 1
        client = _serve_client()
        try:
            apps = serve_snapshot(client)
        except Exception as exc:  # noqa: BLE001 - Serve unreadable: hibernate the nodes anyway, say so
            logger.warning("idle hibernate: Serve apps not read (%s)", exc)
            apps = []
        roots: tuple[str, ...] = ()
        try:
            from ray_multicloud.train.jobs import storage_roots

            roots = storage_roots(self.provider_settings)
        except Exception:  # noqa: BLE001 - no Train storage: nothing to record
            roots = ()
        state = {
            "cluster": self.controller.cluster_name,
            "status": HIBERNATED,
            "hibernated_at": time.time(),
            "reason": action.reason,
            "nodes": counts,
            "resources": {t: self._spec(t)[1] for t in counts},
            "serve_apps": apps,
            "train_runs": train_checkpoints(roots),
            "resources_requested": False,
        }
        path = write_state(self.provider_settings, state)
        logger.info("idle hibernate: state written to %s (nodes %s, %d Serve app(s))",
                    path, counts, len(apps))
        # Launches are refused from here on; a node the autoscaler launched since the decision is
        # released with the others (and counted, so restore brings it back too).
        for iid, node_type in self.workers().items():
            if iid not in ids:
                ids.add(iid)
                counts[node_type] = counts.get(node_type, 0) + 1
                state["nodes"] = counts
                state["resources"] = {t: self._spec(t)[1] for t in counts}
                write_state(self.provider_settings, state)
        declarative = [a["name"] for a in apps if a.get("config")]
        kept = [a["name"] for a in apps if not a.get("config")]
        if declarative and client is not None:
            try:
                client.delete_apps(declarative, blocking=True)
                logger.info("idle hibernate: Serve apps %s scaled to zero (deleted, config kept)",
                            declarative)
            except Exception as exc:  # noqa: BLE001 - the nodes are released anyway
                logger.warning("idle hibernate: Serve apps %s not deleted: %s", declarative, exc)
        if kept:
            logger.warning("idle hibernate: Serve apps %s were deployed from Python (serve.run), not from a "
                           "config: kept; their replicas wait for nodes until restore", kept)
        drain_s = max((self._timeouts(t)[0] for t in counts), default=30.0)
        deadline = io["clock"]() + drain_s
        view = nodes_or_none(io["nodes"], gcs) or view
        for iid in sorted(ids):
            node = view.get(iid)
            if node is None or not node.alive:
                continue
            try:
                io["drain"](gcs, node.node_id, deadline_s=deadline, reason=PREEMPTION,
                            message="rmc idle hibernate")
            except Exception:
                logger.warning("idle hibernate: drain of %s failed", iid, exc_info=True)
        pending = set(ids)
        while pending and io["clock"]() < deadline:
            seen = nodes_or_none(io["nodes"], gcs) or {}
            pending = {i for i in pending if (n := seen.get(i)) is not None and n.alive and n.busy}
            if pending:
                io["sleep"](0.5)
        for iid in sorted(ids):
            try:
                provider.terminate_node(iid)
            except Exception:
                logger.exception("idle hibernate: terminating %s failed", iid)
        logger.info("idle hibernate: %d worker node(s) released; `ray-multicloud restore CONFIG` brings "
                    "them back", len(ids))
        return path


def restore(
    settings: ProviderSettings,
    *,
    connect: bool = True,
    request: Callable[[list[dict[str, float]]], object] | None = None,
) -> dict[str, Any]:
    """Bring a hibernated cluster back (module docstring). Returns what was done:
    ``{"nodes": {type: count}, "bundles": n, "serve_apps": [names], "kept_apps": [names],
    "train_runs": [...]}``. Raises ``MultiCloudError`` when the cluster is not hibernated.
    ``request`` asks the autoscaler for the bundles (default ``request_resources``; a test's fake)."""
    from ray_multicloud.errors import MultiCloudError

    state = read_state(settings)
    if state is None or state.get("status") != HIBERNATED:
        where = state_path(settings)
        raise MultiCloudError(f"cluster {settings.cluster_name!r} is not hibernated (no hibernated state "
                              f"in {where}); nothing to restore")
    import ray

    if connect and not ray.is_initialized():
        ray.init(settings.gcs_address, log_to_driver=False)
    configs = [a["config"] for a in state.get("serve_apps") or [] if a.get("config")]
    if (configs or request is None) and not ray.is_initialized():
        raise MultiCloudError("restore needs a connection to the cluster (connect=True)")
    write_state(settings, {**state, "status": RESTORED, "restored_at": time.time()})
    bundles: list[dict[str, float]] = []
    resources = state.get("resources") or {}
    for node_type, count in (state.get("nodes") or {}).items():
        shape = {k: float(v) for k, v in (resources.get(node_type) or {}).items() if float(v) > 0}
        bundles.extend(dict(shape) for _ in range(int(count)) if shape)
    if bundles:
        if request is None:
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=bundles)
        else:
            request(bundles)
    deployed: list[str] = []
    if configs:
        client = _serve_client()
        if client is None:  # Serve's controller is gone too: start it (loopback) and deploy
            from ray import serve

            serve.start(http_options={"host": "127.0.0.1"})
            client = _serve_client()
        deployed = serve_deploy(client, configs)
    write_state(settings, {**state, "status": RESTORED, "restored_at": time.time(),
                           "resources_requested": bool(bundles)})
    return {
        "nodes": dict(state.get("nodes") or {}),
        "bundles": len(bundles),
        "serve_apps": deployed,
        "kept_apps": [a["name"] for a in state.get("serve_apps") or [] if not a.get("config")],
        "train_runs": list(state.get("train_runs") or []),
    }
