"""Recovery time after a spot preemption, time of a price-driven move, and steps lost, on the local cloud.

    .venv/bin/python benchmarks/bench_train_migration.py --runs 3

One local cluster (``ray up`` of cluster_configs/local-multicloud.yaml, 2 T4 spot workers), one
deterministic TorchTrainer job (ray_multicloud.train.scenario: 2 workers, a checkpoint every 5 steps of
~0.27 s, a just-in-time checkpoint on the preemption notice), and ``--runs`` cycles of:

``preempt the node of rank 1 (notice 5 s) -> autoscaler relaunches through the policy -> train resumes
from the last verified checkpoint -> another offer drops to a fifth of the price -> controller launches
the replacement, drains the old node (PREEMPTION, deadline 6 s), terminates it -> train resumes``.

Prints each cycle and the medians. Figures:

* recovery after preemption: the notice -> the first training step after the restore;
* price-driven move: the move's start (replacement launch) -> the first step after the restore, with
  its parts: replacement's Ray node alive, old node drained/at deadline;
* lost steps: the highest step reached before the restart minus the step restored from (the work
  redone).

The final weights are checked against an uninterrupted in-process run of the same seed; the benchmark
fails if they differ. ``--clusters K`` repeats the whole thing on K fresh clusters (medians over all).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray_multicloud.train.scenario import Report, run_scenario, summary


def _fmt(v: float | None, unit: str = "s") -> str:
    if v is None:
        return "-"
    return f"{v:.1f} {unit}" if unit == "s" else f"{v:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="preemption + move cycles per cluster")
    parser.add_argument("--clusters", type=int, default=1, help="fresh clusters to repeat the runs on")
    parser.add_argument("--notice-s", type=float, default=5.0)
    parser.add_argument("--drain-deadline-s", type=float, default=6.0)
    parser.add_argument("--keep", default=None, help="keep each cluster's work directory under this folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("ray_multicloud.controller").setLevel(logging.INFO)
    if args.runs < 1 or args.clusters < 1:
        parser.error("--runs and --clusters must be >= 1")

    reports: list[Report] = []
    started = time.time()
    for k in range(args.clusters):
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="rmc-bench-train-", dir=args.keep)
        try:
            report = run_scenario(
                tmp,
                cycles=args.runs,
                notice_s=args.notice_s,
                drain_deadline_s=args.drain_deadline_s,
                timeout_s=300 + 200 * args.runs,
            )
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
        for line in report.events:
            print(f"  {line}")
        if report.max_abs_diff is None or report.max_abs_diff > 1e-6:
            print(
                f"FAIL: final weights differ from the uninterrupted run by {report.max_abs_diff}",
                file=sys.stderr,
            )
            return 1
        reports.append(report)
        print(
            f"cluster {k}: {report.attempts} attempts, offers used: {', '.join(report.offers_used)}; "
            f"final weights max |diff| vs uninterrupted run: {report.max_abs_diff:g}; "
            f"wall {report.wall_s:.0f} s"
        )
        for i in range(max(len(report.recovery_s), len(report.move_status))):

            def at(values: list[float] | list[int], j: int = i) -> float | None:
                return float(values[j]) if j < len(values) else None

            status = report.move_status[i] if i < len(report.move_status) else "-"
            print(
                f"  run {i}: recovery {_fmt(at(report.recovery_s))}, "
                f"lost {_fmt(at(report.preempt_lost_steps), '')} steps | move {status}: "
                f"total {_fmt(at(report.move_total_s))} (replacement up {_fmt(at(report.move_up_s))}, "
                f"old drained {_fmt(at(report.move_drained_s))}), "
                f"lost {_fmt(at(report.move_lost_steps), '')} steps"
            )
    med = summary(reports)
    n = sum(len(r.recovery_s) for r in reports)
    m = sum(len(r.move_total_s) for r in reports)
    print()
    print(
        f"medians over {n} preemptions and {m} moves ({platform.node()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}):"
    )
    print("| figure | median |")
    print("|---|---|")
    print(f"| recovery after preemption (notice -> training again) | {_fmt(med['recovery_s'])} |")
    print(f"| steps lost per preemption | {_fmt(med['preempt_lost_steps'], '')} |")
    print(f"| price-driven move (launch -> training again) | {_fmt(med['move_total_s'])} |")
    print(f"| - replacement Ray node alive | {_fmt(med['move_up_s'])} |")
    print(f"| - old node drained (deadline {args.drain_deadline_s:g} s) | {_fmt(med['move_drained_s'])} |")
    print(f"| steps lost per move | {_fmt(med['move_lost_steps'], '')} |")
    print(f"| wall time per cluster | {_fmt(med['wall_s'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
