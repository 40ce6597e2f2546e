"""Fan-out economies at the hub: held changes for a busy node, cached idle heartbeats.

Driven through the hub's real request handlers on a connection that feeds every pushed
frame into a real downstream :class:`Replica`, so each test also checks that what the
node ends up holding is exactly the registry's content.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tarscascade.cascade import CascadeHub, HubOptions
from tarscascade.cascade.replica import Outcome, Replica
from tarscascade.cascade.states import held_states
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Version
from tarscascade.testing import eventually
from tarscascade.transport import Current
from tarscascade.wire.idl.cascadef import (
    HEARTBEAT,
    PROTOCOL_VERSION,
    PUSH_ACK_NOW,
    PUSH_DELTA,
    RESUME,
    UP_TO_DATE,
    AckReq,
    HeartbeatReq,
    SubscribeReq,
)
from tarscascade.wire.packets import STATUS_PUSH_FUNC, RequestPacket
from tarscascade.wire.rpc import decode_response

OBJ = "Test.A.Obj"


class Conn:
    """A connection whose pushes land in the downstream replica at once."""

    write_buffer_size = 0
    is_closing = False

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.frames = 0
        self.funcs: list[str] = []
        self.outcomes: list[Outcome] = []

    def push_frame(self, frame: bytes) -> bool:
        packet = decode_response(frame[4:])
        self.funcs.append(packet.status[STATUS_PUSH_FUNC])
        if self.funcs[-1] == PUSH_ACK_NOW:
            return True  # a request for an ack (lazy acks), not data: counted in funcs
        self.frames += 1
        result = self.replica.handle(packet.status[STATUS_PUSH_FUNC], packet.sBuffer)
        self.outcomes.append(result.outcome)
        return True

    def add_close_callback(self, fn: Any) -> None:
        pass

    async def drain(self) -> None:
        pass

    def abort(self) -> None:
        pass


class Rig:
    def __init__(self, clock: Callable[[], float] | None = None, **options: Any) -> None:
        self.catalog = Catalog()
        for c in Category:
            self.catalog.replace_category(c, [], Version("e", 0))
        self.hub = CascadeHub(
            self.catalog,
            authenticate=lambda _n, _t: True,
            options=HubOptions(**options),
            clock=clock,
        )
        self.down = Catalog()
        for c in Category:
            self.down.replace_category(c, [], Version("e", 0))
        self.conn = Conn(Replica(self.down))
        self.revision = 0

    def current(self, body: bytes = b"", func: str = "") -> Current:
        req = RequestPacket(sFuncName=func, sBuffer=body)
        return Current(req, ("127.0.0.1", 1), self.conn)  # type: ignore[arg-type]

    def subscribe(self) -> None:
        req = SubscribeReq(
            nodeName="n", held=held_states(self.down), protocol=PROTOCOL_VERSION, heartbeatMs=1000
        )
        ret, _ = self.hub._subscribe(self.current(), req)
        assert ret == 0

    def write(self, weight: int, port: int = 1) -> None:
        self.revision += 1
        rec = EndpointRecord(OBJ, "10.0.0.1", port, weight=weight)
        ev = ChangeEvent(self.revision, Category.OBJECTS, Op.PUT, rec.key, rec)
        before = self.catalog.version(Category.OBJECTS)
        self.catalog.apply([ev], "e")
        self.hub.publish(Category.OBJECTS, before, self.catalog.version(Category.OBJECTS), [ev])

    def ack(self) -> None:
        self.hub._ack(self.current(), AckReq(nodeName="n", held=held_states(self.down)))

    def heartbeat_body(self) -> bytes:
        return HEARTBEAT.encode_args(HeartbeatReq(nodeName="n", held=held_states(self.down)))

    def heartbeat(self, body: bytes | None = None) -> Any:
        current = self.current(body if body is not None else self.heartbeat_body(), "heartbeat")
        current.request.iVersion = 1
        ret, out, _ = self.hub.servant.dispatch(current)  # type: ignore[misc]
        assert ret == 0
        _, rsp = HEARTBEAT.decode_result(out)
        return rsp

    def in_sync(self) -> bool:
        c = Category.OBJECTS
        same = self.down.version(c) == self.catalog.version(c)
        return same and self.down.digest(c) == self.catalog.digest(c)


async def test_changes_for_a_node_still_applying_go_as_one_compacted_delta_on_its_ack() -> None:
    rig = Rig(coalesce_hold=30.0)  # no timeout here: only the ack releases them
    rig.subscribe()
    rig.write(1)
    assert rig.conn.frames == 1  # an idle node gets a change at once
    assert rig.in_sync()
    for w in range(2, 8):  # six more before the node said it has the first
        rig.write(w)
    rig.write(1, port=2)
    assert rig.conn.frames == 1, "held while the node has not acknowledged"
    assert rig.hub.stats.coalesced_changes == 7
    rig.ack()
    assert rig.conn.frames == 2, "one delta for all seven"
    assert rig.in_sync()
    assert [r.weight for r in rig.down.get_object(OBJ) if r.port == 1] == [7]
    assert rig.conn.outcomes == [Outcome.APPLIED, Outcome.APPLIED]
    await rig.hub.aclose()


async def test_a_node_that_keeps_acking_gets_every_change_as_it_comes() -> None:
    rig = Rig(coalesce_hold=30.0)
    rig.subscribe()
    for w in range(1, 6):
        rig.write(w)
        rig.ack()
    assert rig.conn.frames == 5
    assert rig.hub.stats.coalesced_changes == 0
    assert rig.in_sync()
    await rig.hub.aclose()


async def test_held_changes_go_out_when_the_ack_never_comes() -> None:
    rig = Rig(coalesce_hold=0.05)
    rig.subscribe()
    rig.write(1)
    rig.write(2)
    rig.write(3)
    assert rig.conn.frames == 1
    await eventually(rig.in_sync, timeout=10, what="the held changes, after the hold")
    assert rig.conn.frames == 2
    await rig.hub.aclose()


async def test_with_lazy_acks_a_held_change_asks_for_the_ack_that_releases_it() -> None:
    """Lazy acks (issue 17): a node asked to acknowledge within a minute has not. A change
    moments after its last push is held as before, and the node is asked to acknowledge
    at once (``cascade.acknow``): its ack releases the hold, so a stream of changes 20 ms
    apart does not wait for the hold's timer (in a first cut, with nothing asked, each
    did: 51 ms). Past the hold a change goes out at once, and nothing is asked."""
    now = [100.0]
    rig = Rig(clock=lambda: now[0], coalesce_hold=0.05, lazy_ack=60.0)
    rig.subscribe()
    rig.write(1)
    assert rig.conn.frames == 1
    assert rig.conn.replica.ack_within == 60.0  # "acknowledge within a minute"
    now[0] += 0.02
    rig.write(2)  # no ack came for the first
    assert rig.conn.funcs[-1] == PUSH_ACK_NOW, "held, and the ack asked for"
    assert rig.hub.stats.coalesced_changes == 1
    rig.write(3)  # joins the hold; asked once
    assert rig.conn.funcs.count(PUSH_ACK_NOW) == 1
    rig.ack()  # what the node answers at once
    assert rig.conn.funcs[-1] == PUSH_DELTA
    assert rig.in_sync()
    now[0] += 1.0
    frames = rig.conn.frames
    rig.write(4)  # long after the last push, unacknowledged: out at once, nothing asked
    assert rig.conn.frames == frames + 1
    assert rig.conn.funcs[-1] == PUSH_DELTA
    assert rig.conn.funcs.count(PUSH_ACK_NOW) == 1
    assert rig.in_sync()
    await rig.hub.aclose()


async def test_several_nodes_behind_share_one_encoding_of_their_catch_up() -> None:
    rig = Rig(coalesce_hold=30.0)
    rig.subscribe()
    other = Conn(Replica(Catalog()))
    for c in Category:
        other.replica.catalog.replace_category(c, [], Version("e", 0))
    req = SubscribeReq(
        nodeName="m", held=held_states(other.replica.catalog), protocol=PROTOCOL_VERSION
    )
    rig.hub._subscribe(Current(RequestPacket(), ("127.0.0.1", 2), other), req)  # type: ignore[arg-type]
    rig.write(1)
    rig.write(2)
    rig.write(3)
    rig.ack()
    rig.hub._ack(
        Current(RequestPacket(), ("127.0.0.1", 2), other),  # type: ignore[arg-type]
        AckReq(nodeName="m", held=held_states(other.replica.catalog)),
    )
    assert rig.in_sync()
    assert other.replica.catalog.version(Category.OBJECTS) == rig.catalog.version(Category.OBJECTS)
    assert (rig.hub.stats.catch_up_encodes, rig.hub.stats.catch_up_shared) == (1, 1)
    await rig.hub.aclose()


async def test_an_unchanged_heartbeat_is_answered_from_the_cache_and_only_while_valid() -> None:
    rig = Rig()
    rig.subscribe()
    rig.write(1)
    rig.ack()
    first = rig.heartbeat()
    assert {p.action for p in first.plan} == {UP_TO_DATE}
    assert rig.hub.stats.heartbeats_cached == 0
    session = rig.hub._sessions["n"]
    session.last_heard = 0.0
    again = rig.heartbeat()
    assert rig.hub.stats.heartbeats_cached == 1
    assert again == first
    assert session.last_heard > 0.0, "a cached heartbeat still keeps the session alive"

    # The registry moved on and the node says the same as before (its push is on its way):
    # the cached "up to date" must not be given; the answer names the new version.
    old_body = rig.heartbeat_body()
    rig.write(2)
    rsp = rig.heartbeat(old_body)
    assert rig.hub.stats.heartbeats_cached == 1
    objects = next(p for p in rsp.plan if p.category == "objects")
    assert objects.version.revision == 2
    assert objects.action in (UP_TO_DATE, RESUME)
    await rig.hub.aclose()


async def test_a_heartbeat_with_other_content_is_not_taken_from_the_cache() -> None:
    rig = Rig()
    rig.subscribe()
    rig.heartbeat()
    rig.heartbeat()
    assert rig.hub.stats.heartbeats_cached == 1
    # the node's replica changed behind the hub's back: same version, another digest
    stray = EndpointRecord(OBJ, "10.9.9.9", 9)
    rig.down.replace_category(Category.OBJECTS, [stray], Version("e", 0))
    rsp = rig.heartbeat()
    assert rig.hub.stats.heartbeats_cached == 1
    objects = next(p for p in rsp.plan if p.category == "objects")
    assert objects.action != UP_TO_DATE
    await rig.hub.aclose()


async def test_hold_bookkeeping_ends_with_the_hub() -> None:
    rig = Rig(coalesce_hold=0.01)
    rig.subscribe()
    rig.write(1)
    rig.write(2)
    await rig.hub.aclose()
    await asyncio.sleep(0.05)
    assert rig.conn.frames == 1  # nothing is sent once the hub is closed
