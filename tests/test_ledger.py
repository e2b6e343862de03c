"""Ledger: spend arithmetic, idempotence, totals, durability across SIGKILL, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from cloud_factories import priced_offer as offer

from ray_multicloud.ledger import Ledger, LedgerError, group_spend
from ray_multicloud.metrics import CostMetrics, cost_figures
from ray_multicloud.types import CapacityType

H = 3600.0


def test_spend_integrates_price_changes(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        assert led.record_launch("i-1", "c", "gpu", offer(price=1.0, od=3.0), "r1", at=0.0, job="train-a")
        led.record_price("i-1", 2.0, at=2 * H)  # 2 h at 1.0, then 2.0
        assert led.record_end("i-1", at=3 * H, reason="preempted")
        (row,) = led.spend(until=10 * H)
    assert row.hours == pytest.approx(3.0)
    assert row.cost_usd == pytest.approx(2 * 1.0 + 1 * 2.0)
    assert row.ondemand_cost_usd == pytest.approx(9.0)
    assert row.saved_usd == pytest.approx(5.0)
    assert (row.end_reason, row.job, row.price_per_hour) == ("preempted", "train-a", 2.0)


def test_running_instance_is_charged_until_the_report_time(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.record_launch("i-1", "c", "gpu", offer(price=0.5), "r1", at=H)
        (row,) = led.spend(until=4 * H)
        assert row.ended_at is None and row.hours == pytest.approx(3.0) and row.cost_usd == pytest.approx(1.5)
        assert led.spend(until=0.5 * H) == []  # not launched yet at that time


def test_idempotent_launch_and_end(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        assert led.record_launch("i-1", "c", "gpu", offer(), "r1", at=0.0)
        assert not led.record_launch("i-1", "c", "gpu", offer(price=9.0), "r1", at=5.0)
        assert led.record_end("i-1", at=H, reason="scale-down")
        assert not led.record_end("i-1", at=2 * H, reason="teardown")
        (row,) = led.spend(until=5 * H)
        assert (row.hours, row.cost_usd, row.end_reason) == (
            pytest.approx(1.0),
            pytest.approx(1.0),
            "scale-down",
        )


def test_unknown_instance_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led, pytest.raises(LedgerError, match="record_launch it first"):
        led.record_price("i-nope", 1.0, at=0.0)


def test_moves_preemptions_and_jobs(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.record_launch("i-1", "c", "gpu", offer(), "r1", at=0.0)
        led.record_preemption("i-1", at=H, deadline=H + 120)
        led.record_launch("i-2", "c", "gpu", offer(cloud="gcp", zone="us-central1-a"), "r2", at=H + 60)
        led.record_move("i-1", "i-2", "preempted", at=H + 60)
        led.record_end("i-1", at=H + 120, reason="preempted")
        led.set_job("i-2", "train-b")
        assert led.moves() == [("i-1", "i-2", "preempted", H + 60)]
        assert led.preemptions() == [("i-1", H, H + 120)]
        assert {r.instance_id: r.job for r in led.spend(until=2 * H)} == {"i-1": "", "i-2": "train-b"}


def test_summary_totals_equal_the_rows(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.record_launch("a", "c", "gpu", offer("aws", price=1.0), "r", at=0.0, job="j1")
        led.record_launch(
            "b", "c", "gpu", offer("gcp", "us-central1-a", price=0.7), "r", at=0.5 * H, job="j1"
        )
        led.record_launch(
            "c", "c", "cpu", offer("aws", price=3.0, capacity=CapacityType.ON_DEMAND), "r", at=H
        )
        led.record_price("a", 1.3, at=1.5 * H)
        led.record_end("b", at=2 * H, reason="moved")
        rows = led.spend(until=4 * H)
        for by in ("cloud", "pool", "job"):
            groups = led.summary(by, until=4 * H)
            assert sum(g.cost_usd for g in groups) == pytest.approx(sum(r.cost_usd for r in rows))
            assert sum(g.ondemand_cost_usd for g in groups) == pytest.approx(
                sum(r.ondemand_cost_usd for r in rows)
            )
            assert sum(g.instances for g in groups) == len(rows) == 3
        by_cloud = {g.key: g for g in group_spend(rows, "cloud")}
    assert by_cloud["gcp"].cost_usd == pytest.approx(0.7 * 1.5)
    assert by_cloud["aws"].cost_usd == pytest.approx(1.0 * 1.5 + 1.3 * 2.5 + 3.0 * 3)
    assert by_cloud["aws"].ondemand_cost_usd == pytest.approx(3.0 * 4 + 3.0 * 3)
    with pytest.raises(LedgerError, match="cannot group"):
        group_spend(rows, "colour")


_CHILD = textwrap.dedent(
    """
    import sys, time
    from ray_multicloud.ledger import Ledger
    from ray_multicloud.types import CapacityType, Offer
    o = Offer("aws", "us-east-1", "us-east-1a", "p3.2xlarge", "V100", 1, 8, 61, CapacityType.SPOT, 1.0, 3.0)
    led = Ledger(sys.argv[1])
    led.record_launch("i-acked", "c", "gpu", o, "r1", at=0.0)
    led.record_price("i-acked", 1.5, at=60.0)
    print("ACK", flush=True)
    time.sleep(60)  # killed here with SIGKILL, the connection never closed
    """
)


def test_acknowledged_record_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ACK"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Ledger(path) as led:
        (row,) = led.spend(until=120.0)
    assert row.instance_id == "i-acked" and row.price_per_hour == 1.5
    assert row.cost_usd == pytest.approx((60 * 1.0 + 60 * 1.5) / H)


def _writer(path: str, prefix: str, n: int) -> None:
    led = Ledger(path)
    for i in range(n):
        led.record_launch(f"{prefix}-{i}", "c", "gpu", offer(price=1.0), f"r{i}", at=float(i))
        led.record_price(f"{prefix}-{i}", 2.0, at=float(i) + 10)
        led.record_end(f"{prefix}-{i}", at=float(i) + 20, reason="scale-down")
    led.close()


def test_two_processes_and_threads_write_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    Ledger(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, p, 60)) for p in ("up", "monitor")]
    for p in procs:
        p.start()
    led = Ledger(path)
    threads = [
        threading.Thread(
            target=lambda k=k: [
                led.record_launch(f"t{k}-{i}", "c", "gpu", offer(), "r", at=0.0) for i in range(30)
            ]
        )
        for k in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    rows = led.spend(until=1000.0)
    led.close()
    assert len(rows) == 2 * 60 + 3 * 30
    ended = [r for r in rows if r.end_reason == "scale-down"]
    assert len(ended) == 120 and all(r.cost_usd == pytest.approx((10 * 1.0 + 10 * 2.0) / H) for r in ended)
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_not_a_ledger_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a usable SQLite ledger"):
        Ledger(bad)
    with pytest.raises(LedgerError, match="no ledger at"):
        Ledger(tmp_path / "missing.db", create=False)


def test_cost_figures_and_metrics_without_ray(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.record_launch("a", "c1", "gpu", offer("aws", price=1.0, od=3.0), "r", at=0.0)
        led.record_launch("b", "c1", "gpu", offer("gcp", "us-central1-a", price=0.5, od=2.0), "r", at=0.0)
        led.record_launch("x", "other", "gpu", offer("aws", price=9.0), "r", at=0.0)
        led.record_end("b", at=H, reason="teardown")
        figs = CostMetrics("c1").publish(led, now=2 * H)  # no Ray running: computes, exports nothing
    assert figs.running_nodes == 1
    assert figs.cost_per_hour == pytest.approx(1.0) and figs.ondemand_cost_per_hour == pytest.approx(3.0)
    assert figs.spend_usd == pytest.approx(2.0 + 0.5)
    assert figs.savings_fraction == pytest.approx(1 - 2.5 / (6.0 + 2.0))
    assert figs.cost_per_hour_by_cloud == (("aws", 1.0, 3.0),)
    assert cost_figures([]).savings_fraction == 0.0
