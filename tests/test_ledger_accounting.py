"""The ledger never under-reports (issue 13, finding 5).

- A node missing from one listing (a cloud's listing lags its launch) stays running in the ledger;
  it ends only after ``missing_lists_to_end`` listings in a row, at the first listing that missed it.
- A launch whose driver raised something other than ``CloudError`` after the cloud created the node
  (an operation wait that timed out) still counts and records that node; a node the ledger never
  heard of (launched by another process) is recorded from its tags.
- An unusable ledger file does not stop the provider, and launches go on (one clear log line).
- ``report`` (``Ledger(create=False)``) opens the file read-only: nothing is written into it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
import time
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import priced_offer
from fakes.memory_cloud import MemoryWorld, launch_workers, memory_cluster, memory_provider

from ray_multicloud import cli
from ray_multicloud.errors import LaunchFailed
from ray_multicloud.ledger import Ledger, LedgerError
from ray_multicloud.types import InstanceId

H = 3600.0


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld]]:
    with memory_cluster(tmp_path) as (config, world):
        config["provider"]["ledger"] = str(tmp_path / "ledger.db")
        yield config, world


def rows(config: dict[str, Any]) -> dict[str, Any]:
    with Ledger(config["provider"]["ledger"], create=False) as led:
        return {r.instance_id: r for r in led.spend()}


def test_a_node_missing_from_one_listing_is_not_ended(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = memory
    provider = memory_provider(config, world)
    provider.missing_grace_s = 0.0
    (node,) = launch_workers(provider, config)
    held = world.instances.pop(node.instance_id)  # the listing lags: the node is not in it
    provider.non_terminated_nodes({})
    assert rows(config)[node.instance_id].ended_at is None
    world.instances[node.instance_id] = held  # back in the next listing: forgiven
    provider.non_terminated_nodes({})
    del world.instances[node.instance_id]
    provider.non_terminated_nodes({})
    provider.non_terminated_nodes({})
    assert rows(config)[node.instance_id].ended_at is None  # missing twice in a row: still running
    provider.non_terminated_nodes({})
    row = rows(config)[node.instance_id]
    assert row.ended_at is not None and "missing from 3 listings in a row" in (row.end_reason or "")


def test_the_grace_time_holds_too(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = memory
    provider = memory_provider(config, world)  # default grace: 60 s
    (node,) = launch_workers(provider, config)
    del world.instances[node.instance_id]
    for _ in range(5):
        provider.non_terminated_nodes({})
    assert rows(config)[node.instance_id].ended_at is None


def test_a_restarted_provider_ends_what_ended_while_it_was_down(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    config, world = memory
    (node,) = launch_workers(memory_provider(config, world), config)
    del world.instances[node.instance_id]  # preempted while no provider ran
    restarted = memory_provider(config, world)
    restarted.missing_grace_s = 0.0
    for _ in range(3):
        restarted.non_terminated_nodes({})
    assert rows(config)[node.instance_id].ended_at is not None


def test_a_launch_that_raised_after_creating_counts_and_records_the_node(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    config, world = memory
    provider = memory_provider(config, world)
    for cloud in provider.clouds.values():
        real = cloud.launch

        def created_then_timed_out(request: Any, real: Any = real) -> Any:
            real(request)
            raise TimeoutError("operation did not finish in 300 s")

        cloud.launch = created_then_timed_out
    (node,) = launch_workers(provider, config)
    assert set(world.instances) == {node.instance_id}
    assert rows(config)[node.instance_id].ended_at is None


def test_a_launch_that_raised_before_creating_fails_typed(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    config, world = memory
    provider = memory_provider(config, world)

    def bad_setting(request: Any) -> Any:
        raise ValueError("could not convert string to float: 'cheap'")

    for cloud in provider.clouds.values():
        cloud.launch = bad_setting
    with pytest.raises(LaunchFailed, match="unexpected ValueError"):
        launch_workers(provider, config)
    assert world.instances == {} and rows(config) == {}


def test_a_node_the_ledger_never_heard_of_is_recorded(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = memory
    other = memory_provider({**config, "provider": {**config["provider"], "ledger": None}}, world)
    (node,) = launch_workers(other, config)  # another process, no ledger
    assert not Path(config["provider"]["ledger"]).exists()
    memory_provider(config, world).non_terminated_nodes({})
    assert rows(config)[node.instance_id].pool == "t4_spot"


@pytest.mark.parametrize("kind", ["directory", "garbage", "newer-schema"])
def test_an_unusable_ledger_does_not_stop_the_provider(
    memory: tuple[dict[str, Any], MemoryWorld], tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    config, world = memory
    path = tmp_path / "bad-ledger"
    if kind == "directory":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"<html>not a database</html>" * 100)
    else:
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 99")
        db.close()
    config["provider"]["ledger"] = str(path)
    with caplog.at_level(logging.ERROR, logger="ray_multicloud.provider"):
        provider = memory_provider(config, world)
        (node,) = launch_workers(provider, config)
    assert node.instance_id in world.instances
    said = [r for r in caplog.records if r.levelno >= logging.ERROR and str(path) in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]


def test_ledger_writes_that_fail_never_fail_a_launch(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = memory
    provider = memory_provider(config, world)

    def broken(*args: Any) -> bool:
        raise RuntimeError("disk on fire")

    provider._ledger.record_launch = broken
    (node,) = launch_workers(provider, config)
    provider.terminate_node(node.instance_id)
    assert world.instances == {}


def _ledger_file(path: Path, wal: bool) -> None:
    with Ledger(path) as led:
        led.record_launch("i-1", "c", "gpu", priced_offer(price=1.0, od=3.0), "r1", at=0.0)
        led.record_end("i-1", at=2 * H, reason="scale-down")
    if not wal:
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode = DELETE")
        db.close()


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_report_writes_nothing_into_the_file_it_reads(tmp_path: Path, wal: bool) -> None:
    path = tmp_path / "copy.db"
    _ledger_file(path, wal)
    before = path.read_bytes()
    assert cli.main(["report", "--ledger", str(path), "--until", str(4 * H)]) == 0
    assert path.read_bytes() == before  # no schema, no journal-mode change, no record
    if not wal:  # a WAL ledger's reader uses SQLite's -shm/-wal side files; a rollback one has none
        assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db"]


def test_reading_a_database_that_is_not_a_ledger_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (x TEXT)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="not a ray_multicloud ledger"):
        Ledger(path, create=False)
    assert path.read_bytes() == before
    assert cli.main(["report", "--ledger", str(path)]) == 2


def test_a_read_only_ledger_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _ledger_file(path, wal=False)
    with Ledger(path, create=False) as led, pytest.raises(LedgerError, match="read-only"):
        led.record_end(InstanceId("i-1"), at=3 * H, reason="x")


def test_a_refused_terminate_leaves_the_node_running_in_the_ledger(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    from ray_multicloud.errors import CloudError

    config, world = memory
    provider = memory_provider(config, world)
    (node,) = launch_workers(provider, config)
    cloud = provider.clouds[node.cloud]
    real = cloud.terminate

    def refuse(instance_id: Any) -> None:
        raise CloudError(node.cloud, "UnauthorizedOperation")

    cloud.terminate = refuse
    with pytest.raises(CloudError):
        provider.terminate_node(node.instance_id)
    assert rows(config)[node.instance_id].ended_at is None  # it still runs, and is billed
    cloud.terminate = real
    provider.terminate_node(node.instance_id)
    assert rows(config)[node.instance_id].end_reason == "terminated by the provider (scale-down or teardown)"


def test_a_launch_records_why_its_offer_was_chosen(tmp_path: Path) -> None:
    """The placement's reasons reach the ledger (the dashboard's decisions show them), and a ledger
    written before the column existed gains it when opened for writing."""
    import sqlite3

    from fakes import memory_cloud

    from ray_multicloud.dashboard.ledger_view import LedgerView

    old = tmp_path / "old.db"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE instances (instance_id TEXT PRIMARY KEY, cluster TEXT NOT NULL, pool TEXT NOT NULL,"
               " request_id TEXT NOT NULL, job TEXT, cloud TEXT NOT NULL, region TEXT NOT NULL, zone TEXT NOT NULL,"
               " instance_type TEXT NOT NULL, capacity TEXT NOT NULL, offer_id TEXT NOT NULL,"
               " ondemand_price REAL NOT NULL, launched_at REAL NOT NULL, ended_at REAL, end_reason TEXT)")
    db.commit()
    db.close()
    with Ledger(old):
        pass
    assert "launch_reason" in {r[1] for r in sqlite3.connect(old).execute("PRAGMA table_info(instances)")}

    with memory_cloud.memory_cluster(tmp_path / "state") as (cluster, world):
        cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
        provider = memory_cloud.memory_provider(cluster, world)
        (inst,) = memory_cloud.launch_workers(provider, cluster)
    row = sqlite3.connect(tmp_path / "ledger.db").execute(
        "SELECT launch_reason FROM instances WHERE instance_id = ?", (inst.instance_id,)).fetchone()
    assert row is not None and "cheapest" in row[0]
    assert LedgerView is not None


def test_ray_down_ends_a_node_that_was_gone_before_it(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    """The demo's last spot node: the head's autoscaler terminated it (idle scale-down) and `ray
    down` killed that monitor before its ledger write. `ray down`'s provider, terminating the head,
    ends it at the first listing that missed it, not as an interruption; a node some cloud still
    has stays open until it is terminated."""
    from ray.autoscaler.tags import NODE_KIND_HEAD, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

    config, world = memory
    monitor = memory_provider(config, world)  # the head's autoscaler
    head_type = config["available_node_types"]["head"]
    (head,) = monitor.create_node(
        head_type["node_config"], {TAG_RAY_NODE_KIND: NODE_KIND_HEAD, TAG_RAY_USER_NODE_TYPE: "head"}, 1)
    (gone,) = launch_workers(monitor, config, request="r1")
    (kept,) = launch_workers(monitor, config, request="r2")
    del world.instances[gone.instance_id]  # terminated; the monitor died before recording it

    down = memory_provider(config, world)  # `ray down`'s provider
    before = time.time()
    assert sorted(down.non_terminated_nodes({})) == sorted([head, kept.instance_id])
    after = time.time()
    down.terminate_node(head)
    ledger = rows(config)
    assert ledger[head].ended_at is not None
    assert ledger[kept.instance_id].ended_at is None  # its cloud still has it: `ray down` ends it next
    ended = ledger[gone.instance_id]
    assert ended.ended_at is not None and before <= ended.ended_at <= after
    assert (ended.end_reason or "").startswith("gone at teardown")
    with Ledger(config["provider"]["ledger"], create=False) as led:
        lives = {loc_start[1]: loc_start[3] for loc_start in led.spot_lives(0.0)}
    assert lives[ended.launched_at] is False  # not counted as an interruption
