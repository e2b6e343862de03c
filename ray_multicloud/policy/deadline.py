"""Deadline-aware decisions for one checkpointed job: what to run next, asked once per tick.

Contract
--------
* Pure: no I/O, no clock, no logging, no hidden randomness (``ross``, the one randomized policy,
  draws from its own ``seed`` field, so it too is a function of its inputs). The caller passes everything in a
  :class:`JobView` (times in hours since the job was submitted) and the policy's previous
  :class:`Memory`; the policy answers a :class:`Step` — the :class:`Choice` for the next tick,
  the reasons, and the memory to pass back next time. The same objects drive the simulator
  (``ray_multicloud.sim``) and the training controller on the head node.
* A choice is one of: spot in a named zone, on-demand, or wait (hold nothing). Choosing the
  placement the job already has means "keep it"; anything else releases the current node.
* The job model the guards assume (the simulator implements exactly this one):
  the job needs ``work_total_hours`` of running; every (re)start or move costs
  ``restart_hours`` of paid time before work resumes; a node that is released or preempted
  takes with it the work done since the last checkpoint (``work_done_hours -
  checkpointed_hours``); checkpoints land every ``checkpoint_hours`` of work. On-demand is
  always obtainable and never preempted; spot can be started only in a zone whose
  ``available`` is true now, and is lost as soon as its zone becomes unavailable.
* Deadline guard ("can an on-demand rescue still make it?"): a decision that leaves the job off
  on-demand for the next tick is *safe* when, if the job were then preempted at the worst
  moment, starting on-demand at the next tick from the checkpoint it would still have finishes
  by the deadline. ``multicloud`` and ``up-eager`` only take safe decisions, so with
  on-demand always available they never miss a deadline that was feasible at submission. The
  paper's ``greedy`` and ``uniform-progress`` keep a working spot node until it is preempted, as in
  the paper, whose model loses no work at a preemption; with periodic checkpoints they can miss.

Policies (CLI name -> class), each described with short event sequences:

* ``ondemand`` (:class:`OnDemandOnly`): ``on-demand (done)``.
* ``greedy`` (:class:`Greedy`): Can't Be Late's Greedy policy (Wu et al., NSDI '24: the Thrifty
  and Safety Net rules) in one home zone: spot whenever available, kept until preempted; with no
  spot, *idle*; on-demand only once waiting one more tick would miss the deadline, and then to the
  end: ``1a spot (preempted) -> wait -> 1a spot -> ... -> [slack gone] on-demand (done)``.
* ``greedy-ondemand`` (:class:`GreedySingleZone`, not the paper's; in :data:`VARIANTS`): spot in
  the home zone when available, else on-demand, back to spot as soon as it returns; deadline-unaware.
* ``eager-next-region`` (:class:`EagerNextRegion`): SkyPilot managed jobs' default recovery
  strategy (``EAGER_NEXT_REGION``, sky/jobs/recovery_strategy.py): on preemption relaunch
  immediately in the cheapest spot location outside the preempted *region*; if none launches,
  any spot location including that region; with an on-demand fallback in the resource list
  (``any_of``), on-demand when no spot location launches — where the job then stays, since
  on-demand is never preempted and managed jobs do not migrate back:
  ``us-east-1a spot (preempted) -> us-west-2 spot (ok)``;
  ``us-east-1a spot (preempted) -> [no spot anywhere] -> on-demand (done)``.
  Deadline-unaware.
* ``uniform-progress`` (:class:`UniformProgress`): Can't Be Late's Uniform Progress in one home
  zone, rules as the paper states them (see the class).
* ``up-eager`` (:class:`UniformProgressEager`, not the paper's; in :data:`VARIANTS`): this
  project's earlier adaptation of it, which also leaves on-demand for *idle* when ahead, abandons
  a working spot node when its safety net fires, and may return to spot mid-checkpoint-interval.
* ``ross`` (:class:`ROSS`, in :data:`VARIANTS`): ROSS, the randomized policy of Bhuyan et al.
  (arXiv 2601.14612, INFOCOM '26) in one home zone: warm-up as ``greedy`` while the time left is
  more than ``(1 + 2 sqrt K) / (1 + sqrt K)`` times the work left, then on-demand for one interval
  of ``(work left) / (1 + sqrt K)`` placed at random, ``greedy`` around it, the deadline guard last:
  ``1a spot -> wait -> [ratio reached] 1a spot -> on-demand (random interval) -> 1a spot (done)``.
* ``multicloud`` (:class:`MultiCloud`, ours): every zone of every cloud. Keeps its spot node
  while safe; on preemption moves to the cheapest available spot zone (ties: the zone that has
  been up longest); with no spot anywhere, waits while the slack exceeds what it keeps for the
  rest of the job (``wait_reserves`` preemption reserves — a reserve = one restart plus one
  checkpoint interval of lost work —, a share of the uniform slack line, and a share of the work
  left), else on-demand; goes on-demand when the slack could not absorb another preemption and restart;
  returns from on-demand to spot within a tick after a checkpoint once the slack again exceeds
  ``back_reserves`` reserves and the remaining work makes the switch pay:
  ``us-east-1a spot (preempted) -> us-west-2b spot (preempted) -> [none, slack low] ->
  on-demand -> us-east-2a spot (ok)``. When a move would carry the checkpoint to another region
  (egress) while the checkpoint's own region has spot zones that are only down for now, it first
  waits a while for them (``free_wait_share``, :func:`free_wait_patience`):
  ``us-east-2b spot (preempted) -> [only us-west-2a up: egress] -> wait 0.6h -> us-east-2b spot``.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Protocol

from ray_multicloud.policy.risk import useful_hour_cost
from ray_multicloud.policy.stochastic import AgeProblem, AgeSolution, Problem, Solution, solve, solve_age

_EPS = 1e-9


class Kind(str, enum.Enum):
    """What a job holds for the next tick."""

    SPOT = "spot"
    ON_DEMAND = "on-demand"
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class Choice:
    """A placement: spot in ``zone``, on-demand (zone ""), or wait (zone "")."""

    kind: Kind
    zone: str = ""

    def __str__(self) -> str:
        return f"{self.zone} spot" if self.kind is Kind.SPOT else self.kind.value


WAIT = Choice(Kind.WAIT)
ON_DEMAND = Choice(Kind.ON_DEMAND)


def spot(zone: str) -> Choice:
    """Spot capacity in ``zone``."""
    return Choice(Kind.SPOT, zone)


@dataclass(frozen=True, slots=True)
class SpotOption:
    """One place spot can be bought: its zone, region, whether it can be had now, its price.

    ``interruptions_per_hour``, when the caller knows it, is the zone's recently observed rate
    of interruptions per hour of availability (its past only: a trailing window of the price
    and availability feed, or a cloud's interruption-frequency figure); None when unknown.
    ``egress_usd`` is what starting a node here now would pay to carry the job's checkpoint from
    the region it lives in (0 in that region, or with nothing saved yet).
    """

    zone: str
    region: str
    available: bool
    price_per_hour: float
    interruptions_per_hour: float | None = None
    egress_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class SpotHistory:
    """The zones' availability over a trailing window that ends at the current decision, as up-runs
    and outages (the past only: a caller builds it from ticks at or before now; the simulator's
    ``history_window_hours``). Times are hours; elapsed hours may be negative (before submission).

    ``lifetimes``: per zone of ``JobView.zones``, the lengths of its up-runs that began and ended
    inside the window (the down tick before the run and the down tick that ended it both in the
    window); ``lifetimes_censored``: per zone, the observed lengths of its up-runs open at an edge —
    begun before the window (counted from its first tick) or still up now (counted to now, as
    ``now - born``);
    ``outages`` / ``outages_censored``: the same for the spells in which no zone was up.
    ``born``: per zone of ``JobView.zones``, the elapsed hour its current up-run began (``-inf``:
    before the window; ``inf``: down now), as :attr:`Memory.born`; ``outage_since``: the elapsed hour
    since which no zone has been up (``inf`` while one is, ``-inf``: since before the window).
    """

    window_hours: float
    lifetimes: tuple[tuple[float, ...], ...] = ()
    lifetimes_censored: tuple[tuple[float, ...], ...] = ()
    outages: tuple[float, ...] = ()
    outages_censored: tuple[float, ...] = ()
    born: tuple[float, ...] = ()
    outage_since: float = math.inf


@dataclass(frozen=True, slots=True)
class JobView:
    """Everything a policy may know at one decision. Times are hours since submission.

    ``tick_hours`` is how long the answer holds before the policy is asked again. ``preempted``
    is true when the job's spot node in ``preempted_zone`` was lost just now (``current`` is then
    ``WAIT`` and ``work_done_hours`` already rolled back to the checkpoint).
    ``overhead_left_hours`` is restart time still to pay on the current placement.
    ``history``, when the caller has it, is the zones' trailing availability history
    (:class:`SpotHistory`); None when unknown.
    """

    elapsed_hours: float
    work_done_hours: float
    checkpointed_hours: float
    work_total_hours: float
    deadline_hours: float | None
    restart_hours: float
    checkpoint_hours: float
    tick_hours: float
    current: Choice
    overhead_left_hours: float
    zones: tuple[SpotOption, ...]
    ondemand_price_per_hour: float
    preempted: bool = False
    preempted_zone: str = ""
    history: SpotHistory | None = None


@dataclass(frozen=True, slots=True)
class VirtualInstance:
    """SkyNomad's virtual instance of one zone (its paper, §3.4 and §A.3): the zone's availability
    as the policy has observed it — through probes, its own launches (a success starts a run, a
    failure is a virtual preemption), preemptions of its own node, and its own proactive moves away.

    ``up_since``: the elapsed hour the current virtual run began (``inf``: last seen down, or not
    observed since the policy left it). ``failures``: lifetimes (hours) that ended in an observed
    preemption or failed observation; ``censored``: lifetimes cut short by a proactive move away
    (right-censored, §A.3). ``runs``: each completed run as ``(start, end, failed)`` in elapsed
    hours, for the volatility ratio (:meth:`volatility`).
    """

    up_since: float = math.inf
    failures: tuple[float, ...] = ()
    censored: tuple[float, ...] = ()
    runs: tuple[tuple[float, float, bool], ...] = ()

    def observe(self, now: float, available: bool) -> VirtualInstance:
        """The instance after an observation at ``now``: a success starts a run if none is open
        (virtual provisioning); a failure ends an open run as a lifetime (virtual preemption)."""
        if available:
            return self if self.up_since < math.inf else replace(self, up_since=now)
        if self.up_since < math.inf:
            return replace(self, up_since=math.inf, failures=(*self.failures, max(0.0, now - self.up_since)),
                           runs=(*self.runs, (self.up_since, now, True)))
        return self

    def censor(self, now: float) -> VirtualInstance:
        """The instance after the policy left the zone while it was up: the run is right-censored."""
        if self.up_since < math.inf:
            return replace(self, up_since=math.inf, censored=(*self.censored, max(0.0, now - self.up_since)),
                           runs=(*self.runs, (self.up_since, now, False)))
        return self

    def volatility(self, now: float) -> float:
        """SkyNomad's volatility ratio ``gamma*`` at ``now`` (§A.3): over windows ``W`` ending now,
        ``gamma_W = e_W / (sum over t in W of h(a(t)))`` — the failures observed in ``W`` over those
        the hazard at the virtual instance's ages in ``W`` expects (its cumulative hazard gained in
        ``W``) — and ``gamma* = max_W gamma_W``. ``e_W`` only grows at a failure, so the windows
        that can be the maximum begin at a failure (just before it: it counts, with the hazard jump
        at its age); the whole history is a window too. 1.0 without a failure in ``runs``.
        Example: runs (0, 1) and (1, 3), both failed: lifetimes 1 and 2 h, ``h(1) = 1/2``,
        ``h(2) = 1``. From just before 3 h: one failure over the jump ``h(2) = 1``: 1.0; from just
        before 1 h: two over ``h(1) + H(2) = 0.5 + 1.5``: 1.0; the whole history likewise:
        ``gamma* = 1``, no more failures than expected.
        """
        fails = [r for r in self.runs if r[2]]
        if not fails:
            return 1.0
        knots = _hazard_knots(self.failures, self.censored)
        segs = [(a, b) for a, b, _ in self.runs]
        if self.up_since < math.inf:
            segs.append((self.up_since, now))
        best = 0.0
        starts = [(a, b - a) for a, b, failed in self.runs if failed]
        starts.append((min(a for a, _ in segs), -1.0))  # the whole history
        for w, length in starts:
            end_w = w + max(length, 0.0)  # a failure's window begins just before its end
            if length >= 0:
                count = sum(1 for a, b, failed in self.runs if failed and b >= end_w)
                expected = _jump(knots, length) + sum(
                    _cum_hazard(knots, b - a) for a, b in segs if a >= end_w
                )
            else:
                count = len(fails)
                expected = sum(_cum_hazard(knots, b - a) for a, b in segs)
            if expected > _EPS:
                best = max(best, count / expected)
        return best if best > 0 else 1.0


def _hazard_knots(failures: Sequence[float], censored: Sequence[float]) -> list[tuple[float, float, float]]:
    """Nelson-Aalen (SkyNomad eq. 10): ``(l, h(l), H(l))`` at each distinct failure lifetime ``l``."""
    samples = (*failures, *censored)
    knots: list[tuple[float, float, float]] = []
    cum = 0.0
    for t in sorted(set(failures)):
        h = sum(1 for f in failures if f == t) / sum(1 for x in samples if x >= t)
        cum += h
        knots.append((t, h, cum))
    return knots


def _cum_hazard(knots: Sequence[tuple[float, float, float]], x: float) -> float:
    """``H(x)``: the sum of ``h(l)`` over failure lifetimes ``l <= x``."""
    v = 0.0
    for t, _, cum in knots:
        if t > x:
            break
        v = cum
    return v


def _jump(knots: Sequence[tuple[float, float, float]], x: float) -> float:
    """``h(x)``: the hazard jump at lifetime ``x`` (0 off the knots)."""
    return next((h for t, h, _ in knots if t == x), 0.0)


def expected_remaining_lifetime(
    failures: Sequence[float], censored: Sequence[float], age: float, gamma: float = 1.0
) -> float | None:
    """SkyNomad's predicted remaining spot lifetime at ``age`` (its eq. 9 and 10, §A.3).

    Nelson-Aalen: at each distinct failure lifetime ``l`` the hazard is ``h(l) = e(l) / n(l)``,
    ``e(l)`` the failures at ``l`` and ``n(l)`` the samples (failures and censored) ``>= l``;
    ``S(l) = exp(-gamma * H(l))``, ``H(l)`` the sum of ``h(l_i)`` for ``l_i <= l`` and ``gamma`` the
    volatility ratio (§A.3, :meth:`VirtualInstance.volatility`; 1: none). The expected remaining
    lifetime is ``(1 / S(age)) * integral of S from age`` (eq. 9's sum read on a continuous axis),
    taken up to the longest observed lifetime (beyond it the samples say nothing). None —
    unbounded, "no preemption seen at this age" — when there is no failure, or ``age`` is at or
    beyond the longest sample. Example: failures 1 h and 3 h, nothing censored, age 0:
    ``h(1) = 1/2``, ``h(3) = 1``; ``S = 1`` on [0, 1), ``e^-0.5`` on [1, 3):
    ``L = 1 + 2 e^-0.5 = 2.213`` h; at age 2: ``(1 * e^-0.5) / e^-0.5 = 1`` h; with ``gamma`` 2,
    at age 0: ``1 + 2 e^-1 = 1.736`` h.
    """
    if not failures:
        return None
    longest = max((*failures, *censored))
    if age >= longest:
        return None
    knots = _hazard_knots(failures, censored)

    def surv(x: float) -> float:
        return math.exp(-gamma * _cum_hazard(knots, x))

    edges = sorted({age, longest, *(t for t, _, _ in knots if age < t < longest)})
    area = sum(surv(a) * (b - a) for a, b in pairwise(edges))
    return area / surv(age)


@dataclass(frozen=True, slots=True)
class Memory:
    """What a policy carries from one decision to the next (all policies share this shape).

    ``home_zone``: the single zone of single-zone policies ("" until chosen).
    ``locked_ondemand``: the policy decided to finish on on-demand.
    ``up_since``: per zone of ``JobView.zones``, the elapsed hour since which it has been
    continuously available (``inf`` while unavailable); empty until first seen.
    ``idle_since``: the elapsed hour since which the job has held nothing (``inf`` while it holds
    a node; kept by ``multicloud`` for its wait for an egress-free return).
    ``virtual`` / ``probed_at``: ``skynomad``'s virtual instance per zone of ``JobView.zones`` and
    the elapsed hour of its last probe round (:class:`VirtualInstance`).
    ``spot_seen`` / ``down_ticks`` / ``returns`` / ``losses`` / ``losses_alt`` / ``up_ticks`` /
    ``drops``: ``multicloud``'s availability counts for its stochastic programme (``stochastic``;
    :func:`_track_avail`): whether any spot zone was up at the last decision (-1 unknown), decisions
    seen with none up, how many of those were followed by spot somewhere, preemptions seen, how many
    of those found another zone up, zone-decisions seen up, and how many of those were followed by
    the zone going down.
    ``born`` / ``lifetimes`` / ``outage_since`` / ``outages``: the age-conditioned model of the
    stochastic programme (``stochastic_age``; :func:`_track_ages`): per zone of ``JobView.zones``
    the elapsed hour it was seen coming up (``-inf``: up when first seen, start unknown; ``inf``:
    down), the lifetimes (hours) of the up-runs the job saw begin and end, pooled over zones, the
    elapsed hour since which no zone has been up (``inf`` while one is), and the lengths of the
    outages (no zone up) the job saw end.
    ``ross_interval``: ``ross``'s randomized on-demand interval ``(xi1, start, end)`` in elapsed
    hours, fixed at its first decision in phase 2 (``xi1``); empty during the warm-up.
    """

    home_zone: str = ""
    locked_ondemand: bool = False
    up_since: tuple[float, ...] = ()
    idle_since: float = math.inf
    virtual: tuple[VirtualInstance, ...] = ()
    probed_at: float = -math.inf
    spot_seen: int = -1
    down_ticks: int = 0
    returns: int = 0
    losses: int = 0
    losses_alt: int = 0
    up_ticks: int = 0
    drops: int = 0
    born: tuple[float, ...] = ()
    lifetimes: tuple[float, ...] = ()
    outage_since: float = math.inf
    outages: tuple[float, ...] = ()
    ross_interval: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """A policy's answer: the choice for the next tick, why, and the memory to pass back."""

    choice: Choice
    reasons: tuple[str, ...]
    memory: Memory


