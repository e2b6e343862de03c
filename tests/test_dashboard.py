"""The dashboard's JSON endpoints, token, read-only ledger reader and Grafana dashboard.

The ledger is written through ``Ledger`` (the provider's writer) with a scenario whose figures are
computed by hand below; the reader's totals are also held against ``Ledger.spend``, an independent
implementation of the same integral.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakes.memory_cloud import MemoryWorld, launch_workers, memory_cluster, memory_provider

from ray_multicloud.dashboard.app import DashboardSource, make_app, resolve_token
from ray_multicloud.dashboard.fleet import collect_status
from ray_multicloud.dashboard.ledger_view import LedgerView
from ray_multicloud.ledger import Ledger, LedgerError
from ray_multicloud.moves import MoveRecord, MoveState
from ray_multicloud.types import CapacityType, Offer

NOW = 1_800_000_000.0
H = 3600.0
TOKEN = "t0ken-for-tests"
REPO = Path(__file__).resolve().parent.parent


def offer(cloud: str, region: str, zone: str, itype: str, cap: CapacityType, price: float,
          od: float) -> Offer:
    return Offer(cloud, region, zone, itype, "T4", 1, 4, 16, cap, price, od)


I1 = offer("aws", "us-east-1", "use1-az1", "g4dn.xlarge", CapacityType.SPOT, 0.20, 0.526)
I2 = offer("gcp", "us-central1", "us-central1-a", "n1-standard-4+T4", CapacityType.SPOT, 0.242, 0.54)
I3 = offer("azure", "eastus", "", "Standard_NC4as_T4_v3", CapacityType.SPOT, 0.06, 0.526)
I4 = Offer("onprem", "onprem-dc1", "", "dgx-a100-slice", "A100", 1, 12, 85, CapacityType.ON_DEMAND, 0.0, 3.67)

# By hand: i1 1 h at 0.20 + 1 h at 0.30 (ended, moved to i2); i2 1 h at 0.242 (running);
# i3 1.5 h at 0.06 (preempted); i4 2 h at 0 (running, on-demand baseline 3.67/h).
SPEND = 0.20 + 0.30 + 0.242 + 1.5 * 0.06 + 0.0
ONDEMAND = 2 * 0.526 + 1 * 0.54 + 1.5 * 0.526 + 2 * 3.67
RATE_NOW = 0.242 + 0.0
OD_RATE_NOW = 0.54 + 3.67


def populate_ledger(path: Path, now: float = NOW, cluster: str = "rmc-local") -> None:
    """The scenario above, written as the provider and the controller write it."""
    with Ledger(path) as ledger:
        ledger.record_launch("aws-1", cluster, "t4_spot", I1, "r1", now - 3 * H)
        ledger.record_launch("azure-3", cluster, "t4_spot", I3, "r3", now - 2 * H)
        ledger.record_launch("onprem-4", cluster, "a100_ondemand", I4, "r4", now - 2 * H)
        ledger.record_price("aws-1", 0.30, now - 2 * H)
        rec = MoveRecord(move_id="aws-1>gcp#1", pool="t4_spot", old_instance="aws-1",
                         target_offer=I2.offer_id, request_id="mv-1", state=MoveState.REQUESTED,
                         started_at=now - 1 * H - 60, updated_at=now - 1 * H - 60,
                         reason="price move: gcp us-central1-a spot 0.242/h vs 0.30/h now, saves 0.058/h")
        ledger.journal_put(rec)
        ledger.record_launch("gcp-2", cluster, "t4_spot", I2, "mv-1", now - 1 * H)
        rec = rec.to(MoveState.REPLACEMENT_UP, at=now - 1 * H, new_instance="gcp-2")
        ledger.journal_put(rec)
        ledger.journal_put(rec.to(MoveState.DONE, at=now - 1 * H + 30, detail="old node gone"))
        ledger.record_move("aws-1", "gcp-2", "price move", now - 1 * H)
        ledger.record_end("aws-1", now - 1 * H, "moved")
        ledger.record_preemption("azure-3", now - 0.5 * H - 120, now - 0.5 * H)
        ledger.record_end("azure-3", now - 0.5 * H, "preempted")
        ledger.set_job("gcp-2", "llm-ft")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fleet_world(tmp_path: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld]]:
    """The local YAML on memory clouds, two T4 workers and one A100 launched through the provider."""
    with memory_cluster(tmp_path / "state") as (config, world):
        config["provider"]["gcs_address"] = f"127.0.0.1:{closed_port()}"
        provider = memory_provider(config, world)
        launched = launch_workers(provider, config, count=2) + launch_workers(
            provider, config, node_type="a100_ondemand", request="b")
        for i, inst in enumerate(launched):
            world.instances[inst.instance_id] = dataclasses.replace(
                world.instances[inst.instance_id], launched_at=NOW - (i + 1) * 600)
        yield config, world


def source_for(config: dict[str, Any], world: MemoryWorld, ledger: Path | None) -> DashboardSource:
    ray = {inst: "RUNNING" for inst in world.instances}

    def fleet() -> dict[str, Any]:
        status = collect_status(config, clouds=world.clouds(config), ray_states=lambda _a: ray, now=NOW)
        return status.as_json()

    return DashboardSource("rmc-local", fleet, str(ledger) if ledger else None, clock=lambda: NOW)


def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """One request to a fresh server of ``app()`` (an aiohttp app is bound to the loop that first ran it)."""
    async def go() -> tuple[int, Any, Any]:
        async with TestClient(TestServer(app(), host="127.0.0.1")) as client:
            resp = await client.request(method, path, headers=headers or {})
            body = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            data = json.loads(body) if ctype.startswith("application/json") else body.decode()
            return resp.status, data, resp.headers

    return asyncio.run(go())


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("path", ["/", "/api/fleet", "/api/decisions", "/api/timeline", "/api/spend"])
def test_every_data_route_needs_the_token(
    fleet_world: tuple[dict[str, Any], MemoryWorld], path: str,
) -> None:
    source = source_for(*fleet_world, None)

    def app() -> Any:
        return make_app(source, TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        status, data, hdrs = call(app, "GET", path, headers)
        assert status == 401 and "unauthorized" in data["error"]
        assert hdrs["WWW-Authenticate"].startswith("Bearer")
    assert call(app, "GET", path + "?token=nope")[0] == 401
    assert call(app, "GET", path, BEARER)[0] == 200
    assert call(app, "GET", path + f"?token={TOKEN}")[0] == 200


def test_static_code_is_public_data_is_not_and_nothing_writes(
    fleet_world: tuple[dict[str, Any], MemoryWorld],
) -> None:
    source = source_for(*fleet_world, None)

    def app() -> Any:
        return make_app(source, TOKEN)
    status, body, headers = call(app, "GET", "/static/app.js")
    assert status == 200 and "fetch(" in body and "default-src 'self'" in headers["Content-Security-Policy"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert call(app, method, "/api/fleet", BEARER)[0] == 405
    status, html, headers = call(app, "GET", "/", BEARER)
    assert "<title>rmc-local" in html and headers["Cache-Control"] == "no-store"
    # Nothing from another origin: no http(s) URL in the page, script or style sheet.
    for name in ("index.html", "app.js", "style.css"):
        text = (REPO / "ray_multicloud" / "dashboard" / "static" / name).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name


def test_fleet_endpoint_lists_the_clouds_machines(fleet_world: tuple[dict[str, Any], MemoryWorld]) -> None:
    config, world = fleet_world
    source = source_for(config, world, None)
    status, data, _ = call(lambda: make_app(source, TOKEN), "GET", "/api/fleet", BEARER)
    assert status == 200
    assert sorted(n["instance_id"] for n in data["nodes"]) == sorted(world.instances)
    assert sorted(data["clouds"]) == ["aws", "azure", "gcp", "onprem"]
    by_id = {n["instance_id"]: n for n in data["nodes"]}
    for iid, inst in world.instances.items():
        assert by_id[iid]["pool"] == inst.tags["rmc-pool"] and by_id[iid]["ray_state"] == "RUNNING"
        assert by_id[iid]["age_s"] == NOW - inst.launched_at
        assert f"{by_id[iid]['price_per_hour']:.6g}" == inst.tags["rmc-price"]  # no price moved since launch


def test_spend_endpoint_matches_the_hand_figures_and_the_ledgers_own_integral(
    fleet_world: tuple[dict[str, Any], MemoryWorld], tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.db"
    populate_ledger(ledger)
    source = source_for(*fleet_world, ledger)
    status, data, _ = call(lambda: make_app(source, TOKEN), "GET", "/api/spend", BEARER)
    assert status == 200 and data["problems"] == []
    t = data["totals"]
    assert t["spend_usd"] == pytest.approx(SPEND) and t["ondemand_spend_usd"] == pytest.approx(ONDEMAND)
    assert t["savings_fraction"] == pytest.approx(1 - SPEND / ONDEMAND)
    assert t["cost_per_hour"] == pytest.approx(RATE_NOW)
    assert t["ondemand_cost_per_hour"] == pytest.approx(OD_RATE_NOW)
    assert t["running_nodes"] == 2
    with Ledger(ledger) as reference:
        rows = reference.spend(until=NOW)
    assert t["spend_usd"] == pytest.approx(sum(r.cost_usd for r in rows))
    assert t["ondemand_spend_usd"] == pytest.approx(sum(r.ondemand_cost_usd for r in rows))
    series = {round(p["t"] - NOW): p for p in data["series"]}
    # The change points: launches, the price record, the move, the preemption end, now.
    assert sorted(series) == [-3 * 3600, -2 * 3600, -3600, -1800, 0]
    assert series[-2 * 3600]["spend_usd"] == pytest.approx(0.20)
    assert series[-2 * 3600]["ondemand_spend_usd"] == pytest.approx(0.526)
    assert series[-3600]["spend_usd"] == pytest.approx(0.50 + 0.06)
    assert series[-3600]["cost_per_hour"] == pytest.approx(0.242 + 0.06 + 0.0)  # i1 ended, i2 started
    assert series[0]["spend_usd"] == pytest.approx(SPEND)
    assert [p["t"] for p in data["series"]] == sorted(p["t"] for p in data["series"])


def test_timeline_and_decisions_carry_moves_preemptions_and_reasons(
    fleet_world: tuple[dict[str, Any], MemoryWorld], tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.db"
    populate_ledger(ledger)
    source = source_for(*fleet_world, ledger)

    def app() -> Any:
        return make_app(source, TOKEN)
    _, tl, _ = call(app, "GET", "/api/timeline", BEARER)
    assert [lf["instance_id"] for lf in tl["lives"]] == ["aws-1", "azure-3", "onprem-4", "gcp-2"]
    ends = {lf["instance_id"]: (lf["ended_at"], lf["end_reason"]) for lf in tl["lives"]}
    assert ends["aws-1"] == (NOW - H, "moved") and ends["gcp-2"] == (None, None)
    assert tl["moves"] == [{"from": "aws-1", "to": "gcp-2", "reason": "price move", "at": NOW - H}]
    assert tl["preemptions"] == [
        {"instance_id": "azure-3", "at": NOW - 0.5 * H - 120, "deadline": NOW - 0.5 * H}]

    _, dec, _ = call(app, "GET", "/api/decisions", BEARER)
    kinds = [(d["kind"], d["instance_id"]) for d in dec["decisions"]]
    # Newest first; the journaled move is not listed twice (its moves-table row is the same move).
    assert kinds == [("launch", "gcp-2"), ("move", "aws-1"), ("launch", "azure-3"), ("launch", "onprem-4"),
                     ("launch", "aws-1")]
    move = dec["decisions"][1]
    assert move["to_instance_id"] == "gcp-2" and move["state"] == "done" and move["offer"] == I2.offer_id
    assert move["reasons"] == ["price move: gcp us-central1-a spot 0.242/h vs 0.30/h now, saves 0.058/h",
                               "old node gone"]
    launch = next(d for d in dec["decisions"] if d["instance_id"] == "azure-3")
    assert launch["price_per_hour"] == 0.06 and launch["discount"] == pytest.approx(1 - 0.06 / 0.526)
    assert launch["state"] == "ended: preempted" and launch["reasons"] == []


def test_launch_reasons_are_read_when_the_ledger_records_them(tmp_path: Path) -> None:
    """A ledger that gained a launch-reason column (a later schema) shows its reasons, one per line."""
    ledger = tmp_path / "ledger.db"
    populate_ledger(ledger)
    db = sqlite3.connect(ledger)
    db.execute("ALTER TABLE instances ADD COLUMN launch_reasons TEXT")
    db.execute("UPDATE instances SET launch_reasons = ? WHERE instance_id = 'azure-3'",
               ("cheapest T4 spot: 0.06/h\nazure eastus: no cool-down",))
    db.commit()
    db.close()
    with LedgerView.open(ledger) as view:
        snap = view.snapshot(now=NOW)
    launch = next(d for d in snap["decisions"] if d["instance_id"] == "azure-3" and d["kind"] == "launch")
    assert launch["reasons"] == ["cheapest T4 spot: 0.06/h", "azure eastus: no cool-down"]


def test_the_reader_never_writes_nor_creates(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    populate_ledger(ledger)
    before = hashlib.sha256(ledger.read_bytes()).hexdigest()
    with LedgerView.open(ledger) as view:
        view.snapshot(now=NOW)
        with pytest.raises(sqlite3.OperationalError):
            view._db.execute("DELETE FROM instances")
    assert hashlib.sha256(ledger.read_bytes()).hexdigest() == before
    with pytest.raises(LedgerError, match="no ledger at"):
        LedgerView.open(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()
    (tmp_path / "junk.db").write_text("not sqlite")
    with pytest.raises(LedgerError):
        LedgerView.open(tmp_path / "junk.db")


def test_missing_ledger_is_a_problem_line_not_an_error(
    fleet_world: tuple[dict[str, Any], MemoryWorld], tmp_path: Path,
) -> None:
    source = source_for(*fleet_world, tmp_path / "nope.db")

    def app() -> Any:
        return make_app(source, TOKEN)
    status, data, _ = call(app, "GET", "/api/decisions", BEARER)
    assert status == 200 and data["decisions"] == [] and "no ledger at" in data["problems"][0]
    bare = source_for(*fleet_world, None)
    status, data, _ = call(lambda: make_app(bare, TOKEN), "GET", "/api/spend", BEARER)
    assert status == 200 and "set provider.ledger" in data["problems"][0]


def test_resolve_token_generates_once_owner_only_and_a_given_one_wins(tmp_path: Path) -> None:
    token, path = resolve_token(tmp_path / "state")
    assert path == tmp_path / "state" / "dashboard.token" and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_token(tmp_path / "state") == (token, path)
    assert resolve_token(tmp_path / "state", "mine") == ("mine", None)
    with pytest.raises(ValueError):
        make_app(DashboardSource("c", dict, None), "")


def test_fleet_reads_are_cached_for_their_ttl() -> None:
    calls: list[float] = []
    clock = [100.0]

    def fleet() -> dict[str, Any]:
        calls.append(clock[0])
        return {"nodes": []}

    source = DashboardSource("c", fleet, None, fleet_ttl_s=15, clock=lambda: clock[0])
    source.fleet()
    clock[0] = 110.0
    source.fleet()
    clock[0] = 115.0
    source.fleet()
    assert calls == [100.0, 115.0]


# -- the Grafana dashboard -------------------------------------------------------------------------

GRAFANA = REPO / "ray_multicloud" / "dashboard" / "grafana.json"


def exported_metric_names() -> set[str]:
    """The Prometheus names of the gauges metrics.py creates, read from its source: Ray's metrics agent
    prefixes every ``ray.util.metrics`` name with ``ray_`` (metrics.py's docstring)."""
    source = (REPO / "ray_multicloud" / "metrics.py").read_text()
    names = set(re.findall(r'Gauge\(\s*"([a-z_]+)"', source))
    assert len(names) == 6, names  # five cost gauges and the budget gauge
    return {"ray_" + n for n in names}


def test_grafana_dashboard_parses_and_queries_only_exported_metrics() -> None:
    dash = json.loads(GRAFANA.read_text())
    exported = exported_metric_names()
    assert dash["uid"] and dash["title"] and dash["panels"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    # Loadable as Ray's own dashboards are: a "datasource" variable every query goes through.
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs.append(variables["cluster"]["query"]["query"])
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"\b(ray_[a-z0-9_]+)\b", expr))
        assert names, expr
        assert names <= exported, (expr, names - exported)
        used |= names
    assert used == exported  # every exported gauge is shown somewhere
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


