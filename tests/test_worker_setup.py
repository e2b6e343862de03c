"""Worker setup (issue 16 item 1): the cluster YAML's setup sections reach every worker's startup script.

Reading (``cluster_config/worker_setup.py``), rendering (``clouds/_startup.py``, executed by bash
here), the provider's path (``bootstrap_config`` -> ``provider._worker_setup`` -> the launch
request), the local cloud booting through the same script, and ``plan`` on bad input.
"""

from __future__ import annotations

import base64
import copy
import gzip
import io
import os
import subprocess
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloud_factories import gpu_offer
from fakes.memory_cloud import launch_workers, memory_cluster
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.clouds._startup import render_startup_script
from ray_multicloud.clouds.base import Instance, LaunchRequest, RayBootstrap, WorkerSetup
from ray_multicloud.cluster_config.worker_setup import (
    INLINE_LIMIT_BYTES,
    PROVIDER_KEY,
    check_docker_image,
    setup_from_json,
    setup_to_json,
    worker_setup,
)
from ray_multicloud.dry_run import dry_run
from ray_multicloud.errors import ConfigError
from ray_multicloud.provider import MultiCloudNodeProvider

LOCAL_YAML = Path(__file__).resolve().parent.parent / "cluster_configs" / "local-multicloud.yaml"
EXAMPLE = Path(__file__).resolve().parent.parent / "cluster_configs" / "aws-gcp-azure-gpu.yaml"
OFFER = gpu_offer("aws", "us-east-1", "use1-az1", "g4dn.xlarge")


def cluster(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cluster_name": "c",
        "head_node_type": "head",
        "available_node_types": {"head": {}, "gpu": {"resources": {"GPU": 1}}, "cpu": {}},
    }
    base.update(extra)
    return base


