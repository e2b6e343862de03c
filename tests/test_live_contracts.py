"""``pricing/live.py``, ``show.py``, ``feeds.py`` and ``_http.py`` by their docstrings: which quotes
are usable, how ``merge`` overlays them (zonal before regional, the newest, on-demand updating the
spot offers' reference, stale and too-old quotes applied but marked with a note), the TTL cache's
refresh and failure messages, the age column of ``prices --live``, which feed each cloud entry
gets, and the JSON replies the REST feeds refuse. Fake feeds in memory; values by hand."""

from __future__ import annotations

import http.server
import logging
import sys
import threading
import typing
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ray_multicloud.pricing import feeds as feeds_mod
from ray_multicloud.pricing._http import parse_json_object, urllib_get_json
from ray_multicloud.pricing.azure_feed import DEFAULT_ENDPOINT as AZURE_DEFAULT
from ray_multicloud.pricing.azure_feed import AzurePriceFeed
from ray_multicloud.pricing.feeds import LIVE_DRIVERS, Feeds, build_feeds, drivers_of, endpoints_from_clouds
from ray_multicloud.pricing.gcp_feed import DEFAULT_ENDPOINT as GCP_DEFAULT
from ray_multicloud.pricing.gcp_feed import GcpPriceFeed
from ray_multicloud.pricing.live import MAX_QUOTE_PRICE, FeedStatus, LivePrices, PriceQuote, merge, usable
from ray_multicloud.pricing.show import live_overlay, price_source
from ray_multicloud.types import CapacityType, Offer

SPOT, OD = CapacityType.SPOT, CapacityType.ON_DEMAND
NOW = 1_000_000.0
LOGGER = "ray_multicloud.pricing.live"


def offer(zone: str = "z1", capacity: CapacityType = SPOT, price: float = 1.0, region: str = "r") -> Offer:
    return Offer("aws", region, zone, "p3", "V100", 1, 8, 61, capacity, price, 3.0, source="catalog")


def quote(zone: str = "z1", capacity: CapacityType = SPOT, price: float = 0.5, as_of: float = NOW,
          stale: bool = False, region: str = "r") -> PriceQuote:
    return PriceQuote("aws", region, zone, "p3", capacity, price, as_of, f"live:{price}", stale)


# --- usable and merge --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "as_of", "ok"),
    [
        (0.01, NOW, True), (MAX_QUOTE_PRICE, NOW, True), (MAX_QUOTE_PRICE + 0.01, NOW, False),
        (0.0, NOW, False), (-1.0, NOW, False), (float("nan"), NOW, False), (float("inf"), NOW, False),
        (1.0, float("inf"), False), (1.0, float("nan"), False), (1, 0, True),
    ],
)  # fmt: skip
def test_a_quote_is_usable_with_a_finite_price_in_range_at_a_finite_time(
    price: float, as_of: float, ok: bool
) -> None:
    assert usable(quote(price=price, as_of=as_of)) is ok


def test_merge_sets_price_time_and_source_and_counts() -> None:
    result = merge([offer()], [quote(price=0.5, as_of=NOW - 10)], now=NOW, max_age_s=3600)
    (o,) = result.offers
    assert (o.price_per_hour, o.as_of, o.source, o.stale) == (0.5, NOW - 10, "live:0.5", False)
    assert o.ondemand_price_per_hour == 3.0  # no on-demand quote: the reference stays
    assert (result.live, result.stale, result.notes) == (1, 0, ())


def test_merge_prefers_the_zonal_quote_then_the_regional_and_never_another_zones() -> None:
    offers = [offer("z1"), offer("z2"), offer(""), offer("z1", region="other")]
    quotes = [quote("z1", price=0.4), quote("", price=0.6), quote("z3", price=0.1)]
    got = [o.price_per_hour for o in merge(offers, quotes, now=NOW, max_age_s=3600).offers]
    assert got == [0.4, 0.6, 0.6, 1.0]


