"""Choose every tunable parameter of ``multicloud`` on the first half of every trace; report the
second half, held out (issue 12 item 4).

    .venv/bin/python benchmarks/tune_policies.py --quick   # the committed run: 4 h and 12 h jobs, 1.5x, 1 pass
    .venv/bin/python benchmarks/tune_policies.py           # bench_policies' full grid (slow on 2 cores)
    .venv/bin/python benchmarks/tune_policies.py --quick --checkpoint-gb 50   # egress charged (item 6)
    .venv/bin/python benchmarks/tune_policies.py --grid medium --passes 1 --checkpoint-gb 50 --workers 2 \
        --optima-cache results/optima_50gb.json --only wait_reserves,back_reserves,leave_before_cut

Scenarios are ``benchmarks/bench_policies.py``'s (every shared trace set x job length x deadline
factor x four starts spread over the trace, both job models: 30-minute periodic checkpoints, and
checkpoints on notice). As in ``bench_policy_limits.py``, a scenario whose whole window (start to
deadline) lies in the first half of its trace is *train*; one that starts in the second half is
*test*; the few that straddle the middle are in neither. The optimum of each scenario comes from
``results/policies.json`` when it holds it, else it is computed.

The search uses *train scenarios only*. Objective: fewest deadline misses, then the lowest mean gap
to the offline optimum (cost / optimum - 1), over both job models at once (the policy ships one set
of defaults). Method: coordinate descent from the shipped defaults over every ``MultiCloud``
parameter (``keep_share``, ``wait_reserves``, ``back_reserves``, ``min_payback``, ``prefer``,
``hazard_weight``, ``move_min_uptime_hours``, ``back_min_uptime_hours``, ``keep_per_work``,
``free_wait_share``, ``leave_before_cut``, ``stochastic``, ``stochastic_slack_per_work``,
``stochastic_age``, ``stochastic_age_prior_hours``, ``stochastic_age_history_hours``,
``stochastic_age_history_zone``, ``young_zone_hours``, ``young_loss_chance``), each
over the candidate values in :data:`CANDIDATES`, two passes (one with ``--quick``), a change kept only if it improves the
objective by more than 1e-4. Zones' interruption rates are given to the policy over a trailing 24 h
(``simulate(rate_window_hours=24)``) so that ``hazard_weight`` can matter; a setting with
``stochastic_age_history_hours`` > 0 (and the age-conditioned programme on) is also given the zones'
trailing history over that window (``simulate(history_window_hours=...)``), and a setting with
``young_zone_hours`` > 0 (the young-zone rule) the history of the trailing 24 h, whose ``born`` gives
each zone's age from the trace (otherwise the rule can only date the zones it saw come back). Then the
shipped defaults and the chosen setting are evaluated on train (in-sample) and test (held out), side by
side. Writes ``results/tune_policies.md`` and ``.json``.

``--breakdown`` adds, per half and job model, where the mean gap comes from (:func:`breakdown`: by job
length, deadline factor, trace set; against the shipped defaults when the setting differs).

``--checkpoint-gb G`` > 0 charges egress for every move between regions (``simulate(checkpoint_gb=G)``,
published rates of ``pricing/egress.py``; the trace sets that span regions are aws-02-15, aws-08-27,
aws-04-22, gcp-04-30 and aws-08-03) in the policy's runs and in the optimum alike (then computed
afresh, not read from ``results/policies.json``), and writes ``results/tune_policies_<G>gb.md`` / ``.json``.

``--grid medium`` (:data:`MEDIUM`) searches on fewer train scenarios that still cover every job length and
deadline factor; ``--only a,b`` searches those parameters alone (the rest stay at the shipped defaults);
``--set '{"k": v}'`` starts the search (or, with ``--passes 0``, the evaluation) from that setting over the
shipped defaults; ``--out-suffix S`` writes ``..._S.md`` / ``.json``; ``--workers N`` simulates scenarios in N processes (the figures do not depend on it); ``--optima-cache F``
keeps the offline optima in a JSON file between runs (they depend only on the scenario and the egress);
``--train-only`` simulates the train half alone (the held-out cells say "not run"), for comparing settings
on train without computing what must not steer the choice.

``--policy NAME`` (one of :data:`BASELINES`) evaluates that baseline, nothing searched, beside the shipped
``multicloud`` on the same scenarios (its rows replace "chosen on train"): ``ross`` and ``ross-uniform``
(ROSS with a greedy / uniform warm-up), ``greedy`` and ``uniform-progress`` (for comparison), and
``multicloud+ross-interval`` (:class:`InjectedMultiCloud`, an experiment: the shipped multicloud with ROSS's
randomized on-demand interval grafted on). The single-zone ones run once per home zone and take the mean
cost (as bench_policies does); a scenario counts as missed when any home zone missed. ROSS's seed is
``bench_policies.scenario_seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import multiprocessing.pool
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields

import bench_policies as bp
import bench_policy_limits as bpl

from ray_multicloud.policy.deadline import (
    ON_DEMAND,
    ROSS,
    DeadlinePolicy,
    Greedy,
    JobView,
    Memory,
    MultiCloud,
    Step,
    UniformProgress,
    remaining_work,
    ross_injection,
)
from ray_multicloud.sim import optimal_cost, simulate

CANDIDATES: dict[str, tuple[object, ...]] = {
    "keep_share": (0.3, 0.45, 0.6, 0.75, 0.9),
    "wait_reserves": (1.0, 1.5, 2.0, 2.5),
    "back_reserves": (0.0, 0.5, 1.0, 2.0),
    "min_payback": (1.0, 2.0, 3.0),
    "prefer": ("longest-up", "newest-up"),
    "hazard_weight": (0.0, 0.5, 1.0, 2.0),
    "move_min_uptime_hours": (0.0, 0.25, 0.5, 1.0),
    "back_min_uptime_hours": (0.0, 0.25, 0.5),
    "keep_per_work": (0.0, 0.15, 0.25, 0.4),
    "free_wait_share": (0.0, 0.5, 1.0, 2.0, 4.0),
    "leave_before_cut": (False, True),
    "stochastic": (False, True),
    "stochastic_slack_per_work": (0.2, 0.3, 0.5, math.inf),
    "stochastic_age": (False, True),
    "stochastic_age_prior_hours": (0.5, 2.0, 8.0),
    "stochastic_age_history_hours": (0.0, 24.0, 72.0),
    "stochastic_age_history_zone": (False, True),
    "young_zone_hours": (0.0, 0.25, 0.5, 1.0),
    "young_loss_chance": (0.2, 0.4, 0.6),
}
QUICK = {"hours": (4.0, 12.0), "factors": (1.5,), "starts": 4}
MEDIUM = bp.FULL
"""``--grid medium``: the full grid's job lengths and deadline factors, but each (trace set, job length,
deadline factor, job model) keeps only its *earliest* train scenario (the full grid keeps up to two:
starts 0 and a third of the way in), so the search costs ~57% of the full grid's while still covering
24 h and 48 h jobs and 1.25x / 2x deadlines. Its test half is the full grid's, whole."""
RATE_WINDOW_H = 24.0
POLICY_KEY = "__policy__"


