"""A serving pool's ``slo:`` section through ``ray-multicloud plan``: accepted with a note, an impossible SLO
rejected with its numbers, a client region without RTT named with its pair. RTTs from the shipped table
(ray_multicloud/data/region_rtt.json): eu-west-1 -> us-east-1 68 ms, -> eastus 75, -> westus2 130."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.cli import main
from ray_multicloud.cluster_config.slo import parse_slo
from ray_multicloud.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "cluster_configs" / "aws-gcp-azure-gpu.yaml"
KEY = "available_node_types.t4_serve.node_config.slo"


def with_slo(slo: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    node_config = config["available_node_types"]["t4_serve"]["node_config"]
    node_config["pool"]["regions"] = ["us-east-1", "eastus", "westus2"]
    node_config["slo"] = slo
    return config


def plan(tmp_path: Path, config: dict[str, Any]) -> int:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return main(["plan", str(path)])


def test_a_keepable_slo_plans_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # eu-west-1's nearest offer region is us-east-1: 68 + 20 = 88 <= 100
    assert plan(tmp_path, with_slo({"p95_ms": 100, "clients": {"us-east-1": 7, "eu-west-1": 3}})) == 0
    out = capsys.readouterr().out
    assert "t4_serve: SLO p95 100 ms (service 20 ms; clients: eu-west-1 30%, us-east-1 70%)" in out


def test_an_impossible_slo_is_rejected_with_its_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 68 + 20 = 88 > 80 for 30% of the requests (more than the 5% a p95 allows)
    assert plan(tmp_path, with_slo({"p95_ms": 80, "clients": {"us-east-1": 0.7, "eu-west-1": 0.3}})) == 2
    err = capsys.readouterr().err
    assert KEY in err
    assert "eu-west-1 (30% of requests): nearest offer aws/us-east-1/" in err
    assert "68 ms away, + service 20 ms = 88 ms > p95 80 ms" in err
    assert "raise p95_ms to at least 88 ms" in err


def test_a_client_region_without_rtt_names_the_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan(tmp_path, with_slo({"p95_ms": 200, "clients": {"mars-north-1": 1}})) == 2
    err = capsys.readouterr().err
    assert f"{KEY}.clients.mars-north-1" in err and "mars-north-1 <-> eastus" in err


@pytest.mark.parametrize(("slo", "key", "said"), [
    ({"service_ms": 20}, f"{KEY}.p95_ms", "missing"),
    ({"p95_ms": "fast"}, f"{KEY}.p95_ms", "must be a number"),
    ({"p95_ms": 200, "p99_ms": 300}, f"{KEY}.p99_ms", "unknown key"),
    ({"p95_ms": 10, "service_ms": 20}, KEY, "must be below p95_ms"),
    ({"p95_ms": 200, "clients": {"us-east-1": -1}}, f"{KEY}.clients.us-east-1", ">= 0"),
    ({"p95_ms": 200, "clients": ["us-east-1"]}, f"{KEY}.clients", "must map"),
])
def test_bad_slo_sections_name_the_key(slo: dict[str, Any], key: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_slo("t4_serve", {"slo": slo})
    assert info.value.key == key and said in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["p95_ms", "service_ms", "clients", "scale_in_below", "x"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.floats(allow_nan=True),
                                 st.text(max_size=3), st.dictionaries(st.text(max_size=3), st.floats()))))
def test_any_slo_section_parses_or_names_a_key(section: dict[str, Any]) -> None:
    try:
        slo = parse_slo("t4_serve", {"slo": section})
    except ConfigError as exc:
        assert exc.key.startswith(KEY)
        return
    assert slo is not None
    assert not slo.clients or abs(sum(slo.clients.values()) - 1) < 1e-9