def test_merge_takes_the_newest_usable_quote_of_a_key() -> None:
    quotes = [quote(price=0.3, as_of=NOW - 5), quote(price=0.7, as_of=NOW - 1),
              quote(price=0.2, as_of=NOW - 9),
              quote(price=float("nan"), as_of=NOW)]
    (o,) = merge([offer()], quotes, now=NOW, max_age_s=3600).offers
    assert o.price_per_hour == 0.7 and o.as_of == NOW - 1


def test_an_on_demand_quote_updates_the_spot_offers_reference_without_pricing_it() -> None:
    offers = [offer(capacity=SPOT), offer(capacity=OD, price=3.0)]
    result = merge(offers, [quote("", capacity=OD, price=3.5, as_of=NOW - 100)], now=NOW, max_age_s=3600)
    spot, od = result.offers
    assert (spot.price_per_hour, spot.ondemand_price_per_hour, spot.source, spot.as_of) == (
        1.0, 3.5, "catalog", None)
    assert (od.price_per_hour, od.ondemand_price_per_hour, od.as_of) == (3.5, 3.5, NOW - 100)
    assert result.live == 1  # only the on-demand offer is priced by a quote
    both = merge([offer()], [quote(price=0.9), quote(capacity=OD, price=4.0)], now=NOW,
                 max_age_s=60).offers[0]
    assert (both.price_per_hour, both.ondemand_price_per_hour) == (0.9, 4.0)


def test_an_offer_no_quote_touches_is_returned_as_it_was() -> None:
    o = offer()
    assert merge([o], [quote(zone="z9")], now=NOW, max_age_s=1).offers[0] is o
    od = offer(capacity=OD)
    assert merge([od], [quote(capacity=SPOT)], now=NOW, max_age_s=1).offers[0] is od


def test_stale_and_too_old_quotes_apply_marked_with_a_note() -> None:
    offers = [offer("z1"), offer("z2"), offer("z3"), offer("z4")]
    quotes = [
        quote("z1", price=0.25, as_of=NOW - 1800, stale=True),  # its feed failed
        quote("z2", price=0.125, as_of=NOW - 3600),  # exactly max_age: not too old
        quote("z3", price=1 / 3, as_of=NOW - 3601),  # older than max_age
        quote("z4", price=0.5, as_of=NOW + 60),  # from the future: age < 0, not old
    ]
    result = merge(offers, quotes, now=NOW, max_age_s=3600)
    assert [o.stale for o in result.offers] == [True, False, True, False]
    assert [o.price_per_hour for o in result.offers] == [0.25, 0.125, 1 / 3, 0.5]
    assert result.notes == (
        "aws/r/z1/p3/spot: price $0.2500/h is 30 min old (its feed failed)",
        "aws/r/z3/p3/spot: price $0.3333/h is 60 min old (older than 60 min)",
    )
    assert (result.live, result.stale) == (4, 2)
    odd = merge([offer()], [quote(as_of=NOW - 200)], now=NOW, max_age_s=90).notes
    assert odd == ("aws/r/z1/p3/spot: price $0.5000/h is 3 min old (older than 2 min)",)


# --- the TTL cache -----------------------------------------------------------------------------


class Feed:
    def __init__(self, name: str, quotes: list[PriceQuote]) -> None:
        self.name, self.quotes, self.calls, self.error = name, quotes, [], None
        self.block: threading.Event | None = None

    def fetch(self, now: float) -> list[PriceQuote]:
        self.calls.append(now)
        if self.block is not None:
            self.block.wait(30)
        if self.error is not None:
            raise self.error
        return list(self.quotes)


def test_cache_defaults() -> None:
    cache = LivePrices([])
    assert (cache.ttl_s, cache.max_age_s, cache.timeout_s) == (300.0, 3600.0, 20.0)
    assert cache.refresh(NOW) == [] and cache.quotes() == []


def test_refresh_fetches_a_feed_again_only_once_its_ttl_has_passed() -> None:
    feed = Feed("aws", [quote()])
    cache = LivePrices([feed], ttl_s=100)
    assert cache.refresh(NOW) == [FeedStatus("aws", 1, NOW, False, "")]
    cache.refresh(NOW + 99.5)
    assert feed.calls == [NOW]
    cache.refresh(NOW + 100)  # exactly the TTL: due
    assert feed.calls == [NOW, NOW + 100]
    cache.refresh(NOW + 101, force=True)
    assert feed.calls == [NOW, NOW + 100, NOW + 101]


