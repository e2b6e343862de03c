"""Default GPU images (issue 16 item 2): each driver boots a maintained public GPU image when the YAML
names none, installs the pinned Ray at boot, and a user-given image still wins.

AWS is tested against moto's SSM (the public parameter seeded in moto's backend: moto, like AWS,
refuses PutParameter under /aws/); GCP and Azure by their request bodies, built offline.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cloud_factories import gpu_offer
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ssm.models import Parameter, ssm_backends

from ray_multicloud.clouds.base import LaunchRequest, RayBootstrap
from ray_multicloud.clouds.images import (
    AWS_DLAMI_PARAMETER,
    BOOT_INSTALL,
    GCP_DEFAULT_IMAGE,
    aws_image,
    azure_image,
    gcp_image,
    ssm_lookup,
)
from ray_multicloud.dry_run import dry_run
from ray_multicloud.errors import CloudError, ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "cluster_configs" / "aws-gcp-azure-gpu.yaml"
SEEDED = {"us-east-1": "ami-0dlamieast0000001", "us-west-2": "ami-0dlamiwest0000002"}


def seed(region: str, value: str, name: str = AWS_DLAMI_PARAMETER) -> None:
    """Put a public (/aws/service/...) parameter into moto's SSM, as AWS publishes it."""
    ssm_backends[DEFAULT_ACCOUNT_ID][region]._parameters[name].append(
        Parameter(account_id=DEFAULT_ACCOUNT_ID, name=name, value=value, parameter_type="String",
                  description=None, allowed_pattern=None, keyid=None,
                  last_modified_date=datetime.datetime.now(datetime.UTC), version=1, data_type="text")
    )


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        for region, ami in SEEDED.items():
            seed(region, ami)
        yield boto3.Session(aws_access_key_id="AKIATESTING", aws_secret_access_key="testing",
                            region_name="us-east-1")


def request(cloud: str, region: str, zone: str, instance_type: str) -> LaunchRequest:
    offer = gpu_offer(cloud, region, zone, instance_type)
    return LaunchRequest(
        request_id="r-1", cluster="c", pool="p", offer=offer,
        tags={"rmc-cluster": "c", "rmc-pool": "p", "rmc-offer": offer.offer_id, "rmc-request-id": "r-1"},
        bootstrap=RayBootstrap(gcs_address="10.0.0.1:6379", node_type="p", resources={"GPU": 1}),
    )


# -- AWS: the Deep Learning AMI's public SSM parameter ---------------------------------------------------


def test_aws_default_image_is_the_regions_dlami_and_boot_installs_ray(ssm: Any) -> None:
    from ray_multicloud.clouds.aws import AwsCloud

    cloud = AwsCloud("aws", regions=("us-east-1", "us-west-2"), session=ssm)
    for region, zone in (("us-east-1", "us-east-1a"), ("us-west-2", "us-west-2b")):
        params = cloud.run_instances_params(request("aws", region, zone, "g5.xlarge"))
        assert params["ImageId"] == SEEDED[region]
        assert "python3 -m pip install -q 'ray[default,train,serve]==2.60.0' ray_multicloud==0.1.0" in \
            params["UserData"]
    choice = cloud.image_for("us-east-1")
    assert choice.default and AWS_DLAMI_PARAMETER in choice.source


def test_aws_given_image_wins_and_installs_nothing(ssm: Any) -> None:
    from ray_multicloud.clouds.aws import AwsCloud

    cloud = AwsCloud("aws", image_id={"us-east-1": "ami-mine"}, session=ssm)
    params = cloud.run_instances_params(request("aws", "us-east-1", "us-east-1a", "g5.xlarge"))
    assert params["ImageId"] == "ami-mine" and "pip install" not in params["UserData"]
    # A region the mapping leaves out falls back to the default there.
    assert cloud.image_for("us-west-2").image == SEEDED["us-west-2"]