@dataclass(frozen=True, slots=True)
class InjectedMultiCloud:
    """An experiment, not shipped (so not in ``policy/``): the shipped ``multicloud`` with ROSS's randomized
    on-demand interval grafted on. Every tick ``multicloud`` decides (its memory kept as it tracks it);
    at the first decision where ``(D - t) / (L - phi(t))`` is at or below ROSS's critical ratio
    (``K`` = on-demand over the cheapest zone's spot price then), the interval is drawn as ROSS draws it
    (``policy.deadline.ross_injection``), and during it the job runs on-demand
    whatever ``multicloud`` chose; outside it ``multicloud``'s choice stands (so its deadline guard too)."""

    seed: int = 0
    name: str = "multicloud+ross-interval"

    def decide(self, view: JobView, memory: Memory) -> Step:
        step = MultiCloud().decide(view, memory)
        mem = step.memory
        left = remaining_work(view)
        if view.deadline_hours is None or left <= 0 or not view.zones:
            return step
        price = min(o.price_per_hour for o in view.zones)
        k = view.ondemand_price_per_hour / price if price > 0 else 1e12
        mem, injected = ross_injection(view, mem, k, self.seed)
        if injected:
            return Step(ON_DEMAND, (*step.reasons, "ROSS interval: on-demand"), mem)
        return Step(step.choice, step.reasons, mem)


