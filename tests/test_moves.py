"""The move state machine, edge by edge (``ray_multicloud.moves``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ray_multicloud.moves import TRANSITIONS, BadTransition, MoveState, move_id, new_record, request_id_of

S = MoveState
ALLOWED = {
    (S.REQUESTED, S.REPLACEMENT_UP),
    (S.REQUESTED, S.ROLLED_BACK),
    (S.REPLACEMENT_UP, S.DRAINING),
    (S.REPLACEMENT_UP, S.ROLLED_BACK),
    (S.REPLACEMENT_UP, S.DONE),
    (S.DRAINING, S.DONE),
}


@pytest.mark.parametrize("src", list(S))
@pytest.mark.parametrize("dst", list(S))
def test_every_edge(src: MoveState, dst: MoveState) -> None:
    assert (dst in TRANSITIONS[src]) == ((src, dst) in ALLOWED)
    rec = replace(
        new_record(pool="p", old_instance="i-1", target_offer="o", number=1, reason="r", at=0.0), state=src
    )
    if (src, dst) in ALLOWED:
        assert rec.to(dst, at=5.0).state is dst and rec.to(dst, at=5.0).updated_at == 5.0
    else:
        with pytest.raises(BadTransition):
            rec.to(dst, at=5.0)


def test_final_states() -> None:
    assert {s for s in S if s.final} == {S.DONE, S.ROLLED_BACK}


def test_ids_are_stable_and_distinct_per_move_number() -> None:
    assert move_id("i-1", "aws/x", 1) == "i-1>aws/x#1"
    a, b = request_id_of(move_id("i-1", "aws/x", 1)), request_id_of(move_id("i-1", "aws/x", 2))
    assert a == request_id_of("i-1>aws/x#1") and a != b and len(a) == 15 and a.startswith("mv-")
