"""A private pool of real machines reached over SSH (``driver: ssh``): a team's own GPU servers.

Each declared host is one node the provider can hold. "Launch" claims a free host and starts Ray on
it over SSH with the same startup script and labels as the cloud drivers (``clouds/_startup.py``,
without the interruption watcher: nobody takes these machines back), in a process group of its own
(``setsid``). "Terminate" signals exactly that node: its process group (only while a process in
it carries the node's ``RAY_CLOUD_INSTANCE_ID``, so a reused group id is never signalled) and the
login user's processes that carry that variable (Ray's worker processes leave the group; the
environment stays); never ``ray stop``, never anyone else's processes. Hosts are Linux machines
with ``bash``, ``flock``, ``setsid`` and ``pgrep`` (Debian/Ubuntu have them all) and Ray installed.

State lives on the hosts themselves, so the ``ray up`` client, the autoscaler on the head and a
restarted provider all see the same pool. In the host's ``state_dir`` (default ``~/.ray_multicloud``)::

    lock         flock'd around every change below (two provider processes never both claim a host)
    instance_id  the claim: present = the host is held, by this node id, whatever the cluster
    node.json    the marker: cluster, tags, request id, offer, launch time
    pgid         the process group Ray runs in;  start.rc  ray start's exit code once it returned
    start.sh     the rendered startup script;    node.log  its output

One host holds at most one node of any cluster (the claim is per host, not per cluster), so a host
is never double-booked. Instance ids are ``<cloud>-<address>-<port>-<token>``: ``get`` knows which
host to ask.

Life cycle (``status`` of a host, decided by ``host_state`` from what the host reports):
``claim`` (pending) -> ``ray start`` returned 0 (running) -> ``terminate`` (group signalled, files
removed: free). A group that died on its own, a ``ray start`` that failed, or a claim that never
got a process group within ``STALE_CLAIM_S`` reads as terminated; the next launch reclaims the host
(ending whatever is left of that group first). A ``ray start`` that failed is ended as soon as a
listing sees it (what it left running is stopped, its output kept as ``node.log.prev``), and its
host is taken out for ``unavailable_seconds``.

Failures: a host that does not answer (connection refused or timed out, key refused, host key
unknown or changed) is marked unavailable with the reason (logged once) and not tried again for
``unavailable_seconds``; launches go to the other hosts, and ``list`` keeps reporting the last known
node of that host rather than declaring it gone. A host whose ``nvidia-smi`` disagrees with its
declared ``accelerator``/``accelerator_count`` is refused the same way, with both inventories in
the message. Hosts without ``nvidia-smi`` are trusted (their GPUs are then logical resources).

Why the system ``ssh`` client (OpenSSH) rather than paramiko or asyncssh: it is what every such
machine already trusts and what Ray's own SSH command runner uses, so the team's ``~/.ssh/config``
(``ProxyJump``, bastions), agents and key types work unchanged, it adds no Python dependency, and
OpenSSH's host-key checking is the reference implementation. Every call runs with
``BatchMode=yes`` (never a prompt), ``StrictHostKeyChecking=yes`` against ``known_hosts`` (the
cloud entry's, default ``~/.ssh/known_hosts``) or, for a host with a declared
``host_key_fingerprint``, against a file holding only the host keys whose SHA256 fingerprint
matches the declaration; and ``IdentitiesOnly=yes`` with the host's ``ssh_private_key``. Only the
key's path ever appears in a message or a log line, never its contents.

Config (``provider.clouds.<name>``)::

    dc1:
      driver: ssh
      region: dc1
      known_hosts: ~/.ssh/known_hosts        # optional
      ray: /opt/ray/bin/ray                  # optional: the ray command on the hosts (default: ray)
      env: {NCCL_SOCKET_IFNAME: eth0}        # optional: exported before ray start
      unavailable_seconds: 60                # optional: cool-down of an unreachable host
      head_address: 203.0.113.5:6379         # optional: the head's GCS as these hosts reach it
                                             # (default: provider.gcs_address)
      hosts:
        - {address: 10.0.0.11, port: 22, user: ray, ssh_private_key: ~/.ssh/dc1,
           accelerator: A100, accelerator_count: 8, vcpus: 96, memory_gib: 1024,
           host_key_fingerprint: "SHA256:...",            # optional (else known_hosts)
           instance_type: dgx-a100,                       # optional: hosts alike share an offer
           ondemand_equivalent_per_hour: 32.77,           # optional: for the savings report
           node_ip: 10.0.0.11,                            # optional: Ray's --node-ip-address
           state_dir: ~/.ray_multicloud,                  # optional: where the marker lives
           ray_start_args: ["--object-store-memory=200000000000"]}   # optional
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ray_multicloud.auth.secrets import FileSecretStore
from ray_multicloud.clouds._startup import literal_instance_id, render_startup_script, shell_path
from ray_multicloud.clouds.base import TAG_CLUSTER, CloudFeatures, Instance, LaunchRequest
from ray_multicloud.clouds.schemas import SSH as SSH_SCHEMA
from ray_multicloud.errors import CapacityError, CloudError, ConfigError, InstanceNotFound
from ray_multicloud.schema import check_section
from ray_multicloud.types import CapacityType, InstanceId, NodeState, Offer

logger = logging.getLogger(__name__)

STALE_CLAIM_S = 120.0  # a claim with no process group after this long was abandoned by its launcher
STATUS_TTL_S = 2.0  # how long a host's answer is reused (the autoscaler lists every few seconds)
TERMINATE_GRACE_S = 10  # SIGTERM, then SIGKILL to whatever of the group is left
DEFAULT_STATE_DIR = "~/.ray_multicloud"
CONTROL_PERSIST_S = 60  # an idle multiplexed connection to a host closes after this long

_HOST_KEYS = (
    "address", "port", "user", "ssh_private_key", "accelerator", "accelerator_count", "vcpus",
    "memory_gib", "host_key_fingerprint", "instance_type", "ondemand_equivalent_per_hour", "node_ip",
    "state_dir", "ray_start_args",
)
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_SLUG_BAD = re.compile(r"[^A-Za-z0-9.]")


# -- configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SshHost:
    """One declared machine: how to reach it and what it has."""

    address: str
    port: int
    user: str
    ssh_private_key: str
    accelerator: str
    accelerator_count: int
    vcpus: float
    memory_gib: float
    instance_type: str
    host_key_fingerprint: str | None = None
    ondemand_equivalent_per_hour: float = 0.0
    node_ip: str | None = None
    state_dir: str = DEFAULT_STATE_DIR
    ray_start_args: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        """The host's part of an instance id: ``<address>-<port>`` with anything odd made ``_``."""
        return f"{_SLUG_BAD.sub('_', self.address)}-{self.port}"

    @property
    def where(self) -> str:
        """How messages name the host (``user@address:port``)."""
        return f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class SshSettings:
    """A whole ``driver: ssh`` entry, checked."""

    region: str
    hosts: tuple[SshHost, ...]
    known_hosts: str = "~/.ssh/known_hosts"
    ssh_config: str | None = None
    ray: str = "ray"
    env: Mapping[str, str] = field(default_factory=dict)
    unavailable_s: float = 60.0
    connect_timeout_s: float = 10.0
    head_address: str | None = None


