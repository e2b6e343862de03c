"""SLO-driven Serve autoscaling: each replica measures its client-seen p95, a Serve autoscaling policy
scales the deployment to keep the pool's SLO, and the autoscaler buys the node on the offer it names.

Where p95 comes from, and why there. Ray Serve's own latency metrics (``serve_deployment_processing_
latency_ms``, the proxy's ``serve_http_request_latency_ms``) are Prometheus histograms: an autoscaling
policy reads them only through a Prometheus server (Serve's ``PrometheusQueryMixin``), which a cluster
does not run by default. Serve's own pipeline from replicas to the autoscaling policy is the replica's
``record_autoscaling_stats`` (pushed every ``RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S``,
aggregated over ``look_back_period_s`` into ``AutoscalingContext.aggregated_metrics`` per replica).
So the replica measures the interval Serve's processing-latency histogram measures (handler start to
end, in the replica, queueing inside the replica included) and adds the RTT from the request's client
region to its own region (the RTT table: the request path here is loopback, a real one is not). The
router's own latencies are not used: they live in each proxy and handle, not in the controller where
the policy runs, and a request waiting in a handle's queue is counted by Serve as ``total_queued_
requests`` anyway. What the replica reports (numbers only, as Serve requires):

- ``slo_p95_ms``: p95 over ``window_s`` of processing ms + RTT(client region, replica region);
- ``slo_requests``, ``slo_rps`` (requests per second over the window), ``slo_busy`` (the fraction of
  the window with a request in flight);
- ``slo_price_per_hour`` (its node's offer: price board > catalog; -1 unknown) and ``slo_region``
  (the index of its region in the RTT table's sorted regions; -1 unknown);
- ``slo_client:<region>``: requests from each client region (the current client mix).

The policy (``SloAutoscalingPolicy``, Serve's ``AutoscalingConfig.policy`` with ``policy_kwargs``)
turns those into ``policy.slo.ReplicaLoad``s and asks ``policy.slo.decide`` each control-loop tick:

- add: the new target goes to Serve; the new replica's resource demand makes the Ray autoscaler launch a
  serving-pool node, and a launch directive (``directives``) for the pool puts the chosen offer (the
  cheapest that keeps the SLO for the current client mix) first in the provider's placement;
- remove: after the decision has held for ``downscale_delay_s``, the chosen replica's node (the most
  expensive) is drained through the GCS with a deadline, and the target drops by one in the same tick:
  Serve's next loop sees the drain and the lower target together and stops the replica on the drained
  node, not the newest one (its default pick); the node, idle, is then reclaimed by the autoscaler.
  A node that is the head or hosts another replica of the deployment is not drained (that would move
  those too): Serve then picks which replica stops, and the log says so.

Predictive capacity (``predictive_guard``, a pool's ``predictive:`` section): with ``state_dir``,
``cluster_name`` and ``pool`` set, the policy appends the deployment's request rate (the sum of its
replicas' ``slo_rps``) to the pool's rate log at most every ``rate_every_s`` (``serve.rate_log``),
which the controller forecasts from; and it keeps at least the replica floor the controller
publishes for the pool (while younger than ``floor_max_age_s``): no removal below it, and a target
raised to it, so replicas start on the nodes requested ahead of a forecast ramp or a known peak.

Use ``slo_autoscaling_config(...)`` for ``serve.deployment(autoscaling_config=...)`` and make the
deployment a ``SloMeasured`` (wrap each request in ``self.slo_measure(request)``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ray_multicloud.policy.slo import CapacityOption, ReplicaLoad, SloTarget, decide
from ray_multicloud.serve.ranking import RttTable, client_region_from_key, load_rtt_table

# A child of Serve's own logger, so the lines land in the Serve controller's log next to its decisions.
logger = logging.getLogger("ray.serve.rmc_slo")

POLICY_PATH = "ray_multicloud.serve.slo_autoscale:SloAutoscalingPolicy"
CLIENT_PREFIX = "slo_client:"
STATE_PENDING = "rmc_slo_removing"
REGION_HEADER = "x-session-id"


def region_index(table: RttTable) -> list[str]:
    """The regions of ``table`` in the order ``slo_region`` indexes them."""
    return sorted(table.regions)


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]


class SloMeter:
    """Per-replica request latencies over a sliding window, as Serve autoscaling metrics.

    ``region``: the replica's region (None: unknown, no network term); ``price``: its node's price now
    (None: unknown), asked at each report so a price move shows. Thread-safe; ``clock`` is injectable.
    """

    def __init__(self, *, region: str | None, price: Callable[[], float | None], table: RttTable,
                 window_s: float = 10.0, clock: Any = time.monotonic) -> None:
        self.region = region
        self.price = price
        self.table = table
        self.window_s = float(window_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._done: deque[tuple[float, float, str | None]] = deque()  # (end, client-seen ms, client)
        self._busy: deque[tuple[float, float]] = deque()  # (start, end) of busy periods
        self._in_flight = 0
        self._busy_since: float | None = None

    def start(self) -> float:
        now = self._clock()
        with self._lock:
            if self._in_flight == 0:
                self._busy_since = now
            self._in_flight += 1
        return float(now)

    def finish(self, started: float, client_region: str | None) -> None:
        now = self._clock()
        net = 0.0
        if client_region is not None and self.region is not None:
            net = self.table.rtt(client_region, self.region) or 0.0
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0 and self._busy_since is not None:
                self._busy.append((self._busy_since, now))
                self._busy_since = None
            self._done.append((now, (now - started) * 1000.0 + net, client_region))
            self._trim(now)

    @contextmanager
    def measure(self, client_key: str | None) -> Iterator[None]:
        """Time one request from the client region its routing key names (see ``client_region_from_key``)."""
        client = client_region_from_key(client_key, self.table.regions)
        started = self.start()
        try:
            yield
        finally:
            self.finish(started, client)

    def _trim(self, now: float) -> None:
        edge = now - self.window_s
        while self._done and self._done[0][0] < edge:
            self._done.popleft()
        while self._busy and self._busy[0][1] < edge:
            self._busy.popleft()

    def stats(self) -> dict[str, float]:
        """The metrics of the module docstring, over the last ``window_s``."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            done = list(self._done)
            busy = list(self._busy)
            if self._busy_since is not None:
                busy.append((self._busy_since, now))
        edge = now - self.window_s
        busy_s = sum(max(0.0, end - max(start, edge)) for start, end in busy)
        regions = region_index(self.table)
        price = self.price()
        out: dict[str, float] = {
            "slo_requests": float(len(done)),
            "slo_rps": float(len(done)) / self.window_s if self.window_s > 0 else 0.0,
            "slo_busy": min(1.0, busy_s / self.window_s) if self.window_s > 0 else 0.0,
            "slo_price_per_hour": -1.0 if price is None else float(price),
            "slo_region": float(regions.index(self.region)) if self.region in regions else -1.0,
        }
        if done:
            out["slo_p95_ms"] = p95([ms for _, ms, _ in done])
        for _, _, client in done:
            if client is not None:
                key = CLIENT_PREFIX + client
                out[key] = out.get(key, 0.0) + 1.0
        return out


