"""The zones' trailing availability history a policy may see at a tick (:class:`SpotHistory`).

Contract: :meth:`HistoryIndex.at` for tick ``t`` reads ticks ``lo .. t`` only, ``lo = max(0, t + 1 -
window)``: nothing after ``t`` (no lookahead) and nothing before the window. Conventions, those of
``policy.deadline._track_ages`` (a zone first seen up at tick ``a`` is born at ``a``; seen down at
``e`` after that, its lifetime is ``e - a`` ticks; up now at ``t``, its open run is ``t - a``):

* an up-run ``[a, e)`` (``a`` its first up tick, ``e`` the first down tick after it) whose start
  is seen — ``a - 1 >= lo``, the down tick before it in the window — and whose end is seen —
  ``e <= t`` — is a lifetime of ``e - a`` ticks;
* one begun before the window (``a <= lo``) is counted from ``lo``; one still up at ``t`` is counted
  to ``t``; either is *censored* at that observed length (``min(e, t) - max(a, lo)`` ticks), and
  one up at ``t`` is ``born`` at ``a`` (``-inf`` when begun before the window);
* up-runs are kept per zone; the spells with no zone up ("outages") likewise, over the zones
  together.

Lengths are ticks times the tick's hours; ``born`` / ``outage_since`` are elapsed hours of the job
(``(a - origin) * tick_hours``, negative before its start). A run that the window's first tick cuts
is censored, not a failure: its age at its end is unknown.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ray_multicloud.policy.deadline import SpotHistory


def runs(up: Sequence[bool]) -> list[tuple[int, int]]:
    """The maximal up-runs of ``up`` as ``(a, e)``: ticks ``a .. e - 1`` up, ``e`` down or the end.
    Example: ``[0, 1, 1, 0, 1]`` -> ``[(1, 3), (4, 5)]``."""
    out: list[tuple[int, int]] = []
    a = -1
    for i, x in enumerate(up):
        if x and a < 0:
            a = i
        elif not x and a >= 0:
            out.append((a, i))
            a = -1
    if a >= 0:
        out.append((a, len(up)))
    return out


class _Runs:
    """One series' runs, searchable by tick."""

    def __init__(self, up: Sequence[bool]) -> None:
        self.runs = runs(up)
        self.starts = [a for a, _ in self.runs]
        self.ends = [e for _, e in self.runs]

    def within(self, lo: int, t: int) -> list[tuple[int, int]]:
        """The runs with a tick in ``lo .. t``: ``a <= t`` and ``e > lo``."""
        i = bisect_right(self.ends, lo)
        j = bisect_right(self.starts, t)
        return self.runs[i:j]

    def up_at(self, t: int) -> tuple[int, int] | None:
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and self.ends[i] > t:
            return self.runs[i]
        return None


def _split(rs: Sequence[tuple[int, int]], lo: int, t: int) -> tuple[list[int], list[int]]:
    """(lifetimes, censored) in ticks of the runs ``rs`` seen in ``lo .. t`` (module docstring)."""
    done: list[int] = []
    cut: list[int] = []
    for a, e in rs:
        if a > lo and e <= t:
            done.append(e - a)
        else:
            cut.append(min(e, t) - max(a, lo))
    return done, cut


class HistoryIndex:
    """The runs of every zone's availability (``avail[z][t]``) and of "no zone up", indexed once, so
    that the history at each tick costs only the runs in its window."""

    def __init__(
        self, avail: Sequence[Sequence[bool]] | npt.NDArray[np.bool_], tick_hours: float, window_hours: float
    ) -> None:
        if not (math.isfinite(window_hours) and window_hours > 0):
            raise ValueError(f"history window hours must be > 0, got {window_hours}")
        if not tick_hours > 0:
            raise ValueError(f"tick hours must be > 0, got {tick_hours}")
        self.tick_hours = tick_hours
        self.window = max(1, round(window_hours / tick_hours))
        rows: list[list[bool]] = np.asarray(avail, dtype=bool).tolist()
        self.zones = [_Runs(row) for row in rows]
        self.none_up = _Runs([not any(col) for col in zip(*rows, strict=True)])

    def at(self, t: int, origin: int = 0) -> SpotHistory:
        """The history a policy may see at tick ``t`` of a job that started at tick ``origin``."""
        th = self.tick_hours
        lo = max(0, t + 1 - self.window)
        lifetimes: list[tuple[float, ...]] = []
        censored: list[tuple[float, ...]] = []
        born: list[float] = []
        for z in self.zones:
            done, cut = _split(z.within(lo, t), lo, t)
            lifetimes.append(tuple(x * th for x in done))
            censored.append(tuple(x * th for x in cut))
            run = z.up_at(t)
            born.append(math.inf if run is None else (-math.inf if run[0] <= lo else (run[0] - origin) * th))
        outs, outs_cut = _split(self.none_up.within(lo, t), lo, t)
        spell = self.none_up.up_at(t)
        since = math.inf if spell is None else (-math.inf if spell[0] <= lo else (spell[0] - origin) * th)
        return SpotHistory(
            window_hours=self.window * th,
            lifetimes=tuple(lifetimes),
            lifetimes_censored=tuple(censored),
            outages=tuple(x * th for x in outs),
            outages_censored=tuple(x * th for x in outs_cut),
            born=tuple(born),
            outage_since=since,
        )

