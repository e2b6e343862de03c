"""Missing cloud credentials (the hardening issue's finding 8): a clear error that names the cloud's
section and says how to provide credentials, never a traceback from the SDK; keys are never read
from the YAML (the schemas refuse them, tests/test_cloud_schema.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_multicloud.errors import CloudError, ConfigError


@pytest.fixture
def no_google_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Application Default Credentials anywhere: no key file, no gcloud config, no metadata
    server (NO_GCE_CHECK stops google.auth from probing 169.254.169.254)."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")


def test_gcp_without_credentials_names_its_section_and_the_fix(
        no_google_credentials: None, tmp_path: Path) -> None:
    from ray_multicloud.clouds import make_cloud

    with pytest.raises(ConfigError) as err:
        make_cloud("gcp_west", {"driver": "gcp", "project": "p"}, state_dir=str(tmp_path))
    text = str(err.value)
    assert text.startswith("provider.clouds.gcp_west:")
    assert "application-default login" in text and "GOOGLE_APPLICATION_CREDENTIALS" in text


def test_a_gcp_credential_that_cannot_be_refreshed_is_a_cloud_error(tmp_path: Path) -> None:
    """An expired or revoked credential fails at refresh time, inside a call: the provider sees a
    ``CloudError`` (which it already handles per call), not google.auth's RefreshError."""
    from google.auth import credentials as gcreds
    from google.auth.exceptions import RefreshError

    from ray_multicloud.clouds.gcp import GcpCloud

    class Revoked(gcreds.Credentials):  # type: ignore[misc]
        def refresh(self, request: object) -> None:
            raise RefreshError("invalid_grant: Token has been expired or revoked.")

    cloud = GcpCloud("gcp", project="p", credentials=Revoked(),
                     api_endpoint="https://127.0.0.1:9", operation_timeout_s=1.0)
    with pytest.raises(CloudError) as err:
        cloud._access_token()
    assert "refused or could not be refreshed" in str(err.value)
    assert "invalid_grant" in str(err.value)
    with pytest.raises(CloudError) as err:
        cloud._call(lambda: Revoked().refresh(None))
    assert "RefreshError" in str(err.value)


def test_aws_without_credentials_says_how_to_provide_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from ray_multicloud.clouds.aws import AwsCloud

    # Nothing listens on this port: botocore must fail on signing, before any connection.
    cloud = AwsCloud("aws", regions=("us-east-1",), endpoint_url="http://127.0.0.1:9",
                     image_id="ami-12345678")
    with pytest.raises(CloudError) as err:
        cloud._call("us-east-1", "describe_instances")
    text = str(err.value)
    assert "no AWS credentials found" in text and "instance profile" in text
