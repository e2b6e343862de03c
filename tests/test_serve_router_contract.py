"""Ray Serve's router contract, held by ``CostLatencyRouter``: what a Serve user relies on from any router.

The router is driven the way Serve drives it, through the base class's own entry point
(``_choose_replica_for_request``: pending-request queues, routing tasks, probing, backoff), over fake
replicas whose queue-length answers the test releases one at a time. What must hold:

- requests get replicas first in, first out under contention, also when the GCS hangs;
- routing tasks never exceed ``min(2 * replicas, max_num_routing_tasks_cap)`` and all end when done;
- a request for a multiplexed model goes to a replica that has it, even a dearer one, then falls back;
- the prefer-same-node / prefer-same-zone options break ties of the cost ranking, whatever the ids;
- a replica whose queue length is unknown is not taken for empty;
- a slow or failing GCS never holds a request; a stale cluster state is flagged, and used.

Serve's own tests (``test_pow_2_request_router.py``) are not copied here; these are written for this
router, with expected replicas worked out from the prices and the SLO by hand.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
from ray.serve._private.common import DeploymentHandleSource, DeploymentID, ReplicaID, RequestMetadata
from ray.serve.request_router import PendingRequest

from ray_multicloud.serve.router import CostLatencyRouter, NodeFacts

DEPLOYMENT = DeploymentID(name="contract", app_name="app")
ROUTER_NODE = "router-node"
ROUTER_ZONE = "zone-a"
MAX_ONGOING = 10
FULL = MAX_ONGOING + 1  # an answer that makes a replica refuse
WAIT_S = 5.0  # a router that breaks the contract fails here instead of hanging

CHEAP = "aws/us-east-1/-/cheap/spot"
DEAR = "aws/us-east-1/-/dear/on-demand"
PRICES = {CHEAP: 0.10, DEAR: 1.00, "aws/eu-west-1/-/cheap/spot": 0.10, "aws/us-west-2/-/cheap/spot": 0.10}
# Nodes the fake GCS knows: one cheap and one dear node per place the router may prefer.
NODES = {
    ROUTER_NODE: NodeFacts("aws", "us-east-1", DEAR),
    "cheap-1": NodeFacts("aws", "us-east-1", CHEAP),
    "cheap-2": NodeFacts("aws", "us-east-1", CHEAP),
    "dear-1": NodeFacts("aws", "us-east-1", DEAR),
    "dear-2": NodeFacts("aws", "us-east-1", DEAR),
    "eu": NodeFacts("aws", "eu-west-1", "aws/eu-west-1/-/cheap/spot"),
    "us-west": NodeFacts("aws", "us-west-2", "aws/us-west-2/-/cheap/spot"),
}


class FakeReplica:
    """The parts of ``RunningReplica`` a router touches. ``answer(n)`` releases queue-length probes; with
    ``one_answer_each`` every probe after the first answered one waits for the next ``answer``, so the
    test decides when each routing attempt can succeed."""

    def __init__(self, name: str, *, node_id: str = "", zone: str | None = None, models: Iterable[str] = (),
                 one_answer_each: bool = False) -> None:
        self.replica_id = ReplicaID(unique_id=name, deployment_id=DEPLOYMENT)
        self.node_id = node_id
        self.availability_zone = zone
        self.multiplexed_model_ids = set(models)
        self.max_ongoing_requests = MAX_ONGOING
        self.probes = 0
        self._queue_len = 0
        self._ready = asyncio.Event()
        self._one_answer_each = one_answer_each

    def answer(self, queue_len: int) -> None:
        self._queue_len = queue_len
        self._ready.set()

    @property
    def waiting_for_answer(self) -> bool:
        return not self._ready.is_set()

    async def get_queue_len(self, *, deadline_s: float) -> int:
        self.probes += 1
        while not self._ready.is_set():
            await self._ready.wait()
        if self._one_answer_each:
            self._ready.clear()
        return self._queue_len

    def update_replica_info(self, info: Any) -> None:
        self.multiplexed_model_ids = set(info.multiplexed_model_ids)

    def push_proxy_handle(self, handle: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"FakeReplica({self.replica_id.unique_id})"


class FakeGcs:
    """The two GCS reads the router's cluster-state thread makes. ``hold()`` makes every read wait until
    ``release()``; ``failing`` makes them raise."""

    def __init__(self, nodes: dict[str, NodeFacts] | None = None) -> None:
        self.nodes = dict(NODES if nodes is None else nodes)
        self.draining: set[str] = set()
        self.failing = False
        self.reads = 0
        self._open = threading.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _read(self) -> None:
        self.reads += 1
        self._open.wait()
        if self.failing:
            raise ConnectionError("GCS unreachable")

    def node_table(self) -> dict[str, NodeFacts]:
        self._read()
        return dict(self.nodes)

    def draining_nodes(self) -> set[str]:
        self._read()
        return set(self.draining)


class ContractRouter(CostLatencyRouter):
    """``CostLatencyRouter`` with the fake GCS in place of Ray's (the only change: the fixture's)."""

    gcs: FakeGcs

    def read_node_table(self) -> dict[str, NodeFacts]:
        return self.gcs.node_table()

    def read_draining_nodes(self) -> set[str]:
        return self.gcs.draining_nodes()


def build_router(*, prefer_node: bool = False, prefer_az: bool = False, zone: str | None = None,
                 gcs: FakeGcs | None = None, wait_for_state: bool = True, **kwargs: Any) -> ContractRouter:
    """Built as Serve builds a router (constructor, then ``initialize_state`` with the deployment's
    kwargs), with Serve's test backoffs of 1 ms. By default the first cluster state is read before the
    test starts, as it is long before the first request in a running deployment."""
    router = ContractRouter(
        deployment_id=DEPLOYMENT,
        handle_source=DeploymentHandleSource.REPLICA,
        self_node_id=ROUTER_NODE,
        self_availability_zone=zone,
        prefer_local_node_routing=prefer_node,
        prefer_local_az_routing=prefer_az,
        use_replica_queue_len_cache=False,
    )
    router.initial_backoff_s = 0.001
    router.backoff_multiplier = 1
    router.max_backoff_s = 0.001
    router.gcs = gcs or FakeGcs()
    router.initialize_state(**{"slo_ms": 100, "service_ms": 10, "use_catalog": False, "prices": PRICES,
                               **kwargs})
    if wait_for_state:
        router.cluster_state.refresh()
    return router


def request(*, model_id: str = "", session_id: str = "", created_at: float | None = None) -> PendingRequest:
    n = next(_request_ids)
    metadata = RequestMetadata(request_id=f"req-{n}", internal_request_id=f"int-{n}",
                               multiplexed_model_id=model_id, session_id=session_id)
    if created_at is None:
        return PendingRequest(args=[], kwargs={}, metadata=metadata)
    return PendingRequest(args=[], kwargs={}, metadata=metadata, created_at=created_at)


_request_ids = itertools.count(1)


def route(router: ContractRouter, pending: PendingRequest, *, is_retry: bool = False) -> asyncio.Task[Any]:
    loop = asyncio.get_running_loop()
    return loop.create_task(router._choose_replica_for_request(pending, is_retry=is_retry))


async def routed(router: ContractRouter, n: int, **kw: Any) -> list[Any]:
    """Route ``n`` concurrent requests and return the replica each one got."""
    tasks = [route(router, request(**kw)) for _ in range(n)]
    return list(await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S))


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def release_in_order(tasks: list[asyncio.Task[Any]], release: Callable[[], None],
                           after_each: Callable[[int], None] = lambda _left: None) -> None:
    """``release()`` room for one request at a time until every task has its replica; whatever finishes
    must be the oldest requests still waiting, in order (FIFO). A release may go unused (a probe of a
    routing task Serve cancelled can take it), so this releases again rather than counting."""
    pending = list(tasks)
    deadline = time.monotonic() + WAIT_S
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} requests never routed"
        release()
        done, _ = await asyncio.wait(pending, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0)
        done = {t for t in pending if t.done()}
        assert done == set(pending[:len(done)]), "a later request got a replica before an earlier one"
        pending = pending[len(done):]
        if done:
            after_each(len(pending))


async def none_done(tasks: list[asyncio.Task[Any]], s: float = 0.02) -> bool:
    done, _ = await asyncio.wait(tasks, timeout=s)
    return not done


def run(router: ContractRouter, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` on a fresh loop; then Serve's invariant: every routing task has ended and nothing is
    pending. The cluster-state thread is stopped in any case."""

    async def main() -> None:
        try:
            await body()
            await until(lambda: router.curr_num_routing_tasks == 0, "routing tasks to end")
            assert router.num_pending_requests == 0
        finally:
            router.gcs.release()  # before the loop closes: it waits for any thread still reading

    try:
        asyncio.run(main())
    finally:
        router.cluster_state.stop()
        router.gcs.release()


