"""Azure driver (azure-mgmt-compute, azure-mgmt-network for the NIC): GPU workers, spot or regular.

- **Ids.** An instance id is the VM name, unique in the configured resource group. The name is
  derived from the request id (``rmc-<request>-<hash>``) and ARM's PUT is create-or-update by
  name, so launching a request twice finds, or at worst re-PUTs, the same VM: launch is
  idempotent by construction.
- **Tagged or nothing.** Tags are part of the VM's (and NIC's) PUT body.
- **Spot** is ``priority: Spot``, ``evictionPolicy: Delete`` and ``billingProfile.maxPrice``
  (-1: pay up to the on-demand price, never evicted for price). The OS disk and the NIC carry
  ``deleteOption: Delete``, so deleting or evicting the VM leaves nothing billable behind.
- **Failed allocations leak nothing.** ARM leaves a VM whose allocation failed in provisioning
  state Failed; the driver deletes it and its NIC before raising ``CapacityError``.
- **Orphan NICs are swept.** The NIC is created before its VM (two PUTs), so a provider that dies
  between them, or between the VM's delete and the NIC's, leaves a NIC no VM holds. Each NIC
  carries the cluster's tags and ``rmc-nic-created`` (epoch seconds); ``list`` deletes a NIC of
  the cluster whose VM does not exist once it is ``orphan_grace_s`` old (default 120 s, far above
  the seconds between the two PUTs, and no launch of this process is using it), so a restarted
  provider or ``ray down`` ends it; terminating the head (``ray down``) sweeps them at any age
  (``teardown``).
- **A launch right after a listing skips its VM GET** when the listing (younger than one autoscaler
  tick, ``clouds/_recent.py``) had no VM for its request; the VM PUT is create-or-update by name,
  so a VM created since is updated, not duplicated. Its private IP comes from the NIC PUT's reply.
- **Listing is two reads whatever the fleet's size:** the resource group's VMs and its NICs (for
  the private IPs), each one paged ``list`` call, instead of one NIC ``GET`` per VM.
- **Credentials** come only from ``DefaultAzureCredential`` (environment, managed identity, Azure
  CLI login); ``credential`` may be injected. Plain-http endpoints are accepted only on loopback
  (tests). Errors carry the ARM error code and message only.

Events: ``eastus Standard_NC6s_v3 spot (SkuNotAvailable) -> CapacityError``,
``(OperationNotAllowed: exceeding approved ... quota) -> QuotaError``,
``(async AllocationFailed) -> VM and NIC deleted, CapacityError``, ``(429) -> retried``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ray_multicloud.auth.rest_stores import AZURE_IMDS_TOKEN, AzureKeyVaultStore
from ray_multicloud.clouds._recent import RecentListing
from ray_multicloud.clouds._retry import Backoff, retry_throttled
from ray_multicloud.clouds._startup import check_size, literal_instance_id, render_startup_script
from ray_multicloud.clouds.base import TAG_CLUSTER, CloudFeatures, Instance, LaunchRequest
from ray_multicloud.clouds.images import AZURE_DEFAULT_IMAGE, BOOT_INSTALL, azure_image, boot_install
from ray_multicloud.clouds.schemas import AZURE as AZURE_SCHEMA
from ray_multicloud.endpoints import is_plain_http, require_https
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

# Codes as Microsoft documents them (azure/capacity-error-codes.json in the vendor examples); ARM's
# spelling varies (OverConstrained vs Overconstrained), so every comparison ignores case.
CAPACITY_CODES = frozenset(
    {
        "SkuNotAvailable",  # also: no Spot capacity in this location (error-codes-spot.md)
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverConstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",  # seen in the wild, not in Microsoft's docs
        "SpotPriceGreaterThanProvidedMaxPrice",  # the Spot price is above billingProfile.maxPrice
        "AzureSpotIsNotSupportedForThisVMSize",  # this size has no Spot: try another offer
    }
)
QUOTA_CODES = frozenset({"OperationNotAllowed", "QuotaExceeded"})
THROTTLE_CODES = frozenset({"TooManyRequests", "RetryableError", "SubscriptionRequestsThrottled"})
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "NotFound", "ResourceGroupNotFound"})
DEFAULT_IMAGE = dict(AZURE_DEFAULT_IMAGE)  # clouds/images.py: Ubuntu HPC (DSVM)
logger = logging.getLogger(__name__)
TAG_NIC_CREATED = "rmc-nic-created"  # on each NIC: when it was PUT (epoch seconds), for the sweep
ORPHAN_GRACE_S = 120.0  # a NIC of the cluster with no VM is deleted by list() once this old
_STATES = {
    "Creating": NodeState.PENDING,
    "Updating": NodeState.RUNNING,
    "Succeeded": NodeState.RUNNING,
    "Migrating": NodeState.RUNNING,
    "Failed": NodeState.RUNNING,  # exists and may bill: list it, so reconciliation can act
    "Canceled": NodeState.RUNNING,
    "Deleting": NodeState.TERMINATED,
}
_FAILED_STATUS = re.compile(r"^ProvisioningState/failed/(\w+)$")
_CAPACITY = frozenset(c.lower() for c in CAPACITY_CODES)
_QUOTA = frozenset(c.lower() for c in QUOTA_CODES)
_THROTTLE = frozenset(c.lower() for c in THROTTLE_CODES)
_NOT_FOUND = frozenset(c.lower() for c in NOT_FOUND_CODES)


def vm_name(request_id: str) -> str:
    """The VM name for a request id: ``rmc-<request>-<hash>`` (valid Linux VM and host name)."""
    stem = re.sub(r"[^a-z0-9-]", "-", request_id.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:10]
    return f"rmc-{stem}-{digest}" if stem else f"rmc-{digest}"


def _error_chain(error: Any) -> list[tuple[str, str]]:
    """``(code, message)`` of an ARM error and of every nested ``details`` entry, innermost first
    (Microsoft: "Normally, the most inner level of error message is the root failure"). Reads
    azure-core's ``ODataV4Format`` (``.code``/``.message``/``.details``) and plain JSON alike."""

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    if error is None:
        return []
    if isinstance(error, Mapping) and isinstance(error.get("error"), Mapping):
        error = error["error"]
    inner: list[tuple[str, str]] = []
    details = get(error, "details")
    for detail in details if isinstance(details, (list, tuple)) else []:
        inner += _error_chain(detail)
    code, message = get(error, "code"), get(error, "message")
    return [*inner, (str(code or ""), str(message or ""))]


