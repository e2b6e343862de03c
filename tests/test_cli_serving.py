"""`ray-multicloud simulate-serving`: hand-computed costs on tiny traces, the JSON keys, the
table, and a one-line error naming the flag (exit 2) for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_multicloud.cli import FLEET_POLICY_NAMES, build_parser, main
from ray_multicloud.sim.serving import FLEET_POLICIES, FleetSpec

HOUR = 3600
JSON_KEYS = {
    "forecaster",
    "in_sample",
    "note",
    "policy",
    "hours",
    "cost_usd",
    "ondemand_cost_usd",
    "savings_fraction",
    "slo_violation_fraction",
    "unserved_fraction",
    "preemptions",
    "mean_replicas",
    "zones",
    "tick_seconds",
    "step_seconds",
    "trace_hours",
    "demand_hours",
}


def write_zone(d: Path, name: str, data: list[int], gap: float = HOUR, price: float | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    obj: dict[str, object] = {"metadata": {"gap_seconds": gap}, "data": data}
    if price is not None:
        obj["prices"] = [price] * len(data)
    (d / f"{name}_v100_1.json").write_text(json.dumps(obj))
    return d


def write_demand(path: Path, per_minute: list[float]) -> Path:
    path.write_text("Time (min),Requests\n" + "".join(f"{m},{n:g}\n" for m, n in enumerate(per_minute)))
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Two always-available zones at 1 USD/h spot, 4 one-hour ticks; 2 requests/s for 4 hours."""
    traces = write_zone(tmp_path / "t", "us-east-1a", [1, 1, 1, 1], price=1.0)
    write_zone(traces, "us-west-2a", [1, 1, 1, 1], price=1.0)
    return traces, write_demand(tmp_path / "demand.csv", [120] * 240)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["simulate-serving", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    obj = json.loads(out)  # exactly one JSON object on stdout
    assert isinstance(obj, dict)
    return obj


def base_args(traces: Path, demand: Path, policy: str, *extra: str) -> list[str]:
    return ["--traces", str(traces), "--demand", str(demand), "--replica-rps", "1", "--policy", policy,
            "--downscale-minutes", "0", *extra]


@pytest.mark.parametrize(("price", "expected"), [(3.0, 24.0), (2.5, 20.0)])
def test_ondemand_fleet_of_known_size_costs_size_x_price_x_hours(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], price: float, expected: float
) -> None:
    # 2 requests/s at 1 request/s per replica -> 2 replicas x price x 4 h, ready at once.
    obj = run_json(capsys, *base_args(*files, "ondemand", "--startup-minutes", "0",
                                      "--ondemand-price", str(price)))
    assert obj.keys() == JSON_KEYS
    assert obj["cost_usd"] == pytest.approx(expected)
    assert obj["ondemand_cost_usd"] == pytest.approx(expected)
    assert obj["savings_fraction"] == pytest.approx(0.0)
    assert (obj["slo_violation_fraction"], obj["unserved_fraction"], obj["preemptions"]) == (0.0, 0.0, 0)
    assert obj["mean_replicas"] == pytest.approx(2.0)
    assert obj["hours"] == pytest.approx(4.0)
    assert obj["zones"] == ["us-east-1a", "us-west-2a"]
    assert obj["tick_seconds"] == HOUR and obj["demand_hours"] == pytest.approx(4.0)
    assert obj["step_seconds"] == 60.0  # the per-minute demand's resolution


