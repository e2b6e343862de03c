"""In-memory clouds for provider tests: the protocol's contracts, no processes, faults as fields.

A test owns a ``MemoryWorld``: the instances of every cloud built from it (so a "restarted"
provider handed clouds of the same world sees the fleet its predecessor launched, as it would see
a real cloud's), every launch attempt (``launch_calls``), the offers that answer "no capacity"
(``exhausted``) and one-shot faults (``next_launch_error``: raised by the next launch of any of
its clouds, then cleared). Clouds are built from the world and handed to the provider
(``MultiCloudNodeProvider(..., clouds=world.clouds(config))``); nothing is registered as a driver
and nothing lives in module globals.

    us-east-1a spot (next_launch_error: CapacityError) -> us-east-1b spot (ok); error consumed
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ray_multicloud.clouds import make_cloud
from ray_multicloud.clouds.base import Cloud, CloudFeatures, Instance, LaunchRequest
from ray_multicloud.errors import CapacityError, CloudError, InstanceNotFound
from ray_multicloud.types import InstanceId, NodeState


@dataclass
class MemoryWorld:
    """What every in-memory cloud of one test shares; the test reads and sets these fields.

    ``instances``: every live instance, by id. ``launch_calls``: the offer id of every launch
    attempt, in order. ``exhausted``: offer ids that answer "no capacity" until removed.
    ``next_launch_error``: raised by the next launch (after the call is recorded), then cleared.
    """

    instances: dict[InstanceId, Instance] = field(default_factory=dict)
    launch_calls: list[str] = field(default_factory=list)
    exhausted: set[str] = field(default_factory=set)
    next_launch_error: CloudError | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self, cloud: str) -> InstanceId:
        return InstanceId(f"{cloud}-{next(self._ids)}")

    def take_launch_error(self) -> CloudError | None:
        """The one-shot launch fault, if set; clears it."""
        with self.lock:
            error, self.next_launch_error = self.next_launch_error, None
            return error

    def cloud(self, name: str, spec: Mapping[str, Any], *, state_dir: str) -> Cloud:
        """The in-memory twin of the ``provider.clouds`` entry ``name``: ``memory`` and
        ``memory-private`` drivers live in this world; any other driver is built by the real
        registry (so an unknown one fails as it would in production)."""
        driver = str(spec.get("driver", name))
        if driver == "memory":
            cloud = MemoryCloud(name, self)
            cloud.exhausted.update(spec.get("exhausted_offers", ()))
            return cloud
        if driver == "memory-private":
            return MemoryPrivateCloud.from_spec(name, spec, self)
        return make_cloud(name, spec, state_dir=state_dir)

    def clouds(self, config: Mapping[str, Any]) -> dict[str, Cloud]:
        """Every cloud of a cluster config (``config["provider"]["clouds"]``), built in this world."""
        provider = config["provider"]
        state_dir = str(provider.get("state_dir", ""))
        return {
            name: self.cloud(name, spec, state_dir=state_dir)
            for name, spec in (provider.get("clouds") or {}).items()
        }


class MemoryCloud:
    features = CloudFeatures()

    def __init__(self, name: str, world: MemoryWorld) -> None:
        self.name = name
        self.world = world

    @property
    def exhausted(self) -> set[str]:
        """The world's "no capacity" offer ids (offer ids start with the cloud's name)."""
        return self.world.exhausted

    @property
    def launch_calls(self) -> list[str]:
        """The offer ids this cloud was asked to launch on, in order."""
        return [o for o in self.world.launch_calls if o.split("/", 1)[0] == self.name]

    @property
    def _world(self) -> dict[InstanceId, Instance]:
        return self.world.instances

    def launch(self, request: LaunchRequest) -> Instance:
        with self.world.lock:
            self.world.launch_calls.append(request.offer.offer_id)
            for inst in self._world.values():
                if inst.cloud == self.name and inst.tags.get("rmc-request-id") == request.request_id:
                    return inst
            error = self.world.take_launch_error()
            if error is not None:
                raise error
            if request.offer.offer_id in self.exhausted:
                raise CapacityError(
                    self.name,
                    "no capacity",
                    offer_id=request.offer.offer_id,
                    code="InsufficientInstanceCapacity",
                )
            inst = Instance(
                self.world.new_id(self.name),
                self.name,
                NodeState.RUNNING,
                dict(request.tags),
                "127.0.0.1",
            )
            self._world[inst.instance_id] = inst
            return inst

    def terminate(self, instance_id: InstanceId) -> None:
        with self.world.lock:
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
        with self.world.lock:
            inst = self.get(instance_id)
            if inst is None:
                raise InstanceNotFound(self.name, f"{instance_id} does not exist")
            self._world[instance_id] = Instance(
                inst.instance_id, inst.cloud, inst.state, {**inst.tags, **tags}, inst.internal_ip
            )


class MemoryPrivateCloud(MemoryCloud):
    """A private pool in memory: the machines of its config, each kind ``count`` times, 0 $/h."""

    features = CloudFeatures(spot=False, fixed_capacity=True, own_offers=True)

    def __init__(self, name: str, world: MemoryWorld, region: str, machines: list[Any]) -> None:
        super().__init__(name, world)
        self.region = region
        self.machines = {m.instance_type: m for m in machines}

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], world: MemoryWorld) -> MemoryPrivateCloud:
        from ray_multicloud.clouds.private import parse_machines

        region, machines = parse_machines(name, spec)
        return cls(name, world, region, machines)

    def offers(self) -> list[Any]:
        from ray_multicloud.clouds.private import machine_offers

        return machine_offers(self.name, self.region, list(self.machines.values()))

    def slots(self, cluster: str) -> dict[str, int]:
        from ray_multicloud.clouds.private import machine_slots

        return machine_slots(self.offers(), self.machines)

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
def memory_cluster(state_dir: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld]]:
    """``cluster_configs/local-multicloud.yaml`` with every cloud's driver named for its in-memory
    twin (``memory``, ``memory-private``: no registry entry, so nothing can build a real cloud from
    it behind the test's back), its state in ``state_dir`` and no ledger; and a fresh world to build
    the clouds from (``world.clouds(config)``)."""
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    config["provider"]["state_dir"] = str(state_dir)
    config["provider"].pop("ledger", None)
    for spec in config["provider"]["clouds"].values():
        spec["driver"] = {"local": "memory", "private": "memory-private"}[spec["driver"]]
    yield config, MemoryWorld()


def memory_provider(cluster: Mapping[str, Any], world: MemoryWorld) -> Any:
    """A ``MultiCloudNodeProvider`` over ``cluster``'s provider section, on ``world``'s clouds."""
    from ray_multicloud.provider import MultiCloudNodeProvider

    return MultiCloudNodeProvider(
        copy.deepcopy(dict(cluster["provider"])), str(cluster["cluster_name"]), clouds=world.clouds(cluster)
    )


def launch_workers(
    provider: Any,
    cluster: Mapping[str, Any],
    *,
    node_type: str = "t4_spot",
    request: str = "r",
    count: int = 1,
) -> list[Instance]:
    """``count`` workers of ``node_type`` launched as the autoscaler launches them (one request)."""
    from ray.autoscaler.tags import (
        NODE_KIND_WORKER,
        TAG_RAY_LAUNCH_REQUEST,
        TAG_RAY_NODE_KIND,
        TAG_RAY_USER_NODE_TYPE,
    )

    spec = cluster["available_node_types"][node_type]
    tags = {
        TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
        TAG_RAY_USER_NODE_TYPE: node_type,
        TAG_RAY_LAUNCH_REQUEST: request,
    }
    created = provider.create_node_with_resources_and_labels(
        spec["node_config"], tags, count, spec["resources"], {}
    )
    return list(created.values())


class RecordingCloud:
    """A cloud driver that passes everything to ``inner`` and appends every ``LaunchRequest`` it is
    given to ``seen`` (what a worker would be started with: its bootstrap, environment, setup)."""

    def __init__(self, inner: Any, seen: list[Any]) -> None:
        self._inner, self._seen = inner, seen

    def launch(self, request: Any) -> Any:
        self._seen.append(request)
        return self._inner.launch(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def launched_bootstrap(cluster: Mapping[str, Any], world: MemoryWorld, *, node_type: str = "t4_spot") -> Any:
    """Launch one worker of ``node_type`` through a provider over ``world``'s clouds (as
    ``launch_workers``) and return the ``RayBootstrap`` its cloud was handed: what ``ray start`` on that
    worker runs with (its environment, setup, auth)."""
    import copy

    from ray_multicloud.provider import MultiCloudNodeProvider

    seen: list[Any] = []
    clouds = {n: RecordingCloud(c, seen) for n, c in world.clouds(cluster).items()}
    provider = MultiCloudNodeProvider(copy.deepcopy(cluster["provider"]), cluster["cluster_name"],
                                      clouds=clouds)
    launch_workers(provider, cluster, node_type=node_type)
    assert seen and seen[-1].bootstrap is not None, "the launch reached no cloud, or carried no bootstrap"
    return seen[-1].bootstrap


def running_gcs(provider: Any, node_id: Any = lambda iid: iid) -> Any:
    """A stand-in for ``controller.ray_nodes``: every node of ``provider``'s fleet is a RUNNING Ray
    node, its Ray node id ``node_id(instance id)``."""
    from ray_multicloud.controller import RayNode

    def nodes(_gcs_address: str) -> dict[str, Any]:
        return {i.instance_id: RayNode(node_id(i.instance_id), i.instance_id, "RUNNING", {}, {})
                for i in provider.fleet()}

    return nodes


def memory_controller(cluster: Mapping[str, Any], provider: Any, t: list[float], **kwargs: Any) -> Any:
    """A ``Controller`` over ``provider`` whose moves see every node RUNNING (``running_gcs``), drain
    at once, and tell time by ``t[0]``, which its sleeps advance (no waiting)."""
    from ray_multicloud.controller import Controller

    def sleep(s: float) -> None:
        t[0] += s

    kwargs.setdefault("nodes", running_gcs(provider))
    kwargs.setdefault("drain", lambda *a, **k: (True, ""))
    kwargs.setdefault("drain_messages", lambda _gcs, _nodes: {})  # no drain is the package's own
    return Controller(cluster, provider=provider, clock=lambda: t[0], sleep=sleep, **kwargs)
