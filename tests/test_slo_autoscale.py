"""serve/slo_autoscale.py without Ray: the replica meter on a fake clock, the metrics -> ReplicaLoad
reading, and the Serve policy on a fake AutoscalingContext. RTTs from the shipped table:
us-east-1 <-> westus2 70 ms, us-east-1 <-> eastus 5 ms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ray_multicloud.policy.slo import CapacityOption
from ray_multicloud.serve.ranking import load_rtt_table
from ray_multicloud.serve.slo_autoscale import (
    SloAutoscalingPolicy,
    SloMeter,
    loads_from_metrics,
    region_index,
    slo_autoscaling_config,
)

TABLE = load_rtt_table()
REGIONS = region_index(TABLE)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_meter_reports_client_seen_p95_busy_share_and_mix() -> None:
    clock = Clock()
    meter = SloMeter(region="westus2", price=lambda: 0.06, table=TABLE, window_s=10, clock=clock)
    # 20 requests from us-east-1, one after another, 0.05 s each: 50 ms + RTT 70 = 120 ms each
    for _ in range(20):
        with meter.measure("us-east-1/user-1"):
            clock.t += 0.05
    # one from an unknown region key: 300 ms, no network term
    with meter.measure(None):
        clock.t += 0.3
    stats = meter.stats()
    assert stats["slo_requests"] == 21
    assert stats["slo_rps"] == pytest.approx(2.1)  # 21 requests in the 10 s window
    # 21 values: twenty 120 ms and one 300 ms; nearest rank ceil(0.95 * 21) = 20 -> 120 ms
    assert stats["slo_p95_ms"] == pytest.approx(120.0)
    # busy 20 x 0.05 + 0.3 = 1.3 s of the 10 s window
    assert stats["slo_busy"] == pytest.approx(0.13)
    assert stats["slo_client:us-east-1"] == 20
    assert stats["slo_price_per_hour"] == 0.06
    assert REGIONS[int(stats["slo_region"])] == "westus2"
    clock.t += 11  # everything leaves the window
    later = meter.stats()
    assert later["slo_requests"] == 0 and "slo_p95_ms" not in later and later["slo_busy"] == 0


def test_overlapping_requests_count_busy_once() -> None:
    clock = Clock()
    meter = SloMeter(region=None, price=lambda: None, table=TABLE, window_s=10, clock=clock)
    a = meter.start()
    clock.t += 1
    b = meter.start()
    clock.t += 1
    meter.finish(a, None)
    clock.t += 1
    meter.finish(b, None)
    stats = meter.stats()
    assert stats["slo_busy"] == pytest.approx(0.3)  # 3 s with at least one in flight, of 10 s
    assert stats["slo_price_per_hour"] == -1 and stats["slo_region"] == -1


@dataclass(frozen=True)
class Rid:
    unique_id: str


def metrics(per: dict[str, dict[str, float]]) -> dict[str, dict[Any, float]]:
    out: dict[str, dict[Any, float]] = {}
    for rid, values in per.items():
        for name, v in values.items():
            out.setdefault(name, {})[Rid(rid)] = v
    return out


def test_loads_from_metrics() -> None:
    west = float(REGIONS.index("westus2"))
    m = metrics({"a": {"slo_p95_ms": 470, "slo_requests": 100, "slo_busy": 1, "slo_price_per_hour": 1.0,
                       "slo_region": west, "slo_client:us-east-1": 100},
                 "b": {"slo_requests": 0, "slo_busy": 0, "slo_price_per_hour": -1, "slo_region": -1}})
    loads, mix = loads_from_metrics(m, [Rid("a"), Rid("b"), Rid("c")], REGIONS)
    assert [(r.replica_id, r.region, r.price_per_hour, r.p95_ms, r.busy) for r in loads] == [
        ("a", "westus2", 1.0, 470.0, 1.0), ("b", "", None, None, 0.0), ("c", "", None, None, 0.0)]
    assert mix == {"us-east-1": 100.0}


@dataclass
class Ctx:
    running_replicas: list[Rid]
    aggregated_metrics: dict[str, dict[Any, float]]
    target_num_replicas: int
    current_time: float
    capacity_adjusted_min_replicas: int = 1
    capacity_adjusted_max_replicas: int = 2
    policy_state: dict[str, Any] = field(default_factory=dict)


WEST = CapacityOption("azure/westus2/-/Standard_NC4as_T4_v3/spot", "westus2", 1.0)
EAST = CapacityOption("azure/eastus/-/Standard_NC4as_T4_v3/spot", "eastus", 0.0627)


def policy(tmp_path: Path) -> SloAutoscalingPolicy:
    kwargs = slo_autoscaling_config(p95_ms=300, service_ms=50, clients={"us-east-1": 1}, offers=[WEST, EAST],
                                    cluster_name="c", pool="serve_pool", state_dir=str(tmp_path),
                                    downscale_delay_s=6)["policy"]["policy_kwargs"]
    json.dumps(kwargs)  # Serve requires JSON-serialisable policy_kwargs
    return SloAutoscalingPolicy(**kwargs)


def test_policy_adds_and_directs_the_launch(tmp_path: Path) -> None:
    p = policy(tmp_path)
    west = float(REGIONS.index("westus2"))
    ctx = Ctx([Rid("a")], metrics({"a": {"slo_p95_ms": 470, "slo_requests": 100, "slo_busy": 1,
                                         "slo_price_per_hour": 1.0, "slo_region": west,
                                         "slo_client:us-east-1": 100}}), 1, 1000.0)
    target, _ = p(ctx)
    assert target == 2
    directive = json.loads((tmp_path / "directives.json").read_text())["c"]["serve_pool"]
    assert directive["offer_id"] == EAST.offer_id and directive["then"] == [WEST.offer_id]
    assert directive["reason"].startswith("slo: ")


def test_policy_removes_the_dearest_after_the_delay_by_draining_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    p = policy(tmp_path)
    drained: list[str] = []
    monkeypatch.setattr(p, "_drain", lambda ctx, rid: drained.append(rid) or True)
    west, east = float(REGIONS.index("westus2")), float(REGIONS.index("eastus"))
    m = metrics({"a": {"slo_requests": 0, "slo_busy": 0, "slo_price_per_hour": 1.0, "slo_region": west},
                 "b": {"slo_p95_ms": 56, "slo_requests": 10, "slo_busy": 0.1, "slo_price_per_hour": 0.0627,
                       "slo_region": east, "slo_client:us-east-1": 10}})
    state: dict[str, Any] = {}
    for t, expected in ((1000.0, 2), (1003.0, 2), (1006.0, 1), (1007.0, 1)):
        target, state = p(Ctx([Rid("a"), Rid("b")], m, 2, t, policy_state=state))
        assert target == expected, t
    assert drained == ["a"]  # once, the $1/h replica; then held while Serve stops it


def test_policy_adds_on_live_prices_from_the_price_board(tmp_path: Path) -> None:
    from ray_multicloud.pricing.board import PriceBoard

    p = policy(tmp_path)
    PriceBoard(tmp_path).set(EAST.offer_id, 5.0)  # a price move: eastus now $5/h, westus2 $1/h
    ctx = Ctx([], {}, 1, 1000.0)  # no replica yet: below min_replicas -> add
    target, _ = p(ctx)
    assert target == 1
    directive = json.loads((tmp_path / "directives.json").read_text())["c"]["serve_pool"]
    assert directive["offer_id"] == WEST.offer_id  # both keep p95 300 ms for us-east-1 (120, 55 ms)


def test_policy_logs_the_deployment_rate_for_the_predictive_step(tmp_path: Path) -> None:
    # Two replicas report 3.5 and 1.5 requests/s: the deployment's rate is 5.0. Logged at most every
    # rate_every_s (10 s): calls at 1000, 1004 and 1010 write two lines (1000 and 1010).
    from ray_multicloud.serve.rate_log import rate_log_path, read_rates

    p = policy(tmp_path)
    m = metrics({"a": {"slo_rps": 3.5, "slo_requests": 35, "slo_busy": 0.2},
                 "b": {"slo_rps": 1.5, "slo_requests": 15, "slo_busy": 0.1}})
    for t in (1000.0, 1004.0, 1010.0):
        p(Ctx([Rid("a"), Rid("b")], m, 2, t))
    assert read_rates(rate_log_path(tmp_path, "c", "serve_pool")) == [(1000.0, 5.0), (1010.0, 5.0)]


def test_policy_keeps_the_published_predictive_floor(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The controller asks for 2 replicas ahead of a forecast ramp. With one replica idling (p95 well
    # under the SLO: the SLO policy alone would hold 1), the target is raised to the floor; with two
    # quiet replicas (p95 56 ms < half the 300 ms SLO) the SLO policy's removal is refused; once the
    # floor is stale (120 s), it is gone.
    from ray_multicloud.serve.rate_log import floor_path, publish_floors

    p = policy(tmp_path)
    monkeypatch.setattr(p, "_drain", lambda ctx, rid: True)
    publish_floors(floor_path(tmp_path, "c"), {"serve_pool": {"replicas": 2, "at": 1000.0, "reason": "t"}})
    east = float(REGIONS.index("eastus"))
    one = metrics({"a": {"slo_p95_ms": 56, "slo_requests": 10, "slo_busy": 0.1, "slo_price_per_hour": 0.06,
                         "slo_region": east, "slo_client:us-east-1": 10}})
    target, _ = p(Ctx([Rid("a")], one, 1, 1000.0))
    assert target == 2
    quiet = {"slo_p95_ms": 56, "slo_requests": 5, "slo_busy": 0.05, "slo_region": east,
             "slo_client:us-east-1": 5}
    two = metrics({"a": {**quiet, "slo_price_per_hour": 1.0}, "b": {**quiet, "slo_price_per_hour": 0.06}})
    state: dict[str, Any] = {}
    for t in (1001.0, 1010.0, 1020.0):  # past the 6 s downscale delay: still 2
        target, state = p(Ctx([Rid("a"), Rid("b")], two, 2, t, policy_state=state))
        assert target == 2, t
    state = {}
    for t in (1130.0, 1137.0):  # the floor is 130 s old: the SLO policy removes after its delay
        target, state = p(Ctx([Rid("a"), Rid("b")], two, 2, t, policy_state=state))
    assert target == 1


def test_an_idle_pool_gives_back_its_dearest_replica_but_not_below_the_floor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two replicas, no request served or in flight on either (after a peak whose traffic never came):
    # while the controller's floor of 2 is fresh the pool keeps both; once it is stale (120 s) the
    # dearer one ($1/h) is drained after the 6 s downscale delay.
    from ray_multicloud.serve.rate_log import floor_path, publish_floors

    p = policy(tmp_path)
    drained: list[str] = []
    monkeypatch.setattr(p, "_drain", lambda ctx, rid: drained.append(rid) or True)
    publish_floors(floor_path(tmp_path, "c"), {"serve_pool": {"replicas": 2, "at": 1000.0, "reason": "t"}})
    west, east = float(REGIONS.index("westus2")), float(REGIONS.index("eastus"))
    idle = metrics({"a": {"slo_requests": 0, "slo_busy": 0, "slo_price_per_hour": 1.0, "slo_region": west},
                    "b": {"slo_requests": 0, "slo_busy": 0, "slo_price_per_hour": 0.06, "slo_region": east}})
    state: dict[str, Any] = {}
    for t in (1001.0, 1010.0, 1020.0):
        target, state = p(Ctx([Rid("a"), Rid("b")], idle, 2, t, policy_state=state))
        assert target == 2, t
    assert drained == []
    state = {}
    for t, expected in ((1130.0, 2), (1137.0, 1)):
        target, state = p(Ctx([Rid("a"), Rid("b")], idle, 2, t, policy_state=state))
        assert target == expected, t
    assert drained == ["a"]


def test_rate_log_to_controller_floor_to_serve_target_without_ray(tmp_path: Path) -> None:
    # The whole predictive loop through its files: the Serve policy logs the deployment's rate (two
    # replicas at 3 req/s each = 6/s) every 30 s for 40 ticks; the controller's step (fake
    # request_resources) reads it: 40 ticks >= lead 2 + 20, a forecast of a flat 6/s -> ceil(6 / 2)
    # = 3 replicas on 3 nodes; the Serve policy, with 2 quiet replicas, raises its target to 3.
    from ray_multicloud.cluster_config.predictive import parse_predictive
    from ray_multicloud.predictive_guard import PredictiveGuard

    p = policy(tmp_path)
    east = float(REGIONS.index("eastus"))
    quiet = {"slo_p95_ms": 56, "slo_requests": 30, "slo_rps": 3.0, "slo_busy": 0.3, "slo_region": east,
             "slo_price_per_hour": 0.06, "slo_client:us-east-1": 30}
    two = metrics({"a": dict(quiet), "b": dict(quiet)})
    t0 = 1_800_000_000.0  # a multiple of 30 s
    for k in range(40):
        p(Ctx([Rid("a"), Rid("b")], two, 2, t0 + 30 * k + 1, capacity_adjusted_max_replicas=4))
    cfg = parse_predictive("serve_pool", {"predictive": {"replica_rps": 2, "lead": "1m", "tick": "30s",
                                                         "history": "1h"}})
    asked: list[list[dict[str, float]]] = []
    guard = PredictiveGuard("c", tmp_path, {"serve_pool": cfg}, {"serve_pool": {"CPU": 1, "GPU": 1}},
                            request=asked.append)
    plan = guard.tick(t0 + 30 * 40 + 2)["serve_pool"]
    assert plan.mode == "predictive" and plan.replicas == 3
    assert asked == [[{"CPU": 1.0, "GPU": 1.0}] * 3]
    target, _ = p(Ctx([Rid("a"), Rid("b")], two, 2, t0 + 30 * 40 + 10, capacity_adjusted_max_replicas=4))
    assert target == 3
