"""Pure decisions over frozen data: where a new node goes, which running nodes move, what a deadline
job runs next.

* ``place``: the offer (and failover order) for each new node of a pool, gangs kept together;
* ``rebalance``: the moves to make now — price moves, and for a pool running a deadline job the
  pool's ``DeadlinePolicy`` (the same call the simulator scores), gangs moved whole;
* ``deadline``: the deadline policies themselves (``multicloud`` and the published baselines).

Nothing in this package does I/O, reads the clock, logs or imports Ray; ``now`` is an argument
and every decision carries its reasons.

**One job, three views.** A training job with a deadline is seen three ways, each by the layer
that can know it:

* ``train.progress.DeadlineJob`` — what the job *declares*: its pool, its Train run directory, its
  total steps and deadline (from ``run_config(..., deadline=...)``'s manifest or the controller's
  ``--deadline-job``). Steps and wall-clock times; I/O-side.
* ``policy.rebalance.JobProgress`` — where the job *stands*, estimated from its checkpoints
  (``train.progress.job_progress``): work done, checkpointed and total in hours of running,
  submission and deadline in POSIX seconds. What the controller holds per pool.
* ``policy.deadline.JobView`` — what a ``DeadlinePolicy`` *decides on* at one tick: the progress in
  hours since submission, the placement it holds, every spot zone with its availability and
  price, restart and tick lengths. The simulator builds it from a trace; the controller builds it
  from ``JobProgress`` and the live offers (``rebalance.job_view``), the same way.
"""

from __future__ import annotations

from ray_multicloud.policy.place import (
    OfferIndex,
    PoolProblem,
    check_pool,
    describe_offer,
    matching_offers,
    money,
    place,
)

__all__ = [
    "OfferIndex",
    "PoolProblem",
    "check_pool",
    "describe_offer",
    "matching_offers",
    "money",
    "place",
]
