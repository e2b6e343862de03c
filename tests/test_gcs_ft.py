"""``provider.gcs_fault_tolerance`` (cluster_config/gcs_ft.py): what the YAML switch accepts, what it
puts on the head's ``ray start --head`` and into a worker's environment, and that ``plan`` and
``ray up``'s bootstrap check it alike. The live head failover is tests/test_head_failover_e2e.py.

Expected values are Ray's own names (``RAY_REDIS_ADDRESS``, ``RAY_external_storage_namespace``,
``RAY_gcs_rpc_server_reconnect_timeout_s``: docs.ray.io "GCS Fault Tolerance", and strings in the
installed gcs_server binary) and what bash does with the rewritten command, run here.
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.memory_cloud import launch_workers, launched_bootstrap, memory_cluster
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cluster_config.gcs_ft import (
    GcsFaultTolerance,
    check_redis_address,
    head_commands,
    parse_gcs_ft,
    worker_env,
)
from ray_multicloud.cluster_config.provider_section import load_settings
from ray_multicloud.dry_run import dry_run
from ray_multicloud.errors import ConfigError
from ray_multicloud.provider import MultiCloudNodeProvider

LOCAL_YAML = Path(__file__).resolve().parents[1] / "cluster_configs" / "local-multicloud.yaml"
FT = GcsFaultTolerance("10.0.0.5:6379", "prod-a", 600.0)  # namespace given: used as it is


def test_absent_section_is_off() -> None:
    assert parse_gcs_ft(None, "c1") is None


def test_minimal_section_defaults_namespace_to_the_cluster_and_ten_minutes_for_workers() -> None:
    assert parse_gcs_ft({"redis_address": "10.0.0.5:6379"}, "rmc-prod") == GcsFaultTolerance(
        "10.0.0.5:6379", "rmc-prod", 600.0, None, per_head=True)


def test_default_namespace_is_per_head_instance(tmp_path: Path) -> None:
    # The head's Ray processes restarting keep the tables (same instance id); a new `ray up` of the
    # same cluster name (a new head instance) starts clean; without the id (autoscaler v1) "-head".
    ft = parse_gcs_ft({"redis_address": "10.0.0.5:6379"}, "rmc prod@1")
    assert ft is not None
    [cmd] = head_commands(["ray start --head --port=1"], ft)
    got = _run_with_fake_ray(tmp_path, cmd, {"RAY_CLOUD_INSTANCE_ID": "i-0abc"})
    assert got == "addr=10.0.0.5:6379 ns=rmc-prod-1-i-0abc args=start --head --port=1"
    assert _run_with_fake_ray(tmp_path, cmd).startswith("addr=10.0.0.5:6379 ns=rmc-prod-1-head ")


@pytest.mark.parametrize("address", ["10.0.0.5:6379", "redis.internal:6380", "rediss://cache.example:6379",
                                     "redis://10.0.0.5:6379", "[fd00::5]:6379"])
def test_redis_addresses_ray_takes_are_accepted(address: str) -> None:
    assert check_redis_address(address) == address


@pytest.mark.parametrize("address", ["", "10.0.0.5", "10.0.0.5:", ":6379", "10.0.0.5:0", "10.0.0.5:65536",
                                     "0.0.0.0:6379", "http://10.0.0.5:6379", "a:1,b:2",
                                     "redis://user:pw@host:6379", "10.0.0.5:63x9", 6379, None, ["a:1"]])
def test_bad_redis_addresses_name_the_key(address: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_gcs_ft({"redis_address": address}, "c1")
    assert err.value.key == "provider.gcs_fault_tolerance.redis_address"


@pytest.mark.parametrize(("section", "key"), [
    ({"redis_address": "h:1", "namespace": "a@b"}, "namespace"),
    ({"redis_address": "h:1", "namespace": ""}, "namespace"),
    ({"redis_address": "h:1", "namespace": 5}, "namespace"),
    ({"redis_address": "h:1", "reconnect_timeout_seconds": float("nan")}, "reconnect_timeout_seconds"),
    ({"redis_address": "h:1", "reconnect_timeout_seconds": True}, "reconnect_timeout_seconds"),
    ({"redis_address": "h:1", "reconnect_timeout_seconds": 0}, "reconnect_timeout_seconds"),
    ({"redis_address": "h:1", "reconnect_timeout_seconds": "600"}, "reconnect_timeout_seconds"),
    ({"redis_address": "h:1", "redis_password_env": "not a name"}, "redis_password_env"),
    ({"redis_address": "h:1", "redis_password": "hunter2"}, "redis_password"),
])
def test_bad_values_name_their_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_gcs_ft(section, "c1")
    assert err.value.key == f"provider.gcs_fault_tolerance.{key}"
    assert "hunter2" not in str(err.value)


def test_a_non_mapping_section_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_gcs_ft("10.0.0.5:6379", "c1")
    assert err.value.key == "provider.gcs_fault_tolerance"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids,
                                                                               max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(section=st.dictionaries(st.sampled_from(["redis_address", "namespace", "reconnect_timeout_seconds",
                                                "redis_password_env", "other"]), _json, max_size=4) | _json)
def test_any_section_is_parsed_or_refused_with_our_error(section: object) -> None:
    try:
        out = parse_gcs_ft(section, "c1")
    except ConfigError as err:
        assert err.key.startswith("provider.gcs_fault_tolerance")
        return
    assert out is None or isinstance(out, GcsFaultTolerance)


def _run_with_fake_ray(tmp_path: Path, command: str, env: dict[str, str] | None = None) -> str:
    """Run ``command`` in bash with a ``ray`` on PATH that prints the GCS FT environment and its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "ray"
    fake.write_text('#!/bin/sh\necho "addr=$RAY_REDIS_ADDRESS ns=$RAY_external_storage_namespace args=$*"\n')
    fake.chmod(0o755)
    run_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **(env or {})}
    done = subprocess.run(["bash", "-c", command], env=run_env, capture_output=True, text=True, check=False)
    return done.stdout.strip() + done.stderr.strip()


