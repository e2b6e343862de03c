"""The SSH driver against real ``sshd`` hosts on loopback, where things go wrong: a closed port, a
refused key, an unknown or wrong host key, GPUs that do not match the declaration, two provider
processes racing for one host, a restarted provider, and a terminate that must touch nothing else.

``ray start`` is ``fakes.sshd.FAKE_RAY`` (one long-lived process in the node's group): these tests
are about the driver; ``test_ssh_e2e.py`` runs real Ray.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.sshd import (
    SshdFarm,
    _free_port,
    fake_ray,
    keygen,
    node_processes,
    ssh_cloud_spec,
    sshd_available,
)

from ray_multicloud.clouds.base import LaunchRequest, RayBootstrap
from ray_multicloud.clouds.ssh import SshCloud
from ray_multicloud.errors import CapacityError, CloudError
from ray_multicloud.types import InstanceId, NodeState, RequestId

pytestmark = pytest.mark.skipif(not sshd_available(), reason="OpenSSH's sshd is not installed")

NVIDIA_SMI_2xA100 = """#!/bin/sh
printf 'NVIDIA A100-SXM4-80GB\\nNVIDIA A100-SXM4-80GB\\n'
"""


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[SshdFarm]:
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    smi = fake_bin / "nvidia-smi"
    smi.write_text(NVIDIA_SMI_2xA100)
    smi.chmod(0o755)
    # host2 has nvidia-smi, listing two A100s.
    env = {2: {"PATH": f"{fake_bin}:/usr/local/bin:/usr/bin:/bin"}}
    with SshdFarm(tmp_path / "sshd", 3, env=env) as farm:
        yield farm


def build(tmp_path: Path, farm: SshdFarm, *, hosts: list[dict[str, Any]] | None = None,
          state: str = "state", **cloud: Any) -> SshCloud:
    spec = ssh_cloud_spec(farm, ray=str(fake_ray(tmp_path / "fake-ray")), **cloud)
    if hosts is not None:
        spec["hosts"] = hosts
    return SshCloud.from_config("dc1", spec, state_dir=str(tmp_path / state))


def request(cloud: SshCloud, rid: str, *, cluster: str = "c1",
            instance_type: str = "v100-a") -> LaunchRequest:
    offer = next(o for o in cloud.offers() if o.instance_type == instance_type)
    tags = {"rmc-cluster": cluster, "rmc-request-id": rid, "rmc-pool": "gpu", "rmc-offer": offer.offer_id}
    boot = RayBootstrap(gcs_address="127.0.0.1:1", node_type="gpu", resources={"CPU": 1, "GPU": 1})
    return LaunchRequest(RequestId(rid), cluster, "gpu", offer, tags, boot)


def sweep(*clouds: SshCloud) -> None:
    for cloud in clouds:
        for inst in cloud._all_nodes():
            cloud.terminate(inst.instance_id)
        cloud.close()


def host_dicts(farm: SshdFarm, **override: Any) -> list[dict[str, Any]]:
    return [dict(h, **override) for h in ssh_cloud_spec(farm)["hosts"]]  # type: ignore[union-attr]


def test_closed_port_is_taken_out_with_one_log_line_and_the_rest_keeps_working(
    tmp_path: Path, farm: SshdFarm, caplog: pytest.LogCaptureFixture
) -> None:
    hosts = host_dicts(farm)[:2]
    closed = _free_port()
    hosts[0]["port"] = closed  # nothing listens there
    cloud = build(tmp_path, farm, hosts=hosts)
    try:
        with caplog.at_level(logging.WARNING, logger="ray_multicloud.clouds.ssh"):
            inst = cloud.launch(request(cloud, "r1"))
            assert inst.instance_id.startswith(f"dc1-127.0.0.1-{farm.hosts[1].port}-")
            assert cloud.list("c1") == [cloud.get(inst.instance_id)]
            cloud.list("c1")
        lines = [r.getMessage() for r in caplog.records if "taken out of the pool" in r.getMessage()]
        assert len(lines) == 1, lines
        assert f"127.0.0.1:{closed}" in lines[0] and "nothing listens" in lines[0]
        # The pool is now full: the error names the unreachable host and why.
        with pytest.raises(CapacityError) as info:
            cloud.launch(request(cloud, "r2"))
        assert f"127.0.0.1:{closed}" in str(info.value) and "retried in" in str(info.value)
    finally:
        sweep(cloud)


def test_refused_key_and_unknown_host_key_say_which_host_and_what_to_do(
    tmp_path: Path, farm: SshdFarm
) -> None:
    stranger = keygen(tmp_path / "stranger")
    hosts = host_dicts(farm)[:1]
    wrong_key = build(tmp_path, farm, hosts=[dict(hosts[0], ssh_private_key=str(stranger))], state="s1")
    unknown = build(tmp_path, farm, hosts=hosts, state="s2", known_hosts=str(tmp_path / "empty_known_hosts"))
    (tmp_path / "empty_known_hosts").write_text("")
    where = f"127.0.0.1:{farm.hosts[0].port}"
    for cloud, expected in ((wrong_key, f"refused the key {stranger}"), (unknown, "is not in")):
        with pytest.raises(CapacityError) as info:
            cloud.launch(request(cloud, "r1"))
        assert where in str(info.value) and expected in str(info.value), str(info.value)
        assert cloud.check_hosts()[0].ok is False
    # The private key's contents never appear in any message.
    assert stranger.read_text().splitlines()[1] not in str(info.value)


def test_declared_fingerprint_pins_the_host_key(tmp_path: Path, farm: SshdFarm) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    host = host_dicts(farm)[0]
    right = build(tmp_path, farm, state="s1", known_hosts=str(empty),
                  hosts=[dict(host, host_key_fingerprint=farm.hosts[0].host_fingerprint)])
    other_key = keygen(tmp_path / "other_host_key")
    wrong_fp = subprocess.run(["ssh-keygen", "-lf", f"{other_key}.pub"], capture_output=True, text=True,
                              check=True).stdout.split()[1]
    wrong = build(tmp_path, farm, state="s2", known_hosts=str(empty),
                  hosts=[dict(host, host_key_fingerprint=wrong_fp)])
    try:
        inst = right.launch(request(right, "r1"))
        assert right.get(inst.instance_id) is not None
        with pytest.raises(CapacityError) as info:
            wrong.launch(request(wrong, "r2"))
        assert wrong_fp in str(info.value) and farm.hosts[0].host_fingerprint in str(info.value)
    finally:
        sweep(right)


def test_gpus_that_do_not_match_the_declaration_are_refused_naming_the_host(
    tmp_path: Path, farm: SshdFarm
) -> None:
    hosts = host_dicts(farm)
    # host2 (nvidia-smi: 2 x A100) declared as 8 x A100; host0 (no nvidia-smi) as 8 x A100, trusted.
    hosts[2].update(accelerator="A100", accelerator_count=8, instance_type="a100x8")
    cloud = build(tmp_path, farm, hosts=[hosts[2]])
    with pytest.raises(CapacityError) as info:
        cloud.launch(request(cloud, "r1", instance_type="a100x8"))
    message = str(info.value)
    assert f"127.0.0.1:{farm.hosts[2].port}" in message
    assert "8 x A100" in message and "2 GPU(s)" in message and "NVIDIA A100-SXM4-80GB" in message
    check = cloud.check_hosts()[0]
    assert not check.ok and "declares 8 x A100" in check.problems[0]
    hosts[2].update(accelerator_count=2)
    right = build(tmp_path, farm, hosts=[hosts[2]], state="s2")
    try:
        assert right.check_hosts()[0].ok
        right.launch(request(right, "r2", instance_type="a100x8"))
    finally:
        sweep(right)


def test_two_provider_processes_never_double_book_a_host(tmp_path: Path, farm: SshdFarm) -> None:
    hosts = host_dicts(farm)[:1]
    a, b = build(tmp_path, farm, hosts=hosts, state="a"), build(tmp_path, farm, hosts=hosts, state="b")
    results: dict[str, object] = {}

    def go(name: str, cloud: SshCloud) -> None:
        try:
            results[name] = cloud.launch(request(cloud, f"req-{name}", cluster=f"cluster-{name}"))
        except CapacityError as exc:
            results[name] = exc

    try:
        threads = [threading.Thread(target=go, args=(n, c)) for n, c in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [n for n, r in results.items() if not isinstance(r, Exception)]
        assert len(won) == 1, results
        lost = "b" if won == ["a"] else "a"
        assert isinstance(results[lost], CapacityError)
    finally:
        sweep(a, b)


def test_a_restarted_provider_rebuilds_its_nodes_from_the_hosts(tmp_path: Path, farm: SshdFarm) -> None:
    first = build(tmp_path, farm, state="first")
    launched = {first.launch(request(first, f"r{i}")).instance_id for i in range(2)}
    first.close()
    again = build(tmp_path, farm, state="second")  # no local state in common with the first
    try:
        listed = again.list("c1")
        assert {i.instance_id for i in listed} == launched
        assert all(i.state is NodeState.RUNNING for i in listed)
        assert all(i.tags["rmc-request-id"] in {"r0", "r1"} for i in listed)
        # Idempotent launch across the restart: the same request id finds its node.
        assert again.launch(request(again, "r0")).instance_id in launched
        assert len(again.list("c1")) == 2
    finally:
        sweep(again)


def test_terminate_ends_exactly_its_node(tmp_path: Path, farm: SshdFarm) -> None:
    cloud = build(tmp_path, farm)
    # Another process of the same user, outside any node: terminate must leave it alone.
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        keep = cloud.launch(request(cloud, "keep"))
        end = cloud.launch(request(cloud, "end"))
        pgid = {h.port: (h.dir / "home" / ".ray_multicloud" / "pgid") for h in farm.hosts}
        end_port = int(end.instance_id.split("-")[2])
        end_group = int(pgid[end_port].read_text())
        assert any(True for _ in group_members(end_group))
        cloud.terminate(end.instance_id)
        cloud.terminate(end.instance_id)
        assert list(group_members(end_group)) == []
        assert cloud.get(end.instance_id) is None
        assert cloud.get(keep.instance_id) is not None
        assert bystander.poll() is None
        # The host is free again: a new launch may take it.
        assert not pgid[end_port].exists()
    finally:
        bystander.kill()
        bystander.wait()
        sweep(cloud)


def test_a_host_lost_at_run_time_keeps_its_node_listed_and_refuses_terminate_until_it_answers(
    tmp_path: Path, farm: SshdFarm
) -> None:
    cloud = build(tmp_path, farm)
    try:
        inst = cloud.launch(request(cloud, "r1"))
        port = int(inst.instance_id.split("-")[2])
        host = next(h for h in farm.hosts if h.port == port)
        assert [i.instance_id for i in cloud.list("c1")] == [inst.instance_id]
        cloud.close()  # the multiplexed connection goes with the host
        host.stop()
        cloud._cache.clear()
        # Still listed (the last known node: a lost connection is not a lost node) ...
        assert [i.instance_id for i in cloud.list("c1")] == [inst.instance_id]
        # ... and a terminate that cannot reach it says so instead of pretending.
        with pytest.raises(CloudError) as info:
            cloud.terminate(inst.instance_id)
        assert f"127.0.0.1:{port}" in str(info.value) and "nothing listens" in str(info.value)
        farm.start_host(host)
        cloud.terminate(inst.instance_id)
        assert cloud.get(inst.instance_id) is None
        cloud.terminate(InstanceId("dc1-10.9.9.9-22-0000000000"))  # no such host: nothing to do
        cloud.terminate(InstanceId(f"dc1-{cloud.hosts[0].slug}-0000000000"))  # never existed
    finally:
        sweep(cloud)


def group_members(pgid: int) -> Iterator[int]:
    """Live processes of process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            yield int(entry)


