"""The controller on the head: watch prices and deadline jobs, ask ``policy.rebalance``, apply its moves.

**Started by ``ray up``.** ``MultiCloudNodeProvider.bootstrap_config`` appends
``provider.controller_start_command()`` to the head's start commands when some pool is movable, so
``ray up`` starts ``python -m ray_multicloud.controller --config ~/ray_bootstrap_config.yaml`` on
the head, in the head's process group (``ray down`` ends it with the head; why a process and not a
thread of the autoscaler: see that function). One controller per cluster holds a lock file; a
second one exits. ``provider.start_controller: false`` leaves it to the user (a harness that moves
nodes itself); a pool opts out with ``migration: {enabled: false}``. Its log is
``~/ray_multicloud_controller.log`` on the head.

**Settings** come from each pool's ``migration:`` section of the cluster YAML
(``ray_multicloud.cluster_config.migration``: horizon, minimum saving, hysteresis, blackouts, egress,
checkpoint size and times, disruption budget, the deadline policy); command-line flags override them
for every pool.

**One tick** (``Controller.tick``): read the fleet and the current offers from the
``MultiCloudNodeProvider`` (built from the cluster YAML's provider section, so it sees exactly what the
autoscaler sees), call ``policy.rebalance.plan`` once per movable pool with that pool's settings
(its disruption budget as ``max_moves``; a pool with a deadline job is judged by its deadline
policy's ``decide``, the one ``ray-multicloud simulate`` scores), publish each deadline pool's launch
directive (``directives``), and apply each move, one at a time, with its gang (``gang_moves``: a
colocated pool's other nodes go along) through ``move_group``, unless the replacements would not fit
under ``max_workers``. The controller remembers when it moved each node (``last_moved``, for the
hysteresis) and each deadline policy's memory.

**One move** (``move_node``), make-before-break, so a move costs one restore and not a stall, saved
as a ``moves.MoveRecord`` in the ledger's journal at every step (``requested -> replacement-up ->
draining -> done``, or ``rolled-back``), so a restarted controller finishes or undoes it
(``Controller.resume``, before its first tick) and never repeats it:

1. launch the replacement on ``move.to_offer`` (``provider.launch_on_offer`` with the move's own
   request id, tagged like any autoscaler-launched worker of the pool, so autoscaler v2 adopts it);
2. wait until its Ray node is alive in the cluster (the GCS lists a node whose cloud instance id is
   the replacement's) — on failure or timeout the replacement is terminated and the old node is
   left alone (``MoveResult.status`` says why); a replacement its cloud stops listing before its
   Ray node is up (a ``ray start`` that failed on an SSH host) fails the move at once, not at the
   timeout (``_GoneWatch``: gone at two checks in a row, ``GONE_CHECK_S`` apart);
3. drain the old node through the GCS with reason PREEMPTION and a deadline ``drain_deadline_s``
   ahead: Ray Train's preemption watcher tells the workers (``ray.train.get_preemption_info``; they
   may take a just-in-time checkpoint) and restarts the worker group from the latest checkpoint at
   the deadline, onto the replacement; Ray Serve re-places the node's replicas;
4. terminate the old instance once it is drained (gone from the GCS, or no resource of it in use)
   or at the deadline, whichever comes first; record the move in the ledger.

``move_node`` knows nothing of Train or Serve: it moves one node of a pool. Its event sequence, as
the ledger and the logs show it:
``aws us-east-1a T4 spot (price $0.53/h) -> gcp us-central1-a T4 spot up (8 s) -> aws drained at
deadline (15 s) -> aws terminated``.

**Deadline jobs** (``--deadline-job POOL=RUN_DIR,TOTAL_STEPS,DEADLINE``, repeatable): before each
tick, ``JobFeed`` re-reads each job's Train run directory (``train.progress``: its complete
checkpoints' steps and times) and declares the estimate with ``set_job``, or clears it with None
while there are fewer than two checkpoints to estimate from (saying why once in the log).

Preemptions are not the controller's business: the cloud's notice drains the node (the local cloud
does it itself) and the autoscaler replaces it through ``policy.place``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ray_multicloud.attribution import TEAM_METADATA_KEY, ActorSeen, attribute, teams
from ray_multicloud.budget_guard import BudgetGuard
from ray_multicloud.cluster_config.budget import parse_budgets
from ray_multicloud.cluster_config.idle import parse_idle
from ray_multicloud.cluster_config.migration import DisruptionBudget, Migration, parse_migration
from ray_multicloud.cluster_config.predictive import parse_all_predictive
from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
from ray_multicloud.directives import SLO_DIRECTIVE_PREFIX, Directive, LaunchDirectives
from ray_multicloud.errors import MultiCloudError
from ray_multicloud.idle_guard import IdleGuard, is_hibernated, restore
from ray_multicloud.ledger import LedgerError
from ray_multicloud.metrics import CostFigures, CostMetrics
from ray_multicloud.moves import MoveRecord, MoveState, new_record
from ray_multicloud.policy.deadline import Kind, Memory, checkpoint_after_tick
from ray_multicloud.policy.notices import notice_moves
from ray_multicloud.policy.rebalance import (
    DailyWindow,
    JobProgress,
    MovePlan,
    RebalanceConfig,
    Window,
    gang_moves,
    idle_step,
    node_view,
    plan,
    regroup,
)
from ray_multicloud.predictive_guard import PredictiveGuard
from ray_multicloud.train.progress import DeadlineJob, RunWatch
from ray_multicloud.types import CapacityType, FleetNode, InstanceId, Move, NodeState, OfferId, PoolSpec
from ray_multicloud.worker.drain import OWN_DRAIN_PREFIX, PREEMPTION, drain_messages, drain_node

logger = logging.getLogger(__name__)
DIRECTIVE_CHAIN = 8  # spot offers a launch directive lists at most, in the policy's order
GONE_CHECK_S = 5.0  # a move asks the cloud this often whether a replacement not yet up has ended
# A notice's replacements are planned at most NOTICE_ATTEMPTS times while the notice runs: a launch
# refused for capacity cools its offer down and the group is planned again; from attempt
# NOTICE_ON_DEMAND_FROM on, on on-demand only (a pool that allows it), as SkyServe's SpotHedge falls
# back when spot is gone; the price moves bring such a node back to spot once spot launches again.
NOTICE_ATTEMPTS = 4
NOTICE_ON_DEMAND_FROM = 3


# --------------------------------------------------------------------------- cluster view


@dataclass(frozen=True, slots=True)
class RayNode:
    """A Ray node as the GCS reports it: its id (hex), cloud instance id, status, resources."""

    node_id: str
    instance_id: str
    status: str
    total: Mapping[str, float]
    available: Mapping[str, float]

    @property
    def alive(self) -> bool:
        return self.status in ("RUNNING", "IDLE", "DRAINING")

    @property
    def busy(self) -> bool:
        """Some resource of the node is in use (a task, an actor, a placement group bundle)."""
        return any(
            self.available.get(k, 0.0) + 1e-9 < v
            for k, v in self.total.items()
            if not k.startswith("node:") and k != "object_store_memory"
        )


def ray_nodes(gcs_address: str) -> dict[str, RayNode]:
    """Live and dead Ray nodes by cloud instance id (``RAY_CLOUD_INSTANCE_ID`` of their raylet).

    Reads the autoscaler's view from the GCS; needs no driver connection (``ray.init``).
    """
    import ray._raylet
    from ray.autoscaler.v2.sdk import get_cluster_resource_state
    from ray.core.generated import autoscaler_pb2

    state = get_cluster_resource_state(ray._raylet.GcsClient(address=gcs_address))  # type: ignore[attr-defined]
    out: dict[str, RayNode] = {}
    for n in state.node_states:
        status = autoscaler_pb2.NodeStatus.Name(n.status)  # type: ignore[attr-defined]
        node = RayNode(
            node_id=n.node_id.hex(),
            instance_id=n.instance_id,
            status=status,
            total=dict(n.total_resources),
            available=dict(n.available_resources),
        )
        prev = out.get(n.instance_id)
        if prev is None or (node.alive and not prev.alive):
            out[n.instance_id] = node
    return out


def draining_deadlines(gcs_address: str) -> dict[str, float]:
    """The Ray nodes being drained, by node id (hex), with their drain deadline (POSIX seconds; 0
    when the drain gave none). Reads the GCS directly; needs no driver connection."""
    from ray._private.internal_api import get_state_from_address

    state = get_state_from_address(gcs_address)
    return {str(k): float(v) / 1000.0 for k, v in state.get_draining_nodes().items()}


def live_actors(gcs_address: str) -> list[ActorSeen]:
    """The cluster's live actors as ``attribution`` reads them (Ray's state API, reached through
    this cluster's GCS at ``gcs_address``: left to find a cluster by itself, the state API takes the
    newest Ray instance on the machine, which on a shared test machine is another cluster's)."""
    from ray.util.state import list_actors

    rows = list_actors(address=gcs_address, filters=[("state", "=", "ALIVE")], limit=100_000,
                       raise_on_missing_output=False)
    return [ActorSeen(class_name=str(a.class_name), name=a.name, job_id=str(a.job_id), node_id=a.node_id)
            for a in rows]