LOCALITY_OPTIONS = [
    pytest.param({"prefer_node": True, "prefer_az": True}, id="node+az"),
    pytest.param({"prefer_node": True}, id="node"),
    pytest.param({"prefer_az": True}, id="az"),
    pytest.param({}, id="none"),
]


# -- FIFO under contention ---------------------------------------------------------------------------


@pytest.mark.parametrize("options", LOCALITY_OPTIONS)
@pytest.mark.parametrize("gcs_hangs", [False, True], ids=["gcs-ok", "gcs-hangs"])
def test_requests_are_routed_first_in_first_out(options: dict[str, bool], gcs_hangs: bool) -> None:
    gcs = FakeGcs()
    if gcs_hangs:
        gcs.hold()
    router = build_router(gcs=gcs, wait_for_state=not gcs_hangs, **options)

    async def body() -> None:
        tasks = [route(router, request()) for _ in range(10)]
        assert await none_done(tasks)  # no replica yet
        replica = FakeReplica("r1", node_id="cheap-1", one_answer_each=True)
        replica.answer(0)
        router.update_replicas([replica])  # type: ignore[list-item]
        await until(lambda: replica.waiting_for_answer, "the first probe to take its answer")
        await release_in_order(tasks, lambda: replica.answer(0))

    run(router, body)


