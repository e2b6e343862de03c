"""Bounded retry with exponential backoff for ``ThrottledError``, shared by the cloud drivers.

Only throttling is retried here: capacity and quota errors are the launcher's business (it tries
the next offer), and anything else is a real failure. ``sleep`` is injectable so tests take no time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ray_multicloud.errors import ThrottledError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """``attempts`` calls at most; waits ``base_s * 2**i`` capped at ``max_s``, with jitter in [0.5, 1]."""

    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 8.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        raw = min(self.max_s, self.base_s * (2**attempt))
        return raw * (0.5 + random.random() / 2) if self.jitter else raw


def retry_throttled(
    call: Callable[[], T],
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on ``ThrottledError`` wait and run it again, at most ``backoff.attempts`` times.

    The last ``ThrottledError`` propagates when the attempts are spent.
    """
    policy = backoff or Backoff()
    attempts = max(1, policy.attempts)
    for attempt in range(attempts):
        try:
            return call()
        except ThrottledError:
            if attempt == attempts - 1:
                raise
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover
