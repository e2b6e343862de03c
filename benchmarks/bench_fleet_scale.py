"""The provider at fleet scale over three clouds' fakes (issue 13, "what must hold" 5).

    .venv/bin/python benchmarks/bench_fleet_scale.py                  # 100 and 1,000 nodes, burst 200
    .venv/bin/python benchmarks/bench_fleet_scale.py --sizes 100 --burst 30   # quick look
    .venv/bin/python benchmarks/bench_fleet_scale.py --write-readme   # also rewrite its README section

For each fleet size N (a third each on moto's EC2, the loopback Compute Engine fake and the
loopback ARM fake; seeded straight into the fakes, ``tests/fleet_scale.seed``) it measures, with
the real drivers and ``MultiCloudNodeProvider``:

* **listing tick**: ``non_terminated_nodes({})`` (what Ray's autoscaler calls each tick), p50 /
  p99 / max over ``--listings`` calls from a warm provider, and the HTTP requests one listing makes
  per cloud; side by side, (a) each call waiting for a new listing of the clouds
  (``slow_listing_s`` set to infinity: what the provider did before) and (b) as shipped, where a
  listing slower than ``slow_listing_s`` makes the next calls answer from it while the next listing
  runs in the background, calls spaced ``--tick-s`` apart as the autoscaler spaces them; for (b) also
  the age of each answer (since its listing began), and every answer is checked to hold the N nodes;
* **launch burst**: ``--burst`` one-node launch requests spread over the three clouds, issued as
  Ray's ``NodeProviderAdapter`` issues them (batches of at most 5 nodes, 10 nodes in flight), right
  after a listing: the HTTP requests per cloud, by kind, and the wall time; then it checks that the
  fakes hold exactly the nodes asked for (each burst request id exactly once).

Calls are compared with each cloud's published request limits (``LIMITS``, with sources), counting
the whole burst as if it fell inside one token-bucket burst / one quota minute (conservative).
Latencies include the fakes' own time (moto answers ``DescribeInstances`` in Python, slowly; its
share is printed), on a 2-core machine shared with other work unless said otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from _readme import replace_section  # noqa: E402
from fleet_scale import CLOUDS, burst, fleet, seed, spread  # noqa: E402

HEADING = "## bench_fleet_scale"

# Published request limits, per the vendors' documentation (read 2026-11-29):
# - EC2, "Request throttling for the Amazon EC2 API" (docs.aws.amazon.com/AWSEC2/latest/APIReference/
#   throttling.html): token buckets per account and Region; the documented non-mutating example
#   (DescribeHosts) has a bucket of 100 requests refilled at 20/s; RunInstances also spends a
#   resource bucket of 1,000 instances refilled at 2/s.
# - Compute Engine, "Compute Engine rate quotas" (cloud.google.com/compute/docs/api-rate-limits):
#   per project and minute; read requests (*.get) 1,500/min, the default group (mutations)
#   1,500/min.
# - Azure Resource Manager, "Understand how Azure Resource Manager throttles requests"
#   (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling):
#   token buckets per subscription, principal and Region: reads 250 (refill 25/s), writes 200
#   (refill 10/s), deletes 200 (refill 10/s).
LIMITS = {
    "aws": [("DescribeInstances per region (non-mutating bucket)", ("DescribeInstances",), 100),
            ("instances launched (RunInstances resource bucket)", ("RunInstances",), 1000)],
    "gcp": [("reads: instances.get + aggregatedList + operation waits (per minute)",
             ("instances.get", "instances.aggregatedList", "zoneOperations.wait"), 1500),
            ("mutations: instances.insert (per minute)", ("instances.insert",), 1500)],
    "azure": [("reads (subscription bucket)", ("operation poll (read)", "VM GET (read)", "NIC GET (read)",
                                                "VM list (read)", "NIC list (read)"), 250),
              ("writes (subscription bucket)", ("NIC PUT (write)", "VM PUT (write)"), 200)],
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_size(size: int, burst_n: int, listings: int, tick_s: float) -> list[str]:
    lines: list[str] = []
    with fleet(Path(tempfile.mkdtemp(prefix=f"fleet{size}-"))) as world:
        per = seed(world, size)
        provider = world.provider()
        provider.slow_listing_s = float("inf")  # (a): every call waits for a new listing
        provider.non_terminated_nodes({})  # warm: DescribeRegions, clients, catalog
        lat: list[float] = []
        own: list[float] = []
        for _ in range(listings):
            world.reset_counts()
            started = time.perf_counter()
            nodes = provider.non_terminated_nodes({})
            lat.append(time.perf_counter() - started)
            assert len(nodes) == size, (len(nodes), size)
        calls = world.calls()
        # (b) as shipped: a fresh provider, calls spaced as the autoscaler's ticks.
        shipped = world.provider()
        shipped.non_terminated_nodes({})  # warm, as above (and the first listing's time is known)
        answered: list[float] = []
        ages: list[float] = []
        background = 0
        for _ in range(listings):
            time.sleep(tick_s)
            started = time.perf_counter()
            nodes = shipped.non_terminated_nodes({})
            answered.append(time.perf_counter() - started)
            ages.append(time.monotonic() - shipped.answered_from)
            background += shipped._background is not None and shipped._background.is_alive()
            assert len(nodes) == size, (len(nodes), size)
        if shipped._background is not None:
            shipped._background.join(120)
        # The clouds are listed at once; the slowest (moto) bounds the call. Its share:
        aws = provider.clouds["aws"]
        for _ in range(min(5, listings)):
            started = time.perf_counter()
            aws.list("fleet")
            own.append(time.perf_counter() - started)
        # The provider's own share: the same call with every driver answering from memory.
        mine: list[float] = []
        answers = {name: cloud.list("fleet") for name, cloud in provider.clouds.items()}
        for name, cloud in provider.clouds.items():
            cloud.list = (lambda _c, a=answers[name]: list(a))  # type: ignore[method-assign]
        for _ in range(listings):
            started = time.perf_counter()
            provider.non_terminated_nodes({})
            mine.append(time.perf_counter() - started)
        provider = world.provider()
        provider.non_terminated_nodes({})
        lines.append(f"fleet {size:>5} nodes ({per['aws']} aws, {per['gcp']} gcp, {per['azure']} azure)")
        lines.append(f"  non_terminated_nodes, (a) each call waits for a new listing: p50 {pct(lat, .5):6.3f} s  "
                     f"p99 {pct(lat, .99):6.3f} s  max {max(lat):6.3f} s over {listings} calls; moto's EC2 "
                     f"listing alone p50 {statistics.median(own):6.3f} s; the provider's own part (drivers "
                     f"answering from memory) p50 {pct(mine, .5):6.3f} s  p99 {pct(mine, .99):6.3f} s")
        lines.append(f"  non_terminated_nodes, (b) as shipped, a call every {tick_s:g} s: p50 "
                     f"{pct(answered, .5):6.3f} s  p99 {pct(answered, .99):6.3f} s  max {max(answered):6.3f} s "
                     f"over {listings} calls, {background} of them answered while a background listing ran; "
                     f"age of the answer (since its listing began) p50 {pct(ages, .5):5.1f} s  "
                     f"max {max(ages):5.1f} s")
        lines.append(f"  HTTP requests per listing tick: aws {calls['aws']} (DescribeInstances, one per enabled "
                     f"region), gcp {calls['gcp']} (aggregatedList), azure {calls['azure']} (VM list + NIC list)")
        # The burst: right after a listing, as in a tick.
        provider.non_terminated_nodes({})
        world.reset_counts()
        requests = spread(f"b{size}-", burst_n)
        started = time.perf_counter()
        errors = burst(provider, requests)
        took = time.perf_counter() - started
        by_kind = world.calls_by_kind()
        ids = world.request_ids()
        asked = Counter(r.cloud for r in requests)
        launched = {c: [i for i in ids[c] if i.startswith(f"b{size}-")] for c in CLOUDS}
        exact = all(len(launched[c]) == asked[c] == len(set(launched[c])) for c in CLOUDS) and not errors
        lines.append(f"  burst of {burst_n} launch requests: {took:6.1f} s wall, errors {len(errors)}; "
                     f"nodes created per cloud {dict((c, len(launched[c])) for c in CLOUDS)} for "
                     f"{dict(asked)} asked: {'EXACT' if exact else 'WRONG'}")
        for cloud in CLOUDS:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(by_kind[cloud].items()))
            lines.append(f"    {cloud:<5} {sum(by_kind[cloud].values()):>4} requests: {kinds}")
            for label, ops, limit in LIMITS[cloud]:
                used = sum(by_kind[cloud][op] for op in ops)
                verdict = "within" if used <= limit else "OVER"
                lines.append(f"          {label}: {used} of {limit} -> {verdict}")
        if errors:
            lines.append(f"  first error: {errors[0]!r}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--listings", type=int, default=20)
    parser.add_argument("--tick-s", type=float, default=5.0,
                        help="seconds between calls in (b) (Ray's autoscaler ticks every 5 s)")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.time()
    out: list[str] = []
    for size in (int(s) for s in args.sizes.split(",")):
        lines = run_size(size, args.burst, args.listings, args.tick_s)
        print("\n".join(lines), flush=True)
        out += lines
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    footer = (f"Measured with Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
              f"{os.cpu_count()} CPUs, load average {load:.1f} at the end; {time.time() - started:.0f} s in all.")
    print(footer)
    if args.write_readme:
        cmd = "PYTHONPATH=. .venv/bin/python benchmarks/bench_fleet_scale.py " + " ".join(sys.argv[1:])
        body = "\n".join([
            HEADING, "",
            "Calls per autoscaler tick and `non_terminated_nodes` latency for fleets of 100 and 1,000 "
            "nodes over moto's EC2 and the loopback GCE and ARM fakes, and a burst of launch requests "
            "checked for exactness (`benchmarks/bench_fleet_scale.py`'s docstring says how; limits "
            "and their sources are in `LIMITS`).", "", f"Command: `{cmd.strip()}`", "", "```", *out, "```", "",
            footer])
        replace_section(HEADING, body + "\n")


if __name__ == "__main__":
    main()
