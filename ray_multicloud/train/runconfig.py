"""A Ray Train ``RunConfig`` built from the cluster's settings: shared storage, retries, checkpoints,
and, for a job with a deadline, its registration where the head finds it.

Only the ``RunConfig`` of a user's ``TorchTrainer`` changes; the training function stays an ordinary
Ray Train function. The rules:

* ``storage_path``: where every worker, on every cloud, can write and read checkpoints. The first
  one set wins: an explicit ``storage_path``, ``$RMC_TRAIN_STORAGE``, the cluster's
  ``provider.train_storage``. It must be ``s3://``, ``gs://``/``gcs://`` or ``abfs://``/``abfss://``
  (read through pyarrow, as Ray Train reads it), or a local path. A local path is only accepted
  when every cloud of the cluster is embedded on this machine (``local`` and ``private`` drivers),
  and is then the default: ``<state_dir>/train``. A cluster with a real cloud and no URI is a
  ``ConfigError`` naming ``storage_path``.
* ``FailureConfig(max_failures=..., max_preemption_failures=-1)``: preemptions and price moves are
  retried without limit (they are the normal life of a spot job); real failures ``max_failures``
  times.
* ``CheckpointConfig(num_to_keep=...)``: keep a few, so a corrupted newest one can fall back to
  the previous complete one (``ray_multicloud.train.checkpoint.resolve``).

**Deadline jobs.** ``run_config(..., deadline=..., total_steps=..., pool=...)`` declares that the
run must finish by ``deadline``; the head's controller then moves the pool's nodes to on-demand
when spot would make it late (``policy.rebalance``, "Deadline moves"). It needs:

* ``deadline``: an aware ``datetime``, an ISO-8601 string with a time zone
  (``"2026-11-29T06:00:00Z"``), or a ``timedelta`` counted from now; it must be in the future;
* ``total_steps``: a whole number > 0, the ``step`` the run's last checkpoint reaches (checkpoints
  carry their step: ``write_checkpoint(..., metadata={"step": step})``);
* ``pool``: the node type (with a ``node_config.pool``) the job's workers run on; it may be left
  out when the cluster YAML has exactly one pool that may buy spot;
* storage the head scans (``train.jobs.storage_roots``): ``provider.train_storage``,
  ``$RMC_TRAIN_STORAGE`` or the embedded default, not some other ``storage_path``.

Each problem is a ``ConfigError`` naming the argument and what to pass, raised before anything is
written. Then the job is registered: the manifest ``rmc-job.json`` (format in ``train.jobs``) is
written into ``<storage_path>/<name>/`` through ``pyarrow.fs`` (the layer Ray Train 2.60 opens
``storage_path`` with), atomically: on a local disk a temporary file renamed over it, in an object
store one object written in one upload (it becomes visible only once complete). Re-running the
same script (a resume) rewrites it with the new deadline, steps and pool but keeps the first
``submitted_at``. Storage that cannot be read or written is a ``ConfigError`` naming
``storage_path``. ``total_steps`` without ``deadline`` is checked and nothing is registered (a
manifest left by an earlier run with a deadline stays until that deadline passes; delete
``<storage_path>/<name>/rmc-job.json`` to drop it sooner).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ray_multicloud.cluster_config.provider_section import ProviderSettings, load_cluster_yaml, load_settings
from ray_multicloud.errors import ConfigError
from ray_multicloud.train.checkpoint import is_uri, open_storage, storage_errors
from ray_multicloud.train.progress import DeadlineJob
from ray_multicloud.types import CapacityType

REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss")
EMBEDDED_DRIVERS = frozenset({"local", "private"})
STORAGE_ENV = "RMC_TRAIN_STORAGE"
JOB_MANIFEST = "rmc-job.json"
JOB_MANIFEST_VERSION = 1
DEADLINE_FORMS = (
    "an aware datetime, an ISO-8601 string with a time zone (2026-11-29T06:00:00Z) or a timedelta from now"
)

ClusterLike = str | Path | Mapping[str, Any] | ProviderSettings


def _load(cluster: ClusterLike) -> tuple[ProviderSettings, Mapping[str, Any] | None]:
    """The cluster's provider settings, and its parsed YAML (None when given as settings)."""
    if isinstance(cluster, ProviderSettings):
        return cluster, None
    raw = load_cluster_yaml(cluster) if isinstance(cluster, (str, Path)) else cluster
    if not isinstance(raw, Mapping) or not isinstance(raw.get("provider"), Mapping):
        raise ConfigError("provider", "the cluster config has no provider section")
    return load_settings(raw["provider"], str(raw.get("cluster_name") or "default")), raw


