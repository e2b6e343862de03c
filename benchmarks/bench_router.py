"""CostLatencyRouter against Ray Serve's default router, side by side: one cluster, one load (issue 14).

    .venv/bin/python benchmarks/bench_router.py                   # 3,000 requests per router
    .venv/bin/python benchmarks/bench_router.py --requests 600    # quick look
    .venv/bin/python benchmarks/bench_router.py --write-readme    # also rewrite its README section

One local-cloud cluster with three serving nodes pinned to catalogue offers in three places: AWS
us-east-1 on-demand, Azure eastus spot and GCP asia-northeast1 (Tokyo) spot. Two Serve apps of the same
model run on those same nodes, one replica of each app per node: ``/ours`` routed by
``CostLatencyRouter`` (SLO ``--slo-ms``, service time ``--work-ms``), ``/default`` by Serve's own
router (what a user gets without this project). One Locust process per app sends the same load: the
same rate and the same rotation of client regions (us-east-1, eu-west-1, ap-northeast-1, given as the
``x-session-id`` header). Both run at the same time, so they see the same machine.

The cluster is on loopback, so the figures add the distance from the shipped RTT table
(``ray_multicloud/data/region_rtt.json``, sourced per pair): modelled latency = measured response time
+ RTT(client region, serving replica's region); cost per 1,000 requests = each request's time on its
replica (measured inside the replica) x the serving node's hourly price. See
``ray_multicloud/scenarios/router_compare.py``. Left out: the nodes' idle time (both apps keep all
three nodes up, so it is the same for both), egress of the responses, TLS and connection set-up over
a real WAN.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _readme import replace_section  # noqa: E402

HEADING = "## bench_router"
CLIENT_REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
SLOT = "router_slot"
# Catalogue offers (ray_multicloud/data/gpu_offers.csv), so the router prices them as it would anywhere.
SITES: dict[str, dict[str, Any]] = {
    "site_aws_use1_od": {
        "cloud": "aws",
        "region": "us-east-1",
        "zone": "use1-az1",
        "instance_type": "g4dn.xlarge",
        "capacity": "on-demand",
        "price_per_hour": 0.526,
        "accelerator": "T4",
        "accelerator_count": 1,
    },
    "site_azure_eastus_spot": {
        "cloud": "azure",
        "region": "eastus",
        "zone": "",
        "instance_type": "Standard_NC4as_T4_v3",
        "capacity": "spot",
        "price_per_hour": 0.062699,
        "ondemand_price_per_hour": 0.526,
        "accelerator": "T4",
        "accelerator_count": 1,
    },
    "site_gcp_tokyo_spot": {
        "cloud": "gcp",
        "region": "asia-northeast1",
        "zone": "asia-northeast1-a",
        "instance_type": "n1-standard-4+T4",
        "capacity": "spot",
        "price_per_hour": 0.21211,
        "ondemand_price_per_hour": 0.61376,
        "accelerator": "T4",
        "accelerator_count": 1,
    },
}


README_TEXT = (
    "`CostLatencyRouter` against Ray Serve's default router on one cluster under one load, at the "
    "same time (issue 14's side-by-side). Three serving nodes pinned to catalogue offers: AWS "
    "us-east-1 on-demand $0.526/h, Azure eastus spot $0.0627/h, GCP asia-northeast1 (Tokyo) spot "
    "$0.212/h; two apps of the same model, one replica of each per node; one Locust process per app "
    "at the same rate, clients rotating over us-east-1, eu-west-1 and ap-northeast-1 (`x-session-id`). "
    "The cluster is on loopback: latency is the measured response time plus the shipped RTT table's "
    "round trip between the client's and the serving replica's region (the same table the router "
    "ranks with, so this measures what the router does with the table, not the table's accuracy); "
    "cost is each request's time on its replica (measured inside the replica) x the serving node's "
    "price. Left out: idle node time (equal for both), response egress, WAN connection set-up."
)


def overrides() -> dict[str, Any]:
    """Three pinned serving nodes, two router slots each (one per app), kept up for the run."""
    return {
        "idle_timeout_minutes": 30,
        "provider": {"start_controller": False},
        "available_node_types": {
            name: {
                "resources": {"CPU": 1, "GPU": 1, SLOT: 2},
                "min_workers": 1,
                "max_workers": 1,
                "node_config": {"offer": offer},
            }
            for name, offer in SITES.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per router")
    parser.add_argument("--rate", type=float, default=12.0, help="requests/s per router")
    parser.add_argument("--slo-ms", type=float, default=200.0)
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--up-timeout-s", type=float, default=600.0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    load_avg: list[float] = []
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        lines = run(args, args.workdir, load_avg)
    else:
        with tempfile.TemporaryDirectory(prefix="rmc-bench-router-") as tmp:
            lines = run(args, Path(tmp), load_avg)
    load = (
        f"1-minute load average during the load: median {sorted(load_avg)[len(load_avg) // 2]:.1f}, "
        f"max {max(load_avg):.1f}"
        if load_avg
        else "load not sampled"
    )
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {began}; {load}"
    print(f"\n({machine})")
    if args.write_readme:
        write_readme(lines, machine, args)
    return 0


def run(args: argparse.Namespace, workdir: Path, load_avg: list[float]) -> list[str]:
    import ray
    from ray import serve

    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port
    from ray_multicloud.scenarios.locust_load import LocustLoad
    from ray_multicloud.scenarios.router_compare import Answered, format_comparison, router_figures
    from ray_multicloud.scenarios.serve_migration import serve_start, wait_steady, where_am_i_deployment
    from ray_multicloud.serve.ranking import Slo, load_rtt_table
    from ray_multicloud.serve.spread import multicloud_deployment_options

    table = load_rtt_table()
    price_of = {(o["cloud"], o["region"]): float(o["price_per_hour"]) for o in SITES.values()}
    region_of = {o["cloud"]: o["region"] for o in SITES.values()}
    t0 = time.monotonic()
    with LocalCluster(workdir=workdir, overrides=overrides()) as cluster:
        print(f"cluster up in {time.monotonic() - t0:.0f} s", flush=True)
        cluster.connect()
        try:
            cluster.wait_for(
                lambda: sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get(SLOT)) >= len(SITES),
                timeout_s=args.up_timeout_s,
                interval_s=2.0,
            )
            port = free_port()
            serve_start(port)
            common = {
                "replicas": len(SITES),
                "min_clouds": 1,
                "min_on_demand": 0,
                "slot_resource": SLOT,
                "state_dir": str(cluster.state_dir),
            }
            for app, slo in (("ours", Slo(args.slo_ms, args.work_ms)), ("default", None)):
                options = multicloud_deployment_options(slo=slo, **common)
                options["max_replicas_per_node"] = 1
                serve.run(
                    where_am_i_deployment(options, work_ms=args.work_ms),
                    name=app,
                    route_prefix=f"/{app}",
                    blocking=False,
                )
            for app in ("ours", "default"):
                wait_steady(len(SITES), timeout_s=300, app=app)
            print(
                "serving: "
                + ", ".join(
                    f"{o['cloud']} {o['region']} {o['capacity']} ${o['price_per_hour']}/h"
                    for o in SITES.values()
                ),
                flush=True,
            )
            duration = args.requests / args.rate * 3 + 300
            loads = {
                app: LocustLoad(
                    port,
                    workdir=workdir,
                    rate_per_s=args.rate,
                    client_regions=CLIENT_REGIONS,
                    duration_s=duration,
                    path=f"/{app}",
                    name=f"locust_{app}",
                )
                for app in ("ours", "default")
            }
            try:
                deadline = time.monotonic() + duration
                while time.monotonic() < deadline:
                    load_avg.append(os.getloadavg()[0])
                    if all(len(load.samples) >= args.requests for load in loads.values()):
                        break
                    time.sleep(2.0)
            finally:
                for load in loads.values():
                    load.stop()
                for load in loads.values():
                    load.join()
            figures = []
            for app, load in loads.items():
                rows = []
                for s in load.samples[: args.requests]:
                    cloud = s.body.get("cloud", "")
                    rows.append(
                        Answered(
                            client_region=s.client_region,
                            ok=s.ok,
                            response_s=s.latency_s,
                            replica_region=region_of.get(cloud, ""),
                        replica_s=float(s.body["ms"]) / 1000.0 if s.body.get("ms") else None,
                            price_per_hour=price_of.get((cloud, region_of.get(cloud, "")), 0.0),
                        )
                    )
                name = "CostLatencyRouter" if app == "ours" else "Serve default router"
                figures.append(router_figures(name, rows, table, slo_ms=args.slo_ms))
            lines = format_comparison(figures, slo_ms=args.slo_ms)
            ours, default = figures
            ratio = ours.cost_per_1000_usd / default.cost_per_1000_usd
            lines += [
                "",
                f"cost per 1,000 requests, ours / default: {ratio:.2f}x; SLO attainment ours "
                f"{100 * ours.regions[0].attainment:.1f}% vs default "
                f"{100 * default.regions[0].attainment:.1f}%",
            ]
            for line in lines:
                print(line)
            return lines
        finally:
            try:
                serve.shutdown()
            finally:
                ray.shutdown()


def write_readme(lines: list[str], machine: str, args: argparse.Namespace) -> None:
    cmd = (
        f".venv/bin/python benchmarks/bench_router.py --requests {args.requests} --rate {args.rate:g} "
        f"--slo-ms {args.slo_ms:g} --work-ms {args.work_ms:g}"
    )
    body = "\n".join(
        [
            HEADING,
            "",
            README_TEXT,
            "",
            f"Command: `{cmd}`",
            "",
            f"({machine})",
            "",
            *lines,
            "",
        ]
    )
    replace_section(HEADING, body)


if __name__ == "__main__":
    raise SystemExit(main())
