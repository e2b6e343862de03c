"""Pure decisions over frozen data: placement now; rebalancing and deadline switching later.

Nothing in this package does I/O, reads the clock, logs or imports Ray; ``now`` is an argument
and every decision carries its reasons.
"""

from __future__ import annotations

from ray_multicloud.policy.place import (
    OfferIndex,
    PoolProblem,
    check_pool,
    describe_offer,
    matching_offers,
    money,
    place,
)

__all__ = [
    "OfferIndex",
    "PoolProblem",
    "check_pool",
    "describe_offer",
    "matching_offers",
    "money",
    "place",
]