def test_head_start_gets_the_redis_environment_and_other_commands_stay(tmp_path: Path) -> None:
    commands = ["cd . && ray start --head --port=6379 --autoscaling-config=~/a.yaml",
                "nohup python -m ray_multicloud.controller --config x &"]
    out = head_commands(commands, FT)
    assert out[1] == commands[1]
    assert _run_with_fake_ray(tmp_path, out[0]) == (
        "addr=10.0.0.5:6379 ns=prod-a args=start --head --port=6379 --autoscaling-config=~/a.yaml")
    assert head_commands(out, FT) == out  # idempotent: `ray up` runs the hook on every call


def test_a_worker_start_is_not_given_the_redis_address(tmp_path: Path) -> None:
    out = head_commands(["ray start --head --port=1", "ray start --address=h:1"], FT)
    assert out[1] == "ray start --address=h:1"


def test_the_password_comes_from_the_heads_environment_and_never_from_the_yaml(tmp_path: Path) -> None:
    ft = GcsFaultTolerance("10.0.0.5:6379", "prod-a", 600.0, "RMC_REDIS_PASSWORD")
    [cmd] = head_commands(["ray start --head --port=6379"], ft)
    assert "s3cr3t" not in cmd
    got = _run_with_fake_ray(tmp_path, cmd, {"RMC_REDIS_PASSWORD": "s3cr3t"})
    assert got == "addr=10.0.0.5:6379 ns=prod-a args=start --head --redis-password=s3cr3t --port=6379"
    missing = _run_with_fake_ray(tmp_path, cmd)
    assert "RMC_REDIS_PASSWORD" in missing and "addr=" not in missing  # refuses to start without it


def test_no_head_start_command_is_an_error_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as err:
        head_commands(["echo hello"], FT)
    assert "head_start_ray_commands" in err.value.key


def test_workers_wait_ten_minutes_for_a_fallen_head() -> None:
    assert worker_env(FT) == {"RAY_gcs_rpc_server_reconnect_timeout_s": "600"}


def _local_config(tmp_path: Path, ft: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(LOCAL_YAML.read_text())
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"].pop("ledger", None)
    if ft is not None:
        config["provider"]["gcs_fault_tolerance"] = ft
    return config


def test_ray_up_bootstrap_puts_the_environment_on_the_head_start(tmp_path: Path) -> None:
    config = _local_config(tmp_path, {"redis_address": "127.0.0.1:7000", "namespace": "ns1"})
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(config))
    heads = [c for c in done["head_start_ray_commands"] if "ray start --head" in c]
    assert len(heads) == 1
    assert "RAY_REDIS_ADDRESS=127.0.0.1:7000 RAY_external_storage_namespace=ns1 ray start --head" in heads[0]
    again = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(done))
    assert again["head_start_ray_commands"] == done["head_start_ray_commands"]


