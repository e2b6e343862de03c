"""The main job of the README: a local multi-cloud cluster, a small GPU workload, a cost summary.

``run_demo`` brings ``cluster_configs/local-multicloud.yaml`` up with ``ray up`` (own ports, own state
dir), runs a small workload that needs GPUs of two pools — a short torch training step loop on a
T4 spot node and a batch of "inference" tasks that ask for on-demand A100 capacity — tears the
cluster down, and returns, from the cluster's ledger, where every node went and what it cost against
the on-demand price of the same machine hours. The CLI prints it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ray_multicloud.ledger import Ledger, SpendRow
from ray_multicloud.local_cluster import REPO_CONFIG, LocalCluster


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo ran and what its nodes cost, as the cluster's ledger recorded it."""

    rows: tuple[SpendRow, ...]
    ledger_path: str
    workload: dict[str, object]
    wall_seconds: float

    @property
    def cost(self) -> float:
        return sum(r.cost_usd for r in self.rows)

    @property
    def ondemand_cost(self) -> float:
        return sum(r.ondemand_cost_usd for r in self.rows)

    @property
    def savings_fraction(self) -> float:
        return 0.0 if self.ondemand_cost <= 0 else 1.0 - self.cost / self.ondemand_cost


def _workload(cluster: LocalCluster) -> dict[str, object]:
    import ray

    cluster.connect()
    try:
        @ray.remote(num_gpus=1, label_selector={"ray.io/market-type": "spot"})
        def train_steps(steps: int) -> dict[str, object]:
            import torch

            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            x = torch.randn(256, 16)
            y = x.sum(dim=1, keepdim=True)
            loss = torch.tensor(0.0)
            for _ in range(steps):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
            labels = ray.get_runtime_context().get_node_labels()
            return {"loss": float(loss), "cloud": labels.get("rmc/cloud"),
                    "market": labels.get("ray.io/market-type")}

        @ray.remote(num_gpus=1, label_selector={"ray.io/market-type": "on-demand"})
        def infer(batch: int) -> str:
            return f"batch {batch} on {ray.get_runtime_context().get_node_labels().get('rmc/cloud')}"

        training = train_steps.remote(300)
        answers = ray.get([infer.remote(i) for i in range(4)], timeout=300)
        return {"training": ray.get(training, timeout=300), "inference": answers}
    finally:
        ray.shutdown()


def run_demo(
    config: str | Path = REPO_CONFIG,
    *,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Up, workload, idle scale-down, summary, down. The cluster is torn down whatever happens."""
    started = time.monotonic()
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="rmc-demo-"))
    cluster = LocalCluster(config, workdir=work, overrides={"idle_timeout_minutes": 0.1})
    progress(f"ray up {cluster.config_path} (cluster {cluster.cluster_name}, GCS {cluster.address})")
    try:
        cluster.up()
        progress("cluster up; running the workload (GPU tasks on spot and on-demand pools)")
        workload = _workload(cluster)
        progress("workload done; waiting for Ray to scale the idle GPU nodes down")
        cluster.wait_for(lambda: not cluster.workers(), timeout_s=180)
    finally:
        progress("ray down")
        cluster.down()
    ledger_path = cluster.settings.ledger_path
    assert ledger_path is not None  # LocalCluster always configures one
    with Ledger(ledger_path, create=False) as ledger:
        rows = [r for r in ledger.spend() if r.cluster == cluster.cluster_name]
    return DemoResult(rows=tuple(rows), ledger_path=ledger_path, workload=workload,
                      wall_seconds=time.monotonic() - started)