def untar(blob_b64: str) -> dict[str, bytes]:
    """Member name -> content of an inlined mount (read with the standard library, not our code)."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(blob_b64)))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


# -- reading the YAML ----------------------------------------------------------------------------------


def test_setup_commands_merge_as_rays_updater_does() -> None:
    config = cluster(setup_commands=["a"], worker_setup_commands=["b"], initialization_commands=["i"])
    config["available_node_types"]["cpu"]["worker_setup_commands"] = ["own"]
    assert worker_setup(config, "gpu", merged=False).setup_commands == ("a", "b")
    # After Ray's prepare_config (bootstrap_config), worker_setup_commands already start with setup_commands.
    prepared = {**config, "worker_setup_commands": ["a", "b"]}
    assert worker_setup(prepared, "gpu", merged=True).setup_commands == ("a", "b")
    # A node type's own list replaces both, as Ray's _get_node_type_specific_fields does.
    assert worker_setup(config, "cpu", merged=False).setup_commands == ("own",)
    assert worker_setup(config, "gpu", merged=False).initialization_commands == ("i",)


def test_local_dir_and_file_mounts_are_packed_and_uris_kept(tmp_path: Path) -> None:
    src = tmp_path / "code"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("print('a')\n")
    (src / "b.txt").write_text("bee")
    (tmp_path / "one.cfg").write_text("x=1")
    config = cluster(file_mounts={
        "~/code": str(src), "/etc/rmc/app.cfg": "one.cfg", "/data": "s3://bucket/data/", "~/w": "gs://b/w.bin"})
    setup = worker_setup(config, "gpu", merged=False, base_dir=tmp_path)
    inline = dict(setup.inline_files)
    assert untar(inline["~/code"]) == {"pkg/a.py": b"print('a')\n", "b.txt": b"bee"}
    # A file extracts into its target's directory, under the target's name.
    assert untar(inline["/etc/rmc"]) == {"app.cfg": b"x=1"}
    assert dict(setup.remote_files) == {"/data": "s3://bucket/data/", "~/w": "gs://b/w.bin"}
    # Packing is deterministic (the bootstrap config's hash must not change between `ray up` runs).
    again = worker_setup(config, "gpu", merged=False, base_dir=tmp_path)
    assert again == setup
    assert setup_from_json(yaml.safe_load(yaml.safe_dump(setup_to_json(setup)))) == setup


@pytest.mark.parametrize(
    ("mounts", "key", "words"),
    [
        ({"/x": "/no/such/dir"}, "file_mounts.'/x'", "does not exist"),
        ({"relative/x": "."}, "file_mounts.'relative/x'", "absolute"),
        ({"/x": "https://example.com/x"}, "file_mounts.'/x'", "s3://"),
        ({"/x": "s3://"}, "file_mounts.'/x'", "s3://"),
        ({"/x": 3}, "file_mounts.'/x'", "local path"),
    ],
    ids=["missing-source", "relative-target", "http-uri", "empty-uri", "not-a-string"],
)
def test_bad_file_mounts_name_the_mount(tmp_path: Path, mounts: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        worker_setup(cluster(file_mounts=mounts), "gpu", merged=False, base_dir=tmp_path)
    assert err.value.key == key and words in str(err.value)


def test_inlined_mounts_over_the_cap_say_to_use_a_bucket(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "random.bin").write_bytes(os.urandom(INLINE_LIMIT_BYTES + 1))  # incompressible
    with pytest.raises(ConfigError) as err:
        worker_setup(cluster(file_mounts={"~/big": str(big)}), "gpu", merged=False)
    assert err.value.key == "file_mounts.'~/big'"
    assert "s3://" in str(err.value) and f"{INLINE_LIMIT_BYTES // 1024} KiB" in str(err.value)


@pytest.mark.parametrize(
    "image",
    ["rayproject/ray:2.60.0-gpu", "nvcr.io/nvidia/pytorch:24.05-py3", "localhost:5000/team/img",
     "ubuntu", "ghcr.io/a/b-c_d.e:v1@sha256:" + "a" * 64],
)
def test_valid_docker_images_pass(image: str) -> None:
    assert check_docker_image("docker.image", image) == image


@pytest.mark.parametrize(
    "image", ["Ray/Ray:latest", "ray::2.60", "-ray", "ray:", "ray image", "ray@sha256:xyz", "a//b", " "]
)
def test_malformed_docker_images_name_the_key(image: str) -> None:
    config = cluster(docker={"image": image})
    with pytest.raises(ConfigError) as err:
        worker_setup(config, "gpu", merged=False)
    assert err.value.key == "docker.image" and "image" in str(err.value)


def test_empty_docker_image_means_no_container() -> None:
    assert worker_setup(cluster(docker={"image": ""}), "gpu", merged=False).docker_image == ""


def test_node_type_docker_overrides_the_top_level_one() -> None:
    config = cluster(docker={"image": "rayproject/ray:2.60.0", "run_options": ["--ulimit nofile=65536:65536"],
                             "worker_run_options": ["-e A=1"]})
    config["available_node_types"]["gpu"]["docker"] = {"worker_image": "rayproject/ray:2.60.0-gpu"}
    gpu = worker_setup(config, "gpu", merged=False)
    assert gpu.docker_image == "rayproject/ray:2.60.0-gpu"
    assert gpu.docker_run_options == ("--ulimit nofile=65536:65536", "-e A=1")
    assert worker_setup(config, "cpu", merged=False).docker_image == "rayproject/ray:2.60.0"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_image_text_is_accepted_or_named(image: str) -> None:
    try:
        setup = worker_setup(cluster(docker={"image": image}), "gpu", merged=False)
    except ConfigError as exc:
        assert exc.key == "docker.image"
        return
    # Accepted: no whitespace, no uppercase in the repository path (Docker's own rule), or no image at all.
    assert setup.docker_image == "" or (image.strip() == setup.docker_image and " " not in setup.docker_image)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=12), st.integers(), st.none()),
                       max_size=3))
def test_any_file_mounts_mapping_is_accepted_or_named(mounts: dict[str, Any]) -> None:
    try:
        worker_setup(cluster(file_mounts=mounts), "gpu", merged=False, base_dir=Path("/nonexistent-rmc"))
    except ConfigError as exc:
        assert exc.key.startswith("file_mounts")


# -- the rendered script, executed ---------------------------------------------------------------------


def boot(setup: WorkerSetup, gpus: float = 0) -> RayBootstrap:
    return RayBootstrap(gcs_address="10.0.0.5:6379", node_type="gpu", resources={"CPU": 1, "GPU": gpus},
                        setup=setup)


def run_script(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    path = home / "startup.sh"
    path.write_text(script)
    return subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "HOME": str(home)}, check=False)


def test_script_mounts_files_and_runs_setup_before_the_start_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print(1)\n")
    home = tmp_path / "home"
    home.mkdir()
    config = cluster(file_mounts={"~/code": str(src)}, initialization_commands=["echo init >> ~/order"],
                     setup_commands=["echo setup-$RAY_HEAD_IP >> ~/order"],
                     worker_setup_commands=["test -f ~/code/train.py && echo worker >> ~/order"])
    setup = worker_setup(config, "gpu", merged=False)
    script = render_startup_script(boot(setup), OFFER, watcher_cloud="aws",
                                   instance_id_lines=["RMC_INSTANCE_ID=i-1"],
                                   start_lines=['echo "start $RAY_CLOUD_INSTANCE_ID" >> ~/order'],
                                   on_failure=":")
    done = run_script(script, home)
    assert done.returncode == 0, done.stderr
    assert (home / "order").read_text().split("\n")[:4] == ["init", "setup-10.0.0.5", "worker", "start i-1"]
    assert (home / "code" / "train.py").read_text() == "print(1)\n"


def test_a_failing_setup_command_names_it_and_never_reaches_ray_start(tmp_path: Path) -> None:
    setup = WorkerSetup(setup_commands=("true", "exit 3", "touch ~/after"))
    script = render_startup_script(boot(setup), OFFER, watcher_cloud="aws",
                                   instance_id_lines=["RMC_INSTANCE_ID=i"],
                                   start_lines=["touch ~/started"], on_failure="touch ~/failed-hook")
    done = run_script(script, tmp_path)
    assert done.returncode == 3  # the failed step's own status
    assert "worker setup failed at worker_setup_commands[1]" in done.stderr
    assert (tmp_path / "failed-hook").exists()
    assert not (tmp_path / "after").exists() and not (tmp_path / "started").exists()


def test_docker_runs_ray_in_the_container_with_gpus_on_gpu_nodes() -> None:
    setup = WorkerSetup(setup_commands=("pip install x",), inline_files=(("~/code", "AAAA"),),
                        docker_image="rayproject/ray:2.60.0-gpu", docker_run_options=("--shm-size=8g",))
    script = render_startup_script(boot(setup, gpus=1), OFFER, watcher_cloud="aws",
                                   instance_id_lines=["RMC_INSTANCE_ID=i"])
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    lines = script.splitlines()
    run = next(i for i, line in enumerate(lines) if line.startswith("docker run "))
    assert "--gpus all" in lines[run] and "--shm-size=8g" in lines[run] and "--network host" in lines[run]
    assert '-v "$HOME"/code:"$HOME"/code' in lines[run]
    pull = next(i for i, line in enumerate(lines) if "docker pull rayproject/ray:2.60.0-gpu" in line)
    setup_at = next(i for i, line in enumerate(lines) if "'pip install x'" in line)
    start = next(i for i, line in enumerate(lines) if " ray start " in line)
    assert pull < run < setup_at < start
    assert lines[setup_at].split("timeout 1800 ", 1)[1].startswith("docker exec ")
    assert lines[start].startswith("docker exec -e RAY_CLOUD_INSTANCE_ID")
    assert "ray_container ray start" in lines[start]
    cpu = render_startup_script(boot(setup, gpus=0), OFFER, watcher_cloud="aws", instance_id_lines=["X=1"])
    assert "--gpus" not in cpu
    given = WorkerSetup(docker_image="img", docker_run_options=("--runtime=nvidia",))
    assert "--gpus" not in render_startup_script(boot(given, gpus=1), OFFER, watcher_cloud="aws",
                                                 instance_id_lines=["X=1"])


def test_uri_mounts_fetch_with_the_clouds_cli_under_a_timeout() -> None:
    setup = WorkerSetup(remote_files=(("/data", "s3://b/data/"), ("~/m.bin", "gs://b/m.bin")))
    script = render_startup_script(boot(setup), OFFER, watcher_cloud="aws", instance_id_lines=["X=1"])
    assert "timeout 1800 aws s3 sync s3://b/data/ /data" in script
    assert 'gcloud storage cp -r gs://b/m.bin "$HOME"/m.bin' in script
    assert "rmc_fail 'file_mounts \"/data\" (s3://b/data/)'" in script


# -- the provider's path: ray up -> provider section -> launch request ----------------------------------


class Recording:
    """Wraps a test's cloud and keeps every launch request it is handed."""

    def __init__(self, inner: Any, seen: list[LaunchRequest]) -> None:
        self._inner, self._seen = inner, seen
        self.name, self.features = inner.name, inner.features

    def launch(self, request: LaunchRequest) -> Instance:
        self._seen.append(request)
        return self._inner.launch(request)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_bootstrap_config_hands_each_node_types_setup_to_its_launches(tmp_path: Path) -> None:
    src = tmp_path / "app"
    src.mkdir()
    (src / "main.py").write_text("x")
    config = yaml.safe_load(LOCAL_YAML.read_text())
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"].pop("ledger", None)
    # Ray's prepare_config has merged setup_commands into worker_setup_commands before the hook.
    config.update(setup_commands=["echo common"], worker_setup_commands=["echo common", "echo worker"],
                  file_mounts={"~/app": str(src)})
    config["available_node_types"]["a100_ondemand"]["worker_setup_commands"] = ["echo a100 only"]
    done = MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(config))
    table = done["provider"][PROVIDER_KEY]
    assert "head" not in table
    assert table["t4_spot"]["setup_commands"] == ["echo common", "echo worker"]
    assert table["a100_ondemand"]["setup_commands"] == ["echo a100 only"]
    assert MultiCloudNodeProvider.bootstrap_config(copy.deepcopy(done))["provider"][PROVIDER_KEY] == table
    with memory_cluster(tmp_path) as (mem, world):
        mem["provider"][PROVIDER_KEY] = table
        seen: list[LaunchRequest] = []
        clouds = {n: Recording(c, seen) for n, c in world.clouds(mem).items()}
        provider = MultiCloudNodeProvider(copy.deepcopy(mem["provider"]), mem["cluster_name"], clouds=clouds)
        launch_workers(provider, mem, node_type="t4_spot")
        assert seen and seen[-1].bootstrap is not None and seen[-1].bootstrap.setup is not None
        got = seen[-1].bootstrap.setup
        assert got.setup_commands == ("echo common", "echo worker")
        assert untar(dict(got.inline_files)["~/app"]) == {"main.py": b"x"}


