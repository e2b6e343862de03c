"""Build the live price feeds that cover a set of offers, one per public cloud among them.

``build_feeds(offers, endpoints)`` returns an AWS feed for the AWS offers' regions and instance
types, a GCP feed pricing the GCP offers, an Azure feed for the Azure VM sizes and regions.
``endpoints`` maps a cloud to a base URL (tests and private mirrors; the AWS one serves both EC2
and the Pricing API). A feed whose SDK is not installed is left out, and ``skipped`` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ray_multicloud.pricing.live import PriceFeed
from ray_multicloud.types import Offer

LIVE_CLOUDS = ("aws", "gcp", "azure")


@dataclass
class Feeds:
    feeds: list[PriceFeed] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def build_feeds(offers: Iterable[Offer], endpoints: Mapping[str, str] | None = None) -> Feeds:
    endpoints = endpoints or {}
    by_cloud: dict[str, list[Offer]] = {}
    for offer in offers:
        if offer.cloud in LIVE_CLOUDS:
            by_cloud.setdefault(offer.cloud, []).append(offer)
    out = Feeds()
    if "aws" in by_cloud:
        try:
            from ray_multicloud.pricing.aws_feed import AwsPriceFeed

            aws = by_cloud["aws"]
            out.feeds.append(
                AwsPriceFeed(
                    regions=sorted({o.region for o in aws}),
                    instance_types=sorted({o.instance_type for o in aws}),
                    endpoint_url=endpoints.get("aws"),
                    pricing_endpoint_url=endpoints.get("aws"),
                )
            )
        except ImportError as exc:
            out.skipped.append(f"aws: {exc.name} is not installed (pip install 'ray_multicloud[aws]')")
    if "gcp" in by_cloud:
        from ray_multicloud.pricing.gcp_feed import DEFAULT_ENDPOINT as GCP_ENDPOINT
        from ray_multicloud.pricing.gcp_feed import GcpPriceFeed

        out.feeds.append(GcpPriceFeed(offers=by_cloud["gcp"], endpoint=endpoints.get("gcp", GCP_ENDPOINT)))
    if "azure" in by_cloud:
        from ray_multicloud.pricing.azure_feed import DEFAULT_ENDPOINT as AZURE_ENDPOINT
        from ray_multicloud.pricing.azure_feed import AzurePriceFeed

        azure = by_cloud["azure"]
        out.feeds.append(
            AzurePriceFeed(
                vm_sizes=sorted({o.instance_type for o in azure}),
                regions=sorted({o.region for o in azure}),
                endpoint=endpoints.get("azure", AZURE_ENDPOINT),
            )
        )
    return out
