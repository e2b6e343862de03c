"""The process that *is* one local-cloud instance (``python -m ray_multicloud.clouds.local.node``).

A worker instance starts a Ray worker node on 127.0.0.1 with the resources, labels and environment
of its ``RayBootstrap``, records its Ray node id, and then waits:

- SIGTERM (terminate): stop the Ray node's processes and exit.
- SIGUSR1 (preemption notice): drain its own Ray node through the GCS with reason PREEMPTION and
  the notice's deadline, keep running until that deadline, then stop and exit — a spot VM's fate.

A head instance (``--hold``) only holds its process group open for ``ray up``'s head commands.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time

from ray_multicloud.clouds.base import LABEL_INSTANCE_ID
from ray_multicloud.clouds.local import LocalState
from ray_multicloud.types import NodeState

logger = logging.getLogger("ray_multicloud.clouds.local.node")


def _serve_worker(state: LocalState, instance_id: str, object_store_bytes: int) -> int:
    row = state.get(instance_id)
    if row is None or row["bootstrap"] is None:
        logger.error("instance %s has no bootstrap record", instance_id)
        return 2
    boot = json.loads(row["bootstrap"])
    os.environ.update({str(k): str(v) for k, v in boot["env"].items()})
    os.environ["RAY_CLOUD_INSTANCE_ID"] = instance_id
    os.environ["RAY_NODE_TYPE_NAME"] = boot["node_type"]

    import ray
    import ray._private.node
    import ray._private.parameter
    from ray._private import ray_constants

    # The instance process inherits the environment of whoever launched it: the autoscaler's monitor
    # on the head, which `ray up` starts with RAY_OVERRIDE_RESOURCES set to the *head's* YAML
    # resources. Ray lets that variable override num_cpus/num_gpus below, so a head declared with
    # {CPU: 0} gave every worker 0 CPUs. This instance's resources are its own.
    os.environ.pop(ray_constants.RESOURCES_ENVIRONMENT_VARIABLE, None)
    resources = {str(k): float(v) for k, v in boot["resources"].items()}
    num_cpus = resources.pop("CPU", 1.0)
    num_gpus = resources.pop("GPU", 0.0)
    resources.pop("memory", None)
    resources.pop("object_store_memory", None)
    labels = {str(k): str(v) for k, v in boot["labels"].items()}
    labels[LABEL_INSTANCE_ID] = instance_id
    # The node id is chosen here (as Ray's own fake_multinode cloud does), so the instance knows which
    # Ray node to drain even when Ray's startup wait below gives up on a loaded machine.
    node_id = ray.NodeID.from_random().hex()
    state.update(instance_id, ray_node_id=node_id)
    params = ray._private.parameter.RayParams(
        node_ip_address="127.0.0.1",
        gcs_address=boot["gcs_address"],
        redis_address=boot["gcs_address"],
        min_worker_port=0,
        max_worker_port=0,
        dashboard_port=None,
        dashboard_agent_listen_port=0,
        num_cpus=int(num_cpus),
        num_gpus=int(num_gpus),
        object_store_memory=object_store_bytes,
        resources=resources,
        labels=labels,
        env_vars={
            "RAY_OVERRIDE_NODE_ID_FOR_TESTING": node_id,
            "RAY_CLOUD_INSTANCE_ID": instance_id,
            "RAY_NODE_TYPE_NAME": boot["node_type"],
            ray_constants.RESOURCES_ENVIRONMENT_VARIABLE: json.dumps(resources),
            ray_constants.LABELS_ENVIRONMENT_VARIABLE: json.dumps(labels),
        },
    )
    try:
        # Ray names a node's sockets and log files by probing the cluster's session directory for a
        # free index; nodes of one cluster starting at once on one machine pick the same names and
        # their raylets die on "bind: Address already in use". Start them one at a time, as Ray's
        # own fake_multinode provider does (its lock is in-process; ours spans the instances).
        with open(state.dir / "node-start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ray._private.node.Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    except Exception as exc:  # noqa: BLE001 - Ray's startup wait is a fixed 30 s; the node may be up
        if not _raylet_alive():
            logger.error("Ray node failed to start: %s", exc)
            state.update(instance_id, end_reason="ray node failed to start")
            _end_group(state, instance_id)
            return 1
        logger.warning("Ray's startup wait gave up (%s) but the raylet runs; carrying on", exc)
    state.update(instance_id, state=NodeState.RUNNING.value)
    logger.info("instance %s up as Ray node %s", instance_id, node_id)

    stop = threading.Event()
    notice = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: notice.set())

    while not stop.is_set():
        if notice.is_set():
            notice.clear()
            _answer_notice(state, instance_id, boot["gcs_address"], node_id, stop)
            break
        stop.wait(0.2)
    _end_group(state, instance_id)
    return 0


def _raylet_alive() -> bool:
    """Whether a raylet runs in this instance's process group (Linux /proc)."""
    group = os.getpgrp()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != group:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if b"raylet" in fh.read().split(b"\0")[0]:
                    return True
        except (OSError, ProcessLookupError):
            continue
    return False


def _end_group(state: LocalState, instance_id: str) -> None:
    """Record the end, then end every process of this instance's group (the Ray node), us last."""
    fresh = state.get(instance_id)
    reason = (fresh["end_reason"] if fresh is not None else None) or "terminated"
    state.update(instance_id, state=NodeState.TERMINATED.value, ended_at=time.time(), end_reason=reason)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGTERM)
    time.sleep(2.0)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _answer_notice(state: LocalState, instance_id: str, gcs_address: str, node_id: str,
                   stop: threading.Event) -> None:
    from ray_multicloud.worker.drain import PREEMPTION, drain_node

    row = state.get(instance_id)
    deadline = float(row["preempt_deadline"]) if row is not None and row["preempt_deadline"] else time.time()
    state.update(instance_id, state=NodeState.DRAINING.value)
    try:
        accepted, why = drain_node(gcs_address, node_id, deadline_s=deadline, reason=PREEMPTION,
                                   message=f"spot preemption of {instance_id}")
        logger.info("drain of %s accepted=%s %s", node_id, accepted, why)
    except Exception:  # the instance dies at the deadline whether or not the drain went through
        logger.exception("drain of %s failed", node_id)
    stop.wait(max(0.0, deadline - time.time()))


def _hold() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--instance-id", required=True)
    parser.add_argument("--object-store-bytes", type=int, default=80 * 1024 * 1024)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.hold:
        return _hold()
    return _serve_worker(LocalState(args.state_dir), args.instance_id, args.object_store_bytes)


if __name__ == "__main__":
    sys.exit(main())
