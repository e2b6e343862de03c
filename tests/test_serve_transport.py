"""The Serve transport switches (``ray_multicloud.serve.transport``) and ``provider.serve_transport``:
which variables each transport sets and removes, the YAML check, the head's commands and a launched
worker's environment. Expected values are the variables Ray's docs name for the high-throughput mode."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.memory_cloud import launched_bootstrap, memory_cluster
from hypothesis import given
from hypothesis import strategies as st

from ray_multicloud.cluster_config.provider_section import load_settings
from ray_multicloud.dry_run import dry_run
from ray_multicloud.errors import ConfigError
from ray_multicloud.provider import MultiCloudNodeProvider
from ray_multicloud.serve.transport import LOW_LATENCY_ENV, head_commands, transport_env

SWITCHES = {"RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_PROXY_USE_GRPC", "RAY_SERVE_ENABLE_DIRECT_INGRESS"}


def test_optimized_keeps_the_proxy_and_turns_grpc_on() -> None:
    assert dict(LOW_LATENCY_ENV) == {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_PROXY_USE_GRPC": "1",
                                     "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}
    env = transport_env("optimized", {"PATH": "/bin"})
    assert env == {"PATH": "/bin", **LOW_LATENCY_ENV}


def test_default_removes_every_switch_a_caller_had_set() -> None:
    base = {"PATH": "/bin", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_PROXY_USE_GRPC": "1"}
    assert transport_env("default", base) == {"PATH": "/bin"}
    assert base["RAY_SERVE_PROXY_USE_GRPC"] == "1"  # the caller's mapping is not changed


def test_unknown_transport_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'grpc'.*default, optimized"):
        transport_env("grpc", {})


@given(st.dictionaries(st.sampled_from(sorted(SWITCHES | {"PATH", "HOME", "RAY_ADDRESS"})),
                       st.sampled_from(["0", "1", "x"])),
       st.sampled_from(["default", "optimized"]))
def test_transport_env_sets_exactly_the_switches_and_keeps_the_rest(base: dict[str, str], name: str) -> None:
    env = transport_env(name, base)
    assert {k: v for k, v in env.items() if k not in SWITCHES} == {
        k: v for k, v in base.items() if k not in SWITCHES}
    expected = dict(LOW_LATENCY_ENV) if name == "optimized" else {}
    assert {k: v for k, v in env.items() if k in SWITCHES} == expected


# --- provider.serve_transport: the YAML switch, the head's commands, a launched worker's environment ---

LOCAL_YAML = Path(__file__).resolve().parents[1] / "cluster_configs" / "local-multicloud.yaml"


def _local_config(tmp_path: Path, transport: object | None) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(LOCAL_YAML.read_text())
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"].pop("ledger", None)
    if transport is not None:
        config["provider"]["serve_transport"] = transport
    return config


def test_head_commands_export_the_switches_before_each_command_bash_sees_them() -> None:
    out = head_commands(["ray start --head", "echo two"], "optimized")
    assert len(out) == 2 and out[1].endswith("; echo two")
    assert head_commands(out, "optimized") == out  # idempotent
    assert head_commands(["ray start --head"], "default") == ["ray start --head"]
    script = head_commands(['echo "$RAY_SERVE_THROUGHPUT_OPTIMIZED $RAY_SERVE_PROXY_USE_GRPC '
                            '$RAY_SERVE_ENABLE_DIRECT_INGRESS"'], "optimized")[0]
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1 1 0"


@pytest.mark.parametrize("value", ["grpc", "", 1, True, ["optimized"]])
def test_plan_and_settings_refuse_an_unknown_transport_naming_the_key(tmp_path: Path, value: object) -> None:
    config = _local_config(tmp_path, value)
    with pytest.raises(ConfigError) as settings_err:
        load_settings(config["provider"], "c1")
    with pytest.raises(ConfigError) as planned:
        dry_run(copy.deepcopy(config), live=False)
    assert settings_err.value.key == planned.value.key == "provider.serve_transport"
    assert "default, optimized" in str(settings_err.value)


def test_settings_default_and_optimized(tmp_path: Path) -> None:
    assert load_settings(_local_config(tmp_path, None)["provider"], "c1").serve_transport == "default"
    chosen = load_settings(_local_config(tmp_path, "optimized")["provider"], "c1")
    assert chosen.serve_transport == "optimized"


def test_ray_up_bootstrap_exports_the_switches_on_the_head_start_only_when_chosen(tmp_path: Path) -> None:
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(_local_config(tmp_path, "optimized")))
    heads = [c for c in done["head_start_ray_commands"] if "ray start --head" in c]
    assert len(heads) == 1
    assert ("export RAY_SERVE_ENABLE_DIRECT_INGRESS=0 RAY_SERVE_PROXY_USE_GRPC=1 "
            "RAY_SERVE_THROUGHPUT_OPTIMIZED=1; ") in heads[0]
    again = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(done))
    assert again["head_start_ray_commands"] == done["head_start_ray_commands"]
    plain = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(_local_config(tmp_path, None)))
    assert not any("RAY_SERVE_" in c for c in plain["head_start_ray_commands"])


@pytest.mark.parametrize("transport", [None, "default", "optimized"])
def test_a_launched_worker_starts_ray_with_the_heads_transport(tmp_path: Path, transport: str | None) -> None:
    with memory_cluster(tmp_path) as (config, world):
        if transport is not None:
            config["provider"]["serve_transport"] = transport
        env = launched_bootstrap(config, world).env
        switches = {k: v for k, v in env.items() if k in SWITCHES}
        assert switches == ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_PROXY_USE_GRPC": "1",
                             "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"} if transport == "optimized" else {})
