"""A deterministic Ray Train job that survives a spot preemption and a price-driven move, on the local cloud.

Used by ``tests/test_train_e2e.py`` (correctness) and ``benchmarks/bench_train_migration.py``
(timings); runnable as ``python -m ray_multicloud.train.scenario --workdir /tmp/x``.

The job (``train_loop``) is an ordinary Ray Train function: a small MLP, Adam, a fixed seed, data
drawn from a generator seeded by (seed, step, rank), DDP over gloo, a checkpoint every epoch written
with ``write_checkpoint`` (sha256 manifest) and restored through ``resolve`` (verified, falling back
to the previous complete one), and a just-in-time checkpoint on ``ray.train.get_preemption_info()``.
Its final weights depend only on the seed, so ``reference_state`` (the same steps in-process on CPU,
gradients averaged as DDP averages them) must match them however often the job was restarted.

The scenario, as an event sequence:
``azure eastus2 T4 spot x2 (train) -> one node preempted (notice 5 s) -> autoscaler relaunches
through the policy -> train resumes from the last complete checkpoint -> gcp T4 spot drops to 20%
of the price -> controller: replacement up on gcp, old node drained (PREEMPTION), terminated ->
train resumes on gcp -> done``.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

D_IN = 16
HIDDEN = 32


@dataclass(frozen=True, slots=True)
class JobSpec:
    """The deterministic job: ``total_steps`` steps, a checkpoint every ``steps_per_epoch``."""

    seed: int = 1234
    total_steps: int = 120
    steps_per_epoch: int = 5
    batch: int = 32
    lr: float = 1e-2
    step_sleep_s: float = 0.25
    world: int = 2


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


def train_loop(config: dict[str, Any]) -> None:
    """The Ray Train worker function (see the module docstring). ``config``: JobSpec fields + ``log``."""
    import ray.train
    import torch
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
    jit_done = False

    def save(step: int, why: str) -> None:
        metrics = {"step": step, "why": why}
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
        _log(log, {"ev": "ckpt", "rank": rank, "attempt": attempt, "step": step, "why": why})

    for step in range(start, spec.total_steps):
        x, y = _batch(spec, step, rank)
        opt.zero_grad()
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        opt.step()
        time.sleep(spec.step_sleep_s)
        done = step + 1
        if rank == 0:
            _log(log, {"ev": "step", "rank": rank, "attempt": attempt, "step": done})
        if done % spec.steps_per_epoch == 0 or done == spec.total_steps:
            save(done, "epoch")
        elif not jit_done and ray.train.get_preemption_info() is not None:
            jit_done = True
            save(done, "preemption")


# --------------------------------------------------------------------------- the scenario


@dataclass
class Report:
    """What one scenario run measured, one entry per cycle (seconds, steps), and what the checks need.

    ``recovery_s``: preemption notice -> first training step after the restore. ``preempt_lost_steps``:
    steps reached before the restart minus the step restored from. ``move_total_s``: start of the move
    (replacement launch) -> first step after the restore; ``move_up_s``: replacement's Ray node alive;
    ``move_drained_s``: old node drained (or its deadline); ``move_lost_steps`` as for preemptions.
    """

    recovery_s: list[float] = field(default_factory=list)
    preempt_lost_steps: list[int] = field(default_factory=list)
    move_total_s: list[float] = field(default_factory=list)
    move_up_s: list[float] = field(default_factory=list)
    move_drained_s: list[float] = field(default_factory=list)
    move_lost_steps: list[int] = field(default_factory=list)
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


def _read_log(path: Path) -> list[dict[str, Any]]:
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


def _wait(pred: Any, timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"scenario: {what} not within {timeout_s:.0f} s")
        time.sleep(interval_s)


def _overrides() -> dict[str, Any]:
    return {
        "max_workers": 4,
        "idle_timeout_minutes": 1.0,
        # This harness makes its moves itself (``Controller.tick`` here), so `ray up` starts none.
        "provider": {"start_controller": False},
        "available_node_types": {
            "t4_spot": {"max_workers": 3},
            "a100_ondemand": {"max_workers": 0},
        },
    }


def _restart_after(events: list[dict[str, Any]], at: float) -> tuple[dict[str, Any], float, int] | None:
    """The first attempt started after ``at``: its rank-0 start event, its first step time, and the
    highest step reached before it started."""
    starts = [e for e in events if e["ev"] == "start" and e["rank"] == 0 and e["t"] > at]
    if not starts:
        return None
    first = starts[0]
    steps = [e for e in events if e["ev"] == "step" and e["attempt"] == first["attempt"]]
    if not steps:
        return None
    before = max((e["step"] for e in events if e["ev"] == "step" and e["t"] < first["t"]), default=0)
    return first, steps[0]["t"], before


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
) -> Report:
    """Bring up a local cluster, run the job through ``cycles`` x (one preemption, then one price move),
    check the final weights against ``reference_state``, tear down.

    ``spec`` defaults to a job long enough for the cycles. Raises ``TimeoutError`` if a stage does not
    happen within ``timeout_s`` of the job's start; the cluster is always torn down.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    import torch
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ray_multicloud.controller import Controller
    from ray_multicloud.local_cluster import LocalCluster
    from ray_multicloud.policy.rebalance import RebalanceConfig
    from ray_multicloud.pricing.board import PriceBoard
    from ray_multicloud.train.checkpoint import verify_checkpoint
    from ray_multicloud.train.config import run_config

    spec = spec or JobSpec(total_steps=60 + 60 * cycles)
    report = Report()
    began = time.time()
    work = Path(workdir)
    log = work / "progress.jsonl"
    with LocalCluster(workdir=work, overrides=_overrides()) as cluster:
        ray.init(
            cluster.address,
            log_to_driver=False,
            runtime_env={"env_vars": {"RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1"}},
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

            controller = Controller(
                cluster.config,
                config=RebalanceConfig(
                    horizon_hours=4.0,
                    checkpoint_s=5,
                    restart_s=20,
                    launch_s=5,
                    state_gb=0.01,
                    min_relative_saving=0.2,
                    min_interval_s=5,
                    max_moves=1,
                ),
                drain_deadline_s=drain_deadline_s,
                up_timeout_s=90,
            )
            resumed = 0
            for cycle in range(cycles):
                # 1. Preempt the node of training worker rank 1 (a notice, then death at its deadline).
                _wait(lambda r=resumed: _max_step(_read_log(log)) >= r + preempt_at_step, left(), "progress")
                starts = [e for e in _read_log(log) if e["ev"] == "start" and e["rank"] == 1]
                victim_id = starts[-1]["instance"]
                victim = next(i for i in cluster.workers() if i.instance_id == victim_id)
                preempted_at = time.time()
                cluster.clouds()[victim.cloud].preempt(victim.instance_id, notice_s=notice_s)
                report.events.append(f"cycle {cycle}: preempted {victim_id} ({victim.tags.get('rmc-offer')})")
                start_ev, first_t, before = _wait(
                    lambda t=preempted_at: _restart_after(_read_log(log), t),
                    left(),
                    "recovery after the preemption",
                )
                report.recovery_s.append(first_t - preempted_at)
                report.preempt_lost_steps.append(before - int(start_ev["step"]))
                resumed = int(start_ev["step"])

                # 2. Another offer gets much cheaper; the controller moves one node there.
                _wait(lambda r=resumed: _max_step(_read_log(log)) >= r + move_after_steps, left(), "progress")
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
                start_ev, first_t, before = _wait(
                    lambda t=move.started_at: _restart_after(_read_log(log), t),
                    left(),
                    "resume after the move",
                )
                report.move_total_s.append(first_t - move.started_at)
                report.move_lost_steps.append(before - int(start_ev["step"]))
                resumed = int(start_ev["step"])

            fitter.join(left())
            if fitter.is_alive():
                raise TimeoutError("scenario: training did not finish in time")
            if "error" in outcome:
                raise outcome["error"]
            final_dir = outcome["result"].checkpoint.to_directory(str(work / "final"))
            verify_checkpoint(final_dir)
            final = torch.load(Path(final_dir) / "state.pt", weights_only=True)
            ref = reference_state(spec)
            report.max_abs_diff = max(float((final["model"][k] - ref[k]).abs().max()) for k in ref)
            events = _read_log(log)
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
        finally:
            ray.shutdown()
    report.wall_s = time.time() - began
    return report


def summary(reports: list[Report]) -> dict[str, float | None]:
    """Medians over every cycle of every run (None when nothing was measured)."""

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def every(name: str) -> list[float]:
        return [float(v) for r in reports for v in getattr(r, name)]

    out = {
        name: med(every(name))
        for name in (
            "recovery_s",
            "preempt_lost_steps",
            "move_total_s",
            "move_up_s",
            "move_drained_s",
            "move_lost_steps",
        )
    }
    out["wall_s"] = med([r.wall_s for r in reports])
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
    print(json.dumps(report.__dict__, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
