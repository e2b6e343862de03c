"""Where a cluster's secrets (its Ray auth token, its TLS key material) live, per cloud.

A ``SecretStore`` is one cloud's secret service seen from two sides:

- the provider side (``ray up``'s client and the head's monitor, with the operator's or the head's
  credentials): ``put`` / ``get`` / ``delete`` a named secret;
- the instance side: ``fetch_lines(name, dest)`` are shell lines for a worker's startup script that
  copy the secret into the file ``dest`` (mode 0600) *with the instance's own identity* (an instance
  role, a service account, a managed identity). The secret's value is never in those lines, so it
  is never in user data, instance metadata, tags or the drivers' logs.

Stores here: ``FileSecretStore`` (the local and private clouds, whose "instances" run on the
machine that holds the store: a 0700 directory of 0600 files) and ``SsmSecretStore`` (AWS Systems
Manager Parameter Store, ``SecureString`` parameters, encrypted with the account's KMS key).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ray_multicloud.errors import CloudError

STEP_TIMEOUT_S = 300  # one secret fetch at boot; longer is a hung call


@runtime_checkable
class SecretStore(Protocol):
    """One cloud's secret service. Names are the project's (``auth.secret_name``); each store maps
    them onto what its service accepts. ``get`` of a missing secret is None, ``delete`` of one is a
    no-op; other failures raise ``CloudError`` naming the secret (never its value)."""

    def put(self, name: str, value: str) -> None: ...

    def get(self, name: str) -> str | None: ...

    def delete(self, name: str) -> None: ...

    def fetch_lines(self, name: str, dest: str) -> list[str]:
        """Shell lines (run under ``set -euo pipefail`` with ``rmc_fail`` defined) that write the
        secret ``name`` into ``dest`` (a shell word, e.g. ``"$RMC_AUTH_DIR/auth_token"``) with mode
        0600, using the instance's own identity; a failure calls ``rmc_fail`` naming the secret."""
        ...


_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _check_name(name: str) -> str:
    if not _SAFE.match(name):
        raise ValueError(f"secret name {name!r}: only letters, digits, '_' and '-' (at most 200)")
    return name


def write_private(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` with mode 0600 (its directory 0700), atomically: the file never
    exists with wider permissions or half-written."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class FileSecretStore:
    """Secrets as 0600 files in a 0700 directory (``root``) of the machine the instances run on.

    The local and private clouds' instances are processes of this machine, so they reach the store
    directly; a worker copies its secret into its own home (its "disk") at boot."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, name: str) -> Path:
        return self.root / _check_name(name)

    def put(self, name: str, value: str) -> None:
        write_private(self.path(name), value)

    def get(self, name: str) -> str | None:
        try:
            return self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def fetch_lines(self, name: str, dest: str) -> list[str]:
        src = shlex.quote(str(self.path(name)))
        what = shlex.quote(f"secret {name} ({self.path(name)})")
        return [f"( umask 077 && cp -- {src} {dest} && chmod 600 {dest} ) || rmc_fail {what}"]


def ssm_parameter_name(name: str) -> str:
    """The Parameter Store name of the project's secret ``name``."""
    return f"/ray-multicloud/{_check_name(name)}"


class SsmSecretStore:
    """AWS Systems Manager Parameter Store: each secret a ``SecureString`` parameter
    ``/ray-multicloud/<name>`` in one region (``region``: the cloud entry's first region), which a
    worker in any region reads with its instance profile. The profile needs ``ssm:GetParameter`` on
    ``arn:aws:ssm:<region>:<account>:parameter/ray-multicloud/*`` and ``kms:Decrypt`` on the key
    (the account's default ``alias/aws/ssm`` unless ``kms_key_id`` is set)."""

    def __init__(self, session: Any, region: str, *, endpoint_url: str | None = None,
                 kms_key_id: str = "") -> None:
        self.region = region
        self._client = session.client("ssm", region_name=region, endpoint_url=endpoint_url)
        self._kms_key_id = kms_key_id

    def _fail(self, op: str, name: str, exc: Exception) -> CloudError:
        code = self._code(exc)
        return CloudError("aws", f"SSM {op} of parameter {ssm_parameter_name(name)} in {self.region} failed: "
                          f"{type(exc).__name__}" + (f" {code}" if code else ""), code=code)

    def _errors(self) -> tuple[type[Exception], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError)

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None)
        return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""

    def put(self, name: str, value: str) -> None:
        params: dict[str, Any] = {"Name": ssm_parameter_name(name), "Value": value, "Type": "SecureString",
                                  "Overwrite": True, "Description": "ray_multicloud cluster secret"}
        if self._kms_key_id:
            params["KeyId"] = self._kms_key_id
        try:
            self._client.put_parameter(**params)
        except self._errors() as exc:  # the message never carries the value: only the error's type and code
            raise self._fail("PutParameter", name, exc) from None

    def get(self, name: str) -> str | None:
        try:
            reply = self._client.get_parameter(Name=ssm_parameter_name(name), WithDecryption=True)
        except self._errors() as exc:
            if self._code(exc) == "ParameterNotFound":
                return None
            raise self._fail("GetParameter", name, exc) from None
        return str(reply["Parameter"]["Value"])

    def delete(self, name: str) -> None:
        try:
            self._client.delete_parameter(Name=ssm_parameter_name(name))
        except self._errors() as exc:
            if self._code(exc) == "ParameterNotFound":
                return
            raise self._fail("DeleteParameter", name, exc) from None

    def fetch_lines(self, name: str, dest: str) -> list[str]:
        param = shlex.quote(ssm_parameter_name(name))
        what = shlex.quote(f"secret {name} (SSM parameter {ssm_parameter_name(name)} in {self.region})")
        return [
            "command -v aws >/dev/null || python3 -m pip install -q awscli "
            "|| rmc_fail 'auth (installing awscli)'",
            f"( umask 077 && timeout {STEP_TIMEOUT_S} aws ssm get-parameter "
            f"--region {shlex.quote(self.region)} --name {param} --with-decryption "
            f"--query Parameter.Value --output text | tr -d '\\r\\n' > {dest} "
            f"&& chmod 600 {dest} ) || rmc_fail {what}",
        ]
