"""The shipped GPU price catalog: loaded on request, validated row by row, never at import time.

Contract:

- ``load_catalog(path=None)`` reads a CSV with the columns of ``REQUIRED_COLUMNS`` (``price_scope``
  and ``source`` are optional). ``None`` reads the snapshot shipped as package data
  (``ray_multicloud/data/gpu_offers.csv``, see ``data/README.md`` for its sources). Nothing in this
  module touches the file until that call.
- Each row yields an on-demand ``Offer`` and, when it has a usable spot price, a spot ``Offer``
  (capacity SPOT, ``price_per_hour`` = spot, ``ondemand_price_per_hour`` = the row's on-demand).
- A bad row is never silently used. Each problem becomes a ``CatalogWarning`` naming the CSV line
  (the header is line 1) and the row's cloud/region/zone/instance type, and the affected offer is
  left out or, for a spot price equal to on-demand, kept and noted:

  ==============================================  ==========================================
  problem                                          effect
  ==============================================  ==========================================
  missing / zero / negative on-demand price        whole row left out
  zero or negative spot price                      spot offer left out
  spot price above on-demand                       spot offer left out
  empty spot price (unknown)                       no spot offer; on-demand kept
  spot price equal to on-demand                    both kept, noted (no discount recorded)
  GPU count not in {1, 2, 4, 8, 16} nor in (0, 1)  whole row left out
  no instance type (GPU-only price rows)           whole row left out (not a launchable VM)
  a number that does not parse                     whole row left out
  the same offer twice                             the later one left out
  ==============================================  ==========================================

- A file that cannot be read, is empty, or lacks a required column raises ``CatalogError`` saying
  what to do.
- Warnings are also logged on this module's logger. To keep a 1,600-row snapshot from flooding a
  log, a kind of problem that hits more than ``_LOG_EACH_UP_TO`` rows of one cloud is logged as one
  line per cloud that lists its row numbers; ``Catalog.warnings`` always holds one entry per row.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ray_multicloud.errors import CatalogError
from ray_multicloud.types import CapacityType, Offer

_log = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = (
    "cloud",
    "region",
    "zone",
    "instance_type",
    "accelerator",
    "accelerator_count",
    "vcpus",
    "memory_gib",
    "ondemand_usd_per_hour",
    "spot_usd_per_hour",
)
# Whole-GPU counts a real machine type has; fractions below 1 are shared-GPU machine types
# (GCP g4-standard-*), listed as such by the source and allowed.
VALID_GPU_COUNTS: frozenset[float] = frozenset({1.0, 2.0, 4.0, 8.0, 16.0})
SHIPPED_CATALOG = "data/gpu_offers.csv"
_LOG_EACH_UP_TO = 3

# Warning kinds (``CatalogWarning.kind``), stable strings tests and tools can match on.
BAD_ONDEMAND = "bad_ondemand_price"
BAD_SPOT = "bad_spot_price"
SPOT_ABOVE_ONDEMAND = "spot_above_ondemand"
NO_SPOT = "no_spot_price"
SPOT_EQUALS_ONDEMAND = "spot_equals_ondemand"
BAD_GPU_COUNT = "impossible_gpu_count"
NO_INSTANCE_TYPE = "no_instance_type"
BAD_NUMBER = "unparsable_number"
DUPLICATE = "duplicate_offer"


@dataclass(frozen=True, slots=True)
class CatalogWarning:
    """One problem with one CSV row. ``row`` is the file's line number (header = line 1)."""

    row: int
    message: str
    kind: str = ""

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass(frozen=True, slots=True)
class Catalog:
    """The offers a catalog file yields, the warnings its rows raised, and where it came from."""

    offers: tuple[Offer, ...]
    warnings: tuple[CatalogWarning, ...]
    source: str

    def accelerators(self) -> tuple[str, ...]:
        """Accelerator names with at least one usable offer, sorted case-insensitively."""
        return tuple(sorted({o.accelerator for o in self.offers if o.accelerator}, key=str.lower))

    def clouds(self) -> tuple[str, ...]:
        return tuple(sorted({o.cloud for o in self.offers}))

    def warnings_of(self, kind: str) -> tuple[CatalogWarning, ...]:
        return tuple(w for w in self.warnings if w.kind == kind)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog CSV; ``None`` reads the snapshot shipped with the package."""
    if path is None:
        source = f"package:ray_multicloud/{SHIPPED_CATALOG}"
        try:
            text = resources.files("ray_multicloud").joinpath(SHIPPED_CATALOG).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(
                f"cannot read the shipped catalog {source}: {exc}. Reinstall the package "
                "(pip install -e .) or pass a catalog path explicitly."
            ) from exc
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(
                f"cannot read catalog {source}: {exc}. Pass the path of a readable UTF-8 CSV file, "
                "or omit it to use the shipped snapshot."
            ) from exc
    return parse_catalog(text, source=source)


def parse_catalog(text: str, *, source: str) -> Catalog:
    """Validate catalog CSV text (see the module docstring for what each problem does)."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames
    if not header:
        raise CatalogError(
            f"catalog {source} is empty: expected a CSV header with {', '.join(REQUIRED_COLUMNS)}."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CatalogError(
            f"catalog {source} lacks required column(s) {', '.join(missing)} (has: {', '.join(header)}). "
            f"Add them to the header; a catalog needs {', '.join(REQUIRED_COLUMNS)}."
        )
    offers: list[Offer] = []
    warnings: list[CatalogWarning] = []
    seen: set[str] = set()
    try:
        for raw in reader:
            line = reader.line_num
            row_offers, row_warnings = _parse_row(raw, line)
            warnings.extend(row_warnings)
            for offer in row_offers:
                oid = offer.offer_id
                if oid in seen:
                    warnings.append(
                        CatalogWarning(
                            line, f"{_describe(raw)}: duplicate offer {oid}; later row left out", DUPLICATE
                        )
                    )
                    continue
                seen.add(oid)
                offers.append(offer)
    except csv.Error as exc:
        raise CatalogError(f"catalog {source} is not valid CSV near line {reader.line_num}: {exc}.") from exc
    _log_warnings(warnings, source)
    return Catalog(offers=tuple(offers), warnings=tuple(warnings), source=source)


def _describe(raw: Mapping[str, str | None]) -> str:
    def field(name: str, empty: str) -> str:
        value = (raw.get(name) or "").strip()
        return value or empty

    return " ".join(
        (
            field("cloud", "?"),
            field("region", "?"),
            field("zone", "-"),
            field("instance_type", "(no instance type)"),
        )
    )


def _parse_row(raw: Mapping[str, str | None], line: int) -> tuple[list[Offer], list[CatalogWarning]]:
    what = _describe(raw)

    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    def warn(kind: str, message: str) -> CatalogWarning:
        return CatalogWarning(line, f"{what}: {message}", kind)

    cloud, region, zone, instance_type = get("cloud"), get("region"), get("zone"), get("instance_type")
    accelerator = get("accelerator")
    if not instance_type:
        scope = get("price_scope") or "unknown"
        return [], [
            warn(NO_INSTANCE_TYPE, f"no instance type (price scope {scope}): not a launchable VM; left out")
        ]
    if not cloud or not region:
        return [], [warn(BAD_NUMBER, "cloud or region is empty; row left out")]
    numbers: dict[str, float] = {}
    for name in ("accelerator_count", "vcpus", "memory_gib"):
        text = get(name) or "0"
        try:
            value = float(text)
        except ValueError:
            return [], [warn(BAD_NUMBER, f"{name} {text!r} is not a number; row left out")]
        if not math.isfinite(value) or value < 0:
            return [], [
                warn(BAD_NUMBER, f"{name} {text!r} is not a finite non-negative number; row left out")
            ]
        numbers[name] = value

    count = numbers["accelerator_count"]
    if accelerator:
        if not (count in VALID_GPU_COUNTS or 0 < count < 1):
            return [], [
                warn(
                    BAD_GPU_COUNT,
                    f"impossible GPU count {get('accelerator_count')} for {accelerator} "
                    "(expected 1, 2, 4, 8, 16 or a shared fraction below 1); row left out",
                )
            ]
    elif count != 0:
        return [], [
            warn(BAD_GPU_COUNT, f"GPU count {get('accelerator_count')} with no accelerator name; left out")
        ]

    od_text, spot_text = get("ondemand_usd_per_hour"), get("spot_usd_per_hour")
    try:
        ondemand = float(od_text) if od_text else None
    except ValueError:
        return [], [warn(BAD_NUMBER, f"on-demand price {od_text!r} is not a number; row left out")]
    if ondemand is None or not math.isfinite(ondemand) or ondemand <= 0:
        # Without a valid on-demand price a spot price cannot be checked either, so both go.
        problem = "no on-demand price" if ondemand is None else f"on-demand price {od_text} is not positive"
        return [], [warn(BAD_ONDEMAND, f"{problem}; row left out")]

    def offer(capacity: CapacityType, price: float) -> Offer:
        return Offer(
            cloud=cloud,
            region=region,
            zone=zone,
            instance_type=instance_type,
            accelerator=accelerator,
            accelerator_count=count,
            vcpus=numbers["vcpus"],
            memory_gib=numbers["memory_gib"],
            capacity=capacity,
            price_per_hour=price,
            ondemand_price_per_hour=ondemand,
            price_scope=get("price_scope") or "full_vm",
            source=get("source"),
        )

    offers = [offer(CapacityType.ON_DEMAND, ondemand)]
    warnings: list[CatalogWarning] = []
    if not spot_text:
        warnings.append(warn(NO_SPOT, "no spot price (unknown); on-demand offer only"))
        return offers, warnings
    try:
        spot = float(spot_text)
    except ValueError:
        warnings.append(warn(BAD_NUMBER, f"spot price {spot_text!r} is not a number; spot offer left out"))
        return offers, warnings
    if not math.isfinite(spot) or spot <= 0:
        warnings.append(
            warn(BAD_SPOT, f"spot price {spot_text} is not a positive price; spot offer left out")
        )
    elif spot > ondemand:
        warnings.append(
            warn(
                SPOT_ABOVE_ONDEMAND,
                f"spot price {spot_text} is above on-demand {od_text}; spot offer left out",
            )
        )
    else:
        if spot == ondemand:
            warnings.append(
                warn(
                    SPOT_EQUALS_ONDEMAND, f"spot price equals on-demand {od_text}: no discount recorded; kept"
                )
            )
        offers.append(offer(CapacityType.SPOT, spot))
    return offers, warnings


def _log_warnings(warnings: Iterable[CatalogWarning], source: str) -> None:
    groups: dict[tuple[str, str], list[CatalogWarning]] = defaultdict(list)
    for w in warnings:
        groups[(w.message.split(" ", 1)[0], w.kind)].append(w)
    for (cloud, kind), items in groups.items():
        if len(items) <= _LOG_EACH_UP_TO:
            for w in items:
                _log.warning("catalog %s: %s", source, w)
        else:
            rows = ", ".join(str(w.row) for w in items)
            _log.warning(
                "catalog %s: %d %s rows with %s (rows %s); first: %s",
                source,
                len(items),
                cloud,
                kind.replace("_", " "),
                rows,
                items[0].message,
            )
