"""Snapshot slots cannot be held for ever, and a long snapshot never loops (review E5)."""

from __future__ import annotations

import asyncio

from tarscascade.cascade import HubOptions
from tarscascade.cascade.replica import Outcome, Replica
from tarscascade.cascade.session import Session
from tarscascade.cascade.tracker import NodeState
from tarscascade.cascade.upstream import Upstream
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Version
from tarscascade.wire.packets import STATUS_PUSH_FUNC
from tarscascade.wire.rpc import decode_response

E = "e"
CAT = Category.OBJECTS


def rec(i: int, weight: int = -1) -> EndpointRecord:
    return EndpointRecord(f"A.B.Obj{i % 10}", "10.0.0.1", 1000 + i, weight=weight)


def catalog(n: int) -> Catalog:
    cat = Catalog()
    cat.replace_category(CAT, [rec(i) for i in range(n)], Version(E, n))
    return cat


class GatedConnection:
    """Takes every frame; ``drain`` waits until the test opens the gate (a slow reader)."""

    write_buffer_size = 0

    def __init__(self, delay: float = 0.0) -> None:
        self.frames: list[bytes] = []
        self.gate = asyncio.Event()
        self.delay = delay
        self.aborted = False

    def push_frame(self, frame: bytes) -> bool:
        if self.aborted:
            return False
        self.frames.append(frame)
        return True

    async def drain(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        else:
            await self.gate.wait()

    def abort(self) -> None:
        self.aborted = True


def session(up: Upstream, conn: GatedConnection, dropped: list[str]) -> Session:
    return Session(
        up, "n1", conn, ("127.0.0.1", 1), NodeState("n1"), lambda _s, w: dropped.append(w)
    )  # type: ignore[arg-type]


async def test_a_reader_below_the_minimum_rate_gives_its_slot_up() -> None:
    opts = HubOptions(
        chunk_bytes=2_000, snapshot_grace=0.2, min_snapshot_rate=10**9, max_concurrent_snapshots=1
    )
    up = Upstream(catalog(500), opts)
    dropped: list[str] = []
    conn = GatedConnection(delay=0.05)  # ~40 KB/s: far below the minimum
    s = session(up, conn, dropped)
    s.request(CAT, snapshot=True)
    task = asyncio.ensure_future(s.run())
    for _ in range(400):
        await asyncio.sleep(0.01)
        if dropped:
            break
    task.cancel()
    assert dropped
    assert "snapshot bytes in" in dropped[0]
    assert up.stats.slow_dropped == 1
    assert up.stats.snapshots_sent == 0
    assert not up.snapshot_slots.locked()  # the slot is free for the next node


async def test_changes_during_a_long_snapshot_follow_it_without_another_snapshot() -> None:
    """More changes arrive while the snapshot goes out than the change log keeps: the
    session pinned them, so one delta follows the snapshot (before: a second snapshot,
    and under steady writes a loop)."""
    cat = catalog(300)
    up = Upstream(cat, HubOptions(log_events=8, chunk_bytes=2_000))
    dropped: list[str] = []
    conn = GatedConnection()
    s = session(up, conn, dropped)
    s.request(CAT, snapshot=True)
    task = asyncio.ensure_future(s.run())
    await asyncio.sleep(0.05)  # the snapshot is under way, waiting on the slow reader
    assert conn.frames
    for i in range(60):  # far more than the log's 8 events
        before = cat.version(CAT)
        r = rec(i, weight=i)
        ev = ChangeEvent(before.revision + 1, CAT, Op.PUT, r.key, r)
        cat.apply([ev], E)
        after = cat.version(CAT)
        up.logs[CAT].append(before, after, [ev])
        s.on_delta(CAT, before, after, [ev], lambda: [])
    assert not up.covers(CAT, Version(E, 300))  # the log moved on past the snapshot
    conn.gate.set()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not s.sync.busy and not s.sync.jobs:
            break
    task.cancel()
    assert dropped == []
    assert up.stats.snapshots_sent == 1
    # what the node got, applied in order, is exactly the source
    replica_cat = Catalog()
    replica = Replica(replica_cat)
    for frame in conn.frames:
        pkt = decode_response(frame[4:])
        out = replica.handle(pkt.status[STATUS_PUSH_FUNC], pkt.sBuffer)
        assert out.outcome in (Outcome.APPLIED, Outcome.PENDING), out.reason
    assert replica_cat.version(CAT) == cat.version(CAT)
    assert replica_cat.digest(CAT) == cat.digest(CAT)


class Backlogged(GatedConnection):
    """A connection holding ``n`` unsent bytes (a peer that stopped reading)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.write_buffer_size = n


async def test_the_global_backlog_budget_drops_the_largest_backlogs_first() -> None:
    from tarscascade.cascade import CascadeHub

    hub = CascadeHub(
        catalog(10),
        authenticate=lambda _n, _t: True,
        options=HubOptions(max_total_backlog_bytes=100, max_backlog_bytes=10**9),
    )
    dropped: list[str] = []
    sizes = {"a": 10, "b": 60, "c": 30, "d": 50}
    for name, n in sizes.items():
        s = Session(
            hub._up,
            name,
            Backlogged(n),
            ("127.0.0.1", 1),
            NodeState(name),
            lambda s, _w: dropped.append(s.name),
        )  # type: ignore[arg-type]
        hub._sessions[name] = s
    hub._enforce_budget()  # 150 bytes in all, budget 100: drop b (60), then 90 <= 100
    assert dropped == ["b"]
    assert hub.stats.budget_dropped == 1
    await hub.aclose()


async def test_a_publish_checks_the_total_only_after_a_session_passed_its_fair_share() -> None:
    """The total budget is checked at a publish only when some session's backlog went
    past budget / sessions (else the total cannot be over): no O(sessions) sum per
    change (issue 17). Past it, the largest backlogs go first, as before."""
    from tarscascade.cascade import CascadeHub

    cat = catalog(10)
    hub = CascadeHub(
        cat,
        authenticate=lambda _n, _t: True,
        options=HubOptions(max_total_backlog_bytes=100, max_backlog_bytes=10**9),
    )
    dropped: list[str] = []
    conns = {"a": Backlogged(10), "b": Backlogged(20)}
    sessions = {}
    for name, conn in conns.items():
        sessions[name] = Session(
            hub._up,
            name,
            conn,
            ("127.0.0.1", 1),
            NodeState(name),
            lambda s, _w: dropped.append(s.name),
        )  # type: ignore[arg-type]
        hub._sessions[name] = sessions[name]
    hub._sessions_changed()
    assert hub._up.fair_backlog == 50
    for s in sessions.values():
        s._check_backlog()
    assert hub._up.budget_check is False  # 10 and 20: each within its share of 100

    def publish() -> None:
        before = cat.version(CAT)
        rev = before.revision + 1
        ev = ChangeEvent(rev, CAT, Op.PUT, rec(rev).key, rec(rev))
        cat.apply([ev], E)
        hub.publish(CAT, before, cat.version(CAT), [ev])

    conns["b"].write_buffer_size = 95  # b stopped reading: 105 bytes in all
    publish()  # b is not subscribed here: nothing is sent to it, nothing noticed it yet
    assert dropped == []
    sessions["b"]._check_backlog()  # what a push to b notes
    assert hub._up.budget_check is True
    publish()
    assert dropped == ["b"]
    assert hub._up.budget_check is False
    await hub.aclose()
