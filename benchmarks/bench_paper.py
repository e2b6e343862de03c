"""Can't Be Late's Table 3 setting on this project's engine: Greedy, Uniform Progress and the optimum.

    .venv/bin/python benchmarks/bench_paper.py             # 8 traces x 100 starts, a few minutes
    .venv/bin/python benchmarks/bench_paper.py --starts 10 # a quick look

Setting (Wu et al., "Can't Be Late: Optimizing Spot Instance Savings under Deadlines", NSDI '24,
Table 3's): a 48 h job, a 60 h deadline, a 0.2 h restart (charged exactly: 1.2 ticks of the
10-minute traces), on each single-zone trace of ``availability/1-node/aws-10-26-2022`` (the
paper's traces: K80 and V100, x1 and x8, us-west-2a/b), from 100 start offsets evenly spread over
the trace. The paper's model loses no work at a preemption; here that is a job that checkpoints on
notice (``JobSpec.checkpoint_on_notice``). Policies: ``greedy`` and ``uniform-progress`` of
ray_multicloud/policy/deadline.py (the paper's rules), ``up-eager`` (this project's earlier
variant, for comparison) and the offline optimum (ray_multicloud/sim/optimal.py) on the same zone.

Prices: the files carry none, so spot is 30% of on-demand as in bench_policies.py; on-demand is the
AWS us-east-1 list price of the instance (p2.xlarge 0.90, p2.8xlarge 7.20, p3.2xlarge 3.06,
p3.16xlarge 24.48 USD/h). Writes ``benchmarks/results/paper_table3.md`` and a section of
benchmarks/README.md.

The paper's own Table 3 figures are not restated here: its text is not among the shared data
(``../shared/data``), and figures copied from memory would not be evidence. Put them next to these
from the paper itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _readme import replace_section

from ray_multicloud.policy.deadline import DeadlinePolicy, Greedy, UniformProgress, UniformProgressEager
from ray_multicloud.sim import JobSpec, TraceSet, load_traces, optimal_cost, simulate
from ray_multicloud.sim.sweep import run_tasks

SHARED = Path(__file__).resolve().parents[2] / "shared/data/preemption/skypilot-spot-traces"
if not SHARED.exists():
    SHARED = Path("/work/shared/data/preemption/skypilot-spot-traces")
FOLDER = SHARED / "availability/1-node/aws-10-26-2022"
RESULTS = Path(__file__).resolve().parent / "results"
JOB_H, DEADLINE_H, RESTART_MIN = 48.0, 60.0, 12.0
SPOT_RATIO = 0.3
ONDEMAND = {"k80_1": 0.90, "k80_8": 7.20, "v100_1": 3.06, "v100_8": 24.48}
POLICY_NAMES = ("greedy", "uniform-progress", "up-eager", "optimal")


def _policy(name: str) -> DeadlinePolicy:
    policies: dict[str, DeadlinePolicy] = {
        "greedy": Greedy(),
        "uniform-progress": UniformProgress(),
        "up-eager": UniformProgressEager(),
    }
    return policies[name]


@dataclass(frozen=True, slots=True)
class Task:
    file: str
    start: int


def _trace(file: str) -> TraceSet:
    od = ONDEMAND[file.split("_", 1)[1].removesuffix(".json")]
    return load_traces([FOLDER / file], default_spot_price=SPOT_RATIO * od)


def _ondemand(file: str) -> float:
    return ONDEMAND[file.split("_", 1)[1].removesuffix(".json")]


def spec() -> JobSpec:
    return JobSpec(JOB_H, DEADLINE_H, 30.0, RESTART_MIN, checkpoint_on_notice=True)


def run_task(task: Task) -> dict[str, object]:
    ts = _trace(task.file)
    od = _ondemand(task.file)
    out: dict[str, object] = {"file": task.file, "start": task.start}
    opt = optimal_cost(ts, spec(), ondemand_price=od, start_tick=task.start)
    out["ondemand_cost"] = opt.ondemand_cost_usd
    out["optimal"] = opt.cost_usd
    for name in POLICY_NAMES[:-1]:
        r = simulate(ts, spec(), _policy(name), ondemand_price=od, start_tick=task.start)
        out[name] = r.cost_usd
        out[name + ":spot_hours"] = r.spot_hours
        out[name + ":missed"] = not r.met_deadline
    return out


def make_tasks(starts: int) -> list[Task]:
    tasks = []
    for f in sorted(p.name for p in FOLDER.glob("*.json")):
        ts = _trace(f)
        room = ts.ticks - (round(DEADLINE_H * 3600 / ts.gap_seconds) + 1)
        picks = sorted({room * k // max(1, starts - 1) for k in range(starts)}) if starts > 1 else [0]
        tasks.extend(Task(f, s) for s in picks)
    return tasks


def table(rows: list[dict[str, object]]) -> str:
    def f(x: object) -> float:
        return float(str(x))

    lines = [
        "| policy | mean cost / on-demand | mean saving | runs costing more than on-demand "
        "| deadline misses | mean spot hours | mean gap to optimum |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in POLICY_NAMES:
        frac = [f(r[name]) / f(r["ondemand_cost"]) for r in rows]
        gap = [f(r[name]) / f(r["optimal"]) - 1 for r in rows]
        over = sum(x > 1 + 1e-9 for x in frac)
        miss = "-" if name == "optimal" else str(sum(bool(r[name + ":missed"]) for r in rows))
        spot = "-"
        if name != "optimal":
            spot = f"{statistics.fmean(f(r[name + ':spot_hours']) for r in rows):.1f}"
        lines.append(
            f"| {name} | {100 * statistics.fmean(frac):.1f}% | {100 * (1 - statistics.fmean(frac)):.1f}% "
            f"| {over} / {len(rows)} | {miss} | {spot} | {100 * statistics.fmean(gap):.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=100, help="start offsets per trace file (default 100)")
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray the sweep starts")
    ap.add_argument("--address", help="run the scenarios as tasks on this Ray cluster (host:port or 'auto')")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--skynomad", action="store_true",
                    help="run SkyNomad's V100 evaluation setting instead (benchmarks/bench_skynomad.py)")
    args = ap.parse_args(argv)
    if args.skynomad:
        import bench_skynomad

        return bench_skynomad.main([])
    t0 = time.perf_counter()
    tasks = make_tasks(args.starts)
    rows = list(run_tasks(run_task, tasks, address=args.address, workers=args.workers))
    rows.sort(key=lambda r: (str(r["file"]), int(str(r["start"]))))
    seconds = time.perf_counter() - t0
    command = ".venv/bin/python benchmarks/bench_paper.py" + (
        f" --starts {args.starts}" if args.starts != 100 else ""
    )
    body = table(rows)
    per_file = [
        "",
        "",
        "Per trace file (mean cost / on-demand):",
        "",
        "| file | " + " | ".join(POLICY_NAMES) + " |",
        "|---|" + "---:|" * len(POLICY_NAMES),
    ]
    for f in sorted({str(r["file"]) for r in rows}):
        sub = [r for r in rows if r["file"] == f]
        cells = []
        for n in POLICY_NAMES:
            mean = statistics.fmean(float(str(r[n])) / float(str(r["ondemand_cost"])) for r in sub)
            cells.append(f"{100 * mean:.1f}%")
        per_file.append(f"| {f} | " + " | ".join(cells) + " |")
    text = (
        "## bench_paper (Can't Be Late, Table 3 setting)\n\n"
        f"48 h job, 60 h deadline, 0.2 h restart charged exactly, checkpoints on notice (the paper's model "
        f"loses no work at a preemption), each single-zone trace of aws-10-26-2022 from {args.starts} start "
        f"offsets ({len(rows)} runs); spot 30% of on-demand (the files carry no prices). The paper's own "
        "figures are not restated: its text is not in the shared data (see the script's docstring).\n\n"
        f"```\n{command}\n```\n\n{len(rows)} runs, {seconds:.0f} s on this machine (2 cores).\n\n"
        + body
        + "\n".join(per_file)
        + "\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "paper_table3.md").write_text(text)
    print(text)
    if not args.no_readme:
        replace_section("## bench_paper (Can't Be Late, Table 3 setting)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
