"""The age-conditioned stochastic programme (``policy.stochastic.solve_age``) and its online model
(``policy.deadline.age_model`` / ``bucket_rates`` / ``_track_ages``): hand-computed tiny cases,
the memoryless programme as an independent reference (one bucket each way must reproduce
``solve`` exactly), and properties (monotone in slack and work, finite exactly where on-demand
can finish, a job following the programme on its own model never runs out of slack)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.deadline import (
    JobView,
    Memory,
    MultiCloud,
    SpotOption,
    _track_ages,
    age_bucket,
    bucket_rates,
    dp_point,
    spot,
)
from ray_multicloud.policy.stochastic import INF, AgeProblem, AgeSolution, Problem, solve, solve_age

# States: 0 down; 1 up and young (lost with 1/2 per unit, old after one unit); 2 up and old
# (never lost). One segment of 3 units, slack 4, restart 1, spot at half the on-demand price.
YOUNG_OLD = AgeProblem(segments=1, seg=3, last=3, slack=4, restart=1.0, price=0.5,
                       up_fail=(0.5, 0.0), up_adv=(1.0, 0.0), down_back=(0.0,), down_adv=(0.0,),
                       alt=0.0, alt_state=1)


def test_a_young_zone_is_priced_by_its_age() -> None:
    """By hand. After a loss spot never returns (back 0): idle(1, s, down) = 1 + ods = 1 + 3 = 4 for
    s >= 1 (waiting only postpones the same). Keeping a young zone: lost at the start of unit 2
    with 1/2 (0.5 paid, then 4), else it is old and safe: 0.5 * 4.5 + 0.5 * 1.5 = 3.0. An old
    zone: 1.5. The memoryless chain with fail 1/2 at every unit: 0.5 * 4.5 + 0.25 * (1.0 + 4)
    + 0.25 * 1.5 = 3.875."""
    sol = solve_age(YOUNG_OLD)
    assert sol.idle[1][3][0] == pytest.approx(4.0)
    assert sol.cont[1][4][1] == pytest.approx(3.0)
    assert sol.cont[1][4][2] == pytest.approx(1.5)
    assert sol.cont[1][4][0] == INF  # no spot held in a down state
    assert sol.spot_keep(1, 4, 1) == pytest.approx(3.0)
    assert sol.spot_leave(1, 4, 1) == pytest.approx(4.0)  # restart 1 + three units on-demand
    memoryless = solve(Problem(segments=1, seg=3, last=3, slack=4, restart=1.0, fail=0.5, back=0.0,
                               alt=0.0, price=0.5))
    assert memoryless.cont[1][4] == pytest.approx(3.875)
    # mid-segment: one unit in, a young zone has become old: the two units left are safe
    assert sol.mid_segment_keep(1, 3.0, 1, 2) == pytest.approx(1.0)


def test_an_outage_is_priced_by_its_age() -> None:
    """States: 0 an outage just begun (never ends in its first unit, then moves on), 1 an outage
    one unit old (ends surely at the next unit), 2 up (never lost). One segment of one unit, slack
    3, restart 1, spot at 0.25. By hand: sp(1, s >= 1) = 0.25; idle(1, s, up) = 2 at s = 1, else
    0.25 + 0.25 = 0.5; idle(1, 1, .) = 2 (only on-demand: 1 + 1); idle(1, 2, old outage) =
    min(2, wait -> idle(1, 1, up) = 2) = 2; idle(1, 3, old outage) = wait -> idle(1, 2, up) = 0.5;
    idle(1, 3, new outage) = min(2, wait -> idle(1, 2, old outage) = 2) = 2. The memoryless chain
    with back 1/2: min(2, 0.5 * 0.5 + 0.5 * 2) = 1.25 for both."""
    p = AgeProblem(segments=1, seg=1, last=1, slack=3, restart=1.0, price=0.25, up_fail=(0.0,),
                   up_adv=(0.0,), down_back=(0.0, 1.0), down_adv=(1.0, 0.0), alt=0.0, alt_state=2)
    sol = solve_age(p)
    assert sol.sp[1][1][2] == pytest.approx(0.25)
    assert sol.idle[1][1] == pytest.approx((2.0, 2.0, 2.0))
    assert sol.idle[1][2] == pytest.approx((2.0, 2.0, 0.5))
    assert sol.idle[1][3] == pytest.approx((2.0, 0.5, 0.5))
    assert sol.wait(1, 3, 1) == pytest.approx(0.5)
    assert sol.wait(1, 3, 0) == pytest.approx(2.0)
    memoryless = solve(Problem(segments=1, seg=1, last=1, slack=3, restart=1.0, fail=0.0, back=0.5,
                               alt=0.0, price=0.25))
    assert memoryless.idle[1][3][0] == pytest.approx(1.25)


def test_rows_are_memoised_and_filled_only_as_far_as_asked() -> None:
    """A problem asked with fewer segments reads the same rows as one asked with more."""
    big = AgeProblem(segments=6, seg=2, last=1, slack=9, restart=1.5, price=0.3,
                     up_fail=(0.4, 0.1), up_adv=(0.5, 0.0), down_back=(0.2, 0.6), down_adv=(1.0, 0.0),
                     alt=0.3, alt_state=3)
    small = solve_age(AgeProblem(**{**{f: getattr(big, f) for f in big.__slots__}, "segments": 3}))
    full = solve_age(big)
    assert small.idle == full.idle[:4]
    assert small.sp == full.sp[:4]


probs = st.floats(0.0, 1.0)
age_problems = st.builds(
    lambda seg_last, slack, restart, price, extra, uf, ua, db, da, alt, alt_b: AgeProblem(
        segments=3, seg=seg_last[0], last=seg_last[1], slack=slack, restart=restart, price=price,
        up_fail=tuple(uf), up_adv=tuple(ua[: len(uf)]) + (0.0,) * (len(uf) - len(ua[: len(uf)])),
        down_back=tuple(db), down_adv=tuple(da[: len(db)]) + (0.0,) * (len(db) - len(da[: len(db)])),
        alt=alt, alt_state=len(db) + min(alt_b, len(uf) - 1), extra=extra),
    st.integers(1, 3).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
    st.integers(0, 8), st.sampled_from((0.5, 1.0, 1.5, 2.0)), st.floats(0.05, 1.5),
    st.sampled_from((0.0, 0.5)),
    st.lists(probs, min_size=1, max_size=3), st.lists(probs, max_size=3),
    st.lists(probs, min_size=1, max_size=3), st.lists(probs, max_size=3), probs, st.integers(0, 2),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 8), st.sampled_from((0.5, 1.0, 1.3, 2.0)),
       probs, probs, probs, st.floats(0.05, 1.5), st.sampled_from((0.0, 0.5)))
def test_one_bucket_each_way_is_the_memoryless_programme(
    segments: int, seg: int, slack: int, restart: float, fail: float, back: float, alt: float,
    price: float, extra: float,
) -> None:
    """``solve`` (written first, tested by hand on its own) is the reference: with one up and one
    down bucket the age-conditioned chain is the two-state chain, so every table must agree."""
    ref = solve(Problem(segments=segments, seg=seg, last=seg, slack=slack, restart=restart, fail=fail,
                        back=back, alt=alt, price=price, extra=extra))
    got = solve_age(AgeProblem(segments=segments, seg=seg, last=seg, slack=slack, restart=restart,
                               price=price, up_fail=(fail,), up_adv=(0.0,), down_back=(back,),
                               down_adv=(0.0,), alt=alt, alt_state=1, extra=extra))
    for w in range(segments + 1):
        for s in range(slack + 1):
            for name in ("ods", "od", "idle"):
                assert getattr(got, name)[w][s] == pytest.approx(getattr(ref, name)[w][s])
            assert got.sp[w][s][1] == pytest.approx(ref.sp[w][s])


@settings(max_examples=120, deadline=None)
@given(age_problems)
def test_age_values_are_monotone_and_finite_exactly_where_ondemand_finishes(p: AgeProblem) -> None:
    sol = solve_age(p)
    for w in range(1, p.segments + 1):
        for s in range(p.slack + 1):
            for m in range(p.states):
                v = sol.idle[w][s][m]
                assert (v < INF) == (s >= p.restart - 1e-9)
                assert sol.od[w][s][m] <= (w - 1) * p.seg + p.last + 1e-9
                if s > 0:
                    assert v <= sol.idle[w][s - 1][m] + 1e-9  # more slack never costs more
                if w > 1:
                    assert v >= sol.idle[w - 1][s][m] - 1e-9  # more work never costs less


def _next(p: AgeProblem, m: int, rng: random.Random) -> int:
    x, acc = rng.random(), 0.0
    for to, pr in p.rows()[m]:
        acc += pr
        if x < acc:
            return to
    return p.rows()[m][-1][0]


def _follow(p: AgeProblem, sol: AgeSolution, rng: random.Random) -> float:
    """Run a job from idle with a fresh zone up by the programme's cheapest action, spot drawn from
    the model's own chain; the slack left at the end (time in units, restarts exact)."""
    w, s, mode, m = p.segments, float(p.slack), "idle", p.up_state(0)
    up = p.is_up
    for _ in range(1000):
        if w == 0:
            return s
        n = p.last if w == 1 else p.seg
        if mode == "idle":
            opts = {"wait": sol.wait(w, s, m), "od": sol.start_ondemand(w, s, m)}
            if up(m):
                opts["spot"] = sol.start_spot(w, s, m)
            act = min(opts, key=lambda k: opts[k])
            assert opts[act] < INF
            if act == "wait":
                s, m = s - 1, _next(p, m, rng)
            else:
                s, mode = s - p.restart, ("od" if act == "od" else "spot")
            continue
        if mode == "od":
            if up(m) and sol.start_spot(w, s, m) < sol.ondemand_stay(w, s, m):
                s, mode = s - p.restart, "spot"
                continue
            assert sol.ondemand_stay(w, s, m) < INF
            for _ in range(n):
                m = _next(p, m, rng)
            w -= 1
            continue
        keep, leave = sol.spot_keep(w, s, m), sol.spot_leave(w, s, m)
        assert min(keep, leave) < INF
        if leave < keep:
            s, mode = s - p.restart, "od"
            for _ in range(n):
                m = _next(p, m, rng)
            w -= 1
            continue
        lost = 0
        for j in range(1, n + 1):  # the first unit is known up; each later transition may lose it
            m = _next(p, m, rng)
            if not up(m):
                lost = j
                break
        if lost and lost < n:
            s, mode = s - lost, "idle"
            m = p.alt_state if rng.random() < p.alt else p.down_state(0)
            continue
        w -= 1
        if lost == n:  # lost at the checkpoint: nothing unsaved
            mode = "idle"
            m = p.alt_state if rng.random() < p.alt else p.down_state(0)
    return s


