"""The provider section and Ray's own schema: every bad value is a ConfigError naming its key
(the hardening issue's finding 8, the parts read by ``cluster_config/provider_section.py``)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cluster_config.cluster import check_ray_schema
from ray_multicloud.cluster_config.provider_section import check_gcs_address, load_settings
from ray_multicloud.dry_run import dry_run
from ray_multicloud.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOCAL = yaml.safe_load((ROOT / "cluster_configs" / "local-multicloud.yaml").read_text())


def provider(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(LOCAL["provider"])
    out.update(changes)
    return out


@pytest.mark.parametrize("good", ["127.0.0.1:6379", "[::1]:6379", "head.internal:6379", " 10.0.0.2:1 "])
def test_good_gcs_addresses(good: str) -> None:
    assert check_gcs_address(good) == good.strip()


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("foo:", "port must be a number"),
        ("foo:0", "port must be a number"),
        ("foo:65536", "port must be a number"),
        (":6379", "no host"),
        ("0.0.0.0:6379", "listen-on-all"),
        ("[::]:6379", "listen-on-all"),
        ("6379", "host:port"),
        (6379, "host:port"),
        (None, "host:port"),
    ],
)
def test_bad_gcs_addresses_name_the_key(bad: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        load_settings(provider(gcs_address=bad), "c")
    assert err.value.key == "provider.gcs_address"


@pytest.mark.parametrize("key", ["cooldown_seconds", "max_price_age_seconds", "price_ttl_seconds"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", True, "soon", -1])
def test_seconds_must_be_finite_numbers(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(provider(**{key: value}), "c")
    assert err.value.key == f"provider.{key}"


def test_regions_as_a_string_is_named() -> None:
    clouds = copy.deepcopy(LOCAL["provider"]["clouds"])
    first = next(iter(clouds))
    clouds[first]["regions"] = "us-east-1"
    with pytest.raises(ConfigError, match="list of region names") as err:
        load_settings(provider(clouds=clouds), "c")
    assert err.value.key == f"provider.clouds.{first}.regions"


@pytest.mark.parametrize("key", ["catalog", "ledger", "state_dir"])
def test_paths_must_be_strings(key: str) -> None:
    with pytest.raises(ConfigError, match="file path") as err:
        load_settings(provider(**{key: 5}), "c")
    assert err.value.key == f"provider.{key}"


def test_ray_schema_catches_a_misspelt_ray_key_in_plan() -> None:
    config = copy.deepcopy(LOCAL)
    config["max_wrkers"] = 3
    with pytest.raises(ConfigError, match="no such key") as err:
        dry_run(config)
    assert err.value.key == "max_wrkers"


def test_ray_schema_names_a_nested_key() -> None:
    config = copy.deepcopy(LOCAL)
    worker = next(k for k in config["available_node_types"] if k != config["head_node_type"])
    config["available_node_types"][worker]["min_workers"] = "two"
    with pytest.raises(ConfigError, match="Ray's cluster schema") as err:
        check_ray_schema(config)
    assert err.value.key == f"available_node_types.{worker}.min_workers"


def test_the_shipped_yamls_pass_rays_schema() -> None:
    for path in sorted((ROOT / "cluster_configs").glob("*.yaml")):
        check_ray_schema(yaml.safe_load(path.read_text()))


ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["gcs_address", "state_dir", "catalog", "cooldown_seconds", "ledger",
                        "max_price_age_seconds", "price_ttl_seconds", "train_storage",
                        "start_controller", "clouds"]), ANY)
def test_any_value_is_read_or_named(key: str, value: Any) -> None:
    """Whatever a key holds, the reader answers with settings or a ConfigError naming that key."""
    try:
        load_settings(provider(**{key: value}), "c")
    except ConfigError as exc:
        assert exc.key.startswith(f"provider.{key}") or exc.key == "provider"
