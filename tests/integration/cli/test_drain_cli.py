"""``tarscascade drain`` and ``tarscascade nodes`` as subprocesses against a registry
process started here, with a node agent in this process subscribed to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tarscascade.cascade.states import held_states
from tarscascade.model import Category
from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import CASCADE_SERVANT, OK, SUBSCRIBE, SubscribeReq
from tests.integration.admin.node_harness import WAIT, node_agent
from tests.integration.cli.test_cli import failed, ok, ok_json, run_cli

OBJ = "Test.HelloServer.HelloObj"
EP = "tcp -h 10.0.0.1 -p 1001"


@dataclass
class Setup:
    url: str
    tars_port: int
    agent: NodeAgent

    async def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await run_cli(*args, env={"TARSCASCADE_REGISTRY": self.url})


def _read_ports(proc: subprocess.Popen[str]) -> tuple[int, str]:
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(2)]  # blocks until printed (or EOF)
    assert lines[0].startswith("registry  TARS  127.0.0.1:"), lines
    assert lines[1].startswith("registry  HTTP  http://127.0.0.1:"), lines
    return int(lines[0].split()[2].rsplit(":", 1)[1]), lines[1].split()[-1]


def _spawn_registry(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "tarscascade.cli", "registry"),
            *("--db", f"sqlite:///{tmp_path}/r.db"),
            *("--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )


@contextlib.asynccontextmanager
async def registry_process(tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    proc = _spawn_registry(tmp_path)
    try:
        async with asyncio.timeout(60):
            yield await asyncio.to_thread(_read_ports, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with registry_process(tmp_path) as (tars_port, url):
        agent = node_agent("node-a", [("127.0.0.1", tars_port)])
        try:
            await agent.start()
            assert agent.client is not None
            await eventually(agent.client.synced.is_set, timeout=WAIT, what="node synced")
            yield Setup(url, tars_port, agent)
        finally:
            await agent.aclose()


async def test_drain_reports_every_node_acknowledged(setup: Setup) -> None:
    ok(await setup.run("endpoint", "add", OBJ, EP))
    ok(await setup.run("endpoint", "add", OBJ, "tcp -h 10.0.0.2 -p 1002"))
    out = ok(await setup.run("drain", OBJ, EP, "--timeout", "30"))
    lines = out.splitlines()
    m = re.fullmatch(rf'"{re.escape(EP)}" of {OBJ} is now inactive \(revision (\d+)\)', lines[0])
    assert m is not None, lines
    revision = int(m.group(1))
    assert re.fullmatch(r"acknowledged by all 1 nodes in \d+\.\d{3} s", lines[1])
    # it was applied on the node before the command returned
    (record,) = [r for r in setup.agent.catalog.get_object(OBJ) if r.port == 1001]
    assert not setup.agent.catalog.is_active(record)
    assert setup.agent.catalog.version(Category.OBJECTS).revision == revision

    body = json_lines(ok(await setup.run("drain", OBJ, EP, "--json")))[-1]
    assert body["event"] == "result"
    assert body["changed"] is False
    assert body["revision"] == revision
    assert body["complete"] is True
    assert body["acked"] == ["node-a"]
    assert body["missing"] == []
    out = ok(await setup.run("drain", OBJ, EP))
    assert "was inactive already" in out

    # once the registry saw every category acknowledged (its own record included)
    await _poll(setup, lambda ns: all(n == 0 for n in ns[0]["lag"].values()))
    table = ok(await setup.run("nodes"))
    row = next(line for line in table.splitlines() if "node-a" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[0] == "node-a"
    assert cells[1] == f"127.0.0.1:{setup.agent.port}"
    assert cells[2:5] == ["active", "active", "connected"]
    assert f"objects {revision}" in cells[5]
    assert cells[6] == "0"
    assert re.fullmatch(r"\d+\.\d s ago", cells[7])
    listed = ok_json(await setup.run("nodes", "--json"))["nodes"]
    assert listed[0]["versions"]["objects"]["revision"] == revision


async def test_drain_names_the_nodes_that_did_not_acknowledge(setup: Setup) -> None:
    ok(await setup.run("endpoint", "add", OBJ, EP))
    async with Channel("127.0.0.1", setup.tars_port) as mute:
        req = SubscribeReq(nodeName="mute", held=held_states(setup.agent.catalog))
        ret, _ = await mute.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert ret == OK
        # the hub registers a session before it answers the subscribe
        listed = ok_json(await setup.run("nodes", "--json"))["nodes"]
        assert any(n["name"] == "mute" and n["connected"] for n in listed)
        p = await setup.run("drain", OBJ, EP, "--timeout", "0.5", "--force")  # its only one
        line = failed(p, 4)
        assert re.search(r"1 of 2 nodes did not acknowledge revision \d+ within 0.5 s: mute$", line)
        assert "acknowledged by 1 of 2 nodes; waited " in p.stdout
        p = await setup.run("drain", OBJ, EP, "--timeout", "0.2", "--json", "--force")
        assert p.returncode == 4, p.stderr
        events = json_lines(p.stdout)
        assert events[0]["event"] == "started"
        assert events[0]["nodes"] == ["mute", "node-a"]
        progress = [e for e in events if e["event"] == "progress"]
        assert progress, events
        assert progress[-1]["missing"] == ["mute"]
        assert progress[-1]["acked_count"] == 1
        assert progress[-1]["total"] == 2
        body = events[-1]
        assert body["event"] == "result"
        assert body["complete"] is False
        assert body["missing"] == ["mute"]
        assert body["acked"] == ["node-a"]
        assert body["elapsed_s"] >= 0.2


async def test_drain_usage_and_refusals(setup: Setup) -> None:
    ok(await setup.run("endpoint", "add", OBJ, EP))
    failed(await setup.run("drain", OBJ, "tcp -h 10.0.0.1"), 2)  # no -p
    p = await setup.run("drain", OBJ, EP, "--timeout", "601")
    assert p.returncode == 2
    line = failed(await setup.run("drain", OBJ, "tcp -h 10.0.0.9 -p 1"), 5)
    assert line == f'tarscascade: not found: endpoint "tcp -h 10.0.0.9 -p 1" of {OBJ} (HTTP 404)'
    failed(await setup.run("drain", "Not.AnObject", EP), 2)


def json_lines(text: str) -> list[dict[str, Any]]:
    """``--json`` output of drain: one object per line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def _poll(setup: Setup, done: Callable[[list[dict[str, Any]]], bool]) -> None:
    """Ask ``nodes --json`` until ``done(nodes)`` (bounded)."""
    async with asyncio.timeout(WAIT):
        while True:
            if done(ok_json(await setup.run("nodes", "--json"))["nodes"]):
                return
            await asyncio.sleep(0.05)
