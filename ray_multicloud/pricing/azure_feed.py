"""Azure live prices from the Retail Prices API (``https://prices.azure.com/api/retail/prices``).

No credentials: the API is public. One query per VM size, filtered server-side with ``$filter``
(``serviceName eq 'Virtual Machines' and armSkuName eq '...' and priceType eq 'Consumption'``) and
paged through ``NextPageLink``. Linux prices only (Windows products are skipped); a meter whose
``skuName`` ends in ``Spot`` is the spot price, ``Low Priority`` meters are skipped. Quotes are
regional (zone ""), as Azure prices are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import quote

from ray_multicloud.pricing._http import GetJson, urllib_get_json
from ray_multicloud.pricing.live import PriceQuote
from ray_multicloud.types import CapacityType

DEFAULT_ENDPOINT = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"


def quote_of(item: dict[str, object], cloud: str, now: float) -> PriceQuote | None:
    """The quote one Retail Prices item gives, or None for items that are not a Linux VM hour."""
    product = str(item.get("productName", ""))
    sku = str(item.get("skuName", ""))
    if "Windows" in product or "Low Priority" in sku or item.get("type") != "Consumption":
        return None
    if str(item.get("unitOfMeasure", "")) != "1 Hour":
        return None
    raw = item.get("retailPrice")
    price = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0
    region = str(item.get("armRegionName", ""))
    if not math.isfinite(price) or price <= 0 or not region or not item.get("armSkuName"):
        return None
    capacity = CapacityType.SPOT if sku.endswith(" Spot") else CapacityType.ON_DEMAND
    return PriceQuote(
        cloud, region, "", str(item["armSkuName"]), capacity, price, now, "live:azure-retail-prices"
    )


class AzurePriceFeed:
    """Spot and pay-as-you-go Linux prices of ``vm_sizes`` in ``regions`` (all regions if empty)."""

    def __init__(
        self,
        *,
        vm_sizes: Sequence[str],
        regions: Sequence[str] = (),
        cloud: str = "azure",
        endpoint: str = DEFAULT_ENDPOINT,
        get_json: GetJson | None = None,
        max_pages: int = 50,
    ) -> None:
        self.vm_sizes = tuple(sorted(set(vm_sizes)))
        self.regions = frozenset(regions)
        self.cloud = cloud
        self.name = cloud  # the feed is named after the cloud entry it prices
        self.endpoint = endpoint
        self._get = get_json or urllib_get_json()
        self._max_pages = max_pages

    def url_for(self, vm_size: str) -> str:
        expression = (
            f"serviceName eq 'Virtual Machines' and armSkuName eq '{vm_size}' and priceType eq 'Consumption'"
        )
        return f"{self.endpoint}?api-version={API_VERSION}&$filter={quote(expression)}"

    def fetch(self, now: float) -> list[PriceQuote]:
        quotes: list[PriceQuote] = []
        for vm_size in self.vm_sizes:
            url: str | None = self.url_for(vm_size)
            pages = 0
            while url and pages < self._max_pages:
                page = self._get(url, {})
                pages += 1
                for item in page.get("Items", []):
                    found = quote_of(item, self.cloud, now)
                    if found is not None and (not self.regions or found.region in self.regions):
                        quotes.append(found)
                url = page.get("NextPageLink") or None
        return quotes