def _baseline(name: str, zone: str, seed: int) -> DeadlinePolicy:
    """``--policy``'s baselines, one home zone (ignored by the multi-zone one)."""
    if name == "ross":
        return ROSS(home_zone=zone, seed=seed)
    if name == "ross-uniform":
        return ROSS(home_zone=zone, seed=seed, warmup="uniform")
    if name == "greedy":
        return Greedy(home_zone=zone)
    if name == "uniform-progress":
        return UniformProgress(home_zone=zone)
    return InjectedMultiCloud(seed=seed)


BASELINES = ("ross", "ross-uniform", "greedy", "uniform-progress", "multicloud+ross-interval")
"""``--policy``'s baselines (:func:`_baseline`); all but the last are single-zone."""


Pool = multiprocessing.pool.Pool


def optimum_key(sc: bpl.Scenario, checkpoint_gb: float) -> str:
    """The optima cache's key of a scenario: trace set, job, start, job model, egress."""
    t = sc.task
    return f"{bp.SETS[t.set_index].label}|{t.hours:g}|{t.factor:g}|{t.start}|{t.model}|{checkpoint_gb:g}"


def _simulate_one(job: tuple[dict[str, object], bp.Task, float]) -> tuple[float, bool]:
    """One scenario under one setting (a process-pool task): (cost, deadline met)."""
    kw, task, gb = job
    s = bp.SETS[task.set_index]
    if POLICY_KEY in kw:  # a --policy baseline: single-zone ones once per home zone, the mean cost
        ts = bp._traces(s)
        name = str(kw[POLICY_KEY])
        zones = ts.names if name != BASELINES[-1] else ("",)
        homes = [_baseline(name, z, bp.scenario_seed(task)) for z in zones]
        runs = [simulate(ts, bp.job_spec(task), p, ondemand_price=s.ondemand, start_tick=task.start,
                         rate_window_hours=RATE_WINDOW_H, checkpoint_gb=gb) for p in homes]
        return (statistics.fmean(r.cost_usd for r in runs), all(r.met_deadline for r in runs))
    policy = MultiCloud(**kw)  # type: ignore[arg-type]
    window = policy.stochastic_age_history_hours
    if not (policy.stochastic and policy.stochastic_age and window > 0):
        window = RATE_WINDOW_H if policy.young_zone_hours > 0 else 0.0  # the young-zone rule's ages
    r = simulate(bp._traces(s), bp.job_spec(task), policy,
                 ondemand_price=s.ondemand, start_tick=task.start, rate_window_hours=RATE_WINDOW_H,
                 checkpoint_gb=gb, history_window_hours=window if window > 0 else None)
    return (r.cost_usd, r.met_deadline)


def earliest_train(scenarios: Sequence[bpl.Scenario]) -> list[bpl.Scenario]:
    """``--grid medium``'s train scenarios: the earliest start of each (set, hours, factor, model)."""
    first: dict[tuple[int, float, float, str], bpl.Scenario] = {}
    for sc in scenarios:
        t = sc.task
        k = (t.set_index, t.hours, t.factor, t.model)
        if k not in first or t.start < first[k].task.start:
            first[k] = sc
    return list(first.values())


def defaults() -> dict[str, object]:
    d = MultiCloud()
    return {f.name: getattr(d, f.name) for f in fields(MultiCloud) if f.name in CANDIDATES}


class Bench:
    """The scenarios of one half, their optima, and a memo of (setting -> per-scenario results)."""

    def __init__(self, scenarios: Sequence[bpl.Scenario], checkpoint_gb: float = 0.0,
                 pool: Pool | None = None, cache: dict[str, float] | None = None) -> None:
        self.scenarios = list(scenarios)
        self.checkpoint_gb = checkpoint_gb
        self.pool = pool
        self.cache = cache if cache is not None else {}
        self.optima = [self._optimum(sc) for sc in self.scenarios]
        self.memo: dict[tuple[tuple[str, object], ...], list[tuple[float, bool]]] = {}

    def _optimum(self, sc: bpl.Scenario) -> float:
        if sc.optimal is not None and self.checkpoint_gb == 0:
            return sc.optimal
        key = optimum_key(sc, self.checkpoint_gb)
        if key not in self.cache:
            s = bp.SETS[sc.task.set_index]
            self.cache[key] = optimal_cost(
                bp._traces(s), bp.job_spec(sc.task), ondemand_price=s.ondemand, start_tick=sc.task.start,
                checkpoint_gb=self.checkpoint_gb).cost_usd
        return self.cache[key]

    def run(self, kw: dict[str, object]) -> list[tuple[float, bool]]:
        key = tuple(sorted(kw.items()))
        if key not in self.memo:
            jobs = [(kw, sc.task, self.checkpoint_gb) for sc in self.scenarios]
            if self.pool is not None:
                self.memo[key] = self.pool.map(_simulate_one, jobs, chunksize=4)
            else:
                self.memo[key] = [_simulate_one(j) for j in jobs]
        return self.memo[key]

    def score(self, kw: dict[str, object], model: str | None = None) -> tuple[int, float, int]:
        """(misses, mean gap, scenarios), over one job model or both."""
        res = self.run(kw)
        idx = [i for i, sc in enumerate(self.scenarios) if model is None or sc.task.model == model]
        gaps = [res[i][0] / self.optima[i] - 1 for i in idx]
        return (sum(0 if res[i][1] else 1 for i in idx), statistics.fmean(gaps) if gaps else float("nan"), len(idx))


