"""``MultiCloud.decide`` rule by rule, as exact ``Step``s (choice, reasons, memory) on small
hand-built views: each case sits where one rule of the class docstring flips the decision, so a
mutation of that rule (mutmut, CONTRIBUTING.md "Mutation testing") changes the answer.

Every view is at t = 10 h of a 10 h job (``W``), restart ``r`` = 0.25 h, checkpoints every
``c`` = 1 h, 0.5 h ticks unless a case says otherwise, and is built from its *slack*
(``ondemand_slack`` = D - t - (r + W - saved)): D = t + r + (W - saved) + slack. Numbers are
binary-exact (multiples of 1/16), so the ties below are exact ties. The guards, by hand:

* ``off_ondemand_is_safe(keep=False)``: D - t - tick >= r + W - saved, i.e. slack >= tick;
  with ``keep=True`` the checkpoint the tick reaches (or the finish) counts.
* ``spot_run_viable(keep)``: slack - (0 if keep else r) - min(c, W - saved) + tick >= 0.
* a reserve is r + c = 1.25 h; ``back_reserves`` 0.5 asks slack - r >= 0.625 h.

``MC`` pins the two parameters whose values these hand computations use and the shipped defaults no
longer have (``back_reserves`` 0.5 and ``keep_per_work`` 0.15; tune_policies.py chose 0 and 0.25 after
these tests were written): each case tests a rule at stated values, not whatever is shipped.
"""

from __future__ import annotations

import math

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    MultiCloud,
    SpotOption,
    Step,
    spot,
)

T = 10.0
PINNED = {"back_reserves": 0.5, "keep_per_work": 0.15}


def mc(**params: float) -> MultiCloud:
    """A policy at the pinned values, with ``params`` changed."""
    return MultiCloud(**{**PINNED, **params})


MC = mc()
A, B = "us-east-1a", "us-east-1b"


def zone(name: str, up: bool = True, price: float = 1.0, rate: float | None = None,
         egress: float = 0.0) -> SpotOption:
    return SpotOption(name, "us-east-1" if name.startswith("us-east-1") else name, up, price, rate, egress)


def view(*, slack: float = 4.0, saved: float = 4.0, done: float | None = None, total: float = 10.0,
         restart: float = 0.25, ckpt: float = 1.0, tick: float = 0.5, current: Choice = WAIT,
         zones: tuple[SpotOption, ...] = (), od: float = 3.0, preempted: str = "") -> JobView:
    deadline = T + restart + (total - saved) + slack
    return JobView(
        elapsed_hours=T, work_done_hours=saved if done is None else done, checkpointed_hours=saved,
        work_total_hours=total, deadline_hours=deadline, restart_hours=restart, checkpoint_hours=ckpt,
        tick_hours=tick, current=current, overhead_left_hours=0.0, zones=zones,
        ondemand_price_per_hour=od, preempted=bool(preempted), preempted_zone=preempted,
    )


def mem(*ups: float, idle: float = math.inf) -> Memory:
    return Memory(up_since=tuple(ups), idle_since=idle)


INF = math.inf
LONG_UP = mem(0.0, 0.0)  # both zones up since t = 0: 10 h, past move_min_uptime_hours (0.5)


# --- a finished job, and the zone choice ------------------------------------------------------


def test_finished_job_waits_and_still_tracks_uptime() -> None:
    v = view(saved=10.0, current=spot(A), zones=(zone(A),))
    # up_since starts at now for an available zone; holding a node keeps idle_since at inf
    assert MC.decide(v, Memory()) == Step(WAIT, ("job finished",), mem(T))


def test_zone_choice_weighs_interruptions() -> None:
    # us-east-1a: 1.00 USD/h but 1 interruption per hour: useful hour 1 x (1 + 0.5 x 1 x (0.25 + 0.5))
    # = 1.375 USD, dearer than us-east-1b's 1.20 with no known interruptions.
    v = view(zones=(zone(A, rate=1.0), zone(B, price=1.2)))
    assert MC.decide(v, Memory()) == Step(spot(B), (f"cheapest available spot: {B}",), mem(T, T, idle=T))
    assert mc(hazard_weight=0.0).decide(v, Memory()).choice == spot(A)


def test_running_zone_gone_is_never_kept() -> None:
    # The job's zone went down (no preemption flag): it may not be chosen; B is taken by the idle rule.
    v = view(current=spot(A), zones=(zone(A, up=False), zone(B)))
    assert MC.decide(v, Memory()) == Step(spot(B), (f"cheapest available spot: {B}",), mem(INF, T))