def live_job_teams(gcs_address: str) -> dict[str, str]:
    """Ray job id -> the team its metadata names (``attribution``, "Teams"), for the jobs that name one."""
    from ray.util.state import list_jobs

    out: dict[str, str] = {}
    for job in list_jobs(limit=10_000, raise_on_missing_output=False):
        team = (getattr(job, "metadata", None) or {}).get(TEAM_METADATA_KEY)
        job_id = getattr(job, "job_id", None)
        if job_id and isinstance(team, str) and team.strip():
            out[str(job_id)] = team.strip()
    return out


# --------------------------------------------------------------------------- one move


@dataclass(frozen=True, slots=True)
class NodeTypeSpec:
    """What a node of a pool advertises to Ray: its YAML ``resources`` and ``labels``."""

    resources: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MoveResult:
    """How a move went. ``status`` is ``moved``, ``launch-failed``, ``not-up``, ``drain-rejected``.

    Times are seconds from the start of the move (None when that step did not happen):
    ``up_s`` the replacement's Ray node alive, ``drained_s`` the old node drained (or the
    deadline reached), ``done_s`` the old instance terminated.
    """

    move: Move
    status: str
    new_instance_id: str = ""
    started_at: float = 0.0
    up_s: float | None = None
    drained_s: float | None = None
    done_s: float | None = None
    drained_by_deadline: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "moved"


def move_node(
    provider: Any,
    move: Move,
    *,
    spec: NodeTypeSpec,
    gcs_address: str,
    drain_deadline_s: float = 30.0,
    up_timeout_s: float = 120.0,
    poll_s: float = 0.5,
    ledger: Any = None,
    nodes: Callable[[str], Mapping[str, RayNode]] = ray_nodes,
    drain: Callable[..., tuple[bool, str]] = drain_node,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    record: MoveRecord | None = None,
) -> MoveResult:
    """Replace ``move.instance_id`` by a node on ``move.to_offer``, make-before-break (module docstring).

    ``move_group`` with one member; see there for the guarantees. ``record`` (a move found open in
    the journal after a restart) continues that move from its saved state.
    """
    return move_group(
        provider,
        [move],
        spec=spec,
        gcs_address=gcs_address,
        drain_deadline_s=drain_deadline_s,
        up_timeout_s=up_timeout_s,
        poll_s=poll_s,
        ledger=ledger,
        nodes=nodes,
        drain=drain,
        clock=clock,
        sleep=sleep,
        records=None if record is None else [record],
    )[0]


def move_group(
    provider: Any,
    moves: Sequence[Move],
    *,
    spec: NodeTypeSpec,
    gcs_address: str,
    drain_deadline_s: float = 30.0,
    up_timeout_s: float = 120.0,
    poll_s: float = 0.5,
    ledger: Any = None,
    nodes: Callable[[str], Mapping[str, RayNode]] = ray_nodes,
    drain: Callable[..., tuple[bool, str]] = drain_node,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    records: Sequence[MoveRecord] | None = None,
    not_after: float | None = None,
) -> list[MoveResult]:
    """Move every node of ``moves`` (the members of one gang: the nodes of one Ray Train worker
    group) together, make-before-break: all replacements up first, then all old nodes drained with
    one deadline (so the job restarts once, from one checkpoint, on the new group), then all
    terminated. One result per member, in order.

    Generic: works for any pool and any workload that reacts to a PREEMPTION drain (Ray Train, Ray
    Serve, plain tasks and actors). ``provider`` is a ``MultiCloudNodeProvider`` (``launch_on_offer``,
    ``terminate_node``); ``spec`` is the pool's YAML ``resources``/``labels`` the replacements must
    advertise. ``nodes``, ``drain``, ``clock`` and ``sleep`` are the GCS reads, the GCS drain call and
    the time source (fakes in tests). Blocks for at most ``up_timeout_s + drain_deadline_s`` plus the
    terminations.

    Each member is a ``moves.MoveRecord`` saved at every step (``ledger.journal_put``, when the
    ledger has one); ``records`` (moves found open in the journal after a restart) continue from
    their saved states instead of starting over. A replacement's launch request id comes from its
    move, so launching again reuses a replacement that already exists.

    Guarantees: no old node is drained before every replacement's Ray node is alive; if a
    replacement cannot be launched or does not come up, every replacement of the group is
    terminated and the old nodes keep running untouched (the group never ends up split by a
    failed move). A member whose drain the GCS rejects keeps its old node and loses its
    replacement. Never raises for a cloud or GCS failure: the results say what happened.
    ``ledger``, when given, gets ``record_move`` per member moved.

    ``not_after`` (POSIX s): the old nodes' drain deadline is never later than this — the deadline
    of the interruption notice a move on notice answers (``Controller.answer_notices``): the drain
    then only brings that deadline forward, to ``drain_deadline_s`` after the replacements are up.
    """
    from ray_multicloud.errors import LaunchFailed

    journal = getattr(ledger, "journal_put", None)
    start = clock()
    if records is None:
        recs: list[MoveRecord] = []
        for move in moves:
            number = 1
            with contextlib.suppress(Exception):
                number = int(ledger.moves_of(str(move.instance_id))) + 1 if hasattr(ledger, "moves_of") else 1
            recs.append(
                new_record(
                    pool=move.pool,
                    old_instance=str(move.instance_id),
                    target_offer=str(move.to_offer.offer_id),
                    number=number,
                    reason="; ".join(move.reasons) or "price move",
                    at=start,
                )
            )
    else:
        recs = list(records)
        start = min(r.started_at for r in recs)

    def save(rec: MoveRecord) -> MoveRecord:
        if journal is not None:
            try:
                journal(rec)
            except Exception:  # the move goes on; a restart then sees the previous state
                logger.exception("move journal write failed for %s", rec.move_id)
        return rec

    def since() -> float:
        return clock() - start

    def read() -> Mapping[str, RayNode]:
        return nodes_or_none(nodes, gcs_address) or {}  # a GCS hiccup reads as "nothing yet"

    results: list[MoveResult | None] = [None] * len(moves)
    up_s: float | None = None

    # 1. Launch every replacement still to launch (REQUESTED), then wait for all of them.
    fresh = [i for i, r in enumerate(recs) if r.state is MoveState.REQUESTED]
    if fresh:
        launched: dict[int, str] = {}
        failure = ""
        for i in fresh:
            move = moves[i]
            recs[i] = save(recs[i])
            try:
                inst = provider.launch_on_offer(
                    move.pool,
                    move.to_offer,
                    resources=dict(spec.resources),
                    labels=dict(spec.labels),
                    request_id=recs[i].request_id,
                )
            except (LaunchFailed, MultiCloudError) as exc:
                logger.warning(
                    "move of %s: replacement on %s failed: %s", move.instance_id, move.to_offer.offer_id, exc
                )
                failure = f"launch failed: {exc}"
                results[i] = MoveResult(move, "launch-failed", started_at=start, detail=str(exc))
                break
            launched[i] = str(inst.instance_id)
            logger.info(
                "move of %s: replacement %s launched on %s",
                move.instance_id,
                launched[i],
                move.to_offer.offer_id,
            )
        status = "launch-failed" if failure else ""
        if not failure:
            up_by = clock() + up_timeout_s
            gone = _GoneWatch(provider, clock)
            while True:
                seen = read()
                if all(
                    (n := seen.get(new)) is not None and n.status in ("RUNNING", "IDLE")
                    for new in launched.values()
                ):
                    up_s = since()
                    break
                ended = gone.ended([new for new in launched.values() if new not in seen])
                if ended:
                    failure, status = f"replacement {ended} ended before its Ray node came up", "not-up"
                    logger.warning(
                        "move of %s: %s (its cloud lists it no more: a failed start); rolling back",
                        [str(m.instance_id) for m in moves],
                        failure,
                    )
                    break
                if clock() >= up_by:
                    failure, status = f"replacement not up within {up_timeout_s:.0f} s", "not-up"
                    logger.warning(
                        "move of %s: %s; rolling back", [str(m.instance_id) for m in moves], failure
                    )
                    break
                sleep(poll_s)
        if failure:
            # Roll the whole group back: no member moves alone.
            for i in fresh:
                new = launched.get(i, "")
                if new:
                    provider.terminate_node(new)
                save(recs[i].to(MoveState.ROLLED_BACK, at=clock(), new_instance=new, detail=failure))
                if results[i] is None:
                    results[i] = MoveResult(moves[i], status, new, start, detail=failure)
            for i, r in enumerate(recs):
                if results[i] is None:  # resumed members beyond REQUESTED go on alone
                    results[i] = MoveResult(moves[i], status, r.new_instance, start, detail=failure)
            return [r for r in results if r is not None]
        for i in fresh:
            recs[i] = save(recs[i].to(MoveState.REPLACEMENT_UP, at=clock(), new_instance=launched[i]))

    # 2. Drain every old node (one deadline for the group), unless already draining.
    deadline = clock() + drain_deadline_s
    if not_after is not None:
        deadline = min(deadline, not_after)
    current = read()
    for i, rec in enumerate(recs):
        if rec.state is not MoveState.REPLACEMENT_UP:
            continue
        move, old, new = moves[i], rec.old_instance, rec.new_instance
        node = current.get(old)
        if node is None or not node.alive:
            recs[i] = rec.to(MoveState.DRAINING, at=clock(), drain_deadline_at=clock())
            continue  # gone already: nothing to drain (a restart re-drains nothing either)
        try:
            accepted, why = drain(
                gcs_address,
                node.node_id,
                deadline_s=deadline,
                reason=PREEMPTION,
                message=f"rmc move {old} -> {new} ({move.to_offer.offer_id})",
            )
        except Exception as exc:
            logger.warning("drain call failed", exc_info=True)
            accepted, why = False, f"drain call failed: {exc}"
        if not accepted:
            logger.warning("move of %s: drain rejected (%s); terminating the replacement", old, why)
            provider.terminate_node(new)
            save(rec.to(MoveState.ROLLED_BACK, at=clock(), detail=f"drain rejected: {why}"))
            results[i] = MoveResult(move, "drain-rejected", new, start, up_s=up_s, detail=why)
            continue
        recs[i] = save(rec.to(MoveState.DRAINING, at=clock(), drain_deadline_at=deadline))

    # 3. Wait until each old node is drained (gone, or nothing of it in use) or its deadline, then
    # terminate it.
    waiting = {i for i, r in enumerate(recs) if r.state is MoveState.DRAINING and results[i] is None}
    by_deadline = {i: True for i in waiting}
    for i in waiting:
        at = recs[i].drain_deadline_at
        if at is None or at <= clock():
            by_deadline[i] = False
    pending = set(waiting)
    while pending:
        due = [i for i in pending if clock() >= (recs[i].drain_deadline_at or 0.0)]
        for i in due:
            pending.discard(i)
        if not pending:
            break
        sleep(poll_s)
        now_seen = nodes_or_none(nodes, gcs_address)
        if now_seen is None:
            continue
        for i in list(pending):
            n = now_seen.get(recs[i].old_instance)
            if n is None or not n.alive or not n.busy:
                by_deadline[i] = False
                pending.discard(i)
    drained_s = since()
    for i in sorted(waiting):
        move, rec = moves[i], recs[i]
        provider.terminate_node(rec.old_instance)
        done_s = since()
        save(rec.to(MoveState.DONE, at=clock()))
        if ledger is not None:
            try:
                ledger.record_move(rec.old_instance, rec.new_instance, rec.reason or "price move", start)
            except Exception:  # the move happened whatever the ledger says
                logger.exception("ledger record_move failed")
        logger.info(
            "move of %s -> %s done: up %s s, drained %.1f s%s, terminated %.1f s",
            rec.old_instance,
            rec.new_instance,
            "?" if up_s is None else f"{up_s:.1f}",
            drained_s,
            " (deadline)" if by_deadline[i] else "",
            done_s,
        )
        results[i] = MoveResult(
            move,
            "moved",
            rec.new_instance,
            start,
            up_s=up_s,
            drained_s=drained_s,
            done_s=done_s,
            drained_by_deadline=by_deadline[i],
        )
    return [
        r if r is not None else MoveResult(moves[i], "moved", recs[i].new_instance, start)
        for i, r in enumerate(results)
    ]


