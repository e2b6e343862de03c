"""``pricing/catalog.py`` by its module docstring's table and its messages: every warning word for
word (the CSV line, the row's cloud/region/zone/instance type, what happened to the offer), the
boundaries of the GPU counts and prices, the offers' fields, the grouped log lines (up to
``_LOG_EACH_UP_TO`` rows of one kind and cloud one by one, more as one line), and the errors that say
what to do. Every expected value is written out by hand from those texts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ray_multicloud.errors import CatalogError
from ray_multicloud.pricing import catalog as cat
from ray_multicloud.pricing.catalog import Catalog, CatalogWarning, load_catalog, parse_catalog
from ray_multicloud.types import CapacityType, Offer

HEADER = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
)
LOGGER = "ray_multicloud.pricing.catalog"


def parse(*rows: str, header: str = HEADER) -> Catalog:
    return parse_catalog(header + "".join(r + "\n" for r in rows), source="t.csv")


def one_warning(row: str) -> tuple[str, str, set[str]]:
    catalog = parse(row)
    (w,) = catalog.warnings
    assert w.row == 2
    return w.kind, w.message, {o.capacity.value for o in catalog.offers}


@pytest.mark.parametrize(
    ("row", "kind", "message", "kept"),
    [
        ("gcp,asia-east1,asia-east1-a,,L4,1,,,0.6,0.2,,x", cat.NO_INSTANCE_TYPE,
         "gcp asia-east1 asia-east1-a (no instance type): no instance type (price scope unknown): "
         "not a launchable VM; left out", set()),
        ("gcp,asia-east1,,,L4,1,,,0.6,0.2,gpu_only,x", cat.NO_INSTANCE_TYPE,
         "gcp asia-east1 - (no instance type): no instance type (price scope gpu_only): "
         "not a launchable VM; left out", set()),
        (",us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.9,,", cat.BAD_NUMBER,
         "? us-east-1 use1-az1 p3.2xlarge: cloud or region is empty; row left out", set()),
        ("aws, ,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.9,,", cat.BAD_NUMBER,
         "aws ? use1-az1 p3.2xlarge: cloud or region is empty; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,eight,61,3.06,0.9,,", cat.BAD_NUMBER,
         "aws us-east-1 use1-az1 p3.2xlarge: vcpus 'eight' is not a number; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,-61,3.06,0.9,,", cat.BAD_NUMBER,
         "aws us-east-1 use1-az1 p3.2xlarge: memory_gib '-61' is not a finite non-negative number; "
         "row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,inf,8,61,3.06,0.9,,", cat.BAD_NUMBER,
         "aws us-east-1 use1-az1 p3.2xlarge: accelerator_count 'inf' is not a finite non-negative number; "
         "row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,nan,61,3.06,0.9,,", cat.BAD_NUMBER,
         "aws us-east-1 use1-az1 p3.2xlarge: vcpus 'nan' is not a finite non-negative number; "
         "row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,32,8,61,3.06,0.9,,", cat.BAD_GPU_COUNT,
         "aws us-east-1 use1-az1 p3.2xlarge: impossible GPU count 32 for V100 (expected 1, 2, 4, 8, 16 "
         "or a shared fraction below 1); row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1.5,8,61,3.06,0.9,,", cat.BAD_GPU_COUNT,
         "aws us-east-1 use1-az1 p3.2xlarge: impossible GPU count 1.5 for V100 (expected 1, 2, 4, 8, 16 "
         "or a shared fraction below 1); row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,0,8,61,3.06,0.9,,", cat.BAD_GPU_COUNT,
         "aws us-east-1 use1-az1 p3.2xlarge: impossible GPU count 0 for V100 (expected 1, 2, 4, 8, 16 "
         "or a shared fraction below 1); row left out", set()),
        ("aws,us-east-1,use1-az1,m5.xlarge,,2,4,16,0.2,0.1,,", cat.BAD_GPU_COUNT,
         "aws us-east-1 use1-az1 m5.xlarge: GPU count 2 with no accelerator name; left out", set()),
        ("aws,us-east-1,use1-az1,m5.xlarge,,0.5,4,16,0.2,0.1,,", cat.BAD_GPU_COUNT,
         "aws us-east-1 use1-az1 m5.xlarge: GPU count 0.5 with no accelerator name; left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,,0.9,,", cat.BAD_ONDEMAND,
         "aws us-east-1 use1-az1 p3.2xlarge: no on-demand price; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,0,0,,", cat.BAD_ONDEMAND,
         "aws us-east-1 use1-az1 p3.2xlarge: on-demand price 0 is not positive; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,inf,0.9,,", cat.BAD_ONDEMAND,
         "aws us-east-1 use1-az1 p3.2xlarge: on-demand price inf is not positive; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,nan,0.9,,", cat.BAD_ONDEMAND,
         "aws us-east-1 use1-az1 p3.2xlarge: on-demand price nan is not positive; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,$3,0.9,,", cat.BAD_NUMBER,
         "aws us-east-1 use1-az1 p3.2xlarge: on-demand price '$3' is not a number; row left out", set()),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,,,", cat.NO_SPOT,
         "aws us-east-1 use1-az1 p3.2xlarge: no spot price (unknown); on-demand offer only", {"on-demand"}),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,cheap,,", cat.BAD_NUMBER,
         "aws us-east-1 use1-az1 p3.2xlarge: spot price 'cheap' is not a number; spot offer left out",
         {"on-demand"}),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,-0.5,,", cat.BAD_SPOT,
         "aws us-east-1 use1-az1 p3.2xlarge: spot price -0.5 is not a positive price; spot offer left out",
         {"on-demand"}),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,nan,,", cat.BAD_SPOT,
         "aws us-east-1 use1-az1 p3.2xlarge: spot price nan is not a positive price; spot offer left out",
         {"on-demand"}),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,3.0600001,,", cat.SPOT_ABOVE_ONDEMAND,
         "aws us-east-1 use1-az1 p3.2xlarge: spot price 3.0600001 is above on-demand 3.06; "
         "spot offer left out",
         {"on-demand"}),
        ("aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,3.060,,", cat.SPOT_EQUALS_ONDEMAND,
         "aws us-east-1 use1-az1 p3.2xlarge: spot price equals on-demand 3.06: no discount recorded; kept",
         {"on-demand", "spot"}),
    ],
)  # fmt: skip
def test_each_problem_is_one_warning_word_for_word(row: str, kind: str, message: str, kept: set[str]) -> None:
    assert one_warning(row) == (kind, message, kept)


@pytest.mark.parametrize("count", ["1", "2", "4", "8", "16", "1.0", "0.5", "0.25", "0.999"])
def test_whole_gpu_counts_and_shared_fractions_are_kept(count: str) -> None:
    catalog = parse(f"gcp,us-central1,,g4-standard,RTX6000,{count},4,16,1.0,0.5,,")
    assert not catalog.warnings
    assert [o.accelerator_count for o in catalog.offers] == [float(count)] * 2


def test_a_cpu_row_with_no_accelerator_and_no_count_is_kept() -> None:
    (od,) = parse("aws,us-east-1,use1-az1,m5.xlarge,,,4,16,0.192,,,").offers
    assert (od.accelerator, od.accelerator_count, od.vcpus, od.memory_gib) == ("", 0.0, 4.0, 16.0)
    (od0,) = parse("aws,us-east-1,use1-az1,m5.xlarge,,0,,,0.192,,,").offers
    assert (od0.accelerator_count, od0.vcpus, od0.memory_gib) == (0.0, 0.0, 0.0)


def test_a_rows_offers_carry_its_fields_stripped_with_the_documented_defaults() -> None:
    catalog = parse(" azure , eastus ,  , Standard_NC6s_v3 , V100 , 1 , 6 , 112 , 3.06 , 0.306 , , ")
    od, spot = catalog.offers
    assert od == Offer(
        cloud="azure", region="eastus", zone="", instance_type="Standard_NC6s_v3", accelerator="V100",
        accelerator_count=1.0, vcpus=6.0, memory_gib=112.0, capacity=CapacityType.ON_DEMAND,
        price_per_hour=3.06, ondemand_price_per_hour=3.06, price_scope="full_vm", source="",
    )
    assert spot == Offer(
        cloud="azure", region="eastus", zone="", instance_type="Standard_NC6s_v3", accelerator="V100",
        accelerator_count=1.0, vcpus=6.0, memory_gib=112.0, capacity=CapacityType.SPOT,
        price_per_hour=0.306, ondemand_price_per_hour=3.06, price_scope="full_vm", source="",
    )
    scoped = parse("gcp,us-east1,us-east1-b,n1-standard-8,T4,1,8,30,0.73,0.2,host_only,cyclenerd").offers[0]
    assert (scoped.price_scope, scoped.source) == ("host_only", "cyclenerd")
    # price_scope and source are optional columns
    header = HEADER.replace(",price_scope,source", "")
    (bare,) = parse("gcp,us-east1,us-east1-b,n1-standard-8,T4,1,8,30,0.73,", header=header).offers
    assert (bare.price_scope, bare.source) == ("full_vm", "")


def test_a_duplicate_offer_names_the_offer_and_keeps_the_first() -> None:
    catalog = parse(
        "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,,,",
        "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,9.99,,,",
    )
    assert [(w.row, w.kind, w.message) for w in catalog.warnings] == [
        (2, cat.NO_SPOT, "aws us-east-1 use1-az1 p3.2xlarge: no spot price (unknown); on-demand offer only"),
        (3, cat.NO_SPOT, "aws us-east-1 use1-az1 p3.2xlarge: no spot price (unknown); on-demand offer only"),
        (3, cat.DUPLICATE, "aws us-east-1 use1-az1 p3.2xlarge: duplicate offer "
                           "aws/us-east-1/use1-az1/p3.2xlarge/on-demand; later row left out"),
    ]  # fmt: skip
    assert [o.price_per_hour for o in catalog.offers] == [3.06]


def test_the_catalogs_views() -> None:
    catalog = parse(
        "gcp,us-east1,us-east1-b,a2,a100,1,8,30,3.0,1.0,,",
        "aws,us-east-1,use1-az1,p3,V100,1,8,61,3.06,,,",
        "azure,eastus,,nc,A10,1,8,61,2.0,0.5,,",
        "aws,us-east-1,use1-az2,p3,V100,1,8,61,3.06,,,",
        "aws,us-east-1,use1-az3,m5,,,4,16,0.2,0.1,,",
    )
    assert catalog.accelerators() == ("A10", "a100", "V100")  # case-insensitive, no "", no repeats
    assert catalog.clouds() == ("aws", "azure", "gcp")
    assert [w.row for w in catalog.warnings_of(cat.NO_SPOT)] == [3, 5]
    assert catalog.warnings_of("no such kind") == ()
    assert catalog.source == "t.csv"
    assert str(CatalogWarning(7, "x y")) == "row 7: x y" and CatalogWarning(7, "x").kind == ""


def test_up_to_three_warnings_of_a_kind_and_cloud_are_logged_one_by_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert cat._LOG_EACH_UP_TO == 3
    rows = [f"aws,us-east-1,use1-az{i},p3,V100,1,8,61,3.06,,," for i in range(1, 4)]
    rows += [f"gcp,us-east1,us-east1-{z},a2,A100,1,8,30,3.0,,," for z in "bcdf"]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        parse(*rows)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == [
        f"catalog t.csv: row {i + 1}: aws us-east-1 use1-az{i} p3: no spot price (unknown); "
        "on-demand offer only"
        for i in range(1, 4)
    ] + [
        "catalog t.csv: 4 gcp rows with no spot price (rows 5, 6, 7, 8); "
        "first: gcp us-east1 us-east1-b a2: no spot price (unknown); on-demand offer only"
    ]


def test_the_shipped_catalog_is_named_as_package_data() -> None:
    assert cat.SHIPPED_CATALOG == "data/gpu_offers.csv"
    assert load_catalog().source == "package:ray_multicloud/data/gpu_offers.csv"


def test_the_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as empty:
        parse_catalog("", source="e.csv")
    assert str(empty.value) == (
        "catalog e.csv is empty: expected a CSV header with cloud, region, zone, instance_type, "
        "accelerator, accelerator_count, vcpus, memory_gib, ondemand_usd_per_hour, spot_usd_per_hour."
    )
    with pytest.raises(CatalogError) as missing:
        parse_catalog("cloud,zone,region,x\n", source="m.csv")
    assert str(missing.value) == (
        "catalog m.csv lacks required column(s) instance_type, accelerator, accelerator_count, vcpus, "
        "memory_gib, ondemand_usd_per_hour, spot_usd_per_hour (has: cloud, zone, region, x). Add them "
        "to the header; a catalog needs cloud, region, zone, instance_type, accelerator, "
        "accelerator_count, vcpus, memory_gib, ondemand_usd_per_hour, spot_usd_per_hour."
    )
    with pytest.raises(CatalogError) as bad_csv:
        parse("aws,us-east-1,z,p3,V100,1,8,61,3.06,," + "x" * 200_000 + ",")
    assert str(bad_csv.value).startswith("catalog t.csv is not valid CSV near line ")
    assert "field larger than field limit" in str(bad_csv.value)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(HEADER.encode() + b"aws,us-east-1,z,p\xe9,V100,1,8,61,3.06,,,\n")
    with pytest.raises(CatalogError) as undecodable:
        load_catalog(latin)
    text = str(undecodable.value)
    assert text.startswith(f"cannot read catalog {latin}: ")
    assert text.endswith(
        ". Pass the path of a readable UTF-8 CSV file, or omit it to use the shipped snapshot."
    )
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "aws,us-east-1,z,p3,V100,1,8,61,3.06,1.0,,\n", encoding="utf-8")
    assert load_catalog(str(good)).source == str(good) and len(load_catalog(good).offers) == 2


def test_the_shipped_catalog_unreadable_says_to_reinstall(monkeypatch: pytest.MonkeyPatch) -> None:
    class Gone:
        def joinpath(self, name: str) -> Gone:
            assert name == "data/gpu_offers.csv"
            return self

        def read_text(self, encoding: str) -> str:
            assert encoding == "utf-8"
            raise FileNotFoundError("gone")

    monkeypatch.setattr(cat.resources, "files", lambda pkg: Gone() if pkg == "ray_multicloud" else None)
    with pytest.raises(CatalogError) as err:
        load_catalog()
    assert str(err.value) == (
        "cannot read the shipped catalog package:ray_multicloud/data/gpu_offers.csv: gone. Reinstall "
        "the package (pip install -e .) or pass a catalog path explicitly."
    )


def test_a_rows_new_spot_offer_is_kept_when_its_on_demand_offer_is_a_duplicate() -> None:
    catalog = parse(
        "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,,,",
        "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.9,,",
    )
    assert [(o.capacity, o.price_per_hour) for o in catalog.offers] == [(CapacityType.ON_DEMAND, 3.06),
                                                                        (CapacityType.SPOT, 0.9)]
    assert [w.kind for w in catalog.warnings] == [cat.NO_SPOT, cat.DUPLICATE]