class DeadlinePolicy(Protocol):
    """The interface every policy here implements."""

    @property
    def name(self) -> str: ...

    def decide(self, view: JobView, memory: Memory) -> Step:
        """The choice for the next tick. Never chooses spot in a zone that is unavailable now."""
        ...


# ---------------------------------------------------------------------------------------------
# Pure helpers over a JobView (shared by the policies and usable by the controller).


def remaining_work(view: JobView) -> float:
    """Hours of work still to do, counting un-checkpointed work as done."""
    return max(0.0, view.work_total_hours - view.work_done_hours)


def ondemand_slack(view: JobView) -> float:
    """Hours to spare if the job released everything now and finished on on-demand.

    ``deadline - now - (restart + work left from the last checkpoint)``; ``inf`` without a
    deadline. Waiting a tick costs a tick of slack; a preemption costs the lost work plus a
    restart; running on on-demand leaves it unchanged.
    """
    if view.deadline_hours is None:
        return math.inf
    need = view.restart_hours + view.work_total_hours - view.checkpointed_hours
    return view.deadline_hours - view.elapsed_hours - need


def reserve_hours(view: JobView) -> float:
    """Slack one more preemption can cost at most: a restart plus a checkpoint interval."""
    return view.restart_hours + view.checkpoint_hours


def _checkpoint_after_tick(view: JobView, *, keep: bool) -> float:
    """The checkpointed work after one more tick on the current node (``keep``) or a new one."""
    if not keep:
        return view.checkpointed_hours  # a fresh start pays overhead first; no new checkpoint
    worked = max(0.0, view.tick_hours - view.overhead_left_hours)
    since = view.work_done_hours - view.checkpointed_hours
    if worked > 0 and since + worked >= view.checkpoint_hours - _EPS:
        return min(view.work_total_hours, view.checkpointed_hours + view.checkpoint_hours)
    return view.checkpointed_hours


def checkpoint_after_tick(view: JobView, *, keep: bool) -> float:
    """The checkpointed work (hours) the job has after one more tick on its current node (``keep``)
    or on a new one: what a preemption at the end of the tick rolls it back to."""
    return _checkpoint_after_tick(view, keep=keep)


def off_ondemand_is_safe(view: JobView, *, keep: bool) -> bool:
    """True when holding spot (or nothing) for one more tick leaves an on-demand rescue on time.

    ``keep``: the job keeps its current node (else it starts a new one or waits, from the last
    checkpoint). The worst case is a preemption at the end of the tick; the rescue then needs
    a restart plus the work left after the checkpoint the job would still have.
    """
    if view.deadline_hours is None:
        return True
    if keep and view.work_done_hours + view.tick_hours - view.overhead_left_hours >= (
        view.work_total_hours - _EPS
    ):
        return True  # the job finishes within this tick
    ckpt = _checkpoint_after_tick(view, keep=keep)
    time_left = view.deadline_hours - view.elapsed_hours - view.tick_hours
    return time_left + _EPS >= view.restart_hours + view.work_total_hours - ckpt


def spot_run_viable(view: JobView, *, keep: bool) -> bool:
    """True when spot (started now, or kept from a checkpoint boundary) can reach its next
    checkpoint — or finish — before the deadline guard would force the job off it.

    A run that the guard will cut short before its next checkpoint only buys restart time and
    work that is thrown away; on-demand is cheaper then.
    """
    if view.deadline_hours is None:
        return True
    segment = min(view.checkpoint_hours, view.work_total_hours - view.checkpointed_hours)
    start_cost = 0.0 if keep else view.restart_hours
    # The guard is checked one tick ahead, and the tick that reaches the checkpoint (or the
    # end) is judged against the new checkpoint: a run survives a segment of n ticks when the
    # slack left after the restart is at least n - 1 ticks.
    return ondemand_slack(view) - start_cost - segment + view.tick_hours >= -_EPS


def guard_cuts_segment(view: JobView) -> bool:
    """True when a job that keeps its current node, and is not preempted, will be forced off it by
    the deadline guard (:func:`off_ondemand_is_safe` with ``keep=True`` failing at a later
    decision, or now) before its work reaches the next checkpoint or the end.

    The future is deterministic without a preemption: each tick pays the overhead left first and
    works the rest, slack falls a tick per tick and rises at a checkpoint. Every hour worked until
    the guard fires is then rolled back, so leaving for on-demand now loses no more work than
    leaving then, and keeps the slack and the spot price those ticks would cost. Example: 0.5 h
    checkpoints, 0.1 h ticks, 0.05 h unsaved, 0.25 h of slack: two decisions later the slack is
    0.05 h, less than the tick it must cover, and that tick would end at 0.35 h of unsaved work,
    short of the checkpoint at 0.5: True. With 0.45 h of slack the tick that ends at 0.55 reaches
    the checkpoint first: False. False without a deadline.
    """
    if view.deadline_hours is None:
        return False
    cur = view
    while True:
        if not off_ondemand_is_safe(cur, keep=True):
            return True
        after = _checkpoint_after_tick(cur, keep=True)
        worked = max(0.0, cur.tick_hours - cur.overhead_left_hours)
        done = min(cur.work_total_hours, cur.work_done_hours + worked)
        if after > cur.checkpointed_hours + _EPS or done >= cur.work_total_hours - _EPS:
            return False  # this tick reaches the next checkpoint (or the end) with the guard satisfied
        cur = replace(
            cur,
            elapsed_hours=cur.elapsed_hours + cur.tick_hours,
            work_done_hours=done,
            overhead_left_hours=max(0.0, cur.overhead_left_hours - cur.tick_hours),
        )


def at_checkpoint(view: JobView) -> bool:
    """True when releasing the current node now loses no work."""
    return view.work_done_hours - view.checkpointed_hours <= _EPS


def _option(view: JobView, zone: str) -> SpotOption | None:
    for opt in view.zones:
        if opt.zone == zone:
            return opt
    return None


def _pick_home(view: JobView) -> str:
    """The home zone of a single-zone policy: cheapest available now, else cheapest; list order."""
    if not view.zones:
        return ""
    ranked = sorted(
        range(len(view.zones)),
        key=lambda i: (not view.zones[i].available, view.zones[i].price_per_hour, i),
    )
    return view.zones[ranked[0]].zone


def _home(view: JobView, memory: Memory, configured: str) -> tuple[str, Memory, bool]:
    """A single-zone policy's home zone (remembered, else ``configured``, else ``_pick_home``), the
    memory that remembers it, and whether spot is available there now."""
    home = memory.home_zone or configured or _pick_home(view)
    mem = memory if memory.home_zone == home else replace(memory, home_zone=home)
    opt = _option(view, home)
    return home, mem, opt is not None and opt.available


def _finished(view: JobView) -> bool:
    return view.work_done_hours >= view.work_total_hours - _EPS


# ---------------------------------------------------------------------------------------------
# Baselines.


@dataclass(frozen=True, slots=True)
class OnDemandOnly:
    """Always on-demand: the cost every saving is measured against."""

    name: str = "ondemand"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        return Step(ON_DEMAND, ("on-demand only",), memory)


