"""``skynomad``: SkyNomad's policy as its paper describes it (``policy.deadline.SkyNomad``). One test per
rule, expected values computed by hand in the comments (paper sections as in the class docstring)."""

from __future__ import annotations

import math

import pytest

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    SkyNomad,
    SpotOption,
    VirtualInstance,
    expected_remaining_lifetime,
    spot,
)

COD = 3.0


def zone(name: str, price: float, up: bool = True, egress: float = 0.0) -> SpotOption:
    return SpotOption(name, name[:-1], up, price, None, egress)


def view(t: float, p: float, zones: tuple[SpotOption, ...], *, current: Choice = WAIT, total: float = 10.0,
         deadline: float = 20.0, preempted: str = "", overhead: float = 0.0) -> JobView:
    """A ``total`` h job due at ``deadline`` h, ``p`` h done at ``t`` h, a 0.2 h cold start, 0.1 h ticks."""
    return JobView(elapsed_hours=t, work_done_hours=p, checkpointed_hours=p, work_total_hours=total,
                   deadline_hours=deadline, restart_hours=0.2, checkpoint_hours=0.1, tick_hours=0.1,
                   current=current, overhead_left_hours=overhead, zones=zones, ondemand_price_per_hour=COD,
                   preempted=bool(preempted), preempted_zone=preempted)


# --------------------------------------------------------------------------- lifetimes (§3.4, eq. 9-10)


def test_nelson_aalen_remaining_lifetime_by_hand() -> None:
    # Failures at 1 h and 3 h: h(1) = 1/2 (2 at risk), h(3) = 1/1; S = 1 on [0, 1), e^-0.5 on [1, 3).
    # From age 0: 1 + 2 e^-0.5 = 2.2131 h; from age 2: e^-0.5 * 1 / e^-0.5 = 1 h; from 0.5: 0.5 + 2 e^-0.5.
    assert expected_remaining_lifetime((1.0, 3.0), (), 0.0) == pytest.approx(1 + 2 * math.exp(-0.5))
    assert expected_remaining_lifetime((1.0, 3.0), (), 2.0) == pytest.approx(1.0)
    assert expected_remaining_lifetime((1.0, 3.0), (), 0.5) == pytest.approx(0.5 + 2 * math.exp(-0.5))
    # A censored 2 h sample is at risk at 1 h (n = 3: h(1) = 1/3) but not at 3 h (n = 1):
    # S = 1 on [0, 1), e^-1/3 on [1, 3): 1 + 2 e^-1/3 = 2.4331 h.
    assert expected_remaining_lifetime((1.0, 3.0), (2.0,), 0.0) == pytest.approx(1 + 2 * math.exp(-1 / 3))
    # No failure seen, or older than every sample: nothing bounds it (None: eta = 1).
    assert expected_remaining_lifetime((), (5.0,), 0.0) is None
    assert expected_remaining_lifetime((1.0, 3.0), (), 3.0) is None


def test_virtual_instance_runs() -> None:
    v = VirtualInstance().observe(1.0, True)  # virtual provisioning at 1 h
    assert v.up_since == 1.0
    assert v.observe(2.0, True) == v  # consecutive successes: one run
    down = v.observe(3.5, False)  # virtual preemption: a 2.5 h lifetime
    assert (down.up_since, down.failures, down.censored) == (math.inf, (2.5,), ())
    assert down.observe(4.0, False) == down  # still down: nothing new
    left = down.observe(5.0, True).censor(5.75)  # up again at 5 h, left at 5.75 h: censored 0.75 h
    assert (left.up_since, left.failures, left.censored) == (math.inf, (2.5,), (0.75,))


def test_probes_every_two_hours_only() -> None:
    p = SkyNomad(delta=0.0)
    zs = (zone("a1", 1.0), zone("b1", 1.0))
    m = p.decide(view(0.0, 0.0, zs), Memory()).memory  # probe round at 0 h (and a launch in a1)
    assert m.probed_at == 0.0
    # b1 goes down at 0.5 h and is back at 1.5 h: no probe in between, so no lifetime recorded.
    m = p.decide(view(0.5, 0.3, (zone("a1", 1.0), zone("b1", 1.0, up=False)), current=spot("a1")), m).memory
    m = p.decide(view(1.5, 1.3, zs, current=spot("a1")), m).memory
    assert m.virtual[1].failures == () and m.probed_at == 0.0
    # The probe at 2 h sees b1 down: its run of 2 h (since the probe at 0 h) ends as a failure.
    m = p.decide(view(2.0, 1.8, (zone("a1", 1.0), zone("b1", 1.0, up=False)), current=spot("a1")), m).memory
    assert m.probed_at == 2.0 and m.virtual[1].failures == (2.0,)


