"""Run a sweep's independent scenarios as Ray tasks: a local Ray by default, a cluster with ``address``.

A policy evaluation over months of traces is thousands of independent simulations. The benchmarks
(``bench_policies``, ``bench_crosscloud``, ``bench_paper``, ``bench_policy_limits``) hand their scenario
function and task list to :func:`run_tasks`, so a user scales them out on the Ray they already run
(``--address 127.0.0.1:6379`` or ``auto``) instead of waiting on one machine's processes. Each task is
one ``fn(task)`` call and its result is the function's return value, so the figures do not depend on
where they ran; results come back in completion order (the callers sort them).

Without ``address`` a private local Ray is started for the sweep, bound to 127.0.0.1 (this package
never lets Ray pick another address), with ``workers`` CPUs, and shut down afterwards; a Ray this
process is already connected to is used as it is and left running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    address: str | None = None,
    workers: int = 2,
) -> Iterator[R]:
    """``fn(task)`` for every task, each as one Ray task (module docstring); yields the results as
    they complete. ``fn`` and the tasks must be picklable (cloudpickle: a benchmark script's own
    functions travel by value). Raises ``ValueError`` for ``workers < 1``; a task's exception is
    re-raised here."""
    for _, result in _indexed(fn, tasks, address=address, workers=workers):
        yield result


def map_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    address: str | None = None,
    workers: int = 2,
) -> list[R]:
    """``run_tasks``, with the results in the order of ``tasks`` (as ``multiprocessing``'s ``map``)."""
    results: dict[int, R] = dict(_indexed(fn, tasks, address=address, workers=workers))
    return [results[i] for i in range(len(tasks))]


def _indexed(
    fn: Callable[[T], R], tasks: Sequence[T], *, address: str | None, workers: int
) -> Iterator[tuple[int, R]]:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (RAY_NOTES.md)
    import ray

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": a new Ray of its own, never one found through RAY_ADDRESS or /tmp/ray.
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1", configure_logging=False)
        started = True
    try:
        remote: Any = ray.remote(num_cpus=1, max_retries=0)(_call)
        shared = ray.put(fn)  # sent once, not with every task
        index = {remote.remote(shared, t): i for i, t in enumerate(tasks)}
        pending: list[Any] = list(index)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield index[done[0]], ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def _call(fn: Callable[[T], R], task: T) -> R:
    """One task's body: ``fn(task)`` (a function of this module, so any callable can be swept)."""
    return fn(task)
