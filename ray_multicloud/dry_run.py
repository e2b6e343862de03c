"""``ray-multicloud plan CONFIG``: check a multi-cloud cluster YAML offline and say, per pool, which
offers the policy would use now and why.

Offline means no cloud call and no credential: the provider section is parsed with the provider's
own ``load_settings``, each public cloud entry is checked for what its driver needs (and for
credentials that do not belong in a YAML) without building an SDK client, every node type's pool
or pinned offer is parsed with ``cluster_config.pools.parse_pool`` / ``parse_offer`` against the offers the
configured clouds sell (the catalog snapshot, narrowed by each cloud's ``regions``; a private
pool's own machines), and ``policy.place`` ranks them. ``live=True`` overlays live prices first
(that one step goes to the clouds' public price APIs) and reads the default AWS AMI's SSM
parameter in each region (with the caller's AWS credentials). Notes say which image each public
cloud boots per region (``clouds/images.py``) and what each worker node type's setup does
(``cluster_config/worker_setup.py``); a ``file_mounts`` source that does not exist, a malformed
docker image or an SSM parameter absent in a region is a ``ConfigError`` naming the key, region and
fix. Nothing here prints: ``dry_run`` returns a ``DryRun`` the CLI renders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ray_multicloud.clouds import driver_of
from ray_multicloud.clouds.images import (
    AWS_DLAMI_PARAMETER,
    SsmLookup,
    aws_image,
    azure_image,
    boot_install,
    configured_aws_image,
    gcp_image,
)
from ray_multicloud.cluster_config.budget import parse_budgets
from ray_multicloud.cluster_config.cluster import check_node_types, check_ray_schema
from ray_multicloud.cluster_config.gcs_ft import check_head_commands
from ray_multicloud.cluster_config.migration import parse_migration
from ray_multicloud.cluster_config.predictive import parse_predictive
from ray_multicloud.cluster_config.provider_section import load_settings, offers_of_clouds
from ray_multicloud.cluster_config.slo import best_network_p95, parse_slo
from ray_multicloud.cluster_config.worker_setup import INLINE_LIMIT_BYTES, worker_setups
from ray_multicloud.errors import CloudError, ConfigError
from ray_multicloud.policy import OfferIndex, matching_offers, place
from ray_multicloud.policy.place import describe_offer
from ray_multicloud.pricing import load_catalog
from ray_multicloud.serve.ranking import load_rtt_table
from ray_multicloud.types import Decision, Offer, PoolSpec

LOOPBACK = ("127.", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class PoolDryRun:
    node_type: str
    count: int
    pinned: bool
    placements: tuple[tuple[Offer, tuple[Offer, ...], tuple[str, ...]], ...] = ()
    infeasible: tuple[str, ...] = ()


@dataclass
class DryRun:
    cluster: str
    pools: list[PoolDryRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(not p.infeasible for p in self.pools)


def check_cloud_entry(name: str, spec: Mapping[str, Any]) -> list[str]:
    """What a public cloud entry lacks for its driver (as warnings). Credentials, unknown keys and
    wrong shapes were refused before, by its driver's schema (``load_settings``)."""
    driver = driver_of(name, spec)
    warnings: list[str] = []
    where = f"provider.clouds.{name}"
    if driver == "aws":
        if not spec.get("regions"):
            warnings.append(f"{where}.regions: unset; launches may go to any region, and listing asks every "
                            "region enabled for the account (the role needs ec2:DescribeRegions)")
        if not spec.get("security_group_ids"):
            warnings.append(
                f"{where}.security_group_ids: unset; workers get the VPC's default group (see "
                "docs/networking.md)"
            )
    elif driver == "gcp":
        if not spec.get("project"):
            raise ConfigError(f"{where}.project", "a GCP project id is required")
        if not spec.get("network_tags"):
            warnings.append(
                f"{where}.network_tags: unset; firewall rules can only target the rmc-<cluster> tag"
            )
    elif driver == "azure":
        if not (spec.get("subscription_id") or os.environ.get("AZURE_SUBSCRIPTION_ID")):
            warnings.append(f"{where}.subscription_id: unset here and in AZURE_SUBSCRIPTION_ID")
        for key in ("resource_group", "subnet_ids", "ssh_public_key"):
            if not spec.get(key):
                raise ConfigError(f"{where}.{key}", "required by the Azure driver")
        regions = spec.get("regions") or []
        missing = [r for r in regions if r not in (spec.get("subnet_ids") or {})]
        if missing:
            raise ConfigError(f"{where}.subnet_ids", f"no subnet for region(s) {', '.join(missing)}")
        if not spec.get("network_security_group_ids"):
            warnings.append(f"{where}.network_security_group_ids: unset; NICs get the subnet's NSG only")
    return warnings


