"""What ``ray-multicloud prices --live`` and ``plan --live`` need: overlay live quotes on offers once,
and describe where each price came from and how old it is. No printing here (the CLI prints)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ray_multicloud.pricing.feeds import build_feeds
from ray_multicloud.pricing.live import FeedStatus, LivePrices
from ray_multicloud.types import Offer


@dataclass(frozen=True, slots=True)
class LiveOverlay:
    offers: tuple[Offer, ...]
    statuses: tuple[FeedStatus, ...]
    notes: tuple[str, ...]
    now: float


def live_overlay(
    offers: Iterable[Offer],
    *,
    endpoints: Mapping[str, str] | None = None,
    drivers: Mapping[str, str] | None = None,
    max_age_s: float = 3600.0,
    timeout_s: float = 20.0,
    now: float | None = None,
) -> LiveOverlay:
    """Fetch every feed covering ``offers`` once and overlay their quotes (failed feeds noted)."""
    offers = list(offers)
    now = time.time() if now is None else now
    built = build_feeds(offers, endpoints, drivers)
    cache = LivePrices(built.feeds, ttl_s=0, max_age_s=max_age_s, timeout_s=timeout_s)
    statuses = cache.refresh(now)
    result = cache.overlay(offers, now)
    notes = [f"feed {s.name} failed: {s.error}; catalog prices kept" for s in statuses if s.stale]
    notes += [f"feed {s}" for s in built.skipped]
    return LiveOverlay(result.offers, tuple(statuses), tuple(notes) + result.notes, now)


def price_source(offer: Offer, now: float) -> tuple[str, str]:
    """``(source, age)`` for a table: ``live:aws-spot-price-history``, ``3m`` (``stale`` appended)."""
    if offer.as_of is None:
        return "catalog snapshot", "-"
    age_s = max(0.0, now - offer.as_of)
    age = f"{age_s:.0f}s" if age_s < 120 else f"{age_s / 60:.0f}m" if age_s < 7200 else f"{age_s / 3600:.1f}h"
    return offer.source + (" (stale)" if offer.stale else ""), age
