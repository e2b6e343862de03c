"""Live prices over the catalog: price feeds, a TTL cache that survives feed failures, and a pure merge.

- A ``PriceFeed`` (``name``, ``fetch(now) -> list[PriceQuote]``) asks one cloud's price API
  (``aws_feed``, ``gcp_feed``, ``azure_feed``). Feeds do I/O; nothing else here does.
- ``merge(offers, quotes, now=..., max_age_s=...)`` is pure: it overlays quotes on catalog offers by
  ``(cloud, region, zone, instance_type, capacity)`` (a regional quote, zone "", covers every zone
  of its region unless a zonal quote exists) and sets ``as_of`` and ``source``. An on-demand quote
  also updates the on-demand reference price of the matching spot offers. A quote that is stale
  (its feed failed) or older than ``max_age_s`` still applies, but the offer is marked
  ``stale=True`` and a note says why, so no decision uses it without saying so.
- ``LivePrices`` is the TTL cache: ``refresh(now)`` re-fetches feeds whose quotes are older than
  ``ttl_s``, each under ``timeout_s``. A feed that fails or times out keeps its last quotes, marked
  stale; its status says what failed.

- A quote is used only if its price is a finite number above 0 and at most ``MAX_QUOTE_PRICE``
  USD per hour and its time is finite (``usable``): a feed's NaN, Infinity or 1e308 never reaches
  an offer; the cache drops such quotes and says how many, with an example, once per fetch. A
  feed whose reply had an unexpected shape (``KeyError``, ``AttributeError``, ...) fails like any
  other feed failure, with a message that says the reply was not the price list.

Events: ``aws feed ok (412 quotes) -> offers priced live``; ``gcp feed timed out -> last prices
kept, stale=True``; ``azure quote 3 h old > max_age 1 h -> stale=True, note``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ray_multicloud.types import CapacityType, Offer

logger = logging.getLogger(__name__)

QuoteKey = tuple[str, str, str, str, CapacityType]
MAX_QUOTE_PRICE = 10_000.0  # USD per hour; the dearest GPU VMs cost about 100
_SHAPE_ERRORS = (KeyError, AttributeError, TypeError, IndexError, ValueError)


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """One observed price: USD per hour for a machine in a place, at ``as_of`` (POSIX seconds)."""

    cloud: str
    region: str
    zone: str
    instance_type: str
    capacity: CapacityType
    price_per_hour: float
    as_of: float
    source: str
    stale: bool = False

    @property
    def key(self) -> QuoteKey:
        return (self.cloud, self.region, self.zone, self.instance_type, self.capacity)


def usable(quote: PriceQuote) -> bool:
    """Whether ``quote`` may price an offer: a finite price above 0 and at most ``MAX_QUOTE_PRICE``,
    at a finite time."""
    price = quote.price_per_hour
    return (
        isinstance(price, int | float) and math.isfinite(price) and 0 < price <= MAX_QUOTE_PRICE
        and isinstance(quote.as_of, int | float) and math.isfinite(quote.as_of)
    )


class PriceFeed(Protocol):
    """One cloud's live price source."""

    name: str

    def fetch(self, now: float) -> list[PriceQuote]:
        """Current quotes. Raises on failure (any exception); the cache keeps the last ones."""
        ...


@dataclass(frozen=True, slots=True)
class MergeResult:
    offers: tuple[Offer, ...]
    notes: tuple[str, ...]
    live: int  # offers priced by a quote
    stale: int  # of which stale or too old


def _pick(by_key: dict[QuoteKey, PriceQuote], key: QuoteKey) -> PriceQuote | None:
    quote = by_key.get(key)
    if quote is None and key[2]:
        quote = by_key.get((key[0], key[1], "", key[3], key[4]))
    return quote


