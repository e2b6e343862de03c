"""Bring a local multi-cloud cluster up and down from Python, with ``ray up`` / ``ray down``.

Used by the demo, the end-to-end tests and the benchmarks. Each ``LocalCluster`` writes its own copy
of a cluster YAML with a fresh cluster name, free loopback ports and its own state directory, so
several can run on one machine, and ``down()`` ends exactly the processes it started: ``ray down``
(whose ``ray stop`` the local runner skips) and then a sweep that terminates any instance of its
cluster still alive in the local clouds' state.

    with LocalCluster("cluster_configs/local-multicloud.yaml", workdir=tmp) as cluster:
        ray.init(cluster.address)
        ...
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import yaml

# On a machine with another address than loopback, Ray (2.60) turns "127.0.0.1" into that address
# when a driver connects, unless this is "0" when ray is first imported (RAY_NOTES.md). A local
# cluster must never be reached on anything but loopback, so importing this module sets it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ray_multicloud.clouds import make_cloud
from ray_multicloud.clouds.base import Instance
from ray_multicloud.clouds.local import LocalCloud
from ray_multicloud.cluster_config.provider_section import ProviderSettings, load_cluster_yaml, load_settings
from ray_multicloud.errors import MultiCloudError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "cluster_configs" / "local-multicloud.yaml"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_USE_TLS", "RAY_TLS_SERVER_CERT",
             "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT")


def ray_env() -> dict[str, str]:
    """The environment every Ray CLI call here runs with: loopback only (see RAY_NOTES.md), and no
    Ray auth or TLS settings of this process (a cluster's own head commands export its own, and a
    bare ``ray start`` here must not turn token auth on because ``~/.ray/auth_token`` exists)."""
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def _refresh_ray_auth() -> None:
    """Make a Ray already imported in this process read its auth/TLS variables again (Ray caches
    them in its config and its token loader). Not needed, and skipped, before Ray is imported."""
    if "ray._raylet" not in sys.modules:
        return
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class LocalCluster:
    """One ``ray up``-launched local cluster with its own name, ports and state directory."""

    def __init__(
        self,
        config: str | Path = REPO_CONFIG,
        *,
        workdir: str | Path,
        overrides: Mapping[str, Any] | None = None,
        head_cpus: int = 1,
        up_timeout_s: float = 180.0,
    ) -> None:
        self.source = Path(config)
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.up_timeout_s = up_timeout_s
        raw = load_cluster_yaml(self.source)
        name = f"{raw.get('cluster_name', 'rmc')}-{uuid.uuid4().hex[:6]}"
        state_dir = self.workdir / "state"
        raw = _deep_merge(raw, overrides or {})
        raw["cluster_name"] = name
        provider = raw.setdefault("provider", {})
        provider["gcs_address"] = f"127.0.0.1:{self.port}"
        provider["state_dir"] = str(state_dir)
        provider["ledger"] = str(state_dir / "ledger.db")
        head_start = (
            "ray start --head --node-ip-address=127.0.0.1 "
            f"--port={self.port} --ray-client-server-port={free_port()} "
            f"--dashboard-agent-listen-port={free_port()} --num-cpus={head_cpus} "
            "--include-dashboard=false --object-store-memory=100000000 --disable-usage-stats "
            "--autoscaling-config=~/ray_bootstrap_config.yaml"
        )
        raw["head_start_ray_commands"] = [head_start]
        self.config = raw
        self.cluster_name = name
        self.config_path = self.workdir / "cluster.yaml"
        self.config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        self.settings: ProviderSettings = load_settings(provider, name)
        self._up = False
        self.down_returncode: int | None = None  # of the last `ray down`; the sweep below runs anyway
        self._saved_env: dict[str, str | None] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def connect(self, **init_kwargs: Any) -> Any:
        """``ray.init`` this cluster on loopback. Raises ``MultiCloudError`` if ray was imported before
        this module (then Ray would dial the machine's other address and hang)."""
        import ray
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            raise MultiCloudError(
                "ray was imported before ray_multicloud.scenarios.local_cluster, so it would connect "
                "through this machine's non-loopback address; import "
                "ray_multicloud.scenarios.local_cluster first, or export "
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before starting Python"
            )
        init_kwargs.setdefault("log_to_driver", False)
        return ray.init(self.address, **init_kwargs)

    def clouds(self) -> dict[str, LocalCloud]:
        """The cluster's local (and private) clouds, to inspect or to preempt instances of."""
        out = {}
        for name, spec in self.settings.clouds.items():
            cloud = make_cloud(name, spec, state_dir=str(self.state_dir))
            if cloud.features.simulated_preemption and cloud.features.local_commands:
                out[name] = cast(LocalCloud, cloud)
        return out

    def instances(self) -> list[Instance]:
        """Live instances of this cluster, head included, in launch order."""
        found = [inst for cloud in self.clouds().values() for inst in cloud.list(self.cluster_name)]
        return sorted(found, key=lambda i: i.launched_at)

    def workers(self) -> list[Instance]:
        from ray.autoscaler.tags import NODE_KIND_WORKER, TAG_RAY_NODE_KIND

        return [i for i in self.instances() if i.tags.get(TAG_RAY_NODE_KIND) == NODE_KIND_WORKER]

    def up(self) -> None:
        """``ray up -y`` this cluster; raises ``MultiCloudError`` with the CLI's output if it fails."""
        log = self.workdir / "ray-up.log"
        self._up = True  # from here on the head may exist: down() must run whatever happens
        try:
            with open(log, "wb") as out:
                proc = subprocess.run(
                    [os.path.join(os.path.dirname(sys.executable), "ray"), "up", "-y", "--no-config-cache",
                     str(self.config_path)],
                    stdout=out, stderr=subprocess.STDOUT, env=ray_env(), timeout=self.up_timeout_s,
                    cwd=self.workdir, check=False,
                )
        except subprocess.TimeoutExpired as exc:
            self.down()  # a `ray up` cut short has launched the head: do not leave it running
            raise MultiCloudError(f"ray up took over {self.up_timeout_s:.0f}s; see {log}") from exc
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            self.down()
            raise MultiCloudError(f"ray up failed (exit {proc.returncode}); see {log}:\n{tail}")
        self._use_client_env()

    def client_env(self) -> dict[str, str]:
        """Ray's auth (and TLS) variables a driver on this machine connects to this cluster with
        (``ray_multicloud.auth.client_env``: the token file of the cluster's local secret store)."""
        from ray_multicloud.auth import client_env

        return client_env(self.config["provider"], self.cluster_name, self.state_dir)

    def _use_client_env(self) -> None:
        """Put ``client_env`` into this process's environment (``down`` restores it), so that a
        ``ray.init(cluster.address)`` here authenticates; Ray's cached config is refreshed."""
        env = self.client_env()
        if self._saved_env is None:
            self._saved_env = {k: os.environ.get(k) for k in AUTH_VARS}
        for key in AUTH_VARS:
            os.environ.pop(key, None)
        os.environ.update(env)
        _refresh_ray_auth()

    def _restore_env(self) -> None:
        if self._saved_env is None:
            return
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = None
        _refresh_ray_auth()

    def down(self) -> None:
        """``ray down -y``, then terminate anything of this cluster still alive (a safety net: after a
        clean ``ray down`` nothing is). Idempotent; ``down_returncode`` keeps ``ray down``'s exit code."""
        if self._up:
            with open(self.workdir / "ray-down.log", "wb") as out:
                proc = subprocess.run(
                    [os.path.join(os.path.dirname(sys.executable), "ray"), "down", "-y",
                     str(self.config_path)],
                    stdout=out, stderr=subprocess.STDOUT, env=ray_env(), timeout=180, cwd=self.workdir,
                    check=False,
                )
            self.down_returncode = proc.returncode
            self._up = False
        for cloud in self.clouds().values():
            for inst in cloud.list(self.cluster_name):
                cloud.terminate(inst.instance_id)
        self._restore_env()

    def wait_for(self, predicate: Any, *, timeout_s: float, interval_s: float = 0.5) -> Any:
        """Poll ``predicate()`` until it returns something truthy; ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout_s:.0f}s")
            time.sleep(interval_s)

    def __enter__(self) -> LocalCluster:
        self.up()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()
