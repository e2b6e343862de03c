"""Predictive serving capacity at run time: the controller's step that asks for capacity ahead.

Each controller tick, for every serving pool with a ``predictive:`` section
(``cluster_config.predictive``):

1. **History.** The deployment's request rates are read from the pool's rate log
   (``serve.rate_log``: the pool's ``SloAutoscalingPolicy``, inside Serve's controller, appends the
   rate its replicas' meters report, i.e. Serve's own autoscaling metrics) and averaged per
   ``tick`` over the last ``history`` (``policy.predictive.bucket``).
2. **Decision.** ``policy.predictive.plan_capacity`` (pure): the forecaster chosen by backtest on
   that history (chosen again every ``refit``), its forecast ``lead`` ahead, the known peaks, ->
   replicas and nodes. A history too short to forecast gives a reactive plan, and **one** log line
   saying so (again only after forecasting had started and stopped).
3. **Capacity.** The nodes of every predictive pool are asked of the autoscaler in one call,
   ``ray.autoscaler.sdk.request_resources(bundles=[<the node type's resources>] * nodes)`` (Ray keeps
   one standing request per cluster, so the pools' bundles go together; the call is made only when
   the bundles change). The autoscaler launches what the cluster lacks for those bundles, through
   the provider (placement, budgets and directives apply), ``lead`` before the forecast demand.
4. **Replicas.** The replica floor of each pool is published (``serve.rate_log.publish_floors``);
   the pool's Serve autoscaling policy keeps at least that many replicas while the floor is fresh,
   so the replicas start on the nodes as they come up, not after the demand arrives.

**The lead.** A pool whose section gives no ``lead:`` has it measured: ``observe`` (called by the
controller each tick with the provider's fleet and the GCS's node table) records, for each node of
the pool launched while the controller watches, the time from its launch (``FleetNode.launched_at``,
the provider's tag) to the first tick its Ray node is alive (an upper bound, one tick coarse); from the
third such start on, the lead is their median (of the last ``KEEP_STARTS``) plus ``replica_ready``
(``policy.predictive.lead_from_starts``). The starts live in this process: a restarted controller
uses the configured default until it has measured three again.

A pool whose section says ``enabled: false`` asks for nothing. While the cluster is hibernated
(``idle_guard``) this step asks for nothing either and leaves Ray's standing request alone (a
restore's request stands until the next plan replaces it).

I/O at the edges only: ``read``, ``request``, ``publish`` and ``clock`` are injectable (tests pass
fakes; the defaults are the rate log, Ray's ``request_resources`` and the floors file).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.cluster_config.predictive import PoolPredictive
from ray_multicloud.policy.forecast import Candidate
from ray_multicloud.policy.predictive import MIN_STARTS, CapacityPlan, bucket, lead_from_starts, plan_capacity
from ray_multicloud.serve.rate_log import RateTail, floor_path, publish_floors, rate_log_path

logger = logging.getLogger(__name__)

Bundles = list[dict[str, float]]
KEEP_STARTS = 20
"""Node starts kept per pool for the measured lead."""


def ray_request(bundles: Bundles) -> None:
    """Ray's standing resource request for the cluster (replaces the previous one)."""
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=bundles)


@dataclass
class _Fit:
    candidate: Candidate | None = None
    at: float = float("-inf")
    mode: str = ""
    lead_s: float = 0.0


