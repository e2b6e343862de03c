"""Loopback fakes of GCP Secret Manager (v1) and Azure Key Vault (7.4), with each cloud's instance
metadata token endpoint, for the secret stores of ``ray_multicloud/auth/rest_stores.py``.

They check what the real services check for the calls the stores make: a bearer token on every
call (metadata endpoints: their own header, ``Metadata-Flavor: Google`` / ``Metadata: true``),
the secret name's syntax, Secret Manager's create-then-addVersion (``ALREADY_EXISTS`` 409 on a
second create, 404 reading a secret with no version), Key Vault's soft delete (a deleted name is
refused with 409 until purged). ``secrets`` holds the current values; ``tokens_seen`` the bearer
tokens received (so a test can tell the instance's token from the operator's).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fakes._http import FakeApi, Reply

GCP_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
INSTANCE_TOKEN = "instance-identity-token"


def _gcp_error(status: int, reason: str, message: str) -> Reply:
    return status, {"error": {"code": status, "message": message, "status": reason}}, {}


class FakeSecretManager(FakeApi):
    """Secret Manager for ``project`` plus the GCE metadata token endpoint."""

    def __init__(self, project: str = "rmc-test") -> None:
        super().__init__()
        self.project = project
        self.secrets: dict[str, list[str]] = {}  # id -> versions' values
        self.tokens_seen: list[str] = []

    @property
    def metadata_token_url(self) -> str:
        return f"{self.url}/computeMetadata/v1/instance/service-accounts/default/token"

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        lower = {k.lower(): v for k, v in headers.items()}
        if path.startswith("/computeMetadata/"):
            if lower.get("metadata-flavor") != "Google":
                return 403, {"error": "Missing Metadata-Flavor:Google header"}, {}
            return 200, {"access_token": INSTANCE_TOKEN, "expires_in": 3599, "token_type": "Bearer"}, {}
        auth = lower.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _gcp_error(
                401, "UNAUTHENTICATED", "Request is missing required authentication credential."
            )
        self.tokens_seen.append(auth[len("Bearer ") :])
        prefix = f"/v1/projects/{self.project}/secrets"
        if not path.startswith(prefix):
            return _gcp_error(404, "NOT_FOUND", f"no route {path}")
        rest = path[len(prefix) :]
        with self.lock:
            if method == "POST" and rest == "":
                sid = query.get("secretId", "")
                if not GCP_ID.match(sid):
                    return _gcp_error(400, "INVALID_ARGUMENT", f"invalid secret id {sid!r}")
                if sid in self.secrets:
                    return _gcp_error(
                        409,
                        "ALREADY_EXISTS",
                        f"Secret [projects/{self.project}/secrets/{sid}] already exists.",
                    )
                if not isinstance(body, dict) or "replication" not in body:
                    return _gcp_error(400, "INVALID_ARGUMENT", "Secret.replication is required")
                self.secrets[sid] = []
                return 200, {"name": f"projects/{self.project}/secrets/{sid}"}, {}
            match = re.match(r"^/([^/:]+)(:addVersion|/versions/latest:access)?$", rest)
            if match is None:
                return _gcp_error(404, "NOT_FOUND", f"no route {path}")
            sid, op = match.group(1), match.group(2) or ""
            if sid not in self.secrets:
                return _gcp_error(
                    404, "NOT_FOUND", f"Secret [projects/{self.project}/secrets/{sid}] not found"
                )
            if method == "POST" and op == ":addVersion":
                data = (body or {}).get("payload", {}).get("data")
                if not isinstance(data, str):
                    return _gcp_error(400, "INVALID_ARGUMENT", "payload.data is required")
                self.secrets[sid].append(base64.b64decode(data).decode())
                return (
                    200,
                    {
                        "name": f"projects/{self.project}/secrets/{sid}/versions/{len(self.secrets[sid])}",
                        "state": "ENABLED",
                    },
                    {},
                )
            if method == "GET" and op == "/versions/latest:access":
                if not self.secrets[sid]:
                    return _gcp_error(404, "NOT_FOUND", f"Secret [{sid}] has no versions")
                data = base64.b64encode(self.secrets[sid][-1].encode()).decode()
                return (
                    200,
                    {
                        "name": f"projects/{self.project}/secrets/{sid}/versions/{len(self.secrets[sid])}",
                        "payload": {"data": data},
                    },
                    {},
                )
            if method == "DELETE" and op == "":
                del self.secrets[sid]
                return 200, {}, {}
        return _gcp_error(405, "METHOD_NOT_ALLOWED", f"{method} {path}")

    def value(self, sid: str) -> str | None:
        versions = self.secrets.get(sid)
        return versions[-1] if versions else None


def _kv_error(status: int, code: str, message: str) -> Reply:
    return status, {"error": {"code": code, "message": message}}, {}


class FakeKeyVault(FakeApi):
    """One Key Vault (soft delete on, as every new vault has it) plus the Azure IMDS token endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, str] = {}
        self.deleted: dict[str, str] = {}
        self.tokens_seen: list[str] = []

    @property
    def metadata_token_url(self) -> str:
        return (
            f"{self.url}/metadata/identity/oauth2/token?api-version=2018-02-01"
            "&resource=https%3A%2F%2Fvault.azure.net"
        )

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        lower = {k.lower(): v for k, v in headers.items()}
        if path == "/metadata/identity/oauth2/token":
            if lower.get("metadata") != "true" or query.get("resource") != "https://vault.azure.net":
                return (
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "Required metadata header not "
                        "specified or resource not vault.azure.net",
                    },
                    {},
                )
            return (
                200,
                {
                    "access_token": INSTANCE_TOKEN,
                    "resource": "https://vault.azure.net",
                    "token_type": "Bearer",
                },
                {},
            )
        auth = lower.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        self.tokens_seen.append(auth[len("Bearer ") :])
        if query.get("api-version") != "7.4":
            return _kv_error(400, "BadParameter", "The specified version is not supported")
        match = re.match(r"^/(secrets|deletedsecrets)/([^/]+)$", path)
        if match is None:
            return _kv_error(404, "NotFound", f"no route {path}")
        kind, name = match.groups()
        if not VAULT_NAME.match(name):
            return _kv_error(400, "BadParameter", f"The secret name {name!r} is invalid")
        with self.lock:
            if kind == "deletedsecrets":
                if method == "DELETE" and name in self.deleted:
                    del self.deleted[name]
                    return 204, None, {}
                return _kv_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
            if method == "PUT":
                if name in self.deleted:
                    return _kv_error(
                        409,
                        "Conflict",
                        f"Secret {name} is currently in a deleted but recoverable "
                        "state, and its name cannot be reused; in this state, the secret can only "
                        "be recovered or purged.",
                    )
                if not isinstance(body, dict) or not isinstance(body.get("value"), str):
                    return _kv_error(400, "BadParameter", "value is required")
                self.secrets[name] = body["value"]
                return 200, {"value": body["value"], "id": f"{self.url}/secrets/{name}/1"}, {}
            if name not in self.secrets:
                return _kv_error(
                    404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault."
                )
            if method == "GET":
                return 200, {"value": self.secrets[name], "id": f"{self.url}/secrets/{name}/1"}, {}
            if method == "DELETE":
                self.deleted[name] = self.secrets.pop(name)
                return 200, {"recoveryId": f"{self.url}/deletedsecrets/{name}"}, {}
        return _kv_error(405, "MethodNotAllowed", f"{method} {path}")
