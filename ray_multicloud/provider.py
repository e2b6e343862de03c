"""The Ray node provider ``ray up`` loads.

``provider: {type: external, module: ray_multicloud.provider.MultiCloudNodeProvider}``

It only translates. For each node the autoscaler asks of a node type (a *pool*):
read the fleet from the clouds' tags -> ``policy.place`` -> ``cloud.launch`` on the chosen offer,
falling back through the placement's candidates (zone, then region, then cloud) within the same
request when a cloud answers "no capacity" (the failed offer is cooled down for
``cooldown_seconds``, so the cluster never loops on an exhausted pool) -> tags on the instance.

State lives only in the clouds' tags (and, for simulated clouds, their shared state file): a
provider restarted mid-run rebuilds its fleet from ``list(cluster)``, so nothing leaks. Autoscaler
v2 drains idle nodes through the GCS and then calls ``terminate_nodes``.

Every node carries Ray's own labels (``ray.io/market-type``, ``ray.io/availability-region``,
``ray.io/availability-zone``, set from the offer through the node's environment) and the
project's (``rmc/cloud``, ``rmc/pool``, ``rmc/instance-type``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, cast

from ray.autoscaler.node_provider import NodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    TAG_RAY_LAUNCH_REQUEST,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)

from ray_multicloud.auth import (
    bootstrap_auth,
    delete_cluster_secrets,
    ensure_cluster_secrets,
    head_commands,
    parse_auth,
    store_of,
)
from ray_multicloud.auth.secrets import SecretStore
from ray_multicloud.budget_guard import BudgetGuard
from ray_multicloud.clouds import make_clouds
from ray_multicloud.clouds.base import (
    LABEL_CLOUD,
    LABEL_INSTANCE_TYPE,
    LABEL_POOL,
    TAG_CAPACITY,
    TAG_CLOUD,
    TAG_CLUSTER,
    TAG_OFFER,
    TAG_POOL,
    TAG_REQUEST,
    Cloud,
    Instance,
    LaunchRequest,
    RayBootstrap,
    SellsFixedOffers,
)
from ray_multicloud.cluster_config.budget import parse_cluster_budget, parse_pool_budget
from ray_multicloud.cluster_config.cluster import check_cluster
from ray_multicloud.cluster_config.gcs_ft import head_commands as gcs_head_commands
from ray_multicloud.cluster_config.gcs_ft import worker_env
from ray_multicloud.cluster_config.idle import parse_idle
from ray_multicloud.cluster_config.migration import parse_migration
from ray_multicloud.cluster_config.pools import fill_pool_defaults, parse_offer, parse_pool, pool_team
from ray_multicloud.cluster_config.predictive import parse_all_predictive
from ray_multicloud.cluster_config.provider_section import ProviderSettings, load_settings, offers_of_clouds
from ray_multicloud.cluster_config.worker_setup import setup_of, write_into_provider
from ray_multicloud.directives import SLO_DIRECTIVE_PREFIX, LaunchDirectives
from ray_multicloud.errors import (
    CapacityError,
    CloudError,
    ConfigError,
    LaunchFailed,
)
from ray_multicloud.idle_guard import is_hibernated, state_path
from ray_multicloud.ledger import ENDED_OUTSIDE, Ledger, LedgerError
from ray_multicloud.policy import OfferIndex, matching_offers, place
from ray_multicloud.policy.budget import Budget
from ray_multicloud.policy.place import PlacementRisk, full_reservations
from ray_multicloud.policy.rebalance import RebalanceConfig
from ray_multicloud.policy.risk import observed_interruption_rates
from ray_multicloud.pricing import load_catalog
from ray_multicloud.pricing.board import PriceBoard, apply_board
from ray_multicloud.pricing.cooldowns import CooldownBoard
from ray_multicloud.pricing.feeds import build_feeds, drivers_of, endpoints_from_clouds
from ray_multicloud.pricing.live import LivePrices
from ray_multicloud.serve.transport import TRANSPORTS
from ray_multicloud.serve.transport import head_commands as transport_head_commands
from ray_multicloud.types import (
    CapacityType,
    FleetNode,
    Infeasible,
    InstanceId,
    NodeState,
    Offer,
    OfferId,
    PoolSpec,
    RequestId,
)

logger = logging.getLogger(__name__)
# Ray's name for the cloud instance a node runs on, in the environment of its `ray start` (and so of
# the head's autoscaler monitor and of the controller): `ray up` exports it for the head's commands.
OWN_INSTANCE_ENV = "RAY_CLOUD_INSTANCE_ID"

TAG_PRICE = "rmc-price"
TAG_TEAM = "rmc-team"  # the team the node's spend is charged to (its pool's `team:`), when set
DIRECTIVE_MAX_AGE_S = 120.0  # a launch directive older than this (a stopped controller) is ignored
RAY_LABEL_PREFIX = "ray.io/"


class OfferBook:
    """Current offers of every configured cloud: catalog snapshot + price board, rebuilt on change."""

    def __init__(self, settings: ProviderSettings, clouds: Mapping[str, Cloud]) -> None:
        self._settings = settings
        self._clouds = clouds
        self._board = PriceBoard(settings.state_dir)
        self._lock = threading.Lock()
        self._base: list[Offer] | None = None
        self._live: LivePrices | None = None
        self._version: tuple[float, ...] = ()
        self._index = OfferIndex.build(())
        self._by_id: dict[OfferId, Offer] = {}

    def _base_offers(self) -> list[Offer]:
        if self._base is None:
            catalog = load_catalog(self._settings.catalog_path)
            own = [(n, c) for n, c in self._clouds.items() if c.features.own_offers]
            fixed = {n: cast(SellsFixedOffers, c).offers() for n, c in own}
            offers = offers_of_clouds(self._settings, catalog.offers, fixed)  # every reservation
            self._base = offers
            # Public clouds (driver aws/gcp/azure) get live price feeds over their catalog offers.
            feeds = build_feeds(offers, endpoints_from_clouds(self._settings.clouds),
                                drivers_of(self._settings.clouds))
            for skipped in feeds.skipped:
                logger.warning("no live prices for %s", skipped)
            if feeds.feeds:
                self._live = LivePrices(feeds.feeds, ttl_s=self._settings.price_ttl_s,
                                        max_age_s=self._settings.max_price_age_s)
        return self._base

    def index(self) -> OfferIndex:
        """The current offers, indexed; rebuilt when the price board or a live feed changed.

        Live feeds are fetched at most once per their TTL; a failed feed leaves its last prices in
        place marked stale, and a placement on a stale or too-old price says so in its reasons.
        """
        with self._lock:
            base = self._base_offers()
            now = time.time()
            feeds: tuple[float, ...] = ()
            if self._live is not None:
                statuses = self._live.refresh(now)
                feeds = tuple(s.fetched_at or 0.0 for s in statuses) + tuple(float(s.stale) for s in statuses)
            # A reservation is placed on only while it runs (its starts/ends); its offer stays known by
            # id either way, so a node launched on it is still recognised after it ended.
            running = tuple(r.active(now) for r in self._settings.reservations)
            version = (self._board.version(), *feeds, *running)
            if version != self._version:
                offers = list(base) if self._live is None else list(self._live.overlay(base, now).offers)
                offers = apply_board(offers, self._board.read())
                ended = {r.key for r in self._settings.reservations if not r.active(now)}
                self._index = OfferIndex.build(
                    o for o in offers if not (o.capacity is CapacityType.RESERVED and o.source in ended))
                self._by_id = {o.offer_id: o for o in offers}
                self._version = version
            return self._index

    def get(self, offer_id: str) -> Offer | None:
        self.index()
        return self._by_id.get(OfferId(offer_id))


class MultiCloudNodeProvider(NodeProvider):
    """Ray ``NodeProvider`` over several clouds. Thread-safe; see the module docstring."""

    def __init__(
        self,
        provider_config: dict[str, Any],
        cluster_name: str,
        *,
        clouds: Mapping[str, Cloud] | None = None,
    ) -> None:
        """``clouds``: the drivers to use, by the names of ``provider.clouds`` (a test hands in the
        fakes it owns); by default each is built from its config entry through the driver registry.
        The autoscaler calls this with the first two arguments only."""
        super().__init__(provider_config, cluster_name)
        self.settings = load_settings(provider_config, cluster_name)
        self.auth = parse_auth(provider_config)
        self._secrets_ready = False
        self.clouds: dict[str, Cloud] = (
            dict(clouds) if clouds is not None
            else make_clouds(self.settings.clouds, state_dir=str(self.settings.state_dir))
        )
        self.offers = OfferBook(self.settings, self.clouds)
        self._lock = threading.RLock()
        self._instances: dict[str, Instance] = {}
        self._listed_at: float | None = None  # time.monotonic() when the last full listing began
        self._listed_done: float | None = None  # ... and when it finished
        self._fleet_refresh = threading.Lock()  # concurrent launches share one new listing
        self.fleet_reuse_s = FLEET_REUSE_S
        self.slow_listing_s = SLOW_LISTING_S
        self.max_listing_age_s = MAX_LISTING_AGE_S
        self._background: threading.Thread | None = None  # the listing non_terminated_nodes started
        self._terminated_times: dict[str, float] = {}  # node -> time.monotonic() this process ended it
        self.answered_from: float | None = None  # set by each non_terminated_nodes (see _listing)
        self._cooldowns: dict[OfferId, float] = {}  # this process's; cooldowns() adds the others'
        self._cooldown_board = CooldownBoard(self.settings.state_dir)
        self._targets: dict[str, PoolSpec | Offer] = {}
        self._teams: dict[str, str] = {}  # node type -> its pool's team, learnt from its node_config
        self._priced: dict[str, float] = {}  # the last price the ledger holds for each live node
        self._launch_times: dict[str, float] = {}  # node -> time.monotonic() this process launched it
        self._claims = LaunchClaims()
        # The ledger's view of the fleet (see _account): nodes it holds as running, and for those
        # missing from the clouds' listings, how many listings in a row and since when.
        self._open: set[str] = set()
        self._missing: dict[str, tuple[int, float]] = {}
        self._seeded = False
        self.missing_lists_to_end = MISSING_LISTS_TO_END
        self.missing_grace_s = MISSING_GRACE_S
        self._ledger = _open_ledger(self.settings.ledger_path)
        self._risk_rates: tuple[float, dict[str, float]] | None = None  # (read at, rates) for placement
        # Budgets (cluster_config/budget.py): the cluster's from this section, each pool's from its
        # node_config at its first launch; checked before every worker launch (_launch_one).
        self._cluster_budget = parse_cluster_budget(provider_config)
        self._pool_budgets: dict[str, Budget | None] = {}
        self.budget = BudgetGuard(cluster_name, self._ledger)

    # -- fleet --------------------------------------------------------------------------------

    def _refresh(self) -> dict[str, Instance]:
        fresh: dict[str, Instance] = {}
        started = time.monotonic()
        clouds = list(self.clouds.values())
        if len(clouds) <= 1:
            listings = [c.list(self.cluster_name) for c in clouds]
        else:  # the clouds are asked at once: a listing takes the slowest cloud's time, not the sum
            with ThreadPoolExecutor(max_workers=len(clouds)) as pool:
                listings = list(pool.map(lambda c: c.list(self.cluster_name), clouds))
        with self._lock:
            # A node this process terminated while the listing ran may still be in it (the cloud
            # listed it first): it stays gone.
            ended = {k for k, at in self._terminated_times.items() if at >= started}
        for listing in listings:
            for inst in listing:
                if inst.instance_id not in ended:
                    fresh[inst.instance_id] = inst
        with self._lock:
            # The provider's own copy: launches in other threads add to it while a caller iterates
            # the listing it was handed. Launches that finished while the listing ran stay in it.
            launched = {k: v for k, v in self._instances.items() if k in self._launched_since(started)}
            if self._listed_at is None or started >= self._listed_at:  # never replace a newer one
                self._instances = {**launched, **fresh}
                self._listed_at = started
                self._listed_done = time.monotonic()
            self._launch_times = {k: t for k, t in self._launch_times.items() if t >= started}
            self._terminated_times = {k: t for k, t in self._terminated_times.items() if t >= started}
        if self._ledger is not None:
            self._account(fresh)
        return fresh

    def _account(self, live: Mapping[str, Instance]) -> None:
        """Tell the ledger what changed without us, from one complete listing of the clouds.

        - A live node the ledger does not hold (a launch whose call failed after the cloud created
          the node, or one launched by another process) is recorded from its tags.
        - A running node whose price changed (spot prices move) gets the new price.
        - A node the ledger holds as running that is missing from the listing is ended only once it
          has been missing from ``missing_lists_to_end`` listings in a row and for at least
          ``missing_grace_s`` (a cloud's listing can lag a launch by seconds); it ends at the first
          listing that missed it. A node that reappears is forgiven.
        A restarted provider takes the ledger's running nodes of this cluster as its start.
        """
        ledger, now = self._ledger, time.time()
        if ledger is None:
            return
        self._seed_open()
        for node_id, inst in live.items():
            offer = self.offers.get(inst.tags.get(TAG_OFFER, ""))
            with self._lock:
                self._missing.pop(node_id, None)
                known = node_id in self._open
                last = self._priced.get(node_id)
            if offer is None:
                continue
            if not known:
                recorded = _record(
                    functools.partial(ledger.record_launch, team=inst.tags.get(TAG_TEAM, "")),
                    node_id, self.cluster_name, inst.tags.get(TAG_POOL, ""), offer,
                    inst.tags.get(TAG_REQUEST, ""), inst.launched_at or now,
                )
                if recorded:
                    with self._lock:
                        self._open.add(node_id)
                        self._priced[node_id] = offer.paid_price_per_hour
                continue
            with self._lock:
                self._priced[node_id] = offer.paid_price_per_hour
            if last is not None and last != offer.paid_price_per_hour:
                _record(ledger.record_price, node_id, offer.paid_price_per_hour, now)
        with self._lock:
            absent = sorted(self._open - set(live))
        for node_id in absent:
            with self._lock:
                count, first = self._missing.get(node_id, (0, now))
                count += 1
                self._missing[node_id] = (count, first)
            if count < self.missing_lists_to_end or now - first < self.missing_grace_s:
                continue
            ended = _record(ledger.record_end, node_id, first,
                            f"{ENDED_OUTSIDE} (preempted or lost): missing from {count} listings "
                            f"in a row since {first:.0f}")
            if ended:
                with self._lock:
                    self._open.discard(node_id)
                    self._missing.pop(node_id, None)
                    self._priced.pop(node_id, None)

    def _teardown_clouds(self) -> None:
        """At ``ray down`` (the head terminated): each cloud that leaves more than instances behind
        a killed launch sweeps it now, without the grace its listings give launches under way
        (``teardown(cluster)``, optional: the Azure driver's NICs). A failure is logged; the
        cloud's next listing of the cluster, if any, sweeps again."""
        for cloud in self.clouds.values():
            teardown = getattr(cloud, "teardown", None)
            if teardown is None:
                continue
            try:
                teardown(self.cluster_name)
            except CloudError as exc:
                logger.warning("teardown of %s on %s: %s", self.cluster_name, cloud.name, exc)

    def _seed_open(self) -> None:
        """Once: take the ledger's running nodes of this cluster as the start of ``_open``."""
        if self._seeded or self._ledger is None:
            return
        self._seeded = True
        try:
            seed = self._ledger.open_instances(self.cluster_name)
        except Exception as exc:  # noqa: BLE001 - a ledger failure never stops the provider
            _ledger_failed(exc)
            seed = []
        with self._lock:
            self._open.update(seed)

    def _end_gone_at_teardown(self, now: float, *, head: str) -> None:
        """At ``ray down`` (the head terminated): end in the ledger every node it holds as running
        that no cloud has any more (each cloud's ``get`` says so: a listing's lag is not enough),
        at the first listing that missed it, else ``now``. Such a node ended between the last
        listing of the head's autoscaler and teardown (an idle scale-down whose ledger write the
        teardown cut short); ``_account``'s three listings over a minute will not come. Its
        reason does not begin with ``ENDED_OUTSIDE``: it is not counted as an interruption."""
        if self._ledger is None:
            return
        self._seed_open()
        with self._lock:
            candidates = sorted(self._open - {head})  # the head: ended by the caller
            missing = dict(self._missing)
        for node_id in candidates:
            try:
                gone = all(cloud.get(InstanceId(node_id)) is None for cloud in self.clouds.values())
            except CloudError as exc:
                logger.warning("teardown: could not check %s: %s", node_id, exc)
                continue
            if not gone:
                continue
            at = missing.get(node_id, (0, now))[1]
            if _record(self._ledger.record_end, node_id, at,
                       "gone at teardown: no cloud has it (ended before `ray down`)"):
                with self._lock:
                    self._open.discard(node_id)
                    self._missing.pop(node_id, None)
                    self._priced.pop(node_id, None)

    def _instance(self, node_id: str) -> Instance | None:
        with self._lock:
            inst = self._instances.get(node_id)
        if inst is not None:
            return inst
        for cloud in self.clouds.values():
            got = cloud.get(InstanceId(node_id))
            if got is not None:
                with self._lock:
                    self._instances[node_id] = got
                return got
        return None

    def _cloud_of(self, node_id: str) -> Cloud | None:
        inst = self._instance(node_id)
        return None if inst is None else self.clouds.get(inst.cloud)

    def _launched_since(self, started: float) -> set[str]:
        """Nodes this process launched after ``started`` (time.monotonic()); call with the lock."""
        return {k for k, at in self._launch_times.items() if at >= started}

    def launch_fleet(self) -> list[FleetNode]:
        """The fleet a launch decides on: the last full listing when it finished less than
        ``fleet_reuse_s`` ago (the autoscaler lists at the start of each tick, then launches a
        burst), with this process's launches and terminations since applied; else a new listing.
        Without it, each node of a burst of N listed every cloud again: N listings per tick."""
        cached = self._reusable()
        if cached is None:
            with self._fleet_refresh:  # one listing for the launches waiting on it, not one each
                cached = self._reusable()
                if cached is None:
                    return self.fleet()
        return self._fleet_of(cached)

    def _reusable(self) -> list[Instance] | None:
        with self._lock:
            done = self._listed_done
            if done is None or time.monotonic() - done > self.fleet_reuse_s:
                return None
            return list(self._instances.values())

    def fleet(self) -> list[FleetNode]:
        """The project's nodes as the policy sees them, rebuilt from tags (a new listing)."""
        return self._fleet_of(self._refresh().values())

    def _fleet_of(self, instances: Iterable[Instance]) -> list[FleetNode]:
        out = []
        for inst in instances:
            offer = self.offers.get(inst.tags.get(TAG_OFFER, ""))
            if offer is None:
                continue
            out.append(FleetNode(
                instance_id=inst.instance_id, pool=inst.tags.get(TAG_POOL, ""), offer=offer,
                request_id=RequestId(inst.tags.get(TAG_REQUEST, "")), launched_at=inst.launched_at,
                state=inst.state,
            ))
        return out

    def full_offers(self, fleet: Sequence[FleetNode] | None = None) -> frozenset[OfferId]:
        """Offers of fixed-capacity clouds (private machines), and reserved offers (declared
        commitments), whose every slot holds a live node of ``fleet`` (default: the fleet now): no
        launch or move can land there until one frees."""
        fleet = self.fleet() if fleet is None else fleet
        used: dict[str, int] = {}
        for node in fleet:
            if node.state in (NodeState.PENDING, NodeState.RUNNING):
                used[node.offer.offer_id] = used.get(node.offer.offer_id, 0) + 1
        full: set[OfferId] = set()
        for cloud in self.clouds.values():
            slots = getattr(cloud, "slots", None) if cloud.features.fixed_capacity else None
            if slots is None:
                continue
            full.update(OfferId(oid) for oid, n in slots(self.cluster_name).items() if used.get(oid, 0) >= n)
        # Reserved offers (declared commitments) whose every slot holds a live node.
        full.update(full_reservations(self.offers.index().reserved(), fleet))
        return frozenset(full)

    # -- NodeProvider: queries ---------------------------------------------------------------------

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        """The cluster's live nodes whose tags match ``tag_filters`` (what the autoscaler asks at
        the start of every tick).

        A listing of the clouds answers it, and it waits for one, unless the last one took at
        least ``slow_listing_s`` (a fleet of a thousand nodes; a slow cloud API): then it answers
        at once from that last listing, with this process's launches and terminations since
        applied, and starts the next listing in the background (at most one at a time). So with
        slow listings a node that the cloud ended by itself (a preemption) drops out one call
        later. An answer is never older than ``max_listing_age_s`` (when the listing began):
        past that — the background listings failing, or no call for a while — it lists and
        waits, and a failing cloud's error reaches the caller as before."""
        return [
            node_id for node_id, inst in self._listing().items()
            if all(inst.tags.get(k) == v for k, v in tag_filters.items())
        ]

    def _listing(self) -> dict[str, Instance]:
        """The instances ``non_terminated_nodes`` answers from (see there)."""
        with self._lock:
            began, done = self._listed_at, self._listed_done
            slow = began is not None and done is not None and done - began >= self.slow_listing_s
            young = began is not None and time.monotonic() - began <= self.max_listing_age_s
            snapshot = dict(self._instances) if slow and young else None
            self.answered_from = began  # time.monotonic() the answer's listing began (benchmarks)
        if snapshot is None:
            listing = self._refresh()
            with self._lock:
                self.answered_from = self._listed_at
            return listing
        self._list_in_background()
        return snapshot

    def _list_in_background(self) -> None:
        """Start one listing on a daemon thread, unless one is running."""
        with self._lock:
            if self._background is not None and self._background.is_alive():
                return
            thread = threading.Thread(target=self._background_listing, name="rmc-listing", daemon=True)
            self._background = thread
        thread.start()

    def _background_listing(self) -> None:
        try:
            self._refresh()
        except Exception as exc:  # noqa: BLE001 - the next call tries again, or lists and raises
            logger.warning("background listing of %s failed: %s", self.cluster_name, exc)

    def is_running(self, node_id: str) -> bool:
        inst = self._instance(node_id)
        return inst is not None and inst.state is NodeState.RUNNING

    def is_terminated(self, node_id: str) -> bool:
        cloud = self._cloud_of(node_id)
        return cloud is None or cloud.get(InstanceId(node_id)) is None

    def node_tags(self, node_id: str) -> dict[str, str]:
        inst = self._instance(node_id)
        return {} if inst is None else dict(inst.tags)

    def internal_ip(self, node_id: str) -> str:
        inst = self._instance(node_id)
        return "" if inst is None else inst.internal_ip

    def external_ip(self, node_id: str) -> str:
        inst = self._instance(node_id)
        return "" if inst is None or inst.external_ip is None else inst.external_ip

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        cloud = self._cloud_of(node_id)
        if cloud is None:
            return
        cloud.set_tags(InstanceId(node_id), tags)
        with self._lock:
            self._instances.pop(node_id, None)

    # -- NodeProvider: launch -----------------------------------------------------------------------

    def create_node(self, node_config: dict[str, Any], tags: dict[str, str], count: int) -> dict[str, Any]:
        return self.create_node_with_resources_and_labels(node_config, tags, count, {}, {})

    def create_node_with_resources_and_labels(
        self,
        node_config: dict[str, Any],
        tags: dict[str, str],
        count: int,
        resources: dict[str, float],
        labels: dict[str, str],
    ) -> dict[str, Any]:
        node_type = tags.get(TAG_RAY_USER_NODE_TYPE)
        if not node_type:
            raise ConfigError("tags", f"the autoscaler gave no {TAG_RAY_USER_NODE_TYPE} tag; "
                              "define the node under available_node_types")
        target = self._target(node_type, node_config)
        head = tags.get(TAG_RAY_NODE_KIND) == NODE_KIND_HEAD
        if head:
            # `ray up` creating the head: the cluster's token (and TLS material) is made now and put
            # into every cloud's secret store, before any node could need it.
            self._ensure_secrets()
        budgets = () if head else self._budgets(node_type, node_config)
        base_request = tags.get(TAG_RAY_LAUNCH_REQUEST) or uuid.uuid4().hex[:12]
        if not head and is_hibernated(self.settings):
            raise LaunchFailed(node_type, base_request, [CloudError(
                "hibernated", f"cluster {self.cluster_name!r} is hibernated (idle governance, state in "
                f"{state_path(self.settings)}); no worker launches until it is restored")])
        # One risk model for the whole request (a pinned offer has nothing to rank).
        pooled = isinstance(target, PoolSpec) and not head
        risk = self.placement_risk(node_type, node_config) if pooled else None
        indices = self._claims.claim(base_request, node_type, count)
        created: dict[str, Any] = {}
        try:
            for i in indices:
                request_id = node_key(base_request, node_type, i)
                inst = self._launch_one(
                    node_type, target, tags, resources, labels, request_id, budgets=budgets, risk=risk
                )
                if inst.instance_id in created:
                    again = f"returned {inst.instance_id} again for key {request_id}; not counted twice"
                    raise LaunchFailed(node_type, request_id, [CloudError(inst.cloud, again)])
                created[inst.instance_id] = inst
        except BaseException:
            self._claims.release(base_request, node_type, indices)
            raise
        return created

    def launch_on_offer(
        self,
        node_type: str,
        offer: Offer,
        *,
        resources: Mapping[str, float],
        labels: Mapping[str, str],
        request_id: str | None = None,
    ) -> Instance:
        """Launch one worker of ``node_type`` on exactly ``offer`` (a price move's replacement).

        Tagged like any autoscaler-launched worker, so autoscaler v2 adopts it and a restarted
        provider finds it. Raises ``LaunchFailed`` if the offer's cloud refuses it (the offer is then
        cooled down like any other capacity failure).
        """
        from ray.autoscaler.tags import (
            STATUS_UP_TO_DATE,
            TAG_RAY_NODE_NAME,
            TAG_RAY_NODE_STATUS,
        )

        tags = {
            TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
            TAG_RAY_USER_NODE_TYPE: node_type,
            TAG_RAY_NODE_NAME: f"ray-{self.cluster_name}-worker",
            TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
        }
        rid = RequestId(request_id or f"move-{uuid.uuid4().hex[:12]}")
        return self._launch_one(node_type, offer, tags, resources, labels, rid,
                                why=f"replacement of a move onto {offer.offer_id}")

    def _target(self, node_type: str, node_config: Mapping[str, Any]) -> PoolSpec | Offer:
        with self._lock:
            cached = self._targets.get(node_type)
        if cached is not None:
            return cached
        target: PoolSpec | Offer
        if "offer" in node_config:
            target = parse_offer(node_type, node_config)
        else:
            target = parse_pool(node_type, node_config, self.offers.index())
        team = pool_team(node_type, node_config)
        with self._lock:
            self._targets[node_type] = target
            if team:
                self._teams[node_type] = team
        return target

    def _budgets(self, node_type: str, node_config: Mapping[str, Any]) -> tuple[Budget, ...]:
        """The budgets a new worker of ``node_type`` must fit: its pool's, then the cluster's."""
        with self._lock:
            if node_type not in self._pool_budgets:
                self._pool_budgets[node_type] = parse_pool_budget(node_type, node_config)
            pool = self._pool_budgets[node_type]
        return tuple(b for b in (pool, self._cluster_budget) if b is not None)

    def placement_risk(self, node_type: str, node_config: Mapping[str, Any]) -> PlacementRisk | None:
        """What an interruption costs a new node of ``node_type``, and the interruption rates this
        cluster has seen per location: each spot location's preemptions per node-hour held over the
        last ``RISK_WINDOW_HOURS``, from the ledger (``policy.risk.observed_interruption_rates``).
        An interruption costs the pool's ``migration.restart_seconds``; no lost work, since the
        Train loop saves on a notice (``train.notice``). None (price-only ranking, as before any
        history) while no location has had an interruption, without a ledger, or when it fails.
        The rates are read at most every ``RISK_REFRESH_S``."""
        ledger = self._ledger
        if ledger is None:
            return None
        now = time.time()
        with self._lock:
            cached = self._risk_rates
        if cached is not None and now - cached[0] < RISK_REFRESH_S:
            rates = cached[1]
        else:
            try:
                lives = ledger.spot_lives(now - RISK_WINDOW_HOURS * 3600.0)
                rates = observed_interruption_rates(lives, now=now, window_hours=RISK_WINDOW_HOURS)
            except Exception as exc:  # noqa: BLE001 - a ledger failure never stops a launch
                _ledger_failed(exc)
                rates = {}
            with self._lock:
                self._risk_rates = (now, rates)
        if not any(r > 0 for r in rates.values()):
            return None
        try:
            restart_s = parse_migration(node_type, node_config).rebalance.restart_s
        except ConfigError:  # checked at `ray up`; a launch never fails on it
            restart_s = RebalanceConfig().restart_s
        return PlacementRisk(restart_hours=restart_s / 3600.0, checkpoint_hours=0.0, rates=rates,
                             source=f"this cluster's last {RISK_WINDOW_HOURS:g} h")

    def _launch_one(
        self,
        node_type: str,
        target: PoolSpec | Offer,
        tags: Mapping[str, str],
        resources: Mapping[str, float],
        labels: Mapping[str, str],
        request_id: RequestId,
        *,
        budgets: tuple[Budget, ...] = (),
        why: str = "",
        risk: PlacementRisk | None = None,
    ) -> Instance:
        """Launch one node. ``budgets``: checked first (a node the autoscaler adds; a move's
        replacement and the head are not checked here): a spent budget refuses the launch, a $/h
        cap bounds the price of the offers tried (cheaper capacity within the cap, or a refusal).
        ``risk``: rank the pool's offers by expected cost per useful hour (``placement_risk``).
        ``why``: the launch's reason (logged, and kept in the ledger) for a launch on one given
        offer; default: the node type is pinned to it."""
        now = time.time()
        limit: float | None = None
        budget_why: tuple[str, ...] = ()
        if budgets:
            verdict = self.budget.verdict(budgets, self.launch_fleet(), now)
            if not verdict.allowed:
                raise LaunchFailed(node_type, request_id, [CloudError("budget", "; ".join(verdict.reasons))])
            limit, budget_why = verdict.max_price_per_hour, verdict.reasons
        if isinstance(target, Offer):
            if limit is not None and target.price_per_hour > limit:
                raise LaunchFailed(node_type, request_id, [CloudError(
                    "budget", f"{target.offer_id} costs ${target.price_per_hour:.4f}/h; "
                    + "; ".join(budget_why))])
            candidates: tuple[Offer, ...] = (target,)
            reasons: tuple[str, ...] = (why or f"node type {node_type!r} is pinned to {target.offer_id}",)
        else:
            cooldowns = self.cooldowns(now)
            pool, ahead, advice, wait = self._directed(target, now, cooldowns)
            if wait:
                raise LaunchFailed(
                    node_type,
                    request_id,
                    [CloudError("policy", f"{advice}: waiting for spot to come back; the launch is retried")],
                )
            unbounded = pool
            if limit is not None:
                cap = min(limit, pool.max_price_per_hour if pool.max_price_per_hour is not None else limit)
                pool = replace(pool, max_price_per_hour=cap)
                if ahead is not None and ahead.price_per_hour > cap:
                    ahead = None
            fleet = self.launch_fleet()
            # A private machine kind with every machine in use is skipped, not tried and cooled down.
            cooldowns.update({oid: math.inf for oid in self.full_offers(fleet)})
            decision = place(pool, 1, self.offers.index(), fleet, now=now, cooldowns=cooldowns, risk=risk)
            if isinstance(decision, Infeasible):
                said = "; ".join(decision.reasons)
                if limit is None:
                    raise LaunchFailed(node_type, request_id, [CloudError("policy", said)])
                # Is it the budget that stops it, or would the pool's policy refuse anyway?
                plain = place(unbounded, 1, self.offers.index(), fleet, now=now, cooldowns=cooldowns,
                              risk=risk)
                if isinstance(plain, Infeasible):
                    why = "; ".join(plain.reasons)
                    raise LaunchFailed(node_type, request_id, [CloudError("policy", why)])
                why = "; ".join((*budget_why, f"no offer the pool admits costs that little ({said})"))
                raise LaunchFailed(node_type, request_id, [CloudError("budget", why)])
            placement = decision.placements[0]
            candidates, reasons = placement.candidates, placement.reasons
            if ahead is not None:
                candidates = (ahead, *(c for c in candidates if c.offer_id != ahead.offer_id))
            if advice:
                reasons = (advice, *reasons)
            reasons = (*budget_why, *reasons)
        kind = tags.get(TAG_RAY_NODE_KIND, NODE_KIND_WORKER)
        if kind != NODE_KIND_HEAD:
            self._ensure_secrets()  # once per process: a store added since `ray up` gets them too
        causes: list[CloudError] = []
        for offer in candidates:
            cloud = self.clouds.get(offer.cloud)
            if cloud is None:
                continue
            request = LaunchRequest(
                request_id=request_id,
                cluster=self.cluster_name,
                pool=node_type,
                offer=offer,
                tags=self._tags(tags, node_type, offer, request_id),
                bootstrap=(None if kind == NODE_KIND_HEAD
                           else self._bootstrap(node_type, offer, resources, labels)),
            )
            try:
                inst = cloud.launch(request)  # drivers retry throttling themselves (clouds/_retry.py)
            except CapacityError as exc:
                logger.warning("no capacity for %s (%s); cooling it down for %.0fs and trying the next offer",
                               offer.offer_id, exc, self.settings.cooldown_s)
                until = time.time() + self.settings.cooldown_s
                with self._lock:
                    self._cooldowns[offer.offer_id] = until
                self._share_cooldown(offer.offer_id, until)
                causes.append(exc)
                continue
            except CloudError as exc:
                # Not a refusal (capacity and quota are CapacityError): the cloud may have created
                # the node before the call failed (a lost reply, throttling on a retry of a create
                # that went through). Launching again on the next offer would make a second node
                # under the same key.
                found = self._find_by_key(cloud, request_id)
                if found is None:
                    logger.warning("launch of %s failed: %s; no node with key %s; trying the next offer",
                                   offer.offer_id, exc, request_id)
                    causes.append(exc)
                    continue
                logger.warning("launch of %s failed: %s; but its node %s exists: counted",
                               offer.offer_id, exc, found.instance_id)
                inst = found
            except Exception as exc:
                # Not a cloud's answer (an operation wait that timed out, a driver bug, a bad
                # setting): the node may exist. Find it by its key; count and record it if it does.
                found = self._find_by_key(cloud, request_id)
                if found is None:
                    logger.error("launch of %s raised %s: %s; no node with key %s found; not trying "
                                 "other offers (the launch is retried)", offer.offer_id,
                                 type(exc).__name__, exc, request_id)
                    unexpected = CloudError(offer.cloud, f"unexpected {type(exc).__name__}: {exc}",
                                            offer_id=offer.offer_id)
                    raise LaunchFailed(node_type, request_id, [*causes, unexpected]) from exc
                logger.warning("launch of %s raised %s: %s; but its node %s exists: counted",
                               offer.offer_id, type(exc).__name__, exc, found.instance_id)
                inst = found
            wrong = _not_ours(inst, node_type)
            if wrong:
                # A driver's dedupe answered with another node (another pool's, or another key's):
                # counting it would launch fewer nodes than asked, silently.
                logger.error("launch of %s for pool %s (key %s) returned %s, which %s; not counted",
                             offer.offer_id, node_type, request_id, inst.instance_id, wrong)
                causes.append(CloudError(offer.cloud, f"returned {inst.instance_id}, which {wrong}; "
                                         "not counted", offer_id=offer.offer_id))
                continue
            logger.info("launched %s for pool %s on %s: %s", inst.instance_id, node_type, offer.offer_id,
                        "; ".join(reasons))
            with self._lock:
                self._instances[inst.instance_id] = inst
                self._launch_times[inst.instance_id] = time.monotonic()
            ledger = self._ledger
            if ledger is not None and _record(
                functools.partial(ledger.record_launch, reason="; ".join(reasons),
                                  team=self._teams.get(node_type, "")),
                inst.instance_id, self.cluster_name, node_type, offer, request_id, time.time(),
            ):
                with self._lock:
                    self._open.add(inst.instance_id)
                    self._priced[inst.instance_id] = offer.paid_price_per_hour
            return inst
        raise LaunchFailed(node_type, request_id, causes)

    def cooldowns(self, now: float | None = None) -> dict[OfferId, float]:
        """Offers placement skips now, offer id -> until (POSIX s): the ones that refused this
        process's launches, and those the cluster's other processes (the autoscaler's provider, the
        controller's) recorded on the shared board (``pricing.cooldowns``) that still run at ``now``;
        the later ``until`` where both have one."""
        at = time.time() if now is None else now
        with self._lock:
            out = dict(self._cooldowns)
        for offer_id, until in self._cooldown_board.others(at).items():
            out[offer_id] = max(until, out.get(offer_id, 0.0))
        return out

    def _share_cooldown(self, offer_id: OfferId, until: float) -> None:
        """Put a cooldown on the shared board; a board that cannot be written only costs the other
        processes one refused launch each, so it is logged, never raised."""
        try:
            self._cooldown_board.add({offer_id: until}, now=time.time())
        except OSError as exc:
            logger.warning("could not share the cooldown of %s on %s: %s", offer_id,
                           self._cooldown_board.path, exc)

    def _find_by_key(self, cloud: Cloud, request_id: str) -> Instance | None:
        """The live node of this cluster on ``cloud`` carrying launch key ``request_id``, if any."""
        try:
            for inst in cloud.list(self.cluster_name):
                if inst.tags.get(TAG_REQUEST) == request_id:
                    return inst
        except Exception as exc:  # noqa: BLE001 - the launch already failed; say why this did not help
            logger.warning("could not list %s to look for key %s: %s", cloud.name, request_id, exc)
        return None

    def _directed(
        self, pool: PoolSpec, now: float, cooldowns: Mapping[OfferId, float]
    ) -> tuple[PoolSpec, Offer | None, str, bool]:
        """The pool as its deadline policy's launch directive (``directives``) shapes the next launch:
        on-demand only, or a spot offer to try first (the directive's first usable one), or no
        launch at all (the policy waits for spot); the reason to log; and whether to wait. No
        directive (or a stale or inapplicable one) leaves the pool as it is."""
        directive = LaunchDirectives(self.settings.state_dir).get(
            self.cluster_name, pool.name, now=now, max_age_s=DIRECTIVE_MAX_AGE_S
        )
        if directive is None:
            return pool, None, "", False
        why = (directive.reason if directive.reason.startswith(SLO_DIRECTIVE_PREFIX)
               else f"deadline policy: {directive.reason or directive.kind}")
        kind = directive.kind
        if kind == "spot":
            admitted = matching_offers(pool, self.offers.index(), now=now)
            for offer_id in (directive.offer_id, *directive.then):
                offer = self.offers.get(offer_id)
                if offer is not None and cooldowns.get(OfferId(offer_id), 0.0) <= now and offer in admitted:
                    return pool, offer, why, False
            kind = directive.otherwise
        if kind == "on-demand" and CapacityType.ON_DEMAND in pool.capacity_types:
            return replace(pool, capacity_types=(CapacityType.ON_DEMAND,)), None, why, False
        if kind == "wait":
            return pool, None, why, True
        return pool, None, "", False

    def _tags(self, tags: Mapping[str, str], node_type: str, offer: Offer, request_id: str) -> dict[str, str]:
        return {
            **tags,
            TAG_CLUSTER: self.cluster_name,
            TAG_POOL: node_type,
            TAG_OFFER: offer.offer_id,
            TAG_REQUEST: request_id,
            TAG_CLOUD: offer.cloud,
            TAG_CAPACITY: offer.capacity.value,
            TAG_PRICE: f"{offer.paid_price_per_hour:.6g}",  # what it is paid (reserved: term)
            **({TAG_TEAM: team} if (team := self._teams.get(node_type)) else {}),
        }

    def _bootstrap(self, node_type: str, offer: Offer, resources: Mapping[str, float],
                   labels: Mapping[str, str]) -> RayBootstrap:
        custom = {k: v for k, v in labels.items() if not k.startswith(RAY_LABEL_PREFIX)}
        custom.update({LABEL_CLOUD: offer.cloud, LABEL_POOL: node_type,
                       LABEL_INSTANCE_TYPE: offer.instance_type})
        return RayBootstrap(
            gcs_address=self.settings.gcs_address,
            node_type=node_type,
            resources=dict(resources),
            labels=custom,
            env={
                "RAY_NODE_MARKET_TYPE": offer.capacity.market,
                "RAY_NODE_REGION": offer.region,
                "RAY_NODE_ZONE": offer.zone or offer.region,
                # With an external Redis the head can fall: the worker waits for it to come back.
                **(worker_env(self.settings.gcs_ft) if self.settings.gcs_ft is not None else {}),
                # Serve's transport: the same on every node as on the head (serve/transport.py).
                **TRANSPORTS[self.settings.serve_transport],
            },
            setup=setup_of(self.provider_config, node_type),
            auth=bootstrap_auth(self.auth, self.cluster_name),
        )

    def _ensure_secrets(self) -> None:
        """``ensure_cluster_secrets`` over every store, once per provider process (the head's
        creation, or the first worker launch of a monitor): the secrets ``ray up`` made are kept and
        copied to any store that lacks them; made here only when no store has them."""
        with self._lock:
            if self._secrets_ready:
                return
            ensure_cluster_secrets(self.secret_stores(), self.cluster_name, self.auth)
            self._secrets_ready = True

    def secret_stores(self) -> list[SecretStore]:
        """The secret store of every configured cloud whose driver has one, each store once (the
        local and private clouds of one state directory share theirs)."""
        out: list[SecretStore] = []
        seen: set[object] = set()
        for cloud in self.clouds.values():
            store = store_of(cloud, self.cluster_name)
            if store is None:
                continue
            key = getattr(store, "root", None) or id(store)
            if key not in seen:
                seen.add(key)
                out.append(store)
        return out

    # -- NodeProvider: terminate ------------------------------------------------------------------

    def terminate_node(self, node_id: str) -> dict[str, Any] | None:
        if node_id == os.environ.get(OWN_INSTANCE_ENV):
            # Never the instance this process runs on. After the head's Ray processes restart with
            # GCS fault tolerance (docs/head-fault-tolerance.md), the new autoscaler monitor finds
            # the head's previous Ray node dead in the reloaded tables and asks to terminate its
            # cloud instance: that instance is the head itself, alive, running this monitor. `ray
            # down` runs elsewhere (its client has no such variable) and still ends the head.
            logger.warning("not terminating %s: it is the instance this process runs on (%s); "
                           "its previous Ray node is gone, the instance is not", node_id, OWN_INSTANCE_ENV)
            return None
        cloud = self._cloud_of(node_id)
        inst = self._instance(node_id) if cloud is not None else None
        if cloud is not None:
            # The ledger ends the node once the cloud accepted the terminate (a refused one raises
            # and the node, still running, stays open), at the time it was asked: billing stops
            # there. If this process dies mid-call, the node goes missing from the listings and
            # the next provider ends it (_account).
            asked = time.time()
            cloud.terminate(InstanceId(node_id))
            if self._ledger is not None:
                _record(self._ledger.record_end, node_id, asked,
                        "terminated by the provider (scale-down or teardown)")
            if inst is not None and inst.tags.get(TAG_RAY_NODE_KIND) == NODE_KIND_HEAD:
                # The head goes (`ray down`): the cluster's secrets go with it, from every store,
                # and no provider will list this cluster again to end what is already gone.
                delete_cluster_secrets(self.secret_stores(), self.cluster_name)
                self._end_gone_at_teardown(asked, head=node_id)
                self._teardown_clouds()
        with self._lock:
            self._instances.pop(node_id, None)
            self._launch_times.pop(node_id, None)
            self._terminated_times[node_id] = time.monotonic()
            self._priced.pop(node_id, None)
            self._open.discard(node_id)
            self._missing.pop(node_id, None)
        return None

    def terminate_nodes(self, node_ids: list[str]) -> dict[str, Any] | None:
        if len(node_ids) <= 1:
            for node_id in node_ids:
                self.terminate_node(node_id)
            return None
        with ThreadPoolExecutor(max_workers=min(8, len(node_ids))) as pool:
            list(pool.map(self.terminate_node, node_ids))
        return None

    # -- ray up hooks (run in the `ray up` client only) ------------------------------------------

    @staticmethod
    def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
        """Check every node type's policy and ``migration:`` section before anything launches, spell
        out each pool's defaulted ``colocate`` (``fill_pool_defaults``: the autoscaler's provider sees
        a node type's ``node_config`` only), and have the head start the controller
        (``controller_start_command``) when it has work (``controller_needed``). Each worker node type's setup
        sections (``setup_commands``, ``worker_setup_commands``, ``file_mounts``, ``docker``) go into
        ``provider._worker_setup`` (``cluster_config/worker_setup.py``), since no updater runs on a
        worker: the drivers render them into its startup script. Ray's ``prepare_config`` has run
        before this hook, so ``worker_setup_commands`` already begin with ``setup_commands``."""
        check_cluster(cluster_config)
        fill_pool_defaults(cluster_config)
        write_into_provider(cluster_config, merged=True)
        cluster_config.setdefault("auth", {}).setdefault("ssh_user", "ray")
        name = str(cluster_config.get("cluster_name") or "default")
        settings = load_settings(cluster_config["provider"], name)
        if settings.start_controller and controller_needed(cluster_config):
            commands = list(cluster_config.get("head_start_ray_commands") or [])
            if not any(CONTROLLER_MODULE in str(c) for c in commands):
                commands.append(controller_start_command())
            cluster_config["head_start_ray_commands"] = commands
        if settings.dashboard_port is not None:
            commands = list(cluster_config.get("head_start_ray_commands") or [])
            if not any(DASHBOARD_COMMAND in str(c) for c in commands):
                commands.append(dashboard_start_command(settings.dashboard_port))
            cluster_config["head_start_ray_commands"] = commands
        if settings.gcs_ft is not None:
            cluster_config["head_start_ray_commands"] = gcs_head_commands(
                list(cluster_config.get("head_start_ray_commands") or []), settings.gcs_ft)
        # Every head command runs with the cluster's Ray auth (and TLS) settings, after one that
        # copies the secrets from the head's cloud onto the head (ray_multicloud/auth).
        cluster_config["head_start_ray_commands"] = head_commands(
            list(cluster_config.get("head_start_ray_commands") or []), parse_auth(cluster_config["provider"])
        )
        # ... and with Serve's transport (serve/transport.py), the same as every worker's.
        cluster_config["head_start_ray_commands"] = transport_head_commands(
            cluster_config["head_start_ray_commands"], settings.serve_transport)
        return cluster_config

    def get_command_runner(self, log_prefix: str, node_id: str, auth_config: dict[str, Any],
                           cluster_name: str, process_runner: Any, use_internal_ip: bool,
                           docker_config: dict[str, Any] | None = None) -> Any:
        cloud = self._cloud_of(node_id)
        if cloud is not None and cloud.features.local_commands:
            from ray_multicloud.clouds.local import LocalCloud
            from ray_multicloud.clouds.local.runner import LocalCommandRunner

            return LocalCommandRunner(log_prefix, cast(LocalCloud, cloud), InstanceId(node_id))
        return super().get_command_runner(log_prefix, node_id, auth_config, cluster_name,
                                          process_runner, use_internal_ip, docker_config)


CLAIM_TTL_S = 6 * 3600.0  # a request's claimed node indices are forgotten this long after its last launch


def node_key(request: str, node_type: str, index: int) -> RequestId:
    """The idempotency key of one node: the autoscaler's request id, the node type, and the node's
    index among that request's nodes of that type. Every driver dedupes launches on it, so two
    nodes of one request never share it (Ray's ``NodeProviderAdapter`` splits one request into
    several ``create_node`` calls: one per node type, and per batch of at most
    ``AUTOSCALER_MAX_LAUNCH_BATCH`` nodes, all under the same request id), and a retry of a
    failed launch derives the same keys again."""
    return RequestId(f"{request}-{node_type}-{index}")


class LaunchClaims:
    """Which node indices of each (request, node type) a ``create_node`` call of this process holds.

    A call claims the lowest ``count`` indices no other call of the same request and type holds,
    so the adapter's batches (concurrent or not) get disjoint keys: batches of 5 and 2 of one
    request are indices 0-4 and 5-6. A call that fails releases its indices, so the request's
    retry reuses them and the clouds' dedupe returns whatever the failed attempt did create (a
    create that timed out, say) instead of launching it twice. A call that succeeded keeps them:
    Ray v2 re-launches a request under the same id only for nodes it never saw come up, which
    must be new nodes. A restarted provider starts with no claims, so a request repeated after a
    restart derives the keys 0, 1, ... again and finds what its predecessor launched.
    """

    def __init__(self, ttl_s: float = CLAIM_TTL_S) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], tuple[set[int], float]] = {}
        self._ttl_s = ttl_s

    def claim(self, request: str, node_type: str, count: int) -> list[int]:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (_, at) in self._held.items() if now - at > self._ttl_s]:
                del self._held[key]
            held, _ = self._held.get((request, node_type), (set(), now))
            out: list[int] = []
            i = 0
            while len(out) < count:
                if i not in held:
                    out.append(i)
                i += 1
            self._held[(request, node_type)] = (held | set(out), now)
            return out

    def release(self, request: str, node_type: str, indices: list[int]) -> None:
        with self._lock:
            held, at = self._held.get((request, node_type), (set(), 0.0))
            self._held[(request, node_type)] = (held - set(indices), at)


