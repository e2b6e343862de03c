"""``ray-multicloud plan``: offline validation of a multi-cloud YAML and the per-pool placements it prints."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.price_servers import FakeAwsPrices, FakeRetailPrices

from ray_multicloud.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "cluster_configs" / "aws-gcp-azure-gpu.yaml"
SECRET = "SECRET-in-yaml-7d1e"


def example() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return config


def plan(tmp_path: Path, config: dict[str, Any], *extra: str) -> int:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return main(["plan", str(path), *extra])


def test_example_yaml_plans_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "every pool can be placed now" in out
    for pool in (
        "[head] pinned",
        "[l4_spot] 1 node(s) now",
        "[a100_80gb_spot] 1 node(s) now",
        "[t4_serve] 2 node(s) now",
    ):
        assert pool in out
    l4 = out.split("[l4_spot]")[1].split("\n[")[0]
    assert (
        "node 1: aws/us-east-1/" in l4
        and "why: cheapest eligible spot L4x1" in l4
        and "if no capacity:" in l4
    )
    t4 = out.split("[t4_serve]")[1]
    assert "node 1: aws/" in t4 and "node 2: " in t4 and "node 2: aws/" not in t4  # min_clouds: 2


def test_credentials_in_the_yaml_are_refused_without_echoing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = example()
    config["provider"]["clouds"]["aws"]["aws_secret_access_key"] = SECRET
    assert plan(tmp_path, config) == 2
    captured = capsys.readouterr()
    assert "provider.clouds.aws.aws_secret_access_key" in captured.err
    assert SECRET not in captured.out + captured.err


def test_loopback_head_address_is_flagged_for_public_clouds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = example()
    config["provider"]["gcs_address"] = "127.0.0.1:6379"
    assert plan(tmp_path, config) == 0
    out = capsys.readouterr().out
    assert "provider.gcs_address 127.0.0.1:6379 is loopback" in out and "cannot reach it" in out


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (
            lambda c: c["available_node_types"]["l4_spot"]["node_config"]["pool"].update(
                max_price_per_hour=0.01
            ),
            "available_node_types.l4_spot.node_config.pool.max_price_per_hour",
        ),
        (
            lambda c: c["provider"]["clouds"]["azure"]["subnet_ids"].pop("westus2"),
            "provider.clouds.azure.subnet_ids",
        ),
        (lambda c: c["provider"]["clouds"]["gcp"].pop("project"), "provider.clouds.gcp.project"),
        (
            lambda c: c["available_node_types"]["l4_spot"]["labels"].update(
                {"ray.io/market-type": "on-demand"}
            ),
            "available_node_types.l4_spot.labels.ray.io/market-type",
        ),
        (lambda c: c["provider"]["clouds"]["aws"].update(driver="ec2"), "provider.clouds.aws.driver"),
    ],
)
def test_invalid_yaml_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, key: str
) -> None:
    config = copy.deepcopy(example())
    edit(config)
    assert plan(tmp_path, config) == 2
    assert key in capsys.readouterr().err


def test_plan_live_overlays_prices_and_says_where_they_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = example()
    del config["provider"]["clouds"]["gcp"]
    config["available_node_types"]["l4_spot"]["node_config"]["pool"].update(clouds=["aws"], min_clouds=1)
    config["available_node_types"]["a100_80gb_spot"]["node_config"]["pool"]["clouds"] = ["aws", "azure"]
    config["available_node_types"]["t4_serve"]["node_config"]["pool"]["source_preference"] = []
    config["available_node_types"]["v100"] = {
        "resources": {"GPU": 1},
        "min_workers": 0,
        "max_workers": 2,
        "node_config": {
            "pool": {
                "accelerator": "V100",
                "clouds": ["azure"],
                "regions": ["eastus"],
                "capacity_types": ["spot"],
            }
        },
    }
    with FakeAwsPrices() as aws, FakeRetailPrices() as azure:
        code = plan(
            tmp_path,
            config,
            "--live",
            "--feed-endpoint",
            f"aws={aws.url}",
            "--feed-endpoint",
            f"azure={azure.url}/api/retail/prices",
        )
    out = capsys.readouterr().out
    assert code == 0
    v100 = out.split("[v100]")[1]
    assert "$0.3213/h  [live:azure-retail-prices, age 0s]" in v100


def test_plan_shows_each_pools_migration_and_names_a_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "a100_80gb_spot: moved by the controller: policy multicloud" in out
    assert "hysteresis 1800 s, checkpoint measured, at most 50% node(s) at once, 1 blackout window(s)" in out
    config = example()
    config["available_node_types"]["a100_80gb_spot"]["node_config"]["migration"]["blackouts"] = ["00:00-24:00"]
    assert plan(tmp_path, config) != 0
    err = capsys.readouterr().err
    assert "available_node_types.a100_80gb_spot.node_config.migration.blackouts[0]" in err
    assert "never ends" in err and "migration.enabled: false" in err


def test_plan_notes_a_predictive_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = example()
    node_config = config["available_node_types"]["t4_serve"]["node_config"]
    peak = {"days": ["mon-fri"], "from": "09:00", "to": "11:00", "replicas": 6}
    node_config["predictive"] = {"replica_rps": 12, "lead": "6m", "max_replicas": 8, "peaks": [peak]}
    assert plan(tmp_path, config) == 0
    out = capsys.readouterr().out
    assert ("t4_serve: predictive: 12 req/s per replica, 1 per node, lead 360 s, at least 0, at most 8, "
            "1 peak window(s)") in out
    node_config["predictive"] = {"replica_rps": 12, "lead_s": 360}
    assert plan(tmp_path, config) != 0
    assert "t4_serve.node_config.predictive.lead_s" in capsys.readouterr().err
