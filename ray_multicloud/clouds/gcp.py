"""GCP Compute Engine driver (google-cloud-compute over REST): GPU workers, spot or on-demand.

- **Ids.** An instance id is ``<zone>.<instance name>`` (a valid Ray label value). The name is
  derived from the request id (``rmc-<request>-<hash>``), so a second insert of the same request
  collides with the first (HTTP 409 ``alreadyExists``) instead of creating a twin: launch is
  idempotent by construction.
- **Tagged or nothing.** Labels and metadata are part of the ``insert`` body. GCP label values
  allow only ``[a-z0-9_-]`` and 63 characters, so each tag is written twice: an encoded label (for
  the ``labels.rmc-cluster = ...`` list filter) and the raw value in the ``rmc-tags`` metadata item,
  which is what ``Instance.tags`` is read from.
- **Spot** is ``scheduling.provisioningModel = SPOT`` with ``instanceTerminationAction`` (DELETE by
  default, so a preempted VM leaves nothing behind). GPUs of N1 hosts are ``guestAccelerators``
  (catalog instance types ``n1-standard-4+T4``); A2/A3/G2 machine types carry their GPUs.
- **A launch right after a listing asks nothing first**: it looks its request up in the last
  ``list(cluster)`` while that is younger than one autoscaler tick (``clouds/_recent.py``) instead
  of an ``instances.get`` per zone; the name collision (409) still dedupes what it missed.
- **Credentials** come only from Application Default Credentials; ``credentials`` may be injected
  (tests pass anonymous ones). Errors carry the GCE error code and message only.

Events: ``us-central1-a a2-highgpu-1g spot (ZONE_RESOURCE_POOL_EXHAUSTED) -> CapacityError``,
``(QUOTA_EXCEEDED) -> QuotaError``, ``(HTTP 429 rateLimitExceeded) -> retried with backoff``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ray_multicloud.auth.rest_stores import GCP_METADATA_TOKEN, GCP_SECRETS, GcpSecretStore
from ray_multicloud.clouds._recent import RecentListing
from ray_multicloud.clouds._retry import Backoff, retry_throttled
from ray_multicloud.clouds._startup import check_size, literal_instance_id, render_startup_script
from ray_multicloud.clouds.base import TAG_CLUSTER, CloudFeatures, Instance, LaunchRequest
from ray_multicloud.clouds.images import BOOT_INSTALL, GCP_DEFAULT_IMAGE, boot_install, gcp_image
from ray_multicloud.clouds.schemas import GCP as GCP_SCHEMA
from ray_multicloud.endpoints import require_https
from ray_multicloud.errors import (
    CapacityError,
    CloudError,
    ConfigError,
    InstanceNotFound,
    QuotaError,
    ThrottledError,
)
from ray_multicloud.schema import check_section
from ray_multicloud.types import CapacityType, InstanceId, NodeState, Offer

CAPACITY_CODES = frozenset(
    {
        "ZONE_RESOURCE_POOL_EXHAUSTED",
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
        "RESOURCE_POOL_EXHAUSTED",
        "STOCKOUT",
        "UNSUPPORTED_OPERATION",  # e.g. the GPU type is not offered in this zone
    }
)
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "quotaExceeded", "QUOTA_LIMIT"})
THROTTLE_CODES = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
_CAPACITY = frozenset(c.upper() for c in CAPACITY_CODES)
_QUOTA = frozenset(c.upper() for c in QUOTA_CODES)
_THROTTLE = frozenset(c.upper() for c in THROTTLE_CODES)
TAGS_METADATA_KEY = "rmc-tags"
DEFAULT_IMAGE = GCP_DEFAULT_IMAGE  # clouds/images.py: a Deep Learning VM family

# Catalog accelerator names -> GCE accelerator types (for N1 hosts, which take guest accelerators).
ACCELERATOR_TYPES = {
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "P100": "nvidia-tesla-p100",
    "P4": "nvidia-tesla-p4",
    "K80": "nvidia-tesla-k80",
    "L4": "nvidia-l4",
    "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
}
# Every status of the discovery document's Instance.status enum (compute v1, revision 20261106).
# Nothing maps to TERMINATED: a GCE instance that exists still holds (and bills for) its disks and
# IP, so whatever its status it stays visible to get/list until it is deleted. The statuses of a
# VM halted or on its way down (stopped by ``instanceTerminationAction: STOP``, suspended, being
# deprovisioned) are DRAINING: not running, listed, and deleted by ``terminate`` / ``ray down``.
_STATES = {
    "PENDING": NodeState.PENDING,  # flex-start: waiting for capacity from DWS
    "PROVISIONING": NodeState.PENDING,
    "STAGING": NodeState.PENDING,
    "RUNNING": NodeState.RUNNING,
    "REPAIRING": NodeState.RUNNING,
    "PENDING_STOP": NodeState.DRAINING,  # gracefully shutting down
    "STOPPING": NodeState.DRAINING,
    "SUSPENDING": NodeState.DRAINING,
    "SUSPENDED": NodeState.DRAINING,
    "STOPPED": NodeState.DRAINING,
    "TERMINATED": NodeState.DRAINING,  # GCE's word for "stopped": the disks are still there
    "DEPROVISIONING": NodeState.DRAINING,  # halted, tear-down under way
}
_LABEL_OK = re.compile(r"[^a-z0-9_-]")


def label_value(raw: str) -> str:
    """Encode a tag value as a GCP label value: lowercase ``[a-z0-9_-]``, at most 63 characters.

    Lossy but deterministic (``/`` and ``.`` become ``_``; long values keep a hash suffix), so the
    same raw value always filters the same; the raw value lives in the ``rmc-tags`` metadata item.
    """
    value = _LABEL_OK.sub("_", raw.lower())
    if len(value) > 63 or value != raw:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        value = f"{value[:54]}-{digest}" if len(value) > 54 else f"{value}-{digest}"
    return value


def label_key(raw: str) -> str:
    key = _LABEL_OK.sub("_", raw.lower())[:63]
    return key if key[:1].isalpha() else f"k{key}"[:63]


def network_tag(cluster: str) -> str:
    """The network tag every instance of ``cluster`` carries; firewall rules target it."""
    stem = re.sub(r"[^a-z0-9-]", "-", cluster.lower()).strip("-")[:50].strip("-")
    return f"rmc-{stem or 'cluster'}"


def instance_name(request_id: str) -> str:
    """The instance name for a request id: ``rmc-<request>-<hash>``, a valid GCE name."""
    stem = re.sub(r"[^a-z0-9-]", "-", request_id.lower()).strip("-")[:20].strip("-")
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:10]
    return f"rmc-{stem}-{digest}" if stem else f"rmc-{digest}"


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp() if text else 0.0
    except ValueError:
        return 0.0


def split_id(instance_id: str) -> tuple[str, str]:
    zone, sep, name = instance_id.partition(".")
    return (zone, name) if sep and zone and name else ("", "")


def _field(obj: Any, *names: str) -> Any:
    """The first of ``names`` set on ``obj``: a JSON mapping (camelCase keys) or a proto-plus /
    protobuf message (snake_case attributes)."""
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value:
            return value
    return None


def _items(value: Any) -> list[Any]:
    """The elements of a JSON array or a repeated proto field; nothing for anything else."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return []
    return list(value)


