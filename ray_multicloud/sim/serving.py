"""Serving-fleet simulation: replicas on spot and on-demand across zones against a demand trace.

Model
-----
Time advances in steps of ``FleetSpec.step_seconds`` (0, the default: the demand trace's own
resolution, 60 s for per-minute counts, 1 s for per-second ones), whatever the tick of the spot
traces (loaded by :func:`ray_multicloud.sim.load_traces`), over the overlap of both. The demand of a
step is the mean request rate of the demand samples that start in it (``peak=True``: their
maximum; a step shorter than a sample holds its rate). Spot availability and prices are held
constant within a spot tick (:func:`spot_on_steps`: a step that spans several spot ticks gets the
fewest VMs among them and their prices weighted by the time each covers, so cost stays exact).
Before, the simulator stepped in the spot ticks (30 s to 10 min) and the one-hour demand traces
left a forecaster 3 to 9 ticks of history. (In this docstring "tick" below means a step.) The fleet
needs ``ceil(demand / replica_rps)`` ready replicas (at least ``min_replicas``) to meet the SLO; it is
sized for the highest need of the last ``downscale_minutes`` (scale-up at once, scale-down
after demand stayed low that long); a
step with fewer ready replicas is an SLO violation, and the requests above ready capacity
count as unserved. A launched replica is paid, per step, from launch and is ready
``startup_minutes`` later: at the first step that starts at or after that time, so start-up,
scale-down and the forecast lead are whole steps, exact when the step divides them. A zone
whose trace value is 0 holds no spot replica (all of them are preempted); a multi-node trace's
value caps the spot replicas in that zone, a 1-node trace (0/1) does not. On-demand is always available.

Fleet policies (:data:`FLEET_POLICIES`):

* ``ondemand``: every replica on on-demand.
* ``spot-one-zone``: every replica on spot in one zone (the cheapest), no fallback.
* ``spot-hedge`` (after SkyServe's SpotHedge, EuroSys'25): spot replicas spread over the
  available zones, cheapest and least-loaded first, plus ``extra_spot`` over-provisioned
  replicas; on-demand replicas cover whatever the ready spot replicas do not, and are released
  once spot is ready again.
* ``predictive``: ``spot-hedge`` sized for the need a forecaster (``ray_multicloud.policy.forecast``)
  predicts ``startup`` ticks ahead instead of the need now, so replicas ordered now are ready when
  the forecast demand arrives (and are kept until the forecast tick has passed, instead of the
  downscale window); on-demand covers the forecast need that the spot replicas (ready or starting)
  do not, and the part of the need now that ready spot does not, up to the forecast. A demand
  spike no forecast saw is not chased: replicas ordered for it would be ready after it (the
  ``persistence`` candidate, the demand now, is how reactive sizing competes in the backtest; a
  ``hold`` candidate instead never sizes below reactive scaling's scale-down window, i.e. it is
  spot-hedge plus what the forecast adds). The forecaster
  is chosen by a backtest on the ticks before ``held_out_from`` (on the whole trace when that is 0:
  in-sample, and said so): each candidate drives this policy over that history, and the one with
  the fewest SLO-violation ticks among those costing at most ``1 + max_extra_cost`` times
  ``spot-hedge`` on the same history, in each half of it (``BACKTEST_FOLDS``), wins (cost breaks
  ties). The pool is every base forecaster
  of ``forecast.candidates`` with each headroom of ``HEADROOM_REPLICAS`` (``+k spot``: ``k``
  replicas' worth of requests added to the forecast for the spot replicas only, like spot-hedge's
  extra spot replicas; on-demand never covers headroom), so how much headroom to buy is chosen by
  the same backtest, and each with and without ``hold`` (``FleetSpec.holds``). Reactive scaling
  competes too: the winner must score better than ``spot-hedge`` itself on the same steps (fewer
  violations, or as few for less), else there is no forecaster. With a
  history ``forecast.too_short`` to forecast (fewer than the start-up lead plus
  ``forecast.MIN_SCORED_TICKS`` steps), no candidate within the cost bound, or none better than
  reactive scaling, there is no forecaster and the policy is ``spot-hedge`` (the result's ``note``
  says which, in one line).
  **Probation** (a guard against preemptions, not demand): a zone that has just come back is the
  likeliest to go again (on the shared spot traces the chance that a zone loses VMs within the
  next 5 min is 0.12-0.48 at 5-10 min after it came back, on 9 of 10 sets, and 0.001-0.04 once it
  has held 2 h: ``benchmarks/README.md``, bench_fleet), and spot-hedge
  releases its on-demand fallback as soon as spot there is ready. With a probation of ``P`` min the
  fallback counts a zone's spot replicas only up to the fewest VMs the zone held over the last
  ``P`` min (:func:`probation_caps`), so it stays until the zone has held that long. After the
  forecaster (or reactive scaling) is chosen, the same backtest chooses ``P`` among
  ``FleetSpec.probations`` (fewest violations within the per-part cost bound; cost, then the
  shorter probation, break ties); the result's ``forecaster`` then ends in ``probation P min``
  (``reactive probation P min`` without a forecaster).

Known peaks (``FleetSpec.peaks``, ``policy.predictive.Peak``: the ``peaks:`` of a pool's
``predictive:`` section, or ``simulate-serving --peaks FILE``): tick ``t`` is at wall-clock time
``trace_start + t * tick`` (the traces carry no dates); a peak open at any instant from there to
``startup`` later asks for its replicas at tick ``t``, so they are ordered ``startup`` ahead and are
ready when it opens. Every policy honours them, like ``min_replicas``: ``ondemand`` and
``spot-one-zone`` size their fleet to at least the peak; ``spot-hedge`` and ``predictive`` order the
peak's replicas on spot (on-demand covers only what spot, ready or starting, does not).

The on-demand baseline is the ``ondemand`` policy's cost on the same traces. With
``held_out_from = h > 0`` every figure (cost, violations, unserved, replicas) counts only ticks
``>= h``; the fleet is simulated from tick 0 so it enters the held-out part warm.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ray_multicloud.policy.forecast import (
    MIN_SCORED_TICKS,
    Candidate,
    Choice,
    Score,
    candidates,
    choose,
    forecast_series,
    sized,
    too_short,
    trailing_max,
)
from ray_multicloud.policy.predictive import Peak, open_within
from ray_multicloud.sim.traces import TraceError, TraceSet

TRACE_START = 1704067200.0
"""The wall-clock time of tick 0 when none is given: 2024-01-01T00:00:00Z, a Monday at midnight UTC."""
FLEET_POLICIES = ("ondemand", "spot-one-zone", "spot-hedge", "predictive")
HEADROOM_REPLICAS = (0, 1, 2, 4, 8, 16, 32)
"""``predictive``'s backtest offers every forecaster with this many replicas of headroom on top."""
BACKTEST_FOLDS = 2
PROBATION_MINUTES = (0.0, 10.0, 20.0, 30.0)
"""``predictive``'s backtest offers these probation periods: on-demand fallback does not count on a
zone's spot replicas until the zone has kept its VMs this long (a zone that just came back is the
likeliest to go again)."""
"""``predictive``'s backtest holds a candidate to the cost bound in each of this many parts of the
history, not only over all of it."""


