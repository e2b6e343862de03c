"""The three price feeds' parsers and requests, by their module docstrings and the vendors' published
reply formats (AWS Pricing API ``GetProducts`` PriceList entries and EC2
``DescribeSpotPriceHistory`` rows; Azure Retail Prices items; GCP Cloud Billing Catalog SKUs with
``units`` + ``nanos``), with in-memory fakes for the SDK session and the HTTP GET. Every expected
price is computed by hand from the example's numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from ray_multicloud.errors import ConfigError
from ray_multicloud.pricing.aws_feed import ONDEMAND_FILTERS, AwsPriceFeed, parse_price_list_item
from ray_multicloud.pricing.azure_feed import API_VERSION, DEFAULT_ENDPOINT, AzurePriceFeed, quote_of
from ray_multicloud.pricing.gcp_feed import COMPUTE_SERVICE, GcpPriceFeed, classify, unit_price
from ray_multicloud.pricing.live import PriceQuote
from ray_multicloud.types import CapacityType, Offer

SPOT, OD = CapacityType.SPOT, CapacityType.ON_DEMAND
NOW = 1_700_000_000.0

# --- AWS -------------------------------------------------------------------------------------


def price_list_item(
    region: str = "us-east-1",
    itype: str = "p3.2xlarge",
    usd: str = "3.0600000000",
    unit: str = "Hrs",
    **attributes: str,
) -> dict[str, Any]:
    """One GetProducts PriceList entry in AWS's published shape (product.attributes,
    terms.OnDemand.<sku.term>.priceDimensions.<sku.term.rate>)."""
    attrs = {
        "instanceType": itype,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "location": "US East (N. Virginia)",
    }
    attrs.update(attributes)
    return {
        "product": {"productFamily": "Compute Instance", "attributes": attrs, "sku": "CGJXHFUSGE546RV6"},
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                "CGJXHFUSGE546RV6.JRTCKXETXF": {
                    "priceDimensions": {
                        "CGJXHFUSGE546RV6.JRTCKXETXF.6YS6EN2CT7": {
                            "unit": unit,
                            "endRange": "Inf",
                            "beginRange": "0",
                            "pricePerUnit": {"USD": usd},
                            "description": "$3.06 per On Demand Linux p3.2xlarge Instance Hour",
                        }
                    },
                    "sku": "CGJXHFUSGE546RV6",
                    "offerTermCode": "JRTCKXETXF",
                }
            }
        },
    }


def test_a_price_list_entry_gives_region_type_and_hourly_usd() -> None:
    assert ONDEMAND_FILTERS == {
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    item = price_list_item()
    assert parse_price_list_item(item) == ("us-east-1", "p3.2xlarge", 3.06)
    assert parse_price_list_item(json.dumps(item)) == (
        "us-east-1",
        "p3.2xlarge",
        3.06,
    )  # the API's JSON string


@pytest.mark.parametrize(
    "attributes",
    [
        {"operatingSystem": "Windows"},
        {"tenancy": "Dedicated"},
        {"preInstalledSw": "SQL Web"},
        {"capacitystatus": "UnusedCapacityReservation"},
    ],
)
def test_entries_outside_the_filters_give_nothing(attributes: dict[str, str]) -> None:
    assert parse_price_list_item(price_list_item(**attributes)) is None


def test_only_a_positive_hourly_dimension_is_a_price() -> None:
    assert parse_price_list_item(price_list_item(unit="Quantity")) is None
    assert parse_price_list_item(price_list_item(usd="0.0000000000")) is None
    assert parse_price_list_item(price_list_item(usd="")) is None
    two = price_list_item()
    dims = two["terms"]["OnDemand"]["CGJXHFUSGE546RV6.JRTCKXETXF"]["priceDimensions"]
    dims["A"] = {"unit": "Hrs", "pricePerUnit": {"USD": "0"}}
    dims["B"] = {"unit": "Hrs", "pricePerUnit": {"USD": "1.5"}}
    dims.pop("CGJXHFUSGE546RV6.JRTCKXETXF.6YS6EN2CT7")
    assert parse_price_list_item(two) == ("us-east-1", "p3.2xlarge", 1.5)  # the first positive one
    no_terms = price_list_item()
    no_terms.pop("terms")
    assert parse_price_list_item(no_terms) is None
    no_region = price_list_item()
    no_region["product"]["attributes"].pop("regionCode")
    assert parse_price_list_item(no_region) == ("", "p3.2xlarge", 3.06)
    assert parse_price_list_item({}) is None


def test_a_price_list_entry_with_odd_terms_still_finds_its_hourly_price() -> None:
    item = price_list_item(usd="0.5260000000")  # under a dollar an hour (g4dn.xlarge's price)
    assert parse_price_list_item(item) == ("us-east-1", "p3.2xlarge", 0.526)
    terms = item["terms"]["OnDemand"]
    good = terms.pop("CGJXHFUSGE546RV6.JRTCKXETXF")
    terms["EMPTY.TERM"] = {"sku": "EMPTY"}  # a term without priceDimensions
    terms["NO.PRICE"] = {
        "priceDimensions": {"a": {"unit": "Hrs"}, "b": {"unit": "Hrs", "pricePerUnit": {"CNY": "7"}}}
    }
    terms["GOOD"] = good
    assert parse_price_list_item(item) == ("us-east-1", "p3.2xlarge", 0.526)


def test_the_aws_feed_builds_its_own_session_when_none_is_given() -> None:
    import boto3

    feed = AwsPriceFeed(regions=["us-east-1"], instance_types=["p3.2xlarge"])
    assert isinstance(feed._session, boto3.Session)


class FakeEc2:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.calls = pages, []

    def describe_spot_price_history(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return self.pages[len(self.calls) - 1]


class FakePricing:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.calls = pages, []

    def get_products(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return self.pages[(len(self.calls) - 1) % len(self.pages)]


class FakeSession:
    def __init__(self, clients: Mapping[tuple[str, str], Any]) -> None:
        self.clients, self.asked = clients, []

    def client(self, service: str, *, region_name: str, endpoint_url: str | None) -> Any:
        self.asked.append((service, region_name, endpoint_url))
        return self.clients[(service, region_name)]


def at(minute: int) -> datetime:
    return datetime(2023, 11, 14, 22, minute, tzinfo=UTC)


def test_aws_feed_keeps_the_latest_spot_row_per_zone_and_type_over_pages() -> None:
    ec2 = FakeEc2(
        [
            {
                "SpotPriceHistory": [
                    {
                        "AvailabilityZone": "us-east-1a",
                        "AvailabilityZoneId": "use1-az1",
                        "InstanceType": "p3.2xlarge",
                        "ProductDescription": "Linux/UNIX",
                        "SpotPrice": "0.9180",
                        "Timestamp": at(10),
                    },
                    {
                        "AvailabilityZone": "us-east-1b",
                        "InstanceType": "p3.2xlarge",
                        "ProductDescription": "Linux/UNIX",
                        "SpotPrice": "0.9500",
                        "Timestamp": at(5),
                    },
                ],
                "NextToken": "page2",
            },
            {
                "SpotPriceHistory": [
                    {
                        "AvailabilityZone": "us-east-1a",
                        "AvailabilityZoneId": "use1-az1",
                        "InstanceType": "p3.2xlarge",
                        "ProductDescription": "Linux/UNIX",
                        "SpotPrice": "0.8000",
                        "Timestamp": at(1),
                    },  # older
                    {
                        "AvailabilityZoneId": "use1-az2",
                        "InstanceType": "g5.xlarge",
                        "SpotPrice": "0.4",
                        "Timestamp": at(20),
                    },
                    {
                        "AvailabilityZoneId": "use1-az2",
                        "InstanceType": "g5.xlarge",
                        "SpotPrice": "0.5",
                        "Timestamp": at(30),
                    },
                    {
                        "AvailabilityZoneId": "use1-az3",
                        "InstanceType": "g5.xlarge",
                        "SpotPrice": "0.6",
                    },  # no time
                    {
                        "InstanceType": "g5.xlarge",
                        "SpotPrice": "0.1",
                        "Timestamp": at(40),
                    },  # no zone: dropped (a spot price is a zone's; as "" it would price the region)
                ],
                "NextToken": "",
            },
        ]
    )
    session = FakeSession({("ec2", "us-east-1"): ec2})
    feed = AwsPriceFeed(
        regions=["us-east-1"],
        instance_types=["p3.2xlarge", "g5.xlarge", "p3.2xlarge"],
        cloud="aws-east",
        endpoint_url="http://127.0.0.1:5",
        session=session,
        ondemand=False,
    )
    assert (feed.name, feed.cloud, feed.instance_types) == (
        "aws-east",
        "aws-east",
        ("g5.xlarge", "p3.2xlarge"),
    )
    quotes = feed.fetch(NOW)
    src = "live:aws-spot-price-history"
    assert sorted(quotes, key=lambda q: (q.zone, q.instance_type)) == [
        PriceQuote("aws-east", "us-east-1", "us-east-1b", "p3.2xlarge", SPOT, 0.95, at(5).timestamp(), src),
        PriceQuote("aws-east", "us-east-1", "use1-az1", "p3.2xlarge", SPOT, 0.918, at(10).timestamp(), src),
        PriceQuote("aws-east", "us-east-1", "use1-az2", "g5.xlarge", SPOT, 0.5, at(30).timestamp(), src),
        PriceQuote("aws-east", "us-east-1", "use1-az3", "g5.xlarge", SPOT, 0.6, NOW, src),
    ]
    assert session.asked == [("ec2", "us-east-1", "http://127.0.0.1:5")]
    first = {
        "InstanceTypes": ["g5.xlarge", "p3.2xlarge"],
        "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": datetime.fromtimestamp(NOW, UTC),
        "MaxResults": 1000,
    }
    assert ec2.calls == [first, {**first, "NextToken": "page2"}]
    assert ec2.calls[0]["StartTime"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_aws_on_demand_asks_the_pricing_api_per_type_and_keeps_the_wanted_regions() -> None:
    pricing = FakePricing(
        [
            {
                "PriceList": [
                    json.dumps(price_list_item("us-east-1", "g5.xlarge", "1.0060000000")),
                    json.dumps(price_list_item("eu-west-1", "g5.xlarge", "1.2")),
                ],
                "NextToken": "n",
            },
            {
                "PriceList": [
                    json.dumps(price_list_item("us-west-2", "g5.xlarge", "1.006", operatingSystem="Windows")),
                    json.dumps(price_list_item("us-west-2", "g5.xlarge", "1.1")),
                ]
            },
        ]
    )
    ec2 = FakeEc2([{"SpotPriceHistory": []}] * 2)
    session = FakeSession(
        {("pricing", "us-east-1"): pricing, ("ec2", "us-east-1"): ec2, ("ec2", "us-west-2"): FakeEc2([{}])}
    )
    feed = AwsPriceFeed(
        regions=["us-east-1", "us-west-2"],
        instance_types=["g5.xlarge"],
        pricing_endpoint_url="http://127.0.0.1:6",
        session=session,
    )
    quotes = feed.fetch(NOW)
    assert feed.name == "aws"
    assert quotes == [
        PriceQuote("aws", "us-east-1", "", "g5.xlarge", OD, 1.006, NOW, "live:aws-pricing-api"),
        PriceQuote("aws", "us-west-2", "", "g5.xlarge", OD, 1.1, NOW, "live:aws-pricing-api"),
    ]
    assert ("pricing", "us-east-1", "http://127.0.0.1:6") in session.asked
    filters = [
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "g5.xlarge"},
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
    ]
    first = {"ServiceCode": "AmazonEC2", "Filters": filters, "FormatVersion": "aws_v1"}
    assert pricing.calls == [first, {**first, "NextToken": "n"}]
    other = AwsPriceFeed(
        regions=["us-east-1"],
        instance_types=["g5.xlarge"],
        session=FakeSession(
            {
                ("pricing", "eu-central-1"): FakePricing([{"PriceList": []}]),
                ("ec2", "us-east-1"): FakeEc2([{}]),
            }
        ),
        pricing_region="eu-central-1",
    )
    assert other.fetch(NOW) == []
    empty_reply = AwsPriceFeed(
        regions=["us-east-1"],
        instance_types=["g5.xlarge"],
        session=FakeSession(
            {("pricing", "us-east-1"): FakePricing([{}]), ("ec2", "us-east-1"): FakeEc2([{}])}
        ),
    )
    assert empty_reply.fetch(NOW) == []  # a reply without PriceList / SpotPriceHistory: no quotes


# --- Azure -----------------------------------------------------------------------------------


def retail_item(**changes: object) -> dict[str, object]:
    """One Retail Prices API item in Microsoft's published shape."""
    item: dict[str, object] = {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": 3.06,
        "unitPrice": 3.06,
        "armRegionName": "eastus",
        "location": "US East",
        "effectiveStartDate": "2020-08-01T00:00:00Z",
        "meterName": "NC6s v3",
        "productName": "Virtual Machines NCSv3 Series",
        "skuName": "NC6s v3",
        "serviceName": "Virtual Machines",
        "serviceFamily": "Compute",
        "unitOfMeasure": "1 Hour",
        "type": "Consumption",
        "isPrimaryMeterRegion": True,
        "armSkuName": "Standard_NC6s_v3",
    }
    item.update(changes)
    return item


