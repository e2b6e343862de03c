"""ray_multicloud.train.notice: the save-on-notice decision, hand-computed cases and a property.

The saver runs on a fake clock here: a step or a save "takes" time by advancing it.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.train.notice import Action, Notice, NoticeSaver, ray_train_margin_s, save_now


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("now", "deadline", "save", "step", "margin", "expected"),
    [
        # 1.0 + 0.3 + 0.4 + 0.5 = 2.2 <= 5: a step and a save still fit.
        (1.0, 5.0, 0.4, 0.3, 0.5, False),
        # 3.7 + 1.2 = 4.9 <= 5: one more step.
        (3.7, 5.0, 0.4, 0.3, 0.5, False),
        # 4.0 + 1.2 = 5.2 > 5: save now.
        (4.0, 5.0, 0.4, 0.3, 0.5, True),
        # exactly on the boundary: 3.8 + 1.2 = 5.0, not after the deadline: step.
        (3.75, 5.0, 0.5, 0.25, 0.5, False),
        # a save longer than what is left: save now (best effort).
        (1.0, 5.0, 10.0, 0.3, 0.5, True),
        # past the deadline already.
        (6.0, 5.0, 0.0, 0.0, 0.0, True),
        # no margin, no save time: step while a whole step ends by the deadline.
        (4.0, 5.0, 0.0, 1.0, 0.0, False),
        (4.5, 5.0, 0.0, 1.0, 0.0, True),
    ],
    ids=[
        "early",
        "last-step-fits",
        "save",
        "boundary",
        "save-too-long",
        "past",
        "no-margin-fits",
        "no-margin-save",
    ],
)
def test_save_now_cases(
    now: float, deadline: float, save: float, step: float, margin: float, expected: bool
) -> None:
    assert (
        save_now(now=now, deadline=deadline, save_s_estimate=save, step_s_estimate=step, margin_s=margin)
        is expected
    )


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_save_now_rejects_bad_estimates(bad: float) -> None:
    with pytest.raises(ValueError, match="save_s_estimate"):
        save_now(now=0, deadline=1, save_s_estimate=bad, step_s_estimate=0.1, margin_s=0.1)
    with pytest.raises(ValueError, match="margin_s"):
        NoticeSaver(margin_s=bad)


@pytest.mark.parametrize(
    ("environ", "slack", "expected"),
    [
        ({}, 0.5, 2.5),  # Ray Train's default poll: 2 s
        ({"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}, 0.5, 1.0),
        ({"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": ""}, 0.0, 2.0),
    ],
    ids=["default", "short-poll", "empty"],
)
def test_ray_train_margin_covers_the_controller_poll(
    environ: dict[str, str], slack: float, expected: float
) -> None:
    assert ray_train_margin_s(slack, environ=environ) == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_ray_train_margin_rejects_a_bad_poll(raw: str) -> None:
    with pytest.raises(ValueError, match="RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"):
        ray_train_margin_s(environ={"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": raw})


def test_notice_from_preemption_info() -> None:
    @dataclasses.dataclass(frozen=True)
    class Info:  # the shape of ray.train.PreemptionInfo
        deadline_ms: int | None

    assert Notice.from_preemption_info(None) is None
    assert Notice.from_preemption_info(Info(1_700_000_005_250)) == Notice(1_700_000_005.25)
    assert Notice.from_preemption_info(Info(None)) == Notice(None)


def test_the_docstring_sequence() -> None:
    """Notice 5 s, step 0.3 s, save 0.4 s, margin 0.5 s, the notice seen 1 s late: ten more steps,
    the save at t=4.0 ending at 4.4, then STOP for good."""
    clock = Clock(0.0)
    saver = NoticeSaver(margin_s=0.5, clock=clock)
    for _ in range(3):  # before the notice: steps and a periodic save are measured
        clock.advance(0.3)
        saver.step_done()
        assert saver.decide(None) is Action.STEP
    with saver.saving():
        clock.advance(0.4)
    assert (saver.step_s_estimate, saver.save_s_estimate) == (pytest.approx(0.3), pytest.approx(0.4))
    clock.now = 0.7  # the last step before the notice was seen ends at t=1.0
    clock.advance(0.3)
    saver.step_done()
    notice = Notice(deadline_s=5.0)
    actions = []
    while (action := saver.decide(notice)) is Action.STEP:
        actions.append(round(clock.now, 6))
        clock.advance(0.3)
        saver.step_done()
    assert actions == [pytest.approx(1.0 + 0.3 * i) for i in range(10)]
    assert action is Action.SAVE and clock.now == pytest.approx(4.0)
    with saver.saving():
        clock.advance(0.4)
    assert clock.now <= 5.0 - 0.5
    assert saver.stopped
    assert saver.decide(notice) is Action.STOP
    assert saver.decide(None) is Action.STOP


def test_without_a_notice_it_steps_and_measures() -> None:
    clock = Clock()
    saver = NoticeSaver(clock=clock, window=3)
    saver.step_done()  # the first mark measures nothing (start-up came before it)
    assert saver.step_s_estimate is None
    for dt in (0.2, 0.5, 0.3, 0.25, 0.1):
        clock.advance(dt)
        saver.step_done()
        assert saver.decide(None) is Action.STEP
    assert saver.step_s_estimate == pytest.approx(0.3)  # the largest of the last 3: 0.3, 0.25, 0.1
    # A save is not counted as step time.
    with saver.saving():
        clock.advance(2.0)
    clock.advance(0.1)
    saver.step_done()
    assert saver.step_s_estimate == pytest.approx(0.25)
    assert saver.save_s_estimate == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("saver_kwargs", "measure_step", "deadline"),
    [
        ({}, True, 100.0),  # no save measured and no prior: save at once
        ({"save_s": 0.1}, False, 100.0),  # no step measured: save at once
        ({"save_s": 0.1}, True, None),  # a notice without a deadline: save at once
    ],
    ids=["no-save-estimate", "no-step-estimate", "no-deadline"],
)
def test_unknowns_save_at_once(
    saver_kwargs: dict[str, float], measure_step: bool, deadline: float | None
) -> None:
    clock = Clock(0.0)
    saver = NoticeSaver(clock=clock, **saver_kwargs)
    saver.step_done()
    if measure_step:
        clock.advance(0.1)
        saver.step_done()
    assert saver.decide(Notice(deadline)) is Action.SAVE


def test_the_prior_save_time_is_used_until_one_is_measured() -> None:
    clock = Clock(0.0)
    saver = NoticeSaver(margin_s=0.0, save_s=1.0, clock=clock)
    saver.step_done()
    clock.advance(1.0)
    saver.step_done()
    # 1.0 + 1 (step) + 1 (save) = 3.0 <= 3.0: step; at 2.0 it is 4.0 > 3.0: save.
    assert saver.decide(Notice(3.0)) is Action.STEP
    clock.advance(1.0)
    saver.step_done()
    assert saver.decide(Notice(3.0)) is Action.SAVE


def test_nothing_new_to_save_means_stop_not_a_second_save() -> None:
    clock = Clock(0.0)
    saver = NoticeSaver(margin_s=0.0, save_s=0.5, clock=clock)
    saver.step_done()
    clock.advance(1.0)
    saver.step_done()
    with saver.saving():  # the periodic save of this step
        clock.advance(0.5)
    # 1.5 + 1 + 0.5 = 3.0 > 2.0: no step fits, and the state is saved already.
    assert saver.decide(Notice(2.0)) is Action.STOP
    assert saver.stopped
    # With time left, it steps on after a periodic save instead.
    other_clock = Clock(0.0)
    other = NoticeSaver(margin_s=0.0, save_s=0.5, clock=other_clock)
    other.step_done()
    other_clock.advance(1.0)
    other.step_done()
    with other.saving():
        pass
    assert other.decide(Notice(100.0)) is Action.STEP


def test_save_asked_but_not_done_is_asked_again() -> None:
    clock = Clock(0.0)
    saver = NoticeSaver(save_s=0.1, clock=clock)
    saver.step_done()
    assert saver.decide(Notice(None)) is Action.SAVE
    assert saver.decide(None) is Action.SAVE  # still owed, even if the notice went away
    with pytest.raises(OSError), saver.saving():  # a save that fails is not counted
        raise OSError("disk full")
    assert not saver.stopped
    assert saver.decide(None) is Action.SAVE
    with saver.saving():
        pass
    assert saver.decide(None) is Action.STOP


@settings(max_examples=300, deadline=None)
@given(
    warmup=st.lists(st.floats(0.05, 2.0), min_size=2, max_size=12),
    save_s=st.floats(0.0, 5.0),
    margin_s=st.floats(0.0, 2.0),
    notice_s=st.floats(0.0, 30.0),
    seen_after=st.floats(0.0, 5.0),
    fractions=st.lists(st.floats(0.05, 1.0), min_size=1, max_size=50),
    save_fraction=st.floats(0.05, 1.0),
)
def test_property_the_save_never_ends_after_the_deadline_given_its_estimates(
    warmup: list[float],
    save_s: float,
    margin_s: float,
    notice_s: float,
    seen_after: float,
    fractions: list[float],
    save_fraction: float,
) -> None:
    """Whatever the step times, as long as each step and the save take no longer than the saver's
    estimates, and the notice is seen while a save still fits: one save, ending by
    ``deadline - margin``, taken when no further step would have fitted; then STOP forever."""
    clock = Clock(0.0)
    saver = NoticeSaver(margin_s=margin_s, save_s=save_s, clock=clock, window=len(warmup))
    saver.step_done()
    for dt in warmup:
        clock.advance(dt)
        saver.step_done()
    deadline = clock.now + notice_s
    clock.advance(seen_after)  # the loop sees the notice at its next step boundary
    step = saver.step_s_estimate
    assert step is not None
    saver.step_done()  # that boundary's step (it took `seen_after`, maybe longer than the estimate)
    fits = clock.now + save_s + margin_s <= deadline
    notice = Notice(deadline)
    saves = 0
    # Steps take between 0.05 s (the shortest warm-up step) and the estimate: at most ~700 of them.
    for fraction in itertools.islice(itertools.cycle(fractions), 2000):
        step_est, save_est = saver.step_s_estimate, saver.save_s_estimate
        action = saver.decide(notice)
        if action is Action.STOP:
            break
        if action is Action.SAVE:
            assert step_est is not None and save_est is not None
            assert clock.now + step_est + save_est + margin_s > deadline  # no further step fitted
            with saver.saving():
                clock.advance(save_est * save_fraction)
            saves += 1
            if fits:
                assert clock.now <= deadline - margin_s + 1e-9
            continue
        assert action is Action.STEP
        assert step_est is not None
        clock.advance(max(0.05, step_est * fraction))
        saver.step_done()
    else:
        pytest.fail("never stopped")
    assert saves == 1
    assert saver.decide(notice) is Action.STOP