def tune(train: Bench, passes: int = 2, only: Sequence[str] = (),
         start: dict[str, object] | None = None) -> tuple[dict[str, object], list[str]]:
    """Coordinate descent from the defaults (module docstring), or from ``start`` over them, over
    every parameter of :data:`CANDIDATES`, or only those named in ``only``; returns the setting and
    a log."""
    cur = {**defaults(), **(start or {})}
    best = train.score(cur)[:2]
    log = [f"start ({'shipped defaults' if not start else json.dumps(start) + ' over the defaults'}): "
           f"{best[0]} misses, mean gap {best[1]:.4%}"]
    for p in range(passes):
        changed = False
        for name, values in CANDIDATES.items():
            if only and name not in only:
                continue
            for v in values:
                if v == cur[name]:
                    continue
                trial = {**cur, name: v}
                sc = train.score(trial)[:2]
                sys.stderr.write(f"pass {p + 1}: {name}={v}: {sc[0]} misses, mean gap {sc[1]:.4%}\n")
                sys.stderr.flush()
                if sc[0] < best[0] or (sc[0] == best[0] and sc[1] < best[1] - 1e-4):
                    cur, best, changed = trial, sc, True
                    log.append(f"pass {p + 1}: {name}={v}: {sc[0]} misses, mean gap {sc[1]:.4%}")
        if not changed:
            break
    return cur, log


