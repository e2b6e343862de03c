"""The AWS driver finds the cluster's instances in every region, whatever ``regions`` says (issue 13, #2).

A provider that launched into a region outside ``regions`` (or with ``regions`` unset) and then
restarted, or the ``ray down`` client (a fresh process), must still list and end those instances;
otherwise EC2 keeps billing for machines nothing knows about. Run against moto's EC2 server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from cloud_factories import ENABLED_REGIONS, aws_session, gpu_offer, moto_server
from test_cloud_contract import make_request

from ray_multicloud.clouds.aws import AwsCloud
from ray_multicloud.types import NodeState


class _Target:
    name = "aws"
    gcs_address = "10.0.0.1:6379"


CLUSTER = "contract"  # make_request's cluster


@pytest.fixture
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def aws(endpoint: str, regions: tuple[str, ...] = (), session: Any = None) -> AwsCloud:
    """A fresh driver: a new process's view (no memory of where an earlier one launched)."""
    return AwsCloud(
        "aws", regions=regions, image_id="ami-12345678", endpoint_url=endpoint,
        session=session or aws_session(), sleep=lambda _s: None,
    )


def launch_in(cloud: AwsCloud, region: str, zone: str, request_id: str) -> str:
    offer = gpu_offer("aws", region, zone, "p3.2xlarge")
    return str(cloud.launch(make_request(_Target(), offer, request_id=request_id)).instance_id)  # type: ignore[arg-type]


def live_ids(cloud: AwsCloud, cluster: str) -> set[str]:
    return {str(i.instance_id) for i in cloud.list(cluster) if i.state is not NodeState.TERMINATED}


@pytest.mark.parametrize("regions", [(), ("us-east-1",)], ids=["regions-unset", "regions-us-east-1"])
def test_a_restarted_driver_lists_and_ends_instances_in_any_region(
    endpoint: str, regions: tuple[str, ...]
) -> None:
    first = aws(endpoint, regions)
    a = launch_in(first, "eu-west-1", "eu-west-1a", "req-eu")
    b = launch_in(first, "eu-west-1", "eu-west-1b", "req-eu-b")
    cluster = CLUSTER
    assert live_ids(first, cluster) == {a, b}
    assert first.list_regions() == sorted(ENABLED_REGIONS)  # the account's regions (cloud_factories)

    restarted = aws(endpoint, regions)  # the restarted autoscaler, or `ray down`
    assert live_ids(restarted, cluster) == {a, b}
    for node in (a, b):
        restarted.terminate(node)  # type: ignore[arg-type]
    assert live_ids(aws(endpoint, regions), cluster) == set()


def test_describe_regions_refused_is_said_once_and_listing_goes_on(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = aws_session()

    def refuse(**kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        error = {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}
        raise ClientError(error, "DescribeRegions")  # type: ignore[arg-type]

    session.events.register("before-call.ec2.DescribeRegions", refuse)
    cloud = aws(endpoint, ("us-east-1",), session=session)
    a = launch_in(cloud, "us-east-1", "us-east-1a", "req-home")
    cluster = CLUSTER
    with caplog.at_level(logging.ERROR, logger="ray_multicloud.clouds.aws"):
        assert live_ids(cloud, cluster) == {a}
        assert live_ids(cloud, cluster) == {a}
    said = [r for r in caplog.records if "DescribeRegions" in r.getMessage()]
    assert len(said) == 1 and "ec2:DescribeRegions" in said[0].getMessage()

