"""The ``provider:`` section of a cluster YAML, parsed and checked, and the offers it makes available.

Keys (besides Ray's own ``type``, ``module``, ``disable_node_updaters``, ...)::

    provider:
      type: external
      module: ray_multicloud.provider.MultiCloudNodeProvider
      gcs_address: 127.0.0.1:6379      # where workers join the head's Ray (host:port)
      state_dir: /tmp/ray_multicloud/demo   # local clouds' shared state, price board
      catalog: null                    # a catalog CSV; default: the snapshot shipped with the package
      cooldown_seconds: 300            # how long an offer that answered "no capacity" is skipped
      ledger: /tmp/ray_multicloud/demo/ledger.db   # optional SQLite ledger of spend
      max_price_age_seconds: 3600      # a live price older than this is flagged in every decision
      price_ttl_seconds: 300           # how often live price feeds (aws/gcp/azure drivers) are fetched
      budget: {max_usd_per_hour: 40, monthly_usd: 20000}   # the whole cluster (cluster_config/budget.py)
      dashboard_port: 8470             # optional: `ray up` starts the read-only dashboard on the head,
                                       # on 127.0.0.1:PORT (reach it through an SSH tunnel)
      start_controller: true           # false: `ray up` does not start the controller on the head
                                       # (a harness that moves nodes itself); pools opt out with
                                       # migration: {enabled: false}
      gcs_fault_tolerance:             # optional: the GCS keeps its tables in an external Redis, so
        redis_address: 10.0.0.5:6379   # the head can fall and come back (cluster_config/gcs_ft.py)
      train_storage: s3://bucket/train # where Train runs keep checkpoints (default on embedded clouds:
                                       # <state_dir>/train); the controller finds deadline jobs there
      auth_mode: token                 # the default: Ray token auth on every node (ray_multicloud/auth);
                                       # `disabled` turns it off
      tls: false                       # true: mutual TLS between nodes (local/private clouds only)
      serve_transport: default         # `optimized`: Ray Serve over gRPC on every node, for latency
                                       # (ray_multicloud/serve/transport.py)
      clouds:
        aws:   {driver: local, prices_from: aws, regions: [us-east-1, us-west-2]}
        onprem: {driver: private, region: onprem-dc1, machines: [...]}

Errors are ``ConfigError`` naming the key, raised before anything launches.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ray_multicloud.clouds import check_cloud_section
from ray_multicloud.cluster_config.gcs_ft import GcsFaultTolerance, parse_gcs_ft
from ray_multicloud.cluster_config.reservations import parse_reservations, reserved_offers
from ray_multicloud.errors import ConfigError
from ray_multicloud.schema import Field, Section, check_section
from ray_multicloud.serve.transport import TRANSPORTS
from ray_multicloud.types import Offer, Reservation

# Keys Ray itself reads or writes in the provider section.
_RAY_KEYS = frozenset({
    "type", "module", "disable_node_updaters", "disable_launch_config_check",
    "foreground_node_launch", "use_internal_ips", "head_ip", "worker_ips", "cache_stopped_nodes",
})
# The keys this project reads, as data (ray_multicloud/schema.py). Their values are checked by
# load_settings below and by the section readers named in each doc, which word the errors.
PROVIDER = Section({
    "gcs_address": Field(doc="where workers join the head's Ray, host:port (check_gcs_address)"),
    "state_dir": Field(doc="local clouds' shared state and the price board"),
    "catalog": Field(doc="a catalog CSV; default: the snapshot shipped with the package"),
    "cooldown_seconds": Field(doc="how long an offer that answered 'no capacity' is skipped"),
    "ledger": Field(doc="the SQLite ledger of spend"),
    "clouds": Field(doc="name -> a driver's section (clouds/schemas.py)"),
    "max_price_age_seconds": Field(doc="a live price older than this is flagged"),
    "price_ttl_seconds": Field(doc="how often live price feeds are fetched"),
    "train_storage": Field(doc="where Train runs keep checkpoints"),
    "start_controller": Field(doc="false: ray up does not start the controller"),
    "dashboard_port": Field(doc="ray up starts the read-only dashboard on 127.0.0.1:PORT"),
    "gcs_fault_tolerance": Field(doc="the head's external Redis (cluster_config/gcs_ft.py)"),
    "budget": Field(doc="the whole cluster's budget (cluster_config/budget.py)"),
    "idle": Field(doc="cluster-wide idle governance (cluster_config/idle.py)"),
    "reservations": Field(doc="declared commitments (cluster_config/reservations.py)"),
    "auth_mode": Field(doc="token (default) or disabled (ray_multicloud/auth)"),
    "tls": Field(doc="mutual TLS between nodes (ray_multicloud/auth)"),
    "serve_transport": Field(doc="Ray Serve's request-path transport on every node (serve/transport.py)"),
    **{k: Field(doc="Ray's own") for k in sorted(_RAY_KEYS)},
})
_OUR_KEYS = frozenset(PROVIDER.fields) - _RAY_KEYS


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    cluster_name: str
    gcs_address: str
    state_dir: Path
    clouds: Mapping[str, Mapping[str, Any]]
    catalog_path: str | None = None
    cooldown_s: float = 300.0
    ledger_path: str | None = None
    max_price_age_s: float = 3600.0
    price_ttl_s: float = 300.0
    train_storage: str | None = None
    start_controller: bool = True
    dashboard_port: int | None = None
    reservations: tuple[Reservation, ...] = ()
    gcs_ft: GcsFaultTolerance | None = None  # provider.gcs_fault_tolerance (cluster_config/gcs_ft.py)
    serve_transport: str = "default"  # provider.serve_transport (serve/transport.py TRANSPORTS)


def load_cluster_yaml(path: str | Path) -> dict[str, Any]:
    """Read a cluster YAML file; ``ConfigError`` if it cannot be read or is not a YAML mapping."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"cannot read the cluster YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "is not a cluster YAML mapping (cluster_name, provider, ...)")
    return raw


