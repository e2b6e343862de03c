"""Azure Cost Management cost-details export rows as ``BillLine``.

Columns, per "Understand cost details fields" (learn.microsoft.com/azure/cost-management-billing/
automate/understand-usage-details-fields): ``Date``, ``ResourceId`` (``/subscriptions/.../providers/
Microsoft.Compute/virtualMachines/NAME``), ``CostInBillingCurrency``, ``BillingCurrency``,
``MeterCategory`` (``Virtual Machines``, ``Bandwidth``, ``Storage``), ``MeterSubCategory`` and
``Tags`` (a JSON object; older exports leave out the braces). A VM's line is matched by the VM's
name, the project's Azure instance id. Only USD is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

from ray_multicloud.billing import CLUSTER_TAG, BillLine, Category
from ray_multicloud.billing._rows import day_of, number, read_rows, require, require_usd

SPEC = "Cost Management's cost details (Date, ResourceId, CostInBillingCurrency, MeterCategory, Tags)"


def category(meter: str, sub: str, resource_id: str) -> Category:
    m, r = f"{meter} {sub}".lower(), resource_id.lower()
    if "bandwidth" in m or "data transfer" in m:
        return Category.EGRESS
    if "/disks/" in r or "disk" in m:
        return Category.DISK
    if "storage" in m:
        return Category.STORAGE
    if "virtual machines" in m or "/virtualmachines/" in r:
        return Category.COMPUTE
    return Category.OTHER


def _tags(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    if not text.startswith("{"):
        text = "{" + text + "}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def read(path: str | Path) -> list[BillLine]:
    out: list[BillLine] = []
    checked = False
    for i, row in read_rows(path):
        if not checked:
            require(path, list(row), ("Date", "ResourceId", "CostInBillingCurrency", "MeterCategory"),
                    "Azure cost details", SPEC)
            checked = True
        require_usd(path, i, row.get("BillingCurrency"))
        resource = str(row.get("ResourceId") or "")
        kind = category(str(row.get("MeterCategory") or ""), str(row.get("MeterSubCategory") or ""), resource)
        name = resource.rstrip("/").rsplit("/", 1)[-1]
        out.append(BillLine(
            cloud="azure",
            resource_id=name if "/virtualmachines/" in resource.lower() else resource,
            day=day_of(path, i, "Date", row.get("Date")),
            cost_usd=number(path, i, "CostInBillingCurrency", row.get("CostInBillingCurrency")),
            category=kind,
            cluster=_tags(str(row.get("Tags") or "")).get(CLUSTER_TAG),
            description=str(row.get("MeterSubCategory") or row.get("MeterCategory") or ""),
        ))
    return out
