"""The cluster's machines on every configured cloud, as ``ray-multicloud status`` and the dashboard show them.

Everything comes from the clouds themselves, not from local state files: each driver's
``list(cluster)`` (the ``Cloud`` protocol: the non-terminated instances tagged with the cluster),
the offer book (catalog + live feeds + price board) for the price now, the GCS for each node's Ray
state, and the ledger / deadline-job manifests for the job a node works for.

Three parts, the row building pure and the I/O at the edge:

* ``fleet_rows(instances, offer_of, ray_states, jobs, now)`` (pure): one ``FleetRow`` per instance.
* ``read_ray_states(gcs_address, timeout_s)`` (I/O): instance id -> Ray node status from the GCS,
  or None when the GCS cannot be read within ``timeout_s`` (a TCP probe first, so a head that is
  down answers at once instead of after the GCS client's 45 s of retries).
* ``collect_status(config, clouds=...)`` (I/O): the whole view of one cluster YAML. A cloud whose
  API fails is one line of ``FleetStatus.problems``; the other clouds are still listed.

Where a figure is not known it is None (shown as "-"), and ``ray_state`` is ``"unknown"`` when the
GCS could not be read, ``"not in GCS"`` when it was read and has no node for the instance.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ray.autoscaler.tags import TAG_RAY_NODE_KIND

from ray_multicloud.clouds.base import TAG_CAPACITY, TAG_CLOUD, TAG_OFFER, TAG_POOL, Cloud, Instance
from ray_multicloud.provider import TAG_PRICE  # the launch price the provider writes on every instance
from ray_multicloud.types import Offer

UNKNOWN = "unknown"
NOT_IN_GCS = "not in GCS"


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One machine of the cluster now.

    ``price_per_hour`` is the offer book's price now (``price_source`` "offer book"), else the
    launch price from the instance's ``rmc-price`` tag ("launch tag"), else None. ``age_s`` is None
    when the cloud does not say when the instance started.
    """

    instance_id: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    capacity: str
    pool: str
    kind: str
    state: str
    ray_state: str
    price_per_hour: float | None
    ondemand_price_per_hour: float | None
    price_source: str
    stale_price: bool
    launched_at: float | None
    age_s: float | None
    job: str
    internal_ip: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """A cluster's machines (sorted by cloud, region, zone, pool, instance) and what could not be read."""

    cluster: str
    at: float
    rows: tuple[FleetRow, ...]
    clouds: tuple[str, ...]
    gcs_read: bool
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cost_per_hour(self) -> float:
        return sum((r.price_per_hour or 0.0) for r in self.rows)

    @property
    def ondemand_cost_per_hour(self) -> float:
        return sum((r.ondemand_price_per_hour or r.price_per_hour or 0.0) for r in self.rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "at": self.at,
            "clouds": list(self.clouds),
            "gcs_read": self.gcs_read,
            "cost_per_hour": self.cost_per_hour,
            "ondemand_cost_per_hour": self.ondemand_cost_per_hour,
            "nodes": [r.as_json() for r in self.rows],
            "problems": list(self.problems),
        }