def merge(
    offers: Iterable[Offer], quotes: Iterable[PriceQuote], *, now: float, max_age_s: float
) -> MergeResult:
    """Overlay ``quotes`` on ``offers`` (pure; see the module docstring)."""
    by_key: dict[QuoteKey, PriceQuote] = {}
    for observed in quotes:
        if not usable(observed):
            continue
        held = by_key.get(observed.key)
        if held is None or observed.as_of > held.as_of:
            by_key[observed.key] = observed
    out: list[Offer] = []
    notes: list[str] = []
    live = stale = 0
    for offer in offers:
        key = (offer.cloud, offer.region, offer.zone, offer.instance_type, offer.capacity)
        quote = _pick(by_key, key)
        ondemand = _pick(by_key, (*key[:4], CapacityType.ON_DEMAND))
        if quote is None and (ondemand is None or offer.capacity is CapacityType.ON_DEMAND):
            out.append(offer)
            continue
        changes: dict[str, object] = {}
        if ondemand is not None:
            changes["ondemand_price_per_hour"] = ondemand.price_per_hour
        if quote is not None:
            live += 1
            age = now - quote.as_of
            too_old = age > max_age_s
            changes.update(price_per_hour=quote.price_per_hour, as_of=quote.as_of, source=quote.source)
            if quote.stale or too_old:
                stale += 1
                changes["stale"] = True
                why = "its feed failed" if quote.stale else f"older than {max_age_s / 60:.0f} min"
                notes.append(
                    f"{offer.offer_id}: price ${quote.price_per_hour:.4f}/h is {age / 60:.0f} min old ({why})"
                )
        out.append(replace(offer, **changes))  # type: ignore[arg-type]
    return MergeResult(offers=tuple(out), notes=tuple(notes), live=live, stale=stale)


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What the cache knows of one feed: when it last succeeded, and why it last failed."""

    name: str
    quotes: int
    fetched_at: float | None
    stale: bool
    error: str = ""


@dataclass
class _FeedState:
    feed: PriceFeed
    quotes: list[PriceQuote] = field(default_factory=list)
    fetched_at: float | None = None
    tried_at: float | None = None
    error: str = ""


class LivePrices:
    """A TTL cache over price feeds. Thread-safe; never raises for a feed's failure.

    ``refresh`` fetches every due feed at once, each on its own thread (named ``price-feed_N``, as
    a stack dump shows it), so one slow feed never delays another's answer."""

    def __init__(
        self,
        feeds: Sequence[PriceFeed],
        *,
        ttl_s: float = 300.0,
        max_age_s: float = 3600.0,
        timeout_s: float = 20.0,
    ) -> None:
        self._states = [_FeedState(feed) for feed in feeds]
        self.ttl_s = ttl_s
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def refresh(self, now: float, *, force: bool = False) -> list[FeedStatus]:
        """Fetch every feed whose last attempt is older than the TTL (all of them with ``force``)."""
        due = [s for s in self._states if force or s.tried_at is None or now - s.tried_at >= self.ttl_s]
        if due:
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=len(due), thread_name_prefix="price-feed"
            )
            futures = [pool.submit(s.feed.fetch, now) for s in due]
            for state, future in zip(due, futures, strict=True):
                error = ""
                quotes: list[PriceQuote] | None = None
                try:
                    quotes = future.result(timeout=self.timeout_s)
                except concurrent.futures.TimeoutError:
                    error = f"timed out after {self.timeout_s:g}s"
                except _SHAPE_ERRORS as exc:
                    error = (f"the reply did not have the price API's shape ({type(exc).__name__}: {exc}); "
                             "check the feed's endpoint")
                except Exception as exc:  # noqa: BLE001 - a feed may fail any way; keep the last prices
                    error = f"{type(exc).__name__}: {exc}"
                if quotes is not None:
                    quotes = self._usable(state.feed.name, quotes)
                with self._lock:
                    state.tried_at = now
                    if quotes is not None:
                        state.quotes, state.fetched_at, state.error = list(quotes), now, ""
                    else:
                        state.error = error
                        logger.warning(
                            "price feed %s failed (%s); keeping its last prices as stale",
                            state.feed.name,
                            error,
                        )
            pool.shutdown(wait=False, cancel_futures=True)
        return self.status()

    @staticmethod
    def _usable(name: str, quotes: Sequence[PriceQuote]) -> list[PriceQuote]:
        kept = [q for q in quotes if usable(q)]
        dropped = [q for q in quotes if not usable(q)]
        if dropped:
            q = dropped[0]
            logger.warning(
                "price feed %s: dropped %d quote(s) with an unusable price (first: %s %s %s %s at %r $/h); "
                "those offers keep their other prices", name, len(dropped), q.cloud, q.region or "-",
                q.instance_type, q.capacity.value, q.price_per_hour,
            )
        return kept

    def status(self) -> list[FeedStatus]:
        with self._lock:
            return [
                FeedStatus(s.feed.name, len(s.quotes), s.fetched_at, bool(s.error), s.error)
                for s in self._states
            ]

    def quotes(self) -> list[PriceQuote]:
        """Every last-known quote; those of a feed whose last fetch failed are marked stale."""
        with self._lock:
            out: list[PriceQuote] = []
            for state in self._states:
                out += [replace(q, stale=True) for q in state.quotes] if state.error else state.quotes
            return out

    def overlay(self, offers: Iterable[Offer], now: float) -> MergeResult:
        return merge(offers, self.quotes(), now=now, max_age_s=self.max_age_s)
