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


def _row(instance_id: str, cloud: str, capacity: str) -> dict[str, object]:
    """A live instance row as ``launch`` writes it, without a process (a head-like placeholder)."""
    import json
    import time

    offer = f"{cloud}/us-east-1/use1-az1/p3.2xlarge/{capacity}"
    return {"instance_id": instance_id, "cloud": cloud, "request_id": instance_id, "cluster": "c1",
            "offer_id": offer, "tags": json.dumps({"rmc-capacity": capacity, "rmc-offer": offer}),
            "bootstrap": None, "state": "running", "pid": None, "launched_at": time.time()}


def od_request(cloud: str, rid: str) -> LaunchRequest:
    from ray_multicloud.types import CapacityType

    offer = gpu_offer(cloud, "us-east-1", "use1-az1", "p3.2xlarge", CapacityType.ON_DEMAND)
    return LaunchRequest(RequestId(rid), "c1", "gpu", offer, {}, None)


def test_withdrawn_spot_preempts_spot_instances_and_refuses_spot_launches_until_given_back(
    tmp_path: Path,
) -> None:
    gcp = LocalCloud("gcp", tmp_path)
    gcp.state.insert(_row("gcp-spot1", "gcp", "spot"))
    gcp.state.insert(_row("gcp-od1", "gcp", "on-demand"))
    gcp.state.insert(_row("aws-spot1", "aws", "spot"))  # another cloud's spot is not this cloud's

    assert gcp.withdraw("c1", "spot", notice_s=5.0) == ["gcp-spot1"]
    assert [i.instance_id for i in gcp.list("c1")] == ["gcp-od1"]
    assert gcp.state.get("gcp-spot1")["end_reason"] == "preempted"  # type: ignore[index]

    # Seen by every process sharing the state: spot is refused as "no capacity" ...
    monitor_view = LocalCloud("gcp", tmp_path, exhausted_offers=frozenset(
        {od_request("gcp", "x").offer.offer_id}))
    with pytest.raises(CapacityError) as err:
        monitor_view.launch(request("gcp", "r1"))
    assert err.value.code == "InsufficientInstanceCapacity"
    assert "simulated shortage" in str(err.value)
    # ... on-demand gets past the shortage (and fails here only on the offer this test exhausted).
    with pytest.raises(CapacityError) as od:
        monitor_view.launch(od_request("gcp", "r2"))
    assert "simulated shortage" not in str(od.value)
    # ... and another cloud's spot market is untouched.
    assert LocalCloud("aws", tmp_path).state.withdrawn_until("aws", "spot") is None

    gcp.give_back("spot")
    assert monitor_view.state.withdrawn_until("gcp", "spot") is None


def test_a_spot_shortage_ends_by_itself_and_must_last(tmp_path: Path) -> None:
    gcp = LocalCloud("gcp", tmp_path, exhausted_offers=frozenset({request("gcp", "x").offer.offer_id}))
    gcp.state.set_withdrawn_until("gcp", "spot", 1.0)  # ended long ago
    with pytest.raises(CapacityError) as err:
        gcp.launch(request("gcp", "r1"))
    assert "simulated shortage" not in str(err.value)  # past the shortage check
    with pytest.raises(ValueError, match="down_s"):
        gcp.withdraw("c1", down_s=0.0)
