"""The cluster facts ``CostLatencyRouter`` reads per request, kept fresh by a background thread.

Ray Serve routes a request with ``choose_replicas`` on the handle's event loop, first in first out:
anything that waits there (a GCS lookup, a file read) holds every request queued behind it and lets
later requests overtake earlier ones. So the router never reads the cluster on the request path. A
``ClusterState`` owns one daemon thread that, on its own intervals, reads

- the GCS node table (``node_refresh_s``; at once, but at most every ``NODE_RETRY_S``, when the request
  path reports a node it does not know): each node's cloud, region, offer and whether it is alive;
- the nodes being drained (``drain_refresh_s``): a preemption notice, a price move, an idle scale-down;
- node prices (``price_refresh_s``): the price board, the ``prices`` table, the shipped catalog, in that
  order (``PriceSource``);

and publishes an immutable ``ClusterSnapshot`` by swapping one reference. The request path only reads
the current snapshot: a slow or unreachable GCS makes the snapshot older, never a request later.

Staleness: every part of the snapshot carries the clock time of its last good read. A snapshot whose
node table or draining set is older than ``max_age_s`` is *stale*: the router still routes with it
(node facts do not change over a node's life, a dead node stays dead, and ranking a drained node last
is the safe side), marks its decisions ``stale`` and logs one warning per ``max_age_s``. A part never
read (startup, a GCS unreachable from the start) is empty: unknown nodes have no price and no region,
so replicas on them rank after priced ones, by queue and locality.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

logger = logging.getLogger(__name__)

LABEL_CLOUD = "rmc/cloud"
LABEL_INSTANCE_TYPE = "rmc/instance-type"
LABEL_MARKET = "ray.io/market-type"
LABEL_REGION = "ray.io/availability-region"
LABEL_ZONE = "ray.io/availability-zone"
NODE_REFRESH_S = 10.0
NODE_RETRY_S = 2.0
DRAIN_REFRESH_S = 1.0
PRICE_REFRESH_S = 2.0
MAX_AGE_S = 30.0


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


def read_gcs_node_table() -> dict[str, NodeFacts]:
    """Facts of every node the GCS knows (blocking: call it from the refresh thread only)."""
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


def read_gcs_draining_nodes() -> set[str]:
    """Hex ids of the nodes the GCS is draining (blocking: call it from the refresh thread only)."""
    from ray._private.state import state

    return {str(k) for k in state.get_draining_nodes()}


class PriceSource:
    """$/h of an offer id: price board (live) > ``prices`` table > shipped catalog.

    Blocking (it reads the board's file and, once, the catalog): the router calls it from the refresh
    thread only. The board is re-read at most every ``refresh_s`` and only when its version changed.
    """

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


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """What the router knows about the cluster at one moment; ``*_at`` are clock times of the last good
    read of each part (``-inf``: never read)."""

    nodes: Mapping[str, NodeFacts] = field(default_factory=dict)
    draining: frozenset[str] = frozenset()
    node_prices: Mapping[str, float | None] = field(default_factory=dict)
    nodes_at: float = -math.inf
    draining_at: float = -math.inf
    prices_at: float = -math.inf

    def age_s(self, now: float) -> float:
        """Seconds since the older of the node table and the draining set was read (inf: never)."""
        return now - min(self.nodes_at, self.draining_at)


class ClusterState:
    """Owner of the current ``ClusterSnapshot`` and of the thread that refreshes it (module docstring).

    ``snapshot`` and ``want_nodes`` never block and are safe from any thread; ``refresh`` does the
    blocking reads that are due and is what the thread runs (tests call it directly).
    """

    def __init__(
        self,
        *,
        read_nodes: Callable[[], Mapping[str, NodeFacts]] = read_gcs_node_table,
        read_draining: Callable[[], set[str] | frozenset[str]] = read_gcs_draining_nodes,
        prices: PriceSource | None = None,
        node_refresh_s: float = NODE_REFRESH_S,
        drain_refresh_s: float = DRAIN_REFRESH_S,
        price_refresh_s: float = PRICE_REFRESH_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("node_refresh_s", node_refresh_s), ("drain_refresh_s", drain_refresh_s),
                            ("price_refresh_s", price_refresh_s), ("max_age_s", max_age_s)):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"cluster state {name} must be a finite number of seconds >= 0, "
                                 f"got {value!r}")
        self._read_nodes = read_nodes
        self._read_draining = read_draining
        self._prices = prices if prices is not None else PriceSource()
        self._node_refresh_s = float(node_refresh_s)
        self._drain_refresh_s = float(drain_refresh_s)
        self._price_refresh_s = float(price_refresh_s)
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self._snapshot = ClusterSnapshot()
        self._nodes_tried_at = -math.inf
        self._draining_tried_at = -math.inf
        self._nodes_wanted = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._refresh_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._warned_at = -math.inf

    @property
    def snapshot(self) -> ClusterSnapshot:
        """The latest published snapshot (one reference read; never blocks)."""
        return self._snapshot

    def want_nodes(self) -> None:
        """The request path saw a node the snapshot lacks: read the node table soon (never blocks)."""
        if not self._nodes_wanted.is_set():
            self._nodes_wanted.set()
            self._wake.set()

    def is_stale(self, snapshot: ClusterSnapshot, now: float) -> bool:
        """True when ``snapshot``'s node table or draining set is older than ``max_age_s``, and log a
        warning about it at most once per ``max_age_s``."""
        age = snapshot.age_s(now)
        if age <= self.max_age_s:
            return False
        if now - self._warned_at >= self.max_age_s:
            self._warned_at = now
            logger.warning("cluster state is %.0f s old (max %.0f s): the GCS did not answer; routing with "
                           "the last known nodes, drains and prices", age, self.max_age_s)
        return True

    def refresh(self) -> ClusterSnapshot:
        """Read what is due (blocking), publish and return the new snapshot. A failed read keeps that
        part's last answer and its old ``*_at``."""
        with self._refresh_lock:
            snap = self._snapshot
            now = self.clock()
            wanted = self._nodes_wanted.is_set()
            if (now - self._nodes_tried_at >= self._node_refresh_s
                    or (wanted and now - self._nodes_tried_at >= min(NODE_RETRY_S, self._node_refresh_s))):
                self._nodes_tried_at = now
                self._nodes_wanted.clear()
                try:
                    fresh = dict(self._read_nodes())
                except Exception:
                    logger.warning("node table read failed; keeping the last one", exc_info=True)
                else:
                    # Nodes the GCS forgot keep their facts: a replica may still name them.
                    snap = replace(snap, nodes={**snap.nodes, **fresh}, nodes_at=self.clock())
            if now - self._draining_tried_at >= self._drain_refresh_s:
                self._draining_tried_at = now
                try:
                    draining = frozenset(self._read_draining())
                except Exception:
                    logger.warning("draining-node read failed; keeping the last answer", exc_info=True)
                else:
                    snap = replace(snap, draining=draining, draining_at=self.clock())
            if snap.nodes is not self._snapshot.nodes or now - snap.prices_at >= self._price_refresh_s:
                try:
                    at = self.clock()
                    prices = {nid: self._prices.price(f.offer_id, now=at) for nid, f in snap.nodes.items()}
                except Exception:
                    logger.warning("price read failed; keeping the last prices", exc_info=True)
                else:
                    snap = replace(snap, node_prices=prices, prices_at=at)
            self._snapshot = snap
            return snap

    # -- the thread ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the refresh thread (idempotent). It ends with ``stop`` or when this object is collected."""
        if self._thread is not None and self._thread.is_alive():
            return
        tick = max(0.05, min(self._node_refresh_s, self._drain_refresh_s, self._price_refresh_s))
        self._stop.clear()
        self._thread = threading.Thread(target=_refresh_loop, args=(weakref.ref(self), self._stop, self._wake,
                                                                    tick),
                                        name="rmc-router-cluster-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the refresh thread to end after its current read (does not wait for it)."""
        self._stop.set()
        self._wake.set()


def _refresh_loop(ref: weakref.ref[ClusterState], stop: threading.Event, wake: threading.Event,
                  tick: float) -> None:
    # Holds the state only through a weak reference between passes, so a router Serve drops (and its
    # state with it) ends the thread instead of being kept alive by it.
    while not stop.is_set():
        state = ref()
        if state is None:
            return
        try:
            state.refresh()
        except Exception:  # refresh logs its own read failures; this is a bug, keep the thread alive
            logger.exception("cluster state refresh failed")
        del state
        wake.wait(tick)
        wake.clear()
