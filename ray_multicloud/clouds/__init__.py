"""Cloud drivers, found by name through a registry; each SDK is imported only inside its driver.

A cluster config names its clouds under ``provider.clouds``; each entry's ``driver`` (default: the
entry's own name) picks the class below, which is built with ``from_config(name, spec, state_dir)``.
Beside each driver's entry, ``SCHEMAS`` holds the keys of its section (``clouds/schemas.py``, no SDK
imported): ``check_cloud_section`` checks an entry against it, and ``load_settings`` (the one reader
of the provider section that ``plan``, the provider at ``ray up`` and the controller all call) and
``make_cloud`` call it before any driver reads its section.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ray_multicloud.clouds import schemas
from ray_multicloud.clouds.base import Cloud
from ray_multicloud.errors import ConfigError
from ray_multicloud.schema import Section, check_mapping, check_section, suggestion

DRIVERS: dict[str, str] = {
    "local": "ray_multicloud.clouds.local:LocalCloud",
    "private": "ray_multicloud.clouds.private:PrivateCloud",
    "ssh": "ray_multicloud.clouds.ssh:SshCloud",
    "aws": "ray_multicloud.clouds.aws:AwsCloud",
    "gcp": "ray_multicloud.clouds.gcp:GcpCloud",
    "azure": "ray_multicloud.clouds.azure:AzureCloud",
}
SCHEMAS: dict[str, Section] = {
    "local": schemas.LOCAL,
    "private": schemas.PRIVATE,
    "ssh": schemas.SSH,
    "aws": schemas.AWS,
    "gcp": schemas.GCP,
    "azure": schemas.AZURE,
}


def check_cloud_section(name: str, spec: object) -> Mapping[str, Any]:
    """The ``provider.clouds.<name>`` entry checked against its driver's schema (``SCHEMAS``):
    ``ConfigError`` naming ``provider.clouds.<name>[.<key>]`` for a non-mapping, a driver that is not
    a name, an unknown or misspelt key (with close matches) or a value of the wrong shape.

    A driver missing from the registry (a test's own fake, handed to the provider as ``clouds=``) is
    checked for the keys every catalog-priced entry shares only; ``make_cloud`` refuses it by name."""
    key = f"provider.clouds.{name}"
    raw = check_mapping(key, spec, "{driver: local, prices_from: aws}")
    driver = raw.get("driver", name)
    if not isinstance(driver, str) or not driver.strip():
        raise ConfigError(f"{key}.driver", f"must be a driver name, one of {', '.join(sorted(DRIVERS))}; "
                          f"got {driver!r}")
    schema = SCHEMAS.get(driver)
    if schema is None:
        common = {k: v for k, v in raw.items() if k in schemas.COMMON}
        check_section(key, common, Section(schemas.COMMON))
        return raw
    return check_section(key, raw, schema)


def driver_of(name: str, spec: Mapping[str, Any]) -> str:
    """The registered driver of entry ``name`` (its ``driver``, default: the name); ``ConfigError``
    naming ``provider.clouds.<name>.driver``, with close matches, for one the registry lacks."""
    driver = str(spec.get("driver", name))
    if driver not in DRIVERS:
        raise ConfigError(
            f"provider.clouds.{name}.driver",
            f"unknown driver {driver!r}{suggestion(driver, sorted(DRIVERS))}; "
            f"choose one of {', '.join(sorted(DRIVERS))}",
        )
    return driver


def make_cloud(name: str, spec: Mapping[str, Any], *, state_dir: str) -> Cloud:
    """Build the driver for cloud ``name`` from its config entry.

    Raises ``ConfigError`` naming the key for a section its driver's schema refuses
    (``check_cloud_section``), naming ``provider.clouds.<name>.driver`` for an unknown driver, or when
    the driver's SDK is not installed (with the pip extra that brings it).
    """
    driver = driver_of(name, check_cloud_section(name, spec))
    target = DRIVERS[driver]
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
