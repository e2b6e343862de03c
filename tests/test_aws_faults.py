"""The EC2 fault fake answers as EC2 does, over botocore's HTTP path (issue 16 item 3): the error
envelope of the vendor example ``tests/data/api_examples/aws/ec2-query-api-error-response
.doc-example.xml`` with the code's HTTP status, parsed by botocore and seen by its retry handler.
What it shows about the driver: with botocore's default retry settings, an
``InsufficientInstanceCapacity`` is retried by botocore itself, with its random exponential waits,
before the driver can fall back to another zone."""

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


def test_botocore_default_retries_run_on_insufficient_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    """With botocore's defaults, a 500 InsufficientInstanceCapacity is retried by botocore (its
    retry handler, not the driver's) before the driver sees the error and may fall back."""
    import botocore.endpoint

    waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=waits.append))
    faults = Ec2Faults(zones={"use1-az1": "InsufficientInstanceCapacity"})
    with moto_server() as endpoint:
        session = aws_session(faults, botocore_max_attempts=None)
        retries = session.client("ec2", region_name="us-east-1", endpoint_url=endpoint).meta.config.retries
        # botocore's defaults: 3 attempts in "standard" mode, 5 in "legacy" (retries/standard.py,
        # data/_retry.json), unless the config says otherwise.
        default = 5 if retries.get("mode") == "legacy" else 3
        attempts = int(retries.get("total_max_attempts") or default)
        cloud = AwsCloud(
            image_id="ami-12345678", endpoint_url=endpoint, session=session, sleep=lambda _s: None
        )
        with pytest.raises(CapacityError):
            cloud.launch(request_for(gpu_offer("aws", "us-east-1", "use1-az1", "p3.2xlarge")))
    assert attempts >= 2
    assert len(faults.run_instances_calls) == 1  # one driver call ...
    assert faults.http_attempts == [("use1-az1", "InsufficientInstanceCapacity")] * attempts  # ... retried
    assert len(waits) == attempts - 1 and all(w >= 0 for w in waits)
    # Both modes wait at most rand(0, 1) * 2**i s before retry i+1 (standard: 0.05 * 2**i for a
    # non-throttling error; legacy: "rand" base, growth factor 2).
    assert all(w <= 2**i for i, w in enumerate(waits))
