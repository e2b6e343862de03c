"""Google Cloud Billing export rows as ``BillLine``.

Fields, per "Structure of Detailed data export" and "Structure of Standard data export"
(cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/detailed-usage, .../standard-usage):
``usage_start_time``, ``cost``, ``currency``, ``service.description``, ``sku.description``,
``location.zone``, ``labels`` (a repeated ``{key, value}`` record) and, in the detailed export,
``resource.name`` (the VM's name for Compute Engine usage). A CSV download of the BigQuery table
flattens the records to dotted column names (``sku.description``) and ``labels`` to a JSON string;
newline-delimited JSON keeps them nested. A VM's line is matched to the project's GCP instance id,
``zone.name``. Only USD is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray_multicloud.billing import CLUSTER_TAG, BillLine, Category
from ray_multicloud.billing._rows import day_of, number, read_rows, require, require_usd

SPEC = "Cloud Billing's BigQuery export (usage_start_time, cost, sku.description, resource.name, ...)"


def _field(row: Mapping[str, Any], dotted: str) -> Any:
    """``row["a.b"]`` (CSV) or ``row["a"]["b"]`` (JSON)."""
    if dotted in row:
        return row[dotted]
    head, _, rest = dotted.partition(".")
    inner = row.get(head)
    if rest and isinstance(inner, Mapping):
        return inner.get(rest)
    return None


def category(service: str, sku: str) -> Category:
    s = f"{service} {sku}".lower()
    if "egress" in s or "network inter" in s or "internet" in s:
        return Category.EGRESS
    if " pd " in f" {s} " or "pd capacity" in s or "persistent disk" in s or "snapshot" in s:
        return Category.DISK
    if "cloud storage" in s or "storage" in s:
        return Category.STORAGE
    if "instance" in s or "core" in s or "ram" in s or "gpu" in s or "compute engine" in s:
        return Category.COMPUTE
    return Category.OTHER


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and "key" in item:
                out[str(item["key"])] = str(item.get("value", ""))
    return out


def read(path: str | Path) -> list[BillLine]:
    out: list[BillLine] = []
    checked = False
    for i, row in read_rows(path):
        if not checked:
            nested = [f"{k}.{sub}" for k, v in row.items() if isinstance(v, Mapping) for sub in v]
            have = [*row, *nested]
            require(path, have, ("usage_start_time", "cost", "sku.description"), "GCP billing", SPEC)
            checked = True
        require_usd(path, i, row.get("currency"))
        service = str(_field(row, "service.description") or "")
        sku = str(_field(row, "sku.description") or "")
        name = str(_field(row, "resource.name") or "")
        zone = str(_field(row, "location.zone") or "")
        resource = f"{zone}.{name}" if name and zone and "/" not in name else name
        out.append(BillLine(
            cloud="gcp",
            resource_id=resource,
            day=day_of(path, i, "usage_start_time", row.get("usage_start_time")),
            cost_usd=number(path, i, "cost", row.get("cost")),
            category=category(service, sku),
            cluster=_labels(row.get("labels")).get(CLUSTER_TAG),
            description=sku,
        ))
    return out
