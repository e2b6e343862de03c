"""Default GPU images: which maintained public image a driver boots when the YAML names none.

- **AWS**: the Deep Learning Base OSS NVIDIA Driver GPU AMI (Ubuntu 22.04, x86_64), read per region
  from its public SSM parameter (``AWS_DLAMI_PARAMETER``; a cloud entry's ``image_ssm_parameter``
  names another, e.g. the arm64 one). The only call this module makes, through a lookup the
  driver passes in.
- **GCP**: the Deep Learning VM image family ``GCP_DLVM_FAMILY`` of project
  ``deeplearning-platform-release`` (NVIDIA driver preinstalled; images are global, so one name
  serves every region).
- **Azure**: the marketplace image ``microsoft-dsvm:ubuntu-hpc:2204:latest`` (Ubuntu HPC 22.04,
  NVIDIA driver and InfiniBand stack preinstalled; offered in every public region).

None of these carries Ray or this package, so a worker booted on a default image installs
``BOOT_INSTALL`` (the pinned Ray and this package's version) at boot, before the YAML's setup
commands (a cloud entry's ``pip_install`` list replaces it, e.g. with a wheel URL or a git ref).
A user-given image always wins and is assumed to carry both.

Names checked on 2026-05 against the vendors' docs and public configs that use them:
``/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id``,
``family/common-cu128-ubuntu-2204-nvidia-570``, ``microsoft-dsvm/ubuntu-hpc/2204``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray_multicloud import __version__
from ray_multicloud.errors import CloudError, ConfigError

AWS_DLAMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
GCP_DLVM_PROJECT = "deeplearning-platform-release"
GCP_DLVM_FAMILY = "common-cu128-ubuntu-2204-nvidia-570"
GCP_DEFAULT_IMAGE = f"projects/{GCP_DLVM_PROJECT}/global/images/family/{GCP_DLVM_FAMILY}"
AZURE_DEFAULT_IMAGE: Mapping[str, str] = {
    "publisher": "microsoft-dsvm",
    "offer": "ubuntu-hpc",
    "sku": "2204",
    "version": "latest",
}
RAY_PIN = "ray[default,train,serve]==2.60.0"  # the Ray the head runs (setup.py's RAY)
BOOT_INSTALL: tuple[str, ...] = (RAY_PIN, f"ray_multicloud=={__version__}")

# (region, parameter name) -> value, or None when the parameter does not exist there.
SsmLookup = Callable[[str, str], "str | None"]


@dataclass(frozen=True, slots=True)
class ImageChoice:
    """The image a driver boots in a region: ``default`` when this module chose it (the worker then
    installs ``pip_install`` at boot); ``source`` says where it came from, for ``plan``."""

    cloud: str
    region: str
    image: str
    default: bool
    source: str
    pip_install: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.cloud} {self.region}".strip()
        if not self.default:
            return f"{where}: image {self.image} (from the cluster YAML)"
        return (f"{where}: default image {self.image} ({self.source}); installs "
                f"{', '.join(self.pip_install)} at boot")


def boot_install(spec: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A cloud entry's ``pip_install`` (list of pip specs), or ``BOOT_INSTALL``."""
    value = spec.get("pip_install")
    if value is None:
        return BOOT_INSTALL
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{key}.pip_install", f"must be a list of pip requirement specs, got {value!r}")
    return tuple(value)


def configured_aws_image(image_id: str | Mapping[str, str], region: str) -> str:
    image = image_id.get(region, "") if isinstance(image_id, Mapping) else image_id
    return str(image or "")


def aws_image(
    image_id: str | Mapping[str, str],
    region: str,
    lookup: SsmLookup,
    *,
    parameter: str = AWS_DLAMI_PARAMETER,
    pip_install: Sequence[str] = BOOT_INSTALL,
    cloud: str = "aws",
) -> ImageChoice:
    """The AMI for ``region``: the configured one, else the SSM parameter's value there.

    ``ConfigError`` (key ``provider.clouds.<cloud>.image_id``) when the parameter does not exist in
    the region, naming the region, the parameter and the fix."""
    configured = configured_aws_image(image_id, region)
    if configured:
        return ImageChoice(cloud, region, configured, False, "cluster YAML")
    value = lookup(region, parameter)
    if not value:
        raise ConfigError(
            f"provider.clouds.{cloud}.image_id",
            f"no default GPU AMI in {region}: SSM parameter {parameter} does not exist there; set "
            f"image_id.{region} to an AMI with NVIDIA drivers, or image_ssm_parameter to one that "
            f"exists in {region} (aws ssm get-parameters-by-path --region {region} "
            "--path /aws/service/deeplearning/ami --recursive)",
        )
    return ImageChoice(cloud, region, value, True, f"SSM parameter {parameter}", tuple(pip_install))


def gcp_image(image: str, *, pip_install: Sequence[str] = BOOT_INSTALL, cloud: str = "gcp",
              region: str = "") -> ImageChoice:
    if image:
        return ImageChoice(cloud, region, image, False, "cluster YAML")
    return ImageChoice(cloud, region, GCP_DEFAULT_IMAGE, True,
                       f"Deep Learning VM family {GCP_DLVM_FAMILY}", tuple(pip_install))


def azure_image(image: Mapping[str, str] | None, *, pip_install: Sequence[str] = BOOT_INSTALL,
                cloud: str = "azure", region: str = "") -> tuple[dict[str, str], ImageChoice]:
    """The ARM ``imageReference`` and the choice behind it."""
    if image:
        ref = {"id": str(image["id"])} if "id" in image else {
            k: str(image[k]) for k in ("publisher", "offer", "sku", "version") if k in image}
        text = ref.get("id") or ":".join(ref.get(k, "") for k in ("publisher", "offer", "sku", "version"))
        return ref, ImageChoice(cloud, region, text, False, "cluster YAML")
    ref = dict(AZURE_DEFAULT_IMAGE)
    text = ":".join(ref[k] for k in ("publisher", "offer", "sku", "version"))
    return ref, ImageChoice(cloud, region, text, True, "Azure marketplace Ubuntu HPC (DSVM)",
                            tuple(pip_install))


def ssm_lookup(session: Any, *, endpoint_url: str | None = None) -> SsmLookup:
    """An ``SsmLookup`` over a boto3 session: ``ParameterNotFound`` -> None; any other failure ->
    ``CloudError`` (credentials, network), never a hang (botocore's own timeouts)."""
    clients: dict[str, Any] = {}

    def lookup(region: str, name: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = clients.get(region)
        if client is None:
            client = session.client("ssm", region_name=region, endpoint_url=endpoint_url)
            clients[region] = client
        try:
            reply = client.get_parameter(Name=name)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("ParameterNotFound", "ParameterVersionNotFound"):
                return None
            raise CloudError("aws", f"reading SSM parameter {name} in {region} failed: {code}",
                             code=code) from None
        except BotoCoreError as exc:
            raise CloudError("aws", f"reading SSM parameter {name} in {region} failed: "
                             f"{type(exc).__name__}") from None
        return str(reply.get("Parameter", {}).get("Value", "")) or None

    return lookup
