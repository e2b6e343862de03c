"""The main job of the README: a local multi-cloud cluster, a small GPU workload, a cost summary.

``run_demo`` brings ``cluster_configs/local-multicloud.yaml`` up with ``ray up`` (own ports, own state
dir; ``ray up`` also starts the controller on the head), runs a workload that needs GPUs of two pools
— a Ray Train job on a T4 spot node and a batch of "inference" tasks that ask for on-demand A100
capacity —, makes the training node's spot price jump mid-run so that the cluster's own controller
moves the job (replacement up, drain, restore from the checkpoint), checks the final weights against
an uninterrupted run, tears the cluster down, and returns, from the cluster's ledger, where every
node went, the move, and what it all cost against the on-demand price of the same machine hours
(``savings.BASELINE``), with and without the private pool's machines (charged at their amortised
price). The CLI prints it.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.clouds.base import Instance
from ray_multicloud.errors import MultiCloudError
from ray_multicloud.ledger import Ledger, SpendRow
from ray_multicloud.savings import SavingsSplit, describe, private_clouds_of, split_savings
from ray_multicloud.scenarios.local_cluster import REPO_CONFIG, LocalCluster

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo ran and what its nodes cost, as the cluster's ledger recorded it."""

    rows: tuple[SpendRow, ...]
    ledger_path: str
    workload: dict[str, object]
    wall_seconds: float
    moves: tuple[tuple[str, str, str, float], ...] = ()
    private_clouds: tuple[str, ...] = ()

    @property
    def savings(self) -> SavingsSplit:
        """The run's saving against ``savings.BASELINE``, with and without the private machines."""
        return split_savings(self.rows, self.private_clouds)

    def summary(self) -> list[str]:
        """The summary lines the CLI prints: what the figure compares against, the figure with
        and without private machines, and the wall time."""
        return [*describe(self.savings), f"wall time {self.wall_seconds:.0f}s"]

    @property
    def cost(self) -> float:
        return sum(r.cost_usd for r in self.rows)

    @property
    def ondemand_cost(self) -> float:
        return sum(r.ondemand_cost_usd for r in self.rows)

    @property
    def savings_fraction(self) -> float:
        return 0.0 if self.ondemand_cost <= 0 else 1.0 - self.cost / self.ondemand_cost


TRAIN_POOL = "t4_spot"
PRICE_JUMP = 4.0  # the training node's spot price is multiplied by this mid-run


def _training_node(cluster: LocalCluster) -> Instance | None:
    from ray_multicloud.clouds.base import TAG_POOL

    nodes = [i for i in cluster.workers() if i.tags.get(TAG_POOL) == TRAIN_POOL]
    return nodes[0] if nodes else None


def _workload(cluster: LocalCluster, progress: Callable[[str], None]) -> dict[str, object]:
    """A Ray Train job on the spot pool that the cluster's own controller moves mid-run, and a batch of
    inference tasks on the on-demand pool."""
    import ray
    import torch
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ray_multicloud.pricing.board import PriceBoard
    from ray_multicloud.scenarios.train_migration import JobSpec, reference_state, train_loop
    from ray_multicloud.train import run_config

    spec = JobSpec(total_steps=400, steps_per_epoch=5, step_sleep_s=0.25, world=1)
    log = cluster.workdir / "train-events.jsonl"
    cluster.connect(runtime_env={"env_vars": {"RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1"}})
    try:
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={
                **{k: getattr(spec, k) for k in JobSpec.__dataclass_fields__},
                "log": str(log),
            },
            scaling_config=ScalingConfig(
                num_workers=spec.world, resources_per_worker={"CPU": 1, "accelerator_type:T4": 1}
            ),
            torch_config=TorchConfig(backend="gloo"),
            run_config=run_config(cluster.config, name="demo-train", num_to_keep=None),
        )
        outcome: dict[str, Any] = {}

        def fit() -> None:
            try:
                outcome["result"] = trainer.fit()
            except Exception as exc:  # reported below, in the caller's thread
                logger.warning("demo training failed", exc_info=True)
                outcome["error"] = exc

        fitter = threading.Thread(target=fit, name="demo-fit", daemon=True)
        fitter.start()

        @ray.remote(num_gpus=1, label_selector={"ray.io/market-type": "on-demand"})
        def infer(batch: int) -> str:
            return f"batch {batch} on {ray.get_runtime_context().get_node_labels().get('rmc/cloud')}"

        answers = ray.get([infer.remote(i) for i in range(4)], timeout=300)
        node = cluster.wait_for(lambda: _training_node(cluster), timeout_s=180)
        offer_id = node.tags.get("rmc-offer", "")
        board = PriceBoard(cluster.state_dir)
        old_price = float(node.tags.get("rmc-price", "0") or 0)
        board.set(offer_id, round(old_price * PRICE_JUMP, 6))
        progress(
            f"training runs on {node.instance_id} ({offer_id}); its price jumps x{PRICE_JUMP:g} to "
            f"${old_price * PRICE_JUMP:.4f}/h — the controller `ray up` started should move it"
        )
        ledger_path = cluster.settings.ledger_path or ""

        def moved() -> list[tuple[str, str, str, float]]:
            with Ledger(ledger_path, create=False) as ledger:
                return [m for m in ledger.moves() if m[0] == node.instance_id]

        move = cluster.wait_for(moved, timeout_s=240, interval_s=1.0)[0]
        progress(f"moved by the controller: {move[0]} -> {move[1]} ({move[2].split(';')[0]})")
        fitter.join(timeout=400)
        if "error" in outcome or fitter.is_alive():
            raise MultiCloudError(f"the training job did not finish: {outcome.get('error', 'timed out')}")
        result = outcome["result"]
        with result.checkpoint.as_directory() as d:
            got = torch.load(Path(d) / "state.pt", weights_only=True)["model"]
        want = reference_state(spec)
        diff = max(float((got[k] - want[k]).abs().max()) for k in want)
        return {
            "training": {
                "steps": spec.total_steps,
                "moved": f"{move[0]} -> {move[1]}",
                "max_abs_diff_vs_uninterrupted": diff,
            },
            "inference": answers,
        }
    finally:
        ray.shutdown()


def run_demo(
    config: str | Path = REPO_CONFIG,
    *,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Up, workload (with one price-driven move by the cluster's controller), idle scale-down, summary,
    down. The cluster is torn down whatever happens."""
    started = time.monotonic()
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="rmc-demo-"))
    cluster = LocalCluster(config, workdir=work, overrides={"idle_timeout_minutes": 0.1})
    progress(f"ray up {cluster.config_path} (cluster {cluster.cluster_name}, GCS {cluster.address})")
    try:
        cluster.up()
        progress("cluster up, its controller running on the head; starting a Train job on spot and inference")
        workload = _workload(cluster, progress)
        progress("workload done; waiting for Ray to scale the idle GPU nodes down")
        cluster.wait_for(lambda: not cluster.workers(), timeout_s=180)
    finally:
        progress("ray down")
        cluster.down()
    ledger_path = cluster.settings.ledger_path
    assert ledger_path is not None  # LocalCluster always configures one
    with Ledger(ledger_path, create=False) as ledger:
        rows = [r for r in ledger.spend() if r.cluster == cluster.cluster_name]
        moves = tuple(ledger.moves())
    return DemoResult(
        rows=tuple(rows),
        ledger_path=ledger_path,
        workload=workload,
        wall_seconds=time.monotonic() - started,
        moves=moves,
        private_clouds=private_clouds_of(cluster.settings.clouds),
    )
