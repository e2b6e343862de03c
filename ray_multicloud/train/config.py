"""A Ray Train ``RunConfig`` built from the cluster's settings: shared storage, retries, checkpoints.

Only the ``RunConfig`` of a user's ``TorchTrainer`` changes; the training function stays an ordinary
Ray Train function. The rules:

* ``storage_path``: where every worker, on every cloud, can write and read checkpoints. An explicit
  ``storage_path`` (or ``$RMC_TRAIN_STORAGE``) wins; it must be ``s3://``, ``gs://``/``gcs://`` or
  ``abfs://``/``abfss://`` (read through pyarrow/fsspec), or a local path. A local path is only
  accepted when every cloud of the cluster is embedded on this machine (``local`` and ``private``
  drivers), and is then the default: ``<state_dir>/train``. A cluster with a real cloud and no URI
  is a ``ConfigError`` naming ``storage_path``.
* ``FailureConfig(max_failures=..., max_preemption_failures=-1)``: preemptions and price moves are
  retried without limit (they are the normal life of a spot job); real failures ``max_failures``
  times.
* ``CheckpointConfig(num_to_keep=...)``: keep a few, so a corrupted newest one can fall back to
  the previous complete one (``ray_multicloud.train.checkpoint.resolve``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray_multicloud.errors import ConfigError
from ray_multicloud.settings import ProviderSettings, load_cluster_yaml, load_settings

REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss")
EMBEDDED_DRIVERS = frozenset({"local", "private"})
STORAGE_ENV = "RMC_TRAIN_STORAGE"


def cluster_settings(cluster: str | Path | Mapping[str, Any] | ProviderSettings) -> ProviderSettings:
    """The provider settings of a cluster given as a YAML path, a parsed YAML, or settings."""
    if isinstance(cluster, ProviderSettings):
        return cluster
    raw = load_cluster_yaml(cluster) if isinstance(cluster, (str, Path)) else cluster
    if not isinstance(raw, Mapping) or not isinstance(raw.get("provider"), Mapping):
        raise ConfigError("provider", "the cluster config has no provider section")
    return load_settings(raw["provider"], str(raw.get("cluster_name") or "default"))


def embedded_only(settings: ProviderSettings) -> bool:
    """True when every cloud of the cluster runs on this machine (local and private drivers)."""
    return all(str(spec.get("driver", name)) in EMBEDDED_DRIVERS for name, spec in settings.clouds.items())


def resolve_storage_path(settings: ProviderSettings, storage_path: str | None = None) -> str:
    """The storage path a multi-cloud Train run must use (see the module docstring)."""
    chosen = storage_path or os.environ.get(STORAGE_ENV) or None
    if chosen is None:
        if embedded_only(settings):
            return str(settings.state_dir / "train")
        raise ConfigError(
            "storage_path",
            "this cluster spans real clouds: give storage every cloud can reach "
            f"(s3://bucket/path, gs://bucket/path or abfs://container@account/path) or set ${STORAGE_ENV}",
        )
    scheme, sep, _ = chosen.partition("://")
    if sep:
        if scheme.lower() not in REMOTE_SCHEMES:
            raise ConfigError("storage_path", f"scheme {scheme!r} is not one of {', '.join(REMOTE_SCHEMES)}")
        return chosen
    if not embedded_only(settings):
        raise ConfigError(
            "storage_path",
            f"{chosen!r} is a local path, which nodes on other clouds cannot read; use s3://, gs:// or abfs://",
        )
    return str(Path(chosen).expanduser().resolve())


def run_config(
    cluster: str | Path | Mapping[str, Any] | ProviderSettings,
    *,
    name: str,
    storage_path: str | None = None,
    max_failures: int = 3,
    num_to_keep: int | None = 3,
    **extra: Any,
) -> Any:
    """A ``ray.train.RunConfig`` for a run called ``name`` on this cluster.

    ``extra`` goes to ``RunConfig`` unchanged (``callbacks``, ``worker_runtime_env``, ...).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    settings = cluster_settings(cluster)
    return RunConfig(
        name=name,
        storage_path=resolve_storage_path(settings, storage_path),
        # Train V2's FailureConfig (the default in 2.60); the stubs still describe V1's.
        failure_config=FailureConfig(max_failures=max_failures, max_preemption_failures=-1),  # type: ignore[call-arg]
        checkpoint_config=CheckpointConfig(num_to_keep=num_to_keep),
        **extra,
    )
