"""A price board: current prices of some offers, written by whoever observes them, read by the provider.

On the local cloud there is no price API, so prices move when something writes this board: a
replayed spot-price trace, a test, or an operator (``PriceBoard(state_dir).set(offer_id, 1.23)``).
The file is JSON, replaced atomically (write to a temporary file, then rename), so a reader sees
either the old board or the new one, never half of it. Unknown offer ids are kept and ignored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from ray_multicloud._files import replace_json
from ray_multicloud.types import Offer

BOARD_FILE = "prices.json"


class PriceBoard:
    """Price overrides by offer id, persisted in ``state_dir/prices.json``."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir).expanduser() / BOARD_FILE

    def read(self) -> dict[str, tuple[float, float]]:
        """offer_id -> (price_per_hour, as_of). An absent or unreadable board is empty."""
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): (float(v["price"]), float(v["as_of"])) for k, v in raw.items()}

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
            if price <= 0:
                raise ValueError(f"price for {offer_id} must be positive, got {price}")
            board[offer_id] = {"price": float(price), "as_of": at}
        replace_json(self.path, board)

    def set(self, offer_id: str, price: float, *, now: float | None = None) -> None:
        self.set_many({offer_id: price}, now=now)


def apply_board(offers: Iterable[Offer], board: Mapping[str, tuple[float, float]]) -> list[Offer]:
    """Offers with the board's prices (and as-of times) in place of their catalog prices."""
    out = []
    for offer in offers:
        hit = board.get(offer.offer_id)
        out.append(offer if hit is None else replace(offer, price_per_hour=hit[0], as_of=hit[1]))
    return out