@settings(max_examples=60, deadline=None)
@given(age_problems, st.integers(0, 2**31 - 1))
def test_following_the_age_programme_never_misses_a_feasible_deadline(p: AgeProblem, seed: int) -> None:
    if p.slack < p.restart:
        return
    sol = solve_age(p)
    rng = random.Random(seed)
    for _ in range(5):
        assert _follow(p, sol, rng) >= -1e-9


def test_bucket_rates_by_hand() -> None:
    """Failures 0.1, 0.2 and 2 h, none censored, buckets (0, 0.25], (0.25, 1], (1, inf), no prior:
    Nelson-Aalen h(0.1) = 1/3, h(0.2) = 1/2, h(2) = 1. Bucket 0: H(0.25) = 5/6 over 0.25 h:
    3.33 per hour; bucket 1: nothing: 0; bucket 2: H(2) - H(1) = 1 over the 1 h observed: 1.0.
    With a prior of 0.5 per hour worth 1 h: bucket 0's exposure is 0.1 + 0.2 + 0.25 = 0.55 h,
    (0.55 * 3.33 + 0.5) / 1.55 = 1.505; bucket 2's 1 h: (1 + 0.5) / 2 = 0.75."""
    got = bucket_rates((0.1, 0.2, 2.0), (), prior_rate=0.0, prior_hours=0.0, edges=(0.25, 1.0))
    assert got == pytest.approx((10 / 3, 0.0, 1.0))
    got = bucket_rates((0.1, 0.2, 2.0), (), prior_rate=0.5, prior_hours=1.0, edges=(0.25, 1.0))
    # bucket 1: no event in its 0.75 h of exposure (the 2 h run): 0.5 / 1.75
    assert got == pytest.approx(((0.55 * 10 / 3 + 0.5) / 1.55, 0.5 / 1.75, 0.75))
    # censored runs add exposure, not events: one run still up at 0.5 h, nothing failed: prior only
    assert bucket_rates((), (0.5,), prior_rate=0.2, prior_hours=1.0, edges=(0.25, 1.0)) == pytest.approx(
        (0.2 / 1.25, 0.2 / 1.25, 0.2))
    ages = (0.0, 0.24, 0.25, 0.9, 1.0, 3.9, 4.0, math.inf)
    assert [age_bucket(x) for x in ages] == [0, 0, 1, 1, 2, 2, 3, 3]


