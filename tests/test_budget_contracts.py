"""Budgets, the pure decision's contracts: exact messages, limits, the UTC month, the verdict's rules.

Written for the survivors of the mutmut run of ``policy/budget.py`` (benchmarks/README.md, "Mutation
testing"): every expected value is worked out by hand from the module's docstring and the messages'
promise to name the key and the fix. Pure: no Ray, no ledger, no CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ray_multicloud.policy.budget import Budget, BudgetLevel, assess, launch_verdict, month_bounds

NOV_15 = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
KEY = "available_node_types.gpu.node_config.budget"


def pool_budget(**kw: Any) -> Budget:
    return Budget(scope="gpu", key=KEY, **kw)


CLUSTER_KEY = "provider.budget"


@pytest.fixture
def local_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set the process's local time zone (a POSIX TZ string: ``LOC+10`` is UTC-10) for one test;
    the budget month is UTC whatever the machine's zone is."""
    import time

    def set_tz(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_tz
    monkeypatch.undo()
    time.tzset()


def test_budget_refuses_bad_limits_with_its_messages() -> None:
    with pytest.raises(ValueError) as err:
        Budget("cluster", CLUSTER_KEY)
    assert str(err.value) == "a budget needs max_usd_per_hour or monthly_usd"
    with pytest.raises(ValueError) as err:
        Budget("cluster", CLUSTER_KEY, max_usd_per_hour=0.0)
    assert str(err.value) == "budget limits must be > 0, got 0.0"
    with pytest.raises(ValueError) as err:
        Budget("cluster", CLUSTER_KEY, max_usd_per_hour=1.0, monthly_usd=-5.0)
    assert str(err.value) == "budget limits must be > 0, got -5.0"
    for warn_at in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError) as err:
            Budget("cluster", CLUSTER_KEY, monthly_usd=10.0, warn_at=warn_at)
        assert str(err.value) == f"warn_at must be within (0, 1), got {warn_at}"
    # just inside every limit: accepted
    b = Budget("cluster", CLUSTER_KEY, max_usd_per_hour=0.01, monthly_usd=0.01, warn_at=0.99)
    assert b.max_usd_per_hour == 0.01 and b.warn_at == 0.99


def test_describe_says_each_limit_and_the_webhook() -> None:
    both = Budget("gpu", KEY, max_usd_per_hour=1234.5, monthly_usd=100.0, warn_at=0.75,
                  webhook="https://hooks.example/budget")
    assert both.describe() == ("budget: at most $1,234.50/h of running nodes and $100.00 per calendar "
                               "month (UTC); warns at 75%, webhook")
    monthly = Budget("cluster", CLUSTER_KEY, monthly_usd=2500.0)
    assert monthly.describe() == "budget: $2,500.00 per calendar month (UTC); warns at 80%"
    hourly = Budget("cluster", CLUSTER_KEY, max_usd_per_hour=3.0, webhook="")
    assert hourly.describe() == "budget: at most $3.00/h of running nodes; warns at 80%"


def test_assess_reasons_name_the_scope_the_figures_and_the_key() -> None:
    # A $3/h cap and a $100 month; $2.40/h running, $80 spent at Nov 15 12:00 UTC: 372 h left in the
    # month, so $80 + 2.4 * 372 = $972.80 by its end. Both at 80% = warn_at: WARN, monthly first.
    s = assess(pool_budget(max_usd_per_hour=3.0, monthly_usd=100.0), usd_per_hour=2.4,
               month_spend_usd=80.0, now=NOV_15)
    assert s.level is BudgetLevel.WARN
    assert s.reasons == (
        "pool 'gpu' spent $80.00 of its $100.00 budget for 2026-11 (80%; $972.80 by month end at the "
        f"current rate) [{KEY}.monthly_usd]",
        f"pool 'gpu' runs $2.4000/h of its $3.00/h cap (80%) [{KEY}.max_usd_per_hour]",
    )
    # The cluster's budget says "the cluster"; $1,200 of $1,000 with nothing running: OVER, 120%.
    c = assess(Budget("cluster", CLUSTER_KEY, monthly_usd=1000.0), usd_per_hour=0.0,
               month_spend_usd=1200.0, now=NOV_15)
    assert c.level is BudgetLevel.OVER
    assert c.reasons == ("the cluster spent $1,200.00 of its $1,000.00 budget for 2026-11 (120%; $1,200.00 "
                         "by month end at the current rate) [provider.budget.monthly_usd]",)
    # Over the cap (a spot price rose): $3.30/h of $3/h is 110%.
    o = assess(Budget("cluster", CLUSTER_KEY, max_usd_per_hour=3.0), usd_per_hour=3.3,
               month_spend_usd=0.0, now=NOV_15)
    assert o.level is BudgetLevel.OVER
    assert o.reasons == (
        "the cluster runs $3.3000/h of its $3.00/h cap (110%) [provider.budget.max_usd_per_hour]",)