def test_plan_check_hosts_names_the_host_that_cannot_be_used(
    tmp_path: Path, farm: SshdFarm, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from ray_multicloud.cli import main

    hosts = host_dicts(farm)[:2]
    closed = _free_port()
    hosts[1]["port"] = closed
    dc1 = ssh_cloud_spec(farm, ray="ray-is-not-here")
    dc1["hosts"] = hosts
    right_ray = dict(dc1, ray=str(fake_ray(tmp_path / "fake-ray")))
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "cluster_configs" /
                             "local-multicloud.yaml").read_text())
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"]["clouds"] = {"aws": {"driver": "local", "prices_from": "aws"}, "dc1": dc1}
    config["available_node_types"] = {
        "head": config["available_node_types"]["head"],
        "v100_private": {"resources": {"CPU": 1, "GPU": 1}, "min_workers": 1, "max_workers": 2,
                         "node_config": {"pool": {"accelerator": "V100", "accelerator_count": 1,
                                                  "capacity_types": ["on-demand"], "clouds": ["dc1"]}}},
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(path)]) == 0  # offline: the ssh pool's offers are placeable
    out = capsys.readouterr().out
    assert "dc1/dc1/-/v100-a/on-demand" in out
    assert main(["plan", str(path), "--check-hosts"]) == 1
    out = capsys.readouterr().out
    assert "`ray-is-not-here` is not installed" in out  # the ray command the hosts would run
    config["provider"]["clouds"]["dc1"] = right_ray
    path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(path), "--check-hosts"]) == 1
    out = capsys.readouterr().out
    assert f"@127.0.0.1:{farm.hosts[0].port}: ok" in out
    assert f"@127.0.0.1:{closed}: NOT USABLE" in out
    assert f"nothing listens on 127.0.0.1:{closed}" in out
    assert "no nvidia-smi" in out  # declared GPUs that could not be verified are said so


