"""Predictive serving capacity, live: the pure plan (policy/predictive.py), the controller's step with
fake I/O (predictive_guard.py), the rate log (serve/rate_log.py) and the ``predictive:`` reader
(cluster_config/predictive.py). No Ray: the rate reader, request_resources and the clock are fakes.

Expected values are worked out by hand in the comments."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cluster_config.predictive import parse_predictive
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.forecast import Candidate
from ray_multicloud.policy.predictive import Peak, PredictiveSpec, bucket, peak_floor, plan_capacity
from ray_multicloud.policy.rebalance import Window
from ray_multicloud.predictive_guard import PredictiveGuard
from ray_multicloud.serve.rate_log import (
    append_rate,
    floor_path,
    publish_floors,
    rate_log_path,
    read_floor,
    read_rates,
)

# Ticks of 30 min: an hour is a season of 2 ticks. Demand alternates 10/s, 0/s each half hour
# (r[t] = 10 for even t); the 40th tick (t = 39) was quiet, the next (t = 40) will be busy.
HALF_HOUR = 1800.0
ALTERNATING = [10.0 if t % 2 == 0 else 0.0 for t in range(40)]


def test_a_seasonal_history_asks_ahead_for_what_persistence_would_not() -> None:
    # Lead 1 tick. Persistence forecasts r[t] for r[t+1]: wrong by 10 every tick; seasonal-naive/2
    # forecasts r[t+1-2] = r[t-1]: exact, loss 0, so the backtest picks it (ties go to the earlier
    # candidate; seasonal-mean/2/3 is also exact but comes later). Its forecast for t = 40 is
    # r[39 - 1] = r[38] = 10. Need: ceil(max(rate now 0, 10) / 5) = 2 replicas, 2 per node -> 1 node.
    spec = PredictiveSpec(replica_rps=5.0, lead_s=HALF_HOUR, tick_s=HALF_HOUR, replicas_per_node=2)
    plan = plan_capacity(ALTERNATING, spec, now=0.0)
    assert plan.mode == "predictive"
    assert plan.forecaster == Candidate("seasonal-naive", 2)
    assert plan.rate_now == 0.0 and plan.predicted_rate == 10.0
    assert (plan.replicas, plan.nodes) == (2, 1)
    # Reactive sizing on the same history would ask for ceil(0 / 5) = 0.
    assert plan_capacity(ALTERNATING, spec, now=0.0, candidate=Candidate("persistence")).replicas == 0


def test_the_rate_now_is_a_floor_under_a_falling_forecast() -> None:
    # One more tick (t = 40, busy): now 10/s, the forecast for t = 41 is r[39] = 0; the plan keeps
    # what is served now: ceil(10 / 4) = 3 replicas.
    spec = PredictiveSpec(replica_rps=4.0, lead_s=HALF_HOUR, tick_s=HALF_HOUR)
    plan = plan_capacity([*ALTERNATING, 10.0], spec, now=0.0)
    assert plan.predicted_rate == 0.0 and plan.replicas == 3 and plan.nodes == 3


def test_too_short_a_history_is_reactive_and_says_why() -> None:
    # Lead 300 s at 30 s ticks = 10 ticks; a forecast needs 10 + 20 = 30 ticks; 29 is too short.
    spec = PredictiveSpec(replica_rps=10.0, lead_s=300.0, tick_s=30.0)
    plan = plan_capacity([5.0] * 28 + [25.0], spec, now=0.0)
    assert plan.mode == "reactive" and plan.forecaster is None and plan.predicted_rate is None
    assert plan.replicas == 3  # ceil(25 / 10)
    assert "too short" in plan.reason and "needs 30" in plan.reason
    assert plan_capacity([5.0] * 29 + [25.0], spec, now=0.0).mode == "predictive"  # 30 ticks


def test_no_history_at_all_asks_for_the_minimum() -> None:
    spec = PredictiveSpec(replica_rps=10.0, min_replicas=1)
    plan = plan_capacity([], spec, now=0.0)
    assert (plan.mode, plan.replicas, plan.nodes) == ("reactive", 1, 1)


def test_a_known_peak_is_asked_for_lead_ahead_and_capped() -> None:
    # Lead 300 s. A peak opening 200 s from now is inside [now, now + lead]: its 7 replicas count.
    # One opening 400 s from now is not yet; one that closed 1 s ago no longer.
    spec = PredictiveSpec(replica_rps=10.0, lead_s=300.0, tick_s=30.0)
    now = 1_000_000.0
    soon = Peak(Window(now + 200, now + 3600), 7, "launch")
    later = Peak(Window(now + 400, now + 3600), 9, "later")
    over = Peak(Window(now - 3600, now - 1), 11, "over")
    plan = plan_capacity([12.0], spec, now=now, peaks=[soon, later, over])
    assert plan.peak_replicas == 7 and plan.replicas == 7  # the need now is ceil(12 / 10) = 2
    assert "peak launch asks 7" in plan.reason
    capped = PredictiveSpec(replica_rps=10.0, lead_s=300.0, tick_s=30.0, max_replicas=5)
    assert plan_capacity([12.0], capped, now=now, peaks=[soon]).replicas == 5
    # A peak shorter than a tick, inside the lead window, is still seen (every tick is sampled).
    blip = Peak(Window(now + 95, now + 100), 4)
    assert peak_floor([blip], now, spec)[0] == 4


def test_bucket_averages_per_tick_and_carries_gaps() -> None:
    # Ticks of 10 s; now = 100 -> tick 10 runs, ticks 5..9 are the last 50 s. Samples: tick 5: 2 and 4
    # (mean 3), tick 6: none (carried: 3), tick 7: 8, tick 9: 1; tick 8 carried (8); tick 10 (running)
    # and tick 2 (too old) ignored.
    samples = [(20.0, 99.0), (51.0, 2.0), (59.0, 4.0), (72.0, 8.0), (95.0, 1.0), (100.0, 50.0)]
    assert bucket(samples, tick_s=10.0, now=100.0, keep_s=50.0) == [3.0, 3.0, 8.0, 8.0, 1.0]
    assert bucket([], tick_s=10.0, now=100.0, keep_s=50.0) == []


class FakeRequest:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, float]]] = []

    def __call__(self, bundles: list[dict[str, float]]) -> None:
        self.calls.append(bundles)


def pool_cfg(**predictive: Any) -> Any:
    found = parse_predictive("serve_pool", {"predictive": {"replica_rps": 5, "lead": "30m", "tick": "30m",
                                                           "history": "1d", **predictive}})
    assert found is not None
    return found


def test_guard_asks_the_autoscaler_for_bundles_of_the_node_shape(tmp_path: Path) -> None:
    # The alternating history as 40 half-hour ticks ending just before now; the plan is the first
    # test's (2 replicas) at 1 replica per node -> 2 bundles of the node's resources.
    now = 100 * HALF_HOUR
    samples = [(now - (40 - t) * HALF_HOUR + 60.0, r) for t, r in enumerate(ALTERNATING)]
    request = FakeRequest()
    published: list[dict[str, Any]] = []
    guard = PredictiveGuard("c", tmp_path, {"serve_pool": pool_cfg()}, {"serve_pool": {"CPU": 4, "GPU": 1}},
                            read=lambda pool, since: [s for s in samples if s[0] >= since],
                            request=request, publish=lambda f: published.append(dict(f)))
    plans = guard.tick(now)
    assert plans["serve_pool"].replicas == 2
    assert request.calls == [[{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}]]
    assert published[-1]["serve_pool"]["replicas"] == 2 and published[-1]["serve_pool"]["at"] == now
    guard.tick(now + 1)  # the same bundles: Ray's standing request is not sent again
    assert len(request.calls) == 1


def test_guard_logs_the_reactive_fallback_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Three samples of 30 min: far below the 1 + 20 ticks a forecast needs.
    now = 10 * HALF_HOUR
    samples = [(now - k * HALF_HOUR + 5.0, 12.0) for k in (3, 2, 1)]
    request = FakeRequest()
    guard = PredictiveGuard("c", tmp_path, {"serve_pool": pool_cfg()}, {"serve_pool": {"GPU": 1}},
                            read=lambda pool, since: samples, request=request, publish=lambda f: None)
    with caplog.at_level(logging.INFO, logger="ray_multicloud.predictive_guard"):
        for k in range(3):
            plans = guard.tick(now + k)
    lines = [r.getMessage() for r in caplog.records if "too short" in r.getMessage()]
    assert len(lines) == 1 and "scaling reactively" in lines[0]
    assert plans["serve_pool"].mode == "reactive" and plans["serve_pool"].replicas == 3  # ceil(12 / 5)
    assert request.calls == [[{"GPU": 1.0}] * 3]


def test_guard_asks_nothing_while_hibernated_or_disabled(tmp_path: Path) -> None:
    request = FakeRequest()
    guard = PredictiveGuard("c", tmp_path, {"serve_pool": pool_cfg()}, {"serve_pool": {"GPU": 1}},
                            read=lambda pool, since: [(1.0, 9.0)], request=request,
                            hibernated=lambda: True)
    assert guard.tick(HALF_HOUR * 3) == {} and request.calls == []
    off = PredictiveGuard("c", tmp_path, {"serve_pool": pool_cfg(enabled=False)}, {"serve_pool": {"GPU": 1}},
                          read=lambda pool, since: [(1.0, 9.0)], request=request)
    assert off.tick(HALF_HOUR * 3) == {} and request.calls == []


def test_guard_reads_the_rate_log_and_publishes_the_floor(tmp_path: Path) -> None:
    # The default I/O: the Serve policy's rate log in, the floors file out.
    log = rate_log_path(tmp_path, "c", "serve_pool")
    append_rate(log, 3 * HALF_HOUR + 10, 7.0)
    request = FakeRequest()
    guard = PredictiveGuard("c", tmp_path, {"serve_pool": pool_cfg()}, {"serve_pool": {"GPU": 1}},
                            request=request)
    guard.tick(4 * HALF_HOUR)
    assert request.calls == [[{"GPU": 1.0}] * 2]  # ceil(7 / 5)
    assert read_floor(floor_path(tmp_path, "c"), "serve_pool", now=4 * HALF_HOUR, max_age_s=60) == 2


def test_rate_log_survives_damage_and_is_cut_when_large(tmp_path: Path) -> None:
    log = tmp_path / "r.csv"
    log.write_text("garbage\n1.0,2.0\nnan,3\n2.0,x\n")
    append_rate(log, 3.0, 4.0)
    assert read_rates(log) == [(1.0, 2.0), (3.0, 4.0)]
    assert read_rates(log, since=2.0) == [(3.0, 4.0)]
    assert read_rates(tmp_path / "missing.csv") == []
    for k in range(200):
        append_rate(log, 10.0 + k, 1.0, max_bytes=1000)
    assert log.stat().st_size <= 1000 and read_rates(log)[-1] == (209.0, 1.0)


def test_floor_is_ignored_when_stale_or_damaged(tmp_path: Path) -> None:
    path = floor_path(tmp_path, "c")
    publish_floors(path, {"p": {"replicas": 4, "at": 100.0, "reason": "x"}})
    assert read_floor(path, "p", now=150.0, max_age_s=60) == 4
    assert read_floor(path, "p", now=161.0, max_age_s=60) is None
    assert read_floor(path, "other", now=150.0, max_age_s=60) is None
    path.write_text("{not json")
    assert read_floor(path, "p", now=150.0, max_age_s=60) is None


# -- the predictive: section -------------------------------------------------------------------

KEY = "available_node_types.serve_pool.node_config.predictive"


def parse(section: Any) -> Any:
    return parse_predictive("serve_pool", {"predictive": section}, now=0.0)


def test_reader_defaults_and_peaks() -> None:
    found = parse({"replica_rps": 12, "lead": "6m", "max_replicas": 16, "peaks": [
        {"days": ["mon-fri"], "from": "09:00", "to": "11:00", "tz": "Europe/Berlin", "replicas": 8},
        {"start": "2026-11-27T00:00:00Z", "end": "2026-11-28T00:00:00Z", "replicas": 16}]})
    spec = found.spec
    assert (spec.replica_rps, spec.lead_s, spec.tick_s, spec.replicas_per_node) == (12.0, 360.0, 30.0, 1)
    assert (spec.min_replicas, spec.max_replicas) == (0, 16)
    assert (found.history_s, found.refit_s, found.lead_measured) == (15 * 86400.0, 3600.0, False)
    assert [p.replicas for p in found.peaks] == [8, 16]
    # 2026-11-30 is a Monday; 09:30 in Berlin (UTC+1 in winter) is 08:30 UTC.
    monday = 1796027400.0  # 2026-11-30T08:30:00Z
    assert found.peaks[0].window.contains(monday) and not found.peaks[0].window.contains(monday + 7200)
    assert found.peaks[1].window.contains(1795737600.0)  # 2026-11-27T00:00:00Z
    assert parse_predictive("serve_pool", {}) is None


def test_reader_reads_peaks_from_a_calendar(tmp_path: Path) -> None:
    ics = tmp_path / "launch.ics"
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:1\r\n"
                   "DTSTART:20261201T120000Z\r\nDTEND:20261201T130000Z\r\nSUMMARY:launch\r\n"
                   "END:VEVENT\r\nEND:VCALENDAR\r\n")
    found = parse_predictive("serve_pool", {"predictive": {
        "replica_rps": 1, "peaks_ical": {"path": str(ics), "replicas": 6}}}, now=1796000000.0)
    (peak,) = found.peaks
    assert peak.replicas == 6 and peak.window.contains(1796126400.0)  # 2026-12-01T12:00:00Z
    assert not peak.window.contains(1796130000.0)  # 13:00, the end


@pytest.mark.parametrize(("section", "key", "words"), [
    ({}, f"{KEY}.replica_rps", "missing"),
    ({"replica_rps": 0}, f"{KEY}.replica_rps", "> 0"),
    ({"replica_rps": 1, "lead_time": "5m"}, f"{KEY}.lead_time", "did you mean 'lead'"),
    ({"replica_rps": 1, "lead": "5 minutes"}, f"{KEY}.lead", "not a duration"),
    ({"replica_rps": 1, "lead": "1m", "tick": "2m"}, f"{KEY}.tick", "longer than lead"),
    ({"replica_rps": 1, "lead": "1h", "history": "30m"}, f"{KEY}.history", "not longer than lead"),
    ({"replica_rps": 1, "min_replicas": 4, "max_replicas": 2}, f"{KEY}.max_replicas", "below min_replicas"),
    ({"replica_rps": 1, "quantile": 1.5}, f"{KEY}.quantile", "(0, 1)"),
    ({"replica_rps": 1, "peaks": [{"days": ["mon"], "from": "09:00", "to": "10:00"}]},
     f"{KEY}.peaks[0].replicas", "missing"),
    ({"replica_rps": 1, "peaks": [{"days": ["funday"], "from": "09:00", "to": "10:00", "replicas": 2}]},
     f"{KEY}.peaks[0].days[0]", "not a day"),
    ({"replica_rps": 1, "max_replicas": 4, "peaks": [{"start": "2026-01-01T00:00:00Z",
                                                      "end": "2026-01-02T00:00:00Z", "replicas": 5}]},
     f"{KEY}.peaks[0].replicas", "above max_replicas"),
    ({"replica_rps": 1, "peaks_ical": {"path": "/nonexistent/x.ics", "replicas": 2}},
     f"{KEY}.peaks_ical.path", "cannot be read"),
    ("fast", KEY, "must be a mapping"),
])
def test_reader_errors_name_the_key(section: Any, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(section)
    assert err.value.key == key and words in str(err.value)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(["replica_rps", "replicas_per_node", "lead", "tick", "history", "refit", "quantile",
                         "min_replicas", "max_replicas", "enabled", "peaks", "peaks_ical", "other"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6) | _values)
def test_reader_refuses_any_bad_input_with_a_config_error(section: Any) -> None:
    # Whatever the YAML holds: a PoolPredictive or a ConfigError, never another exception.
    try:
        found = parse(section)
    except ConfigError:
        return
    if found is not None:
        assert found.spec.replica_rps > 0 and found.spec.tick_s <= found.spec.lead_s
        assert math.isfinite(found.history_s)


def test_the_controller_ticks_the_predictive_step_for_a_serving_pool(tmp_path: Path) -> None:
    # The local cluster's t4_spot pool with a predictive: section; the rate log says 9 req/s, the
    # history is one tick (too short): reactive, ceil(9 / 4) = 3 nodes of t4_spot's resources.
    from fakes import memory_cloud

    from ray_multicloud.predictive_guard import PredictiveGuard

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        t4 = cluster["available_node_types"]["t4_spot"]
        t4["node_config"]["predictive"] = {"replica_rps": 4, "lead": "2m", "tick": "30s"}
        provider = memory_cloud.memory_provider(cluster, world)
        t = [1_000_000.0]
        controller = memory_cloud.memory_controller(cluster, provider, t)
        guard = controller.predictive
        assert isinstance(guard, PredictiveGuard) and set(guard.pools) == {"t4_spot"}
        request = FakeRequest()
        guard._request = request  # no Ray here: the fake stands for request_resources
        append_rate(rate_log_path(tmp_path / "state", cluster["cluster_name"], "t4_spot"), t[0] - 40, 9.0)
        controller.tick()
        shape = {k: float(v) for k, v in t4["resources"].items() if float(v) > 0}
        assert request.calls == [[shape] * 3]
        assert guard.plans["t4_spot"].mode == "reactive"


# -- known peaks in the simulator ----------------------------------------------------------------


def test_simulator_orders_a_known_peak_ahead(tmp_path: Path) -> None:
    """One zone, spot always there at $1/h, on-demand $3/h, ticks of 10 min over Monday 2024-01-01
    (tick 0 = 00:00 UTC, the default trace start). Demand 1 req/s, 10 req/s from 10:00 to 11:00
    (ticks 60..65); replicas serve 1 req/s and are ready one tick after launch. Tick 0 violates for
    every policy (nothing is ready yet); there spot-hedge also orders 1 on-demand replica beside its
    spot one (the spot one is not ready), released at tick 1: 3 $-ticks more.

    spot-hedge without peaks: at tick 60 one replica is ready (a violation); it orders 9 spot and 9
    on-demand, ready at 61, where the on-demand ones go. Replica-ticks: spot 60 (ticks 0-59) + 10
    (tick 60) + 50 (61-65) + 78 (66-143) = 198, on-demand 9 + 1 -> (198 + 30) / 6 = 38 USD, 2 violations.

    With the peak (mon 10:00-11:00, 10 replicas): at tick 59 (09:50) the peak opens within the 10-min
    start-up, so 9 spot replicas are ordered then, ready at 60: 1 violation; replica-ticks 59 + 70
    (59-65) + 78 = 207, on-demand 1 -> (207 + 3) / 6 = 35 USD. ondemand with the peak: the same 207
    replica-ticks at $3/h = 103.5."""
    from ray_multicloud.cluster_config.predictive import read_peaks_file
    from ray_multicloud.sim.serving import Demand, FleetSpec, simulate_fleet
    from ray_multicloud.sim.traces import TraceSet

    n = 144
    zone = TraceSet(names=("z",), regions=("r",), files=("f",), gap_seconds=600.0,
                    counts=np.ones((1, n), dtype=np.int64), spot_prices=np.ones((1, n)),
                    priced_by_file=(True,))
    rps = np.ones(n)
    rps[60:66] = 10.0
    demand = Demand(600.0, rps, "monday peak")
    peaks_file = tmp_path / "peaks.yaml"
    peaks_file.write_text("peaks:\n  - {days: [mon], from: '10:00', to: '11:00', tz: UTC, replicas: 10}\n")
    start, peaks = read_peaks_file(str(peaks_file))
    assert start is None and [p.replicas for p in peaks] == [10]
    base = FleetSpec(replica_rps=1.0, startup_minutes=10, min_replicas=1, extra_spot=0, downscale_minutes=10)
    with_peaks = dataclasses.replace(base, peaks=peaks)

    plain = simulate_fleet(zone, demand, base, "spot-hedge", ondemand_price=3.0)
    assert plain.slo_violation_fraction == pytest.approx(2 / n) and plain.cost_usd == pytest.approx(38.0)
    ahead = simulate_fleet(zone, demand, with_peaks, "spot-hedge", ondemand_price=3.0)
    assert ahead.slo_violation_fraction == pytest.approx(1 / n) and ahead.cost_usd == pytest.approx(35.0)
    od = simulate_fleet(zone, demand, with_peaks, "ondemand", ondemand_price=3.0)
    assert od.slo_violation_fraction == pytest.approx(1 / n) and od.cost_usd == pytest.approx(103.5)
    # The same peak a day later (trace_start on Sunday): tick 60 is Sunday 10:00, no peak.
    sunday = dataclasses.replace(with_peaks, trace_start=1704067200.0 - 86400.0)
    late = simulate_fleet(zone, demand, sunday, "spot-hedge", ondemand_price=3.0)
    assert late.cost_usd == pytest.approx(38.0)


def test_peaks_file_errors_name_the_file(tmp_path: Path) -> None:
    from ray_multicloud.cluster_config.predictive import read_peaks_file

    bad = tmp_path / "p.yaml"
    bad.write_text("peaks: []\n")
    with pytest.raises(ConfigError, match="holds no peak"):
        read_peaks_file(str(bad))
    bad.write_text("peak: []\n")
    with pytest.raises(ConfigError, match="did you mean 'peaks'"):
        read_peaks_file(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        read_peaks_file(str(tmp_path / "none.yaml"))


def test_guard_measures_the_lead_from_node_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # No lead: written -> measured. The controller first watches at t = 1000. Node "old" was launched
    # before (skipped: its start was not seen). a, b, c launch at 1000, 1010, 1020 and are first seen
    # alive at 1200, 1260, 1250: starts 200, 250, 230; median 230 + replica_ready 45 s = 275 s.
    from types import SimpleNamespace as NS

    cfg = parse_predictive("serve_pool", {"predictive": {"replica_rps": 5, "replica_ready": "45s"}})
    assert cfg is not None and cfg.lead_measured and cfg.spec.lead_s == 300.0
    guard = PredictiveGuard("c", tmp_path, {"serve_pool": cfg}, {"serve_pool": {"GPU": 1}},
                            read=lambda pool, since: [], request=FakeRequest(), publish=lambda f: None)
    alive, pending = NS(alive=True), NS(alive=False)

    def node(iid: str, at: float, pool: str = "serve_pool") -> Any:
        return NS(instance_id=iid, pool=pool, launched_at=at)

    fleet = [node("old", 500.0), node("a", 1000.0), node("b", 1010.0), node("c", 1020.0),
             node("x", 1000.0, "cpu")]
    guard.observe(fleet, {"old": alive, "a": pending, "b": pending, "x": alive}, 1000.0)
    guard.observe(fleet, {"old": alive, "a": alive, "b": pending, "c": pending}, 1200.0)
    assert guard.lead_s("serve_pool") == 300.0  # one start: the configured default
    guard.observe(fleet, {"a": alive, "b": pending, "c": alive}, 1250.0)
    guard.observe(fleet, {"a": alive, "b": alive, "c": alive}, 1260.0)
    guard.observe(fleet, None, 1270.0)  # an unreadable GCS changes nothing
    assert guard.starts["serve_pool"] == [200.0, 230.0, 250.0]
    assert guard.lead_s("serve_pool") == 275.0
    # The plan uses it, and says once what it is made of (the live test reads this line).
    with caplog.at_level(logging.INFO, logger="ray_multicloud.predictive_guard"):
        guard.plan("serve_pool", 1270.0)
        guard.plan("serve_pool", 1280.0)
    leads = [r.getMessage() for r in caplog.records if ": lead " in r.getMessage()]
    assert leads == ["predictive serve_pool: lead 275.0 s, measured: the median of the last 3 node start(s) "
                     "(200.0, 230.0, 250.0 s) + replica_ready 45 s"], leads
    fixed = parse_predictive("serve_pool", {"predictive": {"replica_rps": 5, "lead": "6m"}})
    assert fixed is not None and not fixed.lead_measured


def test_rate_tail_reads_only_what_was_appended(tmp_path: Path) -> None:
    from ray_multicloud.serve.rate_log import RateTail

    log = tmp_path / "r.csv"
    tail = RateTail(log)
    assert tail.samples(0.0) == []  # no file yet
    append_rate(log, 1.0, 2.0)
    append_rate(log, 2.0, 3.0)
    assert tail.samples(0.0) == [(1.0, 2.0), (2.0, 3.0)]
    with log.open("a") as fh:
        fh.write("3.000,4\n4.0")  # the last line is still being written
    assert tail.samples(1.5) == [(2.0, 3.0), (3.0, 4.0)]  # older than since: dropped
    with log.open("a") as fh:
        fh.write("00,5\n")
    assert tail.samples(1.5) == [(2.0, 3.0), (3.0, 4.0), (4.0, 5.0)]
    log.unlink()  # rewritten (cut) by the writer: read afresh
    append_rate(log, 9.0, 1.0)
    assert tail.samples(0.0) == [(9.0, 1.0)]


def test_plan_refuses_a_predictive_pool_without_resources(tmp_path: Path) -> None:
    from fakes import memory_cloud

    from ray_multicloud.cluster_config.cluster import check_cluster

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        t4 = cluster["available_node_types"]["t4_spot"]
        t4["node_config"]["predictive"] = {"replica_rps": 4}
        t4["resources"] = {}
        with pytest.raises(ConfigError) as err:
            check_cluster(cluster, clouds=world.clouds(cluster))
        assert err.value.key == "available_node_types.t4_spot.resources"
        t4["resources"] = {"CPU": 1}
        t4["node_config"]["predictive"] = {"replica_rps": 4, "lead": "1m", "tick": "5m"}
        with pytest.raises(ConfigError, match=r"predictive\.tick"):
            check_cluster(cluster, clouds=world.clouds(cluster))


_peak_items = st.dictionaries(
    st.sampled_from(["days", "from", "to", "tz", "start", "end", "replicas", "other"]),
    st.none() | st.booleans() | st.integers(-3, 2000) | st.sampled_from(
        ["mon-fri", "09:00", "25:00", "Europe/Berlin", "Mars/Base", "2026-01-01T00:00:00Z", "x"])
    | st.lists(st.sampled_from(["mon", "fri", "mon-fri", "funday", 3]), max_size=3),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["peaks", "peaks_ical", "trace_start", "other"]),
                       st.lists(_peak_items, max_size=3) | _values, max_size=3) | _values)
def test_peaks_file_reader_refuses_any_bad_input_with_a_config_error(content: Any) -> None:
    # Whatever the --peaks YAML holds: peaks or a ConfigError naming the file, never another exception.
    import tempfile

    import yaml

    from ray_multicloud.cluster_config.predictive import read_peaks_file

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "peaks.yaml"
        path.write_text(yaml.safe_dump(content))
        try:
            start, peaks = read_peaks_file(str(path), now=1.7e9)
        except ConfigError as exc:
            assert str(path) in str(exc)
            return
        assert peaks and all(p.replicas >= 1 for p in peaks)
        assert start is None or math.isfinite(start)


def test_ray_up_starts_the_controller_for_a_predictive_only_pool() -> None:
    # cluster_configs/local-predictive.yaml: its one pool says migration.enabled: false, so nothing
    # moves and there is no idle: section; the predictive step alone needs the controller. Found live
    # (tests/test_predictive_e2e.py): before the fix `ray up` started no controller for such a pool
    # and the controller, started by hand, exited at once ("no pool is movable").
    import copy

    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
    from ray_multicloud.provider import CONTROLLER_MODULE, MultiCloudNodeProvider, controller_needed

    raw = load_cluster_yaml(Path(__file__).resolve().parents[1] / "cluster_configs" / "local-predictive.yaml")
    assert controller_needed(raw)
    boot = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(raw))
    assert sum(CONTROLLER_MODULE in c for c in boot["head_start_ray_commands"]) == 1
    off = copy.deepcopy(raw)
    off["available_node_types"]["serve_pool"]["node_config"]["predictive"]["enabled"] = False
    assert not controller_needed(off)
    boot = MultiCloudNodeProvider.bootstrap_config(off)
    assert not any(CONTROLLER_MODULE in c for c in boot["head_start_ray_commands"])


def test_run_asks_for_predictive_capacity_while_a_tick_is_blocked(tmp_path: Path) -> None:
    # Under run() the predictive step has a thread of its own: a tick held up (here before_tick,
    # standing for a move that waits minutes for its replacement) does not delay the capacity asked
    # ahead. min_replicas 2, no rate log: reactive, max(2, 0) = 2 nodes of t4_spot's resources.
    import threading
    import time as _time

    from fakes import memory_cloud

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        t4 = cluster["available_node_types"]["t4_spot"]
        t4["node_config"]["predictive"] = {"replica_rps": 4, "lead": "2m", "tick": "30s", "min_replicas": 2}
        provider = memory_cloud.memory_provider(cluster, world)
        controller = memory_cloud.memory_controller(cluster, provider, [1_000_000.0],
                                                    draining=lambda _gcs: {})  # no GCS here
        request = FakeRequest()
        controller.predictive._request = request  # no Ray here: the fake stands for request_resources
        stop = threading.Event()
        asked_while_blocked: list[bool] = []

        def blocked() -> None:
            deadline = _time.monotonic() + 30
            while not request.calls and _time.monotonic() < deadline:
                _time.sleep(0.01)
            asked_while_blocked.append(bool(request.calls))
            stop.set()

        controller.run(interval_s=0.05, stop=stop, before_tick=blocked)
        shape = {k: float(v) for k, v in t4["resources"].items() if float(v) > 0}
        assert asked_while_blocked == [True]
        assert request.calls[0] == [shape] * 2
        assert not controller._predictive_thread  # the thread ended with run()
