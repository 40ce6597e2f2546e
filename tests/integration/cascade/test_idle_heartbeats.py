"""Idle heartbeats (issue 17, target 4): a registry grants an idle node heartbeats longer
than its node timeout, and keeps it alive on its connection meanwhile (docs/protocol.md,
*Idle heartbeats*). What must not break: an idle node is never judged dead for its
silence; a node that vanishes is still judged dead in bounded time, even behind a proxy
that keeps its connection open; a relay reports a lost leaf at once though its own
heartbeats are far apart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tarscascade.cascade import CascadeHub, Freshness, heard_at
from tarscascade.cascade.tracker import LATE_FACTOR
from tarscascade.catalog import Catalog
from tarscascade.model import Category, State, Version
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.feed import attach_cascade
from tarscascade.store import SqlStore
from tarscascade.testing import eventually
from tarscascade.testing.faultproxy import FaultProxy
from tarscascade.transport.server import TarsServer
from tests.integration.cascade.harness import TOKEN, Cluster, converged, fast_client_options

NODE_TIMEOUT = 3.0
GRANT = 6.0  # twice the node timeout: heartbeats alone would let the node die
#: the keepalive bound the registry is told: with the rounds and the tier's sightings
#: (SQLite has the tier's tables too) it fits in the node timeout, so it grants
BOUND = 0.3


@dataclass
class Live:
    core: RegistryCore
    hub: CascadeHub
    port: int


@contextlib.asynccontextmanager
async def live_registry(tmp_path: Path) -> AsyncIterator[Live]:
    """A registry whose liveness loop runs, judging nodes after NODE_TIMEOUT."""
    store = await asyncio.to_thread(SqlStore.open, f"sqlite:///{tmp_path / 'r.db'}")
    opts = RegistryOptions(
        reload_interval=0,
        node_timeout=NODE_TIMEOUT,
        liveness_interval=0.1,
        idle_heartbeat=GRANT,
    )
    core = RegistryCore(store, opts)
    await core.start()
    hub = await attach_cascade(core, token=TOKEN, keepalive_bound=BOUND)
    loops = asyncio.create_task(core.run())
    try:
        async with TarsServer([hub.servant]) as server:
            yield Live(core, hub, server.port)
    finally:
        loops.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loops
        await hub.aclose()
        await core.aclose()
        await asyncio.to_thread(store.close)


def node_state(live: Live, name: str) -> State | None:
    rec = live.core.catalog.get_node(name)
    return rec.present_state if rec is not None else None


def silence(live: Live, name: str) -> float:
    st = live.hub.tracker.get(name)
    assert st is not None
    return time.time() - heard_at(st)


async def test_an_idle_node_stays_alive_through_silences_longer_than_the_node_timeout(
    tmp_path: Path,
) -> None:
    async with live_registry(tmp_path) as live:
        cluster = Cluster("")
        node = cluster.node(
            "idle-1",
            [("127.0.0.1", live.port)],
            options=fast_client_options(heartbeat_interval=0.2, heartbeat_idle_longest=GRANT),
        )
        try:
            await eventually(lambda: node_state(live, "idle-1") is State.ACTIVE, timeout=10)
            assert node.client.idle_heartbeat() == GRANT  # granted, as asked
            events = live.core.stats.liveness_events
            # wait for a silence past the node timeout and three liveness rounds
            await eventually(
                lambda: silence(live, "idle-1") > NODE_TIMEOUT + 0.3,
                timeout=40,
                what="a silence longer than the node timeout",
            )
            assert node_state(live, "idle-1") is State.ACTIVE
            assert live.core.stats.liveness_events == events  # never judged dead meanwhile
        finally:
            await cluster.aclose()


async def test_a_node_lost_behind_a_proxy_is_judged_dead_though_its_connection_stays(
    tmp_path: Path,
) -> None:
    """The proxy answers for the vanished node (TCP keeps going): the connection's word
    counts only until the node's next heartbeat is overdue."""
    async with live_registry(tmp_path) as live:
        proxy = await FaultProxy(("127.0.0.1", live.port)).start()
        cluster = Cluster("")
        cluster.node(
            "lost-1",
            [proxy.address],
            options=fast_client_options(heartbeat_interval=0.2, heartbeat_idle_longest=GRANT),
        )
        try:
            await eventually(lambda: node_state(live, "lost-1") is State.ACTIVE, timeout=10)
            await eventually(lambda: silence(live, "lost-1") > NODE_TIMEOUT, timeout=40)
            proxy.set("blackhole")
            st = live.hub.tracker.get("lost-1")
            assert st is not None
            last_heard = heard_at(st)
            await eventually(
                lambda: node_state(live, "lost-1") is State.INACTIVE,
                timeout=30,
                what="the lost node judged dead",
            )
            # dead at most one granted interval (late) plus the node timeout after it was
            # last heard, plus rounds and the write
            assert time.time() - last_heard < GRANT * LATE_FACTOR + NODE_TIMEOUT + 2.0
        finally:
            await cluster.aclose()
            await proxy.aclose()


async def test_a_relay_reports_a_lost_leaf_at_once_between_its_own_heartbeats(
    cluster: Cluster,
) -> None:
    reg = await cluster.start_registry()
    assert reg.hub.options.idle_heartbeat_grant > 0  # the registry vouches for what it hears
    slow = fast_client_options(heartbeat_interval=20.0, heartbeat_idle_longest=30.0)
    async with cluster.relay("relay-1", [("127.0.0.1", reg.port)], options=slow) as relay:
        leaf = cluster.node("leaf-1", [("127.0.0.1", relay.port)])
        await converged([relay.node, leaf], reg)
        await eventually(lambda: "leaf-1" in reg.hub.node_states(), timeout=10, what="listed")
        beats = relay.node.client.stats.heartbeats
        await cluster.close_node(leaf)
        # the relay's next heartbeat is ~20 s away: only the report of the loss is this soon
        await eventually(
            lambda: "leaf-1" not in reg.hub.node_states(), timeout=5, what="the leaf forgotten"
        )
        assert relay.node.client.stats.heartbeats == beats + 1


async def test_a_change_of_the_upstreams_freshness_reaches_a_node_between_its_heartbeats() -> None:
    """An idle node granted long heartbeats hears of its upstream's freshness only in
    heartbeat answers: when it changes, the upstream asks for a heartbeat at once."""
    catalog = Catalog()
    for c in Category:
        catalog.replace_category(c, [], Version("e1", 1))
    said = [Freshness()]
    hub = CascadeHub(catalog, authenticate=lambda _n, t: t == TOKEN, freshness=lambda: said[0])
    cluster = Cluster("")
    try:
        async with TarsServer([hub.servant]) as server:
            # first heartbeat no sooner than 8 s after subscribing (10 s, jittered by 1/5)
            slow = fast_client_options(heartbeat_interval=10.0)
            node = cluster.node("fresh-1", [("127.0.0.1", server.port)], options=slow)
            await node.client.synced.wait()
            assert not node.client.upstream_freshness.stale
            beats = node.client.stats.heartbeats
            said[0] = Freshness(stale=True, confirmed_epoch="e1")
            await eventually(
                lambda: node.client.upstream_freshness.stale,
                timeout=5,
                what="the node heard its upstream is stale",
            )
            assert node.client.upstream_freshness.confirmed_epoch == "e1"
            assert node.client.stats.heartbeats == beats + 1
            assert hub.stats.beats_asked == 1
    finally:
        await cluster.aclose()
        await hub.aclose()
