"""Which reader a billing export needs: named, or told by its columns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ray_multicloud.billing import BillError, BillLine, aws_cur, azure_export, gcp_export
from ray_multicloud.billing._rows import read_rows

READERS: dict[str, Callable[[str | Path], list[BillLine]]] = {
    "aws-cur": aws_cur.read,
    "gcp-billing": gcp_export.read,
    "azure-cost": azure_export.read,
}


def detect(path: str | Path) -> str:
    """The format of ``path`` from its first row's columns; ``BillError`` when none fits."""
    for _, row in read_rows(path):
        have = set(row)
        if "lineItem/ResourceId" in have or "line_item_resource_id" in have:
            return "aws-cur"
        if "usage_start_time" in have:
            return "gcp-billing"
        if "CostInBillingCurrency" in have and "ResourceId" in have:
            return "azure-cost"
        raise BillError(
            f"{path}: unknown billing export (columns {sorted(have)[:8]}); give --format "
            f"{' | '.join(READERS)}"
        )
    raise BillError(f"{path}: the billing export has no rows")


def load(path: str | Path, fmt: str = "auto") -> list[BillLine]:
    """Every line of ``path`` read as ``fmt`` (``auto``: ``detect``)."""
    name = detect(path) if fmt == "auto" else fmt
    reader = READERS.get(name)
    if reader is None:
        raise BillError(f"unknown billing format {fmt!r}; use auto or one of {', '.join(READERS)}")
    return reader(path)
