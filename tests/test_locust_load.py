"""scenarios/locust_load.py: Locust (headless, own process) against a loopback HTTP server; the samples it
writes come back as ``loadtest.Sample``s labelled by phase, failures counted and never retried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from ray_multicloud.scenarios.loadtest import summarise
from ray_multicloud.scenarios.locust_load import LocustLoad, users_for


class Handler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []
    fail_every = 0

    def do_GET(self) -> None:
        Handler.hits.append(self.headers.get("x-session-id") or "")
        if Handler.fail_every and len(Handler.hits) % Handler.fail_every == 0:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        body = json.dumps({"cloud": "aws", "region": "us-east-1"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[int]:
    Handler.hits = []
    Handler.fail_every = 5
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def test_users_for_rate() -> None:
    assert users_for(0, 0.5, 10) == 0
    assert users_for(11, 0.5, 100) == 22  # ceil(11 / 0.5)
    assert users_for(11, 0.5, 10) == 10


def test_locust_drives_loopback_and_phases_label_samples(server: int, tmp_path: Path) -> None:
    load = LocustLoad(server, workdir=tmp_path, rate_per_s=10, client_regions=("us-east-1", None),
                      per_user_rate=2.0, duration_s=60)
    try:
        load.set_phase("one")
        deadline = time.monotonic() + 40
        while len([s for s in load.samples if s.phase == "one"]) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
        load.set_phase("two")
        while len([s for s in load.samples if s.phase == "two"]) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        load.stop()
        load.join()
    samples = load.samples
    stats = {s.phase: s for s in summarise(samples, ["one", "two"])}
    assert stats["one"].sent >= 10 and stats["two"].sent >= 10
    # every 5th request the server answers 500: counted as failed, not retried (one hit per sample;
    # up to one request per user (5) may be cut off in flight when the run stops)
    assert 0 <= len(Handler.hits) - len(samples) <= 5
    failed = [s for s in samples if not s.ok]
    assert failed and all(s.status == 500 for s in failed)
    assert {s.client_region for s in samples} == {"us-east-1", ""}
    assert set(Handler.hits) == {"us-east-1", ""}
    assert all(s.body == {"cloud": "aws", "region": "us-east-1"} for s in samples if s.ok)


def test_p95_outside_leaves_out_requests_due_in_the_excluded_windows() -> None:
    from ray_multicloud.scenarios.loadtest import Sample, p95_outside

    def sample(due: float, ms: float, phase: str = "c") -> Sample:
        return Sample(index=0, phase=phase, due=due, latency_s=ms / 1000, ok=True, status=200, error="",
                      client_region="", body={})

    # 20 requests of phase c due at t = 0..19 s, 10 ms each, except those due at 5..9 s: 900 ms
    # (an outage at t = 5). Nearest-rank p95 of 20 values is the 19th: with the slow five in, 900 ms.
    samples = [sample(t, 900.0 if 5 <= t < 10 else 10.0) for t in range(20)] + [sample(3, 5000.0, "d")]
    assert p95_outside(samples, "c") == (900.0, 20)
    # Leaving out [5, 10) leaves fifteen 10 ms requests; [5, 9) leaves the one due at 9 s (900 ms),
    # which is the 15th of 16: nearest rank ceil(0.95 * 16) = 16th -> 900 ms.
    assert p95_outside(samples, "c", [(5.0, 10.0)]) == (10.0, 15)
    assert p95_outside(samples, "c", [(5.0, 9.0)]) == (900.0, 16)
    got = p95_outside(samples, "c", [(0.0, 100.0)])
    assert got[1] == 0 and got[0] != got[0]  # NaN: nothing left


def test_next_due_keeps_the_users_schedule_and_never_bursts_to_catch_up() -> None:
    from ray_multicloud.scenarios.locust_load import next_due

    # On schedule: last due at 10 s, now 9.2 s (the request took under the gap), next gap 0.5 s ->
    # due at 10.5 s, 1.3 s from now.
    due, wait = next_due(10.0, 9.2, 0.5)
    assert (due, round(wait, 9)) == (10.5, 1.3)
    # Behind: the request ended at 12 s, past 10 + 0.5: send now, and the schedule restarts at 12 s.
    assert next_due(10.0, 12.0, 0.5) == (12.0, 0.0)
