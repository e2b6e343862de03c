"""Load per-zone spot traces (the SkyPilot spot-traces JSON format) into one aligned array.

A trace directory holds one JSON file per zone::

    {"metadata": {"gap_seconds": N}, "data": [int, ...], "prices": [float, ...]}

``data[i]`` is how many spot VMs could be held during tick ``i`` (1-node traces: 0 or 1);
``prices[i]``, when present, is the zone's spot price in USD per hour during that tick.

Contract
--------
* Every file is validated; a bad file raises :class:`TraceError` naming the file, what is
  wrong, and what to do. Nothing is printed.
* All files of a :class:`TraceSet` share one tick (``gap_seconds``); files of different lengths
  are cut to the shortest (the cut is listed in ``TraceSet.notes``), so tick ``i`` is the same
  moment in every zone.
* A zone's name is its file name up to the first ``_`` (``us-east-1a_v100_1.json`` ->
  ``us-east-1a``); where two files would share a name the full file stem is used, and where
  several directories would, the directory name is prefixed. A file given twice (one directory
  twice, or a directory and a file of it, under any spelling) is refused, and so are names still
  shared then: different files in directories of the same name.
* A zone without ``prices`` takes ``default_spot_price``; if that is None too, loading fails.
* Limits (a value outside them is a ``TraceError`` naming the file, never a crash or a silent
  figure): UTF-8 JSON; ``gap_seconds`` from ``MIN_GAP_S`` to ``MAX_GAP_S``; counts whole numbers
  from 0 to ``MAX_COUNT``; prices finite, above 0 and at most ``MAX_PRICE`` USD per hour.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ray_multicloud.errors import MultiCloudError
from ray_multicloud.policy.deadline import region_of


class TraceError(MultiCloudError):
    """A trace file or directory cannot be used; the message names the file and the fix."""


_FORMAT = '{"metadata": {"gap_seconds": N}, "data": [int, ...], "prices": [float, ...] (optional)}'
MIN_GAP_S = 1.0  # a tick shorter than a second is no spot trace (SkyPilot's: 30 s to 10 min)
MAX_GAP_S = 86_400.0
MAX_COUNT = 1_000_000  # spot VMs obtainable in one zone in one tick
MAX_PRICE = 10_000.0  # USD per VM-hour; the dearest GPU VMs cost about 100


@dataclass(frozen=True, slots=True)
class TraceSet:
    """Aligned spot traces of several zones.

    ``counts[z, i]``: spot VMs obtainable in zone ``z`` during tick ``i``; ``spot_prices[z, i]``:
    USD per VM-hour; ``priced_by_file[z]``: whether the price came from the file.
    """

    names: tuple[str, ...]
    regions: tuple[str, ...]
    files: tuple[str, ...]
    gap_seconds: float
    counts: npt.NDArray[np.int64]
    spot_prices: npt.NDArray[np.float64]
    priced_by_file: tuple[bool, ...]
    notes: tuple[str, ...] = ()
    clouds: tuple[str, ...] = ()  # per zone: "aws", "gcp", "azure", or "" when unknown

    def cloud_of(self, z: int) -> str:
        """Zone ``z``'s cloud ("" when unknown)."""
        return self.clouds[z] if z < len(self.clouds) else ""

    @property
    def ticks(self) -> int:
        return int(self.counts.shape[1])

    @property
    def hours(self) -> float:
        return self.ticks * self.gap_seconds / 3600.0

    def available(self, nodes: int = 1) -> npt.NDArray[np.bool_]:
        """``[z, i]`` true when ``nodes`` spot VMs can be held in zone ``z`` during tick ``i``."""
        return self.counts >= nodes


@dataclass(frozen=True, slots=True)
class _ZoneFile:
    path: Path
    gap: float
    data: list[int]
    prices: list[float] | None


def _fail(path: Path, what: str) -> TraceError:
    return TraceError(f"{path}: {what}. Expected one JSON object per zone: {_FORMAT}")


