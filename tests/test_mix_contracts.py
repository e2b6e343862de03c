"""Contracts of `ray_multicloud.sim.mix`, hand-computed from its docstrings and messages (mutation
testing, issue 12 item 5): resampling down and up (min of counts over every overlapping source
tick, mean of prices), the notes' exact text, tiling's repeat count and cut, relabelling's checks,
and combining's checks and cut. Pure, no Ray, no files: trace sets are built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ray_multicloud.sim.mix import combine, relabel, resample, tile
from ray_multicloud.sim.traces import TraceError, TraceSet


def ts_of(counts: list[list[int]], prices: list[list[float]] | None = None, *, gap: float = 30.0,
          names: tuple[str, ...] | None = None, clouds: tuple[str, ...] | None = None,
          notes: tuple[str, ...] = ()) -> TraceSet:
    c = np.asarray(counts, dtype=np.int64)
    p = np.asarray(prices, dtype=np.float64) if prices is not None else np.ones(c.shape)
    z = c.shape[0]
    nm = names or tuple(f"us-east-1{'abcdefgh'[i]}" for i in range(z))
    return TraceSet(names=nm, regions=tuple(n[:-1] for n in nm), files=tuple(f"/t/{n}.json" for n in nm),
                    gap_seconds=gap, counts=c, spot_prices=p, priced_by_file=(True,) * z, notes=notes,
                    clouds=clouds if clouds is not None else ("aws",) * z)


# ----------------------------------------------------------------------------- resample


@pytest.mark.parametrize("gap", [0.0, -30.0, float("nan"), float("inf")])
def test_resample_refuses_a_tick_that_is_no_positive_number(gap: float) -> None:
    with pytest.raises(TraceError) as info:
        resample(ts_of([[1, 1]]), gap)
    assert str(info.value) == f"tick must be a positive number of seconds, got {gap}"


def test_resample_refuses_a_set_shorter_than_one_tick_naming_three_zones() -> None:
    four = ts_of([[1, 1]] * 4)
    with pytest.raises(TraceError) as info:
        resample(four, 61)
    # 2 ticks of 30 s span 60 s; the label names the first three zones then "..."
    assert str(info.value) == ("trace set (us-east-1a, us-east-1b, us-east-1c, ...) spans 60 s, less than "
                               "one 61 s tick: choose a shorter common tick")
    three = ts_of([[1, 1]] * 3)
    with pytest.raises(TraceError, match=r"^trace set \(us-east-1a, us-east-1b, us-east-1c\) spans"):
        resample(three, 61)
    # exactly one tick of the set's whole span is enough
    assert resample(three, 60).counts.tolist() == [[1]] * 3


def test_resample_to_the_same_tick_is_the_set_itself() -> None:
    ts = ts_of([[1, 0, 1]], notes=("n",))
    assert resample(ts, 30.0) is ts


def test_resample_down_min_of_counts_mean_of_prices_and_the_note() -> None:
    ts = ts_of([[3, 2, 5, 4, 1, 6, 7]], [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]], notes=("before",))
    r = resample(ts, 45)
    # 210 s hold four 45 s ticks: [0,45) [45,90) [90,135) [135,180) over source ticks 0-1, 1-2, 3-4, 4-5
    assert r.counts.tolist() == [[2, 2, 1, 1]]
    assert r.spot_prices.tolist() == [[1.5, 2.5, 4.5, 5.5]]
    assert r.gap_seconds == 45.0 and type(r.gap_seconds) is float
    assert r.counts.dtype == np.int64 and r.spot_prices.dtype == np.float64
    assert r.notes == ("before", "us-east-1a: resampled from 30 s to 45 s ticks (a tick is available only "
                                 "if every source tick inside it was; prices averaged)")
    assert r.names == ts.names and r.clouds == ts.clouds and r.files == ts.files


def test_resample_up_holds_the_source_tick() -> None:
    ts = ts_of([[3, 1, 2], [0, 5, 5]], [[1.0, 4.0, 7.0], [2.0, 2.0, 8.0]])
    r = resample(ts, 20)
    # 90 s hold 4.5 -> 4 ticks of 20 s: [0,20) in 0; [20,40) in 0-1; [40,60) in 1; [60,80) in 2
    assert r.counts.tolist() == [[3, 1, 1, 2], [0, 0, 5, 5]]
    assert r.spot_prices.tolist() == [[1.0, 2.5, 4.0, 7.0], [2.0, 2.0, 2.0, 8.0]]


def test_resample_tick_edges_that_meet_exactly_take_one_source_tick() -> None:
    # 10 ticks of 0.1 s into 0.3 s: 3 ticks, [0,0.3) [0.3,0.6) [0.6,0.9), whatever the float error of
    # 0.3 / 0.1 (2.9999999999999996): tick k holds source ticks 3k..3k+2, never 3k+3
    ts = ts_of([[5, 6, 7, 1, 8, 9, 9, 2, 9, 0]], gap=0.1)
    r = resample(ts, 0.3)
    assert r.counts.tolist() == [[5, 1, 2]]


# ----------------------------------------------------------------------------- tile


def test_tile_refuses_no_ticks() -> None:
    for bad in (0, -3):
        with pytest.raises(TraceError) as info:
            tile(ts_of([[1]]), bad)
        assert str(info.value) == f"tile length must be >= 1 tick, got {bad}"


def test_tile_cuts_a_set_already_long_enough_and_adds_no_note() -> None:
    ts = ts_of([[1, 0, 1, 1]], [[1.0, 2.0, 3.0, 4.0]], notes=("n",))
    t = tile(ts, 3)
    assert t.counts.tolist() == [[1, 0, 1]] and t.spot_prices.tolist() == [[1.0, 2.0, 3.0]]
    assert t.notes == ("n",)
    same = tile(ts, 4)
    assert same.counts.tolist() == [[1, 0, 1, 1]] and same.notes == ("n",)
    assert tile(ts, 1).counts.tolist() == [[1]]  # one tick is a valid length


def test_tile_repeats_prices_too_and_says_so_exactly() -> None:
    # 120 ticks of 30 s = 1.0 h, to 250 ticks (2.08 h): repeated ceil(250 / 120) = 3 times
    ts = ts_of([[1] * 119 + [0]], [[float(i) for i in range(120)]], notes=("n",))
    t = tile(ts, 250)
    assert t.ticks == 250
    assert t.counts[0, 119] == 0 and t.counts[0, 239] == 0 and t.counts[0, 249] == 1
    assert t.spot_prices[0, 120] == 0.0 and t.spot_prices[0, 249] == 9.0
    assert t.notes == ("n", "us-east-1a: its 1.0 h trace repeated 3 times end to end to cover 2 h "
                            "(synthetic beyond the first 1.0 h)")
    two = tile(ts, 240)  # exactly twice
    assert "repeated 2 times" in two.notes[-1] and two.ticks == 240
    assert t.counts.shape == t.spot_prices.shape == (1, 250)  # one zone stays one zone
    # 420 ticks of 30 s cover 3.5 h, which ".0f" writes as 4 (half to even); 4 repeats
    assert tile(ts, 420).notes[-1] == ("us-east-1a: its 1.0 h trace repeated 4 times end to end to cover "
                                       "4 h (synthetic beyond the first 1.0 h)")


# ----------------------------------------------------------------------------- relabel


def test_relabel_checks_each_list_and_the_prices() -> None:
    ts = ts_of([[1], [1]])
    ok = {"names": ["a", "b"], "regions": ["r", "s"], "clouds": ["azure", "gcp"]}
    for key in ("names", "regions", "clouds"):
        with pytest.raises(TraceError) as info:
            relabel(ts, **{**ok, key: ["x"]}, why="w")  # type: ignore[arg-type]
        assert str(info.value) == f"relabel us-east-1a, us-east-1b: 1 {key} for 2 zones"
    for prices in ([1.0], [1.0, 0.0], [1.0, -2.0], [float("nan"), 1.0], [1.0, float("inf")]):
        with pytest.raises(TraceError) as info:
            relabel(ts, **ok, prices=prices, why="w")
        assert str(info.value) == (f"relabel us-east-1a, us-east-1b: prices must be 2 positive USD/h, "
                                   f"got {prices}")


def test_relabel_keeps_availability_and_says_why() -> None:
    ts = ts_of([[1, 0], [0, 2]], [[1.0, 2.0], [3.0, 4.0]], notes=("n",))
    r = relabel(ts, names=["eastus-1", "eastus-2"], regions=["eastus", "eastus"], clouds=["azure", "azure"],
                why="stand-in for Azure")
    assert r.counts.tolist() == [[1, 0], [0, 2]] and r.spot_prices.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert (r.names, r.regions, r.clouds) == (("eastus-1", "eastus-2"), ("eastus", "eastus"),
                                              ("azure", "azure"))
    assert r.priced_by_file == (True, True)
    assert r.notes == ("n", "eastus-1, eastus-2: availability of us-east-1a, us-east-1b (stand-in for Azure)")
    p = relabel(ts, names=["a", "b"], regions=["r", "r"], clouds=["gcp", "gcp"], prices=[0.5, 2], why="w")
    assert p.spot_prices.tolist() == [[0.5, 0.5], [2.0, 2.0]] and p.spot_prices.dtype == np.float64
    # whole-dollar prices are still USD/h as floats, like every TraceSet's spot_prices
    whole = relabel(ts, names=["a", "b"], regions=["r", "r"], clouds=["gcp", "gcp"], prices=[1, 2], why="w")
    assert whole.spot_prices.tolist() == [[1.0, 1.0], [2.0, 2.0]] and whole.spot_prices.dtype == np.float64
    assert p.priced_by_file == (False, False)


# ----------------------------------------------------------------------------- combine


def test_combine_refuses_nothing_and_unknown_clouds() -> None:
    with pytest.raises(TraceError) as info:
        combine([], 30)
    assert str(info.value) == "no trace set to combine"
    a = ts_of([[1, 1]])
    b = ts_of([[1, 1], [1, 1]], names=("zone7", "zone8"), clouds=("", ""))
    with pytest.raises(TraceError) as info:
        combine([a, b], 30)
    assert str(info.value) == "zones of unknown cloud in a cross-cloud set: zone7, zone8; relabel them"
    c = ts_of([[1, 1]], names=("zone9",), clouds=())  # no clouds at all: unknown too
    with pytest.raises(TraceError, match="unknown cloud in a cross-cloud set: zone9;"):
        combine([a, c], 30)
    with pytest.raises(TraceError) as info:
        combine([ts_of([[1], [1]]), ts_of([[1], [1]])], 30)
    assert str(info.value) == ("zones named twice across the combined sets: us-east-1a, us-east-1b; "
                               "relabel one")


def test_combine_stacks_and_cuts_to_the_shortest_with_a_note() -> None:
    a = ts_of([[1, 0, 1, 1, 0, 1, 1, 1]], [[1.0, 3.0, 1.0, 1.0, 2.0, 2.0, 5.0, 5.0]], notes=("a",))
    g = ts_of([[2, 2, 0]], [[0.5, 0.5, 0.25]], gap=60.0, names=("us-central1-a",), clouds=("gcp",))
    c = combine([a, g], 60)
    # a on 60 s ticks: 4 ticks, [0, 1, 0, 1], prices [2, 1, 2, 5]; g already 60 s: 3 ticks; cut to 3
    assert c.counts.tolist() == [[0, 1, 0], [2, 2, 0]]
    assert c.spot_prices.tolist() == [[2.0, 1.0, 2.0], [0.5, 0.5, 0.25]]
    assert c.names == ("us-east-1a", "us-central1-a") and c.regions == ("us-east-1", "us-central1-")
    assert c.files == ("/t/us-east-1a.json", "/t/us-central1-a.json") and c.clouds == ("aws", "gcp")
    assert c.priced_by_file == (True, True) and c.gap_seconds == 60.0 and type(c.gap_seconds) is float
    assert c.notes == ("a", "us-east-1a: resampled from 30 s to 60 s ticks (a tick is available only if "
                            "every source tick inside it was; prices averaged)",
                       "combined sets cut to the shortest: 3 ticks of 60 s (0 h)")
    # 210 ticks of 60 s are 3.5 h, which ".0f" writes as 4 (half to even)
    long = combine([ts_of([[1] * 300], gap=60.0), ts_of([[1] * 210], gap=60.0, names=("x",))], 60)
    assert long.notes == ("combined sets cut to the shortest: 210 ticks of 60 s (4 h)",)
    same = combine([ts_of([[1, 1]]), ts_of([[0, 1]], names=("x",))], 30)
    assert same.notes == () and same.counts.tolist() == [[1, 1], [0, 1]]
