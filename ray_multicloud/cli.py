"""The ``ray-multicloud`` command: the only place in the package that prints or exits.

Each subcommand is one ``_cmd_<name>(args) -> int`` function registered in ``build_parser``;
library errors (``MultiCloudError``) become a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray_multicloud.errors import MultiCloudError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ray-multicloud",
        description="Prices, plans, simulations and savings reports for multi-cloud Ray clusters.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # Subcommands register themselves here, one block each.
    _add_prices(sub)
    _add_plan(sub)
    _add_demo(sub)
    _add_status(sub)
    _add_dashboard(sub)
    _add_simulate(sub)
    _add_simulate_serving(sub)
    _add_report(sub)
    _add_reconcile(sub)
    _add_restore(sub)
    _add_assess(sub)
    _ = sub
    return parser


def _add_prices(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "prices",
        help="cheapest offers per cloud and capacity type from the price catalog",
        description="Cheapest catalog offers per (cloud, capacity type) for an accelerator. "
        "Prices are the shipped snapshot (or --catalog), not live prices.",
    )
    p.add_argument("--accelerator", required=True, help="accelerator name, e.g. A100 (exact, any case)")
    p.add_argument("--count", type=float, default=1.0, help="GPUs per node, at least (default 1)")
    p.add_argument("--capacity", choices=["spot", "on-demand"], help="only this capacity type")
    p.add_argument("--cloud", nargs="+", action="extend", default=[], help="only these clouds")
    p.add_argument("--region", nargs="+", action="extend", default=[],
                   help="regions; 'eu-*' matches a prefix")
    p.add_argument("--limit", type=int, default=1, help="offers shown per (cloud, capacity type), default 1")
    p.add_argument("--catalog", help="catalog CSV (default: the snapshot shipped with the package)")
    p.add_argument("--show-warnings", action="store_true", help="list the catalog's row warnings on stderr")
    p.add_argument("--live", action="store_true",
                   help="overlay live prices from each cloud's price API; shows each price's source and age")
    p.add_argument("--feed-endpoint", action="append", default=[], metavar="CLOUD=URL",
                   help="with --live: a price API base URL for a cloud (aws, gcp, azure), e.g. a mirror")
    p.add_argument("--max-price-age", type=float, default=60.0, metavar="MINUTES",
                   help="with --live: prices older than this are flagged stale (default 60)")
    p.set_defaults(handler=_cmd_prices)


def _cmd_prices(args: argparse.Namespace) -> int:
    from ray_multicloud.policy import OfferIndex, check_pool, matching_offers
    from ray_multicloud.pricing import load_catalog
    from ray_multicloud.table import format_table
    from ray_multicloud.types import CapacityType, PoolSpec

    if args.limit < 1 or args.count <= 0:
        print("ray-multicloud prices: --limit must be >= 1 and --count > 0", file=sys.stderr)
        return 2
    catalog = load_catalog(args.catalog)
    index = OfferIndex.build(catalog.offers)
    name = index.canonical_accelerator(args.accelerator)
    if name is None:
        known = ", ".join(index.accelerators())
        print(f"ray-multicloud prices: unknown accelerator {args.accelerator!r} (known: {known})",
              file=sys.stderr)
        return 2
    capacity = (CapacityType.parse(args.capacity),) if args.capacity else tuple(CapacityType)
    pool = PoolSpec(
        name="prices",
        accelerator=name,
        accelerator_count=args.count,
        clouds=tuple(args.cloud),
        regions=tuple(args.region),
        capacity_types=capacity,
    )
    groups: dict[tuple[str, str], list[list[str | int | float | None]]] = {}
    offers = list(matching_offers(pool, index))
    live = None
    if args.live:
        from ray_multicloud.pricing.show import live_overlay, price_source

        endpoints = dict(item.split("=", 1) for item in args.feed_endpoint if "=" in item)
        live = live_overlay(offers, endpoints=endpoints, max_age_s=args.max_price_age * 60)
        offers = sorted(live.offers, key=lambda o: o.price_per_hour)
        for note in live.notes:
            print(f"ray-multicloud prices: {note}", file=sys.stderr)
    for o in offers:
        rows = groups.setdefault((o.cloud, o.capacity.value), [])
        if len(rows) < args.limit:
            spot = o.capacity is CapacityType.SPOT
            row: list[str | int | float | None] = [
                o.cloud, o.capacity.value, o.region, o.zone or "-", o.instance_type,
                f"{o.accelerator_count:g}", f"{o.price_per_hour:.4f}", f"{o.ondemand_price_per_hour:.4f}",
                f"{o.discount:.0%}" if spot else "-"]
            if live is not None:
                row += price_source(o, live.now)
            rows.append(row)
    if args.show_warnings:
        for w in catalog.warnings:
            print(f"catalog warning: {w}", file=sys.stderr)
    print(f"catalog {catalog.source}: {len(catalog.offers)} offers, {len(catalog.warnings)} row warnings"
          + ("" if args.show_warnings else " (--show-warnings lists them)"), file=sys.stderr)
    if not groups:
        for problem in [str(p) for p in check_pool(pool, index)] or ["no offer matches"]:
            print(f"ray-multicloud prices: {problem}", file=sys.stderr)
        return 1
    ordered = sorted(groups.items(), key=lambda kv: float(str(kv[1][0][6])))
    table = [row for _, rows in ordered for row in rows]
    headers = ["cloud", "capacity", "region", "zone", "instance", "GPUs", "$/h", "on-demand $/h", "discount"]
    if live is not None:
        headers += ["price source", "age"]
    print(format_table(headers, table, align="lllllrrrr" + ("lr" if live is not None else "")))
    return 0


# --- plan ------------------------------------------------------------------------------------


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="check a multi-cloud cluster YAML offline; per pool, the offers it would use now and why",
        description="Validates the provider section and every node type's pool or pinned offer without "
        "calling any cloud, then shows, per pool, the offer each first node would get, the fallbacks "
        "tried if it has no capacity, and why. Exit 0: all placeable; 1: a pool has no offer; 2: invalid.",
    )
    p.add_argument("config", help="the cluster YAML given to ray up")
    p.add_argument("--fallbacks", type=int, default=3, help="fallback offers shown per node (default 3)")
    p.add_argument("--live", action="store_true", help="overlay live prices first (calls the price APIs)")
    p.add_argument("--feed-endpoint", action="append", default=[], metavar="CLOUD=URL",
                   help="with --live: a price API base URL for a cloud (aws, gcp, azure)")
    p.add_argument("--check-hosts", action="store_true",
                   help="log in to every host of the ssh pools: reachable, host key, key, tools, GPUs")
    p.set_defaults(handler=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    import time

    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
    from ray_multicloud.dry_run import dry_run
    from ray_multicloud.policy.place import describe_offer
    from ray_multicloud.pricing.show import price_source

    config = load_cluster_yaml(args.config)
    now = time.time()
    endpoints = dict(item.split("=", 1) for item in args.feed_endpoint if "=" in item)
    plan = dry_run(config, now=now, live=args.live, endpoints=endpoints)
    state = "every pool can be placed now" if plan.feasible else "SOME POOLS CANNOT BE PLACED"
    print(f"cluster {plan.cluster}: {len(plan.pools)} node types, {state}")
    for warning in plan.warnings:
        print(f"warning: {warning}")
    for note in plan.notes:
        print(f"note: {note}")
    for line in _idle_lines(config):
        print(f"idle: {line}")
    for pool in plan.pools:
        kind = "pinned" if pool.pinned else f"{pool.count} node(s) now"
        print(f"\n[{pool.node_type}] {kind}")
        for reason in pool.infeasible:
            print(f"  no offer: {reason}")
        for i, (offer, fallbacks, reasons) in enumerate(pool.placements, 1):
            source, age = price_source(offer, now)
            print(f"  node {i}: {offer.offer_id}  ${offer.price_per_hour:.4f}/h  [{source}, age {age}]")
            for reason in reasons:
                print(f"    why: {reason}")
            for fallback in fallbacks[: args.fallbacks]:
                print(f"    if no capacity: {describe_offer(fallback)}")
            if len(fallbacks) > args.fallbacks:
                print(f"    ... and {len(fallbacks) - args.fallbacks} more fallback(s)")
    hosts_ok = _check_hosts(config) if args.check_hosts else True
    return 0 if plan.feasible and hosts_ok else 1


def _idle_lines(config: Mapping[str, Any]) -> list[str]:
    """What idle governance will do (``idle:`` sections, already checked by ``dry_run``)."""
    from ray_multicloud.cluster_config.idle import parse_idle
    from ray_multicloud.policy.idle import human

    idle = parse_idle(config)
    lines = [f"{r.node_type}: a node whose GPUs are idle {human(r.downsize_after_s)} while other work runs "
             f"on it is replaced by a {r.downsize_to} node" for r in idle.pools.values()]
    if idle.hibernate_after_s is not None:
        lines.append(f"the cluster hibernates after {human(idle.hibernate_after_s)} with no GPU in use "
                     f"(GPU use by {idle.gpu_signal}); `ray-multicloud restore CONFIG` brings it back")
    return lines


def _check_hosts(config: Mapping[str, Any]) -> bool:
    """``plan --check-hosts``: every ssh pool's hosts, checked over SSH; True when all are usable."""
    from ray_multicloud.clouds import make_cloud
    from ray_multicloud.clouds.ssh import SshCloud
    from ray_multicloud.cluster_config.provider_section import load_settings

    settings = load_settings(config["provider"], str(config.get("cluster_name") or "default"))
    ok = True
    for name, spec in settings.clouds.items():
        cloud = make_cloud(name, spec, state_dir=str(settings.state_dir))
        if not isinstance(cloud, SshCloud):
            continue
        print(f"\n[hosts of {name}]")
        try:
            for check in cloud.check_hosts():
                print(f"  {check.host.where}: {'ok' if check.ok else 'NOT USABLE'}")
                for problem in check.problems:
                    print(f"    problem: {problem}")
                for note in check.notes:
                    print(f"    note: {note}")
                ok = ok and check.ok
        finally:
            cloud.close()
    return ok


