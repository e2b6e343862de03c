"""A private GPU pool: a fixed set of machines you already own, at zero marginal price.

Locally its machines are Ray nodes started by the local cloud's machinery; what makes it private
is the fixed capacity: ``launch`` answers ``CapacityError`` once every machine of the requested
type is in use, exactly as a full on-premises cluster does, and the placement policy then bursts to
the public clouds (``source_preference: [onprem, ...]``). Its offers are priced at 0 $/h; the
optional ``ondemand_equivalent_per_hour`` of a machine is what the savings report counts it against.

Config (``provider.clouds.<name>``)::

    onprem:
      driver: private
      region: onprem-dc1
      machines:
        - {instance_type: dgx-a100, accelerator: A100, accelerator_count: 1, vcpus: 8,
           memory_gib: 64, count: 2, ondemand_equivalent_per_hour: 3.67}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.clouds.base import CloudFeatures, Instance, LaunchRequest
from ray_multicloud.clouds.local import LocalCloud
from ray_multicloud.errors import CapacityError, ConfigError
from ray_multicloud.types import CapacityType, NodeState, Offer


@dataclass(frozen=True, slots=True)
class Machine:
    """One kind of machine in the pool and how many of it there are."""

    instance_type: str
    accelerator: str
    accelerator_count: float
    vcpus: float
    memory_gib: float
    count: int
    ondemand_equivalent_per_hour: float = 0.0


def parse_machines(name: str, spec: Mapping[str, Any]) -> tuple[str, list[Machine]]:
    """The region and machines of a private pool's config entry; ``ConfigError`` names a bad key."""
    key = f"provider.clouds.{name}"
    unknown = set(spec) - {"driver", "region", "machines"}
    if unknown:
        raise ConfigError(key, f"unknown keys {sorted(unknown)}; allowed: driver, region, machines")
    raw = spec.get("machines")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}.machines", "list the pool's machines, each with instance_type, "
                          "accelerator, accelerator_count, vcpus, memory_gib and count")
    machines = []
    for i, item in enumerate(raw):
        try:
            machines.append(Machine(
                instance_type=str(item["instance_type"]),
                accelerator=str(item.get("accelerator", "")),
                accelerator_count=float(item.get("accelerator_count", 0)),
                vcpus=float(item.get("vcpus", 1)),
                memory_gib=float(item.get("memory_gib", 1)),
                count=int(item["count"]),
                ondemand_equivalent_per_hour=float(item.get("ondemand_equivalent_per_hour", 0.0)),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{key}.machines[{i}]", f"bad machine entry ({exc!r}); it needs "
                              "instance_type and count, numbers for the rest") from exc
        if machines[-1].count < 1:
            raise ConfigError(f"{key}.machines[{i}].count", "must be at least 1")
    return str(spec.get("region", name)), machines


def machine_offers(cloud: str, region: str, machines: Sequence[Machine]) -> list[Offer]:
    """A pool's offers: one per machine kind, on-demand (it is never taken back), 0 $/h."""
    return [
        Offer(cloud=cloud, region=region, zone="", instance_type=m.instance_type,
              accelerator=m.accelerator, accelerator_count=m.accelerator_count, vcpus=m.vcpus,
              memory_gib=m.memory_gib, capacity=CapacityType.ON_DEMAND, price_per_hour=0.0,
              ondemand_price_per_hour=m.ondemand_equivalent_per_hour, price_scope="private",
              source=f"private pool {cloud}")
        for m in machines
    ]


def machine_slots(offers: Sequence[Offer], machines: Mapping[str, Machine]) -> dict[str, int]:
    """Offer id -> how many machines of its kind the pool has (``SellsFixedOffers.slots``)."""
    return {o.offer_id: machines[o.instance_type].count for o in offers if o.instance_type in machines}


class PrivateCloud(LocalCloud):
    """A fixed-capacity pool of machines, zero marginal price. See the module docstring."""

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

    def slots(self) -> dict[str, int]:
        """Machines per offer: an offer with that many live nodes is full."""
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