def load_settings(provider_config: Mapping[str, Any], cluster_name: str) -> ProviderSettings:
    """Parse and check ``provider_config``; raises ``ConfigError`` naming the bad key."""
    # Ray's keys and ours; "_"-prefixed keys are YAML anchors' scratch space.
    check_section("provider", {k: v for k, v in provider_config.items() if not str(k).startswith("_")},
                  PROVIDER)
    gcs = check_gcs_address(provider_config.get("gcs_address"))
    clouds = provider_config.get("clouds")
    if not isinstance(clouds, Mapping) or not clouds:
        raise ConfigError("provider.clouds", "name at least one cloud, e.g. {aws: {driver: local}}")
    for name, spec in clouds.items():
        check_cloud_section(str(name), spec)  # its driver's schema, before the driver reads it
    state_dir = _path_or_none(provider_config, "state_dir") or f"/tmp/ray_multicloud/{cluster_name}"
    cooldown = _seconds(provider_config, "cooldown_seconds", 300)
    ledger = _path_or_none(provider_config, "ledger")
    max_age = _seconds(provider_config, "max_price_age_seconds", 3600, positive=True)
    ttl = _seconds(provider_config, "price_ttl_seconds", 300)
    train_storage = provider_config.get("train_storage")
    if train_storage is not None and (not isinstance(train_storage, str) or not train_storage.strip()):
        raise ConfigError("provider.train_storage",
                          "must be a storage URI (s3://bucket/path, gs://..., abfs://...) or a local path")
    start_controller = provider_config.get("start_controller", True)
    if not isinstance(start_controller, bool):
        raise ConfigError("provider.start_controller", f"must be true or false, got {start_controller!r}")
    from ray_multicloud.auth import parse_auth

    parse_auth(provider_config)  # ConfigError on a bad auth_mode / tls
    dashboard_port = provider_config.get("dashboard_port")
    is_port = isinstance(dashboard_port, int) and not isinstance(dashboard_port, bool)
    if dashboard_port is not None and not (is_port and 1 <= dashboard_port <= 65535):
        raise ConfigError("provider.dashboard_port",
                          f"must be a TCP port in 1..65535 (or left out: none), got {dashboard_port!r}")
    serve_transport = provider_config.get("serve_transport", "default")
    if not isinstance(serve_transport, str) or serve_transport not in TRANSPORTS:
        raise ConfigError("provider.serve_transport",
                          f"must be one of {', '.join(TRANSPORTS)} (or left out: default), "
                          f"got {serve_transport!r}")
    return ProviderSettings(
        cluster_name=cluster_name,
        gcs_address=gcs,
        state_dir=Path(str(state_dir)).expanduser(),
        clouds={str(k): dict(v) for k, v in clouds.items()},
        catalog_path=_path_or_none(provider_config, "catalog"),
        cooldown_s=cooldown,
        ledger_path=str(Path(str(ledger)).expanduser()) if ledger else None,
        max_price_age_s=max_age,
        price_ttl_s=ttl,
        train_storage=train_storage.strip() if isinstance(train_storage, str) else None,
        start_controller=start_controller,
        dashboard_port=dashboard_port,
        reservations=parse_reservations(provider_config),
        gcs_ft=parse_gcs_ft(provider_config.get("gcs_fault_tolerance"), cluster_name),
        serve_transport=str(serve_transport),
    )


