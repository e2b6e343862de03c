"""A running Train job's progress read from its checkpoints, and fed into the controller's deadline moves.

The estimate is checked on hand-computed points; the reader on real checkpoint directories written
with ``write_checkpoint`` (corrupted and half-written ones among them); the ``--deadline-job`` parser
on good and bad values; and the controller on in-memory clouds: a run with too little slack makes the
controller's config carry the job, and the policy then moves its spot node to on-demand.
"""

from __future__ import annotations

import calendar
import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import memory_cloud

from ray_multicloud.controller import Controller, JobFeed, main, parse_deadline_job
from ray_multicloud.policy.rebalance import JobProgress, RebalanceConfig, plan
from ray_multicloud.train.checkpoint import MANIFEST, write_checkpoint
from ray_multicloud.train.progress import (
    CheckpointPoint,
    DeadlineJob,
    RunWatch,
    job_progress,
    scan_run,
)
from ray_multicloud.types import CapacityType

T0 = float(calendar.timegm((2026, 11, 28, 12, 0, 0)))
DEADLINE = T0 + 10 * 3600
H = 1.0 / 600.0  # hours per step of POINTS: 200 steps in 1200 s = 6 s a step
POINTS = (
    CheckpointPoint(100, T0, "checkpoint_a"),
    CheckpointPoint(200, T0 + 600, "checkpoint_b"),
    CheckpointPoint(300, T0 + 1200, "checkpoint_c"),
)


def estimate(points: Any = POINTS, *, now: float = T0 + 1200, total: int = 1000) -> JobProgress | None:
    return job_progress(points, total_steps=total, submitted_at=T0, deadline_at=DEADLINE, now=now)


# --------------------------------------------------------------------------- the pure estimate


def test_estimate_from_three_checkpoints() -> None:
    got = estimate()
    assert got is not None
    assert got.work_total_hours == pytest.approx(1000 * H) == pytest.approx(5 / 3)
    assert got.checkpointed_hours == pytest.approx(0.5)
    assert got.checkpoint_hours == pytest.approx(1 / 6)
    assert got.work_done_hours == pytest.approx(0.5)  # read right at the newest checkpoint
    assert (got.submitted_at, got.deadline_at) == (T0, DEADLINE)
    # Order of the points does not matter: they are ordered by created_at.
    assert estimate(tuple(reversed(POINTS))) == got


@pytest.mark.parametrize(
    ("since_s", "done_hours"),
    [
        (0, 0.5),
        (300, 0.5 + 300 / 3600),  # work goes on at the estimated rate after the newest checkpoint...
        (600, 0.5 + 1 / 6),
        (3600, 0.5 + 1 / 6),  # ...but never more than one checkpoint interval past it
        (-60, 0.5),  # a head clock behind the worker's: no negative work
    ],
)
def test_work_done_is_capped_at_one_checkpoint_interval(since_s: float, done_hours: float) -> None:
    got = estimate(now=T0 + 1200 + since_s)
    assert got is not None
    assert got.work_done_hours == pytest.approx(done_hours)
    assert got.checkpointed_hours == pytest.approx(0.5)


def test_checkpoint_interval_is_the_widest_gap() -> None:
    # A just-in-time checkpoint at 137, and the one at 200 skipped (corrupt): 137 -> 300 is the widest gap.
    points = (
        CheckpointPoint(100, T0),
        CheckpointPoint(137, T0 + 222),
        CheckpointPoint(300, T0 + 1200),
        CheckpointPoint(400, T0 + 1800),
    )
    got = estimate(points, now=T0 + 1800)
    assert got is not None
    assert got.checkpoint_hours == pytest.approx(163 * H)  # 137 -> 300
    assert got.work_total_hours == pytest.approx(5 / 3)  # (1800 s / 300 steps) x 1000


def test_a_run_past_total_steps_counts_as_done() -> None:
    got = estimate(now=T0 + 5000, total=250)
    assert got is not None
    assert got.checkpointed_hours == got.work_done_hours == got.work_total_hours == pytest.approx(250 * H)


