"""A cluster YAML's worker setup sections, read per node type into ``WorkerSetup``.

Ray's own keys, with Ray's meanings: ``initialization_commands``, ``setup_commands`` +
``worker_setup_commands`` (a node type's own ``worker_setup_commands`` replace both, as Ray's
updater does), ``file_mounts`` (``{remote path: local path or s3:// / gs:// URI}``) and ``docker``
(``image`` / ``worker_image``, ``run_options`` + ``worker_run_options``, ``container_name``;
a node type's ``docker`` section overrides keys of the top-level one).

With ``disable_node_updaters: true`` no updater runs on a worker, so ``ray up``'s
``bootstrap_config`` reads these sections here and writes each node type's ``WorkerSetup`` into the
provider section (``provider._worker_setup``: the autoscaler's provider sees only the provider
section and a node type's ``node_config``); the drivers render it into the worker's startup script
(``clouds/_startup.py``).

Local ``file_mounts`` sources are packed here, in the ``ray up`` client where they exist, as a
deterministic gzipped tar inlined (base64) in the startup script. User data is small (AWS: 16 KiB
for the whole script), so at most ``INLINE_LIMIT_BYTES`` compressed per node type may be inlined;
above that, a ``ConfigError`` names the mount and says to use a bucket URI or the image instead.

Bad input fails here, before anything launches: a local source that does not exist, a remote path
that is not absolute or ``~/...``, a URI scheme other than s3/gs, a malformed docker image name.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray_multicloud.clouds.base import WorkerSetup
from ray_multicloud.errors import ConfigError

INLINE_LIMIT_BYTES = 8 * 1024  # compressed, per node type: leaves room in AWS's 16 KiB user data
RAW_LIMIT_BYTES = 16 * 1024 * 1024  # never read more than this to find out it will not fit
URI_SCHEMES = ("s3://", "gs://")
PROVIDER_KEY = "_worker_setup"

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOCKER_REF = re.compile(
    r"^(?:(?P<registry>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?)/)?"
    rf"(?P<name>{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?$"
)


def check_docker_image(key: str, image: object) -> str:
    """``image`` as a Docker reference (``[registry[:port]/]name[:tag][@digest]``, lowercase name);
    ``ConfigError`` naming ``key`` otherwise."""
    fix = "use a Docker reference such as rayproject/ray:2.60.0-gpu or nvcr.io/nvidia/pytorch:24.05-py3"
    if not isinstance(image, str) or not image.strip():
        raise ConfigError(key, f"{image!r} is not an image name; {fix}")
    image = image.strip()
    if len(image) > 255 or not _DOCKER_REF.match(image):
        raise ConfigError(key, f"{image!r} is not a valid Docker image reference; {fix}")
    return image


def _commands(key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ConfigError(key, f"must be a list of shell commands (strings), got {value!r}")
    return tuple(value)


def _remote_path(key: str, remote: object) -> str:
    if not isinstance(remote, str) or not (remote.startswith(("/", "~/")) or remote == "~"):
        raise ConfigError(key, f"remote path {remote!r} must be absolute or start with ~/")
    return remote.rstrip("/") or "/"


def _raw_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = Path(root) / name
            if not full.is_symlink():
                total += full.stat().st_size
            if total > RAW_LIMIT_BYTES:
                return total
    return total


def pack(source: Path, member: str | None = None) -> bytes:
    """A deterministic gzipped tar of ``source``: a directory's contents (relative names), or one
    file named ``member``. Same input, same bytes (mtime, owner and order fixed), so the bootstrap
    config's hash does not change between ``ray up`` runs."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if source.is_file():
            tar.add(source, arcname=member or source.name, filter=clean)
        else:
            for root, dirs, files in os.walk(source):
                dirs.sort()
                for name in sorted(dirs) + sorted(files):
                    full = Path(root) / name
                    rel = full.relative_to(source).as_posix()
                    tar.add(full, arcname=rel, recursive=False, filter=clean)
    return gzip.compress(buf.getvalue(), mtime=0)


