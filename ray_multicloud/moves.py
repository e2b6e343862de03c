"""A move as a recorded state machine: each step of a make-before-break move is saved before the next.

A controller (or its head) that dies mid-move must neither repeat the move nor lose it. So a move is
not one long procedure but a record whose state is written to the ledger (``Ledger.journal_put``)
at every step, and a restarted controller finishes or undoes what it finds (``Controller.resume``):

``REQUESTED`` -> ``REPLACEMENT_UP`` -> ``DRAINING`` -> ``DONE``, or ``ROLLED_BACK`` from the first two.

Edges, one reason each (``TRANSITIONS``):

* ``REQUESTED -> REPLACEMENT_UP``: the replacement (launched with the move's own request id, so a
  retry after a restart reuses it through the drivers' idempotent ``launch``) is alive in Ray.
* ``REQUESTED -> ROLLED_BACK``: the launch failed, or the replacement did not come up in time (it
  is terminated).
* ``REPLACEMENT_UP -> DRAINING``: the old node was drained with reason PREEMPTION and a deadline
  (``drain_deadline_at``); its workload restarts on the replacement.
* ``REPLACEMENT_UP -> ROLLED_BACK``: the GCS rejected the drain; the replacement is terminated.
* ``REPLACEMENT_UP -> DONE``: the old node was gone already; nothing to drain.
* ``DRAINING -> DONE``: the old node was drained (or its deadline passed) and is terminated.

``DONE`` and ``ROLLED_BACK`` are final. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, replace


class MoveState(str, enum.Enum):
    REQUESTED = "requested"
    REPLACEMENT_UP = "replacement-up"
    DRAINING = "draining"
    DONE = "done"
    ROLLED_BACK = "rolled-back"

    @property
    def final(self) -> bool:
        return self in (MoveState.DONE, MoveState.ROLLED_BACK)


TRANSITIONS: dict[MoveState, frozenset[MoveState]] = {
    MoveState.REQUESTED: frozenset({MoveState.REPLACEMENT_UP, MoveState.ROLLED_BACK}),
    MoveState.REPLACEMENT_UP: frozenset({MoveState.DRAINING, MoveState.ROLLED_BACK, MoveState.DONE}),
    MoveState.DRAINING: frozenset({MoveState.DONE}),
    MoveState.DONE: frozenset(),
    MoveState.ROLLED_BACK: frozenset(),
}


class BadTransition(ValueError):
    """A move was asked to go from a state to one ``TRANSITIONS`` does not allow."""


@dataclass(frozen=True, slots=True)
class MoveRecord:
    """One move's saved state. ``move_id`` names the move (old instance, target offer, move number);
    ``request_id`` is the replacement's launch request id, derived from it; ``new_instance`` is set
    once the replacement exists; times are POSIX seconds."""

    move_id: str
    pool: str
    old_instance: str
    target_offer: str
    request_id: str
    state: MoveState
    started_at: float
    updated_at: float
    reason: str = ""
    new_instance: str = ""
    drain_deadline_at: float | None = None
    detail: str = ""

    def to(self, state: MoveState, *, at: float, **changes: object) -> MoveRecord:
        """This record in ``state`` (with ``changes``); ``BadTransition`` for an edge not in the graph."""
        if state not in TRANSITIONS[self.state]:
            raise BadTransition(f"move {self.move_id}: {self.state.value} -> {state.value} is not allowed")
        return replace(self, state=state, updated_at=at, **changes)  # type: ignore[arg-type]


def move_id(old_instance: str, target_offer: str, number: int) -> str:
    """The id of the ``number``-th move (from 1) of ``old_instance`` to ``target_offer``."""
    return f"{old_instance}>{target_offer}#{number}"


def request_id_of(move: str) -> str:
    """The replacement's launch request id: short, stable, and the same on every retry of the move."""
    return "mv-" + hashlib.sha256(move.encode()).hexdigest()[:12]


def new_record(
    *, pool: str, old_instance: str, target_offer: str, number: int, reason: str, at: float
) -> MoveRecord:
    """A move in ``REQUESTED``, not yet launched."""
    mid = move_id(old_instance, target_offer, number)
    return MoveRecord(
        move_id=mid,
        pool=pool,
        old_instance=old_instance,
        target_offer=target_offer,
        request_id=request_id_of(mid),
        state=MoveState.REQUESTED,
        started_at=at,
        updated_at=at,
        reason=reason,
    )
