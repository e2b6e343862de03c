"""A request in flight on a replica whose process dies, through ``RetryingGateway``, on a real Ray:
a GET is answered by the other replica; a POST without an ``Idempotency-Key`` is not sent again
(the client gets the error). In both Serve transports of ``ray_multicloud.serve.transport``: over
gRPC (``optimized``) Serve reports the lost replica differently than over Ray actor calls, and the
gateway must recognise both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ray_multicloud.serve.transport import transport_env

pytestmark = pytest.mark.e2e

CHILD = Path(__file__).with_name("_serve_retry_child.py")


@pytest.mark.parametrize("transport", ["default", "optimized"])
def test_in_flight_request_on_a_killed_replica(transport: str, tmp_path: Path) -> None:
    env = transport_env(transport, os.environ)
    done = subprocess.run([sys.executable, str(CHILD), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=400, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    results = json.loads(lines[-1])

    get = results["GET"]
    assert get["status"] == 200, get  # retried on the other replica
    assert get["pid"] != get["killed"], get

    post = results["POST"]
    assert post["status"] == 500, post  # not safe to send twice: the client sees the loss
