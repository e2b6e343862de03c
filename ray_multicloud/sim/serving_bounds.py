"""Diagnostics that cheat on purpose: how far could ``predictive`` get on a held-out serving run?

The issue's target for ``predictive`` (at most half of reactive ``spot-hedge``'s SLO-violation
steps at no more than 5% more cost, held out) is only worth chasing where something that sizes
the fleet could reach it. These bounds say where, each on the held-out steps of one run of
:func:`ray_multicloud.sim.serving.simulate_fleet` (same grid, same warm start, same figures):

* ``spot-hedge``: the reactive reference itself.
* ``oracle``: ``predictive`` fed the TRUE future demand (its forecast at step ``t`` is the rate of
  step ``t + startup``), no headroom, no hold: nothing else changed. It knows demand, not
  preemptions.
* ``oracle-best``: the oracle forecast with the spot headroom (``HEADROOM_REPLICAS``) and ``hold``
  chosen in hindsight ON THE HELD-OUT STEPS: the fewest violations among those within
  ``1 + max_extra_cost`` of spot-hedge's held-out cost (cost breaks ties). When none is within
  that cost, the cheapest, flagged ``over``.
* ``hedge-best``: reactive spot-hedge with a fixed number of extra spot replicas (``extra_spot`` in
  ``HEADROOM_REPLICAS``) chosen in hindsight on the held-out steps, by the same rule.
* ``no-preemption``: spot-hedge on the same traces with every zone always holding its most VMs:
  the violations demand alone causes (the rest of spot-hedge's come from preemptions).
* ``warned``: spot-hedge told every preemption ``startup`` ahead: its on-demand fallback counts a
  zone's spot replicas only up to the fewest VMs the zone will hold over the next ``startup``
  steps (:func:`warned_caps`), so the fallback is ready when the spot goes. It knows preemptions,
  not demand.
* ``oracle-warned``: both oracles at once (true demand and the preemption warning), no headroom.
* ``probation-best``: spot-hedge with the probation of ``sim.serving`` (fallback counts a zone's
  spot only once the zone has kept its VMs that long: what a hazard that falls with the time since
  a zone came back buys) chosen in hindsight among ``PROBATIONS`` minutes, by the rule above. It is
  the realistic counterpart of ``warned``: it looks only at the past.

None of these is a policy: the oracle reads the future and the ``-best`` rows choose on the very
steps they are scored on. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ray_multicloud.sim.serving import (
    HEADROOM_REPLICAS,
    Demand,
    FleetSpec,
    _prepare,
    _run,
    _ticks,
    probation_caps,
)
from ray_multicloud.sim.traces import TraceSet

BOUNDS = ("spot-hedge", "oracle", "oracle-best", "hedge-best", "no-preemption", "warned", "oracle-warned",
          "probation-best")
PROBATIONS = (0.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Minutes of probation ``probation-best`` chooses from."""


@dataclass(frozen=True, slots=True)
class Bound:
    """One diagnostic's held-out figures (as ``ServingResult``'s) and what was chosen for it."""

    label: str
    cost_usd: float
    ondemand_cost_usd: float
    slo_violation_fraction: float
    unserved_fraction: float
    choice: str = ""


def oracle_forecast(rate: npt.NDArray[np.float64], lead: int) -> npt.NDArray[np.float64]:
    """``f[t] = rate[t + lead]`` (the true rate ``lead`` steps on; the last rate past the end)."""
    if len(rate) == 0:
        return rate.copy()
    idx = np.minimum(np.arange(len(rate)) + lead, len(rate) - 1)
    return np.asarray(rate[idx], dtype=np.float64)


def warned_caps(counts: npt.NDArray[np.int64], lead: int) -> npt.NDArray[np.int64]:
    """Per zone and step ``t``, the fewest VMs the zone holds over steps ``t .. t + lead`` (to the
    end of the trace): what a preemption warning ``lead`` steps ahead leaves to count on."""
    out = counts.copy()
    n = counts.shape[1]
    for j in range(1, min(lead, n - 1) + 1):
        ahead = np.concatenate([counts[:, j:], np.repeat(counts[:, -1:], j, axis=1)], axis=1)
        out = np.minimum(out, ahead)
    return out