def _work_left_from(view: JobView) -> float:
    """Work left if the job continues from where it would stand on its next placement: on-demand
    keeps its work; anything else restarts from the last checkpoint."""
    done = view.work_done_hours if view.current.kind is Kind.ON_DEMAND else view.checkpointed_hours
    return max(0.0, view.work_total_hours - done)


def _net_fires(view: JobView, restarts: float) -> bool:
    """True when on-demand must start now: after one more tick off it, ``restarts`` restarts plus
    the work left would no longer fit before the deadline (Can't Be Late's Safety Net rule, taken at
    the trace's ticks as the authors' simulator takes it)."""
    if view.deadline_hours is None:
        return False
    time_left = view.deadline_hours - view.elapsed_hours
    need = _work_left_from(view) + restarts * view.restart_hours
    if restarts >= 2:  # the 2d net: on-demand while the time left cannot hold two more restarts
        return need > time_left + _EPS
    return need > time_left - view.tick_hours + _EPS


def _checkpoint_within_tick(view: JobView) -> bool:
    """True at the first decision after a checkpoint: less than a tick of work is unsaved (work
    moves in fractions of a tick after a fractional restart, so a checkpoint rarely lands exactly on
    a decision; this is the least work a release can lose)."""
    return view.work_done_hours - view.checkpointed_hours < view.tick_hours - _EPS


def _working_spot(view: JobView) -> bool:
    return view.current.kind is Kind.SPOT and view.overhead_left_hours <= _EPS


@dataclass(frozen=True, slots=True)
class Greedy:
    """Can't Be Late's Greedy (Wu et al., "Can't Be Late: Optimizing Spot Instance Savings under
    Deadlines", NSDI '24; its Thrifty and Safety Net rules, restated in SkyNomad's §3.1) in one
    home zone.

    * Spot in the home zone whenever it is available; a spot node is kept until it is preempted.
    * No spot: *idle* (the Thrifty rule: pay nothing while the slack allows).
    * Safety net: when waiting one more tick would leave less than the work left (from the last
      checkpoint) plus one restart ``d`` before the deadline, on-demand — to the end. A spot node
      that is already working is kept (it makes progress as fast as on-demand would).

    ``home_zone`` "" picks the cheapest zone available at the first decision (list order on ties).
    Without a deadline: spot when available, else idle.
    """

    home_zone: str = ""
    name: str = "greedy"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        home, mem, spot_ok = _home(view, memory, self.home_zone)
        if mem.locked_ondemand:
            return Step(ON_DEMAND, ("safety net: on-demand to the end",), mem)
        if _net_fires(view, 1):
            if _working_spot(view) and spot_ok:
                return Step(view.current, ("safety net: keep the working spot node until preempted",), mem)
            if view.restart_hours <= _EPS and spot_ok:
                return Step(spot(home), ("safety net, no restart cost: spot",), mem)
            return Step(
                ON_DEMAND,
                ("safety net: time left < work left + a restart: on-demand to the end",),
                replace(mem, locked_ondemand=True),
            )
        if spot_ok:
            return Step(spot(home), (f"{home} spot available",), mem)
        return Step(WAIT, ("no spot: idle (Thrifty rule)",), mem)


@dataclass(frozen=True, slots=True)
class GreedySingleZone:
    """Spot in one home zone whenever it is available, else on-demand; deadline-unaware.

    Not Can't Be Late's Greedy (:class:`Greedy` is): that one idles when there is no spot.

    ``home_zone`` "" picks the cheapest zone available at the first decision (list order on ties).
    """

    home_zone: str = ""
    name: str = "greedy-ondemand"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        home, mem, spot_ok = _home(view, memory, self.home_zone)
        if spot_ok:
            return Step(spot(home), (f"{home} spot available",), mem)
        return Step(ON_DEMAND, (f"{home} spot unavailable: on-demand",), mem)


def region_of(zone: str) -> str:
    """The region a zone name belongs to: ``us-east-1a`` -> ``us-east-1``,
    ``us-central1-a`` -> ``us-central1``; names that look like neither are their own region."""
    if len(zone) >= 2 and zone[-1].isalpha() and zone[-2].isdigit():
        return zone[:-1]
    if len(zone) >= 3 and zone[-2] == "-" and zone[-1].isalpha():
        return zone[:-2]
    return zone


@dataclass(frozen=True, slots=True)
class EagerNextRegion:
    """SkyPilot managed jobs' ``EAGER_NEXT_REGION`` recovery with an on-demand fallback.

    Launch: cheapest available spot location (price, then list order), else on-demand.
    Preempted: cheapest available spot location outside the preempted region; else any
    available spot location; else on-demand. On-demand is kept to the end. Deadline-unaware.
    """

    ondemand_fallback: bool = True
    name: str = "eager-next-region"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        cur = view.current
        if cur.kind is Kind.ON_DEMAND:
            return Step(ON_DEMAND, ("on-demand is never preempted: keep it",), memory)
        if cur.kind is Kind.SPOT:
            return Step(cur, (f"{cur.zone} spot running",), memory)
        ranked = sorted(
            (i for i, o in enumerate(view.zones) if o.available),
            key=lambda i: (view.zones[i].price_per_hour, i),
        )
        if view.preempted:
            blocked = _region_of_zone(view, view.preempted_zone)
            elsewhere = [i for i in ranked if view.zones[i].region != blocked]
            if elsewhere:
                z = view.zones[elsewhere[0]].zone
                return Step(spot(z), (f"{view.preempted_zone} preempted: next region, {z} spot",), memory)
        if ranked:
            z = view.zones[ranked[0]].zone
            return Step(spot(z), (f"cheapest available spot: {z}",), memory)
        if self.ondemand_fallback:
            return Step(ON_DEMAND, ("no spot location launches: on-demand fallback",), memory)
        return Step(WAIT, ("no spot location launches: retry later",), memory)


def _region_of_zone(view: JobView, zone: str) -> str:
    opt = _option(view, zone)
    return opt.region if opt is not None else region_of(zone)


@dataclass(frozen=True, slots=True)
class UniformProgress:
    """Uniform Progress (Wu et al., "Can't Be Late: Optimizing Spot Instance Savings under
    Deadlines", NSDI '24) in one home zone, with the rules as the paper and its authors' simulator
    state them. ``C`` work, ``D`` deadline, ``c(t)`` progress, ``d`` the restart overhead:

    1. Spot in the home zone whenever available; a spot node is kept until it is preempted.
    2. No spot and behind the uniform line (``c(t) < C t / D``): on-demand; else idle.
    3. On on-demand, stay while there is no spot or while ``c(t) < C (t + 2d) / D`` (the
       hysteresis): on-demand is left *only for spot*, never for idle.
    4. Safety nets: idle or on-demand while the time left is less than the work left plus ``2d``:
       on-demand; when even one restart no longer fits after another tick: on-demand, except that
       a working spot node is kept until it is preempted.

    Adaptation to this project's job model (the paper's loses no work at a switch): on-demand is
    left for spot only at the first decision after a checkpoint (less than a tick of work unsaved),
    never mid-interval (with checkpoints on notice that is every tick: the paper's rule unchanged).
    The 2d net counts the work left from where the job would restart (its checkpoint off on-demand).
    Without a deadline it is "spot when available, else wait".
    """

    home_zone: str = ""
    name: str = "uniform-progress"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        home, mem, spot_ok = _home(view, memory, self.home_zone)
        cur = view.current
        deadline = view.deadline_hours
        if deadline is None or deadline <= 0:
            if spot_ok:
                return Step(spot(home), (f"{home} spot available",), mem)
            return Step(WAIT, ("no deadline: wait for spot",), mem)
        t, d, cp = view.elapsed_hours, view.restart_hours, view.work_done_hours
        rate = view.work_total_hours / deadline
        behind = cp < t * rate - _EPS
        choice, why = (spot(home), f"{home} spot available") if spot_ok else (WAIT, "no spot, not behind")
        if behind and not spot_ok:
            choice, why = ON_DEMAND, "no spot and c(t) < C t / D: on-demand"
        if cur.kind is Kind.ON_DEMAND and (not spot_ok or cp < (t + 2 * d) * rate - _EPS):
            choice, why = ON_DEMAND, "hysteresis: on-demand until spot and c(t) >= C (t + 2d) / D"
        if cur.kind is not Kind.SPOT and _net_fires(view, 2):
            choice, why = ON_DEMAND, "safety net: time left < work left + 2d: on-demand"
        if _net_fires(view, 1):
            if _working_spot(view) and spot_ok:
                choice, why = cur, "safety net: keep the working spot node until preempted"
            elif d <= _EPS and spot_ok:
                choice, why = spot(home), "safety net, no restart cost: spot"
            else:
                choice, why = ON_DEMAND, "safety net: time left < work left + d: on-demand"
        if cur.kind is Kind.ON_DEMAND and choice.kind is Kind.SPOT and not _checkpoint_within_tick(view):
            choice, why = ON_DEMAND, "on-demand until its next checkpoint (leaving now loses work)"
        return Step(choice, (why,), mem)


@dataclass(frozen=True, slots=True)
class UniformProgressEager:
    """This project's earlier adaptation of Uniform Progress (not the paper's rules; see the
    module docstring, ``up-eager``). Kept as a deadline-safe single-zone variant.

    Without a deadline it degenerates to "spot when available, else wait".
    """

    home_zone: str = ""
    name: str = "up-eager"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        home, mem, spot_ok = _home(view, memory, self.home_zone)
        cur = view.current
        d = view.restart_hours
        t = view.elapsed_hours
        deadline = view.deadline_hours
        if mem.locked_ondemand:
            return Step(ON_DEMAND, ("safety net: on-demand to the end",), mem)
        if deadline is None:
            if spot_ok:
                return Step(spot(home), (f"{home} spot available",), mem)
            return Step(WAIT, ("no deadline: wait for spot",), mem)
        # (4) safety net: time left after this tick < work left (from checkpoint) + 2d
        keep = cur.kind is Kind.SPOT and spot_ok
        ckpt = _checkpoint_after_tick(view, keep=keep)
        time_left = deadline - t - view.tick_hours
        if cur.kind is not Kind.ON_DEMAND and time_left + _EPS < (view.work_total_hours - ckpt + 2 * d):
            return Step(
                ON_DEMAND,
                ("safety net: time left < work left + 2 restarts: on-demand to the end",),
                replace(mem, locked_ondemand=True),
            )

        def ep(at: float) -> float:
            return view.work_total_hours * min(1.0, at / deadline) if deadline > 0 else math.inf

        cp = view.work_done_hours
        if cur.kind is Kind.ON_DEMAND:
            # (3) hysteresis: stay on on-demand until cp >= ep(t + 2d)
            if cp + _EPS < ep(t + 2 * d):
                return Step(ON_DEMAND, ("hysteresis: cp < ep(t+2d), stay on-demand",), mem)
            if spot_ok:
                return Step(spot(home), ("ahead of ep(t+2d): back to spot",), mem)
            if at_checkpoint(view):
                return Step(WAIT, ("ahead of ep(t+2d), no spot: idle",), mem)
            return Step(ON_DEMAND, ("ahead, no spot: on-demand until a checkpoint",), mem)
        # (2) taking risks: spot whenever available, kept until preempted
        if spot_ok:
            return Step(spot(home), (f"{home} spot available",), mem)
        # (1) idle and behind the uniform line: on-demand
        if cp + _EPS < ep(t):
            return Step(ON_DEMAND, ("idle and cp < ep(t): on-demand to catch up",), mem)
        return Step(WAIT, ("idle, ahead of the uniform line: wait for spot",), mem)


# ---------------------------------------------------------------------------------------------
# The project's policy.