def test_a_failed_feed_keeps_its_quotes_stale_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    good, bad = Feed("gcp", [quote("g")]), Feed("aws", [quote("a", price=0.75)])
    cache = LivePrices([good, bad], ttl_s=0)
    cache.refresh(NOW)
    bad.error = OSError("connection refused")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        statuses = cache.refresh(NOW + 10)
    assert statuses == [FeedStatus("gcp", 1, NOW + 10, False, ""),
                        FeedStatus("aws", 1, NOW, True, "OSError: connection refused")]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "price feed aws failed (OSError: connection refused); keeping its last prices as stale"
    ]
    assert [(q.zone, q.stale) for q in cache.quotes()] == [("g", False), ("a", True)]
    (o,) = cache.overlay([offer("a")], NOW + 10).offers
    assert o.stale and o.price_per_hour == 0.75
    bad.error = KeyError("SpotPriceHistory")
    (_, shape) = cache.refresh(NOW + 20)
    assert shape.error == ("the reply did not have the price API's shape (KeyError: 'SpotPriceHistory'); "
                           "check the feed's endpoint")
    for exc in (AttributeError("a"), TypeError("t"), IndexError("i"), ValueError("v")):
        bad.error = exc
        assert cache.refresh(NOW + 30)[1].error.startswith(
            f"the reply did not have the price API's shape ({type(exc).__name__}: ")
    bad.error = None
    assert cache.refresh(NOW + 40)[1] == FeedStatus("aws", 1, NOW + 40, False, "")
    assert all(not q.stale for q in cache.quotes())


def test_a_hanging_feed_times_out_by_its_limit() -> None:
    slow = Feed("azure", [quote()])
    slow.block = threading.Event()
    cache = LivePrices([slow], ttl_s=0, timeout_s=0.25)
    try:
        (status,) = cache.refresh(NOW)
    finally:
        slow.block.set()
    assert status == FeedStatus("azure", 0, None, True, "timed out after 0.25s")


def test_unusable_quotes_are_dropped_once_per_fetch_with_an_example(caplog: pytest.LogCaptureFixture) -> None:
    feed = Feed("aws", [quote("z1"), quote("", price=float("nan")), quote("z2", price=0.0)])
    cache = LivePrices([feed], ttl_s=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        (status,) = cache.refresh(NOW)
    assert status.quotes == 1 and [q.zone for q in cache.quotes()] == ["z1"]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "price feed aws: dropped 2 quote(s) with an unusable price (first: aws r p3 spot at nan $/h); "
        "those offers keep their other prices"
    ]
    caplog.clear()
    feed.quotes = [quote(region="", price=-2.0)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        cache.refresh(NOW + 1)
    assert "(first: aws - p3 spot at -2.0 $/h)" in caplog.records[0].getMessage()


def test_overlay_uses_the_caches_max_age() -> None:
    cache = LivePrices([Feed("aws", [quote(as_of=NOW - 61)])], ttl_s=0, max_age_s=60)
    cache.refresh(NOW)
    result = cache.overlay([offer()], NOW)
    assert result.stale == 1
    assert result.notes == ("aws/r/z1/p3/spot: price $0.5000/h is 1 min old (older than 1 min)",)


# --- show ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_s", "text"),
    [(0, "0s"), (-30, "0s"), (119.4, "119s"), (120, "2m"), (150, "2m"), (7199, "120m"), (7200, "2.0h"),
     (9000, "2.5h"), (7381, "2.1h")],  # 7381 s = 2.0503 h
)  # fmt: skip
def test_price_source_says_where_and_how_old(age_s: float, text: str) -> None:
    live = replace(offer(), as_of=NOW - age_s, source="live:aws-spot-price-history")
    assert price_source(live, NOW) == ("live:aws-spot-price-history", text)
    assert price_source(replace(live, stale=True), NOW) == ("live:aws-spot-price-history (stale)", text)


