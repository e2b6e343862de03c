"""AWS live prices: spot from EC2 ``DescribeSpotPriceHistory``, on-demand from the Pricing API
``GetProducts`` (Linux, shared tenancy, no pre-installed software, capacity status Used).

Spot quotes are zonal, keyed by the zone *id* (``use1-az1``, as the catalog is) when the API
returns it, else by zone name. On-demand quotes are regional (zone ""), so they cover every zone.
Credentials: boto3's standard chain only. Endpoints are configurable (``endpoint_url`` for EC2,
``pricing_endpoint_url`` for the Pricing API, whose real endpoint lives in us-east-1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ray_multicloud.pricing.live import PriceQuote
from ray_multicloud.types import CapacityType

ONDEMAND_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}


def parse_price_list_item(item: str | Mapping[str, Any]) -> tuple[str, str, float] | None:
    """``(region, instance_type, USD/h)`` from one Pricing API PriceList entry (a JSON string)."""
    doc = json.loads(item) if isinstance(item, str) else item
    attributes = doc.get("product", {}).get("attributes", {})
    if any(attributes.get(k) != v for k, v in ONDEMAND_FILTERS.items()):
        return None
    for term in doc.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if dimension.get("unit") == "Hrs":
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "0") or 0)
                if usd > 0:
                    return str(attributes.get("regionCode", "")), str(attributes["instanceType"]), usd
    return None


class AwsPriceFeed:
    """Spot and on-demand prices of ``instance_types`` in ``regions``."""

    def __init__(
        self,
        *,
        regions: Sequence[str],
        instance_types: Sequence[str],
        cloud: str = "aws",
        endpoint_url: str | None = None,
        pricing_endpoint_url: str | None = None,
        pricing_region: str = "us-east-1",
        session: Any | None = None,
        ondemand: bool = True,
    ) -> None:
        import boto3

        self.cloud = cloud
        self.name = cloud  # the feed is named after the cloud entry it prices
        self.regions = tuple(regions)
        self.instance_types = tuple(sorted(set(instance_types)))
        self._endpoint = endpoint_url
        self._pricing_endpoint = pricing_endpoint_url
        self._pricing_region = pricing_region
        self._session = session if session is not None else boto3.Session()
        self._ondemand = ondemand

    def fetch(self, now: float) -> list[PriceQuote]:
        quotes = self._spot(now)
        if self._ondemand:
            quotes += self._on_demand(now)
        return quotes

    def _spot(self, now: float) -> list[PriceQuote]:
        quotes: list[PriceQuote] = []
        start = datetime.fromtimestamp(now, UTC)
        for region in self.regions:
            client = self._session.client("ec2", region_name=region, endpoint_url=self._endpoint)
            latest: dict[tuple[str, str], PriceQuote] = {}
            token = ""
            while True:
                params: dict[str, Any] = {
                    "InstanceTypes": list(self.instance_types),
                    "ProductDescriptions": ["Linux/UNIX"],
                    "StartTime": start,
                    "MaxResults": 1000,
                }
                if token:
                    params["NextToken"] = token
                reply = client.describe_spot_price_history(**params)
                for row in reply.get("SpotPriceHistory", []):
                    zone = str(row.get("AvailabilityZoneId") or row.get("AvailabilityZone") or "")
                    if not zone:
                        continue  # a spot price is a zone's; one without a zone would price the region
                    stamp = row.get("Timestamp")
                    as_of = stamp.timestamp() if hasattr(stamp, "timestamp") else now
                    quote = PriceQuote(
                        self.cloud,
                        region,
                        zone,
                        str(row["InstanceType"]),
                        CapacityType.SPOT,
                        float(row["SpotPrice"]),
                        as_of,
                        "live:aws-spot-price-history",
                    )
                    held = latest.get((zone, quote.instance_type))
                    if held is None or quote.as_of > held.as_of:
                        latest[(zone, quote.instance_type)] = quote
                token = str(reply.get("NextToken") or "")
                if not token:
                    break
            quotes += latest.values()
        return quotes

    def _on_demand(self, now: float) -> list[PriceQuote]:
        client = self._session.client(
            "pricing", region_name=self._pricing_region, endpoint_url=self._pricing_endpoint
        )
        wanted = set(self.regions)
        quotes: list[PriceQuote] = []
        for instance_type in self.instance_types:
            filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": instance_type}]
            filters += [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in ONDEMAND_FILTERS.items()]
            token = ""
            while True:
                params: dict[str, Any] = {
                    "ServiceCode": "AmazonEC2",
                    "Filters": filters,
                    "FormatVersion": "aws_v1",
                }
                if token:
                    params["NextToken"] = token
                reply = client.get_products(**params)
                for item in reply.get("PriceList", []):
                    parsed = parse_price_list_item(item)
                    if parsed is None or parsed[0] not in wanted:
                        continue
                    region, itype, usd = parsed
                    quotes.append(
                        PriceQuote(
                            self.cloud,
                            region,
                            "",
                            itype,
                            CapacityType.ON_DEMAND,
                            usd,
                            now,
                            "live:aws-pricing-api",
                        )
                    )
                token = str(reply.get("NextToken") or "")
                if not token:
                    break
        return quotes
