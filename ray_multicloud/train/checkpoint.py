"""Checkpoints that are complete or ignored: atomic save with a sha256 manifest, verify before restore.

Contract
--------
* ``write_checkpoint(parent, writer)`` calls ``writer(tmp_dir)`` on a hidden temporary directory
  under ``parent``, fsyncs every file the writer left there, writes ``MANIFEST.json`` (size and
  sha256 of every file, plus the caller's metadata) *last*, fsyncs it and the directory, and only
  then renames the directory to its final name. A crash at any point leaves either no checkpoint
  under the final name or a complete one; leftovers are hidden ``.tmp-*`` directories.
* ``verify_checkpoint(path)`` returns the manifest when every file it lists is present with the
  recorded size and sha256, and raises ``CheckpointCorrupt`` (saying what is wrong) otherwise —
  missing manifest (half-written, or copied without it), missing or truncated file, flipped bytes.
  Files not listed in the manifest are ignored (storage layers add their own). A manifest that is
  not exactly what ``write_checkpoint`` writes is corrupt, never trusted and never a crash: it
  must list at least one file, each under a plain relative path inside the checkpoint (no ``..``,
  no absolute path, no empty or ``.`` component, no backslash: nothing outside the checkpoint is
  ever read), with a whole size >= 0 and a 64-hex-digit sha256; ``created_at`` a finite time >= 0;
  ``metadata`` a JSON object; no NaN or Infinity anywhere.
* ``newest_complete(dirs)`` walks candidates newest first and returns the first that verifies, with
  the reasons the newer ones were skipped: a corrupted checkpoint is never restored, the previous
  complete one is.
* ``resolve(checkpoint)`` does the same for a Ray Train ``Checkpoint`` (what
  ``ray.train.get_checkpoint()`` returns): it verifies it and, if it is corrupt, falls back to the
  newest complete sibling ``checkpoint_*`` directory of the same run in storage (local or remote,
  through the checkpoint's pyarrow filesystem).
* ``verify_checkpoint(path, filesystem=fs)`` checks a checkpoint where it lies in storage (a
  pyarrow filesystem, as ``open_storage`` returns for ``s3://``, ``gs://``, ``abfs://`` or a local
  path): the manifest is read, every listed file must be present with its recorded size (one
  listing), and with ``check_hashes=True`` its bytes are streamed through sha256 as well. Storage
  errors (network, credentials, a missing bucket) are raised as they are (``storage_errors()``),
  never turned into ``CheckpointCorrupt``: the storage failed, not the checkpoint.

Storage is opened the way Ray Train 2.60 opens ``RunConfig.storage_path``:
``pyarrow.fs.FileSystem.from_uri`` (``open_storage``), so whatever reaches a run's checkpoints from
a worker (credentials, ``AWS_ENDPOINT_URL``, URI query options) reaches them from the head too.
pyarrow is imported inside the functions that use it.

Used inside an ordinary Ray Train loop::

    with tempfile.TemporaryDirectory() as tmp:
        path = write_checkpoint(tmp, lambda d: torch.save(state, d / "state.pt"), metadata={"step": s})
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(path))
    ...
    found = resolve(ray.train.get_checkpoint())      # None: start from scratch
    if found is not None:
        state = torch.load(found.directory / "state.pt")
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray_multicloud.errors import MultiCloudError

if TYPE_CHECKING:
    import pyarrow.fs

MANIFEST = "MANIFEST.json"
FORMAT = "rmc-checkpoint/1"
_CHUNK = 1 << 20


class CheckpointCorrupt(MultiCloudError):
    """A checkpoint that must not be restored; the message says what is wrong with it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"checkpoint {path} is incomplete or corrupt: {reason}; restore an earlier one")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``MANIFEST.json`` records: relative path -> (size, sha256), and the caller's metadata."""

    files: Mapping[str, tuple[int, str]]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Found:
    """A checkpoint that verified: where its files are, its manifest, and the newer ones skipped."""

    directory: Path
    manifest: Manifest
    skipped: tuple[str, ...] = ()
    source: str = ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def unsafe_entry(rel: str) -> str:
    """Why ``rel`` is not a plain relative path inside a checkpoint ("" if it is one)."""
    if not rel:
        return "an empty path"
    if "\\" in rel or "\x00" in rel:
        return "a backslash or NUL in the path"
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return "an absolute path"
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "a '..', '.' or empty path component"
    if rel == MANIFEST:
        return f"the {MANIFEST} itself"
    return ""


