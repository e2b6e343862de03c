"""What the simulator shows a policy, tick by tick, and what it charges: every field of every
``JobView`` (and its ``SpotOption``s) on a small hand-computed scenario. Mutation testing (mutmut,
CONTRIBUTING.md) found these untested: no test policy read the interruption rates, the egress per
option, ``preempted``/``preempted_zone``, or the hours fields on ticks other than an hour.

Expected values are computed by hand in the comments, never read from the engine."""

from __future__ import annotations

import numpy as np
import pytest

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    WAIT,
    Choice,
    JobView,
    Memory,
    SpotOption,
    Step,
    spot,
)
from ray_multicloud.pricing.egress import EgressTable
from ray_multicloud.sim import JobSpec, SimulationError, simulate
from ray_multicloud.sim.engine import interruption_rates
from ray_multicloud.sim.traces import TraceSet

A, B = "us-east-1a", "us-west-2a"


class Recorder:
    """Plays ``script[i]`` at tick ``i`` (the last entry from then on) and keeps every view."""

    name = "recorder"

    def __init__(self, script: list[Choice]) -> None:
        self.script = script
        self.views: list[JobView] = []

    def decide(self, view: JobView, memory: Memory) -> Step:
        self.views.append(view)
        i = round(view.elapsed_hours / view.tick_hours)
        return Step(self.script[min(i, len(self.script) - 1)], ("script",), memory)


def two_regions(counts_a: list[int], counts_b: list[int], gap: float = 1800.0) -> TraceSet:
    """Zone A in aws us-east-1, zone B in aws us-west-2; A's price at tick t is 1.0 + 0.1 t,
    B's 2.0 + 0.1 t (so a price read from the wrong tick or zone shows)."""
    n = len(counts_a)
    return TraceSet(
        names=(A, B),
        regions=("us-east-1", "us-west-2"),
        files=("aws-x/us-east-1a_v100_2.json", "aws-x/us-west-2a_v100_2.json"),
        gap_seconds=gap,
        counts=np.array([counts_a, counts_b], dtype=np.int64),
        spot_prices=np.array([[1.0 + 0.1 * t for t in range(n)], [2.0 + 0.1 * t for t in range(n)]]),
        priced_by_file=(True, True),
        clouds=("aws", "aws"),
    )


# 30-minute ticks (th = 0.5 h). A job of 2 nodes: A holds 2 VMs except at t3 (1 VM: not enough for
# 2 nodes), B except at t1. Work 1.5 h = 3 ticks, restart 45 min = 1.5 ticks, checkpoint every
# 30 min = 1 tick, deadline 5 h = 10 ticks. Egress aws->aws 0.1 USD/GB, 0.5 GB checkpoint: 0.05 USD
# per move between the two regions. Rate window 1 h = 2 ticks.
COUNTS_A = [2, 2, 2, 1, 2, 2, 2, 2, 2, 2]
COUNTS_B = [2, 0, 2, 2, 2, 2, 2, 2, 2, 2]
SPEC = JobSpec(work_hours=1.5, deadline_hours=5, checkpoint_minutes=30, restart_minutes=45, nodes=2)
TABLE = EgressTable({("aws", "aws"): 0.1}, "test")
SCRIPT = [spot(A), spot(A), spot(A), spot("nowhere"), spot(B), spot(B), spot(B), ON_DEMAND]


def opt(zone: str, avail: bool, price: float, rate: float, egress: float = 0.0) -> SpotOption:
    region = "us-east-1" if zone == A else "us-west-2"
    return SpotOption(zone, region, avail, price, rate, egress)


def view(t: int, work_t: float, ck_t: float, current: Choice, over_t: float,
         zones: tuple[SpotOption, ...], preempted_zone: str = "") -> JobView:
    return JobView(
        elapsed_hours=t * 0.5, work_done_hours=work_t * 0.5, checkpointed_hours=ck_t * 0.5,
        work_total_hours=1.5, deadline_hours=5.0, restart_hours=0.75, checkpoint_hours=0.5,
        tick_hours=0.5, current=current, overhead_left_hours=over_t * 0.5, zones=zones,
        ondemand_price_per_hour=3.0, preempted=bool(preempted_zone), preempted_zone=preempted_zone,
    )


