"""Render a ``RayBootstrap`` into the shell script a new worker runs at first boot.

The script is the same on every cloud (AWS user data, GCP ``startup-script`` metadata, Azure
custom data) and on the local cloud (whose instance process runs it, ``clouds/local``), in Ray's
updater order:

1. export the bootstrap's environment, the instance id autoscaler v2 matches nodes by, and
   ``RAY_HEAD_IP`` (the GCS host, as Ray's updaters substitute it);
2. the YAML's ``initialization_commands`` on the host;
3. ``file_mounts``: small local sources inlined as a gzipped tar (packed by ``ray up``,
   ``cluster_config/worker_setup.py``), ``s3://`` / ``gs://`` URIs fetched with the cloud's CLI
   under the instance's own identity;
4. with ``docker:``: pull the image and start the container (host network, ``--gpus all`` when the
   node has GPUs, the file mounts bind-mounted at the same paths, the YAML's run options);
5. the pinned Ray and this package (``pip_install``, when the driver booted a default image);
6. the node type's worker setup commands (in the container under ``docker:``);
7. ``ray start`` against the head's GCS (in the container under ``docker:``), then the
   interruption watcher.

Why here and not Ray's SSH updaters: workers on three clouds are often not reachable over SSH from
the head (private subnets, only the overlay's Ray ports open), cloud-init runs before anything could
SSH in, and the drivers already own this script. A failing step logs which key failed
(``initialization_commands[0]``, ``file_mounts "/x"``, ...) and powers the machine off (AWS
terminates it, ``InstanceInitiatedShutdownBehavior``; GCP stops it, which the driver lists as
gone), so a broken setup never leaves a launch hanging; every network step runs under ``timeout``.

Every value is shell-quoted; the script never carries a credential (clouds hand those to the
instance through their own instance identity, not through user data). The cluster's Ray auth token
(and TLS material) is fetched first, from the driver's secret store with that identity, into 0600
files under ``$HOME/.ray_multicloud`` (``ray_multicloud.auth``); every later step runs with
``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN_PATH`` exported.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence

from ray_multicloud.auth import exported_names, startup_lines
from ray_multicloud.auth.secrets import SecretStore
from ray_multicloud.clouds.base import RayBootstrap, WorkerSetup
from ray_multicloud.errors import CloudError
from ray_multicloud.types import Offer

WATCHER_LOCK = "/tmp/rmc-watcher.lock"
WATCHER_LOG = "/tmp/rmc-watcher.log"
# Ray's predefined resources and the ``ray start`` flag each must be given through.
_PREDEFINED = {"CPU": "--num-cpus", "GPU": "--num-gpus", "memory": "--memory",
               "object_store_memory": "--object-store-memory"}
STEP_TIMEOUT_S = 1800  # one setup command or fetch; longer is a hung step, not a slow one
POWER_OFF = "shutdown -h now || poweroff || true"
# What each cloud accepts as the whole script (bytes, before its own encoding).
USER_DATA_LIMITS = {"aws": 16 * 1024, "azure": 64 * 1024 - 1, "gcp": 256 * 1024}


def ray_env(bootstrap: RayBootstrap, offer: Offer) -> dict[str, str]:
    """The environment ``ray start`` runs under: the bootstrap's env plus Ray's market/region/zone
    variables (which become Ray's own ``ray.io/market-type`` / ``availability-region`` / ``-zone``
    labels). ``RAY_CLOUD_INSTANCE_ID`` is exported separately by the script."""
    env = dict(bootstrap.env)
    env.setdefault("RAY_NODE_MARKET_TYPE", offer.capacity.market)
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


def shell_path(path: str) -> str:
    """A remote path as a shell word: ``~/x`` is the script's ``$HOME`` (root's on a cloud VM, the
    instance's own directory on the local cloud)."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _gcs_host(gcs_address: str) -> str:
    host = gcs_address.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _step(command: str, what: str) -> str:
    """Run one user command under a timeout; a failure names the YAML key and ends the boot."""
    return (
        f"timeout {STEP_TIMEOUT_S} bash -c {shlex.quote(command)} "
        f"|| rmc_fail {shlex.quote(what)}"
    )


