"""Live prices: the pure merge, the TTL cache's failure handling, and each feed against its fake API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from cloud_factories import aws_session
from fakes.price_servers import FakeAwsPrices, FakeBillingCatalog, FakeRetailPrices

from ray_multicloud.pricing.aws_feed import AwsPriceFeed
from ray_multicloud.pricing.azure_feed import AzurePriceFeed
from ray_multicloud.pricing.gcp_feed import GcpPriceFeed
from ray_multicloud.pricing.live import LivePrices, PriceQuote, merge
from ray_multicloud.types import CapacityType, Offer

SPOT, OD = CapacityType.SPOT, CapacityType.ON_DEMAND
NOW = 1_800_000_000.0


def offer(
    zone: str = "use1-az1", capacity: CapacityType = SPOT, price: float = 1.0, itype: str = "p3.2xlarge"
) -> Offer:
    return Offer("aws", "us-east-1", zone, itype, "V100", 1, 8, 61, capacity, price, 3.06, source="catalog")


def quote(
    zone: str = "use1-az1",
    capacity: CapacityType = SPOT,
    price: float = 0.9,
    age_s: float = 0,
    stale: bool = False,
) -> PriceQuote:
    return PriceQuote(
        "aws", "us-east-1", zone, "p3.2xlarge", capacity, price, NOW - age_s, "live:test", stale
    )


@pytest.mark.parametrize(
    ("offers", "quotes", "want_prices", "want_stale", "notes"),
    [
        ([offer()], [], [1.0], [False], 0),  # no quote: catalog price stays
        ([offer()], [quote(price=0.9)], [0.9], [False], 0),  # zonal quote
        (
            [offer("use1-az1"), offer("use1-az2")],
            [quote("", price=0.8)],
            [0.8, 0.8],
            [False, False],
            0,
        ),  # regional
        ([offer()], [quote("", price=0.8), quote(price=0.7)], [0.7], [False], 0),  # zonal beats regional
        (
            [offer()],
            [quote(price=0.9, age_s=60), quote(price=0.6, age_s=5)],
            [0.6],
            [False],
            0,
        ),  # newest wins
        ([offer()], [quote(price=0.9, stale=True)], [0.9], [True], 1),  # feed failed: kept, marked
        ([offer()], [quote(price=0.9, age_s=7200)], [0.9], [True], 1),  # too old: kept, marked
        ([offer()], [quote(price=0.0)], [1.0], [False], 0),  # a zero price is no price
        ([offer(capacity=OD, price=3.06)], [quote(capacity=OD, price=3.2)], [3.2], [False], 0),
        ([offer(itype="g5.xlarge")], [quote()], [1.0], [False], 0),  # other machine
    ],
)
def test_merge(
    offers: list[Offer],
    quotes: list[PriceQuote],
    want_prices: list[float],
    want_stale: list[bool],
    notes: int,
) -> None:
    result = merge(offers, quotes, now=NOW, max_age_s=3600)
    assert [o.price_per_hour for o in result.offers] == want_prices
    assert [o.stale for o in result.offers] == want_stale
    assert len(result.notes) == notes
    for before, after in zip(offers, result.offers, strict=True):
        if after.price_per_hour != before.price_per_hour:
            assert after.as_of is not None and after.source == "live:test"


def test_merge_on_demand_quote_updates_the_spot_offers_reference_price() -> None:
    (spot,) = merge([offer()], [quote(capacity=OD, price=3.5)], now=NOW, max_age_s=3600).offers
    assert spot.price_per_hour == 1.0 and spot.ondemand_price_per_hour == 3.5 and spot.as_of is None


def test_merge_notes_name_offer_and_age() -> None:
    result = merge([offer()], [quote(age_s=3 * 3600)], now=NOW, max_age_s=3600)
    assert result.notes == (
        "aws/us-east-1/use1-az1/p3.2xlarge/spot: price $0.9000/h is 180 min old (older than 60 min)",
    )
    assert (result.live, result.stale) == (1, 1)


class ScriptedFeed:
    def __init__(self, name: str, answers: list[object]) -> None:
        self.name = name
        self.answers = answers
        self.calls = 0

    def fetch(self, now: float) -> list[PriceQuote]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, threading.Event):
            answer.wait(5)
            return []
        return answer  # type: ignore[return-value]


def test_cache_keeps_last_prices_as_stale_when_a_feed_fails_and_recovers() -> None:
    feed = ScriptedFeed("aws", [[quote(price=0.9)], OSError("HTTP 503"), [quote(price=0.7)]])
    cache = LivePrices([feed], ttl_s=300, max_age_s=3600)
    (status,) = cache.refresh(NOW)
    assert status.quotes == 1 and not status.stale
    assert cache.refresh(NOW + 10)[0].fetched_at == NOW and feed.calls == 1  # within the TTL: no fetch
    (status,) = cache.refresh(NOW + 300)
    assert status.stale and "HTTP 503" in status.error and status.fetched_at == NOW
    (o,) = cache.overlay([offer()], NOW + 300).offers
    assert o.price_per_hour == 0.9 and o.stale
    cache.refresh(NOW + 600)
    (o,) = cache.overlay([offer()], NOW + 600).offers
    assert o.price_per_hour == 0.7 and not o.stale


def test_cache_times_out_a_hanging_feed() -> None:
    release = threading.Event()
    slow = ScriptedFeed("gcp", [[quote(price=0.9)], release])
    cache = LivePrices([slow], ttl_s=0, timeout_s=0.2)
    cache.refresh(NOW)
    (status,) = cache.refresh(NOW + 1)
    release.set()
    assert status.stale and "timed out" in status.error
    assert cache.quotes()[0].stale


# -- feeds against their fake APIs --------------------------------------------------------------------


@pytest.fixture
def aws_prices() -> Iterator[FakeAwsPrices]:
    with FakeAwsPrices() as fake:
        yield fake


def test_aws_feed_spot_history_and_on_demand(aws_prices: FakeAwsPrices) -> None:
    feed = AwsPriceFeed(
        regions=["us-east-1"],
        instance_types=["p3.2xlarge"],
        endpoint_url=aws_prices.url,
        pricing_endpoint_url=aws_prices.url,
        session=aws_session(),
    )
    quotes = {(q.zone, q.capacity): q for q in feed.fetch(NOW)}
    assert quotes[("use1-az1", SPOT)].price_per_hour == 3.06
    assert quotes[("use1-az2", SPOT)].price_per_hour == 0.918  # the newer of two rows
    assert quotes[("", OD)].price_per_hour == 3.06  # Linux only: the Windows row is skipped
    assert len(quotes) == 5
    assert quotes[("use1-az6", SPOT)].as_of == pytest.approx(1654031880.0)  # the API's timestamp
    pages = [r for r in aws_prices.requests if "DescribeSpotPriceHistory" in str(r.body)]
    assert len(pages) == 3  # NextToken paging


def test_aws_feed_over_the_shipped_catalog(aws_prices: FakeAwsPrices) -> None:
    from ray_multicloud.pricing import load_catalog

    feed = AwsPriceFeed(
        regions=["us-east-1"],
        instance_types=["g5.xlarge"],
        endpoint_url=aws_prices.url,
        pricing_endpoint_url=aws_prices.url,
        session=aws_session(),
    )
    offers = [
        o
        for o in load_catalog().offers
        if o.cloud == "aws" and o.instance_type == "g5.xlarge" and o.region == "us-east-1"
    ]
    result = merge(offers, feed.fetch(NOW), now=NOW, max_age_s=10**10)
    spot = {o.zone: o for o in result.offers if o.capacity is SPOT}
    assert (
        spot["use1-az2"].price_per_hour == 0.3387 and spot["use1-az2"].source == "live:aws-spot-price-history"
    )
    assert spot["use1-az5"].price_per_hour == 0.3382 and spot["use1-az4"].price_per_hour == 0.3477
    assert not spot["use1-az1"].source.startswith("live:")  # no quote for that zone: the catalog's price
    assert all(o.ondemand_price_per_hour == 1.006 for o in result.offers)
    ondemand = [o for o in result.offers if o.capacity is OD]
    assert result.live == 3 + len(ondemand)  # three zonal spot quotes + every zone's on-demand offer
    assert all(o.price_per_hour == 1.006 and o.source == "live:aws-pricing-api" for o in ondemand)


def test_gcp_feed_adds_host_and_gpu_skus() -> None:
    with FakeBillingCatalog() as fake:
        offers = [
            replace(
                offer(),
                cloud="gcp",
                region="us-central1",
                zone="us-central1-a",
                instance_type="n1-standard-8+V100",
                vcpus=8,
                memory_gib=30,
                capacity=cap,
            )
            for cap in (SPOT, OD)
        ]
        feed = GcpPriceFeed(offers=offers, endpoint=fake.url, token=lambda: "fake-token")
        quotes = {q.capacity: q.price_per_hour for q in feed.fetch(NOW)}
        assert quotes[SPOT] == pytest.approx(8 * 0.00698 + 30 * 0.000936 + 0.744)
        assert quotes[OD] == pytest.approx(8 * 0.031611 + 30 * 0.004237 + 2.48)
        assert all(r.headers["authorization"] == "Bearer fake-token" for r in fake.requests)
        assert len(fake.requests) == 3  # pageToken paging


def test_azure_feed_linux_spot_and_pay_as_you_go() -> None:
    with FakeRetailPrices() as fake:
        feed = AzurePriceFeed(
            vm_sizes=["Standard_NC6s_v3"], regions=["eastus"], endpoint=f"{fake.url}/api/retail/prices"
        )
        quotes = {(q.region, q.capacity): q.price_per_hour for q in feed.fetch(NOW)}
        assert quotes == {("eastus", SPOT): 0.3213, ("eastus", OD): 3.06}
        assert len(fake.requests) == 3  # NextPageLink paging
        assert "armSkuName eq 'Standard_NC6s_v3'" in fake.requests[0].query["$filter"]


def test_feed_failure_reaches_the_cache_as_stale() -> None:
    with FakeRetailPrices() as fake:
        feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], endpoint=f"{fake.url}/api/retail/prices")
        cache = LivePrices([feed], ttl_s=0)
        assert not cache.refresh(NOW)[0].stale
        fake.fail = True
        (status,) = cache.refresh(NOW + 1)
        assert status.stale and "503" in status.error and status.quotes == 4


def test_build_feeds_names_each_feed_after_its_cloud_entry() -> None:
    from ray_multicloud.pricing.feeds import build_feeds, drivers_of, endpoints_from_clouds

    clouds = {
        "aws-east": {"driver": "aws", "prices_endpoint": "http://127.0.0.1:1"},
        "gcp": {"project": "p"},
        "onprem": {"driver": "private"},
    }
    offers = [
        replace(offer(), cloud="aws-east"),
        replace(offer(), cloud="gcp", region="us-central1", zone="", instance_type="a2-highgpu-1g"),
        replace(offer(), cloud="onprem"),
    ]
    built = build_feeds(offers, endpoints_from_clouds(clouds), drivers_of(clouds))
    assert sorted(f.name for f in built.feeds) == ["aws-east", "gcp"]
    aws_feed = next(f for f in built.feeds if f.name == "aws-east")
    assert isinstance(aws_feed, AwsPriceFeed) and aws_feed.cloud == "aws-east"
    assert aws_feed.regions == ("us-east-1",) and aws_feed.instance_types == ("p3.2xlarge",)
