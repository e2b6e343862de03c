"""``pricing/replay.py`` by its docstrings: a trace's price in force at a time (the sample at or
before it; the first before the start), both trace formats (SkyPilot JSON with its gap, AWS spot
price history TSV with ``select``), the rescaling to a base price, and a ``Replayer`` that writes
only what changed and is done when every trace has ended. Values computed by hand."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ray_multicloud.pricing.board import PriceBoard
from ray_multicloud.pricing.replay import PriceTrace, Replayer, load_trace


def test_a_trace_needs_prices_matching_times_in_ascending_order() -> None:
    with pytest.raises(ValueError) as err:
        PriceTrace((), (), "s")
    assert str(err.value) == "trace s has no prices or mismatched times"
    with pytest.raises(ValueError, match=r"^trace \? has no prices or mismatched times$"):
        PriceTrace((0.0, 1.0), (1.0,))
    with pytest.raises(ValueError, match=r"^trace \? has no prices or mismatched times$"):
        PriceTrace((0.0,), (1.0, 2.0))
    with pytest.raises(ValueError) as err2:
        PriceTrace((0.0, 2.0, 1.0), (1.0, 1.0, 1.0), "t.json")
    assert str(err2.value) == "trace t.json times are not ascending"
    with pytest.raises(ValueError, match=r"^trace \? times are not ascending$"):
        PriceTrace((5.0, 4.0), (1.0, 1.0))
    equal = PriceTrace((0.0, 1.0, 1.0), (1.0, 2.0, 3.0))  # equal times are ascending enough
    assert equal.duration_s == 1.0


def test_the_price_in_force_is_the_sample_at_or_before_t() -> None:
    trace = PriceTrace((10.0, 20.0, 30.0), (1.0, 2.0, 3.0))
    assert trace.duration_s == 30.0
    assert trace.at(0.0) == 1.0 and trace.at(9.99) == 1.0  # before the start: the first price
    assert trace.at(10.0) == 1.0 and trace.at(19.999) == 1.0
    assert trace.at(20.0) == 2.0 and trace.at(29.0) == 2.0
    assert trace.at(30.0) == 3.0 and trace.at(1e9) == 3.0


def test_skypilot_json_trace_times_are_index_times_gap(tmp_path: Path) -> None:
    p = tmp_path / "zone.json"
    p.write_text(json.dumps({"prices": [0.5, 0.25, "0.75"]}))  # no metadata: a 60 s gap
    trace = load_trace(p)
    assert trace.times == (0.0, 60.0, 120.0) and trace.prices == (0.5, 0.25, 0.75)
    assert trace.source == str(p)
    p.write_text(json.dumps({"metadata": {}, "prices": [1]}))
    assert load_trace(str(p)).times == (0.0,)
    p.write_text(json.dumps({"metadata": {"gap_seconds": "600"}, "prices": [1, 2]}))
    assert load_trace(p).times == (0.0, 600.0)
    for body in ({"data": [1, 0]}, {"prices": []}):
        p.write_text(json.dumps(body))
        with pytest.raises(ValueError) as err:
            load_trace(p)
        assert str(err.value) == f"{p} has no 'prices' array (availability-only trace)"


TSV_HEAD = "az_id\tinstance_type\tproduct_description\tprice\ttimestamp\n"


def test_aws_tsv_trace_selects_sorts_and_starts_at_zero(tmp_path: Path) -> None:
    p = tmp_path / "history.tsv"
    p.write_text(
        TSV_HEAD
        + "use1-az1\tp3.2xlarge\tLinux/UNIX\t0.9\t2023-01-01T00:10:00+00:00\n"
        + "use1-az1\tp3.2xlarge\tLinux/UNIX\t0.8\t2023-01-01T00:00:00+00:00\n"
        + "use1-az2\tp3.2xlarge\tLinux/UNIX\t5.0\t2023-01-01T00:05:00+00:00\n"
        + "short\trow\n"
        + "use1-az1\tp3.2xlarge\tLinux/UNIX\t1.1\t2023-01-01T01:00:00+00:00\n"
    )
    trace = load_trace(p, select="use1-az1/p3.2xlarge")
    assert trace.times == (0.0, 600.0, 3600.0) and trace.prices == (0.8, 0.9, 1.1)
    assert trace.source == f"{p}:use1-az1/p3.2xlarge"
    everything = load_trace(p)
    assert everything.times == (0.0, 300.0, 600.0, 3600.0)
    assert everything.prices == (0.8, 5.0, 0.9, 1.1) and everything.source == f"{p}:*"
    with pytest.raises(ValueError) as err:
        load_trace(p, select="use1-az9/p3.2xlarge")
    assert str(err.value) == f"{p}: no rows for use1-az9/p3.2xlarge"
    empty = tmp_path / "empty.tsv"
    empty.write_text(TSV_HEAD)
    with pytest.raises(ValueError) as err2:
        load_trace(empty)
    assert str(err2.value) == f"{empty}: no rows"


def test_replayer_refuses_a_speed_of_zero_or_less(tmp_path: Path) -> None:
    trace = PriceTrace((0.0,), (1.0,))
    for speedup in (0.0, -1.0):
        with pytest.raises(ValueError) as err:
            Replayer(tmp_path, {"x": trace}, speedup=speedup)
        assert str(err.value) == "speedup must be positive"
    assert Replayer(tmp_path, {"x": trace}).speedup == 60.0


def test_prices_are_rescaled_to_a_base_and_a_missing_or_zero_base_keeps_the_dollars(tmp_path: Path) -> None:
    up = PriceTrace((0.0, 100.0), (2.0, 3.0))
    rep = Replayer(tmp_path, {"a": up, "b": up, "c": up}, base_prices={"a": 0.5, "b": None, "c": 0.0})
    assert rep.base == {"a": 0.5}
    assert rep.prices_at(0.0) == {"a": 0.5, "b": 2.0, "c": 2.0}
    assert rep.prices_at(150.0) == {"a": 0.75, "b": 3.0, "c": 3.0}  # 0.5 * 3 / 2
    assert Replayer(tmp_path, {"a": up}).prices_at(100.0) == {"a": 3.0}


def test_step_writes_the_prices_due_at_elapsed_times_speedup_and_only_changes(tmp_path: Path) -> None:
    now = [1000.0]
    a = PriceTrace((0.0, 120.0, 240.0), (1.0, 2.0, 2.0))
    b = PriceTrace((0.0, 60.0), (4.0, 4.0))
    rep = Replayer(tmp_path, {"a": a, "b": b}, speedup=120.0, clock=lambda: now[0])
    assert not rep.done()  # not started
    assert rep.step() == {"a": 1.0, "b": 4.0} and rep.started_at == 1000.0
    assert PriceBoard(tmp_path).read() == {"a": (1.0, 1000.0), "b": (4.0, 1000.0)}
    now[0] = 1000.5  # 60 trace s: b's second sample has the same price
    assert rep.step() == {} and not rep.done()  # a lasts 240 s
    now[0] = 1001.0  # 120 trace s
    assert rep.step() == {"a": 2.0}
    assert PriceBoard(tmp_path).read() == {"a": (2.0, 1001.0), "b": (4.0, 1000.0)}
    now[0] = 1001.99  # 238.8 trace s
    assert not rep.done()
    now[0] = 1002.0  # exactly 240 trace s: every trace has ended
    assert rep.done() and rep.step() == {} and rep.started_at == 1000.0


def test_run_steps_until_done_or_stopped(tmp_path: Path) -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # each reading one second later
        return now[0]

    trace = PriceTrace((0.0, 60.0, 120.0), (1.0, 2.0, 3.0))
    rep = Replayer(tmp_path, {"x": trace}, speedup=60.0, clock=clock)
    rep.run(interval_s=0.0)
    assert rep.done() and PriceBoard(tmp_path).read()["x"][0] == 3.0
    stop = threading.Event()
    stop.set()
    idle = Replayer(tmp_path / "idle", {"x": trace}, speedup=60.0, clock=clock)
    idle.run(stop=stop)
    assert idle.started_at is None and PriceBoard(tmp_path / "idle").read() == {}


def test_any_positive_speed_is_allowed_even_slower_than_real_time(tmp_path: Path) -> None:
    trace = PriceTrace((0.0, 60.0), (1.0, 2.0))
    assert Replayer(tmp_path, {"x": trace}, speedup=1.0).speedup == 1.0
    assert Replayer(tmp_path, {"x": trace}, speedup=0.5).speedup == 0.5


def test_run_waits_one_second_between_steps_by_default(tmp_path: Path) -> None:
    class Recording(threading.Event):
        def __init__(self) -> None:
            super().__init__()
            self.waits: list[float | None] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.waits.append(timeout)
            self.set()
            return True

    rep = Replayer(tmp_path, {"x": PriceTrace((0.0, 600.0), (1.0, 2.0))}, clock=lambda: 0.0)
    stop = Recording()
    rep.run(stop=stop)
    assert stop.waits == [1.0]
