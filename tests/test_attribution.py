"""Which workload used each node, from Ray's actors, into the ledger's job column (the governance
issue's item 6)."""

from __future__ import annotations

from pathlib import Path

from fakes import memory_cloud

from ray_multicloud.attribution import ActorSeen, attribute, workload
from ray_multicloud.controller import Controller
from ray_multicloud.ledger import Ledger, group_spend


def actor(cls: str, node: str | None, *, name: str | None = None, job: str = "01000000") -> ActorSeen:
    return ActorSeen(class_name=cls, name=name, job_id=job, node_id=node)


def test_workloads_are_named_from_rays_own_names() -> None:
    replica = actor("ServeReplica:app:Model", "n1", name="SERVE_REPLICA::app#Model#abc123")
    assert workload(replica) == "serve:app/Model"
    assert workload(actor("RayTrainWorker", "n1")) == "train:job-01000000"
    assert workload(actor("RayTrainWorker", "n1"), train_run="resnet") == "train:resnet"
    assert workload(actor("MyCounter", "n1", job="02000000")) == "job-02000000"
    for system in ("ServeController", "ProxyActor", "TrainController"):
        assert workload(actor(system, "n1")) is None


def test_attribute_joins_the_workloads_of_a_node_and_skips_unknown_nodes() -> None:
    actors = [
        actor("RayTrainWorker", "n1"),
        actor("ServeReplica:a:D", "n1", name="SERVE_REPLICA::a#D#x"),
        actor("RayTrainWorker", "n1"),  # the same workload twice counts once
        actor("ServeController", "n2"),  # a system actor: n2 is not attributed
        actor("Other", "head"),  # not an instance of ours
        actor("Other", None),  # an actor not placed yet
    ]
    got = attribute(actors, {"n1": "i-1", "n2": "i-2"}, pool_of_instance={"i-1": "train"},
                    train_run_of_pool={"train": "bert"})
    assert got == {"i-1": "serve:a/D, train:bert"}


def test_the_controller_writes_attributions_to_the_ledger(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        provider = memory_cloud.memory_provider(cluster, world)
        a, b = memory_cloud.launch_workers(provider, cluster, count=2)
        seen = [actor("RayTrainWorker", f"node-{a.instance_id}"),
                actor("ServeReplica:chat:LLM", f"node-{b.instance_id}", name="SERVE_REPLICA::chat#LLM#1")]

        t = [1000.0]
        controller = memory_cloud.memory_controller(
            cluster, provider, t, nodes=memory_cloud.running_gcs(provider, lambda iid: f"node-{iid}"),
            actors=lambda _: seen, attribute_every_s=60)
        controller.train_runs["t4_spot"] = "resnet"
        controller.tick()
        with Ledger(tmp_path / "ledger.db", create=False) as led:
            jobs = {r.instance_id: r.job for r in led.spend()}
            groups = {g.key for g in group_spend(led.spend(), "job")}
        assert jobs == {a.instance_id: "train:resnet", b.instance_id: "serve:chat/LLM"}
        assert groups == {"train:resnet", "serve:chat/LLM"}
        # Within attribute_every_s nothing is read again; after it, a gone actor keeps its label.
        seen.clear()
        t[0] += 10
        assert controller.attribute(provider.fleet(), t[0]) == {}
        t[0] += 60
        assert controller.attribute(provider.fleet(), t[0]) == {}
        with Ledger(tmp_path / "ledger.db", create=False) as led:
            assert {r.instance_id: r.job for r in led.spend()}[a.instance_id] == "train:resnet"


def test_an_unreadable_state_api_is_skipped(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster)

        def broken(_: str) -> list[ActorSeen]:
            raise ConnectionError("state API down")

        controller = Controller(cluster, provider=provider, nodes=lambda _: {}, actors=broken)
        assert controller.attribute(provider.fleet(), 1000.0) == {}