def test_preempted_job_says_where_it_lost_its_node() -> None:
    v = view(zones=(zone(A, up=False), zone(B)), preempted=A)
    assert MC.decide(v, Memory()).reasons == (f"{A} preempted; cheapest available spot: {B}",)


# --- running spot: the two guards -----------------------------------------------------------


def test_keeps_spot_when_the_tick_reaches_a_checkpoint() -> None:
    # 0.625 h unsaved: the tick reaches the checkpoint at 5 h, so the rescue after it needs r + 5 =
    # 5.25 h and D - t - tick = 6.25 - 0.5 = 5.75 h: safe while kept. Slack 0 (a fresh start would
    # need slack >= tick: unsafe).
    v = view(slack=0.0, done=4.625, current=spot(A), zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(spot(A), (f"{A} spot running, slack 0.00h",), mem(T))


def test_guard_leaves_spot_when_a_preemption_would_miss() -> None:
    # slack -0.75: D - t - tick = 5.5 - 0.5 = 5.0 h < 5.25 h needed after the checkpoint at 5 h
    v = view(slack=-0.75, done=4.625, current=spot(A), zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(
        ON_DEMAND, ("slack -0.75h cannot absorb another preemption: on-demand",), mem(T)
    )


def test_at_a_checkpoint_a_kept_node_pays_no_restart() -> None:
    # Kept, the run to the next checkpoint is viable at slack >= 1 - 0.5 = 0.5; restarted it would
    # need 0.75. Slack 0.6875: keep.
    v = view(slack=0.6875, current=spot(A), zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(spot(A), (f"{A} spot running, slack 0.69h",), mem(T))


def test_at_a_checkpoint_spot_that_cannot_reach_the_next_goes_on_demand() -> None:
    # 0.25 h ticks: safe at slack >= 0.25, viable (kept) at slack >= 1 - 0.25 = 0.75. Slack 0.5.
    v = view(slack=0.5, tick=0.25, current=spot(A), zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(
        ON_DEMAND, ("slack 0.50h will not last to the next checkpoint: on-demand now",), mem(T)
    )


# --- running spot: moving to a cheaper zone --------------------------------------------------


def test_no_move_when_the_saving_does_not_pay_back_twice() -> None:
    # gain (1 - 0.9375) x 6 h = 0.375 USD; cost r x 0.9375 = 0.234 USD; 2 x cost = 0.469 > gain: keep
    v = view(current=spot(A), zones=(zone(A), zone(B, price=0.9375)))
    assert MC.decide(v, LONG_UP) == Step(spot(A), (f"{A} spot running, slack 4.00h",), LONG_UP)


def test_move_when_a_small_saving_pays_back() -> None:
    # gain (0.25 - 0.125) x 6 = 0.75 USD (under 1 USD); cost 0.25 x 0.125 = 0.031 USD: move
    v = view(current=spot(A), zones=(zone(A, price=0.25), zone(B, price=0.125)))
    assert MC.decide(v, LONG_UP) == Step(
        spot(B), (f"{B} spot cheaper by 0.75 USD over the job: move",), LONG_UP
    )


def test_no_move_at_exactly_min_payback() -> None:
    # 4 h left; gain (0.5625 - 0.5) x 4 = 0.25 = 2 x (0.25 x 0.5): not more than min_payback x cost
    v = view(saved=6.0, current=spot(A), zones=(zone(A, price=0.5625), zone(B, price=0.5)))
    assert MC.decide(v, LONG_UP).choice == spot(A)


def test_no_move_when_a_restarted_run_cannot_reach_its_checkpoint() -> None:
    # 2 h checkpoints: kept, viable at slack >= 2 - 0.5 = 1.5; restarted, at 1.75. Slack 1.6875:
    # the move (gain 3 USD, back_reserves met: 1.4375 >= 1.125) is refused.
    v = view(slack=1.6875, ckpt=2.0, current=spot(A), zones=(zone(A), zone(B, price=0.5)))
    assert MC.decide(v, LONG_UP) == Step(spot(A), (f"{A} spot running, slack 1.69h",), LONG_UP)


def test_no_move_below_back_reserves() -> None:
    # slack 0.8125: after the restart 0.5625 < 0.5 x 1.25 = 0.625 reserves; viable (0.0625 >= 0)
    v = view(slack=0.8125, current=spot(A), zones=(zone(A), zone(B, price=0.5)))
    assert MC.decide(v, LONG_UP) == Step(spot(A), (f"{A} spot running, slack 0.81h",), LONG_UP)


def test_move_at_exactly_back_reserves() -> None:
    # slack 0.875: after the restart exactly 0.625 = back_reserves x reserve: allowed
    v = view(slack=0.875, current=spot(A), zones=(zone(A), zone(B, price=0.5)))
    assert MC.decide(v, LONG_UP) == Step(
        spot(B), (f"{B} spot cheaper by 3.00 USD over the job: move",), LONG_UP
    )


# --- on-demand: back to spot -----------------------------------------------------------------


def test_on_demand_without_spot_stays() -> None:
    v = view(current=ON_DEMAND, zones=(zone(A, up=False),))
    assert MC.decide(v, Memory()) == Step(
        ON_DEMAND, ("stay on-demand until spot and a checkpoint",), mem(INF)
    )


def test_on_demand_stays_when_spot_saves_too_little() -> None:
    # gain (3 - 2.9375) x 6 = 0.375 USD; 2 x (0.25 x 2.9375) = 1.47 USD
    v = view(current=ON_DEMAND, zones=(zone(A, price=2.9375),))
    assert MC.decide(v, Memory()) == Step(ON_DEMAND, ("slack 4.00h: stay on-demand",), mem(T))


def test_on_demand_stays_below_back_reserves() -> None:
    # slack 0.8125 - r = 0.5625 < 0.625; safe (>= 0.5) and viable (0.0625 >= 0)
    v = view(slack=0.8125, current=ON_DEMAND, zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(ON_DEMAND, ("slack 0.81h: stay on-demand",), mem(T))


def test_on_demand_stays_at_exactly_min_payback() -> None:
    # on-demand 0.5625, spot 0.5, 4 h left: gain 0.25 = 2 x (0.25 x 0.5): not more
    v = view(saved=6.0, current=ON_DEMAND, zones=(zone(A, price=0.5),), od=0.5625)
    assert MC.decide(v, Memory()).choice == ON_DEMAND


def test_on_demand_stays_when_a_restarted_run_cannot_reach_its_checkpoint() -> None:
    # 2 h checkpoints, slack 1.6875: safe, back_reserves met, but a restarted run needs 1.75
    v = view(slack=1.6875, ckpt=2.0, current=ON_DEMAND, zones=(zone(A, price=0.5),))
    assert MC.decide(v, Memory()) == Step(ON_DEMAND, ("slack 1.69h: stay on-demand",), mem(T))


def test_on_demand_stays_when_leaving_it_is_unsafe() -> None:
    # 1 h ticks, 0.5 h of work left: leaving on-demand is safe only at slack >= tick = 1; slack
    # 0.9375 (back_reserves met: 0.6875 >= 0.625; a restarted run finishes: 0.9375 - 0.25 - 0.5 + 1)
    v = view(slack=0.9375, saved=9.5, tick=1.0, current=ON_DEMAND, zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(ON_DEMAND, ("slack 0.94h: stay on-demand",), mem(T))


def test_on_demand_waits_for_the_zone_to_stay_up() -> None:
    policy = mc(back_min_uptime_hours=1.0)
    v = view(current=ON_DEMAND, zones=(zone(A),))
    assert policy.decide(v, mem(8.0)) == Step(
        spot(A), (f"slack 4.00h allows it and {A} spot pays: back to spot",), mem(8.0)
    )
    assert policy.decide(v, mem(9.5)).choice == ON_DEMAND  # up 0.5 h only


# --- idle: wait for the checkpoint's region, carry it, or on-demand --------------------------

HOME_DOWN_AWAY_UP = (zone(A, up=False), zone("us-west-2a", egress=1.0))


def test_no_free_wait_when_waiting_is_unsafe() -> None:
    # Nothing kept (keep 0): patience would be 4 x 0.5 = 2 h; but 1 h ticks and slack 0.5 < tick:
    # waiting is unsafe; spot is unsafe as well: on-demand.
    policy = mc(wait_reserves=0.0, keep_share=0.0, keep_per_work=0.0)
    v = view(slack=0.5, tick=1.0, zones=HOME_DOWN_AWAY_UP, preempted=A)
    assert policy.decide(v, Memory()) == Step(
        ON_DEMAND, (f"{A} preempted; slack 0.50h too low to wait for spot: on-demand",), mem(INF, T, idle=T)
    )


def test_free_wait_just_after_a_preemption() -> None:
    # keep = 1.5 reserves = 1.875 h; slack 2.125: patience 4 x 0.25 / (1 + 0) = 1 h; waited 0 + tick <= 1
    policy = mc(keep_share=0.0, keep_per_work=0.0)
    v = view(slack=2.125, zones=HOME_DOWN_AWAY_UP, preempted=A)
    assert policy.decide(v, Memory()) == Step(
        WAIT,
        (f"{A} preempted; spot only in another region (egress 1.00 USD): wait for the checkpoint's "
         "region, 0.00h of 1.00h waited",),
        mem(INF, T, idle=T),
    )


def test_free_wait_may_use_its_whole_patience() -> None:
    # idle since 9.5: waited 0.5 h + a 0.5 h tick = exactly the 1 h of patience: still waits
    policy = mc(keep_share=0.0, keep_per_work=0.0)
    v = view(slack=2.125, zones=HOME_DOWN_AWAY_UP)
    m = mem(INF, T, idle=9.5)
    assert policy.decide(v, m) == Step(
        WAIT,
        ("spot only in another region (egress 1.00 USD): wait for the checkpoint's region, "
         "0.50h of 1.00h waited",),
        m,
    )
    # idle since 9.25: 0.75 + 0.5 > 1: patience spent, the checkpoint is carried
    assert policy.decide(v, mem(INF, T, idle=9.25)).choice == spot("us-west-2a")


def test_spot_without_egress_is_taken_even_when_barely_cheaper() -> None:
    # 2 h left; on-demand 1.00, spot 0.9375: saves 0.125 USD, less than a restart's 0.234 at the
    # spot price, but no egress: the carry rule does not apply
    v = view(saved=8.0, zones=(zone(A, price=0.9375),), od=1.0)
    assert MC.decide(v, Memory()) == Step(spot(A), (f"cheapest available spot: {A}",), mem(T, idle=T))


def test_carry_refused_when_egress_and_restart_exceed_the_saving() -> None:
    # 2 h left; on-demand 1.00, spot 0.5 elsewhere: saves 1.00 USD; egress 0.90 + 0.25 x 0.5 = 1.025
    # >= 1.00: not carried; no home zone to wait for: wait (slack 4 - tick >= 1.875 kept)
    v = view(saved=8.0, zones=(zone("us-west-2a", price=0.5, egress=0.9),), od=1.0)
    assert MC.decide(v, Memory()) == Step(
        WAIT, ("no spot anywhere, slack 4.00h > 1.88h kept: wait",), mem(T, idle=T)
    )


def test_carry_refused_at_a_tie() -> None:
    # saves 1.00 USD = egress 0.875 + restart 0.125: not carried
    v = view(saved=8.0, zones=(zone("us-west-2a", price=0.5, egress=0.875),), od=1.0)
    assert MC.decide(v, Memory()).choice == WAIT


def test_carry_taken_when_it_pays() -> None:
    # saves 1.00 USD > egress 0.75 + 0.125
    v = view(saved=8.0, zones=(zone("us-west-2a", price=0.5, egress=0.75),), od=1.0)
    assert MC.decide(v, Memory()) == Step(
        spot("us-west-2a"),
        ("cheapest available spot: us-west-2a (egress 0.75 USD to carry the checkpoint)",),
        mem(T, idle=T),
    )


def test_idle_start_unsafe_goes_on_demand() -> None:
    # 1 h ticks: starting spot is safe only at slack >= 1; slack 0.5 (a kept node would reach the
    # checkpoint within the tick, but nothing is kept here)
    v = view(slack=0.5, tick=1.0, zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(
        ON_DEMAND, ("slack 0.50h too low to wait for spot: on-demand",), mem(T, idle=T)
    )


def test_idle_start_that_cannot_reach_a_checkpoint_goes_on_demand() -> None:
    # slack 0.625: safe (>= 0.5) but a started run needs 0.25 + 1 - 0.5 = 0.75
    v = view(slack=0.625, zones=(zone(A),))
    assert MC.decide(v, Memory()) == Step(
        ON_DEMAND, ("slack 0.62h too low to wait for spot: on-demand",), mem(T, idle=T)
    )


def test_waits_with_exactly_the_kept_slack() -> None:
    # keep = 1.5 reserves = 1.875 h; slack 2.375 - tick = 1.875: waits
    policy = mc(keep_share=0.0, keep_per_work=0.0)
    v = view(slack=2.375, zones=(zone(A, up=False),))
    assert policy.decide(v, Memory()) == Step(
        WAIT, ("no spot anywhere, slack 2.38h > 1.88h kept: wait",), mem(INF, idle=T)
    )