def _detail_codes(details: Any) -> list[str]:
    """Codes nested in error details: ``errorDetails[].errorInfo.reason`` of an operation error,
    a ``google.rpc.ErrorInfo``'s ``reason`` in an HTTP error's ``details``, and ``QUOTA_EXCEEDED``
    for a ``quotaInfo`` (QuotaExceededInfo is only sent with that code, per the discovery doc)."""
    codes: list[str] = []
    for detail in _items(details):
        info = _field(detail, "errorInfo", "error_info")
        reason = _field(info, "reason") if info is not None else _field(detail, "reason")
        if reason:
            codes.append(str(reason))
        if _field(detail, "quotaInfo", "quota_info") is not None:
            codes.append("QUOTA_EXCEEDED")
    return codes


def _error_details(exc: Any) -> tuple[list[str], str]:
    """The error codes/reasons (nested details included) and messages of an HTTP error or a failed
    operation's ``error.errors``."""
    codes: list[str] = []
    messages: list[str] = []
    for err in _items(getattr(exc, "errors", None)):
        code = _field(err, "reason", "code")
        msg = _field(err, "message")
        if code:
            codes.append(str(code))
        codes += _detail_codes(_field(err, "errorDetails", "error_details"))
        if msg and str(msg) not in messages:
            messages.append(str(msg))
    reason = getattr(exc, "reason", None)
    if reason:
        codes.append(str(reason))
    codes += _detail_codes(getattr(exc, "details", None))
    message = "; ".join(messages) or str(getattr(exc, "message", "") or "") or type(exc).__name__
    return codes, message


