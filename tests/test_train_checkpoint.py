"""Checkpoint integrity helpers and the Train run-config builder (fast, no Ray cluster)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ray_multicloud.cluster_config.provider_section import load_settings
from ray_multicloud.errors import ConfigError
from ray_multicloud.train import (
    MANIFEST,
    CheckpointCorrupt,
    newest_complete,
    resolve,
    resolve_storage_path,
    verify_checkpoint,
    write_checkpoint,
)


def writer(payload: bytes, extra: bytes = b"meta") -> Callable[[Path], None]:
    def write(d: Path) -> None:
        (d / "model.bin").write_bytes(payload)
        (d / "sub").mkdir()
        (d / "sub" / "optim.bin").write_bytes(extra)

    return write


def test_write_then_verify(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path, writer(b"x" * 1000), name="c1", metadata={"step": 7})
    assert path == tmp_path / "c1"
    manifest = verify_checkpoint(path)
    assert manifest.metadata == {"step": 7}
    assert set(manifest.files) == {"model.bin", "sub/optim.bin"}
    assert manifest.files["model.bin"][0] == 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_never_overwrites(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, writer(b"a"), name="c1")
    with pytest.raises(FileExistsError):
        write_checkpoint(tmp_path, writer(b"b"), name="c1")
    assert (tmp_path / "c1" / "model.bin").read_bytes() == b"a"


def test_failed_writer_leaves_nothing(tmp_path: Path) -> None:
    def boom(d: Path) -> None:
        (d / "model.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_checkpoint(tmp_path, boom, name="c1")
    assert list(tmp_path.iterdir()) == []


def _truncate(p: Path) -> None:
    data = (p / "model.bin").read_bytes()
    (p / "model.bin").write_bytes(data[: len(data) // 2])


def _flip(p: Path) -> None:
    data = bytearray((p / "model.bin").read_bytes())
    data[10] ^= 0xFF
    (p / "model.bin").write_bytes(bytes(data))


def _drop_manifest(p: Path) -> None:
    (p / MANIFEST).unlink()


def _drop_file(p: Path) -> None:
    (p / "sub" / "optim.bin").unlink()


def _garble_manifest(p: Path) -> None:
    (p / MANIFEST).write_text("{not json")


def _lie_in_manifest(p: Path) -> None:
    raw = json.loads((p / MANIFEST).read_text())
    raw["files"]["model.bin"]["size"] += 1
    (p / MANIFEST).write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (_truncate, "truncated"),
        (_flip, "sha256"),
        (_drop_manifest, "no MANIFEST.json"),
        (_drop_file, "missing"),
        (_garble_manifest, "unreadable"),
        (_lie_in_manifest, "manifest says"),
    ],
)
def test_damaged_checkpoint_is_skipped(tmp_path: Path, damage: Callable[[Path], None], needle: str) -> None:
    old = write_checkpoint(tmp_path, writer(b"old" * 100), name="checkpoint_1")
    new = write_checkpoint(tmp_path, writer(b"new" * 100), name="checkpoint_2")
    damage(new)
    with pytest.raises(CheckpointCorrupt, match=needle):
        verify_checkpoint(new)
    found = newest_complete([old, new])
    assert found is not None and found.directory == old
    assert len(found.skipped) == 1 and needle in found.skipped[0]


def test_half_written_directory_without_manifest(tmp_path: Path) -> None:
    """A checkpoint whose copy stopped halfway (no manifest yet) is never chosen."""
    old = write_checkpoint(tmp_path, writer(b"a" * 64), name="checkpoint_1")
    half = tmp_path / "checkpoint_2"
    half.mkdir()
    (half / "model.bin").write_bytes(b"b" * 10)
    found = newest_complete([old, half])
    assert found is not None and found.directory == old


def test_nothing_complete(tmp_path: Path) -> None:
    only = write_checkpoint(tmp_path, writer(b"a"), name="checkpoint_1")
    _flip_small = only / "model.bin"
    _flip_small.write_bytes(b"b")
    assert newest_complete([only]) is None


def test_resolve_falls_back_to_sibling_in_storage(tmp_path: Path) -> None:
    """What ``ray.train.get_checkpoint()`` returns is corrupt: the previous complete one is used."""
    from ray.train import Checkpoint

    run = tmp_path / "run"
    a = write_checkpoint(run, writer(b"a" * 50), name="checkpoint_2026-01-01_00-00-01.000000")
    b = write_checkpoint(run, writer(b"b" * 50), name="checkpoint_2026-01-01_00-00-02.000000")
    c = write_checkpoint(run, writer(b"c" * 50), name="checkpoint_2026-01-01_00-00-03.000000")
    _truncate(c)
    _flip(b)
    found = resolve(Checkpoint.from_directory(str(c)))
    assert found is not None and found.directory == a
    assert len(found.skipped) == 2
    assert resolve(None) is None
    good = resolve(Checkpoint.from_directory(str(a)))
    assert good is not None and good.directory == a and good.skipped == ()


SETTINGS_LOCAL = load_settings(
    {"gcs_address": "127.0.0.1:1", "state_dir": "/tmp/rmc-x", "clouds": {"aws": {"driver": "local"}}}, "c"
)
SETTINGS_REAL = load_settings(
    {
        "gcs_address": "10.0.0.1:6379",
        "state_dir": "/tmp/rmc-y",
        "clouds": {"aws": {"driver": "aws"}, "gcp": {"driver": "local"}},
    },
    "c",
)


@pytest.mark.parametrize(
    ("settings", "given", "expected"),
    [
        (SETTINGS_LOCAL, None, "/tmp/rmc-x/train"),
        (SETTINGS_LOCAL, "/data/ckpt", "/data/ckpt"),
        (SETTINGS_REAL, "s3://bucket/runs", "s3://bucket/runs"),
        (SETTINGS_REAL, "gs://bucket/runs", "gs://bucket/runs"),
        (SETTINGS_REAL, "abfs://c@acct/runs", "abfs://c@acct/runs"),
        (SETTINGS_REAL, None, ConfigError),
        (SETTINGS_REAL, "/data/ckpt", ConfigError),
        (SETTINGS_REAL, "ftp://host/x", ConfigError),
    ],
)
def test_storage_path(
    settings: object, given: str | None, expected: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RMC_TRAIN_STORAGE", raising=False)
    if isinstance(expected, type):
        with pytest.raises(expected):
            resolve_storage_path(settings, given)  # type: ignore[arg-type]
    else:
        assert resolve_storage_path(settings, given) == expected  # type: ignore[arg-type]


def test_run_config_from_cluster_yaml() -> None:
    from ray_multicloud.train import run_config

    cfg = run_config(
        {
            "cluster_name": "c",
            "provider": {
                "gcs_address": "127.0.0.1:1",
                "state_dir": "/tmp/rmc-z",
                "clouds": {"aws": {"driver": "local"}},
            },
        },
        name="job",
        max_failures=2,
    )
    assert cfg.storage_path == "/tmp/rmc-z/train"
    assert cfg.failure_config.max_failures == 2
    assert cfg.checkpoint_config.num_to_keep == 3
    assert os.path.basename(cfg.name) == "job"


@pytest.mark.parametrize(
    ("damage", "needle", "found_without_hashes"),
    [
        (_truncate, "truncated", False),
        (_flip, "sha256", True),  # same size: only the hash sees it
        (_drop_manifest, "no MANIFEST.json", False),
        (_drop_file, "missing", False),
        (_garble_manifest, "unreadable", False),
        (_lie_in_manifest, "manifest says", False),
    ],
)
def test_verify_through_a_pyarrow_filesystem(
    tmp_path: Path, damage: Callable[[Path], None], needle: str, found_without_hashes: bool
) -> None:
    """The same checks on a checkpoint read through pyarrow (how s3://, gs:// and abfs:// are read)."""
    import pyarrow.fs

    fs = pyarrow.fs.LocalFileSystem()
    good = write_checkpoint(tmp_path, writer(b"x" * 100), name="checkpoint_1", metadata={"step": 3})
    assert verify_checkpoint(str(good), filesystem=fs) == verify_checkpoint(good)
    bad = write_checkpoint(tmp_path, writer(b"y" * 100), name="checkpoint_2")
    damage(bad)
    with pytest.raises(CheckpointCorrupt, match=needle):
        verify_checkpoint(str(bad), filesystem=fs)
    if found_without_hashes:
        assert verify_checkpoint(str(bad), filesystem=fs, check_hashes=False).files["model.bin"][0] == 100
    else:
        with pytest.raises(CheckpointCorrupt, match=needle):
            verify_checkpoint(str(bad), filesystem=fs, check_hashes=False)
