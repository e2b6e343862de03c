"""Contracts of `ray_multicloud.sim.traces`, hand-computed from its docstrings and messages (mutation
testing, issue 12 item 5): every validation's exact message and both edges of every limit, the
zone naming rules, the cut to the shortest trace and its note, the default price, and the cloud a
file's path or region name implies. Pure, no Ray; each expected value is written from the module's
contract, not read off its output."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ray_multicloud.sim.traces import (
    MAX_COUNT,
    MAX_GAP_S,
    MAX_PRICE,
    MIN_GAP_S,
    TraceError,
    TraceSet,
    cloud_of_trace,
    load_traces,
    read_zone_file,
)

FORMAT = '{"metadata": {"gap_seconds": N}, "data": [int, ...], "prices": [float, ...] (optional)}'
TAIL = f". Expected one JSON object per zone: {FORMAT}"


def write(path: Path, body: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body if isinstance(body, str) else json.dumps(body), encoding="utf-8")
    return path


def zone(gap: Any = 60, data: Any = (1, 0, 1), prices: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"gap_seconds": gap},
                            "data": list(data) if isinstance(data, tuple) else data}
    if prices is not None:
        body["prices"] = prices
    return body


def message(path: Path, body: Any) -> str:
    write(path, body)
    with pytest.raises(TraceError) as info:
        read_zone_file(path)
    return str(info.value)


# ----------------------------------------------------------------------------- read_zone_file


def test_limits_are_the_documented_ones() -> None:
    assert (MIN_GAP_S, MAX_GAP_S, MAX_COUNT, MAX_PRICE) == (1.0, 86_400.0, 1_000_000, 10_000.0)


@pytest.mark.parametrize("gap", [1, 1.0, 86_400, 86_400.0, 195])
def test_gap_limits_are_inclusive(tmp_path: Path, gap: float) -> None:
    z = read_zone_file(write(tmp_path / "a.json", zone(gap=gap)))
    assert z.gap == float(gap) and isinstance(z.gap, float)


@pytest.mark.parametrize("gap", [0.999, 86_400.001, 0, -60, True, "60", None])
def test_a_gap_outside_the_limits_is_refused_exactly(tmp_path: Path, gap: Any) -> None:
    path = tmp_path / "a.json"
    assert message(path, zone(gap=gap)) == (
        f"{path}: metadata.gap_seconds must be a positive number of seconds from 1 to 86400, got {gap!r}"
        + TAIL
    )


@pytest.mark.parametrize("body", [{"data": [1]}, {"metadata": {}, "data": [1]},
                                  {"metadata": [60], "data": [1]}, {"metadata": {"gap": 60}, "data": [1]}])
def test_missing_metadata_is_named(tmp_path: Path, body: Any) -> None:
    path = tmp_path / "a.json"
    assert message(path, body) == f'{path}: missing "metadata": {{"gap_seconds": N}}' + TAIL


@pytest.mark.parametrize("data", [[], None, "1,0", {"0": 1}])
def test_missing_or_empty_data_is_named(tmp_path: Path, data: Any) -> None:
    path = tmp_path / "a.json"
    body = zone()
    if data is None:
        del body["data"]
    else:
        body["data"] = data
    assert message(path, body) == f'{path}: missing or empty "data" list' + TAIL


@pytest.mark.parametrize(("i", "v"), [(0, -1), (2, 1_000_001), (1, True), (1, 1.0), (2, "1"), (0, None)])
def test_a_bad_count_names_its_index_and_the_range(tmp_path: Path, i: int, v: Any) -> None:
    path = tmp_path / "a.json"
    data: list[Any] = [1, 1, 1]
    data[i] = v
    assert message(path, zone(data=data)) == (
        f"{path}: data[{i}] is {v!r}; each tick must be a count of spot VMs (a whole number from 0 to "
        "1000000)" + TAIL
    )


def test_counts_zero_and_the_cap_are_valid(tmp_path: Path) -> None:
    z = read_zone_file(write(tmp_path / "a.json", zone(data=[0, MAX_COUNT])))
    assert z.data == [0, 1_000_000] and z.prices is None


@pytest.mark.parametrize(("prices", "got"), [([1.0, 2.0], "2"), ([1.0] * 4, "4"), ([], "0"),
                                             ({"a": 1}, "dict"), ("1.0", "str"), (1.5, "float")])
def test_prices_not_as_long_as_data_are_named(tmp_path: Path, prices: Any, got: str) -> None:
    path = tmp_path / "a.json"
    assert message(path, zone(prices=prices)) == (
        f'{path}: "prices" must be a list as long as "data" (3), got {got}' + TAIL
    )


@pytest.mark.parametrize(("i", "p"), [(0, 0), (1, -0.5), (2, 10_000.001), (1, True), (0, "1"), (2, None)])
def test_a_bad_price_names_its_index_and_the_range(tmp_path: Path, i: int, p: Any) -> None:
    path = tmp_path / "a.json"
    prices: list[Any] = [1.0, 1.0, 1.0]
    prices[i] = p
    assert message(path, zone(prices=prices)) == (
        f"{path}: prices[{i}] is {p!r}; prices are USD per hour above 0 and at most 10000" + TAIL
    )


def test_prices_at_the_cap_and_ints_are_valid_floats(tmp_path: Path) -> None:
    z = read_zone_file(write(tmp_path / "a.json", zone(prices=[10_000, 0.001, 2])))
    assert z.prices == [10_000.0, 0.001, 2.0] and all(type(p) is float for p in z.prices)


def test_not_json_and_not_an_object_are_named(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    assert message(path, '{"metadata": \n  x}') == (
        f"{path}: not valid JSON (line 2, column 3: Expecting value)" + TAIL
    )
    assert message(path, "[1, 2]") == f"{path}: top level is a list, not an object" + TAIL
    assert message(path, "7") == f"{path}: top level is a int, not an object" + TAIL


def test_json_nested_too_deeply_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    assert message(path, "[" * 100_000 + "]" * 100_000) == f"{path}: JSON nested too deeply" + TAIL


def test_an_integer_too_long_for_python_is_not_usable_json(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    got = message(path, '{"metadata": {"gap_seconds": 60}, "data": [' + "9" * 5000 + "]}")
    # Python refuses integers of more than 4,300 digits with a ValueError; the message wraps its text
    assert got.startswith(f"{path}: not usable JSON (Exceeds the limit (4300 digits)")
    assert got.endswith(")" + TAIL)


def test_not_utf8_names_the_byte_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(TraceError) as info:
        read_zone_file(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0xff at offset 7)" + TAIL


def test_a_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The limit is "UTF-8 JSON", not the machine's locale encoding. pathlib asks io.text_encoding
    # for the encoding when none is given; here it answers Latin-1, as under a Latin-1 locale (in
    # which b"\xff" is "ÿ", a valid character): the file must still be refused as not UTF-8.
    real = io.text_encoding
    monkeypatch.setattr(io, "text_encoding",
                        lambda encoding, stacklevel=2: "latin-1" if encoding is None else real(encoding))
    path = tmp_path / "a.json"
    path.write_bytes(b'{"metadata": {"gap_seconds": 60, "by": "\xff"}, "data": [1]}')
    with pytest.raises(TraceError) as info:
        read_zone_file(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0xff at offset 40)" + TAIL
    # (offset 40: the 40 characters before it are ASCII, one byte each.) A UTF-8 file still loads.
    path.write_bytes('{"metadata": {"gap_seconds": 60, "by": "é"}, "data": [1]}'.encode())
    assert read_zone_file(path).data == [1]


def test_an_unreadable_path_says_so(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(TraceError) as info:
        read_zone_file(path)
    assert str(info.value) == f"{path}: cannot read (No such file or directory)"


# ----------------------------------------------------------------------------- load_traces


def test_no_directory_and_a_bad_default_price_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError) as info:
        load_traces([])
    assert str(info.value) == "no trace directory given: pass --traces DIR (one JSON file per zone)"
    write(tmp_path / "us-east-1a.json", zone())
    for bad in (0.0, -1.0, 10_000.5, float("nan"), float("inf")):
        with pytest.raises(TraceError) as info:
            load_traces([tmp_path], default_spot_price=bad)
        assert str(info.value) == (
            f"default spot price must be a USD/h above 0 and at most 10000, got {bad}"
        )
    ts = load_traces([tmp_path], default_spot_price=10_000.0)  # the cap itself is valid
    assert ts.spot_prices.tolist() == [[10_000.0] * 3] and ts.priced_by_file == (False,)


def test_a_missing_directory_or_no_file_matching_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(TraceError) as info:
        load_traces([missing])
    assert str(info.value) == f"{missing}: no such trace directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sub.json").mkdir()  # a directory matching the pattern is no trace file
    write(empty / "a.txt", zone())
    with pytest.raises(TraceError) as info:
        load_traces([empty])
    assert str(info.value) == (
        f"{empty}: no trace files matching '*.json'; put one JSON file per zone there: {FORMAT}"
    )
    ts = load_traces([empty], pattern="*.txt", default_spot_price=1.0)
    assert ts.names == ("a",) and ts.files == (str(empty / "a.txt"),)


def test_a_file_path_is_one_zone(tmp_path: Path) -> None:
    f = write(tmp_path / "us-west-2b_v100_1.json", zone(prices=[0.5, 0.6, 0.7]))
    write(tmp_path / "us-west-2c_v100_1.json", zone())
    ts = load_traces([f])
    assert ts.names == ("us-west-2b",) and ts.regions == ("us-west-2",)
    assert ts.files == (str(f),) and ts.spot_prices.tolist() == [[0.5, 0.6, 0.7]]
    assert ts.priced_by_file == (True,) and ts.notes == ()


def test_different_ticks_are_listed(tmp_path: Path) -> None:
    write(tmp_path / "a.json", zone(gap=60))
    write(tmp_path / "b.json", zone(gap=90.5))
    with pytest.raises(TraceError) as info:
        load_traces([tmp_path], default_spot_price=1.0)
    assert str(info.value) == (
        "trace files have different ticks (a.json=60s, b.json=90.5s); replay only zones recorded at "
        "the same gap_seconds together"
    )


def test_lengths_are_cut_to_the_shortest_and_noted(tmp_path: Path) -> None:
    write(tmp_path / "us-east-1a.json", zone(data=[1, 0, 1, 1, 0], prices=[1.0, 2.0, 3.0, 4.0, 5.0]))
    write(tmp_path / "us-east-1b.json", zone(data=[0, 1, 1]))
    write(tmp_path / "us-east-1c.json", zone(data=[2, 2, 2, 2]))
    ts = load_traces([tmp_path], default_spot_price=0.25)
    assert ts.counts.tolist() == [[1, 0, 1], [0, 1, 1], [2, 2, 2]]
    assert ts.counts.dtype == np.int64 and ts.spot_prices.dtype == np.float64
    assert ts.spot_prices.tolist() == [[1.0, 2.0, 3.0], [0.25] * 3, [0.25] * 3]
    assert ts.priced_by_file == (True, False, False)
    assert ts.notes == ("zone traces have different lengths (3..5 ticks); all were cut to the shortest, "
                        "3 ticks",)
    assert ts.gap_seconds == 60.0 and ts.ticks == 3 and ts.hours == pytest.approx(3 * 60 / 3600)


def test_same_lengths_leave_no_note(tmp_path: Path) -> None:
    write(tmp_path / "us-east-1a.json", zone())
    write(tmp_path / "us-east-1b.json", zone())
    assert load_traces([tmp_path], default_spot_price=1.0).notes == ()


def test_a_zone_without_prices_and_no_default_is_named(tmp_path: Path) -> None:
    write(tmp_path / "a.json", zone(prices=[1.0, 1.0, 1.0]))
    b = write(tmp_path / "b.json", zone())
    with pytest.raises(TraceError) as info:
        load_traces([tmp_path])
    assert str(info.value) == f'{b}: has no "prices" array; pass --spot-price USD_PER_HOUR'


def test_zone_names_stems_and_directory_prefixes(tmp_path: Path) -> None:
    # Short names where unique; the full stem where two files share a short name.
    d = tmp_path / "aws-02-15-2023"
    write(d / "us-east-1a_v100_1.json", zone())
    write(d / "us-east-1a_k80_1.json", zone())
    write(d / "us-west-2b_v100_1.json", zone())
    ts = load_traces([d], default_spot_price=1.0)
    assert ts.names == ("us-east-1a_k80_1", "us-east-1a_v100_1", "us-west-2b")  # sorted files
    assert ts.regions == ("us-east-1", "us-east-1", "us-west-2")
    # Several directories sharing names: the directory name is prefixed, only on those.
    e = tmp_path / "gcp-x"
    write(e / "us-east-1a_v100_1.json", zone())
    write(e / "us-central1-a_v100_1.json", zone())
    ts2 = load_traces([d, e], default_spot_price=1.0)
    assert ts2.names == ("us-east-1a_k80_1", "aws-02-15-2023/us-east-1a_v100_1", "us-west-2b",
                         "us-central1-a", "gcp-x/us-east-1a_v100_1")
    assert ts2.regions == ("us-east-1", "us-east-1", "us-west-2", "us-central1", "us-east-1")
    assert ts2.clouds == ("aws", "aws", "aws", "gcp", "gcp")


def test_one_file_given_twice_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "t"
    write(d / "us-east-1a_v100_1.json", zone())
    write(d / "us-east-1b_v100_1.json", zone())
    with pytest.raises(TraceError) as info:
        load_traces([d, d], default_spot_price=1.0)
    assert str(info.value) == (
        "the same zone file appears twice (t/us-east-1a_v100_1, t/us-east-1b_v100_1); "
        "pass each directory or file once"
    )


# ----------------------------------------------------------------------------- TraceSet


def tiny(counts: list[list[int]], clouds: tuple[str, ...] = ()) -> TraceSet:
    c = np.asarray(counts, dtype=np.int64)
    return TraceSet(names=tuple(f"z{i}" for i in range(len(counts))), regions=("r",) * len(counts),
                    files=("f",) * len(counts), gap_seconds=900.0, counts=c,
                    spot_prices=np.ones(c.shape), priced_by_file=(True,) * len(counts), clouds=clouds)


def test_traceset_properties() -> None:
    ts = tiny([[0, 1, 2, 3], [3, 2, 1, 0]], clouds=("aws",))
    assert ts.ticks == 4 and ts.hours == 1.0
    assert ts.available().tolist() == [[False, True, True, True], [True, True, True, False]]
    assert ts.available(2).tolist() == [[False, False, True, True], [True, True, False, False]]
    assert ts.available(nodes=3).tolist() == [[False, False, False, True], [True, False, False, False]]
    assert ts.cloud_of(0) == "aws" and ts.cloud_of(1) == ""  # no cloud given for zone 1: unknown
    assert tiny([[1]]).cloud_of(0) == ""


# ----------------------------------------------------------------------------- cloud_of_trace


@pytest.mark.parametrize(("path", "cloud"), [
    # the nearest directory starting with a cloud's name wins
    ("/x/aws-02-15-2023/zone.json", "aws"),
    ("/x/GCP-04-30-2023/zone.json", "gcp"),
    ("/x/azure/eastus-1.json", "azure"),
    ("/gcp-a/aws-b/zone.json", "aws"),
    ("/aws-a/data/us-central1-a_v100.json", "aws"),
    ("/x/awsome/us-central1-a.json", "gcp"),  # "awsome" is no "aws-" folder: the region decides
    # else the shape of the region name
    ("/x/us-east-1a_v100_1.json", "aws"),
    ("/x/us-east-1.json", "aws"),
    ("/x/us-central1-a_v100_1.json", "gcp"),
    ("/x/europe-west10-b.json", "gcp"),
    ("/x/eastus_v100.json", "azure"),
    ("/x/westeurope.json", "azure"),
    ("/x/zone7.json", ""),
    ("/x/EastUS.json", ""),
    ("/x/my-zone.json", ""),
    ("/x/a1-b.json", ""),
])
def test_cloud_of_trace(path: str, cloud: str) -> None:
    assert cloud_of_trace(Path(path)) == cloud


def test_error_type_is_the_projects() -> None:
    from ray_multicloud.errors import MultiCloudError

    assert issubclass(TraceError, MultiCloudError)
    assert re.fullmatch(r"\{.*\}", FORMAT)


def test_only_the_names_still_shared_are_listed(tmp_path: Path) -> None:
    # Two directories both named "t": us-east-1a is in both (prefixing cannot tell them apart),
    # us-east-1b only in the second; the error names the two files behind the shared name only.
    # They are different files, so it does not say "the same zone file appears twice" (passing
    # each directory once, as that message advised, was already the case): rename a directory.
    a = write(tmp_path / "a" / "t" / "us-east-1a.json", zone())
    b = write(tmp_path / "b" / "t" / "us-east-1a.json", zone())
    write(tmp_path / "b" / "t" / "us-east-1b.json", zone())
    with pytest.raises(TraceError) as info:
        load_traces([tmp_path / "a" / "t", tmp_path / "b" / "t"], default_spot_price=1.0)
    assert str(info.value) == (
        f"different zone files would share a name, in directories of the same name ({a}, {b}); "
        "rename one of the directories"
    )


def test_one_directory_given_twice_under_two_spellings_is_the_same_file(tmp_path: Path) -> None:
    # "t" and "t/../t" are one directory: its files appear twice, whatever the spelling.
    d = tmp_path / "t"
    write(d / "us-east-1a.json", zone())
    with pytest.raises(TraceError) as info:
        load_traces([d, d / ".." / "t"], default_spot_price=1.0)
    assert str(info.value) == (
        "the same zone file appears twice (t/us-east-1a); pass each directory or file once"
    )


def test_a_directory_and_a_file_of_it_give_that_file_twice(tmp_path: Path) -> None:
    # Given alone, a file's "directory" is the file itself, so the names differ (t/us-east-1a and
    # us-east-1a.json/us-east-1a): it was loaded as a second zone. It is one file given twice; the
    # error names it by its first name only, not us-east-1b (given once).
    d = tmp_path / "t"
    a = write(d / "us-east-1a.json", zone())
    write(d / "us-east-1b.json", zone())
    with pytest.raises(TraceError) as info:
        load_traces([d, a], default_spot_price=1.0)
    assert str(info.value) == (
        "the same zone file appears twice (t/us-east-1a); pass each directory or file once"
    )


def test_a_directory_given_twice_next_to_alike_files_is_a_file_given_twice(tmp_path: Path) -> None:
    # One name (t/us-east-1a) behind a file given twice (a/t passed twice) and a different file
    # (b/t's): the file given twice is said first (its fix, passing a/t once, comes first).
    write(tmp_path / "a" / "t" / "us-east-1a.json", zone())
    write(tmp_path / "b" / "t" / "us-east-1a.json", zone())
    with pytest.raises(TraceError) as info:
        load_traces([tmp_path / "a" / "t", tmp_path / "b" / "t", tmp_path / "a" / "t"],
                    default_spot_price=1.0)
    assert str(info.value) == (
        "the same zone file appears twice (t/us-east-1a); pass each directory or file once"
    )


def test_two_lengths_are_noted_too(tmp_path: Path) -> None:
    write(tmp_path / "us-east-1a.json", zone(data=[1, 1, 1, 1, 1]))
    write(tmp_path / "us-east-1b.json", zone(data=[0, 1, 1]))
    ts = load_traces([tmp_path], default_spot_price=1.0)
    assert ts.notes == ("zone traces have different lengths (3..5 ticks); all were cut to the shortest, "
                        "3 ticks",)