def map_http_error(exc: Exception, *, offer_id: str = "") -> CloudError:
    """Turn an azure-core ``HttpResponseError`` into a typed error (ARM code and message only),
    nested ``error.details`` codes included."""
    chain = _error_chain(getattr(exc, "error", None))
    status = int(getattr(exc, "status_code", 0) or 0)
    if not any(message for _, message in chain):
        chain.append(("", str(getattr(exc, "reason", "") or "") or type(exc).__name__))
    return classify_chain(chain, status=status, offer_id=offer_id)


def classify(code: str, message: str, *, status: int = 0, offer_id: str = "") -> CloudError:
    return classify_chain([(code, message)], status=status, offer_id=offer_id)


def classify_chain(chain: list[tuple[str, str]], *, status: int = 0, offer_id: str = "") -> CloudError:
    """Type an error from its ``(code, message)`` chain, innermost first; codes ignore case. The
    error names the first code that decided it; its message joins the distinct messages."""
    messages: list[str] = []
    for _, msg in chain:
        if msg and msg not in messages:
            messages.append(msg)
    message = "; ".join(messages)
    for code, msg in chain:
        low = code.lower()
        if low in _QUOTA and ("quota" in msg.lower() or low == "quotaexceeded"):
            return QuotaError(
                "azure",
                f"{message}; request a quota increase or try another region",
                offer_id=offer_id,
                code=code,
            )
    for code, _ in chain:
        if code.lower() in _CAPACITY:
            return CapacityError(
                "azure", f"{message}; try another region, zone or size", offer_id=offer_id, code=code
            )
    codes = [code for code, _ in chain if code]
    top = codes[-1] if codes else ""
    if status == 429 or any(c.lower() in _THROTTLE for c in codes):
        return ThrottledError("azure", f"{message}; retry later", offer_id=offer_id, code=top or "429")
    if status == 404 or any(c.lower() in _NOT_FOUND for c in codes):
        return InstanceNotFound("azure", message, offer_id=offer_id, code=top or "404")
    return CloudError("azure", message, offer_id=offer_id, code=top or str(status or ""))


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp() if text else 0.0
    except ValueError:
        return 0.0


