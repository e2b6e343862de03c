"""The clouds' own bills, read and reconciled with the ledger (``ray-multicloud reconcile``).

Each cloud's billing export has one reader, in the cloud's own column names, citing the published
column specification it follows:

* ``aws_cur.py``: AWS Cost and Usage Report, legacy CSV (``lineItem/ResourceId``, ...) and CUR 2.0
  data exports (``line_item_resource_id``, ...), CSV (optionally gzip) or Parquet;
* ``gcp_export.py``: Google Cloud Billing export to BigQuery (standard or detailed usage cost
  rows), as CSV (dotted column names) or newline-delimited JSON (nested rows);
* ``azure_export.py``: Azure Cost Management cost details export (CSV).

Every reader returns ``BillLine`` rows: which cloud, which resource (as the project's drivers name
the instance: AWS instance id, GCP ``zone.name``, Azure VM name; disks and other resources by their
own id), the UTC day, the cost in USD, a category (compute, egress, disk, storage, other) and the
``rmc-cluster`` tag the drivers set, when the bill carries it. ``reconcile.reconcile`` matches
them to the ledger per instance and per day.

A file that cannot be read, a header with none of a format's required columns, or a row with a
bad number or date is a ``BillError`` naming the file (and the row): nothing is recorded anywhere,
reconciling only reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from ray_multicloud.errors import MultiCloudError


class BillError(MultiCloudError):
    """A billing export that cannot be read as its format; the message names the file."""


class Category(str, enum.Enum):
    COMPUTE = "compute"
    EGRESS = "egress"
    DISK = "disk"
    STORAGE = "storage"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class BillLine:
    """One line of a bill, reduced to what reconciling needs."""

    cloud: str
    resource_id: str
    day: date
    cost_usd: float
    category: Category
    cluster: str | None = None
    description: str = ""


CLUSTER_TAG = "rmc-cluster"
