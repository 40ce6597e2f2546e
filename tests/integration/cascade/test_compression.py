"""Snapshot compression is negotiated: a node that offers zlib gets compressed chunks over
real TCP and ends with the registry's content; a downstream that does not offer it (an
older node) gets plain chunks from the same registry."""

from __future__ import annotations

from tarscascade.cascade import HubOptions
from tarscascade.model import Category
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import (
    CASCADE_SERVANT,
    OK,
    PUSH_SNAPSHOT,
    SUBSCRIBE,
    SnapshotChunkF,
    SubscribeReq,
)
from tarscascade.wire.packets import STATUS_PUSH_FUNC, ResponsePacket
from tarscascade.wire.struct import decode_struct
from tests.integration.cascade.harness import TOKEN, WAIT, Cluster, Registry, converged, ep

ENDPOINTS = 3000


async def _filled(cluster: Cluster, options: HubOptions | None = None) -> Registry:
    reg = await cluster.start_registry(hub_options=options)
    hosts = [f"10.1.{i // 250}.{i % 250}" for i in range(ENDPOINTS)]
    await reg.core.write([Put(ep(1000 + i, host=h)) for i, h in enumerate(hosts)])
    return reg


async def test_a_node_offering_zlib_gets_compressed_chunks_and_the_same_content(
    cluster: Cluster,
) -> None:
    reg = await _filled(cluster)
    node = cluster.node("n1", [("127.0.0.1", reg.port)])
    await converged([node], reg)
    assert node.catalog.counts()["endpoints"] == ENDPOINTS
    plain = reg.hub._up.snapshots.current(Category.OBJECTS).nbytes
    sent = reg.hub.stats.snapshot_bytes_sent
    assert 0 < sent * 4 < plain  # compressed on the wire, several times smaller


async def test_a_downstream_that_does_not_offer_it_gets_plain_chunks(cluster: Cluster) -> None:
    reg = await _filled(cluster)
    chunks: list[SnapshotChunkF] = []

    def on_push(packet: ResponsePacket) -> None:
        if packet.status.get(STATUS_PUSH_FUNC) == PUSH_SNAPSHOT:
            chunks.append(decode_struct(SnapshotChunkF, packet.sBuffer))

    async with Channel("127.0.0.1", reg.port, on_push=on_push) as old:
        req = SubscribeReq(nodeName="old", token=TOKEN)  # no encodings: an older node
        ret, _ = await old.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert ret == OK
        await eventually(
            lambda: any(c.category == "objects" and c.seq == c.total - 1 for c in chunks),
            timeout=WAIT,
            what="the objects snapshot",
        )
    assert {c.encoding for c in chunks} == {""}


async def test_a_registry_told_not_to_compress_sends_plain_chunks(cluster: Cluster) -> None:
    reg = await _filled(cluster, HubOptions(compress_snapshots=False))
    node = cluster.node("n1", [("127.0.0.1", reg.port)])
    await converged([node], reg)
    plain = reg.hub._up.snapshots.current(Category.OBJECTS).nbytes
    assert reg.hub.stats.snapshot_bytes_sent >= plain  # though the node offered zlib
    assert node.catalog.digest(Category.OBJECTS) == reg.core.catalog.digest(Category.OBJECTS)