@dataclass(frozen=True, slots=True)
class MultiCloud:
    """Cheapest safe spot across every zone and cloud, on-demand only when slack runs out.

    Slack is :func:`ondemand_slack`; a *reserve* is one restart plus one checkpoint interval
    (the most one preemption can cost). Parameters:

    ``keep_share`` — with no spot anywhere, wait only while the slack left after the tick is at
    least this share of the initial slack, scaled by the share of the time to the deadline still
    ahead (the uniform line of Uniform Progress, applied to slack), at least ``wait_reserves``
    reserves, and at least ``keep_per_work`` hours per hour of work left (preemptions keep coming
    while the work lasts: slack spent waiting now is not there to absorb them later);
    ``back_reserves`` — leave on-demand for spot only while the slack after the restart is still
    at least this many reserves (on-demand keeps slack constant, so this is what lets an
    on-demand stint be a bridge rather than the end);
    ``min_payback`` — switch from on-demand to spot (or to a cheaper spot zone) only when the
    saving over the remaining work is more than this multiple of the switch's cost
    (:func:`_switch_cost`; a saving of exactly that multiple keeps the current placement);
    ``prefer`` — among equally cheap zones, ``"longest-up"`` or ``"newest-up"``;
    ``hazard_weight`` — how much a zone's observed interruption rate counts against it (see
    :func:`_best_spot`; 0 ignores it);
    ``move_min_uptime_hours`` / ``back_min_uptime_hours`` — a zone must have been up this long
    before the job moves to it for price / leaves on-demand for it (a zone that just came
    back tends to flap);
    ``free_wait_share`` — after losing its node, when the only spot on offer is in another region
    (a start there pays ``egress_usd`` to carry the checkpoint) while the checkpoint's own region
    has spot zones that are down, wait for one of them to return for up to
    :func:`free_wait_patience` hours (this share of the slack beyond what the wait rule keeps,
    spread over the preemptions expected in the rest of the job) instead of paying the egress
    at once; 0 moves at once (the rule before it existed). Without egress it never applies;
    ``leave_before_cut`` — on a spot node that is up, go on-demand at once when the deadline guard
    will force the job off it before its work reaches the next checkpoint or the end
    (:func:`guard_cuts_segment`): the work until then would be rolled back anyway. False: keep the
    node until the guard fires (the rule before it existed);
    ``stochastic`` — for a job with periodic checkpoints (an interval longer than a tick), while
    its slack is at most ``stochastic_slack_per_work`` hours per hour of work left, the three mode
    decisions (keep spot or go on-demand; from on-demand back to spot or not; when idle: spot,
    on-demand or wait) are taken by the stochastic programme of :mod:`policy.stochastic` on the
    availability model :func:`dp_point` estimates from the job's own past (``stochastic_prior_rate``
    interruptions per hour and ``stochastic_prior_down_hours`` of mean downtime as priors,
    ``stochastic_rate_scale`` on the rate) instead of the reserve rules above; the deadline guard,
    the zone choice, moves between zones and the free wait stay as they are. On notice nothing is
    lost at a preemption and the rules stay. Off by default: tune_policies.py --grid medium chose it
    on train (periodic 25.8% -> 25.3% mean gap), but held out it was worse (12.0% -> 12.6%), so it is
    not shipped on (benchmarks/README.md, tune_policies);
    ``stochastic_age`` — with ``stochastic``, the programme's spot model is age-conditioned
    (:func:`age_model`, :func:`policy.stochastic.solve_age`): the chance of losing a zone depends on
    how long it has been up and the chance an outage ends on how long it has lasted, in coarse
    buckets (:data:`AGE_EDGES_HOURS`), Nelson-Aalen estimates from the lifetimes and outages the job
    has seen, shrunk towards the memoryless rates by ``stochastic_age_prior_hours`` hours of
    exposure. Off by default: on the medium grid's train half it was worse than the memoryless
    programme (periodic 25.3% -> 25.8-26.0%; benchmarks/README.md, the stochastic subsection);
    ``stochastic_age_history_hours`` — with ``stochastic_age``, > 0 seeds the age model from the
    zones' trailing availability history in ``JobView.history`` (:class:`SpotHistory`) instead of
    what the job has seen, so every bucket has data from the first decision; the value is the
    window the caller is asked to give (``simulate(history_window_hours=...)``: tune_policies.py
    passes it); a view without a history falls back on the job's own past. 0 (default): off — on
    the train half the best history setting (24 h, prior 8 h) was worse than the rules (full train
    periodic 29.0% vs 28.4%; benchmarks/README.md, the history-seeded subsection);
    ``stochastic_age_history_zone`` — with it, the uptime buckets are estimated from the priced
    zone's own up-runs in the history, not every zone's pooled (outages stay pooled: "no zone up");
    ``young_zone_hours`` / ``young_loss_chance`` — the young-zone rule (issue 12 item 6; 0: off, the
    default): a zone whose current up-run is younger than ``young_zone_hours`` (:func:`zone_ages`) is
    taken to lose the job's node within the next checkpoint interval with ``young_loss_chance`` more
    chance than an older zone (a zone that just came back tends to flap). For a job with periodic
    checkpoints (an interval longer than a tick) that has two effects: (1) choosing where to run
    (after a preemption, from idle, from on-demand) a young zone is ranked at its price times
    :func:`young_surcharge` — the hours a useful hour costs once that chance of rolling back an
    interval and paying a restart is counted —, so an older zone up to that much dearer is taken
    first; (2) within the first tick after a checkpoint on a working spot node in a young zone, the
    job moves to the cheapest older zone (age at least ``young_zone_hours``, ranked as in (1)) when the
    expected loss of staying one more interval, ``young_loss_chance * (checkpoint + restart) *
    price``, exceeds the move's cost, :func:`_switch_cost` plus the price difference over one
    interval, and the move is as safe as a price move (``spot_run_viable``, ``back_reserves``). On
    notice (nothing lost at a preemption) it does nothing. Off by default: chosen on train (A 1 h, q
    0.4; full train half periodic 28.4% -> 27.2%), held out it was worse (12.0% -> 12.2%;
    benchmarks/README.md, the young-zone subsection).
    """

    # Chosen by benchmarks/tune_policies.py --quick --passes 2 --checkpoint-gb 50 on the first half in
    # time of every shared trace (train scenarios only, egress charged for 50 GB checkpoints; coordinate
    # descent, results/tune_policies_50gb.md), evaluated on the second half: held-out mean gap to the
    # optimum 7.5% periodic, 3.8% on notice, no misses. Then back_reserves 0.5 -> 0 and keep_per_work
    # 0.15 -> 0.25, chosen by tune_policies.py --grid medium --only back_reserves,min_payback,
    # hazard_weight,keep_per_work --passes 1 --checkpoint-gb 50 (train: every job length and deadline
    # factor; results/tune_policies_medium_50gb.md); on the full grid's held-out half: 12.0% periodic
    # (target 10%: missed), 4.2% on notice, no misses (results/tune_policies_full_50gb.md). The
    # defaults before issue 12 item 6 (keep_share 0.6, keep_per_work 0.25, back_reserves 0,
    # hazard_weight 0, no free wait) were tuned on all of the traces, before any split existed.
    keep_share: float = 0.6
    wait_reserves: float = 1.5
    back_reserves: float = 0.0
    min_payback: float = 2.0
    prefer: str = "longest-up"
    hazard_weight: float = 0.5
    move_min_uptime_hours: float = 0.5
    back_min_uptime_hours: float = 0.0
    keep_per_work: float = 0.25
    free_wait_share: float = 4.0
    leave_before_cut: bool = False
    stochastic: bool = False
    stochastic_prior_rate: float = 0.1
    stochastic_prior_down_hours: float = 1.0
    stochastic_rate_scale: float = 1.0
    stochastic_slack_per_work: float = 0.3
    stochastic_age: bool = False
    stochastic_age_prior_hours: float = 0.5  # preferred to 2 h on the medium train half (25.8 vs 26.0%)
    stochastic_age_history_hours: float = 0.0
    stochastic_age_history_zone: bool = False
    young_zone_hours: float = 0.0
    young_loss_chance: float = 0.4
    name: str = "multicloud"

    def _young(self, view: JobView, mem: Memory) -> tuple[float, ...]:
        """Per zone of ``view.zones``, the factor on its price of the young-zone rule (all 1 when off)."""
        if self.young_zone_hours <= 0 or view.checkpoint_hours <= view.tick_hours + _EPS:
            return ()
        f = young_surcharge(view, self.young_loss_chance)
        return tuple(f if a < self.young_zone_hours - _EPS else 1.0 for a in zone_ages(view, mem))

    def _dp(self, view: JobView, mem: Memory, opt: SpotOption) -> DpPoint | None:
        if not self.stochastic or view.checkpoint_hours <= view.tick_hours + _EPS:
            return None  # on notice nothing is lost at a preemption: the rules stay
        if ondemand_slack(view) > self.stochastic_slack_per_work * _work_left_from(view) + _EPS:
            return None
        return dp_point(view, mem, opt, prior_rate=self.stochastic_prior_rate,
                        prior_down_hours=self.stochastic_prior_down_hours,
                        rate_scale=self.stochastic_rate_scale,
                        age_prior_hours=self.stochastic_age_prior_hours if self.stochastic_age else None,
                        age_history=self.stochastic_age_history_hours > 0,
                        age_history_zone=self.stochastic_age_history_zone)

    def decide(self, view: JobView, memory: Memory) -> Step:
        mem = _track_idle(view, _track_uptime(view, memory))
        if self.stochastic:
            mem = _track_avail(view, mem, memory)
            if self.stochastic_age:
                mem = _track_ages(view, mem, memory)
        if _finished(view):
            return Step(WAIT, ("job finished",), mem)
        cur = view.current
        slack = ondemand_slack(view)
        reserve = reserve_hours(view)
        young = self._young(view, mem)
        best = _best_spot(view, mem, newest=self.prefer == "newest-up", hazard_weight=self.hazard_weight,
                          factors=young)
        if cur.kind is Kind.SPOT:
            opt = _option(view, cur.zone)
            if opt is not None and opt.available:
                if not off_ondemand_is_safe(view, keep=True):
                    return Step(
                        ON_DEMAND,
                        (f"slack {slack:.2f}h cannot absorb another preemption: on-demand",),
                        mem,
                    )
                dp = self._dp(view, mem, opt) if view.overhead_left_hours <= _EPS else None
                if dp is not None:
                    keep_v = dp.keep_spot()
                    leave_v = dp.spot_leave()
                    if leave_v < keep_v - 1e-6:
                        return Step(
                            ON_DEMAND,
                            (f"stochastic programme: on-demand now expects {leave_v:.2f}, keeping "
                             f"{cur.zone} spot {keep_v:.2f} (on-demand units)",),
                            mem,
                        )
                if dp is None and self.leave_before_cut and guard_cuts_segment(view):
                    return Step(
                        ON_DEMAND,
                        (f"slack {slack:.2f}h runs out before the next checkpoint: on-demand now, "
                         "not after spending more spot time that the guard would throw away",),
                        mem,
                    )
                if (
                    dp is None
                    and at_checkpoint(view)
                    and view.overhead_left_hours <= _EPS
                    and not spot_run_viable(view, keep=True)
                ):
                    return Step(
                        ON_DEMAND,
                        (f"slack {slack:.2f}h will not last to the next checkpoint: on-demand now",),
                        mem,
                    )
                leave = self._leave_young(view, mem, opt, young, slack, reserve) if dp is None else None
                if leave is not None:
                    return Step(leave[0], (leave[1],), mem)
                if (
                    best is not None
                    and best.zone != cur.zone
                    and _checkpoint_within_tick(view)
                    and _up_for(view, mem, best.zone) >= self.move_min_uptime_hours
                ):
                    gain = (opt.price_per_hour - best.price_per_hour) * _stay_hours(view, best)
                    cost = _switch_cost(view, best)
                    if (
                        gain > 0
                        and gain > self.min_payback * cost + _EPS
                        and spot_run_viable(view, keep=False)
                        and slack - view.restart_hours >= self.back_reserves * reserve - _EPS
                    ):
                        return Step(
                            spot(best.zone),
                            (
                                f"{best.zone} spot cheaper by {gain:.2f} USD over the job"
                                f"{_egress_note(best)}: move",
                            ),
                            mem,
                        )
                return Step(cur, (f"{cur.zone} spot running, slack {slack:.2f}h",), mem)
        if cur.kind is Kind.ON_DEMAND:
            if best is None or not _checkpoint_within_tick(view):
                return Step(ON_DEMAND, ("stay on-demand until spot and a checkpoint",), mem)
            gain = (view.ondemand_price_per_hour - best.price_per_hour) * remaining_work(view)
            cost = _switch_cost(view, best)
            dp = self._dp(view, mem, best)
            if dp is not None:
                go = dp.start_spot()
                stay = dp.ondemand_stay(True)
                if (
                    go < stay - 1e-6
                    and spot_run_viable(view, keep=False)
                    and off_ondemand_is_safe(view, keep=False)
                ):
                    return Step(
                        spot(best.zone),
                        (f"stochastic programme: {best.zone} spot expects {go:.2f}, on-demand "
                         f"{stay:.2f} (on-demand units){_egress_note(best)}: back to spot",),
                        mem,
                    )
                return Step(ON_DEMAND, (f"stochastic programme: stay on-demand ({stay:.2f} <= {go:.2f})",),
                            mem)
            if (
                slack - view.restart_hours >= self.back_reserves * reserve - _EPS
                and gain > self.min_payback * cost
                and spot_run_viable(view, keep=False)
                and off_ondemand_is_safe(view, keep=False)
                and _up_for(view, mem, best.zone) >= self.back_min_uptime_hours
            ):
                return Step(
                    spot(best.zone),
                    (
                        f"slack {slack:.2f}h allows it and {best.zone} spot pays"
                        f"{_egress_note(best)}: back to spot",
                    ),
                    mem,
                )
            return Step(ON_DEMAND, (f"slack {slack:.2f}h: stay on-demand",), mem)
        # Idle or just preempted.
        lost = f"{view.preempted_zone} preempted; " if view.preempted else ""
        keep = max(
            self.wait_reserves * reserve,
            self.keep_share * _uniform_slack(view),
            self.keep_per_work * remaining_work(view),
        )
        if (
            best is not None
            and best.egress_usd > 0
            and self.free_wait_share > 0
            and off_ondemand_is_safe(view, keep=False)
        ):
            home = [o for o in view.zones if o.egress_usd <= 0]
            if home and not any(o.available for o in home):
                patience = free_wait_patience(view, home, spare=slack - keep, share=self.free_wait_share)
                waited = max(0.0, view.elapsed_hours - mem.idle_since)
                if waited + view.tick_hours <= patience + _EPS:
                    return Step(
                        WAIT,
                        (
                            f"{lost}spot only in another region (egress {best.egress_usd:.2f} USD): wait for "
                            f"the checkpoint's region, {waited:.2f}h of {patience:.2f}h waited",
                        ),
                        mem,
                    )
        if best is not None and best.egress_usd > 0 and (
            (view.ondemand_price_per_hour - best.price_per_hour) * _stay_hours(view, best)
            <= best.egress_usd + view.restart_hours * best.price_per_hour
        ):
            # carrying the checkpoint there saves no more than its egress and restart (a tie: not carried)
            best = None
        ref = best if best is not None else _cheapest_zone(view)
        dp = self._dp(view, mem, ref) if ref is not None else None
        if dp is not None:
            up = best is not None
            od_v = dp.start_ondemand(up)
            wait_v = dp.wait(up) if off_ondemand_is_safe(view, keep=False) else math.inf
            sp_v = (dp.start_spot()
                    if best is not None and off_ondemand_is_safe(view, keep=False)
                    and spot_run_viable(view, keep=False) else math.inf)
            if best is not None and sp_v <= min(od_v, wait_v) and sp_v < math.inf:
                why = f"{lost}stochastic programme: {best.zone} spot expects {sp_v:.2f}{_egress_note(best)}"
                return Step(spot(best.zone), (why,), mem)
            if wait_v < od_v and wait_v < math.inf:
                return Step(WAIT, (f"{lost}stochastic programme: waiting expects {wait_v:.2f}, "
                                   f"on-demand {od_v:.2f}",), mem)
            return Step(ON_DEMAND, (f"{lost}stochastic programme: on-demand expects {od_v:.2f}",), mem)
        if best is not None and off_ondemand_is_safe(view, keep=False) and spot_run_viable(view, keep=False):
            why = f"{lost}cheapest available spot: {best.zone}{_egress_note(best)}"
            return Step(spot(best.zone), (why,), mem)
        if best is None and off_ondemand_is_safe(view, keep=False) and slack - view.tick_hours >= keep - _EPS:
            return Step(WAIT, (f"{lost}no spot anywhere, slack {slack:.2f}h > {keep:.2f}h kept: wait",), mem)
        return Step(ON_DEMAND, (f"{lost}slack {slack:.2f}h too low to wait for spot: on-demand",), mem)


    def _leave_young(
        self, view: JobView, mem: Memory, opt: SpotOption, young: tuple[float, ...], slack: float,
        reserve: float,
    ) -> tuple[Choice, str] | None:
        """Part (2) of the young-zone rule (class docstring): the move and its reason, or None."""
        if not young or view.overhead_left_hours > _EPS or not _checkpoint_within_tick(view):
            return None
        i = next(k for k, o in enumerate(view.zones) if o.zone == opt.zone)
        if young[i] <= 1.0:
            return None  # the job's own zone is not young
        older = tuple(math.inf if f > 1.0 else f for f in young)  # young zones out of the running
        cand = _best_spot(view, mem, newest=self.prefer == "newest-up", hazard_weight=self.hazard_weight,
                          factors=older)
        if cand is None:
            return None
        loss = self.young_loss_chance * (view.checkpoint_hours + view.restart_hours) * opt.price_per_hour
        cost = _switch_cost(view, cand) + (cand.price_per_hour - opt.price_per_hour) * view.checkpoint_hours
        if (
            loss > cost + _EPS
            and spot_run_viable(view, keep=False)
            and slack - view.restart_hours >= self.back_reserves * reserve - _EPS
        ):
            return spot(cand.zone), (
                f"{opt.zone} came back {zone_ages(view, mem)[i]:.2f}h ago: expected loss "
                f"{loss:.2f} USD over the next interval > move {cost:.2f} USD{_egress_note(cand)}: "
                f"move to {cand.zone}"
            )
        return None


