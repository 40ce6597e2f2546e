"""A node never serves the past, and never calls itself in sync when it is not.

Reproductions of the round-2 review (A1, A5): failover to an upstream that is behind,
bookmark ping-pong between registries that number categories differently; and
freshness travelling down a relay tree.
"""

from __future__ import annotations

from itertools import pairwise

from tarscascade.cascade import CascadeHub, Freshness
from tarscascade.catalog import Catalog
from tarscascade.model import Category, Setting, State, Version
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.transport import TarsServer
from tests.integration.cascade.harness import (
    TOKEN,
    WAIT,
    Cluster,
    Node,
    Registry,
    converged,
    ep,
)


class VersionLog:
    """Every version a node's catalog served, per category: to catch time travel."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.seen: dict[Category, list[Version]] = {c: [catalog.version(c)] for c in Category}
        catalog.add_listener(self._changed)

    def _changed(self, _ids: object) -> None:
        for c in Category:
            v = self.catalog.version(c)
            if self.seen[c][-1] != v:
                self.seen[c].append(v)

    def went_back(self) -> list[str]:
        out = []
        for c, versions in self.seen.items():
            for a, b in pairwise(versions):
                if a.epoch and a.epoch == b.epoch and b.revision < a.revision:
                    out.append(f"{c}: {a} -> {b}")
        return out


def setting_state(node: Node, port: int) -> State | None:
    for r in node.catalog.get_object(ep(port).object_id):
        if r.port == port:
            return r.setting_state
    return None


async def test_failover_to_a_lagging_registry_keeps_the_newer_replica(cluster: Cluster) -> None:
    """A1: registries A and B share a database; B has not read A's latest writes. A node
    that fails over from A to B keeps what A gave it, says it is stale, and catches up
    when B does. (Before: it took B's older snapshot and said synced, not stale.)"""
    a = await cluster.start_registry()
    b = await cluster.start_registry()  # the harness runs no tail: B lags until told
    await a.core.write([Put(ep(1)), Put(ep(2))])
    await b.core.catch_up()
    node = cluster.node("n1", [("127.0.0.1", a.port), ("127.0.0.1", b.port)])
    await eventually(lambda: a.core.catalog.get_node("n1") is not None, timeout=WAIT)
    await b.core.catch_up()  # B knows the node's record (it will not write it again)
    await converged([node], a, "initial, from A")
    history = VersionLog(node.catalog)

    # a drain through A: the node has it
    await a.core.write([Put(ep(1, setting_state=State.INACTIVE))])
    await converged([node], a, "the drain")
    assert setting_state(node, 1) == State.INACTIVE

    await cluster.stop_registry(a)
    await eventually(
        lambda: node.client.upstream == ("127.0.0.1", b.port) and node.client.connected,
        timeout=WAIT,
        what="failed over to B",
    )
    heartbeats = b.hub.stats.heartbeats
    await eventually(lambda: b.hub.stats.heartbeats >= heartbeats + 3, timeout=WAIT)
    assert setting_state(node, 1) == State.INACTIVE  # the drain did not come undone
    assert node.client.stale
    assert Category.OBJECTS in node.client.ahead_of_upstream
    assert not node.client.in_sync
    assert b.hub.stats.snapshots_sent == 0
    assert b.hub.stats.behind_plans >= 1

    await b.core.catch_up()  # B reads the drain from the change log
    await converged([node], b, "B caught up")
    await eventually(lambda: not node.client.stale, timeout=WAIT, what="fresh again")
    assert node.client.in_sync
    assert setting_state(node, 1) == State.INACTIVE
    assert history.went_back() == []


async def test_a_stale_relay_loaded_from_disk_does_not_take_leaves_back(
    cluster: Cluster,
) -> None:
    """A1, second reproduction, with a relay hub whose freshness says it is stale and
    its data came from disk: a leaf that fails over to it keeps its newer replica; a new
    node behind it gets the relay's data but knows it is stale."""
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2))])
    old = Catalog()
    relay_node = cluster.node("relay", [("127.0.0.1", reg.port)], catalog=old)
    await converged([relay_node], reg, "the relay's copy (as written to its disk)")
    await cluster.close_node(relay_node)

    await reg.core.write([Put(ep(1, setting_state=State.INACTIVE))])  # the drain
    leaf = cluster.node("leaf", [("127.0.0.1", reg.port)])
    await converged([leaf], reg, "the leaf has the drain")
    history = VersionLog(leaf.catalog)
    await cluster.close_node(leaf)

    # the relay restarted from disk, its own upstream unreachable
    from_disk = Freshness(stale=True, contact_age=600.0, from_disk=True)
    relay_hub = CascadeHub(old, authenticate=lambda _n, t: t == TOKEN, freshness=lambda: from_disk)
    async with TarsServer([relay_hub.servant]) as relay:
        back = cluster.node("leaf", [("127.0.0.1", relay.port)], catalog=leaf.catalog)
        await eventually(lambda: back.client.connected, timeout=WAIT, what="on the relay")
        await eventually(lambda: relay_hub.stats.heartbeats >= 3, timeout=WAIT)
        assert setting_state(back, 1) == State.INACTIVE
        assert back.client.stale
        assert back.client.freshness().from_disk is False  # its own data is not from disk
        assert back.client.upstream_freshness.from_disk

        fresh_node = cluster.node("new", [("127.0.0.1", relay.port)])
        await eventually(lambda: fresh_node.client.synced.is_set(), timeout=WAIT)
        assert setting_state(fresh_node, 1) == State.ACTIVE  # all the relay has
        assert fresh_node.client.stale  # ... and it knows that is not current
        assert fresh_node.client.freshness().stale
        assert fresh_node.client.contact_age() >= 600.0
        await cluster.close_node(back)
        await cluster.close_node(fresh_node)
        await relay_hub.aclose()
    assert history.went_back() == []


