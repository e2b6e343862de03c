"""What moving a job's checkpoint between regions and clouds costs: a table of egress rates.

Contract
--------
* A table maps an ordered pair of clouds ``(source, destination)`` to USD per GB sent from a
  region of ``source`` to a region of ``destination``; the pair ``(c, c)`` is ``c``'s
  inter-region rate. Within one region data moves free. Egress is billed by the *source* cloud.
* :func:`egress_usd_per_gb` raises :class:`EgressError` naming the pair when the table lacks it;
  :meth:`EgressTable.require` checks every pair among a set of clouds up front (the simulator
  does, before a run), so a missing pair is an error naming it, never a silent 0.
* :data:`PUBLISHED` is the built-in table: the first (smallest-volume) tier of each cloud's
  published list rate for traffic leaving North American regions, as listed on the sources below.
  Rates change; pass your own table (``load_egress_table``, a JSON object
  ``{"aws->gcp": 0.09, "aws->aws": 0.02, ...}``) for your contract's rates.

Sources of :data:`PUBLISHED` (USD per GB):

* AWS, ``aws->aws`` 0.02: "Data Transfer OUT From Amazon EC2 To ... another AWS Region" (US
  regions), aws.amazon.com/ec2/pricing/on-demand/ (Data Transfer); the SkyNomad paper (NSDI '27,
  ``shared/data/skynomad/paper.txt``, Figure 4b) uses the same "$20 / TB". ``aws->gcp``,
  ``aws->azure`` 0.09: "Data Transfer OUT From Amazon EC2 To Internet", first 10 TB / month.
* GCP, ``gcp->gcp`` 0.02: inter-region data transfer within Northern America,
  cloud.google.com/vpc/network-pricing. ``gcp->aws``, ``gcp->azure`` 0.12: Premium Tier internet
  egress, 0–1 TiB / month, from us-central1 / us-east1 — in the data here:
  ``shared/data/catalog/cyclenerd_gcp_pricing_fd66b26.yml.gz`` (``network.traffic.egress.internet``
  ``cost.0-1``), generated 2026-07-30.
* Azure, ``azure->azure`` 0.02: "Inter-region ... within North America",
  azure.microsoft.com/pricing/details/bandwidth/. ``azure->aws``, ``azure->gcp`` 0.087: internet
  egress (Microsoft premium global network) from North America, 100 GB – 10 TB / month.

Only the GCP internet rate is held in a file of this repository's shared data; the others are the
vendors' pricing pages as read when this table was written (the rates have been stable for years).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ray_multicloud.errors import MultiCloudError


class EgressError(MultiCloudError):
    """An egress table is missing a pair, or cannot be read; the message names the pair or file."""


CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True, slots=True)
class EgressTable:
    """USD per GB for each ordered ``(source cloud, destination cloud)`` pair (see the module
    docstring); ``source`` says where the rates come from (a file, or "published")."""

    rates: Mapping[tuple[str, str], float]
    source: str = "published"

    def rate(self, src_cloud: str, dst_cloud: str) -> float:
        """USD per GB from a region of ``src_cloud`` to another region of ``dst_cloud``."""
        try:
            return self.rates[(src_cloud, dst_cloud)]
        except KeyError:
            raise EgressError(
                f"egress table ({self.source}) has no rate for {src_cloud}->{dst_cloud}; add "
                f'"{src_cloud}->{dst_cloud}": USD_PER_GB to it'
            ) from None

    def require(self, clouds: Iterable[str]) -> None:
        """Raise :class:`EgressError` naming the first missing ordered pair among ``clouds``."""
        names = sorted(set(clouds))
        for a in names:
            for b in names:
                self.rate(a, b)


PUBLISHED = EgressTable(
    {
        ("aws", "aws"): 0.02,
        ("aws", "gcp"): 0.09,
        ("aws", "azure"): 0.09,
        ("gcp", "gcp"): 0.02,
        ("gcp", "aws"): 0.12,
        ("gcp", "azure"): 0.12,
        ("azure", "azure"): 0.02,
        ("azure", "aws"): 0.087,
        ("azure", "gcp"): 0.087,
    },
    "published",
)
"""The built-in table (module docstring: sources)."""


def egress_usd_per_gb(table: EgressTable, src: tuple[str, str], dst: tuple[str, str]) -> float:
    """USD per GB to move data from ``src = (cloud, region)`` to ``dst``: 0 within one region of one
    cloud, else the table's rate for the cloud pair."""
    if src == dst:
        return 0.0
    return table.rate(src[0], dst[0])


def parse_egress_table(obj: object, source: str) -> EgressTable:
    """An :class:`EgressTable` from a JSON object ``{"SRC->DST": USD_PER_GB, ...}``."""
    if not isinstance(obj, dict) or not obj:
        raise EgressError(
            f'{source}: expected a JSON object {{"aws->gcp": 0.09, ...}}, got {type(obj).__name__}'
        )
    rates: dict[tuple[str, str], float] = {}
    for key, value in obj.items():
        parts = key.split("->") if isinstance(key, str) else []
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise EgressError(f'{source}: key {key!r} is not "SRC->DST" (e.g. "aws->gcp")')
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or not math.isfinite(value) or value < 0:
            raise EgressError(f"{source}: {key!r} must be a USD per GB >= 0, got {value!r}")
        rates[(parts[0].strip(), parts[1].strip())] = float(value)
    return EgressTable(rates, source)


def load_egress_table(path: str | Path) -> EgressTable:
    """Read an egress table from a JSON file (see :func:`parse_egress_table`)."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EgressError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError) as exc:
        raise EgressError(f"{p}: not valid JSON ({exc})") from None
    return parse_egress_table(obj, str(p))