def replica_meter(*, state_dir: str | None = None, rtt_table: str | None = None,
                  window_s: float = 10.0) -> SloMeter:
    """A meter for the replica this runs in: its region and price from its node's labels (Ray must be
    initialised, as it is inside a Serve replica)."""
    import ray

    from ray_multicloud.serve.cluster_state import LABEL_REGION, PriceSource, offer_id_from_labels

    labels = {str(k): str(v) for k, v in ray.get_runtime_context().get_node_labels().items()}
    offer_id = offer_id_from_labels(labels)
    source = PriceSource(state_dir=state_dir)

    def price() -> float | None:
        return source.price(offer_id, now=time.time()) if offer_id else None

    return SloMeter(region=labels.get(LABEL_REGION) or None, price=price,
                    table=load_rtt_table(rtt_table), window_s=window_s)


class SloMeasured:
    """Mixin for a Serve deployment class: ``with self.slo_measure(request): ...`` around each request,
    and Serve's ``record_autoscaling_stats`` hook reports the meter. Set ``slo_state_dir`` /
    ``slo_window_s`` as class attributes to change where prices are read and the window."""

    slo_state_dir: str | None = None
    slo_window_s: float = 10.0
    _slo_meter: SloMeter | None = None

    def slo_meter(self) -> SloMeter:
        if self._slo_meter is None:
            self._slo_meter = replica_meter(state_dir=self.slo_state_dir, window_s=self.slo_window_s)
        return self._slo_meter

    def slo_measure(self, request: Any) -> Any:
        """The meter's context manager for a Starlette request (client region from its header)."""
        headers = getattr(request, "headers", None)
        key = headers.get(REGION_HEADER) if headers is not None else None
        return self.slo_meter().measure(key)

    def record_autoscaling_stats(self) -> dict[str, float]:
        return self.slo_meter().stats()


