"""A live push to a downstream whose connection is already gone counts nothing as sent."""

from __future__ import annotations

import logging

import pytest

from tarscascade.cascade import HubOptions
from tarscascade.cascade.session import Session
from tarscascade.cascade.tracker import NodeState
from tarscascade.cascade.upstream import Upstream
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Version


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
        s.on_delta(Category.OBJECTS, before, Version("e", 2), [ev], lambda: [b"frame"], 7)
    assert conn.aborted
    assert dropped == ["connection closed"]
    assert s.closed
    assert s.sent[Category.OBJECTS] == before  # nothing reached it
    assert up.stats.deltas_sent == 0
    assert state.deltas_sent == 0
    # an ordinary disconnect is no warning
    assert [r.levelno for r in caplog.records] == [logging.INFO]
