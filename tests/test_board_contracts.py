"""The head's shared state files of ``pricing/``, by their docstrings: the price board
(``board.py``: entries in ``(0, MAX_QUOTE_PRICE]``, a bad entry left out and logged once, writes
that keep the other entries) and the cooldown board (``cooldowns.py``: another writer's cooldowns
still running, a later ``until`` kept, expired entries dropped on write, malformed entries ignored).
Expected values by hand from those contracts."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from ray_multicloud.pricing import board as board_mod
from ray_multicloud.pricing.board import BOARD_FILE, PriceBoard, apply_board
from ray_multicloud.pricing.cooldowns import COOLDOWN_FILE, CooldownBoard
from ray_multicloud.pricing.live import MAX_QUOTE_PRICE
from ray_multicloud.types import CapacityType, Offer

# --- the price board ---------------------------------------------------------------------------


def _write(tmp_path: Path, obj: object) -> PriceBoard:
    (tmp_path / BOARD_FILE).write_text(json.dumps(obj), encoding="utf-8")
    return PriceBoard(tmp_path)


def test_board_file_name_and_user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert BOARD_FILE == "prices.json" and MAX_QUOTE_PRICE == 10_000.0
    assert PriceBoard(tmp_path).path == tmp_path / "prices.json"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert PriceBoard("~/state").path == tmp_path / "state" / "prices.json"


def test_board_reads_entries_in_range_and_leaves_out_the_rest(tmp_path: Path) -> None:
    board = _write(tmp_path, {
        "ok": {"price": 1.5, "as_of": 7},
        "int": {"price": 2, "as_of": 8.5},
        "at-max": {"price": MAX_QUOTE_PRICE, "as_of": 0},
        "tiny": {"price": 1e-9, "as_of": -3},
        "above-max": {"price": MAX_QUOTE_PRICE * (1 + 1e-12), "as_of": 0},
        "zero": {"price": 0, "as_of": 0},
        "negative": {"price": -1, "as_of": 0},
        "bool-price": {"price": True, "as_of": 0},
        "bool-as-of": {"price": 1.0, "as_of": False},
        "string": {"price": "1.0", "as_of": 0},
        "no-as-of": {"price": 1.0},
        "no-price": {"as_of": 1.0},
        "inf-as-of": {"price": 1.0, "as_of": 1e400},
        "list": [1.0, 2.0],
        "null": None,
    })
    got = board.read()
    assert got == {
        "ok": (1.5, 7.0), "int": (2.0, 8.5), "at-max": (MAX_QUOTE_PRICE, 0.0), "tiny": (1e-9, -3.0)
    }
    assert all(type(p) is float and type(a) is float for p, a in got.values())


def test_a_bad_entry_is_logged_once_with_what_was_expected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "once"
    path.mkdir()
    board = _write(path, {"x": {"price": 0, "as_of": 1}})
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.pricing.board"):
        assert board.read() == {}
        assert board.read() == {}
    lines = [r.getMessage() for r in caplog.records if r.name == "ray_multicloud.pricing.board"]
    assert lines == [
        f"{board.path}: entry 'x' is {{'price': 0, 'as_of': 1}}, not "
        '{"price": USD/h in (0, 10000], "as_of": POSIX time}; left out'
    ]


def test_a_board_that_is_not_an_object_is_ignored_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    board = _write(tmp_path, [1, 2])
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.pricing.board"):
        assert board.read() == {}
    assert [r.getMessage() for r in caplog.records if r.name == "ray_multicloud.pricing.board"] == [
        f"{board.path}: not a JSON object; the price board is ignored"
    ]
    (tmp_path / BOARD_FILE).write_text("{not json", encoding="utf-8")
    assert board.read() == {}
    (tmp_path / BOARD_FILE).write_text("[" * 100_000, encoding="utf-8")
    assert board.read() == {}
    assert PriceBoard(tmp_path / "absent").read() == {}


def test_say_once_logs_a_line_once(caplog: pytest.LogCaptureFixture) -> None:
    line = f"test line {time.time_ns()}"
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.pricing.board"):
        board_mod._say_once(line)
        board_mod._say_once(line)
    assert [r.getMessage() for r in caplog.records].count(line) == 1
    assert line in board_mod._SAID


def test_version_is_zero_without_a_board_and_changes_on_a_write(tmp_path: Path) -> None:
    board = PriceBoard(tmp_path)
    assert board.version() == 0.0
    board.set("a", 1.0, now=5.0)
    v1 = board.version()
    assert v1 == (tmp_path / BOARD_FILE).stat().st_mtime_ns / 1e9 and v1 > 0
    os.utime(board.path, ns=(0, 3_000_000_000))
    assert board.version() == 3.0


def test_set_many_keeps_the_other_entries_and_stamps_the_new_ones(tmp_path: Path) -> None:
    board = PriceBoard(tmp_path / "new-dir")
    board.set_many({"a": 1.0, "b": 2}, now=10.0)
    board.set("b", MAX_QUOTE_PRICE, now=20.0)
    raw = json.loads(board.path.read_text(encoding="utf-8"))
    assert raw == {"a": {"price": 1.0, "as_of": 10.0}, "b": {"price": MAX_QUOTE_PRICE, "as_of": 20.0}}
    assert type(raw["b"]["price"]) is float
    before = time.time()
    board.set("c", 3.0)
    after = time.time()
    assert before <= board.read()["c"][1] <= after


@pytest.mark.parametrize("price", [0.0, -1.0, float("nan"), float("inf"), MAX_QUOTE_PRICE * 1.001])
def test_set_refuses_a_price_out_of_range_and_writes_nothing(tmp_path: Path, price: float) -> None:
    board = PriceBoard(tmp_path)
    board.set("keep", 1.0, now=1.0)
    with pytest.raises(ValueError) as err:
        board.set_many({"ok": 2.0, "gpu/x": price}, now=2.0)
    assert str(err.value) == f"price for gpu/x must be a USD/h in (0, 10000], got {price}"
    assert board.read() == {"keep": (1.0, 1.0)}


def _offer(zone: str, price: float) -> Offer:
    return Offer("gcp", "us-east1", zone, "n1", "T4", 1, 4, 15, CapacityType.SPOT, price, 1.0)


def test_apply_board_replaces_price_and_as_of_of_the_offers_it_names() -> None:
    a, b = _offer("us-east1-b", 0.3), _offer("us-east1-c", 0.4)
    out = apply_board([a, b], {a.offer_id: (0.25, 99.0), "gcp/unknown/-/x/spot": (9.0, 1.0)})
    assert out[0].price_per_hour == 0.25 and out[0].as_of == 99.0
    assert out[0].ondemand_price_per_hour == 1.0 and out[0].zone == "us-east1-b"
    assert out[1] is b
    assert apply_board(iter([a]), {}) == [a]


# --- the cooldown board ------------------------------------------------------------------------

ME, OTHER = 1000, 2000


def test_cooldown_file_and_default_writer(tmp_path: Path) -> None:
    assert COOLDOWN_FILE == "cooldowns.json"
    board = CooldownBoard(tmp_path)
    assert board.writer == os.getpid() and board.path == tmp_path / "cooldowns.json"
    assert CooldownBoard(tmp_path, writer=0).writer == 0


def test_others_are_the_other_writers_still_running_strictly_after_now(tmp_path: Path) -> None:
    CooldownBoard(tmp_path, writer=OTHER).add({"a": 100.0, "b": 101.0}, now=0.0)
    CooldownBoard(tmp_path, writer=ME).add({"c": 500.0}, now=0.0)
    mine = CooldownBoard(tmp_path, writer=ME)
    assert mine.others(now=100.0) == {"b": 101.0}  # "a" ends at 100: no longer running
    assert mine.others(now=99.0) == {"a": 100.0, "b": 101.0}
    assert CooldownBoard(tmp_path, writer=OTHER).others(now=0.0) == {"c": 500.0}


def test_add_keeps_a_later_until_takes_an_equal_or_earlier_one_and_drops_expired(tmp_path: Path) -> None:
    theirs, mine = CooldownBoard(tmp_path, writer=OTHER), CooldownBoard(tmp_path, writer=ME)
    theirs.add({"later": 300.0, "equal": 200.0, "earlier": 150.0, "expires": 50.0, "at-now": 60.0}, now=0.0)
    mine.add({"later": 250, "equal": 200.0, "earlier": 180.0}, now=60.0)
    raw = json.loads(mine.path.read_text(encoding="utf-8"))
    assert raw == {
        "later": {"until": 300.0, "by": OTHER},  # a later until already there is kept, as theirs
        "equal": {"until": 200.0, "by": ME},  # not later: ours
        "earlier": {"until": 180.0, "by": ME},
    }  # "expires" (50) and "at-now" (60) have run out at now = 60
    assert type(raw["equal"]["until"]) is float
    mine.add({"new": 70}, now=60.0)
    assert json.loads(mine.path.read_text())["new"] == {"until": 70.0, "by": ME}
    assert mine.path.with_suffix(".lock").exists()


def test_add_creates_the_state_folder(tmp_path: Path) -> None:
    board = CooldownBoard(tmp_path / "a" / "b", writer=ME)
    board.add({"x": 5.0}, now=0.0)
    assert CooldownBoard(tmp_path / "a" / "b", writer=OTHER).others(now=0.0) == {"x": 5.0}


def test_malformed_entries_are_skipped_and_the_rest_read(tmp_path: Path) -> None:
    (tmp_path / COOLDOWN_FILE).write_text(json.dumps({
        "good": {"until": 10, "by": OTHER},
        "bool-until": {"until": True, "by": OTHER},
        "bool-by": {"until": 10.0, "by": True},
        "float-by": {"until": 10.0, "by": 1.0},
        "str-until": {"until": "10", "by": OTHER},
        "no-by": {"until": 10.0},
        "no-until": {"by": OTHER},
        "list": [10.0, OTHER],
        "big": {"until": 1e400, "by": OTHER},
    }), encoding="utf-8")
    got = CooldownBoard(tmp_path, writer=ME).others(now=0.0)
    assert got == {"good": 10.0} and type(got["good"]) is float
    (tmp_path / COOLDOWN_FILE).write_text("[1]", encoding="utf-8")
    assert CooldownBoard(tmp_path, writer=ME).others(now=0.0) == {}
    (tmp_path / COOLDOWN_FILE).write_text("[" * 100_000, encoding="utf-8")
    assert CooldownBoard(tmp_path, writer=ME).others(now=0.0) == {}


def test_a_malformed_entry_does_not_hide_the_entries_after_it(tmp_path: Path) -> None:
    (tmp_path / COOLDOWN_FILE).write_text(
        json.dumps({"first": [1.0], "then": {"until": 10.0, "by": OTHER}}), encoding="utf-8"
    )
    assert CooldownBoard(tmp_path, writer=ME).others(now=0.0) == {"then": 10.0}
