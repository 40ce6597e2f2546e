"""The proxy's call surface over real TCP: results, typed errors, one-way, context,
direct endpoints; and that timeouts and cancellation leave nothing pending behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from tarscascade.client import Communicator
from tarscascade.errors import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    EndpointSyntaxError,
    NoEndpointError,
    ServerError,
)
from tarscascade.testing import eventually
from tarscascade.transport import RawServant, TarsServer
from tarscascade.wire.packets import Ret
from tests.integration.client.cluster import HELLO, IFACE, OBJ, Cluster

DEAD_LOCATOR = "tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 1"


async def test_results_and_typed_errors(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    async with Communicator(locator=cluster.locator) as comm:
        p = comm.proxy(OBJ, IFACE)
        assert await p.invoke("hello", ["bob"]) == f"hello bob from {a.port}"
        assert await p.invoke(HELLO, ["eve"]) == f"hello eve from {a.port}"
        assert await p.invoke("divide", [17, 5]) == (3, 2)  # (ret, *outs)
        with pytest.raises(ServerError) as ei:
            await p.invoke("fail", [7])
        assert ei.value.code == 7
        assert "asked to fail" in ei.value.desc
        with pytest.raises(ServerError) as ei:
            await p.invoke("divide", [1, 0])  # the servant raised: TARSSERVERUNKNOWNERR
        assert ei.value.code == Ret.UNKNOWN
        with pytest.raises(TypeError, match="no method"):
            await p.invoke("nope", [])
        with pytest.raises(TypeError, match="no interface"):
            await comm.proxy(OBJ).invoke("hello", ["x"])
        # a framework error counts as a failed call (TarsCpp), not yet enough to shield
        h = p.pool.shield.health(("tcp", "127.0.0.1", a.port))
        assert h is not None
        assert h.window_failures == 2
        assert p.pool.shield.blocked == []


async def test_one_way_calls_and_context(cluster: Cluster) -> None:
    _, impl = await cluster.servant()
    async with Communicator(locator=cluster.locator) as comm:
        p = comm.proxy(OBJ, IFACE, context={"trace": "t1"})
        assert await p.invoke("note", ["fire"], oneway=True) is None
        await eventually(lambda: impl.notes == ["fire"], 5)
        assert await p.invoke("context", ["trace"]) == "t1"
        assert await p.invoke("context", ["k"], context={"k": "v"}) == "v"


async def test_direct_endpoints_bypass_the_locator(cluster: Cluster) -> None:
    a, _ = await cluster.servant(register=False)
    b, _ = await cluster.servant(register=False)
    obj = f"{OBJ}@tcp -h 127.0.0.1 -p {a.port}:tcp -h 127.0.0.1 -p {b.port}"
    async with Communicator(locator=DEAD_LOCATOR) as comm:
        p = comm.proxy(obj, IFACE)
        got = {(await p.invoke_detailed("hello", ["x"])).endpoint.port for _ in range(4)}
        assert got == {a.port, b.port}
        assert comm.resolver(obj).endpoints.source == "direct"
        assert comm.task_count == 0  # nothing to refresh


async def test_no_endpoint_and_bad_names(cluster: Cluster) -> None:
    async with Communicator(locator=cluster.locator) as comm:
        with pytest.raises(NoEndpointError, match=r"Test\.Unknown\.Obj"):
            await comm.proxy("Test.Unknown.Obj", IFACE).invoke("hello", ["x"])
        with pytest.raises(EndpointSyntaxError):
            comm.proxy("not an object", IFACE)
    with pytest.raises(RuntimeError, match="async with"):
        Communicator(locator=cluster.locator).proxy(OBJ)
    with pytest.raises(ValueError, match="set division"):
        Communicator(set_division="bad")


async def test_refused_connects_move_on_and_fail_only_when_all_refuse(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    async with Communicator(locator=cluster.locator) as comm:
        p = comm.proxy(OBJ, IFACE)
        await a.aclose()
        for _ in range(4):
            assert (await p.invoke_detailed("hello", ["x"])).endpoint.port == b.port
        await b.aclose()
        with pytest.raises((ConnectError, ConnectionClosedError)):
            await p.invoke("hello", ["x"])
        with pytest.raises(ConnectError):
            await p.invoke("hello", ["x"])


async def test_a_timeout_leaves_nothing_pending_and_counts_as_a_failure(cluster: Cluster) -> None:
    a, impl = await cluster.servant()
    async with Communicator(locator=cluster.locator) as comm:
        p = comm.proxy(OBJ, IFACE)
        await p.invoke("hello", ["warm"])
        t0 = time.monotonic()
        with pytest.raises(CallTimeoutError):
            await p.invoke("slow", [-1], timeout=0.2)
        assert time.monotonic() - t0 < 1.0
        assert p.pool.pending_calls == 0
        h = p.pool.shield.health(("tcp", "127.0.0.1", a.port))
        assert h is not None
        assert h.window_failures == 1
        assert h.consecutive == 1
        impl.release.set()
        assert await p.invoke("hello", ["again"]) == f"hello again from {a.port}"


async def test_cancelling_a_call_leaves_nothing_pending_and_records_nothing(
    cluster: Cluster,
) -> None:
    a, impl = await cluster.servant()
    async with Communicator(locator=cluster.locator) as comm:
        p = comm.proxy(OBJ, IFACE)
        await p.invoke("hello", ["warm"])
        call = asyncio.create_task(p.invoke("slow", [-1]))
        await asyncio.wait_for(impl.slow_started.wait(), 5)
        assert p.pool.pending_calls == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert p.pool.pending_calls == 0
        h = p.pool.shield.health(("tcp", "127.0.0.1", a.port))
        assert h is not None
        assert h.window_failures == 0
        impl.release.set()


async def test_cancelling_while_resolving_and_closing_leave_no_task(cluster: Cluster) -> None:
    # a locator that accepts but never answers QueryF
    async def hang(cur: object, body: bytes) -> tuple[int, bytes, str]:
        await asyncio.Event().wait()
        raise AssertionError

    black_hole = TarsServer(
        [RawServant("tars.tarsnode.ServerObj", {"findObjectByIdInSameGroup": hang})]
    )
    baseline = set(asyncio.all_tasks())
    async with black_hole:
        loc = f"tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p {black_hole.port}"
        comm = Communicator(locator=loc, locator_timeout=5.0)
        async with comm:
            p = comm.proxy(OBJ, IFACE)
            call = asyncio.create_task(p.invoke("hello", ["x"], timeout=30))
            await eventually(lambda: black_hole.connection_count == 1, 5)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            # a bounded call gives up after its timeout with no endpoint
            t0 = time.monotonic()
            with pytest.raises(NoEndpointError):
                await p.invoke("hello", ["x"], timeout=0.2)
            assert time.monotonic() - t0 < 1.0
            assert comm.task_count == 1  # the resolver loop, still waiting for its answer
        assert comm.task_count == 0
        await eventually(lambda: black_hole.connection_count == 0, 5)
    assert set(asyncio.all_tasks()) - baseline == set()


async def test_closing_the_communicator_fails_calls_in_flight(cluster: Cluster) -> None:
    _, impl = await cluster.servant()
    comm = Communicator(locator=cluster.locator)
    async with comm:
        p = comm.proxy(OBJ, IFACE)
        call = asyncio.create_task(p.invoke("slow", [-1]))
        await asyncio.wait_for(impl.slow_started.wait(), 5)
    with pytest.raises(ConnectionClosedError):
        await call
    assert comm.task_count == 0
    assert p.pool.pending_calls == 0
    impl.release.set()
