"""Deadline jobs found on the head: Train runs that registered a deadline in their own storage.

A Train script declares its deadline in the run config it already builds
(``train.runconfig.run_config(..., deadline=..., total_steps=..., pool=...)``), which writes a
manifest beside the run's checkpoints: ``<storage_path>/<run name>/rmc-job.json``. The controller
finds every such run by itself (``discover_jobs``) and follows each with ``train.progress.RunWatch``;
there is nothing to declare on the controller's command line.

**The manifest** (``rmc-job.json``, UTF-8 JSON, written by ``train.runconfig.register_job``)::

    {"version": 1, "cluster": "rmc-local", "name": "llm-ft", "pool": "t4_spot",
     "total_steps": 1000, "deadline_at": 1795953600.0, "submitted_at": 1795888800.0}

* ``version``: 1 (an integer); another version is refused with a message to upgrade the head;
* ``cluster``: the cluster's ``cluster_name``; ``name``: the run name (one directory name);
  ``pool``: the node type its workers run on; all non-empty strings;
* ``total_steps``: a JSON integer > 0, the step the run's last checkpoint reaches;
* ``deadline_at``, ``submitted_at``: POSIX seconds, finite, the deadline after the submission
  (a resume keeps the first ``submitted_at``);
* other keys are ignored. The job's ``run_dir`` is where the manifest lies, not a field of it.

Three parts, the parser pure and the I/O at the edge:

* ``parse_manifest(text)`` (pure): the manifest as a ``DeadlineJob``; anything else is a
  ``ValueError`` that says what is wrong.
* ``storage_roots(settings)``: where the controller looks: ``provider.train_storage`` and
  ``$RMC_TRAIN_STORAGE`` when set (both when both are), else ``<state_dir>/train`` when every cloud
  is embedded (the same rules as ``train.runconfig.resolve_storage_path``; a root a run could not use
  is a ``ConfigError``), else nothing.
* ``discover_jobs(roots, cluster_name=...)`` (I/O): every ``<root>/*/rmc-job.json`` read through
  pyarrow's filesystems (local paths, ``s3://``, ``gs://``, ``abfs://``; ``checkpoint.open_storage``).
  It never raises: a root that cannot be listed, or a manifest that cannot be read or parsed, is
  one line of ``Discovery.problems`` naming the path and what is wrong, and the rest is still
  read. A root that does not exist yet holds no jobs (no problem). Jobs of another cluster are
  skipped silently; jobs past their deadline are skipped with a line in ``Discovery.ignored``.
  Whether a run has finished is not known here (only its checkpoints say, through ``RunWatch``:
  a run at ``total_steps`` reads as all work done, which asks for no deadline move). The policy
  follows one deadline job per pool: when several name the same pool, the one due first is kept
  (the safe one: it asks for on-demand soonest) and a problem line names the others.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ray_multicloud.cluster_config.provider_section import ProviderSettings
from ray_multicloud.train.checkpoint import is_uri, list_storage_dir, open_storage, storage_errors
from ray_multicloud.train.progress import DeadlineJob
from ray_multicloud.train.runconfig import (
    JOB_MANIFEST,
    JOB_MANIFEST_VERSION,
    STORAGE_ENV,
    check_storage_path,
    default_storage_path,
)


@dataclass(frozen=True, slots=True)
class Discovery:
    """``discover_jobs``'s answer: the deadline jobs of this cluster (at most one per pool, sorted by
    pool), what could not be read (``problems``, one line each, naming the path), and the jobs left
    out on purpose (``ignored``: past their deadline)."""

    jobs: tuple[DeadlineJob, ...]
    problems: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the manifest (pure)


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _time(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number of POSIX seconds, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(f"{key} must be a finite number of POSIX seconds, got {value!r}") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{key} must be a finite number of POSIX seconds, got {value!r}")
    return seconds


def parse_manifest(text: str, *, run_dir: str = "") -> DeadlineJob:
    """An ``rmc-job.json`` manifest (module docstring) as the ``DeadlineJob`` it registers, with
    ``run_dir`` (where it was found). Raises ``ValueError`` saying what is malformed; nothing else."""
    try:
        raw = json.loads(text)
    except RecursionError:
        raise ValueError("not a job manifest: JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"a job manifest is a JSON object, got {type(raw).__name__}")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"version must be the integer {JOB_MANIFEST_VERSION}, got {version!r}")
    if version != JOB_MANIFEST_VERSION:
        raise ValueError(
            f"version {version} is not one this head reads ({JOB_MANIFEST_VERSION}); upgrade "
            "ray_multicloud on the head to the version the job ran with"
        )
    cluster = _text(raw, "cluster")
    name = _text(raw, "name")
    if "/" in name:
        raise ValueError(f"name must be one directory name, got {name!r}")
    pool = _text(raw, "pool")
    steps = raw.get("total_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"total_steps must be a whole number > 0, got {steps!r}")
    deadline_at = _time(raw, "deadline_at")
    submitted_at = _time(raw, "submitted_at")
    if deadline_at <= submitted_at:
        raise ValueError(f"deadline_at ({deadline_at}) must be after submitted_at ({submitted_at})")
    return DeadlineJob(
        pool=pool,
        run_dir=run_dir,
        total_steps=steps,
        deadline_at=deadline_at,
        cluster=cluster,
        name=name,
        submitted_at=submitted_at,
    )


# --------------------------------------------------------------------------- where to look


def storage_roots(settings: ProviderSettings, *, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The storage roots the controller scans for deadline jobs (module docstring), without
    repeats. ``environ`` defaults to ``os.environ``. Raises ``ConfigError`` naming
    ``provider.train_storage`` or ``$RMC_TRAIN_STORAGE`` for a root no run could use."""
    env = os.environ if environ is None else environ
    roots: list[str] = []
    for key, value in (
        ("provider.train_storage", settings.train_storage),
        (f"${STORAGE_ENV}", env.get(STORAGE_ENV)),
    ):
        if value:
            roots.append(check_storage_path(settings, value, key=key))
    if not roots:
        default = default_storage_path(settings)
        if default is not None:
            roots.append(default)
    return tuple(dict.fromkeys(roots))


