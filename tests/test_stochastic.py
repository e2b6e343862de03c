"""The stochastic programme of ``policy.stochastic``: hand-computed tables on tiny cases, and
properties (values monotone in slack and in work, finite exactly where on-demand can still finish,
and a job that follows the programme never runs out of slack whatever spot does)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.deadline import JobView, Memory, MultiCloud, SpotOption, dp_point, spot
from ray_multicloud.policy.stochastic import INF, Problem, solve

# Two segments of one unit, slack 2 units (4 units to the deadline), restart 1 unit, spot at a
# quarter of on-demand, lost with probability 1/2 per unit, back with 1/2, never another zone up.
TINY = Problem(segments=2, seg=1, last=1, slack=2, restart=1.0, fail=0.5, back=0.5, alt=0.0, price=0.25)


def test_tiny_case_by_hand() -> None:
    """By hand, from the recurrence (w = segments left, s = slack):

    w=1: ods = 1 everywhere; s=1: cont = 0.25 (one unit, then done), leave = 1 + ods(1, 0) = 2,
    sp = 0.25; idle: only on-demand (spot would start at slack 0: infeasible), 1 + od(1, 0) = 2.
    s=2: start spot = 0.25 + sp(1, 1) = 0.5, so od(1, 2, up) = 0.5 and idle(1, 2) = (2, 0.5).
    w=2, s=1: cont = 0.25 + [0.5 sp(1, 1) + 0.5 idle(1, 1, down)] = 0.25 + 0.125 + 1 = 1.375;
    idle = 1 + od(2, 0) = 3. s=2: ods = 1 + 0.5 od(1, 2, down) + 0.5 od(1, 2, up) = 1.75;
    cont = 0.25 + 0.5 * 0.25 + 0.5 * idle(1, 2, down) = 1.375 (sp, as leaving costs 3);
    start spot = 0.25 + sp(2, 1) = 1.625 < 1.75, so od(2, 2, up) = 1.625; idle(2, 2, down) =
    min(wait 0.5 * 3 + 0.5 * 3, 1 + od(2, 1, down) = 3) = 3, idle(2, 2, up) = 1.625.
    """
    sol = solve(TINY)
    assert sol.sp[1] == (INF, 0.25, 0.25)
    assert sol.idle[1][1] == (2.0, 2.0)
    assert sol.idle[1][2] == (2.0, 0.5)
    assert sol.od[1][2] == (1.0, 0.5)
    assert sol.sp[2][1] == pytest.approx(1.375)
    assert sol.idle[2][1] == (3.0, 3.0)
    assert sol.ods[2][2] == pytest.approx((1.75, 1.75))
    assert sol.sp[2][2] == pytest.approx(1.375)
    assert sol.od[2][2] == pytest.approx((1.75, 1.625))
    assert sol.idle[2][2] == pytest.approx((3.0, 1.625))
    assert sol.idle[2][0] == (INF, INF)  # slack below a restart: on-demand cannot finish from idle
    # the query methods read the same tables
    assert sol.start_spot(2, 2) == pytest.approx(1.625)
    assert sol.start_ondemand(2, 2, True) == pytest.approx(3.0)
    assert sol.wait(2, 2, False) == pytest.approx(3.0)
    assert sol.spot_keep(2, 2) == pytest.approx(1.375)
    assert sol.spot_leave(2, 2) == pytest.approx(3.0)


def test_a_fractional_restart_is_charged_in_expectation() -> None:
    """Restart 0.5 units, spot never lost: from idle with slack 2, spot costs 0.5 * 0.25 for the
    restart plus sp(1, 1.5) = 0.5 sp(1, 2) + 0.5 sp(1, 1) = 0.25: 0.375 in all. With slack 1 the
    mixture reaches sp(1, 0), infeasible (a segment needs the restart left after it): on-demand,
    0.5 + od(1, 0.5) = 1.5."""
    p = Problem(segments=1, seg=1, last=1, slack=2, restart=0.5, fail=0.0, back=0.0, alt=0.0, price=0.25)
    sol = solve(p)
    assert sol.idle[1][2][1] == pytest.approx(0.375)
    assert sol.idle[1][1][1] == pytest.approx(1.5)


def test_a_loss_mid_segment_costs_the_work_and_the_slack() -> None:
    """One segment of 2 units, slack 3, restart 1, spot at 0.5, lost with probability 0.5 per
    unit, never back. Keeping spot: the first unit is known up; lost at the start of the second
    (1/2): pay 1 * 0.5, then idle at slack 2 with spot down: on-demand, 1 + 2 = 3; else 2 * 0.5
    and done: 0.5 * 3.5 + 0.5 * 1 = 2.25."""
    p = Problem(segments=1, seg=2, last=2, slack=3, restart=1.0, fail=0.5, back=0.0, alt=0.0, price=0.5)
    sol = solve(p)
    assert sol.idle[1][2][0] == pytest.approx(3.0)
    assert sol.cont[1][3] == pytest.approx(2.25)
    # slack 1 < (n - 1) + restart: the segment is not safe
    assert sol.cont[1][1] == INF
    # one unit into the segment the rest is one unit, known up: 0.5
    assert sol.mid_segment_keep(1, 2.0, 1) == pytest.approx(0.5)


problems = st.builds(
    Problem,
    segments=st.integers(1, 5),
    seg=st.integers(1, 3),
    last=st.just(1),
    slack=st.integers(0, 8),
    restart=st.sampled_from((0.5, 1.0, 1.5, 2.0)),
    fail=st.floats(0.0, 1.0),
    back=st.floats(0.0, 1.0),
    alt=st.floats(0.0, 1.0),
    price=st.floats(0.05, 1.5),
    extra=st.sampled_from((0.0, 0.5)),
)


@settings(max_examples=150, deadline=None)
@given(problems)
def test_values_are_monotone_and_finite_exactly_where_ondemand_finishes(p: Problem) -> None:
    sol = solve(p)
    for w in range(1, p.segments + 1):
        for s in range(p.slack + 1):
            for x in (0, 1):
                v = sol.idle[w][s][x]
                assert (v < INF) == (s >= p.restart - 1e-9)  # idle: feasible iff on-demand can finish
                assert sol.od[w][s][x] <= w * p.seg + 1e-9  # never dearer than on-demand to the end
                if s > 0:
                    assert v <= sol.idle[w][s - 1][x] + 1e-9  # more slack never costs more
                if w > 1:
                    assert v >= sol.idle[w - 1][s][x] - 1e-9  # more work never costs less


def _follow(p: Problem, s0: int, rng: random.Random) -> float:
    """Run a job from idle (spot up) by the programme's cheapest action at each step, spot drawn
    from the model's chain; returns the slack left at the end (time in units, restarts exact)."""
    sol = solve(p)
    w, s, mode, up = p.segments, float(s0), "idle", True
    for _ in range(1000):
        if w == 0:
            return s
        if mode == "idle":
            opts = {"wait": sol.wait(w, s, up), "od": sol.start_ondemand(w, s, up)}
            if up:
                opts["spot"] = sol.start_spot(w, s)
            act = min(opts, key=lambda k: opts[k])
            assert opts[act] < INF
            if act == "wait":
                s -= 1
                up = rng.random() < ((1 - p.fail) if up else p.back)
                continue
            s -= p.restart
            mode = "od" if act == "od" else "spot"
            continue
        n = p.last if w == 1 else p.seg
        if mode == "od":
            if up and sol.start_spot(w, s) < sol.ondemand_stay(w, s, up):
                s -= p.restart
                mode = "spot"
                continue
            assert sol.ondemand_stay(w, s, up) < INF
            for _ in range(n):
                up = rng.random() < ((1 - p.fail) if up else p.back)
            w -= 1
            continue
        keep, leave = sol.spot_keep(w, s), sol.spot_leave(w, s)
        assert min(keep, leave) < INF
        if leave < keep:
            s -= p.restart
            mode = "od"
            for _ in range(n):
                up = rng.random() < ((1 - p.fail) if up else p.back)
            w -= 1
            continue
        lost = next((j for j in range(1, n) if rng.random() < p.fail), 0)
        if lost:
            s -= lost
            mode = "idle"
            up = rng.random() < p.alt
            continue
        w -= 1
        if rng.random() < p.fail:
            mode, up = "idle", rng.random() < p.alt
    return s


