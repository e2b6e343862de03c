"""Every dollar attributed (issue 15, item 6, the team part and the report's outputs): a pool's team
label reaches the ledger, older ledgers gain the column, and ``report --by job|team|pool|cloud`` shows
spend, savings and idle cost (unused reserved hours paid), as a table, CSV and PNG. Expected figures
are computed by hand in the comments."""

from __future__ import annotations

import copy
import csv
import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cli import main
from ray_multicloud.cluster_config.pools import pool_team
from ray_multicloud.errors import ConfigError
from ray_multicloud.ledger import Ledger
from ray_multicloud.spend_report import UNUSED, report_groups, reservation_use, total
from ray_multicloud.types import CapacityType, Offer, Reservation

ROOT = Path(__file__).resolve().parents[1]
LOCAL = yaml.safe_load((ROOT / "cluster_configs" / "local-multicloud.yaml").read_text())
H = 3600.0
RES = Reservation(cloud="aws", instance_type="g4dn.xlarge", region="us-east-1", count=2,
                  term_price_per_hour=0.33, team="ml", key="provider.reservations[0]")
RESERVED = Offer("aws", "us-east-1", "use1-az1", "g4dn.xlarge", "T4", 1, 4, 16, CapacityType.RESERVED, 0.0,
                 0.526, term_price_per_hour=0.33, reserved_count=2)
SPOT = Offer("aws", "us-east-1", "use1-az2", "g4dn.xlarge", "T4", 1, 4, 16, CapacityType.SPOT, 0.2, 0.526)
GCP = Offer("gcp", "us-central1", "us-central1-a", "n1-t4", "T4", 1, 4, 16, CapacityType.SPOT, 1.0, 2.0)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """a: reserved, team ml, train:r1, 0-4 h. b: aws spot $0.20, no team recorded (pool t4_spot's
    team comes from the config), no workload seen, 0-10 h. c: gcp spot $1.00, team search, serve, 2-6 h."""
    path = tmp_path / "ledger.db"
    with Ledger(path) as led:
        led.record_launch("a", "rmc-local", "t4_spot", RESERVED, "r", at=0.0, job="train:r1", team="ml")
        led.record_launch("b", "rmc-local", "t4_spot", SPOT, "r", at=0.0)
        led.record_launch("c", "rmc-local", "serve", GCP, "r", at=2 * H, job="serve:app/dep", team="search")
        led.record_end("a", at=4 * H, reason="scale-down")
        led.record_end("c", at=6 * H, reason="scale-down")
    return path


def _rows(path: Path) -> list[Any]:
    with Ledger(path, create=False) as led:
        return led.spend(10 * H)


def test_reservation_use_counts_committed_and_used_hours(ledger: Path) -> None:
    (use,) = reservation_use([RES], _rows(ledger), 0.0, 10 * H)
    assert use.committed_hours == pytest.approx(20.0)  # 2 slots x 10 h
    assert use.used_hours == pytest.approx(4.0)  # node a, 0-4 h
    assert use.paid_usd == pytest.approx(20 * 0.33)
    assert use.idle_usd == pytest.approx(16 * 0.33)
    assert use.utilisation == pytest.approx(0.2)


def test_a_reservation_ending_inside_the_window_commits_only_its_hours(ledger: Path) -> None:
    ended = Reservation("aws", "g4dn.xlarge", "us-east-1", 2, 0.33, starts=1 * H, ends=3 * H)
    (use,) = reservation_use([ended], _rows(ledger), 0.0, 10 * H)
    assert use.committed_hours == pytest.approx(4.0)  # 2 slots x (3 h - 1 h)
    assert use.used_hours == pytest.approx(2.0)  # node a inside 1-3 h
    assert use.idle_usd == pytest.approx(2 * 0.33)


def test_report_groups_by_job_shows_idle_cost(ledger: Path) -> None:
    uses = reservation_use([RES], _rows(ledger), 0.0, 10 * H)
    by = {g.key: g for g in report_groups(_rows(ledger), "job", uses)}
    assert set(by) == {"train:r1", "serve:app/dep", "-", UNUSED}
    assert by["train:r1"].spend_usd == pytest.approx(4 * 0.33)  # paid at the term price
    assert by["train:r1"].ondemand_usd == pytest.approx(4 * 0.526)
    assert by["train:r1"].idle_usd == 0
    assert by["-"].idle_usd == pytest.approx(10 * 0.2)  # no workload seen on b
    assert by[UNUSED].spend_usd == pytest.approx(16 * 0.33)
    assert by[UNUSED].ondemand_usd == 0 and by[UNUSED].instances == 0
    t = total(list(by.values()))
    assert t.spend_usd == pytest.approx(1.32 + 2.0 + 4.0 + 5.28)
    assert t.ondemand_usd == pytest.approx(2.104 + 5.26 + 8.0)
    assert t.idle_usd == pytest.approx(2.0 + 5.28)


