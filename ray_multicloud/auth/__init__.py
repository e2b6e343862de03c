"""An authenticated cluster by default: Ray token auth on every node, TLS between nodes on request.

Keys of the ``provider:`` section::

    auth_mode: token      # default; `disabled` turns Ray's token auth off (say why in the YAML)
    tls: false            # true: Ray's gRPC between nodes (and drivers) runs over mutual TLS with
                          # certificates the project makes (auth/tls.py); local/private clouds only

How the token travels (never through user data, tags, argv or logs):

1. ``ray up`` creates the head node; the provider (in the ``ray up`` client) makes the cluster's
   token (256 random bits, as Ray's own ``ray get-auth-token --generate``) and, with ``tls: true``,
   a CA and node certificate, and puts them into the secret store of every configured cloud
   (``ensure_cluster_secrets``): the local/private clouds' 0600 files under ``state_dir``, AWS SSM
   Parameter Store ``SecureString``. A secret that exists already is kept (a second ``ray up``).
2. The head's commands start with ``python -m ray_multicloud.auth head`` (``head_commands``), which
   copies the secrets from the head's cloud into ``~/.ray_multicloud/`` (0600) with the head's own
   identity; every head command runs with ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH`` (and
   the TLS variables) exported, so ``ray start --head``, the autoscaler, the controller and the
   dashboard all use it.
3. Each worker's startup script (``clouds/_startup.py``) fetches the secrets from its cloud's store
   with the instance's identity into ``$HOME/.ray_multicloud/`` (0600) before any other step, and
   exports the same variables: ``ray start``, the setup commands and the interruption watcher's GCS
   client all carry the token.
4. The head's termination (``ray down``) deletes the cluster's secrets from every store.

A client on the operator's machine (the e2e tests, ``ray-multicloud demo``) connects with
``client_env``: the same variables, pointing at the local store's files.
"""

from __future__ import annotations

import logging
import os
import re
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.auth.secrets import FileSecretStore, SecretStore, write_private
from ray_multicloud.clouds.base import AuthBootstrap
from ray_multicloud.errors import ConfigError

logger = logging.getLogger(__name__)

