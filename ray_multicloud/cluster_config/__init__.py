"""Reading and checking a cluster YAML, one module per section:

- ``provider_section``: the ``provider:`` section (``ProviderSettings``, ``load_settings``) and the
  offers its clouds make available; ``load_cluster_yaml`` reads the file.
- ``pools``: a node type's ``pool:`` policy or pinned ``offer:``.
- ``migration``: a pool's ``migration:`` section (when and how its nodes may be moved).
- ``cluster``: ``check_cluster``, the whole YAML checked before anything launches.

Every problem is a ``ConfigError`` naming the YAML key. Nothing here launches or prints.
"""

from ray_multicloud.cluster_config.provider_section import load_cluster_yaml

__all__ = ["load_cluster_yaml"]