def test_a_free_replica_goes_to_the_oldest_request_whoever_found_it() -> None:
    # Two requests from two continents, SLO 100 ms, shipped RTT eu-west-1 <-> us-west-2 125 ms: each
    # request's own best replica is the one in its region. The older (EU) request's replica is slow to
    # answer; the newer (US) request's routing finds the US replica at once. FIFO: the US replica goes
    # to the EU request, the older one; the US request waits for the next free replica.
    router = build_router()
    router.queue_len_response_deadline_s = 100.0
    router.max_queue_len_response_deadline_s = 100.0

    async def body() -> None:
        eu = FakeReplica("eu", node_id="eu", one_answer_each=True)
        us = FakeReplica("us", node_id="us-west")
        eu.answer(0)
        us.answer(0)
        router.update_replicas([eu, us])  # type: ignore[list-item]
        await until(lambda: eu.waiting_for_answer and router.replica_queue_len_cache.get(us.replica_id) == 0,
                    "the joining probes")
        older = route(router, request(session_id="eu-west-1"))
        newer = route(router, request(session_id="us-west-2"))
        assert await asyncio.wait_for(older, WAIT_S) is us
        assert await asyncio.wait_for(newer, WAIT_S) in {us, eu}

    run(router, body)


def test_retried_requests_keep_their_place_by_creation_time() -> None:
    router = build_router()

    async def body() -> None:
        start = time.time()
        pending = [request(created_at=start + i) for i in range(8)]
        order = [3, 0, 7, 1, 6, 2, 5, 4]  # retried in a scrambled order
        tasks = {i: route(router, pending[i], is_retry=True) for i in order}
        assert await none_done(list(tasks.values()))
        replica = FakeReplica("r1", node_id="cheap-1", one_answer_each=True)
        replica.answer(0)
        router.update_replicas([replica])  # type: ignore[list-item]
        await until(lambda: replica.waiting_for_answer, "the first probe to take its answer")
        await release_in_order([tasks[i] for i in range(len(pending))], lambda: replica.answer(0))

    run(router, body)


# -- routing-task cap --------------------------------------------------------------------------------