def breakdown(bench: Bench, kw: dict[str, object], model: str,
              base: dict[str, object] | None = None) -> list[str]:
    """Where ``bench``'s mean gap of ``kw`` on ``model`` comes from: one markdown row per part (job
    length, deadline factor, trace set, and the scenarios where the policy paid at least 90% of
    running the job all on on-demand): its scenarios, its mean gap, and how many points of the whole
    mean it contributes
    (its gaps' sum over all scenarios; the parts of one kind add up to the mean). With ``base``
    (another setting), also how many of the part's scenarios ``kw`` makes cheaper / dearer than
    ``base`` and ``base``'s mean gap there."""
    res = bench.run(kw)
    other = bench.run(base) if base is not None else None
    idx = [i for i, sc in enumerate(bench.scenarios) if sc.task.model == model]
    if not idx:
        return []
    gap = {i: res[i][0] / bench.optima[i] - 1 for i in idx}

    def label(kind: str, i: int) -> str:
        t = bench.scenarios[i].task
        s = bp.SETS[t.set_index]
        if kind == "job length":
            return f"{t.hours:g} h"
        if kind == "deadline":
            return f"{t.factor:g}x"
        if kind == "trace set":
            return s.label
        # all on-demand: the job's hours on its nodes at the on-demand price (restart time aside)
        return ">= 90% of all on-demand" if res[i][0] >= 0.9 * s.ondemand * s.nodes * t.hours else ""

    head = "| part | scenarios | mean gap | points of the mean |" + (
        " cheaper / dearer than base | base's mean gap |" if other is not None else "")
    rows = [head, "|---|---:|---:|---:|" + ("---:|---:|" if other is not None else "")]
    for kind in ("job length", "deadline", "trace set", "paid"):
        groups: dict[str, list[int]] = {}
        for i in idx:
            name = label(kind, i)
            if name:
                groups.setdefault(name, []).append(i)
        for name in sorted(groups, key=lambda n: (-sum(gap[i] for i in groups[n]), n)):
            members = groups[name]
            row = (f"| {kind}: {name} | {len(members)} | {statistics.fmean(gap[i] for i in members):+.1%} | "
                   f"{100 * sum(gap[i] for i in members) / len(idx):.1f} |")
            if other is not None:
                better = sum(1 for i in members if res[i][0] < other[i][0] - 1e-9)
                worse = sum(1 for i in members if res[i][0] > other[i][0] + 1e-9)
                base_gap = statistics.fmean(other[i][0] / bench.optima[i] - 1 for i in members)
                row += f" {better} / {worse} | {base_gap:+.1%} |"
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="job lengths 4 and 12 h, deadline 1.5x, one pass of the search (= --grid quick)")
    ap.add_argument("--grid", choices=("quick", "medium", "full"), default=None,
                    help="scenario grid (default full; medium: every job length and deadline factor, "
                         "the earliest train start of each, MEDIUM's docstring)")
    ap.add_argument("--only", default="",
                    help="comma-separated parameters to search (default: all of CANDIDATES); the rest "
                         "stay at the shipped defaults")
    ap.add_argument("--workers", type=int, default=1, help="processes simulating scenarios (default 1)")
    ap.add_argument("--optima-cache", default=None,
                    help="JSON file of offline optima (scenario key -> USD) read and extended; the optimum "
                         "is deterministic, so this only saves recomputing it")
    ap.add_argument("--passes", type=int, default=None, help="coordinate-descent passes (default 2; 1 with --quick)")
    ap.add_argument("--set", default="",
                    help='JSON object of parameters to start from instead of the shipped defaults, e.g. '
                         '\'{"stochastic": true}\' (with --passes 0: evaluate that setting, nothing chosen)')
    ap.add_argument("--checkpoint-gb", type=float, default=0.0,
                    help="charge egress for this checkpoint size on every move between regions (default 0)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also write where each half's mean gap comes from, per job model (breakdown()): "
                         "the shipped defaults, and the chosen setting against them when it differs")
    ap.add_argument("--train-only", action="store_true",
                    help="simulate the train half only: the test (held-out) cells say 'not run' (for "
                         "comparing settings on train without computing what must not steer the choice)")
    ap.add_argument("--policy", choices=BASELINES, default=None,
                    help="evaluate this baseline beside the shipped multicloud, nothing searched "
                         "(implies --passes 0)")
    ap.add_argument("--out-suffix", default="",
                    help="append _SUFFIX to the results' file names (keeps other runs' files)")
    args = ap.parse_args(argv)
    gb = args.checkpoint_gb
    gname = args.grid or ("quick" if args.quick else "full")
    passes = args.passes if args.passes is not None else (1 if gname == "quick" else 2)
    t0 = time.monotonic()
    grid = QUICK if gname == "quick" else bp.FULL
    tasks = {(t.set_index, t.hours, t.factor, t.start, t.model) for t in bp.make_tasks(grid)}
    every = [sc for sc in bpl.scenarios(bp.MODELS)
             if (sc.task.set_index, sc.task.hours, sc.task.factor, sc.task.start, sc.task.model) in tasks]
    cache_path = args.optima_cache
    cache: dict[str, float] = {}
    if cache_path:
        try:
            with open(cache_path) as f:
                cache = json.load(f)
        except FileNotFoundError:
            cache = {}
    pool = multiprocessing.Pool(args.workers) if args.workers > 1 else None
    train_sc = [sc for sc in every if sc.half == "train"]
    if gname == "medium":
        train_sc = earliest_train(train_sc)
    train = Bench(train_sc, gb, pool, cache)
    test = Bench([sc for sc in every if sc.half == "test"], gb, pool, cache)
    if cache_path:
        with open(cache_path, "w") as f:
            json.dump(cache, f, indent=0, sort_keys=True)
    only = [x for x in args.only.split(",") if x]
    unknown = [x for x in only if x not in CANDIDATES]
    if unknown:
        ap.error(f"--only: unknown parameter(s) {unknown}; choose from {sorted(CANDIDATES)}")
    start = json.loads(args.set) if args.set else {}
    bad = [k for k in start if k not in {f.name for f in fields(MultiCloud)}]
    if bad or not isinstance(start, dict):
        ap.error(f"--set: not MultiCloud parameters: {bad}")
    if args.policy:
        chosen, log = {POLICY_KEY: args.policy}, [f"--policy {args.policy}: evaluated, nothing searched"]
    else:
        chosen, log = tune(train, passes, only, start)
    shipped = defaults()
    secs = time.monotonic() - t0

    def cell(b: Bench, kw: dict[str, object], model: str | None) -> str:
        if args.train_only and b is test:
            return "not run (--train-only)"
        miss, gap, n = b.score(kw, model)
        return f"{gap:+.1%} ({miss} missed / {n})"

    lines = ["| setting | job model | train (first half, in-sample): mean gap to optimum | "
             "test (second half, held out) |", "|---|---|---:|---:|"]
    for label, kw in (("shipped defaults", shipped),
                      (f"{args.policy} (nothing chosen)" if args.policy else "chosen on train", chosen)):
        for model in (*bp.MODELS, None):
            lines.append(f"| {label} | {model or 'both'} | {cell(train, kw, model)} | {cell(test, kw, model)} |")
    diff = {k: (shipped.get(k), v) for k, v in chosen.items() if v != shipped.get(k)}
    command = ".venv/bin/python benchmarks/tune_policies.py" + (" --quick" if args.quick else "") + (
        f" --grid {args.grid}" if args.grid else "") + (f" --only {args.only}" if args.only else "") + (
        f" --passes {args.passes}" if args.passes is not None else "") + (
        f" --set '{args.set}'" if args.set else "") + (
        f" --checkpoint-gb {gb:g}" if gb > 0 else "") + (" --breakdown" if args.breakdown else "") + (
        " --train-only" if args.train_only else "") + (f" --policy {args.policy}" if args.policy else "")
    # The full grid's results go beside the --quick ones (which keep their names), not over them.
    stem = "tune_policies" + {"quick": "", "medium": "_medium", "full": "_full"}[gname] + (
        f"_{gb:g}gb" if gb > 0 else "") + (f"_{args.out_suffix}" if args.out_suffix else "")
    egress = (f" Egress charged: {gb:g} GB checkpoints, every move between regions pays it (policy and "
              "optimum alike)." if gb > 0 else " No egress charged.")
    grid_note = {"quick": "; a --quick grid: 4 h and 12 h jobs, deadline 1.5x",
                 "medium": "; the medium grid: the earliest train start of each set, job and deadline",
                 "full": ""}[gname]
    body = (f"# multicloud tuned on the first half, evaluated on the second\n\n`{command}` ({secs:.0f} s; "
            f"{len(train.scenarios)} train and {len(test.scenarios)} test scenarios"
            f"{grid_note}"
            f"; {passes} pass(es); "
            f"{sum(len(v) for v in train.memo.values())} train simulations). Interruption rates over the "
            f"trailing {RATE_WINDOW_H:g} h are given to the policy.{egress}\n\n" + "\n".join(lines) + "\n\n"
            f"Chosen on train: `{json.dumps(chosen)}`\n\nChanged from the shipped defaults: "
            + (", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items()) or "none") + "\n\nSearch log:\n\n"
            + "\n".join(f"- {x}" for x in log) + "\n")
    if args.breakdown:
        parts = ["\n## Where the mean gaps come from (report only: nothing is chosen on it)\n"]
        settings = [("shipped defaults", shipped, None)]
        if chosen != shipped:
            label = f"{args.policy}, against the shipped multicloud" if args.policy else (
                "chosen on train, against the shipped defaults")
            settings.append((label, chosen, shipped))
        for label, kw, base in settings:
            for half, b in (("train", train), ("test", test)):
                if args.train_only and b is test:
                    continue
                for model in bp.MODELS:
                    rows = breakdown(b, kw, model, base)
                    if rows:
                        parts.append(f"\n### {label}: {half}, {model}\n\n" + "\n".join(rows) + "\n")
        body += "".join(parts)
    bp.RESULTS.mkdir(exist_ok=True)
    (bp.RESULTS / f"{stem}.md").write_text(body)
    (bp.RESULTS / f"{stem}.json").write_text(json.dumps(
        {"command": command, "chosen": chosen, "shipped": shipped, "log": log,
         "train": {m or "both": train.score(kw, m) for kw in (chosen,) for m in (*bp.MODELS, None)},
         "test": None if args.train_only else
         {m or "both": test.score(kw, m) for kw in (chosen,) for m in (*bp.MODELS, None)},
         "test_shipped": None if args.train_only else
         {m or "both": test.score(shipped, m) for m in (*bp.MODELS, None)}}, indent=1))
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
