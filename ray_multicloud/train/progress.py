"""How far a running Ray Train job is, read from its checkpoints, as the ``JobProgress`` the controller needs.

The controller's deadline moves (``policy.rebalance``, "Deadline moves") need, per pool, where the
pool's one deadline job stands. Nothing in a Train job reports that to the head; its checkpoints
do. Every checkpoint written with ``write_checkpoint(..., metadata={"step": step})`` carries its
step and the time it was made (``MANIFEST.json``: ``metadata.step``, ``created_at``), and Ray Train
keeps the reported ones under ``<storage_path>/<run name>/checkpoint_<time>`` (``train.runconfig``).

Three parts, the decision pure and the I/O at the edge:

* ``scan_run(run_dir)`` (I/O): the run directory's complete checkpoints as ``(step, created_at)``
  points. ``run_dir`` is a local path or a storage URI (``s3://``, ``gs://``, ``abfs://``), read
  through pyarrow's filesystems as Ray Train writes it (``checkpoint.open_storage``). Only
  directories named ``checkpoint*`` count (Ray's ``checkpoint_<time>``, ``write_checkpoint``'s
  ``checkpoint-<ms>-<id>``); hidden ones (``write_checkpoint``'s ``.tmp-*`` leftovers) are never
  read. Each one is verified (``verify_checkpoint``: manifest, size, sha256): a half-written or
  corrupted checkpoint, or one without an integer ``step``, is skipped with the reason, never
  raised. Checkpoints are immutable once complete (``write_checkpoint`` never overwrites one; Ray
  uploads each directory once), so ``known`` points from the previous scan are taken as they are
  instead of being hashed again on every tick. In remote storage a checkpoint is checked by its
  manifest and the sizes of its files (one listing), not hashed: the head would otherwise
  download every checkpoint of every job once; an object appears only when its upload completes,
  so the size check catches a half-uploaded checkpoint, and the restore (``checkpoint.resolve``)
  still checks every sha256 before it trusts one. Storage that cannot be listed is
  ``RunScan.error``, never an exception.
* ``job_progress(points, ...)`` (pure): the estimate, below.
* ``RunWatch`` (edge): one deadline job's run directory read tick after tick; what the controller
  feeds into ``Controller.set_job``. A storage failure is a ``Reading`` without progress whose
  note says the storage could not be read (the pool then moves on price alone), never an
  exception. A job registered by ``run_config(..., deadline=...)`` carries its ``submitted_at``.

**The estimate** (``job_progress``). Work is measured in hours of running, as ``JobProgress`` wants:

* hours per step = (newest.created_at - oldest.created_at) / (newest.step - oldest.step), over the
  oldest and the newest complete checkpoint (by ``created_at``). The wall time between them
  includes any restart in between (a preemption, a move), so the rate errs slow: more work left,
  moves to on-demand a little early rather than late;
* ``checkpointed_hours`` = newest.step x hours per step; ``work_total_hours`` = ``total_steps`` x
  hours per step (a newest step beyond ``total_steps`` counts as done);
* ``checkpoint_hours`` = the widest step gap between consecutive complete checkpoints x hours per
  step: the most work one preemption can cost (a corrupt checkpoint skipped between two others
  widens it, which again errs safe);
* ``work_done_hours`` = ``checkpointed_hours`` + the time since the newest checkpoint, capped at
  one ``checkpoint_hours``. The assumption: the job keeps running at the estimated rate after its
  newest checkpoint; it cannot be more than one interval past it, or a newer checkpoint would
  exist (if it is stalled, the cap keeps the overestimate to one interval, which the policy's
  guards count as lost on a preemption anyway).

With fewer than two complete checkpoints at different steps and times there is no rate, and
``job_progress`` returns None: the controller then clears the pool's job (``set_job(pool, None)``)
and moves that pool on price alone until the second checkpoint lands. For example, checkpoints at
steps 100, 200, 300 made 0, 600 and 1200 s after a start, of a 1000-step job: 6 s a step, 0.5 h
checkpointed, 1/6 h a checkpoint, 5/3 h in all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from ray_multicloud.policy.rebalance import JobProgress
from ray_multicloud.train.checkpoint import (
    CheckpointCorrupt,
    Manifest,
    is_uri,
    list_storage_dir,
    open_storage,
    storage_errors,
    verify_checkpoint,
)

if TYPE_CHECKING:
    import pyarrow.fs

CHECKPOINT_PREFIX = "checkpoint"


@dataclass(frozen=True, slots=True)
class CheckpointPoint:
    """One complete checkpoint: the training step it holds, when it was made (POSIX s), its directory
    name, and the bytes its manifest lists (what a move carries: ``migration.checkpoint_gb: measure``)."""

    step: int
    created_at: float
    name: str = ""
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class RunScan:
    """``scan_run``'s answer: the complete checkpoints (sorted by name), why others were skipped, and
    ``error`` when the run directory could not be listed at all ("" when it could)."""

    points: tuple[CheckpointPoint, ...]
    skipped: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class DeadlineJob:
    """A pool's deadline job, as the controller's ``--deadline-job`` flag names it or as a Train
    script registers it (``train.runconfig.run_config(..., deadline=...)``, found by ``train.jobs``).

    ``run_dir`` is the run's directory in Train storage (``<storage_path>/<run name>``), a local
    path or a storage URI; ``deadline_at`` and ``submitted_at`` are POSIX seconds. ``cluster``,
    ``name`` and ``submitted_at`` come from a registered job's manifest ("" / None from the flag;
    the submission is then guessed from the oldest checkpoint).
    """

    pool: str
    run_dir: str
    total_steps: int
    deadline_at: float
    cluster: str = ""
    name: str = ""
    submitted_at: float | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One ``RunWatch.read``: the progress (None while it cannot be estimated), why it is None
    (``note``, "" when there is progress), the checkpoints skipped as incomplete or corrupt, and,
    when the storage could not be read, the storage's error (``error``). The note stays the same
    while the same cause lasts (log it once); ``error`` varies (request ids, timings).
    ``checkpoint_gb`` is the size of the newest complete checkpoint (None while there is none)."""

    progress: JobProgress | None
    note: str = ""
    skipped: tuple[str, ...] = ()
    error: str = ""
    checkpoint_gb: float | None = None


