"""Child process of ``tests/test_serve_retry_live.py``: one private Ray on 127.0.0.1, a two-replica
model behind ``RetryingGateway``, a request in flight on a replica whose process is then killed.

Run with the Serve transport's environment already set (Serve reads it when Ray starts). Prints one
JSON line: for each case (``GET``, ``POST`` without an idempotency key), the HTTP status the client
got, the pid of the replica that was killed, and the pid that answered (when one did).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (RAY_NOTES.md)

HOLD_S = 4.0


def main(workdir: str) -> int:
    import ray
    from ray import serve

    from ray_multicloud.scenarios.local_cluster import free_port
    from ray_multicloud.serve.retry import retrying_gateway

    @serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=4)
    class Holder:
        """Writes its pid to ``<dir>/<case>.pid`` when a request arrives, then holds it ``HOLD_S``."""

        def __init__(self, directory: str) -> None:
            self.directory = directory

        async def __call__(self, request: dict[str, Any]) -> dict[str, int]:
            case = request["query"].removeprefix("case=")
            if case:
                Path(self.directory, f"{case}.pid").write_text(str(os.getpid()))
                await asyncio.sleep(HOLD_S)
            return {"pid": os.getpid()}

    def ask(port: int, method: str, case: str, out: dict[str, Any]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request(method, f"/?case={case}")
            response = conn.getresponse()
            body = response.read()
            out["status"] = response.status
            out["pid"] = json.loads(body)["pid"] if response.status == 200 else None
        finally:
            conn.close()

    def kill_in_flight(port: int, method: str, case: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        client = threading.Thread(target=ask, args=(port, method, case, out))
        client.start()
        pid_file = Path(workdir, f"{case}.pid")
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = int(pid_file.read_text())
        os.kill(killed, signal.SIGKILL)  # a replica process of this test's own Ray
        client.join(90)
        out["killed"] = killed
        return out

    def wait_running(replicas: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = serve.status().applications.get("default")
            if status is not None:
                states = status.deployments["Holder"].replica_states
                if states.get("RUNNING", 0) == replicas and sum(states.values()) == replicas:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"Holder did not reach {replicas} RUNNING replicas in 120 s")

    ray.init(address="local", include_dashboard=False, log_to_driver=False, num_cpus=2,
             _node_ip_address="127.0.0.1", configure_logging=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
        serve.run(retrying_gateway(Holder.bind(workdir)), route_prefix="/")  # type: ignore[attr-defined]
        wait_running(2)
        ask(port, "GET", "", {})  # warm both hops
        results = {"GET": kill_in_flight(port, "GET", "get")}
        wait_running(2)
        results["POST"] = kill_in_flight(port, "POST", "post")
        print(json.dumps(results), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
