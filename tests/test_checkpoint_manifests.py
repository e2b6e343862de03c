"""Checkpoint manifests from storage are untrusted input (issue 13, finding 6).

A manifest that is not what ``write_checkpoint`` writes is ``CheckpointCorrupt`` (so the
checkpoint is skipped with a reason), never a crash of the controller and never trusted: entries
that lead outside the checkpoint, a manifest listing no files, NaN/Infinity, ``created_at: null``,
metadata that is not an object. ``write_checkpoint`` only writes under its parent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import memory_cloud
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ray_multicloud.controller import Controller, JobFeed
from ray_multicloud.policy.rebalance import RebalanceConfig
from ray_multicloud.train.checkpoint import (
    MANIFEST,
    CheckpointCorrupt,
    parse_manifest_text,
    verify_checkpoint,
    write_checkpoint,
)
from ray_multicloud.train.progress import DeadlineJob, RunWatch, scan_run

T0 = 1_795_000_000.0
PAYLOAD = b"weights" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def good_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": "rmc-checkpoint/1",
        "created_at": T0,
        "metadata": {"step": 100},
        "files": {"state.pt": {"size": len(PAYLOAD), "sha256": DIGEST}},
    }
    body.update(changes)
    return body


def checkpoint_with(tmp_path: Path, text: str, name: str = "checkpoint_9") -> Path:
    root = tmp_path / "run" / name
    root.mkdir(parents=True)
    (root / "state.pt").write_bytes(PAYLOAD)
    (root / MANIFEST).write_text(text)
    return root


BAD = {
    "created_at null": json.dumps(good_body(created_at=None)),
    "created_at NaN": json.dumps(good_body(created_at=math.nan)),
    "created_at Infinity": json.dumps(good_body(created_at=math.inf)),
    "created_at 1e400": json.dumps(good_body()).replace(str(T0), "1e400"),
    "created_at 10**400": json.dumps(good_body()).replace(str(T0), "1" + "0" * 400),
    "created_at negative": json.dumps(good_body(created_at=-5)),
    "created_at text": json.dumps(good_body(created_at="yesterday")),
    "metadata a list of pairs": json.dumps(good_body(metadata=[["step", 100]])),
    "metadata a list": json.dumps(good_body(metadata=[1, 2])),
    "metadata a string": json.dumps(good_body(metadata="step=100")),
    "NaN in metadata": json.dumps(good_body(metadata={"step": 100, "loss": math.nan})),
    "no files": json.dumps(good_body(files={})),
    "size 1e400": json.dumps(good_body()).replace(f'"size": {len(PAYLOAD)}', '"size": 1e400'),
    "size negative": json.dumps(good_body(files={"state.pt": {"size": -1, "sha256": DIGEST}})),
    "size true": json.dumps(good_body(files={"state.pt": {"size": True, "sha256": DIGEST}})),
    "sha256 not hex": json.dumps(good_body(files={"state.pt": {"size": len(PAYLOAD), "sha256": "zz"}})),
    "entry not an object": json.dumps(good_body(files={"state.pt": 700})),
}


@pytest.mark.parametrize("text", BAD.values(), ids=list(BAD))
def test_a_malformed_manifest_is_corrupt(tmp_path: Path, text: str) -> None:
    root = checkpoint_with(tmp_path, text)
    with pytest.raises(CheckpointCorrupt) as info:
        verify_checkpoint(root)
    assert str(root) in str(info.value)


def test_the_good_body_verifies(tmp_path: Path) -> None:
    """The reference the cases above spoil: unspoilt, it verifies."""
    manifest = verify_checkpoint(checkpoint_with(tmp_path, json.dumps(good_body())))
    assert manifest.created_at == T0 and manifest.metadata == {"step": 100}


ESCAPES = ["../../outside.txt", "../outside.txt", "a/../../outside.txt", "OUTSIDE_ABS", "./state.pt", "a//b"]


@pytest.mark.parametrize("entry", ESCAPES)
def test_entries_outside_the_checkpoint_fail_verification(tmp_path: Path, entry: str) -> None:
    outside = tmp_path / "outside.txt"  # a real file with the recorded size and sha256
    outside.write_bytes(PAYLOAD)
    entry = str(outside) if entry == "OUTSIDE_ABS" else entry
    text = json.dumps(good_body(files={entry: {"size": len(PAYLOAD), "sha256": DIGEST}}))
    root = checkpoint_with(tmp_path, text)
    with pytest.raises(CheckpointCorrupt, match="not a file in the checkpoint"):
        verify_checkpoint(root)


def test_a_link_out_of_the_checkpoint_fails_verification(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(PAYLOAD)
    root = checkpoint_with(tmp_path, json.dumps(good_body()))
    (root / "state.pt").unlink()
    (root / "state.pt").symlink_to(outside)
    with pytest.raises(CheckpointCorrupt, match="outside the checkpoint"):
        verify_checkpoint(root)


@pytest.mark.parametrize("name", ["../x", "..", ".", "a/b", "/abs", ".hidden", "", "a\\b"])
def test_write_checkpoint_rejects_names_that_leave_the_parent(tmp_path: Path, name: str) -> None:
    parent = tmp_path / "p" / "q"
    with pytest.raises(ValueError, match="plain directory name"):
        write_checkpoint(parent, lambda d: (d / "s").write_bytes(b"x"), name=name)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing written, not even the parent


def test_write_checkpoint_refuses_an_empty_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no file"):
        write_checkpoint(tmp_path, lambda d: None, name="checkpoint_1")
    assert [p.name for p in tmp_path.iterdir()] == []


# --------------------------------------------------------------------------- any JSON at all

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELD = st.sampled_from(["format", "created_at", "metadata", "files", "extra"])
ENTRIES = JSON | st.fixed_dictionaries({"size": st.integers(), "sha256": st.sampled_from([DIGEST, "x" * 64])})
PATHS = st.sampled_from(["state.pt", "../x", "/etc/passwd", "", ".", "a/./b", "a\\b", "C:x", "MANIFEST.json"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=FIELD, value=JSON, path=PATHS, entry=ENTRIES)
def test_any_manifest_is_a_sane_manifest_or_corrupt(field: str, value: Any, path: str, entry: Any) -> None:
    body = good_body(**{field: value})
    if isinstance(body.get("files"), dict) and field != "files":
        body["files"] = {path: entry}
    text = json.dumps(body)
    try:
        manifest = parse_manifest_text("ck", text)
    except CheckpointCorrupt as exc:
        assert "ck" in str(exc)
        return
    # Accepted: everything a reader relies on holds.
    assert manifest.files
    for rel, (size, digest) in manifest.files.items():
        assert rel and not rel.startswith("/") and ".." not in rel.split("/") and "\\" not in rel
        assert isinstance(size, int) and size >= 0 and len(digest) == 64
    assert math.isfinite(manifest.created_at) and manifest.created_at >= 0
    assert isinstance(manifest.metadata, dict)


# --------------------------------------------------------------------------- the controller reads on


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[dict[str, Any], memory_cloud.MemoryWorld]]:
    with memory_cloud.memory_cluster(tmp_path / "state") as (config, world):
        t4 = config["available_node_types"]["t4_spot"]
        t4["node_config"]["pool"]["capacity_types"] = ["spot", "on-demand"]
        t4.pop("labels", None)
        yield config, world


def real_checkpoint(run: Path, name: str, step: int, at: float) -> None:
    path = write_checkpoint(run, lambda d: (d / "state.pt").write_bytes(PAYLOAD), name=name,
                            metadata={"step": step})
    body = json.loads((path / MANIFEST).read_text())
    body["created_at"] = at
    (path / MANIFEST).write_text(json.dumps(body))


CONTROLLER_CASES = [
    "created_at null", "metadata a list of pairs", "created_at NaN", "size 1e400", "created_at 10**400",
]


@pytest.mark.parametrize("bad", CONTROLLER_CASES)
def test_one_bad_manifest_is_skipped_and_the_controller_goes_on(
    memory: tuple[dict[str, Any], memory_cloud.MemoryWorld], tmp_path: Path, bad: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, world = memory
    provider = memory_cloud.memory_provider(config, world)
    controller = Controller(config, config=RebalanceConfig(), provider=provider)
    run = tmp_path / "run"
    real_checkpoint(run, "checkpoint_0", 100, T0)
    real_checkpoint(run, "checkpoint_1", 200, T0 + 600)
    checkpoint_with(tmp_path, BAD[bad], name="checkpoint_2")  # the newest one is bad
    feed = JobFeed(controller, [DeadlineJob("t4_spot", str(run), 1000, T0 + 86_400)])
    with caplog.at_level(logging.WARNING, logger="ray_multicloud.controller"):
        feed(T0 + 700)
        feed(T0 + 760)
    progress = controller.config.jobs["t4_spot"]
    # From the two good checkpoints: 100 steps in 600 s = 6 s a step; 200 steps checkpointed = 1/3 h.
    assert progress.checkpointed_hours == pytest.approx(200 * 6 / 3600)
    lines = [r.getMessage() for r in caplog.records if "checkpoint_2" in r.getMessage()]
    assert len(lines) == 1 and "skipped checkpoint" in lines[0]
    assert [p.name for p in scan_run(run).points] == ["checkpoint_0", "checkpoint_1"]


def test_a_reader_that_raises_does_not_stop_the_controller(
    memory: tuple[dict[str, Any], memory_cloud.MemoryWorld], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    config, world = memory
    provider = memory_cloud.memory_provider(config, world)
    controller = Controller(config, config=RebalanceConfig(), provider=provider)
    feed = JobFeed(controller, [DeadlineJob("t4_spot", str(tmp_path / "run"), 1000, T0 + 86_400)])

    def broken(self: RunWatch, now: float) -> Any:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(RunWatch, "read", broken)
    with caplog.at_level(logging.ERROR, logger="ray_multicloud.controller"):
        feed(T0)
        feed(T0 + 60)
    assert controller.config.jobs == {}
    assert len([r for r in caplog.records if "OverflowError" in r.getMessage()]) == 1
