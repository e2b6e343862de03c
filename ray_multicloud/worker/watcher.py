"""The interruption watcher that runs on every worker: poll the cloud's metadata service and, on a
notice, drain this Ray node with reason PREEMPTION and the notice's deadline.

    python -m ray_multicloud.worker.watcher --cloud aws|gcp|azure --gcs-address HEAD:6379 \\
        [--instance-id ID] [--metadata-url URL] [--interval 2]

What each cloud says, and what the watcher does:

- **AWS** (IMDSv2: ``PUT /latest/api/token``, then the token on every read):
  ``/latest/meta-data/spot/instance-action`` -> ``{"action": "terminate", "time": ISO-8601}``, about
  two minutes ahead: drain with that time as the deadline.
  ``/latest/meta-data/events/recommendations/rebalance`` -> ``{"noticeTime": ...}``, an elevated risk
  of interruption: drain with ``rebalance_grace_s`` (default 120 s) as the deadline, so work moves
  before the two-minute notice would even arrive (``--ignore-rebalance`` turns this off).
- **GCP** (header ``Metadata-Flavor: Google``): ``/computeMetadata/v1/instance/preempted`` turns
  ``TRUE`` when preemption starts; spot VMs get 30 s: drain with now + 30 s. GPU VMs run with
  ``onHostMaintenance: TERMINATE``, so ``/computeMetadata/v1/instance/maintenance-event`` turning
  ``TERMINATE_ON_HOST_MAINTENANCE`` (or the older ``SHUTDOWN_ON_HOST_MAINTENANCE``) means the VM
  will be stopped for host maintenance: drain with now + 30 s too, as Google's own GKE termination
  handler treats both signals alike. ``NONE`` and ``MIGRATE_ON_HOST_MAINTENANCE`` are no notice; a
  503 (which the metadata server answers during maintenance) is retried at the next poll.
- **Azure** Scheduled Events: ``/metadata/scheduledevents?api-version=2020-07-01`` (header
  ``Metadata: true``) lists events; a ``Preempt`` event naming this VM has ``NotBefore`` (at least
  30 s ahead): drain with that deadline, then acknowledge the event (``StartRequests``) shortly
  before ``NotBefore``, so the platform does not wait needlessly but Ray keeps its whole window.

Everything the watcher touches is injected: the metadata base URL, the HTTP getter, the drain
function (``drain(notice) -> None``; tests pass a recorder), the clock and the sleep.

A reply of an unexpected shape (``{"Events": null}``, ``[]``, HTML from a proxy, a time that does
not parse) is logged and treated as "no notice yet": the watcher keeps polling, it never dies
on what a metadata service answers.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

logger = logging.getLogger(__name__)

DEFAULT_BASE = {
    "aws": "http://169.254.169.254",
    "gcp": "http://metadata.google.internal",
    "azure": "http://169.254.169.254",
}
AZURE_API_VERSION = "2020-07-01"
GCP_NOTICE_S = 30.0
AZURE_MIN_NOTICE_S = 30.0


@dataclass(frozen=True, slots=True)
class Notice:
    """An interruption notice: which cloud, what kind, and by when the node is gone (POSIX s)."""

    cloud: str
    kind: str
    deadline: float
    detail: str = ""
    event_id: str = ""

    @property
    def key(self) -> str:
        return f"{self.cloud}:{self.kind}:{self.event_id or int(self.deadline)}"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str


class Http(Protocol):
    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Response: ...


def urllib_http(timeout_s: float = 2.0) -> Http:
    """An ``Http`` over urllib that never follows proxies (metadata services are link-local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(method: str, url: str, headers: Mapping[str, str], body: bytes | None = None) -> Response:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with opener.open(request, timeout=timeout_s) as reply:
                return Response(reply.status, reply.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read().decode(errors="replace"))

    return call


def _iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class UnexpectedReply(ValueError):
    """A metadata reply whose shape the watcher does not know; logged, then polling goes on."""


def _json_object(reply: Response, what: str) -> dict[str, object]:
    """The reply's body as a JSON object, or ``UnexpectedReply`` naming ``what`` was read."""
    try:
        doc = json.loads(reply.body)
    except ValueError:
        raise UnexpectedReply(f"{what}: not JSON: {reply.body[:80]!r}") from None
    if not isinstance(doc, dict):
        raise UnexpectedReply(
            f"{what}: expected a JSON object, got {type(doc).__name__}: {reply.body[:80]!r}"
        )
    return doc


class AwsSource:
    """EC2 instance metadata (IMDSv2). See the module docstring."""

    cloud = "aws"

    def __init__(
        self,
        http: Http,
        base_url: str = DEFAULT_BASE["aws"],
        *,
        rebalance: bool = True,
        rebalance_grace_s: float = 120.0,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._rebalance = rebalance
        self._grace = rebalance_grace_s
        self._token = ""
        self._token_expires = 0.0

    def _token_for(self, now: float) -> str:
        if not self._token or now >= self._token_expires:
            reply = self._http(
                "PUT",
                f"{self._base}/latest/api/token",
                {"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
                b"",
            )
            if reply.status != 200:
                raise OSError(f"IMDSv2 token request answered {reply.status}")
            self._token, self._token_expires = reply.body.strip(), now + 21000
        return self._token

    def _read(self, path: str, now: float) -> Response:
        reply = self._http("GET", f"{self._base}{path}", {"X-aws-ec2-metadata-token": self._token_for(now)})
        if reply.status == 401:  # token expired early (instance restarted the IMDS): fetch a new one
            self._token = ""
            reply = self._http(
                "GET", f"{self._base}{path}", {"X-aws-ec2-metadata-token": self._token_for(now)}
            )
        return reply

    def poll(self, now: float) -> Notice | None:
        reply = self._read("/latest/meta-data/spot/instance-action", now)
        if reply.status == 200:
            doc = _json_object(reply, "spot/instance-action")
            action = doc.get("action")
            try:
                deadline = _iso(str(doc["time"]))
            except (KeyError, ValueError, TypeError):
                raise UnexpectedReply(
                    f"spot/instance-action: no ISO-8601 time in {reply.body[:80]!r}"
                ) from None
            return Notice(
                "aws",
                f"spot-{action if isinstance(action, str) and action else 'terminate'}",
                deadline,
                detail=reply.body.strip(),
            )
        if self._rebalance:
            reply = self._read("/latest/meta-data/events/recommendations/rebalance", now)
            if reply.status == 200:
                doc = _json_object(reply, "events/recommendations/rebalance")
                return Notice(
                    "aws",
                    "rebalance-recommendation",
                    now + self._grace,
                    detail=reply.body.strip(),
                    event_id=str(doc.get("noticeTime", "")),
                )
        return None


GCP_TERMINATING_MAINTENANCE = frozenset({"TERMINATE_ON_HOST_MAINTENANCE", "SHUTDOWN_ON_HOST_MAINTENANCE"})


class GcpSource:
    """GCE metadata server: ``instance/preempted`` and ``instance/maintenance-event``."""

    cloud = "gcp"

    def __init__(self, http: Http, base_url: str = DEFAULT_BASE["gcp"], *, maintenance: bool = True) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._maintenance = maintenance

    def _get(self, item: str) -> Response:
        return self._http(
            "GET", f"{self._base}/computeMetadata/v1/instance/{item}", {"Metadata-Flavor": "Google"}
        )

    def poll(self, now: float) -> Notice | None:
        reply = self._get("preempted")
        if reply.status == 200 and reply.body.strip().upper() == "TRUE":
            return Notice("gcp", "preempted", now + GCP_NOTICE_S, detail="instance/preempted is TRUE")
        if not self._maintenance:
            return None
        reply = self._get("maintenance-event")
        event = reply.body.strip().upper() if reply.status == 200 else ""
        if event in GCP_TERMINATING_MAINTENANCE:
            return Notice(
                "gcp",
                "maintenance-terminate",
                now + GCP_NOTICE_S,
                detail=f"instance/maintenance-event is {event}",
                event_id=event,
            )
        if reply.status == 200 and event not in ("NONE", "MIGRATE_ON_HOST_MAINTENANCE"):
            logger.warning("gcp instance/maintenance-event: unknown value %r (not draining)", reply.body[:80])
        return None


def _rfc1123(value: object, *, fallback: float) -> float:
    """An Azure ``NotBefore`` (``Mon, 19 Sep 2016 18:29:47 GMT``) in POSIX seconds; ``fallback``
    when it is empty (the event has started) or does not parse (logged)."""
    if not isinstance(value, str) or not value.strip():
        return fallback
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        logger.warning(
            "azure scheduled event: NotBefore %r does not parse; assuming the minimum notice", value[:80]
        )
        return fallback


class AzureSource:
    """Azure Scheduled Events: ``Preempt`` events for this VM, acknowledged near their NotBefore."""

    cloud = "azure"

    def __init__(self, http: Http, base_url: str = DEFAULT_BASE["azure"], *, vm_name: str = "") -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._vm = vm_name

    @property
    def _url(self) -> str:
        return f"{self._base}/metadata/scheduledevents?api-version={AZURE_API_VERSION}"

    def poll(self, now: float) -> Notice | None:
        reply = self._http("GET", self._url, {"Metadata": "true"})
        if reply.status != 200:
            return None
        events = _json_object(reply, "scheduledevents").get("Events")
        if events is None:
            return None  # {"Events": null}: nothing scheduled
        if not isinstance(events, list):
            raise UnexpectedReply(f"scheduledevents: Events is {type(events).__name__}, not a list")
        for event in events:
            if not isinstance(event, dict) or event.get("EventType") != "Preempt":
                continue
            resources = event.get("Resources")
            resources = [str(r) for r in resources] if isinstance(resources, list) else []
            if self._vm and resources and self._vm not in resources:
                continue
            # NotBefore "Will be blank if the event ... starts" (scheduled-events.md): a Started
            # eviction is under way now; a blank one otherwise gets Preempt's minimum notice.
            started = str(event.get("EventStatus", "")).lower() == "started"
            deadline = _rfc1123(event.get("NotBefore"), fallback=now if started else now + AZURE_MIN_NOTICE_S)
            return Notice(
                "azure",
                "Preempt",
                deadline,
                detail=str(event.get("Description", "")),
                event_id=str(event.get("EventId", "")),
            )
        return None

    def acknowledge(self, notice: Notice) -> None:
        body = json.dumps({"StartRequests": [{"EventId": notice.event_id}]}).encode()
        reply = self._http("POST", self._url, {"Metadata": "true", "Content-Type": "application/json"}, body)
        if reply.status not in (200, 204):
            logger.warning("acknowledging scheduled event %s answered %s", notice.event_id, reply.status)


class Source(Protocol):
    cloud: str

    def poll(self, now: float) -> Notice | None: ...


Drain = Callable[[Notice], None]


class Watcher:
    """Polls ``source`` every ``interval_s``; on a new notice calls ``drain(notice)`` once.

    ``step(now)`` is one poll (what tests drive); ``run(stop)`` loops until a notice has been
    handled (the node is going away) or ``stop()`` says so. Metadata errors are logged and retried.
    """

    def __init__(
        self,
        source: Source,
        drain: Drain,
        *,
        interval_s: float = 2.0,
        ack_margin_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.drain = drain
        self.interval_s = interval_s
        self.ack_margin_s = ack_margin_s
        self.clock = clock
        self.sleep = sleep
        self.handled: list[Notice] = []

    def step(self, now: float | None = None) -> Notice | None:
        now = self.clock() if now is None else now
        try:
            notice = self.source.poll(now)
        except Exception as exc:  # noqa: BLE001 - whatever a metadata service answers: log, poll again
            logger.warning(
                "%s metadata poll failed (%s: %s); polling again", self.source.cloud, type(exc).__name__, exc
            )
            return None
        if notice is None or notice.key in {n.key for n in self.handled}:
            return None
        logger.warning(
            "%s interruption notice %s: draining this node by %s",
            notice.cloud,
            notice.kind,
            datetime.fromtimestamp(notice.deadline).isoformat(timespec="seconds"),
        )
        try:
            self.drain(notice)
        except Exception as exc:  # noqa: BLE001 - any drain failure: log it, try again next poll
            logger.warning("draining for %s failed (%s); retrying at the next poll", notice.kind, exc)
            return None
        self.handled.append(notice)
        acknowledge = getattr(self.source, "acknowledge", None)
        if acknowledge is not None:
            wait = notice.deadline - self.ack_margin_s - self.clock()
            if wait > 0:
                self.sleep(wait)
            try:
                acknowledge(notice)
            except Exception as exc:  # noqa: BLE001 - the drain is done; the ack is a courtesy
                logger.warning("acknowledging %s failed: %s", notice.kind, exc)
        return notice

    def run(self, stop: Callable[[], bool] = lambda: False) -> Notice | None:
        while not stop():
            notice = self.step()
            if notice is not None:
                return notice
            self.sleep(self.interval_s)
        return None


# -- the real drain: through the head's GCS -----------------------------------------------------------


def find_node_id(gcs_address: str, *, instance_id: str = "", node_ip: str = "") -> str:
    """The hex id of the alive Ray node started with ``RAY_CLOUD_INSTANCE_ID=instance_id`` (or, if
    none, the one at ``node_ip``). Raises ``LookupError`` when there is none yet."""
    import ray._raylet
    from ray.core.generated.gcs_pb2 import GcsNodeInfo  # type: ignore[attr-defined]

    client = ray._raylet.GcsClient(address=gcs_address)  # type: ignore[attr-defined]
    infos = client.get_all_node_info(timeout=10, state_filter=GcsNodeInfo.GcsNodeState.ALIVE).values()
    for info in infos:
        if instance_id and info.instance_id == instance_id:
            return bytes(info.node_id).hex()
    for info in infos:
        if node_ip and info.node_manager_address == node_ip:
            return bytes(info.node_id).hex()
    raise LookupError(f"no alive Ray node with instance id {instance_id!r} or address {node_ip!r}")


def route_ip(gcs_address: str) -> str:
    """This machine's address on the route to the head (the one Ray registers the node under)."""
    import socket

    host, _, port = gcs_address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, int(port or 6379)))  # UDP: no packet is sent
        return str(probe.getsockname()[0])


def gcs_drain(gcs_address: str, *, instance_id: str = "", node_id: str = "", node_ip: str = "") -> Drain:
    """A ``Drain`` that asks the GCS to drain this node with reason PREEMPTION and the deadline."""
    from ray_multicloud.worker.drain import PREEMPTION, drain_node

    def drain(notice: Notice) -> None:
        target = node_id or find_node_id(gcs_address, instance_id=instance_id, node_ip=node_ip)
        accepted, rejection = drain_node(
            gcs_address,
            target,
            deadline_s=notice.deadline,
            reason=PREEMPTION,
            message=f"{notice.cloud} {notice.kind}: {notice.detail}"[:500],
        )
        if not accepted:
            logger.warning("the GCS rejected draining node %s: %s", target, rejection)

    return drain


def detect_cloud(http: Http, bases: Mapping[str, str] = DEFAULT_BASE) -> str:
    """Which cloud this machine runs on, asked of each metadata service (GCP, Azure, then AWS).

    Lets one ``worker_setup_commands`` line serve a pool whose nodes span clouds. Raises
    ``LookupError`` when no metadata service answers (not a cloud VM)."""
    probes = (
        (
            "gcp",
            "GET",
            f"{bases['gcp'].rstrip('/')}/computeMetadata/v1/instance/id",
            {"Metadata-Flavor": "Google"},
        ),
        (
            "azure",
            "GET",
            f"{bases['azure'].rstrip('/')}/metadata/instance/compute/vmId?api-version=2021-02-01&format=text",
            {"Metadata": "true"},
        ),
        (
            "aws",
            "PUT",
            f"{bases['aws'].rstrip('/')}/latest/api/token",
            {"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        ),
    )
    for cloud, method, url, headers in probes:
        try:
            if http(method, url, headers, b"" if method == "PUT" else None).status == 200:
                return cloud
        except OSError:
            continue
    raise LookupError("no cloud metadata service answered: is this a cloud VM?")


def make_source(cloud: str, http: Http, base_url: str | None, *, instance_id: str, rebalance: bool) -> Source:
    base = base_url or DEFAULT_BASE[cloud]
    if cloud == "aws":
        return AwsSource(http, base, rebalance=rebalance)
    if cloud == "gcp":
        return GcpSource(http, base)
    if cloud == "azure":
        return AzureSource(http, base, vm_name=instance_id.rsplit("/", 1)[-1])
    raise ValueError(f"unknown cloud {cloud!r}: use aws, gcp or azure")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ray_multicloud.worker.watcher", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cloud",
        required=True,
        choices=[*sorted(DEFAULT_BASE), "auto"],
        help="the cloud whose metadata service to watch; auto asks each one",
    )
    parser.add_argument("--gcs-address", required=True, help="the head's GCS, host:port")
    parser.add_argument("--instance-id", default=os.environ.get("RAY_CLOUD_INSTANCE_ID", ""))
    parser.add_argument(
        "--node-id", default="", help="this node's Ray node id (hex); found from the GCS if unset"
    )
    parser.add_argument("--node-ip", default="", help="fallback to find this node: its Ray address")
    parser.add_argument(
        "--metadata-url", default=None, help="metadata service base URL (default: the cloud's)"
    )
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument(
        "--ignore-rebalance", action="store_true", help="AWS: do not drain on rebalance advice"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cloud = args.cloud
    if cloud == "auto":
        try:
            cloud = detect_cloud(urllib_http(1.0))
        except LookupError as exc:
            print(f"ray_multicloud.worker.watcher: {exc}", file=sys.stderr)
            return 2
    source = make_source(
        cloud,
        urllib_http(),
        args.metadata_url,
        instance_id=args.instance_id,
        rebalance=not args.ignore_rebalance,
    )
    drain = gcs_drain(
        args.gcs_address, instance_id=args.instance_id, node_id=args.node_id, node_ip=args.node_ip
    )
    watcher = Watcher(source, drain, interval_s=args.interval)
    notice = watcher.run()
    return 0 if notice is not None else 1


if __name__ == "__main__":
    sys.exit(main())
