"""Which workload to hand over next: rank a cluster's pools and jobs for "hands-off" running.

Pure: no I/O, no clock. The caller (``ray-multicloud assess``) measures each candidate from the
ledger (its recorded node hours and what they cost), replays those hours through the simulator
under the pool's deadline policy over spot traces (``policy_cost_usd``, ``moves``), and reads the
pool's ``migration:`` section (checkpoint size, restart time, egress price) and its declared
``criticality``. This module turns those figures into a ranking:

- ``saving_usd = cost_usd - policy_cost_usd``: what the policy would have saved on the recorded
  hours (the replay pays its restarts and lost work; it does not pay egress);
- ``egress_usd = moves * checkpoint_gb * egress_usd_per_gb``: each move carries the checkpoint
  to the new node (the worst case: across clouds);
- ``net_saving_usd = saving_usd - egress_usd``;
- ``difficulty``: how hard the workload is to move, from its restart time and checkpoint size:
  ``easy`` (restart <= 5 min and checkpoint <= 10 GB), ``hard`` (restart > 30 min or checkpoint >
  100 GB), else ``moderate``; weights 1, 0.75 and 0.5;
- ``criticality`` (declared): ``low``, ``medium`` (the default) or ``high``; weights 1, 0.5, 0.25:
  a critical workload must save more to be worth the risk of being first;
- ``score = max(net_saving_usd, 0) * difficulty weight * criticality weight`` (USD, weighted).

Order: candidates not yet hands-off (their pool's ``migration.enabled`` is false, or the pool is not
moved) first, by score (highest first), then by net saving, then by name; then those already
hands-off, in the same order (shown for their evidence; there is nothing to pick). A candidate
whose replay could not be run (``policy_cost_usd`` None) has no score and comes last of its part.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

EASY_RESTART_MIN, HARD_RESTART_MIN = 5.0, 30.0
EASY_CHECKPOINT_GB, HARD_CHECKPOINT_GB = 10.0, 100.0
DIFFICULTY_WEIGHT = {"easy": 1.0, "moderate": 0.75, "hard": 0.5}


class Criticality(str, enum.Enum):
    """How much a workload's owners fear a disruption; declared per pool (``pool.criticality``)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def weight(self) -> float:
        return {"low": 1.0, "medium": 0.5, "high": 0.25}[self.value]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pool or a job, measured (module docstring). ``policy_cost_usd`` None: not replayed (``note``
    says why)."""

    name: str
    kind: str  # "pool" or "job"
    pool: str
    hours: float
    cost_usd: float
    policy_cost_usd: float | None
    moves: int
    checkpoint_gb: float
    restart_minutes: float
    egress_usd_per_gb: float
    criticality: Criticality = Criticality.MEDIUM
    hands_off: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class Assessment:
    """One ranked candidate with the figures its rank comes from."""

    candidate: Candidate
    saving_usd: float | None
    egress_usd: float
    net_saving_usd: float | None
    difficulty: str
    score: float | None

    def reasons(self) -> str:
        c = self.candidate
        if self.net_saving_usd is None:
            return c.note or "not replayed"
        parts = [
            f"policy would have paid ${c.policy_cost_usd:,.2f} for ${c.cost_usd:,.2f} of recorded hours",
            f"{c.moves} move(s) x {c.checkpoint_gb:g} GB at ${c.egress_usd_per_gb:g}/GB egress",
            f"{self.difficulty} to move (restart {c.restart_minutes:.3g} min, "
            f"checkpoint {c.checkpoint_gb:g} GB)",
            f"criticality {c.criticality.value}",
        ]
        if c.hands_off:
            parts.append("already hands-off (migration.enabled)")
        if c.note:
            parts.append(c.note)
        return "; ".join(parts)


def difficulty(restart_minutes: float, checkpoint_gb: float) -> str:
    """``easy``, ``moderate`` or ``hard`` (module docstring's thresholds)."""
    if restart_minutes > HARD_RESTART_MIN or checkpoint_gb > HARD_CHECKPOINT_GB:
        return "hard"
    if restart_minutes <= EASY_RESTART_MIN and checkpoint_gb <= EASY_CHECKPOINT_GB:
        return "easy"
    return "moderate"


def assess(candidate: Candidate) -> Assessment:
    """The figures of one candidate (module docstring)."""
    c = candidate
    level = difficulty(c.restart_minutes, c.checkpoint_gb)
    egress = c.moves * c.checkpoint_gb * c.egress_usd_per_gb
    if c.policy_cost_usd is None:
        return Assessment(c, None, egress, None, level, None)
    saving = c.cost_usd - c.policy_cost_usd
    net = saving - egress
    score = max(net, 0.0) * DIFFICULTY_WEIGHT[level] * c.criticality.weight
    return Assessment(c, saving, egress, net, level, score)


def rank(candidates: Sequence[Candidate]) -> list[Assessment]:
    """Every candidate assessed, in the module docstring's order."""
    def key(a: Assessment) -> tuple[bool, bool, float, float, str, str]:
        unscored = a.score is None
        return (a.candidate.hands_off, unscored, -(a.score or 0.0), -(a.net_saving_usd or 0.0),
                a.candidate.kind, a.candidate.name)

    return sorted((assess(c) for c in candidates), key=key)
