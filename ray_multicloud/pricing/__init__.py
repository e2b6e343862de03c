"""Prices: the shipped catalog snapshot (``catalog``), live per-cloud feeds with a TTL cache and
staleness (``aws_feed``, ``gcp_feed``, ``azure_feed``, composed by ``feeds`` and ``live``), the local
clouds' price board (``board``) and trace replay onto it (``replay``).

Importing this package reads no file: ``load_catalog()`` is the only way in, and it is explicit.
Warnings go to the ``ray_multicloud.pricing`` loggers; a ``NullHandler`` keeps them off stderr
unless the application configures logging (the library never prints).
"""

from __future__ import annotations

import logging

from ray_multicloud.pricing.catalog import Catalog, CatalogWarning, load_catalog, parse_catalog

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Catalog", "CatalogWarning", "load_catalog", "parse_catalog"]
