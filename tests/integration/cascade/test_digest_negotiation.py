"""Digest negotiation across a rolling upgrade (protocol 3): no resync loop in any mix.

Each case counts the snapshots the upstream sends: the expected number at first contact,
then none over several heartbeats (a digest compared in the wrong scheme would repair
the node at every heartbeat, for ever).
"""

from __future__ import annotations

import dataclasses

from tarscascade.cascade import CascadeHub, HubOptions
from tarscascade.cascade.states import held_states
from tarscascade.catalog import Catalog
from tarscascade.model import Category, Setting
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.transport import Channel, TarsServer
from tarscascade.wire.idl.cascadef import (
    BAD_REQUEST,
    CASCADE_SERVANT,
    PROTOCOL_VERSION,
    SUBSCRIBE,
    SubscribeReq,
)
from tests.integration.cascade.harness import (
    TOKEN,
    WAIT,
    Cluster,
    Node,
    Registry,
    converged,
    ep,
    fast_client_options,
)

BEATS = 6


async def _steady(node: Node, reg: Registry) -> None:
    """Several heartbeats pass, and the upstream sends no snapshot meanwhile."""
    sent, beats = reg.hub.stats.snapshots_sent, node.client.stats.heartbeats
    resyncs = reg.hub.stats.resyncs
    await eventually(
        lambda: node.client.stats.heartbeats >= beats + BEATS, timeout=WAIT, what="heartbeats"
    )
    assert reg.hub.stats.snapshots_sent == sent, "a snapshot after convergence: a resync loop"
    assert reg.hub.stats.resyncs == resyncs
    assert node.client.stats.resyncs == 0


async def _filled(reg: Registry) -> None:
    await reg.core.write([Put(ep(1)), Put(ep(2)), Put(Setting("interval", "3"))])


def _copy(reg: Registry, key: bytes) -> Catalog:
    """A node catalog holding exactly the registry's content and versions, under ``key``."""
    cat = Catalog(digest_key=key)
    for c in Category:
        cat.replace_category(c, list(reg.core.catalog.records(c)), reg.core.catalog.version(c))
    return cat