def test_every_view_and_the_bill_on_a_hand_computed_run() -> None:
    # Interruption rates (2-tick window, per available hour, floor 0.5 h): A loses its 2 VMs at
    # t3, so at t3 and t4 the window holds 1 loss over 1 available tick (0.5 h): 2.0/h; B loses
    # them at t1: 2.0/h at t1 and t2; 0.0 elsewhere.
    #
    # t0 spot A: restart 1.5 ticks; tick paid 1.0/h (overhead 1, 0.5 left).
    # t1 A: overhead 0.5 then 0.5 work (w 0.5); 1.1/h.   t2 A: w 1.5; 1.2/h.
    # t3 A down: preempted, back to checkpoint 1 (0.5 tick lost); egress now shown: checkpoint 1 > 0,
    #    state in us-east-1: A 0.0, B 0.05. spot("nowhere") fails to launch: waits, unpaid.
    # t4 spot B: a start in another region with saved work: egress 0.05 (no move counted: from
    #    waiting); restart: overhead 1 (0.5 left); 2.4/h.
    # t5 B: overhead 0.5, w 1.5; 2.5/h; options now priced from us-west-2: A 0.05, B 0.
    # t6 B: w 2.5; 2.6/h.
    # t7 on-demand: a move (1), back to checkpoint 2 (0.5 tick lost); on-demand runs in the state's
    #    region: no egress; overhead 1 (0.5 left); 3.0/h.   t8: overhead 0.5, w 2.5; 3.0/h.
    # t9: w 2.5 + 0.5 = 3: done half way through the tick: pays 0.5 tick; finished at 9.5 ticks.
    rec = Recorder(SCRIPT)
    r = simulate(two_regions(COUNTS_A, COUNTS_B), SPEC, rec, ondemand_price=3.0, rate_window_hours=1.0,
                 checkpoint_gb=0.5, egress=TABLE)
    sa, sb, od = spot(A), spot(B), ON_DEMAND
    expected = [
        view(0, 0.0, 0.0, WAIT, 0.0, (opt(A, True, 1.0, 0.0), opt(B, True, 2.0, 0.0))),
        view(1, 0.0, 0.0, sa, 0.5, (opt(A, True, 1.1, 0.0), opt(B, False, 2.1, 2.0))),
        view(2, 0.5, 0.0, sa, 0.0, (opt(A, True, 1.2, 0.0), opt(B, True, 2.2, 2.0))),
        view(3, 1.0, 1.0, WAIT, 0.0, (opt(A, False, 1.3, 2.0, 0.0), opt(B, True, 2.3, 0.0, 0.05)),
             preempted_zone=A),
        view(4, 1.0, 1.0, WAIT, 0.0, (opt(A, True, 1.4, 2.0, 0.0), opt(B, True, 2.4, 0.0, 0.05))),
        view(5, 1.0, 1.0, sb, 0.5, (opt(A, True, 1.5, 0.0, 0.05), opt(B, True, 2.5, 0.0, 0.0))),
        view(6, 1.5, 1.0, sb, 0.0, (opt(A, True, 1.6, 0.0, 0.05), opt(B, True, 2.6, 0.0, 0.0))),
        view(7, 2.5, 2.0, sb, 0.0, (opt(A, True, 1.7, 0.0, 0.05), opt(B, True, 2.7, 0.0, 0.0))),
        view(8, 2.0, 2.0, od, 0.5, (opt(A, True, 1.8, 0.0, 0.05), opt(B, True, 2.8, 0.0, 0.0))),
        view(9, 2.5, 2.0, od, 0.0, (opt(A, True, 1.9, 0.0, 0.05), opt(B, True, 2.9, 0.0, 0.0))),
    ]
    assert len(rec.views) == len(expected)
    for t, (got, want) in enumerate(zip(rec.views, expected, strict=True)):
        assert _same(got, want), f"tick {t}: {got} != {want}"
    # Per node-hour paid, 0.5 h ticks: t0-t2 1.0 + 1.1 + 1.2, t4-t6 2.4 + 2.5 + 2.6, t7-t8 3.0 + 3.0,
    # t9 half a tick at 3.0: (3.3 + 7.5 + 6.0 + 1.5) * 0.5 h * 2 nodes = 18.3, plus 0.05 egress.
    assert r.cost_usd == pytest.approx(18.35)
    assert r.egress_usd == pytest.approx(0.05)
    assert r.egress_moves == 1
    # on-demand alone: (3 + 1.5) ticks * 0.5 h * 3.0 * 2 nodes
    assert r.ondemand_cost_usd == pytest.approx(13.5)
    assert (r.finished, r.met_deadline, r.preemptions, r.moves) == (True, True, 1, 1)
    assert r.hours_elapsed == pytest.approx(4.75)
    assert r.spot_hours == pytest.approx(3.0)  # 6 ticks
    assert r.ondemand_hours == pytest.approx(1.25)  # 2.5 ticks
    assert r.overhead_hours == pytest.approx(2.25)  # 1 + 0.5 three times
    assert r.lost_work_hours == pytest.approx(0.5)  # 0.5 tick at t3, 0.5 at t7
    assert (r.work_ticks, r.restart_ticks, r.checkpoint_ticks, r.deadline_ticks) == (3.0, 1.5, 1.0, 10)
    assert (r.start_tick, r.tick_seconds, r.policy) == (0, 1800.0, "recorder")


