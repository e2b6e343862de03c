"""Budgets: is a pool (or the whole cluster) within its spend limits, and what may a new node cost.

Pure: no I/O, no clock (``now`` is passed in), no logging. The caller (``budget_guard``) reads the
spend so far from the ledger and the current $/h from the fleet.

A ``Budget`` has a cap on the running nodes' summed price (``max_usd_per_hour``) and/or a budget
for the calendar month, UTC (``monthly_usd``). ``assess`` grades it:

- ``OVER``: this month's spend reached ``monthly_usd``, or the running nodes cost more than
  ``max_usd_per_hour`` (a spot price rose after launch);
- ``WARN``: this month's spend reached ``warn_at`` of ``monthly_usd``, or the running nodes cost
  ``warn_at`` of ``max_usd_per_hour`` or more;
- ``OK`` otherwise.

``launch_verdict`` combines the pool's and the cluster's statuses into what a new node may cost:
refused outright when a monthly budget is spent; else at most the smallest headroom under a $/h
cap (``cap - current``), so the launcher places the node on cheaper capacity within the cap, or
refuses when no headroom is left. For example, a pool capped at $3/h running one $2.20/h node:
the next node may cost $0.80/h (an A100 spot at $1.10 is skipped for a T4 at $0.53), and with a
second $0.53 node running, a third is refused (headroom $0.27 < every offer).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_WARN_AT = 0.8
_EPS = 1e-9  # dollars: 0.8 * 3.0 is 2.4000000000000004


class BudgetLevel(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    OVER = "over"

    @property
    def rank(self) -> int:
        return {"ok": 0, "warn": 1, "over": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget. ``scope`` is ``"cluster"`` or a pool (node type) name; ``key`` the YAML key it
    was read from (messages name it). At least one of the two limits is set."""

    scope: str
    key: str
    max_usd_per_hour: float | None = None
    monthly_usd: float | None = None
    warn_at: float = DEFAULT_WARN_AT
    webhook: str | None = None
    webhook_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_usd_per_hour is None and self.monthly_usd is None:
            raise ValueError("a budget needs max_usd_per_hour or monthly_usd")
        for limit in (self.max_usd_per_hour, self.monthly_usd):
            if limit is not None and not limit > 0:
                raise ValueError(f"budget limits must be > 0, got {limit}")
        if not 0 < self.warn_at < 1:
            raise ValueError(f"warn_at must be within (0, 1), got {self.warn_at}")

    def describe(self) -> str:
        """One line for ``plan`` and logs."""
        parts = []
        if self.max_usd_per_hour is not None:
            parts.append(f"at most ${self.max_usd_per_hour:,.2f}/h of running nodes")
        if self.monthly_usd is not None:
            parts.append(f"${self.monthly_usd:,.2f} per calendar month (UTC)")
        hook = ", webhook" if self.webhook else ""
        return f"budget: {' and '.join(parts)}; warns at {self.warn_at:.0%}{hook}"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget graded at ``now``: the figures it was graded on, and why."""

    budget: Budget
    level: BudgetLevel
    usd_per_hour: float
    month_spend_usd: float
    month_start: float
    forecast_usd: float
    reasons: tuple[str, ...]

    @property
    def hourly_fraction(self) -> float | None:
        cap = self.budget.max_usd_per_hour
        return None if cap is None else self.usd_per_hour / cap

    @property
    def monthly_fraction(self) -> float | None:
        monthly = self.budget.monthly_usd
        return None if monthly is None else self.month_spend_usd / monthly

    @property
    def month_spent(self) -> bool:
        monthly = self.budget.monthly_usd
        return monthly is not None and self.month_spend_usd >= monthly - _EPS


@dataclass(frozen=True, slots=True)
class LaunchVerdict:
    """What a new node may cost: ``allowed`` False refuses it; else ``max_price_per_hour`` (None:
    no budget limit) bounds its offer. ``reasons`` say which budget decided."""

    allowed: bool
    max_price_per_hour: float | None
    reasons: tuple[str, ...]


def month_bounds(now: float) -> tuple[float, float]:
    """The calendar month (UTC) holding ``now``: its first and its last instant (exclusive)."""
    t = datetime.fromtimestamp(now, UTC)
    start = datetime(t.year, t.month, 1, tzinfo=UTC)
    end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def _who(budget: Budget) -> str:
    return "the cluster" if budget.scope == "cluster" else f"pool {budget.scope!r}"


def assess(budget: Budget, *, usd_per_hour: float, month_spend_usd: float, now: float) -> BudgetStatus:
    """Grade ``budget`` given the running nodes' summed $/h and this month's spend so far."""
    start, end = month_bounds(now)
    forecast = month_spend_usd + usd_per_hour * max(0.0, end - now) / 3600.0
    level = BudgetLevel.OK
    reasons: list[str] = []
    who = _who(budget)

    def grade(new: BudgetLevel, why: str) -> None:
        nonlocal level
        reasons.append(why)
        if new.rank > level.rank:
            level = new

    cap, monthly = budget.max_usd_per_hour, budget.monthly_usd
    if monthly is not None:
        used = month_spend_usd / monthly
        month = datetime.fromtimestamp(start, UTC).strftime("%Y-%m")
        text = (f"{who} spent ${month_spend_usd:,.2f} of its ${monthly:,.2f} budget for {month} "
                f"({used:.0%}; ${forecast:,.2f} by month end at the current rate) [{budget.key}.monthly_usd]")
        if used >= 1 - _EPS:
            grade(BudgetLevel.OVER, text)
        elif used >= budget.warn_at - _EPS:
            grade(BudgetLevel.WARN, text)
    if cap is not None:
        text = (f"{who} runs ${usd_per_hour:,.4f}/h of its ${cap:,.2f}/h cap ({usd_per_hour / cap:.0%}) "
                f"[{budget.key}.max_usd_per_hour]")
        if usd_per_hour > cap + _EPS:
            grade(BudgetLevel.OVER, text)
        elif usd_per_hour >= budget.warn_at * cap - _EPS:
            grade(BudgetLevel.WARN, text)
    return BudgetStatus(budget, level, usd_per_hour, month_spend_usd, start, forecast, tuple(reasons))


def launch_verdict(statuses: Sequence[BudgetStatus]) -> LaunchVerdict:
    """What a new node may cost under every budget in ``statuses`` (the pool's and the cluster's): the
    least headroom of any, and the reason names that budget (on equal headroom, the first given)."""
    for s in statuses:
        if s.month_spent:
            spent = next(r for r in s.reasons if "monthly_usd" in r)
            return LaunchVerdict(False, None, (
                f"budget: {spent}; no node is launched until the month ends or the budget is raised",))
    limit: float | None = None
    reasons: list[str] = []
    for s in statuses:
        cap = s.budget.max_usd_per_hour
        if cap is None:
            continue
        headroom = cap - s.usd_per_hour
        if headroom <= _EPS:
            return LaunchVerdict(False, None, (
                f"budget: {_who(s.budget)} already runs ${s.usd_per_hour:,.4f}/h of its ${cap:,.2f}/h cap; "
                f"no node is launched until one ends or {s.budget.key}.max_usd_per_hour is raised",))
        if limit is None or headroom < limit:
            limit = headroom
            reasons = [f"budget: a new node may cost at most ${headroom:,.4f}/h ({_who(s.budget)} runs "
                       f"${s.usd_per_hour:,.4f}/h of its ${cap:,.2f}/h cap, {s.budget.key}.max_usd_per_hour)"]
    return LaunchVerdict(True, limit, tuple(reasons))