@pytest.mark.parametrize("hard_cap", [None, 2])
def test_routing_tasks_stay_within_the_cap(hard_cap: int | None) -> None:
    router = build_router(prefer_node=True, prefer_az=True)
    if hard_cap is not None:
        router.max_num_routing_tasks_cap = hard_cap

    def cap(replicas: int) -> int:
        return min(2 * replicas, hard_cap if hard_cap is not None else 50)

    async def body() -> None:
        tasks = [route(router, request()) for _ in range(10)]
        assert await none_done(tasks)
        assert router.curr_num_routing_tasks == 0  # none while there is no replica
        r1 = FakeReplica("r1", node_id="cheap-1", one_answer_each=True)
        r1.answer(FULL)
        router.update_replicas([r1])  # type: ignore[list-item]
        assert await none_done(tasks)
        assert router.curr_num_routing_tasks == cap(1)
        r2 = FakeReplica("r2", node_id="dear-1")
        r2.answer(FULL)
        router.update_replicas([r1, r2])  # type: ignore[list-item]
        assert router.curr_num_routing_tasks == cap(2)
        counts: list[tuple[int, int]] = []
        await release_in_order(tasks, lambda: r1.answer(0),
                               lambda left: counts.append((left, router.curr_num_routing_tasks)))
        # As the queue drains, the tasks follow it down: never more than the cap or than requests left.
        assert all(n <= min(left + 1, cap(2)) for left, n in counts), counts
        assert any(n == cap(2) for _, n in counts) and counts[-1][1] <= 1, counts

    run(router, body)


# -- model multiplexing ------------------------------------------------------------------------------


def test_a_model_goes_to_the_replica_that_has_it_even_when_dearer() -> None:
    router = build_router()

    async def body() -> None:
        has_m1 = FakeReplica("dear-m1", node_id="dear-1", models={"m1"})
        has_m2 = FakeReplica("dear-m2", node_id="dear-2", models={"m2"})
        bare = FakeReplica("cheap-bare", node_id="cheap-1")
        for r in (has_m1, has_m2, bare):
            r.answer(0)
        router.update_replicas([has_m1, has_m2, bare])  # type: ignore[list-item]
        assert set(await routed(router, 10)) == {bare}  # no model: the cheapest
        assert set(await routed(router, 10, model_id="m1")) == {has_m1}
        assert set(await routed(router, 10, model_id="m2")) == {has_m2}
        # Interleaved model ids each find their own replica.
        tasks = [route(router, request(model_id=m)) for m in ("m1", "m2", "m1", "m2")]
        got = await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
        assert got == [has_m1, has_m2, has_m1, has_m2]

    run(router, body)


def test_a_model_nobody_has_goes_to_the_replica_with_fewest_models() -> None:
    router = build_router()

    async def body() -> None:
        two = FakeReplica("cheap-two", node_id="cheap-1", models={"m1", "m2"})
        one = FakeReplica("dear-one", node_id="dear-1", models={"m2"})
        two.answer(0)
        one.answer(0)
        router.update_replicas([two, one])  # type: ignore[list-item]
        # Serve's rule before the price: loading m3 where the fewest models are evicts the least.
        assert set(await routed(router, 10, model_id="m3")) == {one}

    run(router, body)


def test_a_model_falls_back_to_other_replicas_when_its_replica_is_full() -> None:
    router = build_router()

    async def body() -> None:
        busy = FakeReplica("cheap-m1", node_id="cheap-1", models={"m1"})
        busy.answer(MAX_ONGOING)
        other = FakeReplica("dear-bare", node_id="dear-1")
        other.answer(0)
        router.update_replicas([busy, other])  # type: ignore[list-item]
        assert set(await routed(router, 20, model_id="m1")) == {other}

    run(router, body)


