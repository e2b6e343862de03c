"""Ray Serve across clouds under load: a price-driven move, a spot preemption and a whole-cloud outage.

Run:  .venv/bin/python benchmarks/bench_serve.py [--trace conv|code] [--scale X] [--notice-s S]
      [--workdir DIR] [--write-readme]

Setup: a ``LocalCluster`` (cluster_configs/local-multicloud.yaml) with a serving pool over aws and
azure (``min_clouds: 2``, ``min_on_demand: 1``, one Serve slot per node); two replicas of a deployment
that sleeps ``--work-ms`` and answers where it runs; the cost/latency router
(``ray_multicloud.serve.router.CostLatencyRouter``, SLO ``--slo-ms``); the HTTP proxy on 127.0.0.1;
Serve's transport ``--transport`` (the cluster's ``provider.serve_transport``; default ``optimized``:
Serve over gRPC on every node, ``ray_multicloud/serve/transport.py``).

Load: Locust (headless, used as a library in its own process: ``ray_multicloud.scenarios.locust_load``),
``FastHttpUser``s on loopback at a steady rate taken from the Azure LLM inference trace (Splitwise,
ISCA'24; CC-BY-4.0; ``shared/data/demand/azure_llm_inference_2023/<trace>_requests_per_second_DERIVED.csv``):
the trace's mean rate (requests / seconds spanned) times ``--scale``. Client regions rotate over
us-east-1, us-west-2, eu-west-1 and "none" (the trace has no regions). No client-side retry (Locust's
``max_retries`` 0): a request that does not get a 200 counts as failed. Latency is Locust's response
time, on loopback (the RTT table steers routing; it is not added to the wire). In front of the model,
``serve.retry.RetryingGateway`` (on the head) sends a GET that was in flight on a lost replica to another
one (safe: GET is a safe method); ``--no-retry`` removes it, to see what a client gets without it.

Phases (each from its event until the deployment is back to two RUNNING replicas, plus ``--settle-s``,
and then on until the phase holds ``--min-requests`` requests, so that 0 failures bounds the failure
rate: 3,000 requests and none failed bound it below 0.1% at 95% confidence by the rule of three):
  baseline   steady state
  a) price   the azure spot node's price spikes on the price board -> ``controller.move_node``:
             replacement first, PREEMPTION drain, terminate
  b) preempt ``LocalCloud.preempt`` of the azure node with a ``--notice-s`` notice (drain, then loss);
             the autoscaler buys the replacement under the pool policy
  c) outage  ``LocalCloud.outage('azure')``: every azure instance dies at once, no notice; repeated
             ``--outages`` times (the pool relaunches azure each time), pooled in one row
  d) ramp    demand rises linearly from the steady rate to ``--ramp-to`` times it over ``--ramp-s``
             and stays there (two replicas, no autoscaling here: the ramp shows what the fixed pool does)
Targets (issue 14): 0 failed requests in >= 3,000 per phase; p50/p95/p99 per phase; p95 within the
SLO in every phase, the requests due in the first ``--outage-grace-s`` (15 s) after each outage left out.
``--write-readme`` replaces the whole ``## bench_serve`` section of ``benchmarks/README.md`` (its hand-written
history of earlier runs too: keep it).
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from _readme import replace_section

from ray_multicloud.serve.transport import TRANSPORTS

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# A node's raylet has 30 s to register by default; a loaded machine can miss that (three replacements
# in a row did at load 15), as in tests/test_spot_hedge_e2e.py. The local cloud's nodes inherit it.
os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")

REPO = Path(__file__).resolve().parent.parent
TRACE_DIR = REPO.parent / "shared" / "data" / "demand" / "azure_llm_inference_2023"
SECTION = "## bench_serve"
COMMAND = ".venv/bin/python benchmarks/bench_serve.py --write-readme"
CLIENT_REGIONS: tuple[str | None, ...] = ("us-east-1", "us-west-2", "eu-west-1", None)
PHASES = ("baseline", "a) price move", "b) spot preemption", "c) cloud outage (all rounds)", "d) demand ramp")


def trace_rate(trace: str, trace_dir: Path = TRACE_DIR) -> tuple[float, int, float]:
    """(mean requests per second, requests, seconds spanned) of a ``*_requests_per_second_DERIVED.csv``."""
    path = trace_dir / f"{trace}_requests_per_second_DERIVED.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise SystemExit(f"{path} has no rows")
    stamps = [datetime.strptime(r["second"], "%Y-%m-%d %H:%M:%S") for r in rows]
    total = sum(int(r["requests"]) for r in rows)
    span = (max(stamps) - min(stamps)).total_seconds() + 1
    return total / span, total, span


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", choices=("conv", "code"), default="conv")
    parser.add_argument("--scale", type=float, default=4.0, help="multiplier on the trace's mean rate")
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--slo-ms", type=float, default=100.0)
    parser.add_argument("--notice-s", type=float, default=30.0,
                        help="spot preemption notice (GCP and Azure give 30 s)")
    parser.add_argument("--baseline-s", type=float, default=15.0)
    parser.add_argument("--settle-s", type=float, default=10.0)
    parser.add_argument("--phase-timeout-s", type=float, default=120.0)
    parser.add_argument("--up-timeout-s", type=float, default=300.0)
    parser.add_argument("--outages", type=int, default=2,
                        help="rounds of phase c (one outage, recovery, settle each), pooled in one row")
    parser.add_argument("--min-requests", type=int, default=3000,
                        help="each phase runs on until it holds this many requests")
    parser.add_argument("--ramp-to", type=float, default=2.0, help="phase d ends at this x the rate")
    parser.add_argument("--ramp-s", type=float, default=60.0)
    parser.add_argument("--outage-grace-s", type=float, default=15.0,
                        help="the p95-within-SLO verdict leaves out requests due this long after each outage")
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no RetryingGateway: a request in flight on a lost replica fails (500)")
    parser.add_argument("--transport", choices=tuple(TRANSPORTS), default="optimized",
                        help="the cluster's provider.serve_transport (ray_multicloud/serve/transport.py; "
                             "benchmarks/bench_serve_hops.py measures both); default optimized")
    parser.add_argument("--workdir", default=None, help="keep the cluster's files here (default: a temp dir)")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)

    rate, requests, span = trace_rate(args.trace)
    target_rate = rate * args.scale
    header = [
        (f"load: {args.trace} trace mean {rate:.2f} req/s ({requests} requests over {span:.0f} s) "
        f"x {args.scale:g} = {target_rate:.2f} req/s steady (Locust, headless), no client retry; "
        f"work {args.work_ms:g} ms/request; "
        f"SLO {args.slo_ms:g} ms; clients {', '.join(r or 'none' for r in CLIENT_REGIONS)}; "
        f"Serve transport {args.transport}; "
        + ("safe requests (GET) in flight on a lost replica retried by serve.retry.RetryingGateway"
           if args.retry else "no server-side retry")),
    ]
    print(header[0], flush=True)
    load_at_start = os.getloadavg()[0]
    if args.workdir:  # kept afterwards, with every node's logs
        lines, events = run(args, target_rate, Path(args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
            lines, events = run(args, target_rate, Path(tmp))
    load_avg = os.getloadavg()[0]
    out = [*header, "", *lines, "", *events,
           f"1-minute load average: {load_at_start:.1f} at the start, {load_avg:.1f} at the end "
           f"({os.cpu_count()} CPUs; this process's niceness {os.nice(0)}, Ray's worker niceness "
           f"{os.environ.get('RAY_worker_niceness', 'default')})"]  # noqa: SIM112 -- Ray's name
    print("\n".join(out), flush=True)
    if args.write_readme:
        machine = (f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
                   f"{os.cpu_count()} CPUs")
        write_readme(out, machine, args)
    return 0


def run(args: argparse.Namespace, rate: float, workdir: Path) -> tuple[list[str], list[str]]:
    import ray
    from ray import serve

    from ray_multicloud.scenarios.loadtest import format_table, summarise
    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port
    from ray_multicloud.scenarios.locust_load import LocustLoad
    from ray_multicloud.scenarios.serve_migration import (
        cluster_overrides,
        outage,
        preempt,
        price_move,
        serve_start,
        serving_nodes,
        where_am_i_deployment,
    )
    from ray_multicloud.scenarios.serve_migration import wait_steady as wait_steady_all
    from ray_multicloud.serve.ranking import Slo
    from ray_multicloud.serve.retry import retrying_gateway
    from ray_multicloud.serve.spread import multicloud_deployment_options

    events: list[str] = []
    outages_at: list[float] = []

    def note(text: str) -> None:
        events.append(text)
        print(text, flush=True)

    t0 = time.monotonic()
    overrides = cluster_overrides(replicas=2)
    overrides["provider"]["serve_transport"] = args.transport  # every node, as a user's YAML would
    with LocalCluster(workdir=workdir, overrides=overrides) as cluster:
        note(f"cluster up in {time.monotonic() - t0:.0f} s")
        cluster.connect()
        try:
            # Generous: on a loaded machine a node's first start can fail and be relaunched.
            cluster.wait_for(lambda: len([n for n in serving_nodes(cluster) if n.ray_node_id]) >= 2,
                             timeout_s=args.up_timeout_s)
            port = free_port()
            serve_start(port)
            options = multicloud_deployment_options(
                replicas=2, slo=Slo(args.slo_ms, args.work_ms), state_dir=str(cluster.state_dir))
            model = where_am_i_deployment(options, work_ms=args.work_ms)
            serve.run(retrying_gateway(model) if args.retry else model, route_prefix="/")
            wait_steady = functools.partial(wait_steady_all, deployment="WhereAmI")
            wait_steady(2, timeout_s=90)
            note("serving nodes: " + ", ".join(n.offer_id for n in serving_nodes(cluster)))
            per_phase = args.min_requests / rate
            budget = 5 * (per_phase + args.phase_timeout_s + args.settle_s) + args.ramp_s + 300
            load = LocustLoad(port, workdir=workdir, rate_per_s=rate, client_regions=CLIENT_REGIONS,
                              duration_s=budget)

            def fill(phase: str) -> None:
                """Keep the phase on until it holds --min-requests requests."""
                cluster.wait_for(
                    lambda: sum(1 for s in load.samples if s.phase == phase) >= args.min_requests,
                    timeout_s=2 * per_phase + 120, interval_s=1.0)

            try:
                load.set_phase(PHASES[0])
                time.sleep(args.baseline_s)
                fill(PHASES[0])

                def azure_node() -> Any:
                    return next(n for n in serving_nodes(cluster) if n.cloud == "azure")

                # a) price-driven move
                node = azure_node()
                load.set_phase(PHASES[1])
                start = time.monotonic()
                for attempt in range(1, 4):  # as the controller would on its next ticks
                    moved = price_move(cluster, node.instance_id, spike_to=5.0, drain_deadline_s=30)
                    if moved.status == "moved":
                        break
                    note(f"a) attempt {attempt}: {node.offer_id} -> {moved.move.to_offer.offer_id}: "
                         f"{moved.status} (rolled back; the old node kept serving)")
                else:
                    raise RuntimeError("a) the price move failed three times")
                took = time.monotonic() - start
                note(f"a) {node.offer_id} -> {moved.move.to_offer.offer_id}: {moved.status}, "
                     f"replacement up {moved.up_s:.1f} s, old drained {moved.drained_s:.1f} s, "
                     f"terminated {moved.done_s:.1f} s")
                steady = wait_steady(2, timeout_s=args.phase_timeout_s)
                note(f"a) deployment steady {took + steady:.1f} s after the price spike")
                time.sleep(args.settle_s)
                fill(PHASES[1])

                # b) spot preemption with a notice
                node = azure_node()
                load.set_phase(PHASES[2])
                start = time.monotonic()
                preempt(cluster, node.instance_id, "azure", notice_s=args.notice_s)
                up_at, _ = wait_new_azure_node(cluster, {node.instance_id}, args.phase_timeout_s)
                serving = wait_served_from_new_azure(cluster, load, {node.instance_id},
                                                     args.phase_timeout_s) - start
                gone = wait_gone(cluster, "azure", [node.instance_id], args.notice_s + 30) - start
                wait_steady(2, timeout_s=args.phase_timeout_s)
                note(f"b) {node.offer_id} preempted with {args.notice_s:g} s notice: replacement node "
                     f"up {up_at - start:.1f} s, first answer from it {serving:.1f} s, old instance gone "
                     f"{gone:.1f} s, 2 replicas steady {time.monotonic() - start:.1f} s after the notice; "
                     "now "
                     + ", ".join(n.offer_id for n in serving_nodes(cluster)))
                time.sleep(args.settle_s)
                fill(PHASES[2])

                # c) the whole azure cloud goes down, --outages times (each round waits for recovery)
                load.set_phase(PHASES[3])
                for round_ in range(1, args.outages + 1):
                    start = time.monotonic()
                    outages_at.append(time.time())  # Locust's samples are due on the wall clock
                    lost = outage(cluster, "azure")
                    gone = wait_gone(cluster, "azure", lost, 30) - start
                    up_at, _ = wait_new_azure_node(cluster, set(lost), args.phase_timeout_s)
                    serving = wait_served_from_new_azure(cluster, load, set(lost),
                                                         args.phase_timeout_s) - start
                    wait_steady(2, timeout_s=args.phase_timeout_s)
                    note(f"c{round_}) azure outage took {len(lost)} instance(s) (gone {gone:.1f} s); "
                         f"the pool's new azure node up {up_at - start:.1f} s, first answer from it "
                         f"{serving:.1f} s after the outage")
                    time.sleep(args.settle_s)
                fill(PHASES[3])

                # d) demand ramp: the rate rises linearly to --ramp-to x over --ramp-s, then holds
                load.set_phase(PHASES[4])
                start = time.monotonic()
                while (elapsed := time.monotonic() - start) < args.ramp_s:
                    load.set_rate(rate * (1 + (args.ramp_to - 1) * elapsed / args.ramp_s))
                    time.sleep(1.0)
                load.set_rate(rate * args.ramp_to)
                held_at = time.time()  # the wall clock of Locust's samples, as outages_at
                fill(PHASES[4])
                note(f"d) ramp {rate:.1f} -> {rate * args.ramp_to:.1f} req/s over {args.ramp_s:g} s, "
                     "then held")
            finally:
                load.stop()
                load.join()
            stats = summarise(load.samples, PHASES)
            table = format_table(stats).splitlines()
            failures = [s for s in load.samples if not s.ok]
            for s in failures[:5]:
                note(f"failed: phase {s.phase!r} status {s.status} {s.error[:160]!r}")
            by = {s.phase: s for s in stats}
            span = {p: [s.due for s in load.samples if s.phase == p] for p in PHASES}
            achieved = [f"{p}: {len(t) / max(1e-9, max(t) - min(t)):.1f} req/s achieved over "
                        f"{max(t) - min(t):.0f} s" for p, t in span.items() if len(t) > 1]
            achieved.append(held_rate(load.samples, PHASES[4], held_at, rate * args.ramp_to))
            verdicts = [
                f"{p.split(' ')[0]} 0 failed in >= {args.min_requests}: "
                f"{'PASS' if by[p].failed == 0 and by[p].sent >= args.min_requests else 'FAIL'}"
                + resolution(by[p].failed, by[p].sent) for p in PHASES
            ]
            verdicts = [*achieved, *verdicts,
                        *slo_verdicts(load.samples, args.slo_ms,
                                      [(t, t + args.outage_grace_s) for t in outages_at],
                                      args.outage_grace_s)]
            return [*table, "", *verdicts], events
        finally:
            try:
                serve.shutdown()
            finally:
                ray.shutdown()


def slo_verdicts(samples: Sequence[Any], slo_ms: float, grace: Sequence[tuple[float, float]],
                 grace_s: float) -> list[str]:
    """Issue 14's latency target per phase: p95 within the SLO, the requests due in the first
    ``grace_s`` after each outage (windows ``grace``) left out of phase c."""
    from ray_multicloud.scenarios.loadtest import p95_outside

    out = []
    for p in PHASES:
        windows = grace if p == PHASES[3] else ()
        p95, counted = p95_outside(samples, p, windows)
        left_out = f", the outages' first {grace_s:g} s left out" if windows else ""
        out.append(f"{p.split(' ')[0]} p95 {p95:.1f} ms over {counted} requests{left_out} <= SLO "
                   f"{slo_ms:g} ms: {'PASS' if p95 <= slo_ms else 'FAIL'}")
    return out


def held_rate(samples: Sequence[Any], phase: str, held_at: float, asked: float) -> str:
    """Phase d's rate and p95 once the ramp is over, next to the rate asked.

    The phase's own rate mixes the ramp (whose mean is halfway up) with the hold, so it reads lower
    than the rate asked at the top even when Locust keeps up.
    """
    held = [s for s in samples if s.phase == phase and s.due >= held_at]
    if len(held) < 2:
        return f"{phase.split(' ')[0]} held at {asked:.1f} req/s asked: too few requests to tell"
    from ray_multicloud.scenarios.loadtest import percentile

    due = [s.due for s in held]
    span = max(due) - min(due)
    p95 = percentile([1000.0 * s.latency_s for s in held], 95)
    return (f"{phase.split(' ')[0]} held at {asked:.1f} req/s asked: {len(held) / max(1e-9, span):.1f} "
            f"req/s achieved over {span:.0f} s, {len(held)} requests, p95 {p95:.1f} ms")


def resolution(failed: int, sent: int) -> str:
    """Say when a phase is too short to resolve 0.1%: with no failure, one more would be 100/sent %."""
    if failed or not sent or 100.0 / sent < 0.1:
        return ""
    return (f" ({failed} of {sent}; too few requests to resolve 0.1%: one failure would be "
            f"{100.0 / sent:.2f}%)")


def wait_new_azure_node(cluster: Any, old: set[str], timeout_s: float) -> tuple[float, str]:
    """Wait until an azure serving node not in ``old`` has joined Ray: (monotonic time, its Ray node id)."""
    from ray_multicloud.scenarios.serve_migration import serving_nodes

    found = cluster.wait_for(lambda: [n for n in serving_nodes(cluster)
                                      if n.cloud == "azure" and n.instance_id not in old and n.ray_node_id],
                             timeout_s=timeout_s, interval_s=0.25)
    return time.monotonic(), str(found[0].ray_node_id)


def wait_served_from_new_azure(cluster: Any, load: Any, old: set[str], timeout_s: float) -> float:
    """Wait until a request was answered by a replica on any azure node of the pool that is not in
    ``old`` (instance ids); the time (monotonic) seen. Any such node, not only the first to come up:
    on a loaded machine the autoscaler can launch a second replacement while the first starts slowly,
    and Serve places the replica on whichever is up first."""
    from ray_multicloud.scenarios.serve_migration import serving_nodes

    def served() -> bool:
        new = {str(n.ray_node_id)[:12] for n in serving_nodes(cluster)
               if n.cloud == "azure" and n.instance_id not in old and n.ray_node_id}
        return any(s.ok and s.body.get("node") in new for s in load.samples[-200:])

    cluster.wait_for(served, timeout_s=timeout_s, interval_s=0.25)
    return time.monotonic()


def wait_gone(cluster: Any, cloud: str, instance_ids: Sequence[str], timeout_s: float) -> float:
    """Wait until every instance of ``instance_ids`` is terminated on ``cloud``; when (monotonic) it was."""
    from ray_multicloud.types import InstanceId

    driver = cluster.clouds()[cloud]
    cluster.wait_for(lambda: all(driver.get(InstanceId(i)) is None for i in instance_ids),
                     timeout_s=timeout_s, interval_s=0.25)
    return time.monotonic()


def write_readme(lines: Sequence[str], machine: str, args: argparse.Namespace) -> None:
    body = (
        f"{SECTION}\n\n"
        "Ray Serve across two simulated clouds (aws on-demand + azure spot, `min_clouds: 2`, "
        "`min_on_demand: 1`) under a steady load from Locust (headless, `FastHttpUser`s on loopback, no "
        "client retry) at the Azure LLM inference trace's mean rate times `--scale` (Splitwise, ISCA'24, "
        "CC-BY-4.0; `shared/data/demand/azure_llm_inference_2023/*_DERIVED.csv`), through (a) a "
        "price-driven move (replacement first, PREEMPTION drain, terminate), (b) a spot preemption with a "
        "notice, (c) the loss of the whole azure cloud at once (`--outages` rounds pooled), (d) a demand "
        "ramp to `--ramp-to` times the rate. Each phase runs on until it holds `--min-requests` requests "
        "(3,000: 0 failures then bound the failure rate below 0.1% at 95% confidence). Routing by "
        "`ray_multicloud.serve.router.CostLatencyRouter`; GETs in flight on a lost replica are retried on "
        "another by `ray_multicloud.serve.retry.RetryingGateway` (safe and idempotent methods, or an "
        "`Idempotency-Key`; never a POST without one). Latency is Locust's response time on loopback.\n\n"
        f"Command: `{COMMAND}`"
        + (f" (run with --scale {args.scale:g} --notice-s {args.notice_s:g} --slo-ms {args.slo_ms:g} "
           f"--outages {args.outages} --min-requests {args.min_requests})"
           if (args.scale, args.notice_s, args.slo_ms, args.outages, args.min_requests)
           != (4.0, 30.0, 100.0, 2, 3000) else "")
        + "\n\n```\n" + "\n".join(lines) + f"\n```\n\nMeasured with {machine}.\n"
    )
    replace_section(SECTION, body)


if __name__ == "__main__":
    sys.exit(main())