class _GoneWatch:
    """Whether a replacement still waited for has ended before its Ray node came up (a ``ray start``
    that failed on an SSH host, a VM the cloud stopped): then waiting out ``up_timeout_s`` is
    pointless. The provider is asked (``is_terminated``) at most every ``every_s`` seconds, and
    an instance counts as ended only when two checks in a row, ``every_s`` apart, find it gone (a
    cloud's listing may lag a launch for a moment). A provider without ``is_terminated``, or one
    whose answer raises, never ends a wait early."""

    def __init__(self, provider: Any, clock: Callable[[], float], every_s: float = GONE_CHECK_S) -> None:
        self._ask = getattr(provider, "is_terminated", None)
        self._clock = clock
        self._every_s = every_s
        self._next = clock() + every_s
        self._gone_before: set[str] = set()

    def ended(self, waiting: Sequence[str]) -> str:
        """The first of ``waiting`` found gone twice in a row, or ""."""
        if self._ask is None or not waiting or self._clock() < self._next:
            return ""
        self._next = self._clock() + self._every_s
        gone: set[str] = set()
        for instance_id in waiting:
            try:
                if self._ask(instance_id):
                    gone.add(instance_id)
            except Exception:  # a cloud hiccup is no verdict; the timeout still holds
                logger.debug("is_terminated(%s) failed", instance_id, exc_info=True)
        twice = sorted(gone & self._gone_before)
        self._gone_before = gone
        return twice[0] if twice else ""


def nodes_or_none(
    nodes: Callable[[str], Mapping[str, RayNode]], gcs_address: str
) -> Mapping[str, RayNode] | None:
    """``nodes(gcs_address)``, or None when the GCS cannot be read right now."""
    try:
        return nodes(gcs_address)
    except Exception:
        logger.debug("GCS read failed", exc_info=True)
        return None


# --------------------------------------------------------------------------- the loop