def read_zone_file(path: Path) -> _ZoneFile:
    """Parse and validate one zone file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start]
        raise _fail(path, f"not UTF-8 text (byte {bad:#04x} at offset {exc.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except RecursionError:
        raise _fail(path, "JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise _fail(path, f"not usable JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _fail(path, f"top level is a {type(obj).__name__}, not an object")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "gap_seconds" not in meta:
        raise _fail(path, 'missing "metadata": {"gap_seconds": N}')
    gap = meta["gap_seconds"]
    if (isinstance(gap, bool) or not isinstance(gap, int | float) or not math.isfinite(gap)
            or not MIN_GAP_S <= gap <= MAX_GAP_S):
        raise _fail(path, f"metadata.gap_seconds must be a positive number of seconds from {MIN_GAP_S:g} to "
                          f"{MAX_GAP_S:g}, got {gap!r}")
    data = obj.get("data")
    if not isinstance(data, list) or not data:
        raise _fail(path, 'missing or empty "data" list')
    for i, v in enumerate(data):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
            raise _fail(path, f"data[{i}] is {v!r}; each tick must be a count of spot VMs "
                              f"(a whole number from 0 to {MAX_COUNT})")
    prices = obj.get("prices")
    if prices is not None:
        if not isinstance(prices, list) or len(prices) != len(data):
            n = len(prices) if isinstance(prices, list) else type(prices).__name__
            raise _fail(path, f'"prices" must be a list as long as "data" ({len(data)}), got {n}')
        for i, p in enumerate(prices):
            if (isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p)
                    or not 0 < p <= MAX_PRICE):
                raise _fail(path, f"prices[{i}] is {p!r}; prices are USD per hour above 0 and at most "
                                  f"{MAX_PRICE:g}")
    return _ZoneFile(path, float(gap), data, [float(p) for p in prices] if prices is not None else None)


def _zone_files(directory: Path, pattern: str) -> list[Path]:
    if not directory.exists():
        raise TraceError(f"{directory}: no such trace directory")
    if directory.is_file():
        return [directory]
    files = sorted(p for p in directory.glob(pattern) if p.is_file())
    if not files:
        raise TraceError(
            f"{directory}: no trace files matching {pattern!r}; put one JSON file per zone there: {_FORMAT}"
        )
    return files


def load_traces(
    directories: Sequence[str | Path],
    *,
    default_spot_price: float | None = None,
    pattern: str = "*.json",
) -> TraceSet:
    """Load every zone file (matching ``pattern``) of every directory into one :class:`TraceSet`.

    A path that is a file is loaded as a single zone. Raises :class:`TraceError`.
    """
    if not directories:
        raise TraceError("no trace directory given: pass --traces DIR (one JSON file per zone)")
    if default_spot_price is not None and not (
        math.isfinite(default_spot_price) and 0 < default_spot_price <= MAX_PRICE
    ):
        raise TraceError(f"default spot price must be a USD/h above 0 and at most {MAX_PRICE:g}, "
                         f"got {default_spot_price}")
    loaded: list[tuple[Path, _ZoneFile]] = []
    for d in directories:
        root = Path(d)
        loaded.extend((root, read_zone_file(f)) for f in _zone_files(root, pattern))
    gaps = {z.gap for _, z in loaded}
    if len(gaps) > 1:
        listing = ", ".join(f"{z.path.name}={z.gap:g}s" for _, z in loaded)
        raise TraceError(
            f"trace files have different ticks ({listing}); replay only zones recorded at the same "
            "gap_seconds together"
        )
    names = _zone_names([(root, z.path) for root, z in loaded])
    lengths = [len(z.data) for _, z in loaded]
    n = min(lengths)
    notes: list[str] = []
    if len(set(lengths)) > 1:
        notes.append(
            f"zone traces have different lengths ({min(lengths)}..{max(lengths)} ticks); "
            f"all were cut to the shortest, {n} ticks"
        )
    counts = np.array([z.data[:n] for _, z in loaded], dtype=np.int64)
    prices = np.empty((len(loaded), n), dtype=np.float64)
    priced: list[bool] = []
    for i, (_, z) in enumerate(loaded):
        if z.prices is not None:
            prices[i] = z.prices[:n]
            priced.append(True)
        elif default_spot_price is None:
            raise TraceError(f'{z.path}: has no "prices" array; pass --spot-price USD_PER_HOUR')
        else:
            prices[i] = default_spot_price
            priced.append(False)
    return TraceSet(
        names=tuple(names),
        regions=tuple(region_of(nm.rsplit("/", 1)[-1].split("_", 1)[0]) for nm in names),
        files=tuple(str(z.path) for _, z in loaded),
        gap_seconds=gaps.pop(),
        counts=counts,
        spot_prices=prices,
        priced_by_file=tuple(priced),
        notes=tuple(notes),
        clouds=tuple(cloud_of_trace(z.path) for _, z in loaded),
    )


_CLOUDS = ("aws", "gcp", "azure")


def cloud_of_trace(path: Path) -> str:
    """A zone file's cloud: the first of its path's directory names (nearest first) that starts
    with ``aws``, ``gcp`` or ``azure`` (SkyPilot's trace folders: ``aws-02-15-2023``), else the
    shape of its region name (``us-east-1``: AWS; ``us-central1``: GCP; ``eastus``: Azure), else ""."""
    for part in reversed(path.parent.parts):
        head = part.split("-", 1)[0].lower()
        if head in _CLOUDS:
            return head
    region = region_of(path.stem.split("_", 1)[0])
    last = region.rsplit("-", 1)[-1]
    if "-" in region and last.isdigit():
        return "aws"
    if "-" in region and last[-1:].isdigit():
        return "gcp"
    if region.isalpha() and region.islower():
        return "azure"
    return ""


def _zone_names(paths: list[tuple[Path, Path]]) -> list[str]:
    short = [p.stem.split("_", 1)[0] for _, p in paths]
    names = [s if short.count(s) == 1 else p.stem for s, (_, p) in zip(short, paths, strict=True)]
    if len(set(names)) != len(names):
        names = [
            f"{root.name}/{nm}" if names.count(nm) > 1 else nm
            for nm, (root, _) in zip(names, paths, strict=True)
        ]
    first: dict[Path, str] = {}  # each file (resolved: one file under any spelling) -> its first name
    twice: set[str] = set()
    for nm, (_, p) in zip(names, paths, strict=True):
        key = p.resolve()
        if key in first:
            twice.add(first[key])
        else:
            first[key] = nm
    if twice:
        raise TraceError(f"the same zone file appears twice ({', '.join(sorted(twice))}); "
                         "pass each directory or file once")
    if len(set(names)) != len(names):  # different files: their directories have the same name
        alike = [str(p) for nm, (_, p) in zip(names, paths, strict=True) if names.count(nm) > 1]
        raise TraceError(f"different zone files would share a name, in directories of the same name "
                         f"({', '.join(alike)}); rename one of the directories")
    return names