def _fetch(target: str, uri: str) -> str:
    """Fetch a bucket URI to ``target`` with the cloud's CLI (a prefix ending in / is synced)."""
    dest, src = shell_path(target), shlex.quote(uri)
    what = shlex.quote(f'file_mounts "{target}" ({uri})')
    if uri.startswith("s3://"):
        cli = "command -v aws >/dev/null || python3 -m pip install -q awscli"
        copy = f"aws s3 sync {src} {dest}" if uri.endswith("/") else f"aws s3 cp {src} {dest}"
    else:
        cli = "command -v gcloud >/dev/null || command -v gsutil >/dev/null"
        copy = (f"{{ gcloud storage cp -r {src} {dest} 2>/dev/null || gsutil -m cp -r {src} {dest}; }}")
    parent = f"mkdir -p {dest}" if uri.endswith("/") else f"mkdir -p \"$(dirname {dest})\""
    return f"{{ {cli}; }} && {parent} && timeout {STEP_TIMEOUT_S} {copy} || rmc_fail {what}"


def _docker_run(setup: WorkerSetup, *, gpus: bool, auth_dir: bool = False) -> list[str]:
    options = list(setup.docker_run_options)
    if gpus and not any(o.startswith(("--gpus", "--runtime")) for o in options):
        options = ["--gpus all", *options]
    mounts = [*(t for t, _ in setup.inline_files), *(t for t, _ in setup.remote_files)]
    volumes = [f"-v {shell_path(m)}:{shell_path(m)}" for m in sorted(set(mounts))]
    if auth_dir:  # the node's copies of the cluster's secrets, read-only inside the container
        volumes.append('-v "$RMC_AUTH_DIR":"$RMC_AUTH_DIR":ro')
    name, image = shlex.quote(setup.container_name), shlex.quote(setup.docker_image)
    run = " ".join(["docker run -d --name", name, "--network host --ipc host", *volumes, *options, image,
                    "sleep infinity"])
    pull_key = shlex.quote("docker.image " + setup.docker_image)
    return [
        f"timeout {STEP_TIMEOUT_S} docker pull {image} || rmc_fail {pull_key}",
        f"docker rm -f {name} >/dev/null 2>&1 || true",
        f"{run} || rmc_fail {shlex.quote('docker.run_options')}",
    ]


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
    pip_install: Sequence[str] = (),
    start_lines: Sequence[str] | None = None,
    docker: bool = True,
    on_failure: str = POWER_OFF,
    secret_store: SecretStore | None = None,
) -> str:
    """A bash script that sets this instance up (``bootstrap.setup``) and joins it to the cluster.

    ``instance_id_lines`` are shell lines that set ``RMC_INSTANCE_ID`` (a literal where the driver
    names the instance itself, an IMDS lookup where the cloud assigns the id). ``extra_args`` are
    appended to ``ray start`` (a host's own flags, e.g. ``--node-ip-address``); ``watcher`` False
    leaves out the interruption watcher (machines nobody takes back, such as a private pool's).
    Ray's predefined resources go through their own flags (``ray start`` refuses ``CPU``, ``GPU``,
    ``memory`` and ``object_store_memory`` inside ``--resources``). ``pip_install``:
    pip requirement specs installed before the setup commands (the driver booted a default image
    without Ray). ``start_lines`` replace ``ray start`` and the watcher (the local cloud starts its
    Ray node from Python); ``docker=False`` ignores ``docker:`` (the local cloud runs no
    containers). ``on_failure`` runs after a failed step is logged (default: power off; the script
    then exits with the failed step's status). ``secret_store``: the driver's store, from which
    the script fetches the cluster's secrets named by ``bootstrap.auth`` with the instance's own
    identity, first of all steps (``ray_multicloud.auth.startup_lines``; a ``ConfigError`` if auth
    is wanted and there is no store).
    """
    setup = bootstrap.setup or WorkerSetup()
    env = ray_env(bootstrap, offer)
    lines = [
        "#!/bin/bash",
        f"# ray_multicloud worker bootstrap: node type {shlex.quote(bootstrap.node_type)}",
        "set -euo pipefail",
        'export HOME="${HOME:-/root}"',
        "rmc_fail() {",
        "  rc=$?; [ \"$rc\" -ne 0 ] || rc=1",  # the failed step's own exit status
        '  echo "ray_multicloud: worker setup failed at $1 (exit $rc)" >&2',
        f"  {on_failure}",
        '  exit "$rc"',
        "}",
        *instance_id_lines,
        'export RAY_CLOUD_INSTANCE_ID="$RMC_INSTANCE_ID"',
    ]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    lines.append(f"export RAY_HEAD_IP={shlex.quote(_gcs_host(bootstrap.gcs_address))}")
    if bootstrap.auth is not None:
        lines += startup_lines(bootstrap.auth, secret_store, cloud=watcher_cloud)
    auth_env = exported_names(bootstrap.auth)
    auth_dir = bootstrap.auth is not None and (bootstrap.auth.token or bool(bootstrap.auth.tls_secrets))
    for i, command in enumerate(setup.initialization_commands):
        lines.append(_step(command, f"initialization_commands[{i}]"))
    for target, blob in setup.inline_files:
        what = shlex.quote(f'file_mounts "{target}"')
        lines.append(
            f"mkdir -p {shell_path(target)} && printf %s {shlex.quote(blob)} | base64 -d "
            f"| tar -xzf - -C {shell_path(target)} || rmc_fail {what}"
        )
    for target, uri in setup.remote_files:
        lines.append(_fetch(target, uri))
    in_container = docker and bool(setup.docker_image)
    if setup.docker_image and not docker:
        lines.append(f"echo {shlex.quote('docker: ' + setup.docker_image + ' skipped (no containers here)')}")
    exec_prefix = ""
    if in_container:
        gpus = float(bootstrap.resources.get("GPU", 0) or 0) > 0
        lines += _docker_run(setup, gpus=gpus, auth_dir=auth_dir)
        names = ["RAY_CLOUD_INSTANCE_ID", "RAY_HEAD_IP", *sorted(env), *auth_env]
        passed = " ".join(f"-e {k}" for k in names)
        exec_prefix = f"docker exec {passed} {shlex.quote(setup.container_name)} "
    if pip_install:
        specs = " ".join(shlex.quote(s) for s in pip_install)
        if not in_container:
            lines.append(
                f"{python} -m pip --version >/dev/null 2>&1 || {{ apt-get update -y && "
                f"apt-get install -y python3-pip; }} || rmc_fail 'pip (installing python3-pip)'"
            )
        # PIP_BREAK_SYSTEM_PACKAGES: an image newer than the defaults' Ubuntu 22.04 marks its Python
        # externally managed (PEP 668); the machine exists to run Ray, so install into it anyway.
        pip = f"{exec_prefix}{python} -m pip install -q {specs}"
        lines.append(
            f"PIP_BREAK_SYSTEM_PACKAGES=1 timeout {STEP_TIMEOUT_S} {pip} "
            f"|| rmc_fail {shlex.quote('pip install ' + ' '.join(pip_install))}"
        )
    for i, command in enumerate(setup.setup_commands):
        if in_container:
            lines.append(
                f"timeout {STEP_TIMEOUT_S} {exec_prefix}bash -c {shlex.quote(command)} "
                f"|| rmc_fail {shlex.quote(f'worker_setup_commands[{i}]')}"
            )
        else:
            lines.append(_step(command, f"worker_setup_commands[{i}]"))
    if start_lines is not None:
        lines += list(start_lines)
        return "\n".join(lines) + "\n"
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
    lines.append(exec_prefix + " ".join(shlex.quote(part) for part in start) + " || rmc_fail 'ray start'")
    if watcher:
        watch = watcher_command(watcher_cloud, bootstrap.gcs_address, python=python)
        if in_container:
            lines.append(
                f"docker exec -d {' '.join(f'-e {k}' for k in ['RAY_CLOUD_INSTANCE_ID', *auth_env])} "
                f"{shlex.quote(setup.container_name)} "
                f"bash -c {shlex.quote(watch)}"
            )
        else:
            lines.append(watch)
    return "\n".join(lines) + "\n"


def check_size(script: str, cloud: str, *, offer_id: str = "") -> str:
    """``script`` if it fits the cloud's user-data limit; ``CloudError`` naming the fix otherwise."""
    limit = USER_DATA_LIMITS.get(cloud)
    size = len(script.encode())
    if limit is not None and size > limit:
        raise CloudError(
            cloud,
            f"the worker startup script is {size} bytes, over {cloud}'s {limit}-byte user-data limit; "
            "move inlined file_mounts to an s3:// or gs:// URI or shorten the setup commands",
            offer_id=offer_id,
            code="UserDataTooLarge",
        )
    return script


def literal_instance_id(instance_id: str) -> list[str]:
    return [f"RMC_INSTANCE_ID={shlex.quote(instance_id)}"]
