"""Choose ``skynomad``'s hysteresis ``delta`` (SkyNomad's footnote 2: "the scheduler switches only when
U(r,m) > U(r0,m0) + delta"; the paper gives no value) away from SkyNomad's evaluation setting.

    .venv/bin/python benchmarks/tune_skynomad_delta.py     # ~3 min on 2 cores

Setting: bench_skynomad's job (39.94 h, 59.91 h deadline, 0.2 h restart, 50 GB checkpoints, checkpoints
on notice — the paper's job model), on-demand 3.06 USD/h, but on the *other* V100 zones of the same
``aws-02-15-2023`` traces, one per region — us-east-1a, us-east-2a, us-west-2b, with their per-tick
prices from the artifact's ``v100_spot_prices.json`` — and windows starting every 96 h from 0 h. None
of bench_skynomad's zones (us-east-1c, us-east-2b, us-west-2a) is used, so nothing is chosen on
SkyNomad's evaluation windows. Objective: fewest deadline misses, then the lowest mean cost. Writes
``results/tune_skynomad_delta.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from ray_multicloud.policy.deadline import SkyNomad
from ray_multicloud.sim import JobSpec, TraceSet, simulate

DATA = Path(__file__).resolve().parents[2] / "shared/data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
FOLDER = DATA / "preemption/skypilot-spot-traces/availability/1-node/aws-02-15-2023"
RESULTS = Path(__file__).resolve().parent / "results"
ZONES = ("us-east-1a", "us-east-2a", "us-west-2b")
EVAL_ZONES = ("us-east-1c", "us-east-2b", "us-west-2a")  # bench_skynomad's: never used here
OD, GB, JOB_H, DEADLINE_H, RESTART_H = 3.06, 50.0, 39.93888888888889, 59.90833333333333, 0.2
DELTAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


def traces() -> TraceSet:
    assert not set(ZONES) & set(EVAL_ZONES)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_skynomad

    assert bench_skynomad.ZONES == EVAL_ZONES
    return bench_skynomad.traces(ZONES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args(argv)
    t0 = time.monotonic()
    ts = traces()
    spec = JobSpec(JOB_H, DEADLINE_H, 30.0, RESTART_H * 60, checkpoint_on_notice=True)
    span = ts.ticks * ts.gap_seconds / 3600.0
    starts = [h for h in range(0, int(span - DEADLINE_H), 96)]
    rows = []
    for delta in DELTAS:
        costs, misses = [], 0
        for h in starts:
            r = simulate(ts, spec, SkyNomad(delta=delta), ondemand_price=OD,
                         start_tick=round(h * 3600 / ts.gap_seconds), checkpoint_gb=GB)
            costs.append(r.cost_usd)
            misses += not r.met_deadline
        rows.append((delta, statistics.fmean(costs), misses, costs))
    best = min(rows, key=lambda r: (r[2], r[1]))
    lines = ["| delta (USD/h) | mean cost (USD) | misses | per window |", "|---:|---:|---:|---|"]
    lines += [f"| {d:g} | {m:.2f} | {k} | {', '.join(f'{c:.2f}' for c in cs)} |" for d, m, k, cs in rows]
    body = (f"# skynomad's hysteresis delta, chosen off SkyNomad's evaluation zones\n\n"
            f"`.venv/bin/python benchmarks/tune_skynomad_delta.py` ({time.monotonic() - t0:.0f} s). Zones "
            f"{', '.join(ZONES)} of aws-02-15-2023 (not {', '.join(EVAL_ZONES)}); windows from "
            f"{', '.join(str(h) for h in starts)} h; job {JOB_H:.2f} h, deadline {DEADLINE_H:.2f} h, restart "
            f"{RESTART_H:g} h, {GB:g} GB checkpoints on notice.\n\n" + "\n".join(lines)
            + f"\n\nChosen (fewest misses, then lowest mean cost): delta = {best[0]:g} USD/h.\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tune_skynomad_delta.md").write_text(body)
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