def test_multiplexed_requests_are_fifo_per_model() -> None:
    router = build_router()

    async def body() -> None:
        m1: list[asyncio.Task[Any]] = []
        m2: list[asyncio.Task[Any]] = []
        for _ in range(5):
            m1.append(route(router, request(model_id="m1")))
            m2.append(route(router, request(model_id="m2")))
        assert await none_done(m1 + m2)
        r1 = FakeReplica("r1", node_id="cheap-1", models={"m1"}, one_answer_each=True)
        r2 = FakeReplica("r2", node_id="cheap-2", models={"m2"}, one_answer_each=True)
        r1.answer(0)
        r2.answer(0)
        router.update_replicas([r1, r2])  # type: ignore[list-item]
        await until(lambda: r1.waiting_for_answer and r2.waiting_for_answer, "the first probes")

        def release_both() -> None:
            r1.answer(0)
            r2.answer(0)

        await asyncio.gather(release_in_order(m1, release_both), release_in_order(m2, lambda: None))
        assert {t.result() for t in m1} == {r1} and {t.result() for t in m2} == {r2}

    run(router, body)


# -- locality as a tie-break -------------------------------------------------------------------------

ID_ORDERS = [pytest.param(("a", "b", "c"), id="ids-a-b-c"), pytest.param(("c", "b", "a"), id="ids-c-b-a")]


@pytest.mark.parametrize("ids", ID_ORDERS)
def test_same_node_wins_a_price_tie_and_never_a_price_difference(ids: tuple[str, str, str]) -> None:
    router = build_router(prefer_node=True, prefer_az=True, zone=ROUTER_ZONE)

    async def body() -> None:
        local = FakeReplica(ids[0], node_id=ROUTER_NODE, zone=ROUTER_ZONE)  # dear, as dear-1
        remote = FakeReplica(ids[1], node_id="dear-1", zone="zone-b")
        local.answer(0)
        remote.answer(0)
        router.update_replicas([remote, local])  # type: ignore[list-item]
        assert set(await routed(router, 10)) == {local}
        local.answer(FULL)  # the local replica refuses: the other one takes the requests
        assert set(await routed(router, 10)) == {remote}
        local.answer(0)
        cheap = FakeReplica(ids[2], node_id="cheap-1", zone="zone-b")
        cheap.answer(0)
        router.update_replicas([remote, local, cheap])  # type: ignore[list-item]
        await until(lambda: router.replica_queue_len_cache.get(cheap.replica_id) == 0, "the joining probe")
        assert set(await routed(router, 10)) == {cheap}  # locality breaks ties only

    run(router, body)


@pytest.mark.parametrize("ids", ID_ORDERS)
def test_same_zone_wins_a_price_tie_when_only_zones_are_preferred(ids: tuple[str, str, str]) -> None:
    router = build_router(prefer_node=False, prefer_az=True, zone=ROUTER_ZONE)

    async def body() -> None:
        on_node = FakeReplica(ids[0], node_id=ROUTER_NODE, zone=ROUTER_ZONE)
        in_zone = FakeReplica(ids[1], node_id="dear-1", zone=ROUTER_ZONE)
        away = FakeReplica(ids[2], node_id="dear-2", zone="zone-b")
        for r in (on_node, in_zone, away):
            r.answer(0)
        router.update_replicas([away, in_zone, on_node])  # type: ignore[list-item]
        # Without the node preference, the router's own node is just one more node in the zone.
        assert set(await routed(router, 60)) == {on_node, in_zone}
        in_zone.answer(FULL)
        assert set(await routed(router, 10)) == {on_node}
        on_node.answer(FULL)
        assert set(await routed(router, 10)) == {away}

    run(router, body)


@pytest.mark.parametrize("ids", ID_ORDERS)
def test_without_locality_options_equal_replicas_share_the_load(ids: tuple[str, str, str]) -> None:
    router = build_router(zone=ROUTER_ZONE)

    async def body() -> None:
        replicas = [FakeReplica(ids[0], node_id=ROUTER_NODE, zone=ROUTER_ZONE),
                    FakeReplica(ids[1], node_id="dear-1", zone=ROUTER_ZONE),
                    FakeReplica(ids[2], node_id="dear-2", zone="zone-b")]
        for r in replicas:
            r.answer(0)
        router.update_replicas(replicas)  # type: ignore[list-item]
        assert set(await routed(router, 90)) == set(replicas)  # all three (each missed: (2/3)^90)

    run(router, body)


# -- unknown queue length ----------------------------------------------------------------------------


