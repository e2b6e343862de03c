"""``skynomad-rate``'s decisions (``policy.deadline.SkyNomadRate``, the earlier, simplified reading
of SkyNomad's policy, kept for comparison; the paper's is ``SkyNomad``, tests/test_skynomad.py), each
Step exactly, on hand-computed utilities. Mutation testing (mutmut, CONTRIBUTING.md) found its choice rules and reasons loosely
tested. Every view: on-demand 3 USD/h, a 0.25 h cold start, half-hour ticks, now t = 1 h.

Utilities (the class docstring): V = C_od * ((P - p) / (T - t)) / (p / t); spot with rate r:
L = 1 / r, U = V (L - d)+ / L - C - E / L (no rate: U = V - C); on-demand V - C_od; idle 0."""

from __future__ import annotations

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    SkyNomadRate,
    SpotOption,
    Step,
    spot,
)

A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"


def view(zones: tuple[SpotOption, ...], *, p: float, total: float, current: Choice = WAIT,
         saved: float | None = None, over: float = 0.0, deadline: float = 10.0) -> JobView:
    return JobView(
        elapsed_hours=1.0, work_done_hours=p, checkpointed_hours=p if saved is None else saved,
        work_total_hours=total, deadline_hours=deadline, restart_hours=0.25, checkpoint_hours=0.5,
        tick_hours=0.5, current=current, overhead_left_hours=over, zones=zones, ondemand_price_per_hour=3.0,
    )


def opt(
    zone: str, price: float, rate: float | None = None, egress: float = 0.0, up: bool = True
) -> SpotOption:
    return SpotOption(zone, "us-east-1", up, price, rate, egress)


def decide(v: JobView, memory: Memory | None = None) -> Step:
    return SkyNomadRate().decide(v, Memory() if memory is None else memory)


def test_the_best_spot_zone_by_utility() -> None:
    # p = 1 of 4 h at t = 1 with T = 10: V = 3 * (3 / 9) / (1 / 1) = 1.0 USD/h.
    # a: no rate: 1 - 0.5 = 0.5. b: r 0.5 -> L 2: 1 * 1.75 / 2 - 0.4 - 0.2 / 2 = 0.375.
    # c: down (price 0.1 would win). On-demand 1 - 3 = -2. Idle 0. -> a.
    step = decide(view((opt(A, 0.5), opt(B, 0.4, 0.5, 0.2), opt(C, 0.1, up=False)), p=1.0, total=4.0))
    assert step.choice == spot(A)
    assert step.reasons == ("V=1.00 USD/h of progress: us-east-1a spot has the highest utility (0.50)",)


def test_a_zone_with_rate_0_counts_as_never_interrupted() -> None:
    # b: rate 0 -> U = V - C = 1 - 0.4 = 0.6 > a's 0.5.
    step = decide(view((opt(A, 0.5), opt(B, 0.4, 0.0)), p=1.0, total=4.0))
    assert step.reasons == ("V=1.00 USD/h of progress: us-east-1b spot has the highest utility (0.60)",)


def test_the_current_spot_node_is_kept_on_a_tie() -> None:
    # On a: U 1 - 0.5 = 0.5 (no cold start left); b: the same 0.5: not better -> keep a.
    step = decide(view((opt(A, 0.5), opt(B, 0.5)), p=1.0, total=4.0, current=spot(A)))
    assert step.choice == spot(A)
    assert step.reasons == ("V=1.00 USD/h of progress: us-east-1a spot has the highest utility (0.50)",)


def test_the_current_spot_node_is_scored_with_its_own_cold_start_left() -> None:
    # On a (r 1 -> L 1) with 0.25 h of cold start left: 1 * 0.75 / 1 - 0.1 = 0.65. b (r 1, price
    # 0.05, a fresh cold start 0.25): 0.75 - 0.05 = 0.70 > 0.65 -> b.
    step = decide(view((opt(A, 0.1, 1.0), opt(B, 0.05, 1.0)), p=1.0, total=4.0, current=spot(A), over=0.25))
    assert step.reasons == ("V=1.00 USD/h of progress: us-east-1b spot has the highest utility (0.70)",)
    # with no cold start left a scores 1 - 0.1 = 0.9: kept
    kept = decide(view((opt(A, 0.1, 1.0), opt(B, 0.05, 1.0)), p=1.0, total=4.0, current=spot(A)))
    assert kept.reasons == ("V=1.00 USD/h of progress: us-east-1a spot has the highest utility (0.90)",)


