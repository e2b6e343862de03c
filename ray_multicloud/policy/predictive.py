"""Predictive serving capacity, live: how many replicas (and nodes) to have ready ``lead`` from now.

A serving pool's new node is useful only once it has started and its replica has loaded the model
(the *lead*). So each tick the controller asks this module, with the deployment's own request-rate
history (one mean rate per tick of ``tick_s``, oldest first, the newest being the tick that just
ended), how much capacity to ask for now:

1. **Forecast.** When the history is long enough (``forecast.too_short`` is false for a lead of
   ``ceil(lead_s / tick_s)`` ticks), the forecaster is the one ``forecast.choose`` picks by its
   backtest on this history (pinball loss at ``quantile``; seasonal baselines over the hour, the
   day and the week where the history holds them, persistence and recent maxima), unless the
   caller passes the one it chose before (``candidate``: the controller re-chooses every
   ``refit_s``, not every tick). Its forecast for ``lead`` ticks ahead, made now, is
   ``predicted_rate``.
2. **Too short a history**: no forecast; the plan is *reactive* (the need of the rate now) and its
   ``reason`` says why, in one line (the caller logs it once).
3. **Need.** ``replicas = ceil(max(rate_now, predicted_rate) / replica_rps)``: capacity for what is
   coming, and never less than what is served now (a floor the SLO autoscaler scales above, not a
   target it must shrink to).
4. **Known peaks.** A peak window (``Peak``: a weekly window, a one-off interval or an iCalendar
   file's events, as ``policy.calendar`` / ``policy.rebalance`` define them) that is open at any
   instant from now to now + lead (``open_within``) asks for its ``replicas`` at least: a peak is
   provisioned ``lead`` before it opens, and held while it is open.
5. ``replicas`` is kept within ``[min_replicas, max_replicas]``; ``nodes = ceil(replicas /
   replicas_per_node)`` (the bundles of the pool's node shape to ask the autoscaler for).

Contract: pure (no clock, no I/O, no logging): the same arguments give the same plan.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ray_multicloud.policy.forecast import (
    MIN_SCORED_TICKS,
    Candidate,
    choose,
    forecast_series,
    too_short,
)


class Opens(Protocol):
    """A window: ``contains(now)`` for a POSIX time (``policy.rebalance.Blackout`` members)."""

    def contains(self, now: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class Peak:
    """A known peak: while ``window`` is open the pool keeps at least ``replicas`` replicas."""

    window: Opens
    replicas: int
    label: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 1:
            raise ValueError(f"a peak needs a whole number of replicas >= 1, got {self.replicas!r}")


@dataclass(frozen=True, slots=True)
class PredictiveSpec:
    """A pool's predictive settings (``cluster_config.predictive`` reads them from the YAML).

    ``replica_rps``: requests per second one replica serves within the SLO; ``lead_s``: node start
    plus replica ready; ``tick_s``: one history sample; ``quantile``: of the backtest's pinball loss.
    """

    replica_rps: float
    lead_s: float = 300.0
    tick_s: float = 30.0
    replicas_per_node: int = 1
    min_replicas: int = 0
    max_replicas: int | None = None
    quantile: float = 0.9

    def __post_init__(self) -> None:
        for name in ("replica_rps", "lead_s", "tick_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if self.replicas_per_node < 1:
            raise ValueError(f"replicas_per_node must be >= 1, got {self.replicas_per_node}")
        if self.min_replicas < 0:
            raise ValueError(f"min_replicas must be >= 0, got {self.min_replicas}")
        if self.max_replicas is not None and self.max_replicas < max(1, self.min_replicas):
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= 1 and >= min_replicas "
                             f"({self.min_replicas})")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")

    @property
    def lead_ticks(self) -> int:
        """The lead in whole ticks, rounded up (capacity ordered a little early, never late)."""
        return max(1, math.ceil(self.lead_s / self.tick_s - 1e-9))


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """What to have ready at now + lead. ``mode``: "predictive" or "reactive" (no forecast)."""

    mode: str
    replicas: int
    nodes: int
    rate_now: float
    predicted_rate: float | None
    forecaster: Candidate | None
    peak_replicas: int
    reason: str


MIN_STARTS = 3
"""The fewest node starts measured before a measured lead replaces the configured one."""


def lead_from_starts(starts: Sequence[float], replica_ready_s: float) -> float | None:
    """The lead measured on this cluster: the median of the pool's node starts (launch to Ray node
    alive, seconds) plus ``replica_ready_s`` (replica start and model load, configured); None with
    fewer than ``MIN_STARTS`` starts."""
    if len(starts) < MIN_STARTS:
        return None
    ordered = sorted(float(s) for s in starts)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
    return median + replica_ready_s


def replicas_for(rate: float, replica_rps: float) -> int:
    """Replicas that serve ``rate`` requests/s at ``replica_rps`` each (0 for no demand)."""
    return max(0, math.ceil(max(0.0, rate) / replica_rps - 1e-9))


SAMPLE_S = 60.0
"""Weekly and daily windows are minute-resolution: sampling the lead window every minute sees them."""


def open_within(window: Opens, start: float, end: float) -> bool:
    """Whether ``window`` is open at some instant of ``[start, end]``: exactly for intervals (a
    ``Window``'s ``start``/``end``, a ``CalendarWindows``' ``starts``/``ends``), else by sampling
    every ``SAMPLE_S`` and at both ends."""
    a, b = getattr(window, "start", None), getattr(window, "end", None)
    if isinstance(a, float | int) and isinstance(b, float | int):
        return a <= end and start < b
    starts, ends = getattr(window, "starts", None), getattr(window, "ends", None)
    if isinstance(starts, tuple) and isinstance(ends, tuple):
        i = bisect_right(starts, end) - 1  # the last interval starting at or before ``end``
        return i >= 0 and start < float(ends[i])
    steps = max(1, math.ceil((end - start) / SAMPLE_S))
    return any(window.contains(start + (end - start) * k / steps) for k in range(steps + 1))


def peak_floor(peaks: Sequence[Peak], now: float, spec: PredictiveSpec) -> tuple[int, str]:
    """The most replicas a peak open at any instant of ``[now, now + lead]`` asks for, and its label
    ("" when none is open; of equal peaks, the first listed)."""
    best, label = 0, ""
    for peak in peaks:
        if peak.replicas > best and open_within(peak.window, now, now + spec.lead_s):
            best, label = peak.replicas, peak.label or str(peak.window)
    return best, label


def plan_capacity(
    history: Sequence[float],
    spec: PredictiveSpec,
    *,
    now: float,
    peaks: Sequence[Peak] = (),
    candidate: Candidate | None = None,
) -> CapacityPlan:
    """The capacity to ask for now (module docstring). ``history``: mean request rates per tick,
    oldest first (NaN, infinite or negative values count as 0: a broken meter is no demand);
    ``candidate``: a forecaster chosen before
    (None: choose one now by backtest)."""
    rate = np.nan_to_num(np.asarray(history, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    rate = np.maximum(rate, 0.0)
    lead = spec.lead_ticks
    rate_now = float(rate[-1]) if len(rate) else 0.0
    predicted: float | None = None
    chosen: Candidate | None = None
    if too_short(len(rate), lead):
        mode = "reactive"
        why = (f"demand history of {len(rate)} ticks ({len(rate) * spec.tick_s / 60:.1f} min) is too short "
               f"to forecast {lead} ticks ({round(spec.lead_s, 1):g} s) ahead: it needs "
               f"{lead + MIN_SCORED_TICKS} "
               f"(the lead plus {MIN_SCORED_TICKS} to backtest on); scaling reactively on the rate now "
               f"({rate_now:.3g}/s)")
    else:
        chosen = candidate
        if chosen is None:
            choice = choose(rate, spec.tick_s, lead, quantile=spec.quantile)
            chosen = choice.best if choice is not None else None
        if chosen is None:  # every candidate needs more history than there is
            mode = "reactive"
            why = (f"no forecaster can be backtested on {len(rate)} ticks for a lead of {lead}: "
                   f"scaling reactively on the rate now ({rate_now:.3g}/s)")
        else:
            mode = "predictive"
            predicted = float(forecast_series(rate, chosen, lead)[-1])
            why = (f"{chosen.name} forecasts {predicted:.3g}/s in {round(spec.lead_s, 1):g} s (rate now "
                   f"{rate_now:.3g}/s)")
    need = replicas_for(max(rate_now, predicted or 0.0), spec.replica_rps)
    peak, label = peak_floor(peaks, now, spec)
    replicas = max(spec.min_replicas, need, peak)
    if spec.max_replicas is not None:
        replicas = min(replicas, spec.max_replicas)
    nodes = math.ceil(replicas / spec.replicas_per_node)
    parts = [why, f"{need} replica(s) at {spec.replica_rps:g}/s each"]
    if peak:
        parts.append(f"peak {label} asks {peak}")
    if spec.max_replicas is not None and replicas == spec.max_replicas and max(need, peak) > replicas:
        parts.append(f"capped at max_replicas {spec.max_replicas}")
    parts.append(f"-> {replicas} replica(s) on {nodes} node(s)")
    return CapacityPlan(mode, replicas, nodes, rate_now, predicted, chosen, peak, "; ".join(parts))


def bucket(samples: Sequence[tuple[float, float]], *, tick_s: float, now: float,
           keep_s: float) -> list[float]:
    """``(time, rate)`` samples -> mean rate per tick of ``tick_s``, for the complete ticks of the
    last ``keep_s`` before ``now`` (oldest first; the tick still running is left out). A tick with
    no sample takes the previous tick's rate (the meter reported nothing: no change seen), 0 before
    the first sample. Samples outside the window are ignored."""
    if not (tick_s > 0 and keep_s > 0):
        raise ValueError(f"tick_s and keep_s must be > 0, got {tick_s}, {keep_s}")
    end = math.floor(now / tick_s)  # the running tick's index; ticks [first, end) are complete
    first = end - math.floor(keep_s / tick_s)
    if not samples:
        return []
    data = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    index = np.floor(data[:, 0] / tick_s)
    keep = (index >= first) & (index < end) & np.isfinite(data[:, 1])
    if not keep.any():
        return []
    index = (index[keep] - first).astype(np.int64)
    values = np.maximum(data[keep, 1], 0.0)
    span = end - first
    sums = np.bincount(index, weights=values, minlength=span)
    counts = np.bincount(index, minlength=span)
    start = int(index.min())  # history starts at the first tick that has a sample
    out: list[float] = []
    last = 0.0
    for i in range(start, span):
        if counts[i]:
            last = float(sums[i] / counts[i])
        out.append(last)
    return out
