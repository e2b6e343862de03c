"""``ray-multicloud assess``'s evidence: each pool and job of a cluster, measured for ``policy.assess``.

For every node type with a ``pool:`` (and every job of the ledger, on the pool it spent most hours
in), from the ledger up to ``until``:

- *recorded*: its node hours ``H`` and what they cost ``C`` (reserved nodes at their term price);
- *replayed*: the same ``H`` hours of work as a one-node job with no deadline, under the pool's
  ``migration.policy`` (default ``multicloud``), through the simulator (``sim.simulate``) over the
  given spot traces: spot at the traces' prices (a trace file without prices: the cheapest spot
  offer of the pool's machines in the catalogue, whatever its ``capacity_types``: what the policy
  would buy if handed the pool), on-demand at the recorded on-demand $/h (``OD / H``),
  restarts of ``restart_minutes``, checkpoints every ``checkpoint_minutes``. When ``H`` is longer
  than half the traces, half the traces' hours are replayed and the cost and moves are scaled to
  ``H`` (the note says so). The replay's preemptions and moves are the moves counted for egress.
  A multi-node pool's hours are replayed as one node's: the node hours are what is paid either way,
  but a gang's joint preemptions are not modelled;
- *how hard to move*: the pool's ``migration.checkpoint_gb`` (``measure``: the default size),
  its ``migration.restart_seconds`` or, when the ledger's move journal holds completed moves of the
  pool, their measured mean duration (request to done), and its inter-cloud egress price;
- *declared*: ``pool.criticality`` (low, medium, high) and ``migration.enabled`` (already hands-off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_multicloud.cluster_config.migration import parse_migration
from ray_multicloud.cluster_config.pools import pool_criticality
from ray_multicloud.errors import MultiCloudError
from ray_multicloud.ledger import SpendRow
from ray_multicloud.moves import MoveRecord, MoveState
from ray_multicloud.policy.assess import Candidate, Criticality

MIN_REPLAY_HOURS = 0.01


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What the YAML and the move journal say of one pool."""

    name: str
    enabled: bool
    policy: str
    checkpoint_gb: float
    restart_minutes: float
    restart_measured: int  # completed moves the restart time is the mean of; 0: declared
    egress_usd_per_gb: float
    criticality: Criticality
    spot_price: float | None  # the cheapest spot offer the pool admits (for unpriced traces)


def pool_facts(
    cluster_config: Mapping[str, Any], journal: Sequence[MoveRecord], spot_price: Mapping[str, float | None],
    *, controller: bool = True,
) -> dict[str, PoolFacts]:
    """Every pool node type's facts (module docstring); ``spot_price``: pool -> its cheapest spot price;
    ``controller``: whether the controller runs (``provider.start_controller``): without it no pool
    is hands-off whatever its ``migration.enabled``."""
    out: dict[str, PoolFacts] = {}
    for node_type, spec in (cluster_config.get("available_node_types") or {}).items():
        node_config = spec.get("node_config") if isinstance(spec, Mapping) else None
        if not isinstance(node_config, Mapping) or "pool" not in node_config:
            continue
        name = str(node_type)
        migration = parse_migration(name, node_config)
        done = [m.updated_at - m.started_at for m in journal
                if m.pool == name and m.state is MoveState.DONE and m.updated_at >= m.started_at]
        restart = sum(done) / len(done) / 60.0 if done else migration.rebalance.restart_s / 60.0
        out[name] = PoolFacts(
            name=name,
            enabled=migration.enabled and controller,
            policy=migration.rebalance.deadline_policy,
            checkpoint_gb=migration.rebalance.state_gb,
            restart_minutes=restart,
            restart_measured=len(done),
            egress_usd_per_gb=migration.rebalance.egress_usd_per_gb,
            criticality=pool_criticality(name, node_config),
            spot_price=spot_price.get(name),
        )
    return out


@dataclass(frozen=True, slots=True)
class Replay:
    cost_usd: float
    moves: int
    note: str = ""


def replay(
    traces_dirs: Sequence[str | Path], facts: PoolFacts, hours: float, ondemand_price: float,
    *, checkpoint_minutes: float,
) -> Replay:
    """The policy's cost of ``hours`` of work on the traces (module docstring); ``MultiCloudError``
    when the traces cannot be used."""
    from ray_multicloud.policy.deadline import POLICIES
    from ray_multicloud.sim import JobSpec, load_traces, simulate

    traces = load_traces(traces_dirs, default_spot_price=facts.spot_price)
    window = traces.hours / 2.0
    work = min(hours, window)
    note = ""
    if work < hours:
        note = f"replayed {work:.1f} h of {hours:.1f} h (half the traces) and scaled"
    spec = JobSpec(work_hours=max(work, MIN_REPLAY_HOURS), deadline_hours=None,
                   checkpoint_minutes=checkpoint_minutes, restart_minutes=facts.restart_minutes)
    result = simulate(traces, spec, POLICIES[facts.policy], ondemand_price=ondemand_price)
    if not result.finished:
        raise MultiCloudError(f"the replay of pool {facts.name!r} did not finish within the traces "
                              f"({traces.hours:.1f} h); give longer traces")
    scale = hours / max(work, MIN_REPLAY_HOURS)
    return Replay(result.cost_usd * scale, round((result.moves + result.preemptions) * scale), note)


def candidates(
    rows: Sequence[SpendRow],
    facts: Mapping[str, PoolFacts],
    traces_dirs: Sequence[str | Path],
    *,
    checkpoint_minutes: float = 30.0,
) -> list[Candidate]:
    """One candidate per pool of ``facts`` and per job of ``rows`` (module docstring). A pool or job
    with no recorded hours, or whose replay fails, is a candidate without a replay (its note says
    why)."""
    groups: list[tuple[str, str, list[SpendRow]]] = [
        ("pool", name, [r for r in rows if r.pool == name]) for name in facts
    ]
    for job in sorted({r.job for r in rows if r.job}):
        mine = [r for r in rows if r.job == job]
        hours_in: dict[str, float] = {}
        for r in mine:
            hours_in[r.pool] = hours_in.get(r.pool, 0.0) + r.hours
        pool = max(sorted(hours_in), key=lambda p: hours_in[p])
        if pool in facts:
            groups.append(("job", job, [r for r in mine if r.pool == pool]))
    out: list[Candidate] = []
    for kind, name, mine in groups:
        f = facts[mine[0].pool] if mine else facts[name]
        hours = sum(r.hours for r in mine)
        cost = sum(r.cost_usd for r in mine)
        note = f"restart time measured over {f.restart_measured} move(s)" if f.restart_measured else ""
        policy_cost: float | None = None
        moves = 0
        if hours <= 0:
            note = "no recorded hours in the ledger"
        else:
            try:
                done = replay(traces_dirs, f, hours, sum(x.ondemand_cost_usd for x in mine) / hours,
                              checkpoint_minutes=checkpoint_minutes)
                policy_cost, moves = done.cost_usd, done.moves
                note = "; ".join(n for n in (note, done.note) if n)
            except MultiCloudError as exc:
                note = f"not replayed: {exc}"
        out.append(Candidate(
            name=name, kind=kind, pool=f.name, hours=hours, cost_usd=cost, policy_cost_usd=policy_cost,
            moves=moves, checkpoint_gb=f.checkpoint_gb, restart_minutes=f.restart_minutes,
            egress_usd_per_gb=f.egress_usd_per_gb, criticality=f.criticality, hands_off=f.enabled, note=note,
        ))
    return out