def loads_from_metrics(metrics: Mapping[str, Mapping[Any, float]], replicas: Sequence[Any],
                       regions: Sequence[str]) -> tuple[list[ReplicaLoad], dict[str, float]]:
    """``AutoscalingContext.aggregated_metrics`` -> (one ``ReplicaLoad`` per running replica, client mix).

    A replica with no report yet has no p95 (it is not judged) and unknown price and region.
    """
    loads: list[ReplicaLoad] = []
    mix: dict[str, float] = {}
    for name, per_replica in metrics.items():
        if name.startswith(CLIENT_PREFIX):
            mix[name[len(CLIENT_PREFIX):]] = sum(float(v) for v in per_replica.values())
    for rid in replicas:
        def get(name: str, rid: Any = rid) -> float | None:
            value = metrics.get(name, {}).get(rid)
            return None if value is None or not math.isfinite(float(value)) else float(value)

        index = get("slo_region")
        region = regions[int(index)] if index is not None and 0 <= int(index) < len(regions) else ""
        price = get("slo_price_per_hour")
        requests = get("slo_requests") or 0.0
        loads.append(ReplicaLoad(
            replica_id=str(getattr(rid, "unique_id", rid)),
            region=region,
            price_per_hour=price if price is not None and price >= 0 else None,
            p95_ms=get("slo_p95_ms") if requests > 0 else None,
            busy=get("slo_busy") or 0.0,
        ))
    return loads, mix


def metrics_rate(metrics: Mapping[str, Mapping[Any, float]]) -> float | None:
    """The deployment's request rate: the sum of its replicas' ``slo_rps`` (None: none reported)."""
    per_replica = metrics.get("slo_rps") or {}
    values = [float(v) for v in per_replica.values() if math.isfinite(float(v))]
    return sum(max(0.0, v) for v in values) if values else None


def slo_autoscaling_config(
    *,
    p95_ms: float,
    service_ms: float = 20.0,
    clients: Mapping[str, float] | None = None,
    offers: Sequence[CapacityOption] = (),
    min_replicas: int = 1,
    max_replicas: int = 4,
    initial_replicas: int | None = None,
    cluster_name: str = "",
    pool: str = "",
    state_dir: str | None = None,
    scale_in_below: float = 0.5,
    max_busy_after_scale_in: float = 0.6,
    upscale_delay_s: float = 5.0,
    downscale_delay_s: float = 20.0,
    look_back_period_s: float = 5.0,
    rate_every_s: float = 10.0,
    floor_max_age_s: float = 120.0,
) -> dict[str, Any]:
    """``autoscaling_config`` for ``serve.deployment``: the SLO policy and its arguments.

    ``offers``: where the pool can buy a node (its matching offers: id, region, price); ``clients``: the
    declared client mix, used until requests are measured; ``cluster_name``/``pool``/``state_dir``:
    where the launch directive is published (empty: none). Serve applies ``upscale_delay_s``; the
    policy applies ``downscale_delay_s`` itself (it drains a node when it removes, so the decision
    must have held first) and gives Serve 0.
    """
    SloTarget(p95_ms, service_ms, scale_in_below, max_busy_after_scale_in)  # validate now
    return {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "initial_replicas": initial_replicas if initial_replicas is not None else min_replicas,
        "upscale_delay_s": upscale_delay_s,
        "downscale_delay_s": 0.0,
        "look_back_period_s": look_back_period_s,
        "policy": {
            "policy_function": POLICY_PATH,
            "policy_kwargs": {
                "p95_ms": p95_ms, "service_ms": service_ms,
                "scale_in_below": scale_in_below, "max_busy_after_scale_in": max_busy_after_scale_in,
                "clients": dict(clients or {}),
                "offers": [[o.offer_id, o.region, o.price_per_hour] for o in offers],
                "cluster_name": cluster_name, "pool": pool, "state_dir": state_dir or "",
                "downscale_delay_s": downscale_delay_s,
                "rate_every_s": rate_every_s, "floor_max_age_s": floor_max_age_s,
            },
        },
    }


