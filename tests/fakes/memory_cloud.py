"""An in-memory cloud for provider tests: the protocol's contracts, no processes, faults as fields.

Instances live in a dict shared by every ``MemoryCloud`` built on the same ``state_dir`` (so a
"restarted" provider sees the fleet its predecessor launched, as it would see a real cloud's).
``exhausted`` lists offer ids that answer "no capacity"; ``launch_calls`` records every attempt.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ray_multicloud.clouds.base import CloudFeatures, Instance, LaunchRequest
from ray_multicloud.errors import CapacityError, InstanceNotFound
from ray_multicloud.types import InstanceId, NodeState

_WORLDS: dict[str, dict[str, Instance]] = {}
_FAULTS: dict[str, set[str]] = {}
_CALLS: dict[str, list[str]] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        _WORLDS.clear()
        _FAULTS.clear()
        _CALLS.clear()


class MemoryCloud:
    features = CloudFeatures()

    def __init__(self, name: str, state_dir: str) -> None:
        self.name = name
        self._world = _WORLDS.setdefault(state_dir, {})
        self.exhausted = _FAULTS.setdefault(f"{state_dir}/{name}", set())
        self.launch_calls = _CALLS.setdefault(f"{state_dir}/{name}", [])

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> MemoryCloud:
        cloud = cls(name, state_dir)
        cloud.exhausted.update(spec.get("exhausted_offers", ()))
        return cloud

    def launch(self, request: LaunchRequest) -> Instance:
        with _lock:
            self.launch_calls.append(request.offer.offer_id)
            for inst in self._world.values():
                if inst.cloud == self.name and inst.tags.get("rmc-request-id") == request.request_id:
                    return inst
            if request.offer.offer_id in self.exhausted:
                raise CapacityError(
                    self.name,
                    "no capacity",
                    offer_id=request.offer.offer_id,
                    code="InsufficientInstanceCapacity",
                )
            inst = Instance(
                InstanceId(f"{self.name}-{next(_ids)}"),
                self.name,
                NodeState.RUNNING,
                dict(request.tags),
                "127.0.0.1",
            )
            self._world[inst.instance_id] = inst
            return inst

    def terminate(self, instance_id: InstanceId) -> None:
        with _lock:
            inst = self._world.get(instance_id)
            if inst is not None and inst.cloud == self.name:
                del self._world[instance_id]

    def get(self, instance_id: InstanceId) -> Instance | None:
        inst = self._world.get(instance_id)
        return inst if inst is not None and inst.cloud == self.name else None

    def list(self, cluster: str) -> list[Instance]:
        return [
            i
            for i in list(self._world.values())
            if i.cloud == self.name and i.tags.get("rmc-cluster") == cluster
        ]

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        with _lock:
            inst = self.get(instance_id)
            if inst is None:
                raise InstanceNotFound(self.name, f"{instance_id} does not exist")
            self._world[instance_id] = Instance(
                inst.instance_id, inst.cloud, inst.state, {**inst.tags, **tags}, inst.internal_ip
            )


class MemoryPrivateCloud(MemoryCloud):
    """A private pool in memory: the machines of its config, each kind ``count`` times, 0 $/h."""

    features = CloudFeatures(spot=False, fixed_capacity=True, own_offers=True)

    def __init__(self, name: str, state_dir: str, region: str, machines: list[Any]) -> None:
        super().__init__(name, state_dir)
        self.region = region
        self.machines = {m.instance_type: m for m in machines}

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> MemoryPrivateCloud:
        from ray_multicloud.clouds.private import parse_machines

        region, machines = parse_machines(name, spec)
        return cls(name, state_dir, region, machines)

    def offers(self) -> list[Any]:
        from ray_multicloud.clouds.private import machine_offers

        return machine_offers(self.name, self.region, list(self.machines.values()))

    def launch(self, request: LaunchRequest) -> Instance:
        machine = self.machines[request.offer.instance_type]
        in_use = [
            i
            for i in self._world.values()
            if i.cloud == self.name and i.tags.get("rmc-offer") == request.offer.offer_id
        ]
        if len(in_use) >= machine.count and not any(
            i.tags.get("rmc-request-id") == request.request_id for i in in_use
        ):
            raise CapacityError(self.name, "pool full", offer_id=request.offer.offer_id, code="PoolFull")
        return super().launch(request)


LOCAL_CONFIG = Path(__file__).resolve().parents[2] / "cluster_configs" / "local-multicloud.yaml"


@contextlib.contextmanager
def memory_cluster(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``cluster_configs/local-multicloud.yaml`` with every cloud replaced by its in-memory twin
    (nothing may start a process), its state in ``state_dir`` and no ledger; the clouds' shared
    worlds are reset before and after."""
    from ray_multicloud import clouds

    monkeypatch.setitem(clouds.DRIVERS, "memory", "fakes.memory_cloud:MemoryCloud")
    monkeypatch.setitem(clouds.DRIVERS, "memory-private", "fakes.memory_cloud:MemoryPrivateCloud")
    reset()
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    config["provider"]["state_dir"] = str(state_dir)
    config["provider"].pop("ledger", None)
    for spec in config["provider"]["clouds"].values():
        spec["driver"] = {"local": "memory", "private": "memory-private"}[spec["driver"]]
    try:
        yield config
    finally:
        reset()