async def test_staleness_travels_down_a_relay_tree(cluster: Cluster) -> None:
    """The registry goes away: the relay is stale, and so are the leaves behind it; when
    it is back, everyone is fresh again (before: leaves of a stale relay said fresh)."""
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    port = reg.port
    relay_catalog = Catalog()
    middle: list[Node] = []

    def relay_freshness() -> Freshness:
        return middle[0].client.freshness()

    relay_hub = CascadeHub(
        relay_catalog, authenticate=lambda _n, t: t == TOKEN, freshness=relay_freshness
    )
    async with TarsServer([relay_hub.servant]) as relay_server:
        middle.append(
            cluster.node(
                "middle",
                [("127.0.0.1", port)],
                catalog=relay_catalog,
                on_applied=relay_hub.replica_applied,
                descendants=relay_hub.descendant_acks,
            )
        )
        await converged(middle, reg, "the relay")
        leaf = cluster.node("leaf", [("127.0.0.1", relay_server.port)])
        await converged([leaf], reg, "the leaf")
        await eventually(lambda: not leaf.client.stale, timeout=WAIT, what="fresh leaf")

        await cluster.stop_registry(reg)
        await eventually(lambda: middle[0].client.stale, timeout=WAIT, what="stale relay")
        await eventually(lambda: leaf.client.stale, timeout=WAIT, what="stale leaf")
        assert leaf.client.connected  # still served by the relay, and told it is stale
        assert leaf.client.upstream_freshness.stale

        reg2 = await cluster.start_registry(port=port)
        await converged([middle[0], leaf], reg2, "after the registry is back")
        await eventually(lambda: not leaf.client.stale, timeout=WAIT, what="fresh leaf again")
        await cluster.close_node(leaf)
        await cluster.close_node(middle[0])
        await relay_hub.aclose()


async def _renumbered_pair(cluster: Cluster) -> tuple[Registry, Registry]:
    a = await cluster.start_registry()
    b = await cluster.start_registry()
    await a.core.write([Put(ep(1))])
    for i in range(5):  # other categories move the store's revision on
        await a.core.write([Put(Setting(f"s{i}", "v"))])
    await b.core.catch_up()  # B: each category at the revision of its own last change
    await a.core.start()  # A restarts: it numbers every category with the store revision
    assert a.core.catalog.version(Category.OBJECTS) != b.core.catalog.version(Category.OBJECTS)
    assert a.core.catalog.digest(Category.OBJECTS) == b.core.catalog.digest(Category.OBJECTS)
    return a, b


async def test_no_bookmark_ping_pong_between_registries_that_number_differently(
    cluster: Cluster,
) -> None:
    """A5: a node that moves from A (renumbered) to B (older numbers, same content) is
    adopted at its version: no resyncs, no bookmarks down, nothing ignored, not stale."""
    a, b = await _renumbered_pair(cluster)
    node = cluster.node("n1", [("127.0.0.1", a.port), ("127.0.0.1", b.port)])
    await converged([node], a, "from A")
    await eventually(lambda: a.core.catalog.get_node("n1") is not None, timeout=WAIT)
    await b.core.catch_up()
    await a.core.catch_up()
    await converged([node], a, "with its own record")
    await cluster.stop_registry(a)
    await eventually(
        lambda: node.client.upstream == ("127.0.0.1", b.port) and node.client.connected,
        timeout=WAIT,
    )
    hub = b.hub
    resyncs, bookmarks = hub.stats.resyncs, hub.stats.bookmarks
    ignored = node.client.stats.pushes_ignored
    heartbeats = hub.stats.heartbeats
    await eventually(lambda: hub.stats.heartbeats >= heartbeats + 10, timeout=WAIT)
    assert (hub.stats.resyncs, hub.stats.bookmarks) == (resyncs, bookmarks)
    assert node.client.stats.pushes_ignored == ignored
    assert not node.client.stale
    assert hub.stats.snapshots_sent == 0
    # and a new change still reaches it, numbered past both
    await b.core.write([Put(ep(9))])
    await eventually(lambda: any(r.port == 9 for r in node.catalog.get_object(ep(9).object_id)))
    assert node.catalog.digest(Category.OBJECTS) == b.core.catalog.digest(Category.OBJECTS)