def _not_ours(inst: Instance, node_type: str) -> str:
    """Why a driver's answer to a launch of ``node_type`` is not a node of it ("" if it is): its
    pool tag names another pool. (Key tags are not compared: a driver may hand back a tag
    re-encoded for its cloud's label rules, and the key's node type is the pool anyway.)"""
    pool = inst.tags.get(TAG_POOL)
    if pool is not None and pool != node_type:
        return f"belongs to pool {pool!r}"
    return ""


CONTROLLER_MODULE = "ray_multicloud.controller"
CONTROLLER_LOG = "~/ray_multicloud_controller.log"


def controller_start_command(config_path: str = "~/ray_bootstrap_config.yaml") -> str:
    """The head command that starts the controller in the background, after ``ray start --head``.

    Why a process of its own, started with the head, rather than a thread of the autoscaler's
    monitor: a move blocks for minutes (replacement up, drain deadline), and the monitor's
    reconcile loop must not wait for it; a crash of one must not take the other down; and the
    provider object is also built in the ``ray up``/``ray down`` clients, where no controller may
    run. The process lives in the head's process group, so ending the head (``ray down``, or the
    head VM going away) ends it; one controller per cluster holds a lock file, so re-running
    ``ray up`` (which runs the head commands again) does not start a second one. Its log is
    ``~/ray_multicloud_controller.log`` on the head.
    """
    return (
        f"nohup python -m {CONTROLLER_MODULE} --config {config_path} "
        f">> {CONTROLLER_LOG} 2>&1 < /dev/null &"
    )


