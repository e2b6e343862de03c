"""A bounded, open-loop HTTP load generator for Serve on loopback, and per-phase latency summaries.

Used by ``tests/test_serve_e2e.py`` and ``benchmarks/bench_serve.py``. Requests go out at a steady
rate to ``127.0.0.1`` only, from a fixed number of threads, each with its own keep-alive connection;
the generator stops by itself after ``duration_s`` (and ``stop()`` ends it sooner). There is no retry:
a request that gets no 200 (an error status, a connection error, a timeout) counts as failed.

Latency is measured from the request's *scheduled* send time, so a stalled server shows up as
latency rather than as fewer requests (no coordinated omission).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: when it was due, how long it took, and what came back."""

    index: int
    phase: str
    due: float
    latency_s: float
    ok: bool
    status: int
    error: str
    client_region: str
    body: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PhaseStats:
    phase: str
    sent: int
    failed: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    served_by: Mapping[str, int]

    @property
    def failed_pct(self) -> float:
        return 100.0 * self.failed / self.sent if self.sent else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summarise(samples: Iterable[Sample], phases: Sequence[str] | None = None) -> list[PhaseStats]:
    """Per-phase counts and latency percentiles (over every request, failed ones included)."""
    by_phase: dict[str, list[Sample]] = {}
    for s in samples:
        by_phase.setdefault(s.phase, []).append(s)
    out = []
    for phase in phases if phases is not None else list(by_phase):
        group = by_phase.get(phase, [])
        lat = [s.latency_s * 1000 for s in group]
        served: dict[str, int] = {}
        for s in group:
            if s.ok:
                where = f"{s.body.get('cloud', '?')}/{s.body.get('region', '?')}"
                served[where] = served.get(where, 0) + 1
        out.append(PhaseStats(
            phase=phase, sent=len(group), failed=sum(1 for s in group if not s.ok),
            p50_ms=percentile(lat, 50), p95_ms=percentile(lat, 95), p99_ms=percentile(lat, 99),
            max_ms=max(lat) if lat else float("nan"), served_by=served,
        ))
    return out


def p95_outside(samples: Iterable[Sample], phase: str,
                excluded: Sequence[tuple[float, float]] = ()) -> tuple[float, int]:
    """(p95 latency in ms, requests counted) of ``phase``'s requests, leaving out those *due* in any
    half-open window ``[start, end)`` of ``excluded`` (times on the samples' ``due`` clock). Failed
    requests count with their latency, as in :func:`summarise`. NaN and 0 when nothing is left."""
    lat = [s.latency_s * 1000 for s in samples
           if s.phase == phase and not any(a <= s.due < b for a, b in excluded)]
    return percentile(lat, 95), len(lat)


class LoadGenerator:
    """Send ``rate_per_s`` GET requests per second to ``http://127.0.0.1:port/path`` for ``duration_s``.

    ``client_regions`` are used in turn as the ``x-session-id`` header (the router's client region);
    ``phase`` (set at any time with ``set_phase``) labels each request with the phase it was due in.
    """

    def __init__(
        self,
        port: int,
        *,
        rate_per_s: float,
        duration_s: float,
        path: str = "/",
        client_regions: Sequence[str | None] = (None,),
        threads: int = 8,
        timeout_s: float = 30.0,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> None:
        if not 0 < rate_per_s <= 500:
            raise ValueError(f"rate_per_s must be in (0, 500], got {rate_per_s}")
        if not 0 < duration_s <= 3600:
            raise ValueError(f"duration_s must be in (0, 3600], got {duration_s}")
        self.port = port
        self.rate = float(rate_per_s)
        self.duration_s = float(duration_s)
        self.path = path
        self.regions = list(client_regions) or [None]
        self.threads = max(1, min(int(threads), 32))
        self.timeout_s = timeout_s
        self.on_sample = on_sample
        self._phase = "start"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[int, str, float, str | None] | None] = queue.Queue()
        self._samples: list[Sample] = []
        self._workers: list[threading.Thread] = []
        self._ticker: threading.Thread | None = None

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self._phase = phase

    @property
    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def start(self) -> LoadGenerator:
        self._workers = [threading.Thread(target=self._work, daemon=True, name=f"load-{i}")
                         for i in range(self.threads)]
        for w in self._workers:
            w.start()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="load-ticker")
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait until every request sent has finished (bounded by the request timeout)."""
        limit = timeout_s if timeout_s is not None else self.duration_s + self.timeout_s + 5
        end = time.monotonic() + limit
        if self._ticker is not None:
            self._ticker.join(max(0.0, end - time.monotonic()))
        for w in self._workers:
            w.join(max(0.0, end - time.monotonic()))

    def _tick(self) -> None:
        start = time.monotonic()
        wall0 = time.time()
        i = 0
        try:
            while not self._stop.is_set():
                due = start + i / self.rate
                if due - start >= self.duration_s:
                    break
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                with self._lock:
                    phase = self._phase
                self._queue.put((i, phase, wall0 + (due - start), self.regions[i % len(self.regions)]))
                i += 1
        finally:
            for _ in self._workers:
                self._queue.put(None)

    def _work(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            index, phase, due, region = item
            headers = {"x-session-id": region} if region else {}
            status, error, body = 0, "", {}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout_s)
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                if status == 200:
                    try:
                        parsed = json.loads(raw)
                        body = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
                    except ValueError:
                        body = {}
                else:
                    error = raw[:200].decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = None
            sample = Sample(index, phase, due, max(0.0, time.time() - due), status == 200, status, error,
                            region or "", body)
            with self._lock:
                self._samples.append(sample)
            if self.on_sample is not None:
                self.on_sample(sample)
        if conn is not None:
            conn.close()


def format_table(stats: Sequence[PhaseStats]) -> str:
    """A fixed-width table: phase, sent, failed (%), p50/p95/p99/max ms, where requests were served."""
    lines = [(f"{'phase':<30} {'sent':>6} {'failed':>7} {'fail%':>7} {'p50 ms':>8} {'p95 ms':>8} "
             f"{'p99 ms':>8} {'max ms':>8}  served by")]
    for s in stats:
        served = ", ".join(f"{k} {v}" for k, v in sorted(s.served_by.items()))
        lines.append(f"{s.phase:<30} {s.sent:>6} {s.failed:>7} {s.failed_pct:>6.2f}% {s.p50_ms:>8.1f} "
                     f"{s.p95_ms:>8.1f} {s.p99_ms:>8.1f} {s.max_ms:>8.1f}  {served}")
    return "\n".join(lines)