def _zones(*up: bool) -> tuple[SpotOption, ...]:
    return tuple(SpotOption(z, "r1", u, 0.3, 0.5) for z, u in zip("abc", up, strict=False))


def _view(now: float, zones: tuple[SpotOption, ...], **kw: object) -> JobView:
    base: dict[str, object] = dict(
        elapsed_hours=now, work_done_hours=0.0, checkpointed_hours=0.0, work_total_hours=4.0,
        deadline_hours=5.0, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=1 / 6,
        current=spot("a"), overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=1.0,
    )
    base.update(kw)
    return JobView(**base)  # type: ignore[arg-type]


def test_track_ages_records_lifetimes_and_outages() -> None:
    """a up at first sight (start unknown: no lifetime when it ends), b comes up at 1 h and goes
    down at 1.5 h (a lifetime of 0.5 h), then nothing is up from 2 h to 3 h (an outage of 1 h)."""
    seq = [(0.0, (True, False)), (1.0, (True, True)), (1.5, (True, False)), (2.0, (False, False)),
           (2.5, (False, False)), (3.0, (False, True))]
    mem = Memory()
    for now, up in seq:
        mem = _track_ages(_view(now, _zones(*up)), mem, mem)
    assert mem.lifetimes == (0.5,)
    assert mem.outages == (1.0,)
    assert mem.born == (math.inf, 3.0)
    assert mem.outage_since == math.inf