def test_a_dear_spot_node_is_left_for_a_better_zone() -> None:
    # On a at 2.0: 1 - 2 = -1; b: 1 - 0.5 = 0.5 -> b.
    step = decide(view((opt(A, 2.0), opt(B, 0.5)), p=1.0, total=4.0, current=spot(A)))
    assert step.choice == spot(B)


def test_on_demand_when_far_behind() -> None:
    # p = 0.1 of 4 h: V = 3 * (3.9 / 9) / 0.1 = 13.0. a (r 1, L 1): 13 * 0.75 - 1 = 8.75;
    # on-demand 13 - 3 = 10 -> on-demand.
    step = decide(view((opt(A, 1.0, 1.0),), p=0.1, total=4.0))
    assert step.choice == ON_DEMAND
    assert step.reasons == ("V=13.00 USD/h of progress: on-demand has the highest utility (10.00)",)


def test_idle_when_every_option_loses_money() -> None:
    # p = 1 of 2 h: V = 3 * (1 / 9) / 1 = 0.333. a: 0.333 - 1 < 0; on-demand < 0 -> wait.
    step = decide(view((opt(A, 1.0),), p=1.0, total=2.0))
    assert step.choice == WAIT
    assert step.reasons == ("V=0.33 USD/h of progress: wait has the highest utility (0.00)",)


def test_finished_locked_and_safety_net_steps_exactly() -> None:
    done = decide(view((opt(A, 1.0),), p=2.0, total=2.0, current=spot(A)))
    assert (done.choice, done.reasons) == (WAIT, ("job finished (thrifty rule)",))
    assert done.memory.up_since == (1.0,)  # a up, seen at t = 1
    locked = Memory(locked_ondemand=True)
    step = decide(view((opt(A, 1.0),), p=1.0, total=4.0, current=ON_DEMAND), locked)
    assert step == Step(ON_DEMAND, ("safety net: on-demand until completion",),
                        Memory(locked_ondemand=True, up_since=(1.0,)))
    # Idle with 9 h left and 8.4 h of work: one more tick idle leaves 8.5 h < 8.4 + 0.25 -> the
    # net fires (with two cold starts it would need 8.9 > 9: it would not yet).
    net = decide(view((opt(A, 0.1),), p=0.0, total=8.4))
    assert net.choice == ON_DEMAND
    assert net.reasons == ("safety net: time left < work left + d: on-demand until completion",)
    assert net.memory.locked_ondemand


def test_idle_also_replaces_a_current_placement_that_loses_money() -> None:
    # On on-demand with V = 0.333 (as above): on-demand 0.333 - 3 < 0, a 0.333 - 1 < 0 -> wait.
    step = decide(view((opt(A, 1.0),), p=1.0, total=2.0, current=ON_DEMAND))
    assert step.choice == WAIT
    assert step.reasons == ("V=0.33 USD/h of progress: wait has the highest utility (0.00)",)


def test_a_placement_at_utility_0_is_kept_and_ties_keep_spot_over_on_demand() -> None:
    # On a at price 1.0 with V = 1.0: U = 0, not below 0: kept (idle is not better).
    step = decide(view((opt(A, 1.0),), p=1.0, total=4.0, current=spot(A)))
    assert step.reasons == ("V=1.00 USD/h of progress: us-east-1a spot has the highest utility (0.00)",)
    # V = 13 (far behind): a at 3.0 with no rate: U = 13 - 3 = 10, on-demand 13 - 3 = 10: a tie,
    # on-demand is not better -> a.
    tie = decide(view((opt(A, 3.0),), p=0.1, total=4.0))
    assert tie.reasons == ("V=13.00 USD/h of progress: us-east-1a spot has the highest utility (10.00)",)


def test_a_current_zone_gone_down_is_worth_nothing_and_memory_is_kept() -> None:
    # On a, now down (its 0.1 price would score 0.9): worth 0; b (1 - 0.5 = 0.5) wins. The memory
    # handed back records the zones' uptime: a down (inf), b up since now (t = 1).
    step = decide(view((opt(A, 0.1, up=False), opt(B, 0.5)), p=1.0, total=4.0, current=spot(A)))
    assert step.choice == spot(B)
    assert step.memory == Memory(up_since=(float("inf"), 1.0))
