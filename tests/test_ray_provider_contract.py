"""``MultiCloudNodeProvider`` through Ray's own ``NodeProviderAdapter`` (autoscaler v2), as its monitor does.

The adapter (``ray.autoscaler.v2.instance_manager.node_provider``, from the installed Ray) turns one
``launch(shape, request_id)`` into one ``create_node_with_resources_and_labels`` call per node type
and per batch of at most ``max_launch_batch_per_type`` nodes, all under the same request id, run on
a thread pool. The behaviours checked here are the ones Ray's provider-contract tests check
(``python/ray/autoscaler/v2/tests/test_node_provider.py``: a launch yields the requested nodes per
type, a failed launch is one ``LaunchNodeError`` naming type and request, terminate ends them), plus
the splits that tests of a single call never see: 7 nodes of one type (batches 5 + 2), a batch
size of 1, two node types in one request on one cloud, and retries of a failed request.

Expected counts are the shapes asked for (hand arithmetic), never read from the provider.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.memory_cloud import MemoryWorld, memory_cluster, memory_provider
from ray.autoscaler.tags import TAG_RAY_LAUNCH_REQUEST, TAG_RAY_USER_NODE_TYPE
from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig, IConfigReader
from ray.autoscaler.v2.instance_manager.node_provider import (
    CloudInstance,
    LaunchNodeError,
    NodeProviderAdapter,
)

from ray_multicloud.clouds.base import TAG_POOL, TAG_REQUEST
from ray_multicloud.errors import CloudError

TIMEOUT_S = 30.0  # generous for a loaded CI machine; a passing wait returns as soon as it holds


class DictConfigReader(IConfigReader):
    """Ray's config reader over an in-memory cluster config (what ``FileConfigReader`` does for a file)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = AutoscalingConfig(copy.deepcopy(config), skip_content_hash=True)

    def get_cached_autoscaling_config(self) -> AutoscalingConfig:
        return self._config

    def refresh_cached_autoscaling_config(self) -> None:
        return None


def one_cloud_cluster(config: dict[str, Any]) -> dict[str, Any]:
    """The local cluster with its T4 pool on the ``aws`` cloud only (so every node of a request
    meets the same driver's dedupe), room for ten of them, and a second T4 node type ``t4_spot_b``
    of the same pool shape on the same cloud."""
    config = copy.deepcopy(config)
    types = config["available_node_types"]
    types["t4_spot"]["max_workers"] = 10
    types["t4_spot"]["node_config"]["pool"]["clouds"] = ["aws"]
    types["t4_spot"]["node_config"].pop("migration", None)
    types["t4_spot_b"] = copy.deepcopy(types["t4_spot"])
    config["max_workers"] = 20
    return config


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld]]:
    with memory_cluster(tmp_path) as (config, world):
        yield one_cloud_cluster(config), world


def adapter_of(config: dict[str, Any], world: MemoryWorld, **limits: int) -> NodeProviderAdapter:
    """Ray's adapter over a fresh provider on ``world`` (a second one is a restarted monitor)."""
    return NodeProviderAdapter(memory_provider(config, world), DictConfigReader(config), **limits)


def wait_for(check: Callable[[], bool], what: str, now: Callable[[], object] = lambda: "") -> None:
    """Wait for ``check``; on timeout say what was awaited and (``now``) what there was instead."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {TIMEOUT_S:.0f}s waiting for {what}; have {now()}")


def workers(adapter: NodeProviderAdapter) -> dict[str, CloudInstance]:
    return {k: v for k, v in adapter.get_non_terminated().items() if v.node_type != "head"}


def by_type(adapter: NodeProviderAdapter) -> Counter[str]:
    return Counter(n.node_type for n in workers(adapter).values())


def settle(adapter: NodeProviderAdapter, world: MemoryWorld, expected: Counter[str]) -> None:
    """Wait until the adapter's launch threads are idle and the fleet holds ``expected``; then
    wait a little more and check again, so a later surplus node cannot hide."""
    wait_for(lambda: by_type(adapter) == expected, f"{dict(expected)}", lambda: dict(by_type(adapter)))
    adapter._main_executor.shutdown(wait=True)  # every batch is submitted ...
    adapter._node_launcher_executors.shutdown(wait=True)  # ... and has returned
    assert by_type(adapter) == expected
    assert adapter.poll_errors() == []


@pytest.mark.parametrize(("count", "batch"), [(7, 5), (5, 1), (2, 5), (12, 5)])
def test_one_type_gets_every_node_asked_for(
    memory: tuple[dict[str, Any], MemoryWorld], count: int, batch: int
) -> None:
    config, world = memory
    adapter = adapter_of(config, world, max_launch_batch_per_type=batch, max_concurrent_launches=10)
    adapter.launch(shape={"t4_spot": count}, request_id="req-1")
    settle(adapter, world, Counter({"t4_spot": count}))
    nodes = workers(adapter)
    assert {n.request_id for n in nodes.values()} == {"req-1"}
    # Each node has its own key: the request, the type, its index among that request's nodes of that type.
    keys = [world.instances[i].tags[TAG_REQUEST] for i in nodes]  # type: ignore[index]
    assert len(set(keys)) == count


def test_two_types_in_one_request_on_one_cloud(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = memory
    adapter = adapter_of(config, world)
    adapter.launch(shape={"t4_spot": 2, "t4_spot_b": 3}, request_id="req-2")
    settle(adapter, world, Counter({"t4_spot": 2, "t4_spot_b": 3}))
    for node_id, node in workers(adapter).items():
        tags = world.instances[node_id].tags  # type: ignore[index]
        assert tags[TAG_POOL] == node.node_type == tags[TAG_RAY_USER_NODE_TYPE]
        assert tags[TAG_RAY_LAUNCH_REQUEST] == "req-2"


def test_basic_launch_terminate_launch(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    """Ray's ``test_node_providers_basic``: two requests, terminate all, one more request."""
    config, world = memory
    adapter = adapter_of(config, world)
    adapter.launch(shape={"t4_spot": 2}, request_id="1")
    adapter.launch(shape={"t4_spot": 2, "t4_spot_b": 1}, request_id="2")
    wait_for(lambda: by_type(adapter) == Counter({"t4_spot": 4, "t4_spot_b": 1}), "5 workers")
    adapter.terminate(ids=list(workers(adapter)), request_id="3")
    wait_for(lambda: not workers(adapter), "every worker terminated")
    adapter.launch(shape={"t4_spot": 1}, request_id="4")
    wait_for(lambda: by_type(adapter) == Counter({"t4_spot": 1}), "1 worker of request 4")
    assert [n.request_id for n in workers(adapter).values()] == ["4"]
    assert adapter.poll_errors() == []


