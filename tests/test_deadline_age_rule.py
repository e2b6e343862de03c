"""MultiCloud's young-zone rule (``young_zone_hours`` / ``young_loss_chance``; issue 12 item 6) on
literal two-zone views, every expected value computed by hand.

Setting: ticks of 0.1 h, 0.5 h checkpoints, 0.1 h restart, 10 h of work, deadline 30 h (slack far
beyond every guard), on-demand 3 USD/h. Zone ``a`` came back at 1.0 h; zone ``b`` was already up at
the job's first decision (``up_since`` 0: start unknown, counted old). At 1.25 h ``a`` is 0.25 h old:
young for ``young_zone_hours`` 0.5. Surcharge of a young zone with chance 0.4:
1 + 0.4 * (0.5 + 0.1) / 0.5 = 1.48.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ray_multicloud.policy.deadline import (
    WAIT,
    Choice,
    JobView,
    Memory,
    MultiCloud,
    SpotHistory,
    SpotOption,
    spot,
    young_surcharge,
    zone_ages,
)

NOW = 1.25


def view(
    *,
    current: Choice,
    price_b: float = 1.0,
    unsaved: float = 0.0,
    checkpoint: float = 0.5,
    history: SpotHistory | None = None,
    a_up: bool = True,
    price_a: float = 1.0,
    deadline: float = 30.0,
    overhead: float = 0.0,
    extra: tuple[SpotOption, ...] = (),
) -> JobView:
    return JobView(
        elapsed_hours=NOW,
        work_done_hours=1.0 + unsaved,
        checkpointed_hours=1.0,
        work_total_hours=10.0,
        deadline_hours=deadline,
        restart_hours=0.1,
        checkpoint_hours=checkpoint,
        tick_hours=0.1,
        current=current,
        overhead_left_hours=overhead,
        zones=(
            SpotOption("a", "r1", a_up, price_a),
            SpotOption("b", "r1", True, price_b),
            *extra,
        ),
        ondemand_price_per_hour=3.0,
        history=history,
    )


MEM = Memory(up_since=(1.0, 0.0))


def test_surcharge_by_hand() -> None:
    v = view(current=WAIT)
    assert young_surcharge(v, 0.4) == pytest.approx(1.48)
    assert young_surcharge(v, 0.2) == pytest.approx(1.24)
    assert young_surcharge(v, 0.0) == 1.0
    assert young_surcharge(view(current=WAIT, checkpoint=0.0), 0.4) == 1.0


def test_zone_ages_from_memory() -> None:
    # a: 1.25 - 1.0 = 0.25 h; b: up at the first decision, start unknown: old (inf)
    assert zone_ages(view(current=WAIT), MEM) == (0.25, math.inf)
    # a down: age 0; b first seen coming up at 0.75 h: 0.5 h
    assert zone_ages(view(current=WAIT, a_up=False), Memory(up_since=(math.inf, 0.75))) == (0.0, 0.5)
    # no memory yet: nothing dated, both old
    assert zone_ages(view(current=WAIT), Memory()) == (math.inf, math.inf)


def test_zone_ages_history_without_births_falls_back_on_memory() -> None:
    h = SpotHistory(window_hours=24.0)
    assert zone_ages(view(current=WAIT, history=h), MEM) == (0.25, math.inf)


def test_zone_ages_from_history_first() -> None:
    # the history says a came up at 1.15 h (0.1 h old) and b before the window (old); memory ignored
    h = SpotHistory(window_hours=24.0, born=(1.15, -math.inf))
    assert zone_ages(view(current=WAIT, history=h), MEM) == pytest.approx((0.1, math.inf))
    h2 = SpotHistory(window_hours=24.0, born=(-math.inf, 0.25))
    assert zone_ages(view(current=WAIT, history=h2), MEM) == pytest.approx((math.inf, 1.0))


RULE = MultiCloud(young_zone_hours=0.5, young_loss_chance=0.4)


@pytest.mark.parametrize(
    ("policy", "price_b", "unsaved", "checkpoint", "expect"),
    [
        # loss of staying 0.4 * (0.5 + 0.1) * 1.0 = 0.24 > move 0.1 * 1.0 = 0.10: move to b
        (RULE, 1.0, 0.0, 0.5, "b"),
        # b dearer: move 0.1 * 1.2 + (1.2 - 1.0) * 0.5 = 0.22 < 0.24: move
        (RULE, 1.2, 0.0, 0.5, "b"),
        # b at 1.3: 0.13 + 0.15 = 0.28 > 0.24: stay
        (RULE, 1.3, 0.0, 0.5, "a"),
        # chance 0.15: loss 0.09 < 0.10: stay
        (MultiCloud(young_zone_hours=0.5, young_loss_chance=0.15), 1.0, 0.0, 0.5, "a"),
        # a is 0.25 h old, young only below 0.25 h: not young, stay
        (MultiCloud(young_zone_hours=0.25, young_loss_chance=0.4), 1.0, 0.0, 0.5, "a"),
        # 0.3 h: young, move
        (MultiCloud(young_zone_hours=0.3, young_loss_chance=0.4), 1.0, 0.0, 0.5, "b"),
        # the rule off (the default): stay
        (MultiCloud(), 1.0, 0.0, 0.5, "a"),
        # a tick of unsaved work: not within the first tick after a checkpoint: stay
        (RULE, 1.0, 0.1, 0.5, "a"),
        # 0.05 h unsaved: within it; move 0.15 * 1.0 = 0.15 < 0.24: move
        (RULE, 1.0, 0.05, 0.5, "b"),
        # checkpoints every tick (on notice): nothing to lose, the rule does nothing (were it on,
        # chance 0.6 would move: loss 0.6 * (0.1 + 0.1) * 1.0 = 0.12 > 0.10)
        (MultiCloud(young_zone_hours=0.5, young_loss_chance=0.6), 1.0, 0.0, 0.1, "a"),
    ],
)
def test_leave_young_zone_at_checkpoint(
    policy: MultiCloud, price_b: float, unsaved: float, checkpoint: float, expect: str
) -> None:
    v = view(current=spot("a"), price_b=price_b, unsaved=unsaved, checkpoint=checkpoint)
    step = policy.decide(v, MEM)
    assert step.choice == spot(expect), step.reasons


def test_leave_young_weighs_only_older_zones() -> None:
    # b at 1.5: move 0.15 + 0.25 = 0.40 > 0.24: stay, as the plain running step (a, young, must not
    # be its own candidate although its surcharged 1.48 ranks below b's 1.5)
    step = RULE.decide(view(current=spot("a"), price_b=1.5), MEM)
    assert step.choice == spot("a")
    assert step.reasons[0].startswith("a spot running"), step.reasons


def test_leave_young_needs_an_older_zone() -> None:
    # both zones came back at 1.0 h: both young, nowhere older to go
    step = RULE.decide(view(current=spot("a")), Memory(up_since=(1.0, 1.0)))
    assert step.choice == spot("a")


def test_leave_young_uses_history_age() -> None:
    # memory would call a old (up at the first decision); the history says it came back at 1.15 h
    h = SpotHistory(window_hours=24.0, born=(1.15, -math.inf))
    step = RULE.decide(view(current=spot("a"), history=h), Memory(up_since=(0.0, 0.0)))
    assert step.choice == spot("b")
    assert "came back 0.10h ago" in step.reasons[0]


@pytest.mark.parametrize(
    ("policy", "price_b", "expect"),
    [
        # idle: a young at 1.0 -> ranked 1.48; b old at 1.4: b
        (RULE, 1.4, "b"),
        # b at 1.5 > 1.48: a
        (RULE, 1.5, "a"),
        # chance 0.2: a ranked 1.24 < 1.4: a
        (MultiCloud(young_zone_hours=0.5, young_loss_chance=0.2), 1.4, "a"),
        # off: the cheaper a
        (MultiCloud(), 1.4, "a"),
    ],
)
def test_start_prefers_older_zone(policy: MultiCloud, price_b: float, expect: str) -> None:
    step = policy.decide(view(current=WAIT, price_b=price_b), MEM)
    assert step.choice == spot(expect), step.reasons


def _stays(step_reasons: tuple[str, ...]) -> bool:
    return step_reasons[0].startswith("a spot running")


@pytest.mark.parametrize(
    ("price", "expect"),
    [
        # both zones at 2.0: loss 0.4 * 0.6 * 2.0 = 0.48 > move 0.1 * 2.0 = 0.20: move
        (2.0, "b"),
        # both at 0.3: loss 0.072 > move 0.03: move (the comparison scales with the price)
        (0.3, "b"),
    ],
)
def test_leave_young_scales_with_price(price: float, expect: str) -> None:
    step = RULE.decide(view(current=spot("a"), price_a=price, price_b=price), MEM)
    assert step.choice == spot(expect), step.reasons


def test_leave_young_waits_for_the_restart_to_be_paid() -> None:
    # 0.05 h of restart still to pay on a: not a working node yet, no move
    step = RULE.decide(view(current=spot("a"), overhead=0.05), MEM)
    assert step.choice == spot("a")
    assert _stays(step.reasons), step.reasons


def test_leave_young_only_when_a_new_run_is_viable() -> None:
    # deadline 10.8: slack 10.8 - 1.25 - 0.1 - 9.0 = 0.45. Keeping a (no restart) reaches the next
    # checkpoint: 0.45 - 0.5 + 0.1 = 0.05 >= 0; a new run on b would not: 0.45 - 0.1 - 0.5 + 0.1 < 0
    step = RULE.decide(view(current=spot("a"), deadline=10.8), MEM)
    assert step.choice == spot("a")
    assert _stays(step.reasons), step.reasons


@pytest.mark.parametrize(
    ("back_reserves", "expect"),
    [
        # slack 19.65 less the restart 19.55 >= 32 reserves of 0.6 h = 19.2: move
        (32.0, "b"),
        # 32.8 reserves = 19.68 > 19.55: stay
        (32.8, "a"),
    ],
)
def test_leave_young_keeps_back_reserves(back_reserves: float, expect: str) -> None:
    policy = MultiCloud(young_zone_hours=0.5, young_loss_chance=0.4, back_reserves=back_reserves)
    step = policy.decide(view(current=spot("a")), MEM)
    assert step.choice == spot(expect), step.reasons


def test_leave_young_ranks_older_zones_with_hazard_weight() -> None:
    # b: 1.0 USD/h but 2 interruptions per hour: ranked 1.0 * (1 + 0.5 * 2 * (0.1 + 0.25)) = 1.35;
    # c (old, up since 0): 1.1, no rate known: c. Move to c: 0.1 * 1.1 + 0.1 * 0.5 = 0.16 < 0.24.
    v = view(current=spot("a"), extra=(SpotOption("c", "r1", True, 1.1),))
    b = SpotOption("b", "r1", True, 1.0, interruptions_per_hour=2.0)
    v = replace(v, zones=(v.zones[0], b, v.zones[2]))
    step = RULE.decide(v, Memory(up_since=(1.0, 0.0, 0.0)))
    assert step.choice == spot("c"), step.reasons


@pytest.mark.parametrize(
    ("prefer", "expect"),
    [
        # b (up since 0) and c (since 0.5: 0.75 h, old for A 0.5) at one price: the longest up, b
        ("longest-up", "b"),
        # or the newest, c
        ("newest-up", "c"),
    ],
)
def test_leave_young_breaks_ties_by_prefer(prefer: str, expect: str) -> None:
    policy = MultiCloud(young_zone_hours=0.5, young_loss_chance=0.4, prefer=prefer)
    v = view(current=spot("a"), extra=(SpotOption("c", "r1", True, 1.0),))
    step = policy.decide(v, Memory(up_since=(1.0, 0.0, 0.5)))
    assert step.choice == spot(expect), step.reasons