def young_surcharge(view: JobView, chance: float) -> float:
    """The factor on a young zone's price (``MultiCloud.young_zone_hours``): with ``chance`` of
    losing the node within the next checkpoint interval ``c``, each useful hour costs ``1 + chance *
    (c + restart) / c`` hours (the interval's work rolled back and a restart paid again). Example:
    chance 0.4, 30-minute interval, 6-minute restart: 1 + 0.4 * 0.6 / 0.5 = 1.48."""
    c = view.checkpoint_hours
    if c <= 0:
        return 1.0
    return 1.0 + chance * (c + view.restart_hours) / c


def zone_ages(view: JobView, memory: Memory) -> tuple[float, ...]:
    """Per zone of ``view.zones``, hours its current up-run has lasted (0 while it is down).

    From ``view.history.born`` when the view has a history (:class:`SpotHistory`: ``-inf``, up since
    before the window, is ``inf``), else from ``memory.up_since`` (the job's own observation, as
    :func:`_track_uptime` keeps it): a zone already up at the job's first decision (``up_since`` at
    or before 0) has an unknown start and counts as old (``inf``); a zone first seen coming up later
    is ``elapsed - up_since`` old."""
    now = view.elapsed_hours
    h = view.history
    out: list[float] = []
    for i, opt in enumerate(view.zones):
        if not opt.available:
            out.append(0.0)
        elif h is not None and i < len(h.born):
            out.append(max(0.0, now - h.born[i]))  # born -inf: inf
        elif i < len(memory.up_since) and memory.up_since[i] > 0.0:
            out.append(max(0.0, now - memory.up_since[i]))
        else:
            out.append(math.inf)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DpPoint:
    """A job's state on the grid of its stochastic programme (:mod:`policy.stochastic`): the solved
    tables, segments left ``w`` from the last checkpoint, slack ``s`` in units (time left minus work
    left from the checkpoint, restart not counted) and ``done`` units of unsaved work."""

    sol: Solution | AgeSolution
    w: int
    s: float
    done: int
    up_state: int = 1
    down_state: int = 0

    def keep_spot(self) -> float:
        """Expected cost of keeping the spot node (at a boundary, or ``done`` units into a segment)."""
        if isinstance(self.sol, AgeSolution):
            if self.done <= 0:
                return self.sol.spot_keep(self.w, self.s, self.up_state)
            return self.sol.mid_segment_keep(self.w, self.s, self.done, self.up_state)
        if self.done <= 0:
            return self.sol.spot_keep(self.w, self.s)
        return self.sol.mid_segment_keep(self.w, self.s, self.done)

    def spot_leave(self) -> float:
        """Expected cost of leaving spot for on-demand now."""
        if isinstance(self.sol, AgeSolution):
            return self.sol.spot_leave(self.w, self.s, self.up_state)
        return self.sol.spot_leave(self.w, self.s)

    def start_spot(self) -> float:
        """Expected cost of starting spot (the zone priced here) now."""
        if isinstance(self.sol, AgeSolution):
            return self.sol.start_spot(self.w, self.s, self.up_state)
        return self.sol.start_spot(self.w, self.s)

    def ondemand_stay(self, up: bool) -> float:
        """Expected cost of another on-demand segment, spot up (``up``) or not."""
        if isinstance(self.sol, AgeSolution):
            return self.sol.ondemand_stay(self.w, self.s, self.up_state if up else self.down_state)
        return self.sol.ondemand_stay(self.w, self.s, up)

    def start_ondemand(self, up: bool) -> float:
        """Expected cost of starting on-demand now from idle."""
        if isinstance(self.sol, AgeSolution):
            return self.sol.start_ondemand(self.w, self.s, self.up_state if up else self.down_state)
        return self.sol.start_ondemand(self.w, self.s, up)

    def wait(self, up: bool) -> float:
        """Expected cost of holding nothing for one unit."""
        if isinstance(self.sol, AgeSolution):
            return self.sol.wait(self.w, self.s, self.up_state if up else self.down_state)
        return self.sol.wait(self.w, self.s, up)


_DP_MAX_SLACK_UNITS = 64
_DP_MAX_CELLS = 8000
_PRIOR_HOURS = 12.0


def _bucket(x: float, base: float = 1.25) -> float:
    """``x`` (> 0) rounded to a power of ``base``: the model's estimates move in steps, so the
    memoised programme is re-solved only when an estimate moves by a step."""
    return float(base ** round(math.log(x) / math.log(base)))


def dp_point(
    view: JobView, memory: Memory, opt: SpotOption, *, prior_rate: float, prior_down_hours: float,
    rate_scale: float = 1.0, age_prior_hours: float | None = None, age_history: bool = False,
    age_history_zone: bool = False,
) -> DpPoint | None:
    """The job's :class:`DpPoint` priced for spot in ``opt``, or None when the programme does not
    apply (no deadline, no slack at submission, or a grid above ``_DP_MAX_CELLS``).

    Grid: the unit is the fewest ticks ``d`` that keep the initial slack within
    ``_DP_MAX_SLACK_UNITS`` units; a checkpoint interval is ``seg = round(checkpoint / unit)`` units
    (at least 1; the segments left are counted on the real interval, or on one unit when checkpoints
    come more often, as on notice: a segment of one unit loses nothing when the zone is lost at its
    end). Model, from the job's past only: ``fail`` per unit ``1 - exp(-rate * unit)``, the
    rate ``opt.interruptions_per_hour`` when ``opt`` is up (the zone's trailing history), else the
    rate pooled over every zone the job has seen, ``(drops + prior_rate * 12) / (up_ticks * tick +
    12)`` (``prior_rate`` weighted as 12 hours of history), times ``rate_scale``, at least 0.01
    per hour; ``back`` per tick ``(returns + 1) / (down_ticks + prior_down_hours / tick)``
    (one return per ``prior_down_hours`` of prior downtime), per unit ``1 - (1 - back)^d``;
    ``alt`` ``(losses_alt + 1) / (losses + 2)``. Rates move in steps of 1.25x, prices in 0.02 of
    the on-demand price.

    With ``age_prior_hours`` (not None) the model is age-conditioned (:func:`age_model`, solved by
    :func:`policy.stochastic.solve_age`): the two rates above become the priors of each age
    bucket's rate, worth ``age_prior_hours`` hours of exposure; with ``age_history`` as well, its
    samples are ``view.history``'s (the zones' trailing history) when the view has one, the up-runs
    pooled over the zones, or ``opt``'s own with ``age_history_zone``."""
    if view.deadline_hours is None or view.tick_hours <= 0 or view.ondemand_price_per_hour <= 0:
        return None
    th = view.tick_hours
    slack0 = (view.deadline_hours - view.work_total_hours) / th
    if slack0 < 1 or view.checkpoint_hours <= 0:
        return None
    d = max(1, math.ceil(slack0 / _DP_MAX_SLACK_UNITS - 1e-9))
    unit = d * th
    seg = max(1, round(view.checkpoint_hours / unit))
    seg_h = max(view.checkpoint_hours, unit)  # checkpoints within a unit: a segment is one unit
    segments = max(1, math.ceil(view.work_total_hours / seg_h - 1e-9))
    last = min(seg, max(1, math.ceil((view.work_total_hours - (segments - 1) * seg_h) / unit - 1e-9)))
    top = min(_DP_MAX_SLACK_UNITS, math.floor(slack0 / d + 1e-9))
    if segments * (top + 1) > _DP_MAX_CELLS:
        return None
    pooled = (memory.drops + prior_rate * _PRIOR_HOURS) / (memory.up_ticks * th + _PRIOR_HOURS)
    rate = opt.interruptions_per_hour if opt.available and opt.interruptions_per_hour is not None else pooled
    rate = _bucket(max(rate * rate_scale, 0.01))
    back_tick = (memory.returns + 1.0) / (memory.down_ticks + max(prior_down_hours, th) / th)
    back = 1.0 - (1.0 - min(1.0, _bucket(back_tick))) ** d
    alt = round((memory.losses_alt + 1.0) / (memory.losses + 2.0), 1)
    problem = Problem(
        segments=segments, seg=seg, last=last, slack=top,
        restart=max(view.restart_hours / unit, 0.01),
        fail=1.0 - math.exp(-rate * unit), back=back, alt=alt,
        price=round(opt.price_per_hour / view.ondemand_price_per_hour / 0.02) * 0.02,
        extra=round(opt.egress_usd / (view.ondemand_price_per_hour * unit) / 0.25) * 0.25,
    )
    left = view.work_total_hours - view.checkpointed_hours
    w = max(0, math.ceil(left / seg_h - 1e-9))
    s = (view.deadline_hours - view.elapsed_hours - left) / unit
    done = max(0, round((view.work_done_hours - view.checkpointed_hours) / unit))
    if age_prior_hours is None:
        return DpPoint(solve(problem), w, s, done)
    back_rate = -math.log(max(1e-9, 1.0 - min(1.0 - 1e-9, back_tick))) / th
    aged = age_model(view, memory, opt, unit=unit, prior_up_rate=rate, prior_back_rate=back_rate,
                     prior_hours=age_prior_hours, history=view.history if age_history else None,
                     history_zone=age_history_zone)
    age_problem = AgeProblem(  # the rows up to the segments left: solve_age fills no more
        segments=min(w, segments), seg=seg, last=last, slack=top, restart=problem.restart,
        price=problem.price,
        up_fail=aged.up_fail, up_adv=aged.up_adv, down_back=aged.down_back, down_adv=aged.down_adv,
        alt=alt, alt_state=len(aged.down_back) + aged.alt_bucket, extra=problem.extra,
    )
    return DpPoint(solve_age(age_problem), w, s, done, up_state=age_problem.up_state(aged.up_bucket),
                   down_state=age_problem.down_state(aged.down_bucket))


