"""Contracts of `ray_multicloud.sim.serving` and `sim.serving_bounds`, hand-computed from their
docstrings and messages (mutation testing, issue 12 item 5). Pure, no Ray; traces and demand are
built by hand, each expected value worked out in the comment or docstring beside it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ray_multicloud.policy.forecast import Candidate, Choice
from ray_multicloud.policy.predictive import Peak
from ray_multicloud.sim.serving import (
    FLEET_POLICIES,
    MAX_COUNT,
    MAX_MINUTES,
    MAX_SECONDS,
    Demand,
    FleetSpec,
    ServingResult,
    _forecaster_label,
    _Group,
    _label,
    _place_spot,
    _ticks,
    load_demand,
    peak_needs,
    resample,
    simulate_fleet,
    spot_on_steps,
    steps_of,
)
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


@dataclasses.dataclass(frozen=True)
class Interval:
    """A window open over ``[start, end)`` (what ``predictive.open_within`` reads exactly)."""

    start: float
    end: float


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


# ----------------------------------------------------------------------------- serving: the grid


def test_demand_resample_edges() -> None:
    d = Demand(60.0, np.asarray([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "d.csv")
    # 120 s steps: samples 0-1, 2-3, 4-5 (mean; max with peak); cut to ``ticks``
    assert resample(d, 120.0, 10).tolist() == [1.5, 3.5, 5.5]
    assert resample(d, 120.0, 10, peak=True).tolist() == [2.0, 4.0, 6.0]
    assert resample(d, 120.0, 2).tolist() == [1.5, 3.5]
    assert resample(d, 180.0, 10).tolist() == [2.0, 5.0]
    assert resample(d, 360.0, 10).tolist() == [3.5] and resample(d, 360.0, 1, peak=True).tolist() == [6.0]
    assert resample(d, 60.0, 4).tolist() == [1.0, 2.0, 3.0, 4.0]
    # 90 s steps, not whole samples: the samples that *start* in [0, 90), [90, 180), [180, 270),
    # [270, 360) are those at 0 and 60 s, 120 s, 180 and 240 s, 300 s (by hand)
    assert resample(d, 90.0, 10).tolist() == [1.5, 3.0, 4.5, 6.0]
    assert resample(d, 90.0, 10, peak=True).tolist() == [2.0, 3.0, 5.0, 6.0]
    # 150 s steps: [0, 150) holds the samples at 0, 60, 120 s; [150, 300) those at 180, 240 s
    assert resample(d, 150.0, 10).tolist() == [2.0, 4.5]
    # 20 s steps inside one sample hold its rate
    assert resample(d, 20.0, 7).tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0]
    with pytest.raises(TraceError) as info:
        resample(d, 420.0, 10)
    assert str(info.value) == "d.csv: shorter than one simulation step (420 s)"
    with pytest.raises(TraceError, match=r"^d.csv: shorter than one simulation step \(60 s\)$"):
        resample(d, 60.0, 0)


def test_steps_of_is_the_overlap_in_whole_steps() -> None:
    ts = zone([1] * 3, gap=600.0)  # 1,800 s of spot
    d = Demand(60.0, np.ones(25), "d")  # 1,500 s of demand
    assert steps_of(ts, d, 60.0) == 25 and steps_of(ts, d, 600.0) == 2 and steps_of(ts, d, 1500.0) == 1
    assert steps_of(ts, Demand(60.0, np.ones(40), "d"), 600.0) == 3
    assert steps_of(ts, d, 1501.0) == 0
    # 0.1 s steps over 0.3 s of demand: 3 steps, whatever the float error of 0.3 / 0.1
    assert steps_of(zone([1], gap=1.0), Demand(0.1, np.ones(3), "d"), 0.1) == 3


def test_spot_on_steps_same_tick_cuts_and_a_step_over_three_ticks() -> None:
    ts = TraceSet(names=("a", "b"), regions=("r", "r"), files=("f", "g"), gap_seconds=60.0,
                  counts=np.asarray([[3, 1, 2, 5], [0, 4, 4, 4]], dtype=np.int64),
                  spot_prices=np.asarray([[1.0, 2.0, 3.0, 4.0], [6.0, 6.0, 0.0, 3.0]]),
                  priced_by_file=(True, True))
    same = spot_on_steps(ts, 60.0, 2)
    assert same.counts.tolist() == [[3, 1], [0, 4]] and same.spot_prices.tolist() == [[1.0, 2.0], [6.0, 6.0]]
    # 180 s: [0, 180) covers ticks 0-2 whole: the fewest VMs, the mean price
    three = spot_on_steps(ts, 180.0, 1)
    assert three.counts.tolist() == [[1], [0]] and three.spot_prices.tolist() == [[2.0], [4.0]]
    assert three.gap_seconds == 180.0
    # 150 s: [0, 150) = ticks 0, 1 and half of 2: price (60 + 120 + 90) / 150 per zone a
    odd = spot_on_steps(ts, 150.0, 1)
    assert odd.counts.tolist() == [[1], [0]]
    assert odd.spot_prices[0, 0] == pytest.approx((60 * 1.0 + 60 * 2.0 + 30 * 3.0) / 150)
    assert odd.spot_prices[1, 0] == pytest.approx((60 * 6.0 + 60 * 6.0 + 30 * 0.0) / 150)
    assert ts.counts.tolist() == [[3, 1, 2, 5], [0, 4, 4, 4]]  # the input is left as it was


# ----------------------------------------------------------------------------- serving: checks


def test_prepare_and_simulate_refuse_exactly() -> None:
    ts = zone([1, 1], gap=60.0)
    d = Demand(60.0, np.ones(2), "d.csv")
    cases = [
        (FleetSpec(replica_rps=0.0), 0.0, "replica capacity must be > 0 requests/s, got 0.0"),
        (FleetSpec(replica_rps=-1.0), 0.0, "replica capacity must be > 0 requests/s, got -1.0"),
        (FleetSpec(replica_rps=1.0), 1.0, "held-out start must be a fraction in [0, 1), got 1.0"),
        (FleetSpec(replica_rps=1.0), -0.1, "held-out start must be a fraction in [0, 1), got -0.1"),
        (FleetSpec(replica_rps=1.0, step_seconds=-5.0), 0.0,
         "simulation step must be a number of seconds > 0, got -5.0"),
        (FleetSpec(replica_rps=1.0, step_seconds=float("inf")), 0.0,
         "simulation step must be a number of seconds > 0, got inf"),
        (FleetSpec(replica_rps=1.0, step_seconds=121.0), 0.0,
         "d.csv: the overlap of the demand and spot traces is shorter than one simulation step (121 s); "
         "give a shorter step (simulate-serving --step-seconds)"),
    ]
    for fleet, held, want in cases:
        with pytest.raises(TraceError) as info:
            simulate_fleet(ts, d, fleet, "ondemand", ondemand_price=1.0, held_out_from=held)
        assert str(info.value) == want
    with pytest.raises(TraceError) as info:
        simulate_fleet(ts, d, FleetSpec(replica_rps=1.0), "cheapest", ondemand_price=1.0)
    assert str(info.value) == ("unknown fleet policy 'cheapest': use one of ondemand, spot-one-zone, "
                               "spot-hedge, predictive")
    assert FLEET_POLICIES == ("ondemand", "spot-one-zone", "spot-hedge", "predictive")
    # held out from 0.5 of one step: step 0 is still evaluated (int(0.5) = 0)
    one = simulate_fleet(zone([1], gap=60.0), Demand(60.0, np.ones(1), "d"), FleetSpec(replica_rps=1.0),
                         "ondemand", ondemand_price=1.0, held_out_from=0.5)
    assert one.in_sample is True and one.hours == pytest.approx(1 / 60)


def test_every_result_field_by_hand() -> None:
    """tests/test_sim.py::test_serving_fleet_hand_computed's spot-hedge run (one 1-node zone up in
    hours 0, 1, 3; 2 req/s on 60 s steps; 1 req/s a replica, no start-up, 1 extra spot, on-demand
    $3/h): hours 0, 1, 3 hold 3 spot replicas at $1/h, hour 2 two on-demand: $15 of $24, 11 replica-
    hours over 4 h. Held out from 0.5: hours 2 and 3 count, $6 + $3 of $12; the preemption of 3
    replicas at the start of hour 2 is counted; 5 replica-hours over 2 h."""
    ts = zone([1, 1, 0, 1])
    d = Demand(60.0, np.full(240, 2.0), "d")
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=0, extra_spot=1, downscale_minutes=0)
    r = simulate_fleet(ts, d, fleet, "spot-hedge", ondemand_price=3.0)
    assert r == ServingResult(policy="spot-hedge", hours=pytest.approx(4.0), cost_usd=pytest.approx(15.0),
                              ondemand_cost_usd=pytest.approx(24.0), slo_violation_fraction=0.0,
                              unserved_fraction=0.0, preemptions=3, mean_replicas=pytest.approx(2.75),
                              forecaster=None, in_sample=True, note="", step_seconds=60.0)
    assert r.savings_fraction == pytest.approx(1 - 15 / 24)
    h = simulate_fleet(ts, d, fleet, "spot-hedge", ondemand_price=3.0, held_out_from=0.5)
    assert (h.hours, h.cost_usd, h.ondemand_cost_usd) == (pytest.approx(2.0), pytest.approx(9.0),
                                                          pytest.approx(12.0))
    assert (h.preemptions, h.mean_replicas, h.in_sample) == (3, pytest.approx(2.5), False)
    # the ondemand policy is its own baseline
    o = simulate_fleet(ts, d, fleet, "ondemand", ondemand_price=3.0, held_out_from=0.5)
    assert (o.cost_usd, o.ondemand_cost_usd, o.savings_fraction) == (pytest.approx(12.0), pytest.approx(12.0),
                                                                     pytest.approx(0.0))


def test_savings_fraction_without_an_ondemand_cost_is_zero() -> None:
    r = ServingResult(policy="spot-hedge", hours=1.0, cost_usd=3.0, ondemand_cost_usd=4.0,
                      slo_violation_fraction=0.0, unserved_fraction=0.0, preemptions=0, mean_replicas=1.0)
    assert r.savings_fraction == 0.25
    assert dataclasses.replace(r, ondemand_cost_usd=0.0).savings_fraction == 0.0


# ----------------------------------------------------------------------------- serving: pieces


def test_ticks_round_up_to_whole_steps() -> None:
    assert (_ticks(5, 60), _ticks(5, 120), _ticks(0, 60), _ticks(1, 20), _ticks(0.5, 60)) == (5, 3, 0, 3, 1)
    assert _ticks(8.3, 6) == 83  # 8.3 x 60 / 6 is 83.00000000000001 in floats: 83 whole steps, not 84


def test_group_grows_readies_and_shrinks_newest_first() -> None:
    g = _Group()
    assert (g.ready, g.total, g.pending) == (0, 0, [])
    g.grow(0, 1)
    g.grow(-2, 1)
    assert (g.total, g.pending) == (0, [])
    g.grow(2, 3)
    g.grow(3, 5)
    assert (g.ready, g.total, g.pending) == (0, 5, [[3, 2], [5, 3]])
    g.advance(2)
    assert g.ready == 0
    g.advance(4)  # ready at 3: at or before 4
    assert (g.ready, g.total, g.pending) == (2, 5, [[5, 3]])
    assert g.shrink(0) == 0 and g.shrink(-1) == 0 and g.total == 5
    assert g.shrink(1) == 1  # the newest, still starting, goes first
    assert (g.ready, g.total, g.pending) == (2, 4, [[5, 2]])
    assert g.shrink(3) == 3  # both starting, then one ready
    assert (g.ready, g.total, g.pending) == (1, 1, [])
    assert g.shrink(5) == 1 and (g.ready, g.total) == (0, 0)
    g.grow(1, 7)
    g.grow(1, 7)
    g.advance(7)
    assert (g.ready, g.pending) == (2, [])


def test_place_spot_water_fills_and_releases_from_the_dearest() -> None:
    def place(target: int, counts: list[int], unlimited: list[bool], order: list[int],
              have: list[int] | None = None) -> list[int]:
        groups = [_Group() for _ in counts]
        for g, n in zip(groups, have or [0] * len(counts), strict=True):
            g.grow(n, 0)
        _place_spot(groups, order, target, counts, unlimited, 9)
        return [g.total for g in groups]

    # three 1-node zones tied at 0 share 4 evenly, the cheapest first: 2 1 1
    assert place(4, [1, 1, 1], [True] * 3, [0, 1, 2]) == [2, 1, 1]
    assert place(4, [1, 1, 1], [True] * 3, [2, 0, 1]) == [1, 1, 2]
    # a zone with no VMs gets none; multi-node zones are capped by their counts
    assert place(6, [2, 5, 0], [False, False, False], [0, 1, 2]) == [2, 4, 0]
    assert place(9, [2, 5, 0], [False, False, False], [0, 1, 2]) == [2, 5, 0]  # no room: as many as fit
    # a lone lowest zone fills up to the next level (no further than the target), then the tied share
    assert place(5, [1, 1], [True, True], [0, 1], have=[0, 3]) == [2, 3]
    assert place(9, [1, 1], [True, True], [0, 1], have=[0, 3]) == [5, 4]
    # too many: release from the dearest zones first
    assert place(3, [1, 1, 1], [True] * 3, [0, 1, 2], have=[2, 2, 2]) == [2, 1, 0]
    assert place(2, [1, 1, 1], [True] * 3, [2, 1, 0], have=[2, 2, 2]) == [0, 0, 2]
    assert place(6, [1, 1, 1], [True] * 3, [0, 1, 2], have=[2, 2, 2]) == [2, 2, 2]
    # new replicas are ready at the time given
    groups = [_Group()]
    _place_spot(groups, [0], 2, [1], [True], 9)
    assert groups[0].pending == [[9, 2]]


def test_peak_needs_order_replicas_a_startup_ahead() -> None:
    """Half-hour steps from 0, 30 min start-up; peaks of 4 replicas over [1 h, 2 h) and 6 over
    [1.5 h, 2.5 h). Step t asks for a peak open at some instant of [t/2 h, t/2 h + 30 min]: the
    first from step 1 (its opening is the end of that interval) to step 3 (step 4 starts at its
    end, excluded), the second from step 2 to step 4."""
    t0 = 1_000_000.0
    fleet = FleetSpec(replica_rps=1.0, startup_minutes=30, trace_start=t0,
                      peaks=(Peak(Interval(t0 + 3600, t0 + 7200), 4),
                             Peak(Interval(t0 + 5400, t0 + 9000), 6)))
    need = peak_needs(fleet, 6, 1800.0)
    assert need is not None and need.tolist() == [0, 4, 6, 6, 6, 0] and need.dtype == np.int64
    assert peak_needs(FleetSpec(replica_rps=1.0), 6, 1800.0) is None


def test_labels_name_headroom_in_replicas_hold_and_probation() -> None:
    base = Candidate("recent-max", season=3)
    assert _label(base, 2.0) == "recent-max/3"
    assert _label(dataclasses.replace(base, plus=4.0), 2.0) == "recent-max/3 +2 spot"
    assert _label(dataclasses.replace(base, plus=0.9), 2.0) == "recent-max/3"  # under half a replica: +0
    assert _label(dataclasses.replace(base, plus=6.0, hold=True), 2.0) == "recent-max/3 +3 spot hold"
    assert _label(dataclasses.replace(base, hold=True), 2.0) == "recent-max/3 hold"
    chosen = Choice(best=dataclasses.replace(base, plus=2.0), scores=(), scored_ticks=0)
    assert _forecaster_label(chosen, 2.0, 0.0) == "recent-max/3 +1 spot"
    assert _forecaster_label(chosen, 2.0, 10.0) == "recent-max/3 +1 spot probation 10 min"
    assert _forecaster_label(None, 2.0, 0.0) is None
    assert _forecaster_label(None, 2.0, 20.0) == "reactive probation 20 min"
    assert _forecaster_label(None, 2.0, 7.5) == "reactive probation 7.5 min"
