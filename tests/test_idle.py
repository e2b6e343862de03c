"""Idle governance (issue 15, item 2): the pure rules (``policy/idle.py``), the YAML reader
(``cluster_config/idle.py``) and the run-time guard (``idle_guard.py``) over in-memory clouds.

Expected values are hand-computed from the rules' text, never read back from the code under test.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import memory_cloud
from hypothesis import given
from hypothesis import strategies as st

from ray_multicloud.cluster_config.idle import parse_duration, parse_idle
from ray_multicloud.errors import ConfigError, LaunchFailed, MultiCloudError
from ray_multicloud.policy.idle import (
    ActionKind,
    GpuReading,
    IdleMemory,
    IdleSettings,
    PoolIdle,
    decide,
    human,
    observe,
)

H = 3600.0
SETTINGS = IdleSettings(
    pools={"t4": PoolIdle("t4", downsize_after_s=4 * H, downsize_to="cpu")},
    hibernate_after_s=12 * H,
)


def gpu_node(*, used: bool, busy: bool = True, iid: str = "i-1", node_type: str = "t4") -> GpuReading:
    return GpuReading(iid, node_type, gpus=1.0, gpu_in_use=used, busy=busy or used)


# --------------------------------------------------------------------------- the rules


def test_worked_example_downsize_at_four_hours_then_hibernate_at_twelve() -> None:
    """The module docstring's example: last GPU use at t=1000 s, a CPU actor still on the node."""
    memory = observe(IdleMemory(), [gpu_node(used=True)], now=1000.0)
    assert memory.node_gpu_at == {"i-1": 1000.0} and memory.cluster_gpu_at == 1000.0
    idle = [gpu_node(used=False)]
    m = observe(memory, idle, now=15399.0)
    assert decide(idle, m, SETTINGS, now=15399.0).actions == ()
    m = observe(memory, idle, now=15400.0)  # 1000 + 4 h
    (action,) = decide(idle, m, SETTINGS, now=15400.0).actions
    assert action.kind is ActionKind.DOWNSIZE and action.instance_ids == ("i-1",)
    assert action.to_node_type == "cpu"
    assert "4h" in action.reason and "downsize_after 4h" in action.reason
    # Now a CPU node carries the work; the cluster's GPU clock still says 1000.
    cpu = [GpuReading("i-2", "cpu", gpus=0.0, gpu_in_use=False, busy=True)]
    m = observe(m, cpu, now=44199.0)
    assert m.cluster_gpu_at == 1000.0
    assert decide(cpu, m, SETTINGS, now=44199.0).actions == ()
    (hib,) = decide(cpu, m, SETTINGS, now=44200.0).actions  # 1000 + 12 h
    assert hib.kind is ActionKind.HIBERNATE and hib.instance_ids == ("i-2",)
    assert "12h" in hib.reason


def test_a_node_with_nothing_running_is_left_to_rays_idle_timeout() -> None:
    memory = observe(IdleMemory(), [gpu_node(used=False, busy=False)], now=0.0)
    decision = decide([gpu_node(used=False, busy=False)], memory, SETTINGS, now=5 * H)
    assert decision.actions == ()
    assert len(decision.notes) == 1 and "idle timeout" in decision.notes[0]


def test_gpu_use_resets_the_node_clock_and_the_cluster_clock() -> None:
    m = observe(IdleMemory(), [gpu_node(used=False)], now=0.0)
    m = observe(m, [gpu_node(used=True)], now=3 * H)
    m = observe(m, [gpu_node(used=False)], now=6 * H)
    # idle since 3 h: at 6 h only 3 h idle < 4 h
    assert decide([gpu_node(used=False)], m, SETTINGS, now=6 * H).actions == ()
    assert m.cluster_gpu_at == 3 * H
    (a,) = decide([gpu_node(used=False)], m, SETTINGS, now=7 * H).actions
    assert a.kind is ActionKind.DOWNSIZE


def test_hibernation_wins_over_a_downsize_due_in_the_same_tick() -> None:
    m = observe(IdleMemory(), [gpu_node(used=False)], now=0.0)
    (a,) = decide([gpu_node(used=False)], m, SETTINGS, now=13 * H).actions
    assert a.kind is ActionKind.HIBERNATE


def test_a_node_first_seen_counts_as_used_then_and_forgotten_nodes_drop_out() -> None:
    m = observe(IdleMemory(), [gpu_node(used=False, iid="a")], now=100.0)
    m = observe(m, [gpu_node(used=False, iid="b")], now=200.0)
    assert m.node_gpu_at == {"b": 200.0}
    assert m.cluster_gpu_at == 100.0  # the controller's first reading


