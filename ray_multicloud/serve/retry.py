"""Retry, where it is safe, the requests in flight on a replica that was lost (a spot node or a whole
cloud gone without notice).

Ray Serve retries a request only when a replica refuses it before running it (its router's
reject-and-retry). A request a replica has accepted and was running when its node died comes back as
an actor error, and Serve's HTTP proxy answers ``500 Internal Server Error`` (issue 14: 1 and 3 of about
1,100 requests in two outage runs of ``benchmarks/bench_serve.py``). ``RetryingGateway`` is a small
ingress deployment, on the head node (which never goes with a spot node or a cloud), that calls the
model deployment through a ``DeploymentHandle`` and sends a request again to another replica when the
first one was lost -- only when that is safe:

- safe, retried (up to ``max_attempts`` in all): HTTP ``GET``, ``HEAD``, ``OPTIONS`` (safe methods,
  RFC 9110 section 9.2.1: the client asks nothing to change), ``PUT`` and ``DELETE`` (idempotent, RFC
  9110 section 9.2.2), and any request that carries an ``Idempotency-Key`` header (the client says a
  second execution is harmless: the server de-duplicates by the key);
- not retried: ``POST`` and ``PATCH`` without an ``Idempotency-Key`` (running them twice may do twice
  what they do: charge twice, append twice), and any error raised by the model's own code (a retry
  would fail the same way); those reach the client as before.

What counts as "the replica was lost": ``ray.exceptions.ActorDiedError``, ``ActorUnavailableError``
and ``RayActorError`` (the actor or its node is gone); never ``RayTaskError`` (the user code raised).
The model deployment keeps its own router: the gateway passes the client region on as the handle's
``session_id``, as the proxy does from ``x-session-id``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_HEADER = "idempotency-key"
REGION_HEADER = "x-session-id"
HEAD_RESOURCE = "node:__internal_head__"


def attempts_for(method: str, headers: Mapping[str, str], max_attempts: int) -> int:
    """How many times a request may be sent: ``max_attempts`` when a retry is safe (see the module
    docstring), else 1. Header names are matched case-insensitively."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    idempotent = any(k.lower() == IDEMPOTENCY_HEADER and v for k, v in headers.items())
    return max_attempts if method.upper() in SAFE_METHODS or idempotent else 1


def replica_lost(exc: BaseException) -> bool:
    """True when ``exc`` says the replica (actor) or its node is gone, not that the model raised."""
    from ray import exceptions

    if isinstance(exc, exceptions.RayTaskError):
        return False
    lost = (exceptions.ActorDiedError, exceptions.ActorUnavailableError, exceptions.RayActorError)
    return isinstance(exc, lost)


def retrying_gateway(model: Any, *, max_attempts: int = 3, max_ongoing_requests: int = 1000) -> Any:
    """A bound Serve app: ``RetryingGateway`` on the head node in front of the bound ``model`` app.

    The model is called with a dict ``{"method", "path", "query", "headers"}`` (a Starlette request
    does not travel through a handle) and its answer is returned as is.
    """
    from ray import serve

    @serve.deployment(
        ray_actor_options={"num_cpus": 0, "resources": {HEAD_RESOURCE: 0.001}},
        max_ongoing_requests=max_ongoing_requests,
    )
    class RetryingGateway:
        def __init__(self, handle: Any) -> None:
            self.handle = handle
            self.retried = 0

        async def __call__(self, request: Any) -> Any:
            headers = {str(k): str(v) for k, v in request.headers.items()}
            payload = {"method": request.method, "path": request.url.path, "query": str(request.url.query),
                       "headers": headers}
            region = headers.get(REGION_HEADER, "")
            attempts = attempts_for(request.method, headers, max_attempts)
            handle = self.handle.options(session_id=region) if region else self.handle
            for attempt in range(1, attempts + 1):
                try:
                    return await handle.remote(payload)
                except Exception as exc:
                    if attempt >= attempts or not replica_lost(exc):
                        raise
                    self.retried += 1
                    logger.warning("retrying %s %s (attempt %d of %d): its replica was lost (%s)",
                                   request.method, request.url.path, attempt + 1, attempts,
                                   type(exc).__name__)
            raise AssertionError("unreachable")  # pragma: no cover

    return RetryingGateway.bind(model)  # type: ignore[attr-defined]
