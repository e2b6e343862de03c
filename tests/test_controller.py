"""``move_node`` make-before-break ordering over a fake provider and a scripted GCS; the price replayer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ray_multicloud.clouds.base import Instance
from ray_multicloud.controller import NodeTypeSpec, RayNode, move_node
from ray_multicloud.errors import CapacityError, LaunchFailed
from ray_multicloud.ledger import Ledger, LedgerError
from ray_multicloud.moves import MoveRecord, MoveState, new_record
from ray_multicloud.pricing.board import PriceBoard
from ray_multicloud.pricing.replay import PriceTrace, Replayer, load_trace
from ray_multicloud.types import CapacityType, InstanceId, Move, NodeState, Offer

T4 = {
    "instance_type": "g4dn.xlarge",
    "accelerator": "T4",
    "accelerator_count": 1,
    "vcpus": 4,
    "memory_gib": 16,
    "capacity": CapacityType.SPOT,
    "ondemand_price_per_hour": 0.53,
}
OLD = Offer(cloud="aws", region="us-east-1", zone="us-east-1a", price_per_hour=0.5, **T4)  # type: ignore[arg-type]
NEW = Offer(cloud="gcp", region="us-central1", zone="us-central1-a", price_per_hour=0.2, **T4)  # type: ignore[arg-type]
MOVE = Move(
    instance_id=InstanceId("old-1"),
    pool="t4",
    from_offer=OLD,
    to_offer=NEW,
    saving_per_hour=0.3,
    move_cost_usd=0.1,
    reasons=("test",),
)
GPU = {"CPU": 1.0, "GPU": 1.0}


@dataclass
class FakeProvider:
    """Records calls in order; ``fail_launch`` makes the replacement launch fail."""

    fail_launch: bool = False
    calls: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    def launch_on_offer(
        self,
        node_type: str,
        offer: Offer,
        *,
        resources: Mapping[str, float],
        labels: Mapping[str, str],
        request_id: str | None = None,
    ) -> Instance:
        self.calls.append(f"launch {node_type} {offer.cloud} {sorted(resources)}")
        self.request_ids.append(request_id or "")
        if self.fail_launch:
            raise LaunchFailed(node_type, "r", [CapacityError(offer.cloud, "no capacity")])
        return Instance(
            instance_id=InstanceId("new-1"),
            cloud=offer.cloud,
            state=NodeState.PENDING,
            tags={},
            internal_ip="127.0.0.1",
        )

    def terminate_node(self, node_id: str) -> None:
        self.calls.append(f"terminate {node_id}")


class Script:
    """A fake clock plus a GCS whose view changes with time: ``new`` comes up at ``up_at``; ``old``
    frees its resources at ``free_at``."""

    def __init__(self, *, up_at: float | None, free_at: float | None, accept: bool = True) -> None:
        self.t = 1000.0
        self.start = self.t
        self.up_at = up_at
        self.free_at = free_at
        self.accept = accept
        self.drains: list[tuple[str, float]] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s

    def nodes(self, _gcs: str) -> dict[str, RayNode]:
        el = self.t - self.start
        out = {}
        busy = self.free_at is None or el < self.free_at
        out["old-1"] = RayNode(
            "aa" * 4,
            "old-1",
            "DRAINING" if self.drains else "RUNNING",
            GPU,
            {"CPU": 0.0, "GPU": 0.0} if busy else GPU,
        )
        if self.up_at is not None and el >= self.up_at:
            out["new-1"] = RayNode("bb" * 4, "new-1", "IDLE", GPU, GPU)
        return out

    def drain(
        self, _gcs: str, node_id: str, *, deadline_s: float, reason: str, message: str
    ) -> tuple[bool, str]:
        self.drains.append((node_id, deadline_s - self.t))
        return self.accept, "" if self.accept else "rejected for test"


def run(provider: FakeProvider, script: Script, **kw: Any) -> Any:
    return move_node(
        provider,
        MOVE,
        spec=NodeTypeSpec(resources=GPU),
        gcs_address="x:1",
        drain_deadline_s=20,
        up_timeout_s=30,
        poll_s=1.0,
        nodes=script.nodes,
        drain=script.drain,
        clock=script.clock,
        sleep=script.sleep,
        **kw,
    )


def test_make_before_break_drained_early() -> None:
    provider, script = FakeProvider(), Script(up_at=5, free_at=12)
    ledger: list[tuple[str, ...]] = []

    class L:
        def record_move(self, a: str, b: str, reason: str, at: float) -> None:
            ledger.append((a, b, reason))

    result = run(provider, script, ledger=L())
    assert result.ok and result.new_instance_id == "new-1"
    assert provider.calls == ["launch t4 gcp ['CPU', 'GPU']", "terminate old-1"]
    assert script.drains == [("aa" * 4, pytest.approx(20.0))]
    assert result.up_s == pytest.approx(5.0)
    # The old node freed its resources at 12 s: terminated then, not at the 25 s deadline.
    assert result.drained_s == pytest.approx(12.0) and not result.drained_by_deadline
    assert ledger == [("old-1", "new-1", "test")]


def test_busy_node_terminated_at_deadline() -> None:
    provider, script = FakeProvider(), Script(up_at=3, free_at=None)
    result = run(provider, script)
    assert result.ok and result.drained_by_deadline
    assert result.drained_s == pytest.approx(3 + 20, abs=1.01)


def test_replacement_never_up_leaves_old_node_alone() -> None:
    provider, script = FakeProvider(), Script(up_at=None, free_at=None)
    result = run(provider, script)
    assert result.status == "not-up"
    assert provider.calls == ["launch t4 gcp ['CPU', 'GPU']", "terminate new-1"]
    assert script.drains == []


def test_launch_failure_changes_nothing() -> None:
    provider, script = FakeProvider(fail_launch=True), Script(up_at=1, free_at=1)
    result = run(provider, script)
    assert result.status == "launch-failed"
    assert provider.calls == ["launch t4 gcp ['CPU', 'GPU']"]


def test_rejected_drain_rolls_back_the_replacement() -> None:
    provider, script = FakeProvider(), Script(up_at=1, free_at=None, accept=False)
    result = run(provider, script)
    assert result.status == "drain-rejected"
    assert provider.calls[-1] == "terminate new-1"
    assert "terminate old-1" not in provider.calls


def states(ledger: Ledger) -> list[str]:
    return [r.state.value for r in ledger.journal()]


def test_each_step_of_a_move_is_saved_in_the_journal(tmp_path: Path) -> None:
    provider, script = FakeProvider(), Script(up_at=5, free_at=12)
    seen: list[str] = []

    class Watching(Ledger):
        def journal_put(self, record: MoveRecord) -> None:
            super().journal_put(record)
            seen.append(record.state.value)

    with Watching(tmp_path / "l.db") as ledger:
        result = run(provider, script, ledger=ledger)
        assert result.ok
        assert seen == ["requested", "replacement-up", "draining", "done"]
        [rec] = ledger.journal()
        assert (rec.old_instance, rec.new_instance, rec.target_offer) == ("old-1", "new-1", NEW.offer_id)
        assert rec.move_id == f"old-1>{NEW.offer_id}#1"
        assert provider.request_ids == [rec.request_id] and rec.request_id.startswith("mv-")
        assert ledger.journal(open_only=True) == []
        assert ledger.moves() == [("old-1", "new-1", "test", pytest.approx(1000.0))]


@pytest.mark.parametrize(
    ("kw", "final"),
    [
        ({"fail_launch": True}, "rolled-back"),
    ],
)
def test_a_failed_launch_is_rolled_back_in_the_journal(
    tmp_path: Path, kw: dict[str, Any], final: str
) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        run(FakeProvider(**kw), Script(up_at=1, free_at=1), ledger=ledger)
        [rec] = ledger.journal()
        assert rec.state.value == final and "launch failed" in rec.detail


def test_not_up_and_rejected_drain_are_rolled_back_in_the_journal(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a.db") as ledger:
        run(FakeProvider(), Script(up_at=None, free_at=None), ledger=ledger)
        [rec] = ledger.journal()
        assert rec.state.value == "rolled-back" and rec.new_instance == "new-1" and "not up" in rec.detail
    with Ledger(tmp_path / "b.db") as ledger:
        run(FakeProvider(), Script(up_at=1, free_at=None, accept=False), ledger=ledger)
        assert states(ledger) == ["rolled-back"]


def test_a_second_move_of_the_same_node_gets_a_new_id_and_request(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        run(FakeProvider(fail_launch=True), Script(up_at=1, free_at=1), ledger=ledger)
        provider = FakeProvider()
        run(provider, Script(up_at=1, free_at=1), ledger=ledger)
        first, second = ledger.journal()
        assert second.move_id.endswith("#2") and second.request_id != first.request_id
        assert provider.request_ids == [second.request_id]


def test_resume_from_requested_relaunches_with_the_same_request_id(tmp_path: Path) -> None:
    """A controller that died right after saving REQUESTED: the retry launches with the move's own
    request id (the drivers' launch is idempotent by it), so no second replacement exists."""
    record = new_record(
        pool="t4", old_instance="old-1", target_offer=NEW.offer_id, number=1, reason="r", at=990.0
    )
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.journal_put(record)
        provider, script = FakeProvider(), Script(up_at=0, free_at=0)
        result = run(provider, script, ledger=ledger, record=record)
        assert result.ok and provider.request_ids == [record.request_id]
        assert states(ledger) == ["done"]


def test_resume_from_replacement_up_drains_without_launching_again(tmp_path: Path) -> None:
    record = new_record(
        pool="t4", old_instance="old-1", target_offer=NEW.offer_id, number=1, reason="r", at=990.0
    )
    up = record.to(MoveState.REPLACEMENT_UP, at=995.0, new_instance="new-1")
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.journal_put(record)
        ledger.journal_put(up)
        provider, script = FakeProvider(), Script(up_at=0, free_at=4)
        result = run(provider, script, ledger=ledger, record=up)
        assert result.ok and result.new_instance_id == "new-1"
        assert provider.calls == ["terminate old-1"]  # no launch: the replacement is up already
        assert script.drains and states(ledger) == ["done"]


def test_resume_from_draining_waits_for_the_saved_deadline_then_terminates(tmp_path: Path) -> None:
    record = new_record(
        pool="t4", old_instance="old-1", target_offer=NEW.offer_id, number=1, reason="r", at=990.0
    )
    up = record.to(MoveState.REPLACEMENT_UP, at=995.0, new_instance="new-1")
    draining = up.to(MoveState.DRAINING, at=996.0, drain_deadline_at=1010.0)
    with Ledger(tmp_path / "l.db") as ledger:
        for r in (record, up, draining):
            ledger.journal_put(r)
        provider, script = FakeProvider(), Script(up_at=0, free_at=None)
        result = run(provider, script, ledger=ledger, record=draining)
        assert result.ok and provider.calls == ["terminate old-1"] and script.drains == []
        assert script.t == pytest.approx(1010.0)  # the saved deadline, not a new one
        assert states(ledger) == ["done"]


def test_the_journal_never_goes_back(tmp_path: Path) -> None:
    record = new_record(pool="t4", old_instance="o", target_offer="x", number=1, reason="r", at=1.0)
    done = record.to(MoveState.ROLLED_BACK, at=2.0)
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.journal_put(record)
        ledger.journal_put(done)
        with pytest.raises(LedgerError, match="cannot go to requested"):
            ledger.journal_put(record)


def test_replayer_writes_rescaled_prices(tmp_path: Path) -> None:
    trace = PriceTrace(times=(0.0, 60.0, 120.0), prices=(1.0, 0.5, 2.0))
    now = [0.0]
    rep = Replayer(tmp_path, {"gcp/x": trace}, speedup=60.0, base_prices={"gcp/x": 0.3}, clock=lambda: now[0])
    assert rep.step() == {"gcp/x": pytest.approx(0.3)}
    now[0] = 0.5  # 30 trace seconds: same price, nothing written
    assert rep.step() == {}
    now[0] = 1.0  # 60 trace seconds
    assert rep.step() == {"gcp/x": pytest.approx(0.15)}
    assert PriceBoard(tmp_path).read()["gcp/x"][0] == pytest.approx(0.15)
    now[0] = 2.5
    rep.step()
    assert rep.done() and PriceBoard(tmp_path).read()["gcp/x"][0] == pytest.approx(0.6)


def test_load_skypilot_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps({"metadata": {"gap_seconds": 34}, "data": [1, 1, 0], "prices": [1.2, 1.3, 1.1]})
    )
    trace = load_trace(path)
    assert trace.times == (0.0, 34.0, 68.0) and trace.at(40) == 1.3 and trace.at(-5) == 1.2