@dataclass(frozen=True, slots=True)
class Demand:
    """Requests per second, one value per ``step_seconds``."""

    step_seconds: float
    rps: npt.NDArray[np.float64]
    source: str

    @property
    def hours(self) -> float:
        return len(self.rps) * self.step_seconds / 3600.0


MAX_MINUTES = 10 * 366 * 24 * 60  # a per-minute demand trace spans at most ten years
MAX_SECONDS = 31 * 24 * 3600  # a per-second one at most 31 days (one float per second in memory)
MAX_COUNT = 1e12  # requests in one row (the MAF trace's busiest minute: 1.8e8)


def load_demand(path: str | Path) -> Demand:
    """Read a demand CSV: ``Time (min),Requests`` (per-minute counts, the SpotHedge MAF trace) or
    ``second,requests,...`` (per-second counts with ISO timestamps; missing seconds are 0).

    The file must be UTF-8; minutes whole numbers from 0 to ``MAX_MINUTES``; timestamps all with a
    time zone or all without, spanning at most ``MAX_SECONDS``; each minute or second given once
    (a repeated one is an error, never summed); counts finite, from 0 to ``MAX_COUNT``. Anything
    else, an unreadable file or an unknown header raises :class:`TraceError` naming the file and
    the row.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise TraceError(f"{p}: cannot read demand trace ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise TraceError(f"{p}: demand trace is not UTF-8 text (bad byte at offset {exc.start})") from None
    except csv.Error as exc:
        raise TraceError(f"{p}: demand trace is not CSV ({exc})") from None
    numbered = [(i, r) for i, r in enumerate(rows[1:], start=2) if r]
    if not numbered:
        raise TraceError(f"{p}: demand trace has no rows; expected a header and one row per minute or second")
    header = [h.strip().lower() for h in rows[0]]
    line = 0
    try:
        if header[:2] == ["time (min)", "requests"]:
            per_minute: dict[int, tuple[int, float]] = {}
            for line, r in numbered:
                minute = _whole(r[0], "minute", MAX_MINUTES)
                if minute in per_minute:
                    first = per_minute[minute][0]
                    raise ValueError(f"minute {minute} again (first on line {first}); give each once")
                per_minute[minute] = (line, _count(r[1]))
            counts = np.zeros(max(per_minute) + 1)
            for minute, (_, count) in per_minute.items():
                counts[minute] = count
            return Demand(60.0, counts / 60.0, str(p))
        if header[:2] == ["second", "requests"]:
            stamped: list[tuple[int, datetime, float]] = []
            for line, r in numbered:
                stamp = datetime.fromisoformat(r[0].strip())
                if stamped and (stamp.tzinfo is None) != (stamped[0][1].tzinfo is None):
                    raise ValueError("timestamps mix ones with a time zone and ones without; write all alike")
                stamped.append((line, stamp, _count(r[1])))
            t0 = min(s for _, s, _ in stamped)
            per_second: dict[int, tuple[int, float]] = {}
            for line, stamp, count in stamped:
                offset = (stamp - t0).total_seconds()
                if offset > MAX_SECONDS:
                    days = MAX_SECONDS // 86400
                    raise ValueError(f"{stamp.isoformat()} is more than {days} days after the first "
                                     f"timestamp {t0.isoformat()}; split the trace")
                sec = int(offset)
                if sec in per_second:
                    first = per_second[sec][0]
                    raise ValueError(f"second {stamp.isoformat()} again (first on line {first}); once each")
                per_second[sec] = (line, count)
            counts = np.zeros(max(per_second) + 1)
            for sec, (_, count) in per_second.items():
                counts[sec] = count
            return Demand(1.0, counts, str(p))
    except (ValueError, IndexError, OverflowError) as exc:
        raise TraceError(f"{p}: line {line}: bad demand row ({exc})") from None
    raise TraceError(
        f"{p}: unknown demand header {rows[0]!r}; use 'Time (min),Requests' or 'second,requests'"
    )


def _whole(text: str, what: str, most: int) -> int:
    value = float(text)
    if not (math.isfinite(value) and value.is_integer() and 0 <= value <= most):
        raise ValueError(f"{what} {text!r} is not a whole number from 0 to {most}")
    return int(value)


def _count(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= MAX_COUNT):
        raise ValueError(f"request count {text!r} is not a number from 0 to {MAX_COUNT:g}")
    return value


@dataclass(frozen=True, slots=True)
class FleetSpec:
    replica_rps: float
    startup_minutes: float = 5.0
    min_replicas: int = 1
    extra_spot: int = 1
    downscale_minutes: float = 10.0
    peak: bool = False
    max_extra_cost: float = 0.05
    peaks: tuple[Peak, ...] = ()
    trace_start: float = TRACE_START
    margins: tuple[float, ...] = (1.0,)
    holds: tuple[bool, ...] = (False, True)
    step_seconds: float = 0.0
    """The simulation step; 0: the demand trace's own resolution (module docstring)."""
    probations: tuple[float, ...] = PROBATION_MINUTES
    """``predictive``: the probation periods (minutes) its backtest chooses from (module docstring);
    ``(0,)``: none; one period alone is applied when it keeps the history within the cost bound."""