def test_a_catalog_price_has_no_age() -> None:
    assert price_source(offer(), NOW) == ("catalog snapshot", "-")


def test_live_overlay_without_live_clouds_changes_nothing() -> None:
    o = replace(offer(), cloud="local")
    got = live_overlay([o], now=NOW)
    assert got.offers == (o,) and got.statuses == () and got.notes == () and got.now == NOW


def test_live_overlay_notes_a_failed_feed_and_a_skipped_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # the AWS SDK "not installed"
    offers = [replace(offer(), cloud="azure", region="eastus", zone=""), offer()]
    got = live_overlay(offers, endpoints={"azure": "http://127.0.0.1:9"}, timeout_s=10, now=NOW)
    assert [s.name for s in got.statuses] == ["azure"] and got.statuses[0].stale
    assert got.notes[0].startswith("feed azure failed: ") and got.notes[0].endswith("; catalog prices kept")
    assert got.notes[1:] == ("feed aws: boto3 is not installed (pip install 'ray_multicloud[aws]')",)
    assert got.offers == tuple(offers)


# --- feeds -----------------------------------------------------------------------------------


def test_endpoints_and_drivers_of_a_provider_section() -> None:
    clouds = {"aws-east": {"driver": "aws", "prices_endpoint": "https://m"}, "gcp": {"prices_endpoint": ""},
              "azure": {}}
    assert endpoints_from_clouds(clouds) == {"aws-east": "https://m"}
    assert drivers_of(clouds) == {"aws-east": "aws", "gcp": "gcp", "azure": "azure"}
    assert LIVE_DRIVERS == ("aws", "gcp", "azure")
    assert Feeds() == Feeds([], [])


def test_each_public_cloud_entry_gets_its_feed_named_after_it() -> None:
    def on(cloud: str, region: str, itype: str) -> Offer:
        return replace(offer(), cloud=cloud, region=region, instance_type=itype)

    offers = [
        on("west", "westus", "Standard_B"), on("west", "eastus", "Standard_A"),
        on("west", "eastus", "Standard_A"),
        on("gcp", "us-east1", "n1-standard-8+T4"), on("onprem", "dc", "box"),
        on("aws", "us-east-1", "p3"), on("aws", "us-west-2", "g5"), on("aws", "us-east-1", "g5"),
    ]
    built = build_feeds(offers, drivers={"west": "azure", "onprem": "private"})
    assert built.skipped == []
    aws, gcp, west = built.feeds
    assert (aws.name, aws.regions, aws.instance_types) == ("aws", ("us-east-1", "us-west-2"), ("g5", "p3"))
    assert aws._endpoint is None and aws._pricing_endpoint is None
    assert isinstance(gcp, GcpPriceFeed) and gcp.name == "gcp" and gcp.endpoint == GCP_DEFAULT
    assert gcp.offers == (offers[3],)
    assert isinstance(west, AzurePriceFeed)
    assert (west.name, west.cloud, west.vm_sizes, west.regions) == (
        "west", "west", ("Standard_A", "Standard_B"), frozenset({"eastus", "westus"}))
    assert west.endpoint == AZURE_DEFAULT
    mirrors = build_feeds(offers, {"aws": "http://127.0.0.1:1", "west": "https://mirror/api",
                                   "gcp": "https://gcp-mirror.example"},
                          {"west": "azure", "onprem": "private"})
    assert mirrors.feeds[0]._endpoint == mirrors.feeds[0]._pricing_endpoint == "http://127.0.0.1:1"
    assert mirrors.feeds[2].endpoint == "https://mirror/api"
    assert mirrors.feeds[1].endpoint == "https://gcp-mirror.example"
    assert build_feeds([on("onprem", "dc", "box")]).feeds == []


def test_a_missing_sdk_is_skipped_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    built = feeds_mod.build_feeds([replace(offer(), cloud="aws-2")], drivers={"aws-2": "aws"})
    assert built.feeds == [] and built.skipped == [
        "aws-2: boto3 is not installed (pip install 'ray_multicloud[aws]')"
    ]


