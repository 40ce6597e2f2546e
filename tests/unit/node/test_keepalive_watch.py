"""Node-local rules: business-server keepAlive liveness, object watches (fake clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace as dataclass_replace

import pytest

from tarscascade.model import EndpointRecord, State
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.node.watch import ObjectWatch
from tarscascade.wire.codec import STRING, decode_value
from tarscascade.wire.idl.queryf import OBJECT_CHANGED
from tests.interop.serverf_beats import (
    TARSCPP_VERSION,
    TARSGO_VERSION,
    Call,
    last_beat,
    merged,
    tarscpp,
    tarsgo,
)

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
    assert [(f, decode_value(STRING, body)) for f, body in a.pushed] == [(OBJECT_CHANGED, OBJ)]
    assert b.pushed == []
    w.changed(None, revision=4)  # a snapshot: everyone re-queries
    assert len(a.pushed) == 2
    assert len(b.pushed) == 1
    a.close()  # its subscriptions are released at once
    assert w.subscriptions == 1
    b.alive = False  # gone without a close callback: dropped at the next push
    w.changed({"Other.Obj.X"}, revision=5)
    assert w.subscriptions == 0


def test_subscriptions_are_bounded_per_connection() -> None:
    w = ObjectWatch(per_connection=3)
    conn = FakeConn()
    assert all(w.subscribe(f"A.B.O{i}", conn) for i in range(3))
    assert not w.subscribe("A.B.O9", conn)
    assert w.subscriptions == 3


def test_one_peer_cannot_spend_everyones_subscriptions() -> None:
    """Review D3 / finding 28: one local process with 100 connections took the global
    pool; now it spends its own peer's budget and the others still subscribe."""
    w = ObjectWatch(per_connection=10, per_peer=25, total=1_000)
    hog = [FakeConn() for _ in range(100)]
    taken = sum(w.subscribe(f"A.B.O{i}", c, "uid:1000") for c in hog for i in range(10))
    assert taken == 25
    assert w.refused == 1000 - 25
    other = FakeConn()
    assert all(w.subscribe(f"A.B.O{i}", other, "uid:1001") for i in range(10))
    # the hog's connections closing gives its budget back
    for c in hog:
        c.close()
    assert w.subscriptions == 10
    assert w.subscribe("A.B.Z", FakeConn(), "uid:1000")


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


# ---------------------------------------------------------------- stock TARS servers


def replay(ka: KeepAliveTracker, calls: list[Call]) -> None:
    for c in calls:
        if c.func == "keepAlive":
            assert ka.keep_alive(c.app, c.server, 4242, c.adapter, now=c.at)
        elif c.func == "keepActiving":
            assert ka.keep_activing(c.app, c.server, 4242, now=c.at)
        else:
            assert ka.report_version(c.app, c.server, c.version)


def states_over(
    ka: KeepAliveTracker, calls: list[Call], records: list[EndpointRecord], until: float
) -> list[tuple[float, list[State | None]]]:
    """Replay ``calls``; the wanted state of each record right after each call and just
    before the next one (the worst moment), then at ``until``."""
    out = []
    times = sorted({c.at for c in calls})
    for i, t in enumerate(times):
        replay(ka, [c for c in calls if c.at == t])
        nxt = times[i + 1] - 1e-6 if i + 1 < len(times) else until
        for when in (t, nxt):
            out.append((when, [ka.desired(r, when) for r in records]))
    return out


TIMEOUT = 30.0


def rec(obj: str, port: int, adapter: str = "") -> EndpointRecord:
    return EndpointRecord(obj, "10.0.0.1", port, node_name="n1", adapter_name=adapter)


@pytest.mark.parametrize("shape", ["tarscpp", "tarsgo"])
def test_a_stock_server_stays_active_while_it_beats_and_leaves_within_timeout(shape: str) -> None:
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    r = rec(OBJ, 9000)
    until = 5 * TIMEOUT
    make = tarscpp if shape == "tarscpp" else tarsgo
    calls = make("Test", "HelloServer", [r.adapter], until)
    seen = states_over(ka, [c for c in calls if c.func != "keepActiving"], [r], until)
    assert all(s == [State.ACTIVE] for _, s in seen), seen
    last = last_beat(calls, "Test", "HelloServer")
    assert ka.desired(r, last + TIMEOUT) is State.ACTIVE
    assert ka.desired(r, last + TIMEOUT + 0.001) is State.INACTIVE
    assert ka.servers[("Test", "HelloServer")].version in (TARSCPP_VERSION, TARSGO_VERSION)


def test_the_issue_11_capture_on_the_old_rules_would_have_failed() -> None:
    """Only the start-up beat names every adapter: adapter names alone must carry it."""
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    r = rec(OBJ, 9000)
    calls = tarscpp("Test", "HelloServer", [r.adapter], 5 * TIMEOUT)
    replay(ka, calls)
    beats = [c for c in calls if c.func == "keepAlive"]
    assert [c.adapter for c in beats[:2]] == ["", "AdminAdapter"]
    assert all(c.adapter != OBJ for c in beats)  # never the object id
    assert ka.desired(r, beats[-1].at + 1) is State.ACTIVE


