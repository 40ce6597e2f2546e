"""A registry and a stand-in node agent on loopback, and a Hello servant, for client tests.

:class:`FakeNode` implements the node-agent contract the client SDK relies on (the real
one is ``tarscascade node``), on top of a :class:`RegistryCore`:

* QueryF under ``tars.tarsnode.ServerObj``, answered from the registry's catalog;
* ``registerQuery(id, name)`` returning 0, then a push ``tarscascade.objectChanged``
  (body: the object id as a TARS string at tag 0) on that connection whenever the
  object's answer changes;
* ``ServerF.keepAlive(ServerInfo)`` with ``adapter`` = the object id: the endpoint named
  by the request context ``tarscascade.endpoint`` (registered if new), or else every
  endpoint of that object on this node, is marked present-active; ``pid < 0`` (a process
  leaving) marks it inactive.

The real node (``tarscascade.node``) implements the first two and the object-id part of
the third; the endpoint context and ``pid < 0`` are the SDK's proposal.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tarscascade.catalog.queryf import handle_query
from tarscascade.client import ENDPOINT_CONTEXT_KEY, encode_object_changed
from tarscascade.errors import ServerError
from tarscascade.model import Category, EndpointRecord, State
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.servants import QueryServant
from tarscascade.store import Delete, Put, SqlStore
from tarscascade.transport import Current, InterfaceServant, TarsServer
from tarscascade.transport.servant import Pusher, Result
from tarscascade.wire.codec import INT32_K, STRING
from tarscascade.wire.endpoint import parse_endpoint
from tarscascade.wire.idl.queryf import OBJECT_CHANGED, REGISTER_QUERY
from tarscascade.wire.idl.serverf import KEEP_ALIVE, SERVER_F
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import Ret

OBJ = "Test.HelloServer.HelloObj"
NODE_OBJ = "tars.tarsnode.ServerObj"
REGISTRY_OBJ = "tars.tarsregistry.QueryObj"

HELLO = Method("hello", (Param("name", STRING),), STRING)
SLOW = Method("slow", (Param("ms", INT32_K),), INT32_K)
FAIL = Method("fail", (Param("code", INT32_K),), INT32_K)
NOTE = Method("note", (Param("text", STRING),), None)
DIVIDE = Method(
    "divide",
    (Param("a", INT32_K), Param("b", INT32_K), Param("rest", INT32_K, out=True)),
    INT32_K,
)
CONTEXT = Method("context", (Param("key", STRING),), STRING)
IFACE = Interface.of("Hello", HELLO, SLOW, FAIL, NOTE, DIVIDE, CONTEXT)


class HelloImpl:
    def __init__(self) -> None:
        self.port = 0
        self.calls = 0
        self.notes: list[str] = []
        self.slow_started = asyncio.Event()
        self.release = asyncio.Event()

    def hello(self, cur: Current, name: str) -> str:
        self.calls += 1
        return f"hello {name} from {self.port}"

    async def slow(self, cur: Current, ms: int) -> int:
        self.slow_started.set()
        if ms < 0:
            await self.release.wait()
        else:
            await asyncio.sleep(ms / 1000)
        return ms

    def fail(self, cur: Current, code: int) -> int:
        raise ServerError(code, "asked to fail")

    def note(self, cur: Current, text: str) -> None:
        self.notes.append(text)

    def divide(self, cur: Current, a: int, b: int) -> tuple[int, int]:
        return a // b, a % b

    def context(self, cur: Current, key: str) -> str:
        return cur.context.get(key, "")


class FakeNode:
    """``tars.tarsnode.ServerObj``: QueryF + registerQuery pushes + ServerF.keepAlive."""

    def __init__(self, core: RegistryCore, node_name: str = "node-1") -> None:
        self.name = NODE_OBJ
        self.core = core
        self.node_name = node_name
        self.subscribers: dict[str, set[Pusher]] = {}
        self.keepalives: list[Any] = []
        self.pushes = 0
        core.catalog.add_listener(self._changed)

    def _changed(self, affected: set[str] | None) -> None:
        ids: Iterable[str] = self.subscribers if affected is None else affected
        for oid in list(ids):
            conns = self.subscribers.get(oid, set())
            for conn in list(conns):
                if conn.push(OBJECT_CHANGED, encode_object_changed(oid)):
                    self.pushes += 1
                else:
                    conns.discard(conn)

    def dispatch(self, current: Current) -> Result | Any:
        req = current.request
        if req.sFuncName == REGISTER_QUERY.name:
            oid, _name = REGISTER_QUERY.decode_args(req.sBuffer)
            self.subscribers.setdefault(oid, set()).add(current.conn)
            return (Ret.SUCCESS, REGISTER_QUERY.encode_result(0), "")
        if req.sFuncName in SERVER_F.methods:
            if req.sFuncName != KEEP_ALIVE.name:
                return (Ret.SUCCESS, SERVER_F[req.sFuncName].encode_result(0), "")
            return self._keep_alive(current)
        return handle_query(self.core.answerer, req.sFuncName, req.sBuffer, current.host_name)

    async def _keep_alive(self, current: Current) -> Result:
        (info,) = KEEP_ALIVE.decode_args(current.request.sBuffer)
        self.keepalives.append((info, dict(current.context)))
        state = State.ACTIVE if info.pid > 0 else State.INACTIVE
        mine = [
            r for r in self.core.catalog.get_object(info.adapter) if r.node_name == self.node_name
        ]
        named = current.context.get(ENDPOINT_CONTEXT_KEY)
        if named:
            ep = parse_endpoint(named)
            here = (ep.host, ep.port)
            mine = [r for r in mine if (r.host, r.port) == here] or [
                EndpointRecord(
                    info.adapter, ep.host, ep.port, timeout=ep.timeout, node_name=self.node_name
                )
            ]
        ops = [Put(dataclasses.replace(r, present_state=state)) for r in mine]
        if ops:
            await self.core.write(ops)
        return (Ret.SUCCESS, KEEP_ALIVE.encode_result(0), "")


class Cluster:
    """Registry (SQLite) + fake node on loopback; helpers to edit endpoints."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store: SqlStore | None = None
        self.core: RegistryCore | None = None
        self.registry: TarsServer | None = None
        self.node: TarsServer | None = None
        self.fake_node: FakeNode | None = None
        self.servants: list[TarsServer] = []
        self.node_port = 0

    async def start(self) -> None:
        self.store = await asyncio.to_thread(SqlStore.open, f"sqlite:///{self.tmp}/r.db")
        self.core = RegistryCore(self.store)
        await self.core.start()
        self.registry = TarsServer([QueryServant(self.core.answerer)])
        await self.registry.start()
        self.fake_node = FakeNode(self.core)
        await self.start_node()

    async def start_node(self, port: int = 0) -> None:
        assert self.fake_node is not None
        self.node = TarsServer([self.fake_node], port=port or self.node_port)
        await self.node.start()
        self.node_port = self.node.port

    async def stop_node(self) -> None:
        assert self.node is not None
        await self.node.aclose()

    @property
    def node_locator(self) -> str:
        return f"{NODE_OBJ}@tcp -h 127.0.0.1 -p {self.node_port}"

    @property
    def registry_locator(self) -> str:
        assert self.registry is not None
        return f"{REGISTRY_OBJ}@tcp -h 127.0.0.1 -p {self.registry.port}"

    @property
    def locator(self) -> tuple[str, str]:
        return (self.node_locator, self.registry_locator)

    @property
    def reg(self) -> RegistryCore:
        assert self.core is not None
        return self.core

    async def put(self, port: int, obj: str = OBJ, host: str = "127.0.0.1", **kw: Any) -> None:
        await self.reg.write([Put(EndpointRecord(obj, host, port, **kw))])

    async def set_state(self, port: int, state: State, obj: str = OBJ) -> None:
        (rec,) = [r for r in self.reg.catalog.get_object(obj) if r.port == port]
        await self.reg.write([Put(dataclasses.replace(rec, setting_state=state))])

    async def remove(self, port: int, obj: str = OBJ, host: str = "127.0.0.1") -> None:
        key = EndpointRecord(obj, host, port).key
        await self.reg.write([Delete(Category.OBJECTS, key)])

    async def servant(self, register: bool = True, **kw: Any) -> tuple[TarsServer, HelloImpl]:
        """A Hello servant on a free port, registered in the registry unless told not to."""
        impl = HelloImpl()
        server = TarsServer([InterfaceServant(OBJ, IFACE, impl)])
        await server.start()
        impl.port = server.port
        self.servants.append(server)
        if register:
            await self.put(server.port, **kw)
        return server, impl

    async def aclose(self) -> None:
        for s in self.servants:
            await s.aclose()
        for srv in (self.node, self.registry):
            if srv is not None:
                await srv.aclose()
        if self.core is not None:
            await self.core.aclose()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
