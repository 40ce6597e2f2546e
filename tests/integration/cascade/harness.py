"""A registry (RegistryCore over SQLite + TarsServer + CascadeHub) and nodes, on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tarscascade.cascade import CascadeClient, CascadeHub, ClientOptions, HubOptions, NodeInfo
from tarscascade.catalog import Catalog
from tarscascade.model import Category, EndpointRecord, State
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.feed import attach_cascade
from tarscascade.store import SqlStore
from tarscascade.testing import eventually
from tarscascade.transport import ServerOptions, TarsServer

TOKEN = "s3cret"
OBJ = "Test.HelloServer.HelloObj"
#: bounds for a loaded 2-core machine, not expectations of speed
WAIT = 30.0


def ep(port: int, host: str = "10.0.0.1", obj: str = OBJ, **kw: Any) -> EndpointRecord:
    return EndpointRecord(obj, host, port, **kw)


def fast_client_options(**kw: Any) -> ClientOptions:
    opts: dict[str, Any] = {
        "heartbeat_interval": 0.2,
        "connect_timeout": 2.0,
        "call_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
        "resubscribe_initial": 0.02,
        "resubscribe_max": 0.3,
        # heartbeats at the pace these tests count on; tests of idle heartbeats ask
        "heartbeat_idle_longest": 0.0,
    }
    opts.update(kw)
    return ClientOptions(**opts)


@dataclass
class Registry:
    store: SqlStore
    core: RegistryCore
    hub: CascadeHub
    server: TarsServer

    @property
    def port(self) -> int:
        return self.server.port

    async def aclose(self) -> None:
        await self.hub.aclose()
        await self.server.aclose()
        await self.core.aclose()
        await asyncio.to_thread(self.store.close)


@dataclass
class Node:
    name: str
    catalog: Catalog
    client: CascadeClient


@dataclass
class Relay:
    """A node that serves others: its replica feeds a hub on its own TARS port."""

    node: Node
    hub: CascadeHub
    port: int


@dataclass
class Cluster:
    db_url: str
    registries: list[Registry] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)

    async def start_registry(
        self,
        port: int = 0,
        db_url: str | None = None,
        hub_options: HubOptions | None = None,
        server_options: ServerOptions | None = None,
        token: str | None = TOKEN,
    ) -> Registry:
        store = await asyncio.to_thread(SqlStore.open, db_url or self.db_url)
        core = RegistryCore(store, RegistryOptions(reload_interval=0))
        await core.start()
        hub = await attach_cascade(core, token=token, options=hub_options)
        server = TarsServer([hub.servant], port=port, options=server_options)
        await server.start()
        reg = Registry(store, core, hub, server)
        self.registries.append(reg)
        return reg

    async def stop_registry(self, reg: Registry) -> None:
        self.registries.remove(reg)
        await reg.aclose()

    def node(
        self,
        name: str,
        upstreams: Sequence[tuple[str, int]],
        *,
        catalog: Catalog | None = None,
        token: str = TOKEN,
        options: ClientOptions | None = None,
        **kw: Any,
    ) -> Node:
        cat = catalog or Catalog()
        client = CascadeClient(
            cat,
            upstreams,
            node_name=name,
            token=token,
            address=f"127.0.0.1:{20000 + len(self.nodes)}",
            options=options or fast_client_options(),
            **kw,
        )
        client.start()
        node = Node(name, cat, client)
        self.nodes.append(node)
        return node

    @asynccontextmanager
    async def relay(
        self,
        name: str,
        upstreams: Sequence[tuple[str, int]],
        *,
        hub_options: HubOptions | None = None,
        options: ClientOptions | None = None,
    ) -> AsyncIterator[Relay]:
        """A relay wired as ``NodeAgent`` wires one (node/app.py): a leaf's heartbeat
        brings an ack upward, its leaves are asked for acks as its upstream asks it and
        when it is asked, its acks carry their floor, and a leaf that subscribes or is
        lost is reported upward at once (a heartbeat)."""
        catalog = Catalog()
        made: list[Node] = []

        def heartbeat_now() -> None:
            if made:
                made[0].client.request_heartbeat()

        async def subscribed(_info: NodeInfo) -> None:
            heartbeat_now()

        hub = CascadeHub(
            catalog,
            authenticate=lambda _n, t: t == TOKEN,
            options=hub_options,
            on_subscribe=subscribed,
            on_heartbeat=lambda _name: made[0].client.request_ack() if made else None,
            prompt_acks=lambda: bool(made) and made[0].client.upstream_wants_prompt_acks,
            on_lost=heartbeat_now,
        )
        async with TarsServer([hub.servant]) as server:
            node = self.node(
                name,
                upstreams,
                catalog=catalog,
                on_applied=hub.replica_applied,
                descendants=hub.descendant_acks,
                options=options,
            )
            made.append(node)
            node.client.set_descendant_floor(hub.descendant_floor)
            node.client.set_on_ack_asked(hub.ask_acks_now)
            try:
                yield Relay(node, hub, server.port)
            finally:
                await self.close_node(node)
                await hub.aclose()

    async def close_node(self, node: Node) -> None:
        await node.client.aclose()
        if node in self.nodes:
            self.nodes.remove(node)

    async def aclose(self) -> None:
        for node in list(self.nodes):
            await node.client.aclose()
        for reg in list(self.registries):
            await reg.aclose()


def same_as(node: Node, reg: Registry) -> bool:
    """The node holds exactly the registry's content and versions, every category
    (content compared under the registry's key: a protocol 2 node keeps another)."""
    mine = reg.core.catalog
    return all(
        node.catalog.version(c) == mine.version(c)
        and (
            node.catalog.digest(c) == mine.digest(c)
            if node.catalog.key_id == mine.key_id
            else mine.hasher.sum(node.catalog.records(c)) == mine.digest(c)
        )
        for c in Category
    )


async def converged(nodes: Sequence[Node], reg: Registry, what: str = "") -> None:
    await eventually(
        lambda: all(same_as(n, reg) for n in nodes), timeout=WAIT, what=what or "converged"
    )


def active_ports(catalog: Catalog, obj: str = OBJ) -> list[int]:
    return [r.port for r in catalog.get_object(obj) if catalog.is_active(r)]


def all_ports(catalog: Catalog, obj: str = OBJ) -> list[int]:
    return [r.port for r in catalog.get_object(obj)]


__all__ = ["State"]