def test_a_linux_pay_as_you_go_hour_and_a_spot_hour_are_quotes() -> None:
    assert quote_of(retail_item(), "azure", NOW) == PriceQuote(
        "azure", "eastus", "", "Standard_NC6s_v3", OD, 3.06, NOW, "live:azure-retail-prices"
    )
    spot = quote_of(
        retail_item(skuName="NC6s v3 Spot", retailPrice=0.3213, meterName="NC6s v3 Spot"), "az", NOW
    )
    assert spot == PriceQuote(
        "az", "eastus", "", "Standard_NC6s_v3", SPOT, 0.3213, NOW, "live:azure-retail-prices"
    )
    assert quote_of(retail_item(retailPrice=2), "azure", NOW).price_per_hour == 2.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "changes",
    [
        {"productName": "Virtual Machines NCSv3 Series Windows"},
        {"skuName": "NC6s v3 Low Priority"},
        {"type": "Reservation"},
        {"type": "DevTestConsumption"},
        {"unitOfMeasure": "1/Month"},
        {"unitOfMeasure": "1 Hours"},
        {"retailPrice": 0},
        {"retailPrice": -1.0},
        {"retailPrice": "3.06"},
        {"retailPrice": True},
        {"retailPrice": float("nan")},
        {"retailPrice": float("inf")},
        {"retailPrice": None},
        {"armRegionName": ""},
        {"armSkuName": ""},
        {"armSkuName": None},
    ],
)
def test_items_that_are_not_a_linux_vm_hour_are_skipped(changes: dict[str, object]) -> None:
    assert quote_of(retail_item(**changes), "azure", NOW) is None


