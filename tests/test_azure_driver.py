"""The Azure driver and its fake held to Microsoft's own examples (issue 16 item 3).

Vendor documents used (copies in ``tests/data/api_examples/azure``, sources and commits in its
README): Azure REST API spec examples (api-version 2025-04-01) ``vm-get.example.json``,
``vm-list-by-location.example.json``, ``vm-list-by-resource-group.*.example.json``,
``vm-create-plain.example.json``, ``vm-get-instanceview.example.json``, ``nic-get.example.json``,
``nic-create.example.json``, the ``CloudError`` definitions ``cloud-error.schema.json``, and the
documented error codes and messages ``capacity-error-codes.json`` (Microsoft Docs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import gpu_offer
from fakes._http import FakeApi, Reply
from fakes.azure_server import FakeAzure, FakeAzureCredential
from test_cloud_contract import make_request

from ray_multicloud.clouds.azure import AzureCloud, classify_chain, rest_dict
from ray_multicloud.clouds.base import TAG_CLUSTER
from ray_multicloud.errors import CapacityError, CloudError, QuotaError, ThrottledError
from ray_multicloud.types import NodeState

EXAMPLES = Path(__file__).parent / "data" / "api_examples" / "azure"
SUBNET = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/w"
SUB = "00000000-0000-0000-0000-00000000abcd"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


class Target:
    gcs_address = "10.8.0.1:6379"


def request_for(offer: Any, **kwargs: Any) -> Any:
    return make_request(Target(), offer, **kwargs)  # type: ignore[arg-type]


def driver(url: str, resource_group: str = "rmc-rg") -> AzureCloud:
    return AzureCloud(
        subscription_id=SUB,
        resource_group=resource_group,
        subnet_ids={"eastus": SUBNET},
        ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests rmc",
        base_url=url,
        credential=FakeAzureCredential(),
        sleep=lambda _s: None,
        polling_interval_s=0,
        sdk_retry_total=0,
    )


@pytest.fixture
def azure() -> Iterator[tuple[AzureCloud, FakeAzure]]:
    with FakeAzure(subscription=SUB) as fake:
        yield driver(fake.url), fake


# -- msrest-style models, as azure-mgmt-compute < 38 generates them (keys of compute 37.2.0) --------

try:
    from azure.mgmt.compute._utils.serialization import Model as _MsrestModel
except ImportError:  # pragma: no cover - another SDK layout
    _MsrestModel = None

OldVirtualMachine: Any = None
if _MsrestModel is not None:

    class NicRef(_MsrestModel):  # type: ignore[misc,valid-type]
        _attribute_map = {  # noqa: RUF012 - msrest's own class-attribute convention
            "id": {"key": "id", "type": "str"},
            "primary": {"key": "properties.primary", "type": "bool"},
        }

        def __init__(self, *, id: Any = None, primary: Any = None, **kw: Any) -> None:
            super().__init__(**kw)
            self.id, self.primary = id, primary

    class NetworkProfile(_MsrestModel):  # type: ignore[misc,valid-type]
        _attribute_map = {  # noqa: RUF012
            "network_interfaces": {"key": "networkInterfaces", "type": "[NicRef]"}
        }

        def __init__(self, *, network_interfaces: Any = None, **kw: Any) -> None:
            super().__init__(**kw)
            self.network_interfaces = network_interfaces

    class VirtualMachine(_MsrestModel):  # type: ignore[misc,valid-type]
        _validation = {  # noqa: RUF012
            k: {"readonly": True} for k in ("name", "id", "provisioning_state", "time_created")
        }
        _attribute_map = {  # noqa: RUF012 - msrest's own class-attribute convention
            "name": {"key": "name", "type": "str"},
            "id": {"key": "id", "type": "str"},
            "location": {"key": "location", "type": "str"},
            "tags": {"key": "tags", "type": "{str}"},
            "provisioning_state": {"key": "properties.provisioningState", "type": "str"},
            "time_created": {"key": "properties.timeCreated", "type": "iso-8601"},
            "network_profile": {"key": "properties.networkProfile", "type": "NetworkProfile"},
        }

        def __init__(
            self, *, location: Any = None, tags: Any = None, network_profile: Any = None, **kw: Any
        ) -> None:
            super().__init__(**kw)
            self.location, self.tags, self.network_profile = location, tags, network_profile
            self.name = self.id = self.provisioning_state = self.time_created = None

    OldVirtualMachine = VirtualMachine


# -- the driver reads Microsoft's own response bodies ------------------------------------------------


class CannedArm(FakeApi):
    """Answers ARM GETs with the vendors' example bodies, unchanged unless a test says so."""

    def __init__(self, vm: dict[str, Any], vms: list[dict[str, Any]], nic: dict[str, Any]) -> None:
        super().__init__()
        self.vm, self.vms, self.nic = vm, vms, nic

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        assert method == "GET" and query.get("api-version")
        if "/networkInterfaces/" in path:
            return 200, self.nic, {}
        if path.endswith("/networkInterfaces"):  # NetworkInterfaceListResult: value (+ nextLink)
            return 200, {"value": [self.nic]}, {}
        if path.endswith("/virtualMachines"):
            return 200, {"value": self.vms}, {}
        if "/virtualMachines/" in path:
            return 200, self.vm, {}
        return 404, {"error": {"code": "NotFound", "message": path}}, {}