# --- simulate ---------------------------------------------------------------------------------

SIM_POLICY_NAMES = (
    "ondemand", "greedy", "eager-next-region", "uniform-progress", "multicloud", "optimal",
    "greedy-ondemand", "up-eager", "skynomad", "skynomad-rate", "ross",  # policy.deadline.VARIANTS: baselines
)


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="replay spot traces through a deadline policy for a checkpointed training job",
        description="Replay per-zone spot traces (one JSON file per zone: "
        '{"metadata": {"gap_seconds": N}, "data": [...], "prices": [...]}) through a policy. '
        "A zone's spot price comes from its prices array, else --spot-price. The model is the one "
        "documented in ray_multicloud.sim.engine.",
    )
    p.add_argument("--traces", action="append", required=True, metavar="DIR",
                   help="directory of per-zone trace files (repeat to combine clouds)")
    p.add_argument("--job-hours", type=float, required=True, help="total work, hours")
    p.add_argument("--deadline-hours", type=float, required=True, help="deadline, hours after the start")
    p.add_argument("--checkpoint-minutes", type=float, required=True, help="checkpoint interval, minutes")
    p.add_argument("--restart-minutes", type=float, required=True, help="overhead of every (re)start or move")
    p.add_argument("--policy", required=True, choices=SIM_POLICY_NAMES,
                   help="greedy and uniform-progress follow Can't Be Late (NSDI '24); greedy-ondemand and "
                   "up-eager are this project's earlier variants of them")
    p.add_argument("--spot-price", type=float, default=0.918,
                   help="USD/h for zones without a prices array "
                   "(default 0.918, p3.2xlarge spot in the traces)")
    p.add_argument("--ondemand-price", type=float, default=3.06,
                   help="on-demand USD/h (default 3.06, p3.2xlarge us-east-1)")
    p.add_argument("--start-hours", type=float, default=0.0, help="start the job this far into the trace")
    p.add_argument("--nodes", type=int, default=1, help="spot VMs the job needs at once (multi-node traces)")
    p.add_argument("--checkpoint-on-notice", action="store_true",
                   help="the job also checkpoints when told its node is going (interruption notice or a "
                   "move's drain), so a preemption loses no work; needs a state that saves within the notice")
    p.add_argument("--notice-loss-minutes", type=float, default=0.0,
                   help="with --checkpoint-on-notice: work lost at each preemption or move all the same "
                   "(the last useful step -> node gone time that benchmarks/bench_train_migration.py "
                   "measures; default 0)")
    p.add_argument("--checkpoint-gb", type=float, default=0.0, metavar="G",
                   help="the job's checkpoint size: every start in another region pays G GB of egress at "
                   "the published rate for the two zones' clouds (ray_multicloud.pricing.egress; "
                   "default 0: no egress, the behaviour before this option)")
    p.add_argument("--egress-table", metavar="FILE", default=None,
                   help='with --checkpoint-gb: JSON {"aws->gcp": USD_PER_GB, "aws->aws": ..., ...} instead '
                   "of the published rates; a pair the zones need and the file lacks is an error naming it")
    p.add_argument("--rate-window-hours", type=float, default=24.0, metavar="H",
                   help="each zone's interruption rate over the trailing H hours of the trace is shown to "
                   "the policies (multicloud weighs it with egress; skynomad-rate's lifetimes; default 24)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_cmd_simulate)


class _ProgressBar:
    """A progress bar on stderr: shown at once on a tty, else only once a run passes ~2 s."""

    def __init__(self, label: str) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()
        self._label = label
        self._tty = sys.stderr.isatty()
        self._shown = False
        self._last = -1

    def __call__(self, fraction: float) -> None:
        pct = int(fraction * 100)
        if pct == self._last:
            return
        done = fraction >= 1.0
        if self._tty:
            step_ok = True
        else:  # a log, not a terminal: a line per 10% once the run is slow, and the last one
            slow = self._clock() - self._start >= 2.0
            step_ok = (slow and pct // 10 != self._last // 10) or (done and self._shown)
        if not step_ok:
            return
        self._last = pct
        self._shown = True
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        end = "\r" if self._tty and not done else "\n"
        print(f"{self._label} [{bar}] {pct:3d}%", end=end, file=sys.stderr, flush=True)


def _cmd_simulate(args: argparse.Namespace) -> int:
    import json
    import math

    from ray_multicloud.policy.deadline import POLICIES, VARIANTS
    from ray_multicloud.sim import JobSpec, load_traces, optimal_cost, simulate

    traces = load_traces(args.traces, default_spot_price=args.spot_price)
    for note in traces.notes:
        print(f"ray-multicloud simulate: note: {note}", file=sys.stderr)
    spec = JobSpec(
        work_hours=args.job_hours,
        deadline_hours=args.deadline_hours,
        checkpoint_minutes=args.checkpoint_minutes,
        restart_minutes=args.restart_minutes,
        nodes=args.nodes,
        checkpoint_on_notice=args.checkpoint_on_notice,
        notice_loss_minutes=args.notice_loss_minutes,
    )
    start = round(args.start_hours * 3600.0 / traces.gap_seconds)
    from ray_multicloud.pricing.egress import load_egress_table

    table = None if args.egress_table is None else load_egress_table(args.egress_table)
    bar = _ProgressBar(f"simulate {args.policy}")
    if args.policy == "optimal":
        result = optimal_cost(
            traces, spec, ondemand_price=args.ondemand_price, start_tick=start, progress=bar,
            checkpoint_gb=args.checkpoint_gb, egress=table,
        )
    else:
        result = simulate(
            traces,
            spec,
            {**POLICIES, **VARIANTS}[args.policy],
            ondemand_price=args.ondemand_price,
            start_tick=start,
            progress=bar,
            checkpoint_gb=args.checkpoint_gb,
            egress=table,
            rate_window_hours=args.rate_window_hours,
        )
    out = result.as_dict()
    out["zones"] = list(traces.names)
    out["trace_hours"] = round(traces.hours, 6)
    out["checkpoint_on_notice"] = args.checkpoint_on_notice
    out["notice_loss_minutes"] = args.notice_loss_minutes
    out["checkpoint_gb"] = args.checkpoint_gb
    out["clouds"] = [traces.cloud_of(z) for z in range(len(traces.names))]
    if args.json:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
        print(json.dumps(clean))
        return 0
    from ray_multicloud.table import format_table

    rows: list[list[str | int | float | None]] = [
        ["policy", result.policy],
        ["zones", f"{len(traces.names)} ({', '.join(traces.names)})"],
        ["tick", (f"{traces.gap_seconds:g} s; work {result.work_ticks:.4g}, "
                  f"restart {result.restart_ticks:.4g}, checkpoint {result.checkpoint_ticks:.4g} ticks"
                  + (" (on notice: every release keeps its work)" if args.checkpoint_on_notice else ""))],
        ["cost", f"{result.cost_usd:.2f} USD"],
        ["on-demand cost", f"{result.ondemand_cost_usd:.2f} USD"],
        ["savings", f"{result.savings_fraction:.1%}"],
        ["finished", "yes" if result.finished else "no (trace ended)"],
        ["met deadline", "yes" if result.met_deadline else "NO"],
        ["hours elapsed", f"{result.hours_elapsed:.2f}"],
        ["preemptions", result.preemptions],
    ]
    if args.checkpoint_gb > 0:
        rates = f"rates: {args.egress_table}" if args.egress_table else "published rates"
        rows.append(["egress", (f"{result.egress_usd:.2f} USD over {result.egress_moves} move(s) of "
                                f"{args.checkpoint_gb:g} GB (included in cost; {rates})")])
    print(format_table(["simulate", "result"], rows, align="ll"))
    return 0


# --- simulate-serving -------------------------------------------------------------------------

# Mirrors ray_multicloud.sim.serving.FLEET_POLICIES (not imported here: building the parser stays
# free of numpy; a test checks the two agree).
FLEET_POLICY_NAMES = ("ondemand", "spot-one-zone", "spot-hedge", "predictive")


def _add_simulate_serving(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate-serving",
        help="replay spot traces and a demand trace through a serving-fleet policy",
        description="Replay per-zone spot traces (the format of 'simulate') against a request-rate "
        "trace (CSV 'Time (min),Requests' or 'second,requests,...') for a fleet of replicas that "
        "each serve --replica-rps. Both traces start at their first row and run over their overlap, "
        "in steps of --step-seconds (default: the demand trace's resolution; spot held constant within "
        "a spot tick). A step with fewer ready replicas than ceil(demand / replica rps) is an SLO "
        "violation; the requests above ready capacity are unserved. The model is the one documented in "
        "ray_multicloud.sim.serving.",
    )
    p.add_argument("--traces", action="append", required=True, metavar="DIR",
                   help="directory of per-zone trace files (repeat to combine clouds)")
    p.add_argument("--demand", required=True, metavar="CSV", help="request-rate trace")
    p.add_argument("--replica-rps", type=float, required=True, metavar="X",
                   help="requests per second one replica serves within the SLO")
    p.add_argument("--policy", required=True, metavar="{" + ",".join(FLEET_POLICY_NAMES) + "}",
                   help="fleet policy")
    p.add_argument("--startup-minutes", type=float, default=5.0, metavar="M",
                   help="launch to ready, paid meanwhile (default 5)")
    p.add_argument("--downscale-minutes", type=float, default=10.0, metavar="M",
                   help="scale down only after demand stayed lower this long (default 10)")
    p.add_argument("--min-replicas", type=int, default=1, metavar="N",
                   help="replicas kept at zero demand (default 1)")
    p.add_argument("--extra-spot", type=int, default=1, metavar="N",
                   help="spot-hedge: spot replicas over what demand needs (default 1)")
    p.add_argument("--peak", action="store_true",
                   help="size for the highest demand sample in a step, not the mean")
    p.add_argument("--step-seconds", type=float, default=0.0, metavar="S",
                   help="simulation step (default: the demand trace's resolution, 60 for per-minute "
                   "counts, 1 for per-second ones); spot availability and prices are held constant "
                   "within a spot trace tick, start-up and scale-down count in steps (exact when the "
                   "step divides them)")
    p.add_argument("--spot-price", type=float, default=0.918, metavar="USD_PER_HOUR",
                   help="USD/h for zones without a prices array "
                   "(default 0.918, p3.2xlarge spot in the traces)")
    p.add_argument("--ondemand-price", type=float, default=3.06, metavar="USD_PER_HOUR",
                   help="on-demand USD/h per replica (default 3.06, p3.2xlarge us-east-1)")
    p.add_argument("--held-out-from", type=float, default=0.0, metavar="F",
                   help="report only the ticks after this fraction of the traces' overlap (0.5: the "
                   "second half); predictive chooses its forecaster on the ticks before it (default 0: "
                   "the whole trace, in-sample)")
    p.add_argument("--peaks", metavar="YAML",
                   help="known peaks: a YAML file with peaks: [{days: [mon-fri], from: '09:00', to: "
                   "'11:00', tz: UTC, replicas: 8}, ...] and/or peaks_ical: {path: FILE.ics, replicas: N}, "
                   "as a pool's predictive: section writes them, and optionally trace_start: ISO-8601 "
                   "(the time of the first tick; default 2024-01-01T00:00:00Z, a Monday); each peak's "
                   "replicas are ordered --startup-minutes before it opens, by every policy")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_cmd_simulate_serving)


def _serving_input_error(args: argparse.Namespace) -> str | None:
    """The first bad flag value, as ``--flag: what is wrong``; None when all are usable."""
    import math

    if args.policy not in FLEET_POLICY_NAMES:
        return f"--policy: unknown fleet policy {args.policy!r}; use one of {', '.join(FLEET_POLICY_NAMES)}"
    positive = (("--replica-rps", args.replica_rps), ("--spot-price", args.spot_price),
                ("--ondemand-price", args.ondemand_price))
    for flag, value in positive:
        if not (math.isfinite(value) and value > 0):
            return f"{flag} must be a number > 0, got {value:g}"
    for flag, value in (("--startup-minutes", args.startup_minutes),
                        ("--downscale-minutes", args.downscale_minutes)):
        if not (math.isfinite(value) and value >= 0):
            return f"{flag} must be a number >= 0, got {value:g}"
    for flag, count in (("--min-replicas", args.min_replicas), ("--extra-spot", args.extra_spot)):
        if count < 0:
            return f"{flag} must be >= 0, got {count}"
    if not (math.isfinite(args.step_seconds) and args.step_seconds >= 0):
        return (f"--step-seconds must be a number of seconds > 0 (0: the demand's resolution), "
                f"got {args.step_seconds:g}")
    if not (math.isfinite(args.held_out_from) and 0 <= args.held_out_from < 1):
        return f"--held-out-from must be a fraction in [0, 1), got {args.held_out_from:g}"
    return None


def _cmd_simulate_serving(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from ray_multicloud.sim import TraceError, load_traces
    from ray_multicloud.sim.serving import FleetSpec, load_demand, simulate_fleet

    cmd = "ray-multicloud simulate-serving"
    problem = _serving_input_error(args)
    if problem is None:
        try:
            traces = load_traces(args.traces, default_spot_price=args.spot_price)
        except TraceError as exc:
            problem = f"--traces: {exc}"
    if problem is None:
        try:
            demand = load_demand(args.demand)
        except TraceError as exc:
            problem = f"--demand: {exc}"
    peaks: tuple[Any, ...] = ()
    trace_start: float | None = None
    if problem is None and args.peaks:
        from ray_multicloud.cluster_config.predictive import read_peaks_file
        from ray_multicloud.errors import ConfigError

        try:
            trace_start, peaks = read_peaks_file(args.peaks)
        except ConfigError as exc:
            problem = f"--peaks: {exc}"
    if problem is not None:
        print(f"{cmd}: {problem}", file=sys.stderr)
        return 2
    for note in traces.notes:
        print(f"{cmd}: note: {note}", file=sys.stderr)
    extra: dict[str, Any] = {"peaks": peaks}
    if trace_start is not None:
        extra["trace_start"] = trace_start
    fleet = FleetSpec(
        replica_rps=args.replica_rps,
        startup_minutes=args.startup_minutes,
        min_replicas=args.min_replicas,
        extra_spot=args.extra_spot,
        downscale_minutes=args.downscale_minutes,
        peak=args.peak,
        step_seconds=args.step_seconds,
        **extra,
    )
    try:
        result = simulate_fleet(traces, demand, fleet, args.policy, ondemand_price=args.ondemand_price,
                                held_out_from=args.held_out_from)
    except TraceError as exc:
        print(f"{cmd}: {exc}", file=sys.stderr)
        return 2
    if result.note:
        print(f"{cmd}: note: {result.note}", file=sys.stderr)
    out: dict[str, object] = dataclasses.asdict(result)
    out["savings_fraction"] = result.savings_fraction
    out["zones"] = list(traces.names)
    out["tick_seconds"] = traces.gap_seconds
    out["trace_hours"] = round(traces.hours, 6)
    out["demand_hours"] = round(demand.hours, 6)
    if args.json:
        print(json.dumps(out))
        return 0
    from ray_multicloud.table import format_table

    rows: list[list[str | int | float | None]] = [
        ["policy", result.policy],
        ["zones", f"{len(traces.names)} ({', '.join(traces.names)})"],
        ["simulated", (f"{result.hours:.2f} h in {result.step_seconds:g} s steps (spot traces "
                       f"{traces.hours:.2f} h in {traces.gap_seconds:g} s ticks, "
                       f"demand {demand.hours:.2f} h)")],
        ["cost", f"{result.cost_usd:.2f} USD"],
        ["on-demand cost", f"{result.ondemand_cost_usd:.2f} USD"],
        ["savings", f"{result.savings_fraction:.1%}"],
        ["SLO-violation steps", f"{result.slo_violation_fraction:.2%}"],
        ["unserved requests", f"{result.unserved_fraction:.2%}"],
        ["preemptions", result.preemptions],
        ["mean replicas", f"{result.mean_replicas:.2f}"],
        ["figures over", "the whole trace (in-sample)" if result.in_sample
         else f"the steps after the first {args.held_out_from:.0%} (held out)"],
    ]
    if result.policy == "predictive":
        rows.append(["forecaster", result.forecaster or "none (reactive, as spot-hedge: see the note)"])
    print(format_table(["simulate-serving", "result"], rows, align="ll"))
    return 0


# --- reconcile --------------------------------------------------------------------------------


def _add_reconcile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reconcile",
        help="the clouds' own bills against the ledger, per instance and per day",
        description="Read billing exports (AWS Cost and Usage Report CSV/Parquet, GCP billing export "
        "CSV/JSON, Azure cost details CSV; ray_multicloud/billing) and compare them with the ledger's "
        "list-price record per instance and UTC day: compute billed vs recorded, and the egress, disk "
        "and storage lines the ledger lacks. Reads only; nothing is recorded.",
    )
    p.add_argument("--ledger", required=True, help="the ledger's SQLite file")
    p.add_argument("--bill", action="append", required=True, metavar="FILE", help="a billing export (repeat)")
    p.add_argument("--format", default="auto", choices=["auto", "aws-cur", "gcp-billing", "azure-cost"],
                   help="the exports' format (default: told by their columns)")
    p.add_argument("--cluster", help="the cluster's name (default: the only one in the ledger)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_reconcile)


def _cmd_reconcile(args: argparse.Namespace) -> int:
    import json

    from ray_multicloud.billing import BillError, Category
    from ray_multicloud.billing.formats import load
    from ray_multicloud.billing.reconcile import ledger_days, reconcile
    from ray_multicloud.ledger import Ledger, LedgerError
    from ray_multicloud.table import format_table

    cmd = "ray-multicloud reconcile"
    try:
        lines = [line for path in args.bill for line in load(path, args.format)]
    except BillError as exc:
        print(f"{cmd}: --bill: {exc}", file=sys.stderr)
        return 2
    try:
        with Ledger(args.ledger, create=False) as ledger:
            clusters = sorted({r.cluster for r in ledger.spend()})
            cluster = args.cluster
            if cluster is None:
                if len(clusters) != 1:
                    print(f"{cmd}: --cluster: the ledger holds {clusters or 'no cluster'}; name one",
                          file=sys.stderr)
                    return 2
                cluster = clusters[0]
            recorded = ledger_days(ledger, {line.day for line in lines}, cluster=cluster)
    except (LedgerError, OSError) as exc:
        print(f"{cmd}: --ledger: {exc}", file=sys.stderr)
        return 2
    result = reconcile(lines, recorded, cluster=cluster)
    if args.json:
        print(json.dumps({
            "cluster": cluster,
            "ledger_usd": result.ledger_usd,
            "bill_usd": result.bill_usd,
            "by_category": {k.value: v for k, v in result.by_category().items()},
            "ignored_usd": result.ignored_usd,
            "instances": [
                {"cloud": r.cloud, "instance_id": r.instance_id, "day": r.day.isoformat(),
                 "ledger_usd": r.ledger_usd, "bill_usd": {k.value: v for k, v in r.bill_usd.items()},
                 "compute_diff_usd": r.compute_diff_usd, "missing_usd": r.missing_usd}
                for r in result.instances
            ],
            "cluster_extras": [
                {"cloud": x.cloud, "resource_id": x.resource_id, "day": x.day.isoformat(),
                 "category": x.category.value, "cost_usd": x.cost_usd, "description": x.description}
                for x in result.cluster_extras
            ],
        }))
        return 0
    rows: list[list[str | int | float | None]] = [
        [r.day.isoformat(), r.cloud, r.instance_id, f"{r.ledger_usd:.2f}",
         f"{r.bill_usd.get(Category.COMPUTE, 0.0):.2f}",
         f"{r.compute_diff_usd:+.2f}", f"{r.missing_usd:.2f}"]
        for r in result.instances
    ]
    print(format_table(["day", "cloud", "instance", "ledger_usd", "bill_compute_usd", "diff_usd",
                        "not_in_ledger_usd"], rows, align="lllrrrr"))
    if result.cluster_extras:
        extra = [[x.day.isoformat(), x.cloud, x.resource_id, x.category.value, f"{x.cost_usd:.2f}"]
                 for x in result.cluster_extras]
        print()
        print("billed to the cluster, no instance of the ledger:")
        print(format_table(["day", "cloud", "resource", "category", "usd"], extra, align="llllr"))
    cats = ", ".join(f"{k.value} {v:.2f}" for k, v in sorted(result.by_category().items()))
    print(f"\ncluster {cluster}: ledger {result.ledger_usd:.2f} USD, bill {result.bill_usd:.2f} USD "
          f"({cats}); {result.ignored_usd:.2f} USD of other resources ignored")
    return 0


# --- report -----------------------------------------------------------------------------------


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="spend, savings and idle cost per job, team, pool or cloud, from the ledger",
        description="Per group: nodes, node hours, spend (reserved nodes at their term price, plus the "
        "reserved hours no node used), what the same hours cost on on-demand, the saving, and the idle "
        "cost (nodes no workload was seen on, unused reserved hours); then the total saving with and "
        "without private machines (charged at their amortised $/h) and, with --config, each "
        "reservation's use and each budget's use this month.",
    )
    p.add_argument("--ledger", help="the ledger's SQLite file (default: the --config's provider.ledger)")
    p.add_argument("--config", help="the cluster YAML: names the private clouds, the pools' teams, the "
                   "reservations and the budgets")
    p.add_argument("--private", action="append", default=[], metavar="CLOUD",
                   help="a cloud of the ledger that is a private pool (repeat; --config finds them itself)")
    p.add_argument("--by", choices=["cloud", "pool", "job", "team", "region", "capacity"], default="cloud",
                   help="grouping (default cloud)")
    p.add_argument("--until", type=float, help="POSIX time to report up to (default: now)")
    p.add_argument("--format", choices=["table", "csv"], default="table",
                   help="what to print: the table and summaries (default), or the groups as CSV only")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--png", metavar="FILE", help="also write a bar chart (spend, on-demand, idle) as PNG")
    p.set_defaults(handler=_cmd_report)


REPORT_HEADER = ("instances", "hours", "spend_usd", "ondemand_usd", "saved_usd", "savings", "idle_usd")


def _cmd_report(args: argparse.Namespace) -> int:
    import csv
    import time
    from dataclasses import replace

    from ray_multicloud.ledger import Ledger
    from ray_multicloud.savings import describe, private_clouds_of, split_savings
    from ray_multicloud.spend_report import report_groups, reservation_use, total
    from ray_multicloud.table import format_table
    from ray_multicloud.types import Reservation

    config = None
    private: set[str] | None = set(args.private) if args.private else None
    ledger_path = args.ledger
    reservations: tuple[Reservation, ...] = ()
    teams: dict[str, str] = {}
    if args.config:
        from ray_multicloud.cluster_config.pools import pool_team
        from ray_multicloud.cluster_config.provider_section import load_cluster_yaml, load_settings

        config = load_cluster_yaml(args.config)
        settings = load_settings(config.get("provider") or {}, str(config.get("cluster_name") or "default"))
        private = (private or set()) | set(private_clouds_of(settings.clouds))
        ledger_path = ledger_path or settings.ledger_path
        reservations = settings.reservations
        for node_type, spec in (config.get("available_node_types") or {}).items():
            node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
            if isinstance(node_config, Mapping) and pool_team(str(node_type), node_config):
                teams[str(node_type)] = pool_team(str(node_type), node_config)
    if not ledger_path:
        print("ray-multicloud report: give --ledger, or a --config with provider.ledger set", file=sys.stderr)
        return 2
    until = time.time() if args.until is None else args.until
    with Ledger(ledger_path, create=False) as ledger:
        rows = ledger.spend(until)
    # Nodes recorded without a team (older ledgers, moves) take their pool's team from the config.
    rows = [replace(r, team=teams[r.pool]) if not r.team and r.pool in teams else r for r in rows]
    start = min((r.launched_at for r in rows), default=until)
    uses = reservation_use(reservations, rows, start, until)
    groups = report_groups(rows, args.by, uses)
    lines = [*groups, total(groups)]
    header = [args.by, *REPORT_HEADER]

    def csv_rows() -> list[list[str | int]]:
        return [[g.key, g.instances, f"{g.hours:.6f}", f"{g.spend_usd:.6f}", f"{g.ondemand_usd:.6f}",
                 f"{g.saved_usd:.6f}", f"{g.savings_fraction:.6f}", f"{g.idle_usd:.6f}"] for g in lines]

    if args.format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(header)
        w.writerows(csv_rows())
    else:
        table: list[list[str | int | float | None]] = [
            [g.key, g.instances, f"{g.hours:.2f}", f"{g.spend_usd:.2f}", f"{g.ondemand_usd:.2f}",
             f"{g.saved_usd:.2f}", f"{g.savings_fraction:.1%}", f"{g.idle_usd:.2f}"]
            for g in lines
        ]
        print(format_table(header, table, align="lrrrrrrr"))
        print("idle_usd: nodes no Train run, Serve deployment or Ray job was seen on, and reserved hours "
              "no node used (paid whether used or not)")
        for line in describe(split_savings(rows, private)):
            print(line)
        unused = sum(u.idle_usd for u in uses)
        if unused > 0:
            t = total(groups)
            print(f"with the reserved hours no node used (${unused:,.2f}, paid whether used or not) counted "
                  f"as spent: saved {t.savings_fraction:.1%} (${t.spend_usd:,.2f} against "
                  f"${t.ondemand_usd:,.2f}), the table's TOTAL")
        if uses:
            _report_reservations(uses, start, until)
        if config is not None:
            _report_budgets(config, ledger_path, args.until)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(csv_rows())
    if args.png:
        _report_png(args.png, args.by, groups, total(groups).savings_fraction)
    return 0


def _report_reservations(uses: Sequence[Any], start: float, until: float) -> None:
    """Each reservation's committed hours over the report's window, how many nodes used, what it was
    paid and what of that bought nothing."""
    import time

    from ray_multicloud.table import format_table

    table: list[list[str | int | float | None]] = []
    for u in uses:
        r = u.reservation
        table.append([
            f"{r.cloud} {r.zone or r.region} {r.instance_type} x{r.count}", r.team or "-",
            f"${r.term_price_per_hour:,.4f}/h", f"{u.committed_hours:.2f}", f"{u.used_hours:.2f}",
            f"{u.utilisation:.0%}", f"${u.paid_usd:,.2f}", f"${u.idle_usd:,.2f}",
        ])
    window = f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(start))} to " \
             f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(until))} UTC"
    print(f"\nreservations ({window}; the ledger's first launch to the report's end)")
    print(format_table(["reservation", "team", "term price", "committed_h", "used_h", "used", "paid",
                        "idle"], table, align="llrrrrrr"))