def _checkpoint_name(name: str) -> str:
    """``write_checkpoint``'s ``name``: one plain, visible directory name, or ValueError."""
    if not name or any(c in name for c in "/\\\x00") or name.startswith("."):
        raise ValueError(
            f"write_checkpoint(name={name!r}): the name must be one plain directory name under the parent "
            "(no '/', no '..', not hidden), e.g. 'checkpoint-000100'"
        )
    return name


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_checkpoint(
    parent: str | Path,
    writer: Callable[[Path], None],
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically under ``parent`` and return its final directory.

    ``name`` defaults to ``checkpoint-<ms>-<random>``; one given must be a single plain directory
    name (``ValueError`` otherwise: a checkpoint never lands outside ``parent``). Raises
    ``FileExistsError`` if ``parent/name`` exists (a checkpoint is never overwritten in place) and
    ``ValueError`` if ``writer`` wrote no file (an empty checkpoint restores nothing). If
    ``writer`` raises, nothing appears under the final name and the temporary directory is removed.
    """
    if name is not None:
        _checkpoint_name(name)
    base = Path(parent)
    base.mkdir(parents=True, exist_ok=True)
    final = base / (name or f"checkpoint-{int(time.time() * 1000)}-{uuid.uuid4().hex[:6]}")
    if final.exists():
        raise FileExistsError(f"checkpoint {final} already exists")
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".tmp-"))
    try:
        writer(tmp)
        if not _files(tmp):
            raise ValueError(f"write_checkpoint: the writer left no file in {tmp}; nothing to checkpoint")
        files: dict[str, dict[str, Any]] = {}
        for path in _files(tmp):
            _fsync_path(path)
            files[path.relative_to(tmp).as_posix()] = {
                "size": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        body = {"format": FORMAT, "created_at": time.time(), "metadata": dict(metadata or {}), "files": files}
        with open(tmp / MANIFEST, "w") as fh:
            json.dump(body, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        for sub in sorted({p.parent for p in _files(tmp)} | {tmp}, key=lambda p: len(p.parts), reverse=True):
            _fsync_path(sub)
        os.rename(tmp, final)
        _fsync_path(base)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_manifest(path: str | Path) -> Manifest:
    """The checkpoint's manifest, without checking its files; ``CheckpointCorrupt`` if unreadable."""
    root = Path(path)
    try:
        text = (root / MANIFEST).read_text()
    except FileNotFoundError:
        raise CheckpointCorrupt(
            root, f"no {MANIFEST} (half-written or not made by write_checkpoint)"
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointCorrupt(root, f"unreadable {MANIFEST}: {exc}") from None
    return parse_manifest_text(root, text)


def parse_manifest_text(root: str | Path, text: str) -> Manifest:
    """A ``MANIFEST.json``'s text as a ``Manifest``; ``CheckpointCorrupt`` (naming ``root``) if malformed."""
    def no_constants(token: str) -> Any:
        raise ValueError(f"{token} is not a number JSON allows")

    try:
        raw = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise CheckpointCorrupt(root, f"unreadable {MANIFEST}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("files"), dict):
        raise CheckpointCorrupt(root, f"{MANIFEST} is not a {FORMAT} manifest")
    if not raw["files"]:
        raise CheckpointCorrupt(root, f"{MANIFEST} lists no files")
    files: dict[str, tuple[int, str]] = {}
    for rel, entry in raw["files"].items():
        why = unsafe_entry(rel)
        if why:
            raise CheckpointCorrupt(root, f"{MANIFEST} entry {rel!r} is {why}, not a file in the checkpoint")
        size = entry.get("size") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise CheckpointCorrupt(root, f"{MANIFEST} entry {rel!r}: size {size!r} is not an integer >= 0")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise CheckpointCorrupt(root, f"{MANIFEST} entry {rel!r}: sha256 {digest!r} is not 64 hex digits")
        files[rel] = (size, digest)
    created = raw.get("created_at", 0)
    try:
        number = isinstance(created, int | float) and not isinstance(created, bool)
        created_at = float(created) if number else -1.0
    except OverflowError:
        created_at = math.inf
    if not math.isfinite(created_at) or created_at < 0:
        raise CheckpointCorrupt(root, f"{MANIFEST} created_at {created!r} is not a finite POSIX time >= 0")
    metadata = raw.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        kind = type(metadata).__name__
        raise CheckpointCorrupt(root, f"{MANIFEST} metadata is a {kind}, not a JSON object")
    return Manifest(files=files, metadata=metadata, created_at=created_at)


def verify_checkpoint(
    path: str | Path, *, filesystem: pyarrow.fs.FileSystem | None = None, check_hashes: bool = True
) -> Manifest:
    """Check every file the manifest lists (size, then sha256); see the module docstring.

    Without ``filesystem``, ``path`` is a local directory. With one, ``path`` is a directory inside
    it (as ``open_storage`` returns), and storage errors propagate (``storage_errors()``).
    ``check_hashes=False`` checks presence and sizes only.
    """
    if filesystem is not None:
        return _verify_in_storage(filesystem, str(path).rstrip("/"), check_hashes=check_hashes)
    root = Path(path)
    manifest = read_manifest(root)
    inside = root.resolve()
    for rel, (size, digest) in sorted(manifest.files.items()):
        target = root / rel
        if not target.resolve().is_relative_to(inside):
            raise CheckpointCorrupt(root, f"{rel} leads outside the checkpoint (a link?)")
        try:
            actual = target.stat().st_size
        except FileNotFoundError:
            raise CheckpointCorrupt(root, f"{rel} is missing") from None
        if actual != size:
            raise CheckpointCorrupt(root, f"{rel} has {actual} bytes, manifest says {size} (truncated?)")
        if check_hashes and sha256_file(target) != digest:
            raise CheckpointCorrupt(root, f"{rel} does not match its sha256 (corrupted)")
    return manifest


def _verify_in_storage(fs: pyarrow.fs.FileSystem, root: str, *, check_hashes: bool) -> Manifest:
    import pyarrow.fs

    try:
        with fs.open_input_stream(f"{root}/{MANIFEST}") as stream:
            body = stream.read()
    except FileNotFoundError:
        raise CheckpointCorrupt(
            root, f"no {MANIFEST} (half-written or not made by write_checkpoint)"
        ) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointCorrupt(root, f"unreadable {MANIFEST}: {exc}") from None
    manifest = parse_manifest_text(root, text)
    # One recursive listing gives every size; an object store shows an object only once its
    # upload completed, so a size mismatch or a missing file is an upload still under way.
    prefix = root + "/"
    sizes = {
        info.path[len(prefix) :]: info.size
        for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
        if info.type == pyarrow.fs.FileType.File and info.path.startswith(prefix)
    }
    for rel, (size, digest) in sorted(manifest.files.items()):
        actual = sizes.get(rel)
        if actual is None:
            raise CheckpointCorrupt(root, f"{rel} is missing")
        if actual != size:
            raise CheckpointCorrupt(root, f"{rel} has {actual} bytes, manifest says {size} (truncated?)")
        if check_hashes:
            hasher = hashlib.sha256()
            with fs.open_input_stream(f"{root}/{rel}") as stream:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
            if hasher.hexdigest() != digest:
                raise CheckpointCorrupt(root, f"{rel} does not match its sha256 (corrupted)")
    return manifest


# --------------------------------------------------------------------------- storage (local or URI)


def is_uri(location: str | Path) -> bool:
    """True for ``scheme://...`` (``s3://``, ``gs://``, ``abfs://``, ``file://``); False for a local path."""
    return "://" in str(location)


def open_storage(location: str | Path) -> tuple[pyarrow.fs.FileSystem, str]:
    """``(filesystem, path inside it)`` for a local path or a storage URI, resolved as Ray Train 2.60
    resolves ``RunConfig.storage_path`` (``pyarrow.fs.FileSystem.from_uri``); a local path is made
    absolute first. Raises ``storage_errors()`` for a URI pyarrow cannot open."""
    import pyarrow.fs

    text = str(location)
    if not is_uri(text):
        text = os.path.abspath(os.path.expanduser(text))
    return pyarrow.fs.FileSystem.from_uri(text)


def storage_errors() -> tuple[type[Exception], ...]:
    """What reading or writing storage through pyarrow can raise: ``OSError`` (network, credentials,
    a missing bucket; pyarrow's ``ArrowIOError``), ``ValueError`` (a malformed URI) and any other
    ``pyarrow.ArrowException`` (an unsupported scheme)."""
    import pyarrow

    return (OSError, ValueError, pyarrow.ArrowException)


def list_storage_dir(fs: pyarrow.fs.FileSystem, path: str) -> list[pyarrow.fs.FileInfo]:
    """The entries directly under ``path``, sorted by name; ``[]`` when ``path`` does not exist (an
    object store has no empty directories). A missing bucket or container, or any other storage
    failure, raises (``storage_errors()``): only a missing path inside reachable storage is empty."""
    import pyarrow.fs

    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(path.rstrip("/") or "/", recursive=False))
    except FileNotFoundError:
        return []
    return sorted(infos, key=lambda info: info.base_name)


def newest_complete(dirs: Iterable[str | Path]) -> Found | None:
    """The newest checkpoint of ``dirs`` (given oldest first) that verifies, or None.

    ``Found.skipped`` lists the newer candidates passed over and why.
    """
    skipped: list[str] = []
    for d in reversed(list(dirs)):
        try:
            manifest = verify_checkpoint(d)
        except CheckpointCorrupt as exc:
            skipped.append(f"{d}: {exc.reason}")
            continue
        return Found(directory=Path(d), manifest=manifest, skipped=tuple(skipped), source=str(d))
    return None


def resolve(checkpoint: Any, *, download_dir: str | Path | None = None) -> Found | None:
    """A verified checkpoint to restore from, given what ``ray.train.get_checkpoint()`` returned.

    ``checkpoint`` is a ``ray.train.Checkpoint`` (or None: nothing to restore). It is verified; if it
    is corrupt, the newest complete older ``checkpoint_*`` sibling in the same storage directory is
    used instead (Ray names them by time, so name order is age order). Remote checkpoints are
    downloaded under ``download_dir`` (default: a temporary directory) before they are verified.
    Returns None when no complete checkpoint exists.
    """
    if checkpoint is None:
        return None
    import pyarrow.fs
    from ray.train import Checkpoint

    fs = checkpoint.filesystem
    local = isinstance(fs, pyarrow.fs.LocalFileSystem)
    path = str(checkpoint.path).rstrip("/")
    parent, _, own = path.rpartition("/")
    names = [own]
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(parent or "/", recursive=False))
        older = sorted(
            i.base_name
            for i in infos
            if i.type == pyarrow.fs.FileType.Directory
            and i.base_name.startswith("checkpoint_")
            and i.base_name < own
        )
        names = [*older, own]
    except (OSError, ValueError):
        pass
    skipped: list[str] = []
    scratch = Path(download_dir) if download_dir else Path(tempfile.mkdtemp(prefix="rmc-restore-"))
    for name in reversed(names):
        source = f"{parent}/{name}" if parent else name
        if local:
            where = Path(source)
        else:
            where = scratch / name
            try:
                Checkpoint(path=source, filesystem=fs).to_directory(str(where))
            except (OSError, ValueError) as exc:
                skipped.append(f"{source}: download failed: {exc}")
                continue
        try:
            manifest = verify_checkpoint(where)
        except CheckpointCorrupt as exc:
            skipped.append(f"{source}: {exc.reason}")
            continue
        return Found(directory=where, manifest=manifest, skipped=tuple(skipped), source=source)
    return None
