"""The ``provider.clouds.<name>`` section of each driver, as data (``ray_multicloud.schema.Section``).

One schema per entry of the driver registry (``clouds/__init__.py``: ``DRIVERS`` and, beside it,
``SCHEMAS``), listing every key the driver and the code around it (the catalog, the price feeds,
``plan``) read from its section, so an unknown or misspelt key (``subnet_id``, ``network_tag``) is
refused with close matches before the driver is built, instead of being ignored (a worker in the
default network). Importing this module imports no cloud SDK.

The checks here are of shape (a string, a list of strings, a region -> id mapping, a number in
range); a driver keeps its deeper checks (an https endpoint, a Key Vault URL, a machine list).
"""

from __future__ import annotations

from ray_multicloud.errors import ConfigError
from ray_multicloud.schema import Field, Section, choice, either, mapping_of, number, text, texts

_CREDENTIALS_AWS = ("credentials do not belong in the cluster YAML; use the environment, "
                    "a shared profile (`profile:`) or an instance role")
_CREDENTIALS_GCP = ("credentials do not belong in the cluster YAML; use Application Default "
                    "Credentials (gcloud auth application-default login, or the VM's service account)")
_CREDENTIALS_AZURE = ("credentials do not belong in the cluster YAML; use DefaultAzureCredential "
                      "(AZURE_* environment variables, a managed identity, or `az login`)")

_URL = text("a URL (https://..., plain http only for a loopback test server)")
_REGION_IDS = mapping_of(text("an id"), "a mapping of region (or zone) -> id, e.g. {us-east-1: subnet-0abc}")

# Keys every catalog-priced cloud entry may hold, read outside its driver: the registry
# (``driver``), the catalog (``prices_from``, ``regions``: provider_section.catalog_offers_for).
COMMON: dict[str, Field] = {
    "driver": Field(text("a driver name"), doc="which driver builds this cloud (default: the entry's name)"),
    "prices_from": Field(text("a catalog cloud name (aws, gcp, azure)"),
                         doc="whose catalog prices this entry's offers (default: the entry's name)"),
    "regions": Field(texts("a list of region names, e.g. [us-east-1]"), nullable=True,
                     doc="the regions whose offers are used (default: all)"),
}
# The live price feed's base URL (pricing/feeds.py), for the drivers that have a feed.
_FEED: dict[str, Field] = {
    "prices_endpoint": Field(_URL, nullable=True, doc="the live price feed's base URL (tests, mirrors)"),
    "pip_install": Field(texts("a list of pip requirement specs"), nullable=True,
                         doc="what a default image installs at boot (clouds/images.py)"),
}
_DISK = Field(number(minimum=1, integer=True, what="a whole number of GiB >= 1"), doc="boot disk size")
_SPOT_MAX_PRICE = Field(
    either("'ondemand', 'offer' or a price in $/h > 0", choice({"ondemand", "offer"}), number(strict=True)),
    doc="spot price cap: ondemand (the on-demand price), offer (1.2 x the offer's price) or $/h",
)

LOCAL = Section(
    {
        **COMMON,
        "max_instances": Field(number(integer=True, what="a whole number of instances >= 0"), nullable=True,
                               doc="how many instances the simulated cloud runs at most"),
        "exhausted_offers": Field(texts("a list of offer ids"),
                                  doc="offers that always answer no capacity"),
        "price_trace": Field(text("a file path"), nullable=True, doc="a price trace the simulator replays"),
    },
    example="{driver: local, prices_from: aws, regions: [us-east-1]}",
)

