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
    _ = sub
    return parser


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
