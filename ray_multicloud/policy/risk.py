"""The availability model shared by launch placement (``policy.place``) and the deadline policy
(``policy.deadline.MultiCloud``): a zone's interruption rate, estimated from its own history, and
what an hour of *useful* work costs there once interruptions are paid for.

Pure: no I/O, no clock.

* :func:`interruptions_per_hour`: over the trailing ``window_hours`` of a zone's availability
  history (one bool per tick, oldest first, ending now), the number of interruptions (a tick
  available followed by one unavailable) per available hour. A zone not available in any tick of
  the window gets one interruption per tick of it (the rate of a zone that cannot be held). The same
  estimate, vectorised over every tick of a trace, is ``ray_multicloud.sim.engine.interruption_rates``
  (the simulator's ``rate_window_hours``); a test holds the two equal.
* :func:`useful_hour_cost`: ``price * (1 + rate * (restart + checkpoint / 2))``. Each interruption
  costs, on average, a restart and half a checkpoint interval of work redone, both paid at the
  zone's price; per hour held that is ``rate * (restart + checkpoint / 2)`` hours of paid time that
  buys no progress (first order in ``rate``: the figure is exact while interruptions are rare
  against an hour). A job that saves on notice loses no work: pass ``checkpoint_hours`` 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def interruptions_per_hour(available: Sequence[bool], tick_hours: float, window_hours: float = 24.0) -> float:
    """Interruptions per available hour over the last ``window_hours`` of ``available`` (module
    docstring). Raises ``ValueError`` on an empty history or a non-positive tick."""
    if not available:
        raise ValueError("availability history is empty: give at least one tick")
    if not (math.isfinite(tick_hours) and tick_hours > 0):
        raise ValueError(f"tick hours must be > 0, got {tick_hours}")
    win = max(1, round(window_hours / tick_hours))
    n = len(available)
    lo = max(0, n - win)
    events = sum(1 for t in range(max(1, lo), n) if available[t - 1] and not available[t])
    up_hours = sum(1 for t in range(lo, n) if available[t]) * tick_hours
    if up_hours < tick_hours:
        events = max(events, 1)
    return events / max(up_hours, tick_hours)


def useful_hour_cost(
    price_per_hour: float,
    interruptions: float | None,
    restart_hours: float,
    checkpoint_hours: float,
    weight: float = 1.0,
) -> float:
    """What an hour of useful work costs on an offer at ``price_per_hour`` that is interrupted
    ``interruptions`` times per hour (None: unknown, counted as 0), each interruption costing a
    restart plus half a checkpoint interval (module docstring); ``weight`` scales the risk term."""
    if interruptions is None or interruptions <= 0 or weight <= 0:
        return price_per_hour
    return price_per_hour * (1.0 + weight * interruptions * (restart_hours + checkpoint_hours / 2.0))


def observed_interruption_rates(
    lives: Iterable[tuple[str, float, float | None, bool]],
    *,
    now: float,
    window_hours: float = 168.0,
    min_hours: float = 1.0 / 60.0,
) -> dict[str, float]:
    """Interruptions per hour held, by location, from a cluster's own spot nodes (the live
    counterpart of :func:`interruptions_per_hour`, which reads a zone's availability trace).

    ``lives``: one ``(location, started, ended, preempted)`` per spot node (POSIX seconds; ``ended``
    None while it runs; ``preempted`` when the cloud took it back). Over the trailing
    ``window_hours`` before ``now``: the preemptions that ended a node inside the window, divided by
    the node-hours held there inside the window (at least ``min_hours``, so one preemption of a node
    held a few seconds counts as a high rate, not a division by zero). A location with no node
    inside the window is absent: its rate is unknown, not zero.
    """
    if not (math.isfinite(window_hours) and window_hours > 0):
        raise ValueError(f"window_hours must be > 0, got {window_hours}")
    since = now - window_hours * 3600.0
    hours: dict[str, float] = {}
    events: dict[str, int] = {}
    for location, started, ended, preempted in lives:
        end = now if ended is None else min(ended, now)
        held = max(0.0, end - max(started, since)) / 3600.0
        if end < since:
            continue
        hours[location] = hours.get(location, 0.0) + held
        if preempted and ended is not None and since <= ended <= now:
            events[location] = events.get(location, 0) + 1
    return {loc: events.get(loc, 0) / max(h, min_hours) for loc, h in hours.items()}
