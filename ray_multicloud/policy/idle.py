"""Idle governance: when an idle GPU node becomes a CPU node, and when an idle cluster hibernates.

Pure: no I/O, no clock (``now`` is passed in), no logging. The caller (``idle_guard``) reads each
node's GPU use (Ray's ``ray_node_gpus_utilization`` metric where GPUs are real, the GCS's
available-vs-total ``GPU`` where they are logical) and keeps the times with ``observe``; ``decide``
turns those times and the YAML's ``idle:`` sections into actions, each with its reason.

Two rules, both measured from the last moment a GPU was seen in use:

- **downsize** (a pool's ``idle: {downsize_after, downsize_to}``): a node of the pool that has GPUs,
  whose GPUs have been idle for ``downsize_after`` or longer, *and which still runs something*
  (some resource in use: a notebook's actor, a CPU task, a Serve replica without GPUs), is
  replaced by a node of ``downsize_to`` (a CPU node type), make-before-break. A node with nothing
  in use at all is left to Ray's own idle timeout, which ends it without a replacement: replacing
  it would only buy an idle CPU node.
- **hibernate** (``provider.idle.hibernate_after``): when no GPU of the cluster has been in use for
  ``hibernate_after`` (measured across every node that came and went, from the controller's
  start when none was ever in use) and some worker node is still up, the whole cluster hibernates:
  its state is recorded, Serve scaled to zero, every worker released (the head stays). Hibernation
  wins over a downsize due in the same tick (replacing a node about to be released is waste).

Worked example (hand-computed in ``tests/test_idle.py``): a T4 node last used at t=1000 s, with a
CPU actor still on it, pool ``downsize_after: 4h`` (14400 s), cluster ``hibernate_after: 12h``:
at t=15399 nothing; at t=15400 downsize; once it is a CPU node, at t=1000+43200=44200 the cluster
hibernates.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class PoolIdle:
    """A node type's ``idle:`` section: its GPU nodes idle ``downsize_after_s`` become ``downsize_to``."""

    node_type: str
    downsize_after_s: float
    downsize_to: str


@dataclass(frozen=True, slots=True)
class IdleSettings:
    """Every ``idle:`` section of a cluster YAML (``cluster_config.idle.parse_idle``).

    ``hibernate_after_s``: ``provider.idle.hibernate_after`` (None: never hibernate).
    ``gpu_busy_percent``: a real GPU whose utilisation is above this counts as in use.
    ``gpu_signal``: ``auto`` (utilisation where the metric exists, allocation elsewhere),
    ``utilisation`` or ``allocation``.
    """

    pools: Mapping[str, PoolIdle] = field(default_factory=dict)
    hibernate_after_s: float | None = None
    gpu_busy_percent: float = 5.0
    gpu_signal: str = "auto"

    @property
    def active(self) -> bool:
        return bool(self.pools) or self.hibernate_after_s is not None


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One node's GPU use as read this tick.

    ``gpus``: GPUs the node has (0: a CPU node). ``gpu_in_use``: some GPU of it is in use now
    (allocated to a task/actor where GPUs are logical; utilisation above the threshold where they
    are real). ``busy``: some resource of it is in use (any, not only GPUs).
    """

    instance_id: str
    node_type: str
    gpus: float
    gpu_in_use: bool
    busy: bool


@dataclass(frozen=True, slots=True)
class IdleMemory:
    """What ``observe`` remembers between ticks: when each node's GPUs were last in use (or first
    seen), and when any GPU of the cluster was (``cluster_gpu_at``; None before the first reading)."""

    node_gpu_at: Mapping[str, float] = field(default_factory=dict)
    cluster_gpu_at: float | None = None


def observe(memory: IdleMemory, readings: Iterable[GpuReading], *, now: float) -> IdleMemory:
    """``memory`` updated with this tick's readings. A node seen for the first time counts as used
    at ``now`` (nothing is known of it before); a node no longer read is forgotten. The cluster's
    time is ``now`` when some GPU is in use, else it keeps its last value (``now`` at the first
    call: the controller cannot know of use before it started)."""
    nodes: dict[str, float] = {}
    any_use = False
    for r in readings:
        if r.gpu_in_use:
            nodes[r.instance_id] = now
            any_use = True
        else:
            nodes[r.instance_id] = memory.node_gpu_at.get(r.instance_id, now)
    cluster = now if any_use or memory.cluster_gpu_at is None else memory.cluster_gpu_at
    return IdleMemory(node_gpu_at=nodes, cluster_gpu_at=cluster)


class ActionKind(str, enum.Enum):
    DOWNSIZE = "downsize"
    HIBERNATE = "hibernate"


@dataclass(frozen=True, slots=True)
class IdleAction:
    """One thing to do: downsize ``instance_ids[0]`` to a ``to_node_type`` node, or hibernate
    (release every node of ``instance_ids``)."""

    kind: ActionKind
    instance_ids: tuple[str, ...]
    reason: str
    to_node_type: str = ""


@dataclass(frozen=True, slots=True)
class IdleDecision:
    actions: tuple[IdleAction, ...] = ()
    notes: tuple[str, ...] = ()  # why a GPU node past its limit is not downsized


def human(seconds: float) -> str:
    """``14400`` -> ``4h``, ``90`` -> ``1m30s``, ``20`` -> ``20s`` (whole seconds)."""
    s = round(seconds)
    if s <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts)


def decide(
    readings: Iterable[GpuReading],
    memory: IdleMemory,
    settings: IdleSettings,
    *,
    now: float,
    hibernated: bool = False,
) -> IdleDecision:
    """The idle actions due at ``now`` (module docstring). ``readings``: this tick's worker nodes
    (the head excluded), ``memory``: ``observe`` applied to them already. A hibernated cluster
    gets no action."""
    nodes = list(readings)
    if hibernated or not nodes:
        return IdleDecision()
    after = settings.hibernate_after_s
    last = memory.cluster_gpu_at
    if after is not None and last is not None and now - last + _EPS >= after:
        idle_for = now - last
        reason = (f"no GPU of the cluster in use for {human(idle_for)} >= hibernate_after "
                  f"{human(after)}: hibernate, releasing {len(nodes)} worker node(s)")
        ids = tuple(sorted(r.instance_id for r in nodes))
        return IdleDecision(actions=(IdleAction(ActionKind.HIBERNATE, ids, reason),))
    actions: list[IdleAction] = []
    notes: list[str] = []
    for r in sorted(nodes, key=lambda n: n.instance_id):
        rule = settings.pools.get(r.node_type)
        if rule is None or r.gpus <= 0 or r.gpu_in_use:
            continue
        since = memory.node_gpu_at.get(r.instance_id, now)
        idle_for = now - since
        if idle_for + _EPS < rule.downsize_after_s:
            continue
        if not r.busy:
            notes.append(f"{r.instance_id} ({r.node_type}): GPUs idle {human(idle_for)} but nothing runs "
                         "on it; Ray's idle timeout ends it, no CPU node needed")
            continue
        actions.append(IdleAction(
            ActionKind.DOWNSIZE,
            (r.instance_id,),
            f"{r.instance_id} ({r.node_type}): no GPU use for {human(idle_for)} >= downsize_after "
            f"{human(rule.downsize_after_s)} while other work runs on it: replace by a "
            f"{rule.downsize_to} node (drain first)",
            to_node_type=rule.downsize_to,
        ))
    return IdleDecision(actions=tuple(actions), notes=tuple(notes))
