"""A deterministic Ray Train job that survives a spot preemption and a price-driven move, on the local cloud.

Used by ``tests/test_train_e2e.py`` (correctness) and ``benchmarks/bench_train_migration.py``
(timings); runnable as ``python -m ray_multicloud.scenarios.train_migration --workdir /tmp/x``.

The job (``train_loop``) is an ordinary Ray Train function: a small MLP, Adam, a fixed seed, data
drawn from a generator seeded by (seed, step, rank), DDP over gloo, a checkpoint every epoch written
with ``write_checkpoint`` (sha256 manifest) and restored through ``resolve`` (verified, falling back
to the previous complete one), and, on ``ray.train.get_preemption_info()``, a checkpoint as late as
the notice safely allows (``ray_multicloud.train.notice.NoticeSaver``), after which it steps no more.
Its final weights depend only on the seed, so ``reference_state`` (the same steps in-process on CPU,
gradients averaged as DDP averages them) must match them however often the job was restarted.

The scenario, as an event sequence:
``azure eastus2 T4 spot x2 (train) -> one node preempted (notice 5 s) -> autoscaler relaunches
through the policy -> train resumes from the last complete checkpoint -> gcp T4 spot drops to 20%
of the price -> controller: replacement up on gcp, old node drained (PREEMPTION), terminated ->
train resumes on gcp -> done``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import re
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray_multicloud.train.notice import Action, Notice, NoticeSaver, ray_train_margin_s

logger = logging.getLogger(__name__)

D_IN = 16
HIDDEN = 32


@dataclass(frozen=True, slots=True)
class JobSpec:
    """The deterministic job: ``total_steps`` steps, a checkpoint every ``steps_per_epoch``;
    ``notice_margin_s``: the slack the notice's save keeps before the deadline (``NoticeSaver``;
    None: ``ray_train_margin_s()``, Ray Train's poll interval + 0.5 s).

    ``hold_at_step`` and ``hold_file`` pace the job from outside, for a harness that needs the job
    still running when something slow has happened (a move whose duration the machine's load
    decides): before each step from ``hold_at_step`` on, the loop waits while ``hold_file``
    exists, until a notice arrives (the step then runs and the notice is handled as after any
    step). A held job is a long job that does no work meanwhile; the steps and so the final
    weights do not change (``reference_state`` ignores both)."""

    seed: int = 1234
    total_steps: int = 120
    steps_per_epoch: int = 5
    batch: int = 32
    lr: float = 1e-2
    step_sleep_s: float = 0.25
    world: int = 2
    notice_margin_s: float | None = None
    hold_at_step: int | None = None
    hold_file: str = ""


def _model(seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D_IN, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1))


def _batch(spec: JobSpec, step: int, rank: int) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(spec.seed * 1_000_003 + step * 64 + rank)
    x = torch.randn(spec.batch, D_IN, generator=g)
    w = torch.linspace(-1.0, 1.0, D_IN).unsqueeze(1)
    y = torch.sin(x @ w) + 0.01 * torch.randn(spec.batch, 1, generator=g)
    return x, y


def reference_state(spec: JobSpec) -> dict[str, Any]:
    """The final model state of an uninterrupted run, computed in-process without Ray.

    Each step: every rank's gradient on its own batch, averaged as DDP does (each divided by the world
    size, then summed), then one Adam step.
    """
    import torch

    model = _model(spec.seed)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    for step in range(spec.total_steps):
        grads: list[list[Any]] = []
        for rank in range(spec.world):
            model.zero_grad()
            x, y = _batch(spec, step, rank)
            torch.nn.functional.mse_loss(model(x), y).backward()
            grads.append([p.grad.detach().clone() / spec.world for p in model.parameters()])
        for i, p in enumerate(model.parameters()):
            total = grads[0][i]
            for other in grads[1:]:
                total = total + other[i]
            p.grad = total
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _log(path: str, event: Mapping[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps({**event, "t": time.time()}) + "\n")


def _wait_for_teardown(notice: Notice, *, poll_s: float = 0.2, extra_s: float = 120.0) -> None:
    """Block after the notice's save until Ray Train tears this worker down (it does so at the
    notice's deadline). Raises ``RuntimeError`` if that has not happened ``extra_s`` after the
    deadline (Ray Train V2's own 120 s when the notice gave none): Ray Train then restarts the group
    from the saved checkpoint as from any failure."""
    deadline = notice.deadline_s if notice.deadline_s is not None else time.time() + 120.0
    while time.time() < deadline + extra_s:
        time.sleep(poll_s)
    raise RuntimeError(f"worker not torn down {extra_s:.0f} s after the notice's deadline")


def _committed(notice: Notice) -> dict[str, Any]:
    """Wait (rank 0, after the notice's save) until Ray Train's controller has committed the latest
    report's checkpoint, at most until a little after the deadline: ``{"committed": bool,
    "commit_s": seconds waited}``. Only measures: the decision does not depend on it."""
    import ray.train
    from ray.train import CheckpointConsistencyMode

    began = time.time()
    deadline = notice.deadline_s if notice.deadline_s is not None else began + 120.0
    try:
        ray.train.get_all_reported_checkpoints(
            consistency_mode=CheckpointConsistencyMode.COMMITTED, timeout_s=max(0.1, deadline + 2.0 - began)
        )
        committed = True
    except Exception:  # a timeout, or the controller already tearing the group down
        logger.warning("notice save not committed", exc_info=True)
        committed = False
    return {"committed": committed, "commit_s": time.time() - began}


def train_loop(config: dict[str, Any]) -> None:
    """The Ray Train worker function (see the module docstring). ``config``: JobSpec fields + ``log``.

    After every step each rank asks ``ray.train.get_preemption_info()`` (rank 0's answer,
    broadcast). Under a notice, rank 0's ``NoticeSaver`` decides and broadcasts the action: keep
    stepping while a step and a save still end ``notice_margin_s`` before the deadline, then save,
    then stop stepping and wait for Ray Train to tear the group down at the deadline. Rank 0 logs
    every step (with its start ``t0``), every checkpoint (with its duration), the notice and the stop.
    """
    import ray.train
    import torch
    from ray.train.collective import broadcast_from_rank_zero
    from torch.nn.parallel import DistributedDataParallel

    from ray_multicloud.train.checkpoint import resolve, write_checkpoint

    spec = JobSpec(**{k: v for k, v in config.items() if k in JobSpec.__dataclass_fields__})
    log = str(config["log"])
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    model = _model(spec.seed)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    start = 0
    found = resolve(ray.train.get_checkpoint())
    attempt = uuid.uuid4().hex[:8]
    if found is not None:
        state = torch.load(found.directory / "state.pt", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        start = int(state["step"])
    _log(
        log,
        {
            "ev": "start",
            "rank": rank,
            "attempt": attempt,
            "step": start,
            "instance": os.environ.get("RAY_CLOUD_INSTANCE_ID", ""),
            "source": found.source if found else None,
            "skipped": list(found.skipped) if found else [],
            "manifest_files": sorted(found.manifest.files) if found else [],
        },
    )
    ddp = DistributedDataParallel(model)
    margin_s = spec.notice_margin_s if spec.notice_margin_s is not None else ray_train_margin_s()
    saver = NoticeSaver(margin_s=margin_s)
    seen = False

    def save(step: int, why: str) -> None:
        metrics = {"step": step, "why": why}
        began = time.time()
        with saver.saving():
            if rank != 0:
                ray.train.report(metrics)
                return
            with tempfile.TemporaryDirectory() as tmp:
                state = {"model": model.state_dict(), "optim": opt.state_dict(), "step": step}
                path = write_checkpoint(
                    tmp,
                    lambda d: torch.save(state, d / "state.pt"),
                    name="ckpt",
                    metadata={"step": step, "why": why},
                )
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(path)))
        _log(
            log,
            {
                "ev": "ckpt",
                "rank": rank,
                "attempt": attempt,
                "step": step,
                "why": why,
                "save_s": time.time() - began,
            },
        )

    for step in range(start, spec.total_steps):
        if spec.hold_at_step is not None and step >= spec.hold_at_step and spec.hold_file:
            # Collective calls only (rank 0 decides), so every rank waits the same number of rounds.
            while broadcast_from_rank_zero(os.path.exists(spec.hold_file) if rank == 0 else None):
                if ray.train.get_preemption_info() is not None:
                    break
                time.sleep(1.0)
        began = time.time()
        x, y = _batch(spec, step, rank)
        opt.zero_grad()
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        opt.step()
        time.sleep(spec.step_sleep_s)
        saver.step_done()
        done = step + 1
        if rank == 0:
            _log(log, {"ev": "step", "rank": rank, "attempt": attempt, "step": done, "t0": began})
        if done % spec.steps_per_epoch == 0 or done == spec.total_steps:
            save(done, "epoch")
        if done == spec.total_steps:
            break
        notice = Notice.from_preemption_info(ray.train.get_preemption_info())
        if notice is None:
            continue
        if rank == 0 and not seen:
            seen = True
            _log(
                log,
                {
                    "ev": "notice",
                    "rank": rank,
                    "attempt": attempt,
                    "step": done,
                    "deadline": notice.deadline_s,
                    "step_s": saver.step_s_estimate,
                    "save_s": saver.save_s_estimate,
                    "margin_s": margin_s,
                },
            )
        action = Action(broadcast_from_rank_zero(saver.decide(notice).value if rank == 0 else None))
        if action is Action.SAVE:
            save(done, "preemption")
        if action is not Action.STEP:
            if rank == 0:
                _log(
                    log, {"ev": "stop", "rank": rank, "attempt": attempt, "step": done, **_committed(notice)}
                )
            _wait_for_teardown(notice)


# --------------------------------------------------------------------------- the scenario


@dataclass(frozen=True, slots=True)
class Restart:
    """One interruption as the progress log shows it (times in POSIX seconds, logged by rank 0).

    ``start_t``: the new attempt's start; ``restored``: the step it restored from; ``reached``: the
    highest step reached before it started; ``first_step_t``: the end of its first step;
    ``lost_s``: the summed durations of the interrupted attempt's steps past ``restored``;
    ``last_useful_t``: the end of step ``restored`` before the restart (None when it was never
    stepped: step 0); ``deadline``: the notice's deadline the interrupted attempt saw (None when it
    saw none); ``save_s``: the duration of its notice's checkpoint (None when it took none).
    """

    start_t: float
    restored: int
    reached: int
    first_step_t: float
    lost_s: float
    last_useful_t: float | None
    deadline: float | None
    save_s: float | None


@dataclass(frozen=True, slots=True)
class Interruption:
    """What one preemption or move cost the job (seconds; None when the log cannot tell).

    ``lost_steps``: the highest step reached before the restart minus the step restored from;
    ``lost_s``: the wall-clock time spent computing those steps (each step's start to its end), the
    training whose results were thrown away; ``pause_s``: the end of the last useful step (the one
    restored from) -> the end of the first new step, which splits into ``unused_s`` (last useful
    step -> the node gone at the notice's deadline: paid time that did no lasting work, what the
    simulator's ``notice_loss_minutes`` charges) and ``after_gone_s`` (the node gone -> the first
    new step: Ray Train's restart, the simulator's restart overhead); ``save_s``: the notice's
    checkpoint's duration (None when the step's periodic checkpoint was the notice's).

    ``after_gone_s`` in parts, from Ray Train's controller log (None when it cannot be read):
    ``detected_s`` the node gone -> Ray Train decides to restart; ``group_start_s`` its new worker
    group's start, of which ``placement_group_s`` (waiting for nodes: a new one after a
    preemption), ``worker_processes_s`` (the workers' processes and actors) and ``train_context_s``
    (torch's process group, the train context); ``loop_start_s`` the rest: the training function's
    restore and its first step.
    """

    lost_steps: int
    lost_s: float
    pause_s: float | None
    unused_s: float | None
    after_gone_s: float | None
    save_s: float | None
    detected_s: float | None = None
    group_start_s: float | None = None
    placement_group_s: float | None = None
    worker_processes_s: float | None = None
    train_context_s: float | None = None
    loop_start_s: float | None = None

    @classmethod
    def of(
        cls, restart: Restart, gone: float | None, ray_restart: tuple[float, dict[str, float]] | None = None
    ) -> Interruption:
        """The figures of ``restart``; ``gone``: when the node was gone (its notice's deadline);
        ``ray_restart``: Ray Train's restart for it (``ray_train_restarts``), if known."""
        useful = restart.last_useful_t
        after_gone = None if gone is None else restart.first_step_t - gone
        detected = group = None
        phases: dict[str, float] = {}
        if ray_restart is not None and gone is not None:
            detected, phases = ray_restart[0] - gone, ray_restart[1]
            group = phases.get("total")
        return cls(
            lost_steps=restart.reached - restart.restored,
            lost_s=restart.lost_s,
            pause_s=None if useful is None else restart.first_step_t - useful,
            unused_s=None if useful is None or gone is None else gone - useful,
            after_gone_s=after_gone,
            save_s=restart.save_s,
            detected_s=detected,
            group_start_s=group,
            placement_group_s=phases.get("placement_group"),
            worker_processes_s=phases.get("worker_processes"),
            train_context_s=phases.get("train_context"),
            loop_start_s=None
            if after_gone is None or detected is None or group is None
            else after_gone - detected - group,
        )


@dataclass
class Report:
    """What one scenario run measured, one entry per cycle, and what the checks need.

    ``preemptions`` and ``moves``: what each cost the job (:class:`Interruption`). ``recovery_s``:
    preemption notice -> first training step after the restore. ``move_total_s``: start of the move
    (replacement launch) -> first step after the restore; ``move_up_s``: replacement's Ray node
    alive; ``move_drained_s``: old node drained (or its deadline).
    """

    recovery_s: list[float] = field(default_factory=list)
    preemptions: list[Interruption] = field(default_factory=list)
    move_total_s: list[float] = field(default_factory=list)
    move_up_s: list[float] = field(default_factory=list)
    move_drained_s: list[float] = field(default_factory=list)
    moves: list[Interruption] = field(default_factory=list)
    move_status: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    max_abs_diff: float | None = None
    offers_used: list[str] = field(default_factory=list)
    instances_used: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    attempts: int = 0
    events: list[str] = field(default_factory=list)
    ledger_moves: list[tuple[str, str]] = field(default_factory=list)
    attempt_zones: list[list[str]] = field(default_factory=list)  # per attempt, the zones its ranks ran in

    @property
    def preempt_lost_steps(self) -> list[int]:
        return [i.lost_steps for i in self.preemptions]

    @property
    def move_lost_steps(self) -> list[int]:
        return [i.lost_steps for i in self.moves]


def read_log(path: Path) -> list[dict[str, Any]]:
    """The job's progress events (one JSON object a line); a line still being written is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return out


def _max_step(events: list[dict[str, Any]]) -> int:
    return max((e["step"] for e in events if e["ev"] == "step"), default=0)


def _wait(pred: Any, timeout_s: float, what: str, interval_s: float = 0.5, alive: Any = lambda: True) -> Any:
    """Poll ``pred`` until it answers something true; ``TimeoutError`` after ``timeout_s``, and
    ``RuntimeError`` as soon as ``alive()`` (the training) is over without it."""
    deadline = time.monotonic() + timeout_s
    while True:
        running = alive()
        got = pred()
        if got:
            return got
        if not running:
            raise RuntimeError(f"scenario: training ended before {what}; give the job more steps")
        if time.monotonic() > deadline:
            raise TimeoutError(f"scenario: {what} not within {timeout_s:.0f} s")
        time.sleep(interval_s)


def _overrides(drain_deadline_s: float) -> dict[str, Any]:
    """What this harness changes in ``cluster_configs/local-multicloud.yaml``. Its controller is the
    YAML's: the t4_spot pool's ``migration:`` section below is what ``Controller`` reads (no setting
    in code), only quicker to move than the shipped one so a run fits in minutes."""
    return {
        # A gang move (``colocate: zone``) moves every node of the pool at once, replacements first:
        # 2 training nodes, sometimes a third the autoscaler launched during a preemption and has
        # not yet removed as idle, and as many replacements. Below that cap the autoscaler
        # terminates the replacements (MAX_NUM_NODE_PER_TYPE) and the move fails as not-up.
        "max_workers": 6,
        "idle_timeout_minutes": 0.5,
        # This harness makes its moves itself (``Controller.tick`` here), so `ray up` starts none.
        "provider": {"start_controller": False},
        "available_node_types": {
            "t4_spot": {
                "max_workers": 6,
                "node_config": {
                    "migration": {
                        "horizon_hours": 4,
                        "checkpoint_seconds": 5,
                        "restart_seconds": 20,
                        "launch_seconds": 5,
                        "checkpoint_gb": 0.01,
                        "min_saving": 0.2,
                        "hysteresis_seconds": 5,
                        "max_disrupted": 1,
                        "drain_deadline_seconds": drain_deadline_s,
                        "up_timeout_seconds": 90,
                    }
                },
            },
            "a100_ondemand": {"max_workers": 0},
        },
    }


def _restart_after(events: list[dict[str, Any]], at: float) -> Restart | None:
    """The first attempt started after ``at`` and what the interruption before it cost, once that
    attempt has logged its first step (None until then). The interrupted attempt is the last one
    rank 0 started before it."""
    starts = [e for e in events if e["ev"] == "start" and e["rank"] == 0]
    new = next((e for e in starts if e["t"] > at), None)
    if new is None:
        return None
    steps = [e for e in events if e["ev"] == "step"]
    first = next((e for e in steps if e["attempt"] == new["attempt"]), None)
    if first is None:
        return None
    restored = int(new["step"])
    before = [e for e in steps if e["t"] < new["t"]]
    reached = max((e["step"] for e in before), default=0)
    old = max((e for e in starts if e["t"] < new["t"]), key=lambda e: e["t"], default=None)
    old_attempt = None if old is None else old["attempt"]
    of_old = [e for e in events if e.get("attempt") == old_attempt and e["t"] < new["t"]]
    lost_s = sum(e["t"] - e.get("t0", e["t"]) for e in of_old if e["ev"] == "step" and e["step"] > restored)
    useful = [e["t"] for e in before if e["step"] == restored]
    notices = [e for e in of_old if e["ev"] == "notice"]
    saves = [e for e in of_old if e["ev"] == "ckpt" and e["why"] == "preemption"]
    return Restart(
        start_t=float(new["t"]),
        restored=restored,
        reached=int(reached),
        first_step_t=float(first["t"]),
        lost_s=float(lost_s),
        last_useful_t=max(useful) if useful else None,
        deadline=notices[-1]["deadline"] if notices else None,
        save_s=float(saves[-1]["save_s"]) if saves else None,
    )


# Ray Train's worker-group start, as its controller logs it (``[Worker Group Initialization] <what>
# in <s>s``): the phases this harness reports, by the start of the logged text.
_PHASES = (
    ("Placement group ready", "placement_group"),
    ("worker actors created", "worker_processes"),
    ("Train context initialized", "train_context"),
    ("after_worker_group_start callbacks", "callbacks"),
    ("Train function launched", "launch"),
    ("Worker group startup completed", "total"),
)
_PHASE_RE = re.compile(r"\[Worker Group Initialization\] (?:\d+ )?(.*?) in ([0-9.]+)s")


def _session_dir() -> str | None:
    """This driver's Ray session directory (where the local nodes' logs are), None if unknown."""
    try:
        import ray._private.worker

        return str(ray._private.worker.global_worker.node.get_session_dir_path())
    except (ImportError, AttributeError, RuntimeError):  # a private API: the breakdown is best effort
        return None


def ray_train_restarts(session_dir: str | Path) -> list[tuple[float, dict[str, float]]]:
    """Each restart of a Ray Train run, from its controller's log in ``session_dir``: the time it
    decided to restart (its ``[FailurePolicy] RETRY`` line, POSIX s) and the seconds of each phase
    of the new worker group's start (``_PHASES`` names). Best effort: [] when the log is not there;
    Ray's log format is not an API."""
    rows: dict[tuple[str, str], str] = {}
    for path in sorted(Path(session_dir).glob("logs/train/ray-train-sys-controller-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
                rows[(entry["asctime"], entry["message"][:120])] = entry["message"]
            except (ValueError, KeyError, TypeError):
                continue
    out: list[tuple[float, dict[str, float]]] = []
    for (asctime, _), message in sorted(rows.items()):
        when = datetime.datetime.strptime(asctime, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if "[FailurePolicy] RETRY" in message:
            out.append((when, {}))
            continue
        match = _PHASE_RE.search(message)
        if match is None or not out:
            continue  # the first start is no restart
        for prefix, name in _PHASES:
            if match.group(1).startswith(prefix):
                out[-1][1][name] = float(match.group(2))
    return out


def _cheaper_target(controller: Any) -> tuple[Any, float]:
    """An offer of the T4 pool that no node uses, another cloud first, and the price that makes it a move:
    a fifth of the cheapest price the pool's nodes pay now."""
    fleet = [n for n in controller.provider.fleet() if n.pool == "t4_spot"]
    used_offers = {n.offer.offer_id for n in fleet}
    used_clouds = {n.offer.cloud for n in fleet}
    candidates = [
        o
        for o in controller.provider.offers.index().offers_for("T4")
        if o.capacity.value == "spot"
        and o.accelerator_count == 1
        and o.cloud in ("aws", "gcp", "azure")
        and o.offer_id not in used_offers
    ]
    candidates.sort(key=lambda o: (o.cloud in used_clouds, o.price_per_hour, o.offer_id))
    cheapest_now = min(n.offer.price_per_hour for n in fleet)
    return candidates[0], round(cheapest_now * 0.2, 8)


def run_scenario(
    workdir: str | Path,
    *,
    spec: JobSpec | None = None,
    cycles: int = 1,
    notice_s: float = 5.0,
    drain_deadline_s: float = 6.0,
    preempt_at_step: int = 10,
    move_after_steps: int = 10,
    timeout_s: float = 300.0,
    train_poll_s: float = 0.5,
) -> Report:
    """Bring up a local cluster, run the job through ``cycles`` x (one preemption, then one price move),
    check the final weights against ``reference_state``, tear down.

    ``train_poll_s``: Ray Train's controller polls its workers this often
    (``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``; Ray's default is 2 s): a shorter poll collects the
    notice's save sooner (so the loop's margin is shorter) and restarts sooner after the deadline.

    ``spec`` defaults to a job long enough for the cycles. Raises ``TimeoutError`` if a stage does not
    happen within ``timeout_s`` of the job's start; the cluster is always torn down.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    import torch
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ray_multicloud.controller import Controller
    from ray_multicloud.pricing.board import PriceBoard
    from ray_multicloud.scenarios.local_cluster import LocalCluster
    from ray_multicloud.train.checkpoint import verify_checkpoint
    from ray_multicloud.train.runconfig import run_config

    # Each cycle takes the preemption at +10 steps, ~4 steps a second of notice (a step is ~0.27 s),
    # the move at +10 and up to ~250 while the replacement comes up and the drain runs on a loaded
    # machine; the job must outlast the last restart.
    spec = spec or JobSpec(total_steps=60 + cycles * (270 + 4 * math.ceil(notice_s)))
    report = Report()
    began = time.time()
    work = Path(workdir)
    log = work / "progress.jsonl"
    with LocalCluster(workdir=work, overrides=_overrides(drain_deadline_s)) as cluster:
        ray.init(
            cluster.address,
            log_to_driver=False,
            runtime_env={
                "env_vars": {
                    "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1",
                    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": f"{train_poll_s:g}",
                }
            },
        )
        try:
            rc = run_config(
                cluster.config, name=f"scenario-{uuid.uuid4().hex[:6]}", max_failures=3, num_to_keep=None
            )
            trainer = TorchTrainer(
                train_loop,
                train_loop_config={
                    **{k: getattr(spec, k) for k in JobSpec.__dataclass_fields__},
                    "log": str(log),
                },
                # One worker per T4 node: the pool's nodes advertise CPU 1 and accelerator_type:T4 1 (their
                # GPU is logical here, and torch is a CPU build, so the workers ask for the T4 resource).
                scaling_config=ScalingConfig(
                    num_workers=spec.world,
                    use_gpu=False,
                    resources_per_worker={"CPU": 1, "accelerator_type:T4": 1},
                ),
                torch_config=TorchConfig(backend="gloo"),
                run_config=rc,
            )
            outcome: dict[str, Any] = {}

            def fit() -> None:
                try:
                    outcome["result"] = trainer.fit()
                except Exception as exc:  # re-raised in the caller's thread below
                    logger.warning("fit failed", exc_info=True)
                    outcome["error"] = exc

            fitter = threading.Thread(target=fit, name="fit", daemon=True)
            fitter.start()
            end_by = time.monotonic() + timeout_s

            def left() -> float:
                return max(1.0, end_by - time.monotonic())

            controller = Controller(cluster.config)  # settings: the pool's migration section
            # The controller `ray up` starts answers notices between its ticks (``Controller.run``);
            # this harness ticks by hand, so it runs that part itself.
            notices_done = threading.Event()
            notices = threading.Thread(
                target=controller.watch_notices, args=(notices_done,), kwargs={"poll_s": 0.5}, daemon=True
            )
            notices.start()
            resumed = 0
            measured: list[tuple[str, Restart, float | None]] = []
            for cycle in range(cycles):
                # 1. Preempt the node of training worker rank 1 (a notice, then death at its deadline).
                _wait(
                    lambda r=resumed: _max_step(read_log(log)) >= r + preempt_at_step,
                    left(),
                    "progress",
                    alive=fitter.is_alive,
                )
                starts = [e for e in read_log(log) if e["ev"] == "start" and e["rank"] == 1]
                victim_id = starts[-1]["instance"]
                victim = next(i for i in cluster.workers() if i.instance_id == victim_id)
                preempted_at = time.time()
                gone = cluster.clouds()[victim.cloud].preempt(victim.instance_id, notice_s=notice_s)
                report.events.append(f"cycle {cycle}: preempted {victim_id} ({victim.tags.get('rmc-offer')})")
                restart = _wait(
                    lambda t=preempted_at: _restart_after(read_log(log), t),
                    left(),
                    "recovery after the preemption",
                    alive=fitter.is_alive,
                )
                report.recovery_s.append(restart.first_step_t - preempted_at)
                measured.append(("preempt", restart, gone))
                resumed = restart.restored

                # 2. Another offer gets much cheaper; the controller moves one node there.
                _wait(
                    lambda r=resumed: _max_step(read_log(log)) >= r + move_after_steps,
                    left(),
                    "progress",
                    alive=fitter.is_alive,
                )
                target, price = _cheaper_target(controller)
                PriceBoard(cluster.state_dir).set(target.offer_id, price)
                report.events.append(f"cycle {cycle}: price of {target.offer_id} -> {price:.6f}")
                move = _wait(controller.tick, min(left(), 60), "a price move")[0]
                report.move_status.append(move.status)
                report.events.append(
                    f"cycle {cycle}: move {move.move.instance_id} -> {move.new_instance_id} "
                    f"({move.move.to_offer.offer_id}): {move.status}"
                )
                if not move.ok:
                    continue
                report.move_up_s.append(float(move.up_s or 0.0))
                report.move_drained_s.append(float(move.drained_s or 0.0))
                restart = _wait(
                    lambda t=move.started_at: _restart_after(read_log(log), t),
                    left(),
                    "resume after the move",
                    alive=fitter.is_alive,
                )
                report.move_total_s.append(restart.first_step_t - move.started_at)
                # The node is gone for the job at the drain's deadline, as the job saw it.
                measured.append(("move", restart, restart.deadline))
                resumed = restart.restored

            fitter.join(left())
            notices_done.set()
            if fitter.is_alive():
                raise TimeoutError("scenario: training did not finish in time")
            if "error" in outcome:
                raise outcome["error"]
            session = _session_dir()
            restarts = ray_train_restarts(session) if session is not None else []
            for kind, restart, gone_at in measured:
                # Ray Train's restart for it: the one decided after the node was gone (a second of
                # clock skew allowed) and before the new attempt started.
                # A notice answered early (``Controller.answer_notices``) restarts the job at the
                # drain it brought forward, before the node is gone.
                anchor = min(t for t in (gone_at, restart.deadline) if t is not None) if gone_at else None
                ray_restart = (
                    None
                    if anchor is None
                    else next((r for r in restarts if anchor - 1.0 <= r[0] <= restart.start_t), None)
                )
                (report.preemptions if kind == "preempt" else report.moves).append(
                    Interruption.of(restart, gone_at, ray_restart)
                )
            final_dir = outcome["result"].checkpoint.to_directory(str(work / "final"))
            verify_checkpoint(final_dir)
            final = torch.load(Path(final_dir) / "state.pt", weights_only=True)
            ref = reference_state(spec)
            report.max_abs_diff = max(float((final["model"][k] - ref[k]).abs().max()) for k in ref)
            events = read_log(log)
            report.attempts = len({e["attempt"] for e in events if e["ev"] == "start" and e["rank"] == 0})
            report.sources = sorted({e["source"] for e in events if e["ev"] == "start" and e["source"]})
            report.skipped = [s for e in events if e["ev"] == "start" for s in e["skipped"]]
            report.instances_used = sorted({e["instance"] for e in events if e["ev"] == "start"})
            if controller.ledger is not None:
                report.ledger_moves = [(a, b) for a, b, _, _ in controller.ledger.moves()]
            state = next(iter(cluster.clouds().values())).state
            report.offers_used = sorted(
                {row["offer_id"] for i in report.instances_used if (row := state.get(i)) is not None}
            )
            # Where each attempt's worker group ran: the zone (cloud/region/zone) of every rank's node.
            offer_of = {
                i: str(row["offer_id"]) for i in report.instances_used if (row := state.get(i)) is not None
            }
            by_attempt: dict[str, set[str]] = {}
            for e in events:
                if e["ev"] == "start" and e["instance"] in offer_of:
                    by_attempt.setdefault(e["attempt"], set()).add(
                        "/".join(offer_of[e["instance"]].split("/")[:3])
                    )
            report.attempt_zones = [sorted(z) for z in by_attempt.values()]
        finally:
            ray.shutdown()
    report.wall_s = time.time() - began
    return report


def summary(reports: list[Report]) -> dict[str, float | None]:
    """Medians over every cycle of every run (None when nothing was measured): ``recovery_s``,
    ``move_total_s``, ``move_up_s``, ``move_drained_s``, ``wall_s``, and ``preempt_<f>`` and
    ``move_<f>`` for every field ``f`` of :class:`Interruption`."""

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    out: dict[str, float | None] = {
        "recovery_s": med([v for r in reports for v in r.recovery_s]),
        "move_total_s": med([v for r in reports for v in r.move_total_s]),
        "move_up_s": med([v for r in reports for v in r.move_up_s]),
        "move_drained_s": med([v for r in reports for v in r.move_drained_s]),
        "wall_s": med([r.wall_s for r in reports]),
    }
    for kind, cut in (("preempt", lambda r: r.preemptions), ("move", lambda r: r.moves)):
        items = [i for r in reports for i in cut(r)]
        for f in dataclasses.fields(Interruption):
            values = [getattr(i, f.name) for i in items]
            out[f"{kind}_{f.name}"] = med([float(v) for v in values if v is not None])
    return out


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="one preemption + one price move of a deterministic Train job"
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--cycles", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    workdir = args.workdir or tempfile.mkdtemp(prefix="rmc-scenario-")
    report = run_scenario(workdir, cycles=args.cycles)
    print(json.dumps(dataclasses.asdict(report), indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
