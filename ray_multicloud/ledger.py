"""The savings ledger: one SQLite file recording every node's life, price, moves and preemptions.

Contract
--------
* Durable: every ``record_*``/``set_job`` call is its own transaction (``BEGIN IMMEDIATE`` ...
  ``COMMIT``) and returns only after the commit, in WAL mode with ``synchronous=FULL``; a record
  whose call returned survives a crash of the writing process (and of the machine).
* Safe to share: one :class:`Ledger` may be used from many threads (calls are serialised by a
  lock), and several processes may open the same file (the ``ray up`` client and the autoscaler
  monitor both write); SQLite's file locks order them, and a busy file is waited for (30 s).
* Readers never write: ``Ledger(path, create=False)`` (what ``ray-multicloud report`` opens) opens
  the file read-only (SQLite ``mode=ro``): no schema, no journal mode, nothing written into the
  file it reads, which may be a copy, on a read-only mount, or not a ledger at all (then
  ``LedgerError`` says so).
* Idempotent where the provider retries: ``record_launch`` of a known instance id and
  ``record_end`` of an ended instance change nothing and return False.
* Times are POSIX seconds passed in by the caller; prices are USD per hour per node.
* Spend: an instance costs the integral of its price over its life — the launch price from
  ``launched_at``, each ``record_price`` from its ``at`` — until it ended (or ``until``); its
  on-demand baseline is the same hours at the offer's on-demand price.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from ray_multicloud.errors import MultiCloudError
from ray_multicloud.moves import TRANSITIONS, MoveRecord, MoveState
from ray_multicloud.types import Offer

GroupBy = Literal["cloud", "pool", "job", "team", "cluster", "capacity", "region", "instance"]
GROUP_KEYS: tuple[str, ...] = ("cloud", "pool", "job", "team", "cluster", "capacity", "region", "instance")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    pool TEXT NOT NULL,
    request_id TEXT NOT NULL,
    job TEXT,
    cloud TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    capacity TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    ondemand_price REAL NOT NULL,
    launched_at REAL NOT NULL,
    launch_reason TEXT,
    ended_at REAL,
    end_reason TEXT,
    team TEXT
);
CREATE TABLE IF NOT EXISTS prices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL REFERENCES instances(instance_id),
    at REAL NOT NULL,
    price REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS prices_by_instance ON prices(instance_id, at, seq);
CREATE TABLE IF NOT EXISTS moves (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    to_instance_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS move_journal (
    move_id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    old_instance TEXT NOT NULL,
    target_offer TEXT NOT NULL,
    request_id TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    reason TEXT NOT NULL,
    new_instance TEXT NOT NULL,
    drain_deadline_at REAL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS preemptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    at REAL NOT NULL,
    deadline REAL
);
"""
_VERSION = 1
# How end_reason starts for a node the cloud took (missing from the listings: provider._account).
ENDED_OUTSIDE = "ended outside the provider"


class LedgerError(MultiCloudError):
    """The ledger file cannot be used, or a record names an instance the ledger does not know."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One instance's spend up to ``until``: hours held, cost, and the on-demand cost of those hours."""

    instance_id: str
    cluster: str
    pool: str
    job: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    capacity: str
    launched_at: float
    ended_at: float | None
    end_reason: str | None
    hours: float
    cost_usd: float
    ondemand_cost_usd: float
    price_per_hour: float
    ondemand_price_per_hour: float
    team: str = ""

    @property
    def saved_usd(self) -> float:
        return self.ondemand_cost_usd - self.cost_usd

    def key(self, group_by: str) -> str:
        if group_by == "instance":
            return self.instance_id
        value = str(getattr(self, group_by))
        return value if value else "-"


@dataclass(frozen=True, slots=True)
class SpendGroup:
    """Spend of the instances sharing one value of the grouping key."""

    key: str
    instances: int
    hours: float
    cost_usd: float
    ondemand_cost_usd: float

    @property
    def saved_usd(self) -> float:
        return self.ondemand_cost_usd - self.cost_usd

    @property
    def savings_fraction(self) -> float:
        return self.saved_usd / self.ondemand_cost_usd if self.ondemand_cost_usd > 0 else 0.0


def group_spend(rows: Sequence[SpendRow], group_by: str) -> list[SpendGroup]:
    """Sum ``rows`` per value of ``group_by`` (one of :data:`GROUP_KEYS`), sorted by cost."""
    if group_by not in GROUP_KEYS:
        raise LedgerError(f"cannot group by {group_by!r}: use one of {', '.join(GROUP_KEYS)}")
    acc: dict[str, list[float]] = {}
    for r in rows:
        a = acc.setdefault(r.key(group_by), [0, 0.0, 0.0, 0.0])
        a[0] += 1
        a[1] += r.hours
        a[2] += r.cost_usd
        a[3] += r.ondemand_cost_usd
    groups = [SpendGroup(k, int(a[0]), a[1], a[2], a[3]) for k, a in acc.items()]
    return sorted(groups, key=lambda g: (-g.cost_usd, g.key))