def test_an_item_missing_its_fields_is_skipped() -> None:
    for key in ("type", "unitOfMeasure", "retailPrice", "armRegionName", "armSkuName"):
        item = retail_item()
        item.pop(key)
        assert quote_of(item, "azure", NOW) is None, key
    item = retail_item(skuName="NC6s v3 Spot")
    item.pop("productName")
    assert quote_of(item, "azure", NOW).capacity is SPOT  # type: ignore[union-attr]
    item.pop("skuName")
    assert quote_of(item, "azure", NOW).capacity is OD  # type: ignore[union-attr]
    assert quote_of(retail_item(skuName="NC6sSpot"), "azure", NOW).capacity is OD  # type: ignore[union-attr]


def test_the_azure_query_is_the_documented_filter() -> None:
    assert (
        DEFAULT_ENDPOINT == "https://prices.azure.com/api/retail/prices"
        and API_VERSION == "2023-01-01-preview"
    )
    feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], get_json=lambda url, headers: {})
    assert feed.url_for("Standard_NC6s_v3") == (
        "https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&$filter="
        "serviceName%20eq%20%27Virtual%20Machines%27%20and%20armSkuName%20eq%20%27Standard_NC6s_v3%27"
        "%20and%20priceType%20eq%20%27Consumption%27"
    )


