"""Each driver's ``provider.clouds.<name>`` section has one schema, checked alike by ``plan``, by
``ray up``'s bootstrap (``check_cluster``, also the controller's check) and by ``load_settings``
(issue 13, item 8: misspelt driver keys were ignored and workers landed in the default network).

Expected keys and messages below are written from the issue and the drivers' documented keys, not
read from the schema under test."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ray_multicloud.cli import main
from ray_multicloud.cluster_config.cluster import check_cluster
from ray_multicloud.cluster_config.provider_section import load_settings
from ray_multicloud.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "cluster_configs" / "aws-gcp-azure-gpu.yaml"


def example() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return config


def misspelt(cloud: str, right: str, wrong: str) -> dict[str, Any]:
    """The shipped multi-cloud example with ``provider.clouds.<cloud>.<right>`` renamed ``wrong``."""
    config = example()
    section = config["provider"]["clouds"][cloud]
    assert right in section, f"the example no longer sets {cloud}.{right}"
    section[wrong] = section.pop(right)
    return config


# Issue 13, item 8: each of these was silently ignored (the driver read the right key, found nothing).
FINDINGS = [
    ("aws", "subnet_ids", "subnet_id"),
    ("aws", "security_group_ids", "security_group_id"),
    ("gcp", "network_tags", "network_tag"),
    ("azure", "network_security_group_ids", "network_security_group_id"),
]
IDS = [f"{cloud}.{wrong}" for cloud, _, wrong in FINDINGS]


@pytest.mark.parametrize(("cloud", "right", "wrong"), FINDINGS, ids=IDS)
def test_a_misspelt_driver_key_is_refused_by_load_settings(cloud: str, right: str, wrong: str) -> None:
    config = misspelt(cloud, right, wrong)
    with pytest.raises(ConfigError) as err:
        load_settings(config["provider"], config["cluster_name"])
    assert err.value.key == f"provider.clouds.{cloud}.{wrong}"
    assert f"did you mean '{right}'" in str(err.value)


@pytest.mark.parametrize(("cloud", "right", "wrong"), FINDINGS, ids=IDS)
def test_a_misspelt_driver_key_is_refused_by_the_ray_up_and_controller_check(
    cloud: str, right: str, wrong: str
) -> None:
    # check_cluster is what the provider's bootstrap_config (ray up) and the controller call; no
    # driver is built (clouds={}), so the refusal must come from the section's schema.
    config = misspelt(cloud, right, wrong)
    with pytest.raises(ConfigError) as err:
        check_cluster(config, clouds={})
    assert err.value.key == f"provider.clouds.{cloud}.{wrong}"
    assert f"did you mean '{right}'" in str(err.value)


@pytest.mark.parametrize(("cloud", "right", "wrong"), FINDINGS, ids=IDS)
def test_a_misspelt_driver_key_is_refused_by_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cloud: str, right: str, wrong: str
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(misspelt(cloud, right, wrong)))
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"provider.clouds.{cloud}.{wrong}" in err
    assert f"did you mean '{right}'" in err
    assert "Traceback" not in err


def test_the_value_of_an_unknown_secret_looking_key_is_masked() -> None:
    config = example()
    config["provider"]["clouds"]["gcp"]["api_token"] = "tok-SECRET-5c1a"
    with pytest.raises(ConfigError) as err:
        load_settings(config["provider"], config["cluster_name"])
    assert err.value.key == "provider.clouds.gcp.api_token"
    assert "tok-SECRET-5c1a" not in str(err.value)


@pytest.mark.parametrize("path", sorted((ROOT / "cluster_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_cluster_config_still_plans(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(path)]) == 0, capsys.readouterr().err


def _documented_cloud_entries() -> list[tuple[str, str, dict[str, Any]]]:
    """Every ``provider.clouds`` entry in the docs' and README's YAML blocks."""
    out = []
    for doc in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]):
        for block in re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), re.S):
            try:
                data = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            provider = data.get("provider") if isinstance(data, dict) else None
            clouds = provider.get("clouds") if isinstance(provider, dict) else None
            for name, spec in (clouds or {}).items():
                out.append((doc.name, str(name), spec))
    return out


@pytest.mark.parametrize(("doc", "name", "spec"), _documented_cloud_entries(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_documented_cloud_entry_passes_its_schema(doc: str, name: str, spec: dict[str, Any]) -> None:
    from ray_multicloud.clouds import check_cloud_section

    check_cloud_section(name, spec)


# -- property-based: random unknown keys and wrong types into each driver's section -----------

# A minimal valid section per driver, and what each key accepts, written from each driver's
# documented keys (its from_config docstring and the module docstrings), independent of the schema.
VALUES: dict[str, Any] = {
    "str": "x-1", "int": 5, "float": 2.5, "bool": True, "none": None, "list_str": ["a-1"],
    "list_int": [1], "map_str": {"us-east-1": "id-1"}, "map_list": {"us-east-1": ["a-1"]},
    "map_int": {"us-east-1": 3},
}
COMMON = {"prices_from": {"str"}, "regions": {"list_str", "none"}}
FEED = {"prices_endpoint": {"str", "none"}, "pip_install": {"list_str", "none"}}
ACCEPTS: dict[str, dict[str, set[str]]] = {
    "local": {**COMMON, "max_instances": {"int", "none"}, "exhausted_offers": {"list_str"},
              "price_trace": {"str", "none"}},
    "aws": {**COMMON, **FEED, "image_id": {"str", "map_str", "none"}, "image_ssm_parameter": {"str", "none"},
            "subnet_ids": {"map_str", "none"}, "security_group_ids": {"list_str", "map_list", "none"},
            "key_name": {"str"}, "iam_instance_profile": {"str"}, "disk_gib": {"int"},
            "endpoint_url": {"str", "none"}, "profile": {"str", "none"}, "spot_max_price": {"int", "float"}},
    "gcp": {**COMMON, **FEED, "project": {"str"}, "zones": {"map_list", "none"}, "image": {"str", "none"},
            "network": {"str"}, "subnetwork": {"str"}, "network_tags": {"list_str"},
            "service_account": {"str"}, "disk_gib": {"int"}, "api_endpoint": {"str", "none"},
            "instance_termination_action": set(),  # DELETE or STOP only
            "secrets_endpoint": {"str", "none"}},
    "azure": {**COMMON, **FEED, "subscription_id": {"str", "none"}, "resource_group": {"str"},
              "subnet_ids": {"map_str", "none"}, "network_security_group_ids": {"map_str", "none"},
              "ssh_public_key": {"str"}, "image": {"map_str", "none"}, "admin_username": {"str"},
              "disk_gib": {"int"}, "spot_max_price": {"int", "float"}, "base_url": {"str", "none"},
              "key_vault": {"str", "none"}, "managed_identity_id": {"str"}},
    "private": {"region": {"str"}},
    "ssh": {"region": {"str"}, "known_hosts": {"str"}, "ray": {"str"},
            "env": {"map_str", "map_int", "map_scalar"},
            "unavailable_seconds": {"int", "float"}, "connect_timeout_seconds": {"int", "float"},
            "ssh_config": {"str", "none"}, "head_address": {"str", "none"}},
}
BASE: dict[str, dict[str, Any]] = {
    "local": {"driver": "local", "prices_from": "aws"},
    "aws": {"driver": "aws", "regions": ["us-east-1"]},
    "gcp": {"driver": "gcp", "project": "p-1"},
    "azure": {"driver": "azure", "resource_group": "rg"},
    "private": {"driver": "private", "region": "dc1",
                "machines": [{"instance_type": "a100x8", "accelerator": "A100", "accelerator_count": 8,
                              "vcpus": 96, "memory_gib": 1024, "count": 2}]},
    "ssh": {"driver": "ssh", "region": "dc1",
            "hosts": [{"address": "10.0.0.11", "user": "ray", "ssh_private_key": "~/.ssh/dc1"}]},
}
CREDENTIALS = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "credentials",
               "credentials_file", "service_account_key", "private_key", "client_secret", "client_id",
               "tenant_id", "password", "access_token"}  # refused with their own message
EVERY_KEY = ({k for accepts in ACCEPTS.values() for k in accepts} | {"driver", "machines", "cost", "hosts"}
             | CREDENTIALS)


def provider_with(name: str, section: dict[str, Any]) -> dict[str, Any]:
    return {"type": "external", "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "10.0.0.1:6379", "clouds": {name: section}}


@pytest.mark.parametrize("driver", sorted(BASE))
def test_each_base_section_is_valid(driver: str) -> None:
    load_settings(provider_with("c1", BASE[driver]), "t")


unknown_keys = st.text(alphabet=st.characters(codec="ascii", categories=("Ll", "Nd")) | st.just("_"),
                       min_size=1, max_size=24).filter(lambda k: k not in EVERY_KEY)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(driver=st.sampled_from(sorted(BASE)), key=unknown_keys, value=st.sampled_from(sorted(VALUES)))
def test_an_unknown_key_in_any_driver_section_names_itself(driver: str, key: str, value: str) -> None:
    section = {**copy.deepcopy(BASE[driver]), key: VALUES[value]}
    with pytest.raises(ConfigError) as err:
        load_settings(provider_with("c1", section), "t")
    assert err.value.key == f"provider.clouds.c1.{key}"
    assert "unknown key" in str(err.value)


WRONG_TYPES = sorted(
    (driver, key, kind)
    for driver, accepts in ACCEPTS.items()
    for key, ok in accepts.items()
    for kind in VALUES
    if kind not in ok
)


@pytest.mark.parametrize(("driver", "key", "kind"), WRONG_TYPES, ids=["-".join(c) for c in WRONG_TYPES])
def test_a_wrong_type_in_any_driver_section_names_its_key(driver: str, key: str, kind: str) -> None:
    section = {**copy.deepcopy(BASE[driver]), key: copy.deepcopy(VALUES[kind])}
    with pytest.raises(ConfigError) as err:
        load_settings(provider_with("c1", section), "t")
    assert err.value.key.startswith(f"provider.clouds.c1.{key}"), err.value


def kind_of(value: Any) -> str:
    """The shape of a YAML value, in the table's words (independent of the schema under test)."""
    if value is None or isinstance(value, bool):
        return "none" if value is None else "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str" if value.strip() else "blank"
    if isinstance(value, list):
        return "list_str" if all(isinstance(v, str) and v.strip() for v in value) else "list_other"
    if isinstance(value, dict):
        if all(isinstance(v, str) and v.strip() for v in value.values()):
            return "map_str" if value else "map_empty"
        if all(kind_of(v) == "list_str" for v in value.values()):
            return "map_list"
        if all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()):
            return "map_scalar"
        return "map_other"
    return "other"


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
KEYS = sorted((driver, key) for driver, accepts in ACCEPTS.items() for key in accepts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(KEYS), value=yaml_values)
def test_any_value_in_any_driver_key_is_accepted_or_named(where: tuple[str, str], value: Any) -> None:
    """Whatever YAML value lands in a driver key: a ConfigError naming that key, or acceptance only
    when its shape is one the key takes (an accepted shape may still be out of range)."""
    driver, key = where
    accepts = set(ACCEPTS[driver][key])
    if accepts & {"map_str", "map_list"}:
        accepts.add("map_empty")
    if "list_str" in accepts:
        accepts.add("list_str")  # [] is a list of strings
    section = {**copy.deepcopy(BASE[driver]), key: value}
    try:
        load_settings(provider_with("c1", section), "t")
    except ConfigError as exc:
        assert exc.key.startswith(f"provider.clouds.c1.{key}"), exc
        return
    assert kind_of(value) in accepts, (driver, key, value)


