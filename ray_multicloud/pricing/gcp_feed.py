"""GCP live prices from the Cloud Billing Catalog API: Compute Engine SKUs over REST.

``GET {endpoint}/v1/services/6F81-5844-456A/skus?currencyCode=USD&pageToken=...`` lists every
Compute Engine SKU with its ``serviceRegions``, ``category.usageType`` (``OnDemand`` or
``Preemptible`` — spot) and a tiered unit price. A GPU VM's hourly price is built the way GCP bills
it: ``vCPUs x core SKU + GiB x RAM SKU`` of its machine family (N1, A2, A3, G2) plus
``GPUs x GPU SKU`` of its accelerator, for every catalog offer the feed is given. An offer whose
parts are not all priced in its region gets no quote (the catalog price stays).

Credentials: Application Default Credentials (a bearer token), or an injected ``token`` callable.
The token is sent only over https (plain http only to a loopback test server): an ``endpoint``
(``prices_endpoint`` / ``--feed-endpoint``) of ``http://`` elsewhere is a ``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from ray_multicloud.endpoints import require_https
from ray_multicloud.pricing._http import GetJson, urllib_get_json
from ray_multicloud.pricing.live import PriceQuote
from ray_multicloud.types import CapacityType, Offer

DEFAULT_ENDPOINT = "https://cloudbilling.googleapis.com"
COMPUTE_SERVICE = "6F81-5844-456A"
GPU_PATTERNS = (  # catalog accelerator -> SKU description (after "Spot Preemptible " is stripped)
    ("A100-80GB", re.compile(r"\ba100 80gb\b")),
    ("A100", re.compile(r"\ba100\b(?! 80gb)")),
    ("H100", re.compile(r"\bh100\b")),
    ("V100", re.compile(r"\bv100\b")),
    ("P100", re.compile(r"\bp100\b")),
    ("T4", re.compile(r"\bt4\b")),
    ("P4", re.compile(r"\bp4\b")),
    ("K80", re.compile(r"\bk80\b")),
    ("L4", re.compile(r"\bl4\b")),
)
HOST_PATTERN = re.compile(r"^(n1 predefined|a2|a3|g2) instance (core|ram) running in ")


def unit_price(sku: dict[str, object]) -> float:
    """The unit price in USD (``units`` + ``nanos`` / 1e9) of the last tier of a SKU's latest
    pricing: tiers are listed by ascending ``startUsageAmount``, so the last is the rate past any
    free or discounted first tier (the Compute SKUs priced here have one tier)."""
    infos = sku.get("pricingInfo") or []
    if not isinstance(infos, list) or not infos:
        return 0.0
    rates = infos[-1].get("pricingExpression", {}).get("tieredRates", [])
    if not rates:
        return 0.0
    money = rates[-1].get("unitPrice", {})
    return float(money.get("units", 0) or 0) + float(money.get("nanos", 0) or 0) / 1e9


def classify(sku: dict[str, object]) -> tuple[str, CapacityType] | None:
    """``("gpu:V100" | "n1:core" | "a2:ram" ..., capacity)`` for the SKUs the feed prices, else None."""
    category = sku.get("category") or {}
    usage = category.get("usageType") if isinstance(category, dict) else None
    if usage not in ("OnDemand", "Preemptible"):
        return None
    capacity = CapacityType.SPOT if usage == "Preemptible" else CapacityType.ON_DEMAND
    text = str(sku.get("description", "")).lower()
    text = text.removeprefix("spot preemptible ").removeprefix("preemptible ")
    if "gpu running in" in text and text.startswith("nvidia") and "workstation" not in text:
        for name, pattern in GPU_PATTERNS:
            if pattern.search(text):
                return f"gpu:{name}", capacity
        return None
    match = HOST_PATTERN.match(text)
    if match:
        family = match.group(1).split()[0]
        return f"{family}:{match.group(2)}", capacity
    return None


def adc_token() -> str:
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-billing.readonly"])
    credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    return str(credentials.token)


class GcpPriceFeed:
    """Prices of the given GCP catalog ``offers`` (their machine shapes say what to add up)."""

    def __init__(
        self,
        *,
        offers: Iterable[Offer],
        endpoint: str = DEFAULT_ENDPOINT,
        get_json: GetJson | None = None,
        token: Callable[[], str] | None = None,
        max_pages: int = 200,
        name: str = "gcp",
    ) -> None:
        require_https(
            endpoint, key=f"provider.clouds.{name}.prices_endpoint (or --feed-endpoint {name}=URL)"
        )
        self.name = name
        self.offers = tuple(o for o in offers if o.instance_type)
        self.endpoint = endpoint.rstrip("/")
        self._get = get_json or urllib_get_json()
        self._token = token or adc_token
        self._max_pages = max_pages

    def _skus(self) -> Iterable[dict[str, object]]:
        headers = {"Authorization": f"Bearer {self._token()}"}
        token = ""
        for _ in range(self._max_pages):
            query = {"currencyCode": "USD", "pageSize": "5000"}
            if token:
                query["pageToken"] = token
            page = self._get(
                f"{self.endpoint}/v1/services/{COMPUTE_SERVICE}/skus?{urlencode(query)}", headers
            )
            yield from page.get("skus", [])
            token = str(page.get("nextPageToken") or "")
            if not token:
                return

    def fetch(self, now: float) -> list[PriceQuote]:
        # (part, capacity, region) -> USD per unit (per hour, per vCPU hour, per GiB hour)
        rates: dict[tuple[str, CapacityType, str], float] = {}
        for sku in self._skus():
            kind = classify(sku)
            price = unit_price(sku)
            if kind is None or price <= 0:
                continue
            regions = sku.get("serviceRegions")
            for region in regions if isinstance(regions, list) else []:
                rates[(kind[0], kind[1], str(region))] = price
        quotes = []
        for offer in self.offers:
            total = self._price(offer, rates)
            if total is not None:
                quotes.append(
                    PriceQuote(
                        offer.cloud,
                        offer.region,
                        offer.zone,
                        offer.instance_type,
                        offer.capacity,
                        round(total, 6),
                        now,
                        "live:gcp-billing-catalog",
                    )
                )
        return quotes

    @staticmethod
    def _price(offer: Offer, rates: dict[tuple[str, CapacityType, str], float]) -> float | None:
        host = offer.instance_type.partition("+")[0]
        family = host.split("-", 1)[0]
        parts = []
        if family in ("n1", "a2", "a3", "g2"):
            parts += [(f"{family}:core", offer.vcpus), (f"{family}:ram", offer.memory_gib)]
        else:
            return None
        if offer.accelerator and offer.accelerator_count:
            parts.append((f"gpu:{offer.accelerator}", offer.accelerator_count))
        total = 0.0
        for part, amount in parts:
            rate = rates.get((part, offer.capacity, offer.region))
            if rate is None or amount <= 0:
                return None
            total += rate * amount
        return total