def test_aws_parameter_absent_in_a_region_names_region_and_parameter(ssm: Any) -> None:
    from ray_multicloud.clouds.aws import AwsCloud

    cloud = AwsCloud("aws", session=ssm)
    with pytest.raises(CloudError) as err:
        cloud.run_instances_params(request("aws", "eu-north-1", "eu-north-1a", "g5.xlarge"))
    text = str(err.value)
    assert err.value.code == "ParameterNotFound"
    assert "eu-north-1" in text and AWS_DLAMI_PARAMETER in text and "image_id.eu-north-1" in text


def test_aws_image_ssm_parameter_and_pip_install_come_from_the_cloud_entry(ssm: Any) -> None:
    from ray_multicloud.clouds.aws import AwsCloud

    arm = "/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
    seed("us-east-1", "ami-0arm", name=arm)
    # from_config builds boto3's default chain: under mock_aws that is moto's fake credentials.
    spec = {"image_ssm_parameter": arm, "pip_install": ["ray==2.60.0", "./w.whl"]}
    cloud = AwsCloud.from_config("aws", spec, state_dir="/tmp")
    choice = cloud.image_for("us-east-1")
    assert choice.image == "ami-0arm" and choice.pip_install == ("ray==2.60.0", "./w.whl")


def test_pure_aws_resolution_without_a_cloud() -> None:
    calls: list[tuple[str, str]] = []

    def lookup(region: str, name: str) -> str | None:
        calls.append((region, name))
        return {"us-east-1": "ami-x"}.get(region)

    assert aws_image("", "us-east-1", lookup).image == "ami-x"
    assert aws_image("ami-given", "us-east-1", lookup).default is False
    assert calls == [("us-east-1", AWS_DLAMI_PARAMETER)]  # a given image asks nothing
    with pytest.raises(ConfigError) as err:
        aws_image({"us-east-1": "ami-1"}, "ap-south-2", lookup)
    assert err.value.key == "provider.clouds.aws.image_id" and "ap-south-2" in str(err.value)


# -- plan says which image each cloud/region boots ------------------------------------------------------


def example() -> dict[str, Any]:
    config = yaml.safe_load(EXAMPLE.read_text())
    for cloud in ("aws", "gcp", "azure"):
        config["provider"]["clouds"][cloud].pop("image_id", None)
        config["provider"]["clouds"][cloud].pop("image", None)
    return config


def test_plan_offline_names_each_clouds_default_image() -> None:
    notes = "\n".join(dry_run(example(), now=0.0).notes)
    for region in ("us-east-1", "us-west-2"):
        assert f"aws {region}: default image = SSM parameter {AWS_DLAMI_PARAMETER}" in notes
    assert f"gcp (all regions): default image {GCP_DEFAULT_IMAGE}" in notes
    assert "azure (all regions): default image microsoft-dsvm:ubuntu-hpc:2204:latest" in notes
    assert "ray[default,train,serve]==2.60.0" in notes


def test_plan_with_ssm_names_the_ami_and_a_given_image_wins(ssm: Any) -> None:
    config = example()
    config["provider"]["clouds"]["gcp"]["image"] = "projects/p/global/images/family/mine"
    notes = "\n".join(dry_run(config, now=0.0, ssm=ssm_lookup(ssm)).notes)
    east = SEEDED["us-east-1"]
    assert f"aws us-east-1: default image {east} (SSM parameter {AWS_DLAMI_PARAMETER})" in notes
    assert "gcp (all regions): image projects/p/global/images/family/mine (from the cluster YAML)" in notes


def test_plan_names_the_region_where_the_parameter_is_absent(ssm: Any) -> None:
    config = example()
    config["provider"]["clouds"]["aws"]["regions"] = ["us-east-1", "eu-north-1"]
    with pytest.raises(ConfigError) as err:
        dry_run(config, now=0.0, ssm=ssm_lookup(ssm))
    assert err.value.key == "provider.clouds.aws.image_id"
    assert "eu-north-1" in str(err.value) and AWS_DLAMI_PARAMETER in str(err.value)


# -- GCP and Azure: tables, checked in their request bodies ---------------------------------------------


