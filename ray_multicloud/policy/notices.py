"""Answer an interruption notice before the node is gone: where each noticed node's replacement goes.

A spot notice drains the node (reason PREEMPTION, the notice's deadline). Left alone, the job
restarts only once the node is gone, and only then does the autoscaler launch a node for the work
that lost its place: the job waits for a boot *and* a restart after the deadline. Launching the
replacement on the notice, and restarting the job onto it as soon as it is up, moves both before the
deadline whenever the notice is longer than a boot plus a restart (AWS gives two minutes; GCP and
Azure 30 s).

Contract
--------
``notice_moves`` is pure. Given the pools the controller may move, the fleet, and the noticed nodes
(instance -> the notice's deadline, POSIX seconds; the caller passes only nodes whose Ray node is busy
and that no move of the controller's own has drained), it returns one ``Move`` per noticed node whose
pool is in ``pools`` and whose deadline is still ahead, to the offer ``policy.place`` would choose for
a new node of that pool now: the same choice the autoscaler makes after the node is gone, made
earlier. The noticed nodes themselves are left out of the fleet ``place`` sees (they no longer count
towards ``min_clouds``, ``min_on_demand`` or a gang's place). Several noticed nodes of one pool are
placed in one call, as one group. A pool with no admissible offer gets no move and a note saying why;
so does a node whose deadline has passed. ``saving_per_hour`` is the price difference (negative when
the replacement is dearer); ``move_cost_usd`` is 0: the node is lost either way, so moving its work
costs nothing a stay would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ray_multicloud.policy.place import OfferIndex, place
from ray_multicloud.types import Decision, FleetNode, InstanceId, Move, OfferId, PoolSpec


def notice_moves(
    pools: Mapping[str, PoolSpec],
    fleet: Sequence[FleetNode],
    noticed: Mapping[InstanceId, float],
    offers: OfferIndex,
    *,
    now: float,
    cooldowns: Mapping[OfferId, float] | None = None,
) -> tuple[list[Move], list[str]]:
    """The replacement move of every noticed node (module docstring), and notes for those without."""
    moves: list[Move] = []
    notes: list[str] = []
    by_pool: dict[str, list[FleetNode]] = {}
    for node in fleet:
        deadline = noticed.get(node.instance_id)
        if deadline is None or node.pool not in pools:
            continue
        if deadline <= now:
            notes.append(
                f"{node.instance_id}: notice's deadline passed {now - deadline:.1f} s ago; nothing to gain"
            )
            continue
        by_pool.setdefault(node.pool, []).append(node)
    rest = [n for n in fleet if n.instance_id not in noticed]
    for name, nodes in by_pool.items():
        answer = place(pools[name], len(nodes), offers, rest, now=now, cooldowns=cooldowns)
        if not isinstance(answer, Decision):
            notes.append(f"pool {name!r}: no replacement on notice: {'; '.join(answer.reasons)}")
            continue
        for node, placement in zip(nodes, answer.placements, strict=True):
            lead = noticed[node.instance_id] - now
            moves.append(
                Move(
                    instance_id=node.instance_id,
                    pool=name,
                    from_offer=node.offer,
                    to_offer=placement.offer,
                    saving_per_hour=node.offer.price_per_hour - placement.offer.price_per_hour,
                    move_cost_usd=0.0,
                    reasons=(
                        f"interruption notice: the node is gone in {lead:.1f} s; its replacement is "
                        "launched now, and the job restarts onto it once it is up",
                        *placement.reasons,
                    ),
                )
            )
    return moves, notes