def test_own_preemption_is_a_failure() -> None:
    p = SkyNomad(delta=0.0)
    m = Memory(virtual=(VirtualInstance(up_since=1.0), VirtualInstance()), probed_at=1.0)
    down = (zone("a1", 1.0, up=False), zone("b1", 1.0))
    step = p.decide(view(2.5, 1.3, down, preempted="a1"), m)
    assert step.memory.virtual[0].failures == (1.5,)  # up since 1 h, lost at 2.5 h
    assert step.choice == spot("b1")


# --------------------------------------------------------------------------- safety net (§3.1, Algorithm 1)


def test_safety_net_fires_only_when_idle_then_holds() -> None:
    p = SkyNomad(delta=0.0)
    zs = (zone("a1", 1.0),)
    # At 19.4 h with 9.5 of 10 h done, due at 20 h: T - t = 0.6 h, 0.5 h after this tick, less than the
    # work left plus a cold start (0.5 + 0.2 = 0.7 h). On spot the net does not fire (the job keeps its
    # node); idle, it fires, and holds.
    on_spot = p.decide(view(19.4, 9.5, zs, current=spot("a1")), Memory())
    assert on_spot.choice == spot("a1") and not on_spot.memory.locked_ondemand
    idle = p.decide(view(19.4, 9.5, zs), Memory())
    assert idle.choice == ON_DEMAND and idle.memory.locked_ondemand
    # Until completion, whatever spot offers.
    assert p.decide(view(19.5, 9.6, zs, current=ON_DEMAND), idle.memory).choice == ON_DEMAND


def test_thrifty_rule() -> None:
    done = view(12.0, 10.0, (zone("a1", 1.0),), current=spot("a1"))
    assert SkyNomad().decide(done, Memory()).choice == WAIT


# --------------------------------------------------------------------------- utility and decision


# At t = 10 h with 5 h of the 10 h done, due at 20 h: theta = 5 / 10 = theta~ = 5 / 10: V = C_od = 3.
# A zone with no failure seen has eta = 1 and no amortised egress: U = 3 - price.
def test_hysteresis_delta() -> None:
    m = Memory(virtual=(VirtualInstance(up_since=0.0),), probed_at=10.0)
    dear = (zone("a1", 2.5),)  # U = 0.5 > idle's 0 but not by delta = 1
    assert SkyNomad(delta=1.0).decide(view(10.0, 5.0, dear), m).choice == WAIT
    assert SkyNomad(delta=0.0).decide(view(10.0, 5.0, dear), m).choice == spot("a1")
    cheap = (zone("a1", 1.5),)  # U = 1.5 > 0 + 1
    assert SkyNomad(delta=1.0).decide(view(10.0, 5.0, cheap), m).choice == spot("a1")
    # On spot at 2.9 USD/h (U = 0.1): idle (0) does not beat it by delta, so it stays; without delta too
    # (0 < 0.1). At 3.5 USD/h (U = -0.5) idle beats it by 0.5: left with delta 0, kept with delta 1.
    running = (zone("a1", 3.5),)
    assert SkyNomad(delta=0.0).decide(view(10.0, 5.0, running, current=spot("a1")), m).choice == WAIT
    assert SkyNomad(delta=1.0).decide(view(10.0, 5.0, running, current=spot("a1")), m).choice == spot("a1")


# Zone a1 has failures at 1 h and 3 h and is up since now (age 0): L = 1 + 2 e^-0.5 = 2.2131 h;
# eta = (L - 0.2) / L = 0.90963; a start there pays 1 USD egress: U = 3 x 0.90963 - 1.0 - 1 / 2.2131
# = 1.27703. Zone b1 (no failure seen) at 1.5: U = 1.5 -> b1; at 1.8: U = 1.2 -> a1.
def test_utility_weighs_lifetime_and_amortised_egress() -> None:
    a1 = VirtualInstance(up_since=10.0, failures=(1.0, 3.0))
    m = Memory(virtual=(a1, VirtualInstance(up_since=0.0)), probed_at=10.0)
    p = SkyNomad(delta=0.0)
    step = p.decide(view(10.0, 5.0, (zone("a1", 1.0, egress=1.0), zone("b1", 1.5))), m)
    assert step.choice == spot("b1") and "(1.50;" in step.reasons[0]
    step = p.decide(view(10.0, 5.0, (zone("a1", 1.0, egress=1.0), zone("b1", 1.8))), m)
    assert step.choice == spot("a1") and "(1.28;" in step.reasons[0]