@dataclass(frozen=True, slots=True)
class ServingResult:
    policy: str
    hours: float
    cost_usd: float
    ondemand_cost_usd: float
    slo_violation_fraction: float
    unserved_fraction: float
    preemptions: int
    mean_replicas: float
    forecaster: str | None = None
    in_sample: bool = True
    note: str = ""
    step_seconds: float = 0.0

    @property
    def savings_fraction(self) -> float:
        return 1.0 - self.cost_usd / self.ondemand_cost_usd if self.ondemand_cost_usd > 0 else 0.0


def resample(
    demand: Demand, tick_seconds: float, ticks: int, *, peak: bool = False
) -> npt.NDArray[np.float64]:
    """Demand rate per step of ``tick_seconds`` (mean, or max with ``peak``, of the demand samples
    that start in it; a step shorter than a sample holds that sample's rate) for up to ``ticks``
    steps."""
    per = tick_seconds / demand.step_seconds
    n = min(ticks, int(len(demand.rps) / per + 1e-9))
    if n < 1:
        raise TraceError(f"{demand.source}: shorter than one simulation step ({tick_seconds:g} s)")
    i = np.arange(n + 1, dtype=np.float64)
    if per < 1.0:  # a step inside one sample holds its rate
        return np.asarray(demand.rps[np.floor(i[:-1] * per + 1e-9).astype(np.int64)], dtype=np.float64)
    # Steps of a sample or more: the samples that *start* in ``[i per, (i + 1) per)``, i.e. from
    # ceil(i per) (at least one, since per >= 1); the last ends at ceil(n per) <= len(rps).
    edges = np.ceil(i * per - 1e-9).astype(np.int64)
    lo, hi = edges[:-1], edges[1:]
    part = demand.rps[: int(hi[-1])]
    if peak:
        return np.asarray(np.maximum.reduceat(part, lo), dtype=np.float64)
    return np.asarray(np.add.reduceat(part, lo) / (hi - lo), dtype=np.float64)


