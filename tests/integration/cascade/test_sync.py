"""A registry and nodes over loopback TCP: changes reach every node, and nodes resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tarscascade.cascade.frames import delta_frames
from tarscascade.cascade.sync import CatchUp, Push, SessionSync
from tarscascade.cascade.upstream import SHORT_TAIL_MIN
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, NodeRecord, Op, Setting, State, Version
from tarscascade.store import Delete, Put, SqlStore
from tarscascade.testing import eventually
from tests.integration.cascade.harness import (
    WAIT,
    Cluster,
    active_ports,
    all_ports,
    converged,
    ep,
    same_as,
)


async def test_adds_updates_state_changes_and_deletes_reach_every_node(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2)), Put(Setting("interval", "3"))])
    upstream = [("127.0.0.1", reg.port)]
    nodes = [cluster.node(f"node{i}", upstream) for i in range(4)]
    for n in nodes:
        await eventually(n.client.synced.is_set, timeout=WAIT, what=f"{n.name} synced")
    await converged(nodes, reg, "initial snapshot")
    assert all(active_ports(n.catalog) == [1, 2] for n in nodes)

    await reg.core.write([Put(ep(3))])  # add
    await reg.core.write([Put(ep(2, weight=50))])  # update
    await reg.core.write([Put(ep(1, setting_state=State.INACTIVE))])  # state change
    await reg.core.write([Put(Setting("interval", "5"))])  # a whole category
    await converged(nodes, reg, "after updates")
    assert all(active_ports(n.catalog) == [2, 3] for n in nodes)
    assert all(n.catalog.get_object(ep(2).object_id)[1].weight == 50 for n in nodes)
    assert all(n.catalog.get_setting("interval") == "5" for n in nodes)

    await reg.core.write([Delete(Category.OBJECTS, ep(3).key)])  # delete
    await converged(nodes, reg, "after the delete")
    assert all(all_ports(n.catalog) == [1, 2] for n in nodes)
    # every node registered itself as an alive node record, and is tracked by the hub
    await eventually(
        lambda: all(reg.core.catalog.get_node(n.name) is not None for n in nodes), timeout=WAIT
    )
    await converged(nodes, reg, "node records")
    states = reg.hub.node_states()
    assert {n.name for n in nodes} <= set(states)
    assert all(states[n.name].connected for n in nodes)
    await eventually(
        lambda: all(n.client.stats.heartbeats >= 2 for n in nodes), timeout=WAIT, what="beats"
    )
    assert all(n.client.stats.heartbeat_failures == 0 for n in nodes)
    assert all(n.client.stats.connects == 1 for n in nodes)
    # the only full snapshots were the initial ones (four categories per node at most)
    assert reg.hub.stats.snapshots_sent <= 4 * len(nodes)
    # and the changes went as deltas: at least one per node (commits that land while a node
    # is still applying the previous push are coalesced into one delta, so how many depends
    # on the machine's load: a fresh-clone run saw 12 for 4 nodes)
    assert reg.hub.stats.deltas_sent >= len(nodes)


async def test_a_node_away_while_endpoints_change_resumes_with_a_delta(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(p)) for p in range(1, 6)])
    upstream = [("127.0.0.1", reg.port)]
    stay = cluster.node("stay", upstream)
    away = cluster.node("away", upstream)
    await converged([stay, away], reg, "initial")
    await cluster.close_node(away)  # the node goes away, keeping its replica

    snapshots_before = reg.hub.stats.snapshots_sent
    deltas_before = reg.hub.node_states()["away"].deltas_sent
    await reg.core.write([Delete(Category.OBJECTS, ep(p).key) for p in (1, 2)])
    await reg.core.write([Put(ep(10)), Put(ep(3, setting_state=State.INACTIVE))])
    await reg.core.write([Delete(Category.OBJECTS, ep(10).key), Put(ep(11))])
    await converged([stay], reg, "the node that stayed")
    assert all_ports(away.catalog) == [1, 2, 3, 4, 5]  # it really was away

    back = cluster.node("away", upstream, catalog=away.catalog)
    await converged([back], reg, "the node that came back")
    assert all_ports(back.catalog) == [3, 4, 5, 11]  # no deleted endpoint survived
    assert active_ports(back.catalog) == [4, 5, 11]
    assert reg.hub.stats.snapshots_sent == snapshots_before  # resumed, no snapshot
    assert reg.hub.node_states()["away"].deltas_sent > deltas_before
    assert back.client.stats.snapshots_received == 0


async def test_a_restarted_registry_resumes_nodes_with_deltas(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2)), Put(Setting("s", "1"))])
    port = reg.port
    nodes = [cluster.node(f"n{i}", [("127.0.0.1", port)]) for i in range(3)]
    await converged(nodes, reg, "before the restart")
    received = [n.client.stats.snapshots_received for n in nodes]
    await cluster.stop_registry(reg)
    await eventually(lambda: all(n.client.stale for n in nodes), timeout=WAIT, what="stale")

    # Meanwhile another registry on the same database changes endpoints.
    other = await asyncio.to_thread(SqlStore.open, cluster.db_url)
    try:
        await asyncio.to_thread(other.write, [Put(ep(5)), Delete(Category.OBJECTS, ep(2).key)])
    finally:
        other.close()

    reg2 = await cluster.start_registry(port=port)  # same database, same port
    await converged(nodes, reg2, "after the restart")
    assert all(all_ports(n.catalog) == [1, 5] for n in nodes)
    assert reg2.hub.stats.resumes >= len(nodes)  # from the change log rebuilt from the store
    await reg2.core.write([Delete(Category.OBJECTS, ep(1).key), Put(ep(3))])
    await converged(nodes, reg2, "after a write on the new registry")
    assert all(all_ports(n.catalog) == [3, 5] for n in nodes)
    assert reg2.hub.stats.snapshots_sent == 0
    assert [n.client.stats.snapshots_received for n in nodes] == received
    assert all(not n.client.stale for n in nodes)


async def test_a_version_gap_forces_a_resync(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    node = cluster.node("gap", [("127.0.0.1", reg.port)])
    await converged([node], reg, "initial")
    # Behind its back the node's objects version falls back: the next delta no longer
    # starts where the node is, so it re-subscribes and resumes from its version.
    v = node.catalog.version(Category.OBJECTS)
    node.catalog.advance(Category.OBJECTS, Version(v.epoch, v.revision - 1))
    resubscribes = node.client.stats.resubscribes
    await reg.core.write([Put(ep(2))])
    await converged([node], reg, "after the gap")
    assert node.client.stats.resubscribes > resubscribes
    assert all_ports(node.catalog) == [1, 2]

    # Content and a version ahead of anything the upstream has: versions never go back,
    # so the node keeps them and is told the upstream is behind (it says it is stale) ...
    snapshots = reg.hub.stats.snapshots_sent
    v = node.catalog.version(Category.OBJECTS)
    ahead = Version(v.epoch, reg.core.revision + 1)  # the revision the next write gets
    gone = ChangeEvent(ahead.revision, Category.OBJECTS, Op.DELETE, ep(1).key, None)
    node.catalog.apply([gone], v.epoch)
    assert node.catalog.version(Category.OBJECTS) == ahead
    await eventually(lambda: node.client.stale, timeout=WAIT, what="the node is ahead")
    assert Category.OBJECTS in node.client.ahead_of_upstream
    # ... until the upstream reaches that version: then the digests differ (the content
    # cannot be trusted) and a snapshot repairs it.
    await reg.core.write([Put(ep(3))])
    assert reg.core.catalog.version(Category.OBJECTS) == ahead
    await converged([node], reg, "after jumping ahead")
    assert reg.hub.stats.snapshots_sent > snapshots
    assert all_ports(node.catalog) == [1, 2, 3]
    await eventually(lambda: not node.client.stale, timeout=WAIT, what="fresh again")


async def test_a_corrupted_replica_gets_a_snapshot(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2))])
    node = cluster.node("corrupt", [("127.0.0.1", reg.port)])
    await converged([node], reg, "initial")
    snapshots = reg.hub.stats.snapshots_sent
    # Same version, other content: only the digest can tell.
    v = node.catalog.version(Category.OBJECTS)
    node.catalog.apply(
        [ChangeEvent(v.revision, Category.OBJECTS, Op.DELETE, ep(1).key, None)], v.epoch
    )
    assert node.catalog.version(Category.OBJECTS) == v
    assert not same_as(node, reg)
    await converged([node], reg, "repaired by the heartbeat's digest")
    assert reg.hub.stats.snapshots_sent > snapshots
    assert all_ports(node.catalog) == [1, 2]
    # repaired in place: no reconnect, no re-subscribe, no failed heartbeat
    stats = node.client.stats
    assert (stats.connects, stats.resubscribes, stats.heartbeat_failures) == (1, 0, 0)


async def test_a_new_epoch_forces_snapshots(cluster: Cluster, tmp_path: Path) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(NodeRecord("other"))])
    port = reg.port
    node = cluster.node("epoch", [("127.0.0.1", port)])
    await converged([node], reg, "initial")
    old_epoch = node.catalog.version(Category.OBJECTS).epoch
    await cluster.stop_registry(reg)
    # Another database: another lineage, even with a similar content.
    reg2 = await cluster.start_registry(port=port, db_url=f"sqlite:///{tmp_path / 'other.db'}")
    await reg2.core.write([Put(ep(7))])
    await converged([node], reg2, "after the epoch change")
    assert node.catalog.version(Category.OBJECTS).epoch != old_epoch
    assert all_ports(node.catalog) == [7]
    assert reg2.hub.stats.snapshots_sent >= 1
    assert node.catalog.get_node("other") is None


async def test_node_state_marks_a_dead_node_inactive_on_every_replica(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(NodeRecord("host-a")), Put(ep(1, node_name="host-a")), Put(ep(2))])
    nodes = [cluster.node(f"n{i}", [("127.0.0.1", reg.port)]) for i in range(2)]
    await converged(nodes, reg, "initial")
    assert all(active_ports(n.catalog) == [1, 2] for n in nodes)
    await reg.core.write([Put(NodeRecord("host-a", present_state=State.INACTIVE))])
    await converged(nodes, reg, "node down")
    assert all(active_ports(n.catalog) == [2] for n in nodes)


async def test_an_empty_catalog_is_not_pushed_over_a_replica(cluster: Cluster) -> None:
    """A hub with nothing yet (a relay before its first sync) leaves replicas alone."""
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    node = cluster.node("keep", [("127.0.0.1", reg.port)])
    await converged([node], reg, "initial")
    await cluster.close_node(node)
    from tarscascade.cascade import CascadeHub
    from tarscascade.transport import TarsServer

    empty = CascadeHub(Catalog(), authenticate=lambda n, t: True)
    async with TarsServer([empty.servant]) as server:
        again = cluster.node("keep", [("127.0.0.1", server.port)], catalog=node.catalog)
        await eventually(lambda: again.client.connected, timeout=WAIT, what="subscribed")
        await eventually(lambda: empty.stats.heartbeats >= 2, timeout=WAIT, what="heartbeats")
        assert all_ports(again.catalog) == [1]
        assert not again.client.synced.is_set()
        # the upstream is behind the replica in what it holds: the node says it is stale
        assert again.client.stale
        held = {c for c in Category if node.catalog.version(c).epoch}
        assert again.client.ahead_of_upstream == held
        await cluster.close_node(again)
        await empty.aclose()


async def test_a_full_reload_at_the_registry_resyncs_nodes(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2))])
    nodes = [cluster.node(f"n{i}", [("127.0.0.1", reg.port)]) for i in range(2)]
    # Both nodes' registrations (node records written at subscribe) must have landed and
    # reached both nodes before the reload; otherwise a node still missing one is rightly
    # sent the nodes category whole.
    await eventually(
        lambda: all(reg.core.catalog.get_node(n.name) for n in nodes), what="nodes registered"
    )
    await converged(nodes, reg, "initial")
    snapshots = reg.hub.stats.snapshots_sent
    await reg.core.start()  # reload everything: nothing changed, so bookmarks at most
    await converged(nodes, reg, "after an idle reload")
    assert reg.hub.stats.snapshots_sent == snapshots
    # Rows written behind this registry's back, then a reload (a trimmed log does this):
    # no events to push, the hub's logs restart, and nodes take what changed whole.
    other = await asyncio.to_thread(SqlStore.open, cluster.db_url)
    try:
        await asyncio.to_thread(other.write, [Put(ep(7))])
    finally:
        other.close()
    await reg.core.start()
    await converged(nodes, reg, "after a reload with changes")
    assert all(all_ports(n.catalog) == [1, 2, 7] for n in nodes)


async def test_deltas_that_keep_not_fitting_escalate_to_a_snapshot(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the disagreement (a bug upstream), a node ends it by asking for it whole."""
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    node = cluster.node("stubborn", [("127.0.0.1", reg.port)])
    await converged([node], reg, "initial")
    await cluster.close_node(node)
    await reg.core.write([Put(ep(2))])

    up = reg.hub._up
    honest = SessionSync.catch_up

    def broken_catch_up(self: SessionSync, cat: Category) -> Push | CatchUp:
        step = honest(self, cat)
        if isinstance(step, Push) and cat is Category.OBJECTS:
            sent = self.sent[cat]
            wrong = Version(sent.epoch, sent.revision + 1)  # never where the node is
            frames = delta_frames(cat, wrong, up.version(cat), [])
            return Push(cat, frames, step.to, step.digest, step.kind)
        return step

    monkeypatch.setattr(SessionSync, "catch_up", broken_catch_up)
    # (a cached snapshot at the node's own old version would be followed by the broken
    # catch-up again: let the escalated request get a fresh one)
    up.snapshots.invalidate(Category.OBJECTS)
    back = cluster.node("stubborn", [("127.0.0.1", reg.port)], catalog=node.catalog)
    await converged([back], reg, "after escalating")
    assert back.client.stats.resyncs >= 3
    assert back.client.stats.snapshots_received >= 1
    assert all_ports(back.catalog) == [1, 2]