def test_driver_reads_the_vendor_vm_get_and_nic_get_bodies() -> None:
    vm = example("vm-get.example.json")["responses"]["200"]["body"]
    nic = example("nic-get.example.json")["responses"]["200"]["body"]
    listed = example("vm-list-by-location.example.json")["responses"]["200"]["body"]["value"]
    listed[0]["tags"][TAG_CLUSTER] = "c1"  # the only change: our cluster tag on the first VM
    with CannedArm(vm, listed, nic) as arm:
        cloud = driver(arm.url)
        inst = cloud.get("myVM")  # type: ignore[arg-type]
        assert inst is not None
        assert inst.state is NodeState.RUNNING  # provisioningState "Succeeded"
        assert inst.tags == {"myTag1": "tagValue1"}
        assert inst.internal_ip == "172.20.2.4"  # the NIC example's first ipConfiguration
        # timeCreated "2021-06-27T01:02:38.3138469+00:00" by hand (to the microsecond):
        assert inst.launched_at == pytest.approx(1624755758.313846, abs=1e-6)
        found = cloud.list("c1")
        assert [i.instance_id for i in found] == ["{virtualMachineName}"]
        assert found[0].state is NodeState.RUNNING and found[0].tags["testTag"] == "1"


def test_minimal_list_example_without_names_does_not_break_listing() -> None:
    minimal = example("vm-list-by-resource-group.min.example.json")["responses"]["200"]["body"]["value"]
    for vm in minimal:
        vm["tags"] = {TAG_CLUSTER: "c1"}
    nic = example("nic-get.example.json")["responses"]["200"]["body"]
    with CannedArm(minimal[0], minimal, nic) as arm:
        found = driver(arm.url).list("c1")
    # No name, no provisioningState in the minimal set: named from the id, state not yet known.
    assert [i.instance_id for i in found] == ["{virtualMachineName}"] * 2
    assert all(i.state is NodeState.PENDING for i in found)


def test_rest_dict_reads_pre_38_msrest_models_by_their_rest_keys() -> None:
    """azure-mgmt-compute < 38 models (msrest ``Model``) give Python attribute names from
    ``as_dict()``; the REST keys the driver reads come only from ``serialize(keep_readonly=True)``.
    This builds such a model with the msrest ``Model`` that the installed SDK still vendors, from
    the vendor's VM-get body, with compute 37.2.0's keys for the fields read."""
    if OldVirtualMachine is None:
        pytest.skip("this azure-mgmt-compute vendors no msrest Model")
    model = OldVirtualMachine
    body = example("vm-get.example.json")["responses"]["200"]["body"]
    vm = model.deserialize(body)
    assert "provisioning_state" in vm.as_dict()  # the old as_dict shape: the bug's premise
    rest = rest_dict(vm)
    assert rest["properties"]["provisioningState"] == "Succeeded"
    assert rest["properties"]["timeCreated"].startswith("2021-06-27T01:02:38")
    assert rest["properties"]["networkProfile"]["networkInterfaces"][0]["id"].endswith("/{myNIC}")
    assert rest_dict({"a": 1}) == {"a": 1} and rest_dict(None) == {}


