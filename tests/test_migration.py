"""The ``migration:`` section: parsed values, every bad input named by its key, and the YAML's own."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cluster_config.cluster import check_cluster
from ray_multicloud.cluster_config.migration import MIGRATION_KEYS, DisruptionBudget, parse_migration
from ray_multicloud.cluster_config.provider_section import load_cluster_yaml
from ray_multicloud.errors import ConfigError
from ray_multicloud.policy.rebalance import DailyWindow, Window, egress_usd
from ray_multicloud.provider import (
    CONTROLLER_MODULE,
    MultiCloudNodeProvider,
    movable_pools,
)
from tests.cloud_factories import priced_offer

REPO_YAML = Path(__file__).resolve().parent.parent / "cluster_configs" / "local-multicloud.yaml"
KEY = "available_node_types.t4.node_config.migration"


def section(**raw: Any) -> dict[str, Any]:
    return {"pool": {"accelerator": "T4"}, "migration": raw}


def test_no_section_means_enabled_with_the_defaults() -> None:
    m = parse_migration("t4", {"pool": {}})
    assert m.enabled and m.rebalance.min_interval_s == 1800.0 and m.rebalance.deadline_policy == "multicloud"
    assert m.budget.allowed(10) == 1 and m.checkpoint_gb == 20.0


def test_every_key_lands_where_the_controller_reads_it() -> None:
    m = parse_migration(
        "t4",
        section(
            enabled=True,
            policy="uniform-progress",
            horizon_hours=2,
            min_saving=0.25,
            min_net_saving_usd=0.5,
            hysteresis_seconds=60,
            blackouts=["22:00-02:30", {"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00+00:00"}],
            egress_usd_per_gb={"inter_cloud": 0.12, "inter_region": 0.01, "aws->gcp": 0.05},
            checkpoint_gb=3,
            checkpoint_seconds=7,
            restart_seconds=11,
            launch_seconds=13,
            max_disrupted="50%",
            drain_deadline_seconds=17,
            up_timeout_seconds=19,
        ),
    )
    c = m.rebalance
    assert (c.horizon_hours, c.min_relative_saving, c.min_net_saving_usd, c.min_interval_s) == (
        2,
        0.25,
        0.5,
        60,
    )
    assert (c.checkpoint_s, c.restart_s, c.launch_s, c.state_gb) == (7, 11, 13, 3)
    assert (c.egress_usd_per_gb, c.intra_cloud_egress_usd_per_gb) == (0.12, 0.01)
    assert c.egress_pairs == (("aws", "gcp", 0.05),)
    assert c.deadline_policy == "uniform-progress"
    # 22:00-02:30 UTC daily; the one-off window by hand: 2026-12-24 00:00 UTC .. 2026-12-27 00:00 UTC.
    assert c.blackouts == (
        DailyWindow(22.0, 2.5),
        Window(
            datetime(2026, 12, 24, tzinfo=UTC).timestamp(),
            datetime(2026, 12, 27, tzinfo=UTC).timestamp(),
        ),
    )
    assert (m.drain_deadline_s, m.up_timeout_s) == (17, 19)
    # 50% of 3 nodes, rounded up: 2; of 1 node: 1; of none: 0.
    assert [m.budget.allowed(n) for n in (3, 1, 0)] == [2, 1, 0]


def test_measure_takes_the_measured_size_and_falls_back_to_the_default() -> None:
    m = parse_migration("t4", section(checkpoint_gb="measure"))
    assert m.checkpoint_gb is None
    assert m.config_for(measured_gb=4.5).state_gb == 4.5
    assert m.config_for().state_gb == 20.0
    declared = parse_migration("t4", section(checkpoint_gb=2))
    assert declared.config_for(measured_gb=4.5).state_gb == 2  # a declared size is not overridden


@pytest.mark.parametrize(
    ("raw", "key", "needle"),
    [
        ({"enabled": "no"}, f"{KEY}.enabled", "true or false"),
        ({"enable": True}, f"{KEY}.enable", "did you mean 'enabled'"),
        ({"policy": "multi-cloud"}, f"{KEY}.policy", "did you mean 'multicloud'"),
        ({"horizon_hours": 0}, f"{KEY}.horizon_hours", "> 0"),
        ({"hysteresis_seconds": "1m"}, f"{KEY}.hysteresis_seconds", "must be a number"),
        ({"min_saving": 10}, f"{KEY}.min_saving", "below 1"),
        ({"blackouts": "22:00-02:00"}, f"{KEY}.blackouts", "list of windows"),
        ({"blackouts": ["00:00-24:00"]}, f"{KEY}.blackouts[0]", "never ends"),
        ({"blackouts": ["08:00-08:00"]}, f"{KEY}.blackouts[0]", "never ends"),
        ({"blackouts": ["25:00-02:00"]}, f"{KEY}.blackouts[0]", "time of day"),
        ({"blackouts": ["22h"]}, f"{KEY}.blackouts[0]", "HH:MM-HH:MM"),
        ({"blackouts": [{"start": "2026-12-24T00:00:00Z"}]}, f"{KEY}.blackouts[0].end", "needs an end"),
        (
            {"blackouts": [{"start": "2026-12-24T00:00:00", "end": "2026-12-25T00:00:00Z"}]},
            f"{KEY}.blackouts[0].start",
            "no time zone",
        ),
        (
            {"blackouts": [{"start": "2026-12-25T00:00:00Z", "end": "2026-12-24T00:00:00Z"}]},
            f"{KEY}.blackouts[0].end",
            "not after start",
        ),
        ({"egress_usd_per_gb": {"aws-gcp": 0.1}}, f"{KEY}.egress_usd_per_gb.aws-gcp", "'aws->gcp'"),
        ({"egress_usd_per_gb": -1}, f"{KEY}.egress_usd_per_gb", ">= 0"),
        ({"checkpoint_gb": "big"}, f"{KEY}.checkpoint_gb", '"measure"'),
        ({"max_disrupted": "150%"}, f"{KEY}.max_disrupted", "0%..100%"),
        ({"max_disrupted": "two"}, f"{KEY}.max_disrupted", "whole number"),
        ({"max_disrupted": -1}, f"{KEY}.max_disrupted", ">= 0"),
        ({"replace_on_notice": "yes"}, f"{KEY}.replace_on_notice", '"restart" or "launch"'),
        ({"replace_on_notice": 1}, f"{KEY}.replace_on_notice", "got 1"),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, str) else None,
)
def test_bad_input_names_the_key_and_what_to_change(raw: dict[str, Any], key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_migration("t4", section(**raw))
    assert err.value.key == key
    assert needle in str(err.value)


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_migration("t4", {"pool": {}, "migration": ["enabled"]})


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(
        st.one_of(st.text(max_size=12), st.dictionaries(st.text(max_size=6), st.text(max_size=25))),
        max_size=3,
    ),
    st.dictionaries(st.text(max_size=10), st.floats(-1, 1), max_size=3),
)


_KEYS = (*MIGRATION_KEYS, "bogus")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=4))
def test_any_section_parses_or_raises_a_config_error_naming_a_migration_key(raw: dict[str, Any]) -> None:
    try:
        m = parse_migration("t4", section(**raw))
    except ConfigError as exc:
        assert exc.key.startswith(KEY)
    else:
        assert m.rebalance.horizon_hours > 0 and m.budget.allowed(4) >= 0


@pytest.mark.parametrize(
    ("value", "mode"),
    [(None, "restart"), (True, "restart"), (False, "off"), ("restart", "restart"), ("launch", "launch"), ("off", "off")],
)
def test_replace_on_notice_modes(value: object, mode: str) -> None:
    raw = {} if value is None else {"replace_on_notice": value}
    assert parse_migration("t4", section(**raw)).replace_on_notice == mode


def test_egress_pairs_win_region_pair_first() -> None:
    m = parse_migration(
        "t4",
        section(
            checkpoint_gb=10,
            egress_usd_per_gb={
                "inter_cloud": 0.09,
                "inter_region": 0.02,
                "aws->gcp": 0.05,
                "aws/us-east-1->gcp/us-central1": 0.01,
            },
        ),
    )
    c = m.rebalance
    a = priced_offer(cloud="aws", zone="us-east-1a")
    g1 = priced_offer(cloud="gcp", zone="us-central1")
    g2 = priced_offer(cloud="gcp", zone="europe-west4")
    az = priced_offer(cloud="azure", zone="eastus")
    a2 = priced_offer(cloud="aws", zone="us-west-2a")
    # 10 GB at: the region pair 0.01, the cloud pair 0.05, inter-cloud 0.09, inter-region 0.02.
    assert egress_usd(a, g1, c) == pytest.approx(0.1)
    assert egress_usd(a, g2, c) == pytest.approx(0.5)
    assert egress_usd(a, az, c) == pytest.approx(0.9)
    assert egress_usd(a, a2, c) == pytest.approx(0.2)
    assert egress_usd(a, a, c) == 0.0


def test_the_repo_yaml_declares_migration_for_every_pool_tuned_for_the_embedded_cloud() -> None:
    raw = load_cluster_yaml(REPO_YAML)
    targets = check_cluster(raw)
    pools = [n for n, t in targets.items() if n != raw["head_node_type"]]
    assert pools and movable_pools(raw) == pools
    for name in pools:
        node_config = raw["available_node_types"][name]["node_config"]
        assert "migration" in node_config
        m = parse_migration(name, node_config)
        assert m.rebalance.min_interval_s == 60  # a minute on the embedded cloud


def test_ray_up_starts_the_controller_once_unless_opted_out() -> None:
    raw = load_cluster_yaml(REPO_YAML)
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(raw))
    starts = [c for c in done["head_start_ray_commands"] if CONTROLLER_MODULE in c]
    assert len(starts) == 1 and "~/ray_bootstrap_config.yaml" in starts[0] and starts[0].endswith("&")
    commands = done["head_start_ray_commands"]
    head_start = next(i for i, c in enumerate(commands) if "ray start --head" in c)
    assert head_start < commands.index(starts[0])  # after the head is up
    again = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(done))
    assert again["head_start_ray_commands"] == done["head_start_ray_commands"]

    off = copy.deepcopy(raw)
    off["provider"]["start_controller"] = False
    assert not any(
        CONTROLLER_MODULE in c
        for c in MultiCloudNodeProvider.bootstrap_config(off)["head_start_ray_commands"]
    )
    none_movable = copy.deepcopy(raw)
    for spec in none_movable["available_node_types"].values():
        if "pool" in spec["node_config"]:
            spec["node_config"]["migration"] = {"enabled": False}
    boot = MultiCloudNodeProvider.bootstrap_config(none_movable)
    assert not any(CONTROLLER_MODULE in c for c in boot["head_start_ray_commands"])


def test_ray_up_serves_the_dashboard_from_the_head_when_a_port_is_given() -> None:
    from ray_multicloud.errors import ConfigError
    from ray_multicloud.provider import DASHBOARD_COMMAND

    raw = load_cluster_yaml(REPO_YAML)
    plain = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(raw))
    assert not any(DASHBOARD_COMMAND in c for c in plain["head_start_ray_commands"])
    raw["provider"]["dashboard_port"] = 8470
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(raw))
    served = [c for c in done["head_start_ray_commands"] if DASHBOARD_COMMAND in c]
    assert len(served) == 1 and "--port 8470" in served[0] and served[0].endswith("&")
    again = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(done))
    assert again["head_start_ray_commands"] == done["head_start_ray_commands"]
    for bad in (0, 70000, "8470", True):
        raw["provider"]["dashboard_port"] = bad
        with pytest.raises(ConfigError) as err:
            MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(raw))
        assert err.value.key == "provider.dashboard_port"


def test_ray_up_refuses_a_bad_migration_section_and_one_on_the_pinned_head() -> None:
    raw = load_cluster_yaml(REPO_YAML)
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["t4_spot"]["node_config"]["migration"]["hysteresis_seconds"] = "soon"
    with pytest.raises(ConfigError) as err:
        MultiCloudNodeProvider.bootstrap_config(bad)
    assert err.value.key == "available_node_types.t4_spot.node_config.migration.hysteresis_seconds"
    head = copy.deepcopy(raw)
    head["available_node_types"]["head"]["node_config"]["migration"] = {"enabled": True}
    with pytest.raises(ConfigError, match="never moved"):
        check_cluster(head)


def test_disruption_budget_text() -> None:
    assert str(DisruptionBudget(count=2)) == "2" and str(DisruptionBudget(count=None, percent=25)) == "25%"


def test_yaml_timestamps_read_unquoted() -> None:
    raw = yaml.safe_load("blackouts: [{start: 2026-12-24T00:00:00Z, end: 2026-12-25T00:00:00Z}]")
    m = parse_migration("t4", section(**raw))
    assert m.rebalance.blackouts == (Window(1798070400.0, 1798156800.0),)