async def test_a_new_node_gets_a_fresh_snapshot_once_the_cached_ones_tail_is_long(
    cluster: Cluster,
) -> None:
    """The cached snapshot is shared while the events after it are few (a reconnect storm
    costs one encoding); once they outnumber max(SHORT_TAIL_MIN, records/4) a new node
    gets a fresh snapshot, never one followed by a tail that grows with the log."""
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(p)) for p in range(1, 11)])
    upstream = [("127.0.0.1", reg.port)]
    first = cluster.node("first", upstream)
    await eventually(first.client.synced.is_set, timeout=WAIT, what="first synced")
    builds = reg.hub._up.snapshots.builds

    await reg.core.write([Put(ep(1, weight=w)) for w in range(2, 12)])  # a short tail: 10
    second = cluster.node("second", upstream)
    await eventually(second.client.synced.is_set, timeout=WAIT, what="second synced")
    await converged([first, second], reg, "short tail")
    assert reg.hub._up.snapshots.builds == builds  # the cached objects snapshot, shared

    for w in range(SHORT_TAIL_MIN // 100 + 1):  # a long tail: 100 events per write
        await reg.core.write([Put(ep(p, weight=w + 1)) for p in range(1, 101)])
    third = cluster.node("third", upstream)
    await eventually(third.client.synced.is_set, timeout=WAIT, what="third synced")
    await converged([first, second, third], reg, "long tail")
    assert reg.hub._up.snapshots.builds == builds + 1  # a fresh objects snapshot for the third