def _number(key: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"must be a number, got {value!r}")
    if value < minimum:
        raise ConfigError(key, f"must be at least {minimum:g}, got {value!r}")
    return float(value)


def _text(key: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"give {what} as a non-empty string, got {value!r}")
    return value.strip()


def parse_host(key: str, item: Any) -> SshHost:
    """One ``hosts[i]`` entry; ``ConfigError`` names the key under ``key`` and what to write."""
    item = check_section(key, item, _HOST_KEYS,
                         example="{address: 10.0.0.11, user: ray, ssh_private_key: ~/.ssh/dc1, "
                                 "accelerator: A100, accelerator_count: 8, vcpus: 96, memory_gib: 1024}")
    for required in ("address", "user", "ssh_private_key"):
        if required not in item:
            raise ConfigError(f"{key}.{required}", "is required (the host's address, the login user "
                              "and the path of the private key that logs in)")
    address = _text(f"{key}.address", item["address"], "the host's IP address or DNS name")
    port = item.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{key}.port", f"must be a TCP port 1-65535 (sshd's, usually 22), got {port!r}")
    count = _number(f"{key}.accelerator_count", item.get("accelerator_count", 0))
    if count != int(count):
        raise ConfigError(f"{key}.accelerator_count", f"a host has whole GPUs, got {count!r}")
    accelerator = str(item.get("accelerator", "") or "")
    if count > 0 and not accelerator:
        raise ConfigError(f"{key}.accelerator", f"name the GPU model of the host's {int(count)} GPUs "
                          "(as nvidia-smi names it, e.g. A100, H100, L4)")
    fingerprint = item.get("host_key_fingerprint")
    if fingerprint is not None and (not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint)):
        raise ConfigError(f"{key}.host_key_fingerprint", "must look like SHA256:<43 base64 characters>, "
                          "as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the host")
    args = item.get("ray_start_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{key}.ray_start_args", "must be a list of strings (extra `ray start` flags)")
    node_ip = item.get("node_ip")
    if node_ip is None:
        with contextlib.suppress(ValueError):
            node_ip = str(ipaddress.ip_address(address))
    vcpus = _number(f"{key}.vcpus", item.get("vcpus", 1), minimum=1)
    memory = _number(f"{key}.memory_gib", item.get("memory_gib", 1))
    instance_type = str(item.get("instance_type") or
                        (f"{accelerator.lower()}x{int(count)}-{vcpus:g}c" if count else f"cpu-{vcpus:g}c"))
    return SshHost(
        address=address, port=port,
        user=_text(f"{key}.user", item["user"], "the login user"),
        ssh_private_key=_text(f"{key}.ssh_private_key", item["ssh_private_key"], "a private key path"),
        accelerator=accelerator, accelerator_count=int(count), vcpus=vcpus, memory_gib=memory,
        instance_type=instance_type, host_key_fingerprint=fingerprint,
        ondemand_equivalent_per_hour=_number(f"{key}.ondemand_equivalent_per_hour",
                                             item.get("ondemand_equivalent_per_hour", 0.0)),
        node_ip=None if node_ip is None else str(node_ip),
        state_dir=_text(f"{key}.state_dir", item.get("state_dir", DEFAULT_STATE_DIR), "a directory"),
        ray_start_args=tuple(args),
    )


