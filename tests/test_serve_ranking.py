"""Table-driven tests of the pure Serve replica ranking: cheapest replica that keeps the SLO, else fastest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ray_multicloud.serve.ranking import (
    ReplicaView,
    RttTable,
    Slo,
    Weights,
    client_region_from_key,
    estimate_ms,
    load_rtt_table,
    rank_replicas,
)

# A literal table, so the cases below do not move when the shipped table is re-measured.
TABLE = RttTable(
    {
        ("us-east-1", "us-west-2"): 67,
        ("us-east-1", "eu-west-1"): 68,
        ("us-west-2", "eu-west-1"): 125,
        ("us-east-1", "westus2"): 70,
        ("westus2", "eu-west-1"): 130,
        ("us-west-2", "westus2"): 10,
    },
    same_region_ms=1,
)


def rv(rid: str, region: str, price: float | None, queue: int = 0, cloud: str = "aws") -> ReplicaView:
    return ReplicaView(replica_id=rid, cloud=cloud, region=region, price_per_hour=price, queue_len=queue)


# Replicas as the local cluster's serving pool places them: one on-demand in the east, spot in the west.
EAST_OD = rv("east-od", "us-east-1", 0.526)
WEST_SPOT = rv("west-spot", "westus2", 0.0616, cloud="azure")
WEST_SPOT_AWS = rv("west-spot-aws", "us-west-2", 0.0631)


@pytest.mark.parametrize(
    ("case", "replicas", "client", "slo", "weights", "expected_order", "expected_keeps"),
    [
        ("cheapest keeps SLO wins even when farther",
         [EAST_OD, WEST_SPOT], "eu-west-1", Slo(200, 20), Weights(), ["west-spot", "east-od"], [True, True]),
        ("a queue pushes the cheap replica over the SLO",
         [EAST_OD, rv("west-spot", "westus2", 0.0616, queue=4, cloud="azure")], "eu-west-1", Slo(200, 20),
         Weights(), ["east-od", "west-spot"], [True, False]),
        ("tight SLO: only the near replica keeps it although it costs 8x",
         [WEST_SPOT, EAST_OD], "us-east-1", Slo(30, 10), Weights(), ["east-od", "west-spot"], [True, False]),
        ("nobody keeps the SLO: fastest first",
         [WEST_SPOT, EAST_OD], "eu-west-1", Slo(50, 20), Weights(), ["east-od", "west-spot"], [False, False]),
        ("nobody keeps the SLO: fastest first even if dearest",
         [rv("cheap-far", "us-west-2", 0.05), rv("dear-near", "eu-west-1", 2.0)], "eu-west-1", Slo(10, 20),
         Weights(), ["dear-near", "cheap-far"], [False, False]),
        ("equal price: lower estimate breaks the tie",
         [rv("b-far", "us-west-2", 0.1), rv("a-near", "us-east-1", 0.1)], "us-east-1", Slo(200, 20),
         Weights(), ["a-near", "b-far"], [True, True]),
        ("equal price and estimate: replica id breaks the tie",
         [rv("b", "us-east-1", 0.1), rv("a", "us-east-1", 0.1)], "us-east-1", Slo(200, 20), Weights(),
         ["a", "b"], [True, True]),
        ("latency weight buys speed: 62 ms faster for $0.46/h more at $0.01/h per ms",
         [WEST_SPOT, EAST_OD], "eu-west-1", Slo(200, 20), Weights(price=1, latency=0.01),
         ["east-od", "west-spot"], [True, True]),
        ("small latency weight keeps price first",
         [EAST_OD, WEST_SPOT], "eu-west-1", Slo(200, 20), Weights(price=1, latency=0.001),
         ["west-spot", "east-od"], [True, True]),
        ("unknown price goes after every priced replica that keeps the SLO",
         [rv("unpriced", "us-east-1", None), EAST_OD], "us-east-1", Slo(200, 20), Weights(),
         ["east-od", "unpriced"], [True, True]),
        ("no client region: price and queue only",
         [EAST_OD, WEST_SPOT], None, Slo(25, 20), Weights(), ["west-spot", "east-od"], [True, True]),
        ("no client region and a queue: the queue alone can break the SLO",
         [EAST_OD, rv("west-spot", "westus2", 0.0616, queue=1, cloud="azure")], None, Slo(25, 20), Weights(),
         ["east-od", "west-spot"], [True, False]),
        ("a region pair the table lacks never keeps the SLO and ranks last",
         [rv("mystery", "ap-south-1", 0.01), EAST_OD], "eu-west-1", Slo(200, 20), Weights(),
         ["east-od", "mystery"], [True, False]),
        ("same region uses same_region_ms",
         [rv("near", "eu-west-1", 0.9), WEST_SPOT_AWS], "eu-west-1", Slo(100, 20), Weights(),
         ["near", "west-spot-aws"], [True, False]),
        ("three replicas: two keep it, cheapest of those first, the miss last",
         [EAST_OD, WEST_SPOT, WEST_SPOT_AWS], "us-west-2", Slo(60, 20), Weights(),
         ["west-spot", "west-spot-aws", "east-od"], [True, True, False]),
        ("empty input gives an empty ranking", [], "us-east-1", Slo(), Weights(), [], []),
    ],
)
def test_rank_replicas(case: str, replicas: list[ReplicaView], client: str | None, slo: Slo, weights: Weights,
                       expected_order: list[str], expected_keeps: list[bool]) -> None:
    ranked = rank_replicas(replicas, client, TABLE, slo, weights)
    assert [r.replica.replica_id for r in ranked] == expected_order, case
    assert [r.keeps_slo for r in ranked] == expected_keeps, case
    for r in ranked:
        assert ("keeps SLO" if r.keeps_slo else "misses SLO") in r.reason
        assert r.replica.cloud in r.reason


@pytest.mark.parametrize(
    ("replica", "client", "slo", "expected"),
    [
        (rv("x", "us-east-1", 1.0, queue=0), "eu-west-1", Slo(200, 20), 68 + 20),
        (rv("x", "us-east-1", 1.0, queue=3), "eu-west-1", Slo(200, 20), 68 + 4 * 20),
        (rv("x", "eu-west-1", 1.0, queue=0), "eu-west-1", Slo(200, 5), 1 + 5),
        (rv("x", "us-east-1", 1.0, queue=2), None, Slo(200, 10), 30),
        (rv("x", "us-east-1", 1.0, queue=-5), "us-west-2", Slo(200, 10), 67 + 10),
        (rv("x", "mars-1", 1.0), "us-east-1", Slo(200, 10), math.inf),
    ],
)
def test_estimate_ms(replica: ReplicaView, client: str | None, slo: Slo, expected: float) -> None:
    assert estimate_ms(replica, client, TABLE, slo) == expected


def test_estimate_is_the_boundary_of_keeping_the_slo() -> None:
    exact = rv("x", "us-east-1", 1.0)  # 68 + 20 = 88 ms from eu-west-1
    assert rank_replicas([exact], "eu-west-1", TABLE, Slo(88, 20))[0].keeps_slo
    assert not rank_replicas([exact], "eu-west-1", TABLE, Slo(87.9, 20))[0].keeps_slo


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("eu-west-1", "eu-west-1"),
        ("eu-west-1/user-42", "eu-west-1"),
        ("  us-east-1 ", "us-east-1"),
        ("user-42", None),
        ("", None),
        (None, None),
        ("EU-WEST-1", None),
    ],
)
def test_client_region_from_key(key: str | None, expected: str | None) -> None:
    assert client_region_from_key(key, TABLE.regions) == expected


def test_rtt_table_is_symmetric_and_rejects_bad_rows() -> None:
    assert TABLE.rtt("us-west-2", "us-east-1") == TABLE.rtt("us-east-1", "us-west-2") == 67
    assert TABLE.rtt("us-east-1", "us-east-1") == 1
    assert TABLE.rtt("us-east-1", "ap-south-1") is None
    with pytest.raises(ValueError, match="twice"):
        RttTable.from_json({"pairs": [["a", "b", 1], ["b", "a", 2]]})
    with pytest.raises(ValueError, match="one region twice"):
        RttTable({("a", "a"): 1})
    with pytest.raises(ValueError, match="finite"):
        RttTable({("a", "b"): -1})
    with pytest.raises(ValueError, match=r"\[region_a, region_b, ms\]"):
        RttTable.from_json({"pairs": [["a", "b"]]})


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Slo(target_ms=0), "target_ms"),
        (lambda: Slo(target_ms=math.inf), "target_ms"),
        (lambda: Slo(service_ms=-1), "service_ms"),
        (lambda: Weights(price=-1), "price"),
        (lambda: Weights(latency=math.nan), "latency"),
    ],
)
def test_bad_slo_and_weights_are_refused(make: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()  # type: ignore[operator]


def test_shipped_table_names_its_source_and_covers_the_serving_regions() -> None:
    table = load_rtt_table()
    assert "cloudping" in table.source and "azure-network-latency" in table.source
    serving = ["us-east-1", "us-west-2", "eastus", "westus2"]
    clients = ["us-east-1", "us-west-2", "eu-west-1", "eastus", "westus2", "us-east4", "us-central1",
               "europe-west4"]
    for client in clients:
        for region in serving:
            rtt = table.rtt(client, region)
            assert rtt is not None and 0 < rtt < 300, (client, region)
    # Transatlantic is slower than within the US east coast, in the shipped data as in the world.
    far, mid, near = (table.rtt("eu-west-1", "westus2"), table.rtt("eu-west-1", "us-east-1"),
                      table.rtt("us-east-1", "eastus"))
    assert far is not None and mid is not None and near is not None
    assert far > mid > near


@pytest.mark.parametrize(
    ("data", "named"),
    [
        # Three regions listed, b-c never measured: the error names exactly that pair.
        ({"regions": ["a", "b", "c"], "pairs": [["a", "b", 10], ["a", "c", 20]]}, ["b <-> c"]),
        # A mapping of region -> description, as the shipped file has; two pairs missing.
        ({"regions": {"a": "x", "b": "y", "c": "z"}, "pairs": [["a", "b", 10]]}, ["a <-> c", "b <-> c"]),
        # A region listed with no pair at all.
        ({"regions": ["a", "b", "ap-east-1"], "pairs": [["a", "b", 10]]},
         ["a <-> ap-east-1", "ap-east-1 <-> b"]),
    ],
)
def test_rtt_table_missing_a_pair_is_an_error_naming_it(data: dict[str, object], named: list[str],
                                                        tmp_path: Path) -> None:
    path = tmp_path / "rtt.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        load_rtt_table(path)
    message = str(err.value)
    assert str(path) in message and "add each as [region_a, region_b, ms]" in message
    for pair in named:
        assert pair in message
    assert f"no round-trip time for {', '.join(named)}:" in message


def test_rtt_table_pairs_must_name_listed_regions() -> None:
    with pytest.raises(ValueError, match=r"missing from 'regions': \['c'\]"):
        RttTable.from_json({"regions": ["a", "b"], "pairs": [["a", "b", 1], ["a", "c", 2]]})


def test_rtt_table_without_a_region_list_is_taken_as_given() -> None:
    table = RttTable.from_json({"pairs": [["a", "b", 1], ["b", "c", 2]]})
    assert table.rtt("a", "c") is None
    assert "a <-> c" in table.missing_pair("a", "c")


def test_shipped_table_covers_apac_with_the_sources_figures() -> None:
    table = load_rtt_table()
    # Same-cloud pairs are the sources' own figures (mean of both directions, rounded): cloudping's
    # p50 matrix has us-east-1 <-> ap-northeast-1 at 149.4 / 149.2 ms and ap-northeast-1 <->
    # ap-southeast-1 at 70.5 / 70.7 ms; Azure's P95 table has East US <-> Japan East at 165 / 165 ms;
    # Google's dashboard has asia-northeast1 -> us-east4 at 143 ms.
    assert table.rtt("us-east-1", "ap-northeast-1") == 149
    assert table.rtt("ap-southeast-1", "ap-northeast-1") == 71
    assert table.rtt("eastus", "japaneast") == 165
    assert table.rtt("asia-northeast1", "us-east4") == 143
    # Cross-cloud Tokyo -> Virginia: the mean of the three clouds' own Tokyo <-> Virginia figures
    # ((149.3 + 165 + 143) / 3 = 152.4).
    assert table.rtt("ap-northeast-1", "eastus") == 152
    # A client in Tokyo is nearest to a Tokyo replica of any cloud, then Singapore, then the US west coast.
    for tokyo in ("ap-northeast-1", "japaneast", "asia-northeast1"):
        near, mid, far = (table.rtt("ap-northeast-1", tokyo) if tokyo != "ap-northeast-1" else 1.0,
                          table.rtt(tokyo, "ap-southeast-1"), table.rtt(tokyo, "us-west-2"))
        assert near is not None and mid is not None and far is not None
        assert near < mid < far


def test_shipped_table_pairs_every_region_it_lists() -> None:
    data = json.loads((Path(__file__).parents[1] / "ray_multicloud" / "data" / "region_rtt.json").read_text())
    table = load_rtt_table()
    assert set(data["regions"]) == table.regions
    n = len(table.regions)
    assert len(data["pairs"]) == n * (n - 1) // 2