def test_keepactiving_alone_never_makes_an_endpoint_present() -> None:
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    r = rec(OBJ, 9000)
    init = 4 * TIMEOUT  # a very slow initialize(): keepActiving every 5 s throughout
    calls = tarscpp("Test", "HelloServer", [r.adapter], init + 3 * TIMEOUT, init=init)
    activating = [c for c in calls if c.func == "keepActiving"]
    assert len(activating) == 24
    seen = states_over(
        ka, activating, [r, dataclass_replace(r, present_state=State.INACTIVE)], init
    )
    assert all(s == [State.INACTIVE, State.INACTIVE] for _, s in seen)
    assert ka.transitions([r], init - 1) == [r]  # an active record is taken out
    assert ka.liveness(("Test", "HelloServer"), init - 1).value == "activating"
    replay(ka, [c for c in calls if c.func != "keepActiving" and c.at == init])
    assert ka.desired(r, init) is State.ACTIVE  # the first keepAlive: present


def test_admin_adapter_beats_keep_the_server_but_name_no_object() -> None:
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    hello, other = rec(OBJ, 9000), rec("Test.HelloServer.OtherObj", 9001)
    ka.keep_alive("Test", "HelloServer", 7, "", now=0)
    for t in range(11, 200, 11):  # only AdminAdapter (an adapter never named: server rules)
        ka.keep_alive("Test", "HelloServer", 7, "AdminAdapter", now=t)
    assert ka.desired(hello, 199) is State.ACTIVE
    assert ka.desired(other, 199) is State.ACTIVE
    assert "AdminAdapter" not in ka.servers[("Test", "HelloServer")].adapters


def test_several_adapters_one_falls_silent_only_its_endpoints_go() -> None:
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    hello = rec(OBJ, 9000)
    foo = rec("Test.HelloServer.FooObj", 9001)
    custom = rec("Test.HelloServer.BarObj", 9002, adapter="BarAdapter")
    names = [hello.adapter, foo.adapter, "BarAdapter"]
    calls = tarscpp("Test", "HelloServer", names, 60)
    # from t=60 the FooObj adapter is stuck (TarsCpp stops collecting its name)
    calls += [
        c
        for c in tarscpp("Test", "HelloServer", names, 200)
        if c.at >= 60 and c.adapter != foo.adapter
    ]
    replay(ka, calls)
    last_foo = max(c.at for c in calls if c.adapter == foo.adapter)
    assert [ka.desired(r, last_foo + TIMEOUT) for r in (hello, foo, custom)] == [State.ACTIVE] * 3
    after = last_foo + TIMEOUT + 1
    assert [ka.desired(r, after) for r in (hello, foo, custom)] == [
        State.ACTIVE,
        State.INACTIVE,
        State.ACTIVE,
    ]


def test_two_servers_on_one_node_live_and_leave_apart() -> None:
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    a = rec(OBJ, 9000)
    b = rec("Test.GoServer.GoObj", 9100)
    calls = merged(
        tarscpp("Test", "HelloServer", [a.adapter], 300),
        tarsgo("Test", "GoServer", [b.adapter], 100, seed=3),
    )
    replay(ka, calls)
    stop_b = last_beat(calls, "Test", "GoServer")
    assert ka.desired(b, stop_b + TIMEOUT) is State.ACTIVE
    assert [ka.desired(r, stop_b + TIMEOUT + 1) for r in (a, b)] == [State.ACTIVE, State.INACTIVE]
    versions = {k: v.version for k, v in ka.servers.items()}
    assert versions == {
        ("Test", "HelloServer"): TARSCPP_VERSION,
        ("Test", "GoServer"): TARSGO_VERSION,
    }


def test_a_record_whose_adapter_name_matches_nothing_follows_its_server() -> None:
    """A misnamed adapter must not take a running server out (the issue-11 outage)."""
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    r = rec(OBJ, 9000, adapter="NotWhatTheConfigSays")
    replay(ka, tarsgo("Test", "HelloServer", ["Test.HelloServer.HelloObjAdapter"], 200))
    assert ka.desired(r, 199) is State.ACTIVE
    assert ka.desired(r, 190 + TIMEOUT + 1) is State.INACTIVE  # and goes when it stops


def test_what_local_processes_can_make_the_node_remember_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tarscascade.node.keepalive as mod

    monkeypatch.setattr(mod, "MAX_SERVERS", 2)
    monkeypatch.setattr(mod, "MAX_ADAPTERS_PER_SERVER", 2)
    ka = KeepAliveTracker("n1", timeout=TIMEOUT)
    assert ka.keep_alive("A", "S1", 1, "", now=0)
    assert ka.keep_alive("A", "S2", 1, "", now=0)
    assert not ka.keep_alive("A", "S3", 1, "", now=0)
    assert not ka.keep_activing("A", "S3", 1, now=0)
    for i in range(5):
        assert ka.keep_alive("A", "S1", 1, f"X{i}Adapter", now=1)  # the server beat counts
    assert len(ka.servers[("A", "S1")].adapters) == 2
    assert len(ka.servers) == 2
    assert not ka.keep_activing("A", "S1", 0, now=0)
    assert not ka.report_version("", "S1", "1")
