"""The last ``list(cluster)`` a driver made, kept for a few seconds so that ``launch`` need not ask
the cloud again whether its request already has an instance.

The autoscaler lists the fleet (``non_terminated_nodes``) at the start of each tick and then
launches; without this, each launch of a burst of N nodes repeats a lookup by request id (EC2
``DescribeInstances`` with a tag filter, a Compute Engine ``instances.get`` per zone, an ARM VM
``GET``), N calls where the listing already answered. Reusing the listing is safe because every
driver's create call is idempotent by itself (EC2 ``ClientToken``, the GCE instance name, the ARM
VM name): a node created after the listing was taken (by another process, or a reply this process
lost) is found by the create call, never duplicated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from ray_multicloud.clouds.base import TAG_REQUEST, Instance

LIST_REUSE_S = 5.0  # Ray's autoscaler update interval (AUTOSCALER_UPDATE_INTERVAL_S): one tick


class RecentListing:
    """Per cluster: when it was last listed and its instances by request id. Thread-safe."""

    def __init__(self, ttl_s: float = LIST_REUSE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._by_cluster: dict[str, tuple[float, dict[str, Instance]]] = {}

    def store(self, cluster: str, instances: Iterable[Instance]) -> None:
        """Remember a complete listing of ``cluster``, aged from now (when it finished: a listing
        of a large fleet can take seconds). A launch that finished while it ran may be missing from
        it; that is safe, the create calls being idempotent (module docstring)."""
        when = self._clock()
        by_request = {i.tags[TAG_REQUEST]: i for i in instances if i.tags.get(TAG_REQUEST)}
        with self._lock:
            self._by_cluster[cluster] = (when, by_request)

    def now(self) -> float:
        return self._clock()

    def lookup(self, cluster: str, request_id: str) -> tuple[bool, Instance | None]:
        """``(fresh, instance)``: whether a listing younger than ``ttl_s`` exists, and the instance
        it holds for ``request_id`` (None: it had none)."""
        with self._lock:
            entry = self._by_cluster.get(cluster)
        if entry is None or self._clock() - entry[0] > self.ttl_s:
            return False, None
        return True, entry[1].get(request_id)

    def forget(self, cluster: str) -> None:
        with self._lock:
            self._by_cluster.pop(cluster, None)

    def drop(self, instance_id: str) -> None:
        """Forget one instance (this process terminated it)."""
        with self._lock:
            for _, by_request in self._by_cluster.values():
                for key in [k for k, inst in by_request.items() if inst.instance_id == instance_id]:
                    del by_request[key]