# --- assess -----------------------------------------------------------------------------------


def _add_assess(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "assess",
        help="rank the cluster's pools and jobs by what handing them to the policy would save",
        description="For each pool and job of the ledger: what the pool's policy would have paid for its "
        "recorded hours (replayed over spot traces), the egress its moves would pay, how hard it is to "
        "move (restart time, measured from the move journal when it has moves, and checkpoint size) and "
        "its declared criticality (pool.criticality); ranked so a team picks the next workload to run "
        "hands-off (migration.enabled) on evidence. See ray_multicloud/policy/assess.py for the score.",
    )
    p.add_argument("config", help="the cluster YAML given to ray up")
    p.add_argument("--traces", action="append", required=True, metavar="DIR",
                   help="spot traces to replay over, one JSON file per zone (repeat); the shared ones, "
                   "e.g. data/preemption/skypilot-spot-traces/..., or your own")
    p.add_argument("--ledger", help="the ledger's SQLite file (default: the config's provider.ledger)")
    p.add_argument("--until", type=float, help="POSIX time to count recorded hours up to (default: now)")
    p.add_argument("--checkpoint-minutes", type=float, default=30.0,
                   help="checkpoint interval of the replayed work (default 30)")
    p.add_argument("--spot-price", type=float, metavar="USD_PER_HOUR",
                   help="spot $/h for a pool whose machines have no spot offer in the catalogue, when the "
                   "traces carry no prices (default: such a pool is not replayed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_assess)


def _cmd_assess(args: argparse.Namespace) -> int:
    import json
    import sqlite3
    from dataclasses import replace

    from ray_multicloud.cluster_config.pools import node_type_max_workers, parse_pool
    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml, load_settings
    from ray_multicloud.dry_run import _offers
    from ray_multicloud.handover import candidates, pool_facts
    from ray_multicloud.ledger import Ledger
    from ray_multicloud.policy import OfferIndex, matching_offers
    from ray_multicloud.policy.assess import rank
    from ray_multicloud.table import format_table
    from ray_multicloud.types import CapacityType

    config = load_cluster_yaml(args.config)
    settings = load_settings(config.get("provider") or {}, str(config.get("cluster_name") or "default"))
    ledger_path = args.ledger or settings.ledger_path
    if not ledger_path:
        print("ray-multicloud assess: give --ledger, or a config with provider.ledger set", file=sys.stderr)
        return 2
    index = OfferIndex.build(_offers(settings, settings.catalog_path))
    spot: dict[str, float | None] = {}
    for node_type, spec in (config.get("available_node_types") or {}).items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        if not isinstance(node_config, Mapping) or "pool" not in node_config:
            continue
        pool = parse_pool(str(node_type), node_config, index,
                          max_workers=node_type_max_workers(config, str(node_type)))
        # What the policy would buy if handed the pool: its machines on spot, whatever its capacity_types.
        widened = replace(pool, capacity_types=(CapacityType.SPOT,), max_price_per_hour=None)
        prices = [o.price_per_hour for o in matching_offers(widened, index)]
        spot[str(node_type)] = min(prices) if prices else args.spot_price
    with Ledger(ledger_path, create=False) as ledger:
        rows = [r for r in ledger.spend(args.until) if r.cluster == settings.cluster_name]
        try:
            journal = ledger.journal()
        except sqlite3.Error:  # an older ledger has no move journal
            journal = []
    facts = pool_facts(config, journal, spot, controller=settings.start_controller)
    ranked = rank(candidates(rows, facts, args.traces, checkpoint_minutes=args.checkpoint_minutes))
    if args.json:
        print(json.dumps([{
            "rank": i + 1, "kind": a.candidate.kind, "name": a.candidate.name, "pool": a.candidate.pool,
            "hours": a.candidate.hours, "recorded_usd": a.candidate.cost_usd,
            "policy_usd": a.candidate.policy_cost_usd, "saving_usd": a.saving_usd,
            "egress_usd": a.egress_usd, "net_saving_usd": a.net_saving_usd, "difficulty": a.difficulty,
            "criticality": a.candidate.criticality.value, "hands_off": a.candidate.hands_off,
            "score": a.score, "why": a.reasons(),
        } for i, a in enumerate(ranked)]))
        return 0

    def usd(x: float | None) -> str:
        return "-" if x is None else f"{x:,.2f}"

    table: list[list[str | int | float | None]] = [
        [i + 1, a.candidate.kind, a.candidate.name, f"{a.candidate.hours:.1f}", usd(a.candidate.cost_usd),
         usd(a.candidate.policy_cost_usd), usd(a.net_saving_usd), a.difficulty,
         a.candidate.criticality.value, "yes" if a.candidate.hands_off else "no", usd(a.score)]
        for i, a in enumerate(ranked)
    ]
    print(format_table(["rank", "kind", "name", "hours", "recorded_usd", "policy_usd", "net_saving_usd",
                        "difficulty", "criticality", "hands_off", "score"], table, align="rllrrrrlllr"))
    print("score = net saving x difficulty weight (easy 1, moderate 0.75, hard 0.5) x criticality weight "
          "(low 1, medium 0.5, high 0.25); hands-off pools (migration.enabled) are listed last")
    for i, a in enumerate(ranked):
        print(f"{i + 1}. {a.candidate.kind} {a.candidate.name}: {a.reasons()}")
    return 0


def _report_budgets(config: dict[str, object], ledger_path: str, until: float | None) -> None:
    """Each budget of ``config`` (cluster and per pool): the running nodes' $/h against the cap and
    this calendar month's spend (UTC) against the monthly budget, as the provider grades them."""
    import time

    from ray_multicloud.budget_guard import month_spend
    from ray_multicloud.cluster_config.budget import parse_budgets
    from ray_multicloud.ledger import Ledger
    from ray_multicloud.policy.budget import assess
    from ray_multicloud.table import format_table

    budgets = parse_budgets(config).all()
    if not budgets:
        print("budgets: none in the config (provider.budget, a node type's budget:)")
        return
    now = time.time() if until is None else until
    cluster = str(config.get("cluster_name") or "default")
    with Ledger(ledger_path, create=False) as ledger:
        running = [r for r in ledger.spend(now) if r.cluster == cluster and r.ended_at is None]
        total, per_pool = month_spend(ledger, cluster, now)
    table: list[list[str | int | float | None]] = []
    for b in budgets:
        rate = sum(r.price_per_hour for r in running if b.scope == "cluster" or r.pool == b.scope)
        spent = total if b.scope == "cluster" else per_pool.get(b.scope, 0.0)
        s = assess(b, usd_per_hour=rate, month_spend_usd=spent, now=now)
        cap, monthly = b.max_usd_per_hour, b.monthly_usd
        table.append([
            b.scope,
            "-" if cap is None else f"${rate:,.4f}/h of ${cap:,.2f}/h ({rate / cap:.0%})",
            f"${spent:,.2f}" + ("" if monthly is None else f" of ${monthly:,.2f} ({spent / monthly:.0%})"),
            f"${s.forecast_usd:,.2f}",
            s.level.value.upper(),
        ])
    month = time.strftime("%Y-%m", time.gmtime(now))
    print(f"\nbudgets (this month: {month} UTC; running $/h from the ledger)")
    print(format_table(["budget", "running now", "spent this month", "month-end at this rate", "level"],
                       table, align="lrrrl"))


def _report_png(path: str, by: str, groups: Sequence[Any], total: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [g.key for g in groups]
    xs = range(len(keys))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(keys) + 2), 4))
    ax.bar([x - 0.27 for x in xs], [g.ondemand_usd for g in groups], width=0.27,
           label="on-demand price of the same hours")
    ax.bar(list(xs), [g.spend_usd for g in groups], width=0.27, label="spend")
    ax.bar([x + 0.27 for x in xs], [g.idle_usd for g in groups], width=0.27, label="idle (of the spend)")
    for x, g in zip(xs, groups, strict=True):
        if g.ondemand_usd > 0:
            ax.annotate(f"-{g.savings_fraction:.0%}", (x, g.spend_usd), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), keys, rotation=20, ha="right")
    ax.set_ylabel("USD")
    ax.set_title(f"Spend vs on-demand by {by} (total saving {total:.0%})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MultiCloudError as exc:
        print(f"ray-multicloud {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="ray up the local multi-cloud cluster, run a small GPU workload, print placements and cost",
        description="Brings cluster_configs/local-multicloud.yaml up with ray up (own ports and state dir; "
        "ray up starts the controller on the head), runs a Ray Train job on a spot pool and GPU tasks on an "
        "on-demand pool, makes the training node's price jump so the controller moves the job, waits for "
        "idle scale-down, tears the cluster down, and prints each node's placement, the move, and the cost "
        "against on-demand.",
    )
    p.add_argument("--config", help="cluster YAML (default: the repository's local-multicloud.yaml)")
    p.add_argument("--workdir", help="where the cluster's YAML copy, logs and state go (default: a temp dir)")
    p.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ray_multicloud.scenarios.demo import run_demo
    from ray_multicloud.scenarios.local_cluster import REPO_CONFIG
    from ray_multicloud.table import format_table

    result = run_demo(args.config or REPO_CONFIG, workdir=args.workdir,
                      progress=lambda msg: print(f"[demo] {msg}", flush=True))
    print(f"\nworkload: {result.workload}\n")
    rows: list[list[str | int | float | None]] = [
        [r.instance_id, r.pool, f"{r.cloud}/{r.region}/{r.zone or '-'}/{r.instance_type}/{r.capacity}",
         f"{r.price_per_hour:.4f}", f"{r.ondemand_price_per_hour:.4f}", f"{r.hours * 3600:.0f}",
         f"{r.cost_usd:.6f}", f"{r.ondemand_cost_usd:.6f}", r.end_reason or ""]
        for r in result.rows
    ]
    print(format_table(["instance", "pool", "offer (cloud/region/zone/type/capacity)", "$/h", "on-demand $/h",
                        "seconds", "cost $", "on-demand $", "ended"], rows))
    for old, new, reason, _at in result.moves:
        print(f"\nmove: {old} -> {new}: {reason}")
    print()
    for line in result.summary():
        print(f"total: {line}")
    print(f"ledger: {result.ledger_path} (ray-multicloud report --ledger {result.ledger_path} --by pool)")
    return 0


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status", help="every machine of the cluster on every configured cloud: price, age, pool, Ray state",
        description="Lists the cluster's machines through each cloud's driver (instances tagged with the "
        "cluster, not local state): cloud/region/zone, instance type, capacity type, price now (the offer "
        "book: catalog, live feeds, price board), age, pool, Ray node state (from the GCS; 'unknown' when it "
        "cannot be read), job or deployment where known. A cloud that cannot be listed is named on stderr "
        "and the others are still shown (exit status 1).")
    p.add_argument("config", help="the cluster YAML given to ray up")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--ended", action="store_true",
                   help="also list ended machines (from the ledger, else the local clouds' state)")
    p.add_argument("--gcs-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the GCS before showing Ray states as unknown (default 10)")
    p.set_defaults(handler=_cmd_status)