class PredictiveGuard:
    """The step above, for ``pools`` (node type -> its section) whose nodes have ``shapes`` (node
    type -> the node type's ``resources``). Not thread-safe: one ticking thread."""

    def __init__(
        self,
        cluster_name: str,
        state_dir: str | Path,
        pools: Mapping[str, PoolPredictive],
        shapes: Mapping[str, Mapping[str, float]],
        *,
        read: Callable[[str, float], Sequence[tuple[float, float]]] | None = None,
        request: Callable[[Bundles], object] = ray_request,
        publish: Callable[[Mapping[str, Mapping[str, Any]]], None] | None = None,
        hibernated: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster_name = cluster_name
        self.state_dir = Path(state_dir).expanduser()
        self.pools = dict(pools)
        self.shapes = {k: {r: float(v) for r, v in s.items() if float(v) > 0} for k, s in shapes.items()}
        for name in self.pools:
            if not self.shapes.get(name):
                raise ValueError(f"node type {name!r} has a predictive: section but no resources to ask "
                                 "for; give it resources: (e.g. {CPU: 4, GPU: 1})")
        tails = {name: RateTail(rate_log_path(self.state_dir, cluster_name, name)) for name in self.pools}
        self._read = read or (lambda pool, since: tails[pool].samples(since))
        self._request = request
        self._publish = publish or (lambda floors: publish_floors(
            floor_path(self.state_dir, cluster_name), floors))
        self._hibernated = hibernated
        self._clock = clock
        self._fits: dict[str, _Fit] = {name: _Fit() for name in self.pools}
        self._requested: Bundles | None = None
        self.plans: dict[str, CapacityPlan] = {}
        self.starts: dict[str, list[float]] = {name: [] for name in self.pools}
        self._history: dict[str, tuple[int, list[float]]] = {}
        self._seen: set[str] = set()
        self._watching_since: float | None = None
        self._leads: dict[str, float] = {}

    def observe(self, fleet: Sequence[Any], ray_nodes: Mapping[str, Any] | None, now: float) -> None:
        """Record node starts (module docstring): ``fleet``, the provider's ``FleetNode``s;
        ``ray_nodes``, the GCS's nodes by instance id (``controller.ray_nodes``; None: unreadable)."""
        if ray_nodes is None:
            return
        if self._watching_since is None:
            self._watching_since = now
        for node in fleet:
            iid = str(node.instance_id)
            if node.pool not in self.pools or iid in self._seen:
                continue
            ray_node = ray_nodes.get(iid)
            if ray_node is None or not ray_node.alive:
                continue
            self._seen.add(iid)
            if node.launched_at >= self._watching_since and now >= node.launched_at:
                starts = self.starts[node.pool]
                starts.append(now - float(node.launched_at))
                del starts[:-KEEP_STARTS]
                logger.info("predictive %s: node %s started in %.1f s (launch to Ray node alive)",
                            node.pool, iid, now - float(node.launched_at))

    def lead_s(self, pool: str) -> float:
        """The pool's lead now: configured, or measured (module docstring)."""
        cfg = self.pools[pool]
        if cfg.lead_measured:
            measured = lead_from_starts(self.starts[pool], cfg.replica_ready_s)
            if measured is not None:
                return max(cfg.spec.tick_s, measured)
        return cfg.spec.lead_s

    def _note_lead(self, pool: str, lead: float) -> None:
        """One log line whenever the lead a pool plans with changes (a measured lead replacing the
        configured default, or moving with a new start), saying what it is made of."""
        if self._leads.get(pool) == lead:
            return
        self._leads[pool] = lead
        cfg = self.pools[pool]
        if not cfg.lead_measured or lead_from_starts(self.starts[pool], cfg.replica_ready_s) is None:
            logger.info("predictive %s: lead %.1f s (%s)", pool, lead,
                        "configured" if not cfg.lead_measured else
                        f"the default until {MIN_STARTS} node starts are measured")
            return
        starts = self.starts[pool]
        logger.info("predictive %s: lead %.1f s, measured: the median of the last %d node start(s) "
                    "(%s s) + replica_ready %g s", pool, lead, len(starts),
                    ", ".join(f"{s:.1f}" for s in starts), cfg.replica_ready_s)

    def plan(self, pool: str, now: float) -> CapacityPlan:
        """This tick's plan for ``pool`` (re-chooses the forecaster when due). The history is read
        once per history ``tick`` (until the next one completes it cannot change); peaks and the
        forecast are judged at every call."""
        cfg = self.pools[pool]
        spec = cfg.spec
        lead = self.lead_s(pool)
        self._note_lead(pool, lead)
        if lead != spec.lead_s:
            spec = dataclasses.replace(spec, lead_s=lead)
        tick = math.floor(now / spec.tick_s)
        cached = self._history.get(pool)
        if cached is not None and cached[0] == tick:
            history = cached[1]  # no tick of history completed since: not read again
        else:
            samples = self._read(pool, now - cfg.history_s - spec.tick_s)
            history = bucket(samples, tick_s=spec.tick_s, now=now, keep_s=cfg.history_s)
            self._history[pool] = (tick, history)
        fit = self._fits[pool]
        due = fit.candidate is None or now - fit.at >= cfg.refit_s or fit.lead_s != spec.lead_s
        result = plan_capacity(history, spec, now=now, peaks=cfg.peaks,
                               candidate=None if due else fit.candidate)
        if due and result.forecaster is not None:
            fit.candidate, fit.at, fit.lead_s = result.forecaster, now, spec.lead_s
            logger.info("predictive %s: forecaster %s chosen by backtest on %d ticks", pool,
                        result.forecaster.name, len(history))
        if result.mode != fit.mode:
            # One line when the mode changes: reactive for too short a history, predictive once it
            # is long enough (not every tick).
            logger.info("predictive %s: %s", pool, result.reason)
            fit.mode = result.mode
        return result

    def tick(self, now: float | None = None) -> dict[str, CapacityPlan]:
        """One pass (module docstring); returns the plans of the enabled pools."""
        at = self._clock() if now is None else now
        if self._hibernated():
            return {}
        plans: dict[str, CapacityPlan] = {}
        bundles: Bundles = []
        floors: dict[str, dict[str, Any]] = {}
        for name in sorted(self.pools):
            if not self.pools[name].enabled:
                continue
            try:
                plan = self.plan(name, at)
            except Exception:
                logger.exception("predictive %s: planning failed this tick; its last plan stands", name)
                if name not in self.plans:
                    continue
                plan = self.plans[name]
            plans[name] = plan
            bundles.extend(dict(self.shapes[name]) for _ in range(plan.nodes))
            floors[name] = {"replicas": plan.replicas, "at": at, "mode": plan.mode, "reason": plan.reason}
        self.plans = plans
        if not plans:
            return plans
        if bundles != self._requested:
            try:
                self._request(bundles)
                self._requested = bundles
                logger.info("predictive: asked the autoscaler for %s",
                            ", ".join(f"{p.nodes} {n} node(s)" for n, p in plans.items()))
            except Exception:
                logger.warning("predictive: request_resources failed; retrying next tick", exc_info=True)
        try:
            self._publish(floors)
        except OSError:
            logger.warning("predictive: cannot publish the replica floors", exc_info=True)
        return plans
