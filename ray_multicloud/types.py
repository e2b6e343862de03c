"""Plain data that crosses module boundaries: offers, pools, fleet nodes, decisions.

Every value here is a frozen dataclass with no behaviour beyond derived properties, so the
pure policy, the simulator, the provider and the CLI can share them without sharing state.
Prices are USD per hour; times are POSIX seconds (floats) passed in by the caller — nothing
here reads the clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

InstanceId = NewType("InstanceId", str)
RequestId = NewType("RequestId", str)
OfferId = NewType("OfferId", str)


class CapacityType(str, enum.Enum):
    """How a node is bought. ``market`` is what Ray's ``ray.io/market-type`` label carries.

    ``RESERVED`` is capacity the team has already committed to (an AWS Reserved Instance or
    Savings Plan, a GCP committed-use discount, an Azure reservation): the node itself is an
    on-demand node of the cloud (its market is on-demand), billed against the commitment.
    """

    SPOT = "spot"
    ON_DEMAND = "on-demand"
    RESERVED = "reserved"

    @classmethod
    def parse(cls, text: str) -> CapacityType:
        """Accept the spellings users and clouds use: spot, on-demand, ondemand, on_demand, SPOT,
        reserved, committed."""
        key = text.strip().lower().replace("_", "-")
        if key in ("ondemand", "on-demand", "standard", "regular"):
            return cls.ON_DEMAND
        if key in ("spot", "preemptible"):
            return cls.SPOT
        if key in ("reserved", "committed", "commitment"):
            return cls.RESERVED
        raise ValueError(f"unknown capacity type {text!r}: use 'spot', 'on-demand' or 'reserved'")

    @property
    def market(self) -> str:
        """Ray's ``ray.io/market-type`` value: a reserved node is an on-demand node of its cloud."""
        return CapacityType.ON_DEMAND.value if self is CapacityType.RESERVED else self.value


@dataclass(frozen=True, slots=True)
class Offer:
    """One way to buy one node: a machine type in a place, at a price, spot, on-demand or reserved.

    ``zone`` is "" where the cloud prices by region (Azure, most GCP rows). ``as_of`` is when
    the price was observed (None for the shipped snapshot). ``stale`` is set by the pricing layer
    when a live feed failed and this is the last known price.

    A reserved offer (``capacity`` RESERVED, built from a declared commitment by
    ``cluster_config.reservations``) has ``price_per_hour`` 0: its cost is sunk, so every decision
    (placement, moves, budgets' $/h) sees a marginal cost of $0 for it. What it is paid is
    ``term_price_per_hour`` (``paid_price_per_hour``: what the ledger records), and it has
    ``reserved_count`` slots: nodes beyond that are not covered by the commitment.
    """

    cloud: str
    region: str
    zone: str
    instance_type: str
    accelerator: str
    accelerator_count: float
    vcpus: float
    memory_gib: float
    capacity: CapacityType
    price_per_hour: float
    ondemand_price_per_hour: float
    price_scope: str = "full_vm"
    source: str = ""
    as_of: float | None = None
    stale: bool = False
    interruption_rate_per_hour: float | None = None
    term_price_per_hour: float | None = None
    reserved_count: int = 0

    @property
    def paid_price_per_hour(self) -> float:
        """What a node on this offer is paid per hour: a reserved offer's term price, else its price."""
        return self.price_per_hour if self.term_price_per_hour is None else self.term_price_per_hour

    @property
    def offer_id(self) -> OfferId:
        """Stable key: cloud/region/zone/instance_type/capacity (zone '-' when regional)."""
        return OfferId(
            f"{self.cloud}/{self.region}/{self.zone or '-'}/{self.instance_type}/{self.capacity.value}"
        )

    @property
    def location(self) -> str:
        return f"{self.cloud}:{self.zone or self.region}"

    @property
    def discount(self) -> float:
        """Fraction saved against on-demand for the same machine (0 for on-demand offers)."""
        if self.ondemand_price_per_hour <= 0:
            return 0.0
        return 1.0 - self.price_per_hour / self.ondemand_price_per_hour