@settings(max_examples=60, deadline=None)
@given(problems, st.integers(0, 2**31 - 1))
def test_following_the_programme_never_misses_a_feasible_deadline(p: Problem, seed: int) -> None:
    if p.slack < p.restart:
        return
    rng = random.Random(seed)
    for _ in range(5):
        assert _follow(p, p.slack, rng) >= -1e-9


def _view(**kw: object) -> JobView:
    base: dict[str, object] = dict(
        elapsed_hours=0.0, work_done_hours=0.0, checkpointed_hours=0.0, work_total_hours=4.0,
        deadline_hours=5.0, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=1 / 6,
        current=spot("a"), overhead_left_hours=0.0,
        zones=(SpotOption("a", "r1", True, 0.3, 0.5),), ondemand_price_per_hour=1.0,
    )
    base.update(kw)
    return JobView(**base)  # type: ignore[arg-type]


def test_dp_point_maps_a_view_onto_the_grid() -> None:
    """4 h job, 5 h deadline, 10-minute ticks, 30-minute checkpoints: slack 6 ticks fits in 64
    units, so a unit is a tick, a segment 3 units, 8 segments; at 1.9 h with 1.5 h saved and
    1.6 h done: 5 segments left, slack (5 - 1.9 - 2.5) / (1/6) = 3.6 units, 1 unit unsaved."""
    v = _view(elapsed_hours=1.9, work_done_hours=1.6, checkpointed_hours=1.5)
    dp = dp_point(v, Memory(), v.zones[0], prior_rate=0.1, prior_down_hours=1.0)
    assert dp is not None
    p = dp.sol.problem
    assert (p.segments, p.seg, p.last, p.slack) == (8, 3, 3, 6)
    assert p.restart == pytest.approx(0.6)
    assert p.price == pytest.approx(0.3)
    assert p.fail == pytest.approx(1 - math.exp(-(1.25 ** round(math.log(0.5) / math.log(1.25))) / 6))
    assert (dp.w, dp.done) == (5, 1)
    assert dp.s == pytest.approx(3.6)
    assert dp_point(_view(deadline_hours=None), Memory(), v.zones[0], prior_rate=0.1,
                    prior_down_hours=1.0) is None


