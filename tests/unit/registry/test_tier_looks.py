"""The tier's look for drain waits: a write wakes it (a drain on another registry wrote
one before its change), but a stream of writes costs one query per ``ack_interval``, not
one per write (issue 17: half a millisecond of registry CPU per admin write)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import SimpleNamespace
from typing import Any

from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Version
from tarscascade.registry.presence import TierOptions, TierPresence
from tarscascade.testing import eventually

ACK_INTERVAL = 0.2
WRITES = 100


class CountingTable:
    """The presence table's ``waits``, counted; nothing else is asked while idle."""

    def __init__(self) -> None:
        self.looks = 0
        self.pending: list[Version] = []

    def waits(self) -> list[Version]:
        self.looks += 1
        return list(self.pending)


def _write(revision: int) -> list[ChangeEvent]:
    r = EndpointRecord("A.B.Obj", "10.0.0.1", 1)
    return [ChangeEvent(revision, Category.OBJECTS, Op.PUT, r.key, r)]


async def test_a_stream_of_writes_costs_one_look_per_ack_interval_and_a_wait_is_still_seen() -> (
    None
):
    table = CountingTable()
    core: Any = SimpleNamespace(options=SimpleNamespace(clock=time.time, node_timeout=0.0))
    tier = TierPresence(core, table, TierOptions(ack_interval=ACK_INTERVAL, wait_poll=60.0))  # type: ignore[arg-type]
    task = asyncio.create_task(tier.run())
    try:
        await eventually(lambda: table.looks >= 1, what="the first look")
        loop = asyncio.get_running_loop()
        started, before = loop.time(), table.looks
        for revision in range(1, WRITES + 1):
            tier.on_events(_write(revision))
            await asyncio.sleep(0.002)
        elapsed = loop.time() - started
        looks = table.looks - before
        # one look per interval (plus the one a trailing wake owes), however many writes
        assert looks <= elapsed / ACK_INTERVAL + 2, (looks, elapsed)
        assert looks < WRITES / 4, (looks, elapsed)

        # a drain's wait written elsewhere, then its write: seen within about an interval
        table.pending = [Version("e1", 7)]
        tier.on_events(_write(WRITES + 1))
        await eventually(lambda: tier.waits == [Version("e1", 7)], what="the wait seen")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