def cluster_settings(cluster: ClusterLike) -> ProviderSettings:
    """The provider settings of a cluster given as a YAML path, a parsed YAML, or settings."""
    return _load(cluster)[0]


def embedded_only(settings: ProviderSettings) -> bool:
    """True when every cloud of the cluster runs on this machine (local and private drivers)."""
    return all(str(spec.get("driver", name)) in EMBEDDED_DRIVERS for name, spec in settings.clouds.items())


def default_storage_path(settings: ProviderSettings) -> str | None:
    """``<state_dir>/train`` when every cloud is embedded, else None (real clouds need a URI)."""
    return str(settings.state_dir / "train") if embedded_only(settings) else None


def check_storage_path(settings: ProviderSettings, path: str, *, key: str = "storage_path") -> str:
    """``path`` checked against the cluster (module docstring) and normalised; ``ConfigError(key)``
    for a scheme pyarrow storage of Train does not cover, or a local path on a cluster with real
    clouds. A local path is made absolute."""
    scheme, sep, _ = path.partition("://")
    if sep:
        if scheme.lower() not in REMOTE_SCHEMES:
            raise ConfigError(key, f"scheme {scheme!r} is not one of {', '.join(REMOTE_SCHEMES)}")
        return path
    if not embedded_only(settings):
        raise ConfigError(
            key,
            f"{path!r} is a local path, which nodes on other clouds cannot read; use s3://, gs:// or abfs://",
        )
    return str(Path(path).expanduser().resolve())


def resolve_storage_path(settings: ProviderSettings, storage_path: str | None = None) -> str:
    """The storage path a multi-cloud Train run must use (see the module docstring)."""
    for key, value in (
        ("storage_path", storage_path),
        (f"${STORAGE_ENV}", os.environ.get(STORAGE_ENV)),
        ("provider.train_storage", settings.train_storage),
    ):
        if value:
            return check_storage_path(settings, value, key=key)
    default = default_storage_path(settings)
    if default is None:
        raise ConfigError(
            "storage_path",
            "this cluster spans real clouds: give storage every cloud can reach "
            "(s3://bucket/path, gs://bucket/path or abfs://container@account/path), set "
            f"${STORAGE_ENV}, or set provider.train_storage in the cluster YAML",
        )
    return default


# --------------------------------------------------------------------------- deadline jobs: checks (pure)


def deadline_time(deadline: object, *, now: float) -> float:
    """``deadline`` (module docstring) as POSIX seconds; ``ConfigError("deadline")`` unless it is one
    of the accepted forms and after ``now``."""
    if isinstance(deadline, timedelta):
        if deadline <= timedelta(0):
            raise ConfigError(
                "deadline",
                f"timedelta {deadline} is not positive; pass the time left, e.g. timedelta(hours=18)",
            )
        at = now + deadline.total_seconds()
    elif isinstance(deadline, datetime):
        if deadline.tzinfo is None or deadline.utcoffset() is None:
            raise ConfigError(
                "deadline",
                f"datetime {deadline.isoformat()} has no time zone; pass datetime(..., tzinfo=timezone.utc)",
            )
        at = deadline.timestamp()
    elif isinstance(deadline, str):
        try:
            when = datetime.fromisoformat(deadline.strip())
        except ValueError:
            raise ConfigError(
                "deadline", f"{deadline!r} is not an ISO-8601 time; pass e.g. '2026-11-29T06:00:00Z'"
            ) from None
        if when.tzinfo is None or when.utcoffset() is None:
            raise ConfigError(
                "deadline", f"{deadline!r} has no time zone; end it with Z for UTC or an offset like +01:00"
            )
        at = when.timestamp()
    else:
        raise ConfigError("deadline", f"got {type(deadline).__name__} {deadline!r}; pass {DEADLINE_FORMS}")
    if not math.isfinite(at) or at <= now:
        shown = datetime.fromtimestamp(at, UTC).isoformat() if math.isfinite(at) else repr(at)
        raise ConfigError(
            "deadline",
            f"{shown} is not in the future (now is {datetime.fromtimestamp(now, UTC).isoformat()}); "
            "pass a later time",
        )
    return at