def _child(root: str, name: str) -> str:
    """``<root>/<name>``, keeping a URI's query (``?endpoint_override=...``) at its end."""
    if is_uri(root):
        head, sep, query = root.partition("?")
        return f"{head.rstrip('/')}/{name}" + (f"?{query}" if sep else "")
    return os.path.join(root, name)


def _shown(location: str) -> str:
    """A location for a message: a URI without its query (which may hold keys)."""
    return location.partition("?")[0] if is_uri(location) else location


def _when(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{seconds} (POSIX s)"


# --------------------------------------------------------------------------- discovery (I/O)


def discover_jobs(roots: Iterable[str], *, cluster_name: str, now: float | None = None) -> Discovery:
    """The deadline jobs of cluster ``cluster_name`` registered under ``roots`` (module docstring).
    ``now`` (default: the clock) decides which deadlines have passed. Never raises."""
    at = time.time() if now is None else now
    try:
        errors = storage_errors()
    except ImportError as exc:
        return Discovery((), (f"reading Train storage needs pyarrow (pip install pyarrow): {exc}",))
    found: list[DeadlineJob] = []
    problems: list[str] = []
    ignored: list[str] = []
    for root in dict.fromkeys(roots):
        try:
            fs, base = open_storage(root)
            entries = list_storage_dir(fs, base)
        except errors as exc:
            problems.append(
                f"{_shown(root)}: cannot list the Train storage: {exc}; check its address and this head's "
                f"access to it (provider.train_storage, ${STORAGE_ENV})"
            )
            continue
        import pyarrow.fs

        for entry in entries:
            if entry.type != pyarrow.fs.FileType.Directory or entry.base_name.startswith("."):
                continue
            run_dir = _child(root, entry.base_name)
            where = f"{_shown(run_dir)}/{JOB_MANIFEST}"
            try:
                with fs.open_input_stream(f"{entry.path}/{JOB_MANIFEST}") as stream:
                    body = stream.read()
            except FileNotFoundError:
                continue  # a run without a deadline
            except errors as exc:
                problems.append(f"{where}: cannot read: {exc}")
                continue
            try:
                job = parse_manifest(body.decode("utf-8"), run_dir=run_dir)
            except ValueError as exc:  # UnicodeDecodeError is one too
                problems.append(
                    f"{where}: not a valid job manifest ({exc}); re-run the job's "
                    "run_config(..., deadline=...) to rewrite it, or delete it"
                )
                continue
            if job.cluster != cluster_name:
                continue
            if job.deadline_at <= at:
                ignored.append(
                    f"{_shown(run_dir)}: its deadline {_when(job.deadline_at)} has passed; no deadline moves"
                )
                continue
            found.append(job)
    by_pool: dict[str, list[DeadlineJob]] = {}
    for job in found:
        by_pool.setdefault(job.pool, []).append(job)
    jobs: list[DeadlineJob] = []
    for pool in sorted(by_pool):
        ranked = sorted(by_pool[pool], key=lambda j: (j.deadline_at, j.run_dir))
        jobs.append(ranked[0])
        if len(ranked) > 1:
            others = ", ".join(_shown(j.run_dir) for j in ranked[1:])
            problems.append(
                f"pool {pool} has {len(ranked)} deadline jobs; following the one due first "
                f"({_shown(ranked[0].run_dir)}, {_when(ranked[0].deadline_at)}), not {others}: run one "
                "deadline job per pool"
            )
    return Discovery(tuple(jobs), tuple(problems), tuple(ignored))
