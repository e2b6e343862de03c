"""An in-memory cloud that sells a fixed set of offers and stamps launches with a test's clock.

``MemoryCloud`` sells the catalog's offers (``prices_from``) and leaves ``launched_at`` at 0; a
replay on an accelerated clock needs the offers of a trace (one spot offer per trace zone and an
on-demand one) and launch times on that clock (the deadline policy's restart overhead counts from
the node's launch). Both are registered per ``state_dir`` with ``sell`` before the provider is
built; the driver name to register in ``clouds.DRIVERS`` is ``fakes.fixed_offer_cloud:FixedOfferCloud``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from fakes.memory_cloud import MemoryCloud
from ray_multicloud.clouds.base import CloudFeatures, Instance, LaunchRequest
from ray_multicloud.types import InstanceId, Offer

_OFFERS: dict[str, tuple[Offer, ...]] = {}
_CLOCKS: dict[str, Callable[[], float]] = {}
_lock = threading.Lock()


def sell(state_dir: str, offers: Sequence[Offer], clock: Callable[[], float]) -> None:
    """Every ``FixedOfferCloud`` built on ``state_dir`` sells ``offers`` (those of its own name) and
    stamps its launches with ``clock()``."""
    with _lock:
        _OFFERS[state_dir] = tuple(offers)
        _CLOCKS[state_dir] = clock


def forget(state_dir: str) -> None:
    with _lock:
        _OFFERS.pop(state_dir, None)
        _CLOCKS.pop(state_dir, None)


class FixedOfferCloud(MemoryCloud):
    """``MemoryCloud`` that sells its registered offers (``SellsFixedOffers``) and stamps launches."""

    features = CloudFeatures(own_offers=True)

    def __init__(self, name: str, state_dir: str) -> None:
        super().__init__(name, state_dir)
        self._state_dir = state_dir

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> FixedOfferCloud:
        cloud = cls(name, state_dir)
        cloud.exhausted.update(spec.get("exhausted_offers", ()))
        return cloud

    def offers(self) -> list[Offer]:
        return [o for o in _OFFERS.get(self._state_dir, ()) if o.cloud == self.name]

    def launch(self, request: LaunchRequest) -> Instance:
        inst = super().launch(request)
        clock = _CLOCKS.get(self._state_dir)
        if clock is None or inst.launched_at:
            return inst
        stamped = replace(inst, launched_at=clock())
        self._world[inst.instance_id] = stamped
        return stamped

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        launched_at = getattr(self.get(instance_id), "launched_at", 0.0)
        super().set_tags(instance_id, tags)
        inst = self.get(instance_id)
        if inst is not None:
            self._world[instance_id] = replace(inst, launched_at=launched_at)
