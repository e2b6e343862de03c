"""The dashboard in a real headless browser: Debian's chromium driven by playwright (never
``playwright install``: the system browser is used). The page is served by the real app on
127.0.0.1 over a populated ledger and clouds with machines; the test checks what a person would
see (the fleet grid, the timeline's bars, move arrow and preemption marker, the spend lines, the
decisions with their reasons), that a new ledger record shows up without a reload, and that the page
is refused without the token. It saves a screenshot; with ``RMC_UPDATE_SCREENSHOT=1`` it also
rewrites ``docs/dashboard.png`` (the README's picture).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.memory_cloud import MemoryWorld, launch_workers, memory_cluster, memory_provider
from test_dashboard import I2, populate_ledger

from ray_multicloud.dashboard.app import DashboardSource, make_app
from ray_multicloud.dashboard.fleet import collect_status
from ray_multicloud.ledger import Ledger

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install -y chromium; .ci/run installs it)")

TOKEN = "browser-test-token"
REPO = Path(__file__).resolve().parent.parent
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(source: DashboardSource, refresh_s: float = 1.0) -> Iterator[str]:
    """The app on 127.0.0.1 (a free port) in a thread of its own; yields its base URL."""
    from aiohttp import web

    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner: list[Any] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        r = web.AppRunner(make_app(source, TOKEN, refresh_s=refresh_s), access_log=None)
        loop.run_until_complete(r.setup())
        loop.run_until_complete(web.TCPSite(r, "127.0.0.1", port).start())
        runner.append(r)
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the dashboard did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[str, Any], MemoryWorld, Path, float]]:
    """Machines on the memory clouds (ages of minutes to hours) and a ledger of the last three hours."""
    now = time.time()
    with memory_cluster(tmp_path / "state") as (config, world):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            config["provider"]["gcs_address"] = f"127.0.0.1:{s.getsockname()[1]}"
        provider = memory_provider(config, world)
        # T4 spot on the cheapest cloud, one more on an AWS zone (as a move's replacement is launched),
        # and two on-demand A100s: the private pool's one machine, then the cheapest public cloud.
        aws_t4 = provider.offers.get("aws/us-east-1/use1-az2/g4dn.xlarge/spot")
        assert aws_t4 is not None
        launched = [*launch_workers(provider, config, count=2),
                    provider.launch_on_offer("t4_spot", aws_t4, resources={"GPU": 1.0}, labels={}),
                    *launch_workers(provider, config, node_type="a100_ondemand", request="b", count=2)]
        for i, inst in enumerate(launched):
            world.instances[inst.instance_id] = dataclasses.replace(
                world.instances[inst.instance_id], launched_at=now - 3600 * (i + 1) - 420)
        ledger = tmp_path / "ledger.db"
        populate_ledger(ledger, now=now)
        yield config, world, ledger, now


def test_dashboard_renders_refreshes_and_needs_the_token(
    cluster: tuple[dict[str, Any], MemoryWorld, Path, float], tmp_path: Path,
) -> None:
    config, world, ledger, _now = cluster
    ids = sorted(world.instances)
    states = {iid: ("IDLE" if i == 0 else "RUNNING") for i, iid in enumerate(ids)}

    def fleet() -> dict[str, Any]:
        return collect_status(config, clouds=world.clouds(config), ray_states=lambda _a: states).as_json()

    source = DashboardSource("rmc-local", fleet, str(ledger), fleet_ttl_s=0, ledger_ttl_s=0)
    shot = tmp_path / "dashboard.png"
    with serving(source) as base, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # Without the token: refused, and nothing of the fleet is in the answer.
            response = page.goto(base + "/")
            assert response is not None and response.status == 401
            assert ids[0] not in page.content()

            response = page.goto(f"{base}/?token={TOKEN}")
            assert response is not None and response.status == 200
            page.wait_for_selector("body[data-polls]", timeout=20_000)

            # The fleet grid: one card per configured cloud, each machine in its cloud's region box.
            clouds = page.eval_on_selector_all(".cloud", "els => els.map(e => e.dataset.cloud)")
            assert sorted(clouds) == ["aws", "azure", "gcp", "onprem"]
            # Every card has machines.
            assert sorted({i.cloud for i in world.instances.values()}) == sorted(clouds)
            for iid, inst in world.instances.items():
                node = page.locator(f'.cloud[data-cloud="{inst.cloud}"] .node[data-instance="{iid}"]')
                assert node.count() == 1
                assert f"${float(inst.tags['rmc-price']):.4f}/h" in node.inner_text()
            assert "ray IDLE" in page.locator(f'.node[data-instance="{ids[0]}"]').inner_text()

            # The timeline: four lives, the move's arrow, the preemption notice.
            assert page.locator("#timeline-svg rect.life").count() == 4
            assert page.locator("#timeline-svg path.move").count() == 1
            assert page.locator("#timeline-svg path.preemption").count() == 1
            # Spend against on-demand: both lines drawn.
            assert page.locator("#spend-svg path.line-spend").count() == 1
            assert page.locator("#spend-svg path.line-ondemand").count() == 1
            # Decisions, newest first, with the move's reasons.
            rows = page.locator("#decisions tbody tr")
            assert rows.count() == 5
            assert "price move: gcp us-central1-a spot 0.242/h" in rows.nth(1).inner_text()
            assert "move → gcp-2" in rows.nth(1).inner_text()

            # Live: a launch recorded now shows up without a reload.
            with Ledger(ledger) as writer:
                writer.record_launch("gcp-9", "rmc-local", "t4_spot", I2, "r9", time.time())
            # (A locator wait: the page's CSP forbids the string eval wait_for_function uses.)
            playwright_sync.expect(page.locator("#timeline-svg rect.life")).to_have_count(5, timeout=20_000)
            assert "gcp-9" in page.locator("#decisions tbody tr").first.inner_text()

            page.screenshot(path=str(shot), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("RMC_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "dashboard.png")