class Colocate(str, enum.Enum):
    """How close a pool keeps its nodes: the nodes of one Ray Train worker group all-reduce every
    step, which across zones is slow and across regions or clouds also pays egress on every step."""

    NONE = "none"
    ZONE = "zone"
    REGION = "region"
    CLOUD = "cloud"

    def key(self, offer: Offer) -> tuple[str, ...]:
        """Where ``offer`` is, at this granularity (a regional offer's zone is its region)."""
        if self is Colocate.ZONE:
            return (offer.cloud, offer.region, offer.zone or offer.region)
        if self is Colocate.REGION:
            return (offer.cloud, offer.region)
        if self is Colocate.CLOUD:
            return (offer.cloud,)
        return ()


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """What a node type of the cluster YAML asks for, and the policy it is placed under.

    Empty ``clouds``/``regions`` mean "any". ``regions`` entries may end in ``*`` (prefix match,
    e.g. ``eu-*`` for data residency). ``source_preference`` orders clouds: an offer from an
    earlier cloud wins over any later one whatever the price (a private pool first, then public
    clouds); clouds not listed come after, ordered by price. ``min_clouds`` asks that the pool's
    nodes span at least that many clouds; ``min_on_demand`` that at least that many of them be
    on-demand (both only when the pool has enough nodes to honour them; only ON_DEMAND nodes count
    towards ``min_on_demand``, reserved ones do not). ``capacity_types`` includes
    ``RESERVED`` by default: a declared commitment is filled first by any pool it fits, as a
    cloud applies a Reserved Instance to matching usage; a pool listing its capacity types
    without ``reserved`` does not use it. ``colocate`` keeps the
    pool's live nodes in one zone (or region, or cloud): a gang, placed and moved together (the
    YAML's default is ``cluster_config.pools.default_colocate``; this dataclass's is ``NONE``).
    """

    name: str
    accelerator: str | None = None
    accelerator_count: float = 0.0
    min_vcpus: float = 0.0
    min_memory_gib: float = 0.0
    clouds: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    capacity_types: tuple[CapacityType, ...] = (
        CapacityType.SPOT, CapacityType.ON_DEMAND, CapacityType.RESERVED
    )
    max_price_per_hour: float | None = None
    source_preference: tuple[str, ...] = ()
    min_clouds: int = 1
    min_on_demand: int = 0
    colocate: Colocate = Colocate.NONE


class NodeState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DRAINING = "draining"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class FleetNode:
    """A node the project launched, as rebuilt from its cloud tags."""

    instance_id: InstanceId
    pool: str
    offer: Offer
    request_id: RequestId
    launched_at: float
    state: NodeState = NodeState.RUNNING


@dataclass(frozen=True, slots=True)
class Placement:
    """The offer chosen for one node, the ordered fallbacks if it fails, and why."""

    offer: Offer
    fallbacks: tuple[Offer, ...]
    reasons: tuple[str, ...]

    @property
    def candidates(self) -> tuple[Offer, ...]:
        """The chosen offer first, then the fallbacks, in the order a launcher should try them."""
        return (self.offer, *self.fallbacks)


@dataclass(frozen=True, slots=True)
class Decision:
    """``place()``'s answer when every requested node can be placed."""

    pool: str
    placements: tuple[Placement, ...]


@dataclass(frozen=True, slots=True)
class Infeasible:
    """``place()``'s answer when the pool's policy admits no offer; ``reasons`` say which limit bit."""

    pool: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Move:
    """A proposal to replace a running node by one on another offer (price move or preemption)."""

    instance_id: InstanceId
    pool: str
    from_offer: Offer
    to_offer: Offer
    saving_per_hour: float
    move_cost_usd: float
    reasons: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A declared commitment (``provider.reservations`` in the cluster YAML): ``count`` nodes of
    ``instance_type`` in ``cloud``/``region`` (``zone`` "" = any zone of the region, as a regional
    AWS Reserved Instance), paid ``term_price_per_hour`` each, used or not, from ``starts`` until
    ``ends`` (POSIX seconds; None = open). ``key`` is where it was declared, for messages."""

    cloud: str
    instance_type: str
    region: str
    count: int
    term_price_per_hour: float
    zone: str = ""
    starts: float | None = None
    ends: float | None = None
    team: str = ""
    key: str = ""

    def active(self, at: float) -> bool:
        """Whether the commitment runs at ``at``."""
        return (self.starts is None or self.starts <= at) and (self.ends is None or at < self.ends)
