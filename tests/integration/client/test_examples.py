"""examples/hello as separate processes: servants that register themselves through their
keepAlive, a client naming the port of every answer; stop, kill, and a long-lived client."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tarscascade.client import Communicator, Reason
from tarscascade.errors import ConnectionClosedError
from tarscascade.model import State
from tarscascade.testing import eventually
from tests.integration.client.cluster import IFACE, OBJ, Cluster

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "hello"
LINE = re.compile(r"call (\d+): port (\d+): hello (\S+) from port (\d+)")

Spawn = Callable[..., Awaitable[tuple[asyncio.subprocess.Process, int]]]


@pytest.fixture
async def servers(cluster: Cluster) -> AsyncIterator[Spawn]:
    procs: list[asyncio.subprocess.Process] = []

    async def spawn(*extra: str) -> tuple[asyncio.subprocess.Process, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / "server.py"),
            "--port",
            "0",
            "--node",
            cluster.node_locator,
            "--keepalive",
            "1",
            *extra,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.startswith(b"READY "), line
        return proc, int(line.split()[1])

    yield spawn
    for p in procs:
        if p.returncode is None:
            p.kill()
        await p.wait()


def state_of(cluster: Cluster, port: int) -> State | None:
    for r in cluster.reg.catalog.get_object(OBJ):
        if r.port == port:
            return r.present_state
    return None


async def run_client(cluster: Cluster, calls: int) -> tuple[int, list[tuple[int, int]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "client.py"),
        "--calls",
        str(calls),
        "--locator",
        cluster.node_locator,
        "--locator",
        cluster.registry_locator,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()
    assert len(lines) == calls, lines
    got = []
    for line in lines:
        m = LINE.fullmatch(line)
        assert m is not None, line
        assert m.group(2) == m.group(4)  # the port named is the one that answered
        got.append((int(m.group(1)), int(m.group(2))))
    assert proc.returncode is not None
    return proc.returncode, got


async def test_examples_register_answer_stop_and_survive_a_kill(
    cluster: Cluster, servers: Spawn
) -> None:
    a, port_a = await servers()
    _, port_b = await servers()
    # no admin call: their keepAlives registered them, active
    await eventually(
        lambda: state_of(cluster, port_a) == state_of(cluster, port_b) == State.ACTIVE, 10
    )

    rc, got = await run_client(cluster, 6)
    assert rc == 0
    assert [i for i, _ in got] == [1, 2, 3, 4, 5, 6]
    assert Counter(p for _, p in got) == {port_a: 3, port_b: 3}

    # a graceful stop marks it inactive at once
    a.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(a.wait(), 20) == 0
    assert state_of(cluster, port_a) == State.INACTIVE
    rc, got = await run_client(cluster, 4)
    assert rc == 0
    assert {p for _, p in got} == {port_b}

    # a killed one stays registered active; a fresh client shields it and still succeeds
    c, port_c = await servers()
    await eventually(lambda: state_of(cluster, port_c) == State.ACTIVE, 10)
    c.kill()
    await c.wait()
    assert state_of(cluster, port_c) == State.ACTIVE
    rc, got = await run_client(cluster, 6)
    assert rc == 0
    assert {p for _, p in got} == {port_b}


async def test_a_long_lived_client_rides_through_a_kill(cluster: Cluster, servers: Spawn) -> None:
    a, port_a = await servers()
    _, port_b = await servers()
    await eventually(
        lambda: state_of(cluster, port_a) == state_of(cluster, port_b) == State.ACTIVE, 10
    )
    async with Communicator(locator=cluster.locator, subscribe=True) as comm:
        p = comm.proxy(OBJ, IFACE)
        ok: Counter[int] = Counter()
        failed = 0
        for i in range(60):
            if i == 20:
                os.kill(a.pid, signal.SIGKILL)
                await a.wait()
            try:
                ok[(await p.invoke_detailed("hello", ["x"])).endpoint.port] += 1
            except ConnectionClosedError:
                failed += 1  # sent on the connection just as it died
        assert failed <= 1
        assert ok[port_a] == 10
        assert ok[port_b] == 50 - failed
        assert p.pool.shield.reason(("tcp", "127.0.0.1", port_a)) is Reason.CONNECT
