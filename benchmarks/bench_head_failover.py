"""The head falls and comes back: Serve requests through the outage, with GCS fault tolerance on.

Run:  .venv/bin/python benchmarks/bench_head_failover.py [--runs N] [--interval-ms MS] [--workdir DIR]
      [--write-readme]

Setup (``ray_multicloud/scenarios/head_failover.py``): a throwaway ``redis-server`` on 127.0.0.1 (no
persistence), a ``LocalCluster`` (cluster_configs/local-multicloud.yaml) with
``provider.gcs_fault_tolerance.redis_address`` set to it and a serving pool of one worker node, a Serve
deployment of one replica on that worker (5 ms of work), and a probe actor on the worker that calls
the deployment through a Serve handle every ``--interval-ms`` (timeout 2 s, no retry).

Event: SIGKILL to every Ray process of the head (GCS, raylet, autoscaler monitor, controller, Serve
controller), then ``ray up --restart-only`` (the head start commands again). The outage window runs
from the kill until ``serve.status()`` answers RUNNING again (the Serve controller is back on the new
head). Printed per run: requests sent in the window, failed, the longest time without an answer, how
long the head was down, and whether the worker node and the replica are the same ones afterwards.
Needs ``redis-server`` (apt-get install redis-server).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _readme import replace_section

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ray_multicloud.scenarios.head_failover import (  # noqa: E402
    FailoverResult,
    RedisServer,
    failover_overrides,
    run_failover,
)
from ray_multicloud.scenarios.local_cluster import LocalCluster  # noqa: E402


def one_run(workdir: Path, interval_s: float) -> tuple[FailoverResult, int]:
    with RedisServer(workdir / "redis") as redis, \
            LocalCluster(workdir=workdir / "cluster", overrides=failover_overrides(redis.address),
                         up_timeout_s=300) as cluster:
        result = run_failover(cluster, interval_s=interval_s, log=lambda m: print("  " + m, flush=True))
        keys = redis.dbsize()
    return result, keys


def row(i: int, r: FailoverResult, keys: int) -> str:
    assert r.outage is not None
    same_worker = r.worker_alive_after and r.worker_node_after == r.worker_node_before
    same_replica = bool(r.replica_before) and r.replica_after == r.replica_before
    return (f"| {i} | {r.outage.sent} | {r.outage.failed} | {r.outage.longest_gap_s * 1000:.0f} | "
            f"{r.down_s:.1f} | {r.serve_back_s:.1f} | {'yes' if same_worker else 'NO'} | "
            f"{'yes' if same_replica else 'NO'} | {len(r.ledger_open_after)} / {len(r.ledger_open_before)} | "
            f"{r.controller_starts} | {keys} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    base = Path(args.workdir or tempfile.mkdtemp(prefix="bench_head_failover_"))
    header = ("| run | requests in the outage | failed | longest gap (ms) | head down (s) | Serve control "
              "plane back (s) | same worker node | same replica | ledger open nodes after / before | "
              "controller starts | keys in Redis |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for i in range(1, args.runs + 1):
        print(f"run {i}: {base / f'run{i}'}", flush=True)
        result, keys = one_run(base / f"run{i}", args.interval_ms / 1000.0)
        rows.append(row(i, result, keys))
        print(header.splitlines()[0])
        print(rows[-1], flush=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        "## bench_head_failover\n\n"
        f"`python benchmarks/bench_head_failover.py --runs {args.runs} --interval-ms {args.interval_ms:g}` "
        f"({stamp}, {platform.machine()}, {os.cpu_count()} CPUs shared with other work; Ray 2.60, "
        "redis-server on loopback). GCS fault tolerance on; the head's Ray processes SIGKILLed and "
        "started again with `ray up --restart-only`; a probe on the worker calls the Serve deployment "
        f"through a handle every {args.interval_ms:g} ms (2 s timeout, no retry). The outage window is "
        "from the kill until `serve.status()` answers RUNNING again.\n\n"
        + header + "\n" + "\n".join(rows) + "\n"
    )
    print()
    print(body)
    if args.write_readme:
        replace_section("## bench_head_failover", body)
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - start:.0f} s")
    sys.exit(code)
