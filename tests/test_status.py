"""``ray-multicloud status``: every machine of the cluster on every cloud, through the drivers.

Launches go through the real provider (as the autoscaler launches), onto in-memory clouds and onto
the real AWS driver against moto; the status is then read from the clouds alone (a fresh set of
drivers, no provider object), so what it shows can only have come from the clouds' tags. Expected
prices are the literal catalog rows the tests write (or the shipped catalog's row, read from the CSV
by hand), never the code under test's own output.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloud_factories import aws_session, moto_server
from fakes.memory_cloud import MemoryWorld, launch_workers, memory_cluster, memory_provider
from hypothesis import given
from hypothesis import strategies as st
from test_cloud_drivers import loopback_clouds
from test_cloud_drivers import provider_config as provider_config  # a fixture, used by name

from ray_multicloud.cli import main
from ray_multicloud.clouds.base import TAG_OFFER
from ray_multicloud.dashboard.fleet import (
    NOT_IN_GCS,
    UNKNOWN,
    collect_status,
    format_age,
    parse_offer_id,
    read_ray_states,
)
from ray_multicloud.errors import CloudError
from ray_multicloud.ledger import Ledger
from ray_multicloud.pricing.board import PriceBoard
from ray_multicloud.types import InstanceId

CATALOG = Path(__file__).resolve().parent.parent / "ray_multicloud" / "data" / "gpu_offers.csv"
NOW = 1_800_000_000.0


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def catalog_row(offer_id: str) -> dict[str, str]:
    """The shipped catalog's row of ``offer_id`` (cloud/region/zone/type/capacity), read from the CSV."""
    cloud, region, zone, itype, _cap = offer_id.split("/")
    with CATALOG.open() as f:
        for row in csv.DictReader(f):
            key = (row["cloud"], row["region"], row["zone"] or "-", row["instance_type"])
            if key == (cloud, region, zone, itype):
                return row
    raise AssertionError(f"{offer_id} not in the shipped catalog")


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld]]:
    with memory_cluster(tmp_path) as (config, world):
        config["provider"]["gcs_address"] = f"127.0.0.1:{closed_port()}"
        yield config, world


