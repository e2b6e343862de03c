"""`ray-multicloud report`: table, CSV and PNG from a ledger; totals equal the ledger's rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ray_multicloud.cli import main
from ray_multicloud.ledger import Ledger
from ray_multicloud.types import CapacityType, Offer

H = 3600.0


def offer(cloud: str, price: float, od: float) -> Offer:
    return Offer(cloud, "r", "z", "t", "V100", 1, 8, 61, CapacityType.SPOT, price, od)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    with Ledger(path) as led:
        led.record_launch("a", "c", "gpu", offer("aws", 1.0, 3.0), "r", at=0.0, job="train")
        led.record_launch("b", "c", "gpu", offer("gcp", 0.5, 2.0), "r", at=0.0, job="train")
        led.record_launch("c", "c", "serve", offer("azure", 2.0, 2.5), "r", at=H, job="chat")
        led.record_price("a", 2.0, at=H)
        led.record_end("b", at=2 * H, reason="preempted")
    return path


@pytest.mark.parametrize("by", ["cloud", "pool", "job"])
def test_report_csv_totals_equal_ledger_rows(
    ledger: Path, tmp_path: Path, by: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / f"{by}.csv"
    out_png = tmp_path / f"{by}.png"
    rc = main(
        [
            "report",
            "--ledger",
            str(ledger),
            "--by",
            by,
            "--until",
            str(4 * H),
            "--csv",
            str(out_csv),
            "--png",
            str(out_png),
        ]
    )
    stdout = capsys.readouterr().out
    assert rc == 0
    with Ledger(ledger, create=False) as led:
        rows = led.spend(4 * H)
    with out_csv.open() as fh:
        records = list(csv.DictReader(fh))
    groups = [r for r in records if r[by] != "TOTAL"]
    (total,) = [r for r in records if r[by] == "TOTAL"]
    assert sum(float(r["spend_usd"]) for r in groups) == pytest.approx(sum(r.cost_usd for r in rows))
    assert float(total["spend_usd"]) == pytest.approx(sum(r.cost_usd for r in rows))
    assert float(total["ondemand_usd"]) == pytest.approx(sum(r.ondemand_cost_usd for r in rows))
    assert int(total["instances"]) == len(rows) == 3
    # a: 1 h at 1 + 3 h at 2; b: 2 h at 0.5; c: 3 h at 2 -> 7 + 1 + 6 = 14 USD
    assert float(total["spend_usd"]) == pytest.approx(14.0)
    assert float(total["ondemand_usd"]) == pytest.approx(12.0 + 4.0 + 7.5)
    assert "TOTAL" in stdout and "savings" in stdout
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_by_job_groups(ledger: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_csv = tmp_path / "j.csv"
    assert (
        main(["report", "--ledger", str(ledger), "--by", "job", "--until", str(4 * H), "--csv", str(out_csv)])
        == 0
    )
    with out_csv.open() as fh:
        by_job = {r["job"]: r for r in csv.DictReader(fh)}
    assert float(by_job["train"]["spend_usd"]) == pytest.approx(8.0)
    assert float(by_job["chat"]["savings"]) == pytest.approx(1 - 6.0 / 7.5)


def test_report_missing_ledger_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", "--ledger", str(tmp_path / "nope.db")])
    err = capsys.readouterr().err
    assert rc == 2 and "no ledger at" in err and err.count("\n") == 1
    assert not (tmp_path / "nope.db").exists()
