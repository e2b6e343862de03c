"""``python -m ray_multicloud.auth head --config ~/ray_bootstrap_config.yaml``: the head's first command.

Copies the cluster's secrets (its Ray auth token; with ``provider.tls`` its CA, certificate and key)
from the secret store of the head's own cloud (then any other configured cloud's) into
``~/.ray_multicloud/`` with mode 0600, using the head's own identity. Prints the files' paths,
never their contents. Exit 0 when done (or when auth is disabled), 2 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ray_multicloud.auth import install_head, parse_auth, store_of
from ray_multicloud.errors import MultiCloudError


def _head_cloud_first(config: dict[str, object], names: list[str]) -> list[str]:
    head_type = str(config.get("head_node_type") or "")
    types = config.get("available_node_types") or {}
    spec = types.get(head_type) if isinstance(types, dict) else None
    offer = (spec or {}).get("node_config", {}).get("offer", {}) if isinstance(spec, dict) else {}
    head_cloud = str(offer.get("cloud", "")) if isinstance(offer, dict) else ""
    return sorted(names, key=lambda n: n != head_cloud)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ray_multicloud.auth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    head = sub.add_parser("head", help="install the cluster's secrets on the head")
    head.add_argument("--config", required=True, help="the bootstrapped cluster YAML on the head")
    args = parser.parse_args(argv)
    from ray_multicloud.clouds import make_cloud
    from ray_multicloud.cluster_config.provider_section import load_cluster_yaml, load_settings

    try:
        config = load_cluster_yaml(Path(args.config).expanduser())
        name = str(config.get("cluster_name") or "default")
        provider = config.get("provider") or {}
        auth = parse_auth(provider)
        if not auth.token and not auth.tls:
            print("ray_multicloud.auth: provider.auth_mode is disabled; nothing to install")
            return 0
        settings = load_settings(provider, name)
        stores = []
        for cloud_name in _head_cloud_first(config, list(settings.clouds)):
            cloud = make_cloud(cloud_name, settings.clouds[cloud_name], state_dir=str(settings.state_dir))
            store = store_of(cloud, name)
            if store is not None:
                stores.append(store)
        written = install_head(stores, name, auth, Path.home())
    except MultiCloudError as exc:
        print(f"ray_multicloud.auth: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"ray_multicloud.auth: wrote {path} (0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