def test_private_first_then_burst_to_the_cheapest_public_offer_then_back(
    tmp_path: Path, farm: SshdFarm
) -> None:
    """``source_preference: [onprem]`` with one SSH host: the first node takes the host, the second
    bursts to a public on-demand A100 (the host's offer is full, ``provider.full_offers``, so it is
    not even tried, and nothing cools down), and once the host is free the next node is on it again."""

    from fakes.memory_cloud import launch_workers, memory_cluster, memory_provider

    with memory_cluster(tmp_path / "state") as (config, world):
        host = dict(host_dicts(farm)[0], accelerator="A100", instance_type="dgx-a100-slice",
                    ondemand_equivalent_per_hour=3.67)
        onprem = ssh_cloud_spec(farm, ray=str(fake_ray(tmp_path / "fake-ray")))
        onprem["hosts"] = [host]
        config["provider"]["clouds"]["onprem"] = onprem
        config["provider"]["cooldown_seconds"] = 3
        provider = memory_provider(config, world)
        ssh = provider.clouds["onprem"]
        try:
            (first,) = launch_workers(provider, config, node_type="a100_ondemand", request="r1")
            assert first.cloud == "onprem"
            (second,) = launch_workers(provider, config, node_type="a100_ondemand", request="r2")
            assert second.cloud != "onprem" and second.tags["rmc-capacity"] == "on-demand"
            public = [o for o in provider.offers._base_offers()
                      if o.accelerator == "A100" and o.accelerator_count == 1
                      and o.capacity.value == "on-demand" and o.cloud in ("aws", "gcp", "azure")]
            assert second.tags["rmc-offer"] == min(public, key=lambda o: o.price_per_hour).offer_id
            assert provider._cooldowns == {}  # the full host was skipped, not tried and cooled down
            provider.terminate_node(first.instance_id)
            (third,) = launch_workers(provider, config, node_type="a100_ondemand", request="r3")
            assert third.cloud == "onprem"
        finally:
            sweep(ssh)


