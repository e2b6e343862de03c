"""GCP Secret Manager and Azure Key Vault as ``SecretStore``s, over their REST APIs (stdlib HTTP).

Provider side: a bearer token from the driver's own credentials (``token()``), on https only
(``endpoints.require_https``; plain http to loopback test servers). Instance side: a short Python
program (python3 is on every GCP and Azure image) that asks the instance's metadata service for
a token of its own identity (the VM's service account; its managed identity) and reads the secret,
writing it to stdout redirected into a 0600 file. No secret, and no token, is ever on a command
line: the URLs are the program's only arguments.

APIs (v1 / 7.4):

- Secret Manager: ``POST /v1/projects/P/secrets?secretId=ID`` (create, 409 when it exists),
  ``POST .../secrets/ID:addVersion`` ``{"payload": {"data": base64}}``,
  ``GET .../secrets/ID/versions/latest:access`` -> ``{"payload": {"data": base64}}``,
  ``DELETE .../secrets/ID``. The worker's service account needs
  ``roles/secretmanager.secretAccessor`` on the secret (or the project).
- Key Vault: ``PUT {vault}/secrets/NAME?api-version=7.4`` ``{"value": ...}``,
  ``GET {vault}/secrets/NAME?api-version=7.4`` -> ``{"value": ...}``,
  ``DELETE {vault}/secrets/NAME`` then ``DELETE {vault}/deletedsecrets/NAME`` (purge: a soft-deleted
  name cannot be reused by the next ``ray up`` until purged). The worker's managed identity needs
  the "Key Vault Secrets User" role (or a get-secret access policy).
"""

from __future__ import annotations

import base64
import json
import shlex
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ray_multicloud.auth.secrets import STEP_TIMEOUT_S, _check_name
from ray_multicloud.endpoints import require_https
from ray_multicloud.errors import CloudError

GCP_SECRETS = "https://secretmanager.googleapis.com"
GCP_METADATA_TOKEN = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
AZURE_IMDS_TOKEN = ("http://169.254.169.254/metadata/identity/oauth2/token"
                    "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net")
KEY_VAULT_API = "7.4"
HTTP_TIMEOUT_S = 30.0

# The instance-side reader: argv = metadata token URL, secret URL, kind (gcp|azure).
_READER = r"""
import base64, json, sys, urllib.request
md, url, kind = sys.argv[1:4]
hdr = {"Metadata-Flavor": "Google"} if kind == "gcp" else {"Metadata": "true"}
get = lambda u, h: json.load(urllib.request.urlopen(urllib.request.Request(u, headers=h), timeout=30))
tok = get(md, hdr)["access_token"]
got = get(url, {"Authorization": "Bearer " + tok})
sys.stdout.write(base64.b64decode(got["payload"]["data"]).decode() if kind == "gcp" else got["value"])
"""


def _reader_lines(metadata_url: str, secret_url: str, kind: str, dest: str, what: str) -> list[str]:
    args = " ".join(shlex.quote(a) for a in (metadata_url, secret_url, kind))
    return [
        f"( umask 077 && timeout {STEP_TIMEOUT_S} python3 -c {shlex.quote(_READER)} {args} > {dest} "
        f"&& [ -s {dest} ] && chmod 600 {dest} ) || rmc_fail {shlex.quote(what)}",
    ]


class _Rest:
    """One JSON call with a bearer token; errors as ``CloudError`` naming the secret, never a value."""

    def __init__(self, cloud: str, token: Callable[[], str]) -> None:
        self.cloud = cloud
        self._token = token

    def call(self, method: str, url: str, body: Any = None, *, what: str) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._token()}", "Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:
                raw = reply.read()
                return reply.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CloudError(self.cloud, f"{what}: {type(exc).__name__}: {exc}") from None


