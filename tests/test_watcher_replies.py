"""The watcher against the vendors' own metadata examples, and against whatever else a metadata
service (or a proxy in front of it) might answer: it drains on the documented notices and never
dies on the rest (issue 13 finding 7, issue 16 item 3).

The examples are copies of ``/work/shared/data/api-examples`` (sources in
``tests/data/api_examples/README.md``): AWS ``imds-spot-instance-action.*.json`` and
``imds-rebalance-recommendation.json`` (awsdocs/amazon-ec2-user-guide @ e3707c43), Azure
``imds-scheduled-events-preempt.json`` (mspnp/interruptible-workload-on-spot @ 8f130263), GCP
``metadata-preemption.json`` (GoogleCloudPlatform/k8s-node-termination-handler @ 679e048c and
python-docs-samples @ 07b6edf9).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fakes.metadata_server import FakeGceMetadata, FakeImds, FakeScheduledEvents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ray_multicloud.worker.watcher import (
    AwsSource,
    AzureSource,
    GcpSource,
    Notice,
    Response,
    Watcher,
    urllib_http,
)

EXAMPLES = Path(__file__).parent / "data" / "api_examples"
NOW = datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC).timestamp()


def example(path: str) -> Any:
    return json.loads((EXAMPLES / path).read_text())


class Recorder:
    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def __call__(self, notice: Notice) -> None:
        self.notices.append(notice)


def watcher_for(source: Any, drain: Recorder) -> Watcher:
    return Watcher(source, drain, clock=lambda: NOW, sleep=lambda _s: None)


# -- the vendors' own examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "kind"),
    [
        ("imds-spot-instance-action.terminate.json", "spot-terminate"),
        ("imds-spot-instance-action.stop.json", "spot-stop"),
    ],
)
def test_aws_documented_instance_action_drains_by_its_time(file: str, kind: str) -> None:
    doc = example(f"aws/{file}")
    with FakeImds() as imds:
        imds.instance_action = doc
        drain = Recorder()
        notice = watcher_for(AwsSource(urllib_http(), imds.url), drain).step()
    # The documented time, 2017-09-18T08:22:00Z, computed by hand as POSIX seconds.
    assert doc["time"] == "2017-09-18T08:22:00Z"
    assert notice is not None and notice.kind == kind and notice.deadline == 1505722920.0
    assert drain.notices == [notice]


def test_aws_documented_rebalance_recommendation_drains_early() -> None:
    with FakeImds() as imds:
        imds.rebalance = example("aws/imds-rebalance-recommendation.json")
        notice = watcher_for(AwsSource(urllib_http(), imds.url, rebalance_grace_s=90), Recorder()).step()
    assert notice is not None and notice.kind == "rebalance-recommendation"
    assert notice.deadline == NOW + 90 and notice.event_id == "2020-10-27T08:22:00Z"


def test_azure_documented_preempt_event_drains_by_its_not_before() -> None:
    doc = example("azure/imds-scheduled-events-preempt.json")
    with FakeScheduledEvents() as fake:
        fake.events = doc["Events"]
        drain = Recorder()
        watcher = Watcher(
            AzureSource(urllib_http(), fake.url, vm_name="vm-spot"), drain, sleep=lambda _s: None
        )
        notice = watcher.step(NOW)
    # "Tue, 09 Aug 2022 17:07:32 GMT" by hand: 2022-08-09T17:07:32Z = 1660064852.
    assert notice is not None and notice.kind == "Preempt" and notice.deadline == 1660064852.0
    assert notice.event_id == "C1BF8322-4CBF-4FC4-9C45-B40CF3106D0E"
    assert fake.acks == ["C1BF8322-4CBF-4FC4-9C45-B40CF3106D0E"]


def test_gcp_documented_maintenance_values() -> None:
    """``TERMINATE_ON_HOST_MAINTENANCE`` (k8s-node-termination-handler) and the older
    ``SHUTDOWN_ON_HOST_MAINTENANCE`` (python-docs-samples) drain; NONE and MIGRATE do not."""
    quoted = json.dumps(example("gcp/metadata-preemption.json"))
    for value in (
        "TERMINATE_ON_HOST_MAINTENANCE",
        "SHUTDOWN_ON_HOST_MAINTENANCE",
        "MIGRATE_ON_HOST_MAINTENANCE",
    ):
        assert value in quoted  # the values tested are the vendor's, not invented here
    with FakeGceMetadata() as fake:
        for value, drains in (
            ("NONE", False),
            ("MIGRATE_ON_HOST_MAINTENANCE", False),
            ("TERMINATE_ON_HOST_MAINTENANCE", True),
            ("SHUTDOWN_ON_HOST_MAINTENANCE", True),
        ):
            fake.maintenance_event = value
            drain = Recorder()
            notice = watcher_for(GcpSource(urllib_http(), fake.url), drain).step()
            assert (notice is not None) is drains, value
            if notice is not None:
                assert notice.kind == "maintenance-terminate" and notice.deadline == NOW + 30
                assert value in notice.detail and drain.notices == [notice]
        paths = {r.path for r in fake.requests}
    assert paths == {
        "/computeMetadata/v1/instance/preempted",
        "/computeMetadata/v1/instance/maintenance-event",
    }


def test_gcp_maintenance_503_is_retried_then_drains() -> None:
    with FakeGceMetadata() as fake:
        fake.maintenance_503 = True  # "During maintenance the service can return a 503"
        drain = Recorder()
        watcher = watcher_for(GcpSource(urllib_http(), fake.url), drain)
        assert watcher.step() is None
        fake.maintenance_503 = False
        fake.maintenance_event = "TERMINATE_ON_HOST_MAINTENANCE"
        assert watcher.step() is not None and len(drain.notices) == 1


# -- replies of an unexpected shape: logged, polling goes on -----------------------------------------


@pytest.mark.parametrize("events", [None, [], {}, "x", 5, [None, 3, "Preempt", []]])
def test_azure_unexpected_events_are_no_notice_and_the_watcher_lives(
    events: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeScheduledEvents() as fake:
        fake.events_raw = events
        drain = Recorder()
        watcher = watcher_for(AzureSource(urllib_http(), fake.url, vm_name="vm-spot"), drain)
        assert watcher.step() is None and drain.notices == []
        # ... and a real notice after it is still handled.
        fake.events_raw = ...
        fake.events = example("azure/imds-scheduled-events-preempt.json")["Events"]
        assert watcher.step() is not None and len(drain.notices) == 1


@pytest.mark.parametrize(
    "body", [[], "[]", "null", "<html>proxy error</html>", {"action": "terminate"}, {"time": 5}]
)
def test_aws_unexpected_instance_action_is_logged_and_polling_goes_on(
    body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ray_multicloud.worker.watcher")
    with FakeImds() as imds:
        imds.raw["/latest/meta-data/spot/instance-action"] = (200, body)
        drain = Recorder()
        watcher = watcher_for(AwsSource(urllib_http(), imds.url), drain)
        assert watcher.step() is None and drain.notices == []
        assert "metadata poll failed" in caplog.text
        del imds.raw["/latest/meta-data/spot/instance-action"]
        imds.instance_action = example("aws/imds-spot-instance-action.terminate.json")
        assert watcher.step() is not None and len(drain.notices) == 1


def test_run_keeps_polling_through_a_source_that_raises_anything() -> None:
    class Flaky:
        cloud = "azure"

        def __init__(self) -> None:
            self.calls = 0

        def poll(self, now: float) -> Notice | None:
            self.calls += 1
            if self.calls == 1:
                raise TypeError("'NoneType' object is not iterable")
            if self.calls == 2:
                raise AttributeError("'list' object has no attribute 'get'")
            return Notice("azure", "Preempt", NOW + 30, event_id="e")

    drain = Recorder()
    assert watcher_for(Flaky(), drain).run() is not None and len(drain.notices) == 1


# -- property: any reply, any source: a Notice or None, never an exception ---------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
EVENT_KEYS = st.sampled_from(["EventId", "EventType", "Resources", "NotBefore", "Description", "EventStatus"])
EVENT = st.dictionaries(
    EVENT_KEYS,
    st.sampled_from(
        ["Preempt", "Reboot", "vm-spot", ["vm-spot"], "", "garbage", "Tue, 09 Aug 2022 17:07:32 GMT"]
    )
    | JSON,
    max_size=6,
)
BODY = st.one_of(
    JSON.map(json.dumps),
    st.text(max_size=60),
    st.builds(lambda e: json.dumps({"Events": e}), st.lists(EVENT, max_size=3) | JSON),
    st.builds(
        json.dumps, st.dictionaries(st.sampled_from(["action", "time", "noticeTime"]), JSON)
    ),
    st.sampled_from(["TRUE", "FALSE", "NONE", "TERMINATE_ON_HOST_MAINTENANCE", "true\n", ""]),
)
REPLY = st.builds(Response, st.sampled_from([200, 200, 200, 401, 404, 500, 503]), BODY)


class ScriptedHttp:
    """An ``Http`` that answers every call with the next reply drawn (200 to token requests)."""

    def __init__(self, replies: list[Response]) -> None:
        self.replies = replies

    def __call__(self, method: str, url: str, headers: Any, body: bytes | None = None) -> Response:
        if url.endswith("/latest/api/token"):
            return Response(200, "token")
        return self.replies.pop(0) if self.replies else Response(404, "")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=st.sampled_from(["aws", "gcp", "azure"]), replies=st.lists(REPLY, min_size=1, max_size=4))
def test_any_metadata_reply_is_a_notice_or_none_never_a_crash(cloud: str, replies: list[Response]) -> None:
    http = ScriptedHttp(list(replies))
    source: Any = {
        "aws": lambda: AwsSource(http, "http://imds"),
        "gcp": lambda: GcpSource(http, "http://gce"),
        "azure": lambda: AzureSource(http, "http://azure", vm_name="vm-spot"),
    }[cloud]()
    drain = Recorder()
    watcher = watcher_for(source, drain)
    for _ in range(3):
        notice = watcher.step()  # must not raise
        assert notice is None or (isinstance(notice, Notice) and notice.deadline == notice.deadline)
    # Sources themselves answer typed: a Notice, None, or one of the errors the watcher logs.
    http.replies = list(replies)
    try:
        got = source.poll(NOW)
    except (ValueError, OSError):
        got = None
    assert got is None or isinstance(got, Notice)


def test_azure_started_preempt_with_blank_not_before_drains_now() -> None:
    """scheduled-events.md: NotBefore "Will be blank if the event after the event starts";
    EventStatus "Started": "This event has started." — the eviction is under way."""
    event = dict(example("azure/imds-scheduled-events-preempt.json")["Events"][0])
    event.update({"EventStatus": "Started", "NotBefore": ""})
    with FakeScheduledEvents() as fake:
        fake.events = [event]
        notice = watcher_for(AzureSource(urllib_http(), fake.url, vm_name="vm-spot"), Recorder()).step()
    assert notice is not None and notice.deadline == NOW