def test_a_freed_host_draws_a_price_move_back_from_the_public_cloud(tmp_path: Path, farm: SshdFarm) -> None:
    """The decision half of "come back": with the only SSH host held by another cluster, a node
    bursts to a public on-demand A100, and the host's offer is full (``provider.full_offers``, read
    from the hosts' markers), so nothing is planned onto it; once the host frees, ``rebalance.plan`` proposes moving that
    node onto the private offer (0 $/h), and the replacement the controller launches for the move
    (``launch_on_offer``, make-before-break) lands on the host. The drain and the Train restore of a
    real move are not exercised here."""
    import time

    from fakes.memory_cloud import launch_workers, memory_cluster, memory_provider

    from ray_multicloud.policy.rebalance import RebalanceConfig, plan

    with memory_cluster(tmp_path / "state") as (config, world):
        host = dict(host_dicts(farm)[0], accelerator="A100", instance_type="dgx-a100-slice")
        onprem = ssh_cloud_spec(farm, ray=str(fake_ray(tmp_path / "fake-ray")))
        onprem["hosts"] = [host]
        config["provider"]["clouds"]["onprem"] = onprem
        provider = memory_provider(config, world)
        ssh = provider.clouds["onprem"]
        private = next(o for o in ssh.offers())
        try:
            theirs = request(ssh, "theirs", cluster="another-team", instance_type="dgx-a100-slice")
            other = ssh.launch(theirs)
            (burst,) = launch_workers(provider, config, node_type="a100_ondemand", request="r1")
            assert burst.cloud != "onprem"
            node_config = config["available_node_types"]["a100_ondemand"]["node_config"]
            pool = provider._target("a100_ondemand", node_config)
            rules = RebalanceConfig(min_interval_s=0.0, state_gb=0.01, checkpoint_s=5, restart_s=20,
                                    launch_s=10)
            now = time.time()
            # While the other team holds the host, the offer is full (as the controller passes it):
            # no move is planned onto it, and no launch is tried there.
            full = provider.full_offers()
            assert full == {private.offer_id}
            held = plan(provider.fleet(), provider.offers.index(), {"a100_ondemand": pool}, now=now,
                        config=rules, last_moved={}, cooldowns=dict.fromkeys(full, float("inf")))
            assert held.moves == ()
            ssh.terminate(other.instance_id)  # the other team's job ends: the host is free
            assert provider.full_offers() == frozenset()
            moves = plan(provider.fleet(), provider.offers.index(), {"a100_ondemand": pool}, now=now,
                         config=rules, last_moved={}).moves
            assert [(m.instance_id, m.to_offer.offer_id) for m in moves] == [
                (burst.instance_id, private.offer_id)]
            replacement = provider.launch_on_offer("a100_ondemand", moves[0].to_offer,
                                                   resources={"CPU": 1, "GPU": 1}, labels={})
            assert replacement.cloud == "onprem"
            provider.terminate_node(burst.instance_id)
            assert {i.cloud for i in provider.clouds["onprem"].list(provider.cluster_name)} == {"onprem"}
        finally:
            sweep(ssh)