AWS = Section(
    {
        **COMMON,
        **_FEED,
        "image_id": Field(either("an AMI id, or a mapping of region -> AMI id", text(), _REGION_IDS),
                          nullable=True, doc="unset: the Deep Learning AMI of image_ssm_parameter"),
        "image_ssm_parameter": Field(text("an SSM parameter name"), nullable=True),
        "subnet_ids": Field(_REGION_IDS, nullable=True, doc="zone or region -> subnet id"),
        "security_group_ids": Field(
            either("a list of security group ids, or a mapping of region -> list",
                   texts(), mapping_of(texts(), "")),
            nullable=True),
        "key_name": Field(text("an EC2 key pair name")),
        "iam_instance_profile": Field(text("an instance profile name or ARN")),
        "disk_gib": _DISK,
        "endpoint_url": Field(_URL, nullable=True),
        "profile": Field(text("a profile name of the shared AWS config"), nullable=True),
        "spot_max_price": _SPOT_MAX_PRICE,
    },
    example="{driver: aws, regions: [us-east-1], subnet_ids: {us-east-1: subnet-0abc}}",
    forbidden={k: _CREDENTIALS_AWS
               for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")},
)


def _termination_action(key: str, value: object) -> None:
    choice({"DELETE", "STOP"})(key, value.upper() if isinstance(value, str) else value)


GCP = Section(
    {
        **COMMON,
        **_FEED,
        "project": Field(text("a GCP project id")),
        "zones": Field(mapping_of(texts(), "a mapping of region -> list of zones, e.g. "
                                  "{us-central1: [us-central1-a]}"), nullable=True),
        "image": Field(text("an image or image family URL"), nullable=True,
                       doc="unset: a Deep Learning VM family"),
        "network": Field(text("a network, e.g. global/networks/default")),
        "subnetwork": Field(text("a subnetwork, e.g. regions/us-central1/subnetworks/ray")),
        "network_tags": Field(texts("a list of network tags, e.g. [ray-cluster]")),
        "service_account": Field(text("a service account e-mail")),
        "disk_gib": _DISK,
        "instance_termination_action": Field(_termination_action, doc="DELETE (default) or STOP"),
        "api_endpoint": Field(_URL, nullable=True),
        "secrets_endpoint": Field(_URL, nullable=True),
    },
    example="{driver: gcp, project: my-project, regions: [us-central1]}",
    forbidden={k: _CREDENTIALS_GCP for k in ("credentials", "credentials_file", "service_account_key",
                                              "private_key")},
)

AZURE = Section(
    {
        **COMMON,
        **_FEED,
        "subscription_id": Field(text("a subscription id"), nullable=True,
                                 doc="default: the environment's AZURE_SUBSCRIPTION_ID"),
        "resource_group": Field(text("a resource group name")),
        "subnet_ids": Field(_REGION_IDS, nullable=True, doc="region -> subnet resource id"),
        "network_security_group_ids": Field(_REGION_IDS, nullable=True, doc="region -> NSG resource id"),
        "ssh_public_key": Field(text("an SSH public key")),
        "image": Field(mapping_of(text(), "a mapping of publisher/offer/sku/version, or {id: ...}"),
                       nullable=True, doc="unset: Ubuntu HPC"),
        "admin_username": Field(text("a user name")),
        "disk_gib": _DISK,
        "spot_max_price": _SPOT_MAX_PRICE,
        "base_url": Field(_URL, nullable=True),
        "key_vault": Field(text("a Key Vault name or https URL"), nullable=True),
        "managed_identity_id": Field(text("a user-assigned managed identity resource id")),
    },
    example="{driver: azure, resource_group: ray, regions: [eastus], "
            "subnet_ids: {eastus: /subscriptions/...}}",
    forbidden={k: _CREDENTIALS_AZURE for k in ("client_secret", "client_id", "tenant_id", "password",
                                                "access_token")},
)

def _any_string(key: str, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string (the GPU model, e.g. A100; \"\" for none), got {value!r}")


# One ``machines[i]`` entry of a private pool: its hardware and how many (issue 13: ``count: 1.9``
# was read as 1 and negative vCPUs were accepted). Its price keys are checked by
# ``clouds/private.machine_price`` (which of them go together); here they may hold anything.
MACHINE = Section(
    {
        "instance_type": Field(text("a machine kind name, e.g. a100x8"), required=True),
        "accelerator": Field(_any_string, nullable=True),
        "accelerator_count": Field(number(what="a finite number of GPUs >= 0")),
        "vcpus": Field(number(strict=True, what="a finite number of vCPUs > 0")),
        "memory_gib": Field(number(strict=True, what="a finite number of GiB > 0")),
        "count": Field(number(minimum=1, integer=True, what="a whole number of machines >= 1"), required=True,
                       doc="how many machines of this kind the pool has"),
        **{k: Field(None) for k in ("ondemand_equivalent_per_hour", "amortised_per_hour",
                                     "amortized_per_hour", "capex_usd", "power_kw", "lifetime_years", "pue",
                                     "usd_per_kwh", "overhead_per_hour")},
    },
    example="{instance_type: a100x8, accelerator: A100, accelerator_count: 8, vcpus: 96, memory_gib: 1024, "
            "count: 2}",
)

PRIVATE = Section(
    {
        "driver": COMMON["driver"],
        "region": Field(text("a region name for the pool")),
        "machines": Field(None, doc="the pool's machines (clouds/private.py)"),
        "cost": Field(None, nullable=True, doc="pool-wide amortisation inputs (clouds/private.py)"),
    },
    example="{driver: private, region: onprem-dc1, machines: [{instance_type: a100x8, count: 2}]}",
)

def _env_value(key: str, value: object) -> None:
    # An environment variable's value: a string or a number (``null`` would be exported as "None").
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(key, f"must be a string or a number (the variable's value), got {value!r}")


SSH = Section(
    {
        "driver": COMMON["driver"],
        "region": Field(text("a region name for the pool")),
        "hosts": Field(None, doc="the pool's machines (clouds/ssh.py)"),
        "known_hosts": Field(text("a file path")),
        "ray": Field(text("the ray command on the hosts")),
        "env": Field(mapping_of(_env_value, "a mapping of environment variables for ray start")),
        "unavailable_seconds": Field(number(what="a finite number of seconds >= 0")),
        "connect_timeout_seconds": Field(number(minimum=1, what="a finite number of seconds >= 1")),
        "ssh_config": Field(text("a file path"), nullable=True),
        "head_address": Field(text("the head's GCS address, HOST:PORT"), nullable=True),
    },
    example="{driver: ssh, region: dc1, "
            "hosts: [{address: 10.0.0.11, user: ray, ssh_private_key: ~/.ssh/dc1}]}",
)