def test_nothing_is_decided_for_a_hibernated_cluster_or_a_pool_without_a_rule() -> None:
    m = observe(IdleMemory(), [gpu_node(used=False)], now=0.0)
    assert decide([gpu_node(used=False)], m, SETTINGS, now=20 * H, hibernated=True).actions == ()
    other = [gpu_node(used=False, node_type="a100")]
    m = observe(IdleMemory(), other, now=0.0)
    assert decide(other, m, IdleSettings(pools=SETTINGS.pools), now=20 * H).actions == ()


def test_human_durations() -> None:
    assert [human(s) for s in (14400, 90, 20, 0, 86400 + 60)] == ["4h", "1m30s", "20s", "0s", "1d1m"]


# --------------------------------------------------------------------------- the YAML reader


@pytest.mark.parametrize(("text", "seconds"), [
    ("20s", 20.0), ("30m", 1800.0), ("4h", 14400.0), ("1d", 86400.0), ("1h30m", 5400.0),
    ("0.5h", 1800.0), (" 2H ", 7200.0), (45, 45.0), (2.5, 2.5),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration("k", text) == seconds


@pytest.mark.parametrize("bad", ["", "4", "h", "4x", "4h 3", "-4h", "0s", 0, -3, True, None, [4], "4hours"])
def test_bad_durations_name_the_key(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_duration("provider.idle.hibernate_after", bad)
    assert err.value.key == "provider.idle.hibernate_after"


_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=999), st.sampled_from("smhd")),
                min_size=1, max_size=4))
def test_duration_strings_add_up(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{u}" for n, u in parts)
    expected = sum(n * _UNIT[u] for n, u in parts)
    if expected == 0:
        with pytest.raises(ConfigError):
            parse_duration("k", text)
    else:
        assert parse_duration("k", text) == float(expected)


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=True), st.none(), st.booleans()))
def test_any_duration_input_parses_or_names_the_key(value: object) -> None:
    try:
        seconds = parse_duration("x.y", value)
    except ConfigError as exc:
        assert exc.key == "x.y"
    else:
        assert seconds > 0 and seconds != float("inf")


CPU_OFFER = {"cloud": "aws", "region": "us-east-1", "zone": "use1-az1", "instance_type": "m5.xlarge",
             "capacity": "on-demand", "price_per_hour": 0.192, "vcpus": 4, "memory_gib": 16}


def with_idle(cluster: dict[str, Any], *, downsize_after: object = "20s", hibernate_after: object = "60s",
              **pool_extra: Any) -> dict[str, Any]:
    """``cluster`` with a pinned CPU node type ``cpu_worker`` and the idle sections set."""
    c = copy.deepcopy(cluster)
    types = c["available_node_types"]
    types["cpu_worker"] = {"resources": {"CPU": 1}, "min_workers": 0, "max_workers": 2,
                           "node_config": {"offer": dict(CPU_OFFER)}}
    types["t4_spot"]["node_config"]["idle"] = {"downsize_after": downsize_after, "downsize_to": "cpu_worker",
                                               **pool_extra}
    if hibernate_after is not None:
        c["provider"]["idle"] = {"hibernate_after": hibernate_after}
    return c