AGE_EDGES_HOURS = (0.25, 1.0, 4.0)
"""The age buckets of the age-conditioned model, for uptime and downtime alike: under 15 min,
15 min to 1 h, 1 to 4 h, over 4 h (the bench_fleet probation finding: a zone's hazard falls
tenfold or more between 5-10 min and 2 h after it returns)."""


@dataclass(frozen=True, slots=True)
class AgeModel:
    """Per-unit probabilities of the age-conditioned spot chain (:class:`policy.stochastic.AgeProblem`)
    and where the job is on it: the priced zone's uptime bucket, the outage's downtime bucket, and
    the bucket of the zone a preemption would fall back on."""

    up_fail: tuple[float, ...]
    up_adv: tuple[float, ...]
    down_back: tuple[float, ...]
    down_adv: tuple[float, ...]
    up_bucket: int
    down_bucket: int
    alt_bucket: int


def age_bucket(age_hours: float, edges: Sequence[float] = AGE_EDGES_HOURS) -> int:
    """The bucket of ``age_hours``: the number of edges at or below it (``inf``: the last)."""
    return sum(1 for e in edges if age_hours >= e - _EPS)


def bucket_rates(
    failures: Sequence[float], censored: Sequence[float], *, prior_rate: float, prior_hours: float,
    edges: Sequence[float] = AGE_EDGES_HOURS,
) -> tuple[float, ...]:
    """Per age bucket ``(a, b]`` of ``edges``, the event rate per hour: the Nelson-Aalen hazard of
    the samples (:func:`_hazard_knots`: ``failures`` ended in the event, ``censored`` were still
    running) spread over the bucket's observed span, ``h = (H(min(b, T)) - H(a)) / (min(b, T) - a)``
    with ``T`` the longest sample, shrunk towards ``prior_rate`` by exposure:
    ``(E h + prior_hours prior_rate) / (E + prior_hours)``, ``E`` the hours the samples spent in
    the bucket. Example: failures 0.1, 0.2 and 2 h, nothing censored, edges (0.25, 1), no prior:
    bucket 0: ``H(0.25) = 1/3 + 1/2``, span 0.25, ``E = 0.1 + 0.2 + 0.25 = 0.55``: 3.33 per hour;
    bucket 1: no failure, ``E = 0.75``: 0; bucket 2 ``(1, inf)``: ``H(2) - H(1) = 1``, span 1: 1.0."""
    samples = (*failures, *censored)
    longest = max(samples, default=0.0)
    knots = _hazard_knots(failures, censored)
    bounds = (0.0, *edges, math.inf)
    out = []
    for a, b in pairwise(bounds):
        end = min(b, longest)
        exposure = sum(max(0.0, min(x, b) - a) for x in samples)
        h = (_cum_hazard(knots, end) - _cum_hazard(knots, a)) / (end - a) if end > a else 0.0
        if exposure + prior_hours <= 0:
            out.append(prior_rate)
        else:
            out.append((exposure * h + prior_hours * prior_rate) / (exposure + prior_hours))
    return tuple(out)


def age_model(
    view: JobView, memory: Memory, opt: SpotOption, *, unit: float, prior_up_rate: float,
    prior_back_rate: float, prior_hours: float, history: SpotHistory | None = None,
    history_zone: bool = False,
) -> AgeModel:
    """The age-conditioned spot model, estimated online from what the job has seen (``memory``,
    :func:`_track_ages`): per uptime bucket the hazard of losing a zone (:func:`bucket_rates` over
    the zones' lifetimes, pooled, the open runs censored; prior ``prior_up_rate``), per downtime
    bucket the rate at which an outage ends (over the outages seen, the open one censored; prior
    ``prior_back_rate``), both per hour and turned into per-unit probabilities
    ``1 - exp(-rate * unit)`` (rates in steps of 2x, so the memoised programme is re-solved only
    when one moves by a step); a bucket ``W`` hours wide is left with probability ``min(1, unit / W)``
    per unit. The priced zone's bucket is its age (``-inf`` born, up when first seen: the last
    bucket, a zone found up has most likely been up a while); with no zone up, the outage's age.
    A preemption falls back on the oldest other zone up now (bucket 0 if none).

    With ``history`` (a :class:`SpotHistory` with one ``born`` per zone) the samples, the zones'
    births and the outage's start are the trailing history's instead of what the job has seen
    (``memory``): the model has data from the first decision, and a zone up since before the
    window (``born`` ``-inf``) is in the last bucket. The up-runs are every zone's, pooled; with
    ``history_zone``, ``opt``'s own."""
    now = view.elapsed_hours
    idx = next((i for i, o in enumerate(view.zones) if o.zone == opt.zone), -1)
    n = len(view.zones)
    if history is not None and n == len(history.born) == len(history.lifetimes) == len(
        history.lifetimes_censored
    ):
        born = history.born
        pick = [idx] if history_zone and idx >= 0 else range(len(view.zones))
        lifetimes = tuple(x for i in pick for x in history.lifetimes[i])
        open_runs = [x for i in pick for x in history.lifetimes_censored[i]]
        outages, open_out = history.outages, list(history.outages_censored)
        since = history.outage_since
    else:
        born = memory.born if len(memory.born) == len(view.zones) else tuple(math.inf for _ in view.zones)
        lifetimes, open_runs = memory.lifetimes, [now - b for b in born if -math.inf < b < math.inf]
        since = memory.outage_since
        outages, open_out = memory.outages, ([now - since] if since < math.inf else [])
    ups = bucket_rates(lifetimes, open_runs, prior_rate=prior_up_rate, prior_hours=prior_hours)
    backs = bucket_rates(outages, open_out, prior_rate=prior_back_rate, prior_hours=prior_hours)
    widths = [b - a for a, b in pairwise((0.0, *AGE_EDGES_HOURS))]
    adv = (*(min(1.0, unit / wd) for wd in widths), 0.0)

    def prob(rate: float) -> float:
        return 1.0 - math.exp(-_bucket(max(rate, 0.01), 2.0) * unit)

    def bucket_of(i: int) -> int:
        return age_bucket(math.inf if born[i] == -math.inf else max(0.0, now - born[i]))

    up_b = bucket_of(idx) if idx >= 0 and opt.available and born[idx] < math.inf else 0
    down_b = age_bucket(now - since) if since < math.inf else 0
    others = [bucket_of(i) for i, o in enumerate(view.zones)
              if o.available and o.zone != opt.zone and born[i] < math.inf]
    return AgeModel(
        up_fail=tuple(prob(x) for x in ups), up_adv=adv, down_back=tuple(prob(x) for x in backs),
        down_adv=adv, up_bucket=up_b, down_bucket=down_b, alt_bucket=max(others, default=0),
    )


def _track_ages(view: JobView, memory: Memory, before: Memory) -> Memory:
    """``memory`` with the age-conditioned model's observations updated (see Memory): a zone seen
    coming up is ``born`` now; one seen going down after a run the job saw begin adds that run to
    ``lifetimes``; an outage (no zone up) that ends adds its length to ``outages``. ``before`` is
    the memory as it came in (empty ``born``: the first decision, every zone up is "up when first
    seen")."""
    now = view.elapsed_hours
    first = len(before.born) != len(view.zones)
    born: list[float] = []
    lifetimes = list(memory.lifetimes)
    for i, o in enumerate(view.zones):
        prev = math.inf if first else before.born[i]
        if o.available:
            born.append((-math.inf if first else now) if prev == math.inf else prev)
        else:
            if -math.inf < prev < math.inf:
                lifetimes.append(max(0.0, now - prev))
            born.append(math.inf)
    any_up = any(o.available for o in view.zones)
    since, outages = before.outage_since, list(memory.outages)
    if any_up:
        if since < math.inf:
            outages.append(max(0.0, now - since))
        since = math.inf
    elif since == math.inf:
        since = now
    return replace(memory, born=tuple(born), lifetimes=tuple(lifetimes), outage_since=since,
                   outages=tuple(outages))


def _cheapest_zone(view: JobView) -> SpotOption | None:
    """What spot would be once it returns, with none up now: the cheapest zone's price and egress,
    and the lowest interruption rate known among the zones (a zone that is down has a meaningless
    rate of one per tick: :func:`policy.risk.interruptions_per_hour`)."""
    cheapest = min(view.zones, key=lambda o: o.price_per_hour + o.egress_usd, default=None)
    if cheapest is None:
        return None
    return replace(cheapest, interruptions_per_hour=None)


def _track_avail(view: JobView, memory: Memory, before: Memory) -> Memory:
    """``memory`` with the availability counts of the stochastic programme updated (see Memory);
    ``before`` is the memory as it came in (its ``up_since`` says which zones were up last time)."""
    up = int(any(o.available for o in view.zones))
    was = before.up_since if len(before.up_since) == len(view.zones) else ()
    up_ticks = memory.up_ticks + sum(1 for x in was if x < math.inf)
    drops = memory.drops + sum(
        1 for x, o in zip(was, view.zones, strict=False) if x < math.inf and not o.available
    )
    down_ticks, returns = memory.down_ticks, memory.returns
    if memory.spot_seen == 0:
        down_ticks += 1
        returns += up
    losses, alt = memory.losses, memory.losses_alt
    if view.preempted:
        losses += 1
        alt += int(any(o.available for o in view.zones if o.zone != view.preempted_zone))
    return replace(memory, spot_seen=up, down_ticks=down_ticks, returns=returns, losses=losses,
                   losses_alt=alt, up_ticks=up_ticks, drops=drops)


def _switch_cost(view: JobView, opt: SpotOption) -> float:
    """What leaving the current node for spot in ``opt`` costs: the restart and the work since the
    last checkpoint (redone there) at its price, and the egress of carrying the checkpoint.

    A switch is considered within the first tick after a checkpoint (:func:`_checkpoint_within_tick`),
    not only exactly at one: after a fractional restart a checkpoint almost never lands on a decision
    (with 30-minute checkpoints, a 6-minute restart and 10-minute ticks the unsaved work at every
    decision of an on-demand run is 4, 14 or 24 minutes), so requiring none unsaved kept a periodic
    job on on-demand to the end once it got there."""
    unsaved = max(0.0, view.work_done_hours - view.checkpointed_hours)
    return (view.restart_hours + unsaved) * opt.price_per_hour + opt.egress_usd


def free_wait_patience(
    view: JobView, home: tuple[SpotOption, ...] | list[SpotOption], *, spare: float, share: float
) -> float:
    """Hours a job that lost its node may wait for spot to return in its checkpoint's region
    (``home``: the zones whose start pays no egress) rather than pay egress to start elsewhere now.

    ``share * max(0, spare) / (1 + N)``: ``spare`` is the slack beyond what the job keeps for the
    rest of its run, and ``N = rate * work left`` the preemptions still expected, ``rate`` the
    lowest observed interruption rate among ``home`` (0 when none is known): each of those may
    face the same choice, so one wait gets an even share of the spare slack. Example: 7.9 h
    spare, 0.15 interruptions per hour over 40 h of work left (N = 6), share 1: 7.9 / 7 = 1.13 h.
    """
    if spare <= 0 or share <= 0:
        return 0.0
    rates = [o.interruptions_per_hour for o in home if o.interruptions_per_hour is not None]
    rate = min(rates) if rates else 0.0
    expected = max(0.0, rate) * remaining_work(view)
    return share * spare / (1.0 + expected)


def _track_idle(view: JobView, memory: Memory) -> Memory:
    """``memory`` with ``idle_since`` set: the hour the job began holding nothing, ``inf`` while it
    holds a node."""
    if view.current.kind is not Kind.WAIT:
        since = math.inf
    elif view.preempted or memory.idle_since == math.inf:
        since = view.elapsed_hours
    else:
        since = memory.idle_since
    return memory if since == memory.idle_since else replace(memory, idle_since=since)