def parse_settings(name: str, spec: Mapping[str, Any]) -> SshSettings:
    """A ``driver: ssh`` cloud entry, checked without touching the disk or the network."""
    key = f"provider.clouds.{name}"
    check_section(key, spec, SSH_SCHEMA)  # clouds/schemas.py
    raw = spec.get("hosts")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}.hosts", "list the pool's machines, each with address, user, "
                          "ssh_private_key, accelerator, accelerator_count, vcpus and memory_gib")
    hosts = tuple(parse_host(f"{key}.hosts[{i}]", item) for i, item in enumerate(raw))
    seen: dict[tuple[str, int], int] = {}
    kinds: dict[str, SshHost] = {}
    for i, host in enumerate(hosts):
        where = (host.address, host.port)
        if where in seen:
            raise ConfigError(f"{key}.hosts[{i}]",
                              f"{host.address}:{host.port} is already hosts[{seen[where]}]; "
                              "a machine is listed once (two sshd ports on one machine are two hosts only "
                              "with different state_dir)")
        seen[where] = i
        first = kinds.setdefault(host.instance_type, host)
        same = (first.accelerator, first.accelerator_count, first.vcpus, first.memory_gib,
                first.ondemand_equivalent_per_hour)
        if same != (host.accelerator, host.accelerator_count, host.vcpus, host.memory_gib,
                    host.ondemand_equivalent_per_hour):
            raise ConfigError(f"{key}.hosts[{i}].instance_type", f"{host.instance_type!r} is also a host "
                              "with other hardware or price; give hosts that differ different instance_type")
    env = spec.get("env", {})
    if not isinstance(env, Mapping):
        raise ConfigError(f"{key}.env", "must be a mapping of environment variables for ray start")
    return SshSettings(
        region=str(spec.get("region", name)),
        hosts=hosts,
        known_hosts=_text(f"{key}.known_hosts", spec.get("known_hosts", "~/.ssh/known_hosts"), "a file path"),
        ssh_config=None if spec.get("ssh_config") is None else str(spec["ssh_config"]),
        ray=_text(f"{key}.ray", spec.get("ray", "ray"), "the ray command on the hosts"),
        env={str(k): str(v) for k, v in env.items()},
        unavailable_s=_number(f"{key}.unavailable_seconds", spec.get("unavailable_seconds", 60.0)),
        connect_timeout_s=_number(f"{key}.connect_timeout_seconds", spec.get("connect_timeout_seconds", 10.0),
                                  minimum=1),
        head_address=_head_address(f"{key}.head_address", spec.get("head_address")),
    )


def _head_address(key: str, value: Any) -> str | None:
    if value is None:
        return None
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(key, f"give the head's GCS address as the hosts reach it, HOST:PORT, got {value!r}")
    return str(value)


def host_offers(cloud: str, region: str, hosts: Sequence[SshHost]) -> builtins.list[Offer]:
    """The pool's offers: one per ``instance_type``, on-demand (never taken back), 0 $/h."""
    out: dict[str, Offer] = {}
    for h in hosts:
        out.setdefault(h.instance_type, Offer(
            cloud=cloud, region=region, zone="", instance_type=h.instance_type, accelerator=h.accelerator,
            accelerator_count=h.accelerator_count, vcpus=h.vcpus, memory_gib=h.memory_gib,
            capacity=CapacityType.ON_DEMAND, price_per_hour=0.0,
            ondemand_price_per_hour=h.ondemand_equivalent_per_hour, price_scope="private",
            source=f"ssh pool {cloud}",
        ))
    return list(out.values())


# -- pure decisions over what a host reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What ``status`` read on a host. ``instance_id`` None: the host is free."""

    instance_id: str | None = None
    marker: Mapping[str, Any] = field(default_factory=dict)
    pgid: int | None = None
    start_rc: int | None = None
    alive: bool = False
    now: float = 0.0  # the host's clock, which the marker's times were written by


def host_state(facts: HostFacts) -> NodeState | None:
    """The node a host holds, as a state: None when free; TERMINATED when its claim is stale (Ray died,
    ``ray start`` failed, or a launcher never started it), so the host may be reclaimed."""
    if facts.instance_id is None:
        return None
    if facts.start_rc is not None and facts.start_rc != 0:
        return NodeState.TERMINATED
    if facts.pgid is None:
        claimed = float(facts.marker.get("launched_at", 0.0))
        return NodeState.PENDING if facts.now - claimed < STALE_CLAIM_S else NodeState.TERMINATED
    if not facts.alive:
        return NodeState.TERMINATED
    return NodeState.RUNNING if facts.start_rc == 0 else NodeState.PENDING


def check_inventory(host: SshHost, reported: Sequence[str] | None) -> str | None:
    """A message when ``nvidia-smi``'s GPU names (``reported``; None: no nvidia-smi on the host) do not
    match the host's declaration, else None. Names match when the declared model is part of the
    reported one, ignoring case and punctuation ("A100" matches "NVIDIA A100-SXM4-80GB")."""
    if reported is None:
        return None
    declared = f"{host.accelerator_count} x {host.accelerator}" if host.accelerator_count else "no GPUs"
    found = ", ".join(reported) if reported else "none"
    if len(reported) != host.accelerator_count:
        return (f"host {host.where} declares {declared} but nvidia-smi lists {len(reported)} GPU(s) "
                f"({found}); "
                "fix accelerator/accelerator_count of this host, or the host")

    def norm(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())

    odd = [name for name in reported if norm(host.accelerator) not in norm(name)]
    if odd:
        return (f"host {host.where} declares {declared} but nvidia-smi lists {found}; "
                "fix this host's accelerator (the model as nvidia-smi names it)")
    return None


def explain_ssh_failure(host: SshHost, stderr: str, known_hosts: str) -> str:
    """What a failed ``ssh`` (exit 255) means for ``host`` and what to do about it, in one line."""
    text = stderr.strip()
    low = text.lower()
    if "connection refused" in low:
        why = f"nothing listens on {host.address}:{host.port} (sshd down, wrong port, or a firewall)"
    elif "timed out" in low or "no route" in low or "network is unreachable" in low:
        why = f"{host.address}:{host.port} does not answer (host down or unreachable)"
    elif "could not resolve" in low or "name or service not known" in low:
        why = f"cannot resolve {host.address!r}; check the address"
    elif "host key verification failed" in low or "remote host identification has changed" in low:
        if host.host_key_fingerprint:
            why = (f"the host key of {host.address}:{host.port} is not the declared "
                   f"{host.host_key_fingerprint}; "
                   "check the host out of band, then fix host_key_fingerprint")
        else:
            why = (f"the host key of {host.address}:{host.port} is not in {known_hosts}; check it out of "
                   "band, then "
                   f"add it (ssh-keyscan -p {host.port} {host.address} >> {known_hosts}) or declare "
                   "host_key_fingerprint")
    elif "permission denied" in low:
        why = (f"{host.user}@{host.address} refused the key {host.ssh_private_key}; add its .pub to "
               f"~{host.user}/.ssh/authorized_keys on the host, or fix user/ssh_private_key")
    elif "no such file" in low and host.ssh_private_key in text:
        why = f"the private key {host.ssh_private_key} does not exist here; fix ssh_private_key"
    else:
        why = text.splitlines()[-1] if text else "ssh failed without a message"
    return f"host {host.where}: {why}"


