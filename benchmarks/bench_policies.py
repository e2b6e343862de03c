"""Every deadline policy over every shared spot trace, against the offline optimum.

    .venv/bin/python benchmarks/bench_policies.py            # full grid, a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_policies.py --quick    # smaller grid, under a minute

For each trace set (a folder of per-zone files of the shared SkyPilot spot traces), job length,
deadline (a multiple of the job length) and start offset, it simulates ``ondemand``, ``greedy``,
``eager-next-region``, ``uniform-progress``, ``multicloud`` and computes ``optimal``; ``greedy`` and
``uniform-progress`` follow Can't Be Late's rules (policy/deadline.py), and this project's earlier
variants of them run too as ``greedy-ondemand`` and ``up-eager`` (not the papers' policies), and
``ross`` (ROSS, arXiv 2601.14612: randomized, seeded per scenario by :func:`scenario_seed`). The
single-zone policies (``greedy``, ``uniform-progress``, the two variants and ``ross``) are run once per
home zone and averaged: their figure is what a user who picks a zone at random can expect.

Restart and checkpoint times are charged exactly (not rounded to ticks) by the engine and the
optimum. Every figure is over the whole of every trace: for ``multicloud``, whose defaults were
tuned on these same traces, they are in-sample (there is no held-out split in this script). Writes
``benchmarks/results/policies.md`` (+ ``policies.json``) and PNG plots next to it.

Prices: a zone's spot price comes from its file's ``prices`` when present; otherwise it is 30% of
on-demand (the ratio the priced p3.2xlarge files of aws-04-22-2023 show: 0.918 / 3.06). On-demand
prices are public list prices (AWS us-east-1 price list for p2/p3/r5; GCP c3-highcpu-88
us-central1 from the Cyclenerd GCP price file in shared/data/catalog).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from _readme import replace_section

from ray_multicloud.policy.deadline import (
    POLICIES,
    ROSS,
    VARIANTS,
    DeadlinePolicy,
    Greedy,
    GreedySingleZone,
    UniformProgress,
    UniformProgressEager,
)
from ray_multicloud.sim import JobSpec, TraceSet, load_traces, optimal_cost, simulate
from ray_multicloud.sim.sweep import run_tasks

SHARED = Path(__file__).resolve().parents[2] / "shared/data/preemption/skypilot-spot-traces"
if not SHARED.exists():
    SHARED = Path("/work/shared/data/preemption/skypilot-spot-traces")
RESULTS = Path(__file__).resolve().parent / "results"
ORDER = (
    "ondemand",
    "greedy",
    "greedy-ondemand",
    "eager-next-region",
    "uniform-progress",
    "up-eager",
    "ross",
    "multicloud",
    "optimal",
)
SINGLE_ZONE = {
    "greedy": Greedy,
    "greedy-ondemand": GreedySingleZone,
    "uniform-progress": UniformProgress,
    "up-eager": UniformProgressEager,
}
SPOT_RATIO = 0.3


@dataclass(frozen=True, slots=True)
class SetSpec:
    label: str
    folder: str
    pattern: str
    ondemand: float
    nodes: int = 1


SETS = (
    SetSpec("aws-02-15 p3.2xl 9 zones", "availability/1-node/aws-02-15-2023", "*.json", 3.06),
    SetSpec("aws-10-26 p3.2xl 2 zones", "availability/1-node/aws-10-26-2022", "*_v100_1.json", 3.06),
    SetSpec("aws-10-26 p3.16xl 2 zones", "availability/1-node/aws-10-26-2022", "*_v100_8.json", 24.48),
    SetSpec("aws-10-26 p2.xl 2 zones", "availability/1-node/aws-10-26-2022", "*_k80_1.json", 0.90),
    SetSpec("aws-10-26 p2.8xl 2 zones", "availability/1-node/aws-10-26-2022", "*_k80_8.json", 7.20),
    SetSpec("aws-08-27 p3.2xl x16 3 zones", "availability/16-node/aws-08-27-2023", "*.json", 3.06, 16),
    SetSpec("aws-04-22 p3.2xl 4 zones", "preemption/1-node/aws-04-22-2023", "*.json", 3.06),
    SetSpec("aws-04-19 r5.16xl 3 zones", "preemption/1-node/aws-04-19-2023", "*.json", 4.032),
    SetSpec("gcp-04-30 c3-88 4 zones", "preemption/1-node/gcp-04-30-2023", "*.json", 3.742288),
    SetSpec("aws-08-03 p3.2xl x4 3 zones", "preemption/4-node/aws-08-03-2023", "*.json", 3.06, 4),
)

FULL = {"hours": (4.0, 12.0, 24.0, 48.0), "factors": (1.25, 1.5, 2.0), "starts": 4}
QUICK = {"hours": (4.0, 12.0), "factors": (1.5, 2.0), "starts": 2}
CHECKPOINT_MIN = 30.0
RESTART_MIN = 6.0

_cache: dict[str, TraceSet] = {}


def _traces(s: SetSpec) -> TraceSet:
    key = s.folder + s.pattern
    if key not in _cache:
        _cache[key] = load_traces(
            [SHARED / s.folder], default_spot_price=SPOT_RATIO * s.ondemand, pattern=s.pattern
        )
    return _cache[key]


MODELS = ("periodic", "on notice")
"""Job models: ``periodic`` checkpoints only every CHECKPOINT_MIN; ``on notice`` also checkpoints
when told its node is going (``JobSpec.checkpoint_on_notice``), so a preemption loses no work."""


@dataclass(frozen=True, slots=True)
class Task:
    set_index: int
    hours: float
    factor: float
    start: int
    model: str = "periodic"


def scenario_seed(task: Task) -> int:
    """``ross``'s seed in a scenario: the CRC-32 of its trace set, job length, deadline factor and start
    offset, so its figures are reproducible and both job models and every home zone share one draw."""
    label = SETS[task.set_index].label
    return zlib.crc32(f"{label}|{task.hours:g}|{task.factor:g}|{task.start}".encode())


def _run_policy(
    ts: TraceSet, spec: JobSpec, name: str, od: float, start: int, seed: int = 0
) -> tuple[float, float, float]:
    """(cost, missed fraction, preemptions) — averaged over home zones for single-zone policies
    (``ross`` among them, seeded with ``seed``)."""
    variants: list[DeadlinePolicy]
    if name == "ross":
        variants = [ROSS(home_zone=z, seed=seed) for z in ts.names]
    elif name in SINGLE_ZONE:
        variants = [SINGLE_ZONE[name](home_zone=z) for z in ts.names]
    else:
        variants = [{**POLICIES, **VARIANTS}[name]]
    runs = [simulate(ts, spec, p, ondemand_price=od, start_tick=start) for p in variants]
    return (
        statistics.fmean(r.cost_usd for r in runs),
        statistics.fmean(0.0 if r.met_deadline else 1.0 for r in runs),
        statistics.fmean(r.preemptions for r in runs),
    )


def job_spec(task: Task) -> JobSpec:
    """The job a task simulates: its length and deadline, this benchmark's checkpoint and restart
    times, its trace set's node count, and its job model."""
    return JobSpec(
        task.hours,
        task.hours * task.factor,
        CHECKPOINT_MIN,
        RESTART_MIN,
        nodes=SETS[task.set_index].nodes,
        checkpoint_on_notice=task.model == "on notice",
    )