def _ended_rows(settings: object) -> list[dict[str, object]]:
    """Ended machines: the ledger's (any cloud) when there is one, else the local clouds' state."""
    from pathlib import Path

    ledger_path = getattr(settings, "ledger_path", None)
    name = getattr(settings, "cluster_name", "")
    if ledger_path and Path(ledger_path).is_file():
        from ray_multicloud.dashboard.ledger_view import LedgerView

        with LedgerView.open(ledger_path) as view:
            return [{"instance_id": lf.instance_id, "cloud": lf.cloud, "pool": lf.pool,
                     "offer": lf.offer_id, "launched_at": lf.launched_at, "ended_at": lf.ended_at,
                     "end_reason": lf.end_reason or ""}
                    for lf in view.lives(cluster=name) if lf.ended_at is not None]
    import json

    from ray_multicloud.clouds.local import STATE_FILE, LocalState

    state_dir = getattr(settings, "state_dir", None)
    if state_dir is None or not (Path(state_dir) / STATE_FILE).is_file():
        return []  # no ledger and no local cloud: nothing recorded the ended machines
    out: list[dict[str, object]] = []
    for row in LocalState(state_dir).rows(cluster=name):
        if row["state"] != "terminated":
            continue
        tags = json.loads(row["tags"])
        out.append({"instance_id": row["instance_id"], "cloud": row["cloud"],
                    "pool": tags.get("rmc-pool", ""), "offer": tags.get("rmc-offer", ""),
                    "launched_at": row["launched_at"], "ended_at": row["ended_at"],
                    "end_reason": row["end_reason"] or ""})
    return out


