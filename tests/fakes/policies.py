"""Deadline policies for tests of the simulator and the optimum."""

from __future__ import annotations

from dataclasses import dataclass

from ray_multicloud.policy.deadline import WAIT, Choice, JobView, Memory, Step


@dataclass(frozen=True, slots=True)
class Scripted:
    """Replays a fixed list of choices, one per tick, then waits."""

    script: tuple[Choice, ...]
    name: str = "scripted"

    def decide(self, view: JobView, memory: Memory) -> Step:
        i = round(view.elapsed_hours / view.tick_hours)
        return Step(self.script[i] if i < len(self.script) else WAIT, ("script",), memory)