@pytest.mark.skipif(
    not os.environ.get("RMC_AZURE_SDK_PATHS"), reason="set RMC_AZURE_SDK_PATHS to older SDK dirs"
)
def test_driver_with_older_sdks() -> None:
    """With ``RMC_AZURE_SDK_PATHS=dir1:dir2`` (each a ``pip install --target`` of an older
    azure-mgmt-compute/-network, e.g. the setup.py floors 30.0.0/25.0.0), the Azure tests of
    test_cloud_drivers.py pass with those SDKs first on the path."""
    here = Path(__file__).parent
    for path in os.environ["RMC_AZURE_SDK_PATHS"].split(os.pathsep):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, str(here.parent)])}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-k",
                "azure",
                "test_cloud_drivers.py",
            ],
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{path}: {done.stdout[-2000:]}"


# -- documented error codes: capacity, Spot, nested details, case ------------------------------------


def documented_codes(section: str) -> list[str]:
    return [entry["code"].split()[0] for entry in example("capacity-error-codes.json")[section]]


CAPACITY = sorted({*documented_codes("capacity_errors"), "ZonalAllocationFailed"} - {"OperationNotAllowed"})
SPOT_CAPACITY = [
    "SkuNotAvailable",
    "SpotPriceGreaterThanProvidedMaxPrice",
    "AzureSpotIsNotSupportedForThisVMSize",
]


@pytest.mark.parametrize(
    "code", [c for c in CAPACITY if c != "InvalidTemplateDeployment"] + SPOT_CAPACITY[1:]
)
def test_documented_capacity_and_spot_codes_are_capacity_errors(
    azure: tuple[AzureCloud, FakeAzure], code: str
) -> None:
    cloud, fake = azure
    assert code in {
        *documented_codes("capacity_errors"),
        *documented_codes("spot_errors"),
        "ZonalAllocationFailed",
    }
    fake.capacity_errors["eastus"] = code
    offer = gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")
    with pytest.raises(CloudError) as info:
        cloud.launch(request_for(offer))
    assert (
        type(info.value) is CapacityError
        and info.value.code == code
        and info.value.offer_id == offer.offer_id
    )
    assert fake.vms == {} and fake.nics == {}


def test_resize_operation_not_allowed_is_not_a_quota_error() -> None:
    resize = next(
        e
        for e in example("capacity-error-codes.json")["capacity_errors"]
        if e["code"] == "OperationNotAllowed"
    )
    got = classify_chain([("OperationNotAllowed", resize["documented_message"])])
    assert type(got) is CloudError


@pytest.mark.parametrize("code", ["overconstrainedallocationrequest", "SKUNOTAVAILABLE", "Allocationfailed"])
def test_codes_are_compared_ignoring_case(code: str) -> None:
    assert type(classify_chain([(code, "m")])) is CapacityError


def test_documented_nested_error_format_is_read_innermost_first() -> None:
    """The documented VM error-response JSON (error-messages.md): "Normally, the most inner level of
    error message is the root failure"."""
    documented = json.loads(
        example("capacity-error-codes.json")["error_response_format"]["documented_example"]
    )
    from ray_multicloud.clouds.azure import _error_chain

    assert _error_chain(documented) == [
        ("Inner level error code", "Inner level error message"),
        ("Top level error code", "Top level error message"),
    ]
    documented["error"]["details"][0]["code"] = "AllocationFailed"
    got = classify_chain(_error_chain(documented))
    assert type(got) is CapacityError and got.code == "AllocationFailed"


@pytest.mark.parametrize(
    ("field", "error", "code"),
    [
        ("sku_not_available", CapacityError, "SkuNotAvailable"),
        ("allocation_failed", CapacityError, "AllocationFailed"),
        ("quota_exceeded", QuotaError, "OperationNotAllowed"),
    ],
)
def test_nested_error_details_are_typed_and_leak_nothing(
    azure: tuple[AzureCloud, FakeAzure], field: str, error: type[CloudError], code: str
) -> None:
    cloud, fake = azure
    fake.nested_errors = True
    getattr(fake, field).add("eastus")
    offer = gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")
    with pytest.raises(CloudError) as info:
        cloud.launch(request_for(offer))
    assert type(info.value) is error and info.value.code == code
    assert fake.vms == {} and fake.nics == {}


# -- the fake's answers, field by field, against the examples ----------------------------------------


def key_paths(value: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if not prefix.endswith(".tags") else f"{prefix}.*"
            out.add(path)
            out |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, f"{prefix}[]")
    return out


def example_paths(*names: str) -> set[str]:
    out: set[str] = set()
    for name in names:
        doc = example(name)
        for reply in doc["responses"].values():
            body = reply.get("body") or {}
            for item in body.get("value") or [body]:
                out |= key_paths(item)
        for value in doc["parameters"].values():
            if isinstance(value, dict):
                out |= key_paths(value)
    return out


