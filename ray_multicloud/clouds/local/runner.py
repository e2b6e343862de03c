"""A command runner for local-cloud instances: ``ray up`` runs head commands here, not over SSH.

Each instance has a home directory under the cluster's state dir; commands run with ``HOME`` set to
it, so ``~/ray_bootstrap_config.yaml`` (which ``ray up`` copies up and the head's
``--autoscaling-config`` reads) is the instance's own, never the user's. Commands run inside the
instance's process group, so terminating the instance ends what they started (the head's Ray
processes) and nothing else.

``ray stop`` kills every Ray process on the machine, other people's included; ``ray down`` sends
it to the head. Here it is skipped: terminating the head instance ends its process group instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ray.autoscaler.command_runner import CommandRunnerInterface

from ray_multicloud.clouds.local import LocalCloud
from ray_multicloud.types import InstanceId

logger = logging.getLogger(__name__)

_RAY_STOP = re.compile(r"(^|[;&|]\s*)ray\s+stop\b")


class LocalCommandRunner(CommandRunnerInterface):
    """Runs ``ray up``'s commands for one local instance with ``subprocess``. See the module docstring."""

    def __init__(self, log_prefix: str, cloud: LocalCloud, instance_id: InstanceId) -> None:
        self.log_prefix = log_prefix
        self.cloud = cloud
        self.instance_id = instance_id
        self.home = cloud.state.node_home(instance_id)

    def _path(self, remote: str) -> Path:
        if remote.startswith("~"):
            return self.home / remote[1:].lstrip("/")
        return Path(remote)

    def run(
        self,
        cmd: str | None = None,
        timeout: int = 120,
        exit_on_fail: bool = False,
        port_forward: Any = None,
        with_output: bool = False,
        environment_variables: dict[str, object] | None = None,
        run_env: str = "auto",
        ssh_options_override_ssh_key: str = "",
        shutdown_after_run: bool = False,
    ) -> Any:
        if not cmd:
            return b"" if with_output else ""
        if _RAY_STOP.search(cmd):
            logger.info("%sskipping %r: the instance's process group is ended by terminate",
                        self.log_prefix, cmd)
            return b"" if with_output else ""
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        # Ray must never pick another address than loopback here (see RAY_NOTES.md).
        env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        for key, value in (environment_variables or {}).items():
            env[key] = value if isinstance(value, str) else json.dumps(value)
        pgid = self.cloud.process_group(self.instance_id)
        kwargs: dict[str, Any] = {"env": env, "cwd": self.home, "timeout": timeout,
                                  "capture_output": with_output, "stdin": subprocess.DEVNULL}
        try:
            result = subprocess.run(["bash", "-c", cmd], process_group=pgid or 0, check=False, **kwargs)
        except subprocess.SubprocessError as exc:
            if isinstance(exc, subprocess.TimeoutExpired):
                raise
            # The instance's group lives in another session (another ray CLI started it).
            result = subprocess.run(["bash", "-c", cmd], start_new_session=True, check=False, **kwargs)
        if result.returncode != 0:
            from ray.autoscaler._private.subprocess_output_util import ProcessRunnerError

            detail = (result.stderr or b"").decode(errors="replace")[-2000:] if with_output else ""
            message = f"command failed on local instance {self.instance_id} (exit {result.returncode}): {cmd}"
            if exit_on_fail:
                import click

                raise click.ClickException(message + ("\n" + detail if detail else ""))
            raise ProcessRunnerError(message, "ssh_command_failed", code=result.returncode, command=[cmd])
        return result.stdout if with_output else ""

    def run_rsync_up(self, source: str, target: str, options: dict[str, Any] | None = None) -> None:
        dest = self._path(target)
        if os.path.isdir(source):
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)

    def run_rsync_down(self, source: str, target: str, options: dict[str, Any] | None = None) -> None:
        src = self._path(source)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)

    def remote_shell_command_str(self) -> str:
        return f"cd {self.home} && HOME={self.home} bash"

    def run_init(self, *, as_head: bool, file_mounts: dict[str, str], sync_run_yet: bool) -> bool | None:
        return None
