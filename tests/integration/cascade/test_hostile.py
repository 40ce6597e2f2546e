"""Bad subscribers are refused or dropped without affecting the others."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tarscascade.cascade import HubOptions
from tarscascade.cascade.states import held_states
from tarscascade.catalog import Catalog
from tarscascade.model import Category
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.transport import Channel, ServerOptions
from tarscascade.wire.idl.cascadef import (
    ACK,
    AUTH_FAILED,
    BAD_REQUEST,
    CASCADE_SERVANT,
    HEARTBEAT,
    NOT_SUBSCRIBED,
    OK,
    SUBSCRIBE,
    AckReq,
    CategoryStateF,
    HeartbeatReq,
    SubscribeReq,
    VersionF,
)
from tarscascade.wire.packets import Ret
from tarscascade.wire.rpc import ClientRpc
from tests.integration.cascade.harness import (
    TOKEN,
    WAIT,
    Cluster,
    Registry,
    all_ports,
    converged,
    ep,
)

N_MANY = 40_000


def state(cat: str, epoch: str = "e", revision: int = 1, digest: int = 0) -> CategoryStateF:
    return CategoryStateF(
        category=cat, version=VersionF(epoch=epoch, revision=revision), digest=digest
    )


BAD_SUBSCRIPTIONS = {
    "unknown category": SubscribeReq(nodeName="x", token=TOKEN, held=[state("bogus")]),
    "category twice": SubscribeReq(
        nodeName="x", token=TOKEN, held=[state("objects"), state("objects")]
    ),
    "negative revision": SubscribeReq(
        nodeName="x", token=TOKEN, held=[state("objects", revision=-5)]
    ),
    "revision without epoch": SubscribeReq(
        nodeName="x", token=TOKEN, held=[state("objects", epoch="")]
    ),
    "epoch with spaces": SubscribeReq(
        nodeName="x", token=TOKEN, held=[state("objects", epoch="a b")]
    ),
    "epoch too long": SubscribeReq(
        nodeName="x", token=TOKEN, held=[state("objects", epoch="e" * 500)]
    ),
    "empty node name": SubscribeReq(nodeName="", token=TOKEN),
    "node name with newline": SubscribeReq(nodeName="a\nb", token=TOKEN),
    "node name too long": SubscribeReq(nodeName="n" * 300, token=TOKEN),
    "address without port": SubscribeReq(nodeName="x", token=TOKEN, address="10.0.0.1"),
    "address with port 0": SubscribeReq(nodeName="x", token=TOKEN, address="10.0.0.1:0"),
    "address garbage": SubscribeReq(nodeName="x", token=TOKEN, address="a b:c"),
    "future protocol": SubscribeReq(nodeName="x", token=TOKEN, protocol=9),
}


async def _healthy_node(cluster: Cluster, reg: Registry) -> None:
    node = cluster.node("good", [("127.0.0.1", reg.port)])
    await eventually(lambda: reg.core.catalog.get_node("good") is not None, timeout=WAIT)
    await converged([node], reg, "the good node, registered")

    def acked() -> bool:  # acks are coalesced over a few ms: wait for the hub to have it
        st = reg.hub.node_states().get("good")
        return st is not None and all(
            st.held.get(c) == reg.core.catalog.version(c) for c in Category
        )

    await eventually(acked, timeout=WAIT, what="the good node's ack")


@pytest.mark.parametrize("req", BAD_SUBSCRIPTIONS.values(), ids=BAD_SUBSCRIPTIONS.keys())
async def test_malformed_subscriptions_are_refused_and_change_nothing(
    cluster: Cluster, req: SubscribeReq
) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    await _healthy_node(cluster, reg)
    revision = reg.core.revision
    async with Channel("127.0.0.1", reg.port) as ch:
        ret, _ = await ch.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert ret == BAD_REQUEST
        assert reg.hub.stats.bad_requests == 1
        assert reg.hub.session_count == 1
        assert reg.core.revision == revision  # no node record written
        # without a session, heartbeats and acks are not accepted either
        ret, _ = await ch.call(CASCADE_SERVANT, HEARTBEAT, HeartbeatReq(nodeName="x"))
        assert ret == NOT_SUBSCRIBED
    await reg.core.write([Put(ep(2))])
    await converged(cluster.nodes, reg, "the good node after the bad one")


async def test_a_wrong_token_is_refused(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    await _healthy_node(cluster, reg)
    async with Channel("127.0.0.1", reg.port) as ch:
        req = SubscribeReq(nodeName="intruder", token="guess", held=held_states(Catalog()))
        ret, rsp = await ch.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert (ret, rsp.plan) == (AUTH_FAILED, [])
    # a client with the wrong token never syncs and says why
    bad = cluster.node("intruder", [("127.0.0.1", reg.port)], token="guess")
    await eventually(lambda: bad.client.stats.refused >= 2, timeout=WAIT, what="refused")
    assert bad.client.stale
    assert not bad.client.synced.is_set()
    assert "authentication" in bad.client.stats.last_error
    assert all_ports(bad.catalog) == []
    assert reg.hub.stats.auth_failures >= 3
    assert "intruder" not in reg.hub.node_states()
    assert reg.core.catalog.get_node("intruder") is None
    await reg.core.write([Put(ep(2))])
    await converged([n for n in cluster.nodes if n.name == "good"], reg, "the good node")


async def test_garbage_on_the_socket_closes_only_that_connection(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    await _healthy_node(cluster, reg)
    # 1. bytes that are not TARS frames at all
    reader, writer = await asyncio.open_connection("127.0.0.1", reg.port)
    writer.write(b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed by the server
    writer.close()
    # 2. a well-formed TARS request to CascadeObj whose body is garbage
    rpc = ClientRpc()
    reader, writer = await asyncio.open_connection("127.0.0.1", reg.port)
    try:
        _, frame = rpc.send_request(CASCADE_SERVANT, "subscribe", b"\x0c\x1d\x00\x12garbage")
        writer.write(frame)
        await writer.drain()
        events = []
        while not events:
            events = rpc.receive_data(await asyncio.wait_for(reader.read(65536), WAIT))
        assert events[0].packet.iRet == Ret.SERVER_DECODE_ERR
        # 3. a one-way ack with garbage is dropped silently
        _, frame = rpc.send_request(CASCADE_SERVANT, "ack", b"\x00garbage", oneway=True)
        writer.write(frame)
        await writer.drain()
    finally:
        writer.close()
    assert reg.hub.session_count == 1
    await reg.core.write([Put(ep(2))])
    await converged(cluster.nodes, reg, "the good node after garbage")


async def test_a_downstream_that_never_reads_is_dropped_and_memory_stays_bounded(
    cluster: Cluster,
) -> None:
    backlog = 256 * 1024
    reg = await cluster.start_registry(
        hub_options=HubOptions(max_backlog_bytes=backlog, stall_timeout=1.0, chunk_bytes=64 * 1024),
        server_options=ServerOptions(write_high_water=64 * 1024),
    )
    # More than the kernel's socket buffers take (up to 4 MiB each way on loopback).
    many = [ep(p % 50_000, host=f"10.1.{p // 50_000}.1") for p in range(1, N_MANY + 1)]
    await asyncio.to_thread(reg.store.bulk_load, many)
    await reg.core.catch_up()
    await _healthy_node(cluster, reg)

    async def silent_subscriber(name: str, catalog: Catalog) -> tuple[asyncio.StreamWriter, int]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", reg.port))
        _, writer = await asyncio.open_connection(sock=sock)
        rpc = ClientRpc()
        req = SubscribeReq(nodeName=name, token=TOKEN, held=held_states(catalog))
        writer.write(rpc.send_request(CASCADE_SERVANT, "subscribe", SUBSCRIBE.encode_args(req))[1])
        await writer.drain()
        return writer, sock.getsockname()[1]

    # 1. takes a snapshot but never reads it: dropped after the stall timeout
    writer, _ = await silent_subscriber("stalled", Catalog())
    try:
        await eventually(lambda: reg.hub.stats.slow_dropped >= 1, timeout=WAIT, what="dropped")
        await eventually(lambda: "stalled" not in reg.hub._sessions, timeout=WAIT)
    finally:
        writer.transport.abort()

    # 2. claims to be current, then never reads its deltas: dropped past the backlog
    good = cluster.nodes[0]
    writer, port = await silent_subscriber("deaf", good.catalog)
    try:
        await eventually(lambda: "deaf" in reg.hub._sessions, timeout=WAIT, what="subscribed")
        conns = [c for c in reg.server._conns if c.peer[1] == port]
        peak = 0

        def watch(_batch: object) -> None:
            nonlocal peak
            peak = max(peak, *(c.write_buffer_size for c in conns))

        reg.core.add_listener(watch)
        for round_ in range(30):  # 5,000 changes (~650 KB of deltas) a round
            if "deaf" not in reg.hub._sessions:
                break
            await reg.core.write(
                [Put(ep(r.port, host=r.host, weight=round_ + 1)) for r in many[:5000]]
            )
        assert "deaf" not in reg.hub._sessions
        assert reg.hub.stats.slow_dropped >= 2
        # bounded: never more than the limit plus the one batch that crossed it
        assert peak <= backlog + 2 * 1024 * 1024
        assert all(c.transport is None or c.transport.is_closing() for c in conns)
    finally:
        writer.transport.abort()
    await converged([good], reg, "the good node kept up meanwhile")


async def test_a_heartbeat_or_ack_from_another_connection_is_not_accepted(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    await _healthy_node(cluster, reg)
    async with Channel("127.0.0.1", reg.port) as ch:
        ret, _ = await ch.call(
            CASCADE_SERVANT, HEARTBEAT, HeartbeatReq(nodeName="good", held=[state("objects")])
        )
        assert ret == NOT_SUBSCRIBED  # "good" has a session, but not on this connection
        await ch.invoke(
            CASCADE_SERVANT,
            "ack",
            ACK.encode_args(AckReq(nodeName="good", held=[state("objects", revision=10**9)])),
            oneway=True,
        )
        await ch.ping(CASCADE_SERVANT)
    st = reg.hub.node_states()["good"]
    assert st.held[Category.OBJECTS] == reg.core.catalog.version(Category.OBJECTS)
    assert OK == 0
