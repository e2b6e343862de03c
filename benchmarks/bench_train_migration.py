"""Work a Ray Train job loses to a spot preemption and to a price-driven move, on the local cloud.

    .venv/bin/python benchmarks/bench_train_migration.py --runs 3 [--write-readme]

One local cluster (``ray up`` of cluster_configs/local-multicloud.yaml, 2 T4 spot workers), one
deterministic TorchTrainer job (ray_multicloud.scenarios.train_migration: 2 workers, a checkpoint every 5 steps of
~0.27 s; on a notice, ``ray_multicloud.train.notice.NoticeSaver`` keeps stepping while a step and a save
still fit before the deadline less a margin, saves, then steps no more), and ``--runs`` cycles of:

``preempt the node of rank 1 (notice 5 s) -> autoscaler relaunches through the policy -> train resumes
from the last verified checkpoint -> another offer drops to a fifth of the price -> controller launches
the replacement(s), drains the old node(s) (PREEMPTION, deadline 6 s), terminates them -> train
resumes``.

Figures, per preemption and per move (medians over every cycle):

* steps lost: the highest step reached before the restart minus the step restored from;
* training time lost: the wall-clock time spent computing those steps (their results were thrown away);
* pause: the end of the last useful step (the one restored from) -> the end of the first new step,
  split into "last useful step -> node gone" (the notice's deadline; paid time with no lasting work:
  what ``ray-multicloud simulate --notice-loss-minutes`` charges) and "node gone -> training again"
  (Ray Train's restart: the simulator's restart overhead);
* recovery after preemption: the notice -> the first training step after the restore; move: its start
  (replacement launch) -> the first step after the restore, with its parts.

The final weights are checked against an uninterrupted in-process run of the same seed; the benchmark
fails if they differ. ``--clusters K`` repeats the whole thing on K fresh clusters (medians over all).
The 1-minute load average is sampled every 5 s during the run and reported with the medians.
``--write-readme`` replaces the ``## bench_train_migration`` section of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time

from _readme import replace_section

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray_multicloud.scenarios.train_migration import Interruption, Report, run_scenario, summary

HEADING = "## bench_train_migration"
DESCRIPTION = """
What a Ray Train job loses to a spot preemption with notice and to a price-driven move, on the local
simulated cloud: one `ray up` cluster, 2 T4 spot workers, a deterministic 2-worker TorchTrainer job
(`ray_multicloud/scenarios/train_migration.py`: a checkpoint every 5 steps of ~0.27 s). On a notice the loop uses
`ray_multicloud.train.notice.NoticeSaver`: it keeps stepping while one more step and a save (both
measured by the loop) still end a margin before the deadline, saves, then steps no more until Ray Train
tears the group down at the deadline and restarts it. The margin covers Ray Train's poll of its workers
(a report still queued on a node that dies is lost): the job runs with
`RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.5` (Ray's default is 2 s) and a margin of that + 0.5 s. Each run:
preempt the node of rank 1 (notice 5 s) -> the autoscaler relaunches through the policy -> train
resumes from the last verified checkpoint -> another offer drops to a fifth of the price -> the
controller launches the replacement(s), drains the old node(s) (PREEMPTION, deadline 6 s), terminates
them -> train resumes. The final weights are compared with an uninterrupted in-process run of the same
seed (the benchmark fails if they differ).
"""
FIGURES = """
Figures: *steps lost* (highest step reached minus the step restored from), *training time lost*
(wall-clock time spent computing those steps), and the *pause* from the end of the last useful step to
the end of the first new step, split at the moment the node is gone (the notice's deadline); the restart
after it is split further with the phases Ray Train's controller logs for its new worker group (medians
of each part, so they need not add up exactly). "notice save -": the step's periodic checkpoint was the
notice's (no step fitted after it). The machine is shared (2 CPUs) and the restart moves with its load.
"""
TARGET_AFTER_GONE_S = 5.0
TARGET_LOST_STEPS = 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fmt(v: float | None, unit: str = "s") -> str:
    if v is None:
        return "-"
    return f"{v:.1f} {unit}" if unit == "s" else f"{v:g}"


class LoadSampler:
    """Samples the 1-minute load average every ``every_s`` seconds in a daemon thread."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples: list[float] = []
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self._every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def line(self) -> str:
        if not self.samples:
            return "load average not sampled"
        return (
            f"1-minute load average during the run: median {statistics.median(self.samples):.1f}, "
            f"max {max(self.samples):.1f} on {os.cpu_count()} CPUs"
        )


def _cost(i: Interruption | None) -> str:
    if i is None:
        return "-"
    return (
        f"lost {i.lost_steps} steps / {_fmt(i.lost_s)}, pause {_fmt(i.pause_s)} "
        f"(last useful step -> node gone {_fmt(i.unused_s)}, node gone -> training {_fmt(i.after_gone_s)}), "
        f"notice save {_fmt(i.save_s)}"
    )


def _report_lines(k: int, report: Report) -> list[str]:
    lines = [f"  {line}" for line in report.events]
    lines.append(
        f"cluster {k}: {report.attempts} attempts, offers used: {', '.join(report.offers_used)}; "
        f"final weights max |diff| vs uninterrupted run: {report.max_abs_diff:g}; wall {report.wall_s:.0f} s"
    )
    for i in range(max(len(report.preemptions), len(report.move_status))):

        def at(values: list[float], j: int = i) -> float | None:
            return values[j] if j < len(values) else None

        status = report.move_status[i] if i < len(report.move_status) else "-"
        preempt = report.preemptions[i] if i < len(report.preemptions) else None
        move = report.moves[i] if i < len(report.moves) else None
        lines.append(f"  run {i}: preemption: recovery {_fmt(at(report.recovery_s))}, {_cost(preempt)}")
        lines.append(
            f"  run {i}: move {status}: total {_fmt(at(report.move_total_s))} "
            f"(replacement up {_fmt(at(report.move_up_s))}, old drained {_fmt(at(report.move_drained_s))}), "
            f"{_cost(move)}"
        )
    return lines


def _medians(reports: list[Report], drain_deadline_s: float, notice_s: float) -> list[str]:
    med = summary(reports)
    rows = [
        ("steps lost", "preempt_lost_steps", "move_lost_steps", ""),
        ("training time lost (discarded steps)", "preempt_lost_s", "move_lost_s", "s"),
        ("pause: last useful step -> first new step", "preempt_pause_s", "move_pause_s", "s"),
        ("- last useful step -> node gone (deadline)", "preempt_unused_s", "move_unused_s", "s"),
        ("- node gone -> training again", "preempt_after_gone_s", "move_after_gone_s", "s"),
        ("-- Ray Train decides to restart", "preempt_detected_s", "move_detected_s", "s"),
        ("-- new worker group started (Ray Train)", "preempt_group_start_s", "move_group_start_s", "s"),
        (
            "--- waiting for nodes (placement group)",
            "preempt_placement_group_s",
            "move_placement_group_s",
            "s",
        ),
        ("--- worker processes and actors", "preempt_worker_processes_s", "move_worker_processes_s", "s"),
        ("--- torch process group, train context", "preempt_train_context_s", "move_train_context_s", "s"),
        ("-- restore and first step (the loop)", "preempt_loop_start_s", "move_loop_start_s", "s"),
        ("notice's checkpoint (save + report)", "preempt_save_s", "move_save_s", "s"),
    ]
    out = [
        "| figure | per preemption | per move |",
        "|---|---|---|",
        *(f"| {label} | {_fmt(med[p], unit)} | {_fmt(med[m], unit)} |" for label, p, m, unit in rows),
        f"| notice -> training again (preemption; notice {notice_s:g} s) | {_fmt(med['recovery_s'])} | |",
        f"| move start -> training again | | {_fmt(med['move_total_s'])} |",
        f"| - replacement Ray node alive | | {_fmt(med['move_up_s'])} |",
        f"| - old node drained (deadline {drain_deadline_s:g} s) | | {_fmt(med['move_drained_s'])} |",
        f"| wall time per cluster | {_fmt(med['wall_s'])} | |",
    ]
    gone, lost = med["preempt_after_gone_s"], med["preempt_lost_steps"]
    verdict = []
    if gone is not None:
        ok = "met" if gone <= TARGET_AFTER_GONE_S else "MISSED"
        verdict.append(
            f"training again <= {TARGET_AFTER_GONE_S:g} s after the node is gone: {_fmt(gone)} ({ok})"
        )
    if lost is not None:
        ok = "met" if lost <= TARGET_LOST_STEPS else "MISSED"
        verdict.append(f"<= {TARGET_LOST_STEPS} step lost: {lost:g} ({ok})")
    if verdict:
        out.append("")
        out.append("targets (preemption with notice, medians): " + "; ".join(verdict))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="preemption + move cycles per cluster")
    parser.add_argument("--clusters", type=int, default=1, help="fresh clusters to repeat the runs on")
    parser.add_argument("--notice-s", type=float, default=5.0)
    parser.add_argument("--drain-deadline-s", type=float, default=6.0)
    parser.add_argument(
        "--train-poll-s",
        type=float,
        default=0.5,
        help="RAY_TRAIN_HEALTH_CHECK_INTERVAL_S for the job (Ray's default: 2)",
    )
    parser.add_argument("--keep", default=None, help="keep each cluster's work directory under this folder")
    parser.add_argument("--write-readme", action="store_true", help="replace this benchmark's README section")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("ray_multicloud.controller").setLevel(logging.INFO)
    if args.runs < 1 or args.clusters < 1:
        parser.error("--runs and --clusters must be >= 1")

    reports: list[Report] = []
    lines: list[str] = []
    started = time.time()
    with LoadSampler() as load:
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
                    train_poll_s=args.train_poll_s,
                )
            finally:
                if not args.keep:
                    shutil.rmtree(tmp, ignore_errors=True)
            cluster_lines = _report_lines(k, report)
            print("\n".join(cluster_lines), flush=True)
            lines += cluster_lines
            if report.max_abs_diff is None or report.max_abs_diff > 1e-6:
                print(
                    f"FAIL: final weights differ from the uninterrupted run by {report.max_abs_diff}",
                    file=sys.stderr,
                )
                return 1
            reports.append(report)
    n = sum(len(r.preemptions) for r in reports)
    m = sum(len(r.moves) for r in reports)
    header = (
        f"medians over {n} preemptions and {m} moves ({platform.node()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; {load.line()}):"
    )
    table = _medians(reports, args.drain_deadline_s, args.notice_s)
    print()
    print(header)
    print("\n".join(table))
    if args.write_readme:
        command = " ".join(
            [
                ".venv/bin/python benchmarks/bench_train_migration.py",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        )
        replace_section(HEADING, _section(command, lines, header, table, reports))
    return 0


def _section(command: str, lines: list[str], header: str, table: list[str], reports: list[Report]) -> str:
    med = summary(reports)
    unused = [v for v in (med["preempt_unused_s"], med["move_unused_s"]) if v is not None]
    loss_min = max(unused) / 60.0 if unused else None
    loss_line = (
        f"For the simulator's 'on notice' model (`ray-multicloud simulate --checkpoint-on-notice "
        f"--notice-loss-minutes M`, `JobSpec.notice_loss_minutes`), M is the measured "
        f"'last useful step -> node gone' figure: here {loss_min * 60:.1f} s = {loss_min:.3f} min "
        "(the larger of the preemption and move medians) for this small job; a real job's is its "
        "notice save (plus Ray Train's poll and the margin) plus under one step, so measure it for the "
        "job in question. The restart after the node is gone is the simulator's `--restart-minutes`."
        if loss_min is not None
        else ""
    )
    return "\n".join(
        [
            HEADING,
            "",
            _one_line(DESCRIPTION),
            "",
            _one_line(FIGURES),
            "",
            "```",
            f"$ {command}",
            *lines,
            "",
            header,
            *table,
            "```",
            "",
            loss_line,
            "",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
