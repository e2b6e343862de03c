"""Which workload used each node: from Ray's own state, for the ledger's ``job`` column.

``report --by job`` (and the dashboard, and ``status``) group spend by the ledger's ``job`` of each
instance. The controller fills it: every ``attribute_every_s`` it lists the cluster's live actors
(``ray.util.state.list_actors``) and asks :func:`attribute` which workloads ran on each instance:

* a Ray Serve replica (actor name ``SERVE_REPLICA::<app>#<deployment>#<id>``, Serve's own
  ``ReplicaID.to_full_id_str``) -> ``serve:<app>/<deployment>``;
* a Ray Train worker (class ``RayTrainWorker``, Ray Train V2's worker actor) -> ``train:<run>``
  when the pool's running job is known (its ``run_config`` name, from the job discovery), else
  ``train:job-<Ray job id>``;
* any other actor of a job -> ``job-<Ray job id>`` (a plain Ray job's own actors);
* Ray's system actors (Serve controller and proxies, Train controllers, the dashboard's) are the
  cluster's own and attribute nothing.

A node that ran several workloads gets them all, sorted, joined by ``", "``. Pure: no Ray import,
no I/O; the controller passes the actors, which instance each Ray node is, and the pools' jobs.

**Teams.** A node's team is its pool's ``team:`` (the provider records it at launch). A Ray job may
name its own in its metadata (``ray job submit --metadata-json '{"team": "ml-research"}'``, or
``ray.init(job_config=JobConfig(metadata={"team": ...}))``); then :func:`teams` charges the nodes
its workload actors ran on to that team instead (several: sorted, joined by ``", "``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SERVE_REPLICA_PREFIX = "SERVE_REPLICA::"
TRAIN_WORKER_CLASS = "RayTrainWorker"
# Actors that serve the cluster, not a workload (Serve's controller and proxies, Train V2's run
# controller, Ray's own): their nodes are not attributed to them.
SYSTEM_CLASSES = frozenset({"ServeController", "ProxyActor", "HTTPProxyActor", "gRPCProxyActor",
                            "TrainController", "TrainStateActor", "_StatsActor", "SynchronizationActor"})


@dataclass(frozen=True, slots=True)
class ActorSeen:
    """What attribution reads of one live actor (``ray.util.state``'s ``ActorState`` fields)."""

    class_name: str
    name: str | None
    job_id: str
    node_id: str | None


def workload(actor: ActorSeen, *, train_run: str | None = None) -> str | None:
    """The workload ``actor`` belongs to (module docstring), or None for a system actor."""
    if actor.name and actor.name.startswith(SERVE_REPLICA_PREFIX):
        parts = actor.name[len(SERVE_REPLICA_PREFIX):].split("#")
        if len(parts) >= 2:
            return f"serve:{parts[0]}/{parts[1]}"
    if actor.class_name in SYSTEM_CLASSES or actor.class_name.startswith("ServeReplica:"):
        return None
    if actor.class_name == TRAIN_WORKER_CLASS:
        return f"train:{train_run}" if train_run else f"train:job-{actor.job_id}"
    return f"job-{actor.job_id}"


def attribute(
    actors: Iterable[ActorSeen],
    instance_of_node: Mapping[str, str],
    *,
    pool_of_instance: Mapping[str, str] | None = None,
    train_run_of_pool: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Instance id -> its workloads (``"serve:app/dep, train:run"``), for the instances some
    workload's actor lives on. ``instance_of_node``: Ray node id (hex) -> instance id; an actor on
    a node not in it (the head, a node already gone) is skipped."""
    pools = pool_of_instance or {}
    runs = train_run_of_pool or {}
    found: dict[str, set[str]] = {}
    for actor in actors:
        instance = instance_of_node.get(actor.node_id or "")
        if instance is None:
            continue
        label = workload(actor, train_run=runs.get(pools.get(instance, "")))
        if label is not None:
            found.setdefault(instance, set()).add(label)
    return {iid: ", ".join(sorted(labels)) for iid, labels in found.items()}


TEAM_METADATA_KEY = "team"


def teams(
    actors: Iterable[ActorSeen], instance_of_node: Mapping[str, str], team_of_job: Mapping[str, str]
) -> dict[str, str]:
    """Instance id -> the teams (from ``team_of_job``: Ray job id -> its metadata's team) of the jobs
    whose workload actors (not system actors) live on it; instances with no such job are absent."""
    found: dict[str, set[str]] = {}
    for actor in actors:
        instance = instance_of_node.get(actor.node_id or "")
        team = team_of_job.get(actor.job_id, "").strip()
        if instance is None or not team or workload(actor) is None:
            continue
        found.setdefault(instance, set()).add(team)
    return {iid: ", ".join(sorted(names)) for iid, names in found.items()}
