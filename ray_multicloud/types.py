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
    """How a node is bought. The value is what Ray's ``ray.io/market-type`` label carries."""

    SPOT = "spot"
    ON_DEMAND = "on-demand"

    @classmethod
    def parse(cls, text: str) -> CapacityType:
        """Accept the spellings users and clouds use: spot, on-demand, ondemand, on_demand, SPOT."""
        key = text.strip().lower().replace("_", "-")
        if key in ("ondemand", "on-demand", "standard", "regular"):
            return cls.ON_DEMAND
        if key in ("spot", "preemptible"):
            return cls.SPOT
        raise ValueError(f"unknown capacity type {text!r}: use 'spot' or 'on-demand'")


@dataclass(frozen=True, slots=True)
class Offer:
    """One way to buy one node: a machine type in a place, at a price, spot or on-demand.

    ``zone`` is "" where the cloud prices by region (Azure, most GCP rows). ``as_of`` is when
    the price was observed (None for the shipped snapshot). ``stale`` is set by the pricing layer
    when a live feed failed and this is the last known price.
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
    on-demand (both only when the pool has enough nodes to honour them). ``colocate`` keeps the
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
    capacity_types: tuple[CapacityType, ...] = (CapacityType.SPOT, CapacityType.ON_DEMAND)
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