def test_azure_feed_pages_filters_regions_and_sends_no_credentials() -> None:
    calls: list[tuple[str, dict[str, str]]] = []
    pages = {
        "A1": {
            "Items": [
                retail_item(armSkuName="A", armRegionName="eastus", retailPrice=1.0),
                retail_item(armSkuName="A", armRegionName="westeurope", retailPrice=1.5),
            ],
            "NextPageLink": "A2",
        },
        "A2": {
            "Items": [
                retail_item(armSkuName="A", armRegionName="westus", retailPrice=1.25, skuName="A Spot")
            ],
            "NextPageLink": None,
        },
        "B1": {"Items": [retail_item(armSkuName="B", armRegionName="eastus", retailPrice=2.0)]},
    }

    def get(url: str, headers: Mapping[str, str]) -> Any:
        calls.append((url, dict(headers)))
        key = url if url in pages else ("A1" if "'A'" in url.replace("%27", "'") else "B1")
        return pages[key]

    feed = AzurePriceFeed(
        vm_sizes=["B", "A", "B"],
        regions=["eastus", "westus"],
        cloud="az",
        endpoint="https://mirror/p",
        get_json=get,
    )
    assert (feed.name, feed.vm_sizes, feed.regions) == ("az", ("A", "B"), frozenset({"eastus", "westus"}))
    got = [(q.instance_type, q.region, q.capacity, q.price_per_hour) for q in feed.fetch(NOW)]
    assert got == [("A", "eastus", OD, 1.0), ("A", "westus", SPOT, 1.25), ("B", "eastus", OD, 2.0)]
    assert [c[0] for c in calls] == [feed.url_for("A"), "A2", feed.url_for("B")]
    assert feed.url_for("A").startswith("https://mirror/p?api-version=")
    assert all(h == {} for _, h in calls)
    everywhere = AzurePriceFeed(vm_sizes=["A"], get_json=get)
    assert {q.region for q in everywhere.fetch(NOW)} == {"eastus", "westeurope", "westus"}


