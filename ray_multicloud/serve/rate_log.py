"""The files that join a serving pool's Serve autoscaling policy and the controller's predictive step.

Both run on the head, in different processes (the Serve controller actor, the ``ray_multicloud``
controller), so they meet in ``provider.state_dir`` as the launch directives do:

- ``rates-<cluster>-<pool>.csv``: the deployment's measured request rate, one ``time,rate`` line
  per sample (POSIX seconds, requests per second over the meter's window), appended by
  ``SloAutoscalingPolicy`` at most every ``rate_every_s``. When the file passes ``max_bytes`` the
  writer rewrites it with its newest half (atomically), so it holds two to four weeks at one sample
  every 10 s and never grows without bound. Read by ``predictive_guard``, which keeps what it needs.
- ``predicted-<cluster>.json``: ``{pool: {"replicas": n, "at": time, "reason": text}}``, the replica
  floor the predictive step asks for, replaced atomically each tick; the Serve policy keeps at least
  that many replicas while the entry is younger than its ``max_age_s``.

Contract: stdlib only; a reader never raises on a damaged line or file (it skips the line, or
answers "nothing"); writers raise ``OSError`` only (the caller logs it and carries on).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_BYTES = 6_000_000
"""A rate log past this size is cut to its newest half (about 24 bytes a line: 250,000 samples, four
weeks at one every 10 s; cut, it keeps two, the ``predictive:`` default history of 15 days)."""

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(name: str) -> str:
    return _SAFE.sub("_", name) or "_"


def rate_log_path(state_dir: str | Path, cluster: str, pool: str) -> Path:
    """Where the pool's request rates are logged."""
    return Path(state_dir).expanduser() / f"rates-{_safe(cluster)}-{_safe(pool)}.csv"


def floor_path(state_dir: str | Path, cluster: str) -> Path:
    """Where the predictive step publishes each pool's replica floor."""
    return Path(state_dir).expanduser() / f"predicted-{_safe(cluster)}.json"


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_rate(path: str | Path, at: float, rate: float, *, max_bytes: int = MAX_BYTES) -> None:
    """Append one sample; past ``max_bytes`` keep the newest half of the lines."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(f"{at:.3f},{max(0.0, rate):.6g}\n")
    if p.stat().st_size > max_bytes:
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
        _replace(p, "".join(line + "\n" for line in lines[len(lines) // 2:]))


def read_rates(path: str | Path, *, since: float = -math.inf) -> list[tuple[float, float]]:
    """The samples at or after ``since``, in file order; [] when there is no file. A line that is
    not two finite numbers is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return _parse(text, since)


class RateTail:
    """An incremental reader of one rate log: ``samples(since)`` reads only what was appended since
    the last call (the whole file again when it was rewritten or cut) and keeps the samples at or
    after ``since``. For the controller, which asks every tick."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._key: tuple[int, int] | None = None  # (inode, device) of the file read
        self._offset = 0
        self._samples: list[tuple[float, float]] = []

    def samples(self, since: float) -> list[tuple[float, float]]:
        try:
            st = self.path.stat()
        except OSError:
            self._key, self._offset, self._samples = None, 0, []
            return []
        key = (st.st_ino, st.st_dev)
        if key != self._key or st.st_size < self._offset:
            self._key, self._offset, self._samples = key, 0, []
        if st.st_size > self._offset:
            try:
                with self.path.open("rb") as fh:
                    fh.seek(self._offset)
                    chunk = fh.read(st.st_size - self._offset)
            except OSError:
                return [s for s in self._samples if s[0] >= since]
            complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
            self._offset += complete
            self._samples.extend(_parse(chunk[:complete].decode("utf-8", errors="replace"), -math.inf))
        cut = 0
        while cut < len(self._samples) and self._samples[cut][0] < since:
            cut += 1
        del self._samples[:cut]
        return list(self._samples)


def _parse(text: str, since: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for line in text.splitlines():
        at_text, sep, rate_text = line.partition(",")
        if not sep:
            continue
        try:
            at, rate = float(at_text), float(rate_text)
        except ValueError:
            continue
        if math.isfinite(at) and math.isfinite(rate) and at >= since:
            out.append((at, max(0.0, rate)))
    return out


def publish_floors(path: str | Path, floors: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the floors file with ``floors`` (pool -> {"replicas", "at", "reason"})."""
    _replace(Path(path), json.dumps({str(k): dict(v) for k, v in floors.items()}, sort_keys=True))


def read_floor(path: str | Path, pool: str, *, now: float, max_age_s: float) -> int | None:
    """The pool's published replica floor, or None when there is none, it is older than
    ``max_age_s`` (the predictive step stopped) or the file is damaged."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        entry = data[pool]
        replicas, at = entry["replicas"], float(entry["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        return None
    if not math.isfinite(at) or now - at > max_age_s:
        return None
    return replicas
