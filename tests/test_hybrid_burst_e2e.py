"""Burst and come back, end to end (issue 17 item 3): a Ray Train job whose private host is taken
bursts to a public cloud, and once the host frees, the controller that ``ray up`` started on the
head moves it back onto the private pool, make-before-break; the job finishes there with the
weights of an uninterrupted run. Checkpoints live in an S3 store both sides reach: moto's S3 server
on 127.0.0.1 (item 4).

The cluster: the head on the local cloud ``aws``; one node type ``a100`` whose pool takes the SSH
pool ``dc1`` first (``source_preference``) and the local cloud ``gcp`` (public A100 on-demand
offers at GCP's catalog prices) beyond it. ``dc1`` is one real ``sshd`` on loopback whose Ray node
is the real ``ray start`` (``fakes.sshd.loopback_ray``), as in ``test_ssh_e2e.py``.

    another team's node holds the dc1 host (its claim on the host)
    -> Train job (1 worker, A100) -> the autoscaler launches on gcp (dc1 has no free host)
    -> training, a checkpoint every 5 steps to s3://<bucket>/train on moto; before step 10 the job
       holds while a file of the test exists (a long job: the move takes what this machine's load
       makes it take, and the job must still be running then)
    -> the other team's node ends: the host is free
    -> the head's controller: price move gcp -> dc1 (0 $/h); replacement up on the host over SSH,
       gcp node drained (PREEMPTION), the job saves and restarts on the host from S3, gcp terminated
    -> the test lets the job go on: steps 10..40 on the host
    -> the job ends on the host; final weights == reference_state (the same steps in-process)
    -> ray down: no Ray process of the cluster on the host, no claim left

What is not real here: the "host" is this machine (a real sshd, a real Ray node, but no GPU: the
GPU is a logical resource), and the other team's node is a stand-in ``ray`` (one sleeping process
holding the host's claim). The host's Ray node runs its dashboard agent as a minimal ``ray`` package
does (``loopback_ray(minimal_agent=True)``): Ray's raylet gives the agent 15 s to report its ports,
which a loaded 2-core test machine missed again and again with the full agent (the minimal one
still misses it at a load average near 20; each miss costs the move one retry of the controller).
Run with ``pytest -m e2e tests/test_hybrid_burst_e2e.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from fakes.sshd import SshdFarm, fake_ray, loopback_ray, node_processes, ssh_cloud_spec, sshd_available

from ray_multicloud.clouds.base import LaunchRequest, RayBootstrap
from ray_multicloud.clouds.ssh import SshCloud
from ray_multicloud.errors import MultiCloudError
from ray_multicloud.ledger import Ledger
from ray_multicloud.scenarios.local_cluster import LocalCluster
from ray_multicloud.scenarios.train_migration import read_log
from ray_multicloud.types import RequestId

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sshd_available(), reason="OpenSSH's sshd is not installed")]

REPO = Path(__file__).resolve().parents[1]
POOL = "a100"
HOST_TYPE = "a100-box"
DRAIN_DEADLINE_S = 8


@pytest.fixture
def farm() -> Iterator[SshdFarm]:
    # Short: Ray's unix socket paths live under the host's --temp-dir.
    root = Path(tempfile.mkdtemp(prefix="rmch-"))
    try:
        with SshdFarm(root / "s", 1) as farm:
            yield farm
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    """A bucket on moto's S3 server on 127.0.0.1, and the environment that reaches it (set in this
    process too: the driver and ``ray up``'s head read the same store)."""
    import pyarrow.fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",  # pyarrow's S3 (FileSystem.from_uri) reads it
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bucket = f"rmc-hybrid-{uuid.uuid4().hex[:8]}"
    fs, _ = pyarrow.fs.FileSystem.from_uri(f"s3://{bucket}?allow_bucket_creation=true")
    fs.create_dir(bucket)
    try:
        yield bucket, env
    finally:
        server.stop()