def test_the_sections_read(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (cluster, _):
        s = parse_idle(with_idle(cluster))
    assert s.pools["t4_spot"] == PoolIdle("t4_spot", 20.0, "cpu_worker")
    assert s.hibernate_after_s == 60.0 and s.gpu_signal == "auto" and s.gpu_busy_percent == 5.0


def _error(cluster: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_idle(cluster)
    return err.value


POOL = "available_node_types.t4_spot.node_config.idle"


def test_bad_sections_name_their_key(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path) as (base, _):
        pass
    # a node type that does not exist, with a suggestion
    c = with_idle(base)
    c["available_node_types"]["t4_spot"]["node_config"]["idle"]["downsize_to"] = "cpu_wrker"
    e = _error(c)
    assert e.key == f"{POOL}.downsize_to" and "cpu_worker" in str(e)
    # a downsize target with GPUs
    c = with_idle(base)
    c["available_node_types"]["t4_spot"]["node_config"]["idle"]["downsize_to"] = "a100_ondemand"
    assert _error(c).key == f"{POOL}.downsize_to"
    # hibernate before (or with) the downsize
    e = _error(with_idle(base, downsize_after="2h", hibernate_after="1h"))
    assert e.key == "provider.idle.hibernate_after" and "before" in str(e)
    equal = with_idle(base, downsize_after="1h", hibernate_after="60m")
    assert _error(equal).key == "provider.idle.hibernate_after"
    # bad durations
    assert _error(with_idle(base, downsize_after="4 hours")).key == f"{POOL}.downsize_after"
    assert _error(with_idle(base, hibernate_after=-1)).key == "provider.idle.hibernate_after"
    # unknown key, with a suggestion
    e = _error(with_idle(base, downsize_aftr="1h"))
    assert e.key == f"{POOL}.downsize_aftr" and "downsize_after" in str(e)
    # one half of the rule
    c = with_idle(base)
    del c["available_node_types"]["t4_spot"]["node_config"]["idle"]["downsize_to"]
    assert _error(c).key == f"{POOL}.downsize_to"
    # min_workers > 0: the autoscaler would bring the GPU node back
    c = with_idle(base)
    c["available_node_types"]["t4_spot"]["min_workers"] = 1
    assert _error(c).key == POOL
    # a node type without GPUs has nothing to downsize
    c = with_idle(base)
    c["available_node_types"]["cpu_worker"]["node_config"]["idle"] = {"downsize_after": "1h",
                                                                        "downsize_to": "cpu_worker"}
    assert _error(c).key == "available_node_types.cpu_worker.node_config.idle"
    # the cluster section
    c = with_idle(base)
    c["provider"]["idle"]["gpu_signal"] = "nvml"
    assert _error(c).key == "provider.idle.gpu_signal"
    c = with_idle(base)
    c["provider"]["idle"]["gpu_busy_percent"] = 100
    assert _error(c).key == "provider.idle.gpu_busy_percent"
    c = with_idle(base)
    c["provider"]["idle"] = "12h"
    assert _error(c).key == "provider.idle"


def test_plan_check_rejects_a_bad_section(tmp_path: Path) -> None:
    """``check_cluster`` (what ``ray up`` and ``plan`` run) reads the idle sections too."""
    from ray_multicloud.cluster_config.cluster import check_cluster

    with memory_cloud.memory_cluster(tmp_path / "s") as (cluster, world):
        provider = memory_cloud.memory_provider(cluster, world)
        good = with_idle(cluster)
        assert "cpu_worker" in check_cluster(good, clouds=provider.clouds)
        with pytest.raises(ConfigError) as err:
            bad = with_idle(cluster, downsize_after="5m", hibernate_after="5m")
            check_cluster(bad, clouds=provider.clouds)
    assert err.value.key == "provider.idle.hibernate_after"


# --------------------------------------------------------------------------- the guard


def test_gpu_utilisation_is_read_from_rays_metric() -> None:
    from ray_multicloud.idle_guard import parse_gpu_utilisation

    # Ray 2.60's exposition of reporter_agent's node_gpus_utilization gauge (tags: ip, RayNodeType,
    # IsHeadNode, GpuIndex, GpuDeviceName), written by hand in that format.
    text = "\n".join([
        "# HELP ray_node_gpus_utilization Total GPUs usage on a ray node",
        "# TYPE ray_node_gpus_utilization gauge",
        'ray_node_gpus_utilization{GpuDeviceName="NVIDIA H200",GpuIndex="0",IsHeadNode="false",'
        'RayNodeType="t4_spot",SessionName="session_1",Version="2.60.0",ip="10.0.0.5"} 37.0',
        'ray_node_gpus_utilization{GpuDeviceName="NVIDIA H200",GpuIndex="1",ip="10.0.0.5"} 0.0',
        'ray_node_gpus_available{GpuIndex="0",ip="10.0.0.5"} 1.0',
        "ray_node_gpus_utilization_total 99",
        'ray_node_gpus_utilization{GpuIndex="2"} NaN-ish',
    ])
    assert parse_gpu_utilisation(text) == [37.0, 0.0]


def _ray_node(iid: str, *, gpus: float, gpu_used: bool, cpu_used: bool) -> Any:
    from ray_multicloud.controller import RayNode

    total = {"CPU": 1.0, **({"GPU": gpus} if gpus else {})}
    available = {"CPU": 0.0 if cpu_used else 1.0, **({"GPU": 0.0 if gpu_used else gpus} if gpus else {})}
    return RayNode(f"node-{iid}", iid, "RUNNING", total, available)


def test_readings_use_utilisation_where_reported_and_allocation_elsewhere() -> None:
    from ray_multicloud.idle_guard import readings

    view = {"a": _ray_node("a", gpus=1, gpu_used=True, cpu_used=True),
            "b": _ray_node("b", gpus=1, gpu_used=False, cpu_used=True),
            "c": _ray_node("c", gpus=0, gpu_used=False, cpu_used=False)}
    workers = {"a": "t4", "b": "t4", "c": "cpu", "gone": "t4"}
    util = {"node-a": [1.0, 2.0], "node-b": [0.0, 40.0]}  # a: allocated but idle; b: busy, unallocated
    auto = {r.instance_id: r.gpu_in_use for r in readings(workers, view, IdleSettings(), util)}
    assert auto == {"a": False, "b": True, "c": False}
    alloc = {r.instance_id: r.gpu_in_use
             for r in readings(workers, view, IdleSettings(gpu_signal="allocation"), util)}
    assert alloc == {"a": True, "b": False, "c": False}
    no_metrics = {r.instance_id: r.gpu_in_use for r in readings(workers, view, IdleSettings(), {})}
    assert no_metrics == {"a": True, "b": False, "c": False}


def test_downsize_then_hibernate_then_restore_over_memory_clouds(tmp_path: Path) -> None:
    """The guard end to end over in-memory clouds and a fake GCS: a T4 node with a CPU actor and
    no GPU use is replaced by a CPU node at 20 s, the cluster hibernates at 60 s (launches refused,
    state recorded), and restore asks the autoscaler for the recorded node shape."""
    from ray_multicloud.idle_guard import read_state, restore

    with memory_cloud.memory_cluster(tmp_path / "state") as (base, world):
        cluster = with_idle(base)
        provider = memory_cloud.memory_provider(cluster, world)
        (gpu,) = memory_cloud.launch_workers(provider, cluster)

        def nodes(_: str) -> dict[str, Any]:
            assert controller.idle is not None
            return {iid: _ray_node(iid, gpus=1.0 if t == "t4_spot" else 0.0, gpu_used=False, cpu_used=True)
                    for iid, t in controller.idle.workers().items()}

        t = [1000.0]
        controller = memory_cloud.memory_controller(cluster, provider, t, nodes=nodes)
        guard = controller.idle
        assert guard is not None
        assert guard.tick(1000.0) == []
        assert guard.tick(1019.0) == []
        (action,) = guard.tick(1020.0)
        assert action.kind is ActionKind.DOWNSIZE
        assert sorted(guard.workers().values()) == ["cpu_worker"], guard.history
        assert gpu.instance_id not in world.instances
        assert guard.history[-1][2] == "downsized"
        assert guard.tick(1059.0) == []
        (hib,) = guard.tick(1060.0)
        assert hib.kind is ActionKind.HIBERNATE
        assert guard.workers() == {} and world.instances == {}
        state = read_state(provider.settings)
        assert state is not None and state["status"] == "hibernated"
        assert state["nodes"] == {"cpu_worker": 1} and state["resources"] == {"cpu_worker": {"CPU": 1.0}}
        with pytest.raises(LaunchFailed) as err:
            memory_cloud.launch_workers(provider, cluster, request="again")
        assert "hibernated" in str(err.value) and "ray-multicloud restore" in str(err.value)
        assert guard.tick(2000.0) == []  # hibernated: nothing more to do
        asked: list[list[dict[str, float]]] = []
        done = restore(provider.settings, connect=False, request=asked.append)
        assert asked == [[{"CPU": 1.0}]] and done["nodes"] == {"cpu_worker": 1}
        after = read_state(provider.settings)
        assert after is not None and after["status"] == "restored" and after["resources_requested"]
        assert memory_cloud.launch_workers(provider, cluster, request="back")  # launches allowed again
        # The clocks restart at the restore: no hibernation again until hibernate_after from now.
        assert guard.tick(3000.0) == [] and guard.tick(3019.0) == []
        assert guard.memory.cluster_gpu_at == 3000.0
        with pytest.raises(MultiCloudError, match="not hibernated"):
            restore(provider.settings, connect=False, request=asked.append)


def test_a_restore_between_two_ticks_does_not_hibernate_the_cluster_again(tmp_path: Path) -> None:
    """Found by the idle e2e: the hibernation ended, ``restore`` ran before the controller's next tick,
    and that tick still held the GPU idle clock from before the hibernation, so the restored cluster
    was hibernated again at once. The clocks now restart at the hibernation, and at a restore seen
    in the state (for a guard that kept clocks from before it, as after a controller restart)."""
    from ray_multicloud.idle_guard import read_state, restore
    from ray_multicloud.policy.idle import IdleMemory

    with memory_cloud.memory_cluster(tmp_path / "state") as (base, world):
        cluster = with_idle(base)
        provider = memory_cloud.memory_provider(cluster, world)
        memory_cloud.launch_workers(provider, cluster, node_type="cpu_worker")

        def nodes(_: str) -> dict[str, Any]:
            assert controller.idle is not None
            return {iid: _ray_node(iid, gpus=0.0, gpu_used=False, cpu_used=True)
                    for iid in controller.idle.workers()}

        t0 = time.time() - 1000.0  # wall clock, as the controller's: the restore stamps time.time()
        controller = memory_cloud.memory_controller(cluster, provider, [t0], nodes=nodes)
        guard = controller.idle
        assert guard is not None
        assert guard.tick(t0) == []
        (hib,) = guard.tick(t0 + 60.0)  # hibernate_after 60 s with no GPU in use
        assert hib.kind is ActionKind.HIBERNATE
        assert guard.memory == IdleMemory()  # the clocks restart with the hibernation
        restore(provider.settings, connect=False, request=lambda bundles: None)
        memory_cloud.launch_workers(provider, cluster, request="back", node_type="cpu_worker")
        # A guard still holding the idle clock from before the hibernation (no tick saw it).
        guard.memory = IdleMemory(cluster_gpu_at=t0)
        assert guard.tick(t0 + 62.0) == []  # before: "no GPU in use for 62 s": hibernated again
        assert guard.memory.cluster_gpu_at == t0 + 62.0
        state = read_state(provider.settings)
        assert state is not None and state["status"] == "restored"


def test_a_cpu_node_that_does_not_come_up_leaves_the_gpu_node_alone(tmp_path: Path) -> None:
    with memory_cloud.memory_cluster(tmp_path / "state") as (base, world):
        cluster = with_idle(base, hibernate_after=None)
        provider = memory_cloud.memory_provider(cluster, world)
        (gpu,) = memory_cloud.launch_workers(provider, cluster)

        def nodes(_: str) -> dict[str, Any]:  # the CPU node never shows up in the GCS
            iid = str(gpu.instance_id)
            return {iid: _ray_node(iid, gpus=1, gpu_used=False, cpu_used=True)}

        t = [0.0]
        controller = memory_cloud.memory_controller(cluster, provider, t, nodes=nodes)
        assert controller.idle is not None
        controller.idle.tick(0.0)
        controller.idle.tick(30.0)
        assert [n.instance_id for n in provider.fleet()] == [gpu.instance_id]
        assert controller.idle.history[-1][2].startswith("not-up")


def test_plan_prints_the_rules_and_names_the_key_of_a_bad_one(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from ray_multicloud.cli import main
    from ray_multicloud.scenarios.local_cluster import REPO_CONFIG

    base = yaml.safe_load(REPO_CONFIG.read_text())
    base["provider"]["state_dir"] = str(tmp_path / "state")
    base["provider"]["ledger"] = str(tmp_path / "state" / "ledger.db")
    good = with_idle(base, downsize_after="4h", hibernate_after="12h")
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    assert main(["plan", str(tmp_path / "good.yaml")]) == 0
    out = capsys.readouterr().out
    assert "idle: t4_spot: a node whose GPUs are idle 4h" in out and "cpu_worker node" in out
    assert "the cluster hibernates after 12h" in out
    bad = with_idle(base, downsize_after="4h", hibernate_after="2h")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert main(["plan", str(tmp_path / "bad.yaml")]) == 2
    assert "provider.idle.hibernate_after: 2h is not longer than" in capsys.readouterr().err


def test_utilisation_is_scraped_from_each_nodes_metrics_endpoint() -> None:
    """``scrape_utilisation`` over a loopback HTTP server answering /metrics as a Ray metrics agent
    does; a node whose endpoint does not answer is left out (judged by allocation)."""
    import http.server
    import threading

    from ray_multicloud.idle_guard import scrape_utilisation

    body = (b'ray_node_gpus_utilization{GpuIndex="0",ip="127.0.0.1"} 63.5\n'
            b'ray_node_gpus_utilization{GpuIndex="1",ip="127.0.0.1"} 2.0\n')

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.end_headers()
            self.wfile.write(body if self.path == "/metrics" else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from ray_multicloud.scenarios.local_cluster import free_port

        port = server.server_address[1]
        got = scrape_utilisation({"n1": f"127.0.0.1:{port}", "n2": f"127.0.0.1:{free_port()}"}, timeout_s=2)
    finally:
        server.shutdown()
        server.server_close()
    assert got == {"n1": [63.5, 2.0]}


def test_a_cpu_node_that_dies_while_starting_is_launched_once_more(tmp_path: Path) -> None:
    """On a loaded machine a local instance's Ray node can miss Ray's startup window and end; the
    downsize then launches another CPU node instead of waiting out its whole up timeout."""
    with memory_cloud.memory_cluster(tmp_path / "state") as (base, world):
        cluster = with_idle(base, hibernate_after=None)
        provider = memory_cloud.memory_provider(cluster, world)
        (gpu,) = memory_cloud.launch_workers(provider, cluster)
        killed: list[str] = []

        def nodes(_: str) -> dict[str, Any]:
            assert controller.idle is not None
            out = {}
            for iid, node_type in controller.idle.workers().items():
                if node_type == "cpu_worker" and not killed:  # the first CPU node dies unseen
                    killed.append(iid)
                    provider.terminate_node(iid)
                    continue
                out[iid] = _ray_node(iid, gpus=1.0 if node_type == "t4_spot" else 0.0, gpu_used=False,
                                     cpu_used=True)
            return out

        t = [0.0]
        controller = memory_cloud.memory_controller(cluster, provider, t, nodes=nodes)
        assert controller.idle is not None
        controller.idle.tick(0.0)
        (action,) = controller.idle.tick(30.0)
        assert action.kind is ActionKind.DOWNSIZE
        assert len(killed) == 1 and controller.idle.history[-1][2] == "downsized"
        workers = controller.idle.workers()
        assert list(workers.values()) == ["cpu_worker"] and killed[0] not in workers
        assert gpu.instance_id not in workers


# --------------------------------------------------------------------------- the rules, exactly


def test_idle_rules_exactly_node_by_node() -> None:
    """Nodes read in reverse id order; each rule's skip must not stop the ones after it."""
    now = 1000.0 + 5 * H
    at = {"i-1": now, "i-2": 1000.0, "i-3": now - H, "i-4": 1000.0, "i-5": 1000.0, "i-6": 1000.0}
    memory = IdleMemory(node_gpu_at=at, cluster_gpu_at=now)
    readings = [
        gpu_node(used=False, iid="i-6"),  # idle 5 h, busy: downsized
        gpu_node(used=False, iid="i-5", busy=False),  # idle 5 h, nothing runs: a note
        gpu_node(used=False, iid="i-4"),  # idle 5 h, busy: downsized
        gpu_node(used=False, iid="i-3"),  # idle 1 h: too soon
        GpuReading("i-2", "t4", gpus=0.0, gpu_in_use=False, busy=True),  # no GPU seen: nothing to free
        gpu_node(used=True, iid="i-1"),  # in use
    ]
    d = decide(readings, memory, SETTINGS, now=now)
    assert [a.instance_ids for a in d.actions] == [("i-4",), ("i-6",)]
    assert d.actions[0].reason == ("i-4 (t4): no GPU use for 5h >= downsize_after 4h while other work runs "
                                   "on it: replace by a cpu node (drain first)")
    assert d.notes == ("i-5 (t4): GPUs idle 5h but nothing runs on it; Ray's idle timeout ends it, no CPU "
                       "node needed",)


def test_a_node_the_memory_has_not_seen_counts_as_used_now() -> None:
    d = decide([gpu_node(used=False, iid="i-9")], IdleMemory(node_gpu_at={}, cluster_gpu_at=0.0),
               SETTINGS, now=5 * H)
    assert d.actions == () and d.notes == ()


def test_hibernate_reason_exactly() -> None:
    memory = IdleMemory(node_gpu_at={"i-1": 1000.0, "i-2": 1000.0}, cluster_gpu_at=1000.0)
    nodes = [gpu_node(used=False, iid="i-2"), gpu_node(used=False, iid="i-1")]
    (action,) = decide(nodes, memory, SETTINGS, now=1000.0 + 12 * H).actions
    assert action.instance_ids == ("i-1", "i-2")
    assert action.reason == ("no GPU of the cluster in use for 12h >= hibernate_after 12h: hibernate, "
                             "releasing 2 worker node(s)")


def test_human_one_second() -> None:
    assert (human(1), human(0.4), human(3661)) == ("1s", "0s", "1h1m1s")