class SloAutoscalingPolicy:
    """Serve custom autoscaling policy (a class: Serve builds it once with ``policy_kwargs``)."""

    def __init__(self, *, p95_ms: float, service_ms: float = 20.0, scale_in_below: float = 0.5,
                 max_busy_after_scale_in: float = 0.6, clients: Mapping[str, float] | None = None,
                 offers: Sequence[Sequence[Any]] = (), cluster_name: str = "", pool: str = "",
                 state_dir: str = "", downscale_delay_s: float = 20.0, rtt_table: str | None = None,
                 rate_every_s: float = 10.0, floor_max_age_s: float = 120.0) -> None:
        self.slo = SloTarget(p95_ms, service_ms, scale_in_below, max_busy_after_scale_in)
        self.clients = dict(clients or {})
        self.offers = [CapacityOption(str(o[0]), str(o[1]), float(o[2])) for o in offers]
        self.cluster_name, self.pool, self.state_dir = cluster_name, pool, state_dir
        self.downscale_delay_s = downscale_delay_s
        self.table = load_rtt_table(rtt_table)
        self.regions = region_index(self.table)
        self._last_reason = ""
        self._prices: Any = None
        self.rate_every_s, self.floor_max_age_s = float(rate_every_s), float(floor_max_age_s)
        self._rate_at = -math.inf
        self._floor: tuple[float, int | None] = (-math.inf, None)  # (read at, floor)
        if state_dir:
            from ray_multicloud.serve.cluster_state import PriceSource

            # The price board (a price move) first, then the prices the offers came with.
            self._prices = PriceSource(prices={o.offer_id: o.price_per_hour for o in self.offers},
                                       state_dir=state_dir, use_catalog=False)

    def live_offers(self, now: float) -> list[CapacityOption]:
        """The pool's offers at their current prices (price board > the prices they came with)."""
        if self._prices is None:
            return list(self.offers)
        out = []
        for o in self.offers:
            price = self._prices.price(o.offer_id, now=now)
            out.append(CapacityOption(o.offer_id, o.region, o.price_per_hour if price is None else price))
        return out

    def __call__(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        state = dict(ctx.policy_state or {})
        now = float(ctx.current_time or time.time())
        loads, mix = loads_from_metrics(ctx.aggregated_metrics or {}, list(ctx.running_replicas),
                                        self.regions)
        current = int(ctx.target_num_replicas)
        self._record_rate(now, metrics_rate(ctx.aggregated_metrics or {}))
        floor = self.floor(now)
        pending = state.get(STATE_PENDING)
        if pending is not None:
            if any(r.replica_id == pending.get("replica") for r in loads) and now - pending["at"] < 60:
                return int(pending["target"]), state  # the drained replica is still being stopped
            state.pop(STATE_PENDING, None)
        offers = self.live_offers(time.time())
        decision = decide(self.slo, loads, offers, mix or self.clients, self.table.rtt,
                          min_replicas=int(ctx.capacity_adjusted_min_replicas),
                          max_replicas=int(ctx.capacity_adjusted_max_replicas))
        self._log(decision.action, decision.replicas, decision.reasons)
        if floor is not None:
            floor = min(floor, int(ctx.capacity_adjusted_max_replicas))
            if decision.action == "remove" and len(loads) - 1 < floor:
                state.pop("rmc_slo_remove_since", None)
                return max(current, floor), state  # the predicted demand (or a peak) needs them
            if decision.action != "add" and current < floor:
                self._log("floor", floor, [f"predictive floor {floor} replicas (published by the "
                                           "controller)"])
                return floor, state
        if decision.action == "add":
            state.pop("rmc_slo_remove_since", None)
            if decision.add is not None:
                self._direct(decision.add, offers, decision.reasons)
            return max(current, len(loads) + 1, floor or 0), state
        if decision.action == "remove" and decision.remove is not None:
            since = float(state.setdefault("rmc_slo_remove_since", now))
            if now - since < self.downscale_delay_s:
                return current, state
            state.pop("rmc_slo_remove_since", None)
            target = len(loads) - 1
            drained = self._drain(ctx, decision.remove.replica_id)
            state[STATE_PENDING] = {"replica": decision.remove.replica_id, "at": now, "target": target,
                                    "drained": drained}
            return target, state
        state.pop("rmc_slo_remove_since", None)
        return current, state

    def _record_rate(self, now: float, rate: float | None) -> None:
        """Append the deployment's rate to the pool's rate log, at most every ``rate_every_s``."""
        if rate is None or not (self.state_dir and self.cluster_name and self.pool):
            return
        if now - self._rate_at < self.rate_every_s:
            return
        self._rate_at = now
        from ray_multicloud.serve.rate_log import append_rate, rate_log_path

        try:
            append_rate(rate_log_path(self.state_dir, self.cluster_name, self.pool), now, rate)
        except OSError as exc:
            logger.warning("SLO autoscaling: could not log the request rate: %s", exc)

    def floor(self, now: float) -> int | None:
        """The controller's predictive replica floor for this pool (re-read at most every 5 s)."""
        if not (self.state_dir and self.cluster_name and self.pool):
            return None
        read_at, value = self._floor
        if now - read_at < 5.0:
            return value
        from ray_multicloud.serve.rate_log import floor_path, read_floor

        value = read_floor(floor_path(self.state_dir, self.cluster_name), self.pool, now=now,
                           max_age_s=self.floor_max_age_s)
        self._floor = (now, value)
        return value

    def _log(self, action: str, target: int, reasons: Sequence[str]) -> None:
        """One log line per change of (action, target): the policy runs every control-loop tick."""
        key = f"{action}/{target}"
        if key != self._last_reason:
            logger.info("SLO autoscaling: %s", "; ".join(reasons))
        self._last_reason = key

    def _direct(self, offer: CapacityOption, offers: Sequence[CapacityOption],
                reasons: Sequence[str]) -> None:
        """Publish a launch directive so the pool's next node is bought on ``offer`` (best effort)."""
        if not (self.state_dir and self.cluster_name and self.pool):
            return
        from ray_multicloud.directives import SLO_DIRECTIVE_PREFIX, Directive, LaunchDirectives

        others = sorted((o for o in offers if o.offer_id != offer.offer_id),
                        key=lambda o: (o.price_per_hour, o.offer_id))
        try:
            LaunchDirectives(self.state_dir).publish(self.cluster_name, {self.pool: Directive(
                kind="spot", offer_id=offer.offer_id, at=time.time(),
                reason=SLO_DIRECTIVE_PREFIX + reasons[-1],
                then=tuple(o.offer_id for o in others))})
        except OSError as exc:
            logger.warning("SLO autoscaling: could not publish the launch directive: %s", exc)

    def _drain(self, ctx: Any, replica_id: str) -> bool:
        """Drain the node of ``replica_id`` (PREEMPTION, 60 s deadline) so Serve stops that replica.

        Not when the node is the head or hosts another replica of the deployment (a drain would move
        those too): then Serve picks which replica stops, and the log says so.
        """
        try:
            import ray
            from ray._private.state import state as gcs_state

            from ray_multicloud.worker.drain import deadline_after, drain_node

            def node_of(rid: Any) -> str:
                handle = ray.get_actor(rid.to_full_id_str(), namespace="serve")
                return str(gcs_state.actor_table(handle._actor_id.hex())["Address"]["NodeID"])

            nodes = {str(r.unique_id): node_of(r) for r in ctx.running_replicas}
            node = nodes[replica_id]
            shared = [r for r, n in nodes.items() if n == node and r != replica_id]
            head = any(n.get("NodeID") == node and "node:__internal_head__" in (n.get("Resources") or {})
                       for n in ray.nodes())
            if shared or head:
                logger.info("SLO autoscaling: not draining node %s for replica %s (%s); Serve picks which "
                            "replica stops", node[:12], replica_id,
                            "the head node" if head else f"it also hosts {', '.join(shared)}")
                return False
            accepted, why = drain_node(ray.get_runtime_context().gcs_address, node,
                                       deadline_s=deadline_after(60.0),
                                       message=f"rmc slo: autoscaling removes replica {replica_id}")
            logger.info("SLO autoscaling: drain of node %s for replica %s: %s", node[:12], replica_id,
                        "accepted" if accepted else f"rejected ({why})")
            return bool(accepted)
        except Exception as exc:  # noqa: BLE001 - a failed drain leaves Serve's own pick, never a crash
            logger.warning("SLO autoscaling: could not drain the node of %s (%s); Serve picks which "
                           "replica stops", replica_id, exc)
            return False
