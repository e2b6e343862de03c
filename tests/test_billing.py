"""Bills reconciled with the ledger (the governance issue's item 5).

The sample exports are written here from each format's published columns (cited in
``ray_multicloud/billing/aws_cur.py``, ``gcp_export.py``, ``azure_export.py``); the expected figures
are worked out by hand below."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.billing import BillError, Category
from ray_multicloud.billing.formats import detect, load
from ray_multicloud.billing.reconcile import ledger_days, reconcile
from ray_multicloud.cli import main
from ray_multicloud.ledger import Ledger
from ray_multicloud.types import CapacityType, Offer

D = date(2026, 11, 2)
D1 = date(2026, 11, 3)
T0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
H = 3600.0


def offer(cloud: str, price: float) -> Offer:
    return Offer(cloud=cloud, region="r", zone="z", instance_type="t", accelerator="T4", accelerator_count=1,
                 vcpus=4, memory_gib=16, capacity=CapacityType.SPOT, price_per_hour=price,
                 ondemand_price_per_hour=3 * price)


def write_ledger(path: Path) -> None:
    """aws i-0abc: $1/h from D 20:00 to D+1 12:00 -> D $4, D+1 $12.
    gcp us-central1-a.vm1: $0.50/h from D 00:00 to D 10:00 -> D $5.
    azure vmA: $2/h from D 22:00, still running -> D $4, D+1 $48."""
    with Ledger(path) as led:
        led.record_launch("i-0abc", "demo", "gpu", offer("aws", 1.0), "r1", at=T0 + 20 * H)
        led.record_end("i-0abc", at=T0 + 36 * H, reason="scale-down")
        led.record_launch("us-central1-a.vm1", "demo", "gpu", offer("gcp", 0.5), "r2", at=T0)
        led.record_end("us-central1-a.vm1", at=T0 + 10 * H, reason="scale-down")
        led.record_launch("vmA", "demo", "gpu", offer("azure", 2.0), "r3", at=T0 + 22 * H)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


CUR_HEADER = ["identity/LineItemId", "lineItem/UsageStartDate", "lineItem/ProductCode", "lineItem/UsageType",
              "lineItem/ResourceId", "lineItem/UnblendedCost", "lineItem/CurrencyCode",
              "resourceTags/user:rmc-cluster"]


def aws_bill(tmp: Path) -> Path:
    return write_csv(tmp / "cur.csv", CUR_HEADER, [
        ["1", "2026-11-02T20:00:00Z", "AmazonEC2", "USE1-SpotUsage:g4dn.xlarge", "i-0abc", "4.40", "USD", "demo"],
        ["2", "2026-11-03T00:00:00Z", "AmazonEC2", "USE1-SpotUsage:g4dn.xlarge", "i-0abc", "11.00", "USD", "demo"],
        ["3", "2026-11-02T00:00:00Z", "AmazonEC2", "USE1-EBS:VolumeUsage.gp3", "vol-123", "0.80", "USD", "demo"],
        ["4", "2026-11-03T00:00:00Z", "AmazonEC2", "USE1-DataTransfer-Out-Bytes", "i-0abc", "0.30", "USD", "demo"],
        ["5", "2026-11-02T00:00:00Z", "AmazonEC2", "USE1-BoxUsage:p3.2xlarge", "i-other", "7.00", "USD", "other"],
    ])


GCP_HEADER = ["billing_account_id", "service.description", "sku.description", "usage_start_time", "cost",
              "currency", "resource.name", "location.zone", "labels"]
DEMO_LABEL = json.dumps([{"key": "rmc-cluster", "value": "demo"}])


def gcp_bill(tmp: Path) -> Path:
    return write_csv(tmp / "gcp.csv", GCP_HEADER, [
        ["0A-1", "Compute Engine", "Nvidia Tesla T4 GPU running in Americas", "2026-11-02 03:00:00 UTC", "5.00",
         "USD", "vm1", "us-central1-a", DEMO_LABEL],
        ["0A-1", "Networking", "Network Internet Egress from Americas to Americas", "2026-11-02 03:00:00 UTC",
         "0.25", "USD", "vm1", "us-central1-a", DEMO_LABEL],
    ])


AZ_HEADER = ["Date", "ResourceId", "CostInBillingCurrency", "BillingCurrency", "MeterCategory",
             "MeterSubCategory", "Tags"]
VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vmA"
DISK = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/vmA-osdisk"


def azure_bill(tmp: Path) -> Path:
    return write_csv(tmp / "azure.csv", AZ_HEADER, [
        ["11/02/2026", VM, "4.00", "USD", "Virtual Machines", "NCasT4 v3 Series", '"rmc-cluster": "demo"'],
        ["2026-11-03", VM, "46.00", "USD", "Virtual Machines", "NCasT4 v3 Series", '"rmc-cluster": "demo"'],
        ["11/02/2026", DISK, "0.50", "USD", "Storage", "Premium SSD Managed Disks", '{"rmc-cluster": "demo"}'],
    ])


def test_each_format_is_told_by_its_columns(tmp_path: Path) -> None:
    assert detect(aws_bill(tmp_path)) == "aws-cur"
    assert detect(gcp_bill(tmp_path)) == "gcp-billing"
    assert detect(azure_bill(tmp_path)) == "azure-cost"


def test_lines_are_read_in_the_projects_terms(tmp_path: Path) -> None:
    aws = load(aws_bill(tmp_path))
    assert [(x.resource_id, x.day, x.cost_usd, x.category, x.cluster) for x in aws[:4]] == [
        ("i-0abc", D, 4.40, Category.COMPUTE, "demo"), ("i-0abc", D1, 11.00, Category.COMPUTE, "demo"),
        ("vol-123", D, 0.80, Category.DISK, "demo"), ("i-0abc", D1, 0.30, Category.EGRESS, "demo")]
    gcp = load(gcp_bill(tmp_path))
    assert [(x.resource_id, x.category) for x in gcp] == [("us-central1-a.vm1", Category.COMPUTE),
                                                          ("us-central1-a.vm1", Category.EGRESS)]
    az = load(azure_bill(tmp_path))
    assert [(x.resource_id, x.day, x.category, x.cluster) for x in az] == [
        ("vmA", D, Category.COMPUTE, "demo"), ("vmA", D1, Category.COMPUTE, "demo"),
        (DISK, D, Category.DISK, "demo")]


def test_gcp_json_rows_keep_their_records_nested(tmp_path: Path) -> None:
    row = {"service": {"description": "Compute Engine"}, "sku": {"description": "N1 Predefined Instance Core"},
           "usage_start_time": "2026-11-02T03:00:00Z", "cost": 1.5, "currency": "USD",
           "resource": {"name": "vm1"}, "location": {"zone": "us-central1-a"},
           "labels": [{"key": "rmc-cluster", "value": "demo"}]}
    path = tmp_path / "gcp.json.gz"
    path.write_bytes(gzip.compress((json.dumps(row) + "\n").encode()))
    (line,) = load(path)
    assert (line.resource_id, line.cost_usd, line.cluster, line.day) == ("us-central1-a.vm1", 1.5, "demo", D)


def test_cur2_snake_case_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cur2.csv", ["line_item_usage_start_date", "line_item_resource_id",
                                             "line_item_unblended_cost", "line_item_usage_type", "resource_tags"],
                     [["2026-11-02T20:00:00Z", "i-0abc", "4.4", "BoxUsage:g4dn.xlarge",
                       json.dumps({"user_rmc_cluster": "demo"})]])
    (line,) = load(path)
    assert (line.resource_id, line.cost_usd, line.category, line.cluster) == ("i-0abc", 4.4, Category.COMPUTE, "demo")


def test_reconciled_per_instance_and_day(tmp_path: Path) -> None:
    write_ledger(tmp_path / "ledger.db")
    lines = load(aws_bill(tmp_path)) + load(gcp_bill(tmp_path)) + load(azure_bill(tmp_path))
    with Ledger(tmp_path / "ledger.db", create=False) as led:
        recorded = ledger_days(led, {x.day for x in lines}, cluster="demo")
    assert recorded == pytest.approx({("aws", "i-0abc", D): 4.0, ("aws", "i-0abc", D1): 12.0,
                                      ("gcp", "us-central1-a.vm1", D): 5.0,
                                      ("azure", "vmA", D): 4.0, ("azure", "vmA", D1): 48.0})
    result = reconcile(lines, recorded, cluster="demo")
    diffs = {(r.cloud, r.instance_id, r.day): (round(r.compute_diff_usd, 6), round(r.missing_usd, 6))
             for r in result.instances}
    assert diffs == {("aws", "i-0abc", D): (0.40, 0.0), ("aws", "i-0abc", D1): (-1.00, 0.30),
                     ("gcp", "us-central1-a.vm1", D): (0.0, 0.25),
                     ("azure", "vmA", D): (0.0, 0.0), ("azure", "vmA", D1): (-2.00, 0.0)}
    assert [(x.resource_id, x.category) for x in result.cluster_extras] == [  # by day, cloud, resource
        ("vol-123", Category.DISK), (DISK, Category.DISK)]
    assert result.ledger_usd == pytest.approx(73.0)  # 4 + 12 + 5 + 4 + 48
    assert result.bill_usd == pytest.approx(72.25)  # 16.50 aws + 5.25 gcp + 50.50 azure
    assert result.ignored_usd == pytest.approx(7.0)  # another cluster's instance
    assert result.by_category() == pytest.approx({Category.COMPUTE: 70.4, Category.EGRESS: 0.55,
                                                  Category.DISK: 1.30})


def test_cli_reconcile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ledger(tmp_path / "ledger.db")
    args = ["reconcile", "--ledger", str(tmp_path / "ledger.db"), "--bill", str(aws_bill(tmp_path)),
            "--bill", str(gcp_bill(tmp_path)), "--bill", str(azure_bill(tmp_path))]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cluster"] == "demo" and out["bill_usd"] == pytest.approx(72.25)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "i-0abc" in text and "-1.00" in text and "vol-123" in text


@pytest.mark.parametrize(
    ("header", "row", "needle"),
    [
        (["foo", "bar"], ["1", "2"], "unknown billing export"),
        (CUR_HEADER[:5], ["1", "2026-11-02", "AmazonEC2", "BoxUsage", "i-1"], "missing column"),
        (CUR_HEADER, ["1", "2026-11-02", "AmazonEC2", "BoxUsage", "i-1", "lots", "USD", ""], "not a number"),
        (CUR_HEADER, ["1", "2026-11-02", "AmazonEC2", "BoxUsage", "i-1", "nan", "USD", ""], "not a finite"),
        (CUR_HEADER, ["1", "yesterday", "AmazonEC2", "BoxUsage", "i-1", "1", "USD", ""], "ISO-8601"),
        (CUR_HEADER, ["1", "2026-11-02", "AmazonEC2", "BoxUsage", "i-1", "1", "EUR", ""], "only USD"),
        (AZ_HEADER, ["13/45/2026", VM, "1", "USD", "Virtual Machines", "", ""], "not a date"),
    ],
)
def test_bad_exports_name_the_file_and_the_problem(
    tmp_path: Path, header: list[str], row: list[str], needle: str
) -> None:
    path = write_csv(tmp_path / "bill.csv", header, [row])
    with pytest.raises(BillError, match=needle) as err:
        load(path)
    assert str(path) in str(err.value)


def test_cli_bad_bill_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ledger(tmp_path / "ledger.db")
    bad = write_csv(tmp_path / "bill.csv", ["foo"], [["1"]])
    assert main(["reconcile", "--ledger", str(tmp_path / "ledger.db"), "--bill", str(bad)]) == 2
    assert "unknown billing export" in capsys.readouterr().err


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=8), min_size=1, max_size=5),
       st.sampled_from(["aws-cur", "gcp-billing", "azure-cost", "auto"]))
def test_any_csv_is_read_or_refused_clearly(rows: list[list[str]], fmt: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bill.csv"
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
        try:
            load(path, fmt)
        except BillError as exc:
            assert str(path) in str(exc)
