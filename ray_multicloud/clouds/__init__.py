"""Cloud drivers, found by name through a registry; each SDK is imported only inside its driver.

A cluster config names its clouds under ``provider.clouds``; each entry's ``driver`` (default: the
entry's own name) picks the class below, which is built with ``from_config(name, spec, state_dir)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ray_multicloud.clouds.base import Cloud
from ray_multicloud.errors import ConfigError

DRIVERS: dict[str, str] = {
    "local": "ray_multicloud.clouds.local:LocalCloud",
    "private": "ray_multicloud.clouds.private:PrivateCloud",
    "ssh": "ray_multicloud.clouds.ssh:SshCloud",
    "aws": "ray_multicloud.clouds.aws:AwsCloud",
    "gcp": "ray_multicloud.clouds.gcp:GcpCloud",
    "azure": "ray_multicloud.clouds.azure:AzureCloud",
}


def make_cloud(name: str, spec: Mapping[str, Any], *, state_dir: str) -> Cloud:
    """Build the driver for cloud ``name`` from its config entry.

    Raises ``ConfigError`` naming ``provider.clouds.<name>.driver`` for an unknown driver, or when
    the driver's SDK is not installed (with the pip extra that brings it).
    """
    driver = str(spec.get("driver", name))
    target = DRIVERS.get(driver)
    if target is None:
        raise ConfigError(
            f"provider.clouds.{name}.driver",
            f"unknown driver {driver!r}; choose one of {', '.join(sorted(DRIVERS))}",
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"provider.clouds.{name}.driver",
            f"driver {driver!r} needs a package that is not installed ({exc.name}); "
            f"run: pip install 'ray_multicloud[{driver}]'",
        ) from exc
    cloud_cls = getattr(module, class_name)
    cloud: Cloud = cloud_cls.from_config(name, spec, state_dir=state_dir)
    return cloud


def make_clouds(specs: Mapping[str, Mapping[str, Any]], *, state_dir: str) -> dict[str, Cloud]:
    """``make_cloud`` for every entry of ``provider.clouds`` (name -> its config entry), in order."""
    return {name: make_cloud(name, spec, state_dir=state_dir) for name, spec in specs.items()}