# -- the command -----------------------------------------------------------------------------------


def test_cli_dashboard_serves_with_a_generated_token_file(tmp_path: Path) -> None:
    """``ray-multicloud dashboard CONFIG`` as a user starts it: the local YAML (no machine up), a free
    loopback port; the token is generated into the state dir and required."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    import yaml

    config = yaml.safe_load((REPO / "cluster_configs" / "local-multicloud.yaml").read_text())
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"]["ledger"] = str(tmp_path / "state" / "ledger.db")
    config["provider"]["gcs_address"] = f"127.0.0.1:{closed_port()}"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    populate_ledger(tmp_path / "state" / "ledger.db", now=time.time())
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "ray_multicloud.cli", "dashboard",
                             str(tmp_path / "c.yaml"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        token_file = tmp_path / "state" / "dashboard.token"
        token = token_file.read_text().strip()
        assert first.strip() == f"dashboard of rmc-local: http://127.0.0.1:{port}/?token={token}"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/spend?token={token}", timeout=10) as resp:
                    spend = json.loads(resp.read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and proc.poll() is None, "the dashboard did not come up"
                time.sleep(0.3)
        assert spend["totals"]["spend_usd"] == pytest.approx(SPEND, abs=0.01)  # gcp-2 runs on at 0.242/h
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/fleet", timeout=10)
        assert refused.value.code == 401
        req = urllib.request.Request(f"{base}/api/fleet", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            fleet = json.loads(resp.read())
        assert fleet["nodes"] == [] and sorted(fleet["clouds"]) == ["aws", "azure", "gcp", "onprem"]
        assert any("Ray node states unknown" in p for p in fleet["problems"])
    finally:
        proc.terminate()
        proc.wait(30)
