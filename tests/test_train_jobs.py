"""Train jobs that declare their own deadline, and the head that finds them.

``run_config(..., deadline=...)`` is checked argument by argument (each bad input a ``ConfigError``
naming it, nothing written) and registers the job's manifest; ``discover_jobs`` finds it on a local
directory and on ``s3://`` served by moto's S3 server on 127.0.0.1 (pyarrow reaches it through
``AWS_ENDPOINT_URL``), where ``RunWatch`` then reads the job's progress from uploaded checkpoints,
and says so in one note when the storage cannot be read. ``parse_manifest`` is checked by hand and
by Hypothesis: any text is a job or a ``ValueError``, and a valid manifest round-trips. Expected
values are written out by hand.
"""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ray_multicloud.cluster_config.provider_section import ProviderSettings, load_settings
from ray_multicloud.errors import ConfigError
from ray_multicloud.train.checkpoint import MANIFEST, write_checkpoint
from ray_multicloud.train.jobs import Discovery, discover_jobs, parse_manifest, storage_roots
from ray_multicloud.train.progress import DeadlineJob, RunWatch
from ray_multicloud.train.runconfig import register_job, render_manifest, run_config

Y2099 = float(calendar.timegm((2099, 1, 1, 0, 0, 0)))  # 4070908800
T0 = float(calendar.timegm((2026, 11, 28, 12, 0, 0)))

NODE_TYPES: dict[str, Any] = {
    "head": {
        "resources": {"CPU": 1},
        "node_config": {
            "offer": {
                "cloud": "aws",
                "region": "us-east-1",
                "zone": "use1-az1",
                "instance_type": "m5.xlarge",
                "capacity": "on-demand",
                "price_per_hour": 0.192,
            }
        },
    },
    "t4_spot": {"node_config": {"pool": {"accelerator": "T4", "capacity_types": ["spot"]}}},
    "a100_ondemand": {"node_config": {"pool": {"accelerator": "A100", "capacity_types": ["on-demand"]}}},
}


def cluster(
    state_dir: Path,
    *,
    train_storage: str | None = None,
    clouds: dict[str, Any] | None = None,
    node_types: dict[str, Any] | None = None,
) -> dict[str, Any]:
    provider: dict[str, Any] = {
        "type": "external",
        "module": "ray_multicloud.provider.MultiCloudNodeProvider",
        "gcs_address": "127.0.0.1:1",
        "state_dir": str(state_dir),
        "clouds": clouds or {"aws": {"driver": "local"}, "gcp": {"driver": "local"}},
    }
    if train_storage is not None:
        provider["train_storage"] = train_storage
    return {
        "cluster_name": "c",
        "provider": provider,
        "available_node_types": NODE_TYPES if node_types is None else node_types,
    }


@pytest.fixture(autouse=True)
def no_storage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RMC_TRAIN_STORAGE", raising=False)


def read_json(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())
    return body


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# --------------------------------------------------------------------------- registration


def test_run_config_registers_a_deadline_job(tmp_path: Path) -> None:
    before = time.time()
    cfg = run_config(cluster(tmp_path), name="llm-ft", deadline=timedelta(hours=10), total_steps=1000)
    after = time.time()

    assert cfg.storage_path == str(tmp_path / "train")
    body = read_json(tmp_path / "train" / "llm-ft" / "rmc-job.json")
    assert set(body) == {"version", "cluster", "name", "pool", "total_steps", "deadline_at", "submitted_at"}
    assert (body["version"], body["cluster"], body["name"]) == (1, "c", "llm-ft")
    assert (body["pool"], body["total_steps"]) == ("t4_spot", 1000)  # the cluster's one spot pool
    assert before <= body["submitted_at"] <= after
    assert before + 36000 <= body["deadline_at"] <= after + 36000
    assert files_under(tmp_path / "train") == ["llm-ft", "llm-ft/rmc-job.json"]  # no temporary left


