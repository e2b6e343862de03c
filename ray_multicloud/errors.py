"""Typed errors. Each message says what is wrong and what to do next; none prints or exits.

The provider tells capacity failures (try the next offer, cool this one down) from throttling
(retry the same call with backoff) from everything else (give up on this node, say why).
"""

from __future__ import annotations


class MultiCloudError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(MultiCloudError):
    """The cluster config or a pool policy is invalid. ``key`` names the offending YAML key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class CatalogError(MultiCloudError):
    """The price catalog cannot be read at all (a bad row is a warning, not this)."""


class CloudError(MultiCloudError):
    """A cloud call failed. ``cloud`` and ``offer_id`` say where; ``code`` is the cloud's own code."""

    def __init__(self, cloud: str, message: str, *, offer_id: str = "", code: str = "") -> None:
        super().__init__(f"[{cloud}] {message}" + (f" (code {code})" if code else ""))
        self.cloud = cloud
        self.offer_id = offer_id
        self.code = code


class CapacityError(CloudError):
    """No capacity for this offer now (spot pool empty, zone exhausted, price cap too low).

    The launcher tries the next offer and cools this one down.
    """


class QuotaError(CapacityError):
    """The account's quota forbids this launch. Treated like capacity: try elsewhere, and raise the quota."""


class ThrottledError(CloudError):
    """The cloud asked us to slow down. Retry the same call with backoff."""


class InstanceNotFound(CloudError):
    """The instance does not exist (never did, or already gone)."""


class LaunchFailed(MultiCloudError):
    """Every candidate offer for a node failed; ``causes`` holds one error per offer tried."""

    def __init__(self, pool: str, request_id: str, causes: list[CloudError]) -> None:
        tried = "; ".join(str(c) for c in causes) or "no offer was tried"
        budget = bool(causes) and all(c.cloud == "budget" for c in causes)  # a budget refused it
        hibernated = bool(causes) and all(c.cloud == "hibernated" for c in causes)  # idle governance
        advice = ("Raise the budget named above, or let a running node end." if budget else
                  "Run `ray-multicloud restore CONFIG` to bring the cluster back." if hibernated else
                  "Widen the pool's clouds/regions/capacity_types or raise max_price_per_hour.")
        super().__init__(f"pool {pool!r}: could not launch node for request {request_id}: {tried}. {advice}")
        self.pool = pool
        self.request_id = request_id
        self.causes = causes
