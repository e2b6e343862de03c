"""Cross-cloud trace sets synthesised from traces of other times and ticks (sim/mix.py):
hand-computed resampling and tiling, and errors naming what cannot be combined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ray_multicloud.sim import TraceError, load_traces
from ray_multicloud.sim.mix import combine, relabel, resample, tile
from ray_multicloud.sim.traces import TraceSet


def one(tmp_path: Path, name: str, data: list[int], prices: list[float], gap: float) -> TraceSet:
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}_x.json").write_text(json.dumps({"metadata": {"gap_seconds": gap}, "data": data,
                                                   "prices": prices}))
    return load_traces([d])


def test_resample_takes_the_min_of_counts_and_mean_of_prices(tmp_path: Path) -> None:
    ts = one(tmp_path, "us-east-1a", [1, 1, 0, 1, 1, 1, 1], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 30)
    r = resample(ts, 60)
    # 60 s ticks over 30 s ones: [0,1] [2,3] [4,5]; the 7th source tick is a partial tick, dropped
    assert r.counts.tolist() == [[1, 0, 1]]
    assert r.spot_prices.tolist() == [[1.5, 3.5, 5.5]]
    # a tick that straddles source ticks (45 s over 30 s): [0,1] [1,2] [3,4] [4,5] -> min 1, 0, 1, 1
    r45 = resample(ts, 45)
    assert r45.counts.tolist() == [[1, 0, 1, 1]]
    assert "resampled from 30 s to 45 s" in r45.notes[-1]


def test_tile_repeats_and_says_so(tmp_path: Path) -> None:
    ts = one(tmp_path, "us-central1-a", [1, 0, 1], [1.0, 2.0, 3.0], 60)
    t = tile(ts, 7)
    assert t.counts.tolist() == [[1, 0, 1, 1, 0, 1, 1]]
    assert "repeated 3 times" in t.notes[-1]


def test_combine_aligns_ticks_and_keeps_clouds(tmp_path: Path) -> None:
    a = one(tmp_path, "us-east-1a", [1] * 8, [1.0] * 8, 30)
    g = one(tmp_path, "us-central1-a", [1, 0, 1, 1], [2.0] * 4, 60)
    az = relabel(one(tmp_path, "us-west-2a", [0, 1], [1.0, 1.0], 120), names=["eastus-1"], regions=["eastus"],
                 clouds=["azure"], prices=[0.4], why="stand-in")
    c = combine([a, g, az], 120)
    assert c.names == ("us-east-1a", "us-central1-a", "eastus-1")
    assert c.clouds == ("aws", "gcp", "azure") and c.regions[2] == "eastus"
    assert c.counts.tolist() == [[1, 1], [0, 1], [0, 1]]
    assert np.allclose(c.spot_prices[2], 0.4)


def test_errors_name_what_cannot_be_combined(tmp_path: Path) -> None:
    a = one(tmp_path, "us-east-1a", [1, 1], [1.0, 1.0], 30)
    with pytest.raises(TraceError, match="less than one 600 s tick"):
        resample(a, 600)
    with pytest.raises(TraceError, match=r"named twice.*us-east-1a"):
        combine([a, a], 30)
    odd = one(tmp_path, "zone7", [1, 1], [1.0, 1.0], 30)
    with pytest.raises(TraceError, match="unknown cloud in a cross-cloud set: zone7"):
        combine([a, odd], 30)
    with pytest.raises(TraceError, match="2 names for 1 zones"):
        relabel(a, names=["x", "y"], regions=["r"], clouds=["aws"], why="")
