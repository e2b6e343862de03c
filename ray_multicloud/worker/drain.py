"""Drain a Ray node through the GCS, the way a cloud's interruption notice should be answered.

A drain with reason PREEMPTION and a deadline is what Ray Train's preemption watcher and Ray
Serve's controller react to: they move work off the node before the deadline, while the node
still runs. Ray itself never kills the node at the deadline; whoever drains is responsible for
that (the local cloud kills the instance's process group; a real cloud takes the VM back).
"""

from __future__ import annotations

import contextlib
import time

PREEMPTION = "DRAIN_NODE_REASON_PREEMPTION"
IDLE_TERMINATION = "DRAIN_NODE_REASON_IDLE_TERMINATION"


def drain_node(
    gcs_address: str,
    node_id_hex: str,
    *,
    deadline_s: float,
    reason: str = PREEMPTION,
    message: str = "",
) -> tuple[bool, str]:
    """Ask the GCS at ``gcs_address`` to drain node ``node_id_hex`` by ``deadline_s`` (POSIX seconds).

    Returns ``(accepted, rejection_message)``. A node that is already draining or gone is answered
    by the GCS itself (accepted, or rejected with its reason); this function never raises for that.
    """
    import ray._raylet
    from ray.core.generated import autoscaler_pb2

    client = ray._raylet.GcsClient(address=gcs_address)  # type: ignore[attr-defined]
    accepted, rejection = client.drain_node(
        node_id_hex,
        autoscaler_pb2.DrainNodeReason.Value(reason),  # type: ignore[attr-defined]
        message,
        int(deadline_s * 1000),
    )
    if accepted:
        # Who drained it, for ``drain_messages`` (the GCS keeps a drain's message to itself).
        with contextlib.suppress(Exception):  # the drain stands either way
            client.internal_kv_put(_kv_key(node_id_hex), message.encode(), True, KV_NAMESPACE)
    return bool(accepted), str(rejection or "")


KV_NAMESPACE = b"ray_multicloud"
OWN_DRAIN_PREFIX = "rmc "  # the message of every drain this package makes on purpose (a move, idle, SLO)


def _kv_key(node_id_hex: str) -> bytes:
    return f"drain:{node_id_hex}".encode()


def drain_messages(gcs_address: str, node_ids_hex: list[str]) -> dict[str, str]:
    """The message of the last drain ``drain_node`` made of each node (nodes without one are left
    out). A message starting with ``OWN_DRAIN_PREFIX`` is one of this package's own drains (a move,
    an idle downsize, an SLO scale-down), not a cloud's interruption notice."""
    import ray._raylet

    client = ray._raylet.GcsClient(address=gcs_address)  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for node in node_ids_hex:
        value = client.internal_kv_get(_kv_key(node), KV_NAMESPACE)
        if value is not None:
            out[node] = bytes(value).decode(errors="replace")
    return out


def deadline_after(seconds: float, *, now: float | None = None) -> float:
    """The POSIX time ``seconds`` from ``now`` (default: the wall clock)."""
    return (time.time() if now is None else now) + seconds