def _use_cluster_token(config: dict[str, object]) -> None:
    """Before this process's Ray reads the cluster's GCS: the cluster's token (``auth.use_cluster_token``),
    when this machine holds it; a bad provider section is left for the command to report."""
    from ray_multicloud.auth import use_cluster_token
    from ray_multicloud.cluster_config.provider_section import load_settings
    from ray_multicloud.errors import ConfigError

    provider = config.get("provider")
    if not isinstance(provider, dict):
        return
    cluster = str(config.get("cluster_name") or "default")
    try:
        use_cluster_token(provider, cluster, load_settings(provider, cluster).state_dir)
    except ConfigError:
        return


def _cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml, load_settings
    from ray_multicloud.dashboard.fleet import FleetRow, collect_status, format_age
    from ray_multicloud.table import format_table

    config = load_cluster_yaml(args.config)
    _use_cluster_token(config)
    status = collect_status(config, gcs_timeout_s=args.gcs_timeout)
    ended: list[dict[str, object]] = []
    if args.ended:
        settings = load_settings(config.get("provider") or {}, status.cluster)
        ended = _ended_rows(settings)
    failed = any(p.startswith("cloud ") for p in status.problems)
    if args.json:
        out = status.as_json()
        if args.ended:
            out["ended"] = ended
        print(json.dumps(out, indent=2, sort_keys=True))
        return 1 if failed else 0
    for problem in status.problems:
        print(f"ray-multicloud status: {problem}", file=sys.stderr)
    def flagged(r: FleetRow) -> bool:
        return r.price_per_hour is not None and (r.price_source != "offer book" or r.stale_price)

    rows: list[list[str | int | float | None]] = [
        [r.instance_id, r.cloud, r.region or None, r.zone or None, r.instance_type or None,
         r.capacity or None,
         None if r.price_per_hour is None else f"{r.price_per_hour:.4f}" + ("*" if flagged(r) else ""),
         format_age(r.age_s), r.pool or None, r.state, r.ray_state, r.job or None]
        for r in status.rows
    ]
    print(format_table(["instance", "cloud", "region", "zone", "type", "capacity", "$/h now", "age", "pool",
                        "state", "ray", "job"], rows, align="llllllrrllll"))
    clouds = sorted({r.cloud for r in status.rows})
    print(f"\n{len(status.rows)} machine(s) on {len(clouds)} of {len(status.clouds)} configured cloud(s); "
          f"${status.cost_per_hour:.4f}/h now (on-demand ${status.ondemand_cost_per_hour:.4f}/h)")
    if any(flagged(r) for r in status.rows):
        print("* the launch price from the instance's tag, or a stale live price: "
              "the offer book has no fresh price for it")
    if args.ended:
        now = time.time()
        print("\nended:")
        print(format_table(["instance", "cloud", "pool", "offer", "ended", "reason"], [
            [str(e["instance_id"]), str(e["cloud"]), str(e["pool"]) or None, str(e["offer"]) or None,
             format_age(now - float(str(e["ended_at"]))) + " ago" if e["ended_at"] is not None else None,
             str(e["end_reason"]) or None] for e in ended]))
    return 1 if failed else 0


