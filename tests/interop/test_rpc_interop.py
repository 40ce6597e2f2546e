"""RPC interop with the real TARS implementation from npm (@tars/rpc 2.0.15).

A @tars/rpc Node client calls a Python-hosted servant, and a Python channel calls a
Node-hosted servant — TARS (version 1) and TUP (version 3), normal and one-way calls,
framework errors both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tarscascade.errors import CallTimeoutError, ServerError
from tarscascade.testing import eventually
from tarscascade.transport import Channel, Current, InterfaceServant, TarsServer
from tarscascade.wire.codec import INT32_K, STRING
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import Ret
from tests.interop.nodeproc import NodeProc, node_server, require_node, run_client_full

pytestmark = pytest.mark.interop

OBJ = "Test.HelloServer.HelloObj"
HELLO = Method("hello", (Param("name", STRING),), STRING)
ADD = Method("add", (Param("a", INT32_K), Param("b", INT32_K)), INT32_K)
SLEEP = Method("sleep", (Param("ms", INT32_K),), None)
FAIL = Method("fail", (Param("code", INT32_K),), None)
IFACE = Interface.of("Hello", HELLO, ADD, SLEEP, FAIL)


class PyHello:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def hello(self, cur: Current, name: str) -> str:
        self.calls.append(("hello", name))
        return "hello " + name

    async def add(self, cur: Current, a: int, b: int) -> int:
        self.calls.append(("add", (a, b)))
        return a + b

    async def sleep(self, cur: Current, ms: int) -> None:
        self.calls.append(("sleep", ms))
        await asyncio.sleep(ms / 1000)

    def fail(self, cur: Current, code: int) -> None:
        raise ServerError(code, f"failing with {code}")


# ------------------------------------------------------ Node client -> Python servant


@pytest.fixture
async def py_server() -> AsyncIterator[tuple[TarsServer, PyHello]]:
    require_node()
    impl = PyHello()
    server = TarsServer([InterfaceServant(OBJ, IFACE, impl)])
    await server.start()
    try:
        yield server, impl
    finally:
        await server.aclose()


async def node_call(port: int, func: str, args: str, *extra: str, obj: str = OBJ) -> Any:
    cmd = ["--obj", f"{obj}@tcp -h 127.0.0.1 -p {port}", "--func", func, "--args", args, *extra]
    return await asyncio.to_thread(run_client_full, cmd, 60.0)


async def test_node_client_calls_python_servant(py_server: tuple[TarsServer, PyHello]) -> None:
    server, impl = py_server
    run = await node_call(server.port, "hello", '["node"]', "--calls", "3")
    assert [r["ret"] for r in run.results] == ["hello node"] * 3
    run = await node_call(server.port, "add", "[40, 2]")
    assert run.results[0]["ret"] == 42
    assert ("add", (40, 2)) in impl.calls


@pytest.mark.parametrize("version", ["2", "3"])
async def test_node_client_tup_call_to_python_servant(
    py_server: tuple[TarsServer, PyHello], version: str
) -> None:
    server, impl = py_server
    run = await node_call(server.port, "hello", '["tup"]', "--tup", version)
    assert run.results[0]["ok"] is True, run.results
    assert run.results[0]["ret"] == "hello tup"
    # version 2: @tars/stream reads each value by its exact type name ("int32")
    run = await node_call(server.port, "add", "[40, 2]", "--tup", version)
    assert run.results[0]["ret"] == 42, run.results
    assert ("add", (40, 2)) in impl.calls


@pytest.mark.parametrize("version", ["2", "3"])
async def test_node_client_gets_a_tup_error_reply_without_crashing(
    py_server: tuple[TarsServer, PyHello], version: str
) -> None:
    # @tars/rpc decodes the body of every TUP reply: an error reply must carry an
    # (empty) UniAttribute, or the client throws inside its socket handler
    server, _ = py_server
    run = await node_call(server.port, "fail", "[-7]", "--tup", version)
    assert "fatal" not in run.results[0], run.results
    assert run.results[0]["ok"] is False
    assert run.results[0]["code"] == -7
    run = await node_call(server.port, "nosuch", "[]", "--tup", version)
    assert run.results[0]["code"] == Ret.NO_FUNC, run.results


async def test_node_client_one_way_call_reaches_python(
    py_server: tuple[TarsServer, PyHello],
) -> None:
    server, impl = py_server
    run = await node_call(server.port, "hello", '["quiet"]', "--oneway")
    assert run.results[0]["ok"] is True
    await eventually(lambda: ("hello", "quiet") in impl.calls, what="one-way call executed")


async def test_node_client_sees_python_framework_errors(
    py_server: tuple[TarsServer, PyHello],
) -> None:
    server, _ = py_server
    run = await node_call(server.port, "fail", "[-42]")
    assert run.results[0]["ok"] is False
    assert run.results[0]["code"] == -42
    run = await node_call(server.port, "nosuch", "[]")
    assert run.results[0]["code"] == Ret.NO_FUNC
    run = await node_call(server.port, "hello", '["x"]', obj="No.Such.Obj")
    assert run.results[0]["code"] == Ret.NO_SERVANT


# ------------------------------------------------------ Python channel -> Node servant


@pytest.fixture(scope="module")
def node_hello() -> Iterator[NodeProc]:
    require_node()
    with node_server(["--servant", OBJ, "--quiet"]) as srv:
        yield srv


@pytest.fixture
async def channel(node_hello: NodeProc) -> AsyncIterator[Channel]:
    ch = Channel("127.0.0.1", node_hello.port)
    try:
        yield ch
    finally:
        await ch.aclose()


async def test_python_channel_calls_node_servant(channel: Channel) -> None:
    assert await channel.call(OBJ, HELLO, "python") == ("hello python",)
    results = await asyncio.gather(*(channel.call(OBJ, ADD, i, 1) for i in range(50)))
    assert [r[0] for r in results] == [i + 1 for i in range(50)]


async def test_python_channel_tup3_call_to_node_servant(channel: Channel) -> None:
    assert await channel.call(OBJ, HELLO, "tup", tup=True) == ("hello tup",)


async def test_python_channel_gets_node_framework_error(channel: Channel) -> None:
    with pytest.raises(ServerError) as info:
        await channel.call(OBJ, FAIL, -77)
    assert info.value.code == -77


async def test_python_channel_times_out_on_slow_node_servant(channel: Channel) -> None:
    with pytest.raises(CallTimeoutError):
        await channel.call(OBJ, SLEEP, 3000, timeout=0.3)
    assert channel.pending_count == 0
    assert await channel.call(OBJ, HELLO, "after") == ("hello after",)
