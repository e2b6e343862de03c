"""AWS Cost and Usage Report rows as ``BillLine``.

Columns, per the CUR data dictionary (docs.aws.amazon.com/cur/latest/userguide/data-dictionary.html,
"Line item details", "Resource tags"): ``lineItem/UsageStartDate``, ``lineItem/ResourceId`` (the EC2
instance id for instance usage, ``vol-...`` for EBS), ``lineItem/UnblendedCost``,
``lineItem/UsageType`` (``BoxUsage:...``, ``SpotUsage:...``, ``EBS:VolumeUsage...``,
``DataTransfer-Out-Bytes``, ``...-AWS-Out-Bytes``, ``TimedStorage-ByteHrs``), ``lineItem/CurrencyCode``
and a user cost-allocation tag column ``resourceTags/user:rmc-cluster``. CUR 2.0 (Data Exports,
docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html) names the same fields
``line_item_usage_start_date``, ``line_item_resource_id``, ``line_item_unblended_cost``,
``line_item_usage_type``, ``line_item_currency_code``, and the tags as one ``resource_tags`` map
(``{"user_rmc_cluster": ...}``). Only USD is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray_multicloud.billing import CLUSTER_TAG, BillLine, Category
from ray_multicloud.billing._rows import day_of, number, read_rows, require, require_usd

LEGACY = {
    "start": "lineItem/UsageStartDate",
    "resource": "lineItem/ResourceId",
    "cost": "lineItem/UnblendedCost",
    "usage_type": "lineItem/UsageType",
    "currency": "lineItem/CurrencyCode",
}
CUR2 = {
    "start": "line_item_usage_start_date",
    "resource": "line_item_resource_id",
    "cost": "line_item_unblended_cost",
    "usage_type": "line_item_usage_type",
    "currency": "line_item_currency_code",
}
SPEC = "the CUR data dictionary (lineItem/... columns, or CUR 2.0 line_item_... columns)"


def category(usage_type: str) -> Category:
    """What a line pays for, from its usage type."""
    u = usage_type.lower()
    if "boxusage" in u or "spotusage" in u or "dedicatedusage" in u:
        return Category.COMPUTE
    if "ebs:" in u or "volumeusage" in u or "snapshotusage" in u:
        return Category.DISK
    if "datatransfer" in u or "-out-bytes" in u or "-in-bytes" in u:
        return Category.EGRESS
    if "timedstorage" in u or "requests-tier" in u:
        return Category.STORAGE
    return Category.OTHER


def _cluster(row: Mapping[str, Any]) -> str | None:
    legacy = row.get(f"resourceTags/user:{CLUSTER_TAG}")
    if legacy:
        return str(legacy)
    tags = row.get("resource_tags")
    if isinstance(tags, str) and tags.strip():
        try:
            tags = json.loads(tags)
        except json.JSONDecodeError:
            tags = None
    if isinstance(tags, Mapping):
        value = tags.get(f"user_{CLUSTER_TAG.replace('-', '_')}") or tags.get(f"user:{CLUSTER_TAG}")
        return str(value) if value else None
    return None


def read(path: str | Path) -> list[BillLine]:
    """Every line of a CUR export (see the module docstring)."""
    out: list[BillLine] = []
    names: dict[str, str] | None = None
    for i, row in read_rows(path):
        if names is None:
            have = list(row)
            names = CUR2 if CUR2["resource"] in have else LEGACY
            require(path, have, tuple(names[k] for k in ("start", "resource", "cost", "usage_type")),
                    "AWS Cost and Usage Report", SPEC)
        require_usd(path, i, row.get(names["currency"]))
        usage = str(row.get(names["usage_type"]) or "")
        out.append(BillLine(
            cloud="aws",
            resource_id=str(row.get(names["resource"]) or ""),
            day=day_of(path, i, names["start"], row.get(names["start"])),
            cost_usd=number(path, i, names["cost"], row.get(names["cost"])),
            category=category(usage),
            cluster=_cluster(row),
            description=usage,
        ))
    return out