def test_forecast_in_the_months_last_second() -> None:
    # Half a second before December: $36/h adds 36 * 0.5 / 3600 = $0.005 by the month's end.
    s = assess(Budget("cluster", CLUSTER_KEY, monthly_usd=100.0), usd_per_hour=36.0,
               month_spend_usd=0.0, now=DEC_1 - 0.5)
    assert s.month_start == NOV_1
    assert s.forecast_usd == pytest.approx(0.005, rel=1e-9)


@pytest.mark.parametrize("tz", ["LOC-14", "LOC+10"])
def test_month_bounds_are_utc_whatever_the_local_zone(local_tz: Any, tz: str) -> None:
    local_tz(tz)
    # Nov 30 20:00 UTC is Dec 1 10:00 at UTC+14; Nov 1 03:00 UTC is Oct 31 17:00 at UTC-10.
    assert month_bounds(datetime(2026, 11, 30, 20, tzinfo=UTC).timestamp()) == (NOV_1, DEC_1)
    assert month_bounds(datetime(2026, 11, 1, 3, tzinfo=UTC).timestamp()) == (NOV_1, DEC_1)
    assert month_bounds(NOV_15) == (NOV_1, DEC_1)


def test_the_month_named_in_a_reason_is_the_utc_month(local_tz: Any) -> None:
    local_tz("LOC+10")  # Nov 1 00:00 UTC is Oct 31 14:00 here
    s = assess(Budget("cluster", CLUSTER_KEY, monthly_usd=100.0), usd_per_hour=0.0,
               month_spend_usd=90.0, now=NOV_15)
    assert s.level is BudgetLevel.WARN and "budget for 2026-11 (90%" in s.reasons[0]


def test_verdict_refusals_say_why_and_what_to_raise() -> None:
    spent = assess(Budget("cluster", CLUSTER_KEY, monthly_usd=1000.0), usd_per_hour=0.0,
                   month_spend_usd=1200.0, now=NOV_15)
    v = launch_verdict([spent])
    assert v.allowed is False and v.max_price_per_hour is None
    assert v.reasons == (
        "budget: the cluster spent $1,200.00 of its $1,000.00 budget for 2026-11 (120%; $1,200.00 by month "
        "end at the current rate) [provider.budget.monthly_usd]; no node is launched until the month ends "
        "or the budget is raised",)
    full = assess(pool_budget(max_usd_per_hour=3.0), usd_per_hour=3.0, month_spend_usd=0.0, now=NOV_15)
    v = launch_verdict([full])
    assert v.allowed is False and v.max_price_per_hour is None
    assert v.reasons == (
        "budget: pool 'gpu' already runs $3.0000/h of its $3.00/h cap; no node is launched until one ends "
        f"or {KEY}.max_usd_per_hour is raised",)


def test_a_monthly_only_budget_does_not_hide_a_later_cap() -> None:
    # The cluster has only a monthly budget (10 of 1000 spent); the pool's $3/h cap runs $2.20/h:
    # the pool's headroom, $0.80/h, bounds the node.
    cluster = assess(Budget("cluster", CLUSTER_KEY, monthly_usd=1000.0), usd_per_hour=2.2,
                     month_spend_usd=10.0, now=NOV_15)
    pool = assess(pool_budget(max_usd_per_hour=3.0), usd_per_hour=2.2, month_spend_usd=0.0, now=NOV_15)
    v = launch_verdict([cluster, pool])
    assert v.allowed is True and v.max_price_per_hour == pytest.approx(0.8)
    assert v.reasons == (
        "budget: a new node may cost at most $0.8000/h (pool 'gpu' runs $2.2000/h of its $3.00/h cap, "
        f"{KEY}.max_usd_per_hour)",)


def test_on_equal_headroom_the_first_budget_given_is_named() -> None:
    # Both leave exactly $1/h ($3 - $2, $10 - $9). The rule (the docstring is silent; this pins it):
    # the first status given decides, the pool's as BudgetGuard passes the pool's budget first.
    pool = assess(pool_budget(max_usd_per_hour=3.0), usd_per_hour=2.0, month_spend_usd=0.0, now=NOV_15)
    cluster = assess(Budget("cluster", CLUSTER_KEY, max_usd_per_hour=10.0), usd_per_hour=9.0,
                     month_spend_usd=0.0, now=NOV_15)
    v = launch_verdict([pool, cluster])
    assert v.max_price_per_hour == 1.0 and "pool 'gpu'" in v.reasons[0] and len(v.reasons) == 1
    v = launch_verdict([cluster, pool])
    assert v.max_price_per_hour == 1.0 and "the cluster" in v.reasons[0]
