"""The contract suite: every driver in ``cloud_factories.CLOUDS`` keeps every contract written in
the docstring of ``ray_multicloud/clouds/base.py``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_factories import CLOUDS, CloudTarget

from ray_multicloud.clouds.base import (
    REQUIRED_TAGS,
    TAG_CAPACITY,
    TAG_CLOUD,
    TAG_CLUSTER,
    TAG_OFFER,
    TAG_POOL,
    TAG_REQUEST,
    Cloud,
    LaunchRequest,
    RayBootstrap,
)
from ray_multicloud.errors import CapacityError, InstanceNotFound
from ray_multicloud.types import NodeState, Offer, RequestId

_ids = itertools.count()


@pytest.fixture(params=[pytest.param(name, marks=list(case.marks)) for name, case in CLOUDS.items()])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CloudTarget]:
    with CLOUDS[request.param].factory(tmp_path) as made:
        yield made


def make_request(
    target: CloudTarget,
    offer: Offer,
    *,
    cluster: str = "contract",
    pool: str = "gpu",
    request_id: str | None = None,
) -> LaunchRequest:
    rid = RequestId(request_id or f"req-{next(_ids):04d}")
    tags = {
        TAG_CLUSTER: cluster,
        TAG_POOL: pool,
        TAG_OFFER: offer.offer_id,
        TAG_REQUEST: rid,
        TAG_CLOUD: offer.cloud,
        TAG_CAPACITY: offer.capacity.value,
        "ray-node-kind": "worker",
        "ray-user-node-type": pool,
    }
    bootstrap = RayBootstrap(
        gcs_address=target.gcs_address,
        node_type=pool,
        resources={"GPU": offer.accelerator_count, "gpu_pool": 1.0},
        labels={"rmc/pool": pool, "rmc/cloud": offer.cloud},
    )
    return LaunchRequest(
        request_id=rid,
        cluster=cluster,
        pool=pool,
        offer=offer,
        tags=tags,
        bootstrap=bootstrap,
    )


def test_driver_satisfies_protocol(target: CloudTarget) -> None:
    assert isinstance(target.cloud, Cloud)
    assert target.cloud.name


def test_launch_tags_every_required_key(target: CloudTarget) -> None:
    request = make_request(target, target.offer)
    inst = target.cloud.launch(request)
    assert inst.state in (NodeState.PENDING, NodeState.RUNNING)
    assert inst.cloud == target.cloud.name
    for key in REQUIRED_TAGS:
        assert inst.tags.get(key) == request.tags[key], key
    got = target.cloud.get(inst.instance_id)
    assert got is not None
    assert {k: got.tags.get(k) for k in request.tags} == dict(request.tags)


def test_launch_is_idempotent_by_request_id(target: CloudTarget) -> None:
    request = make_request(target, target.offer)
    first = target.cloud.launch(request)
    second = target.cloud.launch(request)
    assert second.instance_id == first.instance_id
    mine = [i for i in target.cloud.list(request.cluster) if i.tags.get(TAG_REQUEST) == request.request_id]
    assert [i.instance_id for i in mine] == [first.instance_id]


def test_list_returns_cluster_instances_including_pending(target: CloudTarget) -> None:
    a = target.cloud.launch(make_request(target, target.offer, cluster="list-a", pool="p1"))
    b = target.cloud.launch(make_request(target, target.offer, cluster="list-a", pool="p2"))
    other = target.cloud.launch(make_request(target, target.offer, cluster="list-b"))
    listed = {i.instance_id: i for i in target.cloud.list("list-a")}
    assert set(listed) == {a.instance_id, b.instance_id}
    assert all(i.state is not NodeState.TERMINATED for i in listed.values())
    assert [i.instance_id for i in target.cloud.list("list-b")] == [other.instance_id]
    assert target.cloud.list("no-such-cluster") == []


def test_terminate_is_idempotent_and_get_returns_none(target: CloudTarget) -> None:
    request = make_request(target, target.offer, cluster="term")
    inst = target.cloud.launch(request)
    target.cloud.terminate(inst.instance_id)
    target.cloud.terminate(inst.instance_id)
    target.cloud.terminate(target.unknown_id)
    assert target.cloud.get(inst.instance_id) is None
    assert inst.instance_id not in {i.instance_id for i in target.cloud.list("term")}


def test_get_unknown_returns_none(target: CloudTarget) -> None:
    assert target.cloud.get(target.unknown_id) is None


def test_set_tags_merges(target: CloudTarget) -> None:
    request = make_request(target, target.offer)
    inst = target.cloud.launch(request)
    target.cloud.set_tags(inst.instance_id, {"ray-node-status": "up-to-date", TAG_POOL: request.pool})
    target.cloud.set_tags(inst.instance_id, {"extra": "1"})
    got = target.cloud.get(inst.instance_id)
    assert got is not None
    assert got.tags["ray-node-status"] == "up-to-date"
    assert got.tags["extra"] == "1"
    for key in REQUIRED_TAGS:
        assert got.tags[key] == request.tags[key]


def test_set_tags_on_gone_instance_raises_not_found(target: CloudTarget) -> None:
    with pytest.raises(InstanceNotFound):
        target.cloud.set_tags(target.unknown_id, {"x": "1"})
    inst = target.cloud.launch(make_request(target, target.offer))
    target.cloud.terminate(inst.instance_id)
    with pytest.raises(InstanceNotFound):
        target.cloud.set_tags(inst.instance_id, {"x": "1"})


def test_no_capacity_is_a_typed_error_and_leaks_nothing(target: CloudTarget) -> None:
    if target.exhaust is None:
        pytest.skip("this driver cannot be made to run out of capacity")
    target.exhaust(target.offer)
    request = make_request(target, target.offer, cluster="cap")
    with pytest.raises(CapacityError) as info:
        target.cloud.launch(request)
    assert info.value.offer_id == target.offer.offer_id
    assert info.value.code
    assert target.cloud.list("cap") == []
    if target.other_offer is not None:
        # The same request on the next offer succeeds: the exhausted zone poisoned nothing.
        retry = LaunchRequest(
            request_id=request.request_id,
            cluster="cap",
            pool=request.pool,
            offer=target.other_offer,
            tags={**request.tags, TAG_OFFER: target.other_offer.offer_id},
            bootstrap=request.bootstrap,
        )
        inst = target.cloud.launch(retry)
        assert inst.tags[TAG_OFFER] == target.other_offer.offer_id


def test_declared_features_hold(target: CloudTarget) -> None:
    """What a driver declares in ``CloudFeatures`` is what the provider relies on (it never asks the
    class): its own offers come from ``offers()``, local commands need a local instance home."""
    from ray_multicloud.clouds.base import SellsFixedOffers
    from ray_multicloud.clouds.local import LocalCloud

    cloud = target.cloud
    f = cloud.features
    assert f.own_offers == isinstance(cloud, SellsFixedOffers)
    assert f.local_commands == isinstance(cloud, LocalCloud)
    if f.own_offers:
        assert all(o.cloud == cloud.name for o in cloud.offers())  # type: ignore[attr-defined]
    if f.fixed_capacity:
        assert f.own_offers and not f.spot
