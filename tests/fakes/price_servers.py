"""Fake price APIs on loopback, answering with the real response shapes:

- ``FakeAwsPrices``: EC2 ``DescribeSpotPriceHistory`` (query protocol, XML, ``NextToken`` paging)
  and the Pricing API ``GetProducts`` (JSON 1.1, ``PriceList`` of JSON strings) on one endpoint.
  Spot rows are real: AWS spot prices of 2022-05-31 (github.com/ericpauley/aws-spot-price-history).
- ``FakeBillingCatalog``: Cloud Billing Catalog ``GET /v1/services/{id}/skus`` (bearer token,
  ``pageToken`` paging, ``units``/``nanos`` money).
- ``FakeRetailPrices``: Azure Retail Prices ``GET /api/retail/prices`` (``$filter``, ``NextPageLink``).

Each has ``fail`` (answer 503) and ``delay_s`` (answer late) fields for the cache's failure paths.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, quote

from fakes._http import FakeApi, Reply

# az_id, instance_type, price, timestamp — rows of 2022-05_gpu_linux_subset.tsv (real data).
AWS_SPOT_ROWS = [
    ("use1-az6", "p3.2xlarge", "0.918000", "2022-05-31T21:18:00+00:00"),
    ("use1-az1", "p3.2xlarge", "3.060000", "2022-05-31T21:18:00+00:00"),
    ("use1-az2", "p3.2xlarge", "0.918000", "2022-05-31T21:18:00+00:00"),
    ("use1-az5", "p3.2xlarge", "0.918000", "2022-05-31T21:18:00+00:00"),
    ("use1-az2", "p3.2xlarge", "0.950000", "2022-05-31T19:00:00+00:00"),  # older: superseded (made up)
    ("use1-az4", "g5.xlarge", "0.347700", "2022-05-31T20:43:19+00:00"),
    ("use1-az2", "g5.xlarge", "0.338700", "2022-05-31T21:09:56+00:00"),
    ("use1-az5", "g5.xlarge", "0.338200", "2022-05-31T21:35:25+00:00"),
]
ZONE_NAMES = {
    "use1-az1": "us-east-1c",
    "use1-az2": "us-east-1d",
    "use1-az4": "us-east-1b",
    "use1-az5": "us-east-1f",
    "use1-az6": "us-east-1a",
}
AWS_ONDEMAND = {
    ("us-east-1", "p3.2xlarge"): "3.0600000000",
    ("us-west-2", "p3.2xlarge"): "3.0600000000",
    ("us-east-1", "g5.xlarge"): "1.0060000000",
}


def price_list_item(region: str, instance_type: str, usd: str, **overrides: str) -> str:
    attributes = {
        "instanceType": instance_type,
        "regionCode": region,
        "location": "US East (N. Virginia)" if region == "us-east-1" else "US West (Oregon)",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "vcpu": "8",
        "gpu": "1",
        **overrides,
    }
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": attributes,
                "sku": "CGJXHFUSGE546RV6",
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    "CGJXHFUSGE546RV6.JRTCKXETXF": {
                        "priceDimensions": {
                            "CGJXHFUSGE546RV6.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "description": f"${float(usd):.3f} per On Demand Linux "
                                "{instance_type} Instance Hour",
                                "appliesTo": [],
                                "rateCode": "CGJXHFUSGE546RV6.JRTCKXETXF.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": "CGJXHFUSGE546RV6",
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


class Slow(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False
        self.delay_s = 0.0

    def gate(self) -> Reply | None:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            return 503, {"error": {"code": 503, "message": "The service is currently unavailable."}}, {}
        return None


class FakeAwsPrices(Slow):
    page_size = 2

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        gate = self.gate()
        if gate is not None:
            return gate
        target = headers.get("x-amz-target", "")
        if target == "AWSPriceListService.GetProducts":
            return self._get_products(body)
        form = {k: v[-1] for k, v in parse_qs(body if isinstance(body, str) else "").items()}
        if form.get("Action") == "DescribeSpotPriceHistory":
            return self._spot(form)
        return 400, "<Response><Errors><Error><Code>InvalidAction</Code></Error></Errors></Response>", {}

    def _spot(self, form: dict[str, str]) -> Reply:
        types = {v for k, v in form.items() if k.startswith("InstanceType.")}
        if form.get("ProductDescription.1") != "Linux/UNIX":
            return (
                400,
                "<Response><Errors><Error><Code>InvalidParameterValue</Code></Error></Errors></Response>",
                {},
            )
        rows = [r for r in AWS_SPOT_ROWS if not types or r[1] in types]
        start = int(form.get("NextToken") or 0)
        page = rows[start : start + self.page_size]
        nxt = start + self.page_size
        items = "".join(
            f"<item><instanceType>{t}</instanceType><productDescription>Linux/UNIX</productDescription>"
            f"<spotPrice>{p}</spotPrice><timestamp>{ts.replace('+00:00', '.000Z')}</timestamp>"
            f"<availabilityZone>{ZONE_NAMES[z]}</availabilityZone><availabilityZoneId>{z}</availabilityZoneId></item>"
            for z, t, p, ts in page
        )
        token = f"<nextToken>{nxt}</nextToken>" if nxt < len(rows) else "<nextToken/>"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            f"<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><spotPriceHistorySet>{items}"
            f"</spotPriceHistorySet>{token}</DescribeSpotPriceHistoryResponse>"
        )
        return 200, xml, {"Content-Type": "text/xml;charset=UTF-8"}

    def _get_products(self, body: Any) -> Reply:
        if not isinstance(body, dict) or body.get("ServiceCode") != "AmazonEC2":
            return 400, {"__type": "InvalidParameterException", "Message": "Input ServiceCode is invalid"}, {}
        filters = {f["Field"]: f["Value"] for f in body.get("Filters", [])}
        items = [
            price_list_item(region, itype, usd)
            for (region, itype), usd in sorted(AWS_ONDEMAND.items())
            if filters.get("instanceType") in (None, itype)
        ]
        # A Windows row the filter would have excluded on the real API; the feed must skip it too.
        items.append(price_list_item("us-east-1", "p3.2xlarge", "3.6440000000", operatingSystem="Windows"))
        start = int(body.get("NextToken") or 0)
        page = items[start : start + self.page_size]
        reply: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": page}
        if start + self.page_size < len(items):
            reply["NextToken"] = str(start + self.page_size)
        return 200, reply, {"Content-Type": "application/x-amz-json-1.1"}


def money(usd: float) -> dict[str, Any]:
    units = int(usd)
    return {"currencyCode": "USD", "units": str(units), "nanos": round((usd - units) * 1e9)}


def sku(
    sku_id: str, description: str, group: str, usage: str, unit: str, usd: float, regions: list[str]
) -> dict[str, Any]:
    return {
        "name": f"services/6F81-5844-456A/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": group,
            "usageType": usage,
        },
        "serviceRegions": regions,
        "pricingInfo": [
            {
                "summary": "",
                "pricingExpression": {
                    "usageUnit": unit,
                    "displayQuantity": 1,
                    "tieredRates": [{"startUsageAmount": 0, "unitPrice": money(usd)}],
                    "usageUnitDescription": "hour" if unit == "h" else "gibibyte hour",
                    "baseUnit": "s" if unit == "h" else "By.s",
                    "baseUnitConversionFactor": 3600 if unit == "h" else 3865470566400,
                    "baseUnitDescription": "second" if unit == "h" else "byte second",
                },
                "aggregationInfo": {
                    "aggregationLevel": "ACCOUNT",
                    "aggregationInterval": "DAILY",
                    "aggregationCount": 1,
                },
                "currencyConversionRate": 1,
                "effectiveTime": "2026-11-27T13:29:18.391Z",
            }
        ],
        "serviceProviderName": "Google",
        "geoTaxonomy": {"type": "MULTI_REGIONAL", "regions": regions},
    }


US = ["us-central1", "us-east1", "us-west1"]
GCP_SKUS = [
    sku("2C9A-F4B8-5D36", "Nvidia Tesla V100 GPU running in Americas", "GPU", "OnDemand", "h", 2.48, US),
    sku(
        "9A92-C6A1-8F9D",
        "Spot Preemptible Nvidia Tesla V100 GPU running in Americas",
        "GPU",
        "Preemptible",
        "h",
        0.744,
        US,
    ),
    sku(
        "2D4C-8E39-2A63",
        "Commitment v1: Nvidia Tesla V100 GPU running in Americas for 1 Year",
        "GPU",
        "Commit1Yr",
        "h",
        1.562,
        US,
    ),
    sku(
        "2E27-4F75-95CD",
        "N1 Predefined Instance Core running in Americas",
        "N1Standard",
        "OnDemand",
        "h",
        0.031611,
        US,
    ),
    sku(
        "6C71-E10B-E2C4",
        "N1 Predefined Instance Ram running in Americas",
        "N1Standard",
        "OnDemand",
        "GiBy.h",
        0.004237,
        US,
    ),
    sku(
        "1A6A-7A11-9D11",
        "Spot Preemptible N1 Predefined Instance Core running in Americas",
        "N1Standard",
        "Preemptible",
        "h",
        0.00698,
        US,
    ),
    sku(
        "1B1B-2C3D-4E5F",
        "Spot Preemptible N1 Predefined Instance Ram running in Americas",
        "N1Standard",
        "Preemptible",
        "GiBy.h",
        0.000936,
        US,
    ),
    sku(
        "8A0C-1B2D-3E4F",
        "Nvidia Tesla V100 GPU attached to Spot Preemptible VMs running in Virtual Workstation",
        "GPU",
        "Preemptible",
        "h",
        0.99,
        US,
    ),
]


class FakeBillingCatalog(Slow):
    page_size = 3

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        gate = self.gate()
        if gate is not None:
            return gate
        if not headers.get("authorization", "").startswith("Bearer "):
            return (
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request is missing required authentication credential.",
                        "status": "UNAUTHENTICATED",
                    }
                },
                {},
            )
        if path != "/v1/services/6F81-5844-456A/skus" or method != "GET":
            return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, {}
        start = int(query.get("pageToken") or 0)
        page = GCP_SKUS[start : start + self.page_size]
        nxt = start + self.page_size
        return 200, {"skus": page, "nextPageToken": str(nxt) if nxt < len(GCP_SKUS) else ""}, {}


def retail_item(
    sku_name: str, arm_sku: str, region: str, price: float, product: str, meter: str
) -> dict[str, Any]:
    return {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": region,
        "location": {"eastus": "US East", "westus2": "US West 2"}.get(region, region),
        "effectiveStartDate": "2024-06-01T00:00:00Z",
        "meterId": "2d3b2a39-2a8f-5b95-a5f5-57b0b0b1d1f0",
        "meterName": meter,
        "productId": "DZH318Z0BQ5B",
        "skuId": "DZH318Z0BQ5B/00TG",
        "productName": product,
        "skuName": sku_name,
        "serviceName": "Virtual Machines",
        "serviceId": "DZH313Z7MMC8",
        "serviceFamily": "Compute",
        "unitOfMeasure": "1 Hour",
        "type": "Consumption",
        "isPrimaryMeterRegion": True,
        "armSkuName": arm_sku,
    }


AZURE_ITEMS = [
    retail_item("NC6s v3", "Standard_NC6s_v3", "eastus", 3.06, "Virtual Machines NCSv3 Series", "NC6s v3"),
    retail_item(
        "NC6s v3 Spot", "Standard_NC6s_v3", "eastus", 0.3213, "Virtual Machines NCSv3 Series", "NC6s v3 Spot"
    ),
    retail_item(
        "NC6s v3 Low Priority",
        "Standard_NC6s_v3",
        "eastus",
        0.612,
        "Virtual Machines NCSv3 Series",
        "NC6s v3 Low Priority",
    ),
    retail_item(
        "NC6s v3", "Standard_NC6s_v3", "eastus", 3.68, "Virtual Machines NCSv3 Series Windows", "NC6s v3"
    ),
    retail_item("NC6s v3", "Standard_NC6s_v3", "westus2", 3.06, "Virtual Machines NCSv3 Series", "NC6s v3"),
    retail_item(
        "NC6s v3 Spot", "Standard_NC6s_v3", "westus2", 0.2943, "Virtual Machines NCSv3 Series", "NC6s v3 Spot"
    ),
]


class FakeRetailPrices(Slow):
    page_size = 2

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        gate = self.gate()
        if gate is not None:
            return gate
        if path != "/api/retail/prices" or method != "GET":
            return 404, {"Message": "No HTTP resource was found that matches the request URI."}, {}
        expression = query.get("$filter", "")
        if expression and not re.fullmatch(r"(\w+ eq '[^']*')( and \w+ eq '[^']*')*", expression):
            return 400, {"Error": {"Code": "Invalid OData parameters", "Message": "Invalid $filter"}}, {}
        wanted = dict(re.findall(r"(\w+) eq '([^']*)'", expression))
        items = [
            i for i in AZURE_ITEMS if all(str(i.get(k)) == v for k, v in wanted.items() if k != "priceType")
        ]
        skip = int(query.get("$skip") or 0)
        page = items[skip : skip + self.page_size]
        nxt = skip + self.page_size
        link = None
        if nxt < len(items):
            link = (
                f"{self.url}/api/retail/prices?api-version=2023-01-01-preview"
                f"&$filter={quote(expression)}&$skip={nxt}"
            )
        return (
            200,
            {
                "BillingCurrency": "USD",
                "CustomerEntityId": "Default",
                "CustomerEntityType": "Retail",
                "Items": page,
                "NextPageLink": link,
                "Count": len(page),
            },
            {},
        )