def spot_on_steps(traces: TraceSet, step_seconds: float, steps: int) -> TraceSet:
    """``traces`` on the simulation grid: step ``i`` is ``[i s, (i + 1) s)`` for ``s =
    step_seconds``. A step within one spot tick takes that tick's count and price (spot held
    constant within a spot tick); a step over several takes the fewest VMs of those ticks (a zone
    that goes at any instant of the step has gone for the step) and their prices weighted by the
    time each covers of it (so cost stays exact). ``steps`` must fit in the traces' span."""
    g, s = traces.gap_seconds, step_seconds
    if math.isclose(g, s):
        return dataclasses.replace(traces, counts=traces.counts[:, :steps],
                                   spot_prices=traces.spot_prices[:, :steps])
    i = np.arange(steps, dtype=np.float64)
    lo = np.floor(i * s / g + 1e-9).astype(np.int64)
    hi = np.maximum(lo + 1, np.minimum(traces.ticks, np.ceil((i + 1) * s / g - 1e-9).astype(np.int64)))
    counts = traces.counts[:, lo].copy()
    weighted = np.zeros((len(traces.names), steps))
    for j in range(int((hi - lo).max())):
        k = lo + j
        inside = k < hi
        kk = np.minimum(k, traces.ticks - 1)
        # Seconds of step i that spot tick k covers.
        cover = np.clip(np.minimum((kk + 1) * g, (i + 1) * s) - np.maximum(kk * g, i * s), 0.0, None)
        cover = np.where(inside, cover, 0.0)
        counts = np.where(inside, np.minimum(counts, traces.counts[:, kk]), counts)
        weighted += traces.spot_prices[:, kk] * cover
    return dataclasses.replace(traces, gap_seconds=float(s), counts=counts, spot_prices=weighted / s)


def steps_of(traces: TraceSet, demand: Demand, step_seconds: float) -> int:
    """Whole steps of ``step_seconds`` in the overlap of the spot traces and the demand trace."""
    span = min(traces.ticks * traces.gap_seconds, len(demand.rps) * demand.step_seconds)
    return math.floor(span / step_seconds + 1e-9)


def _prepare(
    traces: TraceSet, demand: Demand, fleet: FleetSpec, held_out_from: float
) -> tuple[npt.NDArray[np.float64], TraceSet, int]:
    """Checked inputs on the simulation grid: (demand rate per step, the spot traces on the same
    steps, the first held-out step). Raises :class:`TraceError` naming what to change."""
    if fleet.replica_rps <= 0:
        raise TraceError(f"replica capacity must be > 0 requests/s, got {fleet.replica_rps}")
    if not 0.0 <= held_out_from < 1.0:
        raise TraceError(f"held-out start must be a fraction in [0, 1), got {held_out_from}")
    step = fleet.step_seconds or demand.step_seconds
    if not (math.isfinite(step) and step > 0):
        raise TraceError(f"simulation step must be a number of seconds > 0, got {fleet.step_seconds}")
    n_steps = steps_of(traces, demand, step)
    if n_steps < 1:
        raise TraceError(f"{demand.source}: the overlap of the demand and spot traces is shorter than one "
                         f"simulation step ({step:g} s); give a shorter step "
                         "(simulate-serving --step-seconds)")
    rate = resample(demand, step, n_steps, peak=fleet.peak)
    traces = spot_on_steps(traces, step, len(rate))
    start = int(len(rate) * held_out_from)
    if start >= len(rate):
        raise TraceError(f"nothing left to evaluate after the first {held_out_from:.0%} of {len(rate)} steps")
    return rate, traces, start


