"""Render a ``RayBootstrap`` into the shell script a new worker runs at first boot.

The script is the same on every cloud (AWS user data, GCP ``startup-script`` metadata, Azure
custom data): export the bootstrap's environment and the instance id autoscaler v2 matches nodes
by, start the interruption watcher, then ``ray start`` against the head's GCS. Every value is
shell-quoted; the script never carries a credential (clouds hand those to the instance through
their own instance identity, not through user data).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence

from ray_multicloud.clouds.base import RayBootstrap
from ray_multicloud.types import Offer

WATCHER_LOCK = "/tmp/rmc-watcher.lock"
WATCHER_LOG = "/tmp/rmc-watcher.log"
# Ray's predefined resources and the ``ray start`` flag each must be given through.
_PREDEFINED = {"CPU": "--num-cpus", "GPU": "--num-gpus", "memory": "--memory",
               "object_store_memory": "--object-store-memory"}


def ray_env(bootstrap: RayBootstrap, offer: Offer) -> dict[str, str]:
    """The environment ``ray start`` runs under: the bootstrap's env plus Ray's market/region/zone
    variables (which become Ray's own ``ray.io/market-type`` / ``availability-region`` / ``-zone``
    labels). ``RAY_CLOUD_INSTANCE_ID`` is exported separately by the script."""
    env = dict(bootstrap.env)
    env.setdefault("RAY_NODE_MARKET_TYPE", offer.capacity.value)
    env.setdefault("RAY_NODE_REGION", offer.region)
    if offer.zone:
        env.setdefault("RAY_NODE_ZONE", offer.zone)
    env.setdefault("RAY_NODE_TYPE_NAME", bootstrap.node_type)
    return env


_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def label_value(value: str) -> str:
    """A Ray label value: ``[A-Za-z0-9_.-]``, alphanumeric at both ends, at most 63 characters.

    ``ray start`` refuses anything else, and a worker that cannot start never joins, so values
    such as the GCP instance type ``n1-standard-8+V100`` are made valid (``n1-standard-8_V100``).
    """
    clean = _LABEL_BAD.sub("_", value)[:63].strip("_.-")
    return clean


def labels_arg(labels: Mapping[str, str]) -> str:
    """Ray's ``--labels`` syntax: ``k1=v1,k2=v2`` (sorted, so the script is deterministic)."""
    for key in labels:
        if "," in key or "=" in key:
            raise ValueError(f"Ray label key {key!r} may not contain ',' or '='")
    return ",".join(f"{k}={label_value(v)}" for k, v in sorted(labels.items()))


def watcher_command(cloud: str, gcs_address: str, *, python: str = "python3") -> str:
    """The shell line that starts the interruption watcher once per host (``flock`` guards
    against the YAML's setup commands starting a second one)."""
    return (
        f"nohup flock -n {WATCHER_LOCK} {python} -m ray_multicloud.worker.watcher "
        f"--cloud {shlex.quote(cloud)} --gcs-address {shlex.quote(gcs_address)} "
        f'--instance-id "$RAY_CLOUD_INSTANCE_ID" >>{WATCHER_LOG} 2>&1 &'
    )


def render_startup_script(
    bootstrap: RayBootstrap,
    offer: Offer,
    *,
    watcher_cloud: str,
    instance_id_lines: Sequence[str],
    ray: str = "ray",
    python: str = "python3",
    extra_args: Sequence[str] = (),
    watcher: bool = True,
) -> str:
    """A bash script that joins this instance to the cluster.

    ``instance_id_lines`` are shell lines that set ``RMC_INSTANCE_ID`` (a literal where the driver
    names the instance itself, an IMDS lookup where the cloud assigns the id). ``extra_args`` are
    appended to ``ray start`` (a host's own flags, e.g. ``--node-ip-address``); ``watcher`` False
    leaves out the interruption watcher (machines nobody takes back, such as a private pool's).
    Ray's predefined resources go through their own flags (``ray start`` refuses ``CPU``, ``GPU``,
    ``memory`` and ``object_store_memory`` inside ``--resources``).
    """
    env = ray_env(bootstrap, offer)
    lines = [
        "#!/bin/bash",
        f"# ray_multicloud worker bootstrap: node type {shlex.quote(bootstrap.node_type)}",
        "set -euo pipefail",
        *instance_id_lines,
        'export RAY_CLOUD_INSTANCE_ID="$RMC_INSTANCE_ID"',
    ]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    custom = dict(sorted(bootstrap.resources.items()))
    start = [ray, "start", f"--address={bootstrap.gcs_address}"]
    for resource, flag in _PREDEFINED.items():
        if resource in custom:
            start.append(f"{flag}={int(custom.pop(resource))}")
    start.append(f"--resources={json.dumps(custom)}")
    if bootstrap.labels:
        start.append(f"--labels={labels_arg(bootstrap.labels)}")
    start.append("--disable-usage-stats")
    start.extend(extra_args)
    lines.append(" ".join(shlex.quote(part) for part in start))
    if watcher:
        lines.append(watcher_command(watcher_cloud, bootstrap.gcs_address, python=python))
    return "\n".join(lines) + "\n"


def literal_instance_id(instance_id: str) -> list[str]:
    return [f"RMC_INSTANCE_ID={shlex.quote(instance_id)}"]