class OperationError(Exception):
    """A Compute Engine operation that finished with ``error``: what ``map_api_error`` reads
    (``errors`` and, when the operation carries it, ``code`` = ``httpErrorStatusCode``)."""

    def __init__(self, errors: list[Any], code: int, message: str) -> None:
        super().__init__(message)
        self.errors = errors
        self.code = code
        self.message = message


NO_ADC = (
    "no Google credentials found (Application Default Credentials): on a GCP VM give it a service "
    "account; elsewhere run `gcloud auth application-default login` or set "
    "GOOGLE_APPLICATION_CREDENTIALS to a key file's path (keys are never read from the YAML)"
)


def auth_failed(exc: Exception) -> str:
    """A failed credential refresh (expired, revoked, unreachable token endpoint), said plainly.
    The exception's text may quote the token endpoint's reply; it never holds the token itself."""
    return (f"Google credentials were refused or could not be refreshed ({type(exc).__name__}: "
            f"{str(exc)[:200]}); renew them (`gcloud auth application-default login`) or check "
            "the service account")


def map_api_error(exc: Exception, *, offer_id: str = "") -> CloudError:
    """Turn a google-api-core error (an HTTP error) or an ``OperationError`` into a typed error.

    Codes are compared case-insensitively and include nested details (``errorDetails[].errorInfo
    .reason``, ``quotaInfo``, an HTTP error's ``google.rpc.ErrorInfo``), so a capacity or quota
    code anywhere in the body is seen."""
    codes, message = _error_details(exc)
    http = int(getattr(exc, "code", 0) or 0)
    quota = next((c for c in codes if c.upper() in _QUOTA), "")
    capacity = next((c for c in codes if c.upper() in _CAPACITY), "")
    if quota:
        return QuotaError(
            "gcp",
            f"{message}; request a quota increase or try another region",
            offer_id=offer_id,
            code=quota,
        )
    if capacity:
        return CapacityError(
            "gcp", f"{message}; try another zone or capacity type", offer_id=offer_id, code=capacity
        )
    code = codes[0] if codes else str(http or "")
    if http == 429 or any(c.upper() in _THROTTLE for c in codes):
        return ThrottledError("gcp", f"{message}; retry later", offer_id=offer_id, code=code)
    if http == 404:
        return InstanceNotFound("gcp", message, offer_id=offer_id, code=code)
    return CloudError("gcp", message, offer_id=offer_id, code=code)