def test_dp_point_age_places_the_zone_in_its_bucket() -> None:
    """A zone that came up 10 minutes ago is in the first uptime bucket; one up when first seen,
    in the last; with no zone up, the outage's age picks the downtime bucket."""
    zones = _zones(True, True)
    mem = Memory(born=(1.0 - 1 / 6, -math.inf))
    v = _view(1.0, zones)
    young = dp_point(v, mem, zones[0], prior_rate=0.1, prior_down_hours=1.0, age_prior_hours=2.0)
    old = dp_point(v, mem, zones[1], prior_rate=0.1, prior_down_hours=1.0, age_prior_hours=2.0)
    assert young is not None and old is not None
    assert isinstance(young.sol, AgeSolution)
    kd = len(young.sol.problem.down_back)
    assert (young.up_state, old.up_state) == (kd, kd + 3)
    down = _zones(False, False)
    idle = dp_point(_view(1.0, down, current=spot("a")), Memory(born=(math.inf, math.inf), outage_since=0.5),
                    zones[0], prior_rate=0.1, prior_down_hours=1.0, age_prior_hours=2.0)
    assert idle is not None and idle.down_state == 1  # an outage 0.5 h old: (0.25, 1]


def test_stochastic_age_is_off_by_default() -> None:
    assert MultiCloud().stochastic_age is False
