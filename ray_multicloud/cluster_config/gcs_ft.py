"""``provider.gcs_fault_tolerance``: a head that can fall without taking the cluster with it.

Ray's GCS (on the head) keeps the cluster's tables in memory unless it is given an external Redis
(Ray's "GCS fault tolerance": ``RAY_REDIS_ADDRESS`` in the environment of ``ray start --head``, a
storage namespace ``RAY_external_storage_namespace`` so several clusters can share one Redis).
With it, a restarted GCS reloads nodes, actors, placement groups, jobs and the KV store (Serve's
application state, autoscaler v2's instance table) and the worker raylets reconnect to it, provided
they have not given up first: a worker raylet exits when the GCS stays unreachable longer than
``RAY_gcs_rpc_server_reconnect_timeout_s`` (Ray's default 60 s, less than a cloud VM takes to be
replaced), so workers get a longer one here.

    provider:
      gcs_fault_tolerance:
        redis_address: 10.0.0.5:6379        # host:port (redis://... or rediss://... for TLS)
        namespace: my-cluster               # default: <cluster name>-<the head's instance id>
        reconnect_timeout_seconds: 600      # how long workers wait for a fallen head; default 600
        redis_password_env: RMC_REDIS_PASSWORD   # optional: the head reads the password from this
                                                 # environment variable at start (never the YAML)

Pure: parsing (``parse_gcs_ft``) and what it adds to the head's start commands (``head_commands``)
and to a worker's environment (``worker_env``). See docs/head-fault-tolerance.md.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ray_multicloud.errors import ConfigError
from ray_multicloud.schema import check_section

KEY = "provider.gcs_fault_tolerance"
DEFAULT_RECONNECT_TIMEOUT_S = 600.0
# Ray's own name for the worker-side timeout (a RayConfig entry read from the environment).
RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
REDIS_ADDRESS_ENV = "RAY_REDIS_ADDRESS"
NAMESPACE_ENV = "RAY_external_storage_namespace"

_KEYS = frozenset({"redis_address", "namespace", "reconnect_timeout_seconds", "redis_password_env"})
# Ray refuses a namespace holding its cluster separator "@" (gcs_server: kClusterSeparator); keep
# it to characters every Redis key and shell word takes as they are.
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `ray start ... --head` at the start of a shell command (after ;, &&, || or a subshell's "("),
# maybe behind environment assignments such as `RAY_foo=1 ray start --head`.
_HEAD_START = re.compile(r"(^|[;&|(]\s*)((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(ray\s+start\b[^;&|]*--head\b)")


@dataclass(frozen=True, slots=True)
class GcsFaultTolerance:
    """A checked ``provider.gcs_fault_tolerance`` section."""

    redis_address: str
    namespace: str
    reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S
    redis_password_env: str | None = None
    # True when ``namespace`` was not given: the head's instance id is appended at start, so the
    # tables live as long as the head instance (its Ray processes may die and come back) and a new
    # cluster of the same name (``ray down`` then ``ray up``) never loads a previous one's tables.
    per_head: bool = False


def parse_gcs_ft(raw: object, cluster_name: str) -> GcsFaultTolerance | None:
    """``provider.gcs_fault_tolerance`` checked; ``None`` when absent or null (the GCS keeps its
    tables in memory: a fallen head ends the cluster). ``ConfigError`` naming the key otherwise."""
    if raw is None:
        return None
    raw = check_section(KEY, raw, sorted(_KEYS), example="{redis_address: 10.0.0.5:6379}")
    address = check_redis_address(raw.get("redis_address"))
    per_head = "namespace" not in raw
    namespace = raw.get("namespace", cluster_name)
    if per_head and not _NAMESPACE.match(str(namespace)):  # a cluster name with odd characters
        namespace = re.sub(r"[^A-Za-z0-9_.-]", "-", str(namespace))[:96] or "ray"
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise ConfigError(f"{KEY}.namespace",
                          f"{namespace!r}: 1-128 of letters, digits, '_', '.', '-' (Ray refuses '@'); "
                          "default: the cluster name")
    timeout = raw.get("reconnect_timeout_seconds", DEFAULT_RECONNECT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) \
            or timeout < 1:
        raise ConfigError(f"{KEY}.reconnect_timeout_seconds",
                          f"must be a finite number of seconds >= 1, got {timeout!r}")
    password_env = raw.get("redis_password_env")
    if password_env is not None and (not isinstance(password_env, str) or not _ENV_NAME.match(password_env)):
        raise ConfigError(f"{KEY}.redis_password_env",
                          f"must name an environment variable (e.g. RMC_REDIS_PASSWORD), got "
                          f"{password_env!r}; the password itself never goes in the YAML")
    return GcsFaultTolerance(address, namespace, float(timeout), password_env, per_head)


def check_redis_address(value: object) -> str:
    """``host:port`` or ``redis://host:port`` / ``rediss://host:port`` (TLS), the forms Ray's
    ``RAY_REDIS_ADDRESS`` takes; one address (Ray's comma-separated shard list is not supported)."""
    key = f"{KEY}.redis_address"
    fix = "give the Redis endpoint as host:port, e.g. 10.0.0.5:6379 (rediss://host:port for TLS)"
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"{value!r}: {fix}")
    text = value.strip()
    rest = text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme not in ("redis", "rediss"):
            raise ConfigError(key, f"{value!r}: the scheme must be redis:// or rediss://; {fix}")
    if "," in rest or "/" in rest or "@" in rest or any(c.isspace() for c in rest):
        raise ConfigError(key, f"{value!r}: one host:port only (no shard list, path or credentials); {fix}")
    host, sep, port_text = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(key, f"{value!r}: {fix}")
    if host in ("0.0.0.0", "::"):
        raise ConfigError(key, f"{value!r}: {host} is a listen-on-all address, not one the head can dial")
    return text


