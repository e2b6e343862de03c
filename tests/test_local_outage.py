"""A simulated cloud outage on the local cloud refuses launches for its duration, from every process
that shares the cluster's state directory (ray_multicloud/clouds/local/__init__.py ``LocalCloud.outage``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloud_factories import gpu_offer

from ray_multicloud.clouds.base import LaunchRequest
from ray_multicloud.clouds.local import LocalCloud
from ray_multicloud.errors import CapacityError
from ray_multicloud.types import RequestId


def request(cloud: str, rid: str) -> LaunchRequest:
    offer = gpu_offer(cloud, "us-east-1", "use1-az1", "p3.2xlarge")
    return LaunchRequest(RequestId(rid), "c1", "gpu", offer, {}, None)


def test_outage_refuses_launches_on_that_cloud_only_until_restored(tmp_path: Path) -> None:
    azure = LocalCloud("azure", tmp_path)
    assert azure.outage("c1", down_s=600.0) == []  # no live instance: nothing to preempt

    # The autoscaler's provider holds its own LocalCloud object on the same state: it sees the outage.
    monitor_view = LocalCloud("azure", tmp_path)
    with pytest.raises(CapacityError) as err:
        monitor_view.launch(request("azure", "r1"))
    assert err.value.code == "ServiceUnavailable"
    assert "outage" in str(err.value)
    assert monitor_view.state.live(cloud="azure") == []  # nothing half-launched

    # Another cloud of the same cluster is not down: it gets past the outage check (and fails here
    # only on the capacity this test took away from it).
    aws = LocalCloud("aws", tmp_path, exhausted_offers=frozenset({request("aws", "x").offer.offer_id}))
    with pytest.raises(CapacityError) as other:
        aws.launch(request("aws", "r2"))
    assert other.value.code == "InsufficientInstanceCapacity"

    azure.restore()
    assert monitor_view.state.down_until("azure") is None


def test_an_outage_without_duration_leaves_launches_open(tmp_path: Path) -> None:
    azure = LocalCloud("azure", tmp_path)
    azure.outage("c1")
    assert azure.state.down_until("azure") is None


def test_an_outage_ends_by_itself(tmp_path: Path) -> None:
    azure = LocalCloud("azure", tmp_path, exhausted_offers=frozenset({request("azure", "x").offer.offer_id}))
    azure.state.set_down_until("azure", 1.0)  # ended long ago
    with pytest.raises(CapacityError) as err:
        azure.launch(request("azure", "r1"))
    assert err.value.code == "InsufficientInstanceCapacity"  # past the outage check
