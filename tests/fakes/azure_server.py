"""A fake Azure Resource Manager (Compute VMs, Network NICs, async operations) on loopback.

It checks what ARM checks for the calls the driver makes: ``api-version`` on every request, a
bearer token, the VM body's required parts (location, vmSize, image, OS profile with an SSH key,
an existing NIC in the same location, spot needs evictionPolicy), and answers as ARM does:
201 + ``Azure-AsyncOperation`` for PUTs, async operation documents, ``{"error": {code, message}}``
bodies. Fields a test sets (per region):

- ``sku_not_available``: the VM PUT answers 409 ``SkuNotAvailable`` (synchronous, as ARM does);
- ``allocation_failed``: the PUT is accepted, the async operation fails with ``AllocationFailed``,
  and the VM is left in provisioning state Failed (as ARM leaves it);
- ``quota_exceeded``: 409 ``OperationNotAllowed`` with ARM's quota message;
- ``capacity_errors``: region -> a documented capacity/Spot code (``OverConstrainedAllocationRequest``,
  ``SpotPriceGreaterThanProvidedMaxPrice``, ...): the VM PUT answers 409 with that code and its
  documented message (``tests/data/api_examples/azure/capacity-error-codes.json``);
- ``nested_errors``: error bodies take the documented VM error-response format, the code under
  ``error.details[]`` and a wrapper code on top (``{"status", "error": {code, message, details}}``);
- ``throttle_next``: the next N requests answer 429 ``TooManyRequests``.

``disks`` holds the managed OS disks, created with their VM (named ``<vm>_OsDisk_1_<hex>``, the
VM's ``storageProfile.osDisk.name`` / ``managedDisk.id`` as in vm-get.example.json). Deleting a
VM deletes its OS disk and NICs whose ``deleteOption`` is ``Delete`` and keeps the others, as ARM
does; a NIC held by a VM shows it in ``properties.virtualMachine.id`` and cannot be deleted.
``GET .../networkInterfaces`` lists the resource group's NICs (``{"value": [...]}``).

Error bodies follow the ``CloudError``/``ApiError`` definitions (azure/cloud-error.schema.json).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
from pathlib import Path
from typing import Any

from fakes._http import FakeApi, Reply

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
RG = r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
VM_ROUTE = re.compile(RG + r"Microsoft\.Compute/virtualMachines/([^/]+)$")
VM_LIST = re.compile(RG + r"Microsoft\.Compute/virtualMachines$")
NIC_ROUTE = re.compile(RG + r"Microsoft\.Network/networkInterfaces/([^/]+)$")
NIC_LIST = re.compile(RG + r"Microsoft\.Network/networkInterfaces$")
OP_ROUTE = re.compile(
    r"^/subscriptions/([^/]+)/providers/Microsoft\.(Compute|Network)/locations/([^/]+)/operations/([^/]+)$"
)


EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "api_examples" / "azure"


def documented_messages() -> dict[str, str]:
    """Microsoft's documented message per capacity/Spot error code (first one listed per code)."""
    doc = json.loads((EXAMPLES / "capacity-error-codes.json").read_text())
    out: dict[str, str] = {}
    for entry in [*doc["capacity_errors"], *doc["spot_errors"]]:
        for code in re.findall(r"[A-Z][A-Za-z]+", entry["code"].split("(")[0]):
            if code != "or":
                out.setdefault(code, entry["documented_message"].strip('"').replace(":\\//", "://"))
    return out


def arm_error(status: int, code: str, message: str) -> Reply:
    return status, {"error": {"code": code, "message": message}}, {}


def nest(error: dict[str, Any], status: int) -> dict[str, Any]:
    """The documented VM error-response format (error-messages.md): a top-level code and message,
    the failing code under ``details`` ("the most inner level of error message is the root
    failure")."""
    return {
        "status": str(status),
        "error": {
            "code": "DeploymentFailed" if status >= 500 else "BadRequest",
            "message": "At least one resource deployment operation failed.",
            "details": [{"code": error["code"], "message": error["message"]}],
        },
    }