async def test_new_node_new_registry_same_key_compares_128_bit_digests(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await _filled(reg)
    node = cluster.node("n1", [("127.0.0.1", reg.port)])
    await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
    await converged([node], reg)
    # a fresh node holds nothing: one snapshot per category (all four are numbered)
    first = reg.hub.stats.snapshots_sent
    assert first == len(Category)
    await _steady(node, reg)
    assert not reg.core.catalog.legacy_enabled  # nobody asked for the legacy sum
    assert not node.catalog.legacy_enabled
    await reg.core.write([Put(ep(3))])
    await converged([node], reg, "after a change")
    await _steady(node, reg)


async def test_old_node_new_registry_compares_legacy_digests(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await _filled(reg)
    node = cluster.node("old", [("127.0.0.1", reg.port)], options=fast_client_options(protocol=2))
    await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
    await converged([node], reg)
    assert reg.core.catalog.legacy_enabled  # enabled for it, kept from then on
    first = reg.hub.stats.snapshots_sent
    assert first == len(Category)
    await _steady(node, reg)
    await reg.core.write([Put(ep(3))])
    await converged([node], reg, "after a change")
    await _steady(node, reg)
    assert reg.hub.stats.snapshots_sent == first


async def test_new_node_under_another_key_plans_by_versions_and_rekeys(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await _filled(reg)
    cat = _copy(reg, b"a key the registry does not have")
    node = cluster.node("n1", [("127.0.0.1", reg.port)], catalog=cat)
    await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
    assert node.client.stats.rekeys == 1
    assert cat.key_id == reg.core.catalog.key_id
    await converged([node], reg)
    assert reg.hub.stats.snapshots_sent == 0  # same versions: up to date, no proof needed
    await _steady(node, reg)
    await reg.core.write([Put(ep(3))])
    await converged([node], reg, "after a change")
    await _steady(node, reg)
    assert reg.hub.stats.snapshots_sent == 0


async def test_new_node_under_another_key_with_other_content_is_repaired_once(
    cluster: Cluster,
) -> None:
    """Same versions, other content (changed behind the registry's back), another key:
    planned up to date by versions, then the first comparable heartbeat repairs it."""
    reg = await cluster.start_registry()
    await _filled(reg)
    cat = _copy(reg, b"another key")
    v = cat.version(Category.OBJECTS)
    cat.replace_category(Category.OBJECTS, [ep(9)], v)
    node = cluster.node("n1", [("127.0.0.1", reg.port)], catalog=cat)
    await converged([node], reg)
    assert reg.hub.stats.snapshots_sent == 1
    await _steady(node, reg)


async def test_new_node_old_registry_keeps_the_legacy_sum(cluster: Cluster) -> None:
    reg = await cluster.start_registry(hub_options=HubOptions(max_protocol=2))
    await _filled(reg)
    cat = _copy(reg, b"")
    node = cluster.node("n1", [("127.0.0.1", reg.port)], catalog=cat)
    await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
    await converged([node], reg)
    assert cat.legacy_enabled  # its upstream is legacy: it sends the 64-bit digest
    assert node.client.stats.rekeys == 0
    # first contact: its held states said legacy digest 0 (not kept yet), so each
    # category with content was resent once; nothing after that
    first = reg.hub.stats.snapshots_sent
    assert first == 2  # objects and settings (the empty ones sum to 0 either way)
    await _steady(node, reg)
    await reg.core.write([Put(ep(3))])
    await converged([node], reg, "after a change")
    await _steady(node, reg)
    # a reconnect now compares legacy digests from the start: no snapshot at all
    await cluster.close_node(node)
    again = cluster.node("n1", [("127.0.0.1", reg.port)], catalog=cat)
    await eventually(again.client.synced.is_set, timeout=WAIT, what="synced again")
    await converged([again], reg)
    await _steady(again, reg)
    assert reg.hub.stats.snapshots_sent == first


async def test_a_relay_that_rekeys_ends_its_sessions_and_its_leaf_takes_the_key(
    cluster: Cluster,
) -> None:
    """Leaf behind a relay behind the registry. The relay holds the registry's content
    under another key and already serves the leaf; then it reaches the registry and
    rekeys: its leaf's session ends (``on_rekey``, as node/app.py wires it), the leaf
    subscribes again, gets the new key with the answer and is up to date by versions.
    No repair round: the snapshots are the leaf's first four and nothing more."""
    reg = await cluster.start_registry()
    await _filled(reg)
    relay_cat = _copy(reg, b"the relay's old key")
    relay_hub = CascadeHub(relay_cat, authenticate=lambda _name, token: token == TOKEN)
    relay_server = TarsServer([relay_hub.servant])
    await relay_server.start()
    try:
        leaf = cluster.node("leaf", [("127.0.0.1", relay_server.port)])
        await eventually(leaf.client.synced.is_set, timeout=WAIT, what="leaf synced")
        assert leaf.catalog.key_id == relay_cat.key_id  # the relay's key, for now
        assert relay_hub.stats.snapshots_sent == len(Category)  # a fresh leaf: all four
        relay = cluster.node(
            "relay",
            [("127.0.0.1", reg.port)],
            catalog=relay_cat,
            on_applied=relay_hub.replica_applied,
            on_rekey=relay_hub.rekeyed,
        )
        await eventually(relay.client.synced.is_set, timeout=WAIT, what="relay synced")
        assert relay.client.stats.rekeys == 1
        assert relay_hub.stats.rekey_ended == 1
        await eventually(
            lambda: leaf.catalog.key_id == reg.core.catalog.key_id,
            timeout=WAIT,
            what="the leaf took the registry's key",
        )
        await converged([relay, leaf], reg)
        assert leaf.client.stats.rekeys == 2  # the relay's key, then the registry's
        assert leaf.client.stats.resyncs == 0
        assert reg.hub.stats.snapshots_sent == 0  # same versions: the relay was up to date
        assert relay_hub.stats.snapshots_sent == len(Category)  # no repair of the leaf
        sent, beats = relay_hub.stats.snapshots_sent, leaf.client.stats.heartbeats
        await eventually(
            lambda: leaf.client.stats.heartbeats >= beats + BEATS, timeout=WAIT, what="beats"
        )
        assert relay_hub.stats.snapshots_sent == sent
        await reg.core.write([Put(ep(3))])
        await converged([relay, leaf], reg, "a change through the relay")
        assert relay_hub.stats.snapshots_sent == sent
        assert leaf.client.stats.resyncs == 0
    finally:
        # nodes first: a client whose only upstream closed under it does not close
        # promptly (seen with the code before this change too)
        for n in list(cluster.nodes):
            await cluster.close_node(n)
        await relay_hub.aclose()
        await relay_server.aclose()


async def test_a_held_digest128_not_16_bytes_is_refused_and_registers_nothing(
    cluster: Cluster,
) -> None:
    """A protocol 3 subscribe over TCP whose held state carries a 15- or 17-byte
    digest128 gets BAD_REQUEST: no session, no node record, one bad request counted."""
    reg = await cluster.start_registry()
    await _filled(reg)
    key_id = reg.core.catalog.key_id
    for size in (15, 17):
        name = f"odd-digest-{size}"
        held = held_states(_copy(reg, reg.core.catalog.digest_key))
        held = [
            dataclasses.replace(st, digest128=bytes(range(size)))
            if st.category == str(Category.OBJECTS)
            else st
            for st in held
        ]
        req = SubscribeReq(
            nodeName=name,
            token=TOKEN,
            held=held,
            address="127.0.0.1:9",
            protocol=PROTOCOL_VERSION,
            keyId=key_id,
        )
        bad = reg.hub.stats.bad_requests
        async with Channel("127.0.0.1", reg.port) as ch:
            ret, _ = await ch.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert ret == BAD_REQUEST, size
        assert reg.hub.stats.bad_requests == bad + 1
        assert name not in reg.hub.node_states()
    assert reg.hub.session_count == 0
    # a good node registers after them (node records are written after the answer):
    # by then a record of the refused ones would be there too
    node = cluster.node("good", [("127.0.0.1", reg.port)])
    await eventually(lambda: reg.core.catalog.get_node("good") is not None, timeout=WAIT)
    await converged([node], reg)
    for size in (15, 17):
        assert reg.core.catalog.get_node(f"odd-digest-{size}") is None
        assert f"odd-digest-{size}" not in reg.hub.node_states()
    assert reg.hub.stats.bad_requests == 2