def simulate_fleet(
    traces: TraceSet,
    demand: Demand,
    fleet: FleetSpec,
    policy: str,
    *,
    ondemand_price: float,
    held_out_from: float = 0.0,
) -> ServingResult:
    """Run fleet ``policy`` over the overlap of the spot traces and the demand trace.

    ``held_out_from``: a fraction in [0, 1) of that overlap; figures count the ticks from there on,
    and ``predictive`` chooses its forecaster on the ticks before it (module docstring)."""
    if policy not in FLEET_POLICIES:
        raise TraceError(f"unknown fleet policy {policy!r}: use one of {', '.join(FLEET_POLICIES)}")
    step = fleet.step_seconds or demand.step_seconds
    rate, traces, start = _prepare(traces, demand, fleet, held_out_from)
    forecast: npt.NDArray[np.float64] | None = None
    headroom: float | npt.NDArray[np.float64] = 0.0
    chosen: Choice | None = None
    trusted: npt.NDArray[np.int64] | None = None
    probation = 0.0
    note = ""
    if policy == "predictive":
        startup = _ticks(fleet.startup_minutes, traces.gap_seconds)
        end = start if start > 0 else len(rate)
        history = rate[:end]
        # The backtests run on ``history`` with the traces uncut: ``_run`` reads the first
        # ``len(history)`` steps of them, and each zone's kind (1-node or multi-node) from its whole
        # trace, as the run over every step does (a multi-node zone that held at most 1 VM before
        # ``end`` is still capped by its count there).
        hours = len(history) * traces.gap_seconds / 3600
        short = too_short(len(history), startup)
        reactive_violations = -1
        if not short:
            pool = sized(candidates(traces.gap_seconds, len(history), startup), margins=fleet.margins,
                         pluses=[k * fleet.replica_rps for k in HEADROOM_REPLICAS], holds=fleet.holds)
            chosen = choose(history, traces.gap_seconds, startup, pool=pool,
                            score=_backtest(traces, history, fleet, ondemand_price))
        if chosen is not None:
            # Reactive scaling competes too: spot-hedge's own score on the same steps (its cost is
            # its own reference, 1). A forecaster must beat it: fewer violations, or as few for less.
            first = len(history) - startup - chosen.scored_ticks
            reactive_violations = _run(traces, history, fleet, "spot-hedge", ondemand_price, None, first)[1]
            reactive = reactive_violations + 1.0 / (2.0 + fleet.max_extra_cost)
            if dict(chosen.scores)[chosen.best.name] >= reactive:
                chosen = None
        if short:
            note = (f"demand history of {len(history)} steps of {step:g} s ({hours:.2f} h) is too short to "
                    f"forecast {startup} steps ahead (needs {startup + MIN_SCORED_TICKS}: the start-up lead "
                    f"plus {MIN_SCORED_TICKS} steps to score forecasters on): scaled reactively, "
                    "as spot-hedge")
        elif chosen is None and reactive_violations >= 0:
            note = (f"no forecaster beat reactive scaling on the {hours:.1f} h of history (spot-hedge: "
                    f"{reactive_violations} SLO-violation steps; fewer, or as few for less, needed): "
                    "scaled reactively, as spot-hedge")
        elif chosen is None:
            note = (f"no forecaster kept the fleet within {fleet.max_extra_cost:.0%} of spot-hedge's cost on "
                    f"the {hours:.1f} h of history: scaled reactively, as spot-hedge")
        else:
            forecast, headroom = _split(rate, chosen.best, startup)
        if not short and any(minutes > 0 for minutes in fleet.probations):
            first = len(history) - startup - chosen.scored_ticks if chosen is not None else startup
            probation = _choose_probation(traces, history, fleet, ondemand_price,
                                          chosen.best if chosen is not None else None, first)
            if probation > 0:
                trusted = probation_caps(traces.counts, _ticks(probation, traces.gap_seconds))
                note = (f"{note}; " if note else "") + (
                    f"probation {probation:g} min chosen on the {hours:.1f} h of history: on-demand "
                    f"fallback counts a zone's spot replicas only once the zone has kept its VMs "
                    f"{probation:g} min")
    hold = chosen is not None and chosen.best.hold
    run = _run(traces, rate, fleet, policy, ondemand_price, forecast, start, headroom, hold=hold,
               trusted=trusted)
    base = run if policy == "ondemand" else _run(traces, rate, fleet, "ondemand", ondemand_price, None, start)
    cost, violations, unserved, pre, replicas = run
    counted = len(rate) - start
    total = float(rate[start:].sum())
    return ServingResult(
        policy=policy,
        hours=counted * traces.gap_seconds / 3600.0,
        cost_usd=cost,
        ondemand_cost_usd=base[0],
        slo_violation_fraction=violations / counted,
        unserved_fraction=unserved / total if total > 0 else 0.0,
        preemptions=pre,
        mean_replicas=replicas / counted,
        forecaster=_forecaster_label(chosen, fleet.replica_rps, probation),
        in_sample=start == 0,
        note=note,
        step_seconds=step,
    )


def _backtest(
    traces: TraceSet, rate: npt.NDArray[np.float64], fleet: FleetSpec, od_price: float
) -> Score:
    """A ``forecast.choose`` score: a candidate's SLO-violation ticks when its forecast drives
    ``predictive`` over the history (``traces``, ``rate``), plus its cost as a fraction of
    ``spot-hedge``'s (below 1 + ``max_extra_cost``, so it only breaks ties); ``None`` when it costs
    more than that in any of the ``BACKTEST_FOLDS`` consecutive, equal parts of the scored ticks
    (a candidate within the bound on the whole history only thanks to one cheap stretch, e.g.
    spot too scarce to place its headroom, is ruled out)."""
    reference: dict[int, list[float]] = {}

    def folds(costs: list[float]) -> list[float]:
        edges = np.linspace(0, len(costs), BACKTEST_FOLDS + 1).round().astype(int)
        return [sum(costs[a:b]) for a, b in itertools.pairwise(edges.tolist())]

    def score(c: Candidate, series: npt.NDArray[np.float64], first: int, _last: int) -> float | None:
        if first not in reference:
            hedge: list[float] = []
            _run(traces, rate, fleet, "spot-hedge", od_price, None, first, tick_costs=hedge)
            reference[first] = hedge
        # On-demand covers the base forecast; spot also the headroom (the plus, and the margin's part).
        headroom: float | npt.NDArray[np.float64]
        if c.margin == 1.0:
            base_series, headroom = series - c.plus, c.plus
        else:
            base_series, headroom = _split(rate, c, _lead(fleet, traces))
        costs: list[float] = []
        bound = 1.0 + fleet.max_extra_cost
        ref_folds = folds(reference[first])
        edges = np.linspace(0, len(reference[first]), BACKTEST_FOLDS + 1).round().astype(int).tolist()
        caps = [(b, bound * ref) for b, ref in zip(edges[1:], ref_folds, strict=True)]
        try:
            cost, violations, *_ = _run(traces, rate, fleet, "predictive", od_price, base_series, first,
                                        headroom, tick_costs=costs, caps=caps, hold=c.hold)
        except _OverBudget:
            return None
        if any(mine > cap for mine, (_, cap) in zip(folds(costs), caps, strict=True)):
            return None
        base = sum(reference[first])
        return violations + (cost / base if base > 0 else 0.0) / (2.0 + fleet.max_extra_cost)

    return score