class Ledger:
    """The ledger file at ``path``: created with its parent directory and opened for writing, or,
    with ``create=False``, an existing ledger opened read-only (writes raise ``LedgerError``)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self.read_only = not create
        if not create and not self.path.is_file():
            raise LedgerError(
                f"no ledger at {self.path}; the provider writes it at the path set in the cluster config"
            )
        self._lock = threading.Lock()
        if self.read_only:
            self._open_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot create its directory ({exc})") from exc
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._write() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > _VERSION:
                    raise LedgerError(
                        f"{self.path} has ledger schema {version}; this version reads up to "
                        f"{_VERSION}: upgrade ray_multicloud"
                    )
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: not a usable SQLite ledger ({exc})") from exc

    def _open_read_only(self) -> None:
        """Open for reading only: the file must already be a ledger of a schema this version reads."""
        try:
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0,
                isolation_level=None, check_same_thread=False,
            )
            self._db.execute("PRAGMA busy_timeout = 30000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: not a readable SQLite ledger ({exc})") from exc
        if version > _VERSION:
            self._db.close()
            raise LedgerError(
                f"{self.path} has ledger schema {version}; this version reads up to {_VERSION}: "
                "upgrade ray_multicloud"
            )
        missing = {"instances", "prices"} - tables  # what spend needs; older ledgers may lack the rest
        if missing:
            self._db.close()
            raise LedgerError(
                f"{self.path} is not a ray_multicloud ledger (no {', '.join(sorted(missing))} table); "
                "pass the file named by the cluster config's provider.ledger"
            )

    def _create_schema(self) -> None:
        with self._write() as db:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            # A ledger written before launches kept their reasons gains the column (NULL there).
            columns = {row[1] for row in db.execute("PRAGMA table_info(instances)")}
            if "launch_reason" not in columns:
                db.execute("ALTER TABLE instances ADD COLUMN launch_reason TEXT")
            # A ledger written before nodes carried a team label gains the column (NULL there).
            if "team" not in columns:
                db.execute("ALTER TABLE instances ADD COLUMN team TEXT")
            db.execute(f"PRAGMA user_version = {_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed before the block's caller returns."""
        if self.read_only:
            raise LedgerError(f"{self.path} was opened read-only (create=False); open it with create=True "
                              "to write")
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------------------

    def record_launch(
        self,
        instance_id: str,
        cluster: str,
        pool: str,
        offer: Offer,
        request_id: str,
        at: float,
        job: str | None = None,
        reason: str = "",
        team: str = "",
    ) -> bool:
        """Record a launched node at ``offer.paid_price_per_hour`` from ``at`` (a reserved node: its
        term price, paid whether used or not; the $0 its decisions saw is not what it costs), why the
        policy chose its offer (``reason``, the placement's reasons; the dashboard shows them) and the
        team it is charged to (``team``, its pool's label; "" none). False if already known."""
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO instances (instance_id, cluster, pool, request_id, job, cloud, region, zone,"
                " instance_type, capacity, offer_id, ondemand_price, launched_at, launch_reason, team)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(instance_id) DO NOTHING",
                (
                    instance_id,
                    cluster,
                    pool,
                    request_id,
                    job,
                    offer.cloud,
                    offer.region,
                    offer.zone,
                    offer.instance_type,
                    offer.capacity.value,
                    str(offer.offer_id),
                    offer.ondemand_price_per_hour,
                    at,
                    reason or None,
                    team or None,
                ),
            )
            if cur.rowcount == 0:
                return False
            db.execute(
                "INSERT INTO prices (instance_id, at, price) VALUES (?,?,?)",
                (instance_id, at, offer.paid_price_per_hour),
            )
            return True

    def record_price(self, instance_id: str, price_per_hour: float, at: float) -> None:
        """The node's price is ``price_per_hour`` from ``at`` on (spot prices move)."""
        with self._write() as db:
            self._require(db, instance_id)
            db.execute(
                "INSERT INTO prices (instance_id, at, price) VALUES (?,?,?)",
                (instance_id, at, price_per_hour),
            )

    def record_end(self, instance_id: str, at: float, reason: str) -> bool:
        """The node ended at ``at`` ('scale-down', 'preempted', 'moved', 'teardown', ...).

        False (and nothing changes) if it had already ended.
        """
        with self._write() as db:
            self._require(db, instance_id)
            cur = db.execute(
                "UPDATE instances SET ended_at = ?, end_reason = ?"
                " WHERE instance_id = ? AND ended_at IS NULL",
                (at, reason, instance_id),
            )
            return cur.rowcount > 0

    def record_move(self, instance_id: str, to_instance_id: str, reason: str, at: float) -> None:
        """``instance_id`` is being replaced by ``to_instance_id`` (price move, preemption, ...)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO moves (instance_id, to_instance_id, reason, at) VALUES (?,?,?,?)",
                (instance_id, to_instance_id, reason, at),
            )

    def journal_put(self, record: MoveRecord) -> None:
        """Save a move's state (``ray_multicloud.moves``): insert a new move, or advance a known one.

        Raises ``LedgerError`` when the saved state cannot go to ``record.state`` (two controllers
        racing on one move, or a bug): the journal never goes back.
        """
        with self._write() as db:
            row = db.execute("SELECT state FROM move_journal WHERE move_id = ?", (record.move_id,)).fetchone()
            if row is not None:
                saved = MoveState(row[0])
                if record.state is not saved and record.state not in TRANSITIONS[saved]:
                    raise LedgerError(
                        f"move {record.move_id} is saved as {saved.value}; "
                        f"it cannot go to {record.state.value}"
                    )
            db.execute(
                "INSERT OR REPLACE INTO move_journal (move_id, pool, old_instance, target_offer, request_id, "
                "state, started_at, updated_at, reason, new_instance, drain_deadline_at, detail) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.move_id,
                    record.pool,
                    record.old_instance,
                    record.target_offer,
                    record.request_id,
                    record.state.value,
                    record.started_at,
                    record.updated_at,
                    record.reason,
                    record.new_instance,
                    record.drain_deadline_at,
                    record.detail,
                ),
            )

    def journal(self, *, open_only: bool = False) -> list[MoveRecord]:
        """Saved moves in the order they started; ``open_only``: those not DONE nor ROLLED_BACK."""
        with self._lock:
            rows = self._db.execute(
                "SELECT move_id, pool, old_instance, target_offer, request_id, state, started_at, "
                "updated_at, reason, new_instance, drain_deadline_at, detail FROM move_journal "
                "ORDER BY started_at, move_id"
            ).fetchall()
        out = [
            MoveRecord(
                move_id=str(r[0]),
                pool=str(r[1]),
                old_instance=str(r[2]),
                target_offer=str(r[3]),
                request_id=str(r[4]),
                state=MoveState(r[5]),
                started_at=float(r[6]),
                updated_at=float(r[7]),
                reason=str(r[8]),
                new_instance=str(r[9]),
                drain_deadline_at=None if r[10] is None else float(r[10]),
                detail=str(r[11]),
            )
            for r in rows
        ]
        return [m for m in out if not m.state.final] if open_only else out

    def open_instances(self, cluster: str) -> list[str]:
        """Ids of ``cluster``'s instances the ledger holds as running (launched, not ended)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT instance_id FROM instances WHERE cluster = ? AND ended_at IS NULL"
                " ORDER BY instance_id",
                (cluster,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def moves_of(self, instance_id: str) -> int:
        """How many moves of ``instance_id`` the journal holds (any state)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM move_journal WHERE old_instance = ?", (instance_id,)
            ).fetchone()
        return int(row[0])

    def record_preemption(self, instance_id: str, at: float, deadline: float | None) -> None:
        """A preemption notice for the node at ``at``, effective at ``deadline`` (None: unknown)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO preemptions (instance_id, at, deadline) VALUES (?,?,?)",
                (instance_id, at, deadline),
            )

    def set_team(self, instance_id: str, team: str | None) -> None:
        """Charge the node's spend to ``team`` (None: no team)."""
        with self._write() as db:
            self._require(db, instance_id)
            db.execute("UPDATE instances SET team = ? WHERE instance_id = ?", (team or None, instance_id))

    def set_job(self, instance_id: str, job: str | None) -> None:
        """Attribute the node's spend to ``job`` (a training run or a Serve deployment)."""
        with self._write() as db:
            self._require(db, instance_id)
            db.execute("UPDATE instances SET job = ? WHERE instance_id = ?", (job, instance_id))

    @staticmethod
    def _require(db: sqlite3.Connection, instance_id: str) -> None:
        if db.execute("SELECT 1 FROM instances WHERE instance_id = ?", (instance_id,)).fetchone() is None:
            raise LedgerError(f"instance {instance_id!r} is not in the ledger: record_launch it first")

    # -- reads ----------------------------------------------------------------------------------

    def spend(self, until: float | None = None) -> list[SpendRow]:
        """Per instance launched before ``until`` (default: now), its spend up to ``until``."""
        end = time.time() if until is None else until
        with self._lock:
            # A read-only ledger written before the team column existed reads as no team.
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(instances)")}
            team = "COALESCE(team, '')" if "team" in columns else "''"
            inst = self._db.execute(
                "SELECT instance_id, cluster, pool, COALESCE(job, ''), cloud, region, zone, instance_type,"
                f" capacity, ondemand_price, launched_at, ended_at, end_reason, {team} FROM instances"
                " WHERE launched_at <= ? ORDER BY launched_at, instance_id",
                (end,),
            ).fetchall()
            price_rows = self._db.execute(
                "SELECT instance_id, at, price FROM prices ORDER BY instance_id, at, seq"
            ).fetchall()
        prices: dict[str, list[tuple[float, float]]] = {}
        for iid, at, price in price_rows:
            prices.setdefault(iid, []).append((float(at), float(price)))
        out: list[SpendRow] = []
        for iid, cluster, pool, job, cloud, region, zone, itype, cap, od, launched, ended, reason, tm in inst:
            stop = end if ended is None else min(float(ended), end)
            stop = max(stop, float(launched))
            hours = (stop - launched) / 3600.0
            changes = prices.get(iid, [])
            cost = _integrate(changes, float(launched), stop)
            current = _price_at(changes, stop)
            out.append(
                SpendRow(
                    instance_id=iid,
                    cluster=cluster,
                    pool=pool,
                    job=job,
                    cloud=cloud,
                    region=region,
                    zone=zone,
                    instance_type=itype,
                    capacity=cap,
                    launched_at=float(launched),
                    ended_at=None if ended is None or float(ended) > end else float(ended),
                    end_reason=reason if ended is not None and float(ended) <= end else None,
                    hours=hours,
                    cost_usd=cost,
                    ondemand_cost_usd=hours * float(od),
                    price_per_hour=current,
                    ondemand_price_per_hour=float(od),
                    team=str(tm),
                )
            )
        return out

    def summary(self, group_by: str = "cloud", until: float | None = None) -> list[SpendGroup]:
        """:meth:`spend` summed per cloud, pool, job, team (or cluster, capacity, region, instance)."""
        return group_spend(self.spend(until), group_by)

    def moves(self) -> list[tuple[str, str, str, float]]:
        """(from instance, to instance, reason, at) in the order they were recorded."""
        with self._lock:
            rows = self._db.execute("SELECT instance_id, to_instance_id, reason, at FROM moves ORDER BY seq")
            return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows.fetchall()]

    def spot_lives(self, since: float) -> list[tuple[str, float, float | None, bool]]:
        """Every spot node held at or after ``since``: ``(location, launched_at, ended_at, preempted)``,
        the location as ``Offer.location`` (``cloud:zone``, ``cloud:region`` where priced by region).
        ``preempted``: a notice was recorded for it (``record_preemption``), or it ended outside the
        provider (the cloud took it: missing from the listings, see ``provider._account``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cloud, region, zone, launched_at, ended_at, COALESCE(end_reason, ''),"
                " EXISTS (SELECT 1 FROM preemptions p WHERE p.instance_id = i.instance_id)"
                " FROM instances i WHERE capacity = 'spot' AND (ended_at IS NULL OR ended_at >= ?)"
                " ORDER BY launched_at, instance_id",
                (since,),
            ).fetchall()
        return [(f"{cloud}:{zone or region}", float(start), None if end is None else float(end),
                 bool(noticed) or str(reason).startswith(ENDED_OUTSIDE))
                for cloud, region, zone, start, end, reason, noticed in rows]

    def preemptions(self) -> list[tuple[str, float, float | None]]:
        """(instance, notice at, effective deadline) in the order they were recorded."""
        with self._lock:
            rows = self._db.execute("SELECT instance_id, at, deadline FROM preemptions ORDER BY seq")
            return [(str(a), float(b), None if c is None else float(c)) for a, b, c in rows.fetchall()]


def _price_at(changes: list[tuple[float, float]], at: float) -> float:
    price = changes[0][1] if changes else 0.0
    for t, p in changes:
        if t > at:
            break
        price = p
    return price


def _integrate(changes: list[tuple[float, float]], start: float, stop: float) -> float:
    """USD for holding a node from ``start`` to ``stop`` under piecewise-constant ``changes``.

    Before the first change the first price applies; a change at the same instant as another
    replaces it (the later record wins).
    """
    if not changes or stop <= start:
        return 0.0
    total = 0.0
    price = changes[0][1]
    t = start
    for at, p in changes:
        if at <= t:
            price = p
            continue
        if at >= stop:
            break
        total += price * (at - t)
        t, price = at, p
    total += price * (stop - t)
    return total / 3600.0