def cluster_yaml(tmp: Path, farm: SshdFarm, bucket: str) -> Path:
    root = farm.root.parent

    def host(i: int) -> dict[str, object]:
        # The "host" is this machine: its Ray node gets its own temp dir (its own socket names) and a
        # random dashboard-agent port; a real host needs neither.
        return {"accelerator": "A100", "instance_type": HOST_TYPE, "ondemand_equivalent_per_hour": 3.67,
                "ray_start_args": [f"--temp-dir={root}/r{i}", "--dashboard-agent-listen-port=0",
                                   "--object-store-memory=80000000"]}

    # A host whose ray start failed is retried after 10 s (unavailable_seconds), so a start that a
    # loaded machine made miss Ray's own deadlines costs one retry, not the test.
    dc1 = ssh_cloud_spec(farm, ray=str(loopback_ray(root / "ray", minimal_agent=True)), extra_host=host,
                         env={"PYTHONPATH": str(REPO)}, unavailable_seconds=10)
    config = {
        "cluster_name": "rmc-hybrid",
        "max_workers": 3,
        "upscaling_speed": 10.0,
        "idle_timeout_minutes": 2,
        "provider": {
            "type": "external",
            "module": "ray_multicloud.provider.MultiCloudNodeProvider",
            "gcs_address": "127.0.0.1:6390",
            "cooldown_seconds": 30,
            "disable_node_updaters": True,
            "train_storage": f"s3://{bucket}/train",
            "clouds": {"aws": {"driver": "local", "prices_from": "aws"},
                       "gcp": {"driver": "local", "prices_from": "gcp"},
                       "dc1": dc1},
        },
        "auth": {"ssh_user": "ray"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 1}, "min_workers": 0, "max_workers": 0,
                     "node_config": {"offer": {"cloud": "aws", "region": "us-east-1", "zone": "use1-az1",
                                               "instance_type": "m5.xlarge", "capacity": "on-demand",
                                               "price_per_hour": 0.192, "vcpus": 4, "memory_gib": 16}}},
            POOL: {
                "resources": {"CPU": 1, "GPU": 1, "accelerator_type:A100": 1},
                "min_workers": 0,
                "max_workers": 2,  # make-before-break: the replacement runs beside the burst node
                "node_config": {
                    "pool": {"accelerator": "A100", "accelerator_count": 1, "capacity_types": ["on-demand"],
                             "clouds": ["dc1", "gcp"], "source_preference": ["dc1"]},
                    # What the head's controller may do; quick, so that a run fits in minutes.
                    "migration": {"horizon_hours": 4, "min_saving": 0.1, "hysteresis_seconds": 5,
                                  "egress_usd_per_gb": {"inter_cloud": 0.09, "inter_region": 0.02},
                                  "checkpoint_gb": 0.01, "checkpoint_seconds": 5, "restart_seconds": 20,
                                  "launch_seconds": 10, "max_disrupted": 1,
                                  "drain_deadline_seconds": DRAIN_DEADLINE_S, "up_timeout_seconds": 120},
                },
            },
        },
        "file_mounts": {}, "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
        "initialization_commands": [], "worker_start_ray_commands": [], "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    }
    path = tmp / "hybrid-cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sweep(cloud: SshCloud) -> None:
    """End every node on the cloud's hosts (a safety net: nothing is left when the test passed)."""
    for inst in cloud._all_nodes():
        cloud.terminate(inst.instance_id)
    cloud.close()


@pytest.fixture
def held_host(tmp_path: Path, farm: SshdFarm) -> Iterator[tuple[SshCloud, str]]:
    """Another team's node on the host (``hold_host``), ended after the test whatever happened."""
    theirs, node = hold_host(tmp_path, farm)
    try:
        yield theirs, node
    finally:
        sweep(theirs)


def hold_host(tmp: Path, farm: SshdFarm) -> tuple[SshCloud, str]:
    """Another team's node on the host: a claim made through the SSH driver by another cluster, whose
    ``ray`` is a stand-in (one sleeping process in the node's group)."""
    spec = ssh_cloud_spec(farm, ray=str(fake_ray(tmp / "their-ray")),
                          extra_host=lambda i: {"accelerator": "A100", "instance_type": HOST_TYPE})
    theirs = SshCloud.from_config("dc1", spec, state_dir=str(tmp / "their-state"))
    offer = theirs.offers()[0]
    tags = {"rmc-cluster": "another-team", "rmc-request-id": "theirs", "rmc-pool": "gpu",
            "rmc-offer": offer.offer_id}
    boot = RayBootstrap(gcs_address="127.0.0.1:1", node_type="gpu", resources={"CPU": 1, "GPU": 1})
    inst = theirs.launch(LaunchRequest(RequestId("theirs"), "another-team", "gpu", offer, tags, boot))
    return theirs, str(inst.instance_id)


def wait(pred: Any, timeout_s: float, what: str, alive: Any = lambda: True) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        running = alive()
        got = pred()
        if got:
            return got
        if not running:
            raise AssertionError(f"training ended before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout_s:.0f} s")
        time.sleep(0.5)


