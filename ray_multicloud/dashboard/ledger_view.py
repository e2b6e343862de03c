"""What the dashboard reads from the ledger, through its own read-only connection.

The ledger's file (``ray_multicloud.ledger``'s schema) is opened with SQLite's ``mode=ro``: the
dashboard never writes, never creates the file, and never takes a write lock, so it cannot slow the
provider or the controller that write it. Each method is one snapshot read; the figures are
computed here (pure functions below), with the same rules as ``Ledger.spend``: an instance costs
the integral of its price over its life, the first recorded price applying from its launch, a later
record replacing the one before from its ``at``; its on-demand baseline is the same hours at the
offer's on-demand price.

Columns a newer ledger may add are read when present (a launch's reasons: ``launch_reasons``,
``launch_reason``, ``reasons`` or ``reason`` on ``instances``) and shown as "not recorded" when not.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ray_multicloud.ledger import LedgerError

_LAUNCH_REASON_COLUMNS = ("launch_reasons", "launch_reason", "reasons", "reason")


@dataclass(frozen=True, slots=True)
class Life:
    """One instance's life in the ledger and its price changes ((at, USD/h), in record order)."""

    instance_id: str
    cluster: str
    pool: str
    job: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    capacity: str
    offer_id: str
    ondemand_price: float
    launched_at: float
    ended_at: float | None
    end_reason: str | None
    prices: tuple[tuple[float, float], ...]
    launch_reason: str = ""


def price_at(life: Life, at: float) -> float:
    """The price the instance pays at ``at`` (its first price before any record)."""
    price = life.prices[0][1] if life.prices else 0.0
    for t, p in life.prices:
        if t > at:
            break
        price = p
    return price


def cost_until(life: Life, at: float) -> tuple[float, float]:
    """(USD spent, USD the same hours cost on-demand) from launch to ``at`` (or the end, if sooner)."""
    stop = at if life.ended_at is None else min(at, life.ended_at)
    if stop <= life.launched_at or not life.prices:
        return 0.0, 0.0
    # Change points inside the life, each with the price from then on.
    points = [(life.launched_at, life.prices[0][1])]
    for t, p in life.prices:
        if t <= life.launched_at:
            points[0] = (life.launched_at, p)
        elif t < stop:
            if points[-1][0] == t:
                points[-1] = (t, p)
            else:
                points.append((t, p))
    usd = 0.0
    for i, (t, p) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else stop
        usd += p * (end - t)
    hours = (stop - life.launched_at) / 3600.0
    return usd / 3600.0, hours * life.ondemand_price


def spend_series(lives: Sequence[Life], now: float, max_points: int = 120) -> list[dict[str, float]]:
    """Spend and its on-demand baseline to date, and the running $/h of both, at the ledger's change
    points (launches, ends, price records) and ``now``; thinned evenly to ``max_points``.

    Cumulative spend is piecewise linear between change points, so drawing the points joined by
    straight lines is exact (before thinning).
    """
    if not lives:
        return []
    times = {now}
    for life in lives:
        times.add(life.launched_at)
        if life.ended_at is not None:
            times.add(life.ended_at)
        times.update(t for t, _ in life.prices if t >= life.launched_at)
    ordered = sorted(t for t in times if t <= now)
    if len(ordered) > max_points:
        step = (len(ordered) - 1) / (max_points - 1)
        ordered = sorted({ordered[round(i * step)] for i in range(max_points)})
    out = []
    for t in ordered:
        spend = od_spend = rate = od_rate = 0.0
        for life in lives:
            usd, od = cost_until(life, t)
            spend += usd
            od_spend += od
            if life.launched_at <= t and (life.ended_at is None or t < life.ended_at):
                rate += price_at(life, t)
                od_rate += life.ondemand_price
        out.append({"t": t, "spend_usd": spend, "ondemand_spend_usd": od_spend,
                    "cost_per_hour": rate, "ondemand_cost_per_hour": od_rate})
    return out