def test_startup_is_paid_and_unserved(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # One-hour start-up: the 2 replicas are paid from hour 0 but serve from hour 1, so hour 0
    # violates the SLO and its 2 requests/s (a quarter of all requests) go unserved.
    obj = run_json(capsys, *base_args(*files, "ondemand", "--startup-minutes", "60", "--ondemand-price", "3"))
    assert obj["cost_usd"] == pytest.approx(24.0)
    assert obj["slo_violation_fraction"] == pytest.approx(1 / 4)
    assert obj["unserved_fraction"] == pytest.approx(1 / 4)


def test_spot_hedge_costs_less_than_ondemand_when_spot_is_there(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 needed + 1 extra spot replica at 1 USD/h for 4 h = 12 USD, against 2 x 3 USD/h x 4 h = 24.
    args = base_args(*files, "spot-hedge", "--startup-minutes", "0", "--ondemand-price", "3")
    obj = run_json(capsys, *args)
    assert obj["cost_usd"] == pytest.approx(12.0)
    assert obj["ondemand_cost_usd"] == pytest.approx(24.0)
    assert obj["savings_fraction"] == pytest.approx(0.5)
    assert (obj["slo_violation_fraction"], obj["unserved_fraction"], obj["preemptions"]) == (0.0, 0.0, 0)
    none_extra = run_json(capsys, *args, "--extra-spot", "0")
    assert none_extra["cost_usd"] == pytest.approx(8.0)


def test_spot_hedge_spreads_over_zones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 3 spot replicas over two equal zones: 2 in us-east-1a, 1 in us-west-2a. us-east-1a goes in
    # hour 2 and takes 2 of them (not all 3), replaced in us-west-2a at once: 3 USD an hour, 12 USD.
    traces = write_zone(tmp_path / "t", "us-east-1a", [1, 1, 0, 1], price=1.0)
    write_zone(traces, "us-west-2a", [1, 1, 1, 1], price=1.0)
    demand = write_demand(tmp_path / "d.csv", [120] * 240)
    obj = run_json(capsys, *base_args(traces, demand, "spot-hedge", "--startup-minutes", "0"))
    assert obj["preemptions"] == 2
    assert obj["cost_usd"] == pytest.approx(12.0)
    assert obj["slo_violation_fraction"] == 0.0
    # In one zone, the whole fleet goes with it: hour 2 serves nothing.
    one = run_json(capsys, *base_args(traces, demand, "spot-one-zone", "--startup-minutes", "0"))
    assert (one["preemptions"], one["slo_violation_fraction"]) == (2, pytest.approx(1 / 4))
    assert one["unserved_fraction"] == pytest.approx(1 / 4)
    assert one["cost_usd"] == pytest.approx(2 * 1.0 * 3)


def test_peak_sizes_for_the_busiest_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 2-minute steps at 30 USD/h = 1 USD per replica-step; per-minute demand 1, 3, 1, 3 requests/s:
    # the step means (2 requests/s) need 2 replicas, the peaks (3) need 3; 2 steps.
    traces = write_zone(tmp_path / "t", "us-east-1a", [1, 1], gap=120)
    demand = write_demand(tmp_path / "d.csv", [60, 180, 60, 180])
    args = base_args(traces, demand, "ondemand", "--startup-minutes", "0", "--ondemand-price", "30",
                     "--step-seconds", "120")
    assert run_json(capsys, *args)["cost_usd"] == pytest.approx(4.0)
    assert run_json(capsys, *args, "--peak")["cost_usd"] == pytest.approx(6.0)
    # In the demand's own 1-minute steps (the default) the fleet follows each minute: 1, 3, 1, 3
    # replicas at 0.5 USD per replica-minute = 4 USD, and --peak changes nothing (one sample a step).
    args = base_args(traces, demand, "ondemand", "--startup-minutes", "0", "--ondemand-price", "30")
    for extra in ((), ("--peak",)):
        obj = run_json(capsys, *args, *extra)
        assert (obj["cost_usd"], obj["step_seconds"], obj["tick_seconds"]) == (pytest.approx(4.0), 60.0, 120)
        assert obj["slo_violation_fraction"] == 0.0


def test_demand_steps_inside_a_long_spot_tick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two 10-minute spot ticks (one zone, spot 6 USD/h = 0.1 USD per replica-minute, on-demand
    12 USD/h = 0.2), per-minute demand 1 request/s for minutes 0-4 and 3 for minutes 5-19; 1 request/s
    per replica, 2-minute start-up (2 steps), no extra spot, no scale-down delay.

    spot-hedge, minute by minute: 0-1: 1 spot and 1 on-demand starting, none ready (2 violations,
    0.3 USD each); 2-4: the spot replica ready, the on-demand one released (0.1 each); 5-6: demand
    needs 3, 2 more spot and 2 on-demand starting, 1 ready (2 violations, 0.3 + 0.4 each); 7-19: 3 spot
    (0.3 each). Cost 0.6 + 0.3 + 1.4 + 3.9 = 6.2 USD; 4 of 20 steps violate; unserved (1 + 1 + 2 + 2)
    of 5 * 1 + 15 * 3 = 50 requests/s-minutes. On the 10-minute tick grid (--step-seconds 600) the
    ramp would be one tick's mean instead (2, then 3 requests/s): the start-up takes a whole tick."""
    traces = write_zone(tmp_path / "t", "us-east-1a", [1, 1], gap=600, price=6.0)
    demand = write_demand(tmp_path / "d.csv", [60] * 5 + [180] * 15)
    obj = run_json(capsys, *base_args(traces, demand, "spot-hedge", "--startup-minutes", "2",
                                      "--extra-spot", "0", "--ondemand-price", "12"))
    assert obj["step_seconds"] == 60.0 and obj["hours"] == pytest.approx(20 / 60)
    assert obj["cost_usd"] == pytest.approx(6.2)
    assert obj["slo_violation_fraction"] == pytest.approx(4 / 20)
    assert obj["unserved_fraction"] == pytest.approx(6 / 50)
    assert obj["preemptions"] == 0


def test_table_output(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, *base_args(*files, "spot-hedge", "--startup-minutes", "0",
                                          "--ondemand-price", "3"))
    assert rc == 0, err
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "12.00 USD" in rows["cost"]
    assert "24.00 USD" in rows["on-demand cost"]
    assert "50.0%" in rows["savings"]
    assert "0.00%" in rows["SLO-violation steps"] and "0.00%" in rows["unserved requests"]


def test_cli_policies_and_defaults_match_the_simulator() -> None:
    assert FLEET_POLICY_NAMES == FLEET_POLICIES
    args = build_parser().parse_args(
        ["simulate-serving", "--traces", "x", "--demand", "y", "--replica-rps", "1", "--policy", "ondemand"]
    )
    spec = FleetSpec(replica_rps=1.0)
    assert (args.startup_minutes, args.downscale_minutes, args.min_replicas, args.extra_spot, args.peak) == (
        spec.startup_minutes, spec.downscale_minutes, spec.min_replicas, spec.extra_spot, spec.peak)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"--traces": "missing"}, "--traces: "),
        ({"--demand": "missing.csv"}, "--demand: "),
        ({"--demand": "bad_header.csv"}, "--demand: "),
        ({"--demand": "negative_minute.csv"}, "--demand: "),
        ({"--demand": "negative_count.csv"}, "--demand: "),
        ({"--replica-rps": "-2"}, "--replica-rps must be a number > 0"),
        ({"--replica-rps": "0"}, "--replica-rps must be a number > 0"),
        ({"--replica-rps": "nan"}, "--replica-rps must be a number > 0"),
        ({"--policy": "spot-everywhere"}, "--policy: unknown fleet policy 'spot-everywhere'"),
        ({"--startup-minutes": "-1"}, "--startup-minutes must be a number >= 0"),
        ({"--downscale-minutes": "-1"}, "--downscale-minutes must be a number >= 0"),
        ({"--min-replicas": "-1"}, "--min-replicas must be >= 0"),
        ({"--extra-spot": "-1"}, "--extra-spot must be >= 0"),
        ({"--ondemand-price": "0"}, "--ondemand-price must be a number > 0"),
        ({"--spot-price": "-1"}, "--spot-price must be a number > 0"),
        ({"--step-seconds": "-60"}, "--step-seconds must be a number of seconds > 0"),
        ({"--step-seconds": "nan"}, "--step-seconds must be a number of seconds > 0"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_and_exit_2(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    change: dict[str, str], needle: str
) -> None:
    (tmp_path / "bad_header.csv").write_text("when,how many\n1,2\n")
    (tmp_path / "negative_minute.csv").write_text("Time (min),Requests\n0,5\n-1,100\n")
    (tmp_path / "negative_count.csv").write_text("Time (min),Requests\n0,5\n1,-3\n")
    traces, demand = files
    flags = {"--traces": str(traces), "--demand": str(demand), "--replica-rps": "1", "--policy": "ondemand",
             "--startup-minutes": "5", "--downscale-minutes": "10", "--min-replicas": "1",
             "--extra-spot": "1", "--ondemand-price": "3", "--spot-price": "1"}
    flags.update({k: str(tmp_path / v) if k in ("--traces", "--demand") else v for k, v in change.items()})
    rc, out, err = run(capsys, *[x for kv in flags.items() for x in kv])
    assert rc == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("ray-multicloud simulate-serving: " + needle), err
    if "--demand" in change or "--traces" in change:
        assert str(tmp_path / next(iter(change.values()))) in err  # names the file too


def test_predictive_on_too_short_a_history_scales_reactively_with_one_note_line(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # 24 one-minute steps of demand; a 5 min start-up is a lead of 5 steps, so a forecast needs
    # 5 + 20 = 25 steps.
    traces, _ = files
    demand = write_demand(traces.parent / "short.csv", [120] * 24)
    rc, out, err = run(capsys, *base_args(traces, demand, "predictive"), "--json")
    assert rc == 0, err
    assert err.splitlines() == [
        "ray-multicloud simulate-serving: note: demand history of 24 steps of 60 s (0.40 h) is too short "
        "to forecast 5 steps ahead (needs 25: the start-up lead plus 20 steps to score forecasters on): "
        "scaled reactively, as spot-hedge"
    ]
    pred = json.loads(out)
    hedge = run_json(capsys, *base_args(traces, demand, "spot-hedge"))
    assert pred["forecaster"] is None
    for key in ("cost_usd", "slo_violation_fraction"):
        assert pred[key] == hedge[key]


def test_peaks_file_raises_the_fleet_for_its_window(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 replicas for 4 h at $3/h = 24 USD; a peak of 5 replicas from 01:00 to 02:00 on the default
    # trace start (Monday 2024-01-01 00:00 UTC), start-up 0: tick 1 holds 5 -> (2 + 5 + 2 + 2) x 3 = 33.
    peaks = tmp_path / "peaks.yaml"
    peaks.write_text("peaks:\n  - {days: [mon], from: '01:00', to: '02:00', replicas: 5}\n")
    obj = run_json(capsys, *base_args(*files, "ondemand", "--startup-minutes", "0", "--ondemand-price", "3",
                                      "--peaks", str(peaks)))
    assert obj.keys() == JSON_KEYS
    assert obj["cost_usd"] == pytest.approx(33.0)
    peaks.write_text("peaks:\n  - {days: [mon], from: '01:00', to: '02:00'}\n")
    rc, out, err = run(capsys, *base_args(*files, "ondemand", "--peaks", str(peaks)))
    assert rc == 2 and out == ""
    assert err.strip().count("\n") == 0 and "--peaks:" in err and "peaks[0].replicas" in err
