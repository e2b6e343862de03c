"""``guard_cuts_segment`` and MultiCloud's ``leave_before_cut`` rule (issue 12 item 6), on literal
views with hand-computed slack: 0.1 h ticks, 0.5 h checkpoints, 0.2 h restart, 10 h of work.

Slack = deadline - now - restart - (work left from the last checkpoint). Keeping a spot node one more
tick is safe while the slack covers that tick (its end is judged against the checkpoint it reaches).
"""

from __future__ import annotations

import pytest

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    JobView,
    Memory,
    MultiCloud,
    SpotOption,
    guard_cuts_segment,
    spot,
)

TICK = 0.1


def view(*, done: float, deadline: float | None, over: float = 0.0, total: float = 10.0) -> JobView:
    """Working on spot in us-east-1a (up), nothing saved since 0: unsaved work = ``done``."""
    return JobView(
        elapsed_hours=0.0,
        work_done_hours=done,
        checkpointed_hours=0.0,
        work_total_hours=total,
        deadline_hours=deadline,
        restart_hours=0.2,
        checkpoint_hours=0.5,
        tick_hours=TICK,
        current=spot("us-east-1a"),
        overhead_left_hours=over,
        zones=(SpotOption("us-east-1a", "us-east-1", True, 1.0),),
        ondemand_price_per_hour=3.0,
    )


@pytest.mark.parametrize(
    ("done", "deadline", "over", "cut"),
    [
        # slack 0.25: decisions at 0.05/0.25, 0.15/0.15, 0.25/0.05 (unsaved/slack); the third cannot
        # cover its tick (0.05 < 0.1) and ends at 0.35 < 0.5: cut.
        (0.05, 10.45, 0.0, True),
        # slack 0.35: the fourth decision (unsaved 0.35, slack 0.05) ends at 0.45 < 0.5: cut.
        (0.05, 10.55, 0.0, True),
        # slack 0.45: the fifth (unsaved 0.45, slack 0.05) ends at 0.55, past the checkpoint, and
        # 0.05 - 0.1 + 0.5 >= 0: it reaches the checkpoint.
        (0.05, 10.65, 0.0, False),
        # the same slack, but 0.15 h of restart still to pay first: the work reaches only 0.35 when
        # the slack is down to 0.05 (fifth decision): cut.
        (0.0, 10.65, 0.15, True),
        # no deadline: never cut
        (0.05, None, 0.0, False),
    ],
)
def test_guard_cuts_segment(done: float, deadline: float | None, over: float, cut: bool) -> None:
    assert guard_cuts_segment(view(done=done, deadline=deadline, over=over)) is cut


def test_a_job_that_finishes_first_is_not_cut() -> None:
    # 0.3 h of work, 0.25 done, slack 0.52 - 0.2 - 0.3 = 0.02 h: the tick finishes the job.
    assert guard_cuts_segment(view(done=0.25, deadline=0.52, total=0.3)) is False


def test_guard_firing_now_is_a_cut() -> None:
    # slack 0.05 < the tick, ending at 0.15 < 0.5: the guard fires at this very decision.
    assert guard_cuts_segment(view(done=0.05, deadline=10.25)) is True


@pytest.mark.parametrize(("rule", "deadline", "expected"), [
    (True, 10.45, ON_DEMAND),  # cut ahead: on-demand now, not two spot ticks later
    (False, 10.45, spot("us-east-1a")),  # rule off: keeps spot until the guard fires
    (True, 10.65, spot("us-east-1a")),  # reaches its checkpoint: keeps spot
])
def test_multicloud_leaves_before_the_cut(rule: bool, deadline: float, expected: object) -> None:
    step = MultiCloud(leave_before_cut=rule).decide(view(done=0.05, deadline=deadline), Memory())
    assert step.choice == expected
