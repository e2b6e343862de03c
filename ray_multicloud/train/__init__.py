"""Thin helpers for Ray Train on a multi-cloud cluster: a run config from the cluster's settings (and
the job's deadline, which the controller then finds), checkpoints that are verified before they are
restored, and a saver that checkpoints on an interruption notice as late as is safe. Training
scripts stay ordinary Ray Train scripts; the helpers are conveniences, not requirements. Ray is
imported only where it is used.
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
from ray_multicloud.train.notice import Action, Notice, NoticeSaver, ray_train_margin_s, save_now
from ray_multicloud.train.runconfig import resolve_storage_path, run_config

__all__ = [
    "MANIFEST",
    "Action",
    "CheckpointCorrupt",
    "Found",
    "Manifest",
    "Notice",
    "NoticeSaver",
    "newest_complete",
    "ray_train_margin_s",
    "read_manifest",
    "resolve",
    "resolve_storage_path",
    "run_config",
    "save_now",
    "verify_checkpoint",
    "write_checkpoint",
]
