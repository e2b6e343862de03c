"""Fake instance metadata services (AWS IMDSv2, GCE metadata, Azure Scheduled Events) on loopback.

Each checks what the real one checks (the IMDSv2 token and its TTL header, ``Metadata-Flavor:
Google``, ``Metadata: true`` and ``api-version``) and answers with the real shapes. A test sets a
notice through a field: ``instance_action`` / ``rebalance`` (AWS), ``preempted`` and
``maintenance_event`` (GCP: ``NONE`` or one of the values Google's own code names, answered with an
``ETag``; ``maintenance_503`` answers 503 as the server does during maintenance), ``events``
(Azure; ``acks`` records StartRequests, and an acknowledged event disappears; ``events_raw``
replaces the whole ``Events`` value, e.g. ``None``). On every fake, ``raw[path] = (status, body)``
overrides the answer for one path (malformed replies for the property tests).
"""

from __future__ import annotations

import secrets
from typing import Any

from fakes._http import FakeApi, Reply


class FakeImds(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.instance_action: dict[str, str] | None = None
        self.rebalance: dict[str, str] | None = None
        self.tokens: set[str] = set()
        self.instance_id = "i-0abc1234def567890"
        self.raw: dict[str, tuple[int, Any]] = {}

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if path == "/latest/api/token":
            if method != "PUT":
                return 405, "", {}
            ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, "", {}
            token = secrets.token_urlsafe(24)
            self.tokens.add(token)
            return 200, token, {"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": ttl}
        if headers.get("x-aws-ec2-metadata-token") not in self.tokens:
            return 401, "", {}
        if path in self.raw:
            return self.raw[path][0], self.raw[path][1], {}
        not_found = (
            404,
            '<?xml version="1.0" encoding="iso-8859-1"?>\n<title>404 - Not Found</title>',
            {"Content-Type": "text/html"},
        )
        if path == "/latest/meta-data/spot/instance-action":
            return (200, self.instance_action, {}) if self.instance_action else not_found
        if path == "/latest/meta-data/events/recommendations/rebalance":
            return (200, self.rebalance, {}) if self.rebalance else not_found
        if path == "/latest/meta-data/instance-id":
            return 200, self.instance_id, {}
        return not_found


class FakeGceMetadata(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.preempted = False
        self.maintenance_event = "NONE"
        self.maintenance_503 = False
        self.raw: dict[str, tuple[int, Any]] = {}

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if headers.get("metadata-flavor") != "Google":
            return 403, "Missing Metadata-Flavor:Google header.", {"Content-Type": "text/html"}
        if path in self.raw:
            return self.raw[path][0], self.raw[path][1], {"Metadata-Flavor": "Google"}
        if path == "/computeMetadata/v1/instance/maintenance-event":
            if self.maintenance_503:
                return 503, "Service Unavailable", {"Content-Type": "text/html"}
            etag = format(abs(hash(self.maintenance_event)) % (1 << 64), "016x")
            return (
                200,
                self.maintenance_event,
                {"Metadata-Flavor": "Google", "Content-Type": "application/text", "ETag": etag},
            )
        if path == "/computeMetadata/v1/instance/preempted":
            return (
                200,
                "TRUE" if self.preempted else "FALSE",
                {"Metadata-Flavor": "Google", "Content-Type": "application/text"},
            )
        if path == "/computeMetadata/v1/instance/id":
            headers = {"Metadata-Flavor": "Google", "Content-Type": "application/text"}
            return 200, "4520031799277581759", headers
        return 404, "Not Found", {"Content-Type": "text/html"}


class FakeScheduledEvents(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.events_raw: Any = ...
        self.raw: dict[str, tuple[int, Any]] = {}
        self.acks: list[str] = []
        self.incarnation = 1

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if headers.get("metadata") != "true":
            return 400, {"error": "Bad request. Required metadata header not specified"}, {}
        if path != "/metadata/scheduledevents":
            return 404, {"error": "Not found"}, {}
        if not query.get("api-version"):
            return (
                400,
                {
                    "error": "Bad request. api-version was not specified in the request. For more "
                    "information refer to aka.ms/azureimds",
                    "newest-versions": ["2020-07-01"],
                },
                {},
            )
        if method == "GET":
            if path in self.raw:
                return self.raw[path][0], self.raw[path][1], {}
            events = self.events if self.events_raw is ... else self.events_raw
            return 200, {"DocumentIncarnation": self.incarnation, "Events": events}, {}
        if method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("StartRequests"), list):
                return 400, {"error": "Bad request"}, {}
            ids = {r.get("EventId") for r in body["StartRequests"]}
            self.acks += sorted(i for i in ids if i)
            self.events = [e for e in self.events if e.get("EventId") not in ids]
            self.incarnation += 1
            return 200, None, {}
        return 405, None, {}