def _same(a: JobView, b: JobView) -> bool:
    """Field by field, floats to 1e-9 (None and strings exactly)."""
    for name in JobView.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if name == "zones":
            if len(x) != len(y):
                return False
            for o, p in zip(x, y, strict=True):
                for f in SpotOption.__dataclass_fields__:
                    u, v = getattr(o, f), getattr(p, f)
                    if isinstance(v, float) and not isinstance(u, bool):
                        if u is None or abs(u - v) > 1e-9:
                            return False
                    elif u != v or type(u) is not type(v):
                        return False
        elif isinstance(y, float):
            if x is None or isinstance(x, bool) or abs(x - y) > 1e-9:
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True


def one_zone_hourly(counts: list[int]) -> TraceSet:
    n = len(counts)
    return TraceSet(
        names=(A,), regions=("us-east-1",), files=("us-east-1a_v100_1.json",), gap_seconds=3600.0,
        counts=np.array([counts], dtype=np.int64), spot_prices=np.ones((1, n)), priced_by_file=(True,),
    )


def test_interruption_rates_default_to_one_node_and_a_24_hour_window() -> None:
    # Hourly, 1 VM except t1 (0): the loss is at t1. Defaults: 1 node, 24 h = 24 ticks.
    # t0: window {t0}: 0 losses / 1 h = 0.   t1: {t0, t1}: 1 loss / 1 available h = 1.0.
    # t2: {t0..t2}: 1 / 2 h = 0.5.   t24: {t1..t24}: 1 loss / 23 h.   t25: {t2..t25}: 0.
    counts = [1] * 30
    counts[1] = 0
    rates = interruption_rates(one_zone_hourly(counts))
    assert rates.shape == (1, 30)
    assert rates[0, 0] == pytest.approx(0.0)
    assert rates[0, 1] == pytest.approx(1.0)
    assert rates[0, 2] == pytest.approx(0.5)
    assert rates[0, 24] == pytest.approx(1 / 23)
    assert rates[0, 25] == pytest.approx(0.0)
    # 2 nodes: the zone never holds 2 VMs, no available hour in any window: never shown as safe,
    # at one interruption per tick (the docstring's floor): 1 per hour on hourly ticks.
    assert interruption_rates(one_zone_hourly(counts), nodes=2) == pytest.approx(np.ones((1, 30)))
    # 3-hour window on the same counts, 1 node: t3 {t1..t3}: 1 loss / 2 h; t4 {t2..t4}: 0.
    short = interruption_rates(one_zone_hourly(counts), nodes=1, window_hours=3.0)
    assert (short[0, 3], short[0, 4]) == (pytest.approx(0.5), pytest.approx(0.0))


def test_rates_shown_from_a_later_start_count_the_ticks_before_it() -> None:
    # Start at tick 2 of the hourly trace above with a 3 h window: the first view (t2) sees
    # {t0..t2}: 1 loss (t1) / 2 available h = 0.5; the next (t3) {t1..t3}: 0.5; t4 {t2..t4}: 0.
    counts = [1] * 30
    counts[1] = 0
    rec = Recorder([WAIT])
    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    r = simulate(one_zone_hourly(counts), spec, rec, ondemand_price=3.0, start_tick=2, rate_window_hours=3.0)
    shown = [v.zones[0].interruptions_per_hour for v in rec.views[:3]]
    assert shown == [pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.0)]
    assert rec.views[0].elapsed_hours == 0.0  # elapsed counts from the start tick
    assert not r.finished and r.hours_elapsed == pytest.approx(28.0)  # 28 ticks left, all waited
    # without a window the rate is unknown
    rec2 = Recorder([WAIT])
    simulate(one_zone_hourly(counts), spec, rec2, ondemand_price=3.0, start_tick=2)
    assert rec2.views[0].zones[0].interruptions_per_hour is None


