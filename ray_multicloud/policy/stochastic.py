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
from dataclasses import dataclass

INF = math.inf


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
        if self.segments < 0 or self.seg < 1 or not (1 <= self.last <= self.seg) or self.slack < 0:
            raise ValueError(f"bad grid: {self}")
        if not (self.restart > 0 and math.isfinite(self.restart)):
            raise ValueError(f"restart must be > 0 units, got {self.restart}")
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
        return pu * row[1] + (1.0 - pu) * row[0]

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
            total += alive * p.fail * (k * p.price + p.alt * row[1] + (1.0 - p.alt) * row[0])
            alive *= 1.0 - p.fail
        j = min(math.floor(s + done), p.slack)
        return total + alive * (left * p.price + _boundary(self.sp[w - 1][j], self.idle[w - 1][j], p))


def _boundary(keep: float, idle: tuple[float, float], p: Problem) -> float:
    """The value at a checkpoint reached on spot: the zone is still up (``1 - fail``: ``keep``) or
    was lost just then, with nothing unsaved (idle, another zone up with probability ``alt``)."""
    if keep == INF:
        return INF
    lost = p.alt * idle[1] + (1.0 - p.alt) * idle[0] if p.fail > 0 else 0.0
    return (1.0 - p.fail) * keep + p.fail * lost


def _mix(col: tuple[tuple[float, float], ...], at: float, x: int) -> float:
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
                    c += alive * p.fail * (j * p.price + p.alt * id_u[s - j] + (1.0 - p.alt) * id_d[s - j])
                    alive *= q
                c += alive * (n * p.price + _boundary(prev_sp[s], prev_idle[s], p))
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