# Fields of the 2025-04-01 VirtualMachine definition that none of the stored examples happens to
# show; the driver sets them on purpose (zonal placement, delete-with-VM, cloud-init).
SPEC_ONLY = {".zones", ".properties.storageProfile.osDisk.deleteOption", ".properties.osProfile.customData"}


def test_fake_vm_and_nic_bodies_use_the_vendor_field_names(azure: tuple[AzureCloud, FakeAzure]) -> None:
    cloud, fake = azure
    cloud.launch(request_for(gpu_offer("azure", "eastus", "eastus-1", "Standard_NC6s_v3")))
    vm_ok = example_paths(
        "vm-get.example.json",
        "vm-create-plain.example.json",
        "vm-list-by-location.example.json",
        "vm-list-by-resource-group.max-trimmed.example.json",
    )
    view = example("vm-get-instanceview.example.json")["responses"]["200"]["body"]
    vm_ok |= key_paths(view, ".properties.instanceView") | {".properties.instanceView"}
    vm = FakeAzure._public(next(iter(fake.vms.values())), expand=True)
    assert key_paths(vm) - vm_ok - SPEC_ONLY == set()
    assert key_paths(fake.vm_puts[0]) - vm_ok - SPEC_ONLY == set()
    nic_ok = example_paths("nic-get.example.json", "nic-create.example.json") | {".tags", ".tags.*"}
    assert key_paths(next(iter(fake.nics.values()))) - nic_ok == set()


def test_fake_error_bodies_follow_the_cloud_error_definition(azure: tuple[AzureCloud, FakeAzure]) -> None:
    cloud, fake = azure
    definitions = example("cloud-error.schema.json")["definitions"]
    api_error = set(definitions["ApiError"]["properties"])
    base = set(definitions["ApiErrorBase"]["properties"])
    fake.nested_errors = True
    fake.sku_not_available.add("eastus")
    with pytest.raises(CapacityError):
        cloud.launch(request_for(gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")))
    fake.nested_errors = False
    fake.quota_exceeded.add("eastus")
    fake.sku_not_available.clear()
    with pytest.raises(QuotaError):
        cloud.launch(
            request_for(
                gpu_offer(
                    "azure",
                    "eastus",
                    "",
                    "Standard_NC6s_v3",
                )
            )
        )
    import urllib.request

    for nested in (True, False):
        fake.nested_errors = nested
        vm_path = "resourceGroups/rmc-rg/providers/Microsoft.Compute/virtualMachines/none"
        url = f"{fake.url}/subscriptions/{SUB}/{vm_path}?api-version=2025-04-01"
        req = urllib.request.Request(url, headers={"Authorization": "Bearer x"})
        try:
            urllib.request.urlopen(req)
        except urllib.error.HTTPError as exc:
            doc = json.loads(exc.read())
        assert set(doc["error"]) <= api_error
        assert all(set(d) <= base for d in doc["error"].get("details", []))


# -- property: any ARM error body is typed, never a crash ---------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.sampled_from(["code", "message", "details", "error", "x"]), c, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(body=_JSON, status=st.sampled_from([0, 400, 404, 409, 429, 500]))
def test_any_error_body_is_typed(body: Any, status: int) -> None:
    from ray_multicloud.clouds.azure import _error_chain

    chain = _error_chain(body)
    assert all(isinstance(code, str) and isinstance(msg, str) for code, msg in chain)
    got = classify_chain(chain or [("", "")], status=status)
    assert isinstance(got, CloudError)
    if status == 429 and not any(c.lower() in {"allocationfailed", "skunotavailable"} for c, _ in chain):
        assert type(got) in (CapacityError, QuotaError, ThrottledError)


def test_vm_delete_is_polled_through_its_location_monitor(azure: tuple[AzureCloud, FakeAzure]) -> None:
    """vm-delete-force.example.json: DELETE answers 202 with a ``Location`` (monitor) header."""
    documented = example("vm-delete-force.example.json")["responses"]
    assert (
        "Location" in documented["202"]["headers"]
        and "monitor=true" in documented["202"]["headers"]["Location"]
    )
    cloud, fake = azure
    inst = cloud.launch(request_for(gpu_offer("azure", "eastus", "", "Standard_NC6s_v3")))
    cloud.terminate(inst.instance_id)
    assert fake.vms == {} and fake.nics == {}
    assert any(r.method == "GET" and r.query.get("monitor") == "true" for r in fake.requests)
