"""The node provider against in-memory clouds: placement, failover with cooldown, tags, restart, config errors.

The clouds sell the real shipped catalog's offers (the local YAML's ``prices_from``), so "cheapest"
below is what the policy computes on real prices, not a literal.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from fakes.memory_cloud import MemoryCloud, MemoryWorld, memory_cluster
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    TAG_RAY_LAUNCH_REQUEST,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)

from ray_multicloud.clouds.base import REQUIRED_TAGS, TAG_OFFER, CloudFeatures
from ray_multicloud.cluster_config.cluster import check_cluster
from ray_multicloud.errors import CapacityError, ConfigError, LaunchFailed
from ray_multicloud.policy import place
from ray_multicloud.provider import MultiCloudNodeProvider
from ray_multicloud.types import Decision

CONFIG = Path(__file__).resolve().parent.parent / "cluster_configs" / "local-multicloud.yaml"
T4_RESOURCES = {"CPU": 1.0, "GPU": 1.0, "accelerator_type:T4": 1.0}

# A cloud the offer book only asks what it can do: nothing beyond the protocol (catalog offers).
_NO_FEATURES = SimpleNamespace(features=CloudFeatures())


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld]]:
    with memory_cluster(tmp_path) as (config, world):
        yield config, world


@pytest.fixture
def cluster(memory: tuple[dict[str, Any], MemoryWorld]) -> dict[str, Any]:
    return memory[0]


@pytest.fixture
def world(memory: tuple[dict[str, Any], MemoryWorld]) -> MemoryWorld:
    return memory[1]


def provider_of(config: dict[str, Any], world: MemoryWorld) -> MultiCloudNodeProvider:
    """A provider on ``world``'s clouds; a second one on the same world is a restarted provider."""
    return MultiCloudNodeProvider(
        copy.deepcopy(config["provider"]), config["cluster_name"], clouds=world.clouds(config)
    )


def worker_tags(node_type: str, request: str = "req-1") -> dict[str, str]:
    return {TAG_RAY_NODE_KIND: NODE_KIND_WORKER, TAG_RAY_USER_NODE_TYPE: node_type,
            TAG_RAY_LAUNCH_REQUEST: request}


def launch(provider: MultiCloudNodeProvider, config: dict[str, Any], node_type: str, count: int = 1,
           request: str = "req-1") -> dict[str, Any]:
    spec = config["available_node_types"][node_type]
    created: dict[str, Any] = provider.create_node_with_resources_and_labels(
        spec["node_config"], worker_tags(node_type, request), count, spec["resources"], spec.get("labels", {}))
    return created


def expected_first_choice(provider: MultiCloudNodeProvider, node_type: str) -> str:
    targets = check_cluster(_config_of(provider), clouds=provider.clouds)
    decision = place(targets[node_type], 1, provider.offers.index(), (), now=0.0)  # type: ignore[arg-type]
    assert isinstance(decision, Decision)
    return decision.placements[0].offer.offer_id


def _config_of(provider: MultiCloudNodeProvider) -> dict[str, Any]:
    config = yaml.safe_load(CONFIG.read_text())
    config["provider"] = copy.deepcopy(provider.provider_config)
    return config


