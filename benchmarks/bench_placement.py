"""Latency of ``policy.place()`` per decision, on the shipped catalog and on a 100,000-offer catalog.

Run:  .venv/bin/python benchmarks/bench_placement.py [--decisions N] [--seed S] [--write-readme]

What it measures: one decision = one ``place(pool, count, index, fleet, now=...)`` call with a
prebuilt ``OfferIndex`` (the provider builds the index once per price update, not per decision).
Pools are drawn at random (fixed seed) over every accelerator of the catalog, GPU counts, region
globs, capacity types, price caps, source preferences, spread (``min_clouds`` 1-3),
``min_on_demand`` and cooldowns, with 1-8 nodes per decision and a small existing fleet.
Infeasible answers are timed too (they run the diagnosis path).

The synthetic catalog is derived deterministically from the real rows: each real offer is copied
with its zone renamed (``<zone>-s<k>``) and its price scaled by a seeded factor in [0.7, 1.3],
until there are 100,000 offers.

Targets (issue 2, item 8): p50 < 1 ms on the shipped catalog; p99 < 50 ms at 100,000 offers.
``--write-readme`` replaces the ``## bench_placement`` section of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence

from _readme import replace_section

from ray_multicloud.policy import OfferIndex, place
from ray_multicloud.pricing import load_catalog
from ray_multicloud.types import (
    CapacityType,
    FleetNode,
    Infeasible,
    InstanceId,
    Offer,
    OfferId,
    PoolSpec,
    RequestId,
)

SYNTHETIC_SIZE = 100_000
TARGET_P50_SHIPPED_MS = 1.0
TARGET_P99_SYNTHETIC_MS = 50.0
SECTION = "## bench_placement"
COMMAND = ".venv/bin/python benchmarks/bench_placement.py --write-readme"


def synthetic_offers(real: Sequence[Offer], size: int, seed: int) -> list[Offer]:
    rng = random.Random(seed)
    out: list[Offer] = []
    k = 0
    while len(out) < size:
        for o in real:
            if len(out) >= size:
                break
            factor = rng.uniform(0.7, 1.3)
            ondemand = o.ondemand_price_per_hour * factor
            price = o.price_per_hour * factor
            out.append(
                dataclasses.replace(
                    o,
                    zone=f"{o.zone or o.region}-s{k}",
                    price_per_hour=price,
                    ondemand_price_per_hour=ondemand,
                )
            )
        k += 1
    return out


def random_pool(rng: random.Random, index: OfferIndex, i: int) -> tuple[PoolSpec, int]:
    accelerator = rng.choice(index.accelerators())
    group = index.offers_for(accelerator)
    clouds = sorted({o.cloud for o in group})
    regions: tuple[str, ...] = ()
    roll = rng.random()
    if roll < 0.25:
        regions = (rng.choice(("us-*", "eu*", "europe-*", "asia-*", "ap-*")),)
    elif roll < 0.4:
        regions = tuple(sorted({rng.choice(group).region for _ in range(3)}))
    capacity = rng.choice(
        ((CapacityType.SPOT, CapacityType.ON_DEMAND), (CapacityType.SPOT,), (CapacityType.ON_DEMAND,))
    )
    max_price = None
    if rng.random() < 0.3:
        max_price = rng.choice(group).price_per_hour * rng.uniform(0.8, 2.0)
    preference: tuple[str, ...] = ()
    if rng.random() < 0.3:
        preference = tuple(rng.sample(clouds, k=min(len(clouds), 2)))
    pool = PoolSpec(
        name=f"p{i}",
        accelerator=accelerator,
        accelerator_count=rng.choice((1, 1, 2, 4, 8)),
        clouds=tuple(rng.sample(clouds, k=rng.randint(1, len(clouds)))) if rng.random() < 0.3 else (),
        regions=regions,
        capacity_types=capacity,
        max_price_per_hour=max_price,
        source_preference=preference,
        min_clouds=rng.choice((1, 1, 1, 2, 3)),
        min_on_demand=rng.choice((0, 0, 0, 1)) if CapacityType.ON_DEMAND in capacity else 0,
    )
    return pool, rng.randint(1, 8)


def run(index: OfferIndex, decisions: int, seed: int) -> tuple[list[float], list[float]]:
    """Time ``decisions`` random decisions; returns (ms of feasible ones, ms of infeasible ones)."""
    rng = random.Random(seed)
    feasible: list[float] = []
    infeasible: list[float] = []
    for i in range(decisions):
        pool, count = random_pool(rng, index, i)
        group = index.offers_for(pool.accelerator)
        fleet = [
            FleetNode(InstanceId(f"i-{j}"), pool.name, o, RequestId(f"r-{j}"), 0.0)
            for j, o in enumerate(rng.sample(group, k=min(len(group), rng.randint(0, 3))))
        ]
        cooldowns: dict[OfferId, float] = {}
        if rng.random() < 0.3:
            cooldowns = {o.offer_id: 2000.0 for o in group[: rng.randint(1, 5)]}
        start = time.perf_counter_ns()
        answer = place(pool, count, index, fleet, now=1000.0, cooldowns=cooldowns)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        (infeasible if isinstance(answer, Infeasible) else feasible).append(elapsed)
    return feasible, infeasible


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(
    label: str, n_offers: int, feasible: Sequence[float], infeasible: Sequence[float]
) -> tuple[str, float, float]:
    """One line for all decisions, then one each for the feasible and the infeasible ones."""
    times = [*feasible, *infeasible]
    p50, p99 = statistics.median(times), percentile(times, 0.99)
    out = []
    for name, part in (("all", times), ("  feasible", feasible), ("  infeasible", infeasible)):
        if part:
            out.append(
                f"{label + ' ' + name:<32} {n_offers:>8,} offers {len(part):>6} decisions  "
                f"p50 {statistics.median(part):7.3f} ms  p99 {percentile(part, 0.99):7.3f} ms  "
                f"max {max(part):7.3f} ms"
            )
    return "\n".join(out), p50, p99


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)

    catalog = load_catalog()
    shipped = OfferIndex.build(catalog.offers)
    t0 = time.perf_counter()
    synthetic_list = synthetic_offers(catalog.offers, SYNTHETIC_SIZE, args.seed)
    synthetic = OfferIndex.build(synthetic_list)
    build_s = time.perf_counter() - t0

    # Warm up so the first timed calls do not pay for lazy interpreter work.
    run(shipped, 200, args.seed + 1)
    lines = []
    line_a, p50_a, _ = summarize("shipped catalog", len(shipped), *run(shipped, args.decisions, args.seed))
    line_b, _, p99_b = summarize(
        "synthetic catalog", len(synthetic), *run(synthetic, max(args.decisions // 5, 200), args.seed)
    )
    ok_a = p50_a < TARGET_P50_SHIPPED_MS
    ok_b = p99_b < TARGET_P99_SYNTHETIC_MS
    lines.append(line_a)
    lines.append(line_b)
    lines.append(f"synthetic catalog generated and indexed in {build_s:.2f} s (once, not per decision)")
    lines.append(f"shipped p50 < {TARGET_P50_SHIPPED_MS:g} ms: {'PASS' if ok_a else 'FAIL'}")
    lines.append(f"100k p99 < {TARGET_P99_SYNTHETIC_MS:g} ms: {'PASS' if ok_b else 'FAIL'}")
    machine = (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; catalog {catalog.source} ({len(catalog.warnings)} row warnings)"
    )
    print("\n".join(lines))
    print(machine)
    if args.write_readme:
        write_readme(lines, machine, args)
    return 0 if ok_a and ok_b else 1


def write_readme(lines: Sequence[str], machine: str, args: argparse.Namespace) -> None:
    body = (
        f"{SECTION}\n\n"
        "Latency of `ray_multicloud.policy.place()` per decision (one call placing 1-8 nodes of a random pool, "
        "prebuilt `OfferIndex`), on the shipped catalog snapshot (`ray_multicloud/data/gpu_offers.csv`, "
        "SkyPilot catalog + Cyclenerd GCP prices, see `ray_multicloud/data/README.md`) and on a synthetic "
        "100,000-offer catalog derived from it (zones renamed, prices scaled by a seeded factor in [0.7, 1.3]). "
        "Targets: p50 < 1 ms on the shipped catalog, p99 < 50 ms at 100,000 offers.\n\n"
        f"Command: `{COMMAND}`"
        + (f" (run with --decisions {args.decisions} --seed {args.seed})" if args.decisions != 5000 else "")
        + "\n\n```\n"
        + "\n".join(lines)
        + f"\n```\n\nMeasured with {machine}.\n"
    )
    replace_section(SECTION, body)


if __name__ == "__main__":
    sys.exit(main())