# --- _http -----------------------------------------------------------------------------------


def test_parse_json_object_returns_the_object_and_refuses_the_rest() -> None:
    assert parse_json_object(b' {"a": [1]} ', "https://x/api") == {"a": [1]}
    with pytest.raises(OSError) as html:
        parse_json_object(b"<html>502 Bad Gateway</html>", "https://x/api", "text/html")
    assert str(html.value).startswith("https://x/api: the reply (text/html) is not JSON (")
    assert str(html.value).endswith(
        "; it starts '<html>502 Bad Gateway</html>': check the endpoint (an error page from a proxy, "
        "or not the price API?)")
    assert html.value.__cause__ is None and html.value.__suppress_context__
    with pytest.raises(OSError) as nan:
        parse_json_object(b'{"p": NaN}', "w")
    assert str(nan.value) == ("w: the reply is not JSON (NaN is not a number JSON allows); it starts "
                              "'{\"p\": NaN}': check the endpoint (an error page from a proxy, or not the "
                              "price API?)")
    for token in (b"Infinity", b"-Infinity"):
        with pytest.raises(OSError, match="is not a number JSON allows"):
            parse_json_object(b'{"p": ' + token + b"}", "w")
    with pytest.raises(OSError) as deep:
        parse_json_object(b"[" * 100_000 + b"]" * 100_000, "w")
    assert str(deep.value).startswith("w: the reply is not JSON (")
    with pytest.raises(OSError) as lst:
        parse_json_object(b"  [1, 2]\n", "w", "application/json")
    assert str(lst.value) == (
        "w: the reply is a JSON list, not the price API's object; it starts '[1, 2]': check the endpoint")
    long = b'["' + b"x" * 200 + b'"]'
    with pytest.raises(OSError) as cut:
        parse_json_object(long, "w")
    first80 = '["' + "x" * 78
    assert f"it starts {first80!r}:" in str(cut.value)


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: typing.ClassVar[list[tuple[str, str | None, str | None]]] = []

    def do_GET(self) -> None:
        _Handler.seen.append((self.path, self.headers.get("Accept"), self.headers.get("X-Token")))
        if self.path.startswith("/badfail"):
            self._reply(500, b"\xffoops")
        elif self.path.startswith("/bare"):
            self._reply(200, b"plain text")
        elif self.path.startswith("/html"):
            self._reply(200, b"<html>proxy error</html>", "text/html")
        elif self.path.startswith("/fail"):
            self._reply(429, b"quota exceeded " + b"y" * 400, "application/json")
        else:
            self._reply(200, b'{"ok": true}', "application/json")

    def _reply(self, code: int, body: bytes, content_type: str | None = None) -> None:
        """``body`` with ``code``, and a Content-Type only when one is given."""
        self.send_response(code)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_get_json_asks_for_json_and_names_the_url_without_its_query(server: str) -> None:
    _Handler.seen.clear()
    get = urllib_get_json(timeout_s=10)
    assert get(f"{server}/ok?x=1", {"X-Token": "t"}) == {"ok": True}
    with pytest.raises(OSError) as err:
        get(f"{server}/fail?secret=1", {"X-Token": "t"})
    assert str(err.value) == f"HTTP 429 from {server}/fail: quota exceeded " + "y" * 285
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert _Handler.seen == [
        ("/ok?x=1", "application/json", "t"), ("/fail?secret=1", "application/json", "t")]
    with pytest.raises(OSError) as two:
        get(f"{server}/fail?a=1?secret=2", {})
    assert str(two.value).startswith(f"HTTP 429 from {server}/fail: ")  # nothing after the first "?"
    with pytest.raises(OSError) as html:
        get(f"{server}/html?key=secret", {})
    assert str(html.value).startswith(f"{server}/html: the reply (text/html) is not JSON (")
    with pytest.raises(OSError) as bare:
        get(f"{server}/bare", {})
    assert str(bare.value).startswith(f"{server}/bare: the reply is not JSON (")  # no content type: none said
    with pytest.raises(OSError) as bad:
        get(f"{server}/badfail", {})
    assert str(bad.value) == f"HTTP 500 from {server}/badfail: \ufffdoops"