def test_a_replica_with_unknown_queue_length_is_not_taken_for_empty() -> None:
    # SLO 100 ms, 10 ms a request: an unknown queue counts as full, (10 + 1) * 10 = 110 ms, a miss; the
    # dear replica's known empty queue estimates 10 ms. Taken for empty, the cheap one would rank first
    # and the request would wait on its probe (100 s here).
    router = build_router()
    router.queue_len_response_deadline_s = 100.0
    router.max_queue_len_response_deadline_s = 100.0

    async def body() -> None:
        silent = FakeReplica("cheap", node_id="cheap-1")
        known = FakeReplica("dear", node_id="dear-1")
        known.answer(0)
        router.update_replicas([known])  # type: ignore[list-item]
        await until(lambda: router.replica_queue_len_cache.get(known.replica_id) == 0, "the joining probe")
        router.update_replicas([silent, known])  # type: ignore[list-item]
        assert set(await routed(router, 5)) == {known}
        view = {e.replica.replica_id: e for e in router.decisions[-1].ranked}["cheap"]
        assert (view.replica.queue_known, view.replica.queue_len) == (False, MAX_ONGOING)
        assert not view.keeps_slo
        assert "queue unknown" in view.reason
        # It was probed in the background meanwhile; once it answers, the cheap replica wins.
        assert silent.probes >= 2  # the probe when it joined, and the router's background probe
        silent.answer(0)
        await until(lambda: router.replica_queue_len_cache.get(silent.replica_id) == 0, "the probe's answer")
        assert set(await routed(router, 5)) == {silent}

    run(router, body)


# -- cluster state off the request path ----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["hangs", "fails"])
def test_a_slow_or_failing_gcs_never_holds_a_request(fault: str) -> None:
    gcs = FakeGcs()
    if fault == "hangs":
        gcs.hold()
    else:
        gcs.failing = True
    router = build_router(gcs=gcs, wait_for_state=False, drain_refresh_s=0.01, node_refresh_s=0.01)

    async def body() -> None:
        cheap = FakeReplica("z-cheap", node_id="cheap-1")
        dear = FakeReplica("a-dear", node_id="dear-1")
        cheap.answer(0)
        dear.answer(0)
        router.update_replicas([cheap, dear])  # type: ignore[list-item]
        started = time.monotonic()
        await routed(router, 50)
        assert time.monotonic() - started < 1.0  # 50 requests, the GCS never answering
        assert router.decisions[-1].stale and math.isinf(router.decisions[-1].state_age_s)
        assert all(e.replica.price_per_hour is None for e in router.decisions[-1].ranked)
        gcs.failing = False
        gcs.release()  # the GCS comes back: the thread's next pass brings prices
        await until(lambda: router.cluster_state.snapshot.node_prices.get("cheap-1") == 0.10, "fresh prices")
        assert set(await routed(router, 10)) == {cheap}
        assert not router.decisions[-1].stale

    run(router, body)


def test_a_stale_state_is_flagged_and_still_used() -> None:
    gcs = FakeGcs()
    router = build_router(gcs=gcs, state_max_age_s=30.0)
    router.cluster_state.stop()
    clock = [time.monotonic() + 1000.0]
    router.cluster_state.clock = lambda: clock[0]
    gcs.draining = {"cheap-1"}
    router.cluster_state.want_nodes()
    router.cluster_state.refresh()  # node table and drains read at clock[0]

    async def body() -> None:
        cheap = FakeReplica("cheap", node_id="cheap-1")
        dear = FakeReplica("dear", node_id="dear-1")
        cheap.answer(0)
        dear.answer(0)
        router.update_replicas([cheap, dear])  # type: ignore[list-item]
        assert set(await routed(router, 3)) == {dear}  # the cheap node is draining
        assert not router.decisions[-1].stale
        gcs.failing = True
        clock[0] += 31.0
        router.cluster_state.refresh()  # fails: the old answers stay, and age
        assert set(await routed(router, 3)) == {dear}  # still ranked last: the safe side
        assert router.decisions[-1].stale and router.decisions[-1].state_age_s == pytest.approx(31.0)

    run(router, body)

