"""End to end: ``ray up`` the local multi-cloud YAML with ``file_mounts`` and ``worker_setup_commands``;
the worker the autoscaler launches for a T4 task runs them from its startup script before its Ray
node joins (disable_node_updaters: true, so no updater could have), and the task sees the mount."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray_multicloud.scenarios.local_cluster import LocalCluster

pytestmark = pytest.mark.e2e


def test_ray_up_worker_runs_yaml_setup_and_sees_file_mounts(tmp_path: Path) -> None:
    import ray

    app = tmp_path / "app"
    app.mkdir()
    (app / "settings.txt").write_text("from-the-laptop")
    overrides = {
        "idle_timeout_minutes": 0.1,
        "file_mounts": {"~/app": str(app)},
        "worker_setup_commands": ["test -f ~/app/settings.txt && date +%s.%N > ~/setup-ran"],
    }
    cluster = LocalCluster(workdir=tmp_path / "cluster", overrides=overrides)
    try:
        cluster.up()
        cluster.connect()

        @ray.remote(num_gpus=1, resources={"accelerator_type:T4": 1})
        def read_mount(state_dir: str) -> tuple[str, str]:
            instance = os.environ["RAY_CLOUD_INSTANCE_ID"]
            home = Path(state_dir) / "nodes" / instance
            return instance, (home / "app" / "settings.txt").read_text()

        instance, text = ray.get(read_mount.remote(str(cluster.state_dir)), timeout=180)
        assert text == "from-the-laptop"
        home = cluster.state_dir / "nodes" / instance
        assert (home / "setup-ran").exists()
        script = (home / "startup.sh").read_text()
        # The setup line comes before the exec of the instance process (its Ray node).
        assert script.index("setup-ran") < script.index("exec ")
    finally:
        ray.shutdown()
        cluster.down()
