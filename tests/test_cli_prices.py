"""``ray-multicloud prices``: the cheapest offers per (cloud, capacity type) as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_multicloud.cli import main
from ray_multicloud.table import format_table

HEADER = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
)


def rows_of(out: str) -> list[list[str]]:
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["cloud", "capacity", "region"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    return [line.split() for line in lines[2:]]


def test_a100x8_cheapest_per_cloud_and_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--accelerator", "A100", "--count", "8"]) == 0
    out, err = capsys.readouterr()
    rows = rows_of(out)
    pairs = [(r[0], r[1]) for r in rows]
    assert sorted(pairs) == sorted(
        {(c, k) for c in ("aws", "gcp", "azure") for k in ("spot", "on-demand")}
    ), "one row per (cloud, capacity type)"
    assert all(r[5] == "8" for r in rows)
    prices = [float(r[6]) for r in rows]
    assert prices == sorted(prices)
    # The snapshot's cheapest A100x8 spot: aws us-east-1 use1-az1 p4d.24xlarge at $2.4655/h.
    assert rows[0][:7] == ["aws", "spot", "us-east-1", "use1-az1", "p4d.24xlarge", "8", "2.4655"]
    assert rows[0][8] == "89%"
    assert "162 row warnings" in err


def test_filters_and_limit(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["prices", "--accelerator", "a100", "--count", "8", "--capacity", "spot", "--cloud", "aws", "gcp"]
    assert main([*argv, "--region", "eu-*", "europe-*", "--limit", "2"]) == 0
    rows = rows_of(capsys.readouterr().out)
    assert {r[1] for r in rows} == {"spot"}
    assert {r[0] for r in rows} <= {"aws", "gcp"}
    assert all(r[2].startswith(("eu-", "europe-")) for r in rows)
    assert max(sum(1 for r in rows if r[0] == c) for c in ("aws", "gcp")) == 2


def test_unknown_accelerator_lists_known(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--accelerator", "A101"]) == 2
    err = capsys.readouterr().err
    assert "unknown accelerator 'A101'" in err and "A100-80GB" in err


def test_nothing_matches_says_which_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--accelerator", "A100", "--region", "mars-*"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "none in allowed regions ['mars-*']" in captured.err


def test_custom_catalog_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        HEADER
        + "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.918,full_vm,x\n"
        + "aws,us-east-1,use1-az2,p3.2xlarge,V100,1,8,61,3.06,4.0,full_vm,x\n",
        encoding="utf-8",
    )
    assert main(["prices", "--accelerator", "V100", "--catalog", str(path), "--show-warnings"]) == 0
    out, err = capsys.readouterr()
    rows = rows_of(out)
    assert [(r[1], r[3], r[6], r[7], r[8]) for r in rows] == [
        ("spot", "use1-az1", "0.9180", "3.0600", "70%"),
        ("on-demand", "use1-az1", "3.0600", "3.0600", "-"),
    ]
    assert "row 3: aws us-east-1 use1-az2 p3.2xlarge: spot price 4.0 is above on-demand" in err
    assert "1 row warnings" in err


def test_missing_catalog_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--accelerator", "A100", "--catalog", str(tmp_path / "nope.csv")]) == 2
    assert "ray-multicloud prices: cannot read catalog" in capsys.readouterr().err


def test_format_table_aligns_columns() -> None:
    text = format_table(["name", "n", "price"], [["a", 1, "1.50"], ["longer", 10, "12.00"]], align="lrr")
    assert text.splitlines() == [
        "name     n  price",
        "------  --  -----",
        "a        1   1.50",
        "longer  10  12.00",
    ]
    assert format_table(["x", "y"], [[1, None]]).splitlines()[2] == "1  -"
    with pytest.raises(ValueError):
        format_table(["x", "y"], [[1]])