def test_azure_feed_stops_after_max_pages() -> None:
    calls: list[str] = []

    def endless(url: str, headers: Mapping[str, str]) -> Any:
        calls.append(url)
        return {"Items": [retail_item()], "NextPageLink": f"next{len(calls)}"}

    feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], get_json=endless, max_pages=3)
    assert len(feed.fetch(NOW)) == 3 and calls[1:] == ["next1", "next2"]
    assert len(AzurePriceFeed(vm_sizes=["x"], get_json=endless)._max_pages * [0]) == 50


# --- GCP -------------------------------------------------------------------------------------


def sku(
    description: str,
    usage: str,
    units: str | int | None = "0",
    nanos: int | None = 0,
    regions: object = ("us-central1",),
    tiers: list[dict[str, Any]] | None = None,
) -> dict[str, object]:
    """A Cloud Billing Catalog SKU in Google's published shape."""
    rates = (
        tiers
        if tiers is not None
        else [{"startUsageAmount": 0, "unitPrice": {"currencyCode": "USD", "units": units, "nanos": nanos}}]
    )
    return {
        "name": "services/6F81-5844-456A/skus/0000-0000-0000",
        "skuId": "0000-0000-0000",
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": "GPU",
            "usageType": usage,
        },
        "serviceRegions": list(regions) if isinstance(regions, tuple) else regions,
        "pricingInfo": [
            {
                "effectiveTime": "2023-11-14T00:00:00Z",
                "pricingExpression": {"usageUnit": "h", "displayQuantity": 1, "tieredRates": rates},
            }
        ],
    }


def test_unit_price_is_units_plus_nanos_of_the_latest_pricing() -> None:
    assert unit_price(sku("x", "OnDemand", "2", 480_000_000)) == 2.48
    assert unit_price(sku("x", "OnDemand", None, 31_611_000)) == 0.031611
    assert unit_price(sku("x", "OnDemand", "1", None)) == 1.0
    older_then_latest = sku("x", "OnDemand", "9")
    latest = sku("x", "OnDemand", "0", 744_000_000)["pricingInfo"]
    older_then_latest["pricingInfo"] = older_then_latest["pricingInfo"] + latest  # type: ignore[operator]
    assert unit_price(older_then_latest) == 0.744
    assert unit_price({}) == 0.0 and unit_price({"pricingInfo": []}) == 0.0
    assert unit_price({"pricingInfo": "x"}) == 0.0
    assert unit_price(sku("x", "OnDemand", tiers=[])) == 0.0
    assert unit_price({"pricingInfo": [{}]}) == 0.0


