"""The interruption watcher against a fake metadata service per cloud, with a recording drain."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fakes.metadata_server import FakeGceMetadata, FakeImds, FakeScheduledEvents

from ray_multicloud.worker.watcher import AwsSource, AzureSource, GcpSource, Notice, Watcher, urllib_http

NOW = datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC).timestamp()


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.notices: list[Notice] = []
        self.fail_first = fail_first

    def __call__(self, notice: Notice) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise LookupError("this node is not registered with the GCS yet")
        self.notices.append(notice)


def watcher_for(source: object, drain: Recorder, sleeps: list[float] | None = None) -> Watcher:
    return Watcher(source, drain, clock=lambda: NOW, sleep=(sleeps if sleeps is not None else []).append)  # type: ignore[arg-type]


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    with FakeImds() as fake:
        yield fake


def test_aws_spot_interruption_drains_with_its_deadline(imds: FakeImds) -> None:
    drain = Recorder()
    watcher = watcher_for(AwsSource(urllib_http(), imds.url), drain)
    assert watcher.step() is None and drain.notices == []
    imds.instance_action = {"action": "terminate", "time": "2026-11-28T05:02:00Z"}
    notice = watcher.step()
    assert notice is not None and drain.notices == [notice]
    assert notice.kind == "spot-terminate" and notice.deadline == NOW + 120
    assert watcher.step() is None and len(drain.notices) == 1  # one drain per notice
    # IMDSv2: a token was fetched with a TTL header and sent on every read.
    assert imds.requests[0].method == "PUT" and imds.requests[0].path == "/latest/api/token"
    assert all(r.headers.get("x-aws-ec2-metadata-token") in imds.tokens for r in imds.requests[1:])


def test_aws_rebalance_recommendation_drains_early_unless_ignored(imds: FakeImds) -> None:
    imds.rebalance = {"noticeTime": "2026-11-28T04:59:30Z"}
    drain = Recorder()
    notice = watcher_for(AwsSource(urllib_http(), imds.url, rebalance_grace_s=90), drain).step()
    assert notice is not None and notice.kind == "rebalance-recommendation" and notice.deadline == NOW + 90
    quiet = Recorder()
    assert watcher_for(AwsSource(urllib_http(), imds.url, rebalance=False), quiet).step() is None
    assert quiet.notices == []


def test_aws_expired_token_is_refreshed(imds: FakeImds) -> None:
    source = AwsSource(urllib_http(), imds.url)
    drain = Recorder()
    watcher = watcher_for(source, drain)
    watcher.step()
    imds.tokens.clear()  # the IMDS forgot our token
    imds.instance_action = {"action": "stop", "time": "2026-11-28T05:02:00Z"}
    notice = watcher.step()
    assert notice is not None and notice.kind == "spot-stop"


def test_drain_failure_is_retried_at_next_poll(imds: FakeImds) -> None:
    imds.instance_action = {"action": "terminate", "time": "2026-11-28T05:02:00Z"}
    drain = Recorder(fail_first=1)
    watcher = watcher_for(AwsSource(urllib_http(), imds.url), drain)
    assert watcher.step() is None and drain.notices == []
    assert watcher.step() is not None and len(drain.notices) == 1


def test_gcp_preempted_drains_with_thirty_seconds() -> None:
    with FakeGceMetadata() as fake:
        drain = Recorder()
        watcher = watcher_for(GcpSource(urllib_http(), fake.url), drain)
        assert watcher.step() is None
        fake.preempted = True
        notice = watcher.step()
        assert notice is not None and notice.deadline == NOW + 30 and drain.notices == [notice]
        assert all(r.headers.get("metadata-flavor") == "Google" for r in fake.requests)


def test_azure_preempt_event_drains_then_acknowledges_before_not_before() -> None:
    with FakeScheduledEvents() as fake:
        drain = Recorder()
        sleeps: list[float] = []
        watcher = watcher_for(AzureSource(urllib_http(), fake.url, vm_name="rmc-req-1-abc"), drain, sleeps)
        not_before = email.utils.format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
        fake.events = [
            {
                "EventId": "other-vm",
                "EventType": "Preempt",
                "ResourceType": "VirtualMachine",
                "Resources": ["someone-else"],
                "EventStatus": "Scheduled",
                "NotBefore": not_before,
            },
            {
                "EventId": "reboot-1",
                "EventType": "Reboot",
                "ResourceType": "VirtualMachine",
                "Resources": ["rmc-req-1-abc"],
                "EventStatus": "Scheduled",
                "NotBefore": not_before,
            },
        ]
        assert watcher.step() is None and fake.acks == []
        fake.events.append(
            {
                "EventId": "602d9444-d2cd-49c7-8624-8643e7171297",
                "EventType": "Preempt",
                "ResourceType": "VirtualMachine",
                "Resources": ["rmc-req-1-abc"],
                "EventStatus": "Scheduled",
                "NotBefore": not_before,
                "Description": "Virtual machine is being preempted.",
                "EventSource": "Platform",
                "DurationInSeconds": -1,
            }
        )
        notice = watcher.step()
        assert notice is not None and notice.deadline == NOW + 30 and drain.notices == [notice]
        assert sleeps == [25.0]  # acknowledged ack_margin_s before NotBefore: Ray keeps its window
        assert fake.acks == ["602d9444-d2cd-49c7-8624-8643e7171297"]
        assert all(r.query.get("api-version") == "2020-07-01" for r in fake.requests)
        assert all(r.headers.get("metadata") == "true" for r in fake.requests)


def test_metadata_errors_do_not_kill_the_watcher() -> None:
    drain = Recorder()
    watcher = watcher_for(AwsSource(urllib_http(0.5), "http://127.0.0.1:9"), drain)
    assert watcher.step() is None and drain.notices == []


def test_detect_cloud_asks_each_metadata_service(imds: FakeImds) -> None:
    from ray_multicloud.worker.watcher import detect_cloud

    dead = "http://127.0.0.1:9"
    assert detect_cloud(urllib_http(0.5), {"gcp": dead, "azure": dead, "aws": imds.url}) == "aws"
    with FakeGceMetadata() as gce:
        assert detect_cloud(urllib_http(0.5), {"gcp": gce.url, "azure": dead, "aws": imds.url}) == "gcp"
    with pytest.raises(LookupError):
        detect_cloud(urllib_http(0.5), {"gcp": dead, "azure": dead, "aws": dead})


def test_route_ip_is_the_address_towards_the_head() -> None:
    from ray_multicloud.worker.watcher import route_ip

    assert route_ip("127.0.0.1:6379") == "127.0.0.1"


class ScriptedSource:
    cloud = "aws"

    def __init__(self, answers: list[Notice | None]) -> None:
        self.answers = answers

    def poll(self, now: float) -> Notice | None:
        return self.answers.pop(0)


def test_run_polls_until_the_first_notice() -> None:
    notice = Notice("aws", "spot-terminate", NOW + 120)
    drain = Recorder()
    sleeps: list[float] = []
    watcher = watcher_for(ScriptedSource([None, None, notice]), drain, sleeps)
    assert watcher.run() == notice
    assert sleeps == [watcher.interval_s] * 2 and drain.notices == [notice]


@pytest.mark.e2e
def test_gcs_drain_marks_the_real_node_draining_for_preemption() -> None:
    """The default drain against a real Ray head on loopback: the GCS reports the node as draining
    (what Ray Train's and Serve's preemption handling watch)."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    from ray_multicloud.scenarios.local_cluster import free_port, ray_env

    port = free_port()
    # Its own HOME, as a local-cloud instance has: a ~/.ray/auth_token of the machine's user must not
    # turn on token auth for this head (it made the GCS refuse the watcher's client).
    home = tempfile.mkdtemp(prefix="rmcw-home-")
    env = {**ray_env(), "HOME": home}
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    proc = subprocess.Popen(
        [
            ray_cli,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=1",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--include-dashboard=false",
            "--object-store-memory=80000000",
            "--disable-usage-stats",
        ],
        env={**env, "RAY_CLOUD_INSTANCE_ID": "us-east-1/i-0watchertest"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        assert proc.wait(timeout=120) == 0
        # The watcher is a process of its own on each node; run it as one. (A process that has
        # already talked to another Ray cluster, as this test process has, keeps that cluster's
        # auth state and the new GCS refuses it.)
        check = subprocess.run(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
             "from test_watcher import drain_and_check; print(drain_and_check(sys.argv[2]))",
             os.path.dirname(os.path.abspath(__file__)), address],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )
        assert check.returncode == 0, check.stderr[-3000:]
        assert check.stdout.strip().splitlines()[-1] in ("DRAINING", "DEAD:AUTOSCALER_DRAIN_PREEMPTED")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def drain_and_check(address: str) -> str:
    """Drain the head's node with the watcher's default drain and say what the GCS then reports."""
    import time

    import ray
    import ray._raylet

    from ray_multicloud.worker.watcher import find_node_id, gcs_drain

    node_id = find_node_id(address, instance_id="us-east-1/i-0watchertest")
    deadline = time.time() + 120
    gcs_drain(address, instance_id="us-east-1/i-0watchertest")(Notice("aws", "spot-terminate", deadline))
    client = ray._raylet.GcsClient(address=address)  # type: ignore[attr-defined]
    # An idle node drained for preemption goes at once; a busy one stays DRAINING until its
    # deadline. Either way the GCS records the preemption drain as the reason.
    for _ in range(100):
        info = client.get_all_node_info(timeout=10)[ray.NodeID.from_hex(node_id)]
        snapshot = info.state_snapshot
        if snapshot.state == snapshot.DRAINING or info.state == info.DEAD:
            break
        time.sleep(0.1)
    if info.state == info.DEAD:
        reason = info.death_info.reason
        if reason == info.death_info.AUTOSCALER_DRAIN_PREEMPTED:
            return "DEAD:AUTOSCALER_DRAIN_PREEMPTED"
        return f"DEAD:{reason}"
    return "DRAINING" if snapshot.state == snapshot.DRAINING else f"STATE:{snapshot.state}"
