"""Egress between regions and clouds (issue 12 item 3): the table, the engine's charge, the optimum
and the multicloud policy — hand-computed cases and an independent brute force."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fakes.policies import Scripted
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.policy.deadline import (
    POLICIES,
    WAIT,
    Choice,
    JobView,
    Kind,
    Memory,
    MultiCloud,
    SpotOption,
    spot,
)
from ray_multicloud.pricing.egress import (
    PUBLISHED,
    EgressError,
    egress_usd_per_gb,
    load_egress_table,
    parse_egress_table,
)
from ray_multicloud.sim import JobSpec, SimulationError, load_traces, optimal_cost, simulate
from ray_multicloud.sim.traces import TraceSet, cloud_of_trace

HOUR = 3600.0


def traces(tmp_path: Path, zones: dict[str, tuple[list[int], list[float]]], gap: float = HOUR) -> TraceSet:
    for name, (data, prices) in zones.items():
        obj = {"metadata": {"gap_seconds": gap}, "data": data, "prices": prices}
        (tmp_path / f"{name}_v100_1.json").write_text(json.dumps(obj))
    return load_traces([tmp_path])



# --- the table ----------------------------------------------------------------------------------


def test_published_rates_and_free_within_a_region() -> None:
    assert egress_usd_per_gb(PUBLISHED, ("aws", "us-east-1"), ("aws", "us-east-1")) == 0.0
    assert egress_usd_per_gb(PUBLISHED, ("aws", "us-east-1"), ("aws", "us-west-2")) == 0.02
    assert egress_usd_per_gb(PUBLISHED, ("aws", "us-east-1"), ("gcp", "us-central1")) == 0.09
    assert egress_usd_per_gb(PUBLISHED, ("gcp", "us-central1"), ("aws", "us-east-1")) == 0.12
    assert egress_usd_per_gb(PUBLISHED, ("azure", "eastus"), ("gcp", "us-central1")) == 0.087
    PUBLISHED.require(["aws", "gcp", "azure"])


def test_a_missing_cloud_pair_is_named(tmp_path: Path) -> None:
    f = tmp_path.parent / f"{tmp_path.name}-egress.json"
    f.write_text(json.dumps({"aws->aws": 0.02, "aws->gcp": 0.09, "gcp->gcp": 0.01}))
    table = load_egress_table(f)
    with pytest.raises(EgressError, match=r"has no rate for gcp->aws"):
        table.require(["aws", "gcp"])
    ts = traces(tmp_path, {"us-east-1a": ([1, 1], [1.0, 1.0]), "us-central1-a": ([1, 1], [1.0, 1.0])})
    spec = JobSpec(work_hours=1, deadline_hours=2, checkpoint_minutes=60, restart_minutes=0)
    with pytest.raises(EgressError, match=r"gcp->aws"):
        simulate(ts, spec, POLICIES["multicloud"], ondemand_price=3.0, checkpoint_gb=1, egress=table)
    with pytest.raises(EgressError, match=r"gcp->aws"):
        optimal_cost(ts, spec, ondemand_price=3.0, checkpoint_gb=1, egress=table)
    # 0 GB charges nothing and needs no table
    simulate(ts, spec, POLICIES["multicloud"], ondemand_price=3.0, checkpoint_gb=0, egress=table)


@pytest.mark.parametrize(
    ("obj", "match"),
    [([], "JSON object"), ({"aws": 0.1}, "SRC->DST"), ({"aws->gcp": -1}, ">= 0"),
     ({"aws->gcp": True}, ">= 0")],
)
def test_bad_tables_are_named(obj: object, match: str) -> None:
    with pytest.raises(EgressError, match=match):
        parse_egress_table(obj, "t.json")


@settings(max_examples=50, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
                    max_leaves=8))
def test_the_table_reader_takes_any_json(obj: object) -> None:
    try:
        table = parse_egress_table(obj, "t.json")
    except EgressError:
        return
    assert all(v >= 0 and math.isfinite(v) for v in table.rates.values())


def test_cloud_of_a_trace_file() -> None:
    assert cloud_of_trace(Path("x/gcp-04-30-2023/us-central1-a_c3-88.json")) == "gcp"
    assert cloud_of_trace(Path("x/aws-02-15-2023/us-east-1a_v100_1.json")) == "aws"
    assert cloud_of_trace(Path("t/us-east-1a_v100_1.json")) == "aws"
    assert cloud_of_trace(Path("t/us-central1-b_v100_1.json")) == "gcp"
    assert cloud_of_trace(Path("t/eastus_v100_1.json")) == "azure"
    assert cloud_of_trace(Path("t/zone7_v100_1.json")) == ""


def test_a_zone_of_unknown_cloud_is_named(tmp_path: Path) -> None:
    ts = traces(tmp_path, {"zone7": ([1, 1], [1.0, 1.0])})
    spec = JobSpec(work_hours=1, deadline_hours=2, checkpoint_minutes=60, restart_minutes=0)
    with pytest.raises(SimulationError, match=r"zone7 \("):
        simulate(ts, spec, POLICIES["multicloud"], ondemand_price=3.0, checkpoint_gb=5)


# --- the engine: hand-computed ------------------------------------------------------------------

# 1-hour ticks. us-east-1a (AWS) is up for two ticks, then preempted; us-central1-a (GCP) always up.
A = ([1, 1, 0, 0], [1.0, 1.0, 1.0, 1.0])
B = ([1, 1, 1, 1], [1.5, 1.5, 1.5, 1.5])
ON_NOTICE = JobSpec(work_hours=3, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0,
                    checkpoint_on_notice=True)


def test_a_move_across_clouds_pays_egress_once(tmp_path: Path) -> None:
    ts = traces(tmp_path, {"us-east-1a": A, "us-central1-a": B})
    script = Scripted((spot("us-east-1a"), spot("us-east-1a"), spot("us-central1-a")))
    r = simulate(ts, ON_NOTICE, script, ondemand_price=3.0, checkpoint_gb=10)
    # 2 h on A at 1.0 + 1 h on B at 1.5 = 3.5; the 2 h of work saved in us-east-1 cross to GCP:
    # 10 GB * 0.09 USD/GB (AWS internet egress) = 0.90.
    assert r.egress_usd == pytest.approx(0.90)
    assert r.egress_moves == 1
    assert r.cost_usd == pytest.approx(4.40)
    r0 = simulate(ts, ON_NOTICE, script, ondemand_price=3.0)
    assert (r0.cost_usd, r0.egress_usd) == (pytest.approx(3.5), 0.0)


def test_no_egress_with_nothing_saved_and_none_within_a_region(tmp_path: Path) -> None:
    ts = traces(tmp_path, {"us-east-1a": A, "us-east-1c": B, "us-west-2a": B})
    # starts in us-west-2a with nothing saved: free; then us-east-1a (2 h saved: 0.02 * 10),
    # then us-east-1c in the same region: free.
    script = Scripted((spot("us-west-2a"), spot("us-east-1a"), spot("us-east-1c")))
    spec = JobSpec(work_hours=3, deadline_hours=None, checkpoint_minutes=60, restart_minutes=0)
    r = simulate(ts, spec, script, ondemand_price=3.0, checkpoint_gb=10)
    assert r.egress_usd == pytest.approx(0.20)
    assert r.egress_moves == 1
    # 1.5 + 1.0 + 1.5 compute + 0.20 egress
    assert r.cost_usd == pytest.approx(4.20)


def test_on_demand_runs_where_the_state_is(tmp_path: Path) -> None:
    ts = traces(tmp_path, {"us-east-1a": A, "us-central1-a": B})
    on_demand = Choice(Kind.ON_DEMAND)
    script = Scripted((spot("us-central1-a"), on_demand, spot("us-central1-a")))
    r = simulate(ts, ON_NOTICE, script, ondemand_price=3.0, checkpoint_gb=10)
    # gcp spot -> on-demand (in GCP, where the state is) -> gcp spot: no egress at all
    assert r.egress_usd == 0.0
    assert r.cost_usd == pytest.approx(1.5 + 3.0 + 1.5)


# --- the optimum: hand-computed and brute force -------------------------------------------------


@pytest.mark.parametrize(("gb", "expect"), [(10, 4.40), (20, 4.50), (0, 3.50)])
def test_optimum_weighs_egress(tmp_path: Path, gb: float, expect: float) -> None:
    ts = traces(tmp_path, {"us-east-1a": A, "us-central1-a": B})
    # Schedules: A, A, then B: 3.5 + 0.09 * gb; B throughout: 4.5; A, A, on-demand: 5.0.
    opt = optimal_cost(ts, ON_NOTICE, ondemand_price=3.0, checkpoint_gb=gb)
    assert opt.cost_usd == pytest.approx(expect)


def brute_force(
    counts: list[list[int]],
    prices: list[list[float]],
    locs: list[int],
    egress: list[list[float]],
    od: float,
    *,
    work: float,
    restart: float,
    checkpoint: float | None,
    deadline: int,
) -> float:
    """Least cost over every schedule in the engine's documented egress model, on-demand allowed
    in any location (the optimum's superset), written from the docstrings: ``locs[z]`` is zone
    z's location, ``egress[a][b]`` the cost of carrying the checkpoint from a to b."""
    eps = 1e-9
    best = math.inf
    n_loc = len(egress)
    options = [("wait", -1)] + [("od", g) for g in range(n_loc)] + [("spot", z) for z in range(len(counts))]

    def ck(w: float) -> float:
        return w if checkpoint is None else math.floor(w / checkpoint + eps) * checkpoint

    def go(t: int, place: tuple[str, int], loc: int, w: float, over: float, cost: float) -> None:
        nonlocal best
        if cost >= best - 1e-12 or t >= deadline:
            return
        if place[0] == "spot" and counts[place[1]][t] < 1:
            place, w, over = ("wait", -1), ck(w), 0.0
        for c in options:
            if c[0] == "spot" and counts[c[1]][t] < 1:
                continue
            p, w2, o2, l2, paid = place, w, over, loc, 0.0
            if c != p:
                if p[0] != "wait":
                    w2 = ck(w2)
                p, o2 = c, (restart if c[0] != "wait" else 0.0)
                if c[0] != "wait":
                    to = locs[c[1]] if c[0] == "spot" else c[1]
                    if loc >= 0 and to != loc and w2 > eps:
                        paid = egress[loc][to]
                    l2 = to
            if p[0] == "wait":
                go(t + 1, p, l2, w2, o2, cost)
                continue
            price = prices[p[1]][t] if p[0] == "spot" else od
            paid_over = min(1.0, o2)
            o3 = max(0.0, o2 - paid_over)
            worked = 1.0 - paid_over
            if worked > eps and w2 + worked >= work - eps:
                best = min(best, cost + paid + price * (paid_over + work - w2))
                continue
            go(t + 1, p, l2, w2 + worked, o3, cost + paid + price)

    go(0, ("wait", -1), -1, 0.0, 0.0, 0.0)
    return best


COUNTS = [[1, 1, 0, 1, 1, 0, 1], [0, 1, 1, 1, 0, 1, 1], [1, 0, 1, 1, 1, 1, 0]]
PRICES = [[1.0, 1.2, 0.9, 1.0, 1.1, 0.8, 1.0], [0.6, 0.7, 1.5, 0.5, 0.9, 0.6, 0.8],
          [0.5, 0.9, 0.4, 0.7, 0.6, 0.5, 0.4]]


@pytest.mark.parametrize(("gb", "on_notice", "restart_min", "free_usd"),
                         [(10, True, 0, 1.9), (10, False, 30, 4.15), (25, True, 30, 2.7)],
                         ids=["10gb-notice", "10gb-periodic-restart", "25gb-notice-restart"])
def test_optimum_is_the_brute_force_optimum_with_egress(
    tmp_path: Path, gb: float, on_notice: bool, restart_min: float, free_usd: float
) -> None:
    ts = traces(tmp_path, {"us-east-1a": (COUNTS[0], PRICES[0]), "us-west-2a": (COUNTS[1], PRICES[1]),
                           "us-central1-a": (COUNTS[2], PRICES[2])})
    where = {n: i for i, n in enumerate(ts.names)}
    # locations: 0 aws/us-east-1, 1 aws/us-west-2, 2 gcp/us-central1
    locs = [0, 1, 2]
    e = [[0.0, 0.02 * gb, 0.09 * gb], [0.02 * gb, 0.0, 0.09 * gb], [0.12 * gb, 0.12 * gb, 0.0]]
    order = [where["us-east-1a"], where["us-west-2a"], where["us-central1-a"]]
    counts = [COUNTS[order.index(i)] for i in range(3)]
    prices = [PRICES[order.index(i)] for i in range(3)]
    loc_by_trace = [locs[order.index(i)] for i in range(3)]
    spec = JobSpec(work_hours=4, deadline_hours=7, checkpoint_minutes=60, restart_minutes=restart_min,
                   checkpoint_on_notice=on_notice)
    expect = brute_force(counts, prices, loc_by_trace, e, 3.0, work=4, restart=restart_min / 60,
                         checkpoint=None if on_notice else 1.0, deadline=7)
    opt = optimal_cost(ts, spec, ondemand_price=3.0, checkpoint_gb=gb)
    assert opt.cost_usd == pytest.approx(expect, abs=1e-9)
    # without egress: the first two cases move between regions, so egress raises their optimum;
    # the third stays put
    zero = [[0.0] * 3 for _ in range(3)]
    free = brute_force(counts, prices, loc_by_trace, zero, 3.0, work=4, restart=restart_min / 60,
                       checkpoint=None if on_notice else 1.0, deadline=7)
    assert free == pytest.approx(free_usd)
    assert optimal_cost(ts, spec, ondemand_price=3.0).cost_usd == pytest.approx(free_usd)
    assert (opt.cost_usd > free_usd + 0.01) == (gb == 10)
    for policy in POLICIES.values():
        r = simulate(ts, spec, policy, ondemand_price=3.0, checkpoint_gb=gb)
        if r.met_deadline:
            assert r.cost_usd >= opt.cost_usd - 1e-9, policy.name


# --- the policy ---------------------------------------------------------------------------------


def _view(zones: tuple[SpotOption, ...], current: Choice = WAIT, preempted: bool = True) -> JobView:
    return JobView(elapsed_hours=1.0, work_done_hours=2.0, checkpointed_hours=2.0, work_total_hours=12.0,
                   deadline_hours=40.0, restart_hours=0.1, checkpoint_hours=0.5, tick_hours=0.1,
                   current=current, overhead_left_hours=0.0, zones=zones, ondemand_price_per_hour=3.0,
                   preempted=preempted, preempted_zone="us-east-1a" if preempted else "")


def test_multicloud_weighs_egress_against_price() -> None:
    # 10 h of work left. Cross-cloud 0.9/h with 5.00 USD egress = 0.9 + 0.5 = 1.4/h per useful hour,
    # against 1.0/h in the region the state is in: stay.
    far = SpotOption("us-central1-a", "us-central1", True, 0.9, None, 5.0)
    near = SpotOption("us-east-1c", "us-east-1", True, 1.0, None, 0.0)
    step = MultiCloud().decide(_view((far, near)), Memory())
    assert step.choice == spot("us-east-1c")
    # with 0.50 USD egress the far zone is 0.95/h: go, and say what it pays
    far2 = SpotOption("us-central1-a", "us-central1", True, 0.9, None, 0.5)
    step = MultiCloud().decide(_view((far2, near)), Memory())
    assert step.choice == spot("us-central1-a")
    assert "egress 0.50 USD" in step.reasons[0]


def test_multicloud_does_not_carry_a_checkpoint_that_costs_more_than_on_demand() -> None:
    # Only a far zone: (3.0 - 0.9) * 10 h = 21 USD saved < 25 USD egress: not worth it.
    far = SpotOption("us-central1-a", "us-central1", True, 0.9, None, 25.0)
    step = MultiCloud().decide(_view((far,)), Memory())
    assert step.choice != spot("us-central1-a")


# --- the CLI --------------------------------------------------------------------------------------


def _cli_args(tmp_path: Path, policy: str) -> list[str]:
    traces(tmp_path, {"us-east-1a": A, "us-central1-a": B})
    return ["simulate", "--traces", str(tmp_path), "--job-hours", "3", "--checkpoint-minutes", "60",
            "--deadline-hours", "4", "--restart-minutes", "0", "--checkpoint-on-notice",
            "--ondemand-price", "3.0", "--policy", policy, "--json"]


def test_cli_checkpoint_gb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ray_multicloud.cli import main

    args = _cli_args(tmp_path, "optimal")
    assert main(args) == 0
    free = json.loads(capsys.readouterr().out)
    assert main([*args, "--checkpoint-gb", "10"]) == 0
    paid = json.loads(capsys.readouterr().out)
    # the hand-computed optimum above: 3.5 without egress, 4.40 with 10 GB (0.09 USD/GB aws->gcp)
    assert (free["cost_usd"], paid["cost_usd"]) == (pytest.approx(3.5), pytest.approx(4.4))
    assert paid["checkpoint_gb"] == 10 and sorted(paid["clouds"]) == ["aws", "gcp"]


def test_cli_names_a_missing_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ray_multicloud.cli import main

    table = tmp_path.parent / f"{tmp_path.name}-t.json"
    table.write_text(json.dumps({"aws->aws": 0.02, "gcp->gcp": 0.02, "aws->gcp": 0.09}))
    rc = main([*_cli_args(tmp_path, "multicloud"), "--checkpoint-gb", "5", "--egress-table", str(table)])
    assert rc == 2
    assert "gcp->aws" in capsys.readouterr().err


def test_a_job_starting_on_demand_runs_it_where_it_goes_first(tmp_path: Path) -> None:
    ts = traces(tmp_path, {"us-east-1a": A, "us-central1-a": B})
    script = Scripted((Choice(Kind.ON_DEMAND), spot("us-east-1a"), spot("us-central1-a")))
    r = simulate(ts, ON_NOTICE, script, ondemand_price=3.0, checkpoint_gb=10)
    # on-demand, then us-east-1a (the state's first region: free), then GCP with 2 h saved: 0.90
    assert r.egress_usd == pytest.approx(0.90) and r.egress_moves == 1
    assert r.cost_usd == pytest.approx(3.0 + 1.0 + 1.5 + 0.90)
