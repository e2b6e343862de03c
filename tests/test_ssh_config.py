"""The SSH driver's pure parts: reading its config entry (bad input names the YAML key and the fix),
the host state read from a host's report, the GPU inventory check, fingerprints, ssh failures."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_multicloud.clouds import make_cloud
from ray_multicloud.clouds.ssh import (
    STALE_CLAIM_S,
    HostFacts,
    SshCloud,
    check_inventory,
    explain_ssh_failure,
    host_offers,
    host_state,
    key_fingerprint,
    parse_settings,
    parse_status,
)
from ray_multicloud.errors import ConfigError
from ray_multicloud.types import CapacityType, NodeState

HOST = {"address": "10.0.0.11", "port": 22, "user": "ray", "ssh_private_key": "~/.ssh/dc1",
        "accelerator": "A100", "accelerator_count": 8, "vcpus": 96, "memory_gib": 1024}


def spec(*hosts: dict[str, Any], **cloud: Any) -> dict[str, Any]:
    return {"driver": "ssh", "region": "dc1", "hosts": list(hosts), **cloud}


def test_the_issue_example_reads_as_one_offer_at_zero_marginal_price(tmp_path: Path) -> None:
    cloud = make_cloud("dc1", spec(HOST, dict(HOST, address="10.0.0.12")), state_dir=str(tmp_path))
    assert isinstance(cloud, SshCloud)
    assert cloud.features.fixed_capacity and cloud.features.own_offers and not cloud.features.spot
    (offer,) = cloud.offers()
    assert (offer.cloud, offer.region, offer.accelerator) == ("dc1", "dc1", "A100")
    assert offer.accelerator_count == 8
    assert offer.capacity is CapacityType.ON_DEMAND and offer.price_per_hour == 0.0
    assert offer.instance_type == "a100x8-96c"
    assert [h.node_ip for h in cloud.hosts] == ["10.0.0.11", "10.0.0.12"]


def test_hosts_of_different_kinds_are_different_offers() -> None:
    settings_ = parse_settings("dc1", spec(HOST, dict(HOST, address="10.0.0.12", accelerator="L4",
                                                       accelerator_count=1, vcpus=8, memory_gib=32)))
    kinds = sorted(o.instance_type for o in host_offers("dc1", "dc1", settings_.hosts))
    assert kinds == ["a100x8-96c", "l4x1-8c"]


@pytest.mark.parametrize(
    ("entry", "key", "fix"),
    [
        ({"driver": "ssh"}, "provider.clouds.dc1.hosts", "list the pool's machines"),
        (spec(HOST, colour="red"), "provider.clouds.dc1.colour", "unknown key"),
        (spec(dict(HOST, adress="x")), "provider.clouds.dc1.hosts[0].adress", "did you mean 'address'"),
        (spec({k: v for k, v in HOST.items() if k != "user"}), "provider.clouds.dc1.hosts[0].user",
         "required"),
        (spec(dict(HOST, port=70000)), "provider.clouds.dc1.hosts[0].port", "1-65535"),
        (spec(dict(HOST, port="22")), "provider.clouds.dc1.hosts[0].port", "1-65535"),
        (spec(dict(HOST, accelerator_count=1.5)), "provider.clouds.dc1.hosts[0].accelerator_count", "whole"),
        (spec(dict(HOST, accelerator="")), "provider.clouds.dc1.hosts[0].accelerator", "name the GPU model"),
        (spec(dict(HOST, vcpus="many")), "provider.clouds.dc1.hosts[0].vcpus", "must be a number"),
        (spec(dict(HOST, memory_gib=float("nan"))), "provider.clouds.dc1.hosts[0].memory_gib", "a number"),
        (spec(dict(HOST, host_key_fingerprint="MD5:aa:bb")),
         "provider.clouds.dc1.hosts[0].host_key_fingerprint", "ssh-keygen -lf"),
        (spec(dict(HOST, ray_start_args="--num-cpus=4")), "provider.clouds.dc1.hosts[0].ray_start_args",
         "list"),
        (spec(HOST, HOST), "provider.clouds.dc1.hosts[1]", "already hosts[0]"),
        (spec(HOST, dict(HOST, address="10.0.0.12", vcpus=8, instance_type="a100x8-96c")),
         "provider.clouds.dc1.hosts[1].instance_type", "different instance_type"),
        (spec(HOST, head_address="10.0.0.1"), "provider.clouds.dc1.head_address", "HOST:PORT"),
        (spec("10.0.0.11"), "provider.clouds.dc1.hosts[0]", "must be a mapping such as {address:"),
    ],
    ids=["no-hosts", "unknown-cloud-key", "typo-host-key", "no-user", "port-range", "port-string",
         "half-gpu", "gpus-without-model", "vcpus-text", "memory-nan", "md5-fingerprint", "args-string",
         "duplicate",
         "same-type-other-hardware", "head-without-port", "host-as-string"],
)
def test_bad_entries_name_the_key_and_the_fix(entry: dict[str, Any], key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings("dc1", entry)
    assert info.value.key == key
    assert fix in str(info.value)


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True),
                    st.text(max_size=12), st.lists(st.text(max_size=4), max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*HOST, "host_key_fingerprint", "instance_type", "node_ip",
                                        "state_dir", "ray_start_args", "bogus"]), _values, max_size=12))
def test_any_host_entry_reads_or_is_a_config_error(item: dict[str, Any]) -> None:
    """User input never crashes the reader with anything but a ConfigError naming a host key."""
    try:
        parse_settings("dc1", spec(item))
    except ConfigError as exc:
        assert exc.key.startswith("provider.clouds.dc1.hosts[0]")


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        (HostFacts(now=100.0), None),
        (HostFacts("i", {"launched_at": 90.0}, now=100.0), NodeState.PENDING),  # claimed, starting
        (HostFacts("i", {"launched_at": 100.0 - STALE_CLAIM_S - 1}, now=100.0), NodeState.TERMINATED),
        (HostFacts("i", {}, pgid=7, alive=True, now=100.0), NodeState.PENDING),  # ray start running
        (HostFacts("i", {}, pgid=7, start_rc=0, alive=True, now=100.0), NodeState.RUNNING),
        (HostFacts("i", {}, pgid=7, start_rc=0, alive=False, now=100.0), NodeState.TERMINATED),  # Ray died
        (HostFacts("i", {}, pgid=7, start_rc=1, alive=True, now=100.0), NodeState.TERMINATED),  # start failed
    ],
    ids=["free", "claimed", "abandoned-claim", "starting", "running", "died", "start-failed"],
)
def test_host_state(facts: HostFacts, state: NodeState | None) -> None:
    assert host_state(facts) is state


def test_parse_status_reads_the_remote_report() -> None:
    marker = {"instance_id": "dc1-h-1", "tags": {"rmc-cluster": "c"}, "launched_at": 5.0}
    encoded = base64.b64encode(json.dumps(marker).encode()).decode()
    out = f"now 99\nid dc1-h-1\npgid 4242\nrc 0\nalive\nmarker {encoded}\n"
    facts = parse_status(out)
    assert facts == HostFacts("dc1-h-1", marker, pgid=4242, start_rc=0, alive=True, now=99.0)
    assert parse_status("now 5\nfree\n") == HostFacts(now=5.0)


@pytest.mark.parametrize(
    ("declared", "reported", "problem"),
    [
        ((8, "A100"), None, None),  # no nvidia-smi: trusted
        ((2, "A100"), ["NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"], None),
        ((1, "H100"), ["NVIDIA H100 80GB HBM3"], None),
        ((1, "l4"), ["NVIDIA L4"], None),
        ((8, "A100"), ["NVIDIA A100-SXM4-80GB"] * 2, "lists 2 GPU(s)"),
        ((2, "H100"), ["NVIDIA A100-SXM4-80GB"] * 2, "fix this host's accelerator"),
        ((0, ""), ["Tesla T4"], "declares no GPUs"),
    ],
)
def test_check_inventory(declared: tuple[int, str], reported: list[str] | None, problem: str | None) -> None:
    host = parse_settings("dc1", spec(dict(HOST, accelerator_count=declared[0],
                                           accelerator=declared[1]))).hosts[0]
    message = check_inventory(host, reported)
    if problem is None:
        assert message is None
    else:
        assert message is not None and problem in message and "ray@10.0.0.11:22" in message


def test_key_fingerprint_is_the_one_ssh_keygen_prints(tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    blob = (tmp_path / "k.pub").read_text().split()[1]
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert key_fingerprint(blob) == printed


@pytest.mark.parametrize(
    ("stderr", "says"),
    [
        ("ssh: connect to host 10.0.0.11 port 22: Connection refused", "nothing listens on 10.0.0.11:22"),
        ("ssh: connect to host 10.0.0.11 port 22: Connection timed out", "does not answer"),
        ("Host key verification failed.", "ssh-keyscan -p 22 10.0.0.11 >> ~/.ssh/known_hosts"),
        ("ray@10.0.0.11: Permission denied (publickey).", "add its .pub to ~ray/.ssh/authorized_keys"),
        ("ssh: Could not resolve hostname nope: Name or service not known", "check the address"),
    ],
)
def test_ssh_failures_say_what_to_do(stderr: str, says: str) -> None:
    host = parse_settings("dc1", spec(HOST)).hosts[0]
    message = explain_ssh_failure(host, stderr, "~/.ssh/known_hosts")
    assert message.startswith("host ray@10.0.0.11:22: ") and says in message
