"""``ross`` (``policy.deadline.ROSS``, ROSS of arXiv 2601.14612): its three phases by hand, and its
deadline guarantee. Expected values are computed by hand in the comments; the one random draw is
the standard library's (``random.Random(0).random()`` = 0.8444218515250481, Python's documented
Mersenne Twister), written out here rather than taken from the code under test."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    ROSS,
    VARIANTS,
    WAIT,
    Choice,
    JobView,
    Memory,
    OnDemandOnly,
    SpotOption,
    Step,
    ross_interval,
    ross_ratio,
    spot,
)
from ray_multicloud.sim import JobSpec, simulate
from ray_multicloud.sim.traces import TraceSet

U0 = 0.8444218515250481  # random.Random(0).random()
A = "us-east-1a"


def zone(up: bool, price: float = 1.0) -> SpotOption:
    return SpotOption(A, "us-east-1", up, price)


def view(t: float, *, done: float = 0.0, saved: float | None = None, up: bool = True, current: Choice = WAIT,
         total: float = 3.0, deadline: float | None = 7.0, od: float = 4.0, price: float = 1.0,
         restart: float = 0.0, tick: float = 0.1) -> JobView:
    """A 3 h job with a 7 h deadline, on-demand 4 USD/h and spot 1 USD/h (K = 4), 0.5 h checkpoints."""
    return JobView(
        elapsed_hours=t, work_done_hours=done, checkpointed_hours=done if saved is None else saved,
        work_total_hours=total, deadline_hours=deadline, restart_hours=restart, checkpoint_hours=0.5,
        tick_hours=tick, current=current, overhead_left_hours=0.0, zones=(zone(up, price),),
        ondemand_price_per_hour=od,
    )


def test_ratio_and_interval_by_hand() -> None:
    # (1 + 2 sqrt K) / (1 + sqrt K): K = 4: 5 / 3; K = 9: 7 / 4; K below 1 is taken as 1: 3 / 2.
    assert ross_ratio(4.0) == pytest.approx(5 / 3)
    assert ross_ratio(9.0) == pytest.approx(7 / 4)
    assert ross_ratio(0.5) == pytest.approx(3 / 2)
    # xi1 2 h, 3 h left, K 4: delta = 3 / 3 = 1; start in [2, 2 + 3 - 1]: draw 0.25 -> 2.5.
    assert ross_interval(2.0, 3.0, 4.0, 0.25) == pytest.approx((2.0, 2.5, 3.5))
    assert ross_interval(2.0, 3.0, 4.0, 0.0) == pytest.approx((2.0, 2.0, 3.0))
    # K 9: delta = 3 / 4 = 0.75; start 2 + 0.5 * 2.25 = 3.125.
    assert ross_interval(2.0, 3.0, 9.0, 0.5) == pytest.approx((2.0, 3.125, 3.875))


def test_phases_by_hand() -> None:
    p = ROSS(seed=0)
    # t = 0: (7 - 0) / 3 = 2.33 > 5/3: warm-up, spot up: spot; no interval yet.
    s0 = p.decide(view(0.0), Memory())
    assert s0.choice == spot(A)
    assert s0.memory.ross_interval == ()
    # Spot down at t = 1.9: ratio 5.1 / 3 = 1.7 > 1.667: warm-up (greedy): idle.
    s1 = p.decide(view(1.9, up=False), s0.memory)
    assert (s1.choice, s1.memory.ross_interval) == (WAIT, ())
    # t = 2: 5 / 3 = 5/3: phase 2 at xi1 = 2: delta 1, start 2 + 2 * U0 = 3.6888, end 4.6888.
    s2 = p.decide(view(2.0, up=False), s1.memory)
    assert s2.choice == WAIT
    assert s2.memory.ross_interval == pytest.approx((2.0, 2.0 + 2 * U0, 3.0 + 2 * U0))
    assert "phase 2" in s2.reasons[0]
    # Before the interval: greedy, spot up: spot.
    mem = s2.memory
    assert p.decide(view(3.6, done=0.5, up=True, current=spot(A)), mem).choice == spot(A)
    # In it (3.6888 <= 3.7 < 4.6888): on-demand, spot up or not.
    assert p.decide(view(3.7, done=0.6, saved=0.5, up=True, current=spot(A)), mem).choice == ON_DEMAND
    assert p.decide(view(4.6, done=1.5, up=False, current=ON_DEMAND), mem).choice == ON_DEMAND
    # After it, at a checkpoint: back to spot (time left after the tick 7 - 4.7 - 0.1 = 2.2 >= 3 - 1.5).
    after = p.decide(view(4.7, done=1.5, up=True, current=ON_DEMAND), mem)
    assert after.choice == spot(A)
    assert not after.memory.locked_ondemand
    # ... but not with 0.2 h unsaved (more than a tick): on-demand until the checkpoint.
    held = p.decide(view(4.7, done=1.7, saved=1.5, up=True, current=ON_DEMAND), mem)
    assert held.choice == ON_DEMAND
    assert "next checkpoint" in held.reasons[-1]
    # The interval is fixed once: a later decision keeps it (no second draw).
    assert after.memory.ross_interval == mem.ross_interval


def test_deadline_guard_locks_on_demand() -> None:
    p = ROSS(seed=0)
    past = Memory(ross_interval=(0.0, 0.0, 1.0))
    # t = 5, 1 h done and saved, spot up: after a tick 7 - 5 - 0.1 = 1.9 < 2 h left: on-demand to the end.
    s = p.decide(view(5.0, done=1.0, up=True), past)
    assert s.choice == ON_DEMAND
    assert s.memory.locked_ondemand
    assert p.decide(view(5.1, done=1.1, up=True, current=ON_DEMAND), s.memory).choice == ON_DEMAND
    # 0.1 h earlier the guard holds (2.0 >= 2): spot.
    assert p.decide(view(4.9, done=1.0, up=True), past).choice == spot(A)


def test_k_is_on_demand_over_the_home_zones_spot_price() -> None:
    # od 9, spot 1: K = 9, ratio 7/4. 3 h left: at t = 7 - 5.4 = 1.6 (1.8 > 1.75) still warm-up;
    # at t = 1.75 (5.25 / 3 = 1.75) phase 2, delta = 3 / 4.
    p = ROSS(seed=0)
    assert p.decide(view(1.6, od=9.0), Memory()).memory.ross_interval == ()
    iv = p.decide(view(1.75, od=9.0), Memory()).memory.ross_interval
    assert iv == pytest.approx((1.75, 1.75 + U0 * 2.25, 2.5 + U0 * 2.25))
    # Spot at 2.25 USD/h makes K = 4 again: 5/3 at t = 2, not at 1.75.
    assert p.decide(view(1.75, od=9.0, price=2.25), Memory()).memory.ross_interval == ()


def test_uniform_warmup() -> None:
    g, u = ROSS(), ROSS(warmup="uniform")
    # t = 1, nothing done, no spot: behind 3 * 1 / 7 = 0.43: uniform runs on-demand, greedy idles.
    assert u.decide(view(1.0, up=False), Memory()).choice == ON_DEMAND
    assert g.decide(view(1.0, up=False), Memory()).choice == WAIT
    # 0.5 h done is ahead of 0.43: uniform idles too; on on-demand it stays until spot returns.
    assert u.decide(view(1.0, done=0.5, up=False), Memory()).choice == WAIT
    assert u.decide(view(1.0, done=0.5, up=False, current=ON_DEMAND), Memory()).choice == ON_DEMAND
    assert u.decide(view(1.0, done=0.5, up=True, current=ON_DEMAND), Memory()).choice == spot(A)


def test_uniform_warmup_ends_with_phase_2() -> None:
    # Interval drawn at xi1 = 2 (as in test_phases_by_hand), t = 3 before it: nothing done is behind
    # 3 * 3 / 7 = 1.29, spot down; the warm-up is over, so greedy: idle (the guard holds: 7 - 3 - 0.1 =
    # 3.9 >= 3 h left). Without the interval the uniform rule would run on-demand.
    drawn = Memory(ross_interval=(2.0, 2.0 + 2 * U0, 3.0 + 2 * U0))
    assert ROSS(warmup="uniform").decide(view(3.0, up=False), drawn).choice == WAIT
    assert ROSS(warmup="uniform").decide(view(1.0, up=False), Memory()).choice == ON_DEMAND


def test_no_deadline_and_finished() -> None:
    p = ROSS()
    assert p.decide(view(1.0, deadline=None), Memory()).choice == spot(A)
    assert p.decide(view(1.0, deadline=None, up=False), Memory()).choice == WAIT
    assert p.decide(view(1.0, done=3.0), Memory()).choice == WAIT
    assert VARIANTS["ross"] == ROSS()


def one_zone(avail: list[int], price: float = 1.0) -> TraceSet:
    n = len(avail)
    return TraceSet(names=(A,), regions=("us-east-1",), files=("f",), gap_seconds=3600.0,
                    counts=np.array([avail], dtype=np.int64), spot_prices=np.full((1, n), price),
                    priced_by_file=(True,))


def test_simulated_job_by_hand() -> None:
    # Hourly ticks, no restart, checkpoints on notice, spot 1 USD/h, on-demand 4 (K = 4); 3 h of work,
    # 7 h deadline; spot down in hours 0-2, up after. Seed 0: U0.
    # t = 0, 1: ratios 7/3, 6/3 > 5/3: idle. t = 2: 5/3: xi1 = 2, I = [3.69, 4.69); idle.
    # t = 3: spot (1 USD, 1 h done). t = 4: in I: on-demand (4 USD, 2 h). t = 5: spot (guard: after the
    # tick 1 h left >= 1 h of work): 1 USD, done at 6 h. 6 USD.
    ts = one_zone([0, 0, 0, 1, 1, 1, 1, 1])
    spec = JobSpec(work_hours=3, deadline_hours=7, checkpoint_minutes=60, restart_minutes=0,
                   checkpoint_on_notice=True)
    r = simulate(ts, spec, ROSS(seed=0), ondemand_price=4.0)
    assert (r.cost_usd, r.hours_elapsed, r.met_deadline) == (pytest.approx(6.0), 6.0, True)


@settings(max_examples=150, deadline=None)
@given(
    avail=st.lists(st.integers(0, 1), min_size=40, max_size=40),
    work=st.integers(1, 12),
    slack=st.integers(0, 12),
    restart=st.sampled_from([0, 15, 30, 60]),
    ckpt=st.sampled_from([15, 30, 60, 120]),
    notice=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    warmup=st.sampled_from(["greedy", "uniform"]),
    od=st.sampled_from([1.5, 3.0, 10.0]),
)
def test_never_misses_a_deadline_on_demand_could_meet(
    avail: list[int], work: int, slack: int, restart: int, ckpt: int, notice: bool, seed: int, warmup: str,
    od: float,
) -> None:
    """The deadline guarantee: whenever on-demand from the first tick meets the deadline (the
    reference, ``ondemand``), ``ross`` meets it too, for any trace, draw and job model."""
    ts = one_zone(avail)
    spec = JobSpec(work_hours=work, deadline_hours=work + restart / 60 + slack * 0.5, checkpoint_minutes=ckpt,
                   restart_minutes=restart, checkpoint_on_notice=notice)
    ref = simulate(ts, spec, OnDemandOnly(), ondemand_price=od)
    if not ref.met_deadline:
        return
    r = simulate(ts, spec, ROSS(seed=seed, warmup=warmup), ondemand_price=od)
    assert r.met_deadline, (r.hours_elapsed, spec)


def test_guard_starts_on_demand_when_a_spot_start_could_not_be_rescued() -> None:
    # 3 h of work, deadline 4 h, a 1 h restart: exactly on-demand from t = 0 (1 + 3 h). Spot is up at
    # t = 0 and greedy would take it, but after that tick 3 h would be left for a 1 h restart and 3 h of
    # work: not safe, so on-demand at t = 0, locked: done at 4 h, 4 ticks at 4 USD = 16 USD.
    ts = one_zone([1, 0, 0, 0, 0, 0])
    spec = JobSpec(work_hours=3, deadline_hours=4, checkpoint_minutes=60, restart_minutes=60)
    r = simulate(ts, spec, ROSS(seed=0), ondemand_price=4.0)
    assert (r.met_deadline, r.hours_elapsed, r.cost_usd) == (True, 4.0, pytest.approx(16.0))
    # The same view, asked directly: on-demand, locked.
    v = view(0.0, total=3.0, deadline=4.0, restart=1.0, tick=1.0)
    s = ROSS(seed=0).decide(v, Memory())
    assert (s.choice, s.memory.locked_ondemand) == (ON_DEMAND, True)


# --- contracts that mutation testing (mutmut, CONTRIBUTING.md) found untested -------------------

PAST = Memory(ross_interval=(0.0, 0.0, 0.1))  # phase 2 begun, its interval over


def test_reasons_and_memory_by_hand() -> None:
    p = ROSS(seed=0)
    done = Memory(home_zone=A)
    assert p.decide(view(6.0, done=3.0), done) == Step(WAIT, ("job finished",), done)
    locked = Memory(home_zone=A, locked_ondemand=True)
    assert p.decide(view(1.0), locked) == Step(ON_DEMAND, ("deadline guard: on-demand to the end",), locked)
    home = Memory(home_zone=A)
    assert p.decide(view(1.0, deadline=None), Memory()) == Step(spot(A), (f"{A} spot available",), home)
    assert p.decide(view(1.0, deadline=None, up=False), Memory()) == Step(
        WAIT, ("no deadline: wait for spot",), home)
    # Phase 2 at t = 2 (5 / 3 = 5/3), the interval [2 + 2 U0, 3 + 2 U0) written to 3 decimals.
    s = p.decide(view(2.0, up=False), Memory())
    assert s.reasons == ("phase 2 at xi1=2.000 h (K=4.00): on-demand in I(delta)=[3.689, 4.689) h",
                         "no spot: idle (greedy)")
    inside = Memory(home_zone=A, ross_interval=(0.0, 1.0, 2.0))
    assert p.decide(view(1.5), inside).reasons == ("randomized on-demand injection: t in I(delta)",)
    held = p.decide(view(2.5, done=0.7, saved=0.5, current=ON_DEMAND), inside)
    assert held.reasons == ("on-demand until its next checkpoint (leaving now loses work)",)
    u = ROSS(warmup="uniform").decide(view(1.0, up=False), Memory())
    assert u.reasons == ("uniform warm-up: no spot, behind L t / D (left only for spot)",)
    g = p.decide(view(5.0, done=1.0, up=True), PAST)
    assert g.reasons == ("deadline guard: off on-demand would not be safe: on-demand to the end",)


def test_interval_bounds_at_the_tick() -> None:
    p = ROSS(seed=0)
    mem = Memory(home_zone=A, ross_interval=(0.0, 1.0, 2.0))
    # A decision exactly at the start is in the interval; exactly at the end it is not (at a checkpoint:
    # back to spot).
    assert p.decide(view(1.0, done=0.5), mem).choice == ON_DEMAND
    assert p.decide(view(2.0, done=1.0, current=ON_DEMAND), mem).choice == spot(A)


def test_interval_length_clamps_k_below_one() -> None:
    # K 1.5: delta = 3 / (1 + sqrt 1.5) = 1.3485; K 0.5 is taken as 1: delta 1.5.
    assert ross_interval(0.0, 3.0, 1.5, 0.0)[2] == pytest.approx(3 / (1 + 1.5**0.5))
    assert ross_interval(0.0, 3.0, 0.5, 0.0)[2] == pytest.approx(1.5)


def test_configured_home_zone_and_missing_or_free_spot_prices() -> None:
    b = SpotOption("us-east-1b", "us-east-1", True, 0.5)
    v = replace(view(0.0), zones=(zone(True), b))
    # Unconfigured: the cheapest available (us-east-1b); configured: us-east-1a.
    assert ROSS().decide(v, Memory()).choice == spot("us-east-1b")
    assert ROSS(home_zone=A).decide(v, Memory()).choice == spot(A)
    # A home zone missing from the view: K = 1 (its price taken as on-demand's): ratio 3/2. 3 h left:
    # at t = 2.6 (4.4 / 3 = 1.47) phase 2, delta 1.5, start 2.6 + 1.5 U0.
    gone = ROSS(home_zone="us-west-2a", seed=0).decide(view(2.6), Memory())
    assert gone.memory.ross_interval == pytest.approx((2.6, 2.6 + 1.5 * U0, 4.1 + 1.5 * U0))
    assert ROSS(home_zone="us-west-2a").decide(view(2.3), Memory()).memory.ross_interval == ()  # 1.57
    # Free spot: K taken as 1e12: the ratio is just under 2 and delta about 0.
    free = ROSS(seed=0).decide(view(1.1, price=0.0), Memory()).memory.ross_interval  # 5.9 / 3 = 1.97
    assert free[0] == 1.1 and free[2] - free[1] == pytest.approx(3e-6, rel=1e-3)
    assert ROSS(seed=0).decide(view(0.9, price=0.0), Memory()).memory.ross_interval == ()  # 6.1 / 3


def test_uniform_line_by_hand() -> None:
    u = ROSS(warmup="uniform")
    # t = 3.5: the line is 3 * 3.5 / 7 = 1.5 h: on it is not behind (idle); 0.2 h at t = 1 is behind 3/7.
    assert u.decide(view(3.5, done=1.5, up=False), Memory()).choice == WAIT
    assert u.decide(view(1.0, done=0.2, up=False), Memory()).choice == ON_DEMAND


def test_keeps_a_spot_node_with_unsaved_work_and_the_guard_counts_its_next_checkpoint() -> None:
    p = ROSS(seed=0)
    # On spot with 0.3 h unsaved: kept (only leaving on-demand waits for a checkpoint).
    assert p.decide(view(3.0, done=0.8, saved=0.5, current=spot(A)), PAST).choice == spot(A)
    # t = 5.6, 1.95 h done, 1.5 saved: kept, the tick reaches the 2.0 h checkpoint, after which 1.3 h are
    # left for 1 h of work: safe. A fresh start would keep 1.5 h: 1.3 < 1.5: not safe.
    kept = p.decide(view(5.6, done=1.95, saved=1.5, current=spot(A)), PAST)
    assert (kept.choice, kept.memory.locked_ondemand) == (spot(A), False)
    fresh = p.decide(view(5.6, done=1.95, saved=1.5), PAST)
    assert (fresh.choice, fresh.memory.locked_ondemand) == (ON_DEMAND, True)
