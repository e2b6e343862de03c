"""Which workload to hand over next (issue 15, item 7): the pure ranking with hand-computed scores,
the replay of recorded hours over traces, and ``ray-multicloud assess`` end to end on a ledger."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ray_multicloud.cli import main
from ray_multicloud.cluster_config.pools import pool_criticality
from ray_multicloud.errors import ConfigError
from ray_multicloud.handover import PoolFacts, replay
from ray_multicloud.ledger import Ledger
from ray_multicloud.policy.assess import Candidate, Criticality, assess, difficulty, rank
from ray_multicloud.types import CapacityType, Offer

ROOT = Path(__file__).resolve().parents[1]
LOCAL = yaml.safe_load((ROOT / "cluster_configs" / "local-multicloud.yaml").read_text())
H = 3600.0


def cand(name: str, **kw: Any) -> Candidate:
    base: dict[str, Any] = {"kind": "pool", "pool": name, "hours": 10.0, "cost_usd": 5.26,
                            "policy_cost_usd": 2.02, "moves": 0, "checkpoint_gb": 1.0, "restart_minutes": 2.0,
                            "egress_usd_per_gb": 0.09}
    base.update(kw)
    return Candidate(name=name, **base)


@pytest.mark.parametrize(("restart", "gb", "level"), [
    (5.0, 10.0, "easy"), (5.01, 10.0, "moderate"), (0.0, 10.5, "moderate"), (30.0, 100.0, "moderate"),
    (30.1, 0.0, "hard"), (0.0, 100.1, "hard"),
])
def test_difficulty_thresholds(restart: float, gb: float, level: str) -> None:
    assert difficulty(restart, gb) == level


def test_scores_are_the_documented_products() -> None:
    a = assess(cand("a", moves=2, restart_minutes=6.0, criticality=Criticality.LOW))
    # saving 5.26 - 2.02 = 3.24; egress 2 x 1 GB x 0.09 = 0.18; net 3.06; moderate 0.75 x low 1
    assert a.saving_usd == pytest.approx(3.24)
    assert a.egress_usd == pytest.approx(0.18)
    assert a.net_saving_usd == pytest.approx(3.06)
    assert a.difficulty == "moderate"
    assert a.score == pytest.approx(2.295)
    b = assess(cand("b", hours=100, cost_usd=52.6, policy_cost_usd=20.2, moves=10, checkpoint_gb=50,
                    restart_minutes=20, criticality=Criticality.HIGH))
    # saving 32.4, egress 10 x 50 x 0.09 = 45: the moves' egress eats the saving -> net -12.6, score 0
    assert b.net_saving_usd == pytest.approx(-12.6)
    assert b.score == 0


def test_rank_order_best_score_first_then_unreplayed_then_hands_off() -> None:
    ranked = rank([
        cand("a", moves=2, restart_minutes=6.0, criticality=Criticality.LOW),  # 2.295
        cand("b", kind="job", hours=100, cost_usd=52.6, policy_cost_usd=20.2, moves=10, checkpoint_gb=50,
             restart_minutes=20, criticality=Criticality.HIGH),  # 0 (net -12.6)
        cand("c", hours=40, cost_usd=21.04, policy_cost_usd=8.0, checkpoint_gb=5),  # 13.04 x 1 x 0.5 = 6.52
        cand("d", cost_usd=200.0, policy_cost_usd=100.0, hands_off=True),  # best saving, already hands-off
        cand("e", policy_cost_usd=None, note="no recorded hours in the ledger"),
    ])
    assert [a.candidate.name for a in ranked] == ["c", "a", "b", "e", "d"]
    assert ranked[0].score == pytest.approx(6.52)
    assert ranked[3].reasons() == "no recorded hours in the ledger"
    assert "already hands-off" in ranked[4].reasons()


def test_replay_pays_the_traces_spot_price_for_the_recorded_hours(tmp_path: Path) -> None:
    traces = _traces(tmp_path)
    facts = PoolFacts("t4", False, "multicloud", 1.0, 20 / 60, 0, 0.09, Criticality.LOW, None)
    # spot always up at $0.25/h: 10 h of work + one 20 s start = 10.00556 h x 0.25
    assert replay([traces], facts, 10.0, 0.526, checkpoint_minutes=30).cost_usd == pytest.approx(
        (10 + 20 / 3600) * 0.25)
    # 80 h is more than half the 100 h traces: 50 h replayed, then scaled by 80 / 50
    long = replay([traces], facts, 80.0, 0.526, checkpoint_minutes=30)
    assert long.cost_usd == pytest.approx((50 + 20 / 3600) * 0.25 * 1.6)
    assert "scaled" in long.note


def _traces(tmp_path: Path) -> Path:
    d = tmp_path / "traces"
    d.mkdir()
    for zone in ("us-east-1a", "us-east-1b"):  # 600 ticks of 600 s: 100 h, spot always up at $0.25
        (d / f"{zone}.json").write_text(json.dumps({"metadata": {"gap_seconds": 600}, "data": [1] * 600,
                                                    "prices": [0.25] * 600}))
    return d


def test_criticality_is_declared_per_pool() -> None:
    assert pool_criticality("gpu", {"pool": {}}) is Criticality.MEDIUM
    assert pool_criticality("gpu", {"pool": {"criticality": "High"}}) is Criticality.HIGH
    with pytest.raises(ConfigError) as err:
        pool_criticality("gpu", {"pool": {"criticality": "urgent"}})
    assert err.value.key == "available_node_types.gpu.node_config.pool.criticality"


def test_assess_ranks_the_ledgers_pools_and_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.db"
    od = Offer("aws", "us-east-1", "use1-az1", "g4dn.xlarge", "T4", 1, 4, 16, CapacityType.ON_DEMAND, 0.526,
               0.526)
    with Ledger(ledger) as led:  # t4_spot: 10 h on on-demand for train:r1; a100_ondemand: nothing recorded
        led.record_launch("a", "rmc-local", "t4_spot", od, "r", at=0.0, job="train:r1")
        led.record_end("a", at=10 * H, reason="scale-down")
    config = copy.deepcopy(LOCAL)
    config["provider"]["ledger"] = str(ledger)
    t4 = config["available_node_types"]["t4_spot"]["node_config"]
    t4["migration"]["enabled"] = False  # not handed over yet
    t4["pool"]["criticality"] = "low"
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    rc = main(["assess", str(path), "--traces", str(_traces(tmp_path)), "--until", str(20 * H), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    first = out[0]
    assert (first["kind"], first["name"], first["hands_off"]) in {("pool", "t4_spot", False),
                                                                  ("job", "train:r1", False)}
    by = {(r["kind"], r["name"]): r for r in out}
    pool = by[("pool", "t4_spot")]
    # recorded 10 h x 0.526 = 5.26; replay (10 h + 20 s restart) x 0.25; no moves; 0.01 GB checkpoint
    assert pool["recorded_usd"] == pytest.approx(5.26)
    assert pool["policy_usd"] == pytest.approx((10 + 20 / 3600) * 0.25)
    assert pool["net_saving_usd"] == pytest.approx(5.26 - (10 + 20 / 3600) * 0.25)
    assert pool["difficulty"] == "easy" and pool["criticality"] == "low"
    assert pool["score"] == pytest.approx(pool["net_saving_usd"])
    assert by[("job", "train:r1")]["policy_usd"] == pytest.approx(pool["policy_usd"])
    a100 = by[("pool", "a100_ondemand")]
    assert a100["hands_off"] is True and a100["score"] is None
    assert [r["name"] for r in out][-1] == "a100_ondemand"
