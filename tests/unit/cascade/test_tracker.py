"""AckTracker: what every node holds, descendants through relays, waiting for acks."""

from __future__ import annotations

import asyncio

from tarscascade.cascade.states import Held
from tarscascade.cascade.tracker import AckTracker
from tarscascade.model import Category, Version

OBJ = Category.OBJECTS


def held(rev: int, epoch: str = "e") -> dict[Category, Held]:
    return {OBJ: Held(Version(epoch, rev), 0)}


async def test_wait_returns_when_the_last_pending_node_acks() -> None:
    t = AckTracker(clock=lambda: 100.0)
    for n in ("a", "b"):
        t.connected(n, "")
        t.record(n, held(1), heartbeat=True)
    waiter = asyncio.create_task(t.wait(OBJ, Version("e", 5), None, timeout=10))
    await asyncio.sleep(0)
    t.record("a", held(5), heartbeat=False)
    await asyncio.sleep(0)
    assert not waiter.done()
    t.record("b", held(6, "other"), heartbeat=False)  # another epoch does not count
    await asyncio.sleep(0)
    assert not waiter.done()
    t.record("b", held(7), heartbeat=False)
    elapsed, missing = await waiter
    assert missing == []
    assert elapsed < 10
    assert t.get("a").last_ack == 100.0
    assert t.get("a").last_heartbeat == 100.0


async def test_wait_times_out_naming_the_laggards() -> None:
    t = AckTracker()
    t.connected("a", "")
    elapsed, missing = await t.wait(OBJ, Version("e", 1), ["a", "zz"], timeout=0.05)
    assert missing == ["a", "zz"]
    assert elapsed >= 0.05


def test_descendants_follow_their_relay() -> None:
    t = AckTracker(max_offline=1)
    t.connected("relay", "r:1")
    t.record_descendants("relay", {"leaf1": held(3), "leaf2": held(4)}, heartbeat=True)
    assert t.connected_names() == {"relay", "leaf1", "leaf2"}
    assert t.get("leaf1").via == "relay"  # type: ignore[union-attr]
    t.record_descendants("relay", {"leaf2": held(5)}, heartbeat=True)
    assert t.get("leaf1") is None  # no longer reported
    t.connected("leaf2", "l:2")  # it now has its own session: that wins
    t.record_descendants("relay", {"leaf2": held(1)}, heartbeat=True)
    assert t.get("leaf2").held[OBJ] == Version("e", 5)  # type: ignore[union-attr]
    t.disconnected("relay")
    t.disconnected("leaf2")
    assert t.connected_names() == set()
    assert [s.name for s in t.states()] == ["leaf2"]  # bounded offline memory: oldest gone