def check_total_steps(total_steps: object) -> int:
    """``total_steps`` as a whole number > 0; ``ConfigError("total_steps")`` otherwise."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
        raise ConfigError(
            "total_steps",
            f"got {total_steps!r}; pass a whole number > 0: the step the run's last checkpoint reaches",
        )
    return total_steps


def spot_pools(cluster: Mapping[str, Any]) -> dict[str, bool]:
    """The node types of a parsed cluster YAML that have a ``node_config.pool``, each with whether its
    ``capacity_types`` allow spot (they do when unset). Unparsable capacity types do not count as
    spot; the provider's own checks report them."""
    pools: dict[str, bool] = {}
    node_types = cluster.get("available_node_types")
    if not isinstance(node_types, Mapping):
        return pools
    for name, spec in node_types.items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        pool = node_config.get("pool") if isinstance(node_config, Mapping) else None
        if not isinstance(pool, Mapping):
            continue
        kinds = pool.get("capacity_types", [CapacityType.SPOT.value])
        spot = False
        for text in kinds if isinstance(kinds, list | tuple) else [kinds]:
            try:
                spot = spot or CapacityType.parse(str(text)) is CapacityType.SPOT
            except ValueError:
                continue
        pools[str(name)] = spot
    return pools


def choose_pool(cluster: Mapping[str, Any] | None, pool: object) -> str:
    """The pool a deadline job runs on: ``pool`` checked against the cluster YAML's pools, or, when
    it is None, the YAML's one spot pool. ``ConfigError("pool")`` listing the pools otherwise; with
    no YAML (settings given) the pool cannot be checked and must be given."""
    if pool is None:
        name = None
    elif isinstance(pool, str) and pool.strip():
        name = pool.strip()
    else:
        raise ConfigError("pool", f"got {pool!r}; pass the node type name the job's workers run on")
    if cluster is None:
        if name is None:
            raise ConfigError(
                "pool",
                "the cluster was given as ProviderSettings, which do not list node types; pass "
                "pool=<node type the job's workers run on>",
            )
        return name
    pools = spot_pools(cluster)
    listed = ", ".join(sorted(pools)) or "none"
    if name is None:
        spot = sorted(name for name, allows in pools.items() if allows)
        if len(spot) == 1:
            return spot[0]
        raise ConfigError(
            "pool",
            f"the cluster has {len(spot)} pools that buy spot ({', '.join(spot) or 'none'}); pass "
            f"pool=<node type the job's workers run on> (its pools: {listed})",
        )
    if name not in pools:
        close = difflib.get_close_matches(name, list(pools), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            "pool",
            f"{name!r} is not a pool of this cluster (node types with a node_config.pool: {listed}){hint}",
        )
    return name