def rest_dict(obj: Any) -> dict[str, Any]:
    """An SDK model (or a dict) as its REST JSON body, whatever the SDK generation.

    azure-mgmt-compute >= 38 / azure-mgmt-network >= 31 models are mappings over the REST JSON
    (``as_dict()`` gives ``properties.provisioningState``); older (msrest-style) models'
    ``as_dict()`` gives Python attribute names (``provisioning_state``, flattened), and only
    ``serialize(keep_readonly=True)`` gives the REST body. Read-only fields (provisioningState,
    timeCreated, privateIPAddress) must be kept, hence ``keep_readonly``."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        as_dict = getattr(obj, "as_dict", None)
        return dict(as_dict()) if callable(as_dict) else dict(obj)
    serialize = getattr(obj, "serialize", None)
    if callable(serialize):
        return dict(serialize(keep_readonly=True))
    raise TypeError(f"cannot read {type(obj).__name__} as an ARM JSON body")


class AzureCloud:
    """The ``Cloud`` protocol over Azure Resource Manager. See the module docstring."""

    features = CloudFeatures(spot=True, interruption_notices=True)

    def __init__(
        self,
        name: str = "azure",
        *,
        subscription_id: str,
        resource_group: str,
        subnet_ids: Mapping[str, str],
        ssh_public_key: str,
        network_security_group_ids: Mapping[str, str] | None = None,
        image: Mapping[str, str] | None = None,
        admin_username: str = "ray",
        disk_gib: int = 200,
        spot_max_price: str | float = "ondemand",
        base_url: str | None = None,
        credential: Any | None = None,
        key_vault: str = "",
        managed_identity_id: str = "",
        metadata_token_url: str = AZURE_IMDS_TOKEN,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        polling_interval_s: float = 5.0,
        sdk_retry_total: int | None = None,
        pip_install: tuple[str, ...] = BOOT_INSTALL,
        orphan_grace_s: float = ORPHAN_GRACE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            from azure.mgmt.compute import ComputeManagementClient  # lazily
            from azure.mgmt.network import NetworkManagementClient
        except ImportError as exc:
            raise ConfigError(
                f"provider.clouds.{name}.driver",
                "the azure driver needs azure-mgmt-compute and azure-mgmt-network: "
                "pip install 'ray_multicloud[azure]'",
            ) from exc

        if not subscription_id:
            raise ConfigError(
                f"provider.clouds.{name}.subscription_id", "an Azure subscription id is required"
            )
        if not resource_group:
            raise ConfigError(f"provider.clouds.{name}.resource_group", "a resource group is required")
        self.name = name
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self._subnet_ids = dict(subnet_ids)
        self._nsg_ids = dict(network_security_group_ids or {})
        self._ssh_public_key = ssh_public_key
        self._image_ref, self.image = azure_image(image, pip_install=pip_install, cloud=name)
        self._admin = admin_username
        self._disk_gib = disk_gib
        self._spot_max_price = spot_max_price
        self._backoff = backoff
        self._sleep = sleep
        self._poll = polling_interval_s
        self.orphan_grace_s = orphan_grace_s
        self._clock = clock
        self._launching: set[str] = set()  # VM names whose launch is under way in this process
        self.recent = RecentListing()  # the last list(cluster), reused by launch (clouds/_recent.py)
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        kwargs: dict[str, Any] = {}
        if base_url:
            kwargs["base_url"] = base_url
            require_https(base_url, key=f"provider.clouds.{name}.base_url")
            if is_plain_http(base_url):  # loopback only (a test endpoint), checked just above
                kwargs["per_call_policies"] = [_allow_http_policy()]
        if sdk_retry_total is not None:
            kwargs["retry_total"] = sdk_retry_total
        # Typed Any: the REST-shaped dict bodies are what ARM receives; the SDK's overloads only
        # name its model classes.
        self._credential = credential
        self._identity = managed_identity_id
        self._secrets = (AzureKeyVaultStore(key_vault, self._vault_token,
                                            metadata_token_url=metadata_token_url, cloud=name)
                         if key_vault else None)
        self._compute: Any = ComputeManagementClient(credential, subscription_id, **kwargs)
        self._network: Any = NetworkManagementClient(credential, subscription_id, **kwargs)
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> AzureCloud:
        """Keys: subscription_id (or env AZURE_SUBSCRIPTION_ID), resource_group, subnet_ids
        (region -> subnet resource id), network_security_group_ids (region -> NSG id),
        ssh_public_key, image (publisher/offer/sku/version or id; unset: Ubuntu HPC, clouds/images.py),
        pip_install, admin_username, disk_gib,
        spot_max_price, base_url. Credentials: DefaultAzureCredential only."""
        import os

        _ = state_dir
        # Its schema first (clouds/schemas.py): credentials refused, misspelt keys named.
        check_section(f"provider.clouds.{name}", spec, AZURE_SCHEMA)
        return cls(
            name,
            subscription_id=str(spec.get("subscription_id") or os.environ.get("AZURE_SUBSCRIPTION_ID", "")),
            resource_group=str(spec.get("resource_group", "")),
            subnet_ids=spec.get("subnet_ids", {}),
            network_security_group_ids=spec.get("network_security_group_ids"),
            ssh_public_key=str(spec.get("ssh_public_key", "")),
            image=spec.get("image"),
            admin_username=str(spec.get("admin_username", "ray")),
            disk_gib=int(spec.get("disk_gib", 200)),
            spot_max_price=spec.get("spot_max_price", "ondemand"),
            base_url=spec.get("base_url"),
            pip_install=boot_install(spec, f"provider.clouds.{name}"),
            key_vault=_vault_url(name, spec.get("key_vault")),
            managed_identity_id=str(spec.get("managed_identity_id", "")),
        )

    def secret_store(self, cluster: str) -> AzureKeyVaultStore | None:
        """The cluster's secrets: the Key Vault named by ``key_vault``, read by workers with the
        managed identity ``managed_identity_id`` attached to them (it needs "Key Vault Secrets
        User"). None without ``key_vault``: a cluster with token auth then refuses to start Azure
        workers, naming the key."""
        _ = cluster  # the secret names carry the cluster
        return self._secrets

    def _vault_token(self) -> str:
        return str(self._credential.get_token("https://vault.azure.net/.default").token)

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], *, offer_id: str = "") -> Any:
        from azure.core.exceptions import AzureError, HttpResponseError

        def once() -> Any:
            try:
                return fn()
            except HttpResponseError as exc:
                raise map_http_error(exc, offer_id=offer_id) from None
            except AzureError as exc:
                raise CloudError(
                    "azure", f"ARM call failed: {type(exc).__name__}", offer_id=offer_id
                ) from None

        kwargs: dict[str, Any] = {"backoff": self._backoff}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return retry_throttled(once, **kwargs)

    def _nic_name(self, name: str) -> str:
        return f"{name}-nic"

    def _nic_id(self, name: str) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{self._nic_name(name)}"
        )

    def _max_price(self, offer: Offer) -> float:
        setting = self._spot_max_price
        if setting == "ondemand":
            return -1.0
        if setting == "offer":
            return round(offer.price_per_hour * 1.2, 5)
        return float(setting)

    def _private_ip(self, vm: Mapping[str, Any]) -> str:
        nics = vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", [])
        if not nics:
            return ""
        nic_name = str(nics[0].get("id", "")).rsplit("/", 1)[-1]
        try:
            nic = rest_dict(
                self._call(lambda: self._network.network_interfaces.get(self.resource_group, nic_name))
            )
        except InstanceNotFound:
            return ""
        configs = nic.get("properties", {}).get("ipConfigurations", [])
        return str(configs[0].get("properties", {}).get("privateIPAddress", "")) if configs else ""

    def _instance(self, vm: Mapping[str, Any], ips: Mapping[str, str] | None = None) -> Instance:
        """``ips``: private IP by lower-cased NIC id (from one NIC listing); else the NIC is read."""
        state = str(vm.get("properties", {}).get("provisioningState", "Creating"))
        # ``name`` is read-only output that the spec's minimal list example omits; the id ends with it.
        name = str(vm.get("name") or str(vm.get("id", "")).rsplit("/", 1)[-1])
        return Instance(
            instance_id=InstanceId(name),
            cloud=self.name,
            state=_STATES.get(state, NodeState.PENDING),
            tags=dict(vm.get("tags") or {}),
            internal_ip=self._private_ip(vm) if ips is None else _listed_ip(vm, ips),
            external_ip=None,
            launched_at=_timestamp(str(vm.get("properties", {}).get("timeCreated", ""))),
        )

    def _get_vm(self, name: str, *, expand: bool = False) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {"expand": "instanceView"} if expand else {}
        try:
            return rest_dict(
                self._call(lambda: self._compute.virtual_machines.get(self.resource_group, name, **kwargs))
            )
        except InstanceNotFound:
            return None

    # -- request bodies (public so tests can check their shape) -----------------------------

    def nic_body(self, request: LaunchRequest) -> dict[str, Any]:
        region = request.offer.region
        subnet = self._subnet_ids.get(region)
        if not subnet:
            raise CloudError(
                "azure",
                f"no subnet for region {region}: set provider.clouds.{self.name}.subnet_ids.{region}",
                offer_id=request.offer.offer_id,
            )
        body: dict[str, Any] = {
            "location": region,
            "tags": {**request.tags, TAG_NIC_CREATED: str(int(self._clock()))},
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"},
                    }
                ]
            },
        }
        nsg = self._nsg_ids.get(region)
        if nsg:
            body["properties"]["networkSecurityGroup"] = {"id": nsg}
        return body

    def vm_body(self, request: LaunchRequest) -> dict[str, Any]:
        offer = request.offer
        name = vm_name(request.request_id)
        image = dict(self._image_ref)
        properties: dict[str, Any] = {
            "hardwareProfile": {"vmSize": offer.instance_type},
            "storageProfile": {
                "imageReference": image,
                "osDisk": {
                    "createOption": "FromImage",
                    "deleteOption": "Delete",
                    "diskSizeGB": self._disk_gib,
                    "managedDisk": {"storageAccountType": "Premium_LRS"},
                },
            },
            "osProfile": {
                "computerName": name,
                "adminUsername": self._admin,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {
                                "path": f"/home/{self._admin}/.ssh/authorized_keys",
                                "keyData": self._ssh_public_key,
                            }
                        ]
                    },
                },
            },
            "networkProfile": {
                "networkInterfaces": [
                    {"id": self._nic_id(name), "properties": {"primary": True, "deleteOption": "Delete"}}
                ]
            },
        }
        if offer.capacity is CapacityType.SPOT:
            properties["priority"] = "Spot"
            properties["evictionPolicy"] = "Delete"
            properties["billingProfile"] = {"maxPrice": self._max_price(offer)}
        else:
            properties["priority"] = "Regular"
        if request.bootstrap is not None:
            script = render_startup_script(
                request.bootstrap, offer, watcher_cloud="azure", instance_id_lines=literal_instance_id(name),
                pip_install=self.image.pip_install,
                secret_store=self.secret_store(request.cluster) if request.bootstrap.auth else None,
            )
            check_size(script, "azure", offer_id=offer.offer_id)
            properties["osProfile"]["customData"] = base64.b64encode(script.encode()).decode()
        body: dict[str, Any] = {
            "location": offer.region,
            "tags": dict(request.tags),
            "properties": properties,
        }
        if self._identity:  # the identity the worker reads the cluster's Key Vault secrets with
            body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {self._identity: {}}}
        if offer.zone:
            body["zones"] = [offer.zone.rsplit("-", 1)[-1]]
        return body

    # -- the Cloud protocol -----------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> Instance:
        name = vm_name(request.request_id)
        with self._lock:
            self._launching.add(name)
        try:
            return self._launch(request, name)
        finally:
            with self._lock:
                self._launching.discard(name)

    def _launch(self, request: LaunchRequest, name: str) -> Instance:
        offer_id = request.offer.offer_id
        fresh, listed = self.recent.lookup(request.cluster, request.request_id)
        # A listing of a moment ago without this request's VM spares the GET; one with it does not
        # (it cannot tell a Failed VM, which must be replaced, from a live one).
        existing = None if fresh and listed is None else self._get_vm(name)
        state = (existing or {}).get("properties", {}).get("provisioningState", "")
        if existing is not None and state not in ("Deleting", "Failed"):
            return self._instance(existing)
        nic = self.nic_body(request)
        vm = self.vm_body(request)
        made = rest_dict(self._call(
            lambda: self._network.network_interfaces.begin_create_or_update(
                self.resource_group, self._nic_name(name), nic, polling_interval=self._poll
            ).result(),
            offer_id=offer_id,
        ))
        try:
            created = self._call(
                lambda: self._compute.virtual_machines.begin_create_or_update(
                    self.resource_group, name, vm, polling_interval=self._poll
                ).result(),
                offer_id=offer_id,
            )
        except CloudError as exc:
            # A failed allocation leaves a Failed VM (and our NIC) behind; find out why, then clean up.
            failed = self._get_vm(name, expand=True)
            cause = self._failure_cause(failed, offer_id) if failed is not None else None
            self._delete(name)
            if cause is not None:
                raise cause from None
            raise exc from None
        # The NIC's PUT answered with its private IP: no NIC GET for it.
        return self._instance(rest_dict(created), {self._nic_id(name).lower(): _nic_ip(made)})

    def _failure_cause(self, vm: Mapping[str, Any], offer_id: str) -> CloudError | None:
        statuses = vm.get("properties", {}).get("instanceView", {}).get("statuses", [])
        for status in statuses:
            match = _FAILED_STATUS.match(str(status.get("code", "")))
            if match:
                return classify(match.group(1), str(status.get("message", "")), offer_id=offer_id)
        return None

    def _delete(self, name: str) -> None:
        """Delete the VM, then its NIC (the NIC cannot go while the VM holds it); gone is fine."""
        operations: list[Callable[[], Any]] = [
            lambda: self._compute.virtual_machines.begin_delete(
                self.resource_group, name, polling_interval=self._poll
            ).result(),
            lambda: self._network.network_interfaces.begin_delete(
                self.resource_group, self._nic_name(name), polling_interval=self._poll
            ).result(),
        ]
        for operation in operations:
            try:
                self._call(operation)
            except InstanceNotFound:
                continue

    def _delete_nic(self, nic_name: str) -> None:
        try:
            self._call(lambda: self._network.network_interfaces.begin_delete(
                self.resource_group, nic_name, polling_interval=self._poll).result())
        except InstanceNotFound:
            return

    def terminate(self, instance_id: InstanceId) -> None:
        self.recent.drop(instance_id)
        self._delete(str(instance_id))

    def get(self, instance_id: InstanceId) -> Instance | None:
        vm = self._get_vm(str(instance_id))
        if vm is None:
            return None
        inst = self._instance(vm)
        return None if inst.state is NodeState.TERMINATED else inst

    def list(self, cluster: str) -> list[Instance]:
        """The cluster's VMs (two paged list calls: VMs, NICs); sweeps the cluster's orphan NICs."""
        vms = self._call(
            lambda: [rest_dict(vm) for vm in self._compute.virtual_machines.list(self.resource_group)]
        )
        nics = self._call(
            lambda: [rest_dict(nic) for nic in self._network.network_interfaces.list(self.resource_group)]
        )
        ips = {str(nic.get("id", "")).lower(): _nic_ip(nic) for nic in nics}
        found = []
        for vm in vms:
            if (vm.get("tags") or {}).get(TAG_CLUSTER) != cluster:
                continue
            inst = self._instance(vm, ips)
            if inst.state is not NodeState.TERMINATED:
                found.append(inst)
        self._sweep_orphan_nics(cluster, vms, nics)
        self.recent.store(cluster, found)
        return found

    def teardown(self, cluster: str) -> None:
        """``ray down`` is ending ``cluster`` (its head is terminated: no process of it launches
        any more): delete every NIC of the cluster that no VM holds, whatever its age. A provider
        killed between a NIC PUT and its VM PUT less than ``orphan_grace_s`` before ``ray down``
        would otherwise leave that NIC, since no listing of the cluster comes after."""
        vms = self._call(
            lambda: [rest_dict(vm) for vm in self._compute.virtual_machines.list(self.resource_group)]
        )
        nics = self._call(
            lambda: [rest_dict(nic) for nic in self._network.network_interfaces.list(self.resource_group)]
        )
        self._sweep_orphan_nics(cluster, vms, nics, grace_s=0.0)

    def orphan_nics(self, cluster: str, vms: Sequence[Mapping[str, Any]],
                    nics: Sequence[Mapping[str, Any]], *, grace_s: float | None = None) -> Sequence[str]:
        """Names of ``cluster``'s NICs that no VM holds, older than ``grace_s`` (default
        ``orphan_grace_s``), and not part of a launch under way in this process (a NIC without the
        created tag counts as old)."""
        grace = self.orphan_grace_s if grace_s is None else grace_s
        vm_names = {str(vm.get("name") or str(vm.get("id", "")).rsplit("/", 1)[-1]) for vm in vms}
        held = {str(ref.get("id", "")).lower() for vm in vms
                for ref in vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", [])}
        now = self._clock()
        with self._lock:
            launching = set(self._launching)
        out = []
        for nic in nics:
            tags = nic.get("tags") or {}
            name = str(nic.get("name") or str(nic.get("id", "")).rsplit("/", 1)[-1])
            if tags.get(TAG_CLUSTER) != cluster or str(nic.get("id", "")).lower() in held:
                continue
            if nic.get("properties", {}).get("virtualMachine"):
                continue
            owner = name.removesuffix("-nic")
            if owner in vm_names or owner in launching:
                continue
            try:
                created = float(tags.get(TAG_NIC_CREATED, "0"))
            except ValueError:
                created = 0.0
            if now - created >= grace:
                out.append(name)
        return out

    def _sweep_orphan_nics(self, cluster: str, vms: Sequence[Mapping[str, Any]],
                          nics: Sequence[Mapping[str, Any]], *, grace_s: float | None = None) -> None:
        for name in self.orphan_nics(cluster, vms, nics, grace_s=grace_s):
            logger.warning("azure cloud %r: NIC %s of cluster %r has no VM (a launch or delete that did not "
                           "finish); deleting it", self.name, name, cluster)
            try:
                self._delete_nic(name)
            except CloudError as exc:  # the next listing tries again
                logger.warning("azure cloud %r: could not delete orphan NIC %s: %s", self.name, name, exc)

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        name = str(instance_id)
        vm = self._get_vm(name)
        if (
            vm is None
            or _STATES.get(vm.get("properties", {}).get("provisioningState", "")) is NodeState.TERMINATED
        ):
            raise InstanceNotFound("azure", f"instance {instance_id} does not exist")
        merged = {**(vm.get("tags") or {}), **tags}
        try:
            self._call(
                lambda: self._compute.virtual_machines.begin_update(
                    self.resource_group, name, {"tags": merged}, polling_interval=self._poll
                ).result()
            )
        except InstanceNotFound:
            raise InstanceNotFound("azure", f"instance {instance_id} does not exist") from None


def _nic_ip(nic: Mapping[str, Any]) -> str:
    configs = nic.get("properties", {}).get("ipConfigurations", [])
    return str(configs[0].get("properties", {}).get("privateIPAddress", "")) if configs else ""


def _listed_ip(vm: Mapping[str, Any], ips: Mapping[str, str]) -> str:
    """The VM's first NIC's private IP from a NIC listing (``ips``: by lower-cased NIC id)."""
    nics = vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", [])
    return ips.get(str(nics[0].get("id", "")).lower(), "") if nics else ""


def _allow_http_policy() -> Any:
    """A per-call pipeline policy that lets bearer tokens go to a plain-http loopback endpoint."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class AllowLoopbackHttp(SansIOHTTPPolicy):  # type: ignore[type-arg,unused-ignore]
        def on_request(self, request: Any) -> None:
            request.context.options["enforce_https"] = False

    return AllowLoopbackHttp()


def _vault_url(name: str, value: object) -> str:
    """``key_vault``: a vault name (``rmc-vault``) or its URL; "" when unset."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"provider.clouds.{name}.key_vault",
                          f"must be a Key Vault name or https URL, got {value!r}")
    text = value.strip()
    return text if "://" in text else f"https://{text}.vault.azure.net"