# --------------------------------------------------------------------------- I/O edge


def scan_run(
    run_dir: str | Path,
    *,
    known: Iterable[CheckpointPoint] = (),
    filesystem: pyarrow.fs.FileSystem | None = None,
    check_hashes: bool | None = None,
) -> RunScan:
    """The complete checkpoints directly under ``run_dir`` (module docstring). Never raises.

    ``run_dir`` is a local path or a storage URI (``s3://...``, opened with ``open_storage``), or,
    with ``filesystem``, a path inside that pyarrow filesystem. A missing ``run_dir`` is a run that
    has written nothing yet: no points, nothing skipped. Storage that cannot be listed (unreachable,
    no credentials, a missing bucket) is ``RunScan.error``. A directory whose name is in ``known``
    is taken from there unverified. ``check_hashes`` (default: only on a local filesystem) adds the
    sha256 of every file to the size check.
    """
    if filesystem is None and not is_uri(run_dir):
        return _scan_local(Path(run_dir), known, True if check_hashes is None else check_hashes)
    where = str(run_dir)
    try:
        errors = storage_errors()
    except ImportError as exc:
        return RunScan((), error=f"{where}: reading a storage URI needs pyarrow (pip install pyarrow): {exc}")
    try:
        fs, path = (filesystem, where) if filesystem is not None else open_storage(where)
    except errors as exc:
        return RunScan((), error=f"{where}: cannot open the storage: {exc}")
    try:
        infos = list_storage_dir(fs, path)
    except errors as exc:
        return RunScan((), error=f"{where}: cannot list the run directory: {exc}")
    import pyarrow.fs

    hashes = isinstance(fs, pyarrow.fs.LocalFileSystem) if check_hashes is None else check_hashes
    entries = [
        _Entry(
            info.base_name,
            info.path,
            info.type == pyarrow.fs.FileType.Directory,
            functools.partial(verify_checkpoint, info.path, filesystem=fs, check_hashes=hashes),
        )
        for info in infos
    ]
    return _scan_entries(entries, known, errors)


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    label: str
    is_dir: bool
    verify: Callable[[], Manifest]


