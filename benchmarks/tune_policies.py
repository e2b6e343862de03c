"""Choose every tunable parameter of ``multicloud`` on the first half of every trace; report the
second half, held out (issue 12 item 4).

    .venv/bin/python benchmarks/tune_policies.py --quick   # the committed run: 4 h and 12 h jobs, 1.5x, 1 pass
    .venv/bin/python benchmarks/tune_policies.py           # bench_policies' full grid (slow on 2 cores)
    .venv/bin/python benchmarks/tune_policies.py --quick --checkpoint-gb 50   # egress charged (issue 12 item 6)

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
``free_wait_share``), each
over the candidate values in :data:`CANDIDATES`, two passes (one with ``--quick``), a change kept only if it improves the
objective by more than 1e-4. Zones' interruption rates are given to the policy over a trailing 24 h
(``simulate(rate_window_hours=24)``) so that ``hazard_weight`` can matter. Then the shipped defaults
and the chosen setting are evaluated on train (in-sample) and test (held out), side by side. Writes
``results/tune_policies.md`` and ``.json``.

``--checkpoint-gb G`` > 0 charges egress for every move between regions (``simulate(checkpoint_gb=G)``,
published rates of ``pricing/egress.py``; the trace sets that span regions are aws-02-15, aws-08-27,
aws-04-22, gcp-04-30 and aws-08-03) in the policy's runs and in the optimum alike (then computed
afresh, not read from ``results/policies.json``), and writes ``results/tune_policies_<G>gb.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import fields

import bench_policies as bp
import bench_policy_limits as bpl

from ray_multicloud.policy.deadline import MultiCloud
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
}
QUICK = {"hours": (4.0, 12.0), "factors": (1.5,), "starts": 4}
RATE_WINDOW_H = 24.0


def defaults() -> dict[str, object]:
    d = MultiCloud()
    return {f.name: getattr(d, f.name) for f in fields(MultiCloud) if f.name in CANDIDATES}


class Bench:
    """The scenarios of one half, their optima, and a memo of (setting -> per-scenario results)."""

    def __init__(self, scenarios: Sequence[bpl.Scenario], checkpoint_gb: float = 0.0) -> None:
        self.scenarios = list(scenarios)
        self.checkpoint_gb = checkpoint_gb
        self.optima = [self._optimum(sc) for sc in self.scenarios]
        self.memo: dict[tuple[tuple[str, object], ...], list[tuple[float, bool]]] = {}

    def _optimum(self, sc: bpl.Scenario) -> float:
        if sc.optimal is not None and self.checkpoint_gb == 0:
            return sc.optimal
        s = bp.SETS[sc.task.set_index]
        return optimal_cost(bp._traces(s), bp.job_spec(sc.task), ondemand_price=s.ondemand,
                            start_tick=sc.task.start, checkpoint_gb=self.checkpoint_gb).cost_usd

    def run(self, kw: dict[str, object]) -> list[tuple[float, bool]]:
        key = tuple(sorted(kw.items()))
        if key not in self.memo:
            policy = MultiCloud(**kw)  # type: ignore[arg-type]
            out = []
            for sc in self.scenarios:
                s = bp.SETS[sc.task.set_index]
                r = simulate(bp._traces(s), bp.job_spec(sc.task), policy, ondemand_price=s.ondemand,
                             start_tick=sc.task.start, rate_window_hours=RATE_WINDOW_H,
                             checkpoint_gb=self.checkpoint_gb)
                out.append((r.cost_usd, r.met_deadline))
            self.memo[key] = out
        return self.memo[key]

    def score(self, kw: dict[str, object], model: str | None = None) -> tuple[int, float, int]:
        """(misses, mean gap, scenarios), over one job model or both."""
        res = self.run(kw)
        idx = [i for i, sc in enumerate(self.scenarios) if model is None or sc.task.model == model]
        gaps = [res[i][0] / self.optima[i] - 1 for i in idx]
        return (sum(0 if res[i][1] else 1 for i in idx), statistics.fmean(gaps) if gaps else float("nan"), len(idx))


def tune(train: Bench, passes: int = 2) -> tuple[dict[str, object], list[str]]:
    """Coordinate descent from the defaults (module docstring); returns the setting and a log."""
    cur = defaults()
    best = train.score(cur)[:2]
    log = [f"start (shipped defaults): {best[0]} misses, mean gap {best[1]:.4%}"]
    for p in range(passes):
        changed = False
        for name, values in CANDIDATES.items():
            for v in values:
                if v == cur[name]:
                    continue
                trial = {**cur, name: v}
                sc = train.score(trial)[:2]
                if sc[0] < best[0] or (sc[0] == best[0] and sc[1] < best[1] - 1e-4):
                    cur, best, changed = trial, sc, True
                    log.append(f"pass {p + 1}: {name}={v}: {sc[0]} misses, mean gap {sc[1]:.4%}")
        if not changed:
            break
    return cur, log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="job lengths 4 and 12 h, deadline 1.5x, one pass of the search")
    ap.add_argument("--passes", type=int, default=None, help="coordinate-descent passes (default 2; 1 with --quick)")
    ap.add_argument("--checkpoint-gb", type=float, default=0.0,
                    help="charge egress for this checkpoint size on every move between regions (default 0)")
    args = ap.parse_args(argv)
    gb = args.checkpoint_gb
    passes = args.passes if args.passes is not None else (1 if args.quick else 2)
    t0 = time.monotonic()
    grid = QUICK if args.quick else bp.FULL
    tasks = {(t.set_index, t.hours, t.factor, t.start, t.model) for t in bp.make_tasks(grid)}
    every = [sc for sc in bpl.scenarios(bp.MODELS)
             if (sc.task.set_index, sc.task.hours, sc.task.factor, sc.task.start, sc.task.model) in tasks]
    train = Bench([sc for sc in every if sc.half == "train"], gb)
    test = Bench([sc for sc in every if sc.half == "test"], gb)
    chosen, log = tune(train, passes)
    shipped = defaults()
    secs = time.monotonic() - t0

    def cell(b: Bench, kw: dict[str, object], model: str | None) -> str:
        miss, gap, n = b.score(kw, model)
        return f"{gap:+.1%} ({miss} missed / {n})"

    lines = ["| setting | job model | train (first half, in-sample): mean gap to optimum | "
             "test (second half, held out) |", "|---|---|---:|---:|"]
    for label, kw in (("shipped defaults", shipped), ("chosen on train", chosen)):
        for model in (*bp.MODELS, None):
            lines.append(f"| {label} | {model or 'both'} | {cell(train, kw, model)} | {cell(test, kw, model)} |")
    diff = {k: (shipped[k], v) for k, v in chosen.items() if v != shipped[k]}
    command = ".venv/bin/python benchmarks/tune_policies.py" + (" --quick" if args.quick else "") + (
        f" --passes {args.passes}" if args.passes is not None else "") + (
        f" --checkpoint-gb {gb:g}" if gb > 0 else "")
    # The full grid's results go beside the --quick ones (which keep their names), not over them.
    stem = "tune_policies" + ("" if args.quick else "_full") + (f"_{gb:g}gb" if gb > 0 else "")
    egress = (f" Egress charged: {gb:g} GB checkpoints, every move between regions pays it (policy and "
              "optimum alike)." if gb > 0 else " No egress charged.")
    body = (f"# multicloud tuned on the first half, evaluated on the second\n\n`{command}` ({secs:.0f} s; "
            f"{len(train.scenarios)} train and {len(test.scenarios)} test scenarios"
            f"{'; a --quick grid: 4 h and 12 h jobs, deadline 1.5x' if args.quick else ''}; {passes} pass(es); "
            f"{sum(len(v) for v in train.memo.values())} train simulations). Interruption rates over the "
            f"trailing {RATE_WINDOW_H:g} h are given to the policy.{egress}\n\n" + "\n".join(lines) + "\n\n"
            f"Chosen on train: `{json.dumps(chosen)}`\n\nChanged from the shipped defaults: "
            + (", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items()) or "none") + "\n\nSearch log:\n\n"
            + "\n".join(f"- {x}" for x in log) + "\n")
    bp.RESULTS.mkdir(exist_ok=True)
    (bp.RESULTS / f"{stem}.md").write_text(body)
    (bp.RESULTS / f"{stem}.json").write_text(json.dumps(
        {"command": command, "chosen": chosen, "shipped": shipped, "log": log,
         "train": {m or "both": train.score(kw, m) for kw in (chosen,) for m in (*bp.MODELS, None)},
         "test": {m or "both": test.score(kw, m) for kw in (chosen,) for m in (*bp.MODELS, None)},
         "test_shipped": {m or "both": test.score(shipped, m) for m in (*bp.MODELS, None)}}, indent=1))
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