# -- the local cloud boots through the same script ----------------------------------------------------


def local_request(setup: WorkerSetup, gcs: str = "127.0.0.1:9") -> LaunchRequest:
    return LaunchRequest(
        request_id="req-1", cluster="c", pool="t4", offer=OFFER,
        tags={"rmc-cluster": "c", "rmc-pool": "t4", "rmc-offer": OFFER.offer_id, "rmc-request-id": "req-1"},
        bootstrap=RayBootstrap(gcs_address=gcs, node_type="t4", resources={"CPU": 1}, setup=setup),
    )


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


def test_local_node_runs_setup_and_mounts_before_its_ray_node_starts(tmp_path: Path) -> None:
    from ray_multicloud.clouds.local import LocalCloud

    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("hi")
    setup = worker_setup(cluster(file_mounts={"~/code": str(src)},
                                 worker_setup_commands=["test -f ~/code/hello.txt && touch ~/setup-ran"]),
                         "gpu", merged=False)
    cloud = LocalCloud("aws", tmp_path / "state")
    inst = cloud.launch(local_request(setup))
    try:
        home = cloud.state.node_home(inst.instance_id)
        # The instance process records its Ray node id just before starting the node: by then the
        # setup command has run (it sees the mount) and its marker exists.
        assert wait_for(lambda: cloud.ray_node_id(inst.instance_id)), (home / "instance.log").read_text()
        assert (home / "setup-ran").exists()
        assert (home / "code" / "hello.txt").read_text() == "hi"
        assert "setup-ran" in (home / "startup.sh").read_text()
    finally:
        cloud.terminate(inst.instance_id)


