"""End to end on the local simulated multi-cloud: two Serve replicas on two clouds, routed by cost and
latency, and a price-driven move of one replica's node under load with zero failed requests.

Expected routing (SLO 100 ms, 10 ms per request; RTTs from ray_multicloud/data/region_rtt.json):
the pool places aws us-east-1 on-demand ($0.526/h) and azure westus2 spot ($0.0616/h).
- client eu-west-1: westus2 is 130 + 10 ms (misses), us-east-1 68 + 10 ms (keeps) -> aws us-east-1
- client us-west-2: both keep the SLO -> the cheaper, azure westus2
- no client region: both keep -> azure westus2
After the price of azure westus2 spot spikes, the node moves to azure eastus spot ($0.0627/h), which
keeps the SLO from eu-west-1 (75 + 10 ms): eu-west-1 clients follow the cheaper replica there.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

pytestmark = pytest.mark.e2e

SLO_MS = 100.0
SERVICE_MS = 10.0


def ask(port: int, region: str | None) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/", headers={"x-session-id": region} if region else {})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body[:300]
        data: dict[str, str] = json.loads(body)
        return data
    finally:
        conn.close()


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, int]]:
    import ray
    from ray import serve

    from ray_multicloud.scenarios.local_cluster import LocalCluster, free_port
    from ray_multicloud.scenarios.serve_migration import (
        cluster_overrides,
        serve_start,
        serving_nodes,
        wait_steady,
        where_am_i_deployment,
    )
    from ray_multicloud.serve.ranking import Slo
    from ray_multicloud.serve.spread import multicloud_deployment_options

    workdir: Path = tmp_path_factory.mktemp("serve_e2e")
    with LocalCluster(workdir=workdir, overrides=cluster_overrides(replicas=2)) as cluster:
        cluster.connect()
        try:
            cluster.wait_for(lambda: len([n for n in serving_nodes(cluster) if n.ray_node_id]) >= 2,
                             timeout_s=120)
            port = free_port()
            serve_start(port)
            options = multicloud_deployment_options(
                replicas=2, slo=Slo(SLO_MS, SERVICE_MS), state_dir=str(cluster.state_dir))
            serve.run(where_am_i_deployment(options, work_ms=5), route_prefix="/")
            wait_steady(2, timeout_s=90)
            yield cluster, port
        finally:
            try:
                serve.shutdown()
            finally:
                ray.shutdown()


def test_replicas_span_two_clouds_with_one_on_demand(serving: tuple[object, int]) -> None:
    from ray_multicloud.scenarios.serve_migration import serving_nodes

    cluster, port = serving
    offers = sorted(n.offer_id for n in serving_nodes(cluster))
    assert len(offers) == 2, offers
    assert offers[0].startswith("aws/us-east-1/") and offers[0].endswith("/g4dn.xlarge/on-demand"), offers
    assert offers[1] == "azure/westus2/-/Standard_NC4as_T4_v3/spot", offers
    # The router learns each replica's queue by probing (in the background for all but its first
    # rank); a router that has just started counts an unprobed replica as full beside a probed one,
    # so let one request per client and a second pass for those probes before judging the routing.
    for r in ("eu-west-1", "us-west-2"):
        ask(port, r)
    time.sleep(2.0)
    served = {(d["cloud"], d["market"]) for d in (ask(port, r) for r in ("eu-west-1", "us-west-2"))}
    assert served == {("aws", "on-demand"), ("azure", "spot")}


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("eu-west-1", ("aws", "us-east-1")),  # the cheap replica misses the SLO from Europe
        ("eu-west-1/session-7", ("aws", "us-east-1")),  # region carried in a session id
        ("us-west-2", ("azure", "westus2")),  # both keep it: cheapest
        (None, ("azure", "westus2")),  # no client region: cheapest
        ("nowhere-1", ("azure", "westus2")),  # unknown region: treated as none
    ],
)
def test_router_sends_each_client_to_the_cheapest_replica_that_keeps_the_slo(
        serving: tuple[object, int], client: str | None, expected: tuple[str, str]) -> None:
    _, port = serving
    got = [ask(port, client) for _ in range(6)]
    assert {(d["cloud"], d["region"]) for d in got} == {expected}


def test_price_move_under_load_fails_no_request(serving: tuple[object, int]) -> None:
    from ray_multicloud.scenarios.loadtest import LoadGenerator, summarise
    from ray_multicloud.scenarios.serve_migration import price_move, serving_nodes, wait_steady

    cluster, port = serving
    spot = next(n for n in serving_nodes(cluster) if n.cloud == "azure")
    load = LoadGenerator(port, rate_per_s=8, duration_s=75, client_regions=["eu-west-1", "us-west-2", None],
                         threads=6).start()
    try:
        time.sleep(3)
        load.set_phase("move")
        result = price_move(cluster, spot.instance_id, spike_to=5.0, drain_deadline_s=30)
        assert result.ok, result
        assert result.move.to_offer.offer_id == "azure/eastus/-/Standard_NC4as_T4_v3/spot", result.move
        wait_steady(2, timeout_s=60)
        time.sleep(2)  # the router re-reads the price board and node table within a few seconds
        load.set_phase("after")
        time.sleep(8)
    finally:
        load.stop()
        load.join()
    samples = load.samples
    failed = [s for s in samples if not s.ok]
    assert len(samples) > 100
    assert failed == [], failed[:5]
    assert spot.instance_id not in {n.instance_id for n in serving_nodes(cluster)}
    after = [s for s in samples if s.phase == "after"]
    assert after, summarise(samples)
    # eu-west-1 now keeps the SLO on the cheap replica in azure eastus (75 + 10 ms <= 100 ms).
    assert {(s.body["cloud"], s.body["region"]) for s in after if s.client_region == "eu-west-1"} == {
        ("azure", "eastus")}
    no_region = {(s.body["cloud"], s.body["region"]) for s in after if s.client_region == ""}
    assert no_region == {("azure", "eastus")}