@pytest.mark.parametrize(
    ("deadline", "deadline_at"),
    [
        ("2099-01-01T00:00:00Z", Y2099),
        ("2099-01-01T01:00:00+01:00", Y2099),
        (datetime(2099, 1, 1, tzinfo=UTC), Y2099),
        (datetime(2098, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5))), Y2099),
    ],
)
def test_deadline_forms(tmp_path: Path, deadline: Any, deadline_at: float) -> None:
    run_config(cluster(tmp_path), name="j", deadline=deadline, total_steps=5, pool="t4_spot")
    assert read_json(tmp_path / "train" / "j" / "rmc-job.json")["deadline_at"] == deadline_at


def test_a_resume_keeps_the_first_submission(tmp_path: Path) -> None:
    storage = str(tmp_path / "train")
    first = register_job(
        storage, cluster="c", name="j", pool="t4_spot", total_steps=100, deadline_at=T0 + 7200, now=T0
    )
    again = register_job(
        storage, cluster="c", name="j", pool="t4_spot", total_steps=300, deadline_at=T0 + 9000, now=T0 + 600
    )
    assert first.submitted_at == again.submitted_at == T0
    assert again == DeadlineJob("t4_spot", str(tmp_path / "train" / "j"), 300, T0 + 9000, "c", "j", T0)
    body = read_json(tmp_path / "train" / "j" / "rmc-job.json")
    assert (body["submitted_at"], body["deadline_at"], body["total_steps"]) == (T0, T0 + 9000, 300)
    # The script run again for real: its run_config keeps the submission too.
    run_config(cluster(tmp_path), name="j", deadline="2099-01-01T00:00:00Z", total_steps=300)
    body = read_json(tmp_path / "train" / "j" / "rmc-job.json")
    assert (body["submitted_at"], body["deadline_at"]) == (T0, Y2099)


def test_an_unreadable_old_manifest_is_replaced(tmp_path: Path) -> None:
    run = tmp_path / "train" / "j"
    run.mkdir(parents=True)
    (run / "rmc-job.json").write_text("{half")
    job = register_job(
        str(tmp_path / "train"), cluster="c", name="j", pool="p", total_steps=1, deadline_at=T0 + 1, now=T0
    )
    assert job.submitted_at == T0 and read_json(run / "rmc-job.json")["submitted_at"] == T0


def test_total_steps_without_a_deadline_registers_nothing(tmp_path: Path) -> None:
    cfg = run_config(cluster(tmp_path), name="j", total_steps=1000)
    assert cfg.storage_path == str(tmp_path / "train")
    assert files_under(tmp_path) == []


def test_storage_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared, env, explicit = tmp_path / "shared", tmp_path / "env", tmp_path / "explicit"
    yaml = cluster(tmp_path / "state", train_storage=str(shared))
    assert run_config(yaml, name="j").storage_path == str(shared)
    monkeypatch.setenv("RMC_TRAIN_STORAGE", str(env))
    assert run_config(yaml, name="j").storage_path == str(env)
    assert run_config(yaml, name="j", storage_path=str(explicit)).storage_path == str(explicit)
    monkeypatch.delenv("RMC_TRAIN_STORAGE")
    run_config(yaml, name="j", deadline=timedelta(hours=1), total_steps=10)
    assert files_under(shared) == ["j", "j/rmc-job.json"]


SETTINGS_ONLY = load_settings(
    {
        "gcs_address": "127.0.0.1:1",
        "state_dir": "/tmp/rmc-jobs-unused",
        "clouds": {"aws": {"driver": "local"}},
    },
    "c",
)
TWO_SPOT = {**NODE_TYPES, "v100": {"node_config": {"pool": {"accelerator": "V100"}}}}  # default: spot too
NO_SPOT = {"a100_ondemand": NODE_TYPES["a100_ondemand"]}