def probation_caps(counts: npt.NDArray[np.int64], steps: int) -> npt.NDArray[np.int64]:
    """Per zone and step, the fewest VMs the zone held over the last ``steps`` steps (the step
    itself included; the first steps see what there is): the spot VMs that have stayed put that
    long. ``steps`` <= 1: ``counts`` itself (a copy)."""
    out = counts.copy()
    for z in range(counts.shape[0]):
        out[z] = -trailing_max(-counts[z], steps)
    return out


def _choose_probation(
    traces: TraceSet, rate: npt.NDArray[np.float64], fleet: FleetSpec, od_price: float,
    best: Candidate | None, first: int,
) -> float:
    """The probation (``fleet.probations``, minutes) with which ``best`` (None: reactive
    spot-hedge) has the fewest SLO-violation steps on the history from step ``first`` (cost, then
    the shorter probation, breaks ties), among those costing at most ``1 + max_extra_cost`` times
    spot-hedge's cost in each of the ``BACKTEST_FOLDS`` parts, as the forecaster backtest does; 0
    when none is."""
    reference: list[float] = []
    _run(traces, rate, fleet, "spot-hedge", od_price, None, first, tick_costs=reference)
    edges = np.linspace(0, len(reference), BACKTEST_FOLDS + 1).round().astype(int).tolist()
    bound = 1.0 + fleet.max_extra_cost
    caps = [(b, bound * sum(reference[a:b])) for a, b in itertools.pairwise(edges)]
    lead = _lead(fleet, traces)
    policy, hold = "spot-hedge", False
    series: npt.NDArray[np.float64] | None = None
    headroom: float | npt.NDArray[np.float64] = 0.0
    if best is not None:
        policy, hold = "predictive", best.hold
        series, headroom = _split(rate, best, lead)
    scored: list[tuple[int, float, float]] = []
    for minutes in fleet.probations:
        steps = _ticks(minutes, traces.gap_seconds)
        trusted = probation_caps(traces.counts, steps) if steps > 1 else None
        try:
            cost, violations, *_ = _run(traces, rate, fleet, policy, od_price, series, first, headroom,
                                        caps=caps, hold=hold, trusted=trusted)
        except _OverBudget:
            continue
        scored.append((violations, cost, minutes))
    return min(scored)[2] if scored else 0.0


def _forecaster_label(chosen: Choice | None, replica_rps: float, probation: float) -> str | None:
    """The result's ``forecaster``: the chosen candidate's label (None: reactive), with the
    probation when there is one (``reactive probation 20 min`` without a forecaster)."""
    name = _label(chosen.best, replica_rps) if chosen is not None else None
    if probation > 0:
        return f"{name or 'reactive'} probation {probation:g} min"
    return name


def _lead(fleet: FleetSpec, traces: TraceSet) -> int:
    return _ticks(fleet.startup_minutes, traces.gap_seconds)


def _split(rate: npt.NDArray[np.float64], c: Candidate,
           lead: int) -> tuple[npt.NDArray[np.float64], float | npt.NDArray[np.float64]]:
    """``c``'s forecast as (base forecast, spot-only headroom): the headroom is ``c.plus`` plus,
    for a margin above 1, the part of the forecast the margin adds."""
    base = forecast_series(rate, dataclasses.replace(c, margin=1.0, plus=0.0), lead)
    if c.margin == 1.0:
        return base, c.plus
    return base, (c.margin - 1.0) * np.maximum(base, 0.0) + c.plus


def _label(c: Candidate, replica_rps: float) -> str:
    """``c``'s name with its headroom in replicas (``+2 spot``) instead of requests per second."""
    name = dataclasses.replace(c, plus=0.0, hold=False).name
    k = round(c.plus / replica_rps)
    name = f"{name} +{k} spot" if k else name
    return f"{name} hold" if c.hold else name


def _ticks(minutes: float, tick_seconds: float) -> int:
    return math.ceil(minutes * 60.0 / tick_seconds - 1e-9)


class _OverBudget(Exception):
    """A backtest run stopped: a part of it already costs more than its cap."""


class _Group:
    """Replicas in one place: ``ready`` ones and batches ``[ready_at, n]`` still starting."""

    __slots__ = ("pending", "ready", "total")

    def __init__(self) -> None:
        self.ready = 0
        self.total = 0  # ready + starting (kept, not summed: the simulator reads it every step)
        self.pending: list[list[int]] = []

    def advance(self, t: int) -> None:
        while self.pending and self.pending[0][0] <= t:
            self.ready += self.pending.pop(0)[1]

    def grow(self, n: int, ready_at: int) -> None:
        if n > 0:
            self.pending.append([ready_at, n])
            self.total += n

    def shrink(self, n: int) -> int:
        """Release up to ``n`` replicas, newest first; returns how many were released."""
        if n <= 0:
            return 0
        left = n
        while left > 0 and self.pending:
            take = min(left, self.pending[-1][1])
            self.pending[-1][1] -= take
            left -= take
            if self.pending[-1][1] == 0:
                self.pending.pop()
        take = min(left, self.ready)
        self.ready -= take
        left -= take
        self.total -= n - left
        return n - left