def up(cluster: LocalCluster, config: Path, tmp: Path, tries: int = 3) -> LocalCluster:
    """``cluster.up()``, again on a fresh cluster (own name and ports) when the head's Ray did not
    start: on a loaded test machine the head's dashboard agent can miss the raylet's 15 s start
    deadline ("timed out during startup"). Nothing of the cluster exists before it is up."""
    for attempt in range(1, tries + 1):
        try:
            cluster.up()
            return cluster
        except MultiCloudError as exc:
            if "timed out during startup" not in str(exc) or attempt == tries:
                raise
            cluster = LocalCluster(config, workdir=tmp / f"cluster-{attempt + 1}")
    raise AssertionError("unreachable")


def tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} missing)"


def test_a_burst_train_job_comes_back_to_the_private_host_with_equal_weights(
    tmp_path: Path, farm: SshdFarm, s3_bucket: tuple[str, dict[str, str]],
    held_host: tuple[SshCloud, str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    import ray
    import torch
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ray_multicloud.scenarios.train_migration import JobSpec, reference_state, train_loop
    from ray_multicloud.train import run_config
    from ray_multicloud.train.checkpoint import open_storage, verify_checkpoint

    began = time.monotonic()
    bucket, s3_env = s3_bucket
    # This process's own HOME: a ~/.ray/auth_token of the machine's user must not turn token auth on.
    # The head (and its controller, whose log is ~/ray_multicloud_controller.log) runs with it too.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    theirs, their_node = held_host
    config = cluster_yaml(tmp_path, farm, bucket)
    cluster = LocalCluster(config, workdir=tmp_path / "cluster")
    ours = SshCloud.from_config("dc1", cluster.settings.clouds["dc1"], state_dir=str(tmp_path / "check"))
    request.addfinalizer(lambda: sweep(ours))
    assert ours.slots(cluster.cluster_name) == {theirs.offers()[0].offer_id: 0}  # the host is taken
    # The job holds before step 10 while the hold file exists (``JobSpec.hold_at_step``): it is a long
    # job whose length is whatever the move takes on this machine, and it has steps left to do on
    # the host once the test lets it go. The steps, and so the weights, are those of 40 steps.
    hold = tmp_path / "hold"
    hold.touch()
    spec = JobSpec(total_steps=40, steps_per_epoch=5, step_sleep_s=0.25, world=1, hold_at_step=10,
                   hold_file=str(hold))
    log = tmp_path / "progress.jsonl"
    timings: dict[str, float] = {}
    try:
        cluster = up(cluster, config, tmp_path)
        timings["up_s"] = time.monotonic() - began
        # The job's environment reaches the store from every node, public or private: what a team
        # sets for its MinIO (or any S3-compatible endpoint).
        cluster.connect(runtime_env={"env_vars": {**s3_env, "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1",
                                                  "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}})
        rc = run_config(cluster.config, name="hybrid", num_to_keep=None)
        assert rc.storage_path == f"s3://{bucket}/train"
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={**{k: getattr(spec, k) for k in JobSpec.__dataclass_fields__},
                               "log": str(log)},
            scaling_config=ScalingConfig(num_workers=1, use_gpu=False,
                                         resources_per_worker={"CPU": 1, "accelerator_type:A100": 1}),
            torch_config=TorchConfig(backend="gloo"),
            run_config=rc,
        )
        outcome: dict[str, Any] = {}

        def fit() -> None:
            try:
                outcome["result"] = trainer.fit()
            except Exception as exc:  # noqa: BLE001 - re-raised below
                outcome["error"] = exc

        fitter = threading.Thread(target=fit, name="fit", daemon=True)
        fitter.start()

        # 1. Burst: the first attempt runs on a public gcp node, and has checkpointed to S3 (steps 5
        # and 10; it now holds before step 10).
        def burst_progress() -> dict[str, Any] | None:
            events = read_log(log)
            starts = [e for e in events if e["ev"] == "start"]
            ckpts = [e for e in events if e["ev"] == "ckpt"]
            return starts[0] if starts and len(ckpts) >= 2 else None

        # Generous: a loaded machine can take minutes to start the public node and the worker group.
        first = wait(burst_progress, 600, "training on the burst node", alive=fitter.is_alive)
        timings["trained_on_burst_node_s"] = time.monotonic() - began
        assert first["instance"].startswith("gcp-"), first  # the private host was taken: burst
        burst_node = first["instance"]

        # 2. The other team's node ends: the host is free. Nothing else is done here: the head's
        # controller has to see it and move the job back on its own.
        theirs.terminate(their_node)
        freed_at = time.time()
        timings["freed_s"] = time.monotonic() - began

        def back_on_host() -> dict[str, Any] | None:
            return next((e for e in read_log(log) if e["ev"] == "start" and e["instance"].startswith("dc1-")),
                        None)

        try:
            # Generous: each failed start on the host (see the module docstring) costs a retry.
            back = wait(back_on_host, 600, "the job back on the private host", alive=fitter.is_alive)
        except AssertionError as exc:
            logs = sorted(cluster.state_dir.glob("nodes/*/ray_multicloud_controller.log"))  # the head's HOME
            raise AssertionError(f"{exc}; controller log:\n{tail(logs[0]) if logs else '(none)'}") from None
        timings["back_on_host_s"] = time.monotonic() - began
        hold.unlink()  # the rest of the job: steps 10..40 on the host
        fitter.join(300)
        assert not fitter.is_alive(), "training did not finish"
        if "error" in outcome:
            raise outcome["error"]
        timings["done_s"] = time.monotonic() - began

        # 3. What the controller did: one move, the burst node -> a node on the host, in the ledger.
        assert cluster.settings.ledger_path is not None
        with Ledger(cluster.settings.ledger_path, create=False) as ledger:
            moves = ledger.moves()
        assert [(old, new) for old, new, _, _ in moves] == [(burst_node, back["instance"])], moves
        assert "dc1" in moves[0][2], moves  # the reason names the private offer
        assert re.fullmatch(r"dc1-127\.0\.0\.1-\d+-[0-9a-f]{10}", back["instance"]), back
        # The job restored on the host from a checkpoint in the bucket, written on the public node.
        assert back["source"] and back["source"].startswith(f"{bucket}/train/hybrid/checkpoint_"), back
        assert back["step"] >= 10  # at least the public node's periodic checkpoint of step 10
        # The public node is gone; the job's last attempt ran on the host to the end.
        assert [i.instance_id for i in cluster.clouds()["gcp"].list(cluster.cluster_name)] == []
        events = read_log(log)
        attempts = [e for e in events if e["ev"] == "start"]
        assert attempts[-1]["instance"] == back["instance"], attempts
        last = attempts[-1]["attempt"]
        last_steps = [e["step"] for e in events if e["ev"] == "step" and e["attempt"] == last]
        assert max(last_steps) == spec.total_steps

        # 4. The final weights: those of an uninterrupted run of the same steps, computed in-process.
        result = outcome["result"]
        assert str(result.checkpoint.path).startswith(f"{bucket}/train/hybrid/")
        final_dir = result.checkpoint.to_directory(str(tmp_path / "final"))
        verify_checkpoint(final_dir)
        final = torch.load(Path(final_dir) / "state.pt", weights_only=True)
        assert final["step"] == spec.total_steps
        ref = reference_state(spec)
        diff = max(float((final["model"][k] - ref[k]).abs().max()) for k in ref)
        assert diff <= 1e-6, diff

        # What crossed between the sides: the checkpoint the host restored from.
        fs, _ = open_storage(f"s3://{bucket}")
        import pyarrow.fs

        infos = fs.get_file_info(pyarrow.fs.FileSelector(back["source"], recursive=True))
        ckpt_bytes = sum(i.size for i in infos if i.type == pyarrow.fs.FileType.File)
        timings["freed_to_resumed_on_host_s"] = back["t"] - freed_at
        print(json.dumps({"timings": {k: round(v, 1) for k, v in timings.items()},
                          "restored_step": back["step"], "checkpoint_bytes": ckpt_bytes,
                          "max_abs_diff": diff, "move": moves[0][2]}, indent=1))
    finally:
        hold.unlink(missing_ok=True)
        ray.shutdown()
        cluster.down()
    assert cluster.down_returncode == 0
    prefix = f"dc1-127.0.0.1-{farm.hosts[0].port}-"  # this run's host only (other tests may run beside)
    deadline = time.monotonic() + 30
    while node_processes(prefix) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert node_processes(prefix) == {}, "Ray processes of the cluster outlived ray down"
    assert not (farm.hosts[0].dir / "home" / ".ray_multicloud" / "instance_id").exists()
    assert ours.list(cluster.cluster_name) == []
