"""Faults for EC2 that moto cannot produce, injected at a boundary the test owns.

``Ec2Faults.install(session)`` registers botocore event hooks on a ``boto3.Session`` the test
builds and hands to ``AwsCloud(session=...)``. Clients made from that session answer
``RunInstances`` for an exhausted zone with the real EC2 error (HTTP 500
``InsufficientInstanceCapacity`` and friends) instead of calling moto; everything else goes to
moto unchanged. Nothing in the driver knows about this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
STATUS = {"InsufficientInstanceCapacity": 500, "RequestLimitExceeded": 503}


@dataclass
class Ec2Faults:
    """Fields a test sets: ``zones`` maps an AZ name or id to the error code RunInstances answers
    there; ``throttle_next`` makes the next N RunInstances calls answer RequestLimitExceeded.
    ``run_instances_calls`` records the API parameters of every RunInstances call that reached the
    hook (faulted or not)."""

    zones: dict[str, str] = field(default_factory=dict)
    throttle_next: int = 0
    run_instances_calls: list[dict[str, Any]] = field(default_factory=list)

    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build.ec2.RunInstances", self._remember)
        session.events.register("before-call.ec2.RunInstances", self._answer)

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self.run_instances_calls.append(dict(params))
        context["rmc_params"] = dict(params)

    def _answer(self, context: dict[str, Any], **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        params = context.get("rmc_params", {})
        placement = params.get("Placement", {})
        zone = placement.get("AvailabilityZone") or placement.get("AvailabilityZoneId") or ""
        code = ""
        if self.throttle_next > 0:
            self.throttle_next -= 1
            code = "RequestLimitExceeded"
        elif zone in self.zones:
            code = self.zones[zone]
        if not code:
            return None
        message = MESSAGES.get(code, code).format(itype=params.get("InstanceType", ""), zone=zone)
        status = STATUS.get(code, 400)
        http = AWSResponse("http://127.0.0.1/", status, {}, None)
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": "00000000-fake",
            },
        }
        return http, parsed