@pytest.mark.parametrize(
    ("kwargs", "key", "needle"),
    [
        ({"deadline": "2020-01-01T00:00:00Z"}, "deadline", "2020-01-01T00:00:00+00:00 is not in the future"),
        ({"deadline": datetime(2099, 1, 1)}, "deadline", "has no time zone"),
        ({"deadline": "2099-01-01T00:00:00"}, "deadline", "has no time zone; end it with Z"),
        ({"deadline": "tomorrow"}, "deadline", "'tomorrow' is not an ISO-8601 time"),
        ({"deadline": timedelta(0)}, "deadline", "is not positive"),
        ({"deadline": timedelta(hours=-1)}, "deadline", "is not positive"),
        ({"deadline": 4070908800}, "deadline", "got int 4070908800; pass an aware datetime"),
        ({"total_steps": None}, "total_steps", "a deadline needs total_steps="),
        ({"total_steps": 0}, "total_steps", "got 0; pass a whole number > 0"),
        ({"total_steps": -3}, "total_steps", "got -3"),
        ({"total_steps": 2.5}, "total_steps", "got 2.5"),
        ({"total_steps": True}, "total_steps", "got True"),
        ({"total_steps": "100"}, "total_steps", "got '100'"),
        ({"pool": "t4spot"}, "pool", "'t4spot' is not a pool of this cluster"),
        ({"pool": "head"}, "pool", "(node types with a node_config.pool: a100_ondemand, t4_spot)"),
        ({"pool": ""}, "pool", "pass the node type name"),
        ({"pool": None, "node_types": TWO_SPOT}, "pool", "has 2 pools that buy spot (t4_spot, v100)"),
        ({"pool": None, "node_types": NO_SPOT}, "pool", "has 0 pools that buy spot (none)"),
        ({"pool": None, "cluster": SETTINGS_ONLY}, "pool", "given as ProviderSettings"),
        ({"name": "team/llm-ft"}, "name", "one directory name"),
        (
            {"storage_path": "elsewhere"},
            "storage_path",
            "is not where the controller looks for deadline jobs",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_inputs_name_the_argument_and_write_nothing(
    tmp_path: Path, kwargs: dict[str, Any], key: str, needle: str
) -> None:
    args: dict[str, Any] = {
        "name": "j",
        "deadline": timedelta(hours=5),
        "total_steps": 1000,
        "pool": "t4_spot",
    }
    args.update(kwargs)
    if args.get("storage_path") == "elsewhere":
        args["storage_path"] = str(tmp_path / "elsewhere")
    where = args.pop("cluster", None) or cluster(tmp_path, node_types=args.pop("node_types", None))
    args.pop("node_types", None)
    with pytest.raises(ConfigError) as err:
        run_config(where, **args)
    assert err.value.key == key
    assert needle in str(err.value)
    assert files_under(tmp_path) == []


def test_unreachable_local_storage_says_what_to_change(tmp_path: Path) -> None:
    (tmp_path / "train").write_text("a file where the storage directory should be")
    with pytest.raises(ConfigError) as err:
        run_config(cluster(tmp_path), name="j", deadline=timedelta(hours=1), total_steps=10)
    assert err.value.key == "storage_path"
    assert f"cannot reach {tmp_path / 'train' / 'j'}/rmc-job.json" in str(err.value)
    assert "pass another storage_path / set provider.train_storage" in str(err.value)


# --------------------------------------------------------------------------- where the head looks

REAL = {"aws": {"driver": "aws"}, "onprem": {"driver": "private"}}


def settings_of(yaml: dict[str, Any]) -> ProviderSettings:
    return load_settings(yaml["provider"], yaml["cluster_name"])


@pytest.mark.parametrize(
    ("train_storage", "env", "clouds", "expected"),
    [
        (None, None, None, ("{tmp}/state/train",)),
        ("{tmp}/shared", None, None, ("{tmp}/shared",)),
        ("s3://b/train", "gs://b/train", REAL, ("s3://b/train", "gs://b/train")),
        ("s3://b/train", "s3://b/train", REAL, ("s3://b/train",)),
        (None, "abfs://c@acct/train", REAL, ("abfs://c@acct/train",)),
        (None, None, REAL, ()),  # nothing to scan: no deadline jobs on this cluster
    ],
)
def test_storage_roots(
    tmp_path: Path, train_storage: str | None, env: str | None, clouds: Any, expected: tuple[str, ...]
) -> None:
    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path))

    yaml = cluster(
        tmp_path / "state", train_storage=fill(train_storage) if train_storage else None, clouds=clouds
    )
    environ = {"RMC_TRAIN_STORAGE": env} if env else {}
    assert storage_roots(settings_of(yaml), environ=environ) == tuple(fill(e) for e in expected)


@pytest.mark.parametrize(
    ("train_storage", "env", "key"),
    [
        ("/data/train", None, "provider.train_storage"),
        (None, "ftp://host/train", "$RMC_TRAIN_STORAGE"),
    ],
)
def test_storage_roots_refuse_what_no_run_could_use(
    tmp_path: Path, train_storage: str | None, env: str | None, key: str
) -> None:
    yaml = cluster(tmp_path, train_storage=train_storage, clouds=REAL)
    with pytest.raises(ConfigError) as err:
        storage_roots(settings_of(yaml), environ={"RMC_TRAIN_STORAGE": env} if env else {})
    assert err.value.key == key


# --------------------------------------------------------------------------- discovery on a directory


def manifest(**fields: Any) -> str:
    body = {
        "version": 1,
        "cluster": "c",
        "name": "a",
        "pool": "t4_spot",
        "total_steps": 1000,
        "deadline_at": T0 + 36000,
        "submitted_at": T0 - 600,
    }
    body.update(fields)
    return json.dumps(body)


def put(root: Path, run: str, text: str) -> None:
    (root / run).mkdir(parents=True, exist_ok=True)
    (root / run / "rmc-job.json").write_text(text)


def test_discover_jobs_in_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "train"
    put(root, "a", manifest())
    put(root, "b", manifest(name="b", cluster="other-cluster"))  # not ours: skipped, silently
    put(root, "c", manifest(name="c", deadline_at=T0 - 1))  # past: ignored, said so
    put(root, "d", '{"version": 1, "cluster": "c"')  # cut short
    put(root, "e", manifest(name="e", pool="a100_ondemand", total_steps=0))
    put(root, "f", manifest(name="f", deadline_at=T0 + 40000))  # t4_spot again, due later
    put(root, ".tmp-x", manifest(name=".tmp-x", pool="hidden"))
    (root / "no-deadline" / "checkpoint_1").mkdir(parents=True)
    (root / "rmc-job.json").write_text(manifest())  # a file at the root is no run

    got = discover_jobs([str(root), str(tmp_path / "not-yet"), str(root)], cluster_name="c", now=T0)

    assert got.jobs == (DeadlineJob("t4_spot", str(root / "a"), 1000, T0 + 36000, "c", "a", T0 - 600),)
    assert got.ignored == (f"{root / 'c'}: its deadline 2026-11-28T11:59:59Z has passed; no deadline moves",)
    assert len(got.problems) == 3
    d, e, twice = got.problems
    assert d.startswith(f"{root / 'd'}/rmc-job.json: not a valid job manifest (not JSON:")
    assert "run_config(..., deadline=...) to rewrite it, or delete it" in d
    assert e.startswith(f"{root / 'e'}/rmc-job.json: not a valid job manifest (total_steps must be")
    assert twice == (
        f"pool t4_spot has 2 deadline jobs; following the one due first ({root / 'a'}, "
        f"2026-11-28T22:00:00Z), not {root / 'f'}: run one deadline job per pool"
    )


def test_discover_never_raises_on_a_bad_root(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    got = discover_jobs([str(tmp_path / "file"), "ftp://host/x"], cluster_name="c", now=T0)
    assert got.jobs == ()
    assert [p.split(":")[0] for p in got.problems] == [str(tmp_path / "file"), "ftp"]
    assert all("cannot list the Train storage" in p for p in got.problems)


def test_registered_job_is_discovered_and_watched(tmp_path: Path) -> None:
    register_job(
        str(tmp_path / "train"),
        cluster="c",
        name="j",
        pool="t4_spot",
        total_steps=1000,
        deadline_at=T0 + 36000,
        now=T0 - 3600,
    )
    [job] = discover_jobs([str(tmp_path / "train")], cluster_name="c", now=T0).jobs
    run = Path(job.run_dir)
    for i, step in enumerate((100, 200, 300)):
        backdated_checkpoint(run, f"checkpoint_{i}", step, T0 + 600 * i)
    got = RunWatch(job).read(T0 + 1200).progress
    assert got is not None
    # 6 s a step: 1000 steps = 5/3 h, 300 checkpointed = 1/2 h; the manifest's submission, not the
    # oldest checkpoint's, is the job's start.
    assert (got.submitted_at, got.deadline_at) == (T0 - 3600, T0 + 36000)
    assert got.work_total_hours == pytest.approx(5 / 3)
    assert got.checkpointed_hours == pytest.approx(0.5)


def test_a_run_dir_that_cannot_be_read_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a directory")
    reading = RunWatch(DeadlineJob("t4_spot", str(tmp_path / "run"), 10, T0 + 3600)).read(T0)
    assert reading.progress is None and reading.skipped == ()
    assert reading.note == (
        f"cannot read the Train storage of {tmp_path / 'run'}; until it can be read the pool moves on "
        "price alone"
    )
    assert reading.error.startswith(f"{tmp_path / 'run'}: cannot list the run directory: ")


def backdated_checkpoint(parent: Path, name: str, step: int, at: float, size: int = 4096) -> Path:
    def state(d: Path) -> None:
        (d / "state.pt").write_bytes(b"x" * size)

    path = write_checkpoint(parent, state, name=name, metadata={"step": step})
    body = read_json(path / MANIFEST)
    body["created_at"] = at
    (path / MANIFEST).write_text(json.dumps(body))
    return path


# --------------------------------------------------------------------------- s3:// on moto's server


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # pyarrow's S3FileSystem reads it (from_uri too)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:

    s3_env(monkeypatch, tmp_path, moto_endpoint)
    name = f"rmc-{uuid.uuid4().hex[:12]}"
    create_bucket(name)
    return name


def create_bucket(name: str) -> None:
    import pyarrow.fs

    # from_uri, as Ray Train opens storage: it reads AWS_ENDPOINT_URL (S3FileSystem() does not).
    fs, _ = pyarrow.fs.FileSystem.from_uri(f"s3://{name}?allow_bucket_creation=true")
    fs.create_dir(name)


def s3_fs() -> Any:
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri("s3://any-bucket")[0]


def upload(local: Path, key: str) -> None:
    import pyarrow.fs

    pyarrow.fs.copy_files(str(local), key, destination_filesystem=s3_fs())


def test_s3_register_discover_and_watch(bucket: str, tmp_path: Path) -> None:
    yaml = cluster(tmp_path / "state", train_storage=f"s3://{bucket}/train")
    before = time.time()
    cfg = run_config(yaml, name="llm-ft", deadline=timedelta(hours=10), total_steps=1000, pool="t4_spot")
    assert cfg.storage_path == f"s3://{bucket}/train"
    with s3_fs().open_input_stream(f"{bucket}/train/llm-ft/rmc-job.json") as stream:
        body = json.loads(stream.read())
    assert (body["version"], body["cluster"], body["name"], body["pool"]) == (1, "c", "llm-ft", "t4_spot")
    assert body["total_steps"] == 1000 and before <= body["submitted_at"] <= time.time()
    deadline_at = body["deadline_at"]

    # Two checkpoints written the way a Train loop writes them, uploaded the way Ray uploads them;
    # a third cut short in storage, and a fourth still uploading (no manifest yet).
    now = time.time()
    local = tmp_path / "local"
    for i, (step, at) in enumerate([(100, now - 1200), (200, now - 600)]):
        path = backdated_checkpoint(local, f"checkpoint_{i}", step, at)
        upload(path, f"{bucket}/train/llm-ft/checkpoint_{i}")
    cut = backdated_checkpoint(local, "checkpoint_2", 300, now - 60)
    (cut / "state.pt").write_bytes(b"x" * 10)
    upload(cut, f"{bucket}/train/llm-ft/checkpoint_2")
    with s3_fs().open_output_stream(f"{bucket}/train/llm-ft/checkpoint_3/state.pt") as out:
        out.write(b"x" * 100)
    with s3_fs().open_output_stream(f"{bucket}/train/other-run/checkpoint_0/state.pt") as out:
        out.write(b"a run without a deadline")

    got = discover_jobs(storage_roots(settings_of(yaml)), cluster_name="c")
    assert got == Discovery(
        (
            DeadlineJob(
                "t4_spot",
                f"s3://{bucket}/train/llm-ft",
                1000,
                deadline_at,
                "c",
                "llm-ft",
                body["submitted_at"],
            ),
        )
    )

    watch = RunWatch(got.jobs[0])
    reading = watch.read(now)
    assert reading.note == ""
    assert len(reading.skipped) == 2
    assert "checkpoint_2: state.pt has 10 bytes, manifest says 4096 (truncated?)" in reading.skipped[0]
    assert "checkpoint_3: no MANIFEST.json" in reading.skipped[1]
    progress = reading.progress
    assert progress is not None
    # 100 steps in 600 s = 6 s a step: 1000 steps = 5/3 h, 200 checkpointed = 1/3 h, a checkpoint
    # every 100 steps = 1/6 h, and 600 s since the newest caps at that one interval: 1/2 h done.
    assert progress.submitted_at == pytest.approx(now - 1200)  # its oldest checkpoint predates the manifest
    assert progress.deadline_at == deadline_at
    assert progress.work_total_hours == pytest.approx(5 / 3)
    assert progress.checkpointed_hours == pytest.approx(1 / 3)
    assert progress.checkpoint_hours == pytest.approx(1 / 6)
    assert progress.work_done_hours == pytest.approx(1 / 2)


def test_s3_storage_missing_at_run_time_is_one_note_then_recovers(bucket: str, tmp_path: Path) -> None:
    later = f"rmc-later-{uuid.uuid4().hex[:8]}"
    job = DeadlineJob("t4_spot", f"s3://{later}/train/j", 1000, time.time() + 36000)
    watch = RunWatch(job)
    now = time.time()
    down = watch.read(now)
    assert down.progress is None and down.skipped == ()
    assert down.note == (
        f"cannot read the Train storage of s3://{later}/train/j; until it can be read the pool moves on "
        "price alone"
    )
    assert "NO_SUCH_BUCKET" in down.error
    assert watch.read(now + 60).note == down.note  # the same words each tick: logged once
    missing = discover_jobs([f"s3://{later}/train"], cluster_name="c")
    assert missing.jobs == ()
    [problem] = missing.problems
    assert problem.startswith(f"s3://{later}/train: cannot list the Train storage: ")

    create_bucket(later)
    local = tmp_path / "local"
    for i, (step, at) in enumerate([(100, now - 1200), (200, now - 600)]):
        upload(backdated_checkpoint(local, f"checkpoint_{i}", step, at), f"{later}/train/j/checkpoint_{i}")
    up = watch.read(now)
    assert up.note == up.error == "" and up.progress is not None
    assert up.progress.checkpointed_hours == pytest.approx(1 / 3)


def test_s3_unreachable_storage_at_registration(bucket: str, tmp_path: Path) -> None:
    yaml = cluster(tmp_path, train_storage=f"s3://{bucket}-missing/train")
    with pytest.raises(ConfigError) as err:
        run_config(yaml, name="j", deadline=timedelta(hours=1), total_steps=10)
    assert err.value.key == "storage_path"
    assert f"cannot reach s3://{bucket}-missing/train/j/rmc-job.json" in str(err.value)


def test_s3_endpoint_down_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    server.stop()  # nothing listens there any more: a network failure at run time
    s3_env(monkeypatch, tmp_path, f"http://{host}:{port}")
    reading = RunWatch(DeadlineJob("t4_spot", "s3://gone/train/j", 10, time.time() + 3600)).read(time.time())
    assert reading.progress is None
    assert reading.note.startswith("cannot read the Train storage of s3://gone/train/j;")
    assert "Could not connect to server" in reading.error


# --------------------------------------------------------------------------- the manifest parser

GOOD = DeadlineJob("t4_spot", "s3://b/train/a", 1000, T0 + 36000, "c", "a", T0 - 600)


def test_parse_manifest_by_hand() -> None:
    assert parse_manifest(manifest(), run_dir="s3://b/train/a") == GOOD
    extra = json.dumps({**json.loads(manifest()), "note": "a field of a later writer"})
    assert parse_manifest(extra, run_dir="s3://b/train/a") == GOOD
    assert parse_manifest(render_manifest(GOOD), run_dir=GOOD.run_dir) == GOOD


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "not JSON"),
        ("[1, 2]", "a job manifest is a JSON object, got list"),
        (manifest(version=2), "version 2 is not one this head reads (1); upgrade ray_multicloud"),
        (manifest(version="1"), "version must be the integer 1"),
        (manifest(version=True), "version must be the integer 1"),
        (manifest(cluster=""), "cluster must be a non-empty string"),
        (manifest(name="a/b"), "name must be one directory name"),
        (manifest(pool=None), "pool must be a non-empty string"),
        (manifest(total_steps=1000.0), "total_steps must be a whole number > 0, got 1000.0"),
        (manifest(total_steps=0), "total_steps must be a whole number > 0, got 0"),
        (manifest(deadline_at="tomorrow"), "deadline_at must be a number of POSIX seconds"),
        (manifest().replace(str(T0 + 36000), "NaN"), "deadline_at must be a finite number"),
        (manifest().replace(str(T0 + 36000), "1e999"), "deadline_at must be a finite number"),
        (manifest(submitted_at=10**400), "submitted_at must be a finite number"),
        (manifest(deadline_at=T0 - 600), "deadline_at (1795866600.0) must be after submitted_at (1795866600"),
        ("[" * 100_000, "JSON"),
    ],
)
def test_parse_manifest_refuses(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_manifest(text)
    assert needle in str(err.value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELD_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | JSON_VALUES
KEYS = ("version", "cluster", "name", "pool", "total_steps", "deadline_at", "submitted_at")
PROPERTY = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def only_value_errors(text: str) -> None:
    try:
        job = parse_manifest(text)
    except ValueError:
        return
    assert isinstance(job, DeadlineJob)


@PROPERTY
@given(st.text())
def test_any_text_is_a_job_or_a_value_error(text: str) -> None:
    only_value_errors(text)


@PROPERTY
@given(JSON_VALUES)
def test_any_json_is_a_job_or_a_value_error(value: Any) -> None:
    only_value_errors(json.dumps(value))


@PROPERTY
@given(st.fixed_dictionaries({}, optional={k: FIELD_VALUES for k in KEYS}))
def test_any_manifest_shaped_object_is_a_job_or_a_value_error(body: dict[str, Any]) -> None:
    only_value_errors(json.dumps(body))


NAMES = st.text(min_size=1, max_size=16).filter(lambda s: s.strip() != "" and "/" not in s)


@PROPERTY
@given(
    cluster=NAMES,
    name=NAMES,
    pool=NAMES,
    total_steps=st.integers(min_value=1, max_value=10**12),
    submitted_at=st.floats(min_value=-1e12, max_value=1e12),
    window=st.floats(min_value=1e-3, max_value=1e10),
)
def test_a_valid_manifest_round_trips(
    cluster: str, name: str, pool: str, total_steps: int, submitted_at: float, window: float
) -> None:
    deadline_at = submitted_at + window
    job = DeadlineJob(pool, "s3://b/r", total_steps, deadline_at, cluster, name, submitted_at)
    assert parse_manifest(render_manifest(job), run_dir="s3://b/r") == job
    by_hand = json.dumps(
        {
            "version": 1,
            "cluster": cluster,
            "name": name,
            "pool": pool,
            "total_steps": total_steps,
            "deadline_at": deadline_at,
            "submitted_at": submitted_at,
        }
    )
    assert parse_manifest(by_hand, run_dir="s3://b/r") == job


def test_importing_the_reader_needs_no_pyarrow() -> None:
    code = "import sys, ray_multicloud.train.jobs; print('pyarrow' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