def test_off_leaves_the_head_start_as_written(tmp_path: Path) -> None:
    config = _local_config(tmp_path, None)
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(config))
    assert not any("RAY_REDIS_ADDRESS" in c for c in done["head_start_ray_commands"])


def test_plan_and_ray_up_refuse_fault_tolerance_without_a_head_start(tmp_path: Path) -> None:
    config = _local_config(tmp_path, {"redis_address": "127.0.0.1:7000"})
    config["head_start_ray_commands"] = ["echo no head here"]
    with pytest.raises(ConfigError) as planned:
        dry_run(copy.deepcopy(config), live=False)
    with pytest.raises(ConfigError) as upped:
        MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(config))
    assert planned.value.key == upped.value.key == "provider.gcs_fault_tolerance / head_start_ray_commands"


def test_plan_names_a_bad_redis_address(tmp_path: Path) -> None:
    config = _local_config(tmp_path, {"redis_address": "0.0.0.0:6379"})
    with pytest.raises(ConfigError) as err:
        dry_run(config, live=False)
    assert err.value.key == "provider.gcs_fault_tolerance.redis_address"


def test_settings_carry_the_section(tmp_path: Path) -> None:
    config = _local_config(tmp_path, {"redis_address": "127.0.0.1:7000"})
    settings_ = load_settings(config["provider"], "c9")
    assert settings_.gcs_ft == GcsFaultTolerance("127.0.0.1:7000", "c9", 600.0, None, per_head=True)


@pytest.mark.parametrize("ft", [None, {"redis_address": "127.0.0.1:7000", "reconnect_timeout_seconds": 900}])
def test_a_launched_worker_gets_the_reconnect_timeout_only_with_fault_tolerance(
        tmp_path: Path, ft: dict[str, Any] | None) -> None:
    with memory_cluster(tmp_path) as (config, world):
        if ft is not None:
            config["provider"]["gcs_fault_tolerance"] = ft
        env = launched_bootstrap(config, world).env
        if ft is None:
            assert "RAY_gcs_rpc_server_reconnect_timeout_s" not in env
        else:
            assert env["RAY_gcs_rpc_server_reconnect_timeout_s"] == "900"
        assert "RAY_REDIS_ADDRESS" not in env  # only the head talks to Redis


def test_probe_stats_count_failures_and_the_longest_silence_in_the_window() -> None:
    from ray_multicloud.scenarios.head_failover import ProbeStats, probe_stats

    # (sent, answered, ok): answers at 10.1, 10.6 and 13.2; a failure sent at 11.0; one sample before
    # the window (9.0) and one after it (20.0) are not counted.
    samples = [(9.0, 9.1, True), (10.0, 10.1, True), (10.5, 10.6, True), (11.0, 13.0, False),
               (13.1, 13.2, True), (20.0, 20.1, True)]
    got = probe_stats(samples, 10.0, 14.0)
    # silences: 10.0-10.1, 10.1-10.6, 10.6-13.2 (2.6 s), 13.2-14.0
    assert got.sent == 4 and got.failed == 1
    assert abs(got.longest_gap_s - 2.6) < 1e-9
    assert probe_stats([], 10.0, 12.5) == ProbeStats(0, 0, 2.5)  # nothing answered: all silence


def test_the_provider_never_terminates_the_instance_it_runs_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen live: after the head's Ray processes restarted, autoscaler v2 found the head's previous
    # Ray node dead in the reloaded tables and terminated its cloud instance: the head itself.
    with memory_cluster(tmp_path) as (config, world):
        provider = MultiCloudNodeProvider(copy.deepcopy(config["provider"]), config["cluster_name"],
                                          clouds=world.clouds(config))
        [me, other] = launch_workers(provider, config, node_type="t4_spot", count=2)
        monkeypatch.setenv("RAY_CLOUD_INSTANCE_ID", me.instance_id)
        provider.terminate_nodes([me.instance_id, other.instance_id])
        assert provider.non_terminated_nodes({}) == [me.instance_id]
        monkeypatch.delenv("RAY_CLOUD_INSTANCE_ID")  # `ray down`'s client runs elsewhere
        provider.terminate_node(me.instance_id)
        assert provider.non_terminated_nodes({}) == []