class LedgerView:
    """A read-only connection to the ledger file at ``path``; ``open`` it, use it, close it."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> LedgerView:
        """Open ``path`` read-only; ``LedgerError`` when there is no such file or it is no ledger."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise LedgerError(f"no ledger at {file}; the provider writes it where provider.ledger "
                              "of the cluster YAML says")
        try:
            db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0,
                                 check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA query_only = ON")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{file}: not a readable SQLite ledger ({exc})") from exc
        if "instances" not in tables:
            db.close()
            raise LedgerError(f"{file}: no instances table; is this the ledger the provider writes?")
        return cls(db, file)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same state of the file."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")

    def _tables(self, db: sqlite3.Connection) -> set[str]:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _columns(self, db: sqlite3.Connection, table: str) -> list[str]:
        return [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]

    def jobs(self) -> dict[str, str]:
        """Instance id -> the job or deployment its spend is attributed to (``Ledger.set_job``)."""
        rows = self._db.execute("SELECT instance_id, job FROM instances WHERE job IS NOT NULL AND job != ''")
        return {str(a): str(b) for a, b in rows.fetchall()}

    def lives(self, cluster: str | None = None) -> list[Life]:
        """Every instance the ledger knows (of ``cluster`` when given), by launch time."""
        with self._snapshot() as db:
            return self._lives(db, cluster)

    def _lives(self, db: sqlite3.Connection, cluster: str | None) -> list[Life]:
        cols = self._columns(db, "instances")
        reason_col = next((c for c in _LAUNCH_REASON_COLUMNS if c in cols), None)
        reason_sql = f", {reason_col}" if reason_col else ", NULL"
        where, params = ("WHERE cluster = ?", (cluster,)) if cluster else ("", ())
        rows = db.execute(
            "SELECT instance_id, cluster, pool, COALESCE(job, ''), cloud, region, zone, instance_type,"
            " capacity, offer_id, ondemand_price, launched_at, ended_at, end_reason" + reason_sql +
            f" FROM instances {where} ORDER BY launched_at, instance_id", params).fetchall()
        prices: dict[str, list[tuple[float, float]]] = {}
        for iid, at, price in db.execute(
                "SELECT instance_id, at, price FROM prices ORDER BY instance_id, at, seq"):
            prices.setdefault(str(iid), []).append((float(at), float(price)))
        return [
            Life(instance_id=str(r[0]), cluster=str(r[1]), pool=str(r[2]), job=str(r[3]), cloud=str(r[4]),
                 region=str(r[5]), zone=str(r[6]), instance_type=str(r[7]), capacity=str(r[8]),
                 offer_id=str(r[9]), ondemand_price=float(r[10]), launched_at=float(r[11]),
                 ended_at=None if r[12] is None else float(r[12]),
                 end_reason=None if r[13] is None else str(r[13]),
                 prices=tuple(prices.get(str(r[0]), ())),
                 launch_reason="" if r[14] is None else str(r[14]))
            for r in rows
        ]

    def snapshot(self, cluster: str | None = None, now: float | None = None) -> dict[str, Any]:
        """Everything the dashboard draws from the ledger, from one consistent read (JSON-ready):
        ``decisions`` (launches and moves, each with its reasons), ``timeline`` (lives, moves,
        preemption notices), ``spend`` (the series) and ``totals``."""
        at = time.time() if now is None else now
        with self._snapshot() as db:
            lives = self._lives(db, cluster)
            tables = self._tables(db)
            moves = [(str(a), str(b), str(c), float(d)) for a, b, c, d in db.execute(
                "SELECT instance_id, to_instance_id, reason, at FROM moves ORDER BY seq")
            ] if "moves" in tables else []
            journal = [dict(zip(("move_id", "pool", "old_instance", "target_offer", "state", "started_at",
                                 "updated_at", "reason", "new_instance", "detail"), r, strict=True))
                       for r in db.execute(
                "SELECT move_id, pool, old_instance, target_offer, state, started_at, updated_at, reason,"
                " new_instance, detail FROM move_journal ORDER BY started_at, move_id")
            ] if "move_journal" in tables else []
            preemptions = [(str(a), float(b), None if c is None else float(c)) for a, b, c in db.execute(
                "SELECT instance_id, at, deadline FROM preemptions ORDER BY seq")
            ] if "preemptions" in tables else []
        known = {life.instance_id for life in lives}
        if cluster:
            moves = [m for m in moves if m[0] in known or m[1] in known]
            journal = [j for j in journal if j["old_instance"] in known]
            preemptions = [p for p in preemptions if p[0] in known]
        return {
            "at": at,
            "decisions": decisions(lives, moves, journal),
            "timeline": {
                "lives": [_life_json(life, at) for life in lives],
                "moves": [{"from": a, "to": b, "reason": c, "at": d} for a, b, c, d in moves],
                "preemptions": [{"instance_id": a, "at": b, "deadline": c} for a, b, c in preemptions],
            },
            "spend": spend_series(lives, at),
            "totals": totals(lives, at),
        }