def test_a_failed_ray_start_takes_the_host_out_instead_of_relaunching_there(
    tmp_path: Path, farm: SshdFarm
) -> None:
    import time

    broken = tmp_path / "broken-ray"
    # As a real failed `ray start` can: something of the node is left running (Ray's log monitor).
    broken.write_text("#!/bin/bash\nnohup sleep 100000 >/dev/null 2>&1 &\n"
                      "echo 'ray: cannot reach the head' >&2\nexit 3\n")
    broken.chmod(0o755)
    cloud = SshCloud.from_config("dc1", ssh_cloud_spec(farm, ray=str(broken)), state_dir=str(tmp_path / "s"))
    try:
        inst = cloud.launch(request(cloud, "r1"))
        port = int(inst.instance_id.split("-")[2])
        deadline = time.monotonic() + 30
        while cloud.get(inst.instance_id) is not None and time.monotonic() < deadline:
            cloud._cache.clear()
            time.sleep(0.5)
        assert cloud.get(inst.instance_id) is None  # the node is gone: ray start exited 3
        reason = cloud._unavailable(next(h for h in cloud.hosts if h.port == port))
        assert reason is not None and "ray start failed (exit 3)" in reason and "node.log.prev" in reason
        # What the failed start left is ended at once (nobody would list, so terminate, it again),
        # and the host's claim is gone; its output is kept.
        deadline = time.monotonic() + 30
        while node_processes(inst.instance_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert node_processes(inst.instance_id) == {}
        state = next(h for h in farm.hosts if h.port == port).dir / "home" / ".ray_multicloud"
        assert not (state / "instance_id").exists()
        assert "cannot reach the head" in (state / "node.log.prev").read_text()
        again = cloud.launch(request(cloud, "r2"))
        assert int(again.instance_id.split("-")[2]) != port
    finally:
        sweep(cloud)