def test_launch_failure_is_one_error_naming_type_and_request(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    """Ray's ``test_launch_failure``: a failed create is reported through ``poll_errors``."""
    config, world = memory
    world.exhausted.update(o for o in _t4_spot_offers(config, world))
    adapter = adapter_of(config, world)
    adapter.launch(shape={"t4_spot": 2}, request_id="2")
    errors: list[Any] = []
    wait_for(lambda: bool(errors.extend(adapter.poll_errors()) or errors), "a launch error")
    assert len(errors) == 1 and isinstance(errors[0], LaunchNodeError)
    assert errors[0].node_type == "t4_spot" and errors[0].request_id == "2"
    assert workers(adapter) == {}


def test_retried_request_is_idempotent(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    """A request whose launch failed after the cloud created some of its nodes, retried under the
    same request id (Ray v2 reuses a request's id when it retries it), ends with the count asked,
    not more: the retry's keys are the failed attempt's keys, and the clouds dedupe on them."""
    config, world = memory
    provider = memory_provider(config, world)
    adapter = NodeProviderAdapter(provider, DictConfigReader(config))
    calls, failing = 0, True
    real_launch = provider.clouds["aws"].launch

    def third_fails(request: Any) -> Any:
        nonlocal calls
        calls += 1
        if failing and calls == 3:  # the cloud created it, then the call failed (a timeout after the create)
            real_launch(request)
            raise CloudError("aws", "operation timed out")
        if failing and calls > 3:  # refused before anything was created, on every offer tried
            raise CloudError("aws", "internal error")
        return real_launch(request)

    provider.clouds["aws"].launch = third_fails  # type: ignore[method-assign]
    adapter.launch(shape={"t4_spot": 4}, request_id="r-retry")
    errors: list[Any] = []
    wait_for(lambda: bool(errors.extend(adapter.poll_errors()) or errors), "the failed launch")
    created_by_first = len(workers(adapter))
    # Nodes 0, 1 and the one that timed out (found by its key and counted, not launched again on
    # another offer); the fourth failed.
    assert created_by_first == 3
    failing = False

    adapter.launch(shape={"t4_spot": 4}, request_id="r-retry")  # the retry of the whole request
    wait_for(lambda: by_type(adapter) == Counter({"t4_spot": 4}), "4 workers")
    adapter._main_executor.shutdown(wait=True)
    adapter._node_launcher_executors.shutdown(wait=True)
    assert by_type(adapter) == Counter({"t4_spot": 4})
    assert adapter.poll_errors() == []

    # A restarted monitor retrying the same request finds every node and creates none.
    restarted = adapter_of(config, world)
    restarted.launch(shape={"t4_spot": 4}, request_id="r-retry")
    restarted._main_executor.shutdown(wait=True)
    restarted._node_launcher_executors.shutdown(wait=True)
    assert by_type(restarted) == Counter({"t4_spot": 4})


def _t4_spot_offers(config: dict[str, Any], world: MemoryWorld) -> list[str]:
    provider = memory_provider(config, world)
    target = provider._target("t4_spot", config["available_node_types"]["t4_spot"]["node_config"])
    from ray_multicloud.policy import matching_offers

    return [o.offer_id for o in matching_offers(target, provider.offers.index(), now=time.time())]


def test_terminate_failure_is_one_error_naming_node_and_request(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    """Ray's ``test_terminate_node_failure``: a refused terminate is a ``TerminateNodeError`` for
    that node and request, and the node is still listed."""
    from ray.autoscaler.v2.instance_manager.node_provider import TerminateNodeError

    config, world = memory
    provider = memory_provider(config, world)
    adapter = NodeProviderAdapter(provider, DictConfigReader(config))
    adapter.launch(shape={"t4_spot": 1}, request_id="launch1")
    wait_for(lambda: len(workers(adapter)) == 1, "one worker")
    (node_id,) = workers(adapter)

    def refuse(instance_id: Any) -> None:
        raise CloudError("aws", "failed to terminate node")

    provider.clouds["aws"].terminate = refuse  # type: ignore[method-assign]
    adapter.terminate(ids=[node_id], request_id="terminate1")
    errors: list[Any] = []
    wait_for(lambda: bool(errors.extend(adapter.poll_errors()) or errors), "a terminate error")
    assert len(errors) == 1 and isinstance(errors[0], TerminateNodeError)
    assert errors[0].cloud_instance_id == node_id and errors[0].request_id == "terminate1"
    assert list(workers(adapter)) == [node_id]