@pytest.mark.parametrize(
    ("description", "usage", "want"),
    [
        ("Nvidia Tesla V100 GPU running in Americas", "OnDemand", ("gpu:V100", OD)),
        ("Spot Preemptible Nvidia Tesla V100 GPU running in Americas", "Preemptible", ("gpu:V100", SPOT)),
        ("Preemptible Nvidia Tesla T4 GPU running in Americas", "Preemptible", ("gpu:T4", SPOT)),
        ("Nvidia Tesla A100 80GB GPU running in Americas", "OnDemand", ("gpu:A100-80GB", OD)),
        ("Nvidia Tesla A100 GPU running in Americas", "OnDemand", ("gpu:A100", OD)),
        ("Nvidia H100 80GB GPU running in Americas", "OnDemand", ("gpu:H100", OD)),
        ("Nvidia Tesla P100 GPU running in EMEA", "OnDemand", ("gpu:P100", OD)),
        ("Nvidia Tesla P4 GPU running in EMEA", "OnDemand", ("gpu:P4", OD)),
        ("Nvidia Tesla K80 GPU running in EMEA", "OnDemand", ("gpu:K80", OD)),
        ("Nvidia L4 GPU running in Americas", "OnDemand", ("gpu:L4", OD)),
        ("Nvidia Tesla T4 Virtual Workstation GPU running in Americas", "OnDemand", None),
        ("Nvidia Tesla M60 GPU running in Americas", "OnDemand", None),
        ("Nvidia Tesla V100 GPU attached to VMs", "OnDemand", None),
        ("AMD MI300 GPU running in Americas", "OnDemand", None),
        ("N1 Predefined Instance Core running in Americas", "OnDemand", ("n1:core", OD)),
        ("Spot Preemptible N1 Predefined Instance Ram running in Americas", "Preemptible", ("n1:ram", SPOT)),
        ("A2 Instance Core running in Americas", "OnDemand", ("a2:core", OD)),
        ("A3 Instance Ram running in Americas", "OnDemand", ("a3:ram", OD)),
        ("G2 Instance Core running in Americas", "OnDemand", ("g2:core", OD)),
        ("E2 Instance Core running in Americas", "OnDemand", None),
        ("Custom N1 Instance Core running in Americas", "OnDemand", None),
        ("N1 Predefined Instance Core running in Americas", "Commit1Yr", None),
    ],
)  # fmt: skip
def test_classify_names_the_parts_the_feed_prices(
    description: str, usage: str, want: tuple[str, CapacityType] | None
) -> None:
    assert classify(sku(description, usage)) == want


def test_classify_without_a_category_is_nothing() -> None:
    assert classify({"description": "N1 Predefined Instance Core running in Americas"}) is None
    assert (
        classify({"description": "N1 Predefined Instance Core running in Americas", "category": "x"}) is None
    )


def gcp_offer(
    itype: str,
    capacity: CapacityType,
    vcpus: float = 8,
    mem: float = 30,
    acc: str = "V100",
    count: float = 1,
    region: str = "us-central1",
) -> Offer:
    return Offer("gcp", region, f"{region}-a", itype, acc, count, vcpus, mem, capacity, 1.0, 2.0)


def test_gcp_feed_adds_cores_ram_and_gpus_per_region_and_capacity() -> None:
    skus = [
        sku(
            "N1 Predefined Instance Core running in Americas",
            "OnDemand",
            "0",
            31_611_000,
            ("us-central1", "us-east1"),
        ),
        sku(
            "N1 Predefined Instance Ram running in Americas",
            "OnDemand",
            "0",
            4_237_000,
            ("us-central1", "us-east1"),
        ),
        sku("Nvidia Tesla V100 GPU running in Americas", "OnDemand", "2", 480_000_000, ("us-central1",)),
        sku(
            "Spot Preemptible N1 Predefined Instance Core running in Americas", "Preemptible", "0", 6_980_000
        ),
        sku("Spot Preemptible N1 Predefined Instance Ram running in Americas", "Preemptible", "0", 936_000),
        sku("Spot Preemptible Nvidia Tesla V100 GPU running in Americas", "Preemptible", "0", 744_000_000),
        sku("Nvidia Tesla T4 GPU running in Americas", "OnDemand", "0", 0),  # free: not a price
        sku(
            "Nvidia Tesla T4 GPU running in Americas", "OnDemand", "0", 350_000_000, "us-central1"
        ),  # not a list
    ]
    pages = [{"skus": skus[:3], "nextPageToken": "t2"}, {"skus": skus[3:]}]
    calls: list[tuple[str, dict[str, str]]] = []

    def get(url: str, headers: Mapping[str, str]) -> Any:
        calls.append((url, dict(headers)))
        return pages[len(calls) - 1]

    offers = [
        gcp_offer("n1-standard-8+V100", OD),
        gcp_offer("n1-standard-8+V100", SPOT),
        gcp_offer("n1-standard-8", OD, acc="", count=0),  # host only
        gcp_offer("n1-standard-8+V100", OD, region="us-east1"),  # no V100 SKU in us-east1
        gcp_offer("n1-standard-8+T4", OD, acc="T4"),  # T4 not priced
        gcp_offer("e2-standard-8", OD, acc="", count=0),  # a family the feed does not add up
        gcp_offer("n1-standard-0+V100", OD, vcpus=0),  # no cores: no quote
        gcp_offer("", OD),  # no instance type: not asked
    ]
    feed = GcpPriceFeed(
        offers=offers, endpoint="https://billing.example/", get_json=get, token=lambda: "tok", name="gcp-2"
    )
    assert feed.name == "gcp-2" and feed.endpoint == "https://billing.example" and len(feed.offers) == 7
    quotes = feed.fetch(NOW)
    src = "live:gcp-billing-catalog"
    od = round(8 * 0.031611 + 30 * 0.004237 + 2.48, 6)  # 0.252888 + 0.12711 + 2.48 = 2.859998
    spot = round(8 * 0.00698 + 30 * 0.000936 + 0.744, 6)  # 0.05584 + 0.02808 + 0.744 = 0.82792
    host = round(8 * 0.031611 + 30 * 0.004237, 6)  # 0.252888 + 0.12711 = 0.379998
    assert (od, spot, host) == (2.859998, 0.82792, 0.379998)
    assert quotes == [
        PriceQuote("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100", OD, od, NOW, src),
        PriceQuote("gcp", "us-central1", "us-central1-a", "n1-standard-8+V100", SPOT, spot, NOW, src),
        PriceQuote("gcp", "us-central1", "us-central1-a", "n1-standard-8", OD, host, NOW, src),
    ]
    base = f"https://billing.example/v1/services/{COMPUTE_SERVICE}/skus?currencyCode=USD&pageSize=5000"
    assert calls == [
        (base, {"Authorization": "Bearer tok"}),
        (base + "&pageToken=t2", {"Authorization": "Bearer tok"}),
    ]
    assert COMPUTE_SERVICE == "6F81-5844-456A"


