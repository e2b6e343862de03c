"""AWS EC2 driver: GPU workers, spot or on-demand, one boto3 client per region.

- **Ids.** An instance id is ``<region>.<ec2 instance id>`` (``us-east-1.i-0abc...``) so
  ``get``/``terminate`` know which regional endpoint to call without searching; it is a valid Ray
  label value (``[A-Za-z0-9_.-]``, at most 63 characters).
- **Tagged or nothing.** Tags go on the instance and its volumes through ``TagSpecifications`` in
  the same ``RunInstances`` call, so no untagged instance ever exists.
- **Idempotent launch.** ``launch`` first looks for a live instance tagged with the request id,
  then calls ``RunInstances`` with ``ClientToken`` derived from the request id, which EC2 itself
  deduplicates (two racing launches of one request get one instance).
- **Spot** is ``InstanceMarketOptions`` one-time, terminate on interruption.
- **Credentials** come only from boto3's standard chain (environment, shared profile, instance
  role); ``profile`` names a profile of that chain, never a key. Error messages carry the EC2 error
  code and message only, never request parameters.

- **Listing covers every region.** ``list(cluster)`` asks every region enabled for the account
  (``DescribeRegions``, cached for ``REGIONS_TTL_S``) as well as ``regions`` and every region this
  process launched into, whatever ``regions`` says: a restarted provider or ``ray down`` must see
  every instance tagged with the cluster, wherever an earlier process put it. Regions are asked in
  parallel. If ``DescribeRegions`` is refused (no ``ec2:DescribeRegions`` permission) the driver
  says so once, at error level, and lists ``regions`` plus the regions it launched into.

- **A launch right after a listing asks nothing first.** ``launch`` looks its request id up in the
  last ``list(cluster)`` when that is younger than one autoscaler tick (``clouds/_recent.py``)
  instead of a ``DescribeInstances`` per launch; ``ClientToken`` still dedupes what it missed.
- **Capacity answers reach the driver at once.** ``RunInstances`` goes through a client of its own
  with botocore's retries off (``total_max_attempts: 1``): botocore's standard and legacy modes
  retry an ``InsufficientInstanceCapacity`` (an HTTP 500) two to four times, with waits, before the
  driver could try the next zone. The driver retries that client's throttling, transient server
  errors (``TRANSIENT_CODES``) and lost connections itself (``retry_throttled``), which is safe
  because ``ClientToken`` makes a repeated ``RunInstances`` return the instance already created.

Events: ``us-east-1/use1-az1 p3.2xlarge spot (InsufficientInstanceCapacity) -> CapacityError``,
``(RequestLimitExceeded) -> retried with backoff``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray_multicloud.auth.secrets import SsmSecretStore
from ray_multicloud.clouds._recent import RecentListing
from ray_multicloud.clouds._retry import Backoff, retry_throttled
from ray_multicloud.clouds._startup import check_size, render_startup_script
from ray_multicloud.clouds.base import (
    TAG_CLUSTER,
    TAG_REQUEST,
    CloudFeatures,
    Instance,
    LaunchRequest,
)
from ray_multicloud.clouds.images import (
    AWS_DLAMI_PARAMETER,
    BOOT_INSTALL,
    ImageChoice,
    aws_image,
    boot_install,
    ssm_lookup,
)
from ray_multicloud.clouds.schemas import AWS as AWS_SCHEMA
from ray_multicloud.errors import (
    CapacityError,
    CloudError,
    ConfigError,
    InstanceNotFound,
    QuotaError,
    ThrottledError,
)
from ray_multicloud.schema import check_section
from ray_multicloud.types import CapacityType, InstanceId, NodeState, Offer

logger = logging.getLogger(__name__)

REGIONS_TTL_S = 3600.0  # how long the account's enabled-region list (DescribeRegions) is reused
LIST_PARALLELISM = 8  # regions asked at once by list()
DEFAULT_REGION = "us-east-1"  # where DescribeRegions is asked when nothing else names a region

CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "SpotMaxPriceTooLow",
        "Unsupported",  # the instance type is not offered in this zone
    }
)
QUOTA_CODES = frozenset({"MaxSpotInstanceCountExceeded", "InstanceLimitExceeded", "VcpuLimitExceeded"})
THROTTLE_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)
# Server-side failures worth the same call again (EC2 error reference, "Server error codes").
TRANSIENT_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"})
NO_RETRY_CONFIG = {"total_max_attempts": 1}  # botocore retries for the RunInstances client: none
NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})

_STATES = {
    "pending": NodeState.PENDING,
    "running": NodeState.RUNNING,
    "stopping": NodeState.RUNNING,
    "stopped": NodeState.RUNNING,
    "shutting-down": NodeState.TERMINATED,
    "terminated": NodeState.TERMINATED,
}
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]
_ZONE_ID = re.compile(r"^[a-z]{2,}[0-9]*-az[0-9]+$")  # use1-az1: a zone id, not a zone name

IMDS_INSTANCE_ID_LINES = (
    (
        "IMDS_TOKEN=$(curl -sS -X PUT http://169.254.169.254/latest/api/token "
        "-H 'X-aws-ec2-metadata-token-ttl-seconds: 300')"
    ),
    (
        'EC2_ID=$(curl -sS -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" '
        "http://169.254.169.254/latest/meta-data/instance-id)"
    ),
)


def client_token(request_id: str) -> str:
    """EC2 ``ClientToken`` (at most 64 ASCII characters) for a request id."""
    if len(request_id) <= 64 and request_id.isascii():
        return request_id
    return "rmc-" + hashlib.sha256(request_id.encode()).hexdigest()[:56]


def split_id(instance_id: str) -> tuple[str, str]:
    region, sep, ec2_id = instance_id.partition(".")
    if not sep or not region or not ec2_id:
        return "", ""
    return region, ec2_id


def map_client_error(exc: Exception, *, offer_id: str = "") -> CloudError:
    """Turn a botocore ``ClientError`` (or any error) into a typed error with only code and message."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return CloudError("aws", f"EC2 call failed: {type(exc).__name__}", offer_id=offer_id)
    error = response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or "no message"
    if code in QUOTA_CODES:
        return QuotaError(
            "aws",
            f"{message}; request a quota increase or try another region",
            offer_id=offer_id,
            code=code,
        )
    if code in CAPACITY_CODES:
        return CapacityError(
            "aws",
            f"{message}; try another zone or capacity type",
            offer_id=offer_id,
            code=code,
        )
    if code in THROTTLE_CODES:
        return ThrottledError("aws", f"{message}; retry later", offer_id=offer_id, code=code)
    if code in NOT_FOUND_CODES:
        return InstanceNotFound("aws", message, offer_id=offer_id, code=code)
    return CloudError("aws", message, offer_id=offer_id, code=code)