def test_local_node_with_a_failing_setup_ends_without_starting_ray(tmp_path: Path) -> None:
    from ray_multicloud.clouds.local import LocalCloud

    cloud = LocalCloud("aws", tmp_path / "state")
    inst = cloud.launch(local_request(WorkerSetup(setup_commands=("exit 7",))))
    try:
        assert wait_for(lambda: cloud.get(inst.instance_id) is None, 20), "a failed setup ends the instance"
        assert cloud.ray_node_id(inst.instance_id) is None
        log = (cloud.state.node_home(inst.instance_id) / "instance.log").read_text()
        assert "worker setup failed at worker_setup_commands[0]" in log
    finally:
        cloud.terminate(inst.instance_id)


# -- plan -----------------------------------------------------------------------------------------------


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"file_mounts": {"~/code": "/no/such/rmc-dir"}}, "file_mounts.'~/code'", "does not exist"),
        ({"docker": {"image": "Ray/GPU:latest"}}, "docker.image", "not a valid Docker image"),
    ],
    ids=["missing-mount", "bad-image"],
)
def test_plan_names_bad_setup_input(change: Mapping[str, Any], key: str, words: str) -> None:
    config = example()
    config.update(change)
    with pytest.raises(ConfigError) as err:
        dry_run(config, now=0.0)
    assert err.value.key == key and words in str(err.value)


def test_plan_says_what_each_worker_setup_does(tmp_path: Path) -> None:
    src = tmp_path / "code"
    src.mkdir()
    (src / "a.py").write_text("a")
    config = example()
    config.update(file_mounts={"~/code": str(src), "/data": "s3://bkt/data/"},
                  docker={"image": "rayproject/ray:2.60.0-gpu"})
    notes = "\n".join(dry_run(config, now=0.0).notes)
    assert "l4_spot worker setup: 1 setup command(s); file_mounts inlined" in notes
    assert "/data <- s3://bkt/data/" in notes
    assert "Ray runs in docker image rayproject/ray:2.60.0-gpu" in notes