AUTH_KEYS = ("auth_mode", "tls")
NODE_DIR = ".ray_multicloud"  # under the node's $HOME: the node's copies of the secrets (0700)
TOKEN_FILE = "auth_token"
TLS_FILES = ("tls_ca.pem", "tls_cert.pem", "tls_key.pem")
TLS_ENV = ("RAY_TLS_CA_CERT", "RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY")
HEAD_MODULE = "ray_multicloud.auth"
_MARK = "RAY_AUTH_MODE="


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``provider.auth_mode`` / ``provider.tls``: token auth on (the default), TLS off."""

    token: bool = True
    tls: bool = False


def parse_auth(provider_config: Mapping[str, Any]) -> AuthSettings:
    """The auth settings of a ``provider:`` section; ``ConfigError`` naming the key otherwise."""
    mode = provider_config.get("auth_mode", "token")
    if mode not in ("token", "disabled"):
        raise ConfigError("provider.auth_mode",
                          "must be token (the default: Ray token auth on every node) or disabled, "
                          f"got {mode!r}")
    tls = provider_config.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError("provider.tls", f"must be true or false, got {tls!r}")
    if tls:
        clouds = provider_config.get("clouds") or {}
        others = sorted(str(n) for n, s in clouds.items()
                        if isinstance(s, Mapping) and str(s.get("driver", n)) not in ("local", "private"))
        if others:
            raise ConfigError(
                "provider.tls",
                f"TLS certificates are made for the local and private clouds only (all nodes on this "
                f"machine); clouds {others} need per-node certificates, which this version does not "
                "issue: run Ray over an encrypted overlay instead (docs/networking.md, section 7)",
            )
    return AuthSettings(token=mode == "token", tls=tls)


_NAME_BAD = re.compile(r"[^A-Za-z0-9-]")


def secret_name(cluster: str, what: str) -> str:
    """The cluster's secret ``what`` (auth-token, tls-ca, ...), as every store can name it:
    ``rmc-<cluster>-<what>`` in letters, digits and '-' (Azure Key Vault's rule, the strictest)."""
    return _NAME_BAD.sub("-", f"rmc-{cluster}-{what}")[:120]


def token_secret(cluster: str) -> str:
    return secret_name(cluster, "auth-token")


def tls_secrets(cluster: str) -> tuple[str, str, str]:
    return (secret_name(cluster, "tls-ca"), secret_name(cluster, "tls-cert"), secret_name(cluster, "tls-key"))


def all_secrets(cluster: str) -> tuple[str, ...]:
    return (token_secret(cluster), *tls_secrets(cluster))


def bootstrap_auth(settings: AuthSettings, cluster: str) -> AuthBootstrap:
    """What a worker's startup script needs to know (secret names only)."""
    return AuthBootstrap(
        token=settings.token,
        token_secret=token_secret(cluster) if settings.token else "",
        tls_secrets=tls_secrets(cluster) if settings.tls else (),
    )


def new_token() -> str:
    """A cluster token: 256 random bits in hex, as Ray's own generator makes them."""
    return _secrets.token_hex(32)


def store_of(cloud: object, cluster: str) -> SecretStore | None:
    """The cloud driver's secret store for ``cluster`` (its ``secret_store(cluster)``), None for a
    driver without one."""
    getter = getattr(cloud, "secret_store", None)
    return None if getter is None else getter(cluster)  # type: ignore[no-any-return]


def ensure_cluster_secrets(stores: Iterable[SecretStore], cluster: str, settings: AuthSettings) -> None:
    """Make the cluster's secrets once and put them into every store that lacks them: the token
    (``settings.token``) and the TLS material (``settings.tls``). An existing secret is kept and
    copied to the stores that lack it, so every cloud's workers get the same one."""
    stores = list(stores)
    if not stores:
        return
    wanted: dict[str, str | None] = {}
    if settings.token:
        wanted[token_secret(cluster)] = None
    if settings.tls:
        wanted.update({name: None for name in tls_secrets(cluster)})
    have = {name: next((v for s in stores if (v := s.get(name)) is not None), None) for name in wanted}
    if settings.token and have[token_secret(cluster)] is None:
        have[token_secret(cluster)] = new_token()
    if settings.tls and any(have[n] is None for n in tls_secrets(cluster)):
        from ray_multicloud.auth.tls import cluster_material

        material = cluster_material(cluster)
        have.update(zip(tls_secrets(cluster), (material.ca_cert, material.cert, material.key), strict=True))
    for store in stores:
        for name, value in have.items():
            assert value is not None
            if store.get(name) != value:
                store.put(name, value)
    logger.info("cluster %s: secrets %s in %d store(s)", cluster, sorted(have), len(stores))


def delete_cluster_secrets(stores: Iterable[SecretStore], cluster: str) -> None:
    """Delete every secret of ``cluster`` from every store (the head's termination)."""
    for store in stores:
        for name in all_secrets(cluster):
            store.delete(name)


def node_env(node_dir: str, auth: AuthBootstrap) -> dict[str, str]:
    """The environment of a node whose copies of the secrets are in ``node_dir``."""
    if not auth.token:
        env = {"RAY_AUTH_MODE": "disabled"}
    else:
        env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": f"{node_dir}/{TOKEN_FILE}"}
    if auth.tls_secrets:
        env["RAY_USE_TLS"] = "1"
        env.update({var: f"{node_dir}/{file}" for var, file in zip(TLS_ENV, TLS_FILES, strict=True)})
    return env


def startup_lines(auth: AuthBootstrap, store: SecretStore | None, *, cloud: str) -> list[str]:
    """A worker startup script's auth step: fetch the secrets into ``$HOME/.ray_multicloud`` (0700
    directory, 0600 files) with the instance's identity, export Ray's variables. Raises
    ``ConfigError`` if the secrets are wanted and the driver has no store to fetch them from."""
    if not auth.token and not auth.tls_secrets:
        return ["export RAY_AUTH_MODE=disabled"]
    if store is None:
        raise ConfigError(
            "provider.auth_mode",
            f"cloud {cloud!r}'s workers have no secret store to fetch the cluster's auth token from "
            "(an azure cloud needs key_vault and managed_identity_id); configure it, or set "
            "provider.auth_mode: disabled (and run Ray only on a private, encrypted network)",
        )
    lines = ['RMC_AUTH_DIR="$HOME/' + NODE_DIR + '"',
             'mkdir -p "$RMC_AUTH_DIR" && chmod 700 "$RMC_AUTH_DIR"']
    if auth.token:
        lines += store.fetch_lines(auth.token_secret, f'"$RMC_AUTH_DIR/{TOKEN_FILE}"')
    if auth.tls_secrets:
        for name, file in zip(auth.tls_secrets, TLS_FILES, strict=True):
            lines += store.fetch_lines(name, f'"$RMC_AUTH_DIR/{file}"')
    lines.append(_exports(node_env("$RMC_AUTH_DIR", auth)))
    return lines


def _exports(env: Mapping[str, str]) -> str:
    """``export K="V" ...``: values are fixed words and ``$VAR/file`` paths, expanded by the shell."""
    return "export " + " ".join(f'{k}="{v}"' for k, v in sorted(env.items()))


def exported_names(auth: AuthBootstrap | None) -> list[str]:
    """The variables ``startup_lines`` exports (passed into a container with ``docker exec -e``)."""
    if auth is None:
        return []
    return sorted(node_env("", auth))


# -- the head ------------------------------------------------------------------------------------


def head_prefix(settings: AuthSettings) -> str:
    """What every head command runs under: Ray's auth (and TLS) variables, pointing at the head's
    copies of the secrets (``head`` below writes them)."""
    return _exports(node_env("$HOME/" + NODE_DIR, bootstrap_auth(settings, "x"))) + "; "


def head_install_command(config_path: str = "~/ray_bootstrap_config.yaml") -> str:
    return f"python -m {HEAD_MODULE} head --config {config_path}"


def head_commands(commands: Sequence[str], settings: AuthSettings,
                  config_path: str = "~/ray_bootstrap_config.yaml") -> list[str]:
    """``head_start_ray_commands`` with the auth step first and each command under
    ``head_prefix``. Idempotent: commands already prefixed are left as they are."""
    if any(_MARK in str(c) for c in commands):
        return list(commands)
    prefix = head_prefix(settings)
    out = [prefix + c for c in commands]
    if settings.token or settings.tls:
        out.insert(0, prefix + head_install_command(config_path))
    return out


def install_head(stores: Sequence[SecretStore], cluster: str, settings: AuthSettings,
                 home: Path) -> list[Path]:
    """Copy the cluster's secrets from the first store that has them into ``home/.ray_multicloud``
    (0600). ``ConfigError`` naming the secret when no store has one."""
    names: list[tuple[str, str]] = []
    if settings.token:
        names.append((token_secret(cluster), TOKEN_FILE))
    if settings.tls:
        names += list(zip(tls_secrets(cluster), TLS_FILES, strict=True))
    written = []
    for name, file in names:
        value = next((v for s in stores if (v := s.get(name)) is not None), None)
        if value is None:
            raise ConfigError("provider.auth_mode",
                              f"the cluster's secret {name} is in no cloud's secret store; `ray up` puts it "
                              "there when it creates the head: re-run `ray up`")
        path = home / NODE_DIR / file
        write_private(path, value)
        written.append(path)
    return written


def client_env(provider_config: Mapping[str, Any], cluster: str, state_dir: str | Path) -> dict[str, str]:
    """The environment a driver on this machine connects to a local cluster with: Ray's auth (and
    TLS) variables pointing at the local store's files (under ``state_dir``)."""
    settings = parse_auth(provider_config)
    if not settings.token and not settings.tls:
        return {"RAY_AUTH_MODE": "disabled"}
    store = local_store(state_dir, cluster)
    env: dict[str, str] = {}
    if settings.token:
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(store.path(token_secret(cluster)))})
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    if settings.tls:
        env["RAY_USE_TLS"] = "1"
        env.update({var: str(store.path(n)) for var, n in zip(TLS_ENV, tls_secrets(cluster), strict=True)})
    return env


