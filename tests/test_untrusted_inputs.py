"""Simulator traces, demand traces and price-feed replies are untrusted input (issue 13, finding 9).

Every one ends in the project's own error naming the file (``TraceError``) or the feed (a failed,
stale feed whose status says what the reply was), or in a sane value: never a traceback, a
MemoryError, or a NaN/Infinity/1e308 price reaching an offer; duplicate demand minutes are an error,
not summed. Property-based (``hypothesis``) over arbitrary bytes and JSON as well as named cases.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from fakes._http import FakeApi, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ray_multicloud.pricing._http import urllib_get_json
from ray_multicloud.pricing.azure_feed import AzurePriceFeed
from ray_multicloud.pricing.live import MAX_QUOTE_PRICE, LivePrices, PriceQuote, merge
from ray_multicloud.sim.serving import MAX_SECONDS, load_demand
from ray_multicloud.sim.traces import MAX_COUNT, TraceError, load_traces, read_zone_file
from ray_multicloud.types import CapacityType, Offer

NOW = 1_795_000_000.0
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# --------------------------------------------------------------------------- spot traces

GOOD_TRACE = {"metadata": {"gap_seconds": 600}, "data": [1, 0, 1], "prices": [0.9, 0.9, 1.1]}

BAD_TRACES: dict[str, bytes] = {
    "not UTF-8": b'{"metadata": {"gap_seconds": 600}, "data": [1], "x": "\xff\xfe"}',
    "100k-deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "count 10**20": json.dumps({**GOOD_TRACE, "data": [10**20, 0, 1]}).encode(),
    "count 1e20": json.dumps({**GOOD_TRACE, "data": [1e20, 0, 1]}).encode(),
    "count above the cap": json.dumps({**GOOD_TRACE, "data": [MAX_COUNT + 1, 0, 1]}).encode(),
    "gap 1e-300": json.dumps({**GOOD_TRACE, "metadata": {"gap_seconds": 1e-300}}).encode(),
    "gap 1e400": b'{"metadata": {"gap_seconds": 1e400}, "data": [1]}',
    "gap NaN": b'{"metadata": {"gap_seconds": NaN}, "data": [1]}',
    "price NaN": b'{"metadata": {"gap_seconds": 600}, "data": [1], "prices": [NaN]}',
    "price Infinity": b'{"metadata": {"gap_seconds": 600}, "data": [1], "prices": [Infinity]}',
    "price 1e308": b'{"metadata": {"gap_seconds": 600}, "data": [1], "prices": [1e308]}',
    "a 5000-digit integer": b'{"metadata": {"gap_seconds": 600}, "data": [' + b"9" * 5000 + b"]}",
}


@pytest.mark.parametrize("body", BAD_TRACES.values(), ids=list(BAD_TRACES))
def test_a_bad_trace_file_is_a_trace_error_naming_it(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "us-east-1a_v100_1.json"
    path.write_bytes(body)
    with pytest.raises(TraceError) as info:
        load_traces([tmp_path])
    assert str(path) in str(info.value)


def test_the_good_trace_loads(tmp_path: Path) -> None:
    (tmp_path / "us-east-1a_v100_1.json").write_text(json.dumps(GOOD_TRACE))
    traces = load_traces([tmp_path])
    assert traces.counts.tolist() == [[1, 0, 1]] and traces.gap_seconds == 600


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@PROPERTY
@given(field=st.sampled_from(["metadata", "data", "prices", "gap"]), value=JSON)
def test_any_trace_json_loads_sanely_or_is_a_trace_error(tmp_path: Path, field: str, value: Any) -> None:
    body: dict[str, Any] = json.loads(json.dumps(GOOD_TRACE))
    if field == "gap":
        body["metadata"]["gap_seconds"] = value
    else:
        body[field] = value
    path = tmp_path / "zone_a.json"
    path.write_text(json.dumps(body))  # json.dumps writes NaN/Infinity tokens for float specials
    try:
        zone = read_zone_file(path)
    except TraceError as exc:
        assert str(path) in str(exc)
        return
    assert 1 <= zone.gap <= 86_400 and zone.data and all(0 <= v <= MAX_COUNT for v in zone.data)
    assert zone.prices is None or all(math.isfinite(p) and 0 < p <= 10_000 for p in zone.prices)


@PROPERTY
@given(body=st.binary(max_size=200))
def test_any_bytes_as_a_trace_file(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "zone_b.json"
    path.write_bytes(body)
    with contextlib.suppress(TraceError):  # a TraceError is a fine answer; anything else fails the test
        read_zone_file(path)


# --------------------------------------------------------------------------- demand traces

MINUTES = "Time (min),Requests\n"
SECONDS = "second,requests,total_tokens\n"

BAD_DEMAND: dict[str, tuple[bytes, str]] = {
    "not UTF-8": (MINUTES.encode() + b"0,\xff\xfe\n", "not UTF-8"),
    "a NUL byte": (MINUTES.encode() + b"0,1\x00\n", "line"),
    "minute inf": ((MINUTES + "inf,5\n").encode(), "minute"),
    "minute 1e20": ((MINUTES + "1e20,5\n").encode(), "minute"),
    "minute 1.5": ((MINUTES + "1.5,5\n").encode(), "minute"),
    "minute negative": ((MINUTES + "-1,5\n").encode(), "minute"),
    "a duplicate minute": ((MINUTES + "0,5\n1,5\n1,7\n").encode(), "minute 1 again (first on line 3)"),
    "count 1e20": ((MINUTES + "0,1e20\n").encode(), "request count"),
    "count NaN": ((MINUTES + "0,nan\n").encode(), "request count"),
    "seconds over years 0001-9999": (
        (SECONDS + "0001-01-01 00:00:00,1,5\n9999-12-31 23:59:59,1,5\n").encode(),
        "days after",
    ),
    "mixed time zones": (
        (SECONDS + "2023-11-16 18:17:03,1,5\n2023-11-16 18:17:04+00:00,1,5\n").encode(),
        "time zone",
    ),
    "a duplicate second": (
        (SECONDS + "2023-11-16 18:17:03,1,5\n2023-11-16 18:17:03,2,5\n").encode(),
        "again",
    ),
}


@pytest.mark.parametrize(("body", "needle"), BAD_DEMAND.values(), ids=list(BAD_DEMAND))
def test_a_bad_demand_file_is_a_trace_error_naming_it(tmp_path: Path, body: bytes, needle: str) -> None:
    path = tmp_path / "demand.csv"
    path.write_bytes(body)
    with pytest.raises(TraceError) as info:
        load_demand(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_good_demand_files_load(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(MINUTES + "0,60\n2,120\n")
    assert load_demand(path).rps.tolist() == [1.0, 0.0, 2.0]  # per-minute counts / 60; minute 1 absent
    path.write_text(SECONDS + "2023-11-16 18:17:03+01:00,1,5\n2023-11-16 17:17:05+00:00,3,5\n")
    assert load_demand(path).rps.tolist() == [1.0, 0.0, 3.0]  # the same zone-aware instants


TOKENS = st.sampled_from(
    [
        "0",
        "1",
        "59",
        "1e20",
        "inf",
        "-inf",
        "nan",
        "-1",
        "1.5",
        "",
        "x",
        "1e308",
        "2023-11-16 18:17:03",
        "0001-01-01",
        "9999-12-31T23:59:59+14:00",
        "2023-11-16T18:17:03Z",
    ]
)


@PROPERTY
@given(header=st.sampled_from([MINUTES, SECONDS]), rows=st.lists(st.tuples(TOKENS, TOKENS), max_size=6))
def test_any_demand_rows_load_sanely_or_are_a_trace_error(
    tmp_path: Path, header: str, rows: list[Any]
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(header + "".join(f"{a},{b}\n" for a, b in rows))
    try:
        demand = load_demand(path)
    except TraceError as exc:
        assert str(path) in str(exc)
        return
    assert len(demand.rps) <= MAX_SECONDS + 1
    assert all(math.isfinite(v) and v >= 0 for v in demand.rps)


# --------------------------------------------------------------------------- price feeds


class Canned(FakeApi):
    """Answers every GET with one canned reply."""

    def __init__(self, status: int, payload: Any, content_type: str) -> None:
        super().__init__()
        self.reply: Reply = (status, payload, {"Content-Type": content_type})

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        status, payload, extra = self.reply
        return status, payload, dict(extra)


@pytest.mark.parametrize(
    ("payload", "content_type", "needle"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "text/html", "not JSON"),
        ('{"Items": [{"retailPrice": NaN}]}', "application/json", "not JSON"),
        ("[1, 2, 3]", "application/json", "a JSON list"),
        ("[" * 100_000, "application/json", "not JSON"),
    ],
    ids=["html error page", "NaN", "a list", "deep nesting"],
)
def test_a_reply_that_is_not_the_price_list_fails_the_feed_clearly(
    payload: str, content_type: str, needle: str
) -> None:
    with Canned(200, payload, content_type) as fake:
        feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], endpoint=f"{fake.url}/api/retail/prices")
        (status,) = LivePrices([feed], ttl_s=0).refresh(NOW)
    assert status.stale and needle in status.error and "/api/retail/prices" in status.error
    assert "AttributeError" not in status.error and "KeyError" not in status.error
    with Canned(200, payload, content_type) as fake, pytest.raises(OSError, match=needle):
        urllib_get_json()(f"{fake.url}/x?token=secret", {})


def test_a_reply_of_the_wrong_shape_says_so() -> None:
    def get(url: str, headers: Any) -> Any:
        return {"Items": "Standard_NC6s_v3"}  # a string where the API has a list of objects

    feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], get_json=get)
    (status,) = LivePrices([feed], ttl_s=0).refresh(NOW)
    assert status.stale and "did not have the price API's shape" in status.error


class Fixed:
    name = "fixed"

    def __init__(self, quotes: list[PriceQuote]) -> None:
        self.quotes = quotes

    def fetch(self, now: float) -> list[PriceQuote]:
        return self.quotes


def quote(price: float) -> PriceQuote:
    return PriceQuote("aws", "us-east-1", "use1-az1", "p3.2xlarge", CapacityType.SPOT, price, NOW, "test")


OFFER = Offer(
    cloud="aws",
    region="us-east-1",
    zone="use1-az1",
    instance_type="p3.2xlarge",
    accelerator="V100",
    accelerator_count=1,
    vcpus=8,
    memory_gib=61,
    capacity=CapacityType.SPOT,
    price_per_hour=0.918,
    ondemand_price_per_hour=3.06,
)


@pytest.mark.parametrize("price", [math.nan, math.inf, 1e308, -1.0, 0.0, MAX_QUOTE_PRICE * 2])
def test_unusable_quoted_prices_never_reach_an_offer(price: float, caplog: pytest.LogCaptureFixture) -> None:
    cache = LivePrices([Fixed([quote(price)])], ttl_s=0)
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.pricing.live"):
        cache.refresh(NOW)
    (offer,) = cache.overlay([OFFER], NOW).offers
    assert offer.price_per_hour == 0.918  # the catalog price stays
    (merged,) = merge([OFFER], [quote(price)], now=NOW, max_age_s=3600).offers
    assert merged.price_per_hour == 0.918
    if price > 0 or math.isnan(price):
        assert any("unusable price" in r.getMessage() for r in caplog.records)


SPECIALS = [math.nan, math.inf, 1e308, -3.0, 0.29, "0.29", "Standard_NC6s_v3"]
ITEM_VALUES = st.one_of(JSON, st.sampled_from(SPECIALS))
ITEMS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "retailPrice": ITEM_VALUES,
            "armRegionName": ITEM_VALUES,
            "armSkuName": ITEM_VALUES,
            "productName": ITEM_VALUES,
            "skuName": ITEM_VALUES,
            "type": st.sampled_from(["Consumption", 1]),
            "unitOfMeasure": st.sampled_from(["1 Hour", None]),
        },
    ),
    max_size=4,
)


@PROPERTY
@given(page=st.one_of(JSON, st.fixed_dictionaries({"Items": ITEMS}, optional={"NextPageLink": ITEM_VALUES})))
def test_any_retail_prices_page_never_breaks_the_cache(page: Any) -> None:
    calls = 0

    def get(url: str, headers: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 3:
            return {"Items": []}
        return page

    feed = AzurePriceFeed(vm_sizes=["Standard_NC6s_v3"], get_json=get, max_pages=3)
    cache = LivePrices([feed], ttl_s=0)
    (status,) = cache.refresh(NOW)
    for q in cache.quotes():
        assert math.isfinite(q.price_per_hour) and 0 < q.price_per_hour <= MAX_QUOTE_PRICE
    assert status.error == "" or status.stale


# --------------------------------------------------------------------------- the price board file


@PROPERTY
@given(board=JSON)
def test_any_price_board_file_is_read_sanely(tmp_path: Path, board: Any) -> None:
    from ray_multicloud.pricing.board import PriceBoard

    (tmp_path / "prices.json").write_text(json.dumps(board))
    for price, as_of in PriceBoard(tmp_path).read().values():
        assert math.isfinite(price) and 0 < price <= MAX_QUOTE_PRICE and math.isfinite(as_of)


@pytest.mark.parametrize(
    "text",
    ['{"aws/x": 5}', '{"aws/x": {"price": NaN, "as_of": 1}}', '{"aws/x": {"price": 1e308, "as_of": 1}}',
     '{"aws/x": {"price": "cheap", "as_of": 1}}', "[1, 2]", '{"aws/x": {"price": 1.5}}'],
)
def test_a_bad_price_board_entry_is_left_out(tmp_path: Path, text: str) -> None:
    from ray_multicloud.pricing.board import PriceBoard

    (tmp_path / "prices.json").write_text(text)
    assert PriceBoard(tmp_path).read() == {}
