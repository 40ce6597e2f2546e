"""Node-local rules: business-server keepAlive liveness, object watches (fake clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tarscascade.model import EndpointRecord, State
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.node.watch import PUSH_OBJECT_CHANGED, ObjectWatch
from tarscascade.wire.codec import STRING, decode_value

OBJ = "Test.HelloServer.HelloObj"


def ep(node: str = "n1", state: State = State.ACTIVE, obj: str = OBJ) -> EndpointRecord:
    return EndpointRecord(obj, "10.0.0.1", 9000, node_name=node, present_state=state)


def test_a_server_that_keeps_alive_stays_active_and_a_silent_one_turns_inactive() -> None:
    ka = KeepAliveTracker("n1", timeout=30)
    assert ka.keep_alive("Test", "HelloServer", 1234, OBJ, now=100)
    assert ka.transitions([ep()], now=120) == []
    assert ka.transitions([ep()], now=131) == [ep()]  # silent for 31 s > 30 s
    # back: an inactive endpoint whose server heartbeats again turns active
    ka.keep_alive("Test", "HelloServer", 1234, OBJ, now=140)
    assert ka.transitions([ep(state=State.INACTIVE)], now=141) == [ep(state=State.INACTIVE)]


def test_keepalive_rules_match_tarsnode() -> None:
    ka = KeepAliveTracker("n1", timeout=30)
    # tarsnode ServerObject::keepAlive ignores pid <= 0
    assert not ka.keep_alive("Test", "HelloServer", 0, OBJ, now=100)
    assert ka.transitions([ep(state=State.INACTIVE)], now=100) == []  # never heard: untouched
    # an empty adapter stands for every adapter of the server
    ka.keep_alive("Test", "HelloServer", 7, "", now=100)
    other = ep(obj="Test.HelloServer.OtherObj", state=State.INACTIVE)
    assert ka.transitions([other], now=101) == [other]
    # endpoints hosted on other nodes are not this node's business
    assert ka.transitions([ep(node="n2", state=State.INACTIVE)], now=101) == []
    assert ka.latest() == 100


async def test_blocking_wait_returns_when_the_object_changes() -> None:
    w = ObjectWatch()
    w.changed(None, revision=10)  # a snapshot at revision 10
    assert w.index_of(OBJ) == 10
    assert await w.wait(OBJ, index=5, timeout=5) == 10  # already past: no wait
    task = asyncio.create_task(w.wait(OBJ, index=10, timeout=30))
    await asyncio.sleep(0)
    assert w.waiters == 1
    w.changed({"Other.Obj.X"}, revision=11)
    await asyncio.sleep(0)
    assert not task.done()
    w.changed({OBJ}, revision=12)
    assert await asyncio.wait_for(task, 5) == 12
    assert w.waiters == 0
    assert await w.wait(OBJ, index=12, timeout=0.01) == 12  # timeout: current index
    assert w.waiters == 0


class FakeConn:
    def __init__(self, alive: bool = True) -> None:
        self.alive = alive
        self.pushed: list[tuple[str, bytes]] = []
        self.on_close: list[Callable[[], None]] = []

    def push(self, func: str, body: bytes) -> bool:
        if self.alive:
            self.pushed.append((func, body))
        return self.alive

    def add_close_callback(self, fn: Callable[[], None]) -> None:
        self.on_close.append(fn)

    def close(self) -> None:
        self.alive = False
        for fn in self.on_close:
            fn()


def test_push_subscribers_are_told_which_object_changed() -> None:
    w = ObjectWatch()
    a, b = FakeConn(), FakeConn()
    assert w.subscribe(OBJ, a)
    assert w.subscribe(OBJ, a)  # idempotent
    assert w.subscribe("Other.Obj.X", b)
    assert w.subscriptions == 2
    assert len(a.on_close) == 1
    w.changed({OBJ}, revision=3)
    assert [(f, decode_value(STRING, body)) for f, body in a.pushed] == [(PUSH_OBJECT_CHANGED, OBJ)]
    assert b.pushed == []
    w.changed(None, revision=4)  # a snapshot: everyone re-queries
    assert len(a.pushed) == 2
    assert len(b.pushed) == 1
    a.close()  # its subscriptions are released at once
    assert w.subscriptions == 1
    b.alive = False  # gone without a close callback: dropped at the next push
    w.changed({"Other.Obj.X"}, revision=5)
    assert w.subscriptions == 0


def test_subscriptions_are_bounded_per_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import tarscascade.node.watch as watch_mod

    monkeypatch.setattr(watch_mod, "MAX_SUBSCRIPTIONS_PER_CONNECTION", 3)
    w = ObjectWatch()
    conn = FakeConn()
    assert all(w.subscribe(f"A.B.O{i}", conn) for i in range(3))
    assert not w.subscribe("A.B.O9", conn)
    assert w.subscriptions == 3


def test_two_instances_of_one_server_on_a_host_live_and_leave_apart() -> None:
    ka = KeepAliveTracker("n1", timeout=30)
    a = EndpointRecord(OBJ, "10.0.0.1", 9001, node_name="n1")
    b = EndpointRecord(OBJ, "10.0.0.1", 9002, node_name="n1")
    ka.keep_alive("Test", "HelloServer", 11, OBJ, now=100, endpoint=("10.0.0.1", 9001, "tcp"))
    ka.keep_alive("Test", "HelloServer", 12, OBJ, now=100, endpoint=("10.0.0.1", 9002, "tcp"))
    # instance a leaves gracefully; b keeps heartbeating: only a turns inactive
    ka.keep_alive("Test", "HelloServer", -11, OBJ, now=101, endpoint=("10.0.0.1", 9001, "tcp"))
    ka.keep_alive("Test", "HelloServer", 12, OBJ, now=102, endpoint=("10.0.0.1", 9002, "tcp"))
    assert ka.transitions([a, b], now=103) == [a]