DASHBOARD_COMMAND = "ray_multicloud.cli dashboard"
DASHBOARD_LOG = "~/ray_multicloud_dashboard.log"


def dashboard_start_command(port: int, config_path: str = "~/ray_bootstrap_config.yaml") -> str:
    """The head command that serves the read-only dashboard (``provider.dashboard_port``) in the
    background on 127.0.0.1:``port``, token-protected (the token is written to
    ``<state_dir>/dashboard.token`` on the head); a user reaches it through an SSH tunnel."""
    return (
        f"nohup python -m {DASHBOARD_COMMAND} {config_path} --port {int(port)} "
        f">> {DASHBOARD_LOG} 2>&1 < /dev/null &"
    )


def controller_needed(cluster_config: Mapping[str, Any]) -> bool:
    """Whether the cluster needs the controller on its head: a movable pool, an active ``idle:``
    section, or an enabled ``predictive:`` section (its step asks the autoscaler for capacity ahead;
    a serving pool with ``migration.enabled: false`` still needs it)."""
    return bool(
        movable_pools(cluster_config)
        or parse_idle(cluster_config).active
        or any(p.enabled for p in parse_all_predictive(cluster_config).values())
    )


def movable_pools(cluster_config: Mapping[str, Any]) -> list[str]:
    """Node types with a ``pool:`` whose ``migration.enabled`` is not false, in YAML order."""
    out = []
    for name, spec in (cluster_config.get("available_node_types") or {}).items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        if not isinstance(node_config, Mapping) or "pool" not in node_config:
            continue
        if parse_migration(str(name), node_config).enabled:
            out.append(str(name))
    return out


