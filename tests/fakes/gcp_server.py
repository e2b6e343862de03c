"""A fake Compute Engine REST API (v1) on loopback: instances and zone operations.

It checks what the real API checks for the calls the driver makes (path shape, project, a valid
instance name, required body fields, label syntax, GPUs need ``onHostMaintenance: TERMINATE``,
fingerprints on setLabels/setMetadata) and answers with the real shapes: ``compute#instance``,
``compute#operation`` and the real error bodies. Field names and nesting are held to the Compute
v1 discovery document (``tests/data/api_examples/gcp/compute-v1-instance-schemas.json``, see
``test_vendor_examples.py``). Fields a test sets:

- ``operation_polls``: how many ``zoneOperations.get``/``wait`` calls an operation answers
  RUNNING before it is DONE (default 1: every operation starts RUNNING, so callers must poll, and
  must poll *this* server);
- ``exhausted_zones``: inserts there finish with a failed operation, error
  ``ZONE_RESOURCE_POOL_EXHAUSTED`` and the documented message template, as GCE answers a stockout;
- ``quota_zones``: inserts there fail with ``QUOTA_EXCEEDED`` in the operation, with the
  ``errorDetails[].quotaInfo`` (QuotaExceededInfo) the discovery doc says comes with that code;
- ``http_error_fields``: whether failed operations carry ``httpErrorStatusCode`` /
  ``httpErrorMessage`` (the discovery doc marks both optional output; default False, so callers
  cannot lean on them);
- ``throttle_next``: the next N requests answer HTTP 429 ``rateLimitExceeded``; with
  ``rate_quota_403`` they answer as a rate quota does instead ("If the quota is a rate quota,
  then 403 RATE_LIMIT_EXCEEDED is returned", quotas/troubleshoot, in capacity-errors.json);
- ``quota_http_zones``: inserts there are refused at once with HTTP 403 ``QUOTA_EXCEEDED`` ("Google
  Cloud typically returns an HTTP 403 QUOTA_EXCEEDED status code", same source);
- ``preempt(zone, name)``: a spot VM's preemption, as its ``instanceTerminationAction`` says:
  STOP leaves it ``TERMINATED`` with its disks, DELETE removes it and its auto-delete disks.

``disks`` holds the persistent disks (boot disks are created with their instance).
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

from fakes._http import FakeApi, Reply

BASE = "https://www.googleapis.com/compute/v1"
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
ROUTES = [
    ("POST", re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances$"), "insert"),
    ("GET", re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances$"), "list"),
    ("GET", re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)$"), "get"),
    ("DELETE", re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)$"), "delete"),
    (
        "POST",
        re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)/setLabels$"),
        "set_labels",
    ),
    (
        "POST",
        re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)/setMetadata$"),
        "set_metadata",
    ),
    ("GET", re.compile(r"^/compute/v1/projects/([^/]+)/aggregated/instances$"), "aggregated"),
    ("GET", re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/operations/([^/]+)$"), "op"),
    ("POST", re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/operations/([^/]+)/wait$"), "op"),
]


def error(status: int, message: str, reason: str, domain: str = "global") -> Reply:
    return (
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
            }
        },
        {},
    )


class FakeGcp(FakeApi):
    def __init__(
        self, project: str = "rmc-test", zones: tuple[str, ...] = ("us-central1-a", "us-central1-b")
    ) -> None:
        super().__init__()
        self.project = project
        self.zones = set(zones)
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.exhausted_zones: set[str] = set()
        self.quota_zones: set[str] = set()
        self.throttle_next = 0
        self.rate_quota_403 = False
        self.quota_http_zones: set[str] = set()
        self.operation_polls = 1
        self.http_error_fields = False
        self.disks: dict[tuple[str, str], dict[str, Any]] = {}
        self.inserted_bodies: list[dict[str, Any]] = []
        self._pending_polls: dict[str, int] = {}
        self._ids = itertools.count(4_000_000_000_000_000_001)
        self._ips = itertools.count(2)

    # -- routing ----------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            if self.rate_quota_403:
                return error(403, "Rate Limit Exceeded", "RATE_LIMIT_EXCEEDED", "usageLimits")
            return error(429, "Rate Limit Exceeded", "rateLimitExceeded", "usageLimits")
        for verb, pattern, name in ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                project = match.group(1)
                if project != self.project:
                    return error(404, f"The resource 'projects/{project}' was not found", "notFound")
                if len(match.groups()) >= 2 and name != "aggregated" and match.group(2) not in self.zones:
                    return error(
                        400, f"Invalid value for field 'zone': '{match.group(2)}'. Unknown zone.", "invalid"
                    )
                handler = getattr(self, f"_{name}")
                reply: Reply = handler(*match.groups()[1:], query=query, body=body)
                return reply
        return error(404, f"The requested URL {path} was not found on this server.", "notFound")

    # -- helpers ----------------------------------------------------------------------------
    def _zone_url(self, zone: str) -> str:
        return f"{BASE}/projects/{self.project}/zones/{zone}"

    def _operation(self, zone: str, kind: str, target: str, err: dict[str, Any] | None = None) -> Reply:
        """A new operation; RUNNING (no ``error`` yet) for ``operation_polls`` polls, then DONE."""
        name = f"operation-{next(self._ids)}-{secrets.token_hex(6)}"
        op: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "zone": self._zone_url(zone),
            "operationType": kind,
            "targetLink": f"{self._zone_url(zone)}/instances/{target}",
            "status": "DONE",
            "progress": 100,
            "insertTime": "2026-11-28T04:00:00.000-08:00",
            "startTime": "2026-11-28T04:00:00.100-08:00",
            "endTime": "2026-11-28T04:00:01.000-08:00",
            "user": "rmc@rmc-test.iam.gserviceaccount.com",
            "selfLink": f"{self._zone_url(zone)}/operations/{name}",
        }
        if err is not None:
            if not self.http_error_fields:
                err = {k: v for k, v in err.items() if not k.startswith("httpError")}
            op.update(err)
        self.operations[name] = op
        self._pending_polls[name] = self.operation_polls
        return 200, self._op_view(name), {}

    def _op_view(self, name: str) -> dict[str, Any]:
        op = self.operations[name]
        if self._pending_polls.get(name, 0) <= 0:
            return dict(op)
        running = {k: v for k, v in op.items() if k not in ("error", "endTime") and not k.startswith("http")}
        running.update({"status": "RUNNING", "progress": 0})
        return running

    def _zonal_url(self, url: str, zone: str, collection: str) -> bool:
        """A full or partial URL of a zonal resource, as AcceleratorConfig.acceleratorType documents
        ("Full or partial URL ... For example: projects/my-project/zones/us-central1-c/
        acceleratorTypes/nvidia-tesla-p100"): ``[https://.../compute/v1/][projects/P/]zones/Z/C/N``."""
        for prefix in (f"{BASE}/projects/{self.project}/", f"projects/{self.project}/", ""):
            if url.startswith(prefix):
                rest = url[len(prefix) :]
                if re.fullmatch(rf"zones/{re.escape(zone)}/{collection}/[a-z0-9][-a-z0-9+]*", rest):
                    return True
        return False

    def _validate_insert(self, zone: str, body: Any) -> Reply | None:
        if not isinstance(body, dict):
            return error(400, "Required field 'resource' not specified", "required")
        name = body.get("name", "")
        if not NAME.match(str(name)):
            return error(
                400,
                f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex "
                "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
                "invalid",
            )
        if not self._zonal_url(str(body.get("machineType", "")), zone, "machineTypes"):
            return error(400, "Invalid value for field 'resource.machineType'", "invalid")
        disks = body.get("disks") or []
        if not any(d.get("boot") for d in disks):
            return error(
                400, "Invalid value for field 'resource.disks': ''. Boot disk must be specified.", "invalid"
            )
        for disk in disks:
            if not disk.get("source") and not disk.get("initializeParams", {}).get("sourceImage"):
                return error(
                    400,
                    "Required field 'resource.disks[0].initializeParams.sourceImage' not specified",
                    "required",
                )
        if not body.get("networkInterfaces"):
            return error(400, "Required field 'resource.networkInterfaces' not specified", "required")
        labels = body.get("labels", {})
        if len(labels) > 64:
            return error(400, "Invalid value for field 'resource.labels': too many labels", "invalid")
        for key, value in labels.items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
                return error(400, f"Invalid value for field 'resource.labels': '{key}={value}'", "invalid")
        scheduling = body.get("scheduling", {})
        has_gpu = bool(body.get("guestAccelerators")) or bool(
            re.search(r"/(a2|a3|g2)-", str(body.get("machineType")))
        )
        if has_gpu and scheduling.get("onHostMaintenance") != "TERMINATE":
            return error(
                400, "Instances with guest accelerators do not support live migration.", "badRequest"
            )
        for accel in body.get("guestAccelerators", []):
            if not self._zonal_url(str(accel.get("acceleratorType", "")), zone, "acceleratorTypes"):
                return error(
                    400, "Invalid value for field 'resource.guestAccelerators[0].acceleratorType'", "invalid"
                )
        if scheduling.get("provisioningModel") == "SPOT":
            if scheduling.get("automaticRestart", True):
                return error(
                    400,
                    "Invalid value for field 'resource.scheduling.automaticRestart': 'true'. Spot "
                    "VMs cannot be automatically restarted.",
                    "invalid",
                )
            if scheduling.get("instanceTerminationAction") not in ("STOP", "DELETE"):
                return error(
                    400, "Invalid value for field 'resource.scheduling.instanceTerminationAction'", "invalid"
                )
        for item in body.get("metadata", {}).get("items", []):
            if "key" not in item:
                return error(400, "Required field 'resource.metadata.items[0].key' not specified", "required")
        return None

    # -- handlers ---------------------------------------------------------------------------
    def _insert(self, zone: str, *, query: dict[str, str], body: Any) -> Reply:
        bad = self._validate_insert(zone, body)
        if bad is not None:
            return bad
        self.inserted_bodies.append(body)
        name = body["name"]
        if (zone, name) in self.instances:
            return error(
                409,
                f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' already exists",
                "alreadyExists",
            )
        if zone in self.exhausted_zones:
            # The documented template (capacity-errors.json): a newline before "Try", not spaces.
            message = (
                f"The zone 'projects/{self.project}/zones/{zone}' does not have enough resources available "
                "to fulfill the request.\nTry a different zone, or try again later."
            )
            return self._operation(
                zone,
                "insert",
                name,
                {
                    "error": {"errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED", "message": message}]},
                    "httpErrorStatusCode": 503,
                    "httpErrorMessage": "SERVICE UNAVAILABLE",
                },
            )
        if zone in self.quota_http_zones:
            region = zone.rsplit("-", 1)[0]
            return error(
                403, f"Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 0.0 in region {region}.", "QUOTA_EXCEEDED"
            )
        if zone in self.quota_zones:
            region = zone.rsplit("-", 1)[0]
            message = f"Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 0.0 in region {region}."
            return self._operation(
                zone,
                "insert",
                name,
                {
                    "error": {
                        "errors": [
                            {
                                "code": "QUOTA_EXCEEDED",
                                "message": message,
                                "errorDetails": [
                                    {
                                        "quotaInfo": {
                                            "metricName": "compute.googleapis.com/nvidia_v100_gpus",
                                            "limitName": "NVIDIA-V100-GPUS-per-project-region",
                                            "dimensions": {"region": region},
                                            "limit": 0,
                                        }
                                    }
                                ],
                            }
                        ]
                    },
                    "httpErrorStatusCode": 403,
                    "httpErrorMessage": "FORBIDDEN",
                },
            )
        ip = next(self._ips)
        instance = {
            "kind": "compute#instance",
            "id": str(next(self._ids)),
            "creationTimestamp": "2026-11-28T04:00:00.000-08:00",
            "name": name,
            "machineType": f"{self._zone_url(zone)}/machineTypes/{body['machineType'].rsplit('/', 1)[-1]}",
            "status": "PROVISIONING",
            "zone": self._zone_url(zone),
            "networkInterfaces": [
                {
                    "kind": "compute#networkInterface",
                    "name": "nic0",
                    "networkIP": f"10.128.{ip // 250}.{ip % 250 + 2}",
                }
            ],
            "disks": [
                {
                    "kind": "compute#attachedDisk",
                    "type": "PERSISTENT",
                    "mode": "READ_WRITE",
                    "source": f"{self._zone_url(zone)}/disks/{name}",
                    "boot": True,
                    "autoDelete": bool(body["disks"][0].get("autoDelete", False)),
                    "deviceName": "persistent-disk-0",
                    "index": 0,
                }
            ],
            "metadata": {
                "kind": "compute#metadata",
                "fingerprint": secrets.token_urlsafe(8),
                "items": list(body.get("metadata", {}).get("items", [])),
            },
            "labels": dict(body.get("labels", {})),
            "labelFingerprint": secrets.token_urlsafe(8),
            "scheduling": dict(body.get("scheduling", {})),
            "guestAccelerators": list(body.get("guestAccelerators", [])),
            "tags": {
                "items": list(body.get("tags", {}).get("items", [])),
                "fingerprint": secrets.token_urlsafe(8),
            },
            "selfLink": f"{self._zone_url(zone)}/instances/{name}",
        }
        self.instances[(zone, name)] = instance
        size = str(body["disks"][0].get("initializeParams", {}).get("diskSizeGb", "10"))
        self.disks[(zone, name)] = {"name": name, "sizeGb": size, "users": [instance["selfLink"]]}
        return self._operation(zone, "insert", name)

    def _get(self, zone: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        instance = self.instances.get((zone, name))
        if instance is None:
            return error(
                404,
                f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found",
                "notFound",
            )
        # Boot progresses one step per read: PROVISIONING -> STAGING -> RUNNING.
        reply = dict(instance)
        instance["status"] = {"PROVISIONING": "STAGING", "STAGING": "RUNNING"}.get(
            instance["status"], instance["status"]
        )
        return 200, reply, {}

    def _delete(self, zone: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        if (zone, name) in self.instances:
            self._remove(zone, name)
        else:
            return error(
                404,
                f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found",
                "notFound",
            )
        return self._operation(zone, "delete", name)

    def _set_labels(self, zone: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        instance = self.instances.get((zone, name))
        if instance is None:
            return error(
                404,
                f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found",
                "notFound",
            )
        if not isinstance(body, dict) or body.get("labelFingerprint") != instance["labelFingerprint"]:
            return error(
                412,
                "Labels fingerprint either invalid or resource labels have changed",
                "conditionNotMet",
            )
        for key, value in body.get("labels", {}).items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
                return error(400, f"Invalid value for field 'labels': '{key}={value}'", "invalid")
        instance["labels"] = dict(body.get("labels", {}))
        instance["labelFingerprint"] = secrets.token_urlsafe(8)
        return self._operation(zone, "setLabels", name)

    def _set_metadata(self, zone: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        instance = self.instances.get((zone, name))
        if instance is None:
            return error(
                404,
                f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found",
                "notFound",
            )
        if not isinstance(body, dict) or body.get("fingerprint") != instance["metadata"]["fingerprint"]:
            return error(
                412,
                "Supplied fingerprint does not match current metadata fingerprint.",
                "conditionNotMet",
            )
        instance["metadata"] = {
            "kind": "compute#metadata",
            "fingerprint": secrets.token_urlsafe(8),
            "items": list(body.get("items", [])),
        }
        return self._operation(zone, "setMetadata", name)

    def _list(self, zone: str, *, query: dict[str, str], body: Any) -> Reply:
        items = [
            dict(i)
            for (z, _), i in sorted(self.instances.items())
            if z == zone and self._matches(i, query.get("filter", ""))
        ]
        return (
            200,
            {
                "kind": "compute#instanceList",
                "id": f"projects/{self.project}/zones/{zone}/instances",
                "items": items,
            },
            {},
        )

    def _aggregated(self, *, query: dict[str, str], body: Any) -> Reply:
        items: dict[str, Any] = {}
        for zone in sorted(self.zones):
            found = [
                dict(i)
                for (z, _), i in sorted(self.instances.items())
                if z == zone and self._matches(i, query.get("filter", ""))
            ]
            if found:
                items[f"zones/{zone}"] = {"instances": found}
            else:
                items[f"zones/{zone}"] = {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": "There are no results for scope 'zones/" + zone + "' on this page.",
                        "data": [{"key": "scope", "value": f"zones/{zone}"}],
                    }
                }
        return (
            200,
            {
                "kind": "compute#instanceAggregatedList",
                "id": f"projects/{self.project}/aggregated/instances",
                "items": items,
                "selfLink": f"{BASE}/projects/{self.project}/aggregated/instances",
            },
            {},
        )

    def _op(self, zone: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        """``zoneOperations.get`` and ``.wait``: each poll moves a RUNNING operation one step on."""
        op = self.operations.get(name)
        if op is None or not op["zone"].endswith(f"/zones/{zone}"):
            return error(
                404,
                f"The resource 'projects/{self.project}/zones/{zone}/operations/{name}' was not found",
                "notFound",
            )
        self._pending_polls[name] = self._pending_polls.get(name, 0) - 1
        return 200, self._op_view(name), {}

    def preempt(self, zone: str, name: str) -> None:
        """Preempt a VM as GCE does, by its ``scheduling.instanceTerminationAction``."""
        with self.lock:
            instance = self.instances[(zone, name)]
            if instance.get("scheduling", {}).get("instanceTerminationAction") == "STOP":
                instance["status"] = "TERMINATED"  # GCE's "stopped": disks kept (and billed)
            else:
                self._remove(zone, name)

    def _remove(self, zone: str, name: str) -> None:
        instance = self.instances.pop((zone, name))
        for disk in instance.get("disks", []):
            if disk.get("autoDelete"):
                self.disks.pop((zone, str(disk["source"]).rsplit("/", 1)[-1]), None)

    @staticmethod
    def _matches(instance: dict[str, Any], expression: str) -> bool:
        """The subset of GCE list filters the driver uses: ``labels.KEY = VALUE`` (AND-ed by spaces)."""
        if not expression:
            return True
        for key, value in re.findall(r"labels\.([a-z0-9_-]+)\s*=\s*\"?([a-z0-9_-]*)\"?", expression):
            if instance.get("labels", {}).get(key) != value:
                return False
        return True