def parse_offer_id(offer_id: str) -> tuple[str, str, str, str, str] | None:
    """``cloud/region/zone/instance_type/capacity`` (``Offer.offer_id``; zone "-" when regional)
    as its five parts, the zone "" when regional; None for anything else."""
    parts = offer_id.split("/")
    if len(parts) != 5 or not all(parts):
        return None
    cloud, region, zone, itype, capacity = parts
    return cloud, region, "" if zone == "-" else zone, itype, capacity


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def fleet_rows(
    instances: Iterable[Instance],
    offer_of: Callable[[str], Offer | None],
    ray_states: Mapping[str, str] | None,
    jobs: Mapping[str, str],
    now: float,
) -> list[FleetRow]:
    """One row per instance (pure). ``offer_of``: offer id -> the offer book's offer now (None if
    unknown); ``ray_states``: instance id -> Ray status, None when the GCS was not read; ``jobs``:
    instance id or pool -> the job or deployment it works for (instance id wins)."""
    rows = []
    for inst in instances:
        tags = inst.tags
        offer_id = tags.get(TAG_OFFER, "")
        offer = offer_of(offer_id) if offer_id else None
        parsed = parse_offer_id(offer_id)
        if offer is not None:
            cloud, region, zone = offer.cloud, offer.region, offer.zone
            itype, capacity = offer.instance_type, offer.capacity.value
        elif parsed is not None:
            cloud, region, zone, itype, capacity = parsed
        else:
            cloud, region, zone, itype = inst.cloud, "", "", ""
            capacity = tags.get(TAG_CAPACITY, "")
        price: float | None
        if offer is not None:
            # What the machine is paid (a reserved one: its term price, not the $0 decisions see).
            price, od, source = offer.paid_price_per_hour, offer.ondemand_price_per_hour, "offer book"
        else:
            price, od = _float(tags.get(TAG_PRICE)), None
            source = "launch tag" if price is not None else ""
        pool = tags.get(TAG_POOL, "")
        ray_state = UNKNOWN if ray_states is None else ray_states.get(str(inst.instance_id), NOT_IN_GCS)
        launched = inst.launched_at if inst.launched_at > 0 else None
        rows.append(FleetRow(
            instance_id=str(inst.instance_id),
            cloud=tags.get(TAG_CLOUD, cloud) or inst.cloud,
            region=region,
            zone=zone,
            instance_type=itype,
            capacity=capacity,
            pool=pool,
            kind=tags.get(TAG_RAY_NODE_KIND, ""),
            state=inst.state.value,
            ray_state=ray_state,
            price_per_hour=price,
            ondemand_price_per_hour=od,
            price_source=source,
            stale_price=bool(offer is not None and offer.stale),
            launched_at=launched,
            age_s=None if launched is None else max(0.0, now - launched),
            job=jobs.get(str(inst.instance_id)) or jobs.get(pool, ""),
            internal_ip=inst.internal_ip,
        ))
    rows.sort(key=lambda r: (r.cloud, r.region, r.zone, r.pool, r.instance_id))
    return rows


def format_age(seconds: float | None) -> str:
    """``42s``, ``7m``, ``3h05m``, ``2d04h``; "-" when unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


# -- I/O at the edge -------------------------------------------------------------------------------


def list_clouds(clouds: Mapping[str, Cloud], cluster: str) -> tuple[list[Instance], list[str]]:
    """Every cloud's ``list(cluster)`` (in parallel threads: each may block for its round trip);
    a cloud that fails is one problem line naming it, the others still count."""
    results: dict[str, list[Instance] | Exception] = {}

    def one(name: str, cloud: Cloud) -> None:
        try:
            results[name] = cloud.list(cluster)
        except Exception as exc:  # noqa: BLE001 -- any driver failure is reported, not raised
            results[name] = exc

    threads = [threading.Thread(target=one, args=(n, c), daemon=True) for n, c in clouds.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    instances: list[Instance] = []
    problems: list[str] = []
    for name in clouds:
        got = results.get(name)
        if isinstance(got, Exception):
            problems.append(f"cloud {name}: cannot list instances ({type(got).__name__}: {got})")
        elif got is not None:
            instances.extend(got)
    return instances, problems


def _reachable(gcs_address: str, timeout_s: float) -> bool:
    host, _, port = gcs_address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def read_ray_states(
    gcs_address: str,
    timeout_s: float = 10.0,
    nodes: Callable[[str], Mapping[str, Any]] | None = None,
) -> dict[str, str] | None:
    """Instance id -> Ray node status (``RUNNING``, ``IDLE``, ``DRAINING``, ``DEAD``) from the GCS,
    or None when it cannot be read within ``timeout_s``. ``nodes`` is the GCS read (default:
    ``controller.ray_nodes``); a test hands in its own."""
    if nodes is None:
        if not _reachable(gcs_address, min(timeout_s, 2.0)):
            return None
        from ray_multicloud.controller import ray_nodes

        nodes = ray_nodes
    box: dict[str, Any] = {}

    def read() -> None:
        try:
            box["nodes"] = nodes(gcs_address)
        except Exception as exc:  # noqa: BLE001 -- a GCS that cannot be read is "unknown"
            box["error"] = exc

    # A daemon thread, not an executor: a GCS client stuck in its retries must not hold the exit.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if "nodes" not in box:
        return None
    return {str(iid): str(getattr(n, "status", n)) for iid, n in box["nodes"].items()}


def jobs_of(ledger_jobs: Mapping[str, str], deadline_jobs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Instance id -> job from the ledger, and pool -> deadline job (run name) from the manifests."""
    out = {pool: name for pool, name in deadline_jobs}
    out.update({iid: job for iid, job in ledger_jobs.items() if job})
    return out


