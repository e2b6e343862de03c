"""Load for the serving benchmark from Locust (headless, as a library), in its own process.

Why a process: Locust runs on gevent and monkey-patches the standard library when imported; a Ray
driver must not be patched. So ``benchmarks/bench_serve.py`` starts ``python -m
ray_multicloud.scenarios.locust_load`` and talks to it through two files:

- ``--control``: JSON ``{"rate": requests/s, "stop": bool}``, re-read every 0.5 s; a new rate changes
  the number of users (each user sends ``--per-user-rate`` requests/s on average, its requests due at
  Poisson times: exponential gaps, kept on its own schedule, so the rate holds while a request takes
  under ``1 / per-user-rate`` s; users start at random points of their first gap, so the sum is a
  Poisson stream at the asked rate, not a burst from every user at once every ``1 / per-user-rate`` s —
  with Locust's ``constant_throughput`` the users started together stay in step, and 44 requests
  arriving within a few ms every 2 s queued behind each other: p50 650 ms where a lone request took 45 ms);
- ``--out``: one JSON line per request: ``t`` (start, POSIX s), ``ms`` (Locust's response time),
  ``ok``, ``status``, ``error``, ``region`` (the client region sent as ``x-session-id``; "" for none),
  ``body`` (the replica's JSON answer on 200).

Bounded: requests go to ``127.0.0.1`` only; at most ``--max-users`` users; the process ends by itself
after ``--duration-s``. Locust's ``max_retries`` stays 0: a request that fails is counted, never
retried by the client. Locust is closed-loop per user: a stalled server lowers the rate it sees
(coordinated omission) once a request takes longer than ``1 / per-user-rate`` s; the summary reports
the rate achieved next to the one asked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def users_for(rate: float, per_user_rate: float, max_users: int) -> int:
    """Users needed for ``rate`` req/s at ``per_user_rate`` each, at most ``max_users`` (0 for rate 0)."""
    if rate <= 0:
        return 0
    return max(1, min(max_users, math.ceil(rate / per_user_rate)))


def next_due(due: float, now: float, gap: float) -> tuple[float, float]:
    """A user's schedule: (when its next request is due, how long to wait for it) given when the last
    one was due, the time now and the next gap. A user that fell behind (``due + gap`` already past)
    sends at once and keeps its schedule from now: no burst to catch up."""
    new = max(due + gap, now)
    return new, new - now


def read_control(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_control(path: Path, *, rate: float, stop: bool = False) -> None:
    """Atomically replace the control file (the benchmark's side)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rate": rate, "stop": stop}))
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/", help="the route every request asks for")
    parser.add_argument("--regions", default="none", help="comma-separated client regions; 'none': no header")
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-user-rate", type=float, default=0.5)
    parser.add_argument("--max-users", type=int, default=200)
    parser.add_argument("--duration-s", type=float, default=3600.0)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    args = parser.parse_args(argv)

    import random

    import gevent
    from locust import FastHttpUser, events, task
    from locust.env import Environment

    regions = ["" if r.strip() in ("", "none") else r.strip() for r in args.regions.split(",")]
    turn = itertools.cycle(regions)

    class ServeUser(FastHttpUser):  # type: ignore[misc]
        host = f"http://{LOOPBACK}:{args.port}"
        network_timeout = args.timeout_s
        connection_timeout = args.timeout_s
        max_retries = 0

        def on_start(self) -> None:
            # A random point of the first gap (memoryless: exponential), so users never start in step.
            first = random.expovariate(args.per_user_rate)
            gevent.sleep(first)
            self.rmc_due = time.monotonic()

        def wait_time(self) -> float:
            gap = random.expovariate(args.per_user_rate)
            self.rmc_due, wait = next_due(self.rmc_due, time.monotonic(), gap)
            return wait

        @task
        def ask(self) -> None:
            region = next(turn)
            headers = {"x-session-id": region} if region else {}
            self.client.get(args.path, headers=headers, name=region or "none")

    out = args.out.open("a", buffering=1)

    def on_request(request_type: str, name: str, response_time: float, response_length: int,
                   response: Any = None, context: Any = None, exception: Any = None,
                   start_time: float | None = None, url: str | None = None, **_: Any) -> None:
        status = int(getattr(response, "status_code", 0) or 0)
        body: dict[str, str] = {}
        if status == 200:
            try:
                parsed = json.loads(response.text or "{}")
                body = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
            except (ValueError, AttributeError):
                body = {}
        error = "" if exception is None else f"{type(exception).__name__}: {exception}"[:300]
        if not error and status != 200:
            error = (getattr(response, "text", "") or "")[:300]
        out.write(json.dumps({"t": start_time or time.time(), "ms": float(response_time),
                              "ok": exception is None and status == 200, "status": status, "error": error,
                              "region": "" if name == "none" else name, "body": body}) + "\n")

    events.request.add_listener(on_request)
    env = Environment(user_classes=[ServeUser], events=events)
    runner = env.create_local_runner()
    users = -1
    end = time.monotonic() + args.duration_s
    try:
        while time.monotonic() < end:
            control = read_control(args.control)
            if control.get("stop"):
                break
            want = users_for(float(control.get("rate", 0.0) or 0.0), args.per_user_rate, args.max_users)
            if want != users:
                runner.start(want, spawn_rate=max(1, want), wait=False)
                users = want
            gevent.sleep(0.5)
    finally:
        runner.quit()
        out.close()
    return 0


class LocustLoad:
    """The benchmark's side: start the Locust process, change its rate, label phases, read samples.

    ``samples`` returns ``loadtest.Sample``s (so ``loadtest.summarise`` reports them), each labelled
    with the phase that was current at its start time. Everything the process writes is under
    ``workdir``; ``stop`` ends it (and ``join`` waits, then kills it past ``timeout_s``).
    """

    def __init__(self, port: int, *, workdir: Path, rate_per_s: float, client_regions: Sequence[str | None],
                 per_user_rate: float = 0.5, max_users: int = 200, duration_s: float = 3600.0,
                 path: str = "/", name: str = "locust") -> None:
        import subprocess

        self.control = workdir / f"{name}_control.json"
        self.out = workdir / f"{name}_requests.jsonl"
        self.out.write_text("")
        write_control(self.control, rate=rate_per_s)
        self.rate = rate_per_s
        self._phases: list[tuple[float, str]] = [(0.0, "start")]
        self._parsed: list[Any] = []
        self._offset = 0
        regions = ",".join(r or "none" for r in client_regions)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ray_multicloud.scenarios.locust_load", "--port", str(port),
             "--path", path, "--regions", regions, "--control", str(self.control), "--out", str(self.out),
             "--per-user-rate", str(per_user_rate), "--max-users", str(max_users),
             "--duration-s", str(duration_s)],
            stdout=(workdir / f"{name}.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def set_rate(self, rate_per_s: float) -> None:
        self.rate = rate_per_s
        write_control(self.control, rate=rate_per_s)

    def set_phase(self, phase: str) -> None:
        self._phases.append((time.time(), phase))

    def phase_at(self, t: float) -> str:
        current = self._phases[0][1]
        for since, phase in self._phases:
            if since <= t:
                current = phase
        return current

    @property
    def samples(self) -> list[Any]:
        from ray_multicloud.scenarios.loadtest import Sample

        with self.out.open() as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete, _, _ = chunk.rpartition("\n")
        if complete:
            self._offset += len(complete.encode()) + 1
            for line in complete.splitlines():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                self._parsed.append(Sample(
                    index=len(self._parsed), phase=self.phase_at(float(r["t"])), due=float(r["t"]),
                    latency_s=float(r["ms"]) / 1000.0, ok=bool(r["ok"]), status=int(r["status"]),
                    error=str(r["error"]), client_region=str(r["region"]), body=dict(r["body"])))
        return list(self._parsed)

    def stop(self) -> None:
        write_control(self.control, rate=0.0, stop=True)

    def join(self, timeout_s: float = 60.0) -> None:
        import subprocess

        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