def test_gcp_default_is_a_dlvm_family_and_a_given_image_wins() -> None:
    from google.auth.credentials import AnonymousCredentials

    from ray_multicloud.clouds.gcp import GcpCloud

    assert gcp_image("").image == "projects/deeplearning-platform-release/global/images/family/" \
        "common-cu128-ubuntu-2204-nvidia-570"
    default = GcpCloud("gcp", project="p", api_endpoint="http://127.0.0.1:9",
                       credentials=AnonymousCredentials())
    body = default.instance_body(request("gcp", "us-central1", "us-central1-a", "g2-standard-4"))
    assert body["disks"][0]["initializeParams"]["sourceImage"] == GCP_DEFAULT_IMAGE
    script = next(i["value"] for i in body["metadata"]["items"] if i["key"] == "startup-script")
    assert all(spec in script for spec in ("'ray[default,train,serve]==2.60.0'", "ray_multicloud==0.1.0"))
    mine = GcpCloud("gcp", project="p", image="projects/x/global/images/y", api_endpoint="http://127.0.0.1:9",
                    credentials=AnonymousCredentials())
    given = mine.instance_body(request("gcp", "us-central1", "us-central1-a", "g2-standard-4"))
    assert given["disks"][0]["initializeParams"]["sourceImage"] == "projects/x/global/images/y"
    items = {i["key"]: i["value"] for i in given["metadata"]["items"]}
    assert "pip install" not in items["startup-script"]
    assert mine.image.default is False
    assert mine.image.image == "projects/x/global/images/y"


class _Token:
    token, expires_on = "t", 2**31


class _Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> _Token:
        return _Token()


def azure(image: Any = None) -> Any:
    from ray_multicloud.clouds.azure import AzureCloud

    return AzureCloud(subscription_id="s", resource_group="rg", subnet_ids={"eastus": "sub"},
                      ssh_public_key="ssh-ed25519 AAAA k", image=image, base_url="http://127.0.0.1:9",
                      credential=_Credential())


def test_azure_default_is_ubuntu_hpc_and_a_given_image_wins() -> None:
    body = azure().vm_body(request("azure", "eastus", "", "Standard_NC4as_T4_v3"))
    assert body["properties"]["storageProfile"]["imageReference"] == {
        "publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204", "version": "latest"}
    script = base64.b64decode(body["properties"]["osProfile"]["customData"]).decode()
    assert "pip install -q 'ray[default,train,serve]==2.60.0'" in script
    given = azure({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/mine"})
    body = given.vm_body(request("azure", "eastus", "", "Standard_NC4as_T4_v3"))
    assert body["properties"]["storageProfile"]["imageReference"] == {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/mine"}
    assert "pip install" not in base64.b64decode(body["properties"]["osProfile"]["customData"]).decode()
    ref, choice = azure_image({"publisher": "p", "offer": "o", "sku": "s", "version": "1"})
    assert ref == {"publisher": "p", "offer": "o", "sku": "s", "version": "1"} and not choice.default


def test_boot_install_pins_the_heads_ray() -> None:
    import re

    setup_py = (Path(__file__).resolve().parent.parent / "setup.py").read_text()
    pin = re.search(r'RAY = "([^"]+)"', setup_py)
    assert pin is not None and BOOT_INSTALL[0] == pin.group(1)


def test_aws_launch_through_moto_boots_the_ssm_ami_end_to_end() -> None:
    """The whole AWS path on moto's server: SSM lookup at the driver's endpoint, then RunInstances
    with that AMI (moto knows the image), and the instance carries it."""
    from cloud_factories import aws_session, moto_server

    from ray_multicloud.clouds.aws import AwsCloud

    with moto_server() as endpoint:
        session = aws_session()
        ec2 = session.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        seed("us-east-1", ami)
        cloud = AwsCloud("aws", regions=("us-east-1",), endpoint_url=endpoint, session=session,
                         sleep=lambda _s: None)
        inst = cloud.launch(request("aws", "us-east-1", "us-east-1a", "g5.xlarge"))
        ec2_id = inst.instance_id.split(".", 1)[1]
        described = ec2.describe_instances(InstanceIds=[ec2_id])["Reservations"][0]["Instances"][0]
        assert described["ImageId"] == ami
        cloud.terminate(inst.instance_id)