def test_gcp_feed_rounds_to_six_places_and_later_skus_win() -> None:
    skus = [
        sku("A2 Instance Core running in Americas", "OnDemand", "0", 1_000_000),
        sku("A2 Instance Core running in Americas", "OnDemand", "0", 33_333_333),
        sku("A2 Instance Ram running in Americas", "OnDemand", "0", 1),
    ]

    def get(url: str, headers: Mapping[str, str]) -> Any:
        return {"skus": skus}

    feed = GcpPriceFeed(
        offers=[gcp_offer("a2-highgpu-1g", OD, vcpus=3, mem=1, acc="")], get_json=get, token=lambda: "t"
    )
    (q,) = feed.fetch(NOW)
    assert q.price_per_hour == 0.1  # 3 x 0.033333333 + 1e-9 = 0.099999999... -> 0.1
    fine = [
        sku("G2 Instance Core running in Americas", "OnDemand", "0", 1_234_567),
        sku("G2 Instance Ram running in Americas", "OnDemand", "0", 1_000_000),
    ]
    feed = GcpPriceFeed(
        offers=[gcp_offer("g2-standard-4", OD, vcpus=1, mem=1, acc="")],
        get_json=lambda url, headers: {"skus": fine},
        token=lambda: "t",
    )
    assert feed.fetch(NOW)[0].price_per_hour == 0.002235  # 0.001234567 + 0.001, to 6 places
    a3 = [
        sku("A3 Instance Core running in Americas", "OnDemand", "1"),
        sku("A3 Instance Ram running in Americas", "OnDemand", "0", 500_000_000),
    ]
    feed = GcpPriceFeed(
        offers=[gcp_offer("a3-highgpu-1g", OD, vcpus=2, mem=2, acc="")],
        get_json=lambda url, headers: {"skus": a3},
        token=lambda: "t",
    )
    assert feed.fetch(NOW)[0].price_per_hour == 3.0  # 2 x 1 + 2 x 0.5


def test_gcp_feed_stops_after_max_pages_and_refuses_plain_http() -> None:
    calls: list[str] = []

    def endless(url: str, headers: Mapping[str, str]) -> Any:
        calls.append(url)
        return {"skus": [], "nextPageToken": "more"}

    GcpPriceFeed(offers=[], get_json=endless, token=lambda: "t", max_pages=4).fetch(NOW)
    assert len(calls) == 4
    calls.clear()
    GcpPriceFeed(offers=[], get_json=endless, token=lambda: "t").fetch(NOW)
    assert len(calls) == 200
    with pytest.raises(ConfigError) as err:
        GcpPriceFeed(offers=[], endpoint="http://billing.example", get_json=endless, name="gcp-eu")
    assert "provider.clouds.gcp-eu.prices_endpoint (or --feed-endpoint gcp-eu=URL)" in str(err.value)
    GcpPriceFeed(offers=[], endpoint="http://127.0.0.1:9", get_json=endless)  # a loopback test server