# Drivers whose offers come from their own config entry (a fixed pool), built offline.
FIXED_POOL_DRIVERS = ("private", "ssh")


def image_notes(name: str, spec: Mapping[str, Any], regions: list[str], ssm: SsmLookup | None) -> list[str]:
    """Which image each region of a public cloud entry boots (``clouds/images.py``). ``ssm``: read
    the default AMI's parameter now (``ConfigError`` if absent in a region); None: say it is read
    at launch."""
    driver = str(spec.get("driver", name))
    where = f"provider.clouds.{name}"
    install = boot_install(spec, where)
    notes: list[str] = []
    if driver == "aws":
        parameter = str(spec.get("image_ssm_parameter") or AWS_DLAMI_PARAMETER)
        for region in regions or ["(each region launched into)"]:
            image_id = spec.get("image_id") or ""
            if configured_aws_image(image_id, region):
                notes.append(aws_image(image_id, region, lambda r, p: None, cloud=name).describe())
            elif ssm is not None and not region.startswith("("):
                notes.append(aws_image(image_id, region, ssm, parameter=parameter, pip_install=install,
                                       cloud=name).describe())
            else:
                notes.append(
                    f"{name} {region}: default image = SSM parameter {parameter} (the Deep Learning AMI; "
                    f"read at launch, `plan --live` checks it); installs {', '.join(install)} at boot"
                )
    elif driver == "gcp":
        notes.append(gcp_image(str(spec.get("image") or ""), pip_install=install, cloud=name,
                               region="(all regions)").describe())
    elif driver == "azure":
        image = spec.get("image")
        notes.append(azure_image(image if isinstance(image, Mapping) else None, pip_install=install,
                                 cloud=name, region="(all regions)")[1].describe())
    return notes


