"""Thin helpers for Ray Train on a multi-cloud cluster: a run config from the cluster's settings, and
checkpoints that are verified before they are restored. Training scripts stay ordinary Ray Train
scripts; both helpers are conveniences, not requirements. Ray is imported only where it is used.
"""

from __future__ import annotations

from ray_multicloud.train.checkpoint import (
    MANIFEST,
    CheckpointCorrupt,
    Found,
    Manifest,
    newest_complete,
    read_manifest,
    resolve,
    verify_checkpoint,
    write_checkpoint,
)
from ray_multicloud.train.config import resolve_storage_path, run_config

__all__ = [
    "MANIFEST",
    "CheckpointCorrupt",
    "Found",
    "Manifest",
    "newest_complete",
    "read_manifest",
    "resolve",
    "resolve_storage_path",
    "run_config",
    "verify_checkpoint",
    "write_checkpoint",
]
