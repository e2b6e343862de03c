"""The hands-off ranking's contracts (``policy/assess.py``): the reasons line in full, an unreplayed
candidate's figures, and the order among candidates that save nothing.

Written for the survivors of the mutmut run of ``policy/assess.py`` (benchmarks/README.md, "Mutation
testing"); every expected value is worked out by hand from the module docstring. Pure: no Ray.
"""

from __future__ import annotations

from ray_multicloud.policy.assess import Candidate, Criticality, assess, rank


def cand(name: str, cost: float, policy: float | None, moves: int = 0, gb: float = 1.0,
         restart: float = 1.0, per_gb: float = 0.0, crit: Criticality = Criticality.MEDIUM,
         hands_off: bool = False, note: str = "", kind: str = "pool") -> Candidate:
    return Candidate(name, kind, name, 10.0, cost, policy, moves, gb, restart, per_gb, crit, hands_off, note)


def test_the_reasons_line_in_full() -> None:
    # restart 10 min (> 5, <= 30) and 20 GB (<= 100): moderate. 3 moves x 20 GB x $0.02 = $1.20.
    c = cand("train", 100.0, 60.0, moves=3, gb=20.0, restart=10.0, per_gb=0.02, crit=Criticality.HIGH,
             hands_off=True, note="3 jobs")
    a = assess(c)
    assert (a.egress_usd, a.net_saving_usd) == (1.2, 38.8) and a.difficulty == "moderate"
    assert a.reasons() == (
        "policy would have paid $60.00 for $100.00 of recorded hours; 3 move(s) x 20 GB at $0.02/GB egress; "
        "moderate to move (restart 10 min, checkpoint 20 GB); criticality high; "
        "already hands-off (migration.enabled); 3 jobs")


def test_an_unreplayed_candidate_keeps_its_egress_and_difficulty() -> None:
    # restart 3 min, 10 GB: easy; 2 moves x 10 GB x $0.02 = $0.40 of egress, nothing else known.
    a = assess(cand("job-7", 8.0, None, moves=2, gb=10.0, restart=3.0, per_gb=0.02, kind="job"))
    assert (a.saving_usd, a.net_saving_usd, a.score) == (None, None, None)
    assert a.egress_usd == 0.4 and a.difficulty == "easy"
    assert a.reasons() == "not replayed"
    noted = assess(cand("job-8", 8.0, None, note="no spot trace for eu-north-1"))
    assert noted.reasons() == "no spot trace for eu-north-1"


def test_those_saving_nothing_rank_below_any_saving_then_by_net_saving() -> None:
    # b: net $1, easy, medium -> score 0.5. c: net -$1 -> score 0. a: -$2 saved and 1 x 100 GB x
    # $0.03 = $3 egress: net -$5 -> score 0. Order: b (score), then c before a (higher net saving).
    a = cand("a", 10.0, 12.0, moves=1, gb=100.0, per_gb=0.03)
    b = cand("b", 11.0, 10.0)
    c = cand("c", 10.0, 11.0)
    ranked = rank([a, b, c])
    assert [r.candidate.name for r in ranked] == ["b", "c", "a"]
    assert [r.score for r in ranked] == [0.5, 0.0, 0.0]
    assert [r.net_saving_usd for r in ranked] == [1.0, -1.0, -5.0]
