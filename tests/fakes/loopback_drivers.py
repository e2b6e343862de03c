"""The real GCP and Azure drivers, built ``from_config`` against the loopback fakes.

A test builds them from the cluster YAML's entries (``from_config``, exactly as the registry builds
the real ones) and hands them to the provider (``MultiCloudNodeProvider(..., clouds=...)``); only the
credentials differ (anonymous / a fake token instead of each SDK's chain, which would reach the
internet), and the cluster's secrets (its Ray auth token) live in 0600 files under the state
directory instead of Secret Manager / Key Vault (``tests/fakes/secret_servers.py`` fakes those, for
the tests about them). Nothing is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fakes.azure_server import FakeAzureCredential
from ray_multicloud.auth import local_store
from ray_multicloud.auth.secrets import FileSecretStore
from ray_multicloud.clouds.azure import AzureCloud
from ray_multicloud.clouds.gcp import GcpCloud


class LoopbackGcp(GcpCloud):
    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> LoopbackGcp:
        from google.auth.credentials import AnonymousCredentials

        return cls(
            name,
            project=str(spec["project"]),
            zones=spec.get("zones"),
            api_endpoint=str(spec["api_endpoint"]),
            instance_termination_action=str(spec.get("instance_termination_action", "DELETE")),
            credentials=AnonymousCredentials(),
            sleep=lambda _s: None,
        )._with_state_dir(state_dir)

    def _with_state_dir(self, state_dir: str) -> LoopbackGcp:
        self._state_dir = state_dir
        return self

    def secret_store(self, cluster: str) -> FileSecretStore:  # type: ignore[override]
        return local_store(self._state_dir, cluster)


class LoopbackAzure(AzureCloud):
    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], *, state_dir: str) -> LoopbackAzure:
        return cls(
            name,
            subscription_id=str(spec["subscription_id"]),
            resource_group=str(spec["resource_group"]),
            subnet_ids=spec["subnet_ids"],
            ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests rmc",
            base_url=str(spec["base_url"]),
            credential=FakeAzureCredential(),
            sleep=lambda _s: None,
            polling_interval_s=0,
            sdk_retry_total=0,
        )._with_state_dir(state_dir)

    def _with_state_dir(self, state_dir: str) -> LoopbackAzure:
        self._state_dir = state_dir
        return self

    def secret_store(self, cluster: str) -> FileSecretStore:  # type: ignore[override]
        return local_store(self._state_dir, cluster)
