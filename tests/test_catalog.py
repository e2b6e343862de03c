"""Catalog loading and row validation, on the shipped snapshot's known defects and on small literal CSVs."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ray_multicloud.errors import CatalogError
from ray_multicloud.pricing import Catalog, load_catalog
from ray_multicloud.pricing import catalog as cat
from ray_multicloud.types import CapacityType

HEADER = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
)


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


def write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "offers.csv"
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def offers_of(catalog: Catalog, instance_type: str, zone: str = "", region: str = "") -> set[CapacityType]:
    return {
        o.capacity
        for o in catalog.offers
        if o.instance_type == instance_type
        and (not zone or o.zone == zone)
        and (not region or o.region == region)
    }


# ---------------------------------------------------------------- the shipped snapshot's known defects


def test_shipped_snapshot_loads_with_source(shipped: Catalog) -> None:
    assert shipped.source == "package:ray_multicloud/data/gpu_offers.csv"
    assert len(shipped.offers) > 2500
    assert {"aws", "azure", "gcp"} <= set(shipped.clouds())
    assert "A100" in shipped.accelerators() and "A100-80GB" in shipped.accelerators()


def test_nd96isr_h100_with_12_gpus_is_left_out_naming_each_row(shipped: Catalog) -> None:
    bad = shipped.warnings_of(cat.BAD_GPU_COUNT)
    assert [w.row for w in bad] == [365, 366, 367]
    for w in bad:
        assert "Standard_ND96isr_H100_v5" in w.message and "12" in w.message and "azure" in w.message
    assert not offers_of(shipped, "Standard_ND96isr_H100_v5")


def test_a100_80gb_spot_above_ondemand_drops_only_the_spot_offer(shipped: Catalog) -> None:
    # Line 188: aws ap-southeast-1 apse1-az3 p4de.24xlarge, spot 32.9365 > on-demand 32.93646.
    (w,) = [w for w in shipped.warnings_of(cat.SPOT_ABOVE_ONDEMAND) if "p4de.24xlarge" in w.message]
    assert w.row == 188
    assert "apse1-az3" in w.message and "32.9365" in w.message
    assert offers_of(shipped, "p4de.24xlarge", zone="apse1-az3") == {CapacityType.ON_DEMAND}
    # Its neighbour with a real discount keeps both offers.
    assert offers_of(shipped, "p4de.24xlarge", zone="apse1-az2") == {
        CapacityType.SPOT,
        CapacityType.ON_DEMAND,
    }


def test_empty_aws_spot_price_gives_on_demand_only(shipped: Catalog) -> None:
    aws_rows = [w for w in shipped.warnings_of(cat.NO_SPOT) if w.message.startswith("aws ")]
    assert len(aws_rows) == 21
    assert 198 in {w.row for w in aws_rows}  # aws ap-northeast-2 apne2-az1 p5.48xlarge
    assert offers_of(shipped, "p5.48xlarge", zone="apne2-az1") == {CapacityType.ON_DEMAND}


def test_spot_equal_to_ondemand_is_kept_and_noted(shipped: Catalog) -> None:
    noted = shipped.warnings_of(cat.SPOT_EQUALS_ONDEMAND)
    assert noted and all("no discount recorded" in w.message for w in noted)
    # Line 186: aws ap-northeast-1 apne1-az4 p4de.24xlarge spot == on-demand 37.6223.
    assert 186 in {w.row for w in noted}
    (spot,) = [
        o
        for o in shipped.offers
        if o.zone == "apne1-az4" and o.instance_type == "p4de.24xlarge" and o.capacity is CapacityType.SPOT
    ]
    assert spot.price_per_hour == spot.ondemand_price_per_hour == 37.6223
    assert spot.discount == 0.0


def test_missing_ondemand_price_drops_the_row(shipped: Catalog) -> None:
    rows = {w.row for w in shipped.warnings_of(cat.BAD_ONDEMAND)}
    assert rows == {379, 393, 419, 435}  # azure westus Radeon MI25 rows with no prices
    assert not offers_of(shipped, "Standard_NV16as_v4", region="westus")


def test_gpu_only_rows_without_instance_type_are_left_out(shipped: Catalog) -> None:
    assert len(shipped.warnings_of(cat.NO_INSTANCE_TYPE)) == 95
    assert all(o.instance_type for o in shipped.offers)


def test_every_kept_offer_is_sane(shipped: Catalog) -> None:
    for o in shipped.offers:
        assert o.price_per_hour > 0 and o.ondemand_price_per_hour > 0, o
        assert o.price_per_hour <= o.ondemand_price_per_hour, o
        assert o.accelerator_count in cat.VALID_GPU_COUNTS or 0 < o.accelerator_count < 1, o
        if o.capacity is CapacityType.ON_DEMAND:
            assert o.price_per_hour == o.ondemand_price_per_hour
    ids = [o.offer_id for o in shipped.offers]
    assert len(ids) == len(set(ids))


def test_shared_fraction_gpu_rows_are_kept(shipped: Catalog) -> None:
    fractions = {o.accelerator_count for o in shipped.offers if o.accelerator_count < 1}
    assert fractions == {0.125, 0.25, 0.5}


# ---------------------------------------------------------------- literal rows


@pytest.mark.parametrize(
    ("row", "kind", "kept"),
    [
        # a4-highgpu-8g was listed at price 0.0 by the source: never a free machine.
        ("gcp,us-central1,us-central1-a,a4-highgpu-8g,B200,8,224,3968,0.0,0.0,full_vm,x", cat.BAD_ONDEMAND, set()),
        ("gcp,us-central1,us-central1-a,a4-highgpu-8g,B200,8,224,3968,-1,,full_vm,x", cat.BAD_ONDEMAND, set()),
        ("aws,us-east-1,use1-az1,p4d.24xlarge,A100,8,96,1152,20.0,0.0,full_vm,x", cat.BAD_SPOT, {"on-demand"}),
        ("aws,us-east-1,use1-az1,p4d.24xlarge,A100,8,96,1152,20.0,21.0,full_vm,x", cat.SPOT_ABOVE_ONDEMAND, {"on-demand"}),
        ("aws,us-east-1,use1-az1,p4d.24xlarge,A100,8,96,1152,20.0,,full_vm,x", cat.NO_SPOT, {"on-demand"}),
        ("aws,us-east-1,use1-az1,p4d.24xlarge,A100,8,96,1152,20.0,20.0,full_vm,x", cat.SPOT_EQUALS_ONDEMAND,
         {"on-demand", "spot"}),
        ("azure,eastus,,Standard_ND96isr_H100_v5,H100,12,96,1900,98.32,98.32,full_vm,x", cat.BAD_GPU_COUNT, set()),
        ("azure,eastus,,Odd,H100,3,96,1900,98.32,50,full_vm,x", cat.BAD_GPU_COUNT, set()),
        ("aws,us-east-1,use1-az1,p4d.24xlarge,A100,eight,96,1152,20.0,5,full_vm,x", cat.BAD_NUMBER, set()),
        ("aws,us-east-1,use1-az1,p4d.24xlarge,A100,8,96,1152,abc,5,full_vm,x", cat.BAD_NUMBER, set()),
        ("gcp,asia-east1,asia-east1-a,,L4,1,,,0.64847,0.2311,gpu_only(host_vm_not_included),x", cat.NO_INSTANCE_TYPE,
         set()),
    ],
    ids=[
        "zero-prices", "negative-ondemand", "zero-spot", "spot-above-ondemand", "empty-spot", "spot-equals",
        "12-gpus", "3-gpus", "count-not-number", "price-not-number", "gpu-only-row",
    ],
)  # fmt: skip
def test_bad_row_is_warned_and_left_out(
    tmp_path: Path, row: str, kind: str, kept: set[str], caplog: pytest.LogCaptureFixture
) -> None:
    good = "aws,us-east-1,use1-az2,g5.xlarge,A10G,1,4,16,1.0,0.4,full_vm,x"
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.pricing.catalog"):
        catalog = load_catalog(write(tmp_path, good, row))
    (w,) = catalog.warnings
    assert (w.row, w.kind) == (3, kind)  # line 1 header, line 2 the good row
    cloud, region, zone, itype = row.split(",")[:4]
    assert w.message.startswith(f"{cloud} {region} {zone or '-'} {itype or '(no instance type)'}: ")
    assert {o.capacity.value for o in catalog.offers if o.zone == zone and o.instance_type == itype} == kept
    assert {o.instance_type for o in catalog.offers if o.zone == "use1-az2"} == {"g5.xlarge"}
    assert any("row 3" in r.getMessage() for r in caplog.records)


def test_spot_offer_carries_ondemand_price(tmp_path: Path) -> None:
    catalog = load_catalog(
        write(tmp_path, "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.918,full_vm,src")
    )
    assert not catalog.warnings
    by_cap = {o.capacity: o for o in catalog.offers}
    assert by_cap[CapacityType.SPOT].price_per_hour == 0.918
    assert by_cap[CapacityType.SPOT].ondemand_price_per_hour == 3.06
    assert by_cap[CapacityType.ON_DEMAND].price_per_hour == 3.06
    assert by_cap[CapacityType.SPOT].discount == pytest.approx(0.7)
    assert by_cap[CapacityType.SPOT].source == "src"


def test_duplicate_offer_keeps_the_first(tmp_path: Path) -> None:
    row = "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.918,full_vm,src"
    catalog = load_catalog(write(tmp_path, row, row.replace("3.06", "9.99")))
    assert {o.ondemand_price_per_hour for o in catalog.offers} == {3.06}
    assert [w.kind for w in catalog.warnings] == [cat.DUPLICATE, cat.DUPLICATE]
    assert all(w.row == 3 for w in catalog.warnings)


def test_many_warnings_of_one_kind_are_logged_as_one_line_per_cloud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [f"aws,us-east-1,use1-az{i},p3.2xlarge,V100,1,8,61,3.06,,full_vm,x" for i in range(1, 8)]
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.pricing.catalog"):
        catalog = load_catalog(write(tmp_path, *rows))
    assert len(catalog.warnings) == 7  # one per row, always
    (record,) = caplog.records
    assert "7 aws rows" in record.getMessage() and "rows 2, 3, 4, 5, 6, 7, 8" in record.getMessage()


# ---------------------------------------------------------------- unreadable input


def test_missing_required_column_says_which(tmp_path: Path) -> None:
    header = HEADER.replace("spot_usd_per_hour,", "")
    path = write(tmp_path, "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,full_vm,x", header=header)
    with pytest.raises(CatalogError, match="lacks required column.*spot_usd_per_hour"):
        load_catalog(path)


def test_unreadable_file_raises_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(
        CatalogError, match="cannot read catalog .*nope.csv.*omit it to use the shipped snapshot"
    ):
        load_catalog(tmp_path / "nope.csv")


def test_empty_file_raises_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(CatalogError, match="is empty"):
        load_catalog(path)


def test_importing_the_package_reads_no_catalog() -> None:
    """Importing every module reads no CSV; the explicit call does (so the probe can see a read)."""
    probe = textwrap.dedent(
        """
        import sys
        opened = []
        sys.addaudithook(lambda ev, args: opened.append(str(args[0])) if ev == "open" else None)
        import ray_multicloud, ray_multicloud.pricing, ray_multicloud.policy, ray_multicloud.cluster_config.pools
        import ray_multicloud.cli
        before = [p for p in opened if p.endswith("gpu_offers.csv")]
        from ray_multicloud.pricing import load_catalog
        load_catalog()
        after = [p for p in opened if p.endswith("gpu_offers.csv")]
        print(len(before), len(after))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1"]
