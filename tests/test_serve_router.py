"""The Serve router's parts without a cluster: offer ids from node labels, prices, spread options, the
router's choices over fake replicas, and the load generator's summaries."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from ray.serve._private.common import DeploymentHandleSource, DeploymentID, ReplicaID, RequestMetadata
from ray.serve.request_router import PendingRequest

from ray_multicloud.pricing.board import PriceBoard
from ray_multicloud.scenarios.loadtest import Sample, percentile, summarise
from ray_multicloud.serve.cluster_state import NODE_RETRY_S
from ray_multicloud.serve.ranking import Slo, Weights
from ray_multicloud.serve.router import CostLatencyRouter, NodeFacts, PriceSource, offer_id_from_labels
from ray_multicloud.serve.spread import multicloud_deployment_options, router_config, serving_pool_node_type

AWS_OD = "aws/us-east-1/use1-az1/g4dn.xlarge/on-demand"
AZ_SPOT = "azure/westus2/-/Standard_NC4as_T4_v3/spot"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"rmc/cloud": "aws", "ray.io/availability-region": "us-east-1",
          "ray.io/availability-zone": "use1-az1", "rmc/instance-type": "g4dn.xlarge",
          "ray.io/market-type": "on-demand"}, AWS_OD),
        ({"rmc/cloud": "azure", "ray.io/availability-region": "westus2",
          "ray.io/availability-zone": "westus2", "rmc/instance-type": "Standard_NC4as_T4_v3",
          "ray.io/market-type": "spot"}, AZ_SPOT),
        ({"rmc/cloud": "azure", "ray.io/availability-region": "westus2",
          "rmc/instance-type": "Standard_NC4as_T4_v3", "ray.io/market-type": "spot"}, AZ_SPOT),
        ({"ray.io/availability-region": "us-east-1", "ray.io/market-type": "on-demand"}, None),  # the head
        ({}, None),
    ],
)
def test_offer_id_from_labels(labels: dict[str, str], expected: str | None) -> None:
    assert offer_id_from_labels(labels) == expected


def test_price_source_prefers_the_board_then_the_table_then_the_catalog(tmp_path: Path) -> None:
    prices = PriceSource(prices={AZ_SPOT: 0.5}, state_dir=str(tmp_path), refresh_s=0.0)
    assert prices.price(AWS_OD, now=1.0) == pytest.approx(0.526)  # shipped catalog
    assert prices.price(AZ_SPOT, now=2.0) == 0.5  # table over catalog
    PriceBoard(tmp_path).set(AZ_SPOT, 4.0)
    assert prices.price(AZ_SPOT, now=3.0) == 4.0  # board over table
    assert prices.price("aws/nowhere/-/x/spot", now=4.0) is None
    assert prices.price(None, now=5.0) is None


def test_price_source_rereads_the_board_only_after_refresh_s(tmp_path: Path) -> None:
    PriceBoard(tmp_path).set(AZ_SPOT, 1.0)
    prices = PriceSource(state_dir=str(tmp_path), use_catalog=False, refresh_s=10.0)
    assert prices.price(AZ_SPOT, now=100.0) == 1.0
    PriceBoard(tmp_path).set(AZ_SPOT, 2.0)
    assert prices.price(AZ_SPOT, now=105.0) == 1.0
    assert prices.price(AZ_SPOT, now=111.0) == 2.0


# -- the router over fake replicas ------------------------------------------------------------------

DEPLOYMENT = DeploymentID(name="d", app_name="a")


@dataclass
class FakeReplica:
    """The fields of ``RunningReplica`` the router reads."""

    replica_id: ReplicaID
    node_id: str
    max_ongoing_requests: int = 8
    availability_zone: str | None = None
    multiplexed_model_ids: frozenset[str] = frozenset()


class TableRouter(CostLatencyRouter):
    """The router with a fixed node table in place of the GCS."""

    nodes: ClassVar[dict[str, NodeFacts]] = {}
    draining: ClassVar[set[str]] = set()
    reads: ClassVar[int] = 0

    def read_node_table(self) -> dict[str, NodeFacts]:
        type(self).reads += 1
        return dict(self.nodes)

    def read_draining_nodes(self) -> set[str]:
        return set(self.draining)


def make_router(**kwargs: object) -> TableRouter:
    """A router whose cluster state the test refreshes itself (``refresh``), its thread stopped."""
    router = TableRouter(deployment_id=DEPLOYMENT, handle_source=DeploymentHandleSource.UNKNOWN)
    router.initialize_state(**{"slo_ms": 100, "service_ms": 10, "use_catalog": False, "drain_refresh_s": 0.0,
                               "prices": {AWS_OD: 0.526, AZ_SPOT: 0.0616}, **kwargs})
    router.cluster_state.stop()
    router.cluster_state.refresh()
    return router


def replica(name: str, node: str) -> FakeReplica:
    return FakeReplica(ReplicaID(unique_id=name, deployment_id=DEPLOYMENT), node)


EAST = replica("east", "n-aws")
WEST = replica("west", "n-azure")
TableRouter.nodes = {
    "n-aws": NodeFacts("aws", "us-east-1", AWS_OD),
    "n-azure": NodeFacts("azure", "westus2", AZ_SPOT),
    "n-dead": NodeFacts("azure", "eastus", None, alive=False),
}


def choose(router: TableRouter, replicas: list[FakeReplica], session: str | None) -> list[list[str]]:
    for r in replicas:  # a known, empty queue unless the test set one (unknown counts as full)
        if router.replica_queue_len_cache.get(r.replica_id) is None:
            router.replica_queue_len_cache.update(r.replica_id, 0)

    async def go() -> list[list[str]]:
        request = PendingRequest(args=[], kwargs={}, metadata=RequestMetadata(
            request_id="r", internal_request_id="i", session_id=session or ""))
        ranks = await router.choose_replicas(replicas, request)  # type: ignore[arg-type]
        assert request.routing_context.should_backoff
        return [[r.replica_id.unique_id for r in rank] for rank in ranks]

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ("eu-west-1", [["east"], ["west"]]),  # westus2 is 130 + 10 ms from Europe: misses 100 ms
        ("us-west-2/abc", [["west"], ["east"]]),  # both keep it: cheaper first
        (None, [["west"], ["east"]]),
        ("unknown-9", [["west"], ["east"]]),
    ],
)
def test_router_ranks_by_client_region(session: str | None, expected: list[list[str]]) -> None:
    router = make_router()
    assert choose(router, [EAST, WEST], session) == expected
    assert router.decisions[-1].ranked[0].replica.replica_id == expected[0][0]


def test_router_default_client_region_applies_without_a_header() -> None:
    router = make_router(default_client_region="eu-west-1")
    assert choose(router, [EAST, WEST], None) == [["east"], ["west"]]
    assert choose(router, [EAST, WEST], "us-west-2") == [["west"], ["east"]]


def test_router_counts_the_queue() -> None:
    router = make_router()
    router.replica_queue_len_cache.update(WEST.replica_id, 5)  # 10 + 6 * 10 = 70 ms: still keeps 100 ms
    assert choose(router, [EAST, WEST], "us-west-2") == [["west"], ["east"]]
    router.replica_queue_len_cache.update(WEST.replica_id, 9)  # 10 + 10 * 10 = 110 ms: misses
    assert choose(router, [EAST, WEST], "us-west-2") == [["east"], ["west"]]


def test_router_follows_the_price_board(tmp_path: Path) -> None:
    router = make_router(state_dir=str(tmp_path), price_refresh_s=0.0)
    assert choose(router, [EAST, WEST], "us-east-1") == [["west"], ["east"]]
    PriceBoard(tmp_path).set(AZ_SPOT, 3.0)
    assert choose(router, [EAST, WEST], "us-east-1") == [["west"], ["east"]]  # not read on the request path
    router.cluster_state.refresh()
    assert choose(router, [EAST, WEST], "us-east-1") == [["east"], ["west"]]


def test_router_skips_replicas_on_dead_nodes() -> None:
    router = make_router()
    ghost = replica("ghost", "n-dead")
    assert choose(router, [ghost, EAST], "eu-west-1") == [["east"]]
    only_dead = choose(router, [ghost], "eu-west-1")
    assert only_dead == [["ghost"]]  # nothing else to try: Serve's own error handling takes over


def test_router_never_reads_the_gcs_and_asks_for_unknown_nodes() -> None:
    saved = dict(TableRouter.nodes)
    try:
        router = make_router(node_refresh_s=3600.0)
        clock = [time.monotonic() + 1000.0]
        router.cluster_state.clock = lambda: clock[0]
        router.cluster_state.want_nodes()
        router.cluster_state.refresh()  # the node table read at the fake clock's now
        TableRouter.reads = 0
        newcomer = replica("new", "n-new")
        TableRouter.nodes = {**saved, "n-new": NodeFacts("aws", "us-east-1", AWS_OD, alive=False)}
        assert choose(router, [newcomer, WEST], "us-west-2") == [["west"], ["new"]]  # unknown: unpriced
        assert choose(router, [newcomer, WEST], "us-west-2") == [["west"], ["new"]]
        assert TableRouter.reads == 0  # the request path read nothing
        router.cluster_state.refresh()
        assert TableRouter.reads == 0  # asked for, but the last read is under NODE_RETRY_S old
        clock[0] += NODE_RETRY_S
        router.cluster_state.refresh()  # the thread's next pass: asked for, so read before node_refresh_s
        assert TableRouter.reads == 1
        assert choose(router, [newcomer, WEST], "us-west-2") == [["west"]]  # now known dead
        clock[0] += NODE_RETRY_S
        router.cluster_state.refresh()
        assert TableRouter.reads == 1  # known nodes ask for nothing
    finally:
        TableRouter.nodes = saved


def test_router_ranks_replicas_on_draining_nodes_last() -> None:
    router = make_router()
    try:
        TableRouter.draining = {"n-azure"}
        router.cluster_state.refresh()
        assert choose(router, [EAST, WEST], "us-west-2") == [["east"], ["west"]]
        assert router.decisions[-1].draining == 1
        TableRouter.draining = {"n-azure", "n-aws"}  # everything drains: the usual order among them
        router.cluster_state.refresh()
        assert choose(router, [EAST, WEST], "us-west-2") == [["west"], ["east"]]
        TableRouter.draining = set()  # the drain was cancelled
        router.cluster_state.refresh()
        assert choose(router, [EAST, WEST], "us-west-2") == [["west"], ["east"]]
    finally:
        TableRouter.draining = set()


def test_router_refuses_unknown_kwargs_and_regions() -> None:
    router = TableRouter(deployment_id=DEPLOYMENT, handle_source=DeploymentHandleSource.UNKNOWN)
    with pytest.raises(TypeError, match="slo_msec"):
        router.initialize_state(slo_msec=100)
    with pytest.raises(ValueError, match="not in the RTT table"):
        router.initialize_state(default_client_region="mars-1")


# -- spread --------------------------------------------------------------------------------------------


def test_serving_pool_node_type_and_deployment_options_agree() -> None:
    node_type = serving_pool_node_type(clouds=["aws", "azure"], replicas=3, min_clouds=2, min_on_demand=1)
    assert node_type["node_config"]["pool"] == {
        "min_clouds": 2, "min_on_demand": 1, "accelerator": "T4", "accelerator_count": 1,
        "clouds": ["aws", "azure"]}
    assert node_type["resources"]["serve_slot"] == 1
    assert (node_type["min_workers"], node_type["max_workers"]) == (3, 4)
    options = multicloud_deployment_options(replicas=3, slo=Slo(150, 15), weights=Weights(1, 0.002),
                                            default_client_region="us-east-1")
    assert options["num_replicas"] == 3
    assert options["ray_actor_options"]["resources"] == {"serve_slot": 1}
    kwargs = options["request_router_config"]["request_router_kwargs"]
    assert kwargs == {"slo_ms": 150, "service_ms": 15, "price_weight": 1, "latency_weight": 0.002,
                      "default_client_region": "us-east-1"}
    assert "request_router_config" not in multicloud_deployment_options(slo=None)
    assert router_config()["request_router_class"] == "ray_multicloud.serve.router:CostLatencyRouter"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"replicas": 1, "min_clouds": 2}, "min_clouds=2 needs at least"),
        ({"replicas": 2, "min_on_demand": 3}, "min_on_demand"),
        ({"replicas": 0}, "replicas must be"),
        ({"min_clouds": 0}, "min_clouds must be"),
    ],
)
def test_spread_refuses_impossible_spreads(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        multicloud_deployment_options(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        serving_pool_node_type(**kwargs)  # type: ignore[arg-type]


def test_serving_pool_refuses_too_few_clouds() -> None:
    with pytest.raises(ValueError, match="only clouds"):
        serving_pool_node_type(clouds=["aws"], min_clouds=2)


# -- load generator summaries ------------------------------------------------------------------------


def sample(phase: str, ms: float, ok: bool = True, cloud: str = "aws") -> Sample:
    return Sample(0, phase, 0.0, ms / 1000, ok, 200 if ok else 500, "" if ok else "boom", "",
                  {"cloud": cloud, "region": "r"} if ok else {})


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_summarise_counts_failures_and_where_requests_were_served() -> None:
    samples = [sample("a", 10), sample("a", 30, cloud="azure"), sample("a", 50, ok=False), sample("b", 5)]
    a, b, c = summarise(samples, ["a", "b", "c"])
    assert (a.sent, a.failed, a.p50_ms, a.max_ms) == (3, 1, 30, 50)
    assert a.served_by == {"aws/r": 1, "azure/r": 1}
    assert a.failed_pct == pytest.approx(100 / 3)
    assert (b.sent, b.failed, c.sent, c.failed_pct) == (1, 0, 0, 0.0)


def test_router_names_a_region_pair_the_rtt_table_lacks_once(caplog: pytest.LogCaptureFixture) -> None:
    saved = dict(TableRouter.nodes)
    try:
        TableRouter.nodes = {**saved, "n-tokyo": NodeFacts("aws", "ap-south-1", None)}  # Mumbai: not in the table
        router = make_router()
        tokyo = replica("tokyo", "n-tokyo")
        with caplog.at_level("ERROR", logger="ray_multicloud.serve.router"):
            assert choose(router, [tokyo, EAST], "eu-west-1") == [["east"], ["tokyo"]]
            assert choose(router, [tokyo, EAST], "eu-west-1") == [["east"], ["tokyo"]]
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1
        assert "eu-west-1 <-> ap-south-1" in errors[0] and "region_rtt.json" in errors[0]
    finally:
        TableRouter.nodes = saved