def _stay_hours(view: JobView, opt: SpotOption) -> float:
    """Hours of work the job can expect to run on ``opt`` before it leaves: the work left, or less
    when the zone's observed interruption rate says it will be preempted sooner (``1 / rate``) and
    the move pays egress: that move's egress and restart are paid back over this, not over the
    whole job. (Without egress: the work left, the rule the parameters were tuned with.)"""
    left = remaining_work(view)
    rate = opt.interruptions_per_hour
    if opt.egress_usd > 0 and rate is not None and rate > 0:
        return min(left, 1.0 / rate)
    return left


def _egress_note(opt: SpotOption) -> str:
    return f" (egress {opt.egress_usd:.2f} USD to carry the checkpoint)" if opt.egress_usd > 0 else ""


def _up_for(view: JobView, memory: Memory, zone: str) -> float:
    """Hours ``zone`` has been continuously available (0 if unknown or unavailable)."""
    for i, opt in enumerate(view.zones):
        if opt.zone == zone and i < len(memory.up_since):
            return max(0.0, view.elapsed_hours - memory.up_since[i])
    return 0.0


def _uniform_slack(view: JobView) -> float:
    """The initial slack scaled by the share of the time to the deadline still ahead."""
    if view.deadline_hours is None or view.deadline_hours <= 0:
        return 0.0
    initial = view.deadline_hours - view.work_total_hours - view.restart_hours
    ahead = max(0.0, 1.0 - view.elapsed_hours / view.deadline_hours)
    return max(0.0, initial) * ahead


def _skynomad_settled(view: JobView, mem: Memory) -> Step | None:
    """The two rules both readings of SkyNomad apply before anything else: a finished job idles
    (the thrifty rule), and a job the safety net put on on-demand stays there to completion."""
    if _finished(view):
        return Step(WAIT, ("job finished (thrifty rule)",), mem)
    if mem.locked_ondemand:
        return Step(ON_DEMAND, ("safety net: on-demand until completion",), mem)
    return None


def _track_uptime(view: JobView, memory: Memory) -> Memory:
    prev = memory.up_since
    now = view.elapsed_hours
    if len(prev) != len(view.zones):
        prev = tuple(math.inf for _ in view.zones)
    ups = tuple(
        (min(since, now) if opt.available else math.inf) for since, opt in zip(prev, view.zones, strict=True)
    )
    if ups == memory.up_since:
        return memory
    return replace(memory, up_since=ups)


def _best_spot(
    view: JobView, memory: Memory, *, newest: bool = False, hazard_weight: float = 0.0,
    factors: tuple[float, ...] = (),
) -> SpotOption | None:
    """Cheapest available spot zone per expected useful hour; ties go to the zone up longest
    (or shortest), then list order.

    With ``hazard_weight`` w > 0 a zone's price is scaled by ``1 + w * rate * (restart +
    checkpoint / 2)``: what a useful hour costs once the expected preemptions (``rate``: its
    ``interruptions_per_hour``) and their restarts and lost work are paid for. ``factors`` (per zone
    of ``view.zones``; empty: all 1) scales it further (the young-zone rule; ``inf`` leaves a zone
    out). A zone whose start pays egress (``egress_usd``) adds it spread over the work left.
    """
    best: SpotOption | None = None
    best_key: tuple[float, float, int] | None = None
    ups = memory.up_since
    for i, opt in enumerate(view.zones):
        if not opt.available:
            continue
        since = ups[i] if i < len(ups) else view.elapsed_hours
        price = opt.price_per_hour
        if hazard_weight > 0:  # policy.risk: the availability model launch placement uses too
            price = useful_hour_cost(price, opt.interruptions_per_hour, view.restart_hours,
                                     view.checkpoint_hours, hazard_weight)
        if i < len(factors):
            if math.isinf(factors[i]):
                continue
            price *= factors[i]
        if opt.egress_usd > 0:  # the move's egress, spread over the work it would run there
            price += opt.egress_usd / max(_stay_hours(view, opt), view.tick_hours)
        key = (round(price, 9), -since if newest else since, i)
        if best_key is None or key < best_key:
            best, best_key = opt, key
    return best


@dataclass(frozen=True, slots=True)
class SkyNomad:
    """SkyNomad's scheduling policy (NSDI '27, "SkyNomad: On Using Multi-Region Spot Instances to
    Minimize AI Batch Job Cost"; ``shared/data/skynomad/paper.txt``, titled SkyVoyager), written from
    the paper's text (no code of the artifact used). Section numbers are the paper's.

    * Thrifty rule (§3.1): idle once the work is done.
    * Safety net (§3.1; Algorithm 1, lines 4-5: checked at every scheduling step): *when idle* with
      ``T - t < P - p + d``, on-demand until completion. Taken at the trace's ticks: it fires when
      one more idle tick would break it (as ``_net_fires``). A job on spot is not moved by it; a
      preemption leaves the job idle, and the net is checked then. The fallback's region (eq. 2,
      ``argmin C_od (P - p + d) + E``) is the checkpoint's here: every region has the same
      on-demand price in the simulator, and on-demand runs where the checkpoint is, so ``E = 0``.
    * Progress value (§3.3, eq. 8): ``V = C_od * theta / theta~`` with ``theta = (P - p) / (T - t)``
      and ``theta~ = p / t``. Eq. 8 is undefined at ``t = 0`` and infinite at ``p = 0 < t`` (the
      barrier of property 2); here ``V = C_od`` at ``t = 0`` (on schedule by definition) and ``V`` is
      capped at ``1000 C_od``.
    * Utility (§3.2, eq. 6): ``U = V * eta - C - E / L`` for spot in a zone with predicted remaining
      lifetime ``L``, ``eta = (L - d)+ / L``, price ``C`` and egress ``E`` from the checkpoint's
      region (``SpotOption.egress_usd``); on-demand ``V - C_od`` (``L`` infinite); idle 0. The
      current placement is scored with the cold start it still has to pay and no egress; an unknown
      (unbounded) lifetime gives ``eta = 1`` and no amortised egress.
    * Lifetime (§3.4, eq. 9-10, §A.3): :func:`expected_remaining_lifetime` (Nelson-Aalen, conditioned
      on the zone's current age) over the zone's :class:`VirtualInstance`, built from what the policy
      observes: a probe of every zone every ``probe_interval_hours`` (2 h, §3.4) and at the first
      step; each tick of its own spot node (its preemption is an observed failure); each launch it
      attempts (a failed launch is a virtual preemption, a successful one a virtual provisioning);
      and its own proactive moves away (right-censored); the cumulative hazard scaled by the
      volatility ratio ``gamma*`` (§A.3, :meth:`VirtualInstance.volatility`; ``volatility=False``
      leaves it out). Not modelled: the probes' cost (about a minute of spot per zone per probe,
      which the engine does not charge: it favours this policy by roughly that much).
    * Decision (§3.5, Algorithm 1, lines 7-17): every state's utility; the states better than the
      current one are attempted in descending order of utility, availability being known only by
      trying (a spot launch in a zone down now fails, and is an observation); the first that
      succeeds is taken (idle and on-demand always succeed); none: keep the current state. Equal
      utilities (the paper is silent) go to idle, then on-demand, then spot in zone order.
    * Hysteresis (footnote 2): "the scheduler switches only when U(r,m) > U(r0,m0) + delta". The
      paper gives no value for ``delta`` (USD/h). Without it (``delta=0``, Algorithm 1 as written)
      the policy thrashes once the job is ahead of schedule (``V`` near the spot price: release spot
      for idle, relaunch a few ticks later, a cold start each time). 1.0 USD/h was chosen by
      ``benchmarks/tune_skynomad_delta.py`` on other zones of the same traces (never on SkyNomad's
      evaluation zones): ``results/tune_skynomad_delta.md``.
    """

    name: str = "skynomad"
    probe_interval_hours: float = 2.0
    delta: float = 1.0
    volatility: bool = True

    def decide(self, view: JobView, memory: Memory) -> Step:
        mem = _track_uptime(view, memory)
        settled = _skynomad_settled(view, mem)
        if settled is not None:
            return settled
        now = view.elapsed_hours
        virtual = list(mem.virtual) if len(mem.virtual) == len(view.zones) else [
            VirtualInstance() for _ in view.zones
        ]
        index = {o.zone: i for i, o in enumerate(view.zones)}
        cur = view.current
        probed_at = mem.probed_at
        if now - probed_at >= self.probe_interval_hours - _EPS:  # a probe round (§3.4)
            virtual = [v.observe(now, o.available) for v, o in zip(virtual, view.zones, strict=True)]
            probed_at = now
        if view.preempted and view.preempted_zone in index:  # its own node's preemption
            i = index[view.preempted_zone]
            virtual[i] = virtual[i].observe(now, False)
        if cur.kind is Kind.SPOT and cur.zone in index:  # its own node is watched every tick
            i = index[cur.zone]
            virtual[i] = virtual[i].observe(now, view.zones[i].available)
        if cur.kind is Kind.WAIT and _net_fires(view, 1):
            why = "safety net: idle and time left < work left + d: on-demand until completion"
            return Step(ON_DEMAND, (why,), replace(mem, locked_ondemand=True, virtual=tuple(virtual),
                                                   probed_at=probed_at))
        v = _progress_value(view)
        d = view.restart_hours
        cod = view.ondemand_price_per_hour

        def life(i: int) -> float | None:
            inst = virtual[i]
            age = now - inst.up_since if inst.up_since < math.inf else 0.0
            gamma = inst.volatility(now) if self.volatility else 1.0
            return expected_remaining_lifetime(inst.failures, inst.censored, age, gamma)

        def spot_utility(i: int, cold: float, egress: float) -> float:
            opt = view.zones[i]
            lv = life(i)
            if lv is None:
                return v - opt.price_per_hour
            if lv <= 0:
                return -opt.price_per_hour - (math.inf if egress > 0 else 0.0)
            return v * max(0.0, lv - cold) / lv - opt.price_per_hour - egress / lv

        cur_i = index.get(cur.zone, -1) if cur.kind is Kind.SPOT else -1
        cur_up = cur_i >= 0 and view.zones[cur_i].available  # its spot node runs
        current = 0.0
        if cur.kind is Kind.ON_DEMAND:
            current = v - cod
        elif cur_up:
            current = spot_utility(cur_i, view.overhead_left_hours, 0.0)
        candidates: list[tuple[float, int, Choice]] = []
        for i, opt in enumerate(view.zones):
            if not (cur.kind is Kind.SPOT and opt.zone == cur.zone):
                candidates.append((spot_utility(i, d, opt.egress_usd), i, spot(opt.zone)))
        if cur.kind is not Kind.WAIT:  # on a tie, idle (free) before on-demand, then spot in list order
            candidates.append((0.0, -2, WAIT))
        if cur.kind is not Kind.ON_DEMAND:
            candidates.append((v - cod, -1, ON_DEMAND))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        choice, score, tried = cur, current, 0
        for u, i, cand in candidates:
            if not u > current + self.delta + _EPS:
                break
            if cand.kind is Kind.SPOT:
                tried += 1
                up = view.zones[i].available
                virtual[i] = virtual[i].observe(now, up)  # the launch attempt is an observation
                if not up:
                    continue
            choice, score = cand, u
            break
        if choice != cur and cur_up:
            virtual[cur_i] = virtual[cur_i].censor(now)  # a proactive move away: right-censored
        if cur.kind is Kind.SPOT and choice == cur and not cur_up:
            choice, score = WAIT, 0.0  # its node is gone and nothing better could be launched
        mem = replace(mem, virtual=tuple(virtual), probed_at=probed_at)
        why = (f"V={v:.2f} USD/h of progress: {choice} has the highest utility that launched ({score:.2f}; "
               f"{tried} spot launch(es) tried)")
        return Step(choice, (why,), mem)


