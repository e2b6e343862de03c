"""Ray Serve's transport switches for the request path, as environment for every Ray process.

Serve reads these when its processes start, so every node must start Ray with the same ones (a
handle that calls over gRPC needs replicas that serve gRPC). A cluster YAML chooses with
``provider: serve_transport: optimized`` (default ``default``): the provider exports the variables
before ``ray start`` on every worker (its startup script) and before every ``head_start_ray_commands``
entry on the head (``head_commands``). The variables:

- ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``: Serve's documented high-throughput switch (Ray docs, "Enable
  High Throughput on Ray Serve"): a handle calls its replicas over gRPC instead of as Ray actor
  tasks, user code runs on the replica's own event loop, access logs are buffered;
- ``RAY_SERVE_PROXY_USE_GRPC=1``: the HTTP proxy calls the ingress replica over gRPC too;
- ``RAY_SERVE_ENABLE_DIRECT_INGRESS=0``: keep the HTTP proxy as the one front door. The throughput
  switch would otherwise start no proxy and have every ingress replica listen on a port of its own,
  for a load balancer (HAProxy) in front.

What it buys is measured by ``benchmarks/bench_serve_hops.py`` (latency of one and two Serve hops,
both modes alternating). A request in flight on a replica that is lost still fails over: over gRPC
Serve reports the lost replica as ``ActorUnavailableError`` (which ``serve.retry.replica_lost``
counts as lost), as ``tests/test_serve_retry_live.py`` checks in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

LOW_LATENCY_ENV: Mapping[str, str] = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_PROXY_USE_GRPC": "1",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
}
"""The environment of the ``optimized`` transport (see the module docstring)."""

TRANSPORTS: Mapping[str, Mapping[str, str]] = {"default": {}, "optimized": LOW_LATENCY_ENV}
"""Transport name -> the environment it sets (``default``: Serve's own defaults, nothing set)."""


def transport_env(name: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with transport ``name``'s variables set and the other transports' removed.

    Raises ``ValueError`` naming the known transports for an unknown ``name``.
    """
    if name not in TRANSPORTS:
        raise ValueError(f"unknown Serve transport {name!r}: use one of {', '.join(TRANSPORTS)}")
    managed = {key for env in TRANSPORTS.values() for key in env}
    env = {k: v for k, v in base.items() if k not in managed}
    env.update(TRANSPORTS[name])
    return env


def head_commands(commands: Sequence[str], name: str) -> list[str]:
    """``commands`` (a cluster YAML's ``head_start_ray_commands``) each run with transport ``name``'s
    variables exported; unchanged for ``default``. Idempotent: a command that already exports them is
    left as it is. ``ValueError`` for an unknown ``name`` (``transport_env``'s)."""
    transport_env(name, {})  # the name check
    env = TRANSPORTS[name]
    if not env:
        return list(commands)
    prefix = "export " + " ".join(f"{key}={value}" for key, value in sorted(env.items())) + "; "
    return [str(c) if prefix in str(c) else prefix + str(c) for c in commands]

