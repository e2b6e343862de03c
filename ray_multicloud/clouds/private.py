"""A private GPU pool: a fixed set of machines you already own, priced at what owning them costs.

Locally its machines are Ray nodes started by the local cloud's machinery; what makes it private
is the fixed capacity: ``launch`` answers ``CapacityError`` once every machine of the requested
type is in use, exactly as a full on-premises cluster does, and the placement policy then bursts to
the public clouds (``source_preference: [onprem, ...]``).

**Price.** A private machine is not free: its offers carry an *amortised* $/h, which the policy
ranks by and the ledger records as spend, so a savings figure never counts owned hardware at $0.
Per machine (or, for every machine of the pool, under the pool's ``cost:`` mapping)::

    amortised_per_hour: 1.10          # the figure your finance team uses, taken as is; else
    capex_usd: 25000                  # purchase price of the machine (its share of a shared chassis)
    lifetime_years: 4                 # straight-line depreciation period        (default 4)
    power_kw: 0.8                     # average draw at the wall of the IT load  (default 0)
    pue: 1.58                         # facility power / IT power                 (default 1.58)
    usd_per_kwh: 0.13                 # electricity price                         (default 0.13)
    overhead_per_hour: 0.05           # space, network, support contracts, staff  (default 0)

    amortised $/h = capex_usd / (lifetime_years * 8760)
                    + power_kw * pue * usd_per_kwh
                    + overhead_per_hour

The default method and its public basis (``DEFAULT_COST``): straight-line depreciation over 4
years, the middle of the 3-5 years usual for servers (the US tax schedule, MACRS, treats computers
as 5-year property; hyperscalers' 10-K filings moved to 5-6 years in 2020-2022, which GPU
obsolescence makes optimistic, so we stay shorter); a PUE of 1.58, the global average of the
Uptime Institute Global Data Center Survey 2023; and $0.13/kWh, the US commercial-sector average
retail price in the EIA Electric Power Annual for 2023 (12.7 cents/kWh, rounded up). The hours
counted are the hours a machine runs a node of the cluster; the idle hours of owned hardware are
not charged to the cluster (they are the owner's utilisation problem, not a saving).

A machine with neither ``amortised_per_hour`` nor ``capex_usd`` is *unpriced*: it costs $0/h
as before, its offer says so (``source``), and ``ray-multicloud plan`` warns that every savings
figure including it is inflated. ``ondemand_equivalent_per_hour`` is what the machine would cost
on a public cloud's on-demand price list: the savings report counts its hours against it (unset:
its own amortised price, so it claims no saving).

Config (``provider.clouds.<name>``)::

    onprem:
      driver: private
      region: onprem-dc1
      cost: {lifetime_years: 4, pue: 1.4, usd_per_kwh: 0.11}      # pool-wide defaults (optional)
      machines:
        - {instance_type: dgx-a100, accelerator: A100, accelerator_count: 1, vcpus: 8,
           memory_gib: 64, count: 2, ondemand_equivalent_per_hour: 3.67,
           capex_usd: 24875, power_kw: 0.81}
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.clouds.base import CloudFeatures, Instance, LaunchRequest
from ray_multicloud.clouds.local import LocalCloud
from ray_multicloud.clouds.schemas import MACHINE as MACHINE_SCHEMA
from ray_multicloud.clouds.schemas import PRIVATE as PRIVATE_SCHEMA
from ray_multicloud.errors import CapacityError, ConfigError
from ray_multicloud.schema import Field, check_section
from ray_multicloud.types import CapacityType, NodeState, Offer

HOURS_PER_YEAR = 8760.0
UNPRICED = "unpriced"


@dataclass(frozen=True, slots=True)
class CostDefaults:
    """The amortisation inputs a machine does not state itself (module docstring, "Price")."""

    lifetime_years: float = 4.0
    pue: float = 1.58
    usd_per_kwh: float = 0.13
    overhead_per_hour: float = 0.0


DEFAULT_COST = CostDefaults()
COST_KEYS: tuple[str, ...] = ("lifetime_years", "pue", "usd_per_kwh", "overhead_per_hour")
MACHINE_KEYS: tuple[str, ...] = MACHINE_SCHEMA.keys()  # clouds/schemas.py
POOL_KEYS: tuple[str, ...] = PRIVATE_SCHEMA.keys()  # the entry's keys (clouds/schemas.py)


@dataclass(frozen=True, slots=True)
class Machine:
    """One kind of machine in the pool and how many of it there are.

    ``price_per_hour`` is its amortised $/h and ``price_basis`` says how it was reached (the
    formula with its inputs, "declared", or ``UNPRICED``); ``ondemand_equivalent_per_hour`` is the
    public on-demand price its hours are compared against (0 in a ``Machine`` built by hand means
    "none": the offer then uses the machine's own price)."""

    instance_type: str
    accelerator: str
    accelerator_count: float
    vcpus: float
    memory_gib: float
    count: int
    ondemand_equivalent_per_hour: float = 0.0
    price_per_hour: float = 0.0
    price_basis: str = UNPRICED

    @property
    def priced(self) -> bool:
        return self.price_basis != UNPRICED


def amortised_per_hour(
    capex_usd: float, *, lifetime_years: float, power_kw: float, pue: float, usd_per_kwh: float,
    overhead_per_hour: float,
) -> float:
    """``capex / (lifetime_years * 8760) + power_kw * pue * usd_per_kwh + overhead_per_hour``."""
    return (capex_usd / (lifetime_years * HOURS_PER_YEAR) + power_kw * pue * usd_per_kwh
            + overhead_per_hour)


def _num(key: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(key, f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def parse_cost_defaults(key: str, raw: object) -> CostDefaults:
    """A pool's ``cost:`` mapping (pool-wide amortisation inputs) over ``DEFAULT_COST``."""
    if raw is None:
        return DEFAULT_COST
    raw = check_section(key, raw, COST_KEYS, example="{lifetime_years: 4, pue: 1.4, usd_per_kwh: 0.12}")
    return CostDefaults(
        lifetime_years=_num(f"{key}.lifetime_years", raw.get("lifetime_years", DEFAULT_COST.lifetime_years),
                            positive=True),
        pue=_pue(f"{key}.pue", raw.get("pue", DEFAULT_COST.pue)),
        usd_per_kwh=_num(f"{key}.usd_per_kwh", raw.get("usd_per_kwh", DEFAULT_COST.usd_per_kwh)),
        overhead_per_hour=_num(f"{key}.overhead_per_hour",
                               raw.get("overhead_per_hour", DEFAULT_COST.overhead_per_hour)),
    )


def _pue(key: str, value: object) -> float:
    pue = _num(key, value, positive=True)
    if pue < 1:
        raise ConfigError(key, f"a PUE is facility power over IT power, at least 1.0, got {value!r}")
    return pue


def machine_price(key: str, item: Mapping[str, Any], defaults: CostDefaults) -> tuple[float, str]:
    """The amortised $/h of one machine entry and the basis to show for it (module docstring)."""
    declared = [k for k in ("amortised_per_hour", "amortized_per_hour") if k in item]
    if declared:
        if "capex_usd" in item:
            raise ConfigError(f"{key}.{declared[0]}", "give either amortised_per_hour or capex_usd "
                              "(with lifetime_years, power_kw, ...), not both")
        price = _num(f"{key}.{declared[0]}", item[declared[0]])
        return price, f"declared ${price:.4f}/h"
    if "capex_usd" not in item:
        for k in ("power_kw", *COST_KEYS):
            if k in item:
                raise ConfigError(f"{key}.{k}", "is used only with capex_usd; add capex_usd (the "
                                  "machine's purchase price) or give amortised_per_hour")
        return 0.0, UNPRICED
    capex = _num(f"{key}.capex_usd", item["capex_usd"], positive=True)
    years = _num(f"{key}.lifetime_years", item.get("lifetime_years", defaults.lifetime_years), positive=True)
    power = _num(f"{key}.power_kw", item.get("power_kw", 0.0))
    pue = _pue(f"{key}.pue", item.get("pue", defaults.pue))
    kwh = _num(f"{key}.usd_per_kwh", item.get("usd_per_kwh", defaults.usd_per_kwh))
    overhead = _num(f"{key}.overhead_per_hour", item.get("overhead_per_hour", defaults.overhead_per_hour))
    price = amortised_per_hour(capex, lifetime_years=years, power_kw=power, pue=pue, usd_per_kwh=kwh,
                               overhead_per_hour=overhead)
    basis = (f"amortised ${price:.4f}/h = ${capex:,.0f} over {years:g} y + {power:g} kW x PUE {pue:g} "
             f"x ${kwh:g}/kWh + ${overhead:g}/h overhead")
    return price, basis


def parse_machine(key: str, item: object, defaults: CostDefaults = DEFAULT_COST,
                  *, extra_keys: Collection[str] = ()) -> Machine:
    """One ``machines[i]`` entry; ``extra_keys``: further keys a driver reusing this parser reads
    itself (e.g. a host list). ``ConfigError`` names the bad key."""
    item = check_section(key, item, MACHINE_SCHEMA.with_fields({k: Field() for k in extra_keys}))
    try:
        machine = Machine(
            instance_type=str(item["instance_type"]),
            accelerator=str(item.get("accelerator") or ""),
            accelerator_count=float(item.get("accelerator_count", 0)),
            vcpus=float(item.get("vcpus", 1)),
            memory_gib=float(item.get("memory_gib", 1)),
            count=int(item["count"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(key, f"bad machine entry ({exc!r}); it needs "
                          "instance_type and count, numbers for the rest") from exc
    if machine.count < 1:
        raise ConfigError(f"{key}.count", "must be at least 1")
    price, basis = machine_price(key, item, defaults)
    equivalent = item.get("ondemand_equivalent_per_hour")
    od = price if equivalent is None else _num(f"{key}.ondemand_equivalent_per_hour", equivalent)
    return Machine(
        instance_type=machine.instance_type, accelerator=machine.accelerator,
        accelerator_count=machine.accelerator_count, vcpus=machine.vcpus, memory_gib=machine.memory_gib,
        count=machine.count, ondemand_equivalent_per_hour=od, price_per_hour=price, price_basis=basis,
    )


def parse_machines(name: str, spec: Mapping[str, Any], *, extra_keys: Collection[str] = (),
                   extra_machine_keys: Collection[str] = ()) -> tuple[str, list[Machine]]:
    """The region and machines of a private pool's config entry; ``ConfigError`` names a bad key.

    ``extra_keys`` / ``extra_machine_keys``: keys of the entry / of each machine that a driver
    reusing this parser reads itself."""
    key = f"provider.clouds.{name}"
    check_section(key, spec, PRIVATE_SCHEMA.with_fields({k: Field() for k in extra_keys}))
    raw = spec.get("machines")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}.machines", "list the pool's machines, each with instance_type, "
                          "accelerator, accelerator_count, vcpus, memory_gib and count")
    defaults = parse_cost_defaults(f"{key}.cost", spec.get("cost"))
    machines = [parse_machine(f"{key}.machines[{i}]", item, defaults, extra_keys=extra_machine_keys)
                for i, item in enumerate(raw)]
    return str(spec.get("region", name)), machines


def unpriced_warnings(name: str, machines: Sequence[Machine]) -> list[str]:
    """One line per machine kind counted at $0/h, for ``ray-multicloud plan``."""
    return [
        f"provider.clouds.{name}.machines[{i}] ({m.instance_type}): no amortised price, so its hours "
        "count at $0/h and every savings figure that includes them is inflated; set capex_usd "
        "(with power_kw) or amortised_per_hour"
        for i, m in enumerate(machines) if not m.priced
    ]


def machine_offers(cloud: str, region: str, machines: Sequence[Machine]) -> list[Offer]:
    """A pool's offers: one per machine kind, on-demand (it is never taken back), at the machine's
    amortised $/h; the on-demand price is its ``ondemand_equivalent_per_hour`` (else its own price)."""
    return [
        Offer(cloud=cloud, region=region, zone="", instance_type=m.instance_type,
              accelerator=m.accelerator, accelerator_count=m.accelerator_count, vcpus=m.vcpus,
              memory_gib=m.memory_gib, capacity=CapacityType.ON_DEMAND, price_per_hour=m.price_per_hour,
              ondemand_price_per_hour=m.ondemand_equivalent_per_hour or m.price_per_hour,
              price_scope="private", source=f"private pool {cloud} ({m.price_basis})")
        for m in machines
    ]


def machine_slots(offers: Sequence[Offer], machines: Mapping[str, Machine]) -> dict[str, int]:
    """Offer id -> how many machines of its kind the pool has (``SellsFixedOffers.slots``)."""
    return {o.offer_id: machines[o.instance_type].count for o in offers if o.instance_type in machines}


class PrivateCloud(LocalCloud):
    """A fixed-capacity pool of machines at their amortised price. See the module docstring."""

    features = CloudFeatures(spot=False, interruption_notices=False, simulated_preemption=True,
                             fixed_capacity=True, own_offers=True, local_commands=True)

    def __init__(self, name: str, state_dir: str | Path, *, region: str,
                 machines: Sequence[Machine]) -> None:
        super().__init__(name, state_dir)
        self.region = region
        self.machines = {m.instance_type: m for m in machines}

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> PrivateCloud:
        region, machines = parse_machines(name, spec)
        return cls(name, state_dir, region=region, machines=machines)

    def offers(self) -> list[Offer]:
        """The pool's offers (see ``machine_offers``)."""
        return machine_offers(self.name, self.region, list(self.machines.values()))

    def slots(self, cluster: str) -> dict[str, int]:
        """Machines per offer (``SellsFixedOffers.slots``); the local pool serves one cluster."""
        return machine_slots(self.offers(), self.machines)

    def launch(self, request: LaunchRequest) -> Instance:
        with self._lock:
            existing = self.state.by_request(self.name, request.request_id)
            if existing is not None:
                return self._instance(existing)
            machine = self.machines.get(request.offer.instance_type)
            if machine is None:
                raise CapacityError(self.name, f"the pool has no {request.offer.instance_type} machines",
                                    offer_id=request.offer.offer_id, code="NoSuchMachine")
            in_use = sum(
                1 for row in self.state.live(cloud=self.name)
                if row["offer_id"] == request.offer.offer_id
                and self._refresh(row)["state"] != NodeState.TERMINATED.value
            )
            if in_use >= machine.count:
                raise CapacityError(
                    self.name, f"all {machine.count} {machine.instance_type} machines are in use",
                    offer_id=request.offer.offer_id, code="PoolFull",
                )
            return super().launch(request)
