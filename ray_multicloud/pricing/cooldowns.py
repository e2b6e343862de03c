"""Offers that answered "no capacity", shared by the head's processes (Karpenter's ``Available=false``).

The autoscaler's provider and the controller on the head are two processes with a provider each. When
a launch is refused for lack of capacity, the refusing offer is cooled down (skipped by placement for
``cooldown_seconds``); kept only in the refused process's memory, the other process learns the same
answer again, one refused launch at a time (during a spot shortage the controller would try a move
onto a spot offer the autoscaler just found empty, every tick). This board keeps each cooldown in
``state_dir/cooldowns.json`` with the process that wrote it, so each process reads the others'.

The file is JSON, ``{offer_id: {"until": POSIX s, "by": pid}}``, replaced atomically under an
exclusive lock (two processes adding at once lose neither entry); expired entries are dropped when
the board is written. An absent, unreadable or malformed board, or a malformed entry, reads as no
cooldown: the board only ever skips offers for a while, it never makes a launch fail.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

from ray_multicloud._files import replace_json
from ray_multicloud.types import OfferId

COOLDOWN_FILE = "cooldowns.json"


class CooldownBoard:
    """Cooldowns by offer id in ``state_dir/cooldowns.json``; see the module docstring."""

    def __init__(self, state_dir: str | Path, *, writer: int | None = None) -> None:
        """``writer``: who this board writes as (default: this process's pid)."""
        self.path = Path(state_dir).expanduser() / COOLDOWN_FILE
        self.writer = os.getpid() if writer is None else writer

    def _entries(self) -> dict[str, tuple[float, int]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(raw, dict):
            return {}
        out: dict[str, tuple[float, int]] = {}
        for offer_id, entry in raw.items():
            if not isinstance(entry, dict):
                continue
            until, by = entry.get("until"), entry.get("by")
            if (isinstance(until, (int, float)) and not isinstance(until, bool) and math.isfinite(until)
                    and isinstance(by, int) and not isinstance(by, bool)):
                out[str(offer_id)] = (float(until), by)
        return out

    def others(self, now: float) -> dict[OfferId, float]:
        """The cooldowns other writers recorded that still run at ``now``: offer id -> until."""
        return {OfferId(k): until for k, (until, by) in self._entries().items()
                if by != self.writer and until > now}

    def add(self, cooldowns: Mapping[str, float], *, now: float) -> None:
        """Record ``cooldowns`` (offer id -> until, POSIX s) as this writer's; a later ``until``
        already on the board is kept. Expired entries go."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = {k: v for k, v in self._entries().items() if v[0] > now}
            for offer_id, until in cooldowns.items():
                held = entries.get(offer_id)
                if held is None or until >= held[0]:
                    entries[offer_id] = (float(until), self.writer)
            replace_json(self.path, {k: {"until": u, "by": b} for k, (u, b) in entries.items()})


__all__ = ["COOLDOWN_FILE", "CooldownBoard"]