class AwsCloud:
    """The ``Cloud`` protocol over EC2. See the module docstring for ids, tags and idempotency."""

    features = CloudFeatures(spot=True, interruption_notices=True)

    def __init__(
        self,
        name: str = "aws",
        *,
        regions: tuple[str, ...] = (),
        image_id: str | Mapping[str, str] = "",
        subnet_ids: Mapping[str, str] | None = None,
        security_group_ids: Mapping[str, list[str]] | list[str] | None = None,
        key_name: str = "",
        iam_instance_profile: str = "",
        disk_gib: int = 200,
        endpoint_url: str | None = None,
        profile: str | None = None,
        spot_max_price: str | float = "ondemand",
        session: Any | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        image_ssm_parameter: str = AWS_DLAMI_PARAMETER,
        pip_install: tuple[str, ...] = BOOT_INSTALL,
    ) -> None:
        try:
            import boto3  # lazily: `import ray_multicloud` works without it
        except ImportError as exc:
            raise ConfigError(
                f"provider.clouds.{name}.driver",
                "the aws driver needs boto3: pip install 'ray_multicloud[aws]'",
            ) from exc

        self.name = name
        self.regions = tuple(regions)
        self._image_id = image_id
        self._subnet_ids = dict(subnet_ids or {})
        self._security_group_ids = security_group_ids or []
        self._key_name = key_name
        self._iam_instance_profile = iam_instance_profile
        self._disk_gib = disk_gib
        self._endpoint_url = endpoint_url
        self._spot_max_price = spot_max_price
        self._session = session if session is not None else boto3.Session(profile_name=profile)
        self._backoff = backoff
        self._sleep = sleep
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._seen_regions: set[str] = set()
        self._account_regions: tuple[str, ...] = ()
        self._account_regions_at: float | None = None
        self._regions_refused = False
        self._image_parameter = image_ssm_parameter
        self._pip_install = tuple(pip_install)
        self._images: dict[str, ImageChoice] = {}
        self.recent = RecentListing()  # the last list(cluster), reused by launch (clouds/_recent.py)
        self._ssm = ssm_lookup(self._session, endpoint_url=endpoint_url)
        self._secret_stores: dict[str, SsmSecretStore] = {}

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> AwsCloud:
        """Build from a ``provider.clouds.<name>`` entry. Keys: regions, image_id (str or
        region -> AMI; unset: the Deep Learning AMI of ``image_ssm_parameter``, see clouds/images.py),
        pip_install (what a default image installs at boot), subnet_ids (zone or region -> subnet),
        security_group_ids (list or region ->
        list), key_name, iam_instance_profile, disk_gib, endpoint_url, profile, spot_max_price."""
        _ = state_dir
        # Its schema first (clouds/schemas.py): credentials refused, misspelt keys named.
        check_section(f"provider.clouds.{name}", spec, AWS_SCHEMA)
        return cls(
            name,
            regions=tuple(spec.get("regions", ())),
            image_id=spec.get("image_id", ""),
            subnet_ids=spec.get("subnet_ids"),
            security_group_ids=spec.get("security_group_ids"),
            key_name=str(spec.get("key_name", "")),
            iam_instance_profile=str(spec.get("iam_instance_profile", "")),
            disk_gib=int(spec.get("disk_gib", 200)),
            endpoint_url=spec.get("endpoint_url"),
            profile=spec.get("profile"),
            spot_max_price=spec.get("spot_max_price", "ondemand"),
            image_ssm_parameter=str(spec.get("image_ssm_parameter") or AWS_DLAMI_PARAMETER),
            pip_install=boot_install(spec, f"provider.clouds.{name}"),
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _client(self, region: str, *, launch: bool = False) -> Any:
        """The region's EC2 client; ``launch``: the one ``RunInstances`` goes through, with
        botocore's retries off (the module docstring says why)."""
        key = f"{region}#launch" if launch else region
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = None
                if launch:
                    from botocore.config import Config

                    config = Config(retries=dict(NO_RETRY_CONFIG))
                client = self._session.client(
                    "ec2", region_name=region, endpoint_url=self._endpoint_url, config=config
                )
                self._clients[key] = client
            return client

    def _call(self, region: str, op: str, *, offer_id: str = "", **params: Any) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            NoCredentialsError,
        )
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )

        launch = op == "run_instances"

        def once() -> Any:
            try:
                return getattr(self._client(region, launch=launch), op)(**params)
            except ClientError as exc:
                mapped = map_client_error(exc, offer_id=offer_id)
                if launch and mapped.code in TRANSIENT_CODES:
                    # botocore does not retry this client; ClientToken makes the repeat safe.
                    raise ThrottledError("aws", f"{mapped}; retried", offer_id=offer_id,
                                         code=mapped.code) from None
                raise mapped from None
            except (BotoConnectionError, HTTPClientError) as exc:
                if not launch:
                    raise CloudError("aws", f"{op} in {region} failed: {type(exc).__name__}",
                                     offer_id=offer_id) from None
                raise ThrottledError("aws", f"{op} in {region}: {type(exc).__name__}; retried",
                                     offer_id=offer_id) from None
            except NoCredentialsError:
                raise CloudError(
                    "aws",
                    f"{op} in {region}: no AWS credentials found; on EC2 give the head an instance "
                    "profile, elsewhere set AWS_PROFILE or run `aws configure` (keys are never read "
                    "from the YAML)",
                    offer_id=offer_id,
                ) from None
            except BotoCoreError as exc:
                raise CloudError(
                    "aws",
                    f"{op} in {region} failed: {type(exc).__name__}",
                    offer_id=offer_id,
                ) from None

        kwargs: dict[str, Any] = {"backoff": self._backoff}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return retry_throttled(once, **kwargs)

    def _instance(self, region: str, raw: Mapping[str, Any]) -> Instance:
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        launch_time: Any = raw.get("LaunchTime")
        return Instance(
            instance_id=InstanceId(f"{region}.{raw['InstanceId']}"),
            cloud=self.name,
            state=_STATES.get(raw.get("State", {}).get("Name", ""), NodeState.PENDING),
            tags=tags,
            internal_ip=str(raw.get("PrivateIpAddress", "")),
            external_ip=raw.get("PublicIpAddress"),
            launched_at=launch_time.timestamp() if hasattr(launch_time, "timestamp") else 0.0,
        )

    def _describe(self, region: str, **params: Any) -> list[Instance]:
        found: list[Instance] = []
        token: str | None = None
        while True:
            page_params = dict(params)
            if token:
                page_params["NextToken"] = token
            reply = self._call(region, "describe_instances", **page_params)
            for reservation in reply.get("Reservations", []):
                found += [self._instance(region, raw) for raw in reservation.get("Instances", [])]
            token = reply.get("NextToken")
            if not token:
                return found

    def image_for(self, region: str, offer_id: str = "") -> ImageChoice:
        """The AMI a worker in ``region`` boots: ``image_id``'s, else the default GPU AMI read
        once per region from SSM; ``CloudError`` (code ParameterNotFound) naming the region and
        parameter when it does not exist there."""
        with self._lock:
            cached = self._images.get(region)
        if cached is not None:
            return cached
        try:
            choice = aws_image(self._image_id, region, self._ssm, parameter=self._image_parameter,
                               pip_install=self._pip_install, cloud=self.name)
        except ConfigError as exc:
            raise CloudError("aws", str(exc), offer_id=offer_id, code="ParameterNotFound") from None
        with self._lock:
            self._images[region] = choice
        return choice

    def _security_groups(self, region: str) -> list[str]:
        groups = self._security_group_ids
        if isinstance(groups, Mapping):
            return list(groups.get(region, []))
        return list(groups)

    def _max_price(self, offer: Offer) -> str | None:
        setting = self._spot_max_price
        if setting == "ondemand":
            return None  # EC2's default cap is the on-demand price
        if setting == "offer":
            return f"{offer.price_per_hour * 1.2:.5f}"
        return f"{float(setting):.5f}"

    # -- the Cloud protocol -----------------------------------------------------------------

    def run_instances_params(self, request: LaunchRequest) -> dict[str, Any]:
        """The exact ``RunInstances`` parameters for ``request`` (public so tests can check shapes)."""
        offer = request.offer
        region = offer.region
        tags = [{"Key": k, "Value": v} for k, v in sorted(request.tags.items())]
        if "Name" not in request.tags:
            tags.append({"Key": "Name", "Value": f"rmc-{request.cluster}-{request.pool}"})
        image = self.image_for(region, offer.offer_id)
        params: dict[str, Any] = {
            "ImageId": image.image,
            "InstanceType": offer.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token(request.request_id),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/sda1",
                    "Ebs": {
                        "VolumeSize": self._disk_gib,
                        "VolumeType": "gp3",
                        "DeleteOnTermination": True,
                    },
                }
            ],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "InstanceInitiatedShutdownBehavior": "terminate",
        }
        if offer.zone:
            key = "AvailabilityZoneId" if _ZONE_ID.match(offer.zone) else "AvailabilityZone"
            params["Placement"] = {key: offer.zone}
        subnet = self._subnet_ids.get(offer.zone) or self._subnet_ids.get(region)
        groups = self._security_groups(region)
        if subnet:
            params["SubnetId"] = subnet
        if groups:
            params["SecurityGroupIds"] = groups
        if self._key_name:
            params["KeyName"] = self._key_name
        if self._iam_instance_profile:
            params["IamInstanceProfile"] = {"Name": self._iam_instance_profile}
        if offer.capacity is CapacityType.SPOT:
            spot: dict[str, Any] = {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            }
            max_price = self._max_price(offer)
            if max_price is not None:
                spot["MaxPrice"] = max_price
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": spot,
            }
        if request.bootstrap is not None:
            script = render_startup_script(
                request.bootstrap,
                offer,
                watcher_cloud="aws",
                instance_id_lines=[
                    *IMDS_INSTANCE_ID_LINES,
                    f'RMC_INSTANCE_ID="{region}.$EC2_ID"',
                ],
                pip_install=image.pip_install,
                secret_store=self.secret_store(request.cluster) if request.bootstrap.auth else None,
            )
            # boto3 base64-encodes RunInstances UserData itself
            params["UserData"] = check_size(script, "aws", offer_id=offer.offer_id)
        return params

    def _find_request(self, region: str, request: LaunchRequest) -> Instance | None:
        found = self._describe(
            region,
            Filters=[
                {"Name": f"tag:{TAG_REQUEST}", "Values": [request.request_id]},
                {"Name": f"tag:{TAG_CLUSTER}", "Values": [request.cluster]},
                {"Name": "instance-state-name", "Values": _LIVE_STATES},
            ],
        )
        return found[0] if found else None

    def launch(self, request: LaunchRequest) -> Instance:
        region = request.offer.region
        with self._lock:
            self._seen_regions.add(region)
        fresh, listed = self.recent.lookup(request.cluster, request.request_id)
        existing = listed if fresh else self._find_request(region, request)
        if existing is not None:
            return existing
        params = self.run_instances_params(request)
        reply = self._call(region, "run_instances", offer_id=request.offer.offer_id, **params)
        return self._instance(region, reply["Instances"][0])

    def secret_store(self, cluster: str) -> SsmSecretStore:
        """The cluster's secrets: SSM Parameter Store ``SecureString`` parameters in the cloud's home
        region (its first configured region, else the session's, else us-east-1), which workers in
        every region read with their instance profile (``auth/secrets.py`` says which rights)."""
        _ = cluster  # the parameter names carry the cluster
        home = (self.regions[0] if self.regions
                else getattr(self._session, "region_name", None) or DEFAULT_REGION)
        with self._lock:
            store = self._secret_stores.get(home)
            if store is None:
                store = SsmSecretStore(self._session, home, endpoint_url=self._endpoint_url)
                self._secret_stores[home] = store
        return store

    def terminate(self, instance_id: InstanceId) -> None:
        region, ec2_id = split_id(instance_id)
        if not region:
            return
        self.recent.drop(instance_id)
        try:
            self._call(region, "terminate_instances", InstanceIds=[ec2_id])
        except InstanceNotFound:
            return

    def get(self, instance_id: InstanceId) -> Instance | None:
        region, ec2_id = split_id(instance_id)
        if not region:
            return None
        try:
            found = self._describe(region, InstanceIds=[ec2_id])
        except InstanceNotFound:
            return None
        live = [i for i in found if i.state is not NodeState.TERMINATED]
        return live[0] if live else None

    def enabled_regions(self) -> tuple[str, ...]:
        """The regions enabled for the account (``DescribeRegions``), cached for ``REGIONS_TTL_S``.

        Empty when EC2 refuses the call (logged once at error level, naming the permission)."""
        now = time.monotonic()
        with self._lock:
            at = self._account_regions_at
            if at is not None and now - at < REGIONS_TTL_S:
                return self._account_regions
            seed = (*self.regions, *sorted(self._seen_regions))
        home = seed[0] if seed else (getattr(self._session, "region_name", None) or DEFAULT_REGION)
        try:
            reply = self._call(home, "describe_regions")
        except CloudError as exc:
            with self._lock:
                first = not self._regions_refused
                self._regions_refused = True
            if first:
                logger.error(
                    "aws cloud %r: DescribeRegions failed (%s); list and ray down only see regions %s and "
                    "the regions this process launched into, so instances elsewhere are not found. Grant "
                    "ec2:DescribeRegions, or set provider.clouds.%s.regions to every region the cluster "
                    "can launch into.", self.name, exc, list(self.regions), self.name)
            return ()
        regions = tuple(sorted(str(r["RegionName"]) for r in reply.get("Regions", []) if r.get("RegionName")))
        with self._lock:
            self._account_regions, self._account_regions_at = regions, now
        return regions

    def list_regions(self) -> list[str]:
        """Every region ``list`` asks: the account's enabled regions, ``regions``, and the regions
        this process launched into."""
        account = self.enabled_regions()
        with self._lock:
            return sorted(set(account) | set(self.regions) | self._seen_regions)

    def list(self, cluster: str) -> list[Instance]:
        """Live instances tagged with ``cluster`` in every region of ``list_regions`` (asked in
        parallel). A region that cannot be read fails the whole call: a partial list would look
        like nodes that ended."""
        filters = [
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": _LIVE_STATES},
        ]
        regions = self.list_regions()
        if len(regions) <= 1:
            found = [i for r in regions for i in self._describe(r, Filters=filters)]
        else:
            with ThreadPoolExecutor(max_workers=min(LIST_PARALLELISM, len(regions))) as pool:
                pages = list(pool.map(lambda r: self._describe(r, Filters=filters), regions))
            found = [i for page in pages for i in page]
        self.recent.store(cluster, found)
        return found

    def set_tags(self, instance_id: InstanceId, tags: Mapping[str, str]) -> None:
        region, ec2_id = split_id(instance_id)
        if not region or self.get(instance_id) is None:
            raise InstanceNotFound("aws", f"instance {instance_id} does not exist")
        self._call(
            region,
            "create_tags",
            Resources=[ec2_id],
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )
