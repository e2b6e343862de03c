"""Trace-driven simulation: replay real spot traces through the same ``policy/`` code the
provider runs, and compare against the offline optimum.

``traces`` loads and validates per-zone trace files; ``engine`` simulates a checkpointed
training job under an online policy; ``optimal`` computes the cheapest schedule with the whole
trace known; ``serving`` simulates a serving fleet against a demand trace.
"""

from __future__ import annotations

from ray_multicloud.sim.engine import JobSpec, SimResult, SimulationError, TickJob, simulate
from ray_multicloud.sim.optimal import optimal_cost
from ray_multicloud.sim.traces import TraceError, TraceSet, load_traces

__all__ = [
    "JobSpec",
    "SimResult",
    "SimulationError",
    "TickJob",
    "TraceError",
    "TraceSet",
    "load_traces",
    "optimal_cost",
    "simulate",
]