def setup_notes(config: Mapping[str, Any]) -> list[str]:
    """What each worker node type's startup script will do beyond ``ray start``; ``ConfigError`` for a
    missing ``file_mounts`` source, a malformed docker image, or inlined mounts over the cap."""
    notes = []
    for node_type, setup in worker_setups(config, merged=False).items():
        if setup.empty:
            continue
        parts = []
        if setup.initialization_commands:
            parts.append(f"{len(setup.initialization_commands)} initialization command(s)")
        if setup.setup_commands:
            parts.append(f"{len(setup.setup_commands)} setup command(s)")
        if setup.inline_files:
            size = sum(len(b) * 3 // 4 for _, b in setup.inline_files)
            parts.append(f"file_mounts inlined into the startup script ({size} of {INLINE_LIMIT_BYTES} "
                         "bytes gzipped): " + ", ".join(t for t, _ in setup.inline_files))
        if setup.remote_files:
            parts.append("fetched at boot: " + ", ".join(f"{t} <- {u}" for t, u in setup.remote_files))
        if setup.docker_image:
            parts.append(f"Ray runs in docker image {setup.docker_image}")
        notes.append(f"{node_type} worker setup: " + "; ".join(parts))
    return notes


def _offers(settings: Any, catalog_path: str | None, now: float | None = None) -> list[Offer]:
    from ray_multicloud.clouds import make_cloud

    # Offline: only private pools are built (from their own machine lists); no cloud API is called.
    fixed = {
        name: make_cloud(name, spec, state_dir=str(settings.state_dir)).offers()  # type: ignore[attr-defined]
        for name, spec in settings.clouds.items()
        if str(spec.get("driver", name)) in FIXED_POOL_DRIVERS
    }
    return offers_of_clouds(settings, load_catalog(catalog_path).offers, fixed, now=now)


def _default_ssm() -> SsmLookup | None:
    try:
        import boto3
    except ImportError:
        return None
    from ray_multicloud.clouds.images import ssm_lookup

    return ssm_lookup(boto3.Session())


def dry_run(
    config: Mapping[str, Any],
    *,
    now: float | None = None,
    live: bool = False,
    endpoints: Mapping[str, str] | None = None,
    max_age_s: float | None = None,
    ssm: SsmLookup | None = None,
) -> DryRun:
    """Validate ``config`` (a parsed cluster YAML) and place each pool's first nodes. ``ConfigError``
    names the first invalid key. ``ssm``: how to read AWS SSM parameters (default with ``live``: the
    caller's boto3 credentials; offline: not read)."""
    now = time.time() if now is None else now
    cluster = str(config.get("cluster_name") or "default")
    provider = config.get("provider")
    if not isinstance(provider, Mapping):
        raise ConfigError("provider", "missing; see cluster_configs/aws-gcp-azure-gpu.yaml")
    if provider.get("module") != "ray_multicloud.provider.MultiCloudNodeProvider":
        raise ConfigError("provider.module", "must be ray_multicloud.provider.MultiCloudNodeProvider")
    check_ray_schema(config)
    settings = load_settings(provider, cluster)
    check_head_commands(config, settings.gcs_ft)
    out = DryRun(cluster)
    for name, spec in settings.clouds.items():
        driver_of(name, spec)  # ConfigError for a driver the registry lacks (with close matches)
    public = [n for n, s in settings.clouds.items() if str(s.get("driver", n)) in ("aws", "gcp", "azure")]
    for name in public:
        out.warnings += check_cloud_entry(name, settings.clouds[name])
    if ssm is None and live and any(str(settings.clouds[n].get("driver", n)) == "aws" for n in public):
        ssm = _default_ssm()
    for name in public:
        spec = settings.clouds[name]
        try:
            out.notes += image_notes(name, spec, list(spec.get("regions") or []), ssm)
        except CloudError as exc:  # no credentials or network: say so, do not fail the plan
            out.notes += image_notes(name, spec, list(spec.get("regions") or []), None)
            out.notes.append(f"{name}: could not read SSM now ({exc})")
    out.notes += setup_notes(config)
    if public and settings.gcs_address.startswith(LOOPBACK):
        out.warnings.append(
            f"provider.gcs_address {settings.gcs_address} is loopback: workers on {', '.join(public)} "
            "cannot reach it; use the head's overlay or peered-network address (docs/networking.md)"
        )
    offers = _offers(settings, settings.catalog_path, now)
    for name, spec in settings.clouds.items():
        if str(spec.get("driver", name)) == "private":
            from ray_multicloud.clouds.private import parse_machines, unpriced_warnings

            out.warnings += unpriced_warnings(name, parse_machines(name, spec)[1])
    if live:
        from ray_multicloud.pricing.show import live_overlay

        age = max_age_s if max_age_s is not None else float(provider.get("max_price_age_seconds", 3600))
        from ray_multicloud.pricing.feeds import drivers_of, endpoints_from_clouds

        urls = {**endpoints_from_clouds(settings.clouds), **(endpoints or {})}
        overlay = live_overlay(
            offers, endpoints=urls, drivers=drivers_of(settings.clouds), max_age_s=age, now=now
        )
        offers = list(overlay.offers)
        out.notes += list(overlay.notes)
    stale = sum(1 for o in offers if o.stale)
    if stale:
        out.notes.append(f"{stale} offer(s) carry stale prices (marked 'stale' below)")
    index = OfferIndex.build(offers)
    targets = check_node_types(config, index, settings.clouds)
    budgets = parse_budgets(config)
    if budgets.cluster is not None:
        out.notes.append(f"cluster {budgets.cluster.describe()}")
    for node_type, budget in budgets.pools.items():
        out.notes.append(f"{node_type}: {budget.describe()}")
    head = config.get("head_node_type")
    types = config["available_node_types"]
    for node_type, target in targets.items():
        if isinstance(target, Offer):
            out.pools.append(
                PoolDryRun(node_type, 1, True, ((target, (), (f"pinned: {describe_offer(target)}",)),))
            )
            continue
        pool: PoolSpec = target
        count = max(1, int(types[node_type].get("min_workers", 0) or 0)) if node_type != head else 1
        node_config = types[node_type]["node_config"]
        out.notes.append(f"{node_type}: {parse_migration(str(node_type), node_config).describe()}")
        slo = parse_slo(str(node_type), node_config)
        if slo is not None:
            out.notes.append(f"{node_type}: {best_network_p95(slo, pool, index, load_rtt_table())}")
        predictive = parse_predictive(str(node_type), node_config)
        if predictive is not None:
            out.notes.append(f"{node_type}: {predictive.describe()}")
        decision = place(pool, count, index, (), now=now)
        if isinstance(decision, Decision):
            out.pools.append(
                PoolDryRun(
                    node_type,
                    count,
                    False,
                    tuple((p.offer, p.fallbacks, p.reasons) for p in decision.placements),
                )
            )
        else:
            out.pools.append(PoolDryRun(node_type, count, False, infeasible=decision.reasons))
    out.warnings += unusable_reservations(index, [t for t in targets.values() if isinstance(t, PoolSpec)])
    return out


def unusable_reservations(index: OfferIndex, pools: Sequence[PoolSpec]) -> list[str]:
    """A warning per running reservation no pool can place a node on (its accelerator, limits or
    ``capacity_types`` exclude it): it is paid whether used or not, so it would be paid for nothing."""
    used = {o.offer_id for pool in pools for o in matching_offers(pool, index)}
    return [
        f"{o.source}: no pool can use the reservation {o.offer_id} (add 'reserved' to a matching pool's "
        f"capacity_types); its {o.reserved_count} node(s) at ${o.paid_price_per_hour:g}/h are paid whether "
        "used or not"
        for o in index.reserved() if o.offer_id not in used
    ]