def _file_mounts(
    mounts: object, base_dir: Path
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    if mounts is None:
        return (), ()
    if not isinstance(mounts, Mapping):
        raise ConfigError("file_mounts", f"must map remote paths to local paths or URIs, got {mounts!r}")
    inline: list[tuple[str, str]] = []
    remote: list[tuple[str, str]] = []
    used = 0
    for target, raw in sorted(mounts.items(), key=lambda kv: str(kv[0])):
        key = f"file_mounts.{target!r}"
        path = _remote_path(key, target)
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(key, f"source {raw!r} must be a local path or an s3:// / gs:// URI")
        source = raw.strip()
        if "://" in source:
            if not source.startswith(URI_SCHEMES) or len(source.split("://", 1)[1].strip("/")) == 0:
                raise ConfigError(
                    key,
                    f"{source!r}: only s3://bucket/path and gs://bucket/path URIs are fetched at boot "
                    "(the instance's own identity must be able to read them); copy other sources to one",
                )
            remote.append((path, source))
            continue
        local = Path(source).expanduser()
        if not local.is_absolute():
            local = base_dir / local
        if not local.exists():
            raise ConfigError(
                key,
                f"local source {str(local)!r} does not exist; fix the path (relative paths are read from "
                "the directory you run `ray up` / `ray-multicloud plan` in) or remove the mount",
            )
        fix = (
            f"at most {INLINE_LIMIT_BYTES // 1024} KiB (gzipped) of local file_mounts per node type fit "
            "in a worker's user data; put larger trees in an s3:// or gs:// bucket and mount its URI "
            "(fetched at boot), or bake them into the image or the docker image"
        )
        if _raw_size(local) > RAW_LIMIT_BYTES:
            raise ConfigError(key, f"{str(local)!r} holds more than {RAW_LIMIT_BYTES >> 20} MiB; {fix}")
        if local.is_file():
            # A file: extract into the target's directory under the target's name.
            parent, _, name = path.rpartition("/")
            blob = pack(local, member=name)
            extract_to = parent or "/"
        else:
            blob = pack(local)
            extract_to = path
        used += len(blob)
        if used > INLINE_LIMIT_BYTES:
            raise ConfigError(key, f"{str(local)!r} brings the inlined total to {used} bytes gzipped; {fix}")
        inline.append((extract_to, base64.b64encode(blob).decode("ascii")))
    return tuple(inline), tuple(remote)


def _docker(
    config: Mapping[str, Any], node_type: str, spec: Mapping[str, Any]
) -> tuple[str, tuple[str, ...], str]:
    top = config.get("docker") or {}
    own = spec.get("docker") or {}
    for key, section in (("docker", top), (f"available_node_types.{node_type}.docker", own)):
        if not isinstance(section, Mapping):
            raise ConfigError(key, f"must be a mapping (image, run_options, ...), got {section!r}")
    docker = {**top, **own}
    image = docker.get("worker_image") or docker.get("image")
    if not image:
        return "", (), "ray_container"
    where = "worker_image" if docker.get("worker_image") else "image"
    key = f"available_node_types.{node_type}.docker.{where}" if where in own else f"docker.{where}"
    image = check_docker_image(key, image)
    options = _commands("docker.run_options", docker.get("run_options")) + _commands(
        "docker.worker_run_options", docker.get("worker_run_options")
    )
    name = str(docker.get("container_name") or "ray_container")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError("docker.container_name", f"{name!r} is not a valid container name")
    return image, options, name


def worker_setup(
    config: Mapping[str, Any], node_type: str, *, merged: bool, base_dir: Path | None = None
) -> WorkerSetup:
    """The worker setup of ``node_type``. ``merged``: the config went through Ray's
    ``prepare_config`` (as in ``bootstrap_config``), whose ``worker_setup_commands`` already begin
    with ``setup_commands``; a raw YAML (``plan``) is merged here the same way."""
    types = config.get("available_node_types") or {}
    spec = types.get(node_type) or {}
    if "worker_setup_commands" in spec:
        setup = _commands(f"available_node_types.{node_type}.worker_setup_commands",
                          spec["worker_setup_commands"])
    else:
        setup = _commands("worker_setup_commands", config.get("worker_setup_commands"))
        if not merged:
            setup = _commands("setup_commands", config.get("setup_commands")) + setup
    if "initialization_commands" in spec:
        init = _commands(f"available_node_types.{node_type}.initialization_commands",
                         spec["initialization_commands"])
    else:
        init = _commands("initialization_commands", config.get("initialization_commands"))
    inline, remote = _file_mounts(config.get("file_mounts"), base_dir or Path.cwd())
    image, options, name = _docker(config, node_type, spec)
    return WorkerSetup(
        initialization_commands=init,
        setup_commands=setup,
        inline_files=inline,
        remote_files=remote,
        docker_image=image,
        docker_run_options=options,
        container_name=name,
    )


def worker_setups(
    config: Mapping[str, Any], *, merged: bool, base_dir: Path | None = None
) -> dict[str, WorkerSetup]:
    """Every worker node type's setup (the head's is run by ``ray up`` itself)."""
    head = config.get("head_node_type")
    return {
        str(name): worker_setup(config, str(name), merged=merged, base_dir=base_dir)
        for name in (config.get("available_node_types") or {})
        if name != head
    }


def setup_to_json(setup: WorkerSetup) -> dict[str, Any]:
    """A YAML/JSON-safe form (lists, not tuples) for the provider section."""
    return {
        "initialization_commands": list(setup.initialization_commands),
        "setup_commands": list(setup.setup_commands),
        "inline_files": [list(p) for p in setup.inline_files],
        "remote_files": [list(p) for p in setup.remote_files],
        "docker_image": setup.docker_image,
        "docker_run_options": list(setup.docker_run_options),
        "container_name": setup.container_name,
    }


def setup_from_json(data: Mapping[str, Any]) -> WorkerSetup:
    """The inverse of ``setup_to_json``."""
    return WorkerSetup(
        initialization_commands=tuple(str(c) for c in data.get("initialization_commands", ())),
        setup_commands=tuple(str(c) for c in data.get("setup_commands", ())),
        inline_files=tuple((str(a), str(b)) for a, b in data.get("inline_files", ())),
        remote_files=tuple((str(a), str(b)) for a, b in data.get("remote_files", ())),
        docker_image=str(data.get("docker_image", "")),
        docker_run_options=tuple(str(o) for o in data.get("docker_run_options", ())),
        container_name=str(data.get("container_name") or "ray_container"),
    )


def write_into_provider(cluster_config: dict[str, Any], *, merged: bool = True) -> None:
    """``bootstrap_config``'s step: each worker node type's setup into ``provider._worker_setup``,
    replacing what an earlier run wrote (idempotent). Node types with nothing to set up are left out."""
    setups = worker_setups(cluster_config, merged=merged)
    provider = cluster_config.setdefault("provider", {})
    provider[PROVIDER_KEY] = {name: setup_to_json(s) for name, s in setups.items() if not s.empty}


def setup_of(provider_config: Mapping[str, Any], node_type: str) -> WorkerSetup | None:
    """The setup ``write_into_provider`` recorded for ``node_type`` (None: none)."""
    table = provider_config.get(PROVIDER_KEY) or {}
    data = table.get(node_type) if isinstance(table, Mapping) else None
    return setup_from_json(data) if isinstance(data, Mapping) else None