def test_rates_shown_are_rounded_to_6_places_and_the_window_to_whole_ticks() -> None:
    # Start at tick 4, 4 h window: t4 sees {t1..t4}: 1 loss over 3 available hours = 1/3, shown
    # rounded to 6 decimal places (simulate's docstring): 0.333333.
    counts = [1] * 30
    counts[1] = 0
    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    rec = Recorder([WAIT])
    simulate(one_zone_hourly(counts), spec, rec, ondemand_price=3.0, start_tick=4, rate_window_hours=4.0)
    assert rec.views[0].zones[0].interruptions_per_hour == 0.333333
    # A window of 2.4995 h on hourly ticks is the nearest whole number of ticks: 2. At t2 it
    # holds {t1, t2}: 1 loss / 1 available hour = 1.0 (a 3-tick window would give 0.5).
    rates = interruption_rates(one_zone_hourly(counts), window_hours=2.4995)
    assert (rates[0, 2], rates[0, 3]) == (pytest.approx(1.0), pytest.approx(0.0))


def test_no_egress_is_charged_or_counted_with_a_0_gb_checkpoint() -> None:
    # The hand-computed run above with checkpoint_gb 0: the same bill less the 0.05 USD of egress,
    # no egress move counted, every option's egress 0.
    rec = Recorder(SCRIPT)
    r = simulate(two_regions(COUNTS_A, COUNTS_B), SPEC, rec, ondemand_price=3.0, rate_window_hours=1.0,
                 checkpoint_gb=0.0, egress=TABLE)
    assert r.cost_usd == pytest.approx(18.3)
    assert (r.egress_usd, r.egress_moves) == (0.0, 0)
    assert all(o.egress_usd == 0.0 for v in rec.views for o in v.zones)


def test_a_released_job_waits_with_no_restart_pending() -> None:
    # Hourly, one zone always up, 2 h restart. t0 spot (restart: 1 h paid, 1 h left); t1 the
    # policy releases it (wait): the next views show it waiting with no overhead left (the next
    # start pays the whole restart again), and nothing is paid while waiting: 1 USD in all.
    rec = Recorder([spot(A), WAIT])
    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=120)
    r = simulate(one_zone_hourly([1, 1, 1, 1]), spec, rec, ondemand_price=3.0)
    assert [(v.current, v.overhead_left_hours) for v in rec.views] == [
        (WAIT, 0.0), (spot(A), 1.0), (WAIT, 0.0), (WAIT, 0.0)]
    assert (r.finished, r.cost_usd, r.overhead_hours, r.moves) == (False, pytest.approx(1.0), 1.0, 0)


