"""How far ``multicloud`` is from the offline optimum, why, and whether its parameters generalise.

    .venv/bin/python benchmarks/bench_policy_limits.py            # full grid, a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_policy_limits.py --quick    # small grid

Same scenarios as ``benchmarks/bench_policies.py`` (every shared trace set x job length x deadline
x four start offsets spread over the trace), for each of its job models (``periodic``: checkpoints
only every 30 min; ``on notice``: also on the interruption notice, so a preemption loses no work).
The optimum comes from that benchmark's ``results/policies.json`` when it holds the scenario, else
it is computed here.

1. **Held-out split (in time).** A scenario whose whole window (start to deadline) lies in the
   first half of its trace is *train*; one that starts in the second half is *test*; the few that
   straddle the middle are in neither (they count in "all"). ``MultiCloud``'s parameters are
   searched over a grid on the train scenarios only; the table shows the shipped defaults and the
   train-best setting on both halves.
2. **Limits of the policy family**, two diagnostics that cheat on purpose (never shipped):
   *best of grid in hindsight* takes, for every scenario, the cheapest of all grid settings that met
   the deadline (what perfect per-job tuning could buy); *oracle zone choice* runs the defaults but,
   whenever the policy looks for a spot zone, shows it only the available zone whose current run
   lasts longest in the trace's future (what a perfect availability predictor could buy);
   *oracle preemption warning* (periodic job model only) runs the defaults but warns them, one
   restart plus one checkpoint interval ahead, of each preemption that would cost work, so the job
   leaves at its last checkpoint (:class:`OracleWarning` says exactly what it knows): *own zone only*
   is told only of the zone it runs in; *every zone* also of the zones it could start in, so it never
   starts where its first checkpoint would be lost. What avoiding the work lost at preemptions could
   buy: the part of the gap only foresight removes. *Oracle zone choice + preemption warning* has
   both oracles (warning of every zone).
3. **Where the gap goes** for the defaults: mean preemptions, restart overhead, lost work and
   on-demand hours per job.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import bench_policies as bp
import numpy as np
import numpy.typing as npt
from _readme import replace_section

from ray_multicloud.policy.deadline import WAIT, JobView, Kind, Memory, MultiCloud, Step
from ray_multicloud.sim import SimResult, optimal_cost, simulate
from ray_multicloud.sim.sweep import map_tasks

FULL_GRID = {
    "keep_share": (0.3, 0.6, 0.9),
    "wait_reserves": (1.0, 1.5, 2.5),
    "keep_per_work": (0.0, 0.15, 0.25),
    "move_min_uptime_hours": (0.0, 0.5),
}
QUICK_GRID = {"keep_share": (0.3, 0.6), "keep_per_work": (0.25,)}


@dataclass(frozen=True, slots=True)
class OracleZones:
    """Diagnostic only: ``inner`` sees, among the zones it could move to, just the one whose
    availability run lasts longest from now (read from the trace's future); its own zone stays
    visible. Everything else is ``inner``'s decision."""

    inner: MultiCloud
    remaining: npt.NDArray[np.int64]  # [zone, tick]: ticks the zone stays available from tick
    start: int
    tick_hours: float
    name: str = "oracle-zones"

    def decide(self, view: JobView, memory: Memory) -> Step:
        t = self.start + round(view.elapsed_hours / self.tick_hours)
        runs = [int(self.remaining[i, t]) if o.available else -1 for i, o in enumerate(view.zones)]
        keep = max(range(len(runs)), key=lambda i: (runs[i], -i))
        own = view.current.zone if view.current.kind is Kind.SPOT else ""
        zones = tuple(
            o if (i == keep or o.zone == own) else replace(o, available=False)
            for i, o in enumerate(view.zones)
        )
        return self.inner.decide(replace(view, zones=zones), memory)


@dataclass(frozen=True, slots=True)
class OracleWarning:
    """Diagnostic only: ``inner`` (a policy, or :class:`OracleZones` around one) is warned of
    preemptions that would cost it work, early enough to leave at its last checkpoint instead.

    What it knows, read from the trace's future (``remaining``, as :func:`remaining_runs`): at each
    decision, whether a zone stays available long enough for a job on it to save its next checkpoint
    (or finish). For the zone the job runs in that is the restart overhead it has left plus the work
    to its next checkpoint; for any other zone a fresh start's restart plus one checkpoint interval
    (the job model's 6 + 30 minutes in the benchmark). A zone that would be preempted sooner is
    *doomed*; this is a warning of at most one restart plus one checkpoint interval, and nothing
    further ahead. With ``own_only`` it is told this only of the zone it runs in; else of every zone.

    * When the job's own zone is doomed, ``inner`` is asked as if that preemption had come now, at the
      decision after its last checkpoint: ``current`` WAIT, ``preempted`` in that zone, the work rolled
      back to the checkpoint (what the engine then does on the release), the zone shown unavailable
      from then until it goes down (the job knows when). The job leaves before losing more work; the
      work done since its last checkpoint is lost as on a release (the engine's rules are unchanged:
      no free save).
    * Without ``own_only``, every other doomed zone is shown unavailable too (``inner`` does not start
      where its first checkpoint would be lost).

    Everything else is ``inner``'s decision (its availability counts see a hidden zone as down). One
    instance per simulated job: ``warned`` holds, per zone it was warned of, the tick it goes down."""

    inner: object  # a DeadlinePolicy: MultiCloud or OracleZones
    remaining: npt.NDArray[np.int64]  # [zone, tick]: ticks the zone stays available from tick
    start: int
    tick_hours: float
    own_only: bool = False
    name: str = "oracle-warning"
    warned: dict[str, int] = field(default_factory=dict)

    def decide(self, view: JobView, memory: Memory) -> Step:
        t = self.start + round(view.elapsed_hours / self.tick_hours)
        own = view.current.zone if view.current.kind is Kind.SPOT else ""
        eps = 1e-9

        def doomed(i: int, zone: str) -> bool:
            if zone == own:
                need = view.overhead_left_hours + (
                    min(view.checkpointed_hours + view.checkpoint_hours, view.work_total_hours)
                    - view.work_done_hours
                )
            elif self.own_only:
                return t < self.warned.get(zone, -1)  # left for a warning, and not down yet
            else:
                need = view.restart_hours + min(
                    view.checkpoint_hours, view.work_total_hours - view.checkpointed_hours
                )
            return int(self.remaining[i, t]) * self.tick_hours < need - eps

        gone = {o.zone for i, o in enumerate(view.zones) if o.available and doomed(i, o.zone)}
        if not gone:
            return self.inner.decide(view, memory)  # type: ignore[attr-defined, no-any-return]
        zones = tuple(replace(o, available=False) if o.zone in gone else o for o in view.zones)
        if own in gone:
            self.warned[own] = t + int(self.remaining[[o.zone for o in view.zones].index(own), t])
            view = replace(
                view,
                work_done_hours=view.checkpointed_hours,
                current=WAIT,
                overhead_left_hours=0.0,
                preempted=True,
                preempted_zone=own,
            )
        step: Step = self.inner.decide(replace(view, zones=zones), memory)  # type: ignore[attr-defined]
        if step.choice.kind is Kind.SPOT and step.choice.zone in gone:
            return replace(step, choice=WAIT)  # never shown available: cannot be chosen
        return step


def remaining_runs(avail: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """``[z, t]``: how many ticks from ``t`` on zone ``z`` stays available (0 if not now)."""
    out = np.zeros((avail.shape[0], avail.shape[1] + 1), dtype=np.int64)
    for t in range(avail.shape[1] - 1, -1, -1):
        out[:, t] = np.where(avail[:, t], out[:, t + 1] + 1, 0)
    return out


@dataclass(frozen=True, slots=True)
class Scenario:
    task: bp.Task
    half: str  # "train", "test" or "" (straddles the middle of the trace)
    optimal: float | None


def _settings(grid: dict[str, tuple[float, ...]]) -> list[dict[str, float]]:
    keys = sorted(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def run_scenario(args: tuple[Scenario, list[dict[str, float]]]) -> dict[str, object]:
    """Every grid setting, the defaults and the oracle on one scenario."""
    sc, settings = args
    task = sc.task
    s = bp.SETS[task.set_index]
    ts = bp._traces(s)
    spec = bp.job_spec(task)
    opt = sc.optimal
    if opt is None:
        opt = optimal_cost(ts, spec, ondemand_price=s.ondemand, start_tick=task.start).cost_usd

    def run(policy: object) -> SimResult:
        return simulate(ts, spec, policy, ondemand_price=s.ondemand, start_tick=task.start)  # type: ignore[arg-type]

    grid = [run(MultiCloud(**kw)) for kw in settings]  # type: ignore[arg-type]
    default = run(MultiCloud())
    remaining = remaining_runs(ts.available(s.nodes))
    th = ts.gap_seconds / 3600
    oracle = run(OracleZones(MultiCloud(), remaining, task.start, th))
    own_warned: SimResult | None = None
    warned: SimResult | None = None
    both: SimResult | None = None
    if not spec.checkpoint_on_notice:  # on notice a preemption loses no work: nothing to warn of
        own_warned = run(OracleWarning(MultiCloud(), remaining, task.start, th, own_only=True))
        warned = run(OracleWarning(MultiCloud(), remaining, task.start, th))
        both = run(
            OracleWarning(OracleZones(MultiCloud(), remaining, task.start, th), remaining, task.start, th)
        )
    return {
        "model": task.model,
        "set": s.label,
        "hours": task.hours,
        "factor": task.factor,
        "start": task.start,
        "half": sc.half,
        "optimal": opt,
        "ondemand_cost": default.ondemand_cost_usd,
        "grid": [(r.cost_usd, r.met_deadline) for r in grid],
        "default": (default.cost_usd, default.met_deadline),
        "oracle": (oracle.cost_usd, oracle.met_deadline),
        "own_warned": None if own_warned is None else (own_warned.cost_usd, own_warned.met_deadline),
        "warned": None if warned is None else (warned.cost_usd, warned.met_deadline),
        "both": None if both is None else (both.cost_usd, both.met_deadline),
        "own_warned_parts": None if own_warned is None else _parts(own_warned),
        "warned_parts": None if warned is None else _parts(warned),
        "default_parts": _parts(default),
    }


def _parts(r: SimResult) -> dict[str, float]:
    """Where a run's cost went: preemptions, restart overhead, lost work, on-demand and spot hours, moves."""
    return {
        "preemptions": r.preemptions,
        "overhead_hours": r.overhead_hours,
        "lost_work_hours": r.lost_work_hours,
        "ondemand_hours": r.ondemand_hours,
        "spot_hours": r.spot_hours,
        "moves": r.moves,
    }


def scenarios(models: tuple[str, ...]) -> list[Scenario]:
    tasks = [t for t in bp.make_tasks(bp.FULL) if t.model in models]
    saved: dict[tuple[str, str, float, float, int], float] = {}
    path = bp.RESULTS / "policies.json"
    if path.exists():
        for r in json.loads(path.read_text())["rows"]:
            key = (bp.model_of(r), str(r["set"]), float(r["hours"]), float(r["factor"]))
            saved[(*key, int(r["start"]))] = float(r["optimal"])
    out = []
    for t in tasks:
        ts = bp._traces(bp.SETS[t.set_index])
        end = t.start + t.hours * t.factor * 3600 / ts.gap_seconds
        half = "train" if end <= ts.ticks / 2 else "test" if t.start >= ts.ticks / 2 else ""
        key = (t.model, bp.SETS[t.set_index].label, t.hours, t.factor, t.start)
        out.append(Scenario(t, half, saved.get(key)))
    return out


def _gap(cost: float, opt: float) -> float:
    return cost / opt - 1.0


def _summary(rows: list[dict[str, object]], pick: object) -> tuple[float, int, int]:
    """(mean gap, deadline misses, scenarios) of the (cost, met) that ``pick(row)`` returns."""
    gaps, misses = [], 0
    for r in rows:
        cost, met = pick(r)  # type: ignore[operator]
        gaps.append(_gap(cost, float(r["optimal"])))  # type: ignore[arg-type]
        misses += 0 if met else 1
    return (statistics.fmean(gaps) if gaps else float("nan"), misses, len(rows))


def _best_in_hindsight(row: dict[str, object]) -> tuple[float, bool]:
    met = [c for c, ok in row["grid"] if ok]  # type: ignore[attr-defined]
    return (min(met), True) if met else (min(c for c, _ in row["grid"]), False)  # type: ignore[attr-defined]


def analyse(rows: list[dict[str, object]], settings: list[dict[str, float]]) -> tuple[str, dict[str, float]]:
    train = [r for r in rows if r["half"] == "train"]
    test = [r for r in rows if r["half"] == "test"]

    def grid_score(i: int) -> tuple[int, float]:
        gap, misses, _ = _summary(train, lambda r: r["grid"][i])  # type: ignore[index]
        return (misses, gap)

    best_i = min(range(len(settings)), key=grid_score)
    best = settings[best_i]
    defaults = {f.name: getattr(MultiCloud(), f.name) for f in fields(MultiCloud) if f.name in best}

    def line(label: str, pick: object) -> str:
        cells = []
        for part in (train, test, rows):
            gap, misses, n = _summary(part, pick)
            cells.append(f"{100 * gap:.1f}% ({misses} missed / {n})")
        return f"| {label} | " + " | ".join(cells) + " |"

    out = [
        "| multicloud setting | train (first half): mean gap | test (second half, held out) | all |",
        "|---|---:|---:|---:|",
        line(f"shipped defaults {_kw(defaults)}", lambda r: r["default"]),
        line(f"best on train {_kw(best)}", lambda r: r["grid"][best_i]),  # type: ignore[index]
        line("diagnostic: best of grid per scenario, in hindsight", _best_in_hindsight),
        line("diagnostic: oracle zone choice (defaults otherwise)", lambda r: r["oracle"]),
    ]
    if all(r.get("warned") is not None for r in rows):
        out += [
            line(
                "diagnostic: oracle preemption warning, own zone only (defaults otherwise)",
                lambda r: r["own_warned"],
            ),
            line(
                "diagnostic: oracle preemption warning, every zone (defaults otherwise)",
                lambda r: r["warned"],
            ),
            line("diagnostic: oracle zone choice + preemption warning, every zone", lambda r: r["both"]),
        ]
    parts = {
        k: statistics.fmean(float(r["default_parts"][k]) for r in rows)  # type: ignore[index]
        for k in ("preemptions", "overhead_hours", "lost_work_hours", "ondemand_hours", "spot_hours")
    }
    parts["job_hours"] = statistics.fmean(float(str(r["hours"])) for r in rows)
    for which in ("own_warned", "warned"):
        if all(r.get(which + "_parts") is not None for r in rows):
            for k in ("preemptions", "lost_work_hours", "ondemand_hours", "moves"):
                parts[f"{which}_{k}"] = statistics.fmean(float(r[which + "_parts"][k]) for r in rows)  # type: ignore[index]
    return "\n".join(out), {**parts, "grid_size": float(len(settings))}


def _kw(kw: dict[str, float]) -> str:
    return "(" + ", ".join(f"{k}={v:g}" for k, v in sorted(kw.items())) + ")"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two grid settings, for a smoke run")
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray the sweep starts")
    ap.add_argument("--address", help="run the scenarios as tasks on this Ray cluster (host:port or 'auto')")
    ap.add_argument(
        "--write-readme", action="store_true", help="replace this section of benchmarks/README.md"
    )
    ap.add_argument("--from-json", type=Path, help="re-render from a previous policy_limits.json")
    ap.add_argument("--model", choices=(*bp.MODELS, "all"), default="all", help="job model(s) to run")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        rows, settings = saved["rows"], saved["settings"]
        command, seconds = str(saved["command"]), float(saved["seconds"])
    else:
        settings = _settings(QUICK_GRID if args.quick else FULL_GRID)
        todo = scenarios(bp.MODELS if args.model == "all" else (args.model,))
        t0 = time.perf_counter()
        print(f"{len(todo)} scenarios x {len(settings)} settings on {args.workers} workers", file=sys.stderr)
        rows = map_tasks(
            run_scenario, [(sc, settings) for sc in todo], address=args.address, workers=args.workers
        )
        seconds = time.perf_counter() - t0
        command = ".venv/bin/python benchmarks/bench_policy_limits.py" + (" --quick" if args.quick else "")
        command += "" if args.model == "all" else f" --model '{args.model}'"
        bp.RESULTS.mkdir(parents=True, exist_ok=True)
        (bp.RESULTS / "policy_limits.json").write_text(
            json.dumps({"command": command, "seconds": seconds, "settings": settings, "rows": rows}, indent=1)
        )
    sections = []
    for model in bp.MODELS:
        sub = [r for r in rows if bp.model_of(r) == model]
        if not sub:
            continue
        table, parts = analyse(sub, settings)
        per_job = (
            f"Where the defaults' cost goes, per job (mean job {parts['job_hours']:.1f} h of work): "
            f"{parts['preemptions']:.2f} preemptions, {parts['overhead_hours']:.2f} h of restart overhead, "
            f"{parts['lost_work_hours']:.2f} h of work lost since the last checkpoint, "
            f"{parts['ondemand_hours']:.2f} h on on-demand, {parts['spot_hours']:.2f} h on spot."
        )
        for which, label in (("own_warned", "own zone only"), ("warned", "every zone")):
            if f"{which}_preemptions" in parts:
                w = {
                    k: parts[f"{which}_{k}"]
                    for k in ("preemptions", "moves", "lost_work_hours", "ondemand_hours")
                }
                per_job += (
                    f" With the preemption warning, {label}: {w['preemptions']:.2f} preemptions, "
                    f"{w['moves']:.2f} moves, {w['lost_work_hours']:.2f} h of work lost, "
                    f"{w['ondemand_hours']:.2f} h on on-demand."
                )
        sections.append(
            f"Job model '{model}': {len(sub)} scenarios; train "
            f"{sum(r['half'] == 'train' for r in sub)}, test {sum(r['half'] == 'test' for r in sub)}, "
            f"straddling the middle {sum(r['half'] == '' for r in sub)}.\n\n{table}\n\n{per_job}\n"
        )
    text = f"{len(settings)} grid settings, {seconds:.0f} s on this machine.\n\n" + "\n".join(sections)
    print(text)
    if args.write_readme:
        replace_section(
            "## bench_policy_limits",
            "## bench_policy_limits\n\n"
            "How far `multicloud` is from the offline optimum and whether its parameters hold on data "
            "they were not chosen on (the docstring of `benchmarks/bench_policy_limits.py` defines each "
            "row). Train = jobs whose whole window lies in the first half of their trace, test = jobs "
            "that start in the second half. The diagnostic rows cheat on purpose: they bound what "
            "perfect per-job tuning, a perfect availability predictor or a warning of each preemption "
            "could buy this policy.\n\n"
            f"```\n{command}\n```\n\n{text}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
