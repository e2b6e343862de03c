"""Demand forecasts for predictive serving capacity: seasonal baselines, one chosen by a backtest.

A GPU replica takes minutes to become ready (node start + model load), so capacity ordered when
demand arrives is late for every ramp. A forecaster looks ``lead`` ticks ahead: at tick ``t``, with
the request rates of ticks ``0..t`` known, it predicts the rate of tick ``t + lead``, and the fleet
orders now what that tick will need.

Candidates (:func:`candidates`), all online (each forecast uses only the past):

* ``persistence``: the rate now (what reactive scaling assumes);
* ``seasonal-naive/S``: the rate one season ``S`` before the target tick;
* ``seasonal-mean/S/k`` and ``seasonal-max/S/k``: the mean (max) of the rates ``1..k`` seasons
  before the target tick,

for seasons of an hour, a day and a week (those that fit the tick and the history). Where a
seasonal forecast lacks history it falls back to persistence.

**Choice by backtest** (:func:`choose`): every candidate is scored on the history, over the ticks
where the longest season already has history; the lowest loss wins (ties: the earlier candidate,
i.e. the simpler one). The default loss is the pinball (quantile) loss at ``quantile`` (0.9) of the
forecast against the rate ``lead`` ticks later: it charges an under-forecast nine times an
over-forecast of the same size (a missed ramp is an SLO violation, a replica too many is a few
minutes of cost). A caller that can replay what the forecast drives passes its own ``score``: the
serving simulator scores each candidate by the SLO violations and cost of the fleet it would have
run on the history (``ray_multicloud.sim.serving``). A history shorter than ``min_seasons`` days is
too short to choose on: :func:`choose` returns ``None`` and the caller scales reactively (and says so).

Why no forecasting library: statsforecast (the issue's example) requires pandas < 3 while
``ray[default]==2.60.0`` here installs pandas 3; these baselines are the ones such libraries are
measured against, and the backtest reports what each scored, so a better model can be added as one
more candidate and win only by the same test.

Contract: pure functions of their arguments (numpy arrays in, arrays or dataclasses out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HOUR_S = 3600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One forecaster: ``kind`` is persistence, seasonal-naive, seasonal-mean or seasonal-max;
    ``season`` in ticks (0 for persistence); ``k`` seasons looked back."""

    kind: str
    season: int = 0
    k: int = 1

    @property
    def name(self) -> str:
        if self.kind == "persistence":
            return "persistence"
        if self.kind == "seasonal-naive":
            return f"seasonal-naive/{self.season}"
        return f"{self.kind}/{self.season}/{self.k}"


@dataclass(frozen=True, slots=True)
class Choice:
    """What :func:`choose` picked and what every candidate scored (lower is better)."""

    best: Candidate
    scores: tuple[tuple[str, float], ...]
    scored_ticks: int


def candidates(tick_seconds: float, history_ticks: int) -> list[Candidate]:
    """The candidates whose seasons are whole ticks and whose history covers one season plus the
    scoring room (a season is kept when the history holds at least two of it)."""
    if not tick_seconds > 0:
        raise ValueError(f"tick_seconds must be > 0, got {tick_seconds}")
    out = [Candidate("persistence")]
    for seconds in (HOUR_S, DAY_S, WEEK_S):
        season = round(seconds / tick_seconds)
        if season < 2 or abs(season * tick_seconds - seconds) > tick_seconds / 2:
            continue
        if history_ticks < 2 * season:
            continue
        out.append(Candidate("seasonal-naive", season))
        for k in (3, 7):
            if history_ticks >= (k + 1) * season:
                out.append(Candidate("seasonal-mean", season, k))
                out.append(Candidate("seasonal-max", season, k))
    return out


def forecast_series(rate: Array, candidate: Candidate, lead: int) -> Array:
    """``f[t]``: ``candidate``'s forecast, made at tick ``t``, of ``rate[t + lead]`` (uses
    ``rate[0..t]`` only). Ticks without the history a seasonal forecast needs get persistence."""
    if lead < 0:
        raise ValueError(f"lead must be >= 0 ticks, got {lead}")
    rate = np.asarray(rate, dtype=np.float64)
    n = len(rate)
    persistence = rate.copy()
    if candidate.kind == "persistence":
        return persistence
    season = candidate.season
    if season < 1 or lead > season:
        # The same tick one season back is not known yet when lead > season.
        return persistence
    looks = [j * season - lead for j in range(1, candidate.k + 1)]  # how far back from t
    stack = np.full((len(looks), n), np.nan)
    for row, back in enumerate(looks):
        if back < n:
            stack[row, back:] = rate[: n - back]
    if candidate.kind == "seasonal-naive":
        out = stack[0]
    elif candidate.kind == "seasonal-mean":
        out = stack.mean(axis=0)
    elif candidate.kind == "seasonal-max":
        out = stack.max(axis=0)
    else:
        raise ValueError(f"unknown forecaster kind {candidate.kind!r}")
    return np.where(np.isnan(out), persistence, out)


def pinball(actual: Array, forecast: Array, quantile: float) -> float:
    """Mean pinball loss of ``forecast`` at ``quantile``: ``q * (y - f)`` when under, ``(1 - q) *
    (f - y)`` when over."""
    diff = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    if diff.size == 0:
        return math.nan
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1.0) * diff)))


Score = Callable[[Candidate, "Array", int, int], "float | None"]
"""``score(candidate, forecast, first, last)``: a candidate's loss on the history ticks
``[first, last)`` given its forecast series; ``None`` rules the candidate out."""


def choose(
    rate: Array,
    tick_seconds: float,
    lead: int,
    *,
    quantile: float = 0.9,
    min_seasons: float = 2.0,
    pool: Sequence[Candidate] | None = None,
    score: Score | None = None,
) -> Choice | None:
    """The candidate with the lowest loss on ``rate`` (the history), or ``None`` when the history is
    shorter than ``min_seasons`` days (too short to forecast; the caller scales reactively) or no
    candidate is admissible. Scored on the ticks ``t`` from the longest candidate season's full
    look-back on. The loss is ``score`` when given (the simulator scores a candidate by replaying
    the fleet policy it drives), else the pinball loss at ``quantile`` against ``rate[t + lead]``."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    rate = np.asarray(rate, dtype=np.float64)
    n = len(rate)
    if n * tick_seconds < min_seasons * DAY_S:
        return None
    pool = list(pool) if pool is not None else candidates(tick_seconds, n)
    if not pool:
        return None
    warm = max((c.season * c.k for c in pool), default=0)
    first, last = warm, n - lead  # t in [first, last): rate[t + lead] exists
    if last - first < 1:
        return None
    actual = rate[first + lead : last + lead]
    scores: list[tuple[str, float]] = []
    best: int | None = None
    for i, c in enumerate(pool):
        series = forecast_series(rate, c, lead)
        if score is None:
            loss: float | None = pinball(actual, series[first:last], quantile)
        else:
            loss = score(c, series, first, last)
        scores.append((c.name, math.inf if loss is None else loss))
        if loss is not None and (best is None or loss < scores[best][1]):
            best = i
    if best is None:
        return None
    return Choice(best=pool[best], scores=tuple(scores), scored_ticks=last - first)