def head_env(ft: GcsFaultTolerance) -> dict[str, str]:
    """The environment ``ray start --head`` needs for its GCS to keep its tables in Redis, as shell
    words (already quoted). A per-head namespace ends in ``$RAY_CLOUD_INSTANCE_ID``, which ``ray up``
    exports to the head's start commands under autoscaler v2 (Ray's ``commands.py``); under v1 it
    is unset and the namespace ends in ``-head`` (then it outlives ``ray down``: clear it, or name
    the namespace yourself)."""
    namespace = (f'"{ft.namespace}-${{RAY_CLOUD_INSTANCE_ID:-head}}"' if ft.per_head
                 else shlex.quote(ft.namespace))
    return {REDIS_ADDRESS_ENV: shlex.quote(ft.redis_address), NAMESPACE_ENV: namespace}


def worker_env(ft: GcsFaultTolerance) -> dict[str, str]:
    """The environment a worker's ``ray start`` needs to outlive a fallen head."""
    return {RECONNECT_ENV: f"{ft.reconnect_timeout_s:g}"}


def head_commands(commands: Sequence[str], ft: GcsFaultTolerance) -> list[str]:
    """``head_start_ray_commands`` with the GCS fault-tolerance environment set on every
    ``ray start --head`` (and ``--redis-password`` from ``redis_password_env`` when given).
    Idempotent: a command that already sets ``RAY_REDIS_ADDRESS`` is left as it is. ``ConfigError``
    when no command starts the head (there would be nothing to make fault tolerant)."""
    prefix = " ".join(f"{k}={v}" for k, v in head_env(ft).items())
    password = (f' --redis-password="${{{ft.redis_password_env}:?set {ft.redis_password_env} on the head}}"'
                if ft.redis_password_env else "")
    out: list[str] = []
    found = False
    for command in commands:
        text = str(command)
        if _HEAD_START.search(text):
            found = True
            if REDIS_ADDRESS_ENV not in text:
                text = _HEAD_START.sub(
                    lambda m: f"{m.group(1)}{m.group(2)}{prefix} {m.group(3)}{password}", text)
        out.append(text)
    if not found:
        raise ConfigError(f"{KEY} / head_start_ray_commands",
                          "no command runs `ray start --head`; the GCS fault-tolerance settings go on "
                          "that command, so add it (see cluster_configs/local-multicloud.yaml)")
    return out


def check_head_commands(cluster_config: Mapping[str, object], ft: GcsFaultTolerance | None) -> None:
    """With fault tolerance on, ``head_start_ray_commands`` must start the head (``head_commands``
    puts the settings there); ``ConfigError`` otherwise. Nothing to check when it is off."""
    if ft is None:
        return
    commands = cluster_config.get("head_start_ray_commands") or []
    if not isinstance(commands, Sequence) or isinstance(commands, str):
        raise ConfigError("head_start_ray_commands", f"must be a list of shell commands, got {commands!r}")
    head_commands([str(c) for c in commands], ft)
