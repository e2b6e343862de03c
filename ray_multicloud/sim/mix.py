"""Combine trace sets of different clouds, ticks and lengths into one aligned :class:`TraceSet`.

The public traces were recorded at different times, ticks and lengths (SkyPilot's
``aws-02-15-2023``: 195 s, 45 days; ``gcp-04-30-2023``: 30 s, 1.9 days), so a cross-cloud scenario
is *synthesised* from them, never "aligned in time". The method, stated in every combined set's
``notes``:

* :func:`resample` puts a set on a common tick: a new tick ``[i G, (i + 1) G)`` holds ``min`` of
  the counts of every source tick overlapping it (spot is available in the new tick only if it was
  throughout; conservative: a preemption anywhere inside the tick counts) and the mean of their
  prices.
* :func:`tile` repeats a set end to end up to a length (a short trace stands for a longer period
  with the same behaviour; each seam is a point where the trace jumps back to its start).
* :func:`relabel` gives a set's zones other names, regions, clouds or prices (e.g. a trace used as
  a stand-in for a cloud that published none); its note says so.
* :func:`combine` stacks sets on one tick, cut to the shortest; the zones' names must differ.

Every step raises :class:`~ray_multicloud.sim.traces.TraceError` naming the set and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ray_multicloud.sim.traces import TraceError, TraceSet


def _label(ts: TraceSet) -> str:
    return ", ".join(ts.names[:3]) + (", ..." if len(ts.names) > 3 else "")


def resample(ts: TraceSet, gap_seconds: float) -> TraceSet:
    """``ts`` on ticks of ``gap_seconds`` (module docstring: min of counts, mean of prices)."""
    if not (math.isfinite(gap_seconds) and gap_seconds > 0):
        raise TraceError(f"tick must be a positive number of seconds, got {gap_seconds}")
    g = ts.gap_seconds
    n = math.floor(ts.ticks * g / gap_seconds + 1e-9)
    if n < 1:
        raise TraceError(
            f"trace set ({_label(ts)}) spans {ts.ticks * g:g} s, less than one {gap_seconds:g} s tick: "
            "choose a shorter common tick"
        )
    if gap_seconds == g:
        return ts
    i = np.arange(n)
    lo = np.floor(i * gap_seconds / g + 1e-9).astype(np.int64)
    hi = np.minimum(ts.ticks, np.ceil((i + 1) * gap_seconds / g - 1e-9).astype(np.int64))
    counts = np.empty((len(ts.names), n), dtype=np.int64)
    prices = np.empty((len(ts.names), n), dtype=np.float64)
    for k in range(n):
        counts[:, k] = ts.counts[:, lo[k] : hi[k]].min(axis=1)
        prices[:, k] = ts.spot_prices[:, lo[k] : hi[k]].mean(axis=1)
    note = (f"{_label(ts)}: resampled from {g:g} s to {gap_seconds:g} s ticks (a tick is available only if "
            "every source tick inside it was; prices averaged)")
    return replace(ts, gap_seconds=float(gap_seconds), counts=counts, spot_prices=prices,
                   notes=(*ts.notes, note))


def tile(ts: TraceSet, ticks: int) -> TraceSet:
    """``ts`` repeated end to end and cut to ``ticks`` ticks (unchanged when already that long)."""
    if ticks < 1:
        raise TraceError(f"tile length must be >= 1 tick, got {ticks}")
    if ts.ticks >= ticks:
        return replace(ts, counts=ts.counts[:, :ticks], spot_prices=ts.spot_prices[:, :ticks])
    reps = -(-ticks // ts.ticks)
    note = (f"{_label(ts)}: its {ts.hours:.1f} h trace repeated {reps} times end to end to cover "
            f"{ticks * ts.gap_seconds / 3600:.0f} h (synthetic beyond the first {ts.hours:.1f} h)")
    return replace(
        ts,
        counts=np.tile(ts.counts, (1, reps))[:, :ticks],
        spot_prices=np.tile(ts.spot_prices, (1, reps))[:, :ticks],
        notes=(*ts.notes, note),
    )


def relabel(
    ts: TraceSet,
    *,
    names: Sequence[str],
    regions: Sequence[str],
    clouds: Sequence[str],
    prices: Sequence[float] | None = None,
    why: str,
) -> TraceSet:
    """``ts``'s availability under other zone names, regions, clouds and (constant) prices; ``why``
    is recorded in the notes (what the stand-in is and why)."""
    z = len(ts.names)
    for key, seq in (("names", names), ("regions", regions), ("clouds", clouds)):
        if len(seq) != z:
            raise TraceError(f"relabel {_label(ts)}: {len(seq)} {key} for {z} zones")
    spot = ts.spot_prices
    if prices is not None:
        if len(prices) != z or not all(math.isfinite(p) and p > 0 for p in prices):
            raise TraceError(f"relabel {_label(ts)}: prices must be {z} positive USD/h, got {list(prices)}")
        spot = np.repeat(np.asarray(prices, dtype=np.float64)[:, None], ts.ticks, axis=1)
    note = f"{', '.join(names)}: availability of {', '.join(ts.names)} ({why})"
    return replace(ts, names=tuple(names), regions=tuple(regions), clouds=tuple(clouds), spot_prices=spot,
                   priced_by_file=tuple(prices is None for _ in names), notes=(*ts.notes, note))


def combine(sets: Sequence[TraceSet], gap_seconds: float) -> TraceSet:
    """The sets resampled to ``gap_seconds`` and stacked, cut to the shortest (noted)."""
    if not sets:
        raise TraceError("no trace set to combine")
    parts = [resample(ts, gap_seconds) for ts in sets]
    names = [n for p in parts for n in p.names]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TraceError(f"zones named twice across the combined sets: {', '.join(dup)}; relabel one")
    unknown = [n for p in parts for z, n in enumerate(p.names) if not p.cloud_of(z)]
    if unknown:
        raise TraceError(f"zones of unknown cloud in a cross-cloud set: {', '.join(unknown)}; relabel them")
    n = min(p.ticks for p in parts)
    notes = [note for p in parts for note in p.notes]
    if len({p.ticks for p in parts}) > 1:
        notes.append(f"combined sets cut to the shortest: {n} ticks of {gap_seconds:g} s "
                     f"({n * gap_seconds / 3600:.0f} h)")
    return TraceSet(
        names=tuple(names),
        regions=tuple(r for p in parts for r in p.regions),
        files=tuple(f for p in parts for f in p.files),
        gap_seconds=float(gap_seconds),
        counts=np.vstack([p.counts[:, :n] for p in parts]),
        spot_prices=np.vstack([p.spot_prices[:, :n] for p in parts]),
        priced_by_file=tuple(b for p in parts for b in p.priced_by_file),
        notes=tuple(notes),
        clouds=tuple(p.cloud_of(z) for p in parts for z in range(len(p.names))),
    )