def test_worker_lands_on_the_offer_the_policy_ranks_first(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    provider = provider_of(cluster, world)
    want = expected_first_choice(provider, "t4_spot")
    created = launch(provider, cluster, "t4_spot")
    (node_id,) = created
    tags = provider.node_tags(node_id)
    assert tags[TAG_OFFER] == want
    assert want.endswith("/spot")
    for key in REQUIRED_TAGS:
        assert tags[key], key
    assert provider.non_terminated_nodes({TAG_RAY_USER_NODE_TYPE: "t4_spot"}) == [node_id]


def test_private_pool_first_then_burst_to_public_on_demand(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    provider = provider_of(cluster, world)
    first = launch(provider, cluster, "a100_ondemand", request="r1")
    second = launch(provider, cluster, "a100_ondemand", request="r2")
    (a,), (b,) = first, second
    assert provider.node_tags(a)[TAG_OFFER].startswith("onprem/")
    # The private pool has one machine: the second node bursts to the cheapest public on-demand A100.
    burst = provider.node_tags(b)[TAG_OFFER]
    assert not burst.startswith("onprem/") and burst.endswith("/on-demand")


def test_capacity_failure_falls_back_and_cools_the_offer_down(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    provider = provider_of(cluster, world)
    cheapest = expected_first_choice(provider, "t4_spot")
    cloud = provider.clouds[cheapest.split("/")[0]]
    assert isinstance(cloud, MemoryCloud)
    cloud.exhausted.add(cheapest)
    (node_id,) = launch(provider, cluster, "t4_spot", request="r1")
    landed = provider.node_tags(node_id)[TAG_OFFER]
    assert landed != cheapest
    assert cloud.launch_calls.count(cheapest) == 1
    # Within the cooldown the exhausted offer is not tried again.
    launch(provider, cluster, "t4_spot", request="r2")
    assert cloud.launch_calls.count(cheapest) == 1


def test_one_shot_launch_error_fails_over_to_the_next_offer_and_is_consumed(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    # first choice (next_launch_error: CapacityError) -> the next offer (ok); the fault is spent
    provider = provider_of(cluster, world)
    cheapest = expected_first_choice(provider, "t4_spot")
    world.next_launch_error = CapacityError(
        cheapest.split("/")[0], "no capacity, once", offer_id=cheapest, code="InsufficientInstanceCapacity"
    )
    (node_id,) = launch(provider, cluster, "t4_spot", request="r1")
    landed = provider.node_tags(node_id)[TAG_OFFER]
    assert landed != cheapest
    assert world.launch_calls == [cheapest, landed]
    assert world.next_launch_error is None
    # The next launch of another pool is not failed by it.
    (other,) = launch(provider, cluster, "a100_ondemand", request="r2")
    assert world.launch_calls[-1] == provider.node_tags(other)[TAG_OFFER]
    assert len(world.launch_calls) == 3


def test_every_candidate_failing_raises_launch_failed_and_leaks_nothing(
    cluster: dict[str, Any], world: MemoryWorld
) -> None:
    provider = provider_of(cluster, world)
    for cloud in provider.clouds.values():
        if isinstance(cloud, MemoryCloud):
            cloud.exhausted.update(o.offer_id for o in provider.offers.index().offers_for("T4"))
    with pytest.raises(LaunchFailed, match="t4_spot"):
        launch(provider, cluster, "t4_spot")
    assert provider.non_terminated_nodes({}) == []


def test_restarted_provider_rebuilds_its_fleet_from_tags(cluster: dict[str, Any], world: MemoryWorld) -> None:
    first = provider_of(cluster, world)
    created = launch(first, cluster, "t4_spot", count=2)
    second = provider_of(cluster, world)
    assert sorted(second.non_terminated_nodes({})) == sorted(created)
    fleet = second.fleet()
    assert {n.instance_id for n in fleet} == set(created)
    assert all(n.pool == "t4_spot" for n in fleet)
    for node_id in created:
        second.terminate_node(node_id)
    assert provider_of(cluster, world).non_terminated_nodes({}) == []


def test_launch_is_idempotent_by_request_id(cluster: dict[str, Any], world: MemoryWorld) -> None:
    """A request repeated by a restarted provider (the monitor restarted mid-launch) finds the
    nodes its predecessor launched: each node's key is request + node type + index."""
    a = launch(provider_of(cluster, world), cluster, "t4_spot", count=2, request="same")
    b = launch(provider_of(cluster, world), cluster, "t4_spot", count=2, request="same")
    assert sorted(a) == sorted(b) and len(a) == 2 and len(world.instances) == 2


def test_retry_of_a_failed_launch_reuses_its_keys(cluster: dict[str, Any], world: MemoryWorld) -> None:
    """The first attempt's second node fails on every offer; the retry under the same request id
    gets the first node back (not a twin) and launches the second: two nodes in all."""
    provider = provider_of(cluster, world)
    real = {name: cloud.launch for name, cloud in provider.clouds.items()}
    failing = True

    def fail_second(name: str) -> Any:
        def launch_(request: Any) -> Any:
            if failing and request.request_id.endswith("-1"):
                raise CapacityError(name, "no capacity", offer_id=request.offer.offer_id)
            return real[name](request)
        return launch_

    for name, cloud in provider.clouds.items():
        cloud.launch = fail_second(name)  # type: ignore[method-assign]
    with pytest.raises(LaunchFailed):
        launch(provider, cluster, "t4_spot", count=2, request="r")
    assert len(world.instances) == 1
    failing = False
    provider._cooldowns.clear()
    created = launch(provider, cluster, "t4_spot", count=2, request="r")
    assert len(created) == 2 and set(created) == set(world.instances)


def test_a_node_of_another_pool_is_never_counted(cluster: dict[str, Any], world: MemoryWorld) -> None:
    """A driver whose dedupe answers with another pool's node (a key collision) does not make
    the launch look done: the launch fails, naming the node, and no node is counted."""
    provider = provider_of(cluster, world)
    other = launch(provider, cluster, "a100_ondemand", request="x")
    (stranger,) = other.values()
    for cloud in provider.clouds.values():
        cloud.launch = lambda request: stranger  # type: ignore[method-assign]
    with pytest.raises(LaunchFailed, match=f"returned {stranger.instance_id}, which belongs to pool"):
        launch(provider, cluster, "t4_spot", request="y")


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["available_node_types"]["t4_spot"]["node_config"]["pool"].update(accelerator="T5"),
         "available_node_types.t4_spot.node_config.pool.accelerator"),
        (lambda c: c["available_node_types"]["t4_spot"]["node_config"]["pool"].update(regionz=["eu-*"]),
         "available_node_types.t4_spot.node_config.pool.regionz"),
        (lambda c: c["available_node_types"]["t4_spot"]["node_config"]["pool"].update(max_price_per_hour=0.01),
         "available_node_types.t4_spot.node_config.pool.max_price_per_hour"),
        (lambda c: c["available_node_types"]["t4_spot"]["labels"].update({"ray.io/market-type": "on-demand"}),
         "available_node_types.t4_spot.labels.ray.io/market-type"),
        (lambda c: c["available_node_types"]["head"]["node_config"].pop("offer"),
         "available_node_types.head.node_config"),
        (lambda c: c["provider"].pop("gcs_address"), "provider.gcs_address"),
        (lambda c: c["provider"]["clouds"]["aws"].update(driver="ibm"), "provider.clouds.aws.driver"),
    ],
)
def test_config_errors_name_the_key(
    cluster: dict[str, Any], world: MemoryWorld, mutate: Any, key: str
) -> None:
    config = copy.deepcopy(cluster)
    mutate(config)
    with pytest.raises(ConfigError) as info:
        check_cluster(config, clouds=world.clouds(config))
    assert info.value.key.startswith(key), str(info.value)


def test_ledger_records_launches_price_moves_and_ends(
    cluster: dict[str, Any], world: MemoryWorld, tmp_path: Path
) -> None:
    from ray_multicloud.ledger import Ledger
    from ray_multicloud.pricing.board import PriceBoard

    cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
    provider = provider_of(cluster, world)
    a, b = launch(provider, cluster, "t4_spot", count=2)
    offer_a = provider.offers.get(provider.node_tags(a)[TAG_OFFER])
    assert offer_a is not None
    # The spot price of a's offer doubles; the provider notices on its next look at the fleet.
    PriceBoard(tmp_path).set(offer_a.offer_id, offer_a.price_per_hour * 2)
    provider.non_terminated_nodes({})
    provider.terminate_node(a)
    # b vanishes without a terminate call, as a preempted spot VM does; the ledger ends it once it
    # has been missing from three listings in a row (no grace time here).
    provider.missing_grace_s = 0.0
    provider.clouds[b.split("-")[0]].terminate(b)
    for _ in range(3):
        provider.non_terminated_nodes({})

    rows = {r.instance_id: r for r in Ledger(tmp_path / "ledger.db").spend()}
    assert set(rows) == {a, b}
    assert rows[a].end_reason == "terminated by the provider (scale-down or teardown)"
    assert (rows[b].end_reason or "").startswith("ended outside the provider (preempted or lost)")
    assert rows[a].price_per_hour == pytest.approx(offer_a.price_per_hour * 2)
    assert rows[a].ondemand_price_per_hour == pytest.approx(offer_a.ondemand_price_per_hour)


def test_live_prices_overlay_the_catalog_and_go_stale_when_the_feed_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.price_servers import FakeAwsPrices

    from ray_multicloud.cluster_config.provider_section import load_settings
    from ray_multicloud.policy.place import describe_offer
    from ray_multicloud.provider import OfferBook

    # boto3's standard chain finds these; the feed never sees them any other way.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with FakeAwsPrices() as fake:
        section = {
            "gcs_address": "127.0.0.1:1", "state_dir": str(tmp_path), "price_ttl_seconds": 0,
            "clouds": {"aws": {"driver": "aws", "regions": ["us-east-1"], "prices_endpoint": fake.url}},
        }
        # The fake's quotes carry 2022 timestamps: with the default max age they are too old to trust.
        aged = OfferBook(load_settings(section, "live"), {"aws": _NO_FEATURES})  # type: ignore[dict-item]
        old = aged.get("aws/us-east-1/use1-az2/g5.xlarge/spot")
        assert old is not None and old.price_per_hour == 0.3387 and old.stale
        assert "stale price" in describe_offer(old) and "2022-05-31" in describe_offer(old)

        settings = load_settings({**section, "max_price_age_seconds": 10**10}, "live")
        book = OfferBook(settings, {"aws": _NO_FEATURES})  # type: ignore[dict-item]
        book.index()
        live = book.get("aws/us-east-1/use1-az2/g5.xlarge/spot")
        assert live is not None and live.price_per_hour == 0.3387 and not live.stale
        assert live.source.startswith("live:") and live.as_of is not None

        fake.fail = True
        book.index()
        stale = book.get("aws/us-east-1/use1-az2/g5.xlarge/spot")
        assert stale is not None and stale.stale and stale.price_per_hour == 0.3387
        assert "stale price" in describe_offer(stale)


def test_controller_tick_publishes_cost_figures_from_the_ledger(
    cluster: dict[str, Any], world: MemoryWorld, tmp_path: Path
) -> None:
    from ray_multicloud.controller import Controller
    from ray_multicloud.policy.rebalance import RebalanceConfig

    cluster["provider"]["ledger"] = str(tmp_path / "ledger.db")
    provider = provider_of(cluster, world)
    created = launch(provider, cluster, "t4_spot", count=2)
    controller = Controller(cluster, config=RebalanceConfig(), provider=provider)
    assert controller.tick() == []  # the nodes already sit on the cheapest offers: nothing to move
    figures = controller.figures
    assert figures is not None and figures.running_nodes == 2
    prices = [provider.offers.get(provider.node_tags(n)[TAG_OFFER]) for n in created]
    assert figures.cost_per_hour == pytest.approx(sum(o.price_per_hour for o in prices if o))
    assert figures.ondemand_cost_per_hour == pytest.approx(sum(o.ondemand_price_per_hour for o in prices if o))
