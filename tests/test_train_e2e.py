"""End to end on the local cloud: a deterministic TorchTrainer job survives a spot preemption and a
price-driven move and ends with the weights of an uninterrupted run (about 3-4 minutes).

``ray up`` a private local cluster (2 T4 spot workers, one zone: the pool has ``colocate: zone``) ->
train -> preempt the node of rank 1 (notice 5 s) -> the autoscaler relaunches it in the same zone ->
train resumes from a verified checkpoint -> another cloud's T4 spot drops to 20% -> the controller
launches two replacements there, drains both old nodes, terminates them -> train resumes there ->
done. Run with ``pytest -m e2e tests/test_train_e2e.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray_multicloud.scenarios.train_migration import JobSpec, reference_state, run_scenario
from ray_multicloud.train.checkpoint import verify_checkpoint


def test_reference_is_deterministic_and_seed_dependent() -> None:
    """The reference the e2e test compares against: same seed, same weights; another seed, others."""
    spec = JobSpec(total_steps=6)
    a, b = reference_state(spec), reference_state(spec)
    assert all(bool((a[k] == b[k]).all()) for k in a)
    c = reference_state(JobSpec(total_steps=6, seed=spec.seed + 1))
    assert any(float((a[k] - c[k]).abs().max()) > 1e-4 for k in a)


@pytest.mark.e2e
def test_train_survives_preemption_and_price_move(tmp_path: Path) -> None:
    report = run_scenario(tmp_path, cycles=1, timeout_s=480)
    print(report)
    # Same weights as an uninterrupted run of the same seed.
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-6, report.max_abs_diff
    # It really was interrupted twice: the first attempt, after the preemption, after the move.
    assert report.attempts >= 3, report.events
    assert len(report.recovery_s) == 1 and len(report.preempt_lost_steps) == 1
    assert report.move_status == ["moved"], report.events
    assert len(report.move_total_s) == 1 and len(report.move_lost_steps) == 1
    # A restore loses at most the steps since the last checkpoint plus those run during the notice.
    assert all(0 <= n <= 5 + 40 for n in report.preempt_lost_steps + report.move_lost_steps)
    # Every checkpoint it restored from was complete (verified on restore, and again now); none skipped.
    assert len(report.sources) >= 2
    for source in report.sources:
        verify_checkpoint(source)
    assert report.skipped == []
    # The ledger recorded the move of the gang: both workers' nodes (t4_spot has colocate: zone), each
    # old instance -> its replacement.
    assert len({old for old, _ in report.ledger_moves}) >= 2, report.ledger_moves
    # Both workers ran in one zone in every attempt: before, after the preemption, after the move.
    assert len(report.attempt_zones) >= 3, report.attempt_zones
    assert all(len(zones) == 1 for zones in report.attempt_zones), report.attempt_zones
    # The cluster state shows the nodes it ran on: at least 2 offers (the move went to another cloud).
    assert len(report.instances_used) >= 3
    assert len(report.offers_used) >= 2, report.offers_used
    assert len({o.split("/")[0] for o in report.offers_used}) >= 2