class GcpCloud:
    """The ``Cloud`` protocol over Compute Engine. See the module docstring."""

    features = CloudFeatures(spot=True, interruption_notices=True)

    def __init__(
        self,
        name: str = "gcp",
        *,
        project: str,
        zones: Mapping[str, list[str]] | None = None,
        image: str = "",
        network: str = "global/networks/default",
        subnetwork: str = "",
        network_tags: tuple[str, ...] = (),
        service_account: str = "",
        disk_gib: int = 200,
        instance_termination_action: str = "DELETE",
        api_endpoint: str | None = None,
        credentials: Any | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        operation_timeout_s: float = 600.0,
        pip_install: tuple[str, ...] = BOOT_INSTALL,
        secrets_endpoint: str = GCP_SECRETS,
        metadata_token_url: str = GCP_METADATA_TOKEN,
    ) -> None:
        try:
            from google.cloud import compute_v1  # lazily: `import ray_multicloud` works without it
        except ImportError as exc:
            raise ConfigError(
                f"provider.clouds.{name}.driver",
                "the gcp driver needs google-cloud-compute: pip install 'ray_multicloud[gcp]'",
            ) from exc

        if not project:
            raise ConfigError(f"provider.clouds.{name}.project", "a GCP project id is required")
        self.name = name
        self.project = project
        self._zones = {k: list(v) for k, v in (zones or {}).items()}
        self.image = gcp_image(image, pip_install=pip_install, cloud=name)  # "": the DLVM default
        self._network = network
        self._subnetwork = subnetwork
        self._network_tags = tuple(network_tags)
        self._service_account = service_account
        self._disk_gib = disk_gib
        self._termination_action = instance_termination_action.upper()
        self._backoff = backoff
        self._sleep = sleep
        self._op_timeout = operation_timeout_s
        kwargs: dict[str, Any] = {}
        if api_endpoint:
            from google.api_core.client_options import ClientOptions

            require_https(str(api_endpoint), key=f"provider.clouds.{name}.api_endpoint")
            kwargs["client_options"] = ClientOptions(api_endpoint=api_endpoint)
        if credentials is not None:
            kwargs["credentials"] = credentials
        from google.auth.exceptions import DefaultCredentialsError

        try:
            self._client = compute_v1.InstancesClient(transport="rest", **kwargs)
            # Operations are polled by this driver through its own client on the same endpoint:
            # the ExtendedOperation that InstancesClient.insert() returns polls through a
            # ZoneOperations client built without client_options, i.e. the public endpoint,
            # whatever api_endpoint says.
            self._operations = compute_v1.ZoneOperationsClient(transport="rest", **kwargs)
        except DefaultCredentialsError:
            raise ConfigError(f"provider.clouds.{name}", NO_ADC) from None
        self._compute = compute_v1
        self._lock = threading.Lock()
        self._credentials = credentials
        self._secrets = GcpSecretStore(project, self._access_token, endpoint=secrets_endpoint,
                                       metadata_token_url=metadata_token_url, cloud=name)
        self.recent = RecentListing()  # the last list(cluster), reused by launch (clouds/_recent.py)

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> GcpCloud:
        """Keys: project, zones (region -> zones, for regional offers), image (unset: a Deep
        Learning VM family, clouds/images.py), pip_install, network,
        subnetwork, network_tags, service_account, disk_gib, instance_termination_action,
        api_endpoint. Credentials: Application Default Credentials only."""
        _ = state_dir
        # Its schema first (clouds/schemas.py): credentials refused, misspelt keys named.
        check_section(f"provider.clouds.{name}", spec, GCP_SCHEMA)
        if spec.get("prices_endpoint"):  # the price feed sends the same ADC token there
            require_https(str(spec["prices_endpoint"]), key=f"provider.clouds.{name}.prices_endpoint")
        return cls(
            name,
            project=str(spec.get("project", "")),
            zones=spec.get("zones"),
            image=str(spec.get("image") or ""),
            network=str(spec.get("network", "global/networks/default")),
            subnetwork=str(spec.get("subnetwork", "")),
            network_tags=tuple(spec.get("network_tags", ())),
            service_account=str(spec.get("service_account", "")),
            disk_gib=int(spec.get("disk_gib", 200)),
            instance_termination_action=str(spec.get("instance_termination_action", "DELETE")),
            api_endpoint=spec.get("api_endpoint"),
            pip_install=boot_install(spec, f"provider.clouds.{name}"),
            secrets_endpoint=str(spec.get("secrets_endpoint") or GCP_SECRETS),
        )

    def secret_store(self, cluster: str) -> GcpSecretStore:
        """The cluster's secrets: Secret Manager in the cloud's project, read by workers with their
        service account (``service_account``; it needs ``roles/secretmanager.secretAccessor``)."""
        _ = cluster  # the secret names carry the cluster
        return self._secrets

    def _access_token(self) -> str:
        """A bearer token of this driver's credentials (injected, else Application Default
        Credentials), refreshed when it has expired."""
        with self._lock:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError

            try:
                if self._credentials is None:
                    self._credentials, _ = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/cloud-platform"])
                creds = self._credentials
                if not getattr(creds, "valid", False):
                    from google.auth.transport.requests import Request

                    creds.refresh(Request())
            except DefaultCredentialsError:
                raise ConfigError(f"provider.clouds.{self.name}", NO_ADC) from None
            except GoogleAuthError as exc:
                raise CloudError(self.name, auth_failed(exc)) from None
            return str(getattr(creds, "token", None) or "")

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], *, offer_id: str = "") -> Any:
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import GoogleAuthError

        def once() -> Any:
            try:
                return fn()
            except gexc.GoogleAPICallError as exc:
                raise map_api_error(exc, offer_id=offer_id) from None
            except GoogleAuthError as exc:  # an expired or revoked credential: refresh failed
                raise CloudError(self.name, auth_failed(exc), offer_id=offer_id) from None
            except gexc.GoogleAPIError as exc:
                raise CloudError(
                    "gcp", f"Compute Engine call failed: {type(exc).__name__}", offer_id=offer_id
                ) from None

        kwargs: dict[str, Any] = {"backoff": self._backoff}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return retry_throttled(once, **kwargs)

    def _wait(self, operation: Any, zone: str, *, offer_id: str = "") -> None:
        """Poll a zonal operation (``zoneOperations.wait``, which returns when it is DONE or after
        about two minutes) until DONE; raise its error, typed, if it finished with one."""
        done = self._compute.Operation.Status.DONE
        deadline = time.monotonic() + self._op_timeout
        while operation.status != done:
            if time.monotonic() > deadline:
                raise CloudError(
                    "gcp",
                    f"operation {operation.name} in {zone} not DONE after {self._op_timeout:.0f} s",
                    offer_id=offer_id,
                    code="OPERATION_TIMEOUT",
                )
            operation = self._call(
                functools.partial(
                    self._operations.wait, project=self.project, zone=zone, operation=operation.name
                ),
                offer_id=offer_id,
            )
        errors = list(operation.error.errors) if operation.error else []
        if errors:
            status = int(operation.http_error_status_code or 0)
            raise map_api_error(
                OperationError(
                    errors, status, str(operation.http_error_message or f"operation {operation.name} failed")
                ),
                offer_id=offer_id,
            )

    def zones_for(self, offer: Offer) -> list[str]:
        """The zones a launch of ``offer`` may use, in order: its own zone, or for an offer priced
        by region, the zones configured for that region (tried in turn on "no capacity")."""
        if offer.zone:
            return [offer.zone]
        zones = self._zones.get(offer.region)
        if not zones:
            raise CloudError(
                "gcp",
                f"offer {offer.offer_id} is priced by region; list zones for {offer.region} under "
                f"provider.clouds.{self.name}.zones",
                offer_id=offer.offer_id,
            )
        return list(zones)

    def zone_for(self, offer: Offer) -> str:
        return self.zones_for(offer)[0]

    def _instance(self, raw: Any) -> Instance:
        zone = str(raw.zone).rsplit("/", 1)[-1]
        items = {item.key: item.value for item in raw.metadata.items} if raw.metadata else {}
        try:
            tags = dict(json.loads(items.get(TAGS_METADATA_KEY, "{}")))
        except ValueError:
            tags = {}
        for key, value in raw.labels.items():
            tags.setdefault(key, value)
        internal_ip, external_ip = "", None
        if raw.network_interfaces:
            nic = raw.network_interfaces[0]
            internal_ip = str(nic.network_i_p or "")
            if nic.access_configs:
                external_ip = str(nic.access_configs[0].nat_i_p or "") or None
        return Instance(
            instance_id=InstanceId(f"{zone}.{raw.name}"),
            cloud=self.name,
            state=_STATES.get(str(raw.status), NodeState.PENDING),
            tags=tags,
            internal_ip=internal_ip,
            external_ip=external_ip,
            launched_at=_timestamp(str(raw.creation_timestamp or "")),
        )

    def _get_raw(self, zone: str, name: str) -> Any | None:
        try:
            return self._call(lambda: self._client.get(project=self.project, zone=zone, instance=name))
        except InstanceNotFound:
            return None

    # -- the Cloud protocol -----------------------------------------------------------------

    def instance_body(self, request: LaunchRequest, zone: str | None = None) -> dict[str, Any]:
        """The REST body of ``instances.insert`` for ``request`` in ``zone`` (default: the first
        zone of the offer; public so tests can check it)."""
        offer = request.offer
        zone = zone or self.zone_for(offer)
        host, _, accel = offer.instance_type.partition("+")
        body: dict[str, Any] = {
            "name": instance_name(request.request_id),
            "machineType": f"zones/{zone}/machineTypes/{host}",
            "disks": [
                {
                    "boot": True,
                    "autoDelete": True,
                    "initializeParams": {"sourceImage": self.image.image, "diskSizeGb": str(self._disk_gib)},
                }
            ],
            "networkInterfaces": [
                {"subnetwork": self._subnetwork} if self._subnetwork else {"network": self._network}
            ],
            "labels": {label_key(k): label_value(v) for k, v in request.tags.items()},
            "metadata": {
                "items": [{"key": TAGS_METADATA_KEY, "value": json.dumps(dict(request.tags), sort_keys=True)}]
            },
            "tags": {"items": sorted({*self._network_tags, network_tag(request.cluster)})},
            # GPU VMs cannot live-migrate; spot VMs cannot restart themselves.
            "scheduling": {"onHostMaintenance": "TERMINATE", "automaticRestart": False},
        }
        if accel or host.startswith("n1-"):
            gpu = ACCELERATOR_TYPES.get(accel or offer.accelerator, (accel or offer.accelerator).lower())
            body["guestAccelerators"] = [
                {
                    "acceleratorType": f"zones/{zone}/acceleratorTypes/{gpu}",
                    "acceleratorCount": max(1, int(offer.accelerator_count)),
                }
            ]
        if offer.capacity is CapacityType.SPOT:
            body["scheduling"].update(
                {"provisioningModel": "SPOT", "instanceTerminationAction": self._termination_action}
            )
        else:
            body["scheduling"]["provisioningModel"] = "STANDARD"
        if self._service_account:
            body["serviceAccounts"] = [
                {"email": self._service_account, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
            ]
        if request.bootstrap is not None:
            script = render_startup_script(
                request.bootstrap,
                offer,
                watcher_cloud="gcp",
                instance_id_lines=literal_instance_id(f"{zone}.{body['name']}"),
                pip_install=self.image.pip_install,
                secret_store=self.secret_store(request.cluster) if request.bootstrap.auth else None,
            )
            check_size(script, "gcp", offer_id=offer.offer_id)
            body["metadata"]["items"].append({"key": "startup-script", "value": script})
        return body

    def launch(self, request: LaunchRequest) -> Instance:
        name = instance_name(request.request_id)
        zones = self.zones_for(request.offer)
        fresh, listed = self.recent.lookup(request.cluster, request.request_id)
        if fresh and listed is not None and listed.state is not NodeState.DRAINING:
            return listed
        for zone in zones:
            if fresh and (listed is None or listed.instance_id != f"{zone}.{name}"):
                continue  # the listing of a moment ago has no VM of this request in this zone
            existing = self._get_raw(zone, name)
            if existing is None:
                continue
            if _STATES.get(str(existing.status), NodeState.PENDING) is not NodeState.DRAINING:
                return self._instance(existing)
            # This request's VM was stopped (instanceTerminationAction STOP) or is going down: it
            # holds the name and its disks bill; delete it, then create the VM afresh.
            self._delete(zone, name, offer_id=request.offer.offer_id)
        last: CapacityError | None = None
        for zone in zones:
            try:
                return self._insert(request, zone)
            except QuotaError:
                raise  # quotas are regional: another zone of the region would fail the same way
            except CapacityError as exc:
                last = exc
        assert last is not None
        raise last

    def _insert(self, request: LaunchRequest, zone: str) -> Instance:
        offer_id = request.offer.offer_id
        body = self.instance_body(request, zone)
        resource = self._compute.Instance.from_json(json.dumps(body))
        # GCE dedupes inserts that carry the same request_id (a UUID) for a while: a retried
        # insert after a lost reply does not create a second VM.
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"rmc:{request.request_id}:{zone}"))
        try:
            operation = self._call(
                lambda: self._client.insert_unary(
                    request=self._compute.InsertInstanceRequest(
                        project=self.project, zone=zone, instance_resource=resource, request_id=rid
                    )
                ),
                offer_id=offer_id,
            )
            self._wait(operation, zone, offer_id=offer_id)
        except CloudError as exc:
            if exc.code != "alreadyExists":
                raise
        raw = self._get_raw(zone, body["name"])
        if raw is None:
            raise CloudError(
                "gcp", f"instance {zone}/{body['name']} vanished after insert", offer_id=offer_id
            )
        return self._instance(raw)

    def _delete(self, zone: str, name: str, *, offer_id: str = "") -> None:
        """Delete the instance (boot and other ``autoDelete`` disks go with it); gone is fine."""
        try:
            operation = self._call(
                lambda: self._client.delete_unary(project=self.project, zone=zone, instance=name),
                offer_id=offer_id,
            )
            self._wait(operation, zone, offer_id=offer_id)
        except InstanceNotFound:
            return

    def terminate(self, instance_id: InstanceId) -> None:
        """Delete the instance whatever its status: a stopped or suspended VM (``STOP``
        termination action) is deleted too, with its auto-delete disks."""
        zone, name = split_id(instance_id)
        self.recent.drop(instance_id)
        if zone:
            self._delete(zone, name)

    def get(self, instance_id: InstanceId) -> Instance | None:
        """The instance, stopped ones included (DRAINING); None only when it no longer exists."""
        zone, name = split_id(instance_id)
        if not zone:
            return None
        raw = self._get_raw(zone, name)
        return None if raw is None else self._instance(raw)

    def list(self, cluster: str) -> list[Instance]:
        request = self._compute.AggregatedListInstancesRequest(
            project=self.project,
            filter=f"labels.{TAG_CLUSTER} = {label_value(cluster)}",
        )
        pages = self._call(lambda: list(self._client.aggregated_list(request=request)))
        found = []
        for _scope, scoped in pages:
            for raw in scoped.instances:
                inst = self._instance(raw)  # stopped VMs included: they exist and must be deleted
                if inst.tags.get(TAG_CLUSTER) == cluster:
                    found.append(inst)
        self.recent.store(cluster, found)
        return found

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        zone, name = split_id(instance_id)
        raw = self._get_raw(zone, name) if zone else None
        if raw is None:
            raise InstanceNotFound("gcp", f"instance {instance_id} does not exist")
        merged = {**self._instance(raw).tags, **tags}
        labels = {**dict(raw.labels), **{label_key(k): label_value(v) for k, v in tags.items()}}
        items = [
            {"key": item.key, "value": item.value}
            for item in raw.metadata.items
            if item.key != TAGS_METADATA_KEY
        ]
        items.append({"key": TAGS_METADATA_KEY, "value": json.dumps(merged, sort_keys=True)})
        metadata = self._compute.Metadata(fingerprint=raw.metadata.fingerprint, items=items)
        set_labels = self._compute.InstancesSetLabelsRequest(
            label_fingerprint=raw.label_fingerprint, labels=labels
        )
        self._apply(
            zone,
            lambda: self._client.set_metadata_unary(
                project=self.project, zone=zone, instance=name, metadata_resource=metadata
            ),
        )
        self._apply(
            zone,
            lambda: self._client.set_labels_unary(
                project=self.project,
                zone=zone,
                instance=name,
                instances_set_labels_request_resource=set_labels,
            ),
        )

    def _apply(self, zone: str, start: Callable[[], Any]) -> None:
        self._wait(self._call(start), zone)