REAL = Path(
    "/work/shared/data/preemption/skypilot-spot-traces/preemption/1-node/aws-04-19-2023/"
    "us-east-1b_intel_64.json"
)


@pytest.mark.skipif(not REAL.exists(), reason="shared trace data not on this machine")
def test_load_real_trace() -> None:
    trace = load_trace(REAL)
    assert len(trace.prices) > 1000 and len(set(trace.prices)) > 1


@dataclass
class EndingProvider(FakeProvider):
    """A provider whose cloud stops listing the replacement ``gone_after`` seconds of the script's
    clock after the launch (a ``ray start`` that failed), or lists it missing only at ``blips``."""

    script: Script | None = None
    gone_after: float | None = None
    blips: tuple[float, ...] = ()
    asked: list[float] = field(default_factory=list)

    def is_terminated(self, node_id: str) -> bool:
        assert self.script is not None and node_id == "new-1"
        el = self.script.t - self.script.start
        self.asked.append(el)
        if self.gone_after is not None and el >= self.gone_after:
            return True
        return any(abs(el - b) < 0.5 for b in self.blips)


def test_a_replacement_that_ends_before_it_is_up_fails_the_move_early() -> None:
    script = Script(up_at=None, free_at=None)
    provider = EndingProvider(script=script, gone_after=3)
    result = run(provider, script)  # up_timeout_s 30
    assert result.status == "not-up" and "ended before its Ray node came up" in result.detail
    # Checked every 5 s: gone at 5 s and again at 10 s -> given up at 10 s, not at the 30 s timeout.
    assert script.t - script.start == pytest.approx(10.0, abs=1.01)
    assert provider.calls == ["launch t4 gcp ['CPU', 'GPU']", "terminate new-1"]
    assert script.drains == []


def test_a_replacement_missing_from_one_listing_is_still_waited_for() -> None:
    script = Script(up_at=12, free_at=1)
    provider = EndingProvider(script=script, blips=(5.0,))  # a lagging listing, once
    result = run(provider, script)
    assert result.ok, result
    assert provider.asked[:2] == [pytest.approx(5.0), pytest.approx(10.0)]


def test_live_actors_asks_this_clusters_gcs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The state API is pointed at the controller's own cluster, never left to pick the newest Ray
    instance on the machine (seen on a shared machine: "Found multiple active Ray instances")."""
    import ray.util.state

    from ray_multicloud.controller import live_actors

    seen: dict[str, Any] = {}

    @dataclass
    class Row:
        class_name: str = "RayTrainWorker"
        name: str = ""
        job_id: str = "01000000"
        node_id: str = "aa"

    def fake(**kwargs: Any) -> list[Row]:
        seen.update(kwargs)
        return [Row()]

    monkeypatch.setattr(ray.util.state, "list_actors", fake)
    (actor,) = live_actors("127.0.0.1:6390")
    assert seen["address"] == "127.0.0.1:6390"
    assert (actor.class_name, actor.node_id) == ("RayTrainWorker", "aa")