def test_candidates_tried_in_order_a_failed_launch_is_an_observation() -> None:
    # b1 (0.5 USD/h, U = 2.5) is best but down: the attempt fails and ends its virtual run (up since
    # 4 h: a 6 h lifetime); a1 (1.0, U = 2.0) is tried next and taken.
    m = Memory(virtual=(VirtualInstance(up_since=0.0), VirtualInstance(up_since=4.0)), probed_at=10.0)
    step = SkyNomad(delta=0.0).decide(view(10.0, 5.0, (zone("a1", 1.0), zone("b1", 0.5, up=False))), m)
    assert step.choice == spot("a1")
    assert "2 spot launch(es) tried" in step.reasons[0]
    assert step.memory.virtual[1].failures == (6.0,)


def test_a_proactive_move_away_is_censored() -> None:
    # On a1 at 2.9 USD/h (U = 0.1) since 7 h; b1 at 1.0 (U = 2.0) beats it by 1.9 > delta 1: move;
    # a1's run (3 h) is right-censored.
    m = Memory(virtual=(VirtualInstance(up_since=7.0), VirtualInstance(up_since=0.0)), probed_at=10.0)
    zs = (zone("a1", 2.9), zone("b1", 1.0))
    step = SkyNomad(delta=1.0).decide(view(10.0, 5.0, zs, current=spot("a1")), m)
    assert step.choice == spot("b1")
    assert step.memory.virtual[0].censored == (3.0,) and step.memory.virtual[0].failures == ()


# Volatility (§A.3). Runs (0, 10), (10, 11), (11, 11.5) all failed, a run open since 11.5, now 11.6:
# lifetimes 10, 1, 0.5: h(0.5) = 1/3, h(1) = 1/2, h(10) = 1; H(0.5) = 1/3, H(1) = 5/6, H(10) = 11/6.
# From just before 11.5: 1 failure over h(0.5) = 1/3 (+ H(0.1) = 0 of the open run): 3. From just
# before 11: 2 over 1/2 + 1/3 = 5/6: 2.4. From just before 10: 3 over 1 + 5/6 + 1/3: 1.385. Whole: 3
# over 3: 1. gamma* = 3.
BURST = VirtualInstance(up_since=11.5, failures=(10.0, 1.0, 0.5),
                        runs=((0.0, 10.0, True), (10.0, 11.0, True), (11.0, 11.5, True)))


def test_volatility_ratio_by_hand() -> None:
    assert BURST.volatility(11.6) == pytest.approx(3.0)
    calm = VirtualInstance(failures=(1.0, 2.0), runs=((0.0, 1.0, True), (1.0, 3.0, True)))
    assert calm.volatility(3.0) == pytest.approx(1.0)  # the method's docstring example
    assert VirtualInstance().volatility(5.0) == 1.0


def test_volatility_shortens_the_predicted_lifetime() -> None:
    # Age 0.1, up to the longest lifetime 10: with gamma 3, S = e^(-3 H): 0.4 + e^-1 x 0.5
    # + e^-2.5 x 9 = 1.32271 h; with gamma 1: 0.4 + e^(-1/3) x 0.5 + e^(-5/6) x 9 = 4.66925 h.
    f, c = BURST.failures, BURST.censored
    want = 0.4 + 0.5 * math.exp(-1) + 9 * math.exp(-2.5)
    assert expected_remaining_lifetime(f, c, 0.1, 3.0) == pytest.approx(want)
    assert expected_remaining_lifetime(f, c, 0.1) == pytest.approx(
        0.4 + 0.5 * math.exp(-1 / 3) + 9 * math.exp(-5 / 6))
    assert expected_remaining_lifetime((1.0, 3.0), (), 0.0, 2.0) == pytest.approx(1 + 2 * math.exp(-1))
