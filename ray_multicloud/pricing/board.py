"""A price board: current prices of some offers, written by whoever observes them, read by the provider.

On the local cloud there is no price API, so prices move when something writes this board: a
replayed spot-price trace, a test, or an operator (``PriceBoard(state_dir).set(offer_id, 1.23)``).
The file is JSON, replaced atomically (write to a temporary file, then rename), so a reader sees
either the old board or the new one, never half of it. Unknown offer ids are kept and ignored.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from ray_multicloud._files import replace_json
from ray_multicloud.pricing.live import MAX_QUOTE_PRICE
from ray_multicloud.types import Offer

logger = logging.getLogger(__name__)

BOARD_FILE = "prices.json"


class PriceBoard:
    """Price overrides by offer id, persisted in ``state_dir/prices.json``."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir).expanduser() / BOARD_FILE

    def read(self) -> dict[str, tuple[float, float]]:
        """offer_id -> (price_per_hour, as_of). An absent or unreadable board is empty; an entry
        that is not ``{"price": P, "as_of": T}`` with P a finite USD/h in (0, ``MAX_QUOTE_PRICE``]
        and T a finite time is left out (logged once per entry), never applied and never a crash."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(raw, dict):
            _say_once(f"{self.path}: not a JSON object; the price board is ignored")
            return {}
        out: dict[str, tuple[float, float]] = {}
        for key, entry in raw.items():
            price = entry.get("price") if isinstance(entry, dict) else None
            as_of = entry.get("as_of") if isinstance(entry, dict) else None
            if _number(price) and _number(as_of) and 0 < float(price) <= MAX_QUOTE_PRICE:  # type: ignore[arg-type]
                out[str(key)] = (float(price), float(as_of))  # type: ignore[arg-type]
            else:
                _say_once(f"{self.path}: entry {key!r} is {entry!r}, not {{\"price\": USD/h in (0, "
                          f"{MAX_QUOTE_PRICE:g}], \"as_of\": POSIX time}}; left out")
        return out

    def version(self) -> float:
        """Changes whenever the board is rewritten (its mtime); 0 when there is none."""
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return 0.0

    def set_many(self, prices: Mapping[str, float], *, now: float | None = None) -> None:
        at = time.time() if now is None else now
        board = {k: {"price": p, "as_of": a} for k, (p, a) in self.read().items()}
        for offer_id, price in prices.items():
            if not (math.isfinite(price) and 0 < price <= MAX_QUOTE_PRICE):
                raise ValueError(f"price for {offer_id} must be a USD/h in (0, {MAX_QUOTE_PRICE:g}], "
                                 f"got {price}")
            board[offer_id] = {"price": float(price), "as_of": at}
        replace_json(self.path, board)

    def set(self, offer_id: str, price: float, *, now: float | None = None) -> None:
        self.set_many({offer_id: price}, now=now)


_SAID: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _SAID:
        _SAID.add(line)
        logger.warning(line)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def apply_board(offers: Iterable[Offer], board: Mapping[str, tuple[float, float]]) -> list[Offer]:
    """Offers with the board's prices (and as-of times) in place of their catalog prices."""
    out = []
    for offer in offers:
        hit = board.get(offer.offer_id)
        out.append(offer if hit is None else replace(offer, price_per_hour=hit[0], as_of=hit[1]))
    return out