def key_fingerprint(blob_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob given as its base64 text."""
    digest = hashlib.sha256(base64.b64decode(blob_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


# -- the remote side ---------------------------------------------------------------------------------

# One bash program, sent on stdin for each call (nothing is installed on the hosts). Every change
# happens under flock on the host's lock file; the Ray process group closes the lock's descriptor so
# it never holds the lock.
_REMOTE = r'''
set -u
D=$1; op=$2; shift 2
case "$D" in "~") D=$HOME ;; "~/"*) D="$HOME/${D#"~/"}" ;; esac
mkdir -p "$D" && chmod 700 "$D"
exec 9>>"$D/lock"
flock -w 30 9 || { echo "ERR lock $D/lock busy"; exit 5; }
ME=$(id -u)
node_pids() {  # node_pids ID: this user's processes that carry RAY_CLOUD_INSTANCE_ID=ID (Ray's workers
               # leave the node's process group, the environment stays)
  [ -n "$1" ] || return 0
  grep -lzxF "RAY_CLOUD_INSTANCE_ID=$1" /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
    p=${f#/proc/}; p=${p%/environ}
    [ "$(stat -c %u "/proc/$p" 2>/dev/null)" = "$ME" ] && echo "$p"
  done
  return 0
}
owned() {  # owned PGID ID: some process of group PGID carries RAY_CLOUD_INSTANCE_ID=ID
  [ -n "$1" ] || return 1
  for p in $(pgrep -g "$1" 2>/dev/null); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qxF "RAY_CLOUD_INSTANCE_ID=$2" && return 0
  done
  return 1
}
signal_node() {  # signal_node SIG ID: the node's process group (if still its own) and its other processes
  g=$(cat "$D/pgid" 2>/dev/null || true)
  owned "$g" "$2" && kill "-$1" -- "-$g" 2>/dev/null
  for p in $(node_pids "$2"); do kill "-$1" "$p" 2>/dev/null; done
  return 0
}
end_group() {  # end_group ID: TERM, then KILL after GRACE seconds, exactly this node's processes
  signal_node TERM "$1"
  for _ in $(seq 1 $((GRACE * 10))); do [ -z "$(node_pids "$1")" ] && break; sleep 0.1; done
  [ -n "$(node_pids "$1")" ] && signal_node KILL "$1"
  [ -f "$D/node.log" ] && mv -f "$D/node.log" "$D/node.log.prev"
  rm -f "$D/instance_id" "$D/node.json" "$D/pgid" "$D/start.rc" "$D/start.sh"
}
cur=$(cat "$D/instance_id" 2>/dev/null || true)
case "$op" in
status)
  echo "now $(date +%s)"
  [ -n "$cur" ] || { echo "free"; exit 0; }
  echo "id $cur"
  g=$(cat "$D/pgid" 2>/dev/null || true); [ -n "$g" ] && echo "pgid $g"
  [ -f "$D/start.rc" ] && echo "rc $(cat "$D/start.rc")"
  [ -n "$(node_pids "$cur")" ] && echo "alive"
  echo "marker $(base64 -w0 < "$D/node.json" 2>/dev/null || true)"
  ;;
launch)  # launch ID EXPECTED MARKER64 SCRIPT64: take the host if its claim is EXPECTED ("-": free),
        # then run the startup script in a new session; once (a retry finds its own claim and group)
  if [ "$cur" != "$1" ]; then
    [ "${cur:--}" = "$2" ] || { echo "busy $cur"; exit 3; }
    [ -n "$cur" ] && end_group "$cur"
    printf '%s' "$3" | base64 -d > "$D/node.json.tmp" && mv -f "$D/node.json.tmp" "$D/node.json"
    printf '%s' "$1" > "$D/instance_id"
  fi
  [ -f "$D/pgid" ] && { echo "pgid $(cat "$D/pgid")"; exit 0; }
  printf '%s' "$4" | base64 -d > "$D/start.sh"
  RAY_CLOUD_INSTANCE_ID="$1" setsid bash -c \
    'echo $$ > "$0/pgid.tmp" && mv -f "$0/pgid.tmp" "$0/pgid"; bash "$0/start.sh"; echo $? > "$0/start.rc"' \
    "$D" </dev/null >>"$D/node.log" 2>&1 9>&- &
  for _ in $(seq 1 100); do [ -f "$D/pgid" ] && break; sleep 0.05; done
  [ -f "$D/pgid" ] || { echo "ERR the startup script did not start (see $D/node.log)"; exit 6; }
  echo "pgid $(cat "$D/pgid")"
  ;;
tags)  # tags ID MARKER64
  [ "$cur" = "$1" ] || { echo "lost $cur"; exit 4; }
  printf '%s' "$2" | base64 -d > "$D/node.json.tmp" && mv -f "$D/node.json.tmp" "$D/node.json"
  echo "ok"
  ;;
stop)  # stop ID
  [ "$cur" = "$1" ] || { echo "gone"; exit 0; }
  end_group "$1"
  rm -rf "$D/secrets"
  echo "stopped"
  ;;
secret)  # secret NAME: the cluster's secret, read from RMC_SECRET (set in the program text this
         # reads from stdin, never in argv), into $D/secrets/NAME with mode 0600
  mkdir -p "$D/secrets" && chmod 700 "$D/secrets"
  ( umask 077 && printf '%s' "${RMC_SECRET:-}" > "$D/secrets/$1.tmp" ) \
    && mv -f "$D/secrets/$1.tmp" "$D/secrets/$1"
  echo "ok"
  ;;
gpus)
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name --format=csv,noheader || { echo "ERR nvidia-smi failed"; exit 7; }
  else
    echo "no-nvidia-smi"
  fi
  ;;
check)  # what plan --check-hosts reports: tools, ray, GPUs
  for t in bash flock setsid pgrep base64; do command -v "$t" >/dev/null 2>&1 || echo "missing $t"; done
  command -v "$1" >/dev/null 2>&1 || echo "missing $1"
  echo "held ${cur:--}"
  ;;
*) echo "ERR unknown op $op"; exit 2 ;;
esac
'''


class _HostSecrets(FileSecretStore):
    """The copies of the cluster's secrets on a host (``<host state_dir>/secrets/``), as a worker's
    startup script there reads them; ``~`` is the host user's home."""

    def __init__(self, host_state_dir: str) -> None:
        super().__init__(Path(host_state_dir) / "secrets")
        self.host_state_dir = host_state_dir

    def fetch_lines(self, name: str, dest: str) -> list[str]:
        src = shell_path(f"{self.host_state_dir.rstrip('/')}/secrets/{name}")
        what = shlex.quote(f"secret {name} ({self.host_state_dir}/secrets/{name})")
        return [f"( umask 077 && cp -- {src} {dest} && chmod 600 {dest} ) || rmc_fail {what}"]


class HostUnreachable(CloudError):
    """ssh itself failed (exit 255): the host is down, refuses the key, or its host key is wrong."""


@dataclass(frozen=True, slots=True)
class HostCheck:
    """``SshCloud.check_host``'s answer for one host: ``ok``, and the problems or notes found."""

    host: SshHost
    ok: bool
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class SshCloud:
    """Real machines over SSH as a fixed-capacity pool. See the module docstring."""

    features = CloudFeatures(spot=False, interruption_notices=False, simulated_preemption=False,
                             fixed_capacity=True, own_offers=True, local_commands=False)

    def __init__(self, name: str, settings: SshSettings, *, state_dir: str | Path) -> None:
        self.name = name
        self.settings = settings
        self.region = settings.region
        self.hosts = settings.hosts
        self.local_dir = Path(state_dir).expanduser() / f"ssh-{name}"
        self._lock = threading.RLock()
        self._down: dict[str, tuple[float, str]] = {}  # host slug -> (retry after, reason)
        self._cache: dict[str, tuple[float, HostFacts]] = {}  # host slug -> (read at, facts)
        self._known: dict[str, Instance] = {}  # host slug -> last node seen there (kept while unreachable)
        self._inventory: dict[str, builtins.list[str] | None] = {}  # host slug -> nvidia-smi's GPU names
        # One multiplexed connection per host (ssh's ControlMaster), so the autoscaler's frequent
        # listing costs a round trip, not a key exchange; closed by ``close()`` or after idling.
        # Its socket directory is made on first use (building the driver touches nothing).
        self._control_dir: str | None = None

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> SshCloud:
        return cls(name, parse_settings(name, spec), state_dir=state_dir)

    def offers(self) -> builtins.list[Offer]:
        """The pool's offers (see ``host_offers``)."""
        return host_offers(self.name, self.region, self.hosts)

    def slots(self, cluster: str) -> dict[str, int]:
        """Hosts per offer that ``cluster`` may use (``SellsFixedOffers.slots``): all of that kind but
        those a node of another cluster holds (read from the hosts' markers). An offer with that
        many live nodes of ``cluster`` is full, so no launch or move targets it until a host frees."""
        per_type: dict[str, int] = {}
        for host, node in zip(self.hosts, self._nodes_by_host(), strict=True):
            if node is not None and node.tags.get(TAG_CLUSTER, cluster) != cluster:
                continue
            per_type[host.instance_type] = per_type.get(host.instance_type, 0) + 1
        return {o.offer_id: per_type.get(o.instance_type, 0) for o in self.offers()}

    # -- the Cloud protocol ---------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> Instance:
        mine = self._held_by_request(request.request_id)
        if mine is not None:
            return mine
        kind = [h for h in self.hosts if h.instance_type == request.offer.instance_type]
        if not kind or request.offer.cloud != self.name:
            raise CapacityError(self.name, f"the pool has no {request.offer.instance_type} hosts",
                                offer_id=request.offer.offer_id, code="NoSuchHost")
        if request.bootstrap is None:
            raise CloudError(self.name, "an SSH host cannot be the head node; pin the head to another cloud",
                             offer_id=request.offer.offer_id, code="NoHead")
        skipped: builtins.list[str] = []
        for host in kind:
            reason = self._unavailable(host)
            if reason:
                skipped.append(reason)
                continue
            try:
                inst = self._launch_on(host, request)
            except HostUnreachable as exc:
                skipped.append(self._mark_down(host, str(exc)))
                continue
            except CapacityError as exc:
                skipped.append(str(exc))
                continue
            if inst is not None:
                return inst
            skipped.append(f"host {host.where} is in use")
        raise CapacityError(
            self.name, f"no free {request.offer.instance_type} host: " + "; ".join(skipped),
            offer_id=request.offer.offer_id, code="PoolFull",
        )

    def terminate(self, instance_id: InstanceId) -> None:
        host = self._host_of(instance_id)
        if host is None:
            return
        try:
            self._remote(host, "stop", instance_id, timeout=TERMINATE_GRACE_S + 30)
        except HostUnreachable as exc:
            self._mark_down(host, str(exc))
            raise CloudError(self.name, f"cannot stop {instance_id}: {exc}; it is stopped when the host "
                             "answers again (retry the terminate)", code="HostUnreachable") from exc
        with self._lock:
            self._cache.pop(host.slug, None)
            if (known := self._known.get(host.slug)) is not None and known.instance_id == instance_id:
                del self._known[host.slug]

    def get(self, instance_id: InstanceId) -> Instance | None:
        host = self._host_of(instance_id)
        if host is None:
            return None
        inst = self._node_on(host)
        return inst if inst is not None and inst.instance_id == instance_id else None

    def list(self, cluster: str) -> builtins.list[Instance]:
        if len(self.hosts) == 1:
            found = [self._node_on(self.hosts[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(16, len(self.hosts))) as pool:
                found = builtins.list(pool.map(self._node_on, self.hosts))
        return [i for i in found if i is not None and i.tags.get("rmc-cluster") == cluster]

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        host = self._host_of(instance_id)
        facts = None if host is None else self._facts(host, fresh=True)
        if host is None or facts is None or facts.instance_id != instance_id \
                or host_state(facts) in (None, NodeState.TERMINATED):
            raise InstanceNotFound(self.name, f"instance {instance_id} does not exist")
        marker = {**facts.marker, "tags": {**facts.marker.get("tags", {}), **tags}}
        out = self._remote(host, "tags", instance_id, _b64(json.dumps(marker)), ok=(0, 4))
        with self._lock:
            self._cache.pop(host.slug, None)
        if out.startswith("lost"):
            raise InstanceNotFound(self.name, f"instance {instance_id} does not exist")

    # -- checks (plan --check-hosts) -------------------------------------------------------------

    def check_host(self, host: SshHost) -> HostCheck:
        """Log in to ``host`` and check what a launch needs: reachability, host key, the key, the tools
        the driver runs, ``ray``, and the GPU inventory. Never launches anything."""
        with self._lock:
            self._inventory.pop(host.slug, None)
        try:
            out = self._remote(host, "check", self.settings.ray)
            gpus = self._gpus(host)
        except CloudError as exc:
            return HostCheck(host, False, (str(exc),))
        problems = [f"host {host.where}: `{line.split()[1]}` is not installed (or not on PATH)"
                    for line in out.splitlines() if line.startswith("missing ")]
        notes = []
        mismatch = check_inventory(host, gpus)
        if mismatch:
            problems.append(mismatch)
        if gpus is None and host.accelerator_count:
            notes.append(f"host {host.where}: no nvidia-smi; its {host.accelerator_count} declared GPU(s) "
                         "are not verified")
        held = next((line.split()[1] for line in out.splitlines() if line.startswith("held ")), "-")
        if held != "-":
            notes.append(f"host {host.where}: held by node {held}")
        return HostCheck(host, not problems, tuple(problems), tuple(notes))

    def check_hosts(self) -> builtins.list[HostCheck]:
        """``check_host`` for every host, in parallel, in config order."""
        with ThreadPoolExecutor(max_workers=min(16, len(self.hosts))) as pool:
            return builtins.list(pool.map(self.check_host, self.hosts))

    def _control_root(self) -> str:
        with self._lock:
            if self._control_dir is None:
                self._control_dir = tempfile.mkdtemp(prefix="rmc-ssh-")  # short: a socket path
                # Gone with the driver or the process, even when nobody calls close().
                weakref.finalize(self, shutil.rmtree, self._control_dir, True)
            return self._control_dir

    def close(self) -> None:
        """Close the multiplexed connections to every host (they also close after idling
        ``CONTROL_PERSIST_S``). The driver stays usable: the next call opens a new one."""
        with self._lock:
            control, self._control_dir = self._control_dir, None
        if control is None:
            return
        for host in self.hosts:
            if host.host_key_fingerprint and not (self.local_dir / f"known_hosts-{host.slug}").exists():
                continue
            argv = [*self.ssh_command(host, control=control)]
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run([*argv[:-1], "-O", "exit", argv[-1]], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)
        shutil.rmtree(control, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------------

    def _host_of(self, instance_id: str) -> SshHost | None:
        for host in self.hosts:
            if instance_id.startswith(f"{self.name}-{host.slug}-"):
                return host
        return None

    def _held_by_request(self, request_id: str) -> Instance | None:
        for inst in self._all_nodes():
            if inst.tags.get("rmc-request-id") == request_id:
                return inst
        return None

    def _all_nodes(self) -> builtins.list[Instance]:
        return [i for i in self._nodes_by_host() if i is not None]

    def _nodes_by_host(self) -> builtins.list[Instance | None]:
        with ThreadPoolExecutor(max_workers=min(16, len(self.hosts))) as pool:
            return builtins.list(pool.map(self._node_on, self.hosts))

    def _unavailable(self, host: SshHost) -> str | None:
        with self._lock:
            until, reason = self._down.get(host.slug, (0.0, ""))
        if time.time() < until:
            return f"{reason} (retried in {until - time.time():.0f} s)"
        return None

    def _mark_down(self, host: SshHost, reason: str) -> str:
        """Take ``host`` out of the pool for ``unavailable_seconds``; one log line when it goes out."""
        with self._lock:
            was = self._down.get(host.slug)
            self._down[host.slug] = (time.time() + self.settings.unavailable_s, reason)
        if was is None or was[1] != reason or was[0] < time.time():
            logger.warning("[%s] host %s taken out of the pool for %.0f s: %s", self.name, host.where,
                           self.settings.unavailable_s, reason)
        return reason

    def _mark_up(self, host: SshHost) -> None:
        with self._lock:
            was = self._down.pop(host.slug, None)
        if was is not None:
            logger.info("[%s] host %s answers again; back in the pool", self.name, host.where)

    def _node_on(self, host: SshHost) -> Instance | None:
        """The live node ``host`` holds (None: free or stale). Unreachable: the last one seen."""
        if self._unavailable(host):
            with self._lock:
                return self._known.get(host.slug)
        try:
            facts = self._facts(host)
        except HostUnreachable as exc:
            self._mark_down(host, str(exc))
            with self._lock:
                return self._known.get(host.slug)
        state = host_state(facts)
        if facts.start_rc is not None and facts.start_rc != 0 and not self._unavailable(host):
            # The same script would fail the same way: no relaunch here until the cool-down ends.
            self._mark_down(host, f"host {host.where}: ray start failed (exit {facts.start_rc}) for node "
                            f"{facts.instance_id}; see {host.state_dir}/node.log.prev on the host")
            # What the failed start left running (Ray's log monitor, an agent) is ended now, not at
            # the host's next launch: nobody lists this node again, so `ray down` would not end it.
            try:
                self._remote(host, "stop", str(facts.instance_id), timeout=TERMINATE_GRACE_S + 30)
            except CloudError as exc:
                logger.warning("[%s] could not clean up failed node %s on host %s: %s", self.name,
                               facts.instance_id, host.where, exc)
            with self._lock:
                self._cache.pop(host.slug, None)
        if facts.instance_id is None or state in (None, NodeState.TERMINATED):
            with self._lock:
                self._known.pop(host.slug, None)
            return None
        inst = Instance(
            instance_id=InstanceId(facts.instance_id), cloud=self.name, state=state,
            tags=dict(facts.marker.get("tags", {})), internal_ip=host.node_ip or host.address,
            external_ip=host.address, launched_at=float(facts.marker.get("launched_at", 0.0)),
        )
        with self._lock:
            self._known[host.slug] = inst
        return inst

    def _facts(self, host: SshHost, *, fresh: bool = False) -> HostFacts:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(host.slug)
        if cached is not None and not fresh and now - cached[0] < STATUS_TTL_S:
            return cached[1]
        facts = parse_status(self._remote(host, "status"))
        with self._lock:
            self._cache[host.slug] = (now, facts)
        return facts

    def _gpus(self, host: SshHost) -> builtins.list[str] | None:
        """The host's GPU names from nvidia-smi (None: it has none), read once per driver: a
        host's GPUs do not change under a running pool (``check_host`` reads them again)."""
        with self._lock:
            if host.slug in self._inventory:
                return self._inventory[host.slug]
        out = self._remote(host, "gpus")
        names = (None if out.strip() == "no-nvidia-smi"
                 else [line.strip() for line in out.splitlines() if line.strip()])
        with self._lock:
            self._inventory[host.slug] = names
        return names

    def _launch_on(self, host: SshHost, request: LaunchRequest) -> Instance | None:
        """Claim ``host`` and start Ray there; None if another launcher holds it. Raises
        ``CapacityError`` for a host that cannot take the node (inventory mismatch)."""
        assert request.bootstrap is not None
        facts = self._facts(host)  # the launch below only takes the host if this is still its claim
        state = host_state(facts)
        if state not in (None, NodeState.TERMINATED):
            return None  # held (by us, another cluster, or a launch in flight)
        mismatch = check_inventory(host, self._gpus(host))
        if mismatch:
            raise CapacityError(self.name, self._mark_down(host, mismatch),
                                offer_id=request.offer.offer_id, code="InventoryMismatch")
        instance_id = InstanceId(f"{self.name}-{host.slug}-{uuid.uuid4().hex[:10]}")
        launched_at = facts.now or time.time()
        marker = {"instance_id": instance_id, "cluster": request.cluster, "request_id": request.request_id,
                  "offer_id": request.offer.offer_id, "tags": dict(request.tags),
                  "launched_at": launched_at, "host": host.where}
        boot = replace(request.bootstrap, env={**self.settings.env, **request.bootstrap.env},
                       gcs_address=self.settings.head_address or request.bootstrap.gcs_address)
        extra = ([f"--node-ip-address={host.node_ip}"] if host.node_ip else []) + list(host.ray_start_args)
        host_store = self._push_secrets(host, request)
        script = render_startup_script(boot, request.offer, watcher_cloud=self.name,
                                       instance_id_lines=literal_instance_id(instance_id),
                                       ray=self.settings.ray, extra_args=extra, watcher=False,
                                       # A team's own server: a failed step ends this node's script,
                                       # never the machine (the cloud drivers power theirs off).
                                       on_failure=":", secret_store=host_store)
        try:
            out = self._remote(host, "launch", instance_id, facts.instance_id or "-",
                               _b64(json.dumps(marker)), _b64(script), ok=(0, 3))
        except CloudError:
            with contextlib.suppress(CloudError):
                self._remote(host, "stop", instance_id)
            raise
        finally:
            with self._lock:
                self._cache.pop(host.slug, None)
        if out.startswith("busy"):
            return None
        self._mark_up(host)
        logger.info("[%s] started node %s on host %s for cluster %s", self.name, instance_id, host.where,
                    request.cluster)
        return Instance(instance_id=instance_id, cloud=self.name, state=NodeState.PENDING,
                        tags=dict(request.tags), internal_ip=host.node_ip or host.address,
                        external_ip=host.address, launched_at=launched_at)

    def secret_store(self, cluster: str) -> FileSecretStore:
        """The cluster's secrets on the provider's machine (the head): 0600 files under
        ``<state_dir>/secrets/<cluster>/``, shared with the local clouds of the same state_dir.
        A launch copies them to the host over SSH (``_push_secrets``)."""
        from ray_multicloud.auth import local_store

        return local_store(self.local_dir.parent, cluster)

    def _push_secrets(self, host: SshHost, request: LaunchRequest) -> FileSecretStore | None:
        """Copy the secrets the node needs (``request.bootstrap.auth``) to ``host``'s
        ``<state_dir>/secrets/`` (0700, files 0600) through ssh's stdin; the store the startup script
        copies them from on the host (None when the node needs none). The ``stop`` operation
        removes them with the node."""
        auth = request.bootstrap.auth if request.bootstrap is not None else None
        if auth is None:
            return None
        names = ([auth.token_secret] if auth.token else []) + list(auth.tls_secrets)
        if not names:
            return None
        mine = self.secret_store(request.cluster)
        for name in names:
            value = mine.get(name)
            if value is None:
                raise CloudError(self.name, f"the cluster's secret {name} is not in {mine.root}; it is made "
                                 "when `ray up` creates the head: re-run `ray up`", code="NoSecret")
            self._remote(host, "secret", name, secret=value)
        return _HostSecrets(host.state_dir)

    def _pinned_known_hosts(self, host: SshHost) -> str:
        """A known_hosts file holding only the host keys whose fingerprint is the declared one
        (fetched with ssh-keyscan, kept after the first match). Raises ``HostUnreachable``."""
        assert host.host_key_fingerprint is not None
        path = self.local_dir / f"known_hosts-{host.slug}"
        if path.exists():
            return str(path)
        try:
            scan = subprocess.run(
                ["ssh-keyscan", "-T", str(int(self.settings.connect_timeout_s)), "-p", str(host.port),
                 host.address], capture_output=True, text=True, timeout=self.settings.connect_timeout_s + 10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HostUnreachable(self.name, f"host {host.where}: ssh-keyscan failed ({exc})") from exc
        lines = [line for line in scan.stdout.splitlines() if line and not line.startswith("#")]
        good = [line for line in lines
                if len(line.split()) >= 3 and _safe_fingerprint(line.split()[2]) == host.host_key_fingerprint]
        if not good:
            if not lines:
                why = explain_ssh_failure(host, scan.stderr or "connection refused", str(path))
                raise HostUnreachable(self.name, why)
            got = sorted({_safe_fingerprint(line.split()[2]) for line in lines if len(line.split()) >= 3})
            raise HostUnreachable(self.name, f"host {host.where}: none of its host keys ({', '.join(got)}) "
                                  f"is the declared {host.host_key_fingerprint}; check the host out of "
                                  "band, then fix host_key_fingerprint")
        self.local_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(good) + "\n")
        tmp.replace(path)
        return str(path)

    def ssh_command(self, host: SshHost, *, control: str | None = None) -> builtins.list[str]:
        """The ``ssh`` argv (up to the destination) every call to ``host`` uses (``control``: the
        multiplexing socket directory, by default this driver's)."""
        known = (self._pinned_known_hosts(host) if host.host_key_fingerprint
                 else os.path.expanduser(self.settings.known_hosts))
        argv = ["ssh"]
        if self.settings.ssh_config:
            argv += ["-F", os.path.expanduser(self.settings.ssh_config)]
        argv += [
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
            "-o", "IdentitiesOnly=yes", "-o", f"ConnectTimeout={int(self.settings.connect_timeout_s)}",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR",
            "-o", "ControlMaster=auto", "-o", f"ControlPath={control or self._control_root()}/%C",
            "-o", f"ControlPersist={CONTROL_PERSIST_S}",
            "-i", os.path.expanduser(host.ssh_private_key), "-p", str(host.port),
            f"{host.user}@{host.address}",
        ]
        if host.host_key_fingerprint:
            argv[1:1] = ["-o", "GlobalKnownHostsFile=/dev/null"]
        return argv

    def _remote(self, host: SshHost, op: str, *args: str, ok: Sequence[int] = (0,),
                timeout: float = 60.0, secret: str | None = None) -> str:
        """Run one operation of the remote program on ``host``; its stdout. ``HostUnreachable`` when
        ssh itself fails, ``CloudError`` when the operation exits with a code not in ``ok``.
        ``secret``: a value the operation reads as ``RMC_SECRET``, sent inside the program text on
        ssh's stdin (never on a command line, where ``ps`` on the host would show it)."""
        remote = " ".join(shlex.quote(a) for a in ("bash", "-s", "--", host.state_dir, op, *args))
        # GRACE reaches the program as its first line, so the program text stays one constant.
        program = f"GRACE={TERMINATE_GRACE_S}\n{_REMOTE}"
        if secret is not None:
            program = f"RMC_SECRET={shlex.quote(secret)}\n{program}"
        argv = [*self.ssh_command(host), remote]
        # Files, not pipes: an ssh that leaves a helper behind (a ControlPersist master from the
        # user's ssh config) would hold a pipe open and hang the call.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(argv, input=program.encode(), stdout=out, stderr=err,
                                      timeout=timeout + self.settings.connect_timeout_s, check=False)
            except subprocess.TimeoutExpired as exc:
                raise HostUnreachable(self.name, f"host {host.where}: no answer within {timeout:.0f} s "
                                      f"({op})") from exc
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if proc.returncode == 255:
            raise HostUnreachable(self.name, explain_ssh_failure(host, stderr, self.settings.known_hosts),
                                  code="SshFailed")
        if proc.returncode not in ok:
            detail = (stdout.strip().splitlines() or stderr.strip().splitlines() or ["no output"])[-1]
            raise CloudError(self.name, f"host {host.where}: {op} failed (exit {proc.returncode}): {detail}",
                             code=f"Remote{op.capitalize()}")
        return stdout


def parse_status(out: str) -> HostFacts:
    """The remote ``status`` op's output as ``HostFacts``."""
    fields: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            fields[key] = value.strip()
    now = float(fields.get("now", "0") or 0)
    if "free" in fields or "id" not in fields:
        return HostFacts(now=now)
    marker: dict[str, Any] = {}
    if fields.get("marker"):
        with contextlib.suppress(ValueError):
            loaded = json.loads(base64.b64decode(fields["marker"]))
            if isinstance(loaded, dict):
                marker = loaded
    return HostFacts(
        instance_id=fields["id"], marker=marker,
        pgid=int(fields["pgid"]) if fields.get("pgid", "").isdigit() else None,
        start_rc=int(fields["rc"]) if fields.get("rc", "").lstrip("-").isdigit() else None,
        alive="alive" in fields, now=now,
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _safe_fingerprint(blob: str) -> str:
    try:
        return key_fingerprint(blob)
    except ValueError:
        return "unreadable-key"