def check_gcs_address(value: object) -> str:
    """``provider.gcs_address`` as ``host:port`` (``[v6]:port`` for IPv6): a host workers can dial
    (not empty, not the unspecified 0.0.0.0 / ::) and a port in 1..65535; ``ConfigError`` otherwise."""
    key = "provider.gcs_address"
    fix = "set the head's GCS address as host:port, e.g. 127.0.0.1:6379 locally"
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(key, f"{value!r}: {fix}")
    host, _, port_text = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"{value!r}: the port must be a number in 1..65535; {fix}")
    if not host:
        raise ConfigError(key, f"{value!r}: no host; {fix}")
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        unspecified = False
    if unspecified:
        raise ConfigError(key, f"{value!r}: {host} is a listen-on-all address, not one a worker can dial; "
                          "give the head's own address")
    return value.strip()


def _path_or_none(provider_config: Mapping[str, Any], key: str) -> str | None:
    value = provider_config.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"provider.{key}", f"must be a file path (a string), got {value!r}")
    return value


def _seconds(
    provider_config: Mapping[str, Any], key: str, default: float, *, positive: bool = False
) -> float:
    """``provider.<key>`` as seconds: a finite number, > 0 when ``positive``, else >= 0."""
    raw = provider_config.get(key, default)
    if isinstance(raw, bool):
        raise ConfigError(f"provider.{key}", f"must be a number of seconds, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"provider.{key}", f"must be a number of seconds, got {raw!r}") from exc
    if not math.isfinite(value):
        raise ConfigError(f"provider.{key}", f"must be a finite number of seconds, got {raw!r}")
    if positive and value <= 0:
        raise ConfigError(f"provider.{key}", f"must be positive, got {raw!r}")
    if value < 0:
        raise ConfigError(f"provider.{key}", f"must not be negative, got {raw!r}")
    return value


def catalog_offers_for(name: str, spec: Mapping[str, Any], catalog: Iterable[Offer]) -> list[Offer]:
    """The catalog offers a public (or simulated public) cloud entry sells, relabelled with its name.

    ``prices_from`` (default: the entry's name) picks the catalog cloud; ``regions`` narrows it.
    """
    source = str(spec.get("prices_from", name))
    regions = spec.get("regions")
    allowed = set(regions) if regions else None
    out = []
    for offer in catalog:
        if offer.cloud != source or (allowed is not None and offer.region not in allowed):
            continue
        out.append(offer if source == name else replace(offer, cloud=name))
    return out


def offers_of_clouds(
    settings: ProviderSettings, catalog: Sequence[Offer], fixed: Mapping[str, Sequence[Offer]],
    *, now: float | None = None,
) -> list[Offer]:
    """Every offer the configured clouds sell: a cloud with its own offers (a private pool, given in
    ``fixed`` by name) sells those; every other entry sells its catalog offers (``catalog_offers_for``);
    plus one reserved offer per ``provider.reservations`` entry active at ``now`` (None: all of them;
    ``ConfigError`` when one matches no offer)."""
    offers: list[Offer] = []
    for name, spec in settings.clouds.items():
        own = fixed.get(name)
        offers.extend(own if own is not None else catalog_offers_for(name, spec, catalog))
    if settings.reservations:
        offers.extend(reserved_offers(settings.reservations, offers, now=now))
    return offers
