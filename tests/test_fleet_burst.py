"""A burst of launch requests over three clouds ends with exactly the nodes asked for (issue 13,
"what must hold" 5, at test scale; ``benchmarks/bench_fleet_scale.py`` runs 100 and 1,000 nodes).

Against moto's EC2 and the loopback Compute Engine and ARM fakes, through the real drivers and
the provider, launched as Ray's ``NodeProviderAdapter`` launches (``fleet_scale.burst``):

- every request gets exactly its nodes: no request id twice in any cloud, none missing;
- a launch whose reply is lost after the cloud created the node (a ``CloudError`` from the driver
  after the create went through) is counted once, not launched again on another offer;
- a failed ``create_node`` retried under the same request id, and the whole burst replayed by a
  restarted provider, create nothing new (the request-id tag is the idempotency key);
- the calls of a launch tick stay well inside each cloud's published request budgets, and one
  listing tick costs a bounded number of calls whatever the fleet's size.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from fleet_scale import CLOUDS, Launch, burst, create, fleet, spread

from ray_multicloud.errors import CloudError


def counts(ids: dict[str, list[str]]) -> dict[str, int]:
    return {cloud: len(v) for cloud, v in ids.items()}


def test_burst_ends_with_exactly_the_nodes_asked_for(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        provider = world.provider()
        seed = spread("seed", 12)
        assert burst(provider, seed) == []
        requests = [*spread("burst", 12), Launch("multi-aws", "aws", 7), Launch("multi-gcp", "gcp", 6)]
        # Lost replies: every 4th one-node request's first launch raises after its node was created.
        lossy = {r.request_id for r in requests[::4] if r.count == 1}
        for name, cloud in provider.clouds.items():
            real = cloud.launch

            def launch(request: Any, real: Any = real, name: str = name) -> Any:
                inst = real(request)
                base = str(request.request_id).rsplit("-v100-", 1)[0]
                if base in lossy:
                    lossy.discard(base)
                    raise CloudError(name, "connection reset after the create was sent")
                return inst

            cloud.launch = launch  # type: ignore[method-assign]
        assert burst(provider, requests) == []
        ids = world.request_ids()
        # 12 seeded (4 per cloud), 12 one-node requests (4 per cloud), 7 on aws and 6 on gcp.
        assert counts(ids) == {"aws": 4 + 4 + 7, "gcp": 4 + 4 + 6, "azure": 4 + 4}
        for cloud in CLOUDS:
            assert [k for k, n in Counter(ids[cloud]).items() if n > 1] == [], cloud
        assert not lossy  # every injected loss happened

        # A restarted provider replaying every request (Ray re-sending them after a monitor restart)
        # finds each node by its key and creates nothing.
        again = world.provider()
        assert burst(again, [*seed, *requests]) == []
        assert counts(world.request_ids()) == counts(ids)


def test_failed_create_retried_under_its_request_id_creates_nothing_twice(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        provider = world.provider()
        gcp = provider.clouds["gcp"]
        real = gcp.launch
        calls = {"n": 0}

        def flaky(request: Any) -> Any:
            calls["n"] += 1
            inst = real(request)
            if calls["n"] == 3:  # the third node of the request: created, then the call dies
                raise RuntimeError("operation wait timed out")
            return inst

        gcp.launch = flaky  # type: ignore[method-assign]
        req = Launch("retry-me", "gcp", 5)
        # The provider counts the node that exists (found by its key), so the call succeeds.
        assert len(create(provider, req, 5)) == 5
        assert len(world.request_ids()["gcp"]) == 5
        # Same request again from a restarted provider: nothing new.
        assert len(create(world.provider(), req, 5)) == 5
        assert sorted(world.request_ids()["gcp"]) == sorted(f"retry-me-v100-gcp-{i}" for i in range(5))


def test_calls_per_tick_are_bounded(tmp_path: Path) -> None:
    with fleet(tmp_path) as world:
        provider = world.provider()
        assert burst(provider, spread("seed", 9)) == []
        tick = world.provider()  # a fresh monitor: no cached listing
        world.reset_counts()
        assert len(tick.non_terminated_nodes({})) == 9
        # One listing: EC2 DescribeRegions (then cached for an hour) + DescribeInstances in each of
        # the two enabled regions; GCP one aggregatedList; Azure the VM list and the NIC list (not
        # one NIC GET per VM). Latency at 100 / 1,000 nodes: benchmarks/bench_fleet_scale.py.
        assert world.calls() == {"aws": 3, "gcp": 1, "azure": 2}, world.calls_by_kind()
        world.reset_counts()
        assert len(tick.non_terminated_nodes({})) == 9
        # A first listing slower than slow_listing_s (cold clients, a loaded machine) makes this
        # call answer from it and list in the background: the same calls, counted once it is done.
        if tick._background is not None:
            tick._background.join(60)
        assert world.calls() == {"aws": 2, "gcp": 1, "azure": 2}, world.calls_by_kind()
        # A launch tick of 15 one-node requests right after the listing: no listing again, no
        # per-launch lookups. Per node: EC2 RunInstances; GCE insert, operation wait, get;
        # ARM NIC PUT, VM PUT, the VM PUT's async-operation poll and final GET (the SDK's poller).
        world.reset_counts()
        assert burst(tick, spread("tick", 15)) == []
        by_kind = world.calls_by_kind()
        assert by_kind["aws"] == Counter({"RunInstances": 5}), by_kind["aws"]
        assert by_kind["gcp"]["instances.aggregatedList"] == 0 and by_kind["gcp"]["instances.get"] == 5
        assert by_kind["gcp"]["instances.insert"] == 5
        assert by_kind["azure"]["VM list (read)"] == 0 and by_kind["azure"]["NIC list (read)"] == 0
        assert by_kind["azure"]["VM PUT (write)"] == 5 and by_kind["azure"]["NIC PUT (write)"] == 5