@pytest.mark.parametrize(
    "points",
    [
        (),
        POINTS[:1],
        (CheckpointPoint(300, T0), CheckpointPoint(300, T0 + 600)),  # restarted, no step gained
        (CheckpointPoint(100, T0), CheckpointPoint(200, T0)),  # no time between them
        (CheckpointPoint(300, T0), CheckpointPoint(200, T0 + 600)),  # fell back to an older one
    ],
)
def test_no_estimate_without_two_checkpoints_apart(points: tuple[CheckpointPoint, ...]) -> None:
    assert estimate(points) is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": -5}, "total_steps"),
        ({"total_steps": 2.5}, "total_steps"),
        ({"total_steps": True}, "total_steps"),
        ({"deadline_at": T0}, "deadline_at"),
        ({"deadline_at": T0 - 1}, "deadline_at"),
        ({"now": float("nan")}, "now"),
    ],
)
def test_bad_inputs_name_what_is_wrong(kwargs: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {"total_steps": 1000, "submitted_at": T0, "deadline_at": DEADLINE, "now": T0}
    with pytest.raises(ValueError, match=needle):
        job_progress(POINTS, **{**args, **kwargs})


# --------------------------------------------------------------------------- the reader, on real directories


def checkpoint(run: Path, name: str, step: int | None, *, at: float | None = None) -> Path:
    """A real checkpoint of ``step`` under ``run``; ``at`` backdates its manifest's ``created_at`` (the
    manifest is not among the hashed files, so it still verifies)."""
    meta = {} if step is None else {"step": step, "why": "epoch"}

    def state(d: Path) -> None:
        (d / "state.pt").write_bytes(b"x" * 4096)

    path = write_checkpoint(run, state, name=name, metadata=meta)
    if at is not None:
        body = json.loads((path / MANIFEST).read_text())
        body["created_at"] = at
        (path / MANIFEST).write_text(json.dumps(body))
    return path


def test_scan_keeps_complete_checkpoints_and_skips_the_rest(tmp_path: Path) -> None:
    run = tmp_path / "run"
    checkpoint(run, "checkpoint_2026-11-28_12-00-00.000000", 100, at=T0)
    checkpoint(run, "checkpoint_2026-11-28_12-10-00.000000", 200, at=T0 + 600)
    flipped = checkpoint(run, "checkpoint_2026-11-28_12-20-00.000000", 300)
    (flipped / "state.pt").write_bytes(b"y" * 4096)  # same size, other bytes
    cut = checkpoint(run, "checkpoint_2026-11-28_12-30-00.000000", 400)
    (cut / "state.pt").write_bytes(b"x" * 10)
    uploading = run / "checkpoint_2026-11-28_12-40-00.000000"  # Ray still copying it: no manifest yet
    uploading.mkdir()
    (uploading / "state.pt").write_bytes(b"x")
    checkpoint(run, "checkpoint_2026-11-28_12-50-00.000000", None)  # no step in its metadata
    half = run / ".tmp-abc123"  # write_checkpoint's leftover of a crash: never read
    half.mkdir()
    (half / "state.pt").write_bytes(b"x")
    (run / "checkpoint_manager_snapshot.json").write_text("{}")
    (run / "hang_detector").mkdir()

    scan = scan_run(run)

    assert [(p.step, p.created_at) for p in scan.points] == [(100, T0), (200, T0 + 600)]
    assert len(scan.skipped) == 4
    why = "\n".join(scan.skipped)
    for needle in ("sha256", "truncated", "no MANIFEST.json", "no step"):
        assert needle in why
    assert ".tmp-" not in why and "hang_detector" not in why


def test_scan_of_a_run_not_started_yet_is_empty(tmp_path: Path) -> None:
    assert scan_run(tmp_path / "nothing-here") == scan_run(tmp_path) == scan_run(tmp_path / "x", known=POINTS)
    assert scan_run(tmp_path).points == ()


def test_known_checkpoints_are_not_hashed_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = checkpoint(run, "checkpoint_1", 100, at=T0)
    first = scan_run(run)
    (path / "state.pt").write_bytes(b"y" * 4096)
    # Complete checkpoints are immutable by contract: one verified before is taken as it was.
    assert scan_run(run, known=first.points) == first
    assert scan_run(run).points == ()


def test_run_watch_on_real_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run"
    watch = RunWatch(DeadlineJob("t4_spot", str(run), 1000, DEADLINE))
    empty = watch.read(T0 - 60)
    assert empty.progress is None and "0 complete checkpoint" in empty.note
    checkpoint(run, "checkpoint_1", 100, at=T0)
    one = watch.read(T0 + 60)
    assert one.progress is None and "needs two" in one.note
    checkpoint(run, "checkpoint_2", 200, at=T0 + 600)
    checkpoint(run, "checkpoint_3", 300, at=T0 + 1200)
    got = watch.read(T0 + 1500)
    assert got.note == "" and got.progress == estimate(now=T0 + 1500)


# --------------------------------------------------------------------------- the --deadline-job flag

NOW = T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "t4_spot=/data/run,1000,2026-11-29T06:00:00Z",
            DeadlineJob("t4_spot", "/data/run", 1000, T0 + 18 * 3600),
        ),
        (
            "t4_spot=/data/run,1000,2026-11-29T07:00:00+01:00",
            DeadlineJob("t4_spot", "/data/run", 1000, T0 + 18 * 3600),
        ),
        ("t4_spot=/data/run,1000,+2.5", DeadlineJob("t4_spot", "/data/run", 1000, T0 + 9000)),
        (" p = /a,b/run , 10 , +1 ", DeadlineJob("p", "/a,b/run", 10, T0 + 3600)),
    ],
)
def test_parse_deadline_job(text: str, expected: DeadlineJob) -> None:
    assert parse_deadline_job(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no POOL="),
        ("t4_spot", "no POOL="),
        ("=/r,1,+1", "no POOL="),
        ("t4=/r,1", "three comma-separated fields"),
        ("t4=/r,,+1", "three comma-separated fields"),
        ("t4=/r,abc,+1", "TOTAL_STEPS 'abc' is not a whole number"),
        ("t4=/r,0,+1", "TOTAL_STEPS must be > 0"),
        ("t4=/r,10,+soon", "is not +HOURS"),
        ("t4=/r,10,+0", "positive, finite"),
        ("t4=/r,10,+nan", "positive, finite"),
        ("t4=/r,10,2026-11-29T06:00:00", "no time zone"),
        ("t4=/r,10,tomorrow", "not an ISO-8601 time"),
        ("t4=/r,10,2026-11-28T11:00:00Z", "not in the future"),
        ("t4=s3://bucket/run,10,+1", "remote"),
    ],
)
def test_bad_deadline_job_names_the_flag_and_the_form(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_deadline_job(text, now=NOW)
    assert needle in str(err.value)
    assert str(err.value).startswith("--deadline-job ")
    assert "POOL=RUN_DIR,TOTAL_STEPS,DEADLINE" in str(err.value)


def test_main_rejects_a_bad_deadline_job(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--config", "never-read.yaml", "--deadline-job", "t4_spot=/r,many,+1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--deadline-job" in err and "POOL=RUN_DIR,TOTAL_STEPS,DEADLINE" in err


# ------------------------------------------------------------------- the controller, on in-memory clouds



@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[dict[str, Any], memory_cloud.MemoryWorld]]:
    with memory_cloud.memory_cluster(tmp_path / "state") as (config, world):
        yield _with_ondemand_t4(config), world


@pytest.fixture
def cluster(memory: tuple[dict[str, Any], memory_cloud.MemoryWorld]) -> dict[str, Any]:
    return memory[0]


@pytest.fixture
def world(memory: tuple[dict[str, Any], memory_cloud.MemoryWorld]) -> memory_cloud.MemoryWorld:
    return memory[1]


def _with_ondemand_t4(config: dict[str, Any]) -> dict[str, Any]:
    # A deadline job needs an on-demand rescue: let the T4 pool buy on-demand too (so its nodes no
    # longer all carry the spot market label).
    t4 = config["available_node_types"]["t4_spot"]
    t4["node_config"]["pool"]["capacity_types"] = ["spot", "on-demand"]
    t4.pop("labels", None)
    return config


def spot_controller(cluster: dict[str, Any], world: memory_cloud.MemoryWorld) -> Controller:
    provider = memory_cloud.memory_provider(cluster, world)
    memory_cloud.launch_workers(provider, cluster, request="r1")
    controller = Controller(cluster, config=RebalanceConfig(), provider=provider)
    [node] = controller.provider.fleet()
    assert node.offer.capacity is CapacityType.SPOT  # cheapest first: the node sits on spot
    return controller


def test_a_run_with_too_little_slack_drives_a_deadline_move(
    cluster: dict[str, Any], world: memory_cloud.MemoryWorld, tmp_path: Path
) -> None:
    controller = spot_controller(cluster, world)
    run = tmp_path / "train" / "llm-ft"
    for i, step in enumerate((100, 200, 300)):
        checkpoint(run, f"checkpoint_{i}", step, at=T0 + 600 * i)
    now = T0 + 1200
    # 700 steps x 6 s = 1.167 h of work left from the newest checkpoint, 1.22 h to the deadline: on
    # on-demand now (a 0.05 h restart) it makes it, but not after one more tick on spot and a preemption.
    deadline = now + 1.22 * 3600
    feed = JobFeed(controller, [DeadlineJob("t4_spot", str(run), 1000, deadline)])

    feed(now)

    expected = job_progress(
        scan_run(run).points, total_steps=1000, submitted_at=T0, deadline_at=deadline, now=now
    )
    assert controller.config.jobs == {"t4_spot": expected}
    answer = plan(
        controller.provider.fleet(),
        controller.provider.offers.index(),
        controller.pools,
        now=now,
        config=controller.config,
        last_moved={},
    )
    [move] = answer.moves
    assert move.to_offer.capacity is CapacityType.ON_DEMAND
    assert move.reasons[0].startswith("deadline move")


def test_feed_clears_the_job_until_an_estimate_exists(
    cluster: dict[str, Any], world: memory_cloud.MemoryWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    controller = spot_controller(cluster, world)
    controller.set_job("t4_spot", estimate())
    run = tmp_path / "run"
    checkpoint(run, "checkpoint_0", 100, at=T0)
    feed = JobFeed(controller, [DeadlineJob("t4_spot", str(run), 1000, DEADLINE)])
    with caplog.at_level(logging.INFO, logger="ray_multicloud.controller"):
        feed(T0 + 60)
        feed(T0 + 120)
    assert controller.config.jobs == {}
    notes = [r.getMessage() for r in caplog.records if "needs two" in r.getMessage()]
    assert len(notes) == 1 and "t4_spot" in notes[0]  # said once, not every tick


def test_main_feeds_deadline_jobs_and_checks_their_pools(
    cluster: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # The command line builds its clouds from the YAML through the driver registry: the shipped
    # local drivers, which start nothing until a launch (and this controller launches nothing).
    real = copy.deepcopy(cluster)
    for spec in real["provider"]["clouds"].values():
        spec["driver"] = {"memory": "local", "memory-private": "private"}[spec["driver"]]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(real))
    base = ["--config", str(path), "--once", "--no-metrics"]
    with pytest.raises(SystemExit):
        main([*base, "--deadline-job", f"nosuch={tmp_path / 'run'},10,+1"])
    assert "'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--deadline-job", "t4_spot=/a,10,+1", "--deadline-job", "t4_spot=/b,10,+1"])
    assert "more than once" in capsys.readouterr().err
    with caplog.at_level(logging.INFO, logger="ray_multicloud.controller"):
        assert main([*base, "--deadline-job", f"t4_spot={tmp_path / 'run'},10,+1"]) == 0
    assert any("deadline job of t4_spot: 0 complete checkpoint" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- the reader, through pyarrow


def test_scan_through_a_storage_uri_matches_the_local_scan(tmp_path: Path) -> None:
    run = tmp_path / "run"
    checkpoint(run, "checkpoint_1", 100, at=T0)
    checkpoint(run, "checkpoint_2", 200, at=T0 + 600)
    flipped = checkpoint(run, "checkpoint_3", 300, at=T0 + 1200)
    (flipped / "state.pt").write_bytes(b"y" * 4096)  # same size, other bytes
    (run / "checkpoint_4").mkdir()  # still being written: no manifest

    local = scan_run(run)
    uri = scan_run(f"file://{run}")  # read through pyarrow.fs; a local filesystem is still hashed

    assert [(p.step, p.created_at, p.name) for p in uri.points] == [
        (100, T0, "checkpoint_1"),
        (200, T0 + 600, "checkpoint_2"),
    ]
    assert uri.points == local.points and uri.error == ""
    assert len(uri.skipped) == 2 and "sha256" in uri.skipped[0] and "no MANIFEST.json" in uri.skipped[1]
    # Sizes only (the default for object stores): the flipped one is taken.
    assert [p.step for p in scan_run(f"file://{run}", check_hashes=False).points] == [100, 200, 300]
    assert scan_run(f"file://{tmp_path / 'not-yet'}") == scan_run(tmp_path / "not-yet") == scan_run(tmp_path)


def test_run_watch_uses_the_registered_submission(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for i, step in enumerate((100, 200, 300)):
        checkpoint(run, f"checkpoint_{i}", step, at=T0 + 600 * i)
    job = DeadlineJob("t4_spot", f"file://{run}", 1000, DEADLINE, "c", "run", T0 - 3600)
    got = RunWatch(job).read(T0 + 1200).progress
    assert got is not None and got.submitted_at == T0 - 3600
    assert got.checkpointed_hours == pytest.approx(0.5) and got.work_total_hours == pytest.approx(5 / 3)


# ------------------------------------------------------- jobs that declared their own deadline


def test_feed_finds_registered_jobs_follows_them_and_drops_them(
    cluster: dict[str, Any], world: memory_cloud.MemoryWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ray_multicloud.train.runconfig import register_job

    controller = spot_controller(cluster, world)
    root = tmp_path / "train"
    name = cluster["cluster_name"]
    register_job(
        str(root), cluster=name, name="llm-ft", pool="t4_spot", total_steps=1000,
        deadline_at=DEADLINE, now=T0,
    )  # fmt: skip
    register_job(
        str(root), cluster=name, name="other", pool="head", total_steps=10, deadline_at=DEADLINE, now=T0
    )
    for i, step in enumerate((100, 200, 300)):
        checkpoint(root / "llm-ft", f"checkpoint_{i}", step, at=T0 + 600 * i)
    feed = JobFeed(controller, roots=[str(root)], discover_every_s=30)
    with caplog.at_level(logging.INFO, logger="ray_multicloud.controller"):
        feed(T0 + 1200)
        feed(T0 + 1210)  # within discover_every_s: no second discovery, no second warning
    # The hand-checked estimate above (6 s a step, submitted at T0), 10 s after the newest checkpoint.
    assert controller.config.jobs == {"t4_spot": estimate(now=T0 + 1210)}
    assert controller.config.jobs["t4_spot"].work_done_hours == pytest.approx(0.5 + 10 / 3600)
    warned = [r.getMessage() for r in caplog.records if "not movable" in r.getMessage()]
    assert len(warned) == 1 and "'head'" in warned[0]

    (root / "llm-ft" / "rmc-job.json").unlink()
    feed(T0 + 1300)
    assert controller.config.jobs == {}
    assert feed.watches == {}


def test_feed_flag_wins_over_a_registered_job_of_the_same_pool(
    cluster: dict[str, Any], world: memory_cloud.MemoryWorld, tmp_path: Path
) -> None:
    from ray_multicloud.train.runconfig import register_job

    controller = spot_controller(cluster, world)
    root = tmp_path / "train"
    register_job(
        str(root), cluster=cluster["cluster_name"], name="reg", pool="t4_spot", total_steps=5,
        deadline_at=DEADLINE, now=T0,
    )  # fmt: skip
    flagged = DeadlineJob("t4_spot", str(tmp_path / "flagged"), 1000, DEADLINE)
    feed = JobFeed(controller, [flagged], roots=[str(root)])
    feed(T0 + 60)
    assert feed.watches["t4_spot"].job == flagged


def test_unreadable_storage_leaves_the_pool_on_price_alone_with_one_line(
    cluster: dict[str, Any], world: memory_cloud.MemoryWorld, caplog: pytest.LogCaptureFixture
) -> None:
    controller = spot_controller(cluster, world)
    controller.set_job("t4_spot", estimate())

    class Broken:
        def __call__(self, roots: Any, *, cluster_name: str, now: float) -> Any:
            from ray_multicloud.train.jobs import Discovery

            return Discovery(jobs=(), problems=(f"{roots[0]}: cannot list (request id {now})",))

    feed = JobFeed(controller, roots=["s3://bucket/train"], discover_every_s=0, discover=Broken())
    with caplog.at_level(logging.INFO, logger="ray_multicloud.controller"):
        feed(T0)
        feed(T0 + 10)
    lines = [r.getMessage() for r in caplog.records if "s3://bucket/train" in r.getMessage()]
    assert len(lines) == 1  # the cause's text varies tick to tick; the path is said once
    # The pool had no discovered job to drop; its flag-less job stays as declared by set_job.
    assert "t4_spot" in controller.config.jobs


def test_measure_takes_the_newest_checkpoints_size(
    cluster: dict[str, Any], world: memory_cloud.MemoryWorld, tmp_path: Path
) -> None:
    cluster["available_node_types"]["t4_spot"]["node_config"]["migration"] = {"checkpoint_gb": "measure"}
    controller = spot_controller(cluster, world)
    assert controller.pool_config("t4_spot").state_gb == 20.0  # nothing measured yet: the default
    run = tmp_path / "run"
    for i, step in enumerate((100, 200)):
        checkpoint(run, f"checkpoint_{i}", step, at=T0 + 600 * i)
    JobFeed(controller, [DeadlineJob("t4_spot", str(run), 1000, DEADLINE)])(T0 + 1200)
    # checkpoint() writes one 4096-byte file: 4096 / 1e9 GB.
    assert controller.pool_config("t4_spot").state_gb == pytest.approx(4.096e-6)
