"""The EC2 fault fake answers as EC2 does, over botocore's HTTP path (issue 16 item 3): the error
envelope of the vendor example ``tests/data/api_examples/aws/ec2-query-api-error-response
.doc-example.xml`` with the code's HTTP status, parsed by botocore and seen by its retry handler.
What it shows about the driver: capacity answers reach it after one HTTP request (its RunInstances
client has botocore's retries off), so it can fall back to another zone at once; throttling is
still retried, by the driver."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
from cloud_factories import aws_session, gpu_offer, moto_server
from fakes.aws_faults import Ec2Faults, error_response_xml
from test_cloud_contract import make_request

from ray_multicloud.clouds.aws import AwsCloud
from ray_multicloud.errors import CapacityError

EXAMPLE = (
    Path(__file__).parent / "data" / "api_examples" / "aws" / "ec2-query-api-error-response.doc-example.xml"
)


class Target:
    gcs_address = "10.8.0.1:6379"


def request_for(offer: Any) -> Any:
    return make_request(Target(), offer)  # type: ignore[arg-type]


def test_error_envelope_has_the_documented_shape() -> None:
    import re
    import xml.etree.ElementTree as ET

    def shape(root: ET.Element) -> list[str]:
        return [el.tag for el in root.iter()]

    documented = ET.fromstring(re.sub(r"\s+", "", EXAMPLE.read_text()))
    ours = ET.fromstring(
        error_response_xml("InsufficientInstanceCapacity", "m", "89b1215c").decode().split("\n", 1)[1]
    )
    assert shape(ours) == shape(documented) == ["Response", "Errors", "Error", "Code", "Message", "RequestID"]


def test_capacity_error_is_parsed_by_botocore_from_the_http_reply() -> None:
    faults = Ec2Faults(zones={"use1-az1": "InsufficientInstanceCapacity"})
    with moto_server() as endpoint:
        cloud = AwsCloud(
            image_id="ami-12345678", endpoint_url=endpoint, session=aws_session(faults), sleep=lambda _s: None
        )
        with pytest.raises(CapacityError) as info:
            cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    assert info.value.code == "InsufficientInstanceCapacity"
    assert "sufficient p3.2xlarge capacity in the Availability Zone" in str(info.value)  # from the XML body, via botocore's parser
    assert faults.http_attempts == [("use1-az1", "InsufficientInstanceCapacity")]


@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_insufficient_capacity_is_not_retried_by_botocore(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Issue 13: with botocore's own retry settings (standard: 3 attempts, legacy: 5), a 500
    InsufficientInstanceCapacity used to be sent 3 or 5 times, with waits, before the driver could
    try another zone. The driver's RunInstances client has botocore's retries off: one HTTP
    request, then CapacityError, and no wait."""
    import botocore.endpoint

    waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=waits.append))
    monkeypatch.setenv("AWS_RETRY_MODE", mode)
    faults = Ec2Faults(zones={"use1-az1": "InsufficientInstanceCapacity"})
    driver_sleeps: list[float] = []
    with moto_server() as endpoint:
        session = aws_session(faults, botocore_max_attempts=None)
        # The session's other clients keep botocore's retries (what the old behaviour came from).
        other = session.client("ec2", region_name="us-east-1", endpoint_url=endpoint).meta.config.retries
        assert int(other.get("total_max_attempts") or (3 if mode == "standard" else 5)) >= 2
        cloud = AwsCloud(image_id="ami-12345678", endpoint_url=endpoint, session=session,
                         sleep=driver_sleeps.append)
        with pytest.raises(CapacityError):
            cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    assert len(faults.run_instances_calls) == 1
    assert faults.http_attempts == [("use1-az1", "InsufficientInstanceCapacity")]
    assert waits == [] and driver_sleeps == []


def test_throttled_run_instances_is_still_retried_and_creates_one_instance() -> None:
    """Throttling on the no-retry client is retried by the driver (two 503 RequestLimitExceeded,
    then success: three HTTP requests, two driver waits) and, the ClientToken being the same, one
    instance exists."""
    faults = Ec2Faults(throttle_next=2)
    sleeps: list[float] = []
    with moto_server() as endpoint:
        session = aws_session(faults, botocore_max_attempts=None)
        cloud = AwsCloud(image_id="ami-12345678", endpoint_url=endpoint, session=session, sleep=sleeps.append)
        inst = cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
        client = session.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
        reservations = client.describe_instances()["Reservations"]
    assert [z for z, _ in faults.http_attempts] == ["use1-az1"] * 3
    assert [c for _, c in faults.http_attempts] == ["RequestLimitExceeded", "RequestLimitExceeded", ""]
    assert len(sleeps) == 2
    ids = [i["InstanceId"] for r in reservations for i in r["Instances"]]
    assert ids == [str(inst.instance_id).split(".", 1)[1]]
