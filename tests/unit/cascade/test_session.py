"""Session bookkeeping: what counts as sent, and what a heartbeat may conclude from it."""

from __future__ import annotations

import logging

import pytest

from tarscascade.cascade import HubOptions
from tarscascade.cascade.session import Session
from tarscascade.cascade.states import Held
from tarscascade.cascade.tracker import NodeState
from tarscascade.cascade.upstream import Upstream
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Version
from tarscascade.wire.idl.cascadef import RESUME, SNAPSHOT, UP_TO_DATE


class GoneConnection:
    """The connection a peer has just reset: every push is refused."""

    write_buffer_size = 0

    def __init__(self) -> None:
        self.pushed = 0
        self.aborted = False

    def push_frame(self, frame: bytes) -> bool:
        self.pushed += 1
        return False

    def abort(self) -> None:
        self.aborted = True


def test_a_delta_to_a_reset_connection_is_not_counted_as_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    up = Upstream(Catalog(), HubOptions())
    state = NodeState("n1")
    dropped: list[str] = []
    conn = GoneConnection()
    s = Session(up, "n1", conn, ("127.0.0.1", 1), state, lambda _s, why: dropped.append(why))  # type: ignore[arg-type]
    before = Version("e", 1)
    s.sent[Category.OBJECTS] = before
    rec = EndpointRecord("A.B.Obj", "10.0.0.1", 1)
    ev = ChangeEvent(2, Category.OBJECTS, Op.PUT, rec.key, rec)
    with caplog.at_level(logging.INFO, logger="tarscascade.cascade.session"):
        s.on_delta(Category.OBJECTS, before, Version("e", 2), [ev], lambda: [b"frame"])
    assert conn.aborted
    assert dropped == ["connection closed"]
    assert s.closed
    assert s.sent[Category.OBJECTS] == before  # nothing reached it
    assert up.stats.deltas_sent == 0
    assert state.deltas_sent == 0
    # an ordinary disconnect is no warning
    assert [r.levelno for r in caplog.records] == [logging.INFO]


class OpenConnection:
    """A connection that takes every frame (the bytes go nowhere)."""

    write_buffer_size = 0

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def push_frame(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    async def drain(self) -> None:
        return None

    def abort(self) -> None:
        raise AssertionError("the session must not be dropped")


async def snapshot_sent() -> tuple[Catalog, Upstream, OpenConnection, Session]:
    """A session that was just sent a snapshot of a one-endpoint catalog."""
    catalog = Catalog()
    rec = EndpointRecord("A.B.Obj", "10.0.0.1", 1)
    catalog.apply([ChangeEvent(1, Category.OBJECTS, Op.PUT, rec.key, rec)], "e")
    up = Upstream(catalog, HubOptions())
    conn = OpenConnection()
    s = Session(up, "n1", conn, ("127.0.0.1", 1), NodeState("n1"), lambda _s, _w: None)  # type: ignore[arg-type]
    await s._sync(Category.OBJECTS, snapshot=True)
    return catalog, up, conn, s


async def test_a_heartbeat_that_overtakes_a_snapshot_does_not_trigger_another() -> None:
    """A new node's heartbeat can reach the upstream while the snapshot written for it is
    still in the pipe or being applied (seconds at 1M endpoints): it still holds nothing.
    That is no reason for a second full snapshot; once the node held it, a real loss is
    repaired as before."""
    catalog, up, conn, s = await snapshot_sent()
    assert conn.frames
    assert up.stats.snapshots_sent == 1
    sent = s.sent[Category.OBJECTS]

    assert s.check(Category.OBJECTS, None) == RESUME  # on its way, not lost
    assert not s.jobs
    assert up.stats.resyncs == 0

    held = Held(sent, catalog.digest(Category.OBJECTS))
    assert s.check(Category.OBJECTS, held) == UP_TO_DATE  # applied: confirmed
    assert not s.unconfirmed

    assert s.check(Category.OBJECTS, None) == SNAPSHOT  # now it really lost it
    assert up.stats.resyncs == 1


async def test_an_ack_of_the_sent_version_with_other_content_brings_a_snapshot() -> None:
    """Acks confirm changes (a heartbeat may be 7.5 s away): one that holds the version
    it was sent under another digest was changed behind our back, as a heartbeat would
    say; the acks that fit, or are of a version still on its way, change nothing."""
    catalog, up, _conn, s = await snapshot_sent()
    sent, digest = s.sent[Category.OBJECTS], catalog.digest(Category.OBJECTS)
    s.ack({Category.OBJECTS: Held(Version("e", 0), 0)})  # the snapshot still on its way
    s.ack({Category.OBJECTS: Held(sent, digest ^ 1)})  # sent before it came: not judged
    assert not s.jobs
    assert s.unconfirmed
    s.ack({Category.OBJECTS: Held(sent, digest)})  # the snapshot is held
    assert not s.unconfirmed
    assert not s.jobs
    assert up.stats.resyncs == 0
    s.ack({Category.OBJECTS: Held(sent, digest ^ 1)})
    assert s.jobs == {Category.OBJECTS: True}  # whole
    assert up.stats.resyncs == 1


async def test_an_ack_is_not_judged_while_the_category_is_being_sent() -> None:
    _catalog, up, _conn, s = await snapshot_sent()
    sent = s.sent[Category.OBJECTS]
    s.request(Category.OBJECTS)  # the worker owns it again (a re-plan)
    s.ack({Category.OBJECTS: Held(sent, 12345)})
    assert s.jobs == {Category.OBJECTS: False}  # not turned into a snapshot
    assert up.stats.resyncs == 0
