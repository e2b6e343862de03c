"""``CostLatencyRouter``: a Ray Serve request router that sends each request to the cheapest replica
that keeps the latency SLO for the request's client region, else to the fastest.

Use it per deployment (Ray Serve 2.60, ``RequestRouter`` API, alpha)::

    from ray.serve.config import RequestRouterConfig
    @serve.deployment(request_router_config=RequestRouterConfig(
        request_router_class="ray_multicloud.serve.router:CostLatencyRouter",
        request_router_kwargs={"slo_ms": 200, "service_ms": 20, "price_weight": 1.0, "latency_weight": 0.0,
                               "default_client_region": "us-east-1", "state_dir": "/tmp/ray_multicloud/x"}))

Where the inputs come from:

- **client region**: the request's session id, i.e. the ``x-session-id`` HTTP header (or
  ``handle.options(session_id=...)``), read as ``<region>`` or ``<region>/<anything>``; otherwise
  ``default_client_region``; otherwise none (ranking by price and queue only).
- **replica region and cloud**: the Ray labels of the replica's node (``ray.io/availability-region``,
  ``rmc/cloud``), read once per node from the GCS node table.
- **node price** ($/h) of the node's offer (rebuilt from its labels: cloud, region, zone, instance type,
  market type), looked up in order: the cluster's price board (``state_dir``; live on the local cloud),
  the ``prices`` kwarg (offer id -> $/h), the shipped catalog snapshot. Re-read when the board changes.
- **queue length**: Serve's own per-replica queue-length cache (0 when unknown).
- **RTT**: ``rtt_table`` (a JSON path) or the shipped ``ray_multicloud/data/region_rtt.json``.

Each routing iteration returns one singleton rank per replica, best first: Serve tries the best
replica and, if it refuses (full queue) or is gone, the next. The router sets ``should_backoff`` so a
round in which every replica refuses backs off instead of spinning. A request is never sent to a replica
on a node the GCS reports dead, and replicas on nodes being drained (a preemption notice, a price move)
rank after all others, so traffic leaves a node before its deadline even while Serve is still starting
the replacement replica.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from ray_multicloud.serve.ranking import (
    Ranked,
    ReplicaView,
    RttTable,
    Slo,
    Weights,
    client_region_from_key,
    load_rtt_table,
    rank_replicas,
)

logger = logging.getLogger(__name__)

LABEL_CLOUD = "rmc/cloud"
LABEL_INSTANCE_TYPE = "rmc/instance-type"
LABEL_MARKET = "ray.io/market-type"
LABEL_REGION = "ray.io/availability-region"
LABEL_ZONE = "ray.io/availability-zone"
NODE_LOOKUP_TIMEOUT_S = 2.0
NODE_RETRY_S = 5.0
DRAIN_REFRESH_S = 1.0
PRICE_REFRESH_S = 2.0


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """Where a node runs and which offer it was bought on (None where its labels do not say)."""

    cloud: str
    region: str
    offer_id: str | None
    alive: bool = True


def offer_id_from_labels(labels: Mapping[str, str]) -> str | None:
    """The project's offer id (``cloud/region/zone-or-'-'/instance_type/market``) from a node's labels.

    The provider sets the zone label to the region for regionally priced offers, so zone == region
    means "no zone". None when a label is missing (a node the provider did not launch, e.g. the head).
    """
    keys = (LABEL_CLOUD, LABEL_REGION, LABEL_ZONE, LABEL_INSTANCE_TYPE, LABEL_MARKET)
    cloud, region, zone, itype, market = (labels.get(k, "") for k in keys)
    if not (cloud and region and itype and market):
        return None
    return f"{cloud}/{region}/{zone if zone and zone != region else '-'}/{itype}/{market}"


class PriceSource:
    """$/h of an offer id: price board (live) > ``prices`` table > shipped catalog (module docstring)."""

    def __init__(self, *, prices: Mapping[str, float] | None = None, state_dir: str | None = None,
                 use_catalog: bool = True, refresh_s: float = PRICE_REFRESH_S) -> None:
        self._table = {str(k): float(v) for k, v in (prices or {}).items()}
        self._state_dir = state_dir
        self._use_catalog = use_catalog
        self._catalog: dict[str, float] | None = None
        self._board: dict[str, float] = {}
        self._board_version = -1.0
        self._checked_at = -math.inf
        self._refresh_s = refresh_s

    def _catalog_prices(self) -> dict[str, float]:
        if self._catalog is None:
            self._catalog = {}
            if self._use_catalog:
                from ray_multicloud.pricing import load_catalog

                try:
                    self._catalog = {o.offer_id: o.price_per_hour for o in load_catalog().offers}
                except Exception:  # a router without a catalog still routes, by the other sources
                    logger.exception("could not load the shipped catalog; "
                                     "prices come from the board and the table only")
        return self._catalog

    def _refresh_board(self, now: float) -> None:
        if self._state_dir is None or now - self._checked_at < self._refresh_s:
            return
        self._checked_at = now
        from ray_multicloud.pricing.board import PriceBoard

        board = PriceBoard(self._state_dir)
        version = board.version()
        if version != self._board_version:
            self._board = {k: price for k, (price, _as_of) in board.read().items()}
            self._board_version = version

    def price(self, offer_id: str | None, *, now: float) -> float | None:
        if offer_id is None:
            return None
        self._refresh_board(now)
        for source in (self._board, self._table):
            if offer_id in source:
                return source[offer_id]
        return self._catalog_prices().get(offer_id)


def _node_table() -> dict[str, NodeFacts]:
    import ray

    out: dict[str, NodeFacts] = {}
    for node in ray.nodes():
        labels = {str(k): str(v) for k, v in (node.get("Labels") or {}).items()}
        out[str(node["NodeID"])] = NodeFacts(
            cloud=labels.get(LABEL_CLOUD, ""),
            region=labels.get(LABEL_REGION, ""),
            offer_id=offer_id_from_labels(labels),
            alive=bool(node.get("Alive", True)),
        )
    return out


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """One routing iteration, kept for inspection: the client region, the replicas in rank order, and how
    many of them (the last ones) are on draining nodes."""

    at: float
    client_region: str | None
    ranked: tuple[Ranked, ...]
    draining: int = 0


class CostLatencyRouter(RequestRouter):
    """Ray Serve request router over ``ray_multicloud.serve.ranking``. See the module docstring."""

    def initialize_state(
        self,
        slo_ms: float = 200.0,
        service_ms: float = 20.0,
        price_weight: float = 1.0,
        latency_weight: float = 0.0,
        default_client_region: str | None = None,
        rtt_table: str | None = None,
        prices: Mapping[str, float] | None = None,
        state_dir: str | None = None,
        use_catalog: bool = True,
        price_refresh_s: float = PRICE_REFRESH_S,
        drain_refresh_s: float = DRAIN_REFRESH_S,
        keep_decisions: int = 64,
        **unknown: Any,
    ) -> None:
        """Called by Serve with ``RequestRouterConfig.request_router_kwargs``; unknown keys are refused."""
        if unknown:
            raise TypeError(f"CostLatencyRouter: unknown request_router_kwargs {sorted(unknown)}")
        self._slo = Slo(target_ms=float(slo_ms), service_ms=float(service_ms))
        self._weights = Weights(price=float(price_weight), latency=float(latency_weight))
        self._table: RttTable = load_rtt_table(Path(rtt_table) if rtt_table else None)
        if default_client_region is not None and default_client_region not in self._table.regions:
            raise ValueError(f"default_client_region {default_client_region!r} is not in the RTT table "
                             f"({sorted(self._table.regions)})")
        self._default_region = default_client_region
        self._prices = PriceSource(prices=prices, state_dir=state_dir, use_catalog=use_catalog,
                                   refresh_s=float(price_refresh_s))
        self._nodes: dict[str, NodeFacts] = {}
        self._nodes_fetched_at = -math.inf
        self._draining: frozenset[str] = frozenset()
        self._draining_at = -math.inf
        self._drain_refresh_s = float(drain_refresh_s)
        self.decisions: deque[RoutingDecision] = deque(maxlen=max(1, int(keep_decisions)))

    # -- inputs -------------------------------------------------------------------------------------

    def client_region(self, pending_request: PendingRequest | None) -> str | None:
        key = pending_request.metadata.session_id if pending_request is not None else None
        return client_region_from_key(key, self._table.regions) or self._default_region

    async def _node_facts(self, node_ids: Sequence[str | None]) -> dict[str, NodeFacts]:
        """Facts for the given nodes; the GCS node table is read again when an unknown node shows up
        (at most every ``NODE_RETRY_S``), off the event loop and with a timeout."""
        missing = any(n and n not in self._nodes for n in node_ids)
        now = time.monotonic()
        if missing and now - self._nodes_fetched_at >= NODE_RETRY_S:
            self._nodes_fetched_at = now
            loop = asyncio.get_running_loop()
            try:
                fresh = await asyncio.wait_for(loop.run_in_executor(None, self.read_node_table),
                                               NODE_LOOKUP_TIMEOUT_S)
            except Exception:  # keep routing with what is known; unknown nodes rank by price "unknown"
                logger.warning("node table lookup failed; routing with cached node facts", exc_info=True)
            else:
                self._nodes.update(fresh)
        return self._nodes

    def read_node_table(self) -> dict[str, NodeFacts]:
        """Facts of every node the GCS knows (blocking; called off the event loop)."""
        return _node_table()

    async def _draining_nodes(self) -> frozenset[str]:
        """Ids of the nodes being drained (a preemption notice, a price move, an idle scale-down), read
        from the GCS at most every ``drain_refresh_s``, off the event loop; the last answer on failure."""
        now = time.monotonic()
        if now - self._draining_at >= self._drain_refresh_s:
            self._draining_at = now
            loop = asyncio.get_running_loop()
            try:
                fresh = await asyncio.wait_for(loop.run_in_executor(None, self.read_draining_nodes),
                                               NODE_LOOKUP_TIMEOUT_S)
            except Exception:
                logger.warning("draining-node lookup failed; using the last answer", exc_info=True)
            else:
                self._draining = frozenset(fresh)
        return self._draining

    def read_draining_nodes(self) -> set[str]:
        """Hex ids of the nodes the GCS is draining (blocking; called off the event loop)."""
        from ray._private.state import state

        return {str(k) for k in state.get_draining_nodes()}

    def replica_views(self, replicas: Sequence[RunningReplica],
                      nodes: Mapping[str, NodeFacts]) -> list[ReplicaView]:
        now = time.time()
        views = []
        for r in replicas:
            facts = nodes.get(r.node_id or "")
            queue = self.replica_queue_len_cache.get(r.replica_id)
            views.append(ReplicaView(
                replica_id=r.replica_id.unique_id,
                cloud=facts.cloud if facts else "",
                region=facts.region if facts else "",
                price_per_hour=self._prices.price(facts.offer_id if facts else None, now=now),
                queue_len=int(queue or 0),
            ))
        return views

    # -- the RequestRouter hook ---------------------------------------------------------------------

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is not None:
            # Back off between full rounds when every replica refuses (Serve spins otherwise).
            pending_request.routing_context.should_backoff = True
        if not candidate_replicas:
            return []
        nodes = await self._node_facts([r.node_id for r in candidate_replicas])
        draining = await self._draining_nodes()
        live = [r for r in candidate_replicas if nodes.get(r.node_id or "", NodeFacts("", "", None)).alive]
        pool = live or candidate_replicas
        # A replica on a draining node is about to go (its node dies at the drain deadline): rank it
        # after every other replica, so requests stop landing there and none is in flight at the end.
        staying = [r for r in pool if (r.node_id or "") not in draining]
        leaving = [r for r in pool if (r.node_id or "") in draining]
        region = self.client_region(pending_request)
        ranked = tuple(entry for group in (staying, leaving) for entry in rank_replicas(
            self.replica_views(group, nodes), region, self._table, self._slo, self._weights))
        self.decisions.append(RoutingDecision(time.time(), region, ranked, len(leaving)))
        by_id = {r.replica_id.unique_id: r for r in pool}
        return [[by_id[entry.replica.replica_id]] for entry in ranked]