def _scan_local(root: Path, known: Iterable[CheckpointPoint], check_hashes: bool) -> RunScan:
    try:
        found = sorted(root.iterdir())
    except FileNotFoundError:
        return RunScan(())
    except OSError as exc:
        return RunScan((), error=f"{root}: cannot list the run directory: {exc}")
    entries = [
        _Entry(
            entry.name,
            str(entry),
            entry.is_dir(),
            functools.partial(verify_checkpoint, entry, check_hashes=check_hashes),
        )
        for entry in found
    ]
    return _scan_entries(entries, known, (OSError,))


def _scan_entries(
    entries: Sequence[_Entry], known: Iterable[CheckpointPoint], errors: tuple[type[Exception], ...]
) -> RunScan:
    cached = {p.name: p for p in known}
    points: list[CheckpointPoint] = []
    skipped: list[str] = []
    for entry in entries:
        name = entry.name
        if name.startswith(".") or not name.startswith(CHECKPOINT_PREFIX) or not entry.is_dir:
            continue
        if name in cached:
            points.append(cached[name])
            continue
        try:
            manifest = entry.verify()
        except CheckpointCorrupt as exc:
            skipped.append(f"{entry.label}: {exc.reason}")
            continue
        except errors as exc:  # unreadable file (permissions, storage hiccup): try again next scan
            skipped.append(f"{entry.label}: cannot read: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one bad checkpoint never stops the scan (nor the controller)
            skipped.append(f"{entry.label}: cannot verify: {type(exc).__name__}: {exc}")
            continue
        step = manifest.metadata.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            skipped.append(
                f"{entry.label}: metadata has no step "
                "(write it with write_checkpoint(..., metadata={'step': n}))"
            )
            continue
        if manifest.created_at <= 0:
            skipped.append(f"{entry.label}: manifest has no created_at")
            continue
        size = sum(size for size, _ in manifest.files.values())
        points.append(CheckpointPoint(step=step, created_at=manifest.created_at, name=name, size_bytes=size))
    return RunScan(tuple(points), tuple(skipped))


# --------------------------------------------------------------------------- the estimate


def job_progress(
    points: Sequence[CheckpointPoint],
    *,
    total_steps: int,
    submitted_at: float,
    deadline_at: float,
    now: float,
) -> JobProgress | None:
    """Where the job stands at ``now``, estimated from its complete checkpoints (module docstring).

    None when fewer than two checkpoints with different steps and times exist (no rate yet).
    Raises ``ValueError`` naming the argument when ``total_steps`` is not a whole number > 0, a
    time is not finite, or ``deadline_at`` is not after ``submitted_at``.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
        raise ValueError(f"total_steps must be a whole number > 0, got {total_steps!r}")
    for label, value in (("submitted_at", submitted_at), ("deadline_at", deadline_at), ("now", now)):
        if not math.isfinite(value):
            raise ValueError(f"{label} must be a finite POSIX time, got {value!r}")
    if deadline_at <= submitted_at:
        raise ValueError(f"deadline_at ({deadline_at}) must be after submitted_at ({submitted_at})")
    ordered = sorted(points, key=lambda p: (p.created_at, p.step))
    if len(ordered) < 2:
        return None
    oldest, newest = ordered[0], ordered[-1]
    steps = newest.step - oldest.step
    seconds = newest.created_at - oldest.created_at
    if steps <= 0 or seconds <= 0:
        return None  # no progress between them (a restart from an older checkpoint): no rate yet
    hours_per_step = seconds / steps / 3600.0
    widest = max(b.step - a.step for a, b in pairwise(ordered) if b.step > a.step)
    checkpoint_hours = widest * hours_per_step
    work_total = total_steps * hours_per_step
    checkpointed = min(newest.step * hours_per_step, work_total)
    since = max(0.0, now - newest.created_at) / 3600.0
    done = min(checkpointed + min(since, checkpoint_hours), work_total)
    return JobProgress(
        submitted_at=submitted_at,
        deadline_at=deadline_at,
        work_total_hours=work_total,
        work_done_hours=done,
        checkpointed_hours=checkpointed,
        checkpoint_hours=checkpoint_hours,
    )


# --------------------------------------------------------------------------- one run, tick after tick


class RunWatch:
    """Reads one deadline job's run directory before each controller tick.

    Keeps the previous scan's points (so complete checkpoints are verified once) and the oldest
    ``created_at`` it has seen. The job's submission time is its manifest's ``submitted_at`` when
    it has one, else that oldest ``created_at`` (Ray may delete old checkpoints later; ``now``
    while there is none). Only ``deadline - now`` and the work figures matter to the policy's
    guards, so a late guess of the submission costs nothing. A storage URI is opened once, and
    again after a failure. ``read`` never raises: storage that cannot be read is a ``Reading``
    with no progress and a note saying so.
    """

    def __init__(self, job: DeadlineJob) -> None:
        self.job = job
        self._known: tuple[CheckpointPoint, ...] = ()
        self._first: float | None = None
        self._storage: tuple[pyarrow.fs.FileSystem, str] | None = None

    def _scan(self) -> RunScan:
        if not is_uri(self.job.run_dir):
            return scan_run(self.job.run_dir, known=self._known)
        if self._storage is None:
            try:
                errors = storage_errors()
            except ImportError as exc:
                return RunScan((), error=f"reading a storage URI needs pyarrow (pip install pyarrow): {exc}")
            try:
                self._storage = open_storage(self.job.run_dir)
            except errors as exc:
                return RunScan((), error=f"cannot open the storage: {exc}")
        fs, path = self._storage
        scan = scan_run(path, known=self._known, filesystem=fs)
        if scan.error:
            self._storage = None  # credentials or endpoint may change: open it afresh next time
        return scan

    def read(self, now: float) -> Reading:
        scan = self._scan()
        if scan.error:
            return Reading(
                None,
                (
                    f"cannot read the Train storage of {self.job.run_dir}; until it can be read the pool "
                    "moves on price alone"
                ),
                error=scan.error,
            )
        self._known = scan.points
        if scan.points:
            oldest = min(p.created_at for p in scan.points)
            self._first = oldest if self._first is None else min(self._first, oldest)
        newest = max(scan.points, key=lambda p: (p.created_at, p.step), default=None)
        size_gb = None if newest is None else newest.size_bytes / 1e9
        guesses = [t for t in (self.job.submitted_at, self._first) if t is not None]
        submitted = min(guesses) if guesses else now
        try:
            progress = job_progress(
                scan.points,
                total_steps=self.job.total_steps,
                submitted_at=submitted,
                deadline_at=self.job.deadline_at,
                now=now,
            )
        except ValueError as exc:
            return Reading(
                None,
                f"no deadline estimate for {self.job.run_dir}: {exc}",
                scan.skipped,
                checkpoint_gb=size_gb,
            )
        if progress is None:
            return Reading(
                None,
                (
                    f"{len(scan.points)} complete checkpoint(s) in {self.job.run_dir}; the deadline estimate "
                    "needs two at different steps (until then the pool moves on price alone)"
                ),
                scan.skipped,
                checkpoint_gb=size_gb,
            )
        return Reading(progress, "", scan.skipped, checkpoint_gb=size_gb)
