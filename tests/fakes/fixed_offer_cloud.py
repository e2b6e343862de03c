"""An in-memory cloud that sells a fixed set of offers and stamps launches with a test's clock.

``MemoryCloud`` sells the catalog's offers (``prices_from``) and leaves ``launched_at`` at 0; a
replay on an accelerated clock needs the offers of a trace (one spot offer per trace zone and an
on-demand one) and launch times on that clock (the deadline policy's restart overhead counts from
the node's launch). The test builds it with both, in a ``MemoryWorld`` it owns, and hands it to the
provider (``MultiCloudNodeProvider(..., clouds={name: cloud})``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from fakes.memory_cloud import MemoryCloud, MemoryWorld
from ray_multicloud.clouds.base import CloudFeatures, Instance, LaunchRequest
from ray_multicloud.types import InstanceId, Offer


class FixedOfferCloud(MemoryCloud):
    """``MemoryCloud`` that sells ``offers`` of its own name (``SellsFixedOffers``) and stamps its
    launches with ``clock()``."""

    features = CloudFeatures(own_offers=True)

    def __init__(
        self, name: str, world: MemoryWorld, offers: Sequence[Offer], clock: Callable[[], float]
    ) -> None:
        super().__init__(name, world)
        self._offers = tuple(o for o in offers if o.cloud == name)
        self._clock = clock

    def offers(self) -> list[Offer]:
        return list(self._offers)

    def launch(self, request: LaunchRequest) -> Instance:
        inst = super().launch(request)
        if inst.launched_at:
            return inst
        stamped = replace(inst, launched_at=self._clock())
        self._world[inst.instance_id] = stamped
        return stamped

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        launched_at = getattr(self.get(instance_id), "launched_at", 0.0)
        super().set_tags(instance_id, tags)
        inst = self.get(instance_id)
        if inst is not None:
            self._world[instance_id] = replace(inst, launched_at=launched_at)
