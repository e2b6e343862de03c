"""The main job of the README: a local multi-cloud cluster, a small GPU workload, a cost summary.

``run_demo`` brings ``cluster_configs/local-multicloud.yaml`` up with ``ray up`` (own ports, own state
dir), runs a small workload that needs GPUs of two pools — a short torch training step loop on a
T4 spot node and a batch of "inference" tasks that ask for on-demand A100 capacity — records where
every node went and what it cost against the on-demand price of the same machine hours, and tears
the cluster down. It returns the summary; the CLI prints it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ray_multicloud.clouds.base import TAG_OFFER, TAG_POOL
from ray_multicloud.local_cluster import REPO_CONFIG, LocalCluster
from ray_multicloud.provider import MultiCloudNodeProvider, OfferBook


@dataclass(frozen=True, slots=True)
class NodeCost:
    """One node of the run: where it went, how long it lived, what it cost and would have cost."""

    instance_id: str
    pool: str
    offer_id: str
    price_per_hour: float
    ondemand_price_per_hour: float
    seconds: float
    end_reason: str

    @property
    def cost(self) -> float:
        return self.price_per_hour * self.seconds / 3600.0

    @property
    def ondemand_cost(self) -> float:
        return self.ondemand_price_per_hour * self.seconds / 3600.0


@dataclass(frozen=True, slots=True)
class DemoResult:
    nodes: tuple[NodeCost, ...]
    workload: dict[str, object]
    wall_seconds: float

    @property
    def cost(self) -> float:
        return sum(n.cost for n in self.nodes)

    @property
    def ondemand_cost(self) -> float:
        return sum(n.ondemand_cost for n in self.nodes)

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
    nodes = _costs(cluster)
    return DemoResult(nodes=nodes, workload=workload, wall_seconds=time.monotonic() - started)


def _costs(cluster: LocalCluster) -> tuple[NodeCost, ...]:
    provider = MultiCloudNodeProvider(dict(cluster.config["provider"]), cluster.cluster_name)
    book: OfferBook = provider.offers
    state = next(iter(cluster.clouds().values())).state
    out = []
    for row in state.rows(cluster=cluster.cluster_name):
        tags = json.loads(row["tags"])
        offer = book.get(tags.get(TAG_OFFER, ""))
        price = float(tags.get("rmc-price", offer.price_per_hour if offer else 0.0))
        ondemand = offer.ondemand_price_per_hour if offer else price
        end = row["ended_at"] or time.time()
        out.append(NodeCost(
            instance_id=row["instance_id"], pool=tags.get(TAG_POOL, ""), offer_id=tags.get(TAG_OFFER, ""),
            price_per_hour=price, ondemand_price_per_hour=ondemand,
            seconds=max(0.0, end - row["launched_at"]), end_reason=row["end_reason"] or "",
        ))
    return tuple(out)