class GcpSecretStore:
    """GCP Secret Manager in ``project``. See the module docstring."""

    def __init__(self, project: str, token: Callable[[], str], *, endpoint: str = GCP_SECRETS,
                 metadata_token_url: str = GCP_METADATA_TOKEN, cloud: str = "gcp") -> None:
        require_https(endpoint, key=f"provider.clouds.{cloud}.secrets_endpoint")
        self.project = project
        self.endpoint = endpoint.rstrip("/")
        self.metadata_token_url = metadata_token_url
        self._rest = _Rest(cloud, token)

    def _secret(self, name: str) -> str:
        return f"{self.endpoint}/v1/projects/{self.project}/secrets/{_check_name(name)}"

    def put(self, name: str, value: str) -> None:
        what = f"Secret Manager secret {name} in project {self.project}"
        status, _ = self._rest.call(
            "POST", f"{self.endpoint}/v1/projects/{self.project}/secrets?secretId={_check_name(name)}",
            {"replication": {"automatic": {}}, "labels": {"rmc-secret": "true"}}, what=what)
        if status not in (200, 409):
            raise CloudError(self._rest.cloud, f"creating {what} failed (HTTP {status})", code=str(status))
        data = base64.b64encode(value.encode()).decode()
        status, _ = self._rest.call("POST", f"{self._secret(name)}:addVersion", {"payload": {"data": data}},
                                    what=what)
        if status != 200:
            raise CloudError(self._rest.cloud, f"adding a version to {what} failed (HTTP {status})",
                             code=str(status))

    def get(self, name: str) -> str | None:
        what = f"Secret Manager secret {name} in project {self.project}"
        status, reply = self._rest.call("GET", f"{self._secret(name)}/versions/latest:access", what=what)
        if status == 404:
            return None
        if status != 200 or not isinstance(reply, dict):
            raise CloudError(self._rest.cloud, f"reading {what} failed (HTTP {status})", code=str(status))
        return base64.b64decode(reply["payload"]["data"]).decode()

    def delete(self, name: str) -> None:
        what = f"Secret Manager secret {name} in project {self.project}"
        status, _ = self._rest.call("DELETE", self._secret(name), what=what)
        if status not in (200, 404):
            raise CloudError(self._rest.cloud, f"deleting {what} failed (HTTP {status})", code=str(status))

    def fetch_lines(self, name: str, dest: str) -> list[str]:
        return _reader_lines(self.metadata_token_url, f"{self._secret(name)}/versions/latest:access", "gcp",
                             dest, f"secret {name} (Secret Manager, project {self.project})")


class AzureKeyVaultStore:
    """Azure Key Vault at ``vault_url`` (``https://NAME.vault.azure.net``). See the module docstring."""

    def __init__(self, vault_url: str, token: Callable[[], str], *,
                 metadata_token_url: str = AZURE_IMDS_TOKEN, cloud: str = "azure") -> None:
        require_https(vault_url, key=f"provider.clouds.{cloud}.key_vault")
        self.vault_url = vault_url.rstrip("/")
        self.metadata_token_url = metadata_token_url
        self._rest = _Rest(cloud, token)

    def _secret(self, name: str, *, deleted: bool = False) -> str:
        kind = "deletedsecrets" if deleted else "secrets"
        return f"{self.vault_url}/{kind}/{_check_name(name)}?api-version={KEY_VAULT_API}"

    def put(self, name: str, value: str) -> None:
        what = f"Key Vault secret {name} in {self.vault_url}"
        status, _ = self._rest.call("PUT", self._secret(name), {"value": value,
                                                                "tags": {"rmc-secret": "true"}}, what=what)
        if status != 200:
            raise CloudError(self._rest.cloud, f"setting {what} failed (HTTP {status})", code=str(status))

    def get(self, name: str) -> str | None:
        what = f"Key Vault secret {name} in {self.vault_url}"
        status, reply = self._rest.call("GET", self._secret(name), what=what)
        if status == 404:
            return None
        if status != 200 or not isinstance(reply, dict):
            raise CloudError(self._rest.cloud, f"reading {what} failed (HTTP {status})", code=str(status))
        return str(reply["value"])

    def delete(self, name: str) -> None:
        what = f"Key Vault secret {name} in {self.vault_url}"
        status, _ = self._rest.call("DELETE", self._secret(name), what=what)
        if status not in (200, 404):
            raise CloudError(self._rest.cloud, f"deleting {what} failed (HTTP {status})", code=str(status))
        # Purge the soft-deleted secret so the name is free for the next `ray up` (403 without the
        # purge right: the vault keeps it until its retention ends, and the next put says so).
        self._rest.call("DELETE", self._secret(name, deleted=True), what=what)

    def fetch_lines(self, name: str, dest: str) -> list[str]:
        return _reader_lines(self.metadata_token_url, self._secret(name), "azure", dest,
                             f"secret {name} (Key Vault {self.vault_url})")
