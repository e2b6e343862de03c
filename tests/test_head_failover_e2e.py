"""End to end: the head falls and comes back with GCS fault tolerance on (issue 13, "The head can fall").

A real ``redis-server`` on loopback holds the GCS's tables (``provider.gcs_fault_tolerance``); a
local cluster runs one serving worker node and a Serve deployment on it; every Ray process of the
head is SIGKILLed and ``ray up --restart-only`` starts them again
(``ray_multicloud/scenarios/head_failover.py``). What must hold, each from outside the code under
test (the GCS's node table, the Serve replica's actor name, the ledger file, the controller's log):

- no worker lost: the worker's Ray node id is the same one, alive, after the restart;
- no Serve deployment lost: the same replica actor serves, and Serve's controller (restarted on the
  new head) reports the application RUNNING;
- Serve kept answering: a probe on the worker calling the deployment every 50 ms through a handle
  saw no failed request from the kill until Serve's control plane was back, and no gap between two
  answers longer than ``MAX_GAP_S``;
- the ledger and the controller resume: no node of the ledger was ended by the restart, and the
  controller started once more with the head's start commands.

Skipped without ``redis-server`` (apt-get install redis-server; `.ci/run` installs it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray_multicloud.scenarios.head_failover import (
    RedisServer,
    failover_overrides,
    redis_server_path,
    run_failover,
)
from ray_multicloud.scenarios.local_cluster import LocalCluster

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(redis_server_path() is None, reason="redis-server is not installed"),
]

# A handle call is a direct actor call to the replica; with the head gone it has nothing to wait for.
# 2 s leaves room for a loaded 2-core CI machine (the measured gaps are in benchmarks/README.md).
MAX_GAP_S = 2.0


def test_head_restart_loses_no_worker_no_deployment_and_serve_keeps_answering(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis, \
            LocalCluster(workdir=tmp_path / "cluster", overrides=failover_overrides(redis.address),
                         up_timeout_s=300) as cluster:
        result = run_failover(cluster, interval_s=0.05)
        keys = redis.dbsize()

    assert any("gcs_server" in name for name in result.killed.values())
    assert any("raylet" in name for name in result.killed.values())
    assert keys > 0, "the GCS kept nothing in Redis"

    assert result.worker_node_before, "the serving worker never came up"
    assert result.worker_node_after == result.worker_node_before
    assert result.worker_alive_after

    assert result.replica_before.startswith("SERVE_REPLICA::default#WhereAmI#")
    assert result.replica_after == result.replica_before

    outage = result.outage
    assert outage is not None
    assert outage.sent >= 20, f"the probe hardly ran through the outage: {outage}"
    assert outage.failed == 0, outage
    assert outage.longest_gap_s < MAX_GAP_S, outage

    assert result.ledger_open_before, "the ledger recorded no node"
    assert result.ledger_open_after == result.ledger_open_before
    assert result.controller_starts == 2
