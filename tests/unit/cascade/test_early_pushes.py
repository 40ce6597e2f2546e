"""The pushes that came before a subscribe's answer was taken: applied in the order they
came, pushes still arriving after them, in slices that let the loop run (a busy node's
backlog of thousands of deltas must not hold up its heartbeats), and never applied once
a newer subscribe took over."""

from __future__ import annotations

import asyncio

from tarscascade.cascade import CascadeClient
from tarscascade.cascade.downstream import EARLY_SLICE
from tarscascade.cascade.frames import delta_frames
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, Op, Setting, Version
from tarscascade.wire.packets import ResponsePacket
from tarscascade.wire.rpc import ClientRpc, Push

E = "epoch1"


def delta(rev: int) -> ResponsePacket:
    """The push taking setting ``a`` to ``rev`` (from ``rev - 1``)."""
    put = ChangeEvent(rev, Category.SETTINGS, Op.PUT, "a", Setting("a", str(rev)))
    (frame,) = delta_frames(Category.SETTINGS, Version(E, rev - 1), Version(E, rev), [put])
    (push,) = ClientRpc().receive_data(frame)
    assert isinstance(push, Push)
    return push.packet


def client() -> CascadeClient:
    catalog = Catalog()
    catalog.replace_category(Category.SETTINGS, [Setting("a", "0")], Version(E, 0))
    return CascadeClient(catalog, [("127.0.0.1", 9)], node_name="n1")


async def test_a_backlog_is_applied_in_order_in_slices_with_late_arrivals() -> None:
    c = client()
    n = EARLY_SLICE * 20
    early = [delta(rev) for rev in range(1, n + 1)]
    c._early_pushes = early
    ticks = 0
    arrived = False

    async def ticker() -> None:
        nonlocal ticks, arrived
        while c._early_pushes is not None:
            ticks += 1
            if not arrived:  # a push that arrives while the backlog is being applied
                c._on_push(delta(n + 1))
                arrived = True
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    await c._drain_early(early)
    await tick
    assert c._early_pushes is None  # later pushes now apply at once
    assert c.catalog.version(Category.SETTINGS) == Version(E, n + 1)
    assert c.catalog.get_setting("a") == str(n + 1)
    assert c.stats.deltas_received == n + 1
    assert c.stats.resyncs == 0  # every delta found the version it starts from
    assert ticks >= 10  # the loop ran between slices
    c._on_push(delta(n + 2))
    assert c.catalog.version(Category.SETTINGS) == Version(E, n + 2)


async def test_a_newer_subscribe_ends_the_old_backlog() -> None:
    c = client()
    old = [delta(rev) for rev in range(1, EARLY_SLICE * 4)]
    c._early_pushes = old
    drain = asyncio.create_task(c._drain_early(old))
    await asyncio.sleep(0)  # the first slice
    newer: list[ResponsePacket] = []
    c._early_pushes = newer  # what _subscribe does on a re-subscribe
    await drain
    applied = c.catalog.version(Category.SETTINGS).revision
    assert applied == EARLY_SLICE  # one slice, then it saw the newer queue and stopped
    assert c._early_pushes is newer
