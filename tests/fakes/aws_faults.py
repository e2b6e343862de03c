"""Faults for EC2 that moto cannot produce, answered over botocore's real HTTP path.

``Ec2Faults.install(session)`` registers botocore event hooks on a ``boto3.Session`` the test
builds and hands to ``AwsCloud(session=...)``. A ``RunInstances`` HTTP request for an exhausted
zone is answered, in place of moto, with the HTTP response EC2 sends: the EC2 Query API error
envelope (``<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors>
<RequestID>…</RequestID></Response>``, as in the vendor example
``tests/data/api_examples/aws/ec2-query-api-error-response.doc-example.xml``) with the code's
HTTP status. The answer is given at ``before-send`` — the point where botocore would put the
request on the wire — so botocore parses it and runs its own retry handler on it exactly as for
a real EC2 reply (``InsufficientInstanceCapacity`` is a server error, HTTP 500, which botocore's
default ("legacy") retry mode retries up to 4 times with random exponential waits before the
driver sees it). Everything else goes to moto unchanged. Nothing in the driver knows about this.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

# Real EC2 error messages, as returned by the API (codes and wording from the EC2 error reference).
MESSAGES = {
    "InsufficientInstanceCapacity": (
        "We currently do not have sufficient {itype} capacity in the Availability Zone you requested "
        "({zone}). Our system will be working on provisioning additional capacity. You can currently get "
        "{itype} capacity by not specifying an Availability Zone in your request or choosing a "
        "different zone."
    ),
    "SpotMaxPriceTooLow": (
        "Your Spot request price of 0.1 is lower than the minimum required Spot request fulfillment "
        "price of 0.9179."
    ),
    "MaxSpotInstanceCountExceeded": "Max spot instance count exceeded",
    "VcpuLimitExceeded": (
        "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance "
        "bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/"
        "ec2-request to request an adjustment to this limit."
    ),
    "RequestLimitExceeded": "Request limit exceeded.",
}
# EC2 answers server errors with 5xx (botocore's model documents the state reason
# "Server.InsufficientInstanceCapacity"; its retry config expects RequestLimitExceeded with 503).
STATUS = {"InsufficientInstanceCapacity": 500, "RequestLimitExceeded": 503}


def error_response_xml(code: str, message: str, request_id: str) -> bytes:
    """The EC2 Query API error envelope, shaped as the vendor's documented example."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
    ).encode()


class _Raw:
    """The minimal urllib3-like body botocore's ``AWSResponse`` reads (``stream()``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *_args: Any, **_kwargs: Any) -> Any:
        yield self._data


@dataclass
class Ec2Faults:
    """Fields a test sets: ``zones`` maps an AZ name or id to the error code RunInstances answers
    there; ``throttle_next`` makes the next N RunInstances HTTP requests answer
    RequestLimitExceeded. ``run_instances_calls`` records the API parameters of every RunInstances
    call the driver made (one per SDK call); ``http_attempts`` records ``(zone, code or "")`` for
    every RunInstances HTTP request botocore sent, its own retries included."""

    zones: dict[str, str] = field(default_factory=dict)
    throttle_next: int = 0
    run_instances_calls: list[dict[str, Any]] = field(default_factory=list)
    http_attempts: list[tuple[str, str]] = field(default_factory=list)

    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build.ec2.RunInstances", self._remember)
        session.events.register("before-send.ec2.RunInstances", self._answer)

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self.run_instances_calls.append(dict(params))

    def _answer(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        body = request.body
        text = body.decode() if isinstance(body, bytes) else str(body or "")
        form = {k: v[-1] for k, v in parse_qs(text).items()}
        zone = form.get("Placement.AvailabilityZone") or form.get("Placement.AvailabilityZoneId") or ""
        code = ""
        if self.throttle_next > 0:
            self.throttle_next -= 1
            code = "RequestLimitExceeded"
        elif zone in self.zones:
            code = self.zones[zone]
        self.http_attempts.append((zone, code))
        if not code:
            return None  # on to moto
        message = MESSAGES.get(code, code).format(itype=form.get("InstanceType", ""), zone=zone)
        data = error_response_xml(code, message, str(uuid.uuid4()))
        headers = {"Content-Type": "text/xml;charset=UTF-8", "Content-Length": str(len(data))}
        return AWSResponse(request.url, STATUS.get(code, 400), headers, _Raw(data))
