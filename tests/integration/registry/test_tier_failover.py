"""SIGKILL one registry of a tier (the liveness judge) under 20 writes/s, with nodes
spread over three registry processes on one MariaDB/PostgreSQL database (issue 15,
item 4): no endpoint turns inactive because of it, no node needs a snapshot, every node
is back in sync within its reconnect backoff, and a drain started during the failover
returns only once every registered node serves the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tarscascade.model import Category
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.testing import eventually
from tests.integration.registry.tier_harness import FAST, WAIT

NODE_TIMEOUT = 6.0  # s: the registries' --node-timeout (sightings every 2 s)
REGISTRIES = 3
NODES_PER_REGISTRY = 3
WRITES_PER_S = 20.0
LIVE = "Test.Tier.LiveObj"  # one endpoint per node: turns inactive if its node is judged dead
BUSY = "Test.Tier.BusyObj"  # re-weighted by the writer
DRAINED = "Test.Tier.DrainObj"


def _spawn(db_url: str, tmp: Path, i: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "tarscascade.cli", "registry", "--db", db_url, "--init"),
            *("--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"),
            *("--node-timeout", str(NODE_TIMEOUT), "--reload-interval", "0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "HOME": str(tmp)},
    )


def _ports(proc: subprocess.Popen[str]) -> tuple[int, str]:
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(2)]  # blocks until printed (or EOF)
    assert lines[0].startswith("registry  TARS  127.0.0.1:"), lines
    assert lines[1].startswith("registry  HTTP  http://127.0.0.1:"), lines
    return int(lines[0].split()[2].rsplit(":", 1)[1]), lines[1].split()[-1]


@contextlib.contextmanager
def _stopped(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()


@contextlib.asynccontextmanager
async def _nodes(ports: list[int]) -> AsyncIterator[list[NodeAgent]]:
    agents: list[NodeAgent] = []
    try:
        for i in range(REGISTRIES * NODES_PER_REGISTRY):
            first = i % REGISTRIES
            order = [("127.0.0.1", ports[(first + k) % REGISTRIES]) for k in range(REGISTRIES)]
            agent = NodeAgent(
                NodeConfig(
                    name=f"n{i}",
                    upstreams=order,
                    listen=("127.0.0.1", 0),
                    report_interval=0.1,
                    client_options=FAST,
                )
            )
            agents.append(agent)
            await agent.start()
        for agent in agents:
            assert agent.client is not None
            await eventually(agent.client.synced.is_set, timeout=WAIT, what="synced")
        yield agents
    finally:
        for agent in agents:
            await agent.aclose()


def _inactive_live(agent: NodeAgent) -> list[int]:
    cat = agent.catalog
    return [r.port for r in cat.get_object(LIVE) if not cat.is_active(r)]


async def test_sigkill_of_the_judge_under_writes(db_url: str, backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        pytest.skip("a tier of registry processes is deployed on a database server")
    procs = [_spawn(db_url, tmp_path, 0)]
    with _stopped(procs):
        first = await asyncio.to_thread(_ports, procs[0])  # it creates the schema
        procs += [_spawn(db_url, tmp_path, i) for i in range(1, REGISTRIES)]
        rest = [await asyncio.to_thread(_ports, p) for p in procs[1:]]
        tars = [first[0], *(r[0] for r in rest)]
        http = [first[1], *(r[1] for r in rest)]
        async with httpx.AsyncClient(timeout=WAIT) as client, _nodes(tars) as agents:
            await _run(client, http, procs, agents)


async def _judge(client: httpx.AsyncClient, http: list[str], alive: list[int]) -> int:
    async def find() -> int | None:
        judges = []
        for i in alive:
            tier = (await client.get(f"{http[i]}/v1/status")).json()["tier"]
            if tier["judge"]:
                judges.append(i)
        return judges[0] if len(judges) == 1 else None

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = await find()
        if found is not None:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("no single judge")


async def _run(
    client: httpx.AsyncClient,
    http: list[str],
    procs: list[subprocess.Popen[str]],
    agents: list[NodeAgent],
) -> None:
    names = [a.config.name for a in agents]
    for name in names:  # one endpoint per node, governed by its liveness
        port = 20000 + int(name[1:])
        body = {"endpoint": f"tcp -h 127.0.0.1 -p {port}", "node": name}
        assert (await client.post(f"{http[0]}/v1/objects/{LIVE}/endpoints", json=body)).is_success
    for port in (1, 2, 3):
        for obj in (BUSY, DRAINED):
            body = {"endpoint": f"tcp -h 10.0.0.1 -p {port}"}
            r = await client.post(f"{http[0]}/v1/objects/{obj}/endpoints", json=body)
            assert r.is_success, r.text

    judge = await _judge(client, http, list(range(REGISTRIES)))
    writer = (judge + 1) % REGISTRIES
    target = http[writer]

    def synced() -> bool:
        want = max(a.catalog.version(Category.OBJECTS) for a in agents)
        return all(a.catalog.version(Category.OBJECTS) == want for a in agents)

    await eventually(synced, timeout=WAIT, what="every node at one version")
    snapshots = {a.config.name: a.client.stats.snapshots_received for a in agents if a.client}

    inactive_seen: list[tuple[str, list[int]]] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            for a in agents:
                if gone := _inactive_live(a):
                    inactive_seen.append((a.config.name, gone))
            await asyncio.sleep(0.05)

    writes = 0

    async def write() -> None:
        nonlocal writes
        while not stop.is_set():
            port = 1 + writes % 3
            url = f"{target}/v1/objects/{BUSY}/endpoints/10.0.0.1/{port}"
            r = await client.patch(url, json={"weight": 1 + writes % 50})
            assert r.is_success, r.text
            writes += 1
            await asyncio.sleep(1 / WRITES_PER_S)

    watcher = asyncio.create_task(watch())
    writer_task = asyncio.create_task(write())
    try:
        await asyncio.sleep(2.0)
        procs[judge].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        # a drain during the failover, through the writer
        r = await client.post(
            f"{target}/v1/objects/{DRAINED}/endpoints/10.0.0.1/1/drain", json={"timeout": WAIT}
        )
        assert r.status_code == 200, r.text
        drained = r.json()
        at_return = {
            a.config.name: [
                x.port for x in a.catalog.get_object(DRAINED) if not a.catalog.is_active(x)
            ]
            for a in agents
        }
        assert drained["complete"] is True, drained
        assert drained["nodes"] == sorted(names), drained
        assert drained["offline"] == []
        assert all(ports == [1] for ports in at_return.values()), at_return
        # a new judge among the survivors, and two node timeouts with no flap
        survivors = [i for i in range(REGISTRIES) if i != judge]
        await _judge(client, http, survivors)
        await asyncio.sleep(max(0.0, killed + 2 * NODE_TIMEOUT - time.monotonic()))
    finally:
        stop.set()
        await asyncio.gather(watcher, writer_task, return_exceptions=True)
    assert writes >= 2 * NODE_TIMEOUT * WRITES_PER_S * 0.5, writes  # the writer kept going
    assert inactive_seen == [], inactive_seen[:5]
    await eventually(synced, timeout=WAIT, what="every node back in sync")
    after = {a.config.name: a.client.stats.snapshots_received for a in agents if a.client}
    assert after == snapshots, "a node needed a snapshot"
    listed = (await client.get(f"{target}/v1/nodes")).json()["nodes"]
    states = {n["name"]: n["present_state"] for n in listed if n["name"] in names}
    assert states == dict.fromkeys(names, "active"), states