def run_task(task: Task) -> dict[str, object]:
    s = SETS[task.set_index]
    ts = _traces(s)
    spec = job_spec(task)
    opt = optimal_cost(ts, spec, ondemand_price=s.ondemand, start_tick=task.start)
    out: dict[str, object] = {
        "model": task.model,
        "set": s.label,
        "hours": task.hours,
        "factor": task.factor,
        "start": task.start,
        "ondemand_cost": opt.ondemand_cost_usd,
        "optimal": opt.cost_usd,
    }
    for name in ORDER[:-1]:
        cost, missed, pre = _run_policy(ts, spec, name, s.ondemand, task.start, scenario_seed(task))
        out[name] = cost
        out[name + ":missed"] = missed
        out[name + ":preemptions"] = pre
    return out


def make_tasks(grid: dict[str, object]) -> list[Task]:
    tasks: list[Task] = []
    hours_list = grid["hours"]
    factors = grid["factors"]
    n_starts = grid["starts"]
    assert isinstance(hours_list, tuple) and isinstance(factors, tuple) and isinstance(n_starts, int)
    for i, s in enumerate(SETS):
        ts = _traces(s)
        for h in hours_list:
            for f in factors:
                need = math.ceil(h * f * 3600 / ts.gap_seconds) + 1
                room = ts.ticks - need
                if room < 0:
                    continue  # the trace is shorter than the deadline
                starts = (
                    sorted({room * k // max(1, n_starts - 1) for k in range(n_starts)})
                    if n_starts > 1
                    else [0]
                )
                tasks.extend(Task(i, h, f, st, m) for st in starts for m in MODELS)
    return tasks


def summarise(rows: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in ORDER:
        fr = [float(str(r[name])) / float(str(r["ondemand_cost"])) for r in rows]
        gaps = [float(str(r[name])) / float(str(r["optimal"])) - 1.0 for r in rows]
        missed = [0.0 if name == "optimal" else float(str(r[name + ":missed"])) for r in rows]
        out[name] = {
            "cost_fraction": statistics.fmean(fr),
            "gap": statistics.fmean(gaps),
            "gap_max": max(gaps),
            "misses": sum(missed),
            "runs": len(rows),
        }
    best_saving = 1.0 - out["optimal"]["cost_fraction"]
    for sm in out.values():
        sm["captured"] = (1.0 - sm["cost_fraction"]) / best_saving if best_saving > 0 else math.nan
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def model_of(row: dict[str, object]) -> str:
    return str(row.get("model", "periodic"))


def _summary_lines(rows: list[dict[str, object]]) -> list[str]:
    """One summary table: a row per policy, a column group per job model present in ``rows``."""
    models = [m for m in MODELS if any(model_of(r) == m for r in rows)]
    summ = {m: summarise([r for r in rows if model_of(r) == m]) for m in models}
    head = "| policy | " + " | ".join(
        f"{m}: cost / on-demand | {m}: share of the optimum's saving | {m}: misses "
        f"| {m}: mean gap to optimum | {m}: worst gap"
        for m in models
    )
    lines = [head + " |", "|---|" + "---:|---:|---:|---:|---:|" * len(models)]
    for name in ORDER:
        cells = []
        for m in models:
            sm = summ[m][name]
            cells.append(
                f"{_pct(sm['cost_fraction'])} | {_pct(sm['captured'])} "
                f"| {sm['misses']:.1f} / {int(sm['runs'])} | {_pct(sm['gap'])} | {_pct(sm['gap_max'])}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _detail_lines(rows: list[dict[str, object]], model: str) -> list[str]:
    lines = [
        f"## Job model '{model}', per trace set: mean gap to optimum (cost / on-demand in brackets; "
        "misses after !)",
        "",
    ]
    lines.append("| trace set | runs | " + " | ".join(ORDER) + " |")
    lines.append("|---|---:|" + "---:|" * len(ORDER))
    for spec in SETS:
        sub = [r for r in rows if r["set"] == spec.label]
        if not sub:
            continue
        sm = summarise(sub)
        cells = []
        for name in ORDER:
            c = f"{_pct(sm[name]['gap'])} ({_pct(sm[name]['cost_fraction'])})"
            if sm[name]["misses"]:
                c += f" !{sm[name]['misses']:.1f}"
            cells.append(c)
        lines.append(f"| {spec.label} | {len(sub)} | " + " | ".join(cells) + " |")
    lines += ["", f"## Job model '{model}', by deadline (deadline = factor x job length): mean gap", ""]
    factors = sorted({float(str(r["factor"])) for r in rows})
    lines.append("| factor | " + " | ".join(ORDER) + " |")
    lines.append("|---:|" + "---:|" * len(ORDER))
    for f in factors:
        sm = summarise([r for r in rows if r["factor"] == f])
        lines.append(f"| {f:g} | " + " | ".join(_pct(sm[n]["gap"]) for n in ORDER) + " |")
    return [*lines, ""]


def write_markdown(rows: list[dict[str, object]], path: Path, command: str, seconds: float) -> str:
    summary = _summary_lines(rows)
    lines = [
        "# Deadline policies on the shared spot traces",
        "",
        f"Command: `{command}` ({seconds:.0f} s on this machine). {len(rows)} scenarios: every trace "
        f"set x job length x deadline x start offset x job model; checkpoint every {CHECKPOINT_MIN:g} "
        f"min, restart {RESTART_MIN:g} min. Job models: 'periodic' checkpoints only on that schedule; "
        "'on notice' also checkpoints when told its node is going (interruption notice, or a move's "
        "drain), so a preemption loses no work. Traces: github.com/skypilot-org/spot-traces (Can't Be "
        "Late, NSDI'24). Model: ray_multicloud/sim/engine.py.",
        "",
        "Cost is a fraction of running the job on on-demand; the share of the optimum's saving is "
        "(1 - mean cost) / (1 - the optimum's mean cost); the gap is cost / optimum - 1 (optimum: "
        "offline DP with the whole trace known, ray_multicloud/sim/optimal.py, under the same job model). "
        "Misses count deadline misses (single-zone policies are averaged over home zones, so a miss can "
        "be fractional).",
        "",
        "## Summary",
        "",
        *summary,
        "",
    ]
    for m in MODELS:
        sub = [r for r in rows if model_of(r) == m]
        if sub:
            lines += _detail_lines(sub, m)
    path.write_text("\n".join(lines) + "\n")
    return "\n".join(summary)


def write_plots(rows: list[dict[str, object]], out: Path, suffix: str = "") -> list[Path]:
    """Cost, gap per trace set and gap per deadline for ``rows`` (one job model), as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    summ = summarise(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    vals = [summ[n]["cost_fraction"] for n in ORDER]
    bars = ax.bar(ORDER, vals, color=["#999", "#c77", "#e9b", "#d95", "#77c", "#aac", "#b8a", "#2a7", "#333"])
    for b, n in zip(bars, ORDER, strict=True):
        ax.annotate(
            f"{100 * summ[n]['cost_fraction']:.0f}%\nmiss {summ[n]['misses']:.1f}",
            (b.get_x() + b.get_width() / 2, b.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("cost / on-demand")
    ax.set_ylim(0, 1.25)
    model = suffix.strip("_").replace("_", " ") or "periodic"
    ax.set_title(f"Mean cost over all shared traces, job model '{model}' (lower is better)", fontsize=10)
    plt.setp(ax.get_xticklabels(), rotation=25, fontsize=8)
    fig.tight_layout()
    p = out / f"policies_cost{suffix}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    labels = [s.label for s in SETS if any(r["set"] == s.label for r in rows)]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    names = [n for n in ORDER if n not in ("optimal",)]
    width = 0.8 / len(names)
    for j, n in enumerate(names):
        ys = [summarise([r for r in rows if r["set"] == lab])[n]["gap"] * 100 for lab in labels]
        ax.bar([i + j * width for i in range(len(labels))], ys, width=width, label=n)
    ax.set_xticks(
        [i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=25, ha="right", fontsize=8
    )
    ax.set_ylabel("gap to optimum, %")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(0, 2000)
    ax.legend(fontsize=8, ncol=len(names), loc="upper center")
    ax.set_title(f"Distance from the offline optimum per trace set, job model '{model}'")
    fig.tight_layout()
    p = out / f"policies_gap_by_trace{suffix}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    factors = sorted({float(str(r["factor"])) for r in rows})
    for n in names:
        ax.plot(
            factors,
            [summarise([r for r in rows if r["factor"] == f])[n]["gap"] * 100 for f in factors],
            marker="o",
            label=n,
        )
    ax.set_xlabel("deadline / job length")
    ax.set_ylabel("mean gap to optimum, %")
    ax.set_yscale("symlog", linthresh=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / f"policies_gap_by_deadline{suffix}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller grid (2 lengths x 2 deadlines x 2 starts)")
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray the sweep starts")
    ap.add_argument("--address", help="run the scenarios as tasks on this Ray cluster (host:port or 'auto') "
                    "instead of a local Ray of --workers CPUs")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    ap.add_argument("--from-json", type=Path, help="re-render tables and plots from a previous policies.json")
    ap.add_argument("--no-speed", action="store_true", help="skip the 45-day speed measurement")
    args = ap.parse_args(argv)
    command = ".venv/bin/python benchmarks/bench_policies.py" + (" --quick" if args.quick else "")
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        return _render(saved["rows"], args, saved["command"], float(saved["seconds"]))
    t0 = time.perf_counter()
    tasks = make_tasks(QUICK if args.quick else FULL)
    where = args.address or f"a local Ray of {args.workers} CPUs"
    print(f"{len(tasks)} scenarios as Ray tasks on {where}", file=sys.stderr)
    rows: list[dict[str, object]] = []
    for i, r in enumerate(run_tasks(run_task, tasks, address=args.address, workers=args.workers)):
        rows.append(r)
        if sys.stderr.isatty() or (i + 1) % max(1, len(tasks) // 10) == 0:
            print(
                f"\r{i + 1}/{len(tasks)} scenarios",
                end="" if sys.stderr.isatty() else "\n",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    rows.sort(
        key=lambda r: (
            model_of(r),
            str(r["set"]),
            float(str(r["hours"])),
            float(str(r["factor"])),
            int(str(r["start"])),
        )
    )
    seconds = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "policies.json").write_text(
        json.dumps({"command": command, "seconds": seconds, "rows": rows}, indent=1)
    )
    return _render(rows, args, command, seconds)


def measure_speed() -> str:
    """Wall time of one run per policy over the whole 45-day, 9-zone aws-02-15-2023 trace (195 s tick)."""
    s = SETS[0]
    ts = _traces(s)
    spec = JobSpec(700.0, 1075.0, CHECKPOINT_MIN, RESTART_MIN)
    lines = [
        f"Speed: one job of 700 h with a 1075 h deadline over {ts.hours / 24:.1f} days x "
        f"{len(ts.names)} zones at the trace's {ts.gap_seconds:g} s tick ({ts.ticks} ticks), one process:",
        "",
        "| policy | wall s | CPU s | ticks simulated |",
        "|---|---:|---:|---:|",
    ]
    for name in ORDER:
        t0, c0 = time.perf_counter(), time.process_time()
        if name == "optimal":
            r = optimal_cost(ts, spec, ondemand_price=s.ondemand)
            ticks = r.deadline_ticks or 0
        else:
            r = simulate(ts, spec, {**POLICIES, **VARIANTS}[name], ondemand_price=s.ondemand)
            ticks = round(r.hours_elapsed * 3600 / ts.gap_seconds)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {ticks} |")
    lines.append("")
    lines.append(f"(1-minute load average when measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.)")
    return "\n".join(lines)


def _render(rows: list[dict[str, object]], args: argparse.Namespace, command: str, seconds: float) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    summary = write_markdown(rows, args.out / "policies.md", command, seconds)
    for m in MODELS:
        sub = [r for r in rows if model_of(r) == m]
        suffix = "" if m == "periodic" else "_" + m.replace(" ", "_")
        for p in write_plots(sub, args.out, suffix) if sub else []:
            print(f"wrote {p}", file=sys.stderr)
    print(summary)
    speed = "" if args.no_speed else measure_speed()
    if speed:
        print(speed)
    if not args.no_readme:
        update_readme(
            Path(__file__).resolve().parent / "README.md", command, summary, seconds, len(rows), speed
        )
    return 0


def update_readme(path: Path, command: str, summary: str, seconds: float, runs: int, speed: str = "") -> None:
    """Replace (or append) this benchmark's section of benchmarks/README.md; other sections stay."""
    section = (
        "## bench_policies\n\n"
        "Deadline policies (ray_multicloud/policy/deadline.py) on every shared spot trace against the "
        "offline optimum (ray_multicloud/sim/optimal.py), with the job model of ray_multicloud/sim/engine.py "
        f"(checkpoint every {CHECKPOINT_MIN:g} min, restart {RESTART_MIN:g} min, both charged exactly, not "
        "rounded to the trace's ticks; jobs of 4-48 h, deadlines 1.25-2x the job, several start offsets), "
        "for two job models: 'periodic' checkpoints only on that schedule; 'on notice' also saves when told "
        "its node is going (a spot interruption notice, or the PREEMPTION drain before every move: "
        "`ray.train.get_preemption_info()` in the training loop, as "
        "`ray_multicloud/scenarios/train_migration.py` does), so a preemption loses no work; that needs a "
        "state that saves within the notice (AWS 2 min, GCP/Azure 30 s). `greedy` and `uniform-progress` "
        "follow Can't Be Late's (NSDI '24) rules; `greedy-ondemand` and `up-eager` are this project's "
        "earlier, weaker variants of them, kept for comparison with the figures published before. "
        "Details per trace set and deadline: `benchmarks/results/policies.md`; plots: "
        "`benchmarks/results/policies_*.png`. Traces: github.com/skypilot-org/spot-traces (Can't Be Late, "
        "NSDI'24). Spot prices from the files where they have them, else 30% of on-demand; on-demand list "
        "prices: AWS us-east-1 (p2, p3, r5), GCP c3-highcpu-88 us-central1 (Cyclenerd price file in "
        "shared/data/catalog).\n\n"
        f"```\n{command}\n```\n\n"
        f"{runs} scenarios, {seconds:.0f} s on this machine (2 cores).\n\n{summary}\n\n"
        "Half in-sample: every figure above is over the whole of every trace, and multicloud's defaults "
        "were chosen by `benchmarks/tune_policies.py` on the first half of these same traces, so its row "
        "mixes in-sample and held-out scenarios; this script has no held-out split (tune_policies.py "
        "reports the halves apart) and gives the policies no interruption rates. Every trace set here is one "
        "cloud's zones and moves pay no egress, so multicloud never crosses a cloud in this table. "
        "The single-zone baselines are averaged over home zones. Reading it: the optimum knows every "
        "future preemption, so it never loses work and picks the zone whose spot run lasts; an online "
        "policy pays a restart plus up to a checkpoint interval of lost work on every preemption. The "
        "papers' greedy and uniform-progress keep a working spot node until it is preempted, as the "
        "paper does (its model loses no work at a preemption): under the periodic model that is where "
        "their deadline misses come from.\n"
        + (f"\n{speed}\n" if speed else "")
    )
    replace_section("## bench_policies", section, path)


if __name__ == "__main__":
    sys.exit(main())
