"""Contracts of `ray_multicloud.sim.serving` and `sim.serving_bounds`, hand-computed from their
docstrings and messages (mutation testing, issue 12 item 5). Pure, no Ray; traces and demand are
built by hand, each expected value worked out in the comment or docstring beside it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ray_multicloud.sim.serving import MAX_COUNT, MAX_MINUTES, MAX_SECONDS, Demand, FleetSpec, load_demand
from ray_multicloud.sim.serving_bounds import (
    BOUNDS,
    PROBATIONS,
    _best,
    hindsight_bounds,
    never_preempted,
    oracle_forecast,
    warned_caps,
)
from ray_multicloud.sim.traces import TraceError, TraceSet


def zone(counts: list[int], gap: float = 3600.0, price: float = 1.0) -> TraceSet:
    n = len(counts)
    return TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=gap,
                    counts=np.asarray([counts], dtype=np.int64), spot_prices=np.full((1, n), price),
                    priced_by_file=(True,))


# ----------------------------------------------------------------------------- serving_bounds


def test_bounds_and_probations_are_the_documented_ones() -> None:
    assert BOUNDS == ("spot-hedge", "oracle", "oracle-best", "hedge-best", "no-preemption", "warned",
                      "oracle-warned", "probation-best")
    assert PROBATIONS == (0.0, 10.0, 20.0, 30.0, 60.0, 120.0)


def test_oracle_forecast_edges() -> None:
    empty = np.zeros(0)
    out = oracle_forecast(empty, 3)
    assert out.tolist() == [] and out is not empty
    rate = np.asarray([1.0, 2.0, 3.0])
    assert oracle_forecast(rate, 0).tolist() == [1.0, 2.0, 3.0]
    assert oracle_forecast(rate, 1).tolist() == [2.0, 3.0, 3.0]
    assert oracle_forecast(rate, 7).tolist() == [3.0, 3.0, 3.0]  # past the end: the last rate


def test_warned_caps_edges() -> None:
    c = np.asarray([[3, 1, 2], [0, 4, 5]], dtype=np.int64)
    assert warned_caps(c, 0).tolist() == [[3, 1, 2], [0, 4, 5]]
    # steps t .. t + lead, to the end of the trace: a lead beyond it is the min to the end
    assert warned_caps(c, 1).tolist() == [[1, 1, 2], [0, 4, 5]]
    assert warned_caps(c, 2).tolist() == [[1, 1, 2], [0, 4, 5]]
    assert warned_caps(c, 9).tolist() == [[1, 1, 2], [0, 4, 5]]
    d = np.asarray([[5, 4, 3, 2, 1, 9]], dtype=np.int64)
    assert warned_caps(d, 2).tolist() == [[3, 2, 1, 1, 1, 9]]
    assert warned_caps(d, 4).tolist() == [[1, 1, 1, 1, 1, 9]]
    assert c.tolist() == [[3, 1, 2], [0, 4, 5]]  # the input is left as it was


def test_never_preempted_holds_each_zones_most() -> None:
    ts = TraceSet(names=("a", "b"), regions=("r", "r"), files=("f", "g"), gap_seconds=60.0,
                  counts=np.asarray([[0, 2, 1], [1, 0, 0]], dtype=np.int64), spot_prices=np.ones((2, 3)),
                  priced_by_file=(True, True))
    calm = never_preempted(ts)
    assert calm.counts.tolist() == [[2, 2, 2], [1, 1, 1]]
    calm.counts[0, 0] = 7  # a writable array of its own
    assert ts.counts.tolist() == [[0, 2, 1], [1, 0, 0]]


def test_best_fewest_violations_within_the_cap_then_cost_then_order() -> None:
    a = (10.0, 3, 0.0, 0, 0)
    b = (9.0, 3, 0.0, 0, 0)
    c = (12.0, 1, 0.0, 0, 0)
    d = (9.0, 3, 1.0, 0, 0)
    assert _best([("a", a), ("b", b), ("c", c)], 11.0) == ("b", b)
    assert _best([("a", a), ("b", b), ("c", c)], 12.0) == ("c", c)  # a cost exactly at the cap is within
    assert _best([("b", b), ("d", d)], 11.0) == ("b", b)  # a full tie: the first given
    assert _best([("d", d), ("b", b)], 11.0) == ("d", d)
    assert _best([("a", a), ("c", c)], 8.0) == ("a (over)", a)  # none within: the cheapest, marked
    assert _best([("b", b), ("d", d)], 8.0) == ("b (over)", b)


def test_bounds_unserved_and_choices_by_hand() -> None:
    """The by-hand run of tests/test_sim_serving_bounds.py::test_bounds_by_hand (one 1-node zone
    up 1 1 0 1 1 0 1 1, hourly steps, 2 req/s, 1 req/s a replica, ready a step after launch):
    spot-hedge serves nothing at t0 (nothing ready) and nothing at the preempted t2 and t5: 3 x 2
    of 16 requests/s-steps unserved. The oracle with headroom cannot do better on one zone that
    goes whole, and costs more with any: ``+0 spot`` (the first of the equal ones) is chosen."""
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=60, extra_spot=0, downscale_minutes=0)
    demand = Demand(3600.0, np.full(8, 2.0), "flat")
    b = hindsight_bounds(zone([1, 1, 0, 1, 1, 0, 1, 1]), demand, fleet, ondemand_price=3.0, held_out_from=0.0)
    assert list(b) == list(BOUNDS)
    assert all(v.label == k for k, v in b.items())
    assert b["spot-hedge"].unserved_fraction == pytest.approx(6 / 16)
    assert b["no-preemption"].unserved_fraction == pytest.approx(2 / 16)
    assert b["oracle-best"].choice == "+0 spot" and b["oracle-best"].cost_usd == pytest.approx(42.0)
    assert b["spot-hedge"].choice == "" and b["oracle"].choice == ""
    assert all(v.ondemand_cost_usd == pytest.approx(48.0) for v in b.values())
    # Held out from the middle: steps 4..7 count (t5 preempted: 1 violation of 4; 2 of 8 req/s-steps
    # unserved); on-demand: 2 x $3 x 4.
    h = hindsight_bounds(zone([1, 1, 0, 1, 1, 0, 1, 1]), demand, fleet, ondemand_price=3.0, held_out_from=0.5)
    assert h["spot-hedge"].slo_violation_fraction == pytest.approx(1 / 4)
    assert h["spot-hedge"].unserved_fraction == pytest.approx(2 / 8)
    assert h["spot-hedge"].ondemand_cost_usd == pytest.approx(24.0)
    assert h["spot-hedge"].cost_usd == pytest.approx(2 + 6 + 8 + 2)


def test_bounds_with_no_demand_have_no_unserved_fraction() -> None:
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=60, extra_spot=0, downscale_minutes=0)
    demand = Demand(3600.0, np.zeros(4), "idle")
    b = hindsight_bounds(zone([1, 1, 1, 1]), demand, fleet, ondemand_price=3.0, held_out_from=0.0)
    assert all(v.unserved_fraction == 0.0 for v in b.values())
    # min_replicas 1: one on-demand replica every step, $3 x 4
    assert b["spot-hedge"].ondemand_cost_usd == pytest.approx(12.0)


# ----------------------------------------------------------------------------- serving: load_demand

MIN = "Time (min),Requests\n"
SEC = "second,requests,total_tokens\n"


def demand_error(tmp_path: Path, body: str | bytes) -> tuple[Path, str]:
    p = tmp_path / "d.csv"
    if isinstance(body, bytes):
        p.write_bytes(body)
    else:
        p.write_text(body, encoding="utf-8")
    with pytest.raises(TraceError) as info:
        load_demand(p)
    return p, str(info.value)


def test_demand_limits_are_the_documented_ones() -> None:
    assert MAX_MINUTES == 10 * 366 * 24 * 60 == 5_270_400
    assert MAX_SECONDS == 31 * 86_400 and MAX_COUNT == 1e12


def test_demand_whole_file_errors_exactly(tmp_path: Path) -> None:
    p, msg = demand_error(tmp_path, MIN + "\n\n")
    assert msg == f"{p}: demand trace has no rows; expected a header and one row per minute or second"
    p, msg = demand_error(tmp_path, "when,how many\n1,2\n")
    assert msg == (f"{p}: unknown demand header ['when', 'how many']; use 'Time (min),Requests' or "
                   "'second,requests'")
    p, msg = demand_error(tmp_path, MIN.encode() + b"0,1\n1,\xe9\n")
    assert msg == f"{p}: demand trace is not UTF-8 text (bad byte at offset 26)"
    p, msg = demand_error(tmp_path, MIN + "0,1\x00\n")
    assert msg == f"{p}: line 2: bad demand row (could not convert string to float: '1\\x00')"
    missing = tmp_path / "none.csv"
    with pytest.raises(TraceError) as info:
        load_demand(missing)
    assert str(info.value) == f"{missing}: cannot read demand trace (No such file or directory)"


def test_demand_row_errors_name_the_line(tmp_path: Path) -> None:
    # line numbers count the header as line 1, and blank lines too
    p, msg = demand_error(tmp_path, MIN + "0,1\n\nx,1\n")
    assert msg == f"{p}: line 4: bad demand row (could not convert string to float: 'x')"
    p, msg = demand_error(tmp_path, MIN + "0,1\n7\n")
    assert msg == f"{p}: line 3: bad demand row (list index out of range)"
    p, msg = demand_error(tmp_path, MIN + "5270401,1\n")
    assert msg == f"{p}: line 2: bad demand row (minute '5270401' is not a whole number from 0 to 5270400)"
    p, msg = demand_error(tmp_path, MIN + "-1,1\n")
    assert msg == f"{p}: line 2: bad demand row (minute '-1' is not a whole number from 0 to 5270400)"
    p, msg = demand_error(tmp_path, MIN + "2.5,1\n")
    assert msg == f"{p}: line 2: bad demand row (minute '2.5' is not a whole number from 0 to 5270400)"
    p, msg = demand_error(tmp_path, MIN + "0,-0.5\n")
    assert msg == f"{p}: line 2: bad demand row (request count '-0.5' is not a number from 0 to 1e+12)"
    p, msg = demand_error(tmp_path, MIN + "0,1000000000001\n")
    assert msg == (f"{p}: line 2: bad demand row (request count '1000000000001' is not a number from 0 "
                   "to 1e+12)")
    p, msg = demand_error(tmp_path, MIN + "0,inf\n")
    assert msg == f"{p}: line 2: bad demand row (request count 'inf' is not a number from 0 to 1e+12)"
    p, msg = demand_error(tmp_path, MIN + "0,5\n1,5\n\n1,7\n")
    assert msg == f"{p}: line 5: bad demand row (minute 1 again (first on line 3); give each once)"


def test_per_minute_demand_edges(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    # a header in any case with spaces; minutes "3.0" and 0; counts 0 and the cap; gaps are 0
    p.write_text(" TIME (MIN) , Requests \n3.0,1000000000000\n0,0\n1,90\n", encoding="utf-8")
    d = load_demand(p)
    assert d.step_seconds == 60.0 and d.source == str(p)
    assert d.rps.tolist() == [0.0, 1.5, 0.0, 1e12 / 60]
    assert d.hours == pytest.approx(4 / 60)


def test_per_second_demand_edges(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    # unsorted stamps; the first is the earliest; a fraction of a second falls in its whole second
    p.write_text(SEC + "2023-11-16 18:17:05.5,4,1\n2023-11-16 18:17:03,2,1\n\n2023-11-16 18:17:04.9,1,1\n",
                 encoding="utf-8")
    d = load_demand(p)
    assert d.step_seconds == 1.0 and d.rps.tolist() == [2.0, 1.0, 4.0]
    assert d.hours == pytest.approx(3 / 3600)
    # exactly 31 days after the first stamp is still within the limit; a second more is not
    last = tmp_path / "l.csv"
    last.write_text(SEC + "2023-01-01 00:00:00,1,1\n2023-02-01 00:00:00,1,1\n", encoding="utf-8")
    assert len(load_demand(last).rps) == 31 * 86_400 + 1
    p, msg = demand_error(tmp_path, SEC + "2023-01-01 00:00:00,1,1\n2023-02-01 00:00:01,1,1\n")
    assert msg == (f"{p}: line 3: bad demand row (2023-02-01T00:00:01 is more than 31 days after the "
                   "first timestamp 2023-01-01T00:00:00; split the trace)")
    p, msg = demand_error(tmp_path, SEC + "2023-01-01 00:00:00,1,1\n2023-01-01 00:00:01,1,1\n"
                          "2023-01-01 00:00:00.5,1,1\n")
    assert msg == (f"{p}: line 4: bad demand row (second 2023-01-01T00:00:00.500000 again (first on line 2); "
                   "once each)")
    p, msg = demand_error(tmp_path, SEC + "2023-01-01 00:00:00+00:00,1,1\n2023-01-01 00:00:01,1,1\n")
    assert msg == (f"{p}: line 3: bad demand row (timestamps mix ones with a time zone and ones without; "
                   "write all alike)")