def _add_dashboard(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard", help="serve the read-only, token-protected fleet dashboard (run it on the head)",
        description="Serves a web page showing the cluster's machines by cloud and region with their "
        "prices, each launch and move with its reasons, a timeline of moves and preemptions, and spend "
        "against on-demand from the ledger; it refreshes by itself. Read-only. Every request needs the token "
        "(Authorization: Bearer <token>, or ?token=<token>); without --token it is read from, or generated "
        "into, <state_dir>/dashboard.token. Binds 127.0.0.1 by default: reach it through an SSH tunnel "
        "(ssh -L 8470:127.0.0.1:8470 head).")
    p.add_argument("config", help="the cluster YAML given to ray up")
    p.add_argument("--port", type=int, default=8470, help="TCP port (default 8470)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--token", help="the token to require (default: <state_dir>/dashboard.token)")
    p.add_argument("--refresh", type=float, default=5.0, metavar="SECONDS",
                   help="how often the page polls (default 5)")
    p.add_argument("--fleet-ttl", type=float, default=15.0, metavar="SECONDS",
                   help="the clouds are listed at most this often, however many pages are open (default 15)")
    p.set_defaults(handler=_cmd_dashboard)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    import os

    from aiohttp import web

    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml, load_settings
    from ray_multicloud.dashboard.app import make_app, resolve_token, source_for_config

    if not 0 < args.port < 65536 or args.refresh <= 0 or args.fleet_ttl < 0:
        print("ray-multicloud dashboard: --port must be 1..65535, --refresh > 0, --fleet-ttl >= 0",
              file=sys.stderr)
        return 2
    config = load_cluster_yaml(args.config)
    name = str(config.get("cluster_name", "default"))
    settings = load_settings(config.get("provider") or {}, name)
    token, path = resolve_token(settings.state_dir, args.token or os.environ.get("RMC_DASHBOARD_TOKEN"))
    app = make_app(source_for_config(config, fleet_ttl_s=args.fleet_ttl), token, refresh_s=args.refresh)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"dashboard of {name}: http://{host}:{args.port}/?token={token}", flush=True)
    if path is not None:
        print(f"token file: {path}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0



# --------------------------------------------------------------------------- restore


def _add_restore(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "restore", help="bring a hibernated cluster back: its node types and counts, its Serve apps",
        description="Reads the hibernation state the controller recorded (hibernation-<cluster>.json next to "
        "the ledger, see provider.idle.hibernate_after), allows worker launches again, asks the autoscaler "
        "for the recorded node shapes (ray.autoscaler.sdk.request_resources; the request stands until the "
        "idle policy next acts) and deploys the recorded Serve apps again. Run it where the ledger is (the "
        "head, or this machine for the local cloud). Exit status 2 when the cluster is not hibernated.")
    p.add_argument("config", help="the cluster YAML given to ray up")
    p.add_argument("--json", action="store_true", help="print what was done as one JSON object")
    p.set_defaults(handler=_cmd_restore)


def _cmd_restore(args: argparse.Namespace) -> int:
    import json
    import os

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback clusters (RAY_NOTES.md)
    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml, load_settings
    from ray_multicloud.idle_guard import restore, state_path

    config = load_cluster_yaml(args.config)
    name = str(config.get("cluster_name") or "default")
    settings = load_settings(config.get("provider") or {}, name)
    done = restore(settings)
    if args.json:
        print(json.dumps(done, indent=2, sort_keys=True))
        return 0
    nodes = ", ".join(f"{count} x {t}" for t, count in sorted(done["nodes"].items())) or "none"
    print(f"cluster {name} restored (state: {state_path(settings)})")
    print(f"  nodes asked of the autoscaler: {nodes}")
    print(f"  Serve apps deployed again: {', '.join(done['serve_apps']) or 'none'}")
    if done["kept_apps"]:
        print(f"  Serve apps kept through hibernation (deployed from Python): {', '.join(done['kept_apps'])}")
    for run in done["train_runs"]:
        print(f"  Train run {run['run_dir']}: resumes from {run['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
