"""How a zone's chance of going down soon depends on the age of its current up-run, on the **first
half** (the train half of tune_policies / bench_policy_limits) of every trace set of bench_policies.

    .venv/bin/python benchmarks/age_hazard.py                 # 30-minute horizon (a checkpoint interval)
    .venv/bin/python benchmarks/age_hazard.py --horizon-min 10

For every tick ``t`` at which a zone is up, in an up-run that began inside the half (the down tick
before it seen, so its age is known: ``t - start`` ticks), it counts whether the run ends within the
next ``horizon`` (``end - t <= horizon``), by age bucket. Ticks whose horizon reaches past the half's
end in a run still up there are left out (their outcome is not in the half). Prints one markdown row
per trace set: the share that went down, and in brackets how many up-ticks the bucket has. Reads only
the first half; it steers the young-zone rule's candidates (``MultiCloud.young_zone_hours``,
``young_loss_chance``), so it must not read the held-out half.
"""

from __future__ import annotations

import argparse
from itertools import pairwise

import bench_policies as bp

from ray_multicloud.sim.history import runs

EDGES_H = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def table(horizon_min: float) -> list[str]:
    """The markdown rows (header first)."""
    head = "| trace set (first half) | tick | " + " | ".join(
        f"age {a:g}-{b:g} h" for a, b in pairwise(EDGES_H)
    ) + f" | age >= {EDGES_H[-1]:g} h |"
    lines = [head, "|---|---:|" + "---:|" * len(EDGES_H)]
    for s in bp.SETS:
        ts = bp._traces(s)
        avail = ts.available(s.nodes)
        th = ts.gap_seconds / 3600.0
        half = avail.shape[1] // 2
        horizon = max(1, round(horizon_min / 60.0 / th))
        seen = [0] * len(EDGES_H)
        down = [0] * len(EDGES_H)
        for row in avail[:, :half]:
            for a, e in runs(row.tolist()):
                if a == 0:
                    continue  # begun before the half: age unknown
                for t in range(a, e):
                    if e == half and t + horizon >= e:
                        break  # the outcome lies past the half
                    age = (t - a) * th
                    k = max(i for i, x in enumerate(EDGES_H) if age >= x)
                    seen[k] += 1
                    down[k] += int(e - t <= horizon)
        cells = " | ".join(f"{d / n:.2f} ({n})" if n else "-" for d, n in zip(down, seen, strict=True))
        lines.append(f"| {s.label} | {th * 60:.2g} min | {cells} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--horizon-min", type=float, default=30.0, help="minutes ahead (default 30)")
    args = ap.parse_args(argv)
    print(f"Share of up-ticks whose zone went down within {args.horizon_min:g} min, by age of the up-run:")
    print("\n".join(table(args.horizon_min)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
