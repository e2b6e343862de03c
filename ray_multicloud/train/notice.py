"""Save on an interruption notice as late as is safe, then stop stepping until the restart.

A spot notice (or the PREEMPTION drain before a move) gives the training loop a deadline: when the
node will be gone. Saving at once throws away the steps that still fit before the deadline; not
saving throws away everything since the last periodic checkpoint. This module decides the moment in
between: keep stepping while one more step *and* a save still end before the deadline (less a
margin), then save, then stop stepping, because any step after that save would be discarded by the
restart anyway.

Contract
--------
* :func:`save_now` is the pure decision: save now when ``now + step + save + margin > deadline``,
  i.e. when one more step would no longer leave time to save before the deadline.
* :class:`NoticeSaver` is the loop's side of it. The loop calls :meth:`~NoticeSaver.step_done` after
  every step, wraps every save (periodic ones too) in :meth:`~NoticeSaver.saving`, and after each
  step asks :meth:`~NoticeSaver.decide` with the current notice (``None`` when there is none):

  - ``STEP``: run another step;
  - ``SAVE``: save now, inside ``saving()``; after it ``decide`` answers ``STOP``;
  - ``STOP``: everything worth keeping is saved: run no more steps and wait for the restart (Ray
    Train V2 tears the worker group down at the deadline and restarts it from the checkpoint).

  The saver measures its own step time (the time between two ``step_done`` calls, saves excluded,
  so it includes the loop's own overhead: logging, ``get_preemption_info``'s barrier) and save time
  (each ``saving()`` block); its estimates are the largest of the last ``window`` measurements.
  The first ``step_done`` measures nothing (what came before it was start-up, not a step).
* Guarantee: if the real step and save take no longer than the estimates and the notice is seen
  while a save still fits (``now + save + margin <= deadline``), the notice's save ends by
  ``deadline - margin`` and starts less than one step + save + margin before the deadline; every
  step run before it is kept, so the restart loses no step, and the idle time between the save and
  the deadline is under one step plus the margin (plus what the save took less than its estimate).
* Without a deadline (the notice gave none), without a measured step or save time yet, or when the
  save no longer fits: ``SAVE`` at once (best effort). When nothing was stepped since the last
  save (a periodic save just ran), there is nothing to add: ``STOP`` instead of a second save of
  the same state.
* In a job with several workers every rank must take the same action at the same step (the save is
  a collective ``ray.train.report``): decide on rank 0 and broadcast the action (the notice itself,
  ``ray.train.get_preemption_info()``, is already rank 0's, broadcast).
* A save counts only once whoever restores from it has it. In Ray Train V2 (2.60) ``report()``
  returns when the result is queued on the worker; the controller takes it at its next poll of the
  workers (every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``, 2 s by default), and a report still queued
  on a node that dies is lost (seen here: a save 1.4 s before the deadline, never committed). So
  ``margin_s`` must cover that poll: :func:`ray_train_margin_s` is the poll interval plus slack.
  Setting ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` lower (0.5 s) in the job's ``runtime_env`` shortens
  both the margin and the restart after the deadline (the controller notices it sooner).

Event sequence (notice 5 s, step 0.3 s, save 0.4 s, margin 0.5 s; times from the notice)::

    t=0.0   node drained, reason PREEMPTION, deadline t=5.0 (margin 0.5 s: a 0.5 s controller poll
            would need 1.0 s)
    t=1.0   after step k: notice seen; 1.0 + 0.3 + 0.4 + 0.5 = 2.2 <= 5.0 -> STEP
    ...     STEP after steps k+1 .. k+9 (at t=3.7: 3.7 + 1.2 = 4.9 <= 5.0)
    t=4.0   after step k+10: 4.0 + 1.2 = 5.2 > 5.0 -> SAVE (step k+10), ends t=4.4 <= 4.5
    t=4.4   -> STOP: no more steps; the worker waits
    t=5.0   node gone; Ray Train restarts the group -> resumes at step k+10: 0 steps lost,
            0.6 s idle before the deadline

Usage in a Ray Train loop (single worker; see ``ray_multicloud/scenarios/train_migration.py`` for DDP)::

    saver = NoticeSaver(margin_s=ray_train_margin_s())
    for step in range(start, total):
        train_step(step)
        saver.step_done()
        if (step + 1) % every == 0:
            with saver.saving():
                save(step + 1)
        action = saver.decide(Notice.from_preemption_info(ray.train.get_preemption_info()))
        if action is Action.SAVE:
            with saver.saving():
                save(step + 1)
            action = saver.decide(None)
        if action is Action.STOP:
            wait_until_torn_down()
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol


class Action(enum.Enum):
    """What the loop does next (see the module docstring)."""

    STEP = "step"
    SAVE = "save"
    STOP = "stop"


class _HasDeadlineMs(Protocol):
    @property
    def deadline_ms(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """An interruption notice as the loop sees it: the node is gone at ``deadline_s`` (POSIX s), or
    at an unknown time (``None``)."""

    deadline_s: float | None

    @classmethod
    def from_preemption_info(cls, info: _HasDeadlineMs | None) -> Notice | None:
        """The notice in ``ray.train.get_preemption_info()``'s answer (Ray Train V2
        ``PreemptionInfo``: ``deadline_ms``, epoch milliseconds, or None), or None without one."""
        if info is None:
            return None
        ms = info.deadline_ms
        return cls(None if ms is None else ms / 1000.0)


def _check(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")


HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
RAY_TRAIN_DEFAULT_POLL_S = 2.0


def ray_train_margin_s(slack_s: float = 0.5, environ: Mapping[str, str] | None = None) -> float:
    """The margin a Ray Train V2 job's notice save needs: the controller's poll interval (when the
    queued report is collected: ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` from ``environ``, default the
    process environment, else Ray's 2 s) plus ``slack_s``. Raises ``ValueError`` for a value that is
    not a number >= 0."""
    env = os.environ if environ is None else environ
    raw = env.get(HEALTH_CHECK_ENV)
    try:
        poll = RAY_TRAIN_DEFAULT_POLL_S if raw is None or raw == "" else float(raw)
    except ValueError:
        raise ValueError(f"{HEALTH_CHECK_ENV} must be a number of seconds, got {raw!r}") from None
    _check(HEALTH_CHECK_ENV, poll)
    _check("slack_s", slack_s)
    return poll + slack_s


def save_now(
    *, now: float, deadline: float, save_s_estimate: float, step_s_estimate: float, margin_s: float
) -> bool:
    """True when one more step would no longer leave time to save before the deadline:
    ``now + step_s_estimate + save_s_estimate + margin_s > deadline``.

    ``now`` and ``deadline`` on one clock (seconds); estimates and margin in seconds, finite and
    >= 0 (else ``ValueError``). False means a step, then a save, still end ``margin_s`` before the
    deadline, so saving now would give up a step that fits.
    """
    for name, value in (
        ("save_s_estimate", save_s_estimate),
        ("step_s_estimate", step_s_estimate),
        ("margin_s", margin_s),
    ):
        _check(name, value)
    return now + step_s_estimate + save_s_estimate + margin_s > deadline


class NoticeSaver:
    """The training loop's notice state: measures step and save times, says when to save on a
    notice and when to stop stepping (the module docstring has the contract).

    ``margin_s``: slack kept before the deadline for what the estimates miss (the report reaching
    Ray Train's controller, jitter). ``save_s``: a prior save time, used until a save is measured
    (None: no prior; a notice before any save was measured saves at once). ``window``: how many
    recent measurements the estimates look at (the largest of them). ``clock``: POSIX seconds, the
    clock of the notice's deadline.

    Not thread-safe: one loop, one saver. A new saver per worker start (a restart starts afresh).
    """

    __slots__ = ("_clock", "_mark", "_pending", "_saves", "_steps", "_stopped", "_unsaved", "margin_s")

    def __init__(
        self,
        *,
        margin_s: float = 0.5,
        save_s: float | None = None,
        window: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check("margin_s", margin_s)
        if save_s is not None:
            _check("save_s", save_s)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.margin_s = margin_s
        self._clock = clock
        self._steps: deque[float] = deque(maxlen=window)
        self._saves: deque[float] = deque([] if save_s is None else [save_s], maxlen=window)
        self._mark: float | None = None
        self._unsaved = False
        self._pending = False
        self._stopped = False

    @property
    def step_s_estimate(self) -> float | None:
        """The largest of the recent step times, None before one was measured."""
        return max(self._steps) if self._steps else None

    @property
    def save_s_estimate(self) -> float | None:
        """The largest of the recent save times (or the prior), None before one is known."""
        return max(self._saves) if self._saves else None

    @property
    def stopped(self) -> bool:
        """True once the notice's save is done (or nothing was left to save): step no more."""
        return self._stopped

    def step_done(self) -> None:
        """Mark the end of a step: its time is measured from the previous step's end or save's end."""
        now = self._clock()
        if self._mark is not None:
            self._steps.append(max(0.0, now - self._mark))
        self._mark = now
        self._unsaved = True

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Wrap a save (periodic or the notice's): its time is measured and, once it has returned,
        the state counts as saved; after the save ``decide`` asked for, the saver stops. A save that
        raises is not counted."""
        began = self._clock()
        yield
        ended = self._clock()
        self._saves.append(max(0.0, ended - began))
        self._mark = ended
        self._unsaved = False
        if self._pending:
            self._pending = False
            self._stopped = True

    def decide(self, notice: Notice | None) -> Action:
        """The next action after a step, given the current notice (None: no notice)."""
        if self._stopped:
            return Action.STOP
        if notice is None and not self._pending:
            return Action.STEP
        step_s, save_s = self.step_s_estimate, self.save_s_estimate
        deadline = None if notice is None else notice.deadline_s
        later = (
            self._pending is False
            and deadline is not None
            and step_s is not None
            and save_s is not None
            and not save_now(
                now=self._clock(),
                deadline=deadline,
                save_s_estimate=save_s,
                step_s_estimate=step_s,
                margin_s=self.margin_s,
            )
        )
        if later:
            return Action.STEP
        if not self._unsaved:
            self._pending = False
            self._stopped = True
            return Action.STOP
        self._pending = True
        return Action.SAVE
