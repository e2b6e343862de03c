"""Launch directives: what a deadline policy wants the next node of its pool to be, for the autoscaler.

A pool that runs a deadline job is judged by its ``DeadlinePolicy`` (``policy.rebalance``). When the
job's node is preempted, the autoscaler relaunches it through ``policy.place`` — which knows nothing
of the job's slack — within seconds, before the controller's next tick. So the controller asks the
policy ahead of time, every tick, what it would start if the pool's node were lost now
(``policy.rebalance.idle_step`` with the node's offer as the preempted one), and publishes the
answer here; the provider reads it when it launches a node of that pool:

* ``spot`` + offer id: that offer goes first in the placement's candidates (when the pool still
  matches it and it is not cooling down; the usual fallbacks follow). ``then`` lists the offers the
  policy would take next, in its order, should that one be gone too (the controller asks it again
  with each one taken away), and ``otherwise`` what it would do with none of them left
  (``on-demand`` or ``wait``): a zone often goes down together with the node's, and the relaunch
  must still follow the policy, not the plain cheapest-first placement;
* ``on-demand``: the pool is placed as if it admitted on-demand only (when it admits on-demand);
* ``wait``: the launch is refused with the policy's reason (the deadline allows waiting for spot to
  come back, and an on-demand node now is what the policy avoids); the autoscaler retries, and the
  controller's next directive lets it through once spot is back or the slack runs low.

The SLO autoscaler of a serving pool (``serve.slo_autoscale``) publishes ``spot`` directives too (reason
``"slo: ..."``: the offer its next replica's node should be bought on); the controller's own ticks keep
them. A directive older than ``max_age_s`` (a controller that stopped) is ignored. The file
(``<state_dir>/directives.json``) is replaced atomically, as the price board is, so a reader sees
the old set or the new one. Pure parts: ``Directive``; I/O: ``LaunchDirectives``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ray_multicloud._files import replace_json

DIRECTIVES_FILE = "directives.json"
SLO_DIRECTIVE_PREFIX = "slo: "  # the reason prefix of the SLO autoscaler's directives
KINDS = ("spot", "on-demand", "wait")


@dataclass(frozen=True, slots=True)
class Directive:
    """``kind`` is spot, on-demand or wait; ``offer_id`` the spot offer ("" otherwise); ``at`` when
    the controller decided (POSIX s); ``reason`` the policy's first reason; ``then`` the spot
    offers to try next, in order, and ``otherwise`` the kind when none of them can be had ("":
    nothing imposed)."""

    kind: str
    offer_id: str
    at: float
    reason: str = ""
    then: tuple[str, ...] = ()
    otherwise: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"directive kind {self.kind!r} is not one of {KINDS}")
        if self.otherwise not in ("", "on-demand", "wait"):
            raise ValueError(f"directive otherwise {self.otherwise!r} is not on-demand, wait or ''")


class LaunchDirectives:
    """Directives by cluster and pool, in ``state_dir/directives.json``."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir).expanduser() / DIRECTIVES_FILE

    def _read_all(self) -> dict[str, dict[str, dict[str, object]]]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def get(self, cluster: str, pool: str, *, now: float, max_age_s: float) -> Directive | None:
        """The pool's directive if one exists and is at most ``max_age_s`` old; None otherwise (also
        for an unreadable or malformed entry: a directive is advice, never a reason to fail)."""
        entry = self._read_all().get(cluster, {}).get(pool)
        if not isinstance(entry, dict):
            return None
        try:
            directive = Directive(
                kind=str(entry["kind"]),
                offer_id=str(entry.get("offer_id", "")),
                at=float(entry["at"]),  # type: ignore[arg-type]
                reason=str(entry.get("reason", "")),
                then=tuple(str(o) for o in entry.get("then", ())),  # type: ignore[attr-defined]
                otherwise=str(entry.get("otherwise", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return directive if now - directive.at <= max_age_s else None

    def publish(self, cluster: str, directives: dict[str, Directive | None], *,
                keep_reasons: tuple[str, ...] = ()) -> None:
        """Replace the cluster's directives of the given pools (None removes a pool's, except one whose
        reason starts with one of ``keep_reasons``: another author's, e.g. the SLO autoscaler's
        ``"slo: "``, which ages out by itself)."""
        everything = self._read_all()
        mine = dict(everything.get(cluster, {}))
        for pool, d in directives.items():
            if d is None:
                old = mine.get(pool)
                reason = str(old.get("reason", "")) if isinstance(old, dict) else ""
                if not (keep_reasons and reason.startswith(keep_reasons)):
                    mine.pop(pool, None)
            else:
                mine[pool] = {
                    "kind": d.kind,
                    "offer_id": d.offer_id,
                    "at": d.at,
                    "reason": d.reason,
                    "then": list(d.then),
                    "otherwise": d.otherwise,
                }
        everything[cluster] = mine
        replace_json(self.path, everything)