def test_stochastic_off_is_the_default() -> None:
    assert MultiCloud().stochastic is False


edge_problems = st.builds(
    Problem,
    segments=st.integers(1, 4),
    seg=st.integers(1, 3),
    last=st.just(1),
    slack=st.integers(0, 6),
    restart=st.sampled_from((0.5, 1.0, 1.5)),
    fail=st.sampled_from((0.0, 0.3, 1.0)),
    back=st.sampled_from((0.0, 0.5, 1.0)),
    alt=st.sampled_from((0.0, 0.5, 1.0)),
    price=st.floats(0.05, 1.5),
)


@settings(max_examples=200, deadline=None)
@given(edge_problems, st.integers(0, 2), st.floats(0.0, 6.0))
def test_no_value_is_nan_at_certain_outcomes(p: Problem, done: int, s: float) -> None:
    """With probabilities of exactly 0 or 1 (a zone that never fails or always does, another zone
    always or never up), an outcome that cannot happen must weigh nothing even where its value is
    INF: IEEE's 0 x inf is NaN, and a NaN cost compares false with everything, so a decision would
    be taken on garbage. Every value is a number or INF."""
    sol = solve(p)
    for w in range(p.segments + 1):
        for x in (0, 1):
            for slack in (0.0, 0.5, 1.0, 2.5, float(p.slack)):
                assert not math.isnan(sol.wait(w, slack, bool(x))), (w, slack, x)
                assert not math.isnan(sol.start_spot(w, slack)), (w, slack)
                assert not math.isnan(sol.spot_keep(w, slack)), (w, slack)
        assert not math.isnan(sol.mid_segment_keep(w, s, done)), (w, s, done)


def test_a_certain_loss_ignores_the_value_of_keeping() -> None:
    """By hand: a zone that always fails (``fail`` 1) reaches no checkpoint on spot, so the value at a
    boundary is the value after the loss alone, however INF keeping would be; with another zone
    always up (``alt`` 1) that is the up row's value, the down row's INF weighing nothing."""
    from ray_multicloud.policy.stochastic import _boundary, _either

    p = Problem(segments=1, seg=1, last=1, slack=2, restart=1.0, fail=1.0, back=0.0, alt=1.0, price=0.25)
    assert _boundary(INF, (INF, 3.0), p) == 3.0
    assert _either(1.0, 2.0, INF) == 2.0
    assert _either(0.0, INF, 4.0) == 4.0
    assert _either(0.5, 2.0, 4.0) == 3.0
    assert _either(0.5, INF, 4.0) == INF
