"""Replay recorded spot-price series onto the local cloud's price board, faster than real time.

The local cloud has no price API: its prices move when the ``PriceBoard`` is written. A
``Replayer`` maps offers to price traces and, at wall time ``t`` after its start, writes each
offer's trace price at trace time ``t * speedup`` (the sample at or before it). The provider's
``OfferBook`` picks the board up on its next read, so the autoscaler and the controller see the
price move as they would see a live feed's.

Traces (``load_trace``):

* a SkyPilot spot-trace JSON (``{"metadata": {"gap_seconds": N}, "prices": [...]}``, e.g.
  ``preemption/skypilot-spot-traces/preemption/1-node/aws-04-19-2023/us-east-1b_intel_64.json``);
* an AWS spot price history TSV (``az_id, instance_type, product_description, price, timestamp``;
  ``select`` picks ``az_id/instance_type``), e.g. ``spot_prices/aws_spot_price_history_ericpauley``.

``base_prices`` rescales a trace to the offer it drives: the offer's price is
``base * trace[t] / trace[0]`` (a trace of another machine type moves a T4's price by the same
ratios); without a base the trace's own dollars are used.
"""

from __future__ import annotations

import bisect
import csv
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ray_multicloud.pricing.board import PriceBoard


@dataclass(frozen=True, slots=True)
class PriceTrace:
    """Prices (USD/h) at trace times (seconds from the trace's start, ascending)."""

    times: tuple[float, ...]
    prices: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.prices or len(self.times) != len(self.prices):
            raise ValueError(f"trace {self.source or '?'} has no prices or mismatched times")
        if any(b < a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError(f"trace {self.source or '?'} times are not ascending")

    @property
    def duration_s(self) -> float:
        return self.times[-1]

    def at(self, t: float) -> float:
        """The price in force at trace time ``t`` (the first price before the trace starts)."""
        i = bisect.bisect_right(self.times, t) - 1
        return self.prices[max(0, i)]


def load_trace(path: str | Path, *, select: str | None = None) -> PriceTrace:
    """Load a SkyPilot JSON trace or an AWS spot-price TSV (see the module docstring)."""
    p = Path(path)
    if p.suffix == ".json":
        raw = json.loads(p.read_text())
        prices = raw.get("prices")
        if not prices:
            raise ValueError(f"{p} has no 'prices' array (availability-only trace)")
        gap = float(raw.get("metadata", {}).get("gap_seconds", 60))
        return PriceTrace(tuple(i * gap for i in range(len(prices))), tuple(float(x) for x in prices), str(p))
    rows: list[tuple[float, float]] = []
    with open(p, newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 5 or row[0] == "az_id":
                continue
            if select is not None and f"{row[0]}/{row[1]}" != select:
                continue
            ts = datetime.fromisoformat(row[4]).timestamp()
            rows.append((ts, float(row[3])))
    if not rows:
        raise ValueError(f"{p}: no rows{' for ' + select if select else ''}")
    rows.sort()
    t0 = rows[0][0]
    return PriceTrace(tuple(t - t0 for t, _ in rows), tuple(pr for _, pr in rows), f"{p}:{select or '*'}")


class Replayer:
    """Writes the traces' prices onto ``PriceBoard(state_dir)`` at ``speedup`` trace seconds per second."""

    def __init__(
        self,
        state_dir: str | Path,
        traces: Mapping[str, PriceTrace],
        *,
        speedup: float = 60.0,
        base_prices: Mapping[str, float | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.board = PriceBoard(state_dir)
        self.traces = dict(traces)
        self.speedup = speedup
        self.base = {k: v for k, v in (base_prices or {}).items() if v}
        self.clock = clock
        self.started_at: float | None = None
        self._last: dict[str, float] = {}

    def prices_at(self, trace_t: float) -> dict[str, float]:
        """Each offer's price at trace time ``trace_t`` (rescaled to its base price when given)."""
        out = {}
        for offer_id, trace in self.traces.items():
            price = trace.at(trace_t)
            base = self.base.get(offer_id)
            out[offer_id] = base * price / trace.prices[0] if base else price
        return out

    def step(self) -> dict[str, float]:
        """Write the prices due now (only those that changed). Returns what was written."""
        now = self.clock()
        if self.started_at is None:
            self.started_at = now
        due = self.prices_at((now - self.started_at) * self.speedup)
        changed = {k: v for k, v in due.items() if self._last.get(k) != v}
        if changed:
            self.board.set_many(changed, now=now)
            self._last.update(changed)
        return changed

    def done(self) -> bool:
        if self.started_at is None:
            return False
        elapsed = (self.clock() - self.started_at) * self.speedup
        return all(elapsed >= t.duration_s for t in self.traces.values())

    def run(self, *, stop: threading.Event | None = None, interval_s: float = 1.0) -> None:
        """Step every ``interval_s`` until every trace has ended or ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.step()
            if self.done():
                return
            stop.wait(interval_s)
