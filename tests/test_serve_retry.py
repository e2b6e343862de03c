"""serve/retry.py: which requests are retried when their replica is lost (RFC 9110 safe and idempotent
methods, or an Idempotency-Key), and which errors mean "the replica was lost"."""

from __future__ import annotations

import pytest
from ray import exceptions

from ray_multicloud.serve.retry import attempts_for, replica_lost


@pytest.mark.parametrize(("method", "headers", "expected"), [
    ("GET", {}, 3), ("get", {}, 3), ("HEAD", {}, 3), ("OPTIONS", {}, 3), ("PUT", {}, 3), ("DELETE", {}, 3),
    ("POST", {}, 1), ("PATCH", {}, 1),
    ("POST", {"Idempotency-Key": "order-42"}, 3), ("PATCH", {"idempotency-key": "k"}, 3),
    ("POST", {"Idempotency-Key": ""}, 1),
])
def test_which_requests_are_retried(method: str, headers: dict[str, str], expected: int) -> None:
    assert attempts_for(method, headers, 3) == expected


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        attempts_for("GET", {}, 0)


def test_lost_replica_errors_but_not_model_errors() -> None:
    assert replica_lost(exceptions.ActorDiedError())
    assert replica_lost(exceptions.ActorUnavailableError("node gone", None))
    assert replica_lost(exceptions.RayActorError())
    assert not replica_lost(ValueError("model raised"))
    task_error = exceptions.RayTaskError("f", "traceback", ValueError("model raised"))
    assert not replica_lost(task_error)