def render_manifest(job: DeadlineJob) -> str:
    """The ``rmc-job.json`` text of a registered job (format in ``train.jobs``; ``run_dir`` is where
    the manifest lies, not in it)."""
    body = {
        "version": JOB_MANIFEST_VERSION,
        "cluster": job.cluster,
        "name": job.name,
        "pool": job.pool,
        "total_steps": job.total_steps,
        "deadline_at": job.deadline_at,
        "submitted_at": job.submitted_at,
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


# ------------------------------------------------------------------------ deadline jobs: registration (I/O)


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _storage_failure(location: str, exc: Exception) -> ConfigError:
    return ConfigError(
        "storage_path",
        f"cannot reach {location}: {exc}; check that this machine can reach that storage (address, "
        "credentials, bucket), or pass another storage_path / set provider.train_storage",
    )


def register_job(
    storage_path: str,
    *,
    cluster: str,
    name: str,
    pool: str,
    total_steps: int,
    deadline_at: float,
    now: float,
) -> DeadlineJob:
    """Write (or, on a resume, rewrite) the job's manifest into ``<storage_path>/<name>/`` (module
    docstring) and return the job as the head will read it. ``ConfigError("storage_path")`` when
    the storage cannot be read or written. Arguments are taken as checked."""
    from ray_multicloud.train.jobs import parse_manifest  # train.jobs imports this module

    location = _join(storage_path, name)
    errors = storage_errors()
    try:
        fs, base = open_storage(storage_path)
    except errors as exc:
        raise _storage_failure(storage_path, exc) from exc
    run_dir = _join(base, name)
    target = f"{run_dir}/{JOB_MANIFEST}"
    submitted = now
    try:
        with fs.open_input_stream(target) as stream:
            earlier = parse_manifest(stream.read().decode("utf-8"))
        if earlier.submitted_at is not None and earlier.submitted_at < deadline_at:
            submitted = min(submitted, earlier.submitted_at)
    except FileNotFoundError:
        pass
    except (ValueError, UnicodeDecodeError):
        pass  # not a manifest we can read (hand-edited, older format): this registration replaces it
    except errors as exc:
        raise _storage_failure(f"{location}/{JOB_MANIFEST}", exc) from exc
    job = DeadlineJob(
        pool=pool,
        run_dir=location,
        total_steps=total_steps,
        deadline_at=deadline_at,
        cluster=cluster,
        name=name,
        submitted_at=submitted,
    )
    data = render_manifest(job).encode("utf-8")
    try:
        if is_uri(storage_path):
            with fs.open_output_stream(target) as out:
                out.write(data)
        else:
            _write_local_atomically(Path(run_dir), data)
    except errors as exc:
        raise _storage_failure(f"{location}/{JOB_MANIFEST}", exc) from exc
    return job


def _write_local_atomically(directory: Path, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{JOB_MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / JOB_MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- the run config


def run_config(
    cluster: ClusterLike,
    *,
    name: str,
    storage_path: str | None = None,
    max_failures: int = 3,
    num_to_keep: int | None = 3,
    deadline: datetime | str | timedelta | None = None,
    total_steps: int | None = None,
    pool: str | None = None,
    **extra: Any,
) -> Any:
    """A ``ray.train.RunConfig`` for a run called ``name`` on this cluster.

    With ``deadline`` the run is registered as a deadline job (module docstring); every argument is
    checked first (``ConfigError`` naming it), and the manifest is written after the ``RunConfig``
    is built. ``extra`` goes to ``RunConfig`` unchanged (``callbacks``, ``worker_runtime_env``, ...).
    """
    settings, raw = _load(cluster)
    storage = resolve_storage_path(settings, storage_path)
    steps = check_total_steps(total_steps) if total_steps is not None else None
    job_args: dict[str, Any] | None = None
    if deadline is not None:
        now = time.time()
        deadline_at = deadline_time(deadline, now=now)
        if steps is None:
            raise ConfigError(
                "total_steps",
                "a deadline needs total_steps=<the step the run's last checkpoint reaches>, so the "
                "controller can tell how much work is left",
            )
        chosen_pool = choose_pool(raw, pool)
        if (
            not isinstance(name, str)
            or not name
            or "/" in name
            or name.startswith(".")
            or name != name.strip()
        ):
            raise ConfigError(
                "name", f"got {name!r}; a deadline job's name must be one directory name (no '/')"
            )
        _check_scanned(settings, storage)
        job_args = {
            "cluster": settings.cluster_name,
            "name": name,
            "pool": chosen_pool,
            "total_steps": steps,
            "deadline_at": deadline_at,
            "now": now,
        }

    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    config = RunConfig(
        name=name,
        storage_path=storage,
        # Train V2's FailureConfig (the default in 2.60); the stubs still describe V1's.
        failure_config=FailureConfig(max_failures=max_failures, max_preemption_failures=-1),  # type: ignore[call-arg]
        checkpoint_config=CheckpointConfig(num_to_keep=num_to_keep),
        **extra,
    )
    if job_args is not None:
        register_job(storage, **job_args)
    return config


def _check_scanned(settings: ProviderSettings, storage: str) -> None:
    """A deadline job must keep its run where the head looks (``train.jobs.storage_roots``)."""
    from ray_multicloud.train.jobs import storage_roots  # train.jobs imports this module

    roots = storage_roots(settings)
    if _place(storage) not in {_place(root) for root in roots}:
        scanned = ", ".join(roots) or "nothing (set provider.train_storage)"
        raise ConfigError(
            "storage_path",
            f"{storage} is not where the controller looks for deadline jobs ({scanned}); drop "
            "storage_path, or set provider.train_storage in the cluster YAML to it",
        )


def _place(storage: str) -> str:
    """A storage path in one spelling: a URI without a trailing '/', a local path resolved."""
    return storage.rstrip("/") if is_uri(storage) else str(Path(storage).expanduser().resolve())