@dataclass(frozen=True, slots=True)
class SkyNomadRate:
    """``skynomad-rate``: the first, simplified reading of SkyNomad's scheduling policy, kept for
    comparison beside :class:`SkyNomad` (which follows the paper's lifetime model and Algorithm 1).
    SkyNomad's policy (NSDI '27, "SkyNomad: On Using Multi-Region Spot Instances to
    Minimize AI Batch Job Cost"; its artifact's paper.txt, titled SkyVoyager), written from the
    paper's §3 (no code of the artifact used):

    * Progress value (§3.3, eq. 8): ``V = C_od * theta / theta~`` with ``theta = (P - p) / (T - t)``
      (work left per time left) and ``theta~ = p / t`` (average progress rate); ``V = C_od`` at
      ``t = 0``; capped at ``1000 C_od`` (``p = 0`` after the start makes it infinite).
    * Utility of each action (§3.2, eq. 6): ``U = V * eta - C - E / L``: spot in an available zone
      with predicted lifetime ``L``, effectiveness ``eta = (L - d)+ / L`` (``d`` the cold start),
      price ``C`` and egress ``E`` from the checkpoint's region (``SpotOption.egress_usd``);
      on-demand ``V - C_od`` (never preempted: ``eta = 1``, egress amortised away); idle 0. The
      current placement is scored with the cold start it still has to pay and no egress.
    * Decision (§3.5, Algorithm 1): the candidate of highest utility if it beats the current
      placement's, else keep it. Safety net (§3.1): when idle and the time left after this tick is
      less than the work left plus a cold start, on-demand until completion. Thrifty: idle once done.
    * Differs from the paper: every zone's availability is known each tick (no probes, no failed
      launches), and the lifetime is memoryless:
    * Lifetime (§3.4), simplified here: the paper predicts each zone's remaining spot lifetime by
      survival analysis (Nelson-Aalen, conditioned on the current age, with a volatility
      adjustment) from probes every two hours. Here ``L = 1 / rate`` with ``rate`` the zone's
      observed interruptions per available hour (``SpotOption.interruptions_per_hour``, the
      simulator's ``rate_window_hours``): memoryless, from the trace's own past. Unknown rate:
      ``L`` infinite (``eta = 1``).
    """

    name: str = "skynomad-rate"

    def decide(self, view: JobView, memory: Memory) -> Step:
        mem = _track_uptime(view, memory)
        settled = _skynomad_settled(view, mem)
        if settled is not None:
            return settled
        cur = view.current
        cod = view.ondemand_price_per_hour
        if cur.kind is Kind.WAIT and _net_fires(view, 1):
            return Step(ON_DEMAND, ("safety net: time left < work left + d: on-demand until completion",),
                        replace(mem, locked_ondemand=True))
        v = _progress_value(view)
        d = view.restart_hours

        def spot_utility(opt: SpotOption, cold: float, egress: float) -> float:
            rate = opt.interruptions_per_hour
            if rate is None or rate <= 0:
                return v - opt.price_per_hour
            life = 1.0 / rate
            return v * max(0.0, life - cold) / life - opt.price_per_hour - egress / life

        current = 0.0
        if cur.kind is Kind.ON_DEMAND:
            current = v - cod
        elif cur.kind is Kind.SPOT:
            opt = _option(view, cur.zone)
            if opt is not None and opt.available:
                current = spot_utility(opt, view.overhead_left_hours, 0.0)
        best: tuple[float, Choice] = (current, cur)
        for opt in view.zones:
            if opt.available and not (cur.kind is Kind.SPOT and opt.zone == cur.zone):
                u = spot_utility(opt, d, opt.egress_usd)
                if u > best[0] + _EPS:
                    best = (u, spot(opt.zone))
        if cur.kind is not Kind.ON_DEMAND and v - cod > best[0] + _EPS:
            best = (v - cod, ON_DEMAND)
        if best[0] < -_EPS:  # idle (utility 0) beats every option
            best = (0.0, WAIT)
        choice = best[1]
        why = f"V={v:.2f} USD/h of progress: {choice} has the highest utility ({best[0]:.2f})"
        return Step(choice, (why,), mem)


def _progress_value(view: JobView) -> float:
    """SkyNomad's shadow price of progress (its eq. 8), capped at 1000 on-demand hours' price."""
    cod = view.ondemand_price_per_hour
    cap = 1000.0 * cod
    if view.deadline_hours is None:
        return cod
    t, p = view.elapsed_hours, view.work_done_hours
    left = view.deadline_hours - t
    if t <= _EPS:
        return cod
    if p <= _EPS or left <= _EPS:
        return cap
    return min(cap, cod * ((view.work_total_hours - p) / left) / (p / t))


def ross_ratio(k: float) -> float:
    """ROSS's critical ratio of time left to work left, ``(1 + 2 sqrt K) / (1 + sqrt K)``: the warm-up
    ends at the first decision where ``(D - t) / (L - phi(t))`` is at or below it. ``K`` = 4: 5 / 3."""
    rk = math.sqrt(max(1.0, k))
    return (1.0 + 2.0 * rk) / (1.0 + rk)


def ross_interval(xi1: float, work_left: float, k: float, draw: float) -> tuple[float, float, float]:
    """ROSS's randomized on-demand interval, fixed at ``xi1``: ``(xi1, start, end)`` in elapsed hours.

    Its length is ``delta = (L - phi(xi1)) / (1 + sqrt K)`` (``work_left`` is ``L - phi(xi1)``); it is
    placed inside the window ``[xi1, xi1 + L - phi(xi1)]``, its start ``draw`` (uniform on [0, 1)) of
    the way along ``[xi1, xi1 + L - phi(xi1) - delta]``. Example: ``xi1`` 2 h, 3 h of work left,
    ``K`` 4: ``delta`` 1 h, start in [2, 4); ``draw`` 0.25: ``(2, 2.5, 3.5)``.
    """
    delta = work_left / (1.0 + math.sqrt(max(1.0, k)))
    start = xi1 + draw * (work_left - delta)
    return (xi1, start, start + delta)


def ross_injection(view: JobView, memory: Memory, k: float, seed: int) -> tuple[Memory, bool]:
    """ROSS's phase 2 (:class:`ROSS`), for a job with a deadline: at the first decision where ``(D - t)
    / (L - phi(t))`` is at or below :func:`ross_ratio` of ``k``, the on-demand interval is drawn
    (:func:`ross_interval`, ``random.Random(seed)``) and kept in ``memory.ross_interval``; answers the
    memory and whether ``t`` lies in the interval (on-demand then, spot up or not). An interval already
    drawn is kept as it is, whatever ``k`` now."""
    t = view.elapsed_hours
    mem = memory
    deadline = view.deadline_hours
    if not mem.ross_interval and deadline is not None:
        left = remaining_work(view)
        if deadline - t <= ross_ratio(k) * left + _EPS:
            mem = replace(mem, ross_interval=ross_interval(t, left, k, random.Random(seed).random()))
    iv = mem.ross_interval
    return mem, bool(iv) and iv[1] - _EPS <= t < iv[2] - _EPS


@dataclass(frozen=True, slots=True)
class ROSS:
    """ROSS, the Randomized Online Spot Scheduler (Bhuyan, Bhatia, Kodialam, Lakshman, "Exploiting Spot
    Instances for Time-Critical Cloud Workloads Using Optimal Randomized Strategies", arXiv 2601.14612,
    INFOCOM '26), in one home zone. ``K`` is the on-demand price over the home zone's spot price, ``L``
    the work, ``D`` the deadline, ``phi(t)`` the progress (``work_done_hours``).

    Source: the paper's abstract and its three-phase description of ROSS as read from a summary of the
    paper (the stored copies reachable here were cut before the paper's algorithm listing, so its
    section and algorithm numbers are not cited, and one detail is this module's reading, marked
    *reading* below):

    1. Warm-up, while ``(D - t) / (L - phi(t)) > (1 + 2 sqrt K) / (1 + sqrt K)``
       (:func:`ross_ratio`): the paper allows a greedy or a uniform warm-up; ``warmup="greedy"``
       (default) is Can't Be Late's Greedy (spot in the home zone when available, else idle),
       ``"uniform"`` its Uniform Progress (no spot and behind ``c(t) < L t / D``: on-demand, left
       only for spot).
    2. Randomized on-demand injection: at the first decision ``xi1`` at or below the ratio, ``delta =
       (L - phi(xi1)) / (1 + sqrt K)``, and an interval ``I(delta)`` of that length is drawn at random
       inside a window that starts at ``xi1``; on-demand throughout ``I(delta)``, spot available or
       not. *Reading*: the window is ``[xi1, xi1 + L - phi(xi1)]`` and the interval's start uniform
       in it (:func:`ross_interval`); at the critical ratio the latest start, ``xi1 + L - phi(xi1) -
       delta``, is exactly when the slack at ``xi1`` would run out.
    3. Outside ``I(delta)`` (before and after it): greedy, with the safety net.

    Where this project's setting differs from the paper's (single zone, no restart cost, no work lost
    at a preemption, continuous time) and what is done here:

    * Several zones: ROSS has no multi-zone form; like ``greedy`` and ``uniform-progress`` it runs in
      one home zone (``home_zone``; "" picks the cheapest available at the first decision), and the
      benchmarks run it once per zone and average.
    * Safety net: the paper's (on-demand when the time left equals the work left) is taken as this
      project's deadline guard, :func:`off_ondemand_is_safe` (a restart plus the work since the last
      checkpoint must still fit after a preemption at the end of the tick): a choice off on-demand
      that fails it becomes on-demand to the end. So, on-demand being always obtainable, ``ross``
      never misses a deadline that an on-demand start at the first decision could meet.
    * Ticks: the interval covers the decisions ``t`` with ``start <= t < end``; every switch pays
      the restart, so on-demand in ``I(delta)`` does less than ``delta`` of work.
    * Checkpoints: on-demand is left (at the end of ``I(delta)``, or for spot in a uniform warm-up)
      only at the first decision after a checkpoint, as ``uniform-progress`` does; entering
      ``I(delta)`` from spot is not delayed (the paper enters it at once; periodic checkpoints lose
      the unsaved spot work then).
    * Randomness: the one draw is ``random.Random(seed).random()``, ``seed`` a field: the benchmarks
      derive it from the scenario, so every figure is reproducible and the policy stays a function
      of its inputs.

    Without a deadline: spot when available, else wait.
    """

    home_zone: str = ""
    seed: int = 0
    warmup: str = "greedy"
    name: str = "ross"

    def decide(self, view: JobView, memory: Memory) -> Step:
        if _finished(view):
            return Step(WAIT, ("job finished",), memory)
        home, mem, spot_ok = _home(view, memory, self.home_zone)
        if mem.locked_ondemand:
            return Step(ON_DEMAND, ("deadline guard: on-demand to the end",), mem)
        deadline = view.deadline_hours
        if deadline is None:
            if spot_ok:
                return Step(spot(home), (f"{home} spot available",), mem)
            return Step(WAIT, ("no deadline: wait for spot",), mem)
        t = view.elapsed_hours
        why: list[str] = []
        opt = _option(view, home)
        price = opt.price_per_hour if opt is not None else view.ondemand_price_per_hour
        k = view.ondemand_price_per_hour / price if price > _EPS else 1e12
        drawn_before = mem.ross_interval
        mem, injected = ross_injection(view, mem, k, self.seed)
        if mem.ross_interval and not drawn_before:
            drawn = mem.ross_interval
            why.append(f"phase 2 at xi1={t:.3f} h (K={k:.2f}): "
                       f"on-demand in I(delta)=[{drawn[1]:.3f}, {drawn[2]:.3f}) h")
        cur = view.current
        if injected:
            choice, reason = ON_DEMAND, "randomized on-demand injection: t in I(delta)"
        elif spot_ok:
            choice, reason = spot(home), f"{home} spot available"
        elif (self.warmup == "uniform" and not mem.ross_interval  # the warm-up ends with phase 2
              and (cur.kind is Kind.ON_DEMAND
                   or view.work_done_hours < t * view.work_total_hours / deadline - _EPS)):
            choice, reason = ON_DEMAND, "uniform warm-up: no spot, behind L t / D (left only for spot)"
        else:
            choice, reason = WAIT, "no spot: idle (greedy)"
        leaving = cur.kind is Kind.ON_DEMAND and choice.kind is not Kind.ON_DEMAND
        if leaving and not _checkpoint_within_tick(view):
            choice, reason = ON_DEMAND, "on-demand until its next checkpoint (leaving now loses work)"
        if choice.kind is not Kind.ON_DEMAND and not off_ondemand_is_safe(
            view, keep=choice == cur and cur.kind is Kind.SPOT
        ):
            guard = "deadline guard: off on-demand would not be safe: on-demand to the end"
            return Step(ON_DEMAND, (*why, guard), replace(mem, locked_ondemand=True))
        return Step(choice, (*why, reason), mem)


POLICIES: Mapping[str, DeadlinePolicy] = {
    "ondemand": OnDemandOnly(),
    "greedy": Greedy(),
    "eager-next-region": EagerNextRegion(),
    "uniform-progress": UniformProgress(),
    "multicloud": MultiCloud(),
}
"""Online policies by CLI name. (``optimal`` is not a policy: it is computed offline by
``ray_multicloud.sim.optimal`` with knowledge of the whole trace.)"""

VARIANTS: Mapping[str, DeadlinePolicy] = {
    "greedy-ondemand": GreedySingleZone(),
    "up-eager": UniformProgressEager(),
    "skynomad": SkyNomad(),
    "skynomad-rate": SkyNomadRate(),
    "ross": ROSS(),
}
"""Baselines for comparison only, not selectable as a pool's deadline policy: variants of the papers'
baselines that are not the papers' (``greedy-ondemand``, ``up-eager``), ``skynomad`` (SkyNomad's
policy from its paper's text: see the class) and ``skynomad-rate`` (the earlier simplified reading of it:
memoryless lifetimes from the trace's interruption rate, every zone's availability known each tick),
and ``ross`` (ROSS from its paper, randomized: seed 0 here; the benchmarks seed it per scenario)."""