def use_cluster_token(provider_config: Mapping[str, Any], cluster: str, state_dir: str | Path,
                      environ: dict[str, str] | None = None) -> str | None:
    """Point this process's Ray at the cluster's token, for a CLI command that reads the GCS (``status``):
    the local store's file (a local cluster, or the ``ray up`` machine of one), else the head's own
    copy (``~/.ray_multicloud/auth_token``, the command run on the head). Leaves an environment that
    already sets ``RAY_AUTH_MODE`` alone. Returns the token file used (None: none found, or auth
    disabled: then ``RAY_AUTH_MODE=disabled``)."""
    env = os.environ if environ is None else environ
    if "RAY_AUTH_MODE" in env:
        return env.get("RAY_AUTH_TOKEN_PATH")
    if not parse_auth(provider_config).token:
        env["RAY_AUTH_MODE"] = "disabled"
        return None
    candidates = (local_store(state_dir, cluster).path(token_secret(cluster)),
                  Path.home() / NODE_DIR / TOKEN_FILE)
    for path in candidates:
        if path.is_file():
            env["RAY_AUTH_MODE"] = "token"
            env["RAY_AUTH_TOKEN_PATH"] = str(path)
            return str(path)
    return None


def local_store(state_dir: str | Path, cluster: str) -> FileSecretStore:
    """The local and private clouds' store: ``<state_dir>/secrets/<cluster>/``."""
    return FileSecretStore(Path(state_dir).expanduser() / "secrets" / _NAME_BAD.sub("-", cluster))