def test_azure_feed_defaults_to_the_azure_entry_and_stamps_quotes_now() -> None:
    pages = iter([{"NextPageLink": "p2"}, {"Items": [retail_item()]}])  # a page without Items: none
    feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], get_json=lambda url, headers: next(pages))
    assert feed.cloud == feed.name == "azure"
    assert feed.fetch(NOW) == [
        PriceQuote("azure", "eastus", "", "Standard_NC6s_v3", OD, 3.06, NOW, "live:azure-retail-prices")
    ]


def test_unit_price_reads_proto3_json_that_omits_zero_fields() -> None:
    # The Billing Catalog's JSON omits a zero field: a price under $1 has no "units" at all.
    under_a_dollar = sku(
        "x",
        "OnDemand",
        tiers=[{"startUsageAmount": 0, "unitPrice": {"currencyCode": "USD", "nanos": 31_611_000}}],
    )
    assert unit_price(under_a_dollar) == 0.031611
    whole = sku("x", "OnDemand", tiers=[{"unitPrice": {"currencyCode": "USD", "units": "3"}}])
    assert unit_price(whole) == 3.0
    assert unit_price(sku("x", "OnDemand", tiers=[{"startUsageAmount": 0}])) == 0.0  # no unitPrice: no price


def test_gcp_feed_defaults_to_the_gcp_entry() -> None:
    assert GcpPriceFeed(offers=[], get_json=lambda url, headers: {}, token=lambda: "t").name == "gcp"
    with pytest.raises(
        ConfigError, match=r"provider\.clouds\.gcp\.prices_endpoint \(or --feed-endpoint gcp=URL\)"
    ):
        GcpPriceFeed(offers=[], endpoint="http://billing.example")


def test_adc_token_asks_application_default_credentials_for_the_billing_read_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.auth
    import google.auth.transport.requests

    from ray_multicloud.pricing.gcp_feed import adc_token

    asked: list[object] = []

    class Credentials:
        token = "ya29.fresh"

        def refresh(self, request: object) -> None:
            asked.append(request)

    def default(scopes: list[str]) -> tuple[Credentials, str]:
        asked.append(scopes)
        return Credentials(), "project"

    monkeypatch.setattr(google.auth, "default", default)
    assert adc_token() == "ya29.fresh"
    assert asked[0] == ["https://www.googleapis.com/auth/cloud-billing.readonly"]
    assert isinstance(asked[1], google.auth.transport.requests.Request)


def test_gcp_endpoint_loses_only_its_trailing_slashes() -> None:
    def feed(endpoint: str) -> GcpPriceFeed:
        return GcpPriceFeed(offers=[], endpoint=endpoint, get_json=lambda url, headers: {}, token=lambda: "t")

    assert feed("https://mirror.example/X").endpoint == "https://mirror.example/X"
    assert feed("https://mirror.example/billing//").endpoint == "https://mirror.example/billing"


def test_gcp_feed_skips_skus_it_cannot_use_and_reads_on() -> None:
    core = sku("N1 Predefined Instance Core running in Americas", "OnDemand", "0", 250_000_000)
    pages = iter(
        [
            {"nextPageToken": "2"},  # a page without skus
            {
                "skus": [
                    sku(
                        "E2 Instance Core running in Americas", "OnDemand", "1"
                    ),  # not a part the feed adds up
                    sku("N1 Predefined Instance Ram running in Americas", "OnDemand", "0", 0),  # no price
                    {**core, "serviceRegions": None},  # no regions
                    core,
                    sku("N1 Predefined Instance Ram running in Americas", "OnDemand", "0", 125_000_000),
                ]
            },
        ]
    )
    feed = GcpPriceFeed(
        offers=[gcp_offer("n1-standard-2", OD, vcpus=2, mem=4, acc="", count=0)],
        get_json=lambda url, headers: next(pages),
        token=lambda: "t",
    )
    (q,) = feed.fetch(NOW)
    assert q.price_per_hour == 1.0  # 2 x 0.25 + 4 x 0.125