# -- issue 13, item 8: values that were read wrongly or crashed later --------------------------


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_a_disk_size_that_is_not_a_number_is_refused_by_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cloud: str
) -> None:
    config = example()
    config["provider"]["clouds"][cloud]["disk_gib"] = "big"  # was a ValueError traceback at ray up
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"provider.clouds.{cloud}.disk_gib" in err and "'big'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("key", "value"), [
    ("count", 1.9),  # was read as 1 machine
    ("count", "two"),
    ("vcpus", -4),  # was accepted
    ("memory_gib", float("nan")),
    ("accelerator_count", -1),
])
def test_a_private_machine_with_impossible_hardware_names_the_key(key: str, value: object) -> None:
    from ray_multicloud.clouds.private import parse_machines

    machine = {**BASE["private"]["machines"][0], key: value}
    with pytest.raises(ConfigError) as err:
        parse_machines("onprem", {**BASE["private"], "machines": [machine]})
    assert err.value.key == f"provider.clouds.onprem.machines[0].{key}"


def test_every_registered_driver_has_a_schema_and_checking_one_imports_no_sdk() -> None:
    from ray_multicloud.clouds import DRIVERS, SCHEMAS

    assert set(SCHEMAS) == set(DRIVERS)
    code = ("import sys\n"
            "from ray_multicloud.cluster_config.provider_section import load_settings\n"
            "load_settings({'gcs_address': '10.0.0.1:6379', 'clouds': {'aws': {'regions': ['us-east-1']},"
            " 'gcp': {'project': 'p'}, 'azure': {'resource_group': 'rg'}}}, 't')\n"
            "sdks = ('boto3', 'botocore', 'google.cloud', 'azure.mgmt.compute')\n"
            "loaded = [m for m in sdks if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_a_misspelt_provider_key_names_itself_and_its_close_match() -> None:
    config = example()
    config["provider"]["cooldown_second"] = 60
    with pytest.raises(ConfigError) as err:
        load_settings(config["provider"], config["cluster_name"])
    assert err.value.key == "provider.cooldown_second"
    assert "did you mean 'cooldown_seconds'" in str(err.value)