def _life_json(life: Life, now: float) -> dict[str, Any]:
    return {
        "instance_id": life.instance_id, "pool": life.pool, "job": life.job, "cloud": life.cloud,
        "region": life.region, "zone": life.zone, "instance_type": life.instance_type,
        "capacity": life.capacity, "launched_at": life.launched_at, "ended_at": life.ended_at,
        "end_reason": life.end_reason, "price_per_hour": price_at(life, now),
        "ondemand_price_per_hour": life.ondemand_price,
    }


def totals(lives: Sequence[Life], now: float) -> dict[str, float]:
    """Spend, on-demand spend and saved fraction to ``now``; running nodes and their $/h."""
    spend = od = rate = od_rate = 0.0
    running = 0
    for life in lives:
        usd, base = cost_until(life, now)
        spend += usd
        od += base
        if life.ended_at is None or life.ended_at > now:
            running += 1
            rate += price_at(life, now)
            od_rate += life.ondemand_price
    return {"spend_usd": spend, "ondemand_spend_usd": od, "saved_usd": od - spend,
            "savings_fraction": (1 - spend / od) if od > 0 else 0.0, "running_nodes": float(running),
            "cost_per_hour": rate, "ondemand_cost_per_hour": od_rate}


def decisions(
    lives: Sequence[Life],
    moves: Sequence[tuple[str, str, str, float]],
    journal: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every launch and move the ledger holds, newest first, each with its reasons.

    A launch's reasons are the ledger's own when it records them; otherwise the figures it does
    hold (offer, price against on-demand) with ``reasons`` empty. A move is the journal's row (its
    state, reason and detail); a ``moves`` row the journal lacks (an older ledger, the simulator)
    is shown with its reason.
    """
    out: list[dict[str, Any]] = []
    for life in lives:
        first = life.prices[0][1] if life.prices else None
        saved = (1 - first / life.ondemand_price) if first is not None and life.ondemand_price > 0 else None
        out.append({
            "kind": "launch", "at": life.launched_at, "pool": life.pool, "instance_id": life.instance_id,
            "offer": life.offer_id, "price_per_hour": first, "ondemand_price_per_hour": life.ondemand_price,
            "discount": saved, "reasons": [r for r in life.launch_reason.split("\n") if r.strip()],
            "state": "ended: " + life.end_reason if life.end_reason else "running" if life.ended_at is None
            else "ended",
        })
    journaled = set()
    for j in journal:
        journaled.add((j["old_instance"], j["new_instance"]))
        out.append({
            "kind": "move", "at": float(j["started_at"]), "pool": j["pool"], "instance_id": j["old_instance"],
            "to_instance_id": j["new_instance"], "offer": j["target_offer"], "state": j["state"],
            "reasons": [s for s in (j["reason"], j["detail"]) if s],
        })
    for a, b, reason, at in moves:
        if (a, b) not in journaled:
            out.append({"kind": "move", "at": at, "pool": "", "instance_id": a, "to_instance_id": b,
                        "offer": "", "state": "done", "reasons": [reason] if reason else []})
    out.sort(key=lambda d: (-float(d["at"]), d["kind"], d["instance_id"]))
    return out
