"""``non_terminated_nodes`` at fleet scale (the hardening issue's item 5): when a listing of the
clouds is slow, the autoscaler's call is answered from the last listing, with this process's
launches and terminations applied, while the next listing runs in the background; never from a
listing older than ``max_listing_age_s``; and a node terminated while a listing ran never comes
back from that listing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fakes import memory_cloud

from ray_multicloud.clouds.base import Instance
from ray_multicloud.errors import CloudError
from ray_multicloud.types import InstanceId, NodeState


class Gate:
    """Wraps every cloud's ``list`` of a provider: counts the calls, and while ``hold`` is set, a
    listing takes the world's state first and then waits for ``release`` before answering (a cloud
    answering with what it saw when the request arrived); ``entered`` is set once every cloud's
    listing has taken its state."""

    def __init__(self, provider: Any) -> None:
        self.clouds = len(provider.clouds)
        self.held = 0
        self.calls = 0
        self.hold = False
        self.fail: CloudError | None = None
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        for cloud in provider.clouds.values():
            cloud.list = self._wrap(cloud.list)

    def _wrap(self, inner: Any) -> Any:
        def listing(cluster: str) -> list[Instance]:
            self.calls += 1
            if self.fail is not None:
                raise self.fail
            seen = inner(cluster)
            if self.hold:
                with self.lock:
                    self.held += 1
                    if self.held == self.clouds:
                        self.entered.set()
                assert self.release.wait(30)
            return list(seen)
        return listing


def external_node(world: Any, cluster: str, node_id: str) -> None:
    """A node the cloud holds that this provider did not launch (another process's, or one
    launched just before a restart)."""
    world.instances[InstanceId(node_id)] = Instance(
        InstanceId(node_id), "aws", NodeState.RUNNING,
        {"rmc-cluster": cluster, "ray-node-kind": "worker"}, "127.0.0.1")


def settle(provider: Any) -> None:
    thread = provider._background
    if thread is not None:
        thread.join(30)
        assert not thread.is_alive()


def test_a_fast_listing_is_made_for_every_call(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        gate = Gate(provider)
        clouds = len(provider.clouds)
        for _ in range(3):
            provider.non_terminated_nodes({})
        assert gate.calls == 3 * clouds  # in-memory listings take microseconds: never cached
        assert provider._background is None


def test_a_slow_listing_answers_from_the_last_one_and_lists_in_the_background(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        provider.slow_listing_s = 0.0  # every listing counts as slow
        gate = Gate(provider)
        clouds = len(provider.clouds)
        name = cluster["cluster_name"]
        external_node(world, name, "aws-old")
        assert provider.non_terminated_nodes({}) == ["aws-old"]  # cold: listed, waited for
        assert gate.calls == clouds

        external_node(world, name, "aws-new")
        assert provider.non_terminated_nodes({}) == ["aws-old"]  # the last listing's answer...
        settle(provider)  # ... while the next one ran
        assert gate.calls == 2 * clouds
        assert sorted(provider.non_terminated_nodes({})) == ["aws-new", "aws-old"]

        # A node the cloud ended by itself (a preemption) drops out one call later.
        settle(provider)  # the listing the last call started saw it
        del world.instances[InstanceId("aws-old")]
        assert sorted(provider.non_terminated_nodes({})) == ["aws-new", "aws-old"]
        settle(provider)
        assert provider.non_terminated_nodes({}) == ["aws-new"]


def test_this_processs_launches_and_terminations_show_at_once(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        provider.slow_listing_s = 0.0
        provider.non_terminated_nodes({})
        (launched,) = memory_cloud.launch_workers(provider, cluster, request="r1")
        assert provider.non_terminated_nodes({}) == [launched.instance_id]  # not yet listed
        settle(provider)
        provider.terminate_node(launched.instance_id)
        assert provider.non_terminated_nodes({}) == []


def test_a_node_terminated_while_a_listing_ran_does_not_come_back_from_it(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        provider.slow_listing_s = 0.0
        (node,) = memory_cloud.launch_workers(provider, cluster, request="r1")
        assert provider.non_terminated_nodes({}) == [node.instance_id]
        settle(provider)
        gate = Gate(provider)
        gate.hold = True
        provider.non_terminated_nodes({})  # starts a listing that sees the node, then stalls
        assert gate.entered.wait(30)
        provider.terminate_node(node.instance_id)  # the autoscaler scales it down meanwhile
        gate.release.set()
        settle(provider)
        assert node.instance_id not in world.instances
        assert provider.non_terminated_nodes({}) == []  # the stale listing did not resurrect it


def test_an_answer_is_never_older_than_max_listing_age(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        provider.slow_listing_s = 0.0
        gate = Gate(provider)
        external_node(world, cluster["cluster_name"], "aws-1")
        provider.non_terminated_nodes({})
        settle(provider)
        gate.fail = CloudError("aws", "DescribeInstances failed: EndpointConnectionError")
        # The background listing fails: the last good answer stands, within its age.
        assert provider.non_terminated_nodes({}) == ["aws-1"]
        settle(provider)
        assert provider.non_terminated_nodes({}) == ["aws-1"]
        settle(provider)
        # Past max_listing_age_s the call lists itself, and the cloud's error reaches the caller.
        with provider._lock:
            provider._listed_at -= provider.max_listing_age_s + 1.0
        with pytest.raises(CloudError, match="EndpointConnectionError"):
            provider.non_terminated_nodes({})