RISK_WINDOW_HOURS = 168.0  # the interruption history launch placement weighs (placement_risk)
RISK_REFRESH_S = 60.0  # ... read from the ledger at most this often
FLEET_REUSE_S = 5.0  # a launch reuses a fleet listing this young (Ray's autoscaler update interval)
SLOW_LISTING_S = 0.5  # a listing at least this slow is answered from the last one (non_terminated_nodes)
MAX_LISTING_AGE_S = 60.0  # ... unless that one began longer ago than this: then list and wait
MISSING_LISTS_TO_END = 3  # listings in a row a node must be missing from before the ledger ends it
MISSING_GRACE_S = 60.0  # ... and for at least this long (a cloud's listing can lag its launch)

_LEDGER_SAID: set[str] = set()


def _ledger_failed(exc: BaseException) -> None:
    """Log a failed ledger write: the first of each kind at error level, saying what it costs; the
    rest at warning level. Never raises."""
    kind = type(exc).__name__
    if kind in _LEDGER_SAID:
        logger.warning("ledger write failed: %s", exc)
        return
    _LEDGER_SAID.add(kind)
    logger.error("ledger write failed: %s (%s). Nodes keep launching and ending; their spend is not "
                 "recorded until the ledger works again. Check provider.ledger's file and its "
                 "directory (writable, a SQLite ledger, disk space).", exc, kind)


def _open_ledger(path: str | None) -> Ledger | None:
    """The ledger at ``path`` (None when unset); a file that cannot be used is said once, at error
    level, and the provider runs without a ledger: ledger failures never stop launches."""
    if not path:
        return None
    try:
        return Ledger(path)
    except (LedgerError, OSError, sqlite3.Error) as exc:
        logger.error("cannot open the ledger %s: %s. The provider runs without it: nodes launch and end, "
                     "their spend is not recorded. Fix or move the file named by provider.ledger (a "
                     "writable SQLite ledger) and restart the monitor.", path, exc)
        return None


def _record(write: Callable[..., object], *args: Any) -> bool:
    """``write(*args)`` to the ledger; True if it returned. A failure of any kind is logged and
    never fails a launch or a termination."""
    try:
        write(*args)
    except Exception as exc:  # noqa: BLE001 - a ledger failure never fails a launch or a termination
        _ledger_failed(exc)
        return False
    return True