class FakeAzure(FakeApi):
    def __init__(
        self, subscription: str = "00000000-0000-0000-0000-00000000abcd", resource_group: str = "rmc-rg"
    ) -> None:
        super().__init__()
        self.subscription = subscription
        self.resource_group = resource_group
        self.vms: dict[str, dict[str, Any]] = {}
        self.nics: dict[str, dict[str, Any]] = {}
        self.disks: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.sku_not_available: set[str] = set()
        self.allocation_failed: set[str] = set()
        self.quota_exceeded: set[str] = set()
        self.capacity_errors: dict[str, str] = {}
        self.nested_errors = False
        self.throttle_next = 0
        self.vm_puts: list[dict[str, Any]] = []
        self._ips = itertools.count(4)

    # -- routing ----------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        status, payload, extra = self._route(method, path, query, headers, body)
        if self.nested_errors and status >= 400 and isinstance(payload, dict) and "error" in payload:
            payload = nest(payload["error"], status)
        return status, payload, extra

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if not API_VERSION.match(query.get("api-version", "")):
            return arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not headers.get("authorization", "").startswith("Bearer "):
            return arm_error(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        if self.throttle_next > 0:
            self.throttle_next -= 1
            reply = arm_error(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type - "
                "Write_30Min.",
            )
            return reply[0], reply[1], {"Retry-After": "0"}
        match = OP_ROUTE.match(path)
        if match and method == "GET":
            op = self.operations.get(match.group(4))
            if op is None:
                return arm_error(404, "NotFound", "The operation was not found.")
            if query.get("monitor") == "true":  # a Location monitor: 202 while running, then 200
                return (202, None, {"Retry-After": "0"}) if op["status"] == "InProgress" else (200, None, {})
            return 200, op, {}
        for pattern, handler in ((VM_ROUTE, self._vm), (VM_LIST, self._vm_list), (NIC_ROUTE, self._nic),
                                 (NIC_LIST, self._nic_list)):
            match = pattern.match(path)
            if match:
                sub, rg = match.group(1), match.group(2)
                if sub != self.subscription:
                    return arm_error(
                        404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
                    )
                if rg != self.resource_group:
                    return arm_error(
                        404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
                    )
                return handler(method, *match.groups()[2:], query=query, body=body)
        return arm_error(404, "InvalidResourceType", f"The resource type could not be found for {path}.")

    # -- helpers ----------------------------------------------------------------------------
    def _id(self, provider: str, name: str) -> str:
        group = f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        return f"{group}/providers/{provider}/{name}"

    def _async(
        self, provider: str, location: str, status: str, error: dict[str, Any] | None = None
    ) -> dict[str, str]:
        op_id = secrets.token_hex(8)
        doc: dict[str, Any] = {
            "startTime": "2026-11-28T04:00:00.0000000+00:00",
            "status": status,
            "name": op_id,
        }
        if status != "InProgress":
            doc["endTime"] = "2026-11-28T04:00:05.0000000+00:00"
        if error is not None:
            doc["error"] = nest(error, 500)["error"] if self.nested_errors else error
        self.operations[op_id] = doc
        url = (
            f"{self.url}/subscriptions/{self.subscription}/providers/Microsoft.{provider}"
            f"/locations/{location}/operations/{op_id}?api-version=2026-04-01"
        )
        return {"Azure-AsyncOperation": url, "Retry-After": "0"}

    # -- NICs -------------------------------------------------------------------------------
    def _nic_list(self, method: str, *, query: dict[str, str], body: Any) -> Reply:
        if method != "GET":
            return arm_error(405, "MethodNotAllowed", f"{method} is not allowed")
        return 200, {"value": [nic for _, nic in sorted(self.nics.items())]}, {}

    def _nic(self, method: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        nic_id = self._id("Microsoft.Network/networkInterfaces", name)
        if method == "GET":
            nic = self.nics.get(name)
            if nic is None:
                return arm_error(404, "NotFound", f"Resource {nic_id} not found.")
            return 200, nic, {}
        if method == "DELETE":
            nic = self.nics.get(name)
            if nic is None:
                return 204, None, {}
            users = [
                vm
                for vm in self.vms.values()
                if any(n["id"] == nic_id for n in vm["properties"]["networkProfile"]["networkInterfaces"])
            ]
            if users:
                return arm_error(
                    400,
                    "NicInUse",
                    f"Network Interface {nic_id} is used by existing resource {users[0]['id']}.",
                )
            del self.nics[name]
            return 200, None, {}
        if method == "PUT":
            if not isinstance(body, dict) or not body.get("location"):
                return arm_error(
                    400, "LocationRequired", "The location property is required for this definition."
                )
            configs = body.get("properties", {}).get("ipConfigurations") or []
            if not configs or not configs[0].get("properties", {}).get("subnet", {}).get("id"):
                return arm_error(
                    400, "InvalidRequestFormat", "Cannot parse the request: subnet id is required."
                )
            existing = self.nics.get(name)
            ip = (
                existing["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
                if existing
                else f"10.1.0.{next(self._ips)}"
            )
            nic = {
                "name": name,
                "id": nic_id,
                "type": "Microsoft.Network/networkInterfaces",
                "location": body["location"],
                "tags": dict(body.get("tags") or {}),
                "properties": {
                    "provisioningState": "Succeeded",
                    "ipConfigurations": [
                        {
                            "name": configs[0].get("name", "ipconfig1"),
                            "id": f"{nic_id}/ipConfigurations/{configs[0].get('name', 'ipconfig1')}",
                            "properties": {
                                "provisioningState": "Succeeded",
                                "privateIPAddress": ip,
                                "privateIPAllocationMethod": "Dynamic",
                                "subnet": configs[0]["properties"]["subnet"],
                                "primary": True,
                            },
                        }
                    ],
                    **(
                        {"networkSecurityGroup": body["properties"]["networkSecurityGroup"]}
                        if body["properties"].get("networkSecurityGroup")
                        else {}
                    ),
                },
            }
            self.nics[name] = nic
            return (200 if existing else 201), nic, {}
        return arm_error(405, "MethodNotAllowed", f"{method} is not allowed")

    # -- VMs --------------------------------------------------------------------------------
    def _vm_list(self, method: str, *, query: dict[str, str], body: Any) -> Reply:
        return 200, {"value": [self._public(vm) for _, vm in sorted(self.vms.items())]}, {}

    @staticmethod
    def _public(vm: dict[str, Any], expand: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in vm.items() if k != "_instanceView"}
        out["properties"] = dict(vm["properties"])
        if expand:
            out["properties"]["instanceView"] = vm.get("_instanceView", {"statuses": []})
        return out

    def _validate_vm(self, name: str, body: Any) -> Reply | None:
        if not isinstance(body, dict) or not body.get("location"):
            return arm_error(
                400, "LocationRequired", "The location property is required for this definition."
            )
        props = body.get("properties") or {}
        if not props.get("hardwareProfile", {}).get("vmSize"):
            return arm_error(
                400, "InvalidParameter", "Required parameter 'hardwareProfile.vmSize' is missing (null)."
            )
        storage = props.get("storageProfile", {})
        if not storage.get("imageReference"):
            return arm_error(
                400, "InvalidParameter", "Required parameter 'imageReference' is missing (null)."
            )
        os_profile = props.get("osProfile") or {}
        if not os_profile.get("adminUsername"):
            return arm_error(
                400, "InvalidParameter", "Required parameter 'osProfile.adminUsername' is missing (null)."
            )
        keys = os_profile.get("linuxConfiguration", {}).get("ssh", {}).get("publicKeys", [])
        if not os_profile.get("adminPassword") and not any(k.get("keyData") for k in keys):
            return arm_error(400, "InvalidParameter", "Required parameter 'adminPassword' is missing (null).")
        nics = props.get("networkProfile", {}).get("networkInterfaces") or []
        if not nics:
            return arm_error(
                400, "InvalidParameter", "Required parameter 'networkProfile' is missing (null)."
            )
        nic_name = str(nics[0].get("id", "")).rsplit("/", 1)[-1]
        nic = self.nics.get(nic_name)
        if nic is None:
            return arm_error(400, "NotFound", f"Resource {nics[0].get('id')} not found.")
        if nic["location"] != body["location"]:
            return arm_error(
                400,
                "InvalidResourceReference",
                f"Resource {nic['id']} referenced by resource "
                f"{self._id('Microsoft.Compute/virtualMachines', name)} was not found in location "
                f"{body['location']}.",
            )
        priority = props.get("priority", "Regular")
        if priority == "Spot":
            if props.get("evictionPolicy") not in ("Delete", "Deallocate"):
                return arm_error(400, "InvalidParameter", "Eviction policy must be specified for Spot VMs.")
            max_price = props.get("billingProfile", {}).get("maxPrice")
            if max_price is None or (max_price != -1 and max_price <= 0):
                return arm_error(
                    400,
                    "InvalidParameter",
                    "The billingProfile.maxPrice must be -1 or a positive price for Spot VMs.",
                )
        elif priority != "Regular" and priority != "Low":
            return arm_error(
                400, "InvalidParameter", f"The value '{priority}' of parameter 'priority' is not allowed."
            )
        if "customData" in os_profile and not re.fullmatch(r"[A-Za-z0-9+/=]*", os_profile["customData"]):
            return arm_error(400, "InvalidParameter", "Custom data in OSProfile must be in Base64 encoding.")
        return None

    def _vm(self, method: str, name: str, *, query: dict[str, str], body: Any) -> Reply:
        vm_id = self._id("Microsoft.Compute/virtualMachines", name)
        not_found = arm_error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group "
            f"'{self.resource_group}' "
            "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )
        vm = self.vms.get(name)
        if method == "GET":
            if vm is None:
                return not_found
            reply = self._public(vm, expand=query.get("$expand") == "instanceView")
            if vm["properties"]["provisioningState"] == "Creating":
                vm["properties"]["provisioningState"] = "Succeeded"
            return 200, reply, {}
        if method == "DELETE":
            if vm is None:
                return 204, None, {}
            del self.vms[name]
            self._release(vm)
            # vm-delete-force.example.json: 202 with a Location header (a monitor URL), not
            # Azure-AsyncOperation.
            url = self._async("Compute", vm["location"], "Succeeded")["Azure-AsyncOperation"]
            return 202, None, {"Location": f"{url}&monitor=true", "Retry-After": "0"}
        if method == "PATCH":
            if vm is None:
                return not_found
            if isinstance(body, dict) and "tags" in body:
                vm["tags"] = dict(body["tags"])  # PATCH replaces the whole tags object, as ARM does
            return 200, self._public(vm), {}
        if method != "PUT":
            return arm_error(405, "MethodNotAllowed", f"{method} is not allowed")
        bad = self._validate_vm(name, body)
        if bad is not None:
            return bad
        self.vm_puts.append(body)
        location = body["location"]
        size = body["properties"]["hardwareProfile"]["vmSize"]
        if location in self.sku_not_available:
            # The documented template (error-sku-not-available.md), placeholders filled in.
            zones = ",".join(body.get("zones") or [])
            return arm_error(
                409,
                "SkuNotAvailable",
                f"The requested size for resource '{vm_id}' is currently not available in location "
                f"'{location}'\nzones '{zones}' for subscription '{self.subscription}'.\nPlease try "
                "another size or deploy to a different location or zones.",
            )
        if location in self.capacity_errors:
            code = self.capacity_errors[location]
            message = documented_messages()[code]
            return arm_error(409, code, message.replace("{0}", size).replace("{3}", size))
        if location in self.quota_exceeded:
            return arm_error(
                409,
                "OperationNotAllowed",
                "Operation could not be completed as it results in exceeding approved "
                "LowPriorityCores quota. "
                f"Additional details - Deployment Model: Resource Manager, Location: {location}, "
                "Current Limit: 0, "
                "Current Usage: 0, Additional Required: 6, (Minimum) New Limit Required: 6. Submit a "
                "request for "
                "Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView",
            )
        existed = vm is not None
        record = {
            "name": name,
            "id": vm_id,
            "type": "Microsoft.Compute/virtualMachines",
            "location": location,
            "tags": dict(body.get("tags") or {}),
            "properties": {
                **copy.deepcopy(body["properties"]),
                "provisioningState": "Creating",
                "vmId": secrets.token_hex(16),
                "timeCreated": "2026-11-28T04:00:00.1234567+00:00",
            },
        }
        if "zones" in body:
            record["zones"] = list(body["zones"])
        record["properties"].get("osProfile", {}).pop("customData", None)  # ARM never returns customData
        if existed:
            record["properties"]["storageProfile"]["osDisk"] = vm["properties"]["storageProfile"]["osDisk"]
        else:
            self._create_os_disk(name, record)
        for ref in record["properties"]["networkProfile"]["networkInterfaces"]:
            nic = self.nics.get(str(ref.get("id", "")).rsplit("/", 1)[-1])
            if nic is not None:
                nic["properties"]["virtualMachine"] = {"id": vm_id}
        self.vms[name] = record
        if location in self.allocation_failed:
            message = documented_messages()["AllocationFailed"]
            record["properties"]["provisioningState"] = "Failed"
            record["_instanceView"] = {
                "statuses": [
                    {
                        "code": "ProvisioningState/failed/AllocationFailed",
                        "level": "Error",
                        "displayStatus": "Provisioning failed",
                        "message": message,
                    }
                ]
            }
            headers = self._async(
                "Compute", location, "Failed", {"code": "AllocationFailed", "message": message}
            )
            return 201, self._public(record), headers
        record["_instanceView"] = {"statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"}]}
        headers = self._async("Compute", location, "Succeeded")
        return (200 if existed else 201), self._public(record), headers


    def _create_os_disk(self, vm_name: str, record: dict[str, Any]) -> None:
        os_disk = record["properties"]["storageProfile"].setdefault("osDisk", {})
        disk_name = f"{vm_name}_OsDisk_1_{secrets.token_hex(16)}"
        disk_id = self._id("Microsoft.Compute/disks", disk_name)
        os_disk["name"] = disk_name
        os_disk.setdefault("managedDisk", {})["id"] = disk_id
        self.disks[disk_name] = {
            "name": disk_name, "id": disk_id, "location": record["location"],
            "managedBy": record["id"], "properties": {"diskSizeGB": os_disk.get("diskSizeGB", 30)},
        }

    def _release(self, vm: dict[str, Any]) -> None:
        """What ARM does to a deleted VM's OS disk and NICs, by their ``deleteOption``."""
        os_disk = vm["properties"]["storageProfile"].get("osDisk", {})
        disk = self.disks.get(str(os_disk.get("name", "")))
        if disk is not None:
            if os_disk.get("deleteOption") == "Delete":
                del self.disks[disk["name"]]
            else:
                disk["managedBy"] = None
        for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
            nic_name = str(ref.get("id", "")).rsplit("/", 1)[-1]
            if (ref.get("properties") or {}).get("deleteOption") == "Delete":
                self.nics.pop(nic_name, None)
            elif nic_name in self.nics:
                self.nics[nic_name]["properties"].pop("virtualMachine", None)


class FakeAzureCredential:
    """A ``TokenCredential`` for tests; its token is what the fake ARM sees as the bearer token."""

    def __init__(self, token: str = "fake-arm-token") -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, 4_102_444_800)