def _config(tmp_path: Path, ledger: Path) -> Path:
    config = copy.deepcopy(LOCAL)
    config["provider"]["ledger"] = str(ledger)
    config["provider"]["reservations"] = [{"cloud": "aws", "instance_type": "g4dn.xlarge",
                                           "region": "us-east-1", "count": 2, "term_price_per_hour": 0.33,
                                           "team": "ml"}]
    config["available_node_types"]["t4_spot"]["node_config"]["pool"]["team"] = "ml"
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_report_by_team_as_csv_on_stdout(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, ledger)
    argv = ["report", "--config", str(cfg), "--by", "team", "--until", str(10 * H), "--format", "csv"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    by = {r["team"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(by) == {"ml", "search", "TOTAL"}
    # ml: a 1.32 + b 2.00 (its pool's team, from the config) + 16 unused reserved h x 0.33 = 5.28
    assert float(by["ml"]["spend_usd"]) == pytest.approx(8.60)
    assert float(by["ml"]["ondemand_usd"]) == pytest.approx(2.104 + 5.26)
    assert float(by["ml"]["saved_usd"]) == pytest.approx(7.364 - 8.60)
    assert float(by["ml"]["idle_usd"]) == pytest.approx(7.28)
    assert int(by["ml"]["instances"]) == 2
    assert float(by["search"]["spend_usd"]) == pytest.approx(4.0)
    assert float(by["search"]["savings"]) == pytest.approx(0.5)
    assert float(by["TOTAL"]["spend_usd"]) == pytest.approx(12.60)


def test_report_table_png_and_reservations(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, png, out_csv = _config(tmp_path, ledger), tmp_path / "t.png", tmp_path / "t.csv"
    rc = main(["report", "--config", str(cfg), "--by", "pool", "--until", str(10 * H), "--png", str(png),
               "--csv", str(out_csv)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "idle_usd" in out and "reservations" in out
    assert "20.00" in out and "4.00" in out and "$5.28" in out  # committed h, used h, idle $
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by = {r["pool"]: r for r in csv.DictReader(out_csv.open())}
    assert float(by[UNUSED]["idle_usd"]) == pytest.approx(5.28)
    assert float(by["t4_spot"]["spend_usd"]) == pytest.approx(3.32)


def test_an_older_ledger_without_the_team_column_reads_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Ledger(path) as led:
        led.record_launch("a", "c", "p", SPOT, "r", at=0.0)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE instances DROP COLUMN team")
    db.commit()
    db.close()
    with Ledger(path, create=False) as led:  # read-only: no column, no team
        assert [r.team for r in led.spend(H)] == [""]
    with Ledger(path) as led:  # opened for writing: the column is added
        led.set_team("a", "ml")
        assert [r.team for r in led.spend(H)] == ["ml"]


def test_pool_team_is_read_and_checked() -> None:
    assert pool_team("gpu", {"pool": {"team": " ml-research "}}) == "ml-research"
    assert pool_team("gpu", {"pool": {}}) == ""
    assert pool_team("head", {"offer": {}}) == ""
    with pytest.raises(ConfigError) as err:
        pool_team("gpu", {"pool": {"team": 7}})
    assert err.value.key == "available_node_types.gpu.node_config.pool.team"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.booleans(), st.text(max_size=80),
                 st.lists(st.text(), max_size=2)))
def test_any_team_value_is_a_label_or_a_config_error_naming_the_key(value: Any) -> None:
    try:
        team = pool_team("gpu", {"pool": {"team": value}})
    except ConfigError as exc:
        assert exc.key == "available_node_types.gpu.node_config.pool.team"
        return
    assert team == "" if value is None else (0 < len(team) <= 64 and team == team.strip())
    assert all(ord(c) >= 32 and c != "\x7f" for c in team)


# --------------------------------------------------------------------------- teams from jobs' metadata


def test_teams_come_from_the_jobs_whose_workload_actors_ran_on_a_node() -> None:
    from ray_multicloud.attribution import ActorSeen, teams

    actors = [
        ActorSeen("RayTrainWorker", None, "01000000", "n1"),
        ActorSeen("MyActor", None, "02000000", "n1"),
        ActorSeen("ServeController", None, "03000000", "n2"),  # a system actor charges nobody
        ActorSeen("MyActor", None, "04000000", "n3"),  # its job names no team
    ]
    got = teams(actors, {"n1": "i-1", "n2": "i-2", "n3": "i-3"},
                {"01000000": "search", "02000000": "ml", "03000000": "platform"})
    assert got == {"i-1": "ml, search"}


def test_the_controller_charges_nodes_to_their_jobs_team(tmp_path: Path) -> None:
    from fakes import memory_cloud

    from ray_multicloud.attribution import ActorSeen

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        cluster["available_node_types"]["t4_spot"]["node_config"]["pool"]["team"] = "ml"
        provider = memory_cloud.memory_provider(cluster, world)
        a, b = memory_cloud.launch_workers(provider, cluster, count=2)
        seen = [ActorSeen("RayTrainWorker", None, "01000000", f"node-{a.instance_id}")]
        controller = memory_cloud.memory_controller(
            cluster, provider, [1000.0], nodes=memory_cloud.running_gcs(provider, lambda iid: f"node-{iid}"),
            actors=lambda _: seen, job_teams=lambda _: {"01000000": "search"})
        controller.tick()
        with Ledger(tmp_path / "ledger.db", create=False) as led:
            got = {r.instance_id: r.team for r in led.spend()}
    # a ran search's job: charged to search; b ran nothing: its pool's team stands
    assert got == {a.instance_id: "search", b.instance_id: "ml"}