def _run(
    traces: TraceSet,
    rate: npt.NDArray[np.float64],
    fleet: FleetSpec,
    policy: str,
    od_price: float,
    forecast: npt.NDArray[np.float64] | None,
    start: int,
    headroom: float | npt.NDArray[np.float64] = 0.0,
    *,
    tick_costs: list[float] | None = None,
    caps: Sequence[tuple[int, float]] = (),
    hold: bool = False,
    trusted: npt.NDArray[np.int64] | None = None,
) -> tuple[float, int, float, int, int]:
    """Simulate every tick; figures (cost, violations, unserved, preemptions, replica-ticks) are
    summed over ticks ``>= start``. ``forecast[t]``: the rate predicted at ``t`` for ``t + startup``
    (``predictive`` only; ``None`` makes it ``spot-hedge``); ``headroom``: a rate added to the
    forecast for the spot replicas only (on-demand covers the forecast without it); ``tick_costs``,
    when given, gets each counted tick's cost appended. ``caps``: ``(end, cap)`` pairs, consecutive
    parts of the counted steps (``end``: exclusive, counted from ``start``) and the most each may
    cost; the run stops with :class:`_OverBudget` as soon as a part's cost, summed step by step from
    0, is above its cap (the backtest would rule the candidate out at the end anyway). ``hold``
    (with a forecast): size for the larger of the forecast and reactive scaling's need over the
    scale-down window, and keep on-demand for the latter (spot-hedge plus what the forecast adds).
    ``trusted`` (hedged policies; zones x steps): the spot VMs of each zone that on-demand fallback
    may count on at step ``t`` (a 1-node zone: all of its replicas if > 0, else none), instead of
    the zone's current count: on-demand covers what the ready (and, for the plan, the ready or
    starting) spot replicas within those caps do not. ``None``: the current counts (spot-hedge).
    Only the first ``len(rate)`` steps of ``traces`` (and ``trusted``) are read, but a zone is a
    1-node one (its replicas uncapped while it is up) only when its whole trace is at most 1."""
    tick_h = traces.gap_seconds / 3600.0
    startup = _ticks(fleet.startup_minutes, traces.gap_seconds)
    window = max(1, _ticks(fleet.downscale_minutes, traces.gap_seconds))
    counts = traces.counts
    prices = traces.spot_prices
    Z = len(traces.names)
    unlimited = [int(counts[z].max()) <= 1 for z in range(Z)]
    cheapest = int(np.argmin(prices[:, 0]))
    spot = [_Group() for _ in range(Z)]
    od = _Group()
    needs = np.maximum(fleet.min_replicas, np.ceil(rate / fleet.replica_rps - 1e-9)).astype(np.int64)
    # Scale down only after demand stayed lower for the downscale window.
    reactive = trailing_max(needs, window).tolist()
    ahead: list[int] | None = None
    spot_ahead: list[int] = []
    if forecast is not None:
        # What to have at t + startup is the forecast need, and what was ordered for a forecast
        # step still to come (forecasts of the last ``startup`` steps) is kept until that step.
        wanted = np.ceil(np.maximum(forecast, 0.0) / fleet.replica_rps - 1e-9)
        ahead = trailing_max(np.maximum(fleet.min_replicas, wanted).astype(np.int64), startup + 1).tolist()
        wanted = np.ceil(np.maximum(forecast + headroom, 0.0) / fleet.replica_rps - 1e-9)
        spot_ahead = trailing_max(np.maximum(fleet.min_replicas, wanted).astype(np.int64),
                                   startup + 1).tolist()
    hedged = policy in ("spot-hedge", "predictive")
    peak_need = peak_needs(fleet, len(rate), traces.gap_seconds)
    peak_list = peak_need.tolist() if peak_need is not None else None
    need_list = needs.tolist()
    rate_list = rate.tolist()
    count_rows = counts.T.tolist()
    trust_rows = trusted.T.tolist() if trusted is not None else None
    price_rows = prices.T.tolist()
    extra = fleet.extra_spot if hedged else 0
    rps = fleet.replica_rps
    od_step = od_price * tick_h
    order: list[int] = [cheapest]
    last_prices: list[float] | None = None
    cost = unserved = part_cost = 0.0
    part = 0
    violations = preemptions = replica_ticks = 0
    for t in range(len(rate_list)):
        counted = t >= start
        need = need_list[t]
        row = count_rows[t]
        target_need = reactive[t]
        plan_need = spot_plan = target_need
        if ahead is not None:
            # The forecast replaces the reactive sizing: a replica ordered now serves only from
            # t + startup, so sizing it for the demand now is a forecast too (``persistence``).
            plan_need = ahead[t]
            # Headroom is bought on spot alone, like spot-hedge's extra spot replicas.
            spot_plan = spot_ahead[t]
            if hold:
                plan_need, spot_plan = max(plan_need, target_need), max(spot_plan, target_need)
            else:
                target_need = min(target_need, plan_need)
        if peak_list is not None and peak_list[t] > 0:
            # A known peak opening within the start-up time: its replicas are ordered now (on spot
            # for the hedged policies; on-demand covers only what spot does not).
            floor = peak_list[t]
            plan_need, spot_plan = max(plan_need, floor), max(spot_plan, floor)
            if not hedged:
                target_need = max(target_need, floor)
        for z in range(Z):
            g = spot[z]
            if g.pending and g.pending[0][0] <= t:
                g.advance(t)
            if g.total:
                cap = (g.total if row[z] > 0 else 0) if unlimited[z] else row[z]
                if g.total > cap:
                    lost = g.shrink(g.total - cap)
                    preemptions += lost if counted else 0
        od.advance(t)
        if policy == "ondemand":
            od.shrink(od.total - target_need)
            od.grow(target_need - od.total, t + startup)
        else:
            if policy != "spot-one-zone" and price_rows[t] != last_prices:
                last_prices = price_rows[t]
                order = sorted(range(Z), key=lambda z: (last_prices[z], z))  # type: ignore[index]
            _place_spot(spot, order, spot_plan + extra, row, unlimited, t + startup)
            if startup == 0:  # replicas with no startup delay serve in the step they launch
                for g in spot:
                    g.advance(t)
            if hedged:
                if trust_rows is None:
                    ready_spot = sum(g.ready for g in spot)
                    all_spot = sum(g.total for g in spot)  # ready, or ready by t + startup
                else:
                    ready_spot = all_spot = 0
                    for z, g in enumerate(spot):
                        k = trust_rows[t][z]
                        cap = (g.total if k > 0 else 0) if unlimited[z] else k
                        ready_spot += min(g.ready, cap)
                        all_spot += min(g.total, cap)
                want = max(0, target_need - ready_spot, plan_need - all_spot)
                od.shrink(od.total - want)
                od.grow(want - od.total, t + startup)
        od.advance(t)
        if not counted:
            continue
        ready = od.ready + sum(g.ready for g in spot)
        if ready < need:
            violations += 1
        unserved += max(0.0, rate_list[t] - ready * rps)
        step_cost = od.total * od_step
        prow = price_rows[t]
        for z in range(Z):
            n = spot[z].total
            if n:
                step_cost += n * prow[z] * tick_h
                replica_ticks += n
        cost += step_cost
        if tick_costs is not None:
            tick_costs.append(step_cost)
        if caps:
            while part < len(caps) and t - start >= caps[part][0]:
                part, part_cost = part + 1, 0.0
            if part < len(caps):
                part_cost += step_cost
                if part_cost > caps[part][1]:
                    raise _OverBudget
        replica_ticks += od.total
    return cost, violations, unserved, preemptions, replica_ticks


