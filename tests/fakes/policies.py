"""Deadline policies for tests of the simulator and the optimum."""

from __future__ import annotations

from dataclasses import dataclass

from ray_multicloud.policy.deadline import WAIT, Choice, JobView, Memory, Step, spot


@dataclass(frozen=True, slots=True)
class Scripted:
    """Replays a fixed list of choices, one per tick, then waits."""

    script: tuple[Choice, ...]
    name: str = "scripted"

    def decide(self, view: JobView, memory: Memory) -> Step:
        i = round(view.elapsed_hours / view.tick_hours)
        return Step(self.script[i] if i < len(self.script) else WAIT, ("script",), memory)


@dataclass(frozen=True, slots=True)
class SpotScript:
    """Spot in ``zones[i]`` at tick ``i``, and in the last zone from then on."""

    zones: tuple[str, ...]
    name: str = "script"

    def decide(self, view: JobView, memory: Memory) -> Step:
        i = round(view.elapsed_hours / view.tick_hours)
        return Step(spot(self.zones[min(i, len(self.zones) - 1)]), ("script",), memory)
