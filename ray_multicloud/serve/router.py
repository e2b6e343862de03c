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
- **replica region, cloud, node price, alive, draining**: a ``ClusterSnapshot``
  (``ray_multicloud.serve.cluster_state``) that a background thread refreshes from the GCS node table
  (the node's Ray labels ``ray.io/availability-region``, ``rmc/cloud``, ...), the GCS draining-node list
  and the prices (the cluster's price board in ``state_dir``, live on the local cloud; the ``prices``
  kwarg, offer id -> $/h; the shipped catalog). The request path only reads the snapshot: it never
  waits on the GCS or a file, so a slow or unreachable GCS delays no request (it only ages the
  snapshot; see ``cluster_state`` for the staleness rule).
- **queue length**: Serve's own per-replica queue-length cache, which the base class fills by probing
  replicas. A replica whose length is unknown counts as full (its ``max_ongoing_requests``), never as
  empty, and is probed in the background so the next request knows it.
- **RTT**: ``rtt_table`` (a JSON path) or the shipped ``ray_multicloud/data/region_rtt.json``.

Serve's contract, kept as its power-of-two router keeps it:

- **First in, first out.** The router composes Serve's ``FIFOMixin``: whichever routing task finds a
  replica hands it to the oldest pending request (by model id first, for multiplexed requests), and
  ``choose_replicas`` does not await anything, so no request waits on another's lookups. The number of
  routing tasks is the base class's (``min(2 * replicas, max_num_routing_tasks_cap)``).
- **Model multiplexing.** A request with a ``multiplexed_model_id`` is routed among the replicas that
  have the model loaded (``MultiplexMixin.apply_multiplex_routing``): if none has it, or they refuse, the
  replicas with the fewest models, then, after Serve's matching timeout, all replicas. The cost/latency
  ranking orders the replicas within that set.
- **Locality.** With Serve's prefer-same-node / prefer-same-zone options (on by default in proxies),
  a replica on the router's node, then one in its zone, wins ties of the cost/latency ranking: between
  replicas of equal price (and both keeping the SLO, or equally fast when none does). It never makes a
  dearer replica win over a cheaper one.

Each routing iteration returns one singleton rank per replica, best first: Serve tries the best
replica and, if it refuses (full queue) or is gone, the next. The router sets ``should_backoff`` so a
round in which every replica refuses backs off instead of spinning. Replicas equal in everything are
ordered at random, so they share the load. A request is never sent to a replica on a node the GCS
reports dead (unless no other replica is left), and replicas on nodes being drained (a preemption
notice, a price move) rank after all others, so traffic leaves a node before its deadline even while
Serve is still starting the replacement replica.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.serve._private.common import ReplicaID
from ray.serve._private.request_router.request_router import FIFOMixin, LocalityMixin, MultiplexMixin
from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from ray_multicloud.serve.cluster_state import (
    DRAIN_REFRESH_S,
    MAX_AGE_S,
    NODE_REFRESH_S,
    PRICE_REFRESH_S,
    ClusterSnapshot,
    ClusterState,
    NodeFacts,
    PriceSource,
    offer_id_from_labels,
    read_gcs_draining_nodes,
    read_gcs_node_table,
)
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

__all__ = ["CostLatencyRouter", "NodeFacts", "PriceSource", "RoutingDecision", "offer_id_from_labels"]

_UNKNOWN_NODE = NodeFacts("", "", None)
SAME_NODE, SAME_ZONE, ELSEWHERE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """One routing iteration, kept for inspection: the client region, the replicas in rank order, how
    many of them (the last ones) are on draining nodes, and how old the cluster state was."""

    at: float
    client_region: str | None
    ranked: tuple[Ranked, ...]
    draining: int = 0
    state_age_s: float = 0.0
    stale: bool = False
    model_id: str = ""


class RankedReplicas(list[list[RunningReplica]]):
    """The ranks of one routing iteration, best first: a plain list, except how Serve walks it.

    Serve's routing task walks the ranks in order and, when the replica it found goes to an *earlier*
    request (FIFO) instead of its own, keeps walking. With one replica per rank that would send the next
    request to the next-best replica while the best one still has room. So, walked, a rank is offered
    again for as long as its replica keeps being handed out (``taken`` counts hand-outs per replica);
    a refusal moves on. Every repeat needs a hand-out to a pending request, so the walk ends.
    """

    def __init__(self, ranks: list[list[RunningReplica]], taken: Mapping[ReplicaID, int]) -> None:
        super().__init__(ranks)
        self._taken = taken

    def __iter__(self) -> Iterator[list[RunningReplica]]:
        for rank in list.__iter__(self):
            while True:
                before = sum(self._taken.get(r.replica_id, 0) for r in rank)
                yield rank
                if sum(self._taken.get(r.replica_id, 0) for r in rank) == before:
                    break


class CostLatencyRouter(FIFOMixin, LocalityMixin, MultiplexMixin, RequestRouter):
    """Ray Serve request router over ``ray_multicloud.serve.ranking``. See the module docstring.

    The mixins are Serve's own, in the order its power-of-two router composes them: FIFO fulfilment,
    the colocated-replica sets for locality, the model-id -> replicas index for multiplexing.
    """

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
        node_refresh_s: float = NODE_REFRESH_S,
        state_max_age_s: float = MAX_AGE_S,
        keep_decisions: int = 64,
        **unknown: Any,
    ) -> None:
        """Called by Serve with ``RequestRouterConfig.request_router_kwargs``; unknown keys are refused.

        Starts the cluster-state thread (``cluster_state``); it reads the GCS, so nothing here blocks.
        """
        if unknown:
            raise TypeError(f"CostLatencyRouter: unknown request_router_kwargs {sorted(unknown)}")
        self._slo = Slo(target_ms=float(slo_ms), service_ms=float(service_ms))
        self._weights = Weights(price=float(price_weight), latency=float(latency_weight))
        self._table: RttTable = load_rtt_table(Path(rtt_table) if rtt_table else None)
        if default_client_region is not None and default_client_region not in self._table.regions:
            raise ValueError(f"default_client_region {default_client_region!r} is not in the RTT table "
                             f"({sorted(self._table.regions)})")
        self._default_region = default_client_region
        self.cluster_state = ClusterState(
            read_nodes=self.read_node_table,
            read_draining=self.read_draining_nodes,
            prices=PriceSource(prices=prices, state_dir=state_dir, use_catalog=use_catalog,
                               refresh_s=float(price_refresh_s)),
            node_refresh_s=float(node_refresh_s),
            drain_refresh_s=float(drain_refresh_s),
            price_refresh_s=float(price_refresh_s),
            max_age_s=float(state_max_age_s),
        )
        self.decisions: deque[RoutingDecision] = deque(maxlen=max(1, int(keep_decisions)))
        self._probing: set[ReplicaID] = set()
        self._taken: Counter[ReplicaID] = Counter()
        self._missing_pairs_logged: set[tuple[str, str]] = set()
        self._tie_rng = random.Random()
        self.cluster_state.start()

    # -- inputs (the two GCS reads run on the cluster-state thread, never on the request path) -----------

    def read_node_table(self) -> Mapping[str, NodeFacts]:
        """Facts of every node the GCS knows (blocking)."""
        return read_gcs_node_table()

    def read_draining_nodes(self) -> set[str]:
        """Hex ids of the nodes the GCS is draining (blocking)."""
        return read_gcs_draining_nodes()

    def client_region(self, pending_request: PendingRequest | None) -> str | None:
        key = pending_request.metadata.session_id if pending_request is not None else None
        return client_region_from_key(key, self._table.regions) or self._default_region

    def locality(self, replica: RunningReplica) -> int:
        """``SAME_NODE`` / ``SAME_ZONE`` / ``ELSEWHERE`` under the prefer-local options Serve passed;
        ``ELSEWHERE`` for every replica when an option is off."""
        if self._prefer_local_node_routing and self._self_node_id is not None \
                and replica.node_id == self._self_node_id:
            return SAME_NODE
        if self._prefer_local_az_routing and self._self_availability_zone is not None \
                and replica.availability_zone == self._self_availability_zone:
            return SAME_ZONE
        return ELSEWHERE

    def replica_views(self, replicas: Sequence[RunningReplica],
                      snapshot: ClusterSnapshot) -> list[ReplicaView]:
        views = []
        # Unknown counts as full only beside a replica whose queue is known: when no queue is known
        # yet (a router that just started), counting every replica as full would flatten the ranking
        # to price alone; equal queues keep it on cost and latency, and the first rank is probed
        # before a request goes there.
        any_known = any(self.replica_queue_len_cache.get(r.replica_id) is not None for r in replicas)
        full_if_unknown = 1 if any_known else 0
        for r in replicas:
            facts = snapshot.nodes.get(r.node_id or "")
            queue = self.replica_queue_len_cache.get(r.replica_id)
            views.append(ReplicaView(
                replica_id=r.replica_id.unique_id,
                cloud=facts.cloud if facts else "",
                region=facts.region if facts else "",
                price_per_hour=snapshot.node_prices.get(r.node_id or ""),
                # Unknown is not empty: count a full queue until a probe says otherwise.
                queue_len=int(queue) if queue is not None else full_if_unknown * int(r.max_ongoing_requests),
                queue_known=queue is not None,
                locality=self.locality(r),
                tie_break=self._tie_rng.getrandbits(31),
            ))
        return views

    def _log_missing_pairs(self, region: str, ranked: Sequence[Ranked]) -> None:
        """A replica in a region the RTT table does not pair with the client's ranks last (it cannot be
        shown to keep the SLO); say so, naming the pair, once per pair."""
        for entry in ranked:
            there = entry.replica.region
            known = self._table.rtt(region, there) is not None
            if there and not known and (region, there) not in self._missing_pairs_logged:
                self._missing_pairs_logged.add((region, there))
                logger.error("%s; until then replicas in %s rank last for clients in %s",
                             self._table.missing_pair(region, there), there, region)

    def _probe_in_background(self, replicas: Sequence[RunningReplica]) -> None:
        """Fill the queue-length cache for ``replicas`` without holding the request (one probe in flight
        per replica; the base class's ``_probe_queue_lens``, as its own background probing does)."""
        todo = [r for r in replicas if r.replica_id not in self._probing]
        if not todo:
            return
        ids = {r.replica_id for r in todo}
        self._probing |= ids
        task = self._event_loop.create_task(self._probe_queue_lens(todo, 0))
        task.add_done_callback(lambda _t: self._probing.difference_update(ids))

    def _fulfill_next_pending_request(self, replica: RunningReplica, request_metadata: Any = None) -> None:
        # Serve's FIFO hand-out, counted per replica for ``RankedReplicas``.
        super()._fulfill_next_pending_request(replica, request_metadata)
        self._taken[replica.replica_id] += 1

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        live = {r.replica_id for r in replicas}
        for gone in [k for k in self._taken if k not in live]:
            del self._taken[gone]

    # -- the RequestRouter hook ---------------------------------------------------------------------

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        # Deliberately no await: FIFO holds only if one request's routing cannot stall on I/O.
        return RankedReplicas(self.rank(candidate_replicas, pending_request), self._taken)

    def rank(
        self,
        candidate_replicas: Sequence[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        """One routing iteration (synchronous): the candidates as singleton ranks, best first."""
        model_id = pending_request.metadata.multiplexed_model_id if pending_request is not None else ""
        if pending_request is not None:
            # Every round offers every allowed replica: back off between full rounds that all refuse.
            pending_request.routing_context.should_backoff = True
        candidates = list(candidate_replicas)
        if model_id:
            allowed = self.apply_multiplex_routing(pending_request=pending_request)
            candidates = [r for r in candidates if r.replica_id in allowed]
        if not candidates:
            return []
        state = self.cluster_state
        snapshot = state.snapshot
        now = state.clock()
        stale = state.is_stale(snapshot, now)
        if any(r.node_id and r.node_id not in snapshot.nodes for r in candidates):
            state.want_nodes()
        live = [r for r in candidates if snapshot.nodes.get(r.node_id or "", _UNKNOWN_NODE).alive]
        pool = live or candidates
        # A replica on a draining node is about to go (its node dies at the drain deadline): rank it
        # after every other replica, so requests stop landing there and none is in flight at the end.
        staying = [r for r in pool if (r.node_id or "") not in snapshot.draining]
        leaving = [r for r in pool if (r.node_id or "") in snapshot.draining]
        region = self.client_region(pending_request)
        ranked = tuple(entry for group in (staying, leaving) for entry in rank_replicas(
            self.replica_views(group, snapshot), region, self._table, self._slo, self._weights))
        if region is not None:
            self._log_missing_pairs(region, ranked)
        by_id = {r.replica_id.unique_id: r for r in pool}
        order = [by_id[entry.replica.replica_id] for entry in ranked]
        # The base class probes the first rank itself when its queue is unknown or full; the others,
        # in the background, so a replica counted as full (for want of a probe, or from a probe that
        # has aged) is not passed over for long.
        stale_queue = [r for r, entry in zip(order[1:], ranked[1:], strict=True)
                       if not entry.replica.queue_known or entry.replica.queue_len >= r.max_ongoing_requests]
        if stale_queue:
            self._probe_in_background(stale_queue)
        self.decisions.append(RoutingDecision(time.time(), region, ranked, len(leaving),
                                              snapshot.age_s(now), stale, model_id))
        return [[r] for r in order]

