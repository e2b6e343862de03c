"""A stochastic dynamic programme for one checkpointed job with a hard deadline: stay on spot, go
on-demand, or wait, priced against an availability model (issue 12 item 6).

Pure: no I/O, no clock, no randomness. :func:`solve` is memoised on its (hashable) arguments.

Model (all times in *units* of ``unit_hours``; costs in units of the on-demand price per unit)
-------------------------------------------------------------------------------------------------
* The job's work left is ``w`` *segments* (checkpoint intervals): every segment is ``seg``
  units long except the job's last one, ``last`` units (``1 <= last <= seg``). Work done since
  the last checkpoint is lost when the job loses its node (the periodic-checkpoint model).
* *Slack* ``s`` (an integer number of units) is time left minus work left from the last
  checkpoint, restart not counted. A start (spot or on-demand) costs ``r`` units (``r > 0``, a
  real number) of paid time without work; slack falls by ``r``. A fractional ``r`` is charged
  exactly in expectation: ``V(s - r) = (1 - f) V(s - floor r) + f V(s - floor r - 1)`` with
  ``f = r - floor r``, and is infeasible when either side is.
* Spot for the job is a two-state Markov chain per unit: ``up -> down`` with probability
  ``fail`` (the held zone is lost: a preemption), ``down -> up`` with probability ``back``
  (spot returns somewhere). Right after a preemption another zone is up with probability
  ``alt``. Spot costs ``price`` per unit held (the on-demand price is 1) plus ``extra`` per
  start (the egress of carrying the checkpoint, in the same units).
* The deadline is hard: a state from which on-demand can no longer finish is infeasible
  (``INF``): idle needs ``s >= r``, on-demand ``s >= 0``; a spot segment is allowed only when
  its worst case (lost at the start of its last unit, ``n - 1`` units of work lost) leaves an
  on-demand rescue, ``s - (n - 1) >= r``.

Recurrence (``n`` the next segment's length; ``P`` the chain's one-unit matrix over
``(down, up)``; ``V.(0, s) = 0`` for ``s >= 0``):

* on-demand, continuing (``ods``):
  ``ods(w, s, x) = n + sum_y P^n(x, y) od(w - 1, s, y)`` for ``s >= 0``;
* spot at a segment boundary (``sp``), the zone up:
  ``cont = sum_{j=1..n-1} (1 - fail)^(j-1) fail [j p + alt idle(w, s - j, up)
  + (1 - alt) idle(w, s - j, down)] + (1 - fail)^(n-1) [n p + B(w - 1, s)]`` with
  ``B(w, s) = (1 - fail) sp(w, s) + fail (alt idle(w, s, up) + (1 - alt) idle(w, s, down))``
  (a decision sees the zone up for its next unit, so a loss comes at the start of a later
  one, after ``j`` units of work; a loss at the checkpoint loses nothing), for
  ``s - (n - 1) >= r`` (else ``INF``);
  ``sp(w, s) = min(cont, r + ods(w, s - r, up))``;
* on-demand at a boundary (``od``): ``od(w, s, down) = ods(w, s, down)``,
  ``od(w, s, up) = min(ods(w, s, up), r p + extra + sp(w, s - r))``;
* idle (``idle``), for ``s >= r``: ``min(wait, r + od(w, s - r, x), [x = up] r p + extra +
  sp(w, s - r))`` with ``wait = sum_y P(x, y) idle(w, s - 1, y)``.

Leaving spot goes to ``ods`` (on-demand for at least one segment), so no pair of states at one
slack refer to each other: the tables fill in order of ``w``, then ``s``, then ``ods, sp, od,
idle``. Values are non-increasing in slack (more slack can be left unused).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

INF = math.inf


def _check_grid(p: Problem | AgeProblem) -> None:
    """The grid both problems share: segments >= 0, a segment of >= 1 unit, a last segment of 1 to
    ``seg`` units, slack >= 0, a finite restart > 0 units."""
    if p.segments < 0 or p.seg < 1 or not (1 <= p.last <= p.seg) or p.slack < 0:
        raise ValueError(f"bad grid: {p}")
    if not (p.restart > 0 and math.isfinite(p.restart)):
        raise ValueError(f"restart must be > 0 units, got {p.restart}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One job's grid and model (module docstring). Hashable: :func:`solve` memoises on it."""

    segments: int
    seg: int
    last: int
    slack: int
    restart: float
    fail: float
    back: float
    alt: float
    price: float
    extra: float = 0.0

    def __post_init__(self) -> None:
        _check_grid(self)
        for name in ("fail", "back", "alt"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability, got {v}")
        if self.price < 0 or self.extra < 0:
            raise ValueError(f"price and extra must be >= 0, got {self.price}, {self.extra}")


@dataclass(frozen=True, slots=True)
class Solution:
    """The value tables of a :class:`Problem`, indexed ``[w][s]`` (``[w][s][x]`` with ``x`` 0 down,
    1 up). Expected cost to finish, in on-demand units; ``INF`` where the deadline cannot be kept."""

    problem: Problem
    ods: tuple[tuple[tuple[float, float], ...], ...]
    od: tuple[tuple[tuple[float, float], ...], ...]
    sp: tuple[tuple[float, ...], ...]
    cont: tuple[tuple[float, ...], ...]
    idle: tuple[tuple[tuple[float, float], ...], ...]

    def _ws(self, w: int, s: float) -> tuple[int, int]:
        return min(max(w, 0), self.problem.segments), min(math.floor(s), self.problem.slack)

    def spot_keep(self, w: int, s: float) -> float:
        """Expected cost of keeping spot for the next segment, at a boundary (``INF``: unsafe)."""
        w, i = self._ws(w, s)
        return 0.0 if w == 0 else (INF if i < 0 else self.cont[w][i])

    def spot_leave(self, w: int, s: float) -> float:
        """Expected cost of leaving spot for on-demand now, at a boundary."""
        w, _ = self._ws(w, s)
        return 0.0 if w == 0 else self.problem.restart + _mix(self.ods[w], s - self.problem.restart, 1)

    def ondemand_stay(self, w: int, s: float, up: bool) -> float:
        """Expected cost of another on-demand segment (then the best), at a boundary."""
        w, i = self._ws(w, s)
        return 0.0 if w == 0 else (INF if i < 0 else self.ods[w][i][int(up)])

    def start_spot(self, w: int, s: float) -> float:
        """Expected cost of starting spot now (restart, extra, then :meth:`spot` from there)."""
        w, _ = self._ws(w, s)
        if w == 0:
            return 0.0
        p = self.problem
        return p.restart * p.price + p.extra + _mix1(self.sp[w], s - p.restart, p.slack)

    def start_ondemand(self, w: int, s: float, up: bool) -> float:
        """Expected cost of starting on-demand now from idle."""
        w, _ = self._ws(w, s)
        if w == 0:
            return 0.0
        return self.problem.restart + _mix(self.od[w], s - self.problem.restart, int(up))

    def wait(self, w: int, s: float, up: bool) -> float:
        """Expected cost of holding nothing for one unit (then the best)."""
        w, i = self._ws(w, s)
        if w == 0:
            return 0.0
        p = self.problem
        if i - 1 < 0 or s - 1 < p.restart - 1e-9:
            return INF
        row = self.idle[w][i - 1]
        if row[0] == INF or row[1] == INF:  # as in solve's wait; never 0 x INF (NaN)
            return INF
        x = int(up)
        pu = (1.0 - p.fail) if x else p.back
        return _either(pu, row[1], row[0])

    def mid_segment_keep(self, w: int, s: float, done: int) -> float:
        """Expected cost of keeping spot ``done`` units into the current segment (slack ``s`` is
        counted from the checkpoint, so it already lacks ``done``): lose it at each later unit
        ``j``, or reach the checkpoint and continue from the next boundary with the slack back."""
        w, _ = self._ws(w, s)
        if w == 0:
            return 0.0
        p = self.problem
        n = p.last if w == 1 else p.seg
        left = max(1, n - done)
        total = 0.0
        alive = 1.0
        for k in range(1, left):  # lost at the start of the k + 1-th unit from now
            at = s - k
            if at < p.restart - 1e-9:
                return INF
            row = self.idle[w][min(math.floor(at), p.slack)]
            total += _weighted(alive * p.fail, k * p.price + _either(p.alt, row[1], row[0]))
            alive *= 1.0 - p.fail
        j = min(math.floor(s + done), p.slack)
        return total + _weighted(alive, left * p.price + _boundary(self.sp[w - 1][j], self.idle[w - 1][j], p))


def _weighted(weight: float, value: float) -> float:
    """``weight * value`` where a weight of 0 contributes 0 even to an infinite value (an outcome
    that cannot happen costs nothing; IEEE would give NaN)."""
    return 0.0 if weight == 0.0 else weight * value


def _either(alt: float, up: float, down: float) -> float:
    """The value right after a loss: another zone up with probability ``alt`` (``up``), else none
    (``down``); INF when an outcome of positive probability is INF, never NaN."""
    return _weighted(alt, up) + _weighted(1.0 - alt, down)


def _boundary(keep: float, idle: tuple[float, float], p: Problem) -> float:
    """The value at a checkpoint reached on spot: the zone is still up (``1 - fail``: ``keep``) or
    was lost just then, with nothing unsaved (idle, another zone up with probability ``alt``)."""
    lost = _either(p.alt, idle[1], idle[0]) if p.fail > 0 else 0.0
    return _weighted(1.0 - p.fail, keep) + _weighted(p.fail, lost)


def _mix(col: Sequence[Sequence[float]], at: float, x: int) -> float:
    """``col[at][x]`` at a real slack ``at``, mixed between the two integers around it (module
    docstring); INF below 0 or where either is INF. Slack above the table is clamped."""
    if at < -1e-9:
        return INF
    top = len(col) - 1
    lo = math.floor(at + 1e-9)
    f = at - lo
    a = col[min(lo, top)][x]
    if f <= 1e-9:
        return a
    if lo + 1 > top:
        return a
    b = col[lo + 1][x]
    if a == INF or b == INF:
        return INF
    return (1.0 - f) * a + f * b


def _mix1(col: tuple[float, ...], at: float, top: int) -> float:
    if at < -1e-9:
        return INF
    lo = math.floor(at + 1e-9)
    f = at - lo
    a = col[min(lo, top)]
    if f <= 1e-9 or lo + 1 > top:
        return a
    b = col[lo + 1]
    if a == INF or b == INF:
        return INF
    return (1.0 - f) * a + f * b


def _power(fail: float, back: float, n: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``P^n`` of the chain over (down, up): rows from, columns to."""
    m = ((1.0 - back, back), (fail, 1.0 - fail))
    out = ((1.0, 0.0), (0.0, 1.0))
    for _ in range(n):
        out = (
            (out[0][0] * m[0][0] + out[0][1] * m[1][0], out[0][0] * m[0][1] + out[0][1] * m[1][1]),
            (out[1][0] * m[0][0] + out[1][1] * m[1][0], out[1][0] * m[0][1] + out[1][1] * m[1][1]),
        )
    return out


@functools.lru_cache(maxsize=512)
def solve(problem: Problem) -> Solution:
    """Fill the value tables of ``problem`` by the recurrence of the module docstring."""
    p = problem
    S, top, r = p.segments, p.slack, p.restart
    fl = math.floor(r + 1e-9)
    f = r - fl
    if f <= 1e-9:
        f = 0.0
    zero2 = tuple((0.0, 0.0) for _ in range(top + 1))
    zero1 = tuple(0.0 for _ in range(top + 1))
    ods: list[tuple[tuple[float, float], ...]] = [zero2]
    od: list[tuple[tuple[float, float], ...]] = [zero2]
    sp: list[tuple[float, ...]] = [zero1]
    cont_t: list[tuple[float, ...]] = [zero1]
    idle: list[tuple[tuple[float, float], ...]] = [zero2]
    powers = {n: _power(p.fail, p.back, n) for n in {p.seg, p.last}}
    q = 1.0 - p.fail
    pu = (p.back, q)  # P(up next unit | down, up)

    def at(col: list[float], i: int) -> float:
        """col at slack i - r (mixture); col filled up to the current index."""
        j = i - fl
        if j < 0 or (f > 0 and j - 1 < 0):
            return INF
        a = col[j]
        if f == 0.0:
            return a
        b = col[j - 1]
        if a == INF or b == INF:
            return INF
        return (1.0 - f) * a + f * b

    for w in range(1, S + 1):
        n = p.last if w == 1 else p.seg
        pw = powers[n]
        prev_od = od[w - 1]
        prev_sp = sp[w - 1]
        prev_idle = idle[w - 1]
        ods_d: list[float] = []
        ods_u: list[float] = []
        sp_w: list[float] = []
        cont_w: list[float] = []
        od_d: list[float] = []
        od_u: list[float] = []
        id_d: list[float] = []
        id_u: list[float] = []
        for s in range(top + 1):
            # on-demand, continuing one segment
            nd, nu = prev_od[s]
            v_d = n + pw[0][0] * nd + pw[0][1] * nu if nd != INF and nu != INF else INF
            v_u = n + pw[1][0] * nd + pw[1][1] * nu if nd != INF and nu != INF else INF
            ods_d.append(v_d)
            ods_u.append(v_u)
            # spot at a boundary
            if s - (n - 1) >= r - 1e-9:
                c = 0.0
                alive = 1.0
                for j in range(1, n):  # lost at the start of unit j + 1, after j units worked
                    c += _weighted(alive * p.fail, j * p.price + _either(p.alt, id_u[s - j], id_d[s - j]))
                    alive *= q
                c += _weighted(alive, n * p.price + _boundary(prev_sp[s], prev_idle[s], p))
            else:
                c = INF
            leave = at(ods_u, s)
            leave = r + leave if leave != INF else INF
            cont_w.append(c)
            sp_w.append(min(c, leave))
            # on-demand at a boundary
            start_sp = at(sp_w, s)
            start_sp = r * p.price + p.extra + start_sp if start_sp != INF else INF
            od_d.append(v_d)
            od_u.append(min(v_u, start_sp))
            # idle
            if s < r - 1e-9:
                id_d.append(INF)
                id_u.append(INF)
                continue
            go_d = at(od_d, s)
            go_u = at(od_u, s)
            go_d = r + go_d if go_d != INF else INF
            go_u = r + go_u if go_u != INF else INF
            if s >= 1:
                a0, a1 = id_d[s - 1], id_u[s - 1]
                wait_d = pu[0] * a1 + (1.0 - pu[0]) * a0 if a0 != INF and a1 != INF else INF
                wait_u = pu[1] * a1 + (1.0 - pu[1]) * a0 if a0 != INF and a1 != INF else INF
            else:
                wait_d = wait_u = INF
            id_d.append(min(wait_d, go_d))
            id_u.append(min(wait_u, go_u, start_sp))
        ods.append(tuple(zip(ods_d, ods_u, strict=True)))
        od.append(tuple(zip(od_d, od_u, strict=True)))
        sp.append(tuple(sp_w))
        cont_t.append(tuple(cont_w))
        idle.append(tuple(zip(id_d, id_u, strict=True)))
    return Solution(p, tuple(ods), tuple(od), tuple(sp), tuple(cont_t), tuple(idle))


# ---------------------------------------------------------------------------------------------
# The same programme on an age-conditioned spot model.
#
# The chain above is memoryless: a zone that came back ten minutes ago is as safe as one up for
# hours, and an outage of five hours is as likely to end next unit as one of five minutes. The
# measured signal says otherwise (bench_fleet's probation finding: the chance of losing a zone
# within 5 min is 0.12-0.48 at 5-10 min after a return, 0.001-0.04 after 2 h). Here the spot
# state carries a coarse *age*: ``K_d`` downtime buckets and ``K_u`` uptime buckets.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgeProblem:
    """One job's grid and an age-conditioned spot model. Hashable: :func:`solve_age` memoises on it.

    The grid (``segments``, ``seg``, ``last``, ``slack``, ``restart``, ``price``, ``extra``) is
    :class:`Problem`'s. The chain has ``K_d = len(down_back)`` down states (indices ``0 .. K_d - 1``,
    downtime bucket ``k``) then ``K_u = len(up_fail)`` up states (indices ``K_d + k``, uptime
    bucket ``k``). Per unit:

    * up, bucket ``k``: lost with probability ``up_fail[k]`` (to down bucket 0); else it moves up
      one bucket with probability ``up_adv[k]`` (a bucket ``B`` units wide is left after ``B``
      units on average: ``up_adv = min(1, 1 / B)``; 0 for the last, open bucket), or stays;
    * down, bucket ``k``: spot returns with probability ``down_back[k]`` (to up bucket 0: a zone
      that just came back), else it moves on one downtime bucket with probability
      ``down_adv[k]``, or stays.

    Right after a preemption another zone is up with probability ``alt``; the chain is then in
    ``alt_state`` (an up state: that zone's age), else in down bucket 0.
    """

    segments: int
    seg: int
    last: int
    slack: int
    restart: float
    price: float
    up_fail: tuple[float, ...]
    up_adv: tuple[float, ...]
    down_back: tuple[float, ...]
    down_adv: tuple[float, ...]
    alt: float
    alt_state: int
    extra: float = 0.0

    def __post_init__(self) -> None:
        _check_grid(self)
        if not self.up_fail or len(self.up_adv) != len(self.up_fail):
            raise ValueError(f"up_fail and up_adv: one probability per up bucket, got {self}")
        if not self.down_back or len(self.down_adv) != len(self.down_back):
            raise ValueError(f"down_back and down_adv: one probability per down bucket, got {self}")
        for v in (*self.up_fail, *self.up_adv, *self.down_back, *self.down_adv, self.alt):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"probabilities must be in [0, 1]: {self}")
        if not len(self.down_back) <= self.alt_state < self.states:
            raise ValueError(f"alt_state must be an up state, got {self.alt_state}")
        if self.price < 0 or self.extra < 0:
            raise ValueError(f"price and extra must be >= 0, got {self.price}, {self.extra}")

    @property
    def states(self) -> int:
        return len(self.down_back) + len(self.up_fail)

    def is_up(self, m: int) -> bool:
        return m >= len(self.down_back)

    def up_state(self, bucket: int) -> int:
        """The chain index of uptime bucket ``bucket`` (clamped to the buckets)."""
        return len(self.down_back) + min(max(bucket, 0), len(self.up_fail) - 1)

    def down_state(self, bucket: int) -> int:
        """The chain index of downtime bucket ``bucket`` (clamped to the buckets)."""
        return min(max(bucket, 0), len(self.down_back) - 1)

    def rows(self) -> tuple[tuple[tuple[int, float], ...], ...]:
        """The one-unit transition matrix, row per state as ``(to, probability)`` pairs."""
        kd, ku = len(self.down_back), len(self.up_fail)
        out: list[tuple[tuple[int, float], ...]] = []
        for k in range(kd):
            b, a = self.down_back[k], (self.down_adv[k] if k + 1 < kd else 0.0)
            out.append(((kd, b), (k + 1 if k + 1 < kd else k, (1 - b) * a), (k, (1 - b) * (1 - a))))
        for k in range(ku):
            f, a = self.up_fail[k], (self.up_adv[k] if k + 1 < ku else 0.0)
            m = kd + k
            out.append(((0, f), (m + 1 if k + 1 < ku else m, (1 - f) * a), (m, (1 - f) * (1 - a))))
        return tuple(out)


Row = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class AgeSolution:
    """The value tables of an :class:`AgeProblem`, indexed ``[w][s][m]`` (``m`` a chain state;
    ``sp`` and ``cont`` are ``INF`` at down states). Expected cost to finish, in on-demand units;
    ``INF`` where the deadline cannot be kept. The query methods mirror :class:`Solution`'s with
    the chain state ``m`` in place of up / down."""

    problem: AgeProblem
    ods: tuple[tuple[Row, ...], ...]
    od: tuple[tuple[Row, ...], ...]
    sp: tuple[tuple[Row, ...], ...]
    cont: tuple[tuple[Row, ...], ...]
    idle: tuple[tuple[Row, ...], ...]

    def _ws(self, w: int, s: float) -> tuple[int, int]:
        return min(max(w, 0), self.problem.segments), min(math.floor(s), self.problem.slack)

    def spot_keep(self, w: int, s: float, m: int) -> float:
        """Expected cost of keeping spot (in state ``m``) for the next segment, at a boundary."""
        w, i = self._ws(w, s)
        return 0.0 if w == 0 else (INF if i < 0 else self.cont[w][i][m])

    def spot_leave(self, w: int, s: float, m: int) -> float:
        """Expected cost of leaving spot for on-demand now."""
        w, _ = self._ws(w, s)
        return 0.0 if w == 0 else self.problem.restart + _mix(self.ods[w], s - self.problem.restart, m)

    def ondemand_stay(self, w: int, s: float, m: int) -> float:
        """Expected cost of another on-demand segment (then the best), at a boundary."""
        w, i = self._ws(w, s)
        return 0.0 if w == 0 else (INF if i < 0 else self.ods[w][i][m])

    def start_spot(self, w: int, s: float, m: int) -> float:
        """Expected cost of starting spot (a zone in up state ``m``) now."""
        w, _ = self._ws(w, s)
        if w == 0:
            return 0.0
        p = self.problem
        return p.restart * p.price + p.extra + _mix(self.sp[w], s - p.restart, m)

    def start_ondemand(self, w: int, s: float, m: int) -> float:
        """Expected cost of starting on-demand now from idle."""
        w, _ = self._ws(w, s)
        if w == 0:
            return 0.0
        return self.problem.restart + _mix(self.od[w], s - self.problem.restart, m)

    def wait(self, w: int, s: float, m: int) -> float:
        """Expected cost of holding nothing for one unit (then the best)."""
        w, i = self._ws(w, s)
        if w == 0:
            return 0.0
        p = self.problem
        if i - 1 < 0 or s - 1 < p.restart - 1e-9:
            return INF
        row = self.idle[w][i - 1]
        return _dot(p.rows()[m], row)

    def mid_segment_keep(self, w: int, s: float, done: int, m: int) -> float:
        """Expected cost of keeping spot ``done`` units into the current segment (slack ``s``
        counted from the checkpoint), the zone in up state ``m`` now: as :class:`Solution`'s, the
        loss probability of each later unit read from the chain's up states."""
        w, _ = self._ws(w, s)
        if w == 0:
            return 0.0
        p = self.problem
        n = p.last if w == 1 else p.seg
        left = max(1, n - done)
        rows = p.rows()
        kd = len(p.down_back)
        v = [0.0] * p.states
        v[m] = 1.0
        total = 0.0
        for k in range(1, left):
            at = s - k
            if at < p.restart - 1e-9:
                return INF
            lost = _lost(p, self.idle[w][min(math.floor(at), p.slack)])
            fail = sum(v[x] * p.up_fail[x - kd] for x in range(kd, p.states))
            total += fail * (k * p.price + lost)
            v = _step_up(rows, v, kd)
        j = min(math.floor(s + done), p.slack)
        alive = sum(v)
        if alive <= 0:
            return total
        end = _boundary_age(p, rows, v, self.sp[w - 1][j], self.idle[w - 1][j])
        return total + alive * left * p.price + end


def _dot(row: tuple[tuple[int, float], ...], vals: Row) -> float:
    """``sum P(m, m') vals[m']`` over a sparse row; INF if a reachable value is INF."""
    t = 0.0
    for to, pr in row:
        if pr > 0:
            if vals[to] == INF:
                return INF
            t += pr * vals[to]
    return t


def _lost(p: AgeProblem, idle: Row) -> float:
    """The value right after a preemption at an idle row: another zone up (``alt``) or none."""
    a, b = idle[p.alt_state], idle[0]
    if (p.alt > 0 and a == INF) or (p.alt < 1 and b == INF):
        return INF
    return (p.alt * a if p.alt > 0 else 0.0) + ((1.0 - p.alt) * b if p.alt < 1 else 0.0)


def _step_up(rows: tuple[tuple[tuple[int, float], ...], ...], v: list[float], kd: int) -> list[float]:
    """One unit of the held zone surviving: ``v`` (over states, mass on up states) times the
    chain restricted to up states (the mass lost to down states is the preemption)."""
    out = [0.0] * len(v)
    for x in range(kd, len(v)):
        if v[x] > 0:
            for to, pr in rows[x]:
                if to >= kd:
                    out[to] += v[x] * pr
    return out


def _boundary_age(p: AgeProblem, rows: tuple[tuple[tuple[int, float], ...], ...], v: list[float],
                  keep: Row, idle: Row) -> float:
    """The value at a checkpoint reached on spot with (unnormalised) up-state mass ``v``: the
    zone survives the unit into the next state (``keep`` there) or is lost just then (nothing
    unsaved: :func:`_lost`)."""
    kd = len(p.down_back)
    fail = sum(v[x] * p.up_fail[x - kd] for x in range(kd, len(v)))
    total = 0.0
    if fail > 0:
        lost = _lost(p, idle)
        if lost == INF:
            return INF
        total += fail * lost
    for x, mass in enumerate(_step_up(rows, v, kd)):
        if mass > 0:
            if keep[x] == INF:
                return INF
            total += mass * keep[x]
    return total


@dataclass(frozen=True, slots=True)
class _AgeTables:
    """The rows of an :class:`AgeProblem`'s tables filled so far (``[w]``) and how to fill more."""

    ods: list[tuple[Row, ...]]
    od: list[tuple[Row, ...]]
    sp: list[tuple[Row, ...]]
    cont: list[tuple[Row, ...]]
    idle: list[tuple[Row, ...]]
    extend: Callable[[int], None]


_AGE_BUILT: dict[AgeProblem, _AgeTables] = {}
_AGE_MEMO = 256


def solve_age(problem: AgeProblem) -> AgeSolution:
    """Fill the value tables of ``problem``: the recurrence of the module docstring with the spot
    state ``x`` replaced by the chain state ``m`` of :class:`AgeProblem` (``P`` its matrix, ``U``
    its up states, ``L(w, s) = alt idle(w, s, alt_state) + (1 - alt) idle(w, s, down 0)``):

    * ``ods(w, s, m) = n + sum_m' P^n(m, m') od(w - 1, s, m')``;
    * for ``m`` in ``U``, with ``v_j`` the row ``m`` of ``P`` restricted to ``U``, to the power
      ``j`` (the held zone still up after ``j`` more units) and ``f`` the per-state loss
      probability: ``cont(w, s, m) = sum_{j=1..n-1} (v_{j-1} . f) [j p + L(w, s - j)]
      + |v_{n-1}| n p + (v_{n-1} . f) L(w - 1, s) + sum_m' v_n(m') sp(w - 1, s, m')``
      for ``s - (n - 1) >= r``, else ``INF``; ``sp = min(cont, r + ods(w, s - r, m))``;
    * ``od(w, s, m) = ods(w, s, m)``, and for ``m`` in ``U`` at most ``r p + extra + sp(w, s - r, m)``;
    * ``idle(w, s, m)``, for ``s >= r``: ``min(sum_m' P(m, m') idle(w, s - 1, m'), r + od(w, s - r, m),
      [m in U] r p + extra + sp(w, s - r, m))``.

    With one up and one down bucket and ``alt_state`` the up state this is exactly :func:`solve`'s
    programme (``up_fail`` its ``fail``, ``down_back`` its ``back``).

    The rows for ``w`` segments do not depend on how many segments the problem has, so they are
    memoised per problem without its ``segments`` (the ``_AGE_MEMO`` most recent) and filled only
    as far as asked: a job asks with the segments it has left, which only fall.
    """
    key = replace(problem, segments=0)
    tables = _AGE_BUILT.pop(key, None) or _age_builder(key)
    _AGE_BUILT[key] = tables
    while len(_AGE_BUILT) > _AGE_MEMO:
        del _AGE_BUILT[next(iter(_AGE_BUILT))]
    tables.extend(problem.segments)
    n = problem.segments + 1
    return AgeSolution(problem, tuple(tables.ods[:n]), tuple(tables.od[:n]), tuple(tables.sp[:n]),
                       tuple(tables.cont[:n]), tuple(tables.idle[:n]))


def _age_builder(problem: AgeProblem) -> _AgeTables:
    """The tables of ``problem`` (its ``segments`` ignored), filled on demand: :func:`solve_age`."""
    p = problem
    top, r, M = p.slack, p.restart, p.states
    kd = len(p.down_back)
    rows = p.rows()
    fl = math.floor(r + 1e-9)
    f = r - fl
    if f <= 1e-9:
        f = 0.0
    zero = tuple(tuple(0.0 for _ in range(M)) for _ in range(top + 1))
    infs = tuple(INF for _ in range(M))
    ods: list[tuple[Row, ...]] = [zero]
    od: list[tuple[Row, ...]] = [zero]
    sp: list[tuple[Row, ...]] = [zero]
    cont_t: list[tuple[Row, ...]] = [zero]
    idle: list[tuple[Row, ...]] = [zero]
    ups = range(kd, M)

    def power(n: int) -> list[list[float]]:
        """``P^n`` as a dense matrix."""
        out = [[1.0 if i == j else 0.0 for j in range(M)] for i in range(M)]
        for _ in range(n):
            nxt = [[0.0] * M for _ in range(M)]
            for i in range(M):
                for k, a in enumerate(out[i]):
                    if a > 0:
                        for to, pr in rows[k]:
                            nxt[i][to] += a * pr
            out = nxt
        return out

    def seg_stats(n: int) -> dict[int, tuple[list[float], float, float, list[float]]]:
        """Per up state ``m``: the loss probability at each ``j = 1 .. n - 1``, the mass alive after
        ``n - 1`` units, the loss at the checkpoint, and the up-state mass after ``n`` units."""
        out: dict[int, tuple[list[float], float, float, list[float]]] = {}
        for m in ups:
            v = [0.0] * M
            v[m] = 1.0
            losses = []
            for _ in range(1, n):
                losses.append(sum(v[x] * p.up_fail[x - kd] for x in ups))
                v = _step_up(rows, v, kd)
            end_fail = sum(v[x] * p.up_fail[x - kd] for x in ups)
            out[m] = (losses, sum(v), end_fail, _step_up(rows, v, kd))
        return out

    powers = {n: np.asarray(power(n), dtype=float) for n in {p.seg, p.last}}
    stats = {n: seg_stats(n) for n in {p.seg, p.last}}

    def at(col: list[Row], i: int, m: int) -> float:
        """col[.][m] at slack i - r (mixture); col filled up to the current index."""
        j = i - fl
        if j < 0 or (f > 0 and j - 1 < 0):
            return INF
        a = col[j][m]
        if f == 0.0:
            return a
        b = col[j - 1][m]
        if a == INF or b == INF:
            return INF
        return (1.0 - f) * a + f * b

    def extend(upto: int) -> None:
        """Fill the rows up to ``upto`` segments."""
        for w in range(len(ods), upto + 1):
            n = p.last if w == 1 else p.seg
            pw = powers[n]
            st_n = stats[n]
            prev_od, prev_sp, prev_idle = od[w - 1], sp[w - 1], idle[w - 1]
            ods_w: list[Row] = []
            sp_w: list[Row] = []
            cont_w: list[Row] = []
            od_w: list[Row] = []
            id_w: list[Row] = []
            # od(w - 1, s, .) is finite at every s >= 0 (on-demand alone finishes from any slack), so
            # ods is one matrix product for the whole column.
            ods_col = (n + np.asarray(prev_od, dtype=float) @ pw.T).tolist()
            for s in range(top + 1):
                ods_r = tuple(ods_col[s])
                ods_w.append(ods_r)
                cont_r = list(infs)
                sp_r = list(infs)
                if s - (n - 1) >= r - 1e-9:
                    lost_end = _lost(p, prev_idle[s])
                    keep_next = prev_sp[s]
                    for m in ups:
                        losses, alive, end_fail, v_n = st_n[m]
                        c = 0.0
                        for j, lp in enumerate(losses, start=1):
                            if lp > 0:
                                lj = _lost(p, id_w[s - j])
                                c = INF if lj == INF or c == INF else c + lp * (j * p.price + lj)
                        if c != INF:
                            c += alive * n * p.price
                            if end_fail > 0:
                                c = INF if lost_end == INF else c + end_fail * lost_end
                        if c != INF:
                            for x, mass in enumerate(v_n):
                                if mass > 0:
                                    if keep_next[x] == INF:
                                        c = INF
                                        break
                                    c += mass * keep_next[x]
                        cont_r[m] = c
                for m in ups:
                    leave = at(ods_w, s, m)
                    leave = r + leave if leave != INF else INF
                    sp_r[m] = min(cont_r[m], leave)
                cont_w.append(tuple(cont_r))
                sp_w.append(tuple(sp_r))
                od_r = list(ods_r)
                start = [INF] * M  # r p + extra + sp(w, s - r, m): starting spot from here
                for m in ups:
                    st = at(sp_w, s, m)
                    if st != INF:
                        start[m] = r * p.price + p.extra + st
                        od_r[m] = min(od_r[m], start[m])
                od_w.append(tuple(od_r))
                if s < r - 1e-9:
                    id_w.append(infs)
                    continue
                id_r = []
                below = id_w[s - 1] if s >= 1 else infs
                for m in range(M):
                    go = at(od_w, s, m)
                    best = r + go if go != INF else INF
                    if s >= 1:
                        best = min(best, _dot(rows[m], below))
                    best = min(best, start[m])
                    id_r.append(best)
                id_w.append(tuple(id_r))
            ods.append(tuple(ods_w))
            od.append(tuple(od_w))
            sp.append(tuple(sp_w))
            cont_t.append(tuple(cont_w))
            idle.append(tuple(id_w))

    return _AgeTables(ods, od, sp, cont_t, idle, extend)

