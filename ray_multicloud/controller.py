"""The controller on the head: watch prices, ask ``policy.rebalance``, apply its moves through Ray drains.

``python -m ray_multicloud.controller --config cluster.yaml`` runs it; tests and benchmarks import
``Controller`` and ``move_node``.

**One tick** (``Controller.tick``): read the fleet and the current offers from the
``MultiCloudNodeProvider`` (built from the cluster YAML's provider section, so it sees exactly what the
autoscaler sees), call ``policy.rebalance.plan``, and apply each move with ``move_node``, one at a
time. The controller remembers when it moved each node (``last_moved``, for the policy's hysteresis)
and which nodes it is moving.

**One move** (``move_node``), make-before-break, so a move costs one restore and not a stall:

1. launch the replacement on ``move.to_offer`` (``provider.launch_on_offer``, tagged like any
   autoscaler-launched worker of the pool, so autoscaler v2 adopts it);
2. wait until its Ray node is alive in the cluster (the GCS lists a node whose cloud instance id is
   the replacement's) — on failure or timeout the replacement is terminated and the old node is
   left alone (``MoveResult.status`` says why);
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
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ray_multicloud.drain import PREEMPTION, drain_node
from ray_multicloud.errors import MultiCloudError
from ray_multicloud.metrics import CostFigures, CostMetrics
from ray_multicloud.policy.rebalance import (
    DailyWindow,
    JobProgress,
    Plan,
    RebalanceConfig,
    Window,
    plan,
)
from ray_multicloud.settings import load_cluster_yaml
from ray_multicloud.train.progress import DeadlineJob, RunWatch
from ray_multicloud.types import InstanceId, Move, PoolSpec

logger = logging.getLogger(__name__)
_DEFAULTS = RebalanceConfig()


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
) -> MoveResult:
    """Replace ``move.instance_id`` by a node on ``move.to_offer``, make-before-break (module docstring).

    Generic: works for any pool and any workload that reacts to a PREEMPTION drain (Ray Train, Ray
    Serve, plain tasks and actors). ``provider`` is a ``MultiCloudNodeProvider`` (``launch_on_offer``,
    ``terminate_node``); ``spec`` is the pool's YAML ``resources``/``labels`` the replacement must
    advertise. ``nodes``, ``drain``, ``clock`` and ``sleep`` are the GCS reads, the GCS drain call and
    the time source (fakes in tests). Blocks for at most ``up_timeout_s + drain_deadline_s`` plus the
    terminations.

    Guarantees: the old node is drained and terminated only after the replacement's Ray node is
    alive; if the replacement cannot be launched or does not come up, it is terminated and the old
    node keeps running untouched. Never raises for a cloud or GCS failure: the result says what
    happened. ``ledger`` (a ``ray_multicloud.ledger.Ledger``), when given, gets ``record_move``.
    """
    from ray_multicloud.errors import LaunchFailed

    start = clock()
    old = str(move.instance_id)

    def since() -> float:
        return clock() - start

    try:
        inst = provider.launch_on_offer(
            move.pool, move.to_offer, resources=dict(spec.resources), labels=dict(spec.labels)
        )
    except (LaunchFailed, MultiCloudError) as exc:
        logger.warning("move of %s: replacement on %s failed: %s", old, move.to_offer.offer_id, exc)
        return MoveResult(move, "launch-failed", started_at=start, detail=str(exc))
    new = str(inst.instance_id)
    logger.info("move of %s: replacement %s launched on %s", old, new, move.to_offer.offer_id)

    up_by = start + up_timeout_s
    up_s: float | None = None
    while clock() < up_by:
        try:
            node = nodes(gcs_address).get(new)
        except Exception:  # GCS hiccup: keep polling until the timeout
            logger.debug("GCS read failed", exc_info=True)
            node = None
        if node is not None and node.status in ("RUNNING", "IDLE"):
            up_s = since()
            break
        sleep(poll_s)
    if up_s is None:
        logger.warning(
            "move of %s: replacement %s not up within %.0f s; terminating it", old, new, up_timeout_s
        )
        provider.terminate_node(new)
        return MoveResult(
            move, "not-up", new, start, detail=f"replacement not up within {up_timeout_s:.0f} s"
        )

    try:
        current = nodes(gcs_address).get(old)
    except Exception:
        logger.warning("GCS read failed; terminating the old node without a drain", exc_info=True)
        current = None
    deadline = clock() + drain_deadline_s
    if current is not None and current.alive:
        try:
            accepted, why = drain(
                gcs_address,
                current.node_id,
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
            return MoveResult(move, "drain-rejected", new, start, up_s=up_s, detail=why)
        # Drained: gone from the GCS, or nothing of it in use any more; else wait for the deadline.
        by_deadline = True
        while clock() < deadline:
            sleep(poll_s)
            try:
                now_node = nodes(gcs_address).get(old)
            except Exception:
                logger.debug("GCS read failed", exc_info=True)
                continue
            if now_node is None or not now_node.alive or not now_node.busy:
                by_deadline = False
                break
    else:
        by_deadline = False
    drained_s = since()
    provider.terminate_node(old)
    done_s = since()
    if ledger is not None:
        try:
            ledger.record_move(old, new, "; ".join(move.reasons) or "price move", start)
        except Exception:  # the move happened whatever the ledger says
            logger.exception("ledger record_move failed")
    logger.info(
        "move of %s -> %s done: up %.1f s, drained %.1f s%s, terminated %.1f s",
        old,
        new,
        up_s,
        drained_s,
        " (deadline)" if by_deadline else "",
        done_s,
    )
    return MoveResult(
        move,
        "moved",
        new,
        start,
        up_s=up_s,
        drained_s=drained_s,
        done_s=done_s,
        drained_by_deadline=by_deadline,
    )


# --------------------------------------------------------------------------- the loop


class Controller:
    """The rebalancing loop over one cluster. ``tick()`` is one pass; ``run()`` loops until stopped.

    Thread-safe for one ticking thread plus readers of ``results``.
    """

    def __init__(
        self,
        cluster_config: Mapping[str, Any],
        *,
        config: RebalanceConfig,
        drain_deadline_s: float = 30.0,
        up_timeout_s: float = 120.0,
        provider: Any = None,
    ) -> None:
        from ray_multicloud.provider import MultiCloudNodeProvider, validate_cluster_config

        self.cluster_config = dict(cluster_config)
        self.cluster_name = str(cluster_config.get("cluster_name") or "default")
        provider_config = dict(cluster_config["provider"])
        self.provider = provider or MultiCloudNodeProvider(provider_config, self.cluster_name)
        self.gcs_address: str = self.provider.settings.gcs_address
        targets = validate_cluster_config(cluster_config)
        self.pools: dict[str, PoolSpec] = {k: v for k, v in targets.items() if isinstance(v, PoolSpec)}
        types = cluster_config.get("available_node_types") or {}
        self.specs: dict[str, NodeTypeSpec] = {
            name: NodeTypeSpec(
                resources={str(k): float(v) for k, v in (types[name].get("resources") or {}).items()},
                labels={str(k): str(v) for k, v in (types[name].get("labels") or {}).items()},
            )
            for name in self.pools
        }
        self.config = config
        self.drain_deadline_s = drain_deadline_s
        self.up_timeout_s = up_timeout_s
        self.last_moved: dict[InstanceId, float] = {}
        self.results: list[MoveResult] = []
        self.last_plan: Plan | None = None
        self._lock = threading.Lock()
        self.ledger = _open_ledger(self.provider.settings.ledger_path)
        # Cost per hour and savings as Ray metrics (Prometheus, the dashboard), from the ledger; the
        # gauges exist only while this process is connected to Ray (``main`` connects).
        self.metrics = CostMetrics(self.cluster_name)
        self.figures: CostFigures | None = None

    def set_job(self, pool: str, progress: JobProgress | None) -> None:
        """Declare (or update, or clear with None) the deadline job running on ``pool``.

        The policy then also makes deadline moves for that pool (``policy.rebalance``, "Deadline
        moves"). Whoever tracks the job's progress (its reports) calls this before each tick.
        """
        with self._lock:
            jobs = dict(self.config.jobs)
            if progress is None:
                jobs.pop(pool, None)
            else:
                jobs[pool] = progress
            self.config = replace(self.config, jobs=jobs)

    def tick(self, now: float | None = None) -> list[MoveResult]:
        """Plan once and apply the planned moves, one after the other. Returns their results."""
        at = time.time() if now is None else now
        fleet = self.provider.fleet()
        index = self.provider.offers.index()
        with self._lock:
            last = dict(self.last_moved)
            config = self.config
        answer = plan(fleet, index, self.pools, now=at, config=config, last_moved=last)
        self.last_plan = answer
        for note in answer.notes:
            logger.debug("stay: %s", note)
        done: list[MoveResult] = []
        for move in answer.moves:
            logger.info("move %s: %s", move.instance_id, " | ".join(move.reasons))
            result = move_node(
                self.provider,
                move,
                spec=self.specs.get(move.pool, NodeTypeSpec()),
                gcs_address=self.gcs_address,
                drain_deadline_s=self.drain_deadline_s,
                up_timeout_s=self.up_timeout_s,
                ledger=self.ledger,
            )
            with self._lock:
                stamp = time.time()
                self.last_moved[move.instance_id] = stamp
                if result.new_instance_id:
                    self.last_moved[InstanceId(result.new_instance_id)] = stamp
                self.results.append(result)
            done.append(result)
        if self.ledger is not None:
            self.figures = self.metrics.publish(self.ledger, now=time.time())
        return done

    def run(
        self,
        *,
        interval_s: float = 10.0,
        stop: threading.Event | None = None,
        max_ticks: int | None = None,
        before_tick: Callable[[], object] | None = None,
    ) -> None:
        """Tick every ``interval_s`` until ``stop`` is set (or ``max_ticks`` ticks), calling
        ``before_tick`` (a ``JobFeed``) first each time. A failing tick is logged and the loop goes
        on: the controller must outlive a cloud's or the GCS's hiccup."""
        stop = stop or threading.Event()
        ticks = 0
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
            stop.wait(interval_s)


class JobFeed:
    """Feeds deadline jobs' progress into ``controller.set_job``: call it before each tick.

    Each call reads every job's run directory (``RunWatch``) and declares its pool's
    ``JobProgress``, or clears it with None while no estimate exists. Each reason for a missing
    estimate, and each skipped checkpoint, is logged once. Never raises for a bad run directory.
    """

    def __init__(self, controller: Controller, jobs: Sequence[DeadlineJob]) -> None:
        self.controller = controller
        self.watches = [RunWatch(job) for job in jobs]
        self._said: set[str] = set()

    def __call__(self, now: float | None = None) -> None:
        at = time.time() if now is None else now
        for watch in self.watches:
            pool = watch.job.pool
            reading = watch.read(at)
            self.controller.set_job(pool, reading.progress)
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

    def _once(self, level: int, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            logger.log(level, line)


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ray_multicloud.controller", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, help="the cluster YAML `ray up` used")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between ticks")
    parser.add_argument("--once", action="store_true", help="one tick, then exit")
    parser.add_argument("--horizon-hours", type=float, default=_DEFAULTS.horizon_hours)
    parser.add_argument("--checkpoint-s", type=float, default=_DEFAULTS.checkpoint_s)
    parser.add_argument("--restart-s", type=float, default=_DEFAULTS.restart_s)
    parser.add_argument("--state-gb", type=float, default=_DEFAULTS.state_gb)
    parser.add_argument("--min-relative-saving", type=float, default=_DEFAULTS.min_relative_saving)
    parser.add_argument("--min-interval-s", type=float, default=_DEFAULTS.min_interval_s)
    parser.add_argument(
        "--blackout",
        action="append",
        default=[],
        help="no moves inside: 22-02 (daily, UTC hours) or START:END (POSIX seconds)",
    )
    parser.add_argument("--drain-deadline-s", type=float, default=30.0)
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
    parser.add_argument("--speedup", type=float, default=60.0, help="trace seconds per wall second")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--no-metrics", action="store_true", help="do not connect to Ray to export cost/savings gauges"
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

    cluster = load_cluster_yaml(args.config)
    config = RebalanceConfig(
        horizon_hours=args.horizon_hours,
        checkpoint_s=args.checkpoint_s,
        restart_s=args.restart_s,
        state_gb=args.state_gb,
        min_relative_saving=args.min_relative_saving,
        min_interval_s=args.min_interval_s,
        blackouts=_parse_blackouts(args.blackout),
    )
    controller = Controller(cluster, config=config, drain_deadline_s=args.drain_deadline_s)
    unknown = sorted(p for p in pools if p not in controller.pools)
    if unknown:
        parser.error(
            f"--deadline-job: {unknown} is not a movable pool of {args.config} "
            f"(its pools: {sorted(controller.pools)})"
        )
    if not args.no_metrics:
        import ray

        ray.init(controller.gcs_address, log_to_driver=False)
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
    try:
        controller.run(
            interval_s=args.interval,
            stop=stop,
            max_ticks=1 if args.once else None,
            before_tick=JobFeed(controller, jobs) if jobs else None,
        )
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
    return 0


def _base_price(controller: Controller, offer_id: str) -> float | None:
    offer = controller.provider.offers.get(offer_id)
    return None if offer is None else float(offer.price_per_hour)


if __name__ == "__main__":
    raise SystemExit(main())
