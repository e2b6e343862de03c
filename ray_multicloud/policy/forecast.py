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

* ``recent-max/W``: the highest rate of the last ``W`` ticks (a burst that lasts is still there
  when the replicas ordered for it are ready),

for seasons of an hour, a day and a week (those that fit the tick and the history). Where a
seasonal forecast lacks history it falls back to persistence. Each of them can be **sized up**
(:func:`sized`): ``candidate x M +P`` forecasts ``M`` times its base plus ``P`` (an upper-bound
forecast that buys headroom against the bursts no baseline foresees); how much is chosen like the
rest, by the backtest.

**Choice by backtest** (:func:`choose`): every candidate is scored on the history, over the ticks
where the longest look-back of the pool already has history; the lowest loss wins (ties: the earlier
candidate, i.e. the simpler one). The default loss is the pinball (quantile) loss at ``quantile``
(0.9) of the forecast against the rate ``lead`` ticks later: it charges an under-forecast nine times
an over-forecast of the same size (a missed ramp is an SLO violation, a replica too many is a few
minutes of cost). A caller that can replay what the forecast drives passes its own ``score``: the
serving simulator scores each candidate by the SLO violations and cost of the fleet it would have
run on the history (``ray_multicloud.sim.serving``).

**Too short a history** (:func:`too_short`): a choice needs at least ``MIN_SCORED_TICKS`` ticks on
which a forecast made ``lead`` ticks before can be compared with what came, i.e. a history of
``lead + MIN_SCORED_TICKS`` ticks at least (a candidate with a look-back needs that much more, and
is offered only when the history has it). Shorter: :func:`choose` returns ``None`` and the caller
scales reactively and says so. A one-hour trace leaves 30 minutes of history: enough on ticks of
a minute (30 ticks, a 5-tick lead: the serving simulator's steps by default), not on ticks of 195 s
or more (9 ticks or fewer: the spot traces' ticks, which that simulator stepped in before).

Why no forecasting library: statsforecast 2.1.1 (the issue's example) requires pandas < 3, so
installing it replaces this environment's pandas 3.1 with 2.3.3 and brings statsmodels, scipy,
fugue, triad, coreforecast and utilsforecast (16 packages; a separate venv with it is 584 MB). A
one-off backtest in such a venv (2026-11-29; MAF trace in 5-minute steps, first half only: models
fitted on its first quarter, one-step-ahead forecasts of its second quarter, ``refit=False``,
pinball loss at 0.9): persistence 2751, AutoETS 2724 (1% lower), SeasonalNaive(288) 3294, seasonal-
mean/288/7 here 2975; MSTL(288) did not finish in the minutes it had on this machine. One percent of
pinball loss on the point forecast does not pay for the dependencies, and what moves the SLO-
violation figure here is sizing (headroom), chosen by the fleet backtest. These baselines are the
ones such libraries are measured against, and the backtest reports what each scored, so a better
model can be added as one more candidate and win only by the same test.

Contract: pure functions of their arguments (numpy arrays in, arrays or dataclasses out).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

MIN_SCORED_TICKS = 20
"""The fewest ticks a backtest scores candidates on; a shorter history is too short to forecast."""
RECENT_WINDOWS = (3, 10)
"""Look-backs (ticks) of the ``recent-max`` candidates."""

HOUR_S = 3600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S

Array = npt.NDArray[np.float64]
_Num = TypeVar("_Num", np.float64, np.int64)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One forecaster: ``kind`` is persistence, seasonal-naive, seasonal-mean, seasonal-max or
    recent-max; ``season`` in ticks (0 for persistence; for recent-max the look-back window);
    ``k`` seasons looked back; the forecast is ``margin`` (>= 1) times the base forecast plus
    ``plus`` (>= 0, a rate: headroom). ``hold``: a sizing flag for the caller, not the forecast
    (the serving simulator then never sizes below reactive scaling's scale-down window)."""

    kind: str
    season: int = 0
    k: int = 1
    margin: float = 1.0
    plus: float = 0.0
    hold: bool = False

    @property
    def base_name(self) -> str:
        if self.kind == "persistence":
            return "persistence"
        if self.kind in ("seasonal-naive", "recent-max"):
            return f"{self.kind}/{self.season}"
        return f"{self.kind}/{self.season}/{self.k}"

    @property
    def name(self) -> str:
        out = self.base_name
        if self.margin != 1.0:
            out += f" x{self.margin:g}"
        if self.plus != 0.0:
            out += f" +{self.plus:.4g}"
        if self.hold:
            out += " hold"
        return out

    @property
    def lookback(self) -> int:
        """Ticks of history before the first tick this candidate forecasts from all of it."""
        if self.kind == "recent-max":
            return self.season - 1
        return self.season * self.k


@dataclass(frozen=True, slots=True)
class Choice:
    """What :func:`choose` picked and what every candidate scored (lower is better)."""

    best: Candidate
    scores: tuple[tuple[str, float], ...]
    scored_ticks: int


def too_short(history_ticks: int, lead: int) -> bool:
    """Whether ``history_ticks`` ticks are too few to choose a forecaster ``lead`` ticks ahead:
    fewer than ``lead + MIN_SCORED_TICKS`` (not even persistence could be scored on
    ``MIN_SCORED_TICKS`` ticks)."""
    return history_ticks - lead < MIN_SCORED_TICKS


def sized(
    pool: Sequence[Candidate], margins: Sequence[float] = (1.0,), pluses: Sequence[float] = (0.0,),
    holds: Sequence[bool] = (False,),
) -> list[Candidate]:
    """Every candidate of ``pool`` at every margin of ``margins`` (each >= 1), every headroom of
    ``pluses`` (rates, each >= 0) and every ``hold`` of ``holds``, in the order ``[c x m + p (hold h)
    for c in pool for h in holds for m in margins for p in pluses]``."""
    for m in margins:
        if not (math.isfinite(m) and m >= 1.0):
            raise ValueError(f"a margin must be a number >= 1, got {m}")
    for p in pluses:
        if not (math.isfinite(p) and p >= 0.0):
            raise ValueError(f"a headroom must be a rate >= 0, got {p}")
    return [dataclasses.replace(c, margin=float(m), plus=float(p), hold=bool(h))
            for c in pool for h in holds for m in margins for p in pluses]


SEASON_TOLERANCE = 0.01
"""How far (a share of the season) a whole number of ticks may be from a season and still stand for it."""


def candidates(tick_seconds: float, history_ticks: int, lead: int = 0) -> list[Candidate]:
    """The base candidates (margin 1) that ``history_ticks`` can score: each needs its look-back
    plus ``lead + MIN_SCORED_TICKS`` ticks; a season is the nearest whole number of ticks (at least
    2), offered only when that is within ``SEASON_TOLERANCE`` (1%) of the season (an hour of 7 s
    ticks: 514 ticks, 3,598 s; not an hour of 40-minute ticks: 2 ticks would be 80 min), and the
    history must hold at least two of it. Order: persistence, recent-max, then by season."""
    if not tick_seconds > 0:
        raise ValueError(f"tick_seconds must be > 0, got {tick_seconds}")

    def fits(c: Candidate) -> bool:
        return history_ticks >= c.lookback + lead + MIN_SCORED_TICKS

    pool = [Candidate("persistence")] + [Candidate("recent-max", w) for w in RECENT_WINDOWS]
    for seconds in (HOUR_S, DAY_S, WEEK_S):
        season = round(seconds / tick_seconds)
        if season < 2 or abs(season * tick_seconds - seconds) > SEASON_TOLERANCE * seconds:
            continue
        if history_ticks < 2 * season:
            continue
        pool.append(Candidate("seasonal-naive", season))
        for k in (3, 7):
            if history_ticks >= (k + 1) * season:
                pool.append(Candidate("seasonal-mean", season, k))
                pool.append(Candidate("seasonal-max", season, k))
    out = [c for c in pool if fits(c)]
    return out


def forecast_series(rate: Array, candidate: Candidate, lead: int) -> Array:
    """``f[t]``: ``candidate``'s forecast, made at tick ``t``, of ``rate[t + lead]`` (uses
    ``rate[0..t]`` only). Ticks without the history a seasonal forecast needs get persistence."""
    if lead < 0:
        raise ValueError(f"lead must be >= 0 ticks, got {lead}")
    rate = np.asarray(rate, dtype=np.float64)
    return _base_series(rate, candidate, lead) * candidate.margin + candidate.plus


def trailing_max(values: npt.NDArray[_Num], window: int) -> npt.NDArray[_Num]:
    """``out[t] = max(values[max(0, t - window + 1) : t + 1])``: the highest of the last ``window``
    values (the first ones see what there is). A new array; ``window`` <= 1 copies ``values``."""
    if window <= 1 or len(values) == 0:
        return values.copy()
    padded = np.concatenate([np.full(window - 1, values.min(), dtype=values.dtype), values])
    out: npt.NDArray[_Num] = np.lib.stride_tricks.sliding_window_view(padded, window).max(axis=1)
    return out


def _base_series(rate: Array, candidate: Candidate, lead: int) -> Array:
    n = len(rate)
    persistence = rate.copy()
    if candidate.kind == "persistence":
        return persistence
    if candidate.kind == "recent-max":
        return trailing_max(rate, max(1, candidate.season))
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
    pool: Sequence[Candidate] | None = None,
    score: Score | None = None,
) -> Choice | None:
    """The candidate with the lowest loss on ``rate`` (the history), or ``None`` when the history is
    :func:`too_short` (the caller scales reactively), leaves fewer than ``MIN_SCORED_TICKS`` ticks
    to score ``pool`` on, or no candidate is admissible. ``pool`` defaults to :func:`candidates`
    unsized. Scored on the ticks ``t`` from the longest candidate look-back on. The loss is
    ``score`` when given (the simulator scores a candidate by replaying the fleet policy it
    drives), else the pinball loss at ``quantile`` against ``rate[t + lead]``."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    rate = np.asarray(rate, dtype=np.float64)
    n = len(rate)
    if too_short(n, lead):
        return None
    pool = list(pool) if pool is not None else candidates(tick_seconds, n, lead)
    if not pool:
        return None
    warm = max((c.lookback for c in pool), default=0)
    first, last = warm, n - lead  # t in [first, last): rate[t + lead] exists
    if last - first < MIN_SCORED_TICKS:
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