def test_status_lists_every_cloud_from_the_drivers_with_price_age_pool_and_ray_state(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    config, world = memory
    provider = memory_provider(config, world)
    spot = launch_workers(provider, config, node_type="t4_spot", request="a", count=2)
    (a100,) = launch_workers(provider, config, node_type="a100_ondemand", request="b")
    # The cloud says when each machine started (the memory cloud's own instances carry no time).
    for inst, age in ((spot[0], 42.0), (spot[1], 3 * 3600 + 5 * 60), (a100, 2 * 86400 + 4 * 3600)):
        world.instances[inst.instance_id] = dataclasses.replace(
            world.instances[inst.instance_id], launched_at=NOW - age)

    ray = {spot[0].instance_id: "RUNNING", a100.instance_id: "IDLE"}
    status = collect_status(config, clouds=world.clouds(config), ray_states=lambda _a: ray, now=NOW)

    assert status.gcs_read and status.problems == ()
    by_id = {r.instance_id: r for r in status.rows}
    assert set(by_id) == {spot[0].instance_id, spot[1].instance_id, a100.instance_id}
    for inst in spot:
        row = by_id[inst.instance_id]
        offer_id = inst.tags[TAG_OFFER]
        cat = catalog_row(offer_id)
        cloud, region, zone, itype, _cap = offer_id.split("/")
        assert (row.cloud, row.region, row.zone or "-", row.instance_type, row.capacity) == (
            cloud, region, zone, itype, "spot")
        assert row.price_per_hour == pytest.approx(float(cat["spot_usd_per_hour"]))
        assert row.ondemand_price_per_hour == pytest.approx(float(cat["ondemand_usd_per_hour"]))
        assert row.price_source == "offer book" and row.pool == "t4_spot" and row.kind == "worker"
    # The private pool comes first for the on-demand A100 pool: the YAML's onprem machine at its
    # amortised price: capex $24,875 over 4 years of 8,760 h, plus 0.8125 kW x PUE 1.58 x $0.13/kWh.
    amortised = 24875 / (4 * 8760) + 0.8125 * 1.58 * 0.13
    row = by_id[a100.instance_id]
    assert (row.cloud, row.region, row.instance_type, row.capacity) == (
        "onprem", "onprem-dc1", "dgx-a100-slice", "on-demand")
    assert row.price_per_hour == pytest.approx(amortised) and row.ondemand_price_per_hour == pytest.approx(3.67)
    assert [by_id[i.instance_id].age_s for i in (*spot, a100)] == [42.0, 11100.0, 187200.0]
    assert [format_age(by_id[i.instance_id].age_s) for i in (*spot, a100)] == ["42s", "3h05m", "2d04h"]
    assert [by_id[i.instance_id].ray_state for i in (*spot, a100)] == ["RUNNING", NOT_IN_GCS, "IDLE"]
    spot_prices = [float(catalog_row(i.tags[TAG_OFFER])["spot_usd_per_hour"]) for i in spot]
    assert status.cost_per_hour == pytest.approx(sum(spot_prices) + amortised)


def test_price_now_follows_the_price_board_not_the_launch_price(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    config, world = memory
    (inst,) = launch_workers(memory_provider(config, world), config, node_type="t4_spot")
    offer_id = inst.tags[TAG_OFFER]
    launch_price = float(inst.tags["rmc-price"])
    PriceBoard(config["provider"]["state_dir"]).set(offer_id, 0.777)
    (row,) = collect_status(config, clouds=world.clouds(config), ray_states=lambda _a: {}, now=NOW).rows
    assert launch_price != 0.777 and row.price_per_hour == pytest.approx(0.777)


def test_unreachable_gcs_reads_as_unknown_quickly(memory: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = memory
    launch_workers(memory_provider(config, world), config)
    status = collect_status(config, clouds=world.clouds(config), gcs_timeout_s=2.0, now=NOW)
    assert [r.ray_state for r in status.rows] == [UNKNOWN] and not status.gcs_read
    assert any("GCS at 127.0.0.1:" in p and "unknown" in p for p in status.problems)
    # A GCS read that hangs is given up after its timeout, not waited for.
    assert read_ray_states("127.0.0.1:1", 0.2, nodes=lambda _a: __import__("time").sleep(5) or {}) is None


class BrokenCloud:
    """A cloud whose API fails on every list."""

    def __init__(self, name: str, features: Any) -> None:
        self.name, self.features = name, features

    def list(self, cluster: str) -> list[Any]:
        raise CloudError(self.name, "HTTP 503 from the API")


def test_a_cloud_that_cannot_be_listed_is_named_and_the_others_still_show(
    memory: tuple[dict[str, Any], MemoryWorld],
) -> None:
    config, world = memory
    (inst,) = launch_workers(memory_provider(config, world), config)
    clouds: dict[str, Any] = world.clouds(config)
    broken = next(n for n in clouds if n != inst.cloud and n != "onprem")
    clouds[broken] = BrokenCloud(broken, clouds[broken].features)
    status = collect_status(config, clouds=clouds, ray_states=lambda _a: {}, now=NOW)
    assert [r.instance_id for r in status.rows] == [inst.instance_id]
    assert status.problems == (f"cloud {broken}: cannot list instances (CloudError: [{broken}] HTTP 503 "
                               "from the API)",)


def test_jobs_come_from_the_ledger_and_the_instance_outranks_the_pool(
    memory: tuple[dict[str, Any], MemoryWorld], tmp_path: Path,
) -> None:
    config, world = memory
    ledger_path = tmp_path / "ledger.db"
    config["provider"]["ledger"] = str(ledger_path)
    provider = memory_provider(config, world)
    a, b = launch_workers(provider, config, count=2)
    with Ledger(ledger_path) as ledger:
        ledger.set_job(a.instance_id, "llm-ft")
    rows = {r.instance_id: r for r in collect_status(
        config, clouds=world.clouds(config), ray_states=lambda _a: {}, now=NOW).rows}
    assert rows[a.instance_id].job == "llm-ft" and rows[b.instance_id].job == ""


def test_a_pools_deadline_job_names_its_machines(tmp_path: Path) -> None:
    """A Train run that registered a deadline (its manifest in the embedded clouds' Train storage,
    ``<state_dir>/train/<run>/rmc-job.json``) names the machines of its pool (local driver)."""
    import os
    import time

    from ray_multicloud.clouds.local import LocalState

    _path, config = local_yaml(tmp_path)
    state_dir = Path(config["provider"]["state_dir"])
    offer_id = "gcp/us-central1/us-central1-a/n1-standard-4+T4/spot"
    tags = {"rmc-cluster": "rmc-local", "rmc-pool": "t4_spot", "rmc-offer": offer_id, "rmc-request-id": "r"}
    LocalState(state_dir).insert({
        "instance_id": "gcp-live", "cloud": "gcp", "cluster": "rmc-local", "offer_id": offer_id,
        "bootstrap": None, "request_id": "r", "tags": json.dumps(tags), "state": "running",
        "launched_at": time.time(), "pid": os.getpid()})
    run = state_dir / "train" / "llm-ft"
    run.mkdir(parents=True)
    (run / "rmc-job.json").write_text(json.dumps({
        "version": 1, "cluster": "rmc-local", "name": "llm-ft", "pool": "t4_spot", "total_steps": 100,
        "deadline_at": time.time() + 86400, "submitted_at": time.time() - 60}))
    (row,) = collect_status(config, ray_states=lambda _a: {}).rows
    assert row.instance_id == "gcp-live" and row.job == "llm-ft"


def test_parse_offer_id() -> None:
    assert parse_offer_id("azure/eastus/-/Standard_NC6s_v3/spot") == (
        "azure", "eastus", "", "Standard_NC6s_v3", "spot")
    assert parse_offer_id("aws/us-east-1/use1-az1/p3.2xlarge/on-demand")[2] == "use1-az1"  # type: ignore[index]
    for bad in ("", "aws/us-east-1", "a/b//d/e", "a/b/c/d/e/f"):
        assert parse_offer_id(bad) is None


# -- AWS through moto ------------------------------------------------------------------------------

V100_CATALOG = (
    "cloud,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,price_scope,source\n"
    "aws,us-east-1,use1-az1,p3.2xlarge,V100,1,8,61,3.06,0.9180,full_vm,test\n"
    "aws,us-east-1,use1-az2,p3.2xlarge,V100,1,8,61,3.06,1.2000,full_vm,test\n"
)


def test_status_lists_aws_machines_through_the_real_driver_on_moto(tmp_path: Path) -> None:
    from ray_multicloud.clouds.aws import AwsCloud
    from ray_multicloud.provider import MultiCloudNodeProvider

    (tmp_path / "catalog.csv").write_text(V100_CATALOG)
    section = {
        "type": "external", "module": "ray_multicloud.provider.MultiCloudNodeProvider",
        "gcs_address": f"127.0.0.1:{closed_port()}", "state_dir": str(tmp_path / "state"),
        "catalog": str(tmp_path / "catalog.csv"),
        # Not the registry's "aws" driver: no live price feed is built (no internet here).
        "clouds": {"aws": {"driver": "moto-aws", "prices_from": "aws", "regions": ["us-east-1"]}},
    }
    config = {"cluster_name": "moto-status", "provider": section}
    with moto_server() as endpoint:
        def clouds() -> dict[str, Any]:
            return {"aws": AwsCloud("aws", regions=("us-east-1",), image_id={"us-east-1": "ami-12345678"},
                                    endpoint_url=endpoint, session=aws_session(), sleep=lambda _s: None)}

        provider = MultiCloudNodeProvider(dict(section), "moto-status", clouds=clouds())
        tags = {"ray-node-kind": "worker", "ray-user-node-type": "v100", "ray-launch-request": "r1"}
        node_config = {"pool": {"accelerator": "V100", "accelerator_count": 1, "capacity_types": ["spot"]}}
        created = provider.create_node_with_resources_and_labels(node_config, tags, 2, {"GPU": 1.0}, {})
        assert len(created) == 2
        # Another cluster's machine in the same account is not ours.
        other = MultiCloudNodeProvider(dict(section), "someone-else", clouds=clouds())
        other.create_node_with_resources_and_labels(node_config, {**tags, "ray-launch-request": "x"}, 1,
                                                    {"GPU": 1.0}, {})

        import time

        before = time.time()
        status = collect_status(config, clouds=clouds(), ray_states=lambda _a: None)
        assert {r.instance_id for r in status.rows} == set(created)
        for row in status.rows:
            # The cheapest zone of the two the test's catalog sells.
            assert (row.cloud, row.region, row.zone, row.instance_type, row.capacity, row.pool) == (
                "aws", "us-east-1", "use1-az1", "p3.2xlarge", "spot", "v100")
            assert row.price_per_hour == pytest.approx(0.918)
            assert row.ondemand_price_per_hour == pytest.approx(3.06)
            assert row.state in ("pending", "running") and row.ray_state == UNKNOWN
            # moto's LaunchTime (whole seconds) is the age's origin.
            assert row.age_s is not None and 0 <= row.age_s <= time.time() - before + 60


# -- the command -----------------------------------------------------------------------------------


def local_yaml(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The repository's local YAML, its state in ``tmp_path``, its GCS on a closed port."""
    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "cluster_configs" /
                             "local-multicloud.yaml").read_text())
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"]["ledger"] = str(tmp_path / "state" / "ledger.db")
    config["provider"]["gcs_address"] = f"127.0.0.1:{closed_port()}"
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_cli_status_on_the_local_cloud_table_json_and_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The local cloud's driver lists a live instance (its process is this test's own, so it reads as
    alive) and not the ended one; ``--ended`` adds the ledger's ended machines."""
    import os
    import time

    from ray_multicloud.clouds.local import LocalState

    path, config = local_yaml(tmp_path)
    state = LocalState(config["provider"]["state_dir"])
    offer_id = "gcp/us-central1/us-central1-a/n1-standard-4+T4/spot"
    cat = catalog_row(offer_id)
    base = {"cloud": "gcp", "cluster": "rmc-local", "offer_id": offer_id, "bootstrap": None}
    tags = {"rmc-cluster": "rmc-local", "rmc-pool": "t4_spot", "rmc-offer": offer_id, "rmc-request-id": "r",
            "rmc-cloud": "gcp", "rmc-capacity": "spot", "rmc-price": cat["spot_usd_per_hour"],
            "ray-node-kind": "worker"}
    state.insert({**base, "instance_id": "gcp-live", "request_id": "r", "tags": json.dumps(tags),
                  "state": "running", "launched_at": time.time() - 125, "pid": os.getpid()})
    state.insert({**base, "instance_id": "gcp-gone", "request_id": "q", "tags": json.dumps(tags),
                  "state": "terminated", "launched_at": NOW - 100, "ended_at": NOW - 50,
                  "end_reason": "preempted"})
    with Ledger(config["provider"]["ledger"]) as ledger:
        from ray_multicloud.types import CapacityType, Offer

        offer = Offer("gcp", "us-central1", "us-central1-a", "n1-standard-4+T4", "T4", 1, 4, 15,
                      CapacityType.SPOT, float(cat["spot_usd_per_hour"]), float(cat["ondemand_usd_per_hour"]))
        ledger.record_launch("gcp-gone", "rmc-local", "t4_spot", offer, "q", NOW - 100)
        ledger.record_end("gcp-gone", NOW - 50, "preempted")

    assert main(["status", str(path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["instance", "cloud", "region", "zone", "type", "capacity", "$/h", "now",
                                "age", "pool", "state", "ray", "job"]
    price = f"{float(cat['spot_usd_per_hour']):.4f}"
    assert lines[2].split() == ["gcp-live", "gcp", "us-central1", "us-central1-a", "n1-standard-4+T4", "spot",
                                price, "2m", "t4_spot", "running", "unknown", "-"]
    assert "gcp-gone" not in out and "GCS at" in err and "Ray node states unknown" in err
    assert "1 machine(s) on 1 of 4 configured cloud(s)" in out

    assert main(["status", str(path), "--json", "--ended"]) == 0
    data = json.loads(capsys.readouterr().out)
    (node,) = data["nodes"]
    assert node["instance_id"] == "gcp-live" and node["price_per_hour"] == pytest.approx(
        float(cat["spot_usd_per_hour"])) and node["ray_state"] == "unknown"
    assert [(e["instance_id"], e["end_reason"]) for e in data["ended"]] == [("gcp-gone", "preempted")]
    assert sorted(data["clouds"]) == ["aws", "azure", "gcp", "onprem"]


def test_cli_status_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, config = local_yaml(tmp_path)
    config["provider"]["clouds"]["aws"]["driver"] = "awz"
    path.write_text(yaml.safe_dump(config))
    assert main(["status", str(path)]) == 2
    assert "provider.clouds.aws.driver" in capsys.readouterr().err


def test_ray_states_read_maps_instance_ids_to_status() -> None:
    class Node:
        def __init__(self, status: str) -> None:
            self.status = status

    got = read_ray_states("127.0.0.1:1", 5.0, nodes=lambda _a: {InstanceId("i-1"): Node("DRAINING")})
    assert got == {"i-1": "DRAINING"}


# -- readers of what the clouds hand back (tags) -----------------------------------------------------

_part = st.text(st.characters(blacklist_characters="/", blacklist_categories=("Cs",)),
                min_size=1, max_size=12)


@given(cloud=_part, region=_part, zone=st.one_of(st.just(""), _part.filter(lambda z: z != "-")),
       itype=_part, capacity=st.sampled_from(["spot", "on-demand"]))
def test_parse_offer_id_inverts_offer_id(
    cloud: str, region: str, zone: str, itype: str, capacity: str,
) -> None:
    from ray_multicloud.types import CapacityType, Offer

    offer = Offer(cloud, region, zone, itype, "T4", 1, 4, 16, CapacityType(capacity), 0.1, 0.5)
    assert parse_offer_id(offer.offer_id) == (cloud, region, zone, itype, capacity)


@given(st.text(max_size=60))
def test_parse_offer_id_never_raises_on_any_tag_value(text: str) -> None:
    got = parse_offer_id(text)
    assert got is None or (len(got) == 5 and "/".join(p or "-" for p in got) == text)


@given(st.floats(min_value=0, max_value=10 * 365 * 86400), st.floats(min_value=0, max_value=10 * 365 * 86400))
def test_format_age_orders_like_seconds(a: float, b: float) -> None:
    def key(text: str) -> tuple[int, ...]:
        import re

        units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
        return (sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhms])", text)),)

    if int(a) <= int(b):
        assert key(format_age(a)) <= key(format_age(b))


@pytest.mark.e2e
def test_ray_states_from_a_real_gcs(tmp_path: Path) -> None:
    """A real Ray head on loopback (its raylet's RAY_CLOUD_INSTANCE_ID is the instance id, as the drivers
    set it): the status reads its node state from the GCS, in a process of its own."""
    import os
    import subprocess
    import sys

    script = (
        "import json, ray\n"
        "from ray_multicloud.dashboard.fleet import read_ray_states\n"
        "ray.init(address='local', num_cpus=1, include_dashboard=False, _node_ip_address='127.0.0.1',"
        " object_store_memory=80 * 1024 * 1024)\n"
        "try:\n"
        "    print('STATES', json.dumps(read_ray_states(ray.get_runtime_context().gcs_address, 30.0)))\n"
        "finally:\n"
        "    ray.shutdown()\n"
    )
    env = {**os.environ, "RAY_CLOUD_INSTANCE_ID": "i-head-1", "PYTHONPATH": str(Path(__file__).parent.parent),
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ADDRESS": "",
           # Its own HOME: a local ray.init writes ~/.ray/auth_token (Ray 2.60 turns token auth on
           # for local clusters), which must not be left in the machine user's home.
           "HOME": str(tmp_path)}
    line = None
    for _attempt in range(2):  # Ray gives its raylet a fixed 30 s to register: a loaded machine may miss it
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             timeout=240, cwd=tmp_path, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("STATES ")), None)
        if line is not None or "timed out during startup" not in out.stderr:
            break
    assert line is not None, out.stderr[-2000:]
    states = json.loads(line[len("STATES "):])
    # The instance id is the key; an alive head is IDLE, or RUNNING while Ray's own startup work still
    # holds resources on it (seen once in CI on a loaded machine).
    assert list(states) == ["i-head-1"] and states["i-head-1"] in {"IDLE", "RUNNING"}, states


def test_status_lists_gcp_and_azure_machines_through_the_real_drivers_on_loopback_apis(
    provider_config: tuple[dict[str, Any], Any, Any],
) -> None:
    """The real GCP and Azure drivers against the repository's loopback API servers: one machine on
    each (GCP's cheapest zone, then Azure once GCP has no capacity), listed by a fresh set of drivers."""
    from ray_multicloud.provider import MultiCloudNodeProvider

    config, gcp_fake, _az_fake = provider_config
    provider = MultiCloudNodeProvider(config, "three", clouds=loopback_clouds(config))
    node_config = {"pool": {"accelerator": "V100", "accelerator_count": 1, "capacity_types": ["spot"]}}

    def launch(request: str) -> str:
        tags = {"ray-node-type": "worker", "ray-user-node-type": "v100", "ray-launch-request": request}
        (iid,) = provider.create_node_with_resources_and_labels(node_config, tags, 1, {"GPU": 1.0}, {})
        return str(iid)

    on_gcp = launch("r1")
    gcp_fake.exhausted_zones.update({"us-central1-a", "us-central1-b"})
    on_azure = launch("r2")
    status = collect_status({"cluster_name": "three", "provider": config}, clouds=loopback_clouds(config),
                            ray_states=lambda _a: {on_gcp: "RUNNING"})
    rows = {r.instance_id: r for r in status.rows}
    assert set(rows) == {on_gcp, on_azure} and status.problems == ()
    # The prices of the test catalog's rows (test_cloud_drivers.provider_config).
    g, a = rows[on_gcp], rows[on_azure]
    assert (g.cloud, g.region, g.zone, g.instance_type, g.capacity, g.price_per_hour, g.ray_state) == (
        "gcp", "us-central1", "us-central1-a", "n1-standard-8+V100", "spot", 0.80, "RUNNING")
    assert (a.cloud, a.region, a.zone, a.instance_type, a.capacity, a.price_per_hour, a.ray_state) == (
        "azure", "eastus", "", "Standard_NC6s_v3", "spot", 0.95, NOT_IN_GCS)
    assert g.ondemand_price_per_hour == 2.95 and a.ondemand_price_per_hour == 3.06