def test_get_json_waits_15_seconds_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    waited: list[object] = []

    def urlopen(request: object, timeout: object) -> object:
        waited.append(timeout)
        raise OSError("no network here")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    for get in (urllib_get_json(), urllib_get_json(timeout_s=2.5)):
        with pytest.raises(OSError, match="no network here"):
            get("https://x.example/p", {})
    assert waited == [15.0, 2.5]


def test_an_unusable_quote_does_not_hide_the_quotes_after_it() -> None:
    quotes = [quote("z1", price=float("inf")), quote("z1", price=0.4, as_of=NOW - 1)]
    (o,) = merge([offer()], quotes, now=NOW, max_age_s=3600).offers
    assert o.price_per_hour == 0.4


def test_every_due_feed_is_fetched_at_once_on_a_price_feed_thread() -> None:
    n = 40  # more than any default thread pool's workers (min(32, CPUs + 4))
    barrier = threading.Barrier(n, timeout=20)
    names: list[str] = []

    class Together(Feed):
        def fetch(self, now: float) -> list[PriceQuote]:
            names.append(threading.current_thread().name)
            barrier.wait()  # every feed must be running at the same time to pass
            return [quote(self.name)]

    cache = LivePrices([Together(f"f{i}", []) for i in range(n)], ttl_s=0, timeout_s=30)
    assert all(not s.stale for s in cache.refresh(NOW))
    assert len(names) == n and all(name.startswith("price-feed_") for name in names)


def test_a_reply_that_is_not_utf8_is_refused_showing_its_start() -> None:
    with pytest.raises(OSError) as err:
        parse_json_object(b"\xff\xfe<html>", "w", "text/html")
    assert "it starts '\ufffd\ufffd<html>': check the endpoint" in str(err.value)


def test_a_gcp_entry_of_another_name_gets_a_feed_of_that_name() -> None:
    gcp = replace(offer(), cloud="gcp-eu", region="europe-west4", instance_type="a2-highgpu-1g")
    (feed,) = build_feeds([gcp], drivers={"gcp-eu": "gcp"}).feeds
    assert isinstance(feed, GcpPriceFeed) and feed.name == "gcp-eu"


def test_live_overlay_passes_its_feeds_and_limits_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # What `ray-multicloud prices --live` asks for: the endpoints and drivers it was given go to
    # build_feeds; its age and time limits (defaults 1 h and 20 s, the documented ones) to the cache.
    from ray_multicloud.pricing import show

    seen: dict[str, typing.Any] = {}

    def fake_build(offers: typing.Any, endpoints: typing.Any, drivers: typing.Any) -> Feeds:
        seen["build"] = (list(offers), endpoints, drivers)
        return Feeds(feeds=[], skipped=["gcp: no endpoint"])

    class SpyCache(LivePrices):
        def __init__(self, feeds: typing.Any, **limits: float) -> None:
            seen.setdefault("limits", []).append(limits)
            super().__init__(feeds, **limits)

    monkeypatch.setattr(show, "build_feeds", fake_build)
    monkeypatch.setattr(show, "LivePrices", SpyCache)
    endpoints, drivers = {"aws": "http://127.0.0.1:1"}, {"aws": "aws"}
    o = offer()
    result = show.live_overlay([o], endpoints=endpoints, drivers=drivers, now=NOW)
    assert seen["build"] == ([o], endpoints, drivers)
    assert seen["limits"] == [{"ttl_s": 0, "max_age_s": 3600.0, "timeout_s": 20.0}]
    assert result.offers == (o,) and result.notes == ("feed gcp: no endpoint",)
    show.live_overlay([o], endpoints=endpoints, drivers=drivers, max_age_s=60.0, timeout_s=0.5, now=NOW)
    assert seen["limits"][-1] == {"ttl_s": 0, "max_age_s": 60.0, "timeout_s": 0.5}
