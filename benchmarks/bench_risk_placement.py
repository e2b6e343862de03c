"""What weighing interruption risk into launch placement buys over price-only placement (issue 12
item 7), on the held-out second half of every shared multi-zone spot trace.

    .venv/bin/python benchmarks/bench_risk_placement.py --quick   # 8 launches per trace set
    .venv/bin/python benchmarks/bench_risk_placement.py           # 24 launches per trace set

At each launch time ``t`` in the second half of a trace set, ``policy.place`` picks one offer among
the zones whose spot is obtainable at ``t`` (each at its price at ``t``) and on-demand, twice:
by price (``place`` without ``risk``), and by expected cost per useful hour (``risk=PlacementRisk``,
each zone's interruption rate estimated from its own history over the trailing ``--window-hours``
before ``t``: ``policy.risk.interruptions_per_hour``, the deadline policy's model). The job (8 h of
work, 6-minute restart; 30-minute periodic checkpoints, or checkpoints on notice) then runs where it
was placed: kept until preempted, restarted in the same zone as soon as it is obtainable (the
simulator's ``greedy`` with no deadline; on-demand if on-demand was placed). Cost includes restarts
and the work lost at each preemption. Nothing here is tuned. Writes ``results/risk_placement.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import bench_policies as bp

from ray_multicloud.policy.deadline import Greedy, OnDemandOnly
from ray_multicloud.policy.place import PlacementRisk, place
from ray_multicloud.policy.risk import interruptions_per_hour
from ray_multicloud.sim import JobSpec, simulate
from ray_multicloud.types import CapacityType, Decision, Offer, PoolSpec

RESULTS = Path(__file__).resolve().parent / "results"
WORK_H = 8.0
RESTART_MIN = 6.0
CKPT_MIN = 30.0
POOL = PoolSpec("bench", "GPU", 1)


def _offer(zone: str, region: str, price: float, od: float, cap: CapacityType) -> Offer:
    return Offer(cloud="trace", region=region, zone=zone if cap is CapacityType.SPOT else "", instance_type="vm",
                 accelerator="GPU", accelerator_count=1, vcpus=8, memory_gib=64, capacity=cap,
                 price_per_hour=price, ondemand_price_per_hour=od)


def run_set(index: int, launches: int, window_h: float) -> list[dict[str, object]]:
    s = bp.SETS[index]
    ts = bp._traces(s)
    th = ts.gap_seconds / 3600
    avail = ts.available(s.nodes)
    need = int(WORK_H * 4 / th)  # room for the job to finish (preemptions, waits) before the trace ends
    lo, hi = ts.ticks // 2, ts.ticks - need
    if hi <= lo:
        return []
    rows: list[dict[str, object]] = []
    for k in range(launches):
        t = lo + (hi - lo) * k // max(1, launches - 1)
        offers = [_offer(z, ts.regions[i], float(ts.spot_prices[i, t]), s.ondemand, CapacityType.SPOT)
                  for i, z in enumerate(ts.names) if avail[i, t]]
        offers.append(_offer("", "od", s.ondemand, s.ondemand, CapacityType.ON_DEMAND))
        rates = {f"trace:{z}": interruptions_per_hour(avail[i, : t + 1].tolist(), th, window_h)
                 for i, z in enumerate(ts.names)}
        for model in ("periodic", "on notice"):
            notice = model == "on notice"
            spec = JobSpec(WORK_H, None, CKPT_MIN, RESTART_MIN, nodes=s.nodes, checkpoint_on_notice=notice)
            risk = PlacementRisk(RESTART_MIN / 60, 0.0 if notice else CKPT_MIN / 60, rates)
            row: dict[str, object] = {"set": s.label, "t": t, "model": model}
            for how, kw in (("price", {}), ("risk", {"risk": risk})):
                d = place(POOL, 1, offers, now=0.0, **kw)  # type: ignore[arg-type]
                assert isinstance(d, Decision)
                o = d.placements[0].offer
                policy = OnDemandOnly() if o.capacity is CapacityType.ON_DEMAND else Greedy(home_zone=o.zone)
                r = simulate(ts, spec, policy, ondemand_price=s.ondemand, start_tick=t)
                row[how] = r.cost_usd if r.finished else float("nan")
                row[how + ":zone"] = o.zone or "on-demand"
                row[how + ":hours"] = r.hours_elapsed
                row[how + ":lost"] = r.lost_work_hours + r.overhead_hours
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 launches per trace set (default 24)")
    ap.add_argument("--window-hours", type=float, default=72.0, help="history each rate is estimated over")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    rows = [r for i in range(len(bp.SETS)) for r in run_set(i, 8 if args.quick else 24, args.window_hours)]
    secs = time.monotonic() - t0
    lines = ["| trace set | job model | launches | zone differs | price-only $/job | risk-weighted $/job | "
             "change | restart + lost h/job (price -> risk) | hours to finish (price -> risk) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model in ("periodic", "on notice"):
        for label in dict.fromkeys(str(r["set"]) for r in rows):
            sub = [r for r in rows if r["set"] == label and r["model"] == model
                   and r["price"] == r["price"] and r["risk"] == r["risk"]]  # finished both
            if not sub:
                continue

            def m(key: str, sub: list[dict[str, object]] = sub) -> float:
                return statistics.fmean(float(r[key]) for r in sub)  # type: ignore[arg-type]

            diff = sum(r["price:zone"] != r["risk:zone"] for r in sub)
            lines.append(f"| {label} | {model} | {len(sub)} | {diff} | {m('price'):.2f} | {m('risk'):.2f} | "
                         f"{m('risk') / m('price') - 1:+.1%} | {m('price:lost'):.2f} -> {m('risk:lost'):.2f} | "
                         f"{m('price:hours'):.1f} -> {m('risk:hours'):.1f} |")
    both = [r for r in rows if r["price"] == r["price"] and r["risk"] == r["risk"]]  # finished both ways
    tot = {model: statistics.fmean(float(r["risk"]) / float(r["price"]) - 1  # type: ignore[arg-type]
                                   for r in both if r["model"] == model)
           for model in ("periodic", "on notice")}
    command = ".venv/bin/python benchmarks/bench_risk_placement.py" + (" --quick" if args.quick else "")
    body = (f"# Risk-weighted launch placement vs price-only (held-out second half)\n\n`{command}` "
            f"({len(rows)} launches x 2 placements, {secs:.0f} s{', a --quick grid' if args.quick else ''}; "
            f"rates over the trailing {args.window_hours:g} h). {WORK_H:g} h jobs, restart {RESTART_MIN:g} min, "
            f"checkpoint {CKPT_MIN:g} min or on notice. Cost includes restarts and lost work; time waiting "
            "for the zone to return is not paid but shows in hours to finish.\n\n" + "\n".join(lines) + "\n\n"
            + "Mean change per launch over all sets: "
            + "; ".join(f"{k}: risk-weighted {v:+.1%} against price-only" for k, v in tot.items()) + ". "
            "gcp-04-30 (1.9 days) is too short to hold an 8 h job's room in its second half and is left out.\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "risk_placement.md").write_text(body)
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
