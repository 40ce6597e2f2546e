"""TarsServer and Channel over real loopback TCP."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections.abc import AsyncIterator

import pytest

from tarscascade.errors import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    OverloadError,
    ServerError,
)
from tarscascade.testing import eventually
from tarscascade.transport import (
    Backoff,
    Channel,
    ChannelOptions,
    Current,
    InterfaceServant,
    RawServant,
    ServerOptions,
    TarsServer,
)
from tarscascade.wire.codec import INT32_K, STRING
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import (
    JSON_VERSION,
    ONEWAY,
    TUP_COMPLEX_VERSION,
    TUP_VERSION,
    RequestPacket,
    ResponsePacket,
    Ret,
)
from tarscascade.wire.rpc import ClientRpc, decode_response
from tarscascade.wire.struct import encode_struct

OBJ = "Test.HelloServer.HelloObj"
HELLO = Method("hello", (Param("name", STRING),), STRING)
ADD = Method("add", (Param("a", INT32_K), Param("b", INT32_K)), INT32_K)
SLOW = Method("slow", (Param("ms", INT32_K),), INT32_K)
NOTE = Method("note", (Param("text", STRING),), None)
FAIL = Method("fail", (), INT32_K)
PUSHME = Method("pushme", (Param("text", STRING),), INT32_K)
IFACE = Interface.of("Hello", HELLO, ADD, SLOW, NOTE, FAIL, PUSHME)


class Impl:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.slow_started = asyncio.Event()
        self.release = asyncio.Event()
        self.slow_done = 0

    def hello(self, cur: Current, name: str) -> str:
        return "hello " + name

    async def add(self, cur: Current, a: int, b: int) -> int:
        return a + b

    async def slow(self, cur: Current, ms: int) -> int:
        self.slow_started.set()
        if ms < 0:
            await self.release.wait()
        else:
            await asyncio.sleep(ms / 1000)
        self.slow_done += 1
        return ms

    def note(self, cur: Current, text: str) -> None:
        self.notes.append(text)

    def fail(self, cur: Current) -> int:
        raise ServerError(-42, "told to fail")

    def pushme(self, cur: Current, text: str) -> int:
        return 1 if cur.push("pushed", text.encode()) else 0


@pytest.fixture
async def served() -> AsyncIterator[tuple[TarsServer, Impl]]:
    impl = Impl()
    opts = ServerOptions(stall_timeout=0.5, sweep_interval=0.05, drain_timeout=2.0)
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)], options=opts)
    await server.start()
    try:
        yield server, impl
    finally:
        impl.release.set()
        await server.aclose()


@pytest.fixture
async def channel(served: tuple[TarsServer, Impl]) -> AsyncIterator[Channel]:
    ch = Channel("127.0.0.1", served[0].port)
    try:
        yield ch
    finally:
        await ch.aclose()


async def test_calls_sync_and_async_methods(channel: Channel) -> None:
    assert await channel.call(OBJ, HELLO, "world") == ("hello world",)
    assert await channel.call(OBJ, ADD, 40, 2) == (42,)


async def test_tup_version_3_request_is_answered_in_kind(channel: Channel) -> None:
    assert await channel.call(OBJ, HELLO, "tup", tup=True) == ("hello tup",)
    body = HELLO.encode_args_tup("raw")
    rsp = await channel.invoke(OBJ, "hello", body, version=TUP_VERSION)
    assert rsp is not None
    assert rsp.iVersion == TUP_VERSION
    assert rsp.iRet == 0
    assert HELLO.decode_result_tup(rsp.sBuffer) == ("hello raw",)


async def test_pipelined_calls_are_matched_by_request_id(channel: Channel) -> None:
    results = await asyncio.gather(*(channel.call(OBJ, ADD, i, i) for i in range(500)))
    assert [r[0] for r in results] == [2 * i for i in range(500)]
    assert channel.pending_count == 0


@pytest.mark.parametrize(
    ("servant", "func", "body", "code"),
    [
        ("No.Such.Obj", "hello", HELLO.encode_args("x"), Ret.NO_SERVANT),
        (OBJ, "nosuchfunc", b"", Ret.NO_FUNC),
        (OBJ, "hello", b"\x16\xff", Ret.SERVER_DECODE_ERR),  # string longer than the body
        (OBJ, "hello", b"", Ret.SERVER_DECODE_ERR),  # require parameter missing
        (OBJ, "fail", b"", -42),
    ],
)
async def test_bad_requests_get_the_tars_return_code(
    channel: Channel, servant: str, func: str, body: bytes, code: int
) -> None:
    rsp = await channel.invoke(servant, func, body)
    assert rsp is not None
    assert rsp.iRet == code
    assert rsp.sResultDesc
    # the connection stays usable
    assert await channel.call(OBJ, HELLO, "after") == ("hello after",)


async def test_server_error_is_raised_as_typed_error(channel: Channel) -> None:
    with pytest.raises(ServerError) as info:
        await channel.call(OBJ, FAIL)
    assert info.value.code == -42


async def test_tars_ping_is_answered_by_any_servant(channel: Channel) -> None:
    await channel.ping(OBJ)
    with pytest.raises(ServerError) as info:
        await channel.ping("No.Such.Obj")
    assert info.value.code == Ret.NO_SERVANT


async def test_one_way_call_runs_without_reply(
    served: tuple[TarsServer, Impl], channel: Channel
) -> None:
    _, impl = served
    assert await channel.invoke(OBJ, "note", NOTE.encode_args("fire"), oneway=True) is None
    await eventually(lambda: impl.notes == ["fire"], what="one-way call executed")
    assert channel.pending_count == 0


async def test_call_timeout_leaves_no_pending_state(
    served: tuple[TarsServer, Impl], channel: Channel
) -> None:
    with pytest.raises(CallTimeoutError):
        await channel.call(OBJ, SLOW, -1, timeout=0.2)
    assert channel.pending_count == 0
    # the late reply is dropped, and the connection keeps working
    served[1].release.set()
    assert await channel.call(OBJ, HELLO, "still") == ("hello still",)


async def test_cancelled_call_leaves_no_pending_state(
    served: tuple[TarsServer, Impl], channel: Channel
) -> None:
    task = asyncio.create_task(channel.call(OBJ, SLOW, -1, timeout=30))
    await asyncio.wait_for(served[1].slow_started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert channel.pending_count == 0


async def test_push_reaches_the_channel(served: tuple[TarsServer, Impl]) -> None:
    got: list[ResponsePacket] = []
    ch = Channel("127.0.0.1", served[0].port, on_push=got.append)
    try:
        assert await ch.call(OBJ, PUSHME, "payload") == (1,)
        await eventually(lambda: len(got) == 1, what="push delivered")
        assert got[0].iRequestId == 0
        assert got[0].status["TARS_FUNC"] == "pushed"
        assert got[0].sBuffer == b"payload"
        assert served[0].push_all("all", b"x") == 1
        await eventually(lambda: len(got) == 2, what="broadcast push delivered")
    finally:
        await ch.aclose()


async def test_overload_beyond_max_pending_per_connection() -> None:
    impl = Impl()
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)], options=ServerOptions(max_pending=2))
    await server.start()
    ch = Channel("127.0.0.1", server.port)
    try:
        slow = [asyncio.create_task(ch.call(OBJ, SLOW, -1, timeout=10)) for _ in range(2)]
        await asyncio.wait_for(impl.slow_started.wait(), 10)
        await eventually(lambda: server.stats["requests"] >= 2)
        with pytest.raises(ServerError) as info:
            await ch.call(OBJ, SLOW, -1, timeout=10)
        assert info.value.code == Ret.OVERLOAD
        impl.release.set()
        assert [r[0] for r in await asyncio.gather(*slow)] == [-1, -1]
    finally:
        impl.release.set()
        await ch.aclose()
        await server.aclose()


async def test_connect_refused_is_connect_error_and_backs_off() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        ch = Channel("127.0.0.1", port, ChannelOptions(backoff=Backoff(initial=5, jitter=0)))
        try:
            with pytest.raises(ConnectError):
                await ch.call(OBJ, HELLO, "x", timeout=1)
            # within the backoff window and a short budget: fails fast without connecting
            with pytest.raises(ConnectError, match="backing off"):
                await ch.call(OBJ, HELLO, "x", timeout=0.5)
        finally:
            await ch.aclose()


async def test_server_restart_under_a_connected_client() -> None:
    impl = Impl()
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)])
    await server.start()
    port = server.port
    ch = Channel("127.0.0.1", port, ChannelOptions(backoff=Backoff(initial=0.01, maximum=0.05)))
    try:
        assert await ch.call(OBJ, HELLO, "one") == ("hello one",)
        await server.aclose()
        await eventually(lambda: not ch.is_connected, what="client saw the close")
        with pytest.raises((ConnectError, ConnectionClosedError)):
            await ch.call(OBJ, HELLO, "down", timeout=1)
        server = TarsServer([InterfaceServant(OBJ, IFACE, impl)], port=port)
        await server.start()

        async def call_ok() -> bool:
            try:
                return await ch.call(OBJ, HELLO, "two", timeout=1) == ("hello two",)
            except (ConnectError, ConnectionClosedError):
                return False

        for _ in range(100):
            if await call_ok():
                break
            await asyncio.sleep(0.02)  # retry pacing, bounded by the loop count
        else:
            pytest.fail("client did not reconnect")
        assert ch.connects == 2
    finally:
        await ch.aclose()
        await server.aclose()


async def test_keep_connected_channel_reconnects_by_itself() -> None:
    impl = Impl()
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)])
    await server.start()
    port = server.port
    connected: list[int] = []

    async def on_connected(ch: Channel) -> None:
        connected.append(ch.connects)

    opts = ChannelOptions(keep_connected=True, backoff=Backoff(initial=0.01, maximum=0.05))
    ch = Channel("127.0.0.1", port, opts, on_connected=on_connected)
    try:
        await ch.connect()
        assert connected == [1]
        await server.aclose()
        server = TarsServer([InterfaceServant(OBJ, IFACE, impl)], port=port)
        await server.start()
        await eventually(lambda: connected == [1, 2], what="reconnected with no call")
        assert await ch.call(OBJ, HELLO, "back") == ("hello back",)
    finally:
        await ch.aclose()
        await server.aclose()


async def test_pending_calls_fail_when_the_connection_drops(
    served: tuple[TarsServer, Impl], channel: Channel
) -> None:
    server, impl = served
    task = asyncio.create_task(channel.call(OBJ, SLOW, -1, timeout=30))
    await asyncio.wait_for(impl.slow_started.wait(), 10)
    for conn in list(server._conns):
        conn.abort()
    with pytest.raises(ConnectionClosedError):
        await task
    assert channel.pending_count == 0


async def test_aclose_closes_and_fails_later_calls(channel: Channel) -> None:
    assert await channel.call(OBJ, HELLO, "x") == ("hello x",)
    await channel.aclose()
    assert not channel.is_connected
    with pytest.raises(ConnectionClosedError):
        await channel.call(OBJ, HELLO, "y")


async def test_max_pending_on_channel_is_bounded(served: tuple[TarsServer, Impl]) -> None:
    ch = Channel("127.0.0.1", served[0].port, ChannelOptions(max_pending=3))
    try:
        tasks = [asyncio.create_task(ch.call(OBJ, SLOW, -1, timeout=10)) for _ in range(3)]
        await eventually(lambda: ch.pending_count == 3)
        with pytest.raises(OverloadError):
            await ch.call(OBJ, HELLO, "x")
        served[1].release.set()
        await asyncio.gather(*tasks)
    finally:
        await ch.aclose()


# ----------------------------------------------------------------- hostile peers


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_stalled_partial_frame_does_not_stall_others_and_is_closed(
    served: tuple[TarsServer, Impl], channel: Channel
) -> None:
    server, _ = served
    reader, writer = await _raw(server.port)
    try:
        frame = ClientRpc().send_request(OBJ, "hello", HELLO.encode_args("x"))[1]
        writer.write(frame[:10])  # a frame that never completes
        await writer.drain()
        await eventually(lambda: server.connection_count == 1)  # our raw peer is connected
        for i in range(20):
            assert await channel.call(OBJ, ADD, i, 1) == (i + 1,)
        # the sweeper closes the stalled connection (stall_timeout 0.5 s in the fixture)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        assert server.stats["stalled_closed"] >= 1
    finally:
        writer.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff\xff\xff",  # frame length far beyond the limit
        b"\x00\x00\x00\x02",  # frame length below the minimum
        b"\x00\x00\x00\x08\xde\xad\xbe\xef",  # a complete frame that is not a RequestPacket
    ],
)
async def test_malformed_frames_close_only_that_connection(
    served: tuple[TarsServer, Impl], channel: Channel, garbage: bytes
) -> None:
    server, _ = served
    assert await channel.call(OBJ, HELLO, "before") == ("hello before",)
    reader, writer = await _raw(server.port)
    try:
        writer.write(garbage)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        assert server.stats["protocol_errors"] >= 1
        assert await channel.call(OBJ, HELLO, "after") == ("hello after",)
    finally:
        writer.close()


async def test_flooding_peer_that_never_reads_is_paused_not_buffered(
    served: tuple[TarsServer, Impl], channel: Channel
) -> None:
    server, _ = served
    _, writer = await _raw(server.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rpc = ClientRpc()
    big = "x" * 60_000
    batch = b"".join(rpc.send_request(OBJ, "hello", HELLO.encode_args(big))[1] for _ in range(50))
    try:
        for _ in range(40):  # ~120 MB of replies if nobody pushed back
            writer.write(batch)
            try:
                await asyncio.wait_for(writer.drain(), 0.5)
            except TimeoutError:
                break  # the server stopped reading us: backpressure works
        conns = [c for c in server._conns if c.peer[1] == sock.getsockname()[1]]
        assert len(conns) == 1
        flooder = conns[0]
        limit = server.options.write_high_water + 2 * server.options.max_frame
        assert flooder.write_buffer_size <= limit
        # other clients are served meanwhile
        assert await channel.call(OBJ, HELLO, "others", timeout=5) == ("hello others",)
    finally:
        writer.transport.abort()


async def test_graceful_shutdown_drains_in_flight_requests() -> None:
    impl = Impl()
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)])
    await server.start()
    ch = Channel("127.0.0.1", server.port)
    try:
        task = asyncio.create_task(ch.call(OBJ, SLOW, 200, timeout=10))
        await asyncio.wait_for(impl.slow_started.wait(), 10)
        await server.aclose()
        assert await task == (200,)  # finished during the drain stage
        assert impl.slow_done == 1
    finally:
        await ch.aclose()


async def test_raw_servant_and_one_way_flag_on_the_wire() -> None:
    seen: list[tuple[str, bytes]] = []

    def echo(cur: Current, body: bytes) -> tuple[int, bytes, str]:
        seen.append((cur.host_name, body))
        return (0, body[::-1], "")

    server = TarsServer([RawServant("Raw.Obj", {"echo": echo})])
    await server.start()
    try:
        reader, writer = await _raw(server.port)
        pkt = RequestPacket(
            iVersion=1,
            cPacketType=ONEWAY,
            iRequestId=7,
            sServantName="Raw.Obj",
            sFuncName="echo",
            sBuffer=b"one-way",
            context={"node_name": "10.1.2.3"},
        )
        payload = encode_struct(pkt)
        writer.write((len(payload) + 4).to_bytes(4, "big") + payload)
        pkt.cPacketType = 0
        pkt.iRequestId = 8
        payload = encode_struct(pkt)
        writer.write((len(payload) + 4).to_bytes(4, "big") + payload)
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(4), 10)
        body = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big") - 4), 10)
        rsp = decode_response(body)
        assert rsp.iRequestId == 8  # the one-way request (id 7) got no reply
        assert rsp.sBuffer == b"yaw-eno"
        assert seen == [("10.1.2.3", b"one-way"), ("10.1.2.3", b"one-way")]
        writer.close()
    finally:
        await server.aclose()


async def test_replies_to_a_peer_that_reset_are_dropped_quietly(
    served: tuple[TarsServer, Impl], caplog: pytest.LogCaptureFixture
) -> None:
    """A send failed (peer reset) and the transport is closing, but connection_lost has not
    run yet: requests still being processed get no reply written, so asyncio does not log
    'socket.send() raised exception.' for each (seen by the thousand in benchmarks)."""
    server, _ = served
    rpc = ClientRpc()
    frames = b"".join(rpc.send_request(OBJ, "hello", HELLO.encode_args("x"))[1] for _ in range(20))
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await eventually(lambda: len(server._conns) == 1, 5)
        conn = next(iter(server._conns))
        assert conn.transport is not None
        # what a failed send does (asyncio's _fatal_error): the transport closes at once,
        # connection_lost follows on a later loop iteration
        conn.transport.abort()
        conn.data_received(frames)  # 20 sync replies produced before connection_lost
        assert not [r for r in caplog.records if "socket.send() raised" in r.getMessage()]
    finally:
        writer.close()


# ------------------------------------------------------------------ other body versions


@pytest.mark.parametrize("version", [TUP_COMPLEX_VERSION, JSON_VERSION])
async def test_tup2_and_json_requests_reach_sync_and_async_methods_in_kind(
    channel: Channel, version: int
) -> None:
    for method, args, want in ((HELLO, ("v",), ("hello v",)), (ADD, (40, 2), (42,))):
        rsp = await channel.invoke(
            OBJ, method.name, method.encode_args_as(version, *args), version=version
        )
        assert rsp is not None
        assert (rsp.iVersion, rsp.iRet) == (version, 0)
        assert method.decode_result_as(version, rsp.sBuffer) == want
    # a servant error keeps its code and text, with an empty body in kind
    rsp = await channel.invoke(OBJ, FAIL.name, FAIL.encode_args_as(version), version=version)
    assert rsp is not None
    assert (rsp.iRet, rsp.sResultDesc) == (-42, "told to fail")


@pytest.mark.parametrize("version", [TUP_COMPLEX_VERSION, JSON_VERSION])
async def test_a_bad_body_never_reaches_the_servant(
    served: tuple[TarsServer, Impl], channel: Channel, version: int
) -> None:
    _, impl = served
    good = NOTE.encode_args_as(version, "kept")
    for bad in (b"", b"\x00garbage", NOTE.encode_args_as(TUP_VERSION, "v3"), b'{"text": 5}'):
        rsp = await channel.invoke(OBJ, NOTE.name, bad, version=version)
        assert rsp is not None
        assert rsp.iRet == Ret.SERVER_DECODE_ERR
    rsp = await channel.invoke(OBJ, "nosuch", good, version=version)
    assert rsp is not None
    assert rsp.iRet == Ret.NO_FUNC
    assert impl.notes == []
    rsp = await channel.invoke(OBJ, NOTE.name, good, version=version)
    assert rsp is not None
    assert rsp.iRet == 0
    assert impl.notes == ["kept"]


async def test_a_servant_without_declared_methods_takes_tars_only() -> None:
    seen: list[bytes] = []

    def handler(cur: Current, body: bytes) -> tuple[int, bytes, str]:
        seen.append(body)
        return (0, b"", "")

    server = TarsServer([RawServant(OBJ, {"raw": handler})])
    await server.start()
    try:
        async with Channel("127.0.0.1", server.port) as ch:
            rsp = await ch.invoke(OBJ, "raw", b'{"a": 1}', version=JSON_VERSION)
            assert rsp is not None
            assert rsp.iRet == Ret.SERVER_DECODE_ERR
            assert "version 1" in rsp.sResultDesc
            assert seen == []
    finally:
        await server.aclose()


async def test_overload_of_a_json_call_closes_the_servants_coroutine() -> None:
    # the refused call's coroutine must be closed through the version wrapper, or it
    # is collected never awaited
    impl = Impl()
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)], options=ServerOptions(max_pending=1))
    await server.start()
    ch = Channel("127.0.0.1", server.port)
    try:
        first = asyncio.create_task(ch.call(OBJ, SLOW, -1, timeout=10))
        await asyncio.wait_for(impl.slow_started.wait(), 10)
        body = SLOW.encode_args_json(-1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rsp = await ch.invoke(OBJ, SLOW.name, body, version=JSON_VERSION, timeout=10)
            gc.collect()
        assert rsp is not None
        assert rsp.iRet == Ret.OVERLOAD
        assert not [w for w in caught if "never awaited" in str(w.message)]
        impl.release.set()
        assert await first == (-1,)
    finally:
        impl.release.set()
        await ch.aclose()
        await server.aclose()