def peak_needs(fleet: FleetSpec, ticks: int, tick_seconds: float) -> npt.NDArray[np.int64] | None:
    """Per tick, the most replicas a peak of ``fleet.peaks`` asks for, open at some instant from the
    tick's time to ``startup`` later (None without peaks)."""
    if not fleet.peaks:
        return None
    lead = fleet.startup_minutes * 60.0
    out = np.zeros(ticks, dtype=np.int64)
    for t in range(ticks):
        at = fleet.trace_start + t * tick_seconds
        out[t] = max((p.replicas for p in fleet.peaks if open_within(p.window, at, at + lead)), default=0)
    return out


def _place_spot(
    groups: list[_Group],
    order: Sequence[int],
    target: int,
    counts: Sequence[int],
    unlimited: Sequence[bool],
    ready_at: int,
) -> None:
    total = sum(g.total for g in groups)
    if total == target:
        return
    for z in reversed(order):  # too many: release from the dearest zones first, newest first
        if total <= target:
            break
        total -= groups[z].shrink(total - target)
    while total < target:  # too few: water-fill the least-loaded zones that have room
        room = [z for z in order if counts[z] > 0 and (unlimited[z] or groups[z].total < counts[z])]
        if not room:
            return
        z = min(room, key=lambda k: (groups[k].total, order.index(k)))
        low = groups[z].total
        tied = sum(1 for k in room if groups[k].total == low)
        higher = [groups[k].total for k in room if groups[k].total > low]
        # Zones tied at the lowest level share what is left evenly; a lone lowest zone fills up to
        # the next level. (Filling one of several tied zones up to the target would put the whole
        # fleet in the cheapest zone, which one preemption then takes out at once.)
        step = max(1, (target - total) // tied)
        if higher:
            step = min(step, min(higher) - low)
        if not unlimited[z]:
            step = min(step, int(counts[z]) - groups[z].total)
        step = max(1, min(step, target - total))
        groups[z].grow(step, ready_at)
        total += step