def test_egress_accumulates_over_moves() -> None:
    # Hourly (gap 3600 s), A in us-east-1 and B in us-west-2 always up, 1 VM each; 1 node, 4 h of
    # work, a checkpoint every hour, no restart; 10 GB at 0.1 USD/GB = 1 USD per move between them.
    # a t0 (w 1), b t1 (carries 1 h: 1 USD, w 2), a t2 (carries 2 h: 1 USD, w 3), a t3 (w 4, done).
    # Spot: A 1.0 + 0.1 t, B 2.0 + 0.1 t per hour: 1.0 + 2.1 + 1.2 + 1.3 = 5.6, plus 2 USD egress.
    ts = two_regions([1] * 5, [1] * 5, gap=3600.0)
    spec = JobSpec(work_hours=4, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    r = simulate(ts, spec, Recorder([spot(A), spot(B), spot(A)]), ondemand_price=9.0, checkpoint_gb=10.0,
                 egress=TABLE)
    assert (r.egress_usd, r.egress_moves, r.moves) == (pytest.approx(2.0), 2, 2)
    assert r.cost_usd == pytest.approx(7.6)


def test_a_job_finishing_exactly_at_its_deadline_meets_it() -> None:
    # Hourly, 2 h of work, no restart, deadline 2 h; spot up throughout: done at exactly 2.0 h.
    spec = JobSpec(work_hours=2, deadline_hours=2, checkpoint_minutes=60, restart_minutes=0)
    r = simulate(one_zone_hourly([1, 1, 1]), spec, Recorder([spot(A)]), ondemand_price=3.0)
    assert (r.hours_elapsed, r.finished, r.met_deadline) == (2.0, True, True)


@pytest.mark.parametrize("gb", [-1.0, float("inf"), float("nan")])
def test_a_bad_checkpoint_size_is_refused_naming_it(gb: float) -> None:
    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    with pytest.raises(SimulationError, match=f"checkpoint GB must be >= 0, got {gb}"):
        simulate(one_zone_hourly([1, 1]), spec, Recorder([WAIT]), ondemand_price=3.0, checkpoint_gb=gb)


def test_egress_under_1_gb_still_needs_every_zones_cloud_and_every_pair() -> None:
    # Found by mutmut (``locations`` 19, 22-24, 26: the checks were only tried with >= 1 GB).
    from ray_multicloud.pricing.egress import EgressError
    from ray_multicloud.sim.engine import locations

    spec = JobSpec(work_hours=1, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    unknown = TraceSet(
        names=(A, B), regions=("us-east-1", "us-west-2"), files=("x/a.json", "x/b.json"), gap_seconds=3600.0,
        counts=np.ones((2, 2), dtype=np.int64), spot_prices=np.ones((2, 2)), priced_by_file=(True, True),
    )
    with pytest.raises(SimulationError) as err:
        simulate(unknown, spec, Recorder([WAIT]), ondemand_price=3.0, checkpoint_gb=0.5, egress=TABLE)
    assert str(err.value) == (
        f"cannot tell the cloud of zone(s) {A} (x/a.json), {B} (x/b.json): egress needs each zone's cloud; "
        "put the trace files in a directory named aws-*, gcp-* or azure-*"
    )
    # aws and gcp zones; the table has both cross-cloud rates but not aws->aws nor gcp->gcp
    two_clouds = TraceSet(
        names=(A, "us-central1-a"), regions=("us-east-1", "us-central1"), files=("a", "b"),
        gap_seconds=3600.0,
        counts=np.ones((2, 2), dtype=np.int64), spot_prices=np.ones((2, 2)), priced_by_file=(True, True),
        clouds=("aws", "gcp"),
    )
    cross = EgressTable({("aws", "gcp"): 0.09, ("gcp", "aws"): 0.12}, "test")
    with pytest.raises(EgressError, match="no rate for aws->aws"):
        simulate(two_clouds, spec, Recorder([WAIT]), ondemand_price=3.0, checkpoint_gb=0.5, egress=cross)
    # with 0 GB nothing is asked of the table, and every carry costs 0
    assert locations(two_clouds, 0.0, cross).usd == ((0.0, 0.0), (0.0, 0.0))
    # 0.5 GB: aws -> gcp 0.045, gcp -> aws 0.06 with a full table
    full = EgressTable({**cross.rates, ("aws", "aws"): 0.02, ("gcp", "gcp"): 0.02}, "test")
    assert locations(two_clouds, 0.5, full).usd == ((0.0, pytest.approx(0.045)), (pytest.approx(0.06), 0.0))


def _spec(**kw: object) -> JobSpec:
    base: dict[str, object] = dict(work_hours=1.0, deadline_hours=2.0, checkpoint_minutes=60.0,
                                   restart_minutes=0.0)
    base.update(kw)
    return JobSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"work_hours": 0.0}, "job hours must be > 0, got 0.0"),
        ({"work_hours": float("inf")}, "job hours must be > 0, got inf"),
        ({"deadline_hours": 0.0}, "deadline hours must be > 0, got 0.0"),
        ({"checkpoint_minutes": 0.0}, "checkpoint minutes must be > 0, got 0.0"),
        ({"restart_minutes": -1.0}, "restart minutes must be >= 0, got -1.0"),
        ({"nodes": 0}, "nodes must be >= 1, got 0"),
        ({"notice_loss_minutes": 1.0},
         "notice loss minutes apply to a job that checkpoints on notice; set checkpoint_on_notice "
         "(a periodic job loses the work since its last checkpoint instead)"),
    ],
)
def test_a_bad_job_is_refused_with_its_limit(kw: dict[str, object], message: str) -> None:
    # Found by mutmut (``JobSpec.validate``: the boundaries and the messages were untested).
    with pytest.raises(SimulationError) as err:
        _spec(**kw).validate()
    assert str(err.value) == message


def test_the_smallest_sensible_job_is_accepted() -> None:
    # A deadline under an hour and a restart of 0 are fine.
    _spec(deadline_hours=0.5, work_hours=0.25, restart_minutes=0.0).validate()


def test_a_start_at_the_end_of_the_trace_is_refused() -> None:
    spec = _spec()
    with pytest.raises(SimulationError) as err:
        simulate(one_zone_hourly([1, 1, 1]), spec, Recorder([WAIT]), ondemand_price=3.0, start_tick=3)
    assert str(err.value) == "start tick 3 is outside the trace (3 ticks of 3600s)"
    r = simulate(one_zone_hourly([1, 1, 1]), spec, Recorder([WAIT]), ondemand_price=3.0, start_tick=2)
    assert r.hours_elapsed == 1.0  # the last tick, waited
