"""The ``ray-multicloud`` command: the only place in the package that prints or exits.

Each subcommand is one ``_cmd_<name>(args) -> int`` function registered in ``build_parser``;
library errors (``MultiCloudError``) become a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

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
    p.add_argument("--region", nargs="+", action="extend", default=[], help="regions; 'eu-*' matches a prefix")
    p.add_argument("--limit", type=int, default=1, help="offers shown per (cloud, capacity type), default 1")
    p.add_argument("--catalog", help="catalog CSV (default: the snapshot shipped with the package)")
    p.add_argument("--show-warnings", action="store_true", help="list the catalog's row warnings on stderr")
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
        print(f"ray-multicloud prices: unknown accelerator {args.accelerator!r} (known: {known})", file=sys.stderr)
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
    for o in matching_offers(pool, index):
        rows = groups.setdefault((o.cloud, o.capacity.value), [])
        if len(rows) < args.limit:
            spot = o.capacity is CapacityType.SPOT
            rows.append(
                [o.cloud, o.capacity.value, o.region, o.zone or "-", o.instance_type, f"{o.accelerator_count:g}",
                 f"{o.price_per_hour:.4f}", f"{o.ondemand_price_per_hour:.4f}",
                 f"{o.discount:.0%}" if spot else "-"]
            )
    if args.show_warnings:
        for w in catalog.warnings:
            print(f"catalog warning: {w}", file=sys.stderr)
    print(f"catalog {catalog.source}: {len(catalog.offers)} offers, {len(catalog.warnings)} row warnings"
          + ("" if args.show_warnings else " (--show-warnings lists them)"), file=sys.stderr)
    if not groups:
        for problem in [str(p) for p in check_pool(pool, index)] or ["no offer matches"]:
            print(f"ray-multicloud prices: {problem}", file=sys.stderr)
        return 1
    table = [row for _, rows in sorted(groups.items(), key=lambda kv: float(str(kv[1][0][6]))) for row in rows]
    headers = ["cloud", "capacity", "region", "zone", "instance", "GPUs", "$/h", "on-demand $/h", "discount"]
    print(format_table(headers, table, align="lllllrrrr"))
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
