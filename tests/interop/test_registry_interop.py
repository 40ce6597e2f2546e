"""A real TARS client from npm resolves through tarscascade's registry.

@tars/rpc (via its locator) resolves Test.HelloServer.HelloObj against our QueryObj and
then calls `hello` on the endpoint it was given (a Python servant); @tars/registry asks
QueryF directly, so each answer can be checked, including after a removal.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tarscascade.model import Category, EndpointRecord, GroupRule, State
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.servants import QueryServant
from tarscascade.store import Delete, Put, SqlStore
from tarscascade.transport import Current, InterfaceServant, TarsServer
from tarscascade.wire.codec import STRING
from tarscascade.wire.interface import Interface, Method, Param
from tests.interop.nodeproc import NODE_DIR, node_binary, require_node, run_client_full

pytestmark = pytest.mark.interop

OBJ = "Test.HelloServer.HelloObj"
HELLO = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))
REGISTRY_QUERY = NODE_DIR / "registry_query.js"


class Hello:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def hello(self, cur: Current, name: str) -> str:
        return f"hello {name} from {self.tag}"


@dataclass
class Env:
    core: RegistryCore
    registry: TarsServer
    hello: TarsServer

    @property
    def locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {self.registry.port}"

    def endpoint(self, port: int | None = None, **kw: Any) -> EndpointRecord:
        return EndpointRecord(OBJ, "127.0.0.1", port or self.hello.port, timeout=60000, **kw)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    require_node()
    store = await asyncio.to_thread(SqlStore.open, f"sqlite:///{tmp_path}/registry.db")
    core = RegistryCore(store)
    await core.start()
    registry = TarsServer([QueryServant(core.answerer)])
    hello = TarsServer([InterfaceServant(OBJ, HELLO, Hello("python"))])
    await registry.start()
    await hello.start()
    try:
        yield Env(core, registry, hello)
    finally:
        await hello.aclose()
        await registry.aclose()
        await core.aclose()
        store.close()


def _query(locator: str, method: str, arg: str = "", node_name: str = "") -> dict[str, Any]:
    node = node_binary()
    assert node is not None
    cmd = [node, str(REGISTRY_QUERY), "--locator", locator, "--obj", OBJ, "--method", method]
    if arg:
        cmd += ["--arg", arg]
    if node_name:
        cmd += ["--node-name", node_name]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=NODE_DIR, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no answer (exit {proc.returncode}): {proc.stderr[-1000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def query(env: Env, method: str = "group", arg: str = "", node_name: str = "") -> Any:
    return await asyncio.to_thread(_query, env.locator, method, arg, node_name)


def ports(eps: list[dict[str, Any]]) -> list[int]:
    return sorted(e["port"] for e in eps)


async def test_rpc_client_resolves_through_the_registry_and_calls_the_servant(env: Env) -> None:
    await env.core.write([Put(env.endpoint())])
    run = await asyncio.to_thread(
        run_client_full,
        ["--locator", env.locator, "--obj", OBJ, "--func", "hello", "--args", '["node"]'],
        60.0,
    )
    assert run.results[0]["ok"] is True, run.results
    assert run.results[0]["ret"] == "hello node from python"
    assert f"-p {env.hello.port}" in run.results[0]["endpoint"]


async def test_registry_client_answers_follow_adds_and_removals(env: Env) -> None:
    await env.core.write([Put(env.endpoint()), Put(env.endpoint(1, setting_state=State.INACTIVE))])
    r = await query(env, "group")
    assert r["ok"] is True, r
    assert r["ret"] == 0
    assert ports(r["active"]) == [env.hello.port]
    assert ports(r["inactive"]) == [1]
    assert r["active"][0]["istcp"] == 1
    assert r["active"][0]["timeout"] == 60000
    await env.core.write([Delete(Category.OBJECTS, env.endpoint().key)])
    r = await query(env, "group")
    assert ports(r["active"]) == []
    assert ports(r["inactive"]) == [1]
    r = await query(env, "id")
    assert r["active"] == []


async def test_registry_client_set_and_idc_group_routing(env: Env) -> None:
    await env.core.write(
        [
            Put(GroupRule(1, "sz", ("10.1.1.*",))),
            Put(GroupRule(2, "sh", ("10.2.2.*",))),
            Put(EndpointRecord(OBJ, "10.1.1.10", 9001, enable_group=True)),
            Put(EndpointRecord(OBJ, "10.2.2.10", 9002, enable_group=True)),
            Put(EndpointRecord(OBJ, "10.3.3.10", 9003, set_id="app.sz.1")),
        ]
    )
    # the caller's node_name picks its IDC group (QueryImp passes Current::getHostName)
    r = await query(env, "group", node_name="10.1.1.77")
    assert ports(r["active"]) == [9001]
    r = await query(env, "group", node_name="10.2.2.77")
    assert ports(r["active"]) == [9002]
    r = await query(env, "any", node_name="10.2.2.77")
    assert ports(r["active"]) == [9001, 9002, 9003]
    r = await query(env, "set", arg="app.sz.1")
    assert r["ret"] == 0
    assert ports(r["active"]) == [9003]
    r = await query(env, "set", arg="bad-set-id")
    assert r["ret"] == -1
