"""The ``Cloud`` protocol every driver implements, and the values it speaks in.

Contracts every driver keeps (the contract suite in ``tests/test_cloud_contract.py`` checks them):

- **Tagged or nothing.** Every instance a driver creates carries ``request.tags`` (which always
  include the cluster, pool, offer and request-id tags below) from the moment it exists, or, where a
  cloud cannot tag atomically, is found by ``list`` through its request id and terminated by the
  provider's reconciliation. Nothing the project launches is ever unfindable.
- **Idempotent launch.** ``launch`` with a request id that already has a live instance returns that
  instance and creates nothing.
- **Idempotent terminate.** ``terminate`` of an instance that is gone, terminating or never existed
  returns normally.
- **Not found.** ``get`` returns ``None`` for an instance that does not exist or has terminated;
  it never raises for that.
- **Listing.** ``list(cluster)`` returns the non-terminated instances tagged with that cluster,
  pending ones included, whatever pool or offer they belong to.
- Calls are thread-safe and may block for the cloud's round trip; they never print.
- Failures raise the typed errors of ``ray_multicloud.errors``: ``CapacityError`` / ``QuotaError``
  (try another offer), ``ThrottledError`` (retry later), ``CloudError`` (anything else).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ray_multicloud.types import InstanceId, NodeState, Offer, RequestId

# Tag keys the project writes on every instance. Ray's own keys (ray-node-kind,
# ray-user-node-type, ray-node-status, ...) are added by the provider beside them.
TAG_CLUSTER = "rmc-cluster"
TAG_POOL = "rmc-pool"
TAG_OFFER = "rmc-offer"
TAG_REQUEST = "rmc-request-id"
TAG_CLOUD = "rmc-cloud"
TAG_CAPACITY = "rmc-capacity"
REQUIRED_TAGS = (TAG_CLUSTER, TAG_POOL, TAG_OFFER, TAG_REQUEST)

# Labels every Ray node the project starts carries. Ray's own ``ray.io/*`` labels come from the
# RAY_NODE_MARKET_TYPE / RAY_NODE_REGION / RAY_NODE_ZONE environment of the node's raylet.
LABEL_CLOUD = "rmc/cloud"
LABEL_POOL = "rmc/pool"
LABEL_INSTANCE_TYPE = "rmc/instance-type"
LABEL_INSTANCE_ID = "rmc/instance-id"


@dataclass(frozen=True, slots=True)
class CloudFeatures:
    """What a driver can do beyond the protocol, declared as data; the provider reads these, never
    the driver's class.

    ``spot``: sells spot capacity. ``interruption_notices``: warns before taking spot back.
    ``simulated_preemption``: a test or benchmark can preempt its instances (``preempt``).
    ``fixed_capacity``: a fixed set of machines (a private pool). ``own_offers``: sells the offers
    its ``offers()`` returns (``SellsFixedOffers``) instead of catalog rows. ``local_commands``: its
    instances are processes on this machine, so ``ray up`` runs their commands with a local
    runner (``clouds.local.runner``) instead of SSH.
    """

    spot: bool = True
    interruption_notices: bool = False
    simulated_preemption: bool = False
    fixed_capacity: bool = False
    own_offers: bool = False
    local_commands: bool = False


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """A node type's share of the cluster YAML's setup, as the startup script applies it before
    ``ray start`` (``ray up``'s ``bootstrap_config`` reads it from the YAML:
    ``cluster_config/worker_setup.py``; ``clouds/_startup.py`` renders it).

    ``initialization_commands`` run on the host first; ``inline_files`` are ``(remote path, base64
    of a gzipped tar)`` of small local ``file_mounts`` sources; ``remote_files`` are ``(remote path,
    s3:// or gs:// URI)`` fetched at boot; ``setup_commands`` are the node type's worker setup
    commands (Ray's ``setup_commands`` + ``worker_setup_commands``, or the node type's own), run
    inside the container when ``docker_image`` is set, where Ray then runs too.
    """

    initialization_commands: tuple[str, ...] = ()
    setup_commands: tuple[str, ...] = ()
    inline_files: tuple[tuple[str, str], ...] = ()
    remote_files: tuple[tuple[str, str], ...] = ()
    docker_image: str = ""
    docker_run_options: tuple[str, ...] = ()
    container_name: str = "ray_container"

    @property
    def empty(self) -> bool:
        return not (self.initialization_commands or self.setup_commands or self.inline_files
                    or self.remote_files or self.docker_image)


@dataclass(frozen=True, slots=True)
class AuthBootstrap:
    """How a new worker's Ray authenticates (``ray_multicloud.auth``). Never a secret itself: the
    names of the cluster's secrets in the driver's secret store, which the startup script fetches
    with the instance's own identity into 0600 files before anything else runs.

    ``token``: Ray token auth on (``RAY_AUTH_MODE=token``); False exports ``RAY_AUTH_MODE=disabled``,
    so a stray ``~/.ray/auth_token`` on the machine cannot turn it on. ``token_secret``: the token's
    secret name. ``tls_secrets``: (CA certificate, node certificate, node key) secret names; empty
    for no TLS."""

    token: bool = True
    token_secret: str = ""
    tls_secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RayBootstrap:
    """How a new worker instance joins the Ray cluster.

    ``resources`` and ``labels`` are what the Ray node must advertise (the YAML's node type plus
    the project's labels); ``env`` is exported before ``ray start`` (the driver adds
    ``RAY_CLOUD_INSTANCE_ID`` with the id it assigns, which autoscaler v2 matches instances by);
    ``setup`` is the node type's worker setup from the cluster YAML (None: none); ``auth``: how its
    Ray authenticates (None: the script leaves Ray's auth settings alone, as before the provider
    set them).
    """

    gcs_address: str
    node_type: str
    resources: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    setup: WorkerSetup | None = None
    auth: AuthBootstrap | None = None


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """Everything a driver needs to create one instance. ``bootstrap`` is None for a head node,
    whose Ray is started by ``ray up``'s head commands."""

    request_id: RequestId
    cluster: str
    pool: str
    offer: Offer
    tags: Mapping[str, str]
    bootstrap: RayBootstrap | None = None


@dataclass(frozen=True, slots=True)
class Instance:
    """A cloud instance as the driver sees it now."""

    instance_id: InstanceId
    cloud: str
    state: NodeState
    tags: Mapping[str, str]
    internal_ip: str
    external_ip: str | None = None
    launched_at: float = 0.0


@runtime_checkable
class SellsFixedOffers(Protocol):
    """A cloud that defines its own offers (a private pool) instead of selling catalog ones."""

    def offers(self) -> list[Offer]:
        """Every offer this cloud sells, at its own prices."""
        ...

    def slots(self, cluster: str) -> Mapping[str, int]:
        """How many instances of ``cluster`` each of its offers (by offer id) can hold at once: the
        machines of that kind, less those another cluster holds. An offer with as many live
        instances of the cluster as slots is full (no launch or move targets it); an offer not
        listed is unlimited."""
        ...


@runtime_checkable
class Cloud(Protocol):
    """One cloud account (or simulated cloud). See the module docstring for the contracts."""

    name: str
    features: CloudFeatures

    def launch(self, request: LaunchRequest) -> Instance:
        """Create one instance of ``request.offer`` tagged with ``request.tags``; idempotent by
        ``request.request_id``. Raises ``CapacityError``/``QuotaError`` when the offer cannot be had."""
        ...

    def terminate(self, instance_id: InstanceId) -> None:
        """Terminate the instance. Idempotent: unknown or already-gone instances return normally."""
        ...

    def get(self, instance_id: InstanceId) -> Instance | None:
        """The instance now, or None if it does not exist or has terminated."""
        ...

    def list(self, cluster: str) -> list[Instance]:
        """Non-terminated instances tagged with ``cluster`` (pending included)."""
        ...

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        """Merge ``tags`` into the instance's tags. Raises ``InstanceNotFound`` if it is gone."""
        ...