class Controller:
    """The rebalancing loop over one cluster. ``tick()`` is one pass; ``run()`` loops until stopped.

    Each movable pool (a node type with a ``pool:`` whose ``migration.enabled`` is not false) is
    planned with its own ``migration:`` section (``ray_multicloud.cluster_config.migration``).
    ``config``, when given, replaces every pool's section (tests and benchmarks that set the knobs in code);
    ``overrides`` (``RebalanceConfig`` field -> value, the command line's flags) is applied on top.
    ``drain_deadline_s`` / ``up_timeout_s`` override the sections' own when given.

    ``nodes``, ``drain``, ``clock`` and ``sleep`` are what every move reads the GCS with, drains
    with, and tells time by (``move_group``); tests replace them.

    Thread-safe for one ticking thread plus readers of ``results``.
    """

    def __init__(
        self,
        cluster_config: Mapping[str, Any],
        *,
        config: RebalanceConfig | None = None,
        overrides: Mapping[str, Any] | None = None,
        drain_deadline_s: float | None = None,
        up_timeout_s: float | None = None,
        interval_s: float = 10.0,
        provider: Any = None,
        nodes: Callable[[str], Mapping[str, RayNode]] = ray_nodes,
        drain: Callable[..., tuple[bool, str]] = drain_node,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        actors: Callable[[str], Sequence[ActorSeen]] | None = None,
        attribute_every_s: float = 60.0,
        draining: Callable[[str], Mapping[str, float]] = draining_deadlines,
        drain_messages: Callable[[str, list[str]], Mapping[str, str]] = drain_messages,
        notice_poll_s: float = 1.0,
        job_teams: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        from ray_multicloud.cluster_config.cluster import check_cluster
        from ray_multicloud.provider import MultiCloudNodeProvider

        # The GCS reads, the drain call and the time source of every move (fakes in tests).
        self._io: dict[str, Any] = {"nodes": nodes, "drain": drain, "clock": clock, "sleep": sleep}
        # Interruption notices (``answer_notices``): which nodes are draining, and the instances a
        # move of this controller holds (a tick's move or a notice's), so neither takes them twice.
        self._draining = draining
        self._drain_messages = drain_messages
        self.notice_poll_s = notice_poll_s
        self._claimed: set[InstanceId] = set()
        self._answered: set[InstanceId] = set()  # noticed nodes already given a replacement
        self._notices_recorded: set[InstanceId] = set()  # notices already in the ledger
        self._notice_threads: list[threading.Thread] = []
        # Which workload used each node (``attribution``), for the ledger's job column: the live
        # actors are read through ``actors`` (default: Ray's state API, when connected) at most
        # every ``attribute_every_s``; the Train run name of a pool comes from ``train_runs``.
        self._actors = actors
        # Teams named by jobs' metadata (default: Ray's state API, when connected), read with the actors.
        self._job_teams = job_teams
        self._teamed: dict[str, str] = {}
        self.attribute_every_s = attribute_every_s
        self._attributed_at = -math.inf
        self._attributed: dict[str, str] = {}
        self.train_runs: dict[str, str] = {}

        self.cluster_config = dict(cluster_config)
        self.cluster_name = str(cluster_config.get("cluster_name") or "default")
        provider_config = dict(cluster_config["provider"])
        self.provider = provider or MultiCloudNodeProvider(provider_config, self.cluster_name)
        self.gcs_address: str = self.provider.settings.gcs_address
        targets = check_cluster(cluster_config, clouds=self.provider.clouds)
        types = cluster_config.get("available_node_types") or {}
        self.migrations: dict[str, Migration] = {}
        for name, target in targets.items():
            if not isinstance(target, PoolSpec):
                continue
            migration = parse_migration(name, types[name].get("node_config") or {})
            base = config if config is not None else migration.rebalance
            migration = replace(
                migration,
                rebalance=replace(base, tick_s=interval_s, **dict(overrides or {})),
                drain_deadline_s=migration.drain_deadline_s if drain_deadline_s is None else drain_deadline_s,
                up_timeout_s=migration.up_timeout_s if up_timeout_s is None else up_timeout_s,
            )
            if config is not None:
                migration = replace(migration, budget=DisruptionBudget(count=config.max_moves))
            self.migrations[name] = migration
        self.pools: dict[str, PoolSpec] = {
            k: v for k, v in targets.items() if isinstance(v, PoolSpec) and self.migrations[k].enabled
        }
        self.specs: dict[str, NodeTypeSpec] = {
            name: NodeTypeSpec(
                resources={str(k): float(v) for k, v in (types[name].get("resources") or {}).items()},
                labels={str(k): str(v) for k, v in (types[name].get("labels") or {}).items()},
            )
            for name in self.pools
        }
        # Make-before-break needs room for the replacements beside the old nodes: the autoscaler
        # terminates nodes beyond a node type's (or the cluster's) max_workers.
        self._max_workers: dict[str, int | None] = {
            name: _int_or_none(types[name].get("max_workers")) for name in self.pools
        }
        self._cluster_max = _int_or_none(cluster_config.get("max_workers"))
        self._base = replace(config if config is not None else RebalanceConfig(), **dict(overrides or {}))
        self.interval_s = interval_s
        self.last_moved: dict[InstanceId, float] = {}
        self.results: list[MoveResult] = []
        self.last_plan: MovePlan | None = None
        self._jobs: dict[str, JobProgress] = {}
        self._memories: dict[str, Memory] = {}
        self._measured_gb: dict[str, float] = {}
        # Per pool, "cloud/region" of the spot node that last ran its deadline job: where the job's
        # checkpoint lives (JobProgress.checkpoint_region), for the egress its policy's view carries.
        self._homes: dict[str, str] = {}
        self._lock = threading.Lock()
        self.ledger = _open_ledger(self.provider.settings.ledger_path)
        # Cost per hour and savings as Ray metrics (Prometheus, the dashboard), from the ledger; the
        # gauges exist only while this process is connected to Ray (``main`` connects).
        self.metrics = CostMetrics(self.cluster_name)
        self.figures: CostFigures | None = None
        # Budgets (``budget:`` sections): graded every tick, and a move to dearer offers is checked.
        self.budgets = parse_budgets(cluster_config)
        self.budget_guard = BudgetGuard(self.cluster_name, self.ledger, metrics=self.metrics)
        # Idle governance (``idle:`` sections, ``idle_guard``): downsize idle GPU nodes, hibernate.
        idle = parse_idle(cluster_config)
        self.idle: IdleGuard | None = IdleGuard(self, idle) if idle.active else None
        # Predictive serving capacity (``predictive:`` sections, ``predictive_guard``): forecast each
        # serving pool's request rate and ask the autoscaler for its nodes ``lead`` ahead.
        self.predictive: PredictiveGuard | None = None
        self._predictive_thread = False  # run() ticks the predictive step in a thread of its own
        predictive = parse_all_predictive(cluster_config)
        if predictive:
            settings = self.provider.settings
            self.predictive = PredictiveGuard(
                self.cluster_name, settings.state_dir, predictive,
                {name: {str(k): float(v) for k, v in (types[name].get("resources") or {}).items()}
                 for name in predictive},
                hibernated=lambda: is_hibernated(settings), clock=clock)

    @property
    def config(self) -> RebalanceConfig:
        """The cluster-wide base configuration with the deadline jobs declared now (``set_job``).

        Each pool is planned with its own section (``pool_config``); this is what a caller that
        plans every pool at once (a test, the CLI) passes to ``policy.rebalance.plan``."""
        with self._lock:
            return replace(self._base, jobs=dict(self._jobs))

    def pool_config(self, pool: str) -> RebalanceConfig:
        """The configuration ``pool`` is planned with this tick: its ``migration:`` section (with any
        overrides, and the measured checkpoint size under ``checkpoint_gb: measure``) and its deadline
        job. ``tick`` adds the disruption budget as ``max_moves``."""
        migration = self.migrations[pool]
        with self._lock:
            job = self._jobs.get(pool)
            measured = self._measured_gb.get(pool)
            home = self._homes.get(pool, "")
        if job is not None and home and not job.checkpoint_region:
            job = replace(job, checkpoint_region=home)
        return replace(
            migration.config_for(measured_gb=measured), jobs={pool: job} if job is not None else {}
        )

    def set_checkpoint_size(self, pool: str, gb: float | None) -> None:
        """The size of the pool's job's newest checkpoint, for ``migration.checkpoint_gb: measure``."""
        with self._lock:
            if gb is None:
                self._measured_gb.pop(pool, None)
            else:
                self._measured_gb[pool] = gb

    def _note_home(self, pool: str, members: Sequence[FleetNode]) -> None:
        """Record where the pool's deadline job's checkpoint lives: the region of its running spot
        node (``JobProgress.checkpoint_region``; the simulator's model: on-demand never moves it)."""
        spot_nodes = [
            n for n in members if n.state is NodeState.RUNNING and n.offer.capacity is CapacityType.SPOT
        ]
        if spot_nodes:
            with self._lock:
                if pool in self._jobs:
                    self._homes[pool] = f"{spot_nodes[0].offer.cloud}/{spot_nodes[0].offer.region}"

    def set_job(self, pool: str, progress: JobProgress | None) -> None:
        """Declare (or update, or clear with None) the deadline job running on ``pool``.

        The pool's deadline policy (``migration.policy``) then also decides its moves
        (``policy.rebalance``, "Deadline moves"). Whoever tracks the job's progress calls this
        before each tick.
        """
        with self._lock:
            if progress is None:
                self._jobs.pop(pool, None)
                self._memories.pop(pool, None)
                self._homes.pop(pool, None)
            else:
                self._jobs[pool] = progress

    def tick(self, now: float | None = None) -> list[MoveResult]:
        """Plan each movable pool once and apply the planned moves, one after the other."""
        at = self._io["clock"]() if now is None else now
        fleet = self.provider.fleet()
        index = self.provider.offers.index()
        cooldowns = _cooldowns_of(self.provider, at)
        # Private machine kinds with every machine in use are no target this tick; one that frees
        # is, so a node that burst to a public cloud comes back (a price move onto the private pool).
        cooldowns.update({oid: math.inf for oid in self.provider.full_offers(fleet)})
        with self._lock:
            last = dict(self.last_moved)
            memories = dict(self._memories)
        moves: list[Move] = []
        notes: list[str] = []
        directives: dict[str, Directive | None] = {}
        for name, pool in self.pools.items():
            members = [
                n for n in fleet if n.pool == name and n.state in (NodeState.PENDING, NodeState.RUNNING)
            ]
            self._note_home(name, members)
            budget = self.migrations[name].budget.allowed(len(members))
            config = replace(self.pool_config(name), max_moves=budget)
            answer = plan(
                fleet,
                index,
                {name: pool},
                now=at,
                config=config,
                last_moved=last,
                memories=memories,
                cooldowns=cooldowns,
            )
            moves.extend(answer.moves)
            notes.extend(answer.notes)
            with self._lock:
                if name in self._jobs and name in answer.memories:
                    self._memories[name] = answer.memories[name]
            directives[name] = self._directive(name, pool, members, index, config, cooldowns, at)
            if budget > 0 and not answer.moves and not any(b.contains(at) for b in config.blackouts):
                regrouped = regroup(pool, fleet, index, now=at, config=config, cooldowns=cooldowns)
                if regrouped:
                    moves.append(regrouped[0])
        try:
            LaunchDirectives(self.provider.settings.state_dir).publish(
                self.cluster_name, directives, keep_reasons=(SLO_DIRECTIVE_PREFIX,))
        except OSError:
            logger.warning("cannot write launch directives", exc_info=True)
        with self._lock:
            self.last_plan = MovePlan(moves=tuple(moves), notes=tuple(notes), memories=dict(self._memories))
        for note in notes:
            logger.debug("stay: %s", note)
        done: list[MoveResult] = []
        ray_view = nodes_or_none(self._io["nodes"], self.gcs_address) if moves else {}
        if ray_view is None:
            # No GCS, no move: the head is down or being torn down (`ray down` stops Ray on the head
            # before it lists and ends the nodes), and a replacement launched now could outlive it.
            logger.warning("the GCS at %s cannot be read; no move this tick", self.gcs_address)
            moves, ray_view = [], {}
        moving: set[InstanceId] = set()
        for move in moves:
            if move.instance_id in moving:
                continue  # already taken along with its gang
            group = gang_moves(move, fleet, self.pools[move.pool], self.pool_config(move.pool))
            # An idle member runs no part of the job: Ray's idle scale-down ends it, no replacement.
            group = tuple(
                m
                for m in group
                if m is move
                or not ((n := ray_view.get(str(m.instance_id))) is not None and n.alive and not n.busy)
            )
            moving.update(m.instance_id for m in group)
            full = self._no_room(move.pool, fleet, len(group)) or self._over_budget(group, fleet)
            if full:
                logger.warning("move of %s skipped: %s", [str(m.instance_id) for m in group], full)
                continue
            if not self._claim(group):
                held = [str(m.instance_id) for m in group]
                logger.info("move of %s skipped: a notice's move holds it", held)
                continue
            for m in group:
                logger.info("move %s: %s", m.instance_id, " | ".join(m.reasons))
            try:
                done.extend(self._move_group(move.pool, group))
            finally:
                self._release(group)
        if self.ledger is not None:
            self.attribute(fleet, at)
            self.figures = self.metrics.publish(self.ledger, now=time.time())
        if self.budgets.all():
            # Alerts and the gauge even while nothing launches (the provider checks at launches).
            self.budget_guard.statuses(self.budgets.all(), self.provider.fleet(), time.time())
        if self.idle is not None:
            # After the moves: a node just moved is read afresh next tick.
            try:
                self.idle.tick(at)
            except Exception:
                logger.exception("idle governance failed this tick")
        if self.predictive is not None and not self._predictive_thread:
            self.predictive_step(fleet, at)
        return done

    def predictive_step(self, fleet: Sequence[FleetNode] | None = None, now: float | None = None) -> None:
        """One pass of the predictive step (``predictive_guard``): node starts observed, capacity
        asked for, replica floors published. ``tick`` calls it after the moves; under ``run`` it has a
        thread of its own (``watch_predictive``), so a move that blocks a tick for minutes (a
        replacement coming up, a drain deadline) or a tick that fails does not delay a peak's nodes.
        Never raises."""
        if self.predictive is None:
            return
        try:
            at = self._io["clock"]() if now is None else now
            nodes = self.provider.fleet() if fleet is None else fleet
            self.predictive.observe(nodes, nodes_or_none(self._io["nodes"], self.gcs_address), at)
            self.predictive.tick(at)
        except Exception:
            logger.exception("predictive capacity failed this tick")

    def watch_predictive(self, stop: threading.Event, every_s: float) -> None:
        """``predictive_step`` every ``every_s`` until ``stop`` is set (``run``'s thread)."""
        while True:
            self.predictive_step()
            if stop.wait(every_s):
                return

    def _claim(self, group: Sequence[Move]) -> bool:
        """Hold the group's nodes for one move (False, holding nothing, if one is held already)."""
        ids = {m.instance_id for m in group}
        with self._lock:
            if ids & self._claimed:
                return False
            self._claimed |= ids
            return True

    def _release(self, group: Sequence[Move]) -> None:
        with self._lock:
            self._claimed -= {m.instance_id for m in group}

    def _record_notices(self, noticed: Mapping[InstanceId, float], at: float) -> None:
        """Each notice once in the ledger's preemptions: launch placement weighs them
        (``provider.placement_risk``) even though this controller, not the cloud, ends the node."""
        if self.ledger is None:
            return
        for instance, deadline in noticed.items():
            if instance in self._notices_recorded:
                continue
            try:
                self.ledger.record_preemption(str(instance), at, deadline)
            except Exception:
                logger.warning("ledger record of the notice to %s failed", instance, exc_info=True)
                continue
            self._notices_recorded.add(instance)

    def answer_notices(self, now: float | None = None, *, block: bool = False) -> list[Move]:
        """Answer interruption notices before the node is gone (``policy.notices``).

        Reads which Ray nodes are draining (``draining``) and which are busy (``nodes``); every busy
        draining node of a movable pool whose ``migration.replace_on_notice`` is not "off", and that
        no move of this controller holds (its own moves drain too), gets a replacement where the
        autoscaler would place it, through ``move_group`` with the notice's deadline as
        ``not_after``: once the replacement is up, "restart" brings the drain forward to
        ``drain_deadline_seconds`` from then, so the job restarts onto it while the noticed node
        still runs; "launch" keeps the notice's deadline (Serve moves replicas off a draining node
        by itself once there is room). The noticed nodes of one pool
        move as one group, in a thread of their own (``block``: in this one, for tests); returns
        the moves started. A pool at ``max_workers`` is skipped with one line (the autoscaler
        replaces the node once it is gone). Never raises for a GCS or cloud failure.
        """
        at = self._io["clock"]() if now is None else now
        pools = {k: v for k, v in self.pools.items() if self.migrations[k].replace_on_notice != "off"}
        if not pools:
            return []
        try:
            draining = dict(self._draining(self.gcs_address))
        except Exception:
            logger.debug("draining nodes cannot be read", exc_info=True)
            return []
        if not draining:
            return []
        ray_view = nodes_or_none(self._io["nodes"], self.gcs_address) or {}
        with self._lock:
            claimed = self._claimed | self._answered
        noticed: dict[InstanceId, float] = {}
        for instance, node in ray_view.items():
            deadline = draining.get(node.node_id)
            if deadline is None or not node.alive or not node.busy or InstanceId(instance) in claimed:
                continue
            # A drain without a deadline is nobody's notice (an operator's drain): no replacement.
            if deadline > 0:
                noticed[InstanceId(instance)] = deadline
        if not noticed:
            return []
        # This package's own drains (a move, an idle downsize, an SLO scale-down) are no notice.
        by_node = {ray_view[str(i)].node_id: i for i in noticed}
        try:
            messages = self._drain_messages(self.gcs_address, sorted(by_node))
        except Exception:
            logger.debug("drain messages cannot be read", exc_info=True)
            return []
        for node_id, message in messages.items():
            if message.startswith(OWN_DRAIN_PREFIX):
                noticed.pop(by_node[node_id], None)
        if not noticed:
            return []
        self._record_notices(noticed, at)
        fleet = self.provider.fleet()
        cooldowns = _cooldowns_of(self.provider, at)
        cooldowns.update({oid: math.inf for oid in self.provider.full_offers(fleet)})
        index = self.provider.offers.index()
        moves, notes = notice_moves(pools, fleet, noticed, index, now=at, cooldowns=cooldowns)
        for note in notes:
            logger.info("notice: %s", note)
        started: list[Move] = []
        by_pool: dict[str, list[Move]] = {}
        for move in moves:
            by_pool.setdefault(move.pool, []).append(move)
        for pool, group in by_pool.items():
            full = self._no_room(pool, fleet, len(group))
            if full:
                held = [str(m.instance_id) for m in group]
                logger.warning("no replacement on notice for %s: %s", held, full)
                continue
            if not self._claim(group):
                continue
            with self._lock:
                self._answered.update(m.instance_id for m in group)
            for m in group:
                logger.info("notice: move %s: %s", m.instance_id, " | ".join(m.reasons))
            not_after = min(noticed[m.instance_id] for m in group)
            work = threading.Thread(
                target=self._notice_move, args=(pool, tuple(group), not_after), name=f"notice-{pool}",
                daemon=True,
            )
            started.extend(group)
            if block:
                work.run()
            else:
                work.start()
                with self._lock:
                    self._notice_threads = [t for t in self._notice_threads if t.is_alive()] + [work]
        return started

    def _notice_move(self, pool: str, group: tuple[Move, ...], not_after: float) -> None:
        """Move ``group`` on its notice; a replacement refused for capacity is planned again (see
        ``NOTICE_ATTEMPTS``), on on-demand only from ``NOTICE_ON_DEMAND_FROM`` on, while the notice
        runs: during a spot shortage the replacement lands on on-demand before the node is gone,
        not after, when the autoscaler would start over from the cheapest spot offer."""
        # "launch": the notice's own deadline stands (the drain is not brought forward).
        forward = self.migrations[pool].replace_on_notice == "restart"
        moves = group
        try:
            for attempt in range(1, NOTICE_ATTEMPTS + 1):
                results = self._move_group(pool, moves, not_after=not_after,
                                           drain_deadline_s=None if forward else math.inf)
                if attempt == NOTICE_ATTEMPTS or all(r.status != "launch-failed" for r in results):
                    return
                moves = self._replan_notice(pool, moves, not_after,
                                            on_demand_only=attempt + 1 >= NOTICE_ON_DEMAND_FROM)
                if not moves:
                    return
                logger.info("notice: replacement refused; attempt %d of %d: %s", attempt + 1, NOTICE_ATTEMPTS,
                            ", ".join(f"{m.instance_id} -> {m.to_offer.offer_id}" for m in moves))
        except Exception:
            logger.exception("move on notice of %s failed", [str(m.instance_id) for m in group])
        finally:
            self._release(group)

    def _replan_notice(self, pool: str, group: Sequence[Move], not_after: float, *,
                       on_demand_only: bool) -> tuple[Move, ...]:
        """``group``'s replacements planned again now (the refused offers are cooling down), on
        on-demand only when asked and the pool allows it; empty once the notice has run out."""
        at = self._io["clock"]()
        if at >= not_after:
            return ()
        spec = self.pools[pool]
        if on_demand_only and CapacityType.ON_DEMAND in spec.capacity_types:
            spec = replace(spec, capacity_types=(CapacityType.ON_DEMAND,))
        fleet = self.provider.fleet()
        cooldowns = _cooldowns_of(self.provider, at)
        cooldowns.update({oid: math.inf for oid in self.provider.full_offers(fleet)})
        noticed = {m.instance_id: not_after for m in group}
        moves, notes = notice_moves({pool: spec}, fleet, noticed, self.provider.offers.index(), now=at,
                                    cooldowns=cooldowns)
        for note in notes:
            logger.info("notice: %s", note)
        return tuple(moves)

    def _move_group(
        self, pool: str, group: Sequence[Move], *, drain_deadline_s: float | None = None, **extra: Any
    ) -> list[MoveResult]:
        """``move_group`` of ``group`` with ``pool``'s ``migration:`` section (its drain deadline
        unless ``drain_deadline_s`` is given) and this controller's ledger and I/O; every result is
        remembered (``_moved``). ``extra``: ``records`` (a resumed move), ``not_after`` (a notice's)."""
        migration = self.migrations[pool]
        results = move_group(
            self.provider,
            group,
            spec=self.specs.get(pool, NodeTypeSpec()),
            gcs_address=self.gcs_address,
            drain_deadline_s=migration.drain_deadline_s if drain_deadline_s is None else drain_deadline_s,
            up_timeout_s=migration.up_timeout_s,
            ledger=self.ledger,
            **extra,
            **self._io,
        )
        for m, result in zip(group, results, strict=True):
            self._moved(m, result)
        return results

    def _over_budget(self, group: Sequence[Move], fleet: Sequence[FleetNode]) -> str:
        """Why a move group to dearer offers would break a budget (the provider does not check the
        replacements a move launches), or "" when it would not."""
        dearer = [m for m in group if m.to_offer.price_per_hour > m.from_offer.price_per_hour]
        budgets = self.budgets.for_pool(group[0].pool) if dearer else ()
        if not budgets:
            return ""
        now = time.time()
        for m in dearer:
            verdict = self.budget_guard.verdict(budgets, fleet, now, replacing=str(m.instance_id))
            limit = verdict.max_price_per_hour
            if not verdict.allowed or (limit is not None and m.to_offer.price_per_hour > limit):
                price = m.to_offer.price_per_hour
                return "; ".join(verdict.reasons) or f"the budget leaves less than ${price:.4f}/h"
        return ""

    def attribute(self, fleet: Sequence[FleetNode], at: float) -> dict[str, str]:
        """Write to the ledger which workload each node ran (``attribution``), at most every
        ``attribute_every_s``; a node keeps its last attribution once its actors are gone. Returns
        what changed. A state API that cannot be read is logged and skipped, never raised."""
        if self.ledger is None or at - self._attributed_at < self.attribute_every_s:
            return {}
        self._attributed_at = at
        read = self._actors or (live_actors if _ray_connected() else None)
        if read is None:
            return {}
        try:
            actors = read(self.gcs_address)
            ray_nodes_now = self._io["nodes"](self.gcs_address)
        except Exception as exc:  # noqa: BLE001 - state API or GCS down: attribution waits a pass
            logger.warning("workload attribution skipped: %s", exc)
            return {}
        mine = {n.instance_id for n in fleet}
        node_instance = {rn.node_id: iid for iid, rn in ray_nodes_now.items() if iid in mine}
        labels = attribute(
            actors,
            node_instance,
            pool_of_instance={n.instance_id: n.pool for n in fleet},
            train_run_of_pool=self.train_runs,
        )
        changed = {iid: label for iid, label in labels.items() if self._attributed.get(iid) != label}
        for iid, label in changed.items():
            try:
                self.ledger.set_job(iid, label)
            except (LedgerError, OSError, sqlite3.Error) as exc:  # unknown instance, locked file: later
                logger.warning("could not record the workload of %s: %s", iid, exc)
                continue
            self._attributed[iid] = label
        self._attribute_teams(actors, node_instance)
        return changed

    def _attribute_teams(self, actors: Sequence[ActorSeen], node_instance: Mapping[str, str]) -> None:
        """Charge nodes to the teams their jobs' metadata names (``attribution.teams``); a node whose
        jobs name none keeps its pool's team. A state API that cannot be read is logged and skipped."""
        read = self._job_teams or (live_job_teams if self._actors is None else None)
        if read is None or self.ledger is None:
            return
        try:
            team_of_job = read(self.gcs_address)
        except Exception as exc:  # noqa: BLE001 - state API down: the pools' teams stand
            logger.warning("job teams skipped: %s", exc)
            return
        for iid, team in teams(actors, node_instance, team_of_job).items():
            if self._teamed.get(iid) == team:
                continue
            try:
                self.ledger.set_team(iid, team)
            except (LedgerError, OSError, sqlite3.Error) as exc:
                logger.warning("could not record the team of %s: %s", iid, exc)
                continue
            self._teamed[iid] = team

    def _directive(
        self,
        name: str,
        pool: PoolSpec,
        members: Sequence[FleetNode],
        index: Any,
        config: RebalanceConfig,
        cooldowns: Mapping[OfferId, float],
        at: float,
    ) -> Directive | None:
        """What the pool's deadline policy would start if its node were lost now (``directives``);
        None for a pool without a deadline job. The lost node's offer counts as unavailable and
        its job as rolled back to the checkpoint, as after a real preemption; that question does not
        advance the policy's memory. A pool with no node at all is really idle: the answer is the
        policy's decision for this tick, and its memory is kept, as the simulator keeps it."""
        job = config.jobs.get(name)
        if job is None:
            return None
        running = [n for n in members if n.state is NodeState.RUNNING]
        lost = str(running[0].offer.offer_id) if running else ""
        cooled = dict(cooldowns)
        with self._lock:
            memory = self._memories.get(name, Memory())
        when, after = at, replace(job, work_done_hours=job.checkpointed_hours)
        if running:
            # The node can be lost at any moment of the coming tick, and the autoscaler relaunches at
            # once, before the next tick: answer as the policy will see it then, as the simulator
            # does — one tick later, the job rolled back to the checkpoint it has by then.
            cooled[OfferId(lost)] = at + 3600.0
            view = node_view(running[0], pool, index, job, config, now=at, cooldowns=cooldowns)
            kept = checkpoint_after_tick(view, keep=True)
            when = at + config.tick_s
            after = replace(job, work_done_hours=kept, checkpointed_hours=kept)
        step = idle_step(pool, index, after, config, memory, now=when, cooldowns=cooled, preempted_offer=lost)
        if not members:  # nothing running nor starting: the pool is idle
            with self._lock:
                if name in self._jobs:
                    self._memories[name] = step.memory
        # Should the chosen zone be gone too when the node is lost, what next: ask again with each
        # chosen offer taken away, until the policy answers something other than spot.
        chain: list[str] = []
        otherwise = ""
        answer = step
        while answer.choice.kind is Kind.SPOT and len(chain) < DIRECTIVE_CHAIN:
            chain.append(answer.choice.zone)
            cooled[OfferId(answer.choice.zone)] = at + 3600.0
            answer = idle_step(
                pool, index, after, config, memory, now=when, cooldowns=cooled, preempted_offer=lost
            )
        if answer.choice.kind is not Kind.SPOT:
            otherwise = answer.choice.kind.value
        kind = step.choice.kind.value
        return Directive(
            kind=kind,
            offer_id=chain[0] if chain else "",
            at=at,
            reason=step.reasons[0] if step.reasons else "",
            then=tuple(chain[1:]),
            otherwise=otherwise if chain else "",
        )

    def _no_room(self, pool: str, fleet: Sequence[FleetNode], extra: int) -> str:
        """Why ``extra`` replacements of ``pool`` cannot run beside the nodes they replace ("" when
        they can): the node type's or the cluster's ``max_workers`` would be exceeded."""
        live = [
            n for n in fleet if n.state in (NodeState.PENDING, NodeState.RUNNING) and n.pool in self.pools
        ]
        mine = sum(1 for n in live if n.pool == pool)
        cap = self._max_workers.get(pool)
        if cap is not None and mine + extra > cap:
            return (
                f"make-before-break needs {extra} node(s) beside the {mine} of {pool!r}, beyond its "
                f"max_workers {cap}; raise available_node_types.{pool}.max_workers to at least {mine + extra}"
            )
        workers = len(live)
        if self._cluster_max is not None and workers + extra > self._cluster_max:
            return (
                f"make-before-break needs {extra} node(s) beside the cluster's {workers} workers, beyond "
                f"max_workers {self._cluster_max}; raise max_workers to at least {workers + extra}"
            )
        return ""

    def _moved(self, move: Move, result: MoveResult) -> None:
        with self._lock:
            stamp = self._io["clock"]()
            self.last_moved[move.instance_id] = stamp
            if result.new_instance_id:
                self.last_moved[InstanceId(result.new_instance_id)] = stamp
            self.results.append(result)

    def resume(self) -> list[MoveResult]:
        """Finish or undo the moves a previous controller left open in the journal (``moves``).

        Called once before the first tick. The members of one gang move (saved with one start time
        and pool) are resumed together, so the gang still drains once. A move whose pool is no longer
        a pool of the YAML, or whose target offer is no longer sold, is left as it is, with a
        warning naming it.
        """
        if self.ledger is None or not hasattr(self.ledger, "journal"):
            return []
        groups: dict[tuple[str, float], list[tuple[Move, MoveRecord]]] = {}
        fleet = {n.instance_id: n for n in self.provider.fleet()}
        for record in self.ledger.journal(open_only=True):
            offer = self.provider.offers.get(record.target_offer)
            if record.pool not in self.migrations or offer is None:
                logger.warning(
                    "open move %s (%s) left as it is: pool %r or offer %s is gone from the cluster",
                    record.move_id,
                    record.state.value,
                    record.pool,
                    record.target_offer,
                )
                continue
            old = fleet.get(InstanceId(record.old_instance))
            move = Move(
                instance_id=InstanceId(record.old_instance),
                pool=record.pool,
                from_offer=offer if old is None else old.offer,
                to_offer=offer,
                saving_per_hour=0.0,
                move_cost_usd=0.0,
                reasons=(record.reason,),
            )
            groups.setdefault((record.pool, record.started_at), []).append((move, record))
        done: list[MoveResult] = []
        for (pool, _), members in groups.items():
            logger.info(
                "resuming %s", ", ".join(f"move {r.move_id} from {r.state.value}" for _, r in members)
            )
            done.extend(self._move_group(pool, [m for m, _ in members], records=[r for _, r in members]))
        return done

    def run(
        self,
        *,
        interval_s: float | None = None,
        stop: threading.Event | None = None,
        max_ticks: int | None = None,
        before_tick: Callable[[], object] | None = None,
    ) -> None:
        """Finish open moves (``resume``), then tick every ``interval_s`` (default: the one given
        at construction) until ``stop`` is set (or ``max_ticks`` ticks), calling ``before_tick`` (a
        ``JobFeed``) first each time. Without ``max_ticks`` the predictive step runs in a thread of
        its own at the same interval (``watch_predictive``), not inside the ticks. A failing tick is
        logged and the loop goes on: the controller must outlive a cloud's or the GCS's hiccup."""
        stop = stop or threading.Event()
        every = self.interval_s if interval_s is None else interval_s
        done = threading.Event()
        predictive: threading.Thread | None = None
        if self.predictive is not None and max_ticks is None:
            # Its own thread, from the start: a move being resumed or blocking a tick must not hold
            # back capacity asked for ahead of demand.
            predictive = threading.Thread(target=self.watch_predictive, args=(done, every),
                                          name="predictive", daemon=True)
            self._predictive_thread = True
            predictive.start()
        try:
            self.resume()
        except Exception:
            logger.exception("resuming open moves failed")
        watcher = threading.Thread(target=self.watch_notices, args=(done,), name="notices", daemon=True)
        watcher.start()
        ticks = 0
        try:
            while not stop.is_set():
                try:
                    if before_tick is not None:
                        before_tick()
                    self.tick()
                except Exception:
                    logger.exception("controller tick failed")
                ticks += 1
                if max_ticks is not None and ticks >= max_ticks:
                    return
                stop.wait(every)
        finally:
            done.set()
            watcher.join(timeout=5)
            if predictive is not None:
                predictive.join(timeout=5)
                self._predictive_thread = False

    def watch_notices(self, stop: threading.Event, poll_s: float | None = None) -> None:
        """``answer_notices`` every ``poll_s`` (default ``notice_poll_s``) until ``stop`` is set: a
        notice can be 30 s long, so it is answered between ticks. Never raises."""
        every = self.notice_poll_s if poll_s is None else poll_s
        while not stop.wait(every):
            try:
                self.answer_notices()
            except Exception:
                logger.exception("answering notices failed")


class JobFeed:
    """Feeds deadline jobs' progress into ``controller.set_job``: call it before each tick.

    Jobs come from two places: the ones given here (``--deadline-job``, which win for their pool),
    and the ones the Train scripts registered themselves (``run_config(..., deadline=...)``), found
    under ``roots`` by ``train.jobs.discover_jobs`` at most every ``discover_every_s``. A job that is
    no longer found (deleted, past its deadline) is dropped and its pool cleared.

    Each call reads every job's run directory (``RunWatch``) and declares its pool's
    ``JobProgress``, or clears it with None while no estimate exists (too few checkpoints, or
    storage that cannot be read: the pool then moves on price alone). Each reason for a missing
    estimate, each discovery problem and each skipped checkpoint is logged once. Never raises.
    """

    def __init__(
        self,
        controller: Controller,
        jobs: Sequence[DeadlineJob] = (),
        *,
        roots: Sequence[str] = (),
        discover_every_s: float = 30.0,
        discover: Callable[..., Any] | None = None,
    ) -> None:
        self.controller = controller
        self.watches: dict[str, RunWatch] = {job.pool: RunWatch(job) for job in jobs}
        self._fixed = frozenset(self.watches)
        self.roots = tuple(roots)
        self.discover_every_s = discover_every_s
        self._discover = discover
        self._discovered_at = -math.inf
        self._said: set[str] = set()

    def _refresh(self, now: float) -> None:
        if not self.roots or now - self._discovered_at < self.discover_every_s:
            return
        self._discovered_at = now
        if self._discover is None:
            from ray_multicloud.train.jobs import discover_jobs

            self._discover = discover_jobs
        found = self._discover(self.roots, cluster_name=self.controller.cluster_name, now=now)
        for line in found.problems:
            # Problem lines carry the cause's text, which varies; say each path's problem once.
            self._once(logging.WARNING, f"deadline jobs: {line}", key=line.split(": ", 1)[0])
        seen: set[str] = set()
        for job in found.jobs:
            if job.pool in self._fixed:
                continue
            if job.pool not in self.controller.pools:
                self._once(
                    logging.WARNING,
                    f"deadline job {job.name or job.run_dir} names pool {job.pool!r}, which is not movable "
                    f"(movable: {sorted(self.controller.pools)}); ignored",
                )
                continue
            seen.add(job.pool)
            current = self.watches.get(job.pool)
            if current is None or current.job != job:
                logger.info(
                    "deadline job of %s found: %s, %d steps, due %s",
                    job.pool,
                    job.run_dir,
                    job.total_steps,
                    datetime.fromtimestamp(job.deadline_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                self.watches[job.pool] = RunWatch(job)
            if job.name:
                self.controller.train_runs[job.pool] = job.name
        for pool in [p for p in self.watches if p not in self._fixed and p not in seen]:
            logger.info("deadline job of %s is gone; the pool moves on price alone", pool)
            del self.watches[pool]
            self.controller.train_runs.pop(pool, None)
            self.controller.set_job(pool, None)

    def __call__(self, now: float | None = None) -> None:
        at = time.time() if now is None else now
        try:
            self._refresh(at)
        except Exception:  # discovery never raises by contract; a bug here must not stop the loop
            logger.exception("deadline job discovery failed")
        for pool, watch in list(self.watches.items()):
            try:
                reading = watch.read(at)
            except Exception as exc:  # noqa: BLE001 - read never raises by contract; a bug must not stop the loop
                line = (f"deadline job of {pool}: cannot read its checkpoints ({type(exc).__name__}: {exc}); "
                        "the pool moves on price alone")
                self._once(logging.ERROR, line, key=f"read:{pool}")
                self.controller.set_job(pool, None)
                continue
            self.controller.set_job(pool, reading.progress)
            if reading.checkpoint_gb is not None:
                self.controller.set_checkpoint_size(pool, reading.checkpoint_gb)
            for line in reading.skipped:
                self._once(logging.WARNING, f"deadline job of {pool}: skipped checkpoint {line}")
            if reading.progress is None:
                self._once(logging.INFO, f"deadline job of {pool}: {reading.note}")
            else:
                p = reading.progress
                logger.debug(
                    "deadline job of %s: %.2f h of %.2f h checkpointed, %.2f h done, checkpoint every %.2f h",
                    pool,
                    p.checkpointed_hours,
                    p.work_total_hours,
                    p.work_done_hours,
                    p.checkpoint_hours,
                )

    def _once(self, level: int, line: str, *, key: str | None = None) -> None:
        said = key if key is not None else line
        if said not in self._said:
            self._said.add(said)
            logger.log(level, line)


def _ray_connected() -> bool:
    try:
        import ray

        return bool(ray.is_initialized())
    except ImportError:
        return False


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _open_ledger(path: str | None) -> Any:
    if not path:
        return None
    try:
        from ray_multicloud.ledger import Ledger
    except ImportError:
        return None
    try:
        return Ledger(path)
    except Exception:
        logger.exception("cannot open ledger %s; moves will not be recorded", path)
        return None


# --------------------------------------------------------------------------- command line


def _parse_blackouts(texts: Sequence[str]) -> tuple[Window | DailyWindow, ...]:
    """``22-02`` (daily UTC hours) or ``1764300000:1764303600`` (POSIX start:end)."""
    out: list[Window | DailyWindow] = []
    for text in texts:
        if ":" in text:
            a, b = text.split(":", 1)
            out.append(Window(float(a), float(b)))
        else:
            a, b = text.split("-", 1)
            out.append(DailyWindow(float(a), float(b)))
    return tuple(out)


DEADLINE_JOB_FORM = (
    "POOL=RUN_DIR,TOTAL_STEPS,DEADLINE with DEADLINE an ISO-8601 UTC time (2026-11-29T06:00:00Z) or +HOURS"
)


def parse_deadline_job(text: str, *, now: float) -> DeadlineJob:
    """One ``--deadline-job`` value, ``POOL=RUN_DIR,TOTAL_STEPS,DEADLINE``; ``+HOURS`` counts from ``now``.

    ``RUN_DIR`` may contain commas (the last two fields are split off). Raises ``ValueError`` whose
    message names the flag, what is wrong and the expected form: no pool, a remote (``s3://``) run
    directory, a step count that is not a whole number > 0, a deadline without a time zone, one
    that cannot be read, or one not after ``now``.
    """

    def bad(why: str) -> ValueError:
        return ValueError(f"--deadline-job {text!r}: {why}; expected {DEADLINE_JOB_FORM}")

    pool, sep, rest = text.partition("=")
    if not sep or not pool.strip():
        raise bad("no POOL= in front")
    parts = rest.rsplit(",", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise bad("need three comma-separated fields after POOL=")
    run_dir, steps_text, deadline_text = (p.strip() for p in parts)
    if "://" in run_dir:
        raise bad(f"RUN_DIR {run_dir!r} is remote; give a local path (or a mount of the bucket)")
    try:
        total_steps = int(steps_text)
    except ValueError:
        raise bad(f"TOTAL_STEPS {steps_text!r} is not a whole number") from None
    if total_steps <= 0:
        raise bad(f"TOTAL_STEPS must be > 0, got {total_steps}")
    if deadline_text.startswith("+"):
        try:
            hours = float(deadline_text[1:])
        except ValueError:
            raise bad(f"DEADLINE {deadline_text!r} is not +HOURS") from None
        if not hours > 0 or hours == float("inf"):
            raise bad(f"DEADLINE {deadline_text!r} must be a positive, finite number of hours")
        deadline_at = now + hours * 3600.0
    else:
        try:
            when = datetime.fromisoformat(deadline_text)
        except ValueError:
            raise bad(f"DEADLINE {deadline_text!r} is not an ISO-8601 time") from None
        if when.tzinfo is None:
            raise bad(f"DEADLINE {deadline_text!r} has no time zone (end it with Z for UTC)")
        deadline_at = when.timestamp()
        if deadline_at <= now:
            raise bad(f"DEADLINE {deadline_text!r} is not in the future")
    return DeadlineJob(pool=pool.strip(), run_dir=run_dir, total_steps=total_steps, deadline_at=deadline_at)


_OVERRIDES = {
    # flag dest -> RebalanceConfig field; each flag overrides every pool's migration section
    "horizon_hours": "horizon_hours",
    "checkpoint_s": "checkpoint_s",
    "restart_s": "restart_s",
    "state_gb": "state_gb",
    "min_relative_saving": "min_relative_saving",
    "min_interval_s": "min_interval_s",
}


def _number(*, positive: bool, upper: float | None = None) -> Callable[[str], float]:
    """An argparse ``type``: a finite number, above zero (``positive``) or at least zero, at most
    ``upper``; anything else is a usage error that argparse prints with the flag's name."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
        if value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(
                f"{text!r}: must be {'above zero' if positive else 'zero or more'}")
        if upper is not None and value > upper:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at most {upper:g}")
        return value
    return parse


def _cooldowns_of(provider: Any, now: float) -> dict[OfferId, float]:
    """The offers placement skips now: the provider's own cooldowns and the ones the autoscaler's
    provider shared (``MultiCloudNodeProvider.cooldowns``), so a move does not try again an offer the
    autoscaler has just found without capacity (during a spot shortage, every tick)."""
    shared = getattr(provider, "cooldowns", None)
    if callable(shared):
        return dict(shared(now))
    return dict(getattr(provider, "_cooldowns", {}))


def hold_lock(path: Path) -> Any:
    """An exclusive lock on ``path`` for this process's lifetime (the open file), or None when another
    process holds it. The kernel drops it when the process ends, however it ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 -- held open for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ray_multicloud.controller",
        description=__doc__.split("\n")[0],
        epilog="Settings come from each pool's migration: section of the cluster YAML; the flags below "
        "override them for every pool.",
    )
    parser.add_argument("--config", required=True, help="the cluster YAML `ray up` used")
    parser.add_argument("--interval", type=_number(positive=True), default=10.0, help="seconds between ticks")
    parser.add_argument("--once", action="store_true", help="one tick, then exit")
    parser.add_argument("--horizon-hours", type=_number(positive=True), default=None)
    parser.add_argument("--checkpoint-s", type=_number(positive=False), default=None)
    parser.add_argument("--restart-s", type=_number(positive=False), default=None)
    parser.add_argument("--state-gb", type=_number(positive=False), default=None)
    parser.add_argument("--min-relative-saving", type=_number(positive=False, upper=1.0),
                        default=None)
    parser.add_argument("--min-interval-s", type=_number(positive=False), default=None,
                        help="hysteresis (seconds)")
    parser.add_argument(
        "--blackout",
        action="append",
        default=[],
        help="no moves inside: 22-02 (daily, UTC hours) or START:END (POSIX seconds); replaces the YAML's",
    )
    parser.add_argument("--drain-deadline-s", type=_number(positive=True), default=None)
    parser.add_argument(
        "--deadline-job",
        action="append",
        default=[],
        metavar="POOL=RUN_DIR,TOTAL_STEPS,DEADLINE",
        help="the pool's Train job must finish by DEADLINE (2026-11-29T06:00:00Z or +HOURS); its progress "
        "is read from the checkpoints in RUN_DIR (<storage_path>/<run name>) before each tick (repeatable)",
    )
    parser.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="OFFER_ID=TRACE",
        help="replay a spot-price trace onto the local price board (repeatable)",
    )
    parser.add_argument("--speedup", type=_number(positive=True), default=60.0,
                        help="trace seconds per wall second")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    parser.add_argument(
        "--no-metrics", action="store_true", help="do not connect to Ray to export cost/savings gauges"
    )
    parser.add_argument(
        "--lock",
        default=None,
        help="one controller per cluster: a second one that finds this file locked exits "
        "(default <state_dir>/controller-<cluster>.lock)",
    )
    args = parser.parse_args(argv)
    try:
        jobs = [parse_deadline_job(text, now=time.time()) for text in args.deadline_job]
    except ValueError as exc:
        parser.error(str(exc))
    pools = [job.pool for job in jobs]
    twice = sorted({p for p in pools if pools.count(p) > 1})
    if twice:
        parser.error(f"--deadline-job: one job per pool; {twice} given more than once")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

    overrides: dict[str, Any] = {
        field_name: getattr(args, dest)
        for dest, field_name in _OVERRIDES.items()
        if getattr(args, dest) is not None
    }
    if args.blackout:
        try:
            overrides["blackouts"] = _parse_blackouts(args.blackout)
        except ValueError as exc:
            parser.error(f"--blackout: {exc}")
    try:
        cluster = load_cluster_yaml(args.config)
        controller = Controller(
            cluster,
            overrides=overrides,
            drain_deadline_s=args.drain_deadline_s,
            interval_s=args.interval,
        )
    except (MultiCloudError, ValueError) as exc:
        parser.error(str(exc))
    unknown = sorted(p for p in pools if p not in controller.pools)
    if unknown:
        parser.error(
            f"--deadline-job: {unknown} is not a movable pool of {args.config} "
            f"(its pools: {sorted(controller.pools)})"
        )
    lock_path = (
        Path(args.lock)
        if args.lock
        else (controller.provider.settings.state_dir / f"controller-{controller.cluster_name}.lock")
    )
    lock = hold_lock(lock_path)
    if lock is None:
        logger.info("another controller of %s holds %s; exiting", controller.cluster_name, lock_path)
        return 0
    if not controller.pools and controller.idle is None and controller.predictive is None:
        logger.info(
            "no pool of %s is movable (migration.enabled: false everywhere) and it has no idle: or "
            "predictive: section; exiting",
            controller.cluster_name,
        )
        return 0
    logger.info(
        "controller of %s: pools %s, tick every %.0f s",
        controller.cluster_name,
        "; ".join(f"{p}: {controller.migrations[p].describe()}" for p in controller.pools),
        args.interval,
    )
    if controller.predictive is not None:
        logger.info("predictive capacity: %s", "; ".join(
            f"{name}: {p.describe()}" for name, p in sorted(controller.predictive.pools.items())))
    if not args.no_metrics or controller.predictive is not None:
        # The gauges need a connection; so does the predictive step (Ray's request_resources is a
        # driver call), even with --no-metrics.
        import ray

        ray.init(controller.gcs_address, log_to_driver=False)
    if controller.idle is not None and is_hibernated(controller.provider.settings):
        # A controller starts with `ray up`: `ray up` again on a hibernated cluster brings it back.
        if args.no_metrics:
            logger.warning("the cluster is hibernated; `ray-multicloud restore CONFIG` brings it back "
                           "(this controller runs with --no-metrics and does not connect to Ray)")
        else:
            try:
                done = restore(controller.provider.settings)
                logger.info("the cluster was hibernated; restored: %s", done)
            except Exception:
                logger.exception("restore at start failed; run `ray-multicloud restore CONFIG`")
    stop = threading.Event()
    replayer = None
    if args.replay:
        from ray_multicloud.pricing.replay import Replayer, load_trace

        traces = {}
        for item in args.replay:
            offer_id, _, path = item.partition("=")
            traces[offer_id] = load_trace(path)
        replayer = Replayer(
            controller.provider.settings.state_dir,
            traces,
            speedup=args.speedup,
            base_prices={o: _base_price(controller, o) for o in traces},
        )
        threading.Thread(target=replayer.run, kwargs={"stop": stop}, daemon=True, name="price-replay").start()
    roots: tuple[str, ...] = ()
    try:
        from ray_multicloud.train.jobs import storage_roots

        roots = storage_roots(controller.provider.settings)
    except MultiCloudError as exc:
        logger.warning("deadline jobs will not be discovered: %s", exc)
    if roots:
        logger.info("deadline jobs: looking under %s", ", ".join(roots))
    try:
        controller.run(
            stop=stop,
            max_ticks=1 if args.once else None,
            before_tick=JobFeed(controller, jobs, roots=roots),
        )
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        lock.close()
    return 0


def _base_price(controller: Controller, offer_id: str) -> float | None:
    offer = controller.provider.offers.get(offer_id)
    return None if offer is None else float(offer.price_per_hour)


if __name__ == "__main__":
    raise SystemExit(main())