def _deadline_jobs(settings: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """(pool, run name) of the deadline jobs registered in Train storage, and what could not be read."""
    try:
        from ray_multicloud.train.jobs import discover_jobs, storage_roots

        found = discover_jobs(storage_roots(settings), cluster_name=settings.cluster_name)
    except Exception as exc:  # noqa: BLE001 -- job names are a nicety; the machines are listed anyway
        return [], [f"train jobs: cannot be listed ({exc})"]
    return [(job.pool, job.name) for job in found.jobs], [f"train jobs: {p}" for p in found.problems]


def collect_status(
    config: Mapping[str, Any],
    *,
    clouds: Mapping[str, Cloud] | None = None,
    ray_states: Callable[[str], Mapping[str, str] | None] | None = None,
    ledger_jobs: Callable[[str], Mapping[str, str]] | None = None,
    now: float | None = None,
    gcs_timeout_s: float = 10.0,
    book: Any = None,
) -> FleetStatus:
    """The machines of the cluster YAML ``config`` on every configured cloud.

    ``clouds``: the drivers (default: built from ``provider.clouds`` through the registry, as the
    provider builds them). ``ray_states``: the GCS read (default: ``read_ray_states``).
    ``ledger_jobs``: ledger path -> instance id -> job (default: the ledger read read-only).
    ``book``: the ``provider.OfferBook`` to price with (default: a new one over ``clouds``; a
    long-lived caller such as the dashboard passes one so live feeds are fetched once per TTL).
    Raises ``ConfigError`` for a config the provider would refuse.
    """
    from ray_multicloud.clouds import make_clouds
    from ray_multicloud.cluster_config.provider_section import load_settings
    from ray_multicloud.provider import OfferBook

    name = str(config.get("cluster_name", "default"))
    settings = load_settings(config.get("provider") or {}, name)
    if clouds is None:
        clouds = make_clouds(settings.clouds, state_dir=str(settings.state_dir))
    problems: list[str] = []
    instances, listed = list_clouds(clouds, name)
    problems.extend(listed)
    if book is None:
        book = OfferBook(settings, clouds)
    try:
        book.index()

        def offer_of(offer_id: str) -> Offer | None:
            return book.get(offer_id)
    except Exception as exc:  # noqa: BLE001 -- prices fall back to the launch tags
        problems.append(f"offer book: cannot build current prices ({type(exc).__name__}: {exc}); "
                        "showing launch prices")

        def offer_of(offer_id: str) -> Offer | None:
            return None
    states = (ray_states or (lambda a: read_ray_states(a, gcs_timeout_s)))(settings.gcs_address)
    if states is None:
        problems.append(f"GCS at {settings.gcs_address} not reachable: Ray node states unknown")
    from_ledger: Mapping[str, str] = {}
    if settings.ledger_path:
        read = ledger_jobs or _ledger_jobs
        try:
            from_ledger = read(settings.ledger_path)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"ledger {settings.ledger_path}: cannot read jobs ({exc})")
    deadline_jobs, job_problems = _deadline_jobs(settings)
    problems.extend(job_problems)
    jobs = jobs_of(from_ledger, deadline_jobs)
    at = time.time() if now is None else now
    rows = fleet_rows(instances, offer_of, states, jobs, at)
    return FleetStatus(cluster=name, at=at, rows=tuple(rows), clouds=tuple(clouds),
                       gcs_read=states is not None, problems=tuple(problems))


def _ledger_jobs(path: str) -> dict[str, str]:
    from pathlib import Path

    from ray_multicloud.dashboard.ledger_view import LedgerView

    if not Path(path).expanduser().is_file():
        return {}  # no ledger yet: no job known

    with LedgerView.open(path) as view:
        return view.jobs()
