"""Budgets: grading and launch verdicts by hand, the YAML section's errors, the provider's refusal,
the guard's alerts (log once, webhook, gauge) and the report's budget lines."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.budget_guard import BudgetGuard, month_spend
from ray_multicloud.cli import main
from ray_multicloud.cluster_config.budget import parse_budget, parse_budgets, parse_pool_budget
from ray_multicloud.cluster_config.cluster import check_cluster
from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
from ray_multicloud.errors import ConfigError, LaunchFailed
from ray_multicloud.ledger import Ledger
from ray_multicloud.metrics import CostMetrics
from ray_multicloud.policy.budget import Budget, BudgetLevel, assess, launch_verdict, month_bounds
from ray_multicloud.types import CapacityType, FleetNode, InstanceId, NodeState, Offer, RequestId
from tests.fakes.memory_cloud import LOCAL_CONFIG, launch_workers, memory_cluster, memory_provider

H = 3600.0
NOV_15 = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def pool_budget(**kw: Any) -> Budget:
    return Budget(scope="gpu", key="available_node_types.gpu.node_config.budget", **kw)


# --------------------------------------------------------------------------- the pure decision


def test_month_bounds_and_december() -> None:
    assert month_bounds(NOV_15) == (NOV_1, DEC_1)
    dec = datetime(2026, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    assert month_bounds(dec) == (DEC_1, datetime(2027, 1, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("per_hour", "spend", "level"),
    [
        (1.0, 10.0, BudgetLevel.OK),     # 33% of the cap, 10% of the month
        (2.4, 10.0, BudgetLevel.WARN),   # 80% of the $3/h cap
        (1.0, 80.0, BudgetLevel.WARN),   # 80% of the $100 month
        (3.1, 10.0, BudgetLevel.OVER),   # above the cap (a spot price rose)
        (3.0, 10.0, BudgetLevel.WARN),   # at the cap: not over, but no headroom
        (1.0, 100.0, BudgetLevel.OVER),  # the month is spent
    ],
)
def test_assess_levels(per_hour: float, spend: float, level: BudgetLevel) -> None:
    s = assess(pool_budget(max_usd_per_hour=3.0, monthly_usd=100.0), usd_per_hour=per_hour,
               month_spend_usd=spend, now=NOV_15)
    assert s.level is level
    # 15.5 days (372 h) left in November at the current rate.
    assert s.forecast_usd == pytest.approx(spend + per_hour * 372)
    assert s.month_start == NOV_1


def test_verdict_bounds_the_price_by_the_smallest_headroom() -> None:
    pool = assess(pool_budget(max_usd_per_hour=3.0), usd_per_hour=2.2, month_spend_usd=0, now=NOV_15)
    cluster = assess(Budget("cluster", "provider.budget", max_usd_per_hour=10.0), usd_per_hour=9.5,
                     month_spend_usd=0, now=NOV_15)
    v = launch_verdict([pool])
    assert v.allowed and v.max_price_per_hour == pytest.approx(0.8)
    v = launch_verdict([pool, cluster])
    assert v.allowed and v.max_price_per_hour == pytest.approx(0.5) and "the cluster" in v.reasons[0]


def test_verdict_refuses_at_the_cap_and_when_the_month_is_spent() -> None:
    full = assess(pool_budget(max_usd_per_hour=3.0), usd_per_hour=3.0, month_spend_usd=0, now=NOV_15)
    v = launch_verdict([full])
    assert not v.allowed and "max_usd_per_hour is raised" in v.reasons[0]
    spent = assess(pool_budget(monthly_usd=50.0), usd_per_hour=0.0, month_spend_usd=50.0, now=NOV_15)
    v = launch_verdict([spent])
    assert not v.allowed and "2026-11" in v.reasons[0] and "monthly_usd" in v.reasons[0]


def test_no_budget_no_limit() -> None:
    assert launch_verdict([]).allowed and launch_verdict([]).max_price_per_hour is None


# --------------------------------------------------------------------------- the YAML section

KEY = "available_node_types.gpu.node_config.budget"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"max_usd_per_hour": 0}, f"{KEY}.max_usd_per_hour", "> 0"),
        ({"monthly_usd": -5}, f"{KEY}.monthly_usd", ">= 0"),
        ({"monthly_usd": "lots"}, f"{KEY}.monthly_usd", "number"),
        ({"warn_at": 0.8}, KEY, "sets no limit"),
        ({"max_usd_per_hour": 1, "warn_at": 1.0}, f"{KEY}.warn_at", "below 1"),
        ({"max_usd_per_hour": 1, "warn_at": 0}, f"{KEY}.warn_at", "> 0"),
        ({"max_usd_per_hour": 1, "webhook": "ftp://x"}, f"{KEY}.webhook", "http(s) URL"),
        ({"max_usd_per_hour": 1, "monthly": 5}, f"{KEY}.monthly", "monthly_usd"),
        ([1], KEY, "mapping"),
    ],
)
def test_section_errors_name_the_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_pool_budget("gpu", {"pool": {}, "budget": raw})
    assert err.value.key == key and fragment in str(err.value)


SECTION_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True),
                           st.text(max_size=12), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    SECTION_VALUES,
    st.dictionaries(st.sampled_from(["max_usd_per_hour", "monthly_usd", "warn_at", "webhook",
                                     "webhook_timeout_seconds", "cap"]), SECTION_VALUES, max_size=4),
))
def test_any_section_parses_or_names_its_key(raw: Any) -> None:
    try:
        budget = parse_budget(KEY, "gpu", raw)
    except ConfigError as exc:
        assert exc.key.startswith(KEY)
        return
    if budget is not None:
        assert (budget.max_usd_per_hour or 0) > 0 or (budget.monthly_usd or 0) > 0
        assert 0 < budget.warn_at < 1


def test_pinned_offer_takes_no_budget_and_monthly_needs_the_ledger() -> None:
    with pytest.raises(ConfigError) as err:
        parse_pool_budget("head", {"offer": {}, "budget": {"max_usd_per_hour": 1}})
    assert err.value.key == "available_node_types.head.node_config.budget"
    raw = load_cluster_yaml(LOCAL_CONFIG)
    raw["provider"].pop("ledger")
    raw["provider"]["budget"] = {"monthly_usd": 100}
    with pytest.raises(ConfigError) as err:
        parse_budgets(raw)
    assert err.value.key == "provider.budget.monthly_usd" and "provider.ledger" in str(err.value)


def test_check_cluster_refuses_a_cap_below_every_offer_of_the_pool() -> None:
    raw = load_cluster_yaml(LOCAL_CONFIG)
    ok = copy.deepcopy(raw)
    ok["provider"]["budget"] = {"max_usd_per_hour": 50, "monthly_usd": 1000}
    ok["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": 2}
    check_cluster(ok)
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": 0.01}
    with pytest.raises(ConfigError) as err:
        check_cluster(bad)
    assert err.value.key == "available_node_types.t4_spot.node_config.budget.max_usd_per_hour"
    assert "no node could ever launch" in str(err.value)
    # Three T4 spot nodes at the cheapest $0.05786/h (the catalog's azure northcentralus row) cost
    # $0.17358/h > $0.10/h.
    few = copy.deepcopy(raw)
    few["available_node_types"]["t4_spot"]["min_workers"] = 3
    few["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": 0.10}
    with pytest.raises(ConfigError) as err:
        check_cluster(few)
    assert err.value.key == "available_node_types.t4_spot.node_config.budget.max_usd_per_hour"
    assert "min_workers: 3" in str(err.value) and "$0.1736/h" in str(err.value)


def test_plan_shows_the_budgets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    raw = load_cluster_yaml(LOCAL_CONFIG)
    raw["provider"]["budget"] = {"max_usd_per_hour": 50, "monthly_usd": 1000}
    raw["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": 2}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "cluster budget: at most $50.00/h of running nodes and $1,000.00 per calendar month" in out
    assert "t4_spot: budget: at most $2.00/h" in out
    raw["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": -1}
    path.write_text(yaml.safe_dump(raw))
    assert main(["plan", str(path)]) == 2
    assert "available_node_types.t4_spot.node_config.budget.max_usd_per_hour" in capsys.readouterr().err


# --------------------------------------------------------------------------- the provider


def a100_cluster(tmp_path: Path, *, onprem_price: float, budget: dict[str, Any]) -> Any:
    ctx = memory_cluster(tmp_path)
    cluster, world = ctx.__enter__()
    machine = cluster["provider"]["clouds"]["onprem"]["machines"][0]
    for k in ("capex_usd", "power_kw"):
        machine.pop(k)
    machine["amortised_per_hour"] = onprem_price
    cluster["available_node_types"]["a100_ondemand"]["node_config"]["budget"] = budget
    return cluster, world


def test_launch_goes_to_cheaper_capacity_within_the_cap_then_refuses(tmp_path: Path) -> None:
    # The private machine is preferred (source_preference) but costs $5/h: above the $4/h cap, so the
    # first node goes to the cheapest public on-demand A100 (gcp a2-highgpu-1g, $3.6734/h); then the
    # headroom is $0.3266/h, below every A100 offer: the second launch is refused, saying why.
    cluster, world = a100_cluster(tmp_path, onprem_price=5.0, budget={"max_usd_per_hour": 4.0})
    provider = memory_provider(cluster, world)
    (first,) = launch_workers(provider, cluster, node_type="a100_ondemand", request="a")
    offer = provider.node_tags(first.instance_id)["rmc-offer"]
    assert not offer.startswith("onprem/") and offer.endswith("/on-demand")
    with pytest.raises(LaunchFailed) as err:
        launch_workers(provider, cluster, node_type="a100_ondemand", request="b")
    text = str(err.value)
    assert "[budget]" in text and "at most $0.3266/h" in text and "$4.00/h cap" in text


def test_cluster_monthly_budget_spent_refuses_every_worker(tmp_path: Path) -> None:
    import time

    cluster, world = a100_cluster(tmp_path, onprem_price=0.9, budget={"max_usd_per_hour": 4.0})
    ledger_path = tmp_path / "ledger.db"
    cluster["provider"]["ledger"] = str(ledger_path)
    cluster["provider"]["budget"] = {"monthly_usd": 10.0}
    now = time.time()
    start, _ = month_bounds(now)
    with Ledger(ledger_path) as led:  # $20/h since the month began (at least one minute: >= $0.33)
        o = Offer("aws", "r", "z", "big", "", 0, 4, 16, CapacityType.ON_DEMAND, 20000.0, 20000.0)
        led.record_launch("old", str(cluster["cluster_name"]), "t4_spot", o, "r0", at=start)
        led.record_end("old", at=start + 60, reason="scale-down")
    provider = memory_provider(cluster, world)
    with pytest.raises(LaunchFailed) as err:
        launch_workers(provider, cluster, node_type="t4_spot", request="x")
    assert "[budget]" in str(err.value) and "provider.budget.monthly_usd" in str(err.value)


# --------------------------------------------------------------------------- the guard


def node(pool: str, price: float, state: NodeState = NodeState.RUNNING) -> FleetNode:
    o = Offer("aws", "r", "z", "t", "T4", 1, 4, 16, CapacityType.SPOT, price, 1.0)
    return FleetNode(InstanceId(f"{pool}-{price}"), pool, o, RequestId("r"), 0.0, state)


class FakeGauge:
    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.values[tuple(sorted(tags.items()))] = value  # type: ignore[arg-type]


def test_guard_announces_each_rise_once_and_survives_a_failing_webhook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    posts: list[tuple[str, dict[str, Any], float]] = []

    def post(url: str, body: bytes, timeout: float) -> None:
        posts.append((url, json.loads(body), timeout))
        raise OSError("connection refused")

    metrics = CostMetrics("c")
    gauge = FakeGauge()
    metrics._gauges = {"budget": gauge}
    guard = BudgetGuard("c", None, post=post, metrics=metrics, background=False)
    b = pool_budget(max_usd_per_hour=3.0, webhook="https://hooks.example/x", webhook_timeout_s=2.0)
    caplog.set_level(logging.WARNING)
    guard.statuses([b], [node("gpu", 1.0)], NOV_15)  # 33%: ok, nothing said
    assert posts == []
    for _ in range(3):  # 83%: warn, said once
        guard.statuses([b], [node("gpu", 2.5), node("other", 9.0), node("gpu", 7, NodeState.TERMINATED)],
                       NOV_15)
    assert len(posts) == 1 and posts[0][1]["level"] == "warn" and posts[0][2] == 2.0
    assert posts[0][1]["usd_per_hour"] == 2.5 and posts[0][1]["scope"] == "gpu"
    guard.statuses([b], [node("gpu", 3.5)], NOV_15)  # over
    guard.statuses([b], [node("gpu", 1.0)], NOV_15)  # back to ok
    guard.statuses([b], [node("gpu", 2.5)], NOV_15)  # a new rise is said again
    assert [p[1]["level"] for p in posts] == ["warn", "over", "warn"]
    assert sum("budget WARN" in r.getMessage() for r in caplog.records) == 2
    assert sum("webhook https://hooks.example/x failed" in r.getMessage() for r in caplog.records) == 3
    assert gauge.values[(("cluster", "c"), ("limit", "per_hour"), ("scope", "gpu"))] == pytest.approx(2.5 / 3)


def test_a_replacement_is_judged_on_the_price_it_frees() -> None:
    guard = BudgetGuard("c", None, background=False)
    b = pool_budget(max_usd_per_hour=3.0)
    fleet = [node("gpu", 1.0), node("gpu", 1.5)]
    assert guard.verdict([b], fleet, NOV_15).max_price_per_hour == pytest.approx(0.5)
    assert guard.verdict([b], fleet, NOV_15, replacing="gpu-1.5").max_price_per_hour == pytest.approx(2.0)


def test_month_spend_counts_only_this_month(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        o = Offer("aws", "r", "z", "t", "T4", 1, 4, 16, CapacityType.SPOT, 2.0, 3.0)
        led.record_launch("a", "c", "gpu", o, "r", at=NOV_1 - 10 * H)  # 10 h in October, 5 in November
        led.record_end("a", at=NOV_1 + 5 * H, reason="scale-down")
        led.record_launch("b", "c", "cpu", o, "r", at=NOV_1 + H)       # 3 h by NOV_1 + 4 h
        led.record_launch("z", "other", "gpu", o, "r", at=NOV_1)       # another cluster
        total, per_pool = month_spend(led, "c", NOV_1 + 4 * H)
    assert per_pool == pytest.approx({"gpu": 8.0, "cpu": 6.0}) and total == pytest.approx(14.0)


def test_report_shows_budget_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    raw = load_cluster_yaml(LOCAL_CONFIG)
    raw["provider"]["ledger"] = str(tmp_path / "ledger.db")
    raw["provider"]["budget"] = {"max_usd_per_hour": 10, "monthly_usd": 100}
    raw["available_node_types"]["t4_spot"]["node_config"]["budget"] = {"max_usd_per_hour": 2}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with Ledger(tmp_path / "ledger.db") as led:
        o = Offer("azure", "r", "", "t", "T4", 1, 4, 16, CapacityType.SPOT, 1.5, 3.0)
        led.record_launch("a", "rmc-local", "t4_spot", o, "r", at=NOV_1)  # running: $1.5/h
        p = Offer("onprem", "dc1", "", "a100", "A100", 1, 4, 16, CapacityType.ON_DEMAND, 1.0, 4.0)
        led.record_launch("p", "rmc-local", "a100_ondemand", p, "r", at=NOV_1)
        led.record_end("p", at=NOV_1 + 10 * H, reason="scale-down")
    until = NOV_1 + 20 * H  # spend: 30 (t4) + 10 (private) = 40 of 100
    assert main(["report", "--config", str(path), "--until", str(until)]) == 0
    out = capsys.readouterr().out
    assert "cluster" in out and "$1.5000/h of $10.00/h (15%)" in out and "$40.00 of $100.00 (40%)" in out
    assert "t4_spot" in out and "$1.5000/h of $2.00/h (75%)" in out
    # with and without the private machine: 40 against 60+40=100; public alone 30 against 60
    assert "saved 60.0%" in out and "saved 50.0% ($30.000000 against $60.000000)" in out and "(onprem)" in out
