"""What the retry on a lost replica costs in latency: one Serve hop against two, side by side (issue 14).

    .venv/bin/python benchmarks/bench_serve_hops.py                 # 3 rounds x 2 modes, 1,000 per path
    .venv/bin/python benchmarks/bench_serve_hops.py --rounds 1 --requests 300      # quick look

``benchmarks/bench_serve.py`` sends every request through ``serve.retry.RetryingGateway`` (proxy ->
gateway replica -> model replica) so that a GET in flight on a replica that vanishes is sent again
instead of failing; without the gateway a request takes one hop (proxy -> model replica) and such a
request is answered ``500``. This benchmark measures the price of that second hop and nothing else:
one private Ray on 127.0.0.1 (no autoscaler, no cloud), one Serve proxy, two apps of the same model
(``scenarios.serve_migration.where_am_i_deployment``, ``--work-ms`` of ``asyncio.sleep`` per request,
2 replicas each, Serve's default router): ``/one`` is the model alone, ``/two`` is the gateway in front
of it. One aiohttp client on loopback sends Poisson arrivals at ``--rate`` requests/s in all, each
arrival to one of the two paths at random, so both see the same machine at the same moments.

Each measurement runs in the two transports of ``ray_multicloud.serve.transport``, alternating, each
in a fresh Ray of its own (Serve reads them when its processes start), ``--rounds`` times, and the
medians over rounds are compared:

- ``default``: Ray Serve's defaults (proxy and handles call replicas as Ray actor tasks);
- ``optimized``: Serve's documented high-throughput switch, ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``
  (gRPC between a handle and its replicas, user code on the replica's own event loop, buffered access
  logs), with ``RAY_SERVE_PROXY_USE_GRPC=1`` (the proxy to the ingress replica over gRPC too) and
  ``RAY_SERVE_ENABLE_DIRECT_INGRESS=0`` (keep the HTTP proxy as the one front door: that switch would
  otherwise start none and have each ingress replica listen on a port of its own).

It leaves out what bench_serve adds around the hops (three Ray nodes, the cost/latency router,
Locust), so its figures are lower than bench_serve's; the difference between its two rows is the hop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ray_multicloud.scenarios.loadtest import percentile
from ray_multicloud.serve.transport import TRANSPORTS, transport_env

PATHS = ("/one", "/two")
MODES = tuple(TRANSPORTS)


async def drive(port: int, requests: int, rate: float, seed: int) -> dict[str, list[float]]:
    """Poisson arrivals at ``rate``/s until each path has had ``requests``; latency in ms per path.

    A request that fails (status other than 200, or a connection error) raises: this benchmark has
    no fault in it, so a failure is a broken setup, not a figure.
    """
    import aiohttp

    rng = random.Random(seed)
    latency: dict[str, list[float]] = {p: [] for p in PATHS}
    sent = dict.fromkeys(PATHS, 0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(path: str) -> None:
            began = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {path} answered {response.status}")
            latency[path].append((time.perf_counter() - began) * 1000.0)

        tasks = []
        while min(sent.values()) < requests:
            open_paths = [p for p in PATHS if sent[p] < requests]
            path = rng.choice(open_paths)
            sent[path] += 1
            tasks.append(asyncio.create_task(one(path)))
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    return latency


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """One measurement in a fresh private Ray (in this process: the mode is this process's environment)."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (RAY_NOTES.md)
    import ray
    from ray import serve

    from ray_multicloud.scenarios.local_cluster import free_port
    from ray_multicloud.scenarios.serve_migration import where_am_i_deployment
    from ray_multicloud.serve.retry import retrying_gateway

    ray.init(address="local", include_dashboard=False, log_to_driver=False, num_cpus=4,
             _node_ip_address="127.0.0.1", configure_logging=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
        options = {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0}}
        serve.run(where_am_i_deployment(options, work_ms=args.work_ms), name="one", route_prefix="/one")
        serve.run(retrying_gateway(where_am_i_deployment(options, work_ms=args.work_ms)), name="two",
                  route_prefix="/two")
        if args.warmup:
            asyncio.run(drive(port, args.warmup, args.rate, args.seed + 1))
        return asyncio.run(drive(port, args.requests, args.rate, args.seed))
    finally:
        serve.shutdown()
        ray.shutdown()


def run_child(mode: str, round_no: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """``measure`` in a child process with ``mode``'s environment; p50/p95/p99 per path."""
    env = transport_env(mode, os.environ)
    command = [sys.executable, __file__, "--child", "--requests", str(args.requests),
               "--rate", str(args.rate), "--work-ms", str(args.work_ms), "--warmup", str(args.warmup),
               "--seed", str(args.seed + round_no)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout_s,
                          check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"mode {mode} round {round_no} failed (rc {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    figures: dict[str, dict[str, float]] = json.loads(lines[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per path per run (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode, alternating (default 3)")
    parser.add_argument("--rate", type=float, default=22.0,
                        help="requests/s over both paths (default 22: bench_serve's steady rate)")
    parser.add_argument("--work-ms", type=float, default=5.0, help="the model's time per request")
    parser.add_argument("--warmup", type=int, default=100, help="requests per path sent first, not counted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=900.0, help="limit per run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests < 1 or args.rate <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error("--requests and --rounds must be >= 1, --rate > 0, --warmup >= 0")
    if args.child:
        latency = measure(args)
        print(json.dumps({path: {f"p{q}": percentile(values, q) for q in (50, 95, 99)}
                          for path, values in latency.items()}))
        return 0

    began = time.monotonic()
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, dict[str, float]]]] = {mode: [] for mode in MODES}
    for round_no in range(args.rounds):
        for mode in MODES:
            figures = run_child(mode, round_no, args)
            runs[mode].append(figures)
            cells = "  ".join(f"{path} p50 {f['p50']:.1f} p95 {f['p95']:.1f} p99 {f['p99']:.1f}"
                              for path, f in figures.items())
            print(f"round {round_no + 1} {mode:<9} {cells}  (load {os.getloadavg()[0]:.1f})", flush=True)

    def median(mode: str, path: str, q: str) -> float:
        return statistics.median(run[path][q] for run in runs[mode])

    print(f"\n{args.requests} requests per path per run, {args.rounds} rounds per mode alternating; Poisson "
          f"{args.rate:g} req/s over both paths, work {args.work_ms:g} ms/request, Serve's default router, "
          "one private Ray on 127.0.0.1 per run; medians over rounds")
    print(f"{'mode':<10} {'path':<40} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    names = {"/one": "/one  proxy -> model", "/two": "/two  proxy -> RetryingGateway -> model"}
    for mode in MODES:
        for path in PATHS:
            print(f"{mode:<10} {names[path]:<40} " + " ".join(
                f"{median(mode, path, q):>8.1f}" for q in ("p50", "p95", "p99")))
    for q in ("p50", "p95", "p99"):
        for mode in MODES:
            one, two = median(mode, "/one", q), median(mode, "/two", q)
            print(f"{q} {mode}: two hops / one hop {two / one:.2f}x (+{two - one:.1f} ms)")
        d, o = median("default", "/two", q), median("optimized", "/two", q)
        print(f"{q} two hops: optimized / default {o / d:.2f}x ({o - d:+.1f} ms)")
    print(f"{time.monotonic() - began:.0f} s; 1-minute load average {load_before:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs); "
          f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