def never_preempted(traces: TraceSet) -> TraceSet:
    """``traces`` with every zone holding, at every step, the most VMs it ever holds."""
    top = traces.counts.max(axis=1, keepdims=True)
    return dataclasses.replace(traces, counts=np.broadcast_to(top, traces.counts.shape).copy())


def _best(
    options: list[tuple[str, tuple[float, int, float, int, int]]], cap: float
) -> tuple[str, tuple[float, int, float, int, int]]:
    """Fewest violations among the options costing at most ``cap`` (cost breaks ties, then order);
    none within: the cheapest, its label marked ``over``."""
    within = [o for o in options if o[1][0] <= cap * (1 + 1e-12)]
    if within:
        return min(within, key=lambda o: (o[1][1], o[1][0]))
    label, run = min(options, key=lambda o: o[1][0])
    return f"{label} (over)", run


def hindsight_bounds(
    traces: TraceSet,
    demand: Demand,
    fleet: FleetSpec,
    *,
    ondemand_price: float,
    held_out_from: float,
) -> dict[str, Bound]:
    """The diagnostics of the module docstring, keyed by :data:`BOUNDS`, on the steps from
    ``held_out_from`` on (checked as by ``simulate_fleet``)."""
    rate, steps, start = _prepare(traces, demand, fleet, held_out_from)
    lead = _ticks(fleet.startup_minutes, steps.gap_seconds)
    counted = len(rate) - start
    total = float(rate[start:].sum())
    base = _run(steps, rate, fleet, "ondemand", ondemand_price, None, start)[0]

    def bound(label: str, run: tuple[float, int, float, int, int], choice: str = "") -> Bound:
        return Bound(label, run[0], base, run[1] / counted, run[2] / total if total > 0 else 0.0, choice)

    def best(label: str, options: list[tuple[str, tuple[float, int, float, int, int]]]) -> Bound:
        choice, run = _best(options, cap)
        return bound(label, run, choice)

    hedge = _run(steps, rate, fleet, "spot-hedge", ondemand_price, None, start)
    cap = hedge[0] * (1.0 + fleet.max_extra_cost)
    truth = oracle_forecast(rate, lead)
    oracle = _run(steps, rate, fleet, "predictive", ondemand_price, truth, start)
    oracles = [
        (f"+{k} spot{' hold' if hold else ''}",
         _run(steps, rate, fleet, "predictive", ondemand_price, truth, start, k * fleet.replica_rps,
              hold=hold))
        for hold in (False, True) for k in HEADROOM_REPLICAS
    ]
    hedges = [
        (f"{k} extra spot",
         _run(steps, rate, dataclasses.replace(fleet, extra_spot=k), "spot-hedge", ondemand_price, None,
              start))
        for k in HEADROOM_REPLICAS
    ]
    calm = _run(never_preempted(steps), rate, fleet, "spot-hedge", ondemand_price, None, start)
    warn = warned_caps(steps.counts, lead)
    warned = _run(steps, rate, fleet, "spot-hedge", ondemand_price, None, start, trusted=warn)
    both = _run(steps, rate, fleet, "predictive", ondemand_price, truth, start, trusted=warn)
    probations = [
        (f"{m:g} min",
         _run(steps, rate, fleet, "spot-hedge", ondemand_price, None, start,
              trusted=probation_caps(steps.counts, _ticks(m, steps.gap_seconds)) if m > 0 else None))
        for m in PROBATIONS
    ]
    return {
        "spot-hedge": bound("spot-hedge", hedge),
        "oracle": bound("oracle", oracle),
        "oracle-best": best("oracle-best", oracles),
        "hedge-best": best("hedge-best", hedges),
        "no-preemption": bound("no-preemption", calm),
        "warned": bound("warned", warned),
        "oracle-warned": bound("oracle-warned", both),
        "probation-best": best("probation-best", probations),
    }
