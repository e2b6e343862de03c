"""Build the live price feeds that cover a set of offers: one per public cloud entry among them.

``build_feeds(offers, endpoints, drivers)`` groups the offers by cloud entry (an offer's ``cloud``
is the entry's name, e.g. ``aws`` or ``aws-east``); ``drivers`` maps an entry to its driver
(default: the entry's own name), and every ``aws``/``gcp``/``azure`` entry gets a feed named after
it: AWS for its regions and instance types, GCP pricing its offers, Azure for its VM sizes and
regions. ``endpoints`` maps an entry to a base URL (tests and private mirrors; the AWS one serves
both EC2 and the Pricing API). ``endpoints_from_clouds`` reads them from a cluster YAML's
``provider.clouds.<name>.prices_endpoint``. A feed whose SDK is missing is left out, and
``skipped`` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ray_multicloud.pricing.live import PriceFeed
from ray_multicloud.types import Offer

LIVE_DRIVERS = ("aws", "gcp", "azure")


@dataclass
class Feeds:
    feeds: list[PriceFeed] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def endpoints_from_clouds(clouds: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{entry: prices_endpoint}`` for the cloud entries of a provider section that set one."""
    return {
        str(name): str(spec["prices_endpoint"])
        for name, spec in clouds.items()
        if spec.get("prices_endpoint")
    }


def drivers_of(clouds: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{entry: driver}`` of a provider section's cloud entries."""
    return {str(name): str(spec.get("driver", name)) for name, spec in clouds.items()}


def build_feeds(
    offers: Iterable[Offer],
    endpoints: Mapping[str, str] | None = None,
    drivers: Mapping[str, str] | None = None,
) -> Feeds:
    endpoints = endpoints or {}
    drivers = drivers or {}
    by_cloud: dict[str, list[Offer]] = {}
    for offer in offers:
        if drivers.get(offer.cloud, offer.cloud) in LIVE_DRIVERS:
            by_cloud.setdefault(offer.cloud, []).append(offer)
    out = Feeds()
    for name, mine in sorted(by_cloud.items()):
        driver = drivers.get(name, name)
        endpoint = endpoints.get(name)
        if driver == "aws":
            try:
                from ray_multicloud.pricing.aws_feed import AwsPriceFeed

                out.feeds.append(
                    AwsPriceFeed(
                        regions=sorted({o.region for o in mine}),
                        instance_types=sorted({o.instance_type for o in mine}),
                        cloud=name,
                        endpoint_url=endpoint,
                        pricing_endpoint_url=endpoint,
                    )
                )
            except ImportError as exc:
                out.skipped.append(f"{name}: {exc.name} is not installed (pip install 'ray_multicloud[aws]')")
        elif driver == "gcp":
            from ray_multicloud.pricing.gcp_feed import DEFAULT_ENDPOINT as GCP_ENDPOINT
            from ray_multicloud.pricing.gcp_feed import GcpPriceFeed

            out.feeds.append(GcpPriceFeed(offers=mine, endpoint=endpoint or GCP_ENDPOINT, name=name))
        else:
            from ray_multicloud.pricing.azure_feed import DEFAULT_ENDPOINT as AZURE_ENDPOINT
            from ray_multicloud.pricing.azure_feed import AzurePriceFeed

            out.feeds.append(
                AzurePriceFeed(
                    vm_sizes=sorted({o.instance_type for o in mine}),
                    regions=sorted({o.region for o in mine}),
                    cloud=name,
                    endpoint=endpoint or AZURE_ENDPOINT,
                )
            )
    return out
