"""Prices: the shipped catalog snapshot now; live per-cloud feeds and a TTL cache later.

Importing this package reads no file: ``load_catalog()`` is the only way in, and it is explicit.
Warnings go to the ``ray_multicloud.pricing`` loggers; a ``NullHandler`` keeps them off stderr
unless the application configures logging (the library never prints).
"""

from __future__ import annotations

import logging

from ray_multicloud.pricing.catalog import Catalog, CatalogWarning, load_catalog, parse_catalog

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Catalog", "CatalogWarning", "load_catalog", "parse_catalog"]
