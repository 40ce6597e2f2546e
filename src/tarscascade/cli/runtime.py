"""Composition: the registry process (store + core + TARS server + admin HTTP).

Used by ``tarscascade registry`` and ``tarscascade up``, and by tests that need a real
registry on loopback ports. ``async with RegistryProcess(...)`` returns once every part
listens; leaving the block stops them in stages (HTTP, TARS, loops, store).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tarscascade.admin.metrics import RegistryMetrics
from tarscascade.admin.node_api import create_node_app
from tarscascade.admin.registry_api import check_listen_safety, create_registry_app
from tarscascade.auth.listen import check_tars_listen_safety
from tarscascade.cascade import CascadeHub, HubOptions
from tarscascade.dbtars import OWNER, DbTarsImporter, DbTarsSource, ImportOptions, Lease
from tarscascade.node.app import NodeAgent
from tarscascade.node.config import NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.feed import attach_cascade
from tarscascade.registry.fleet_log import FleetWatcher
from tarscascade.registry.node_auth import NodeAuthority
from tarscascade.registry.servants import QueryServant, ReportServant, ServerObjAlias
from tarscascade.store import CreatePolicy, SqlStore
from tarscascade.transport import ServerOptions, TarsServer, TlsConfig
from tarscascade.wire.hosts import is_loopback, split_host_port
from tarscascade.wire.idl.queryf import DEFAULT_REGISTRY_PORT, QUERY_SERVANT
from tarscascade.wire.idl.serverf import DEFAULT_NODE_PORT, NODE_SERVANT

log = logging.getLogger(__name__)

DEFAULT_TARS = ("127.0.0.1", DEFAULT_REGISTRY_PORT)
DEFAULT_HTTP = ("127.0.0.1", 17880)


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``HOST`` or ``[v6]:PORT``."""
    host, port = split_host_port(value)
    if not port:
        return host or "127.0.0.1", default_port
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad port in {value!r}")
    return host or "127.0.0.1", int(port)


@dataclass(slots=True)
class RegistryConfig:
    db: str = "sqlite:///.tarscascade/registry.db"
    listen: tuple[str, int] = DEFAULT_TARS
    http: tuple[str, int] | None = DEFAULT_HTTP
    #: the admin token (HTTP writes); without ``node_auth`` also every node's shared token
    #: (the bootstrap/dev mode)
    token: str | None = None
    #: allow creating the database where one existed (SQLite with a lineage marker) or on
    #: a server; a SQLite path where no database ever was is created without it
    init: bool = False
    #: confirm the epoch the registry starts with (the mass-change guard's operator "yes")
    confirm_epoch: bool = False
    #: per-node credentials (``tarscascade node add``): each node speaks only for itself
    node_auth: bool = False
    #: serve the TARS port beyond loopback with no credentials and no TLS anyway
    insecure: bool = False
    #: TLS on the TARS port and the admin HTTP API (``client_auth``: mutual TLS, the
    #: client certificate names the node)
    tls: TlsConfig | None = None
    options: RegistryOptions = field(default_factory=RegistryOptions)
    server_options: ServerOptions = field(default_factory=ServerOptions)
    hub_options: HubOptions = field(default_factory=HubOptions)
    #: db_tars mode: import routing from this TARS database (SELECT only); ``db`` then
    #: holds tarscascade's own tables (the change log, epochs) and nothing else writes
    #: endpoints or groups
    tars_db: str | None = None
    import_options: ImportOptions = field(default_factory=ImportOptions)

    def check_listen_safety(self) -> None:
        """Refuse (UnsafeListenError) what would open writes to the network; warn about
        the shared-token mode beyond loopback."""
        if self.http is not None:
            check_listen_safety(self.http[0], self.token)
        host = self.listen[0]
        check_tars_listen_safety(
            host,
            "the registry's TARS port",
            credentials=self.node_auth or bool(self.token),
            tls=self.tls is not None,
            insecure=self.insecure,
        )
        if not is_loopback(host) and not self.node_auth and self.tls is None:
            log.warning(
                "the registry's TARS port %s is open beyond loopback in the %s mode: %s",
                host,
                "shared-token (bootstrap/dev)" if self.token else "no-credentials",
                "any holder of the token may speak for any node; issue per-node "
                "credentials (tarscascade node add) and start with --node-auth",
            )


class RegistryProcess:
    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self.store: SqlStore | None = None
        self.core: RegistryCore | None = None
        self.tars: TarsServer | None = None
        self.hub: CascadeHub | None = None
        self.importer: DbTarsImporter | None = None
        self._source: DbTarsSource | None = None
        self.http: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.admin: RegistryAdmin | None = None
        self.tars_port = 0
        self.http_port = 0
        self.authority: NodeAuthority | None = None

    def _authority(self, store: SqlStore) -> NodeAuthority:
        cfg = self.config
        if cfg.node_auth:
            return NodeAuthority("node", credentials=store.credentials)
        if cfg.token:
            return NodeAuthority("shared", shared_token=cfg.token)
        return NodeAuthority("open")

    async def start(self) -> None:
        cfg = self.config
        cfg.check_listen_safety()
        try:
            create: CreatePolicy = "always" if cfg.init else "fresh"
            store = self.store = await asyncio.to_thread(SqlStore.open, cfg.db, create=create)
            options = cfg.options
            if cfg.tars_db is not None:
                # tarsnode's liveness reaches routing through present_state, as in TARS;
                # a cascade agent's heartbeat is not a routing fact here
                options = dataclasses.replace(options, node_timeout=0)
            core = self.core = RegistryCore(store, options)
            await core.start()
            if cfg.confirm_epoch and not core.epoch_confirmed:
                await core.confirm_epoch("the registry's --confirm-epoch start flag")
            owner = None
            if cfg.tars_db is not None:
                owner = OWNER
                await self._start_importer(cfg.tars_db, core, store.epoch)
            # The loaded catalog lives as long as the process: move it out of the collector's
            # reach, or every full collection rescans it and stalls QueryF (~100 ms per
            # 100k endpoints; bench listing). The node agent does the same after a snapshot.
            gc.freeze()
            authority = self.authority = self._authority(self.store)
            await authority.load()
            self._tasks.append(asyncio.create_task(authority.run(), name="node-credentials"))
            self.hub = await attach_cascade(core, options=cfg.hub_options, authority=authority)
            report = ReportServant(
                core, owner=owner, authority=authority, allow_loopback=is_loopback(cfg.listen[0])
            )
            self.report = report
            server_opts = cfg.server_options
            if cfg.tls is not None:
                server_opts = dataclasses.replace(server_opts, ssl=cfg.tls.server_context())
            self.tars = TarsServer(
                [
                    QueryServant(core.answerer),
                    ServerObjAlias(core.answerer),
                    self.hub.servant,
                    report,
                ],
                cfg.listen[0],
                cfg.listen[1],
                server_opts,
            )
            await self.tars.start()
            self.tars_port = self.tars.port
            self._tasks.append(asyncio.create_task(core.run(), name="registry-loops"))
            if self.importer is not None:
                self._tasks.append(asyncio.create_task(self.importer.run(), name="dbtars-import"))
            watcher = FleetWatcher(self.hub, lambda: core.epoch)
            self._tasks.append(asyncio.create_task(watcher.run(), name="fleet-log"))
            if cfg.http is not None:
                tars = self.tars
                importer = self.importer
                metrics = RegistryMetrics(
                    core,
                    tars_requests=lambda: tars.stats["requests"],
                    extra=importer.metrics if importer is not None else None,
                    refusals=lambda: {
                        "subscribe_refused": authority.stats.subscribe_refused,
                        "reports_refused": authority.stats.reports_refused,
                        "descendants_refused": authority.stats.descendants_refused,
                        "announcements_refused": report.announcements_refused,
                    },
                )
                admin = self.admin = RegistryAdmin(core, hub=self.hub, owner=owner)
                app = create_registry_app(
                    admin,
                    token=cfg.token,
                    metrics=metrics,
                    importer=importer,
                    authority=authority,
                )
                self.http, task, self.http_port = await serve_http(
                    app, cfg.http[0], cfg.http[1], "registry-http", tls=cfg.tls
                )
                self._http_task = task
        except BaseException:
            await self.aclose()
            raise

    async def _start_importer(self, url: str, core: RegistryCore, epoch: str) -> None:
        """Connect to db_tars, check the grant, and import once if this process leads."""
        source = self._source = DbTarsSource(url)
        await asyncio.to_thread(source.check)
        # One importer per store (its epoch names it); the others follow its change log.
        lease = Lease(source, f"tarscascade.importer.{epoch}")
        self.importer = DbTarsImporter(core, source, lease, self.config.import_options)
        await self.importer.tick()  # serve the import from the first answer on

    async def aclose(self) -> None:
        if self.http is not None and self._http_task is not None:
            await stop_http(self.http, self._http_task)
            self.http = None
        if self.admin is not None:
            await self.admin.aclose()
            self.admin = None
        if self.tars is not None:
            await self.tars.aclose()
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self.importer is not None:
            with contextlib.suppress(Exception):
                await self.importer.aclose()
            self.importer = None
        if self._source is not None:
            await asyncio.to_thread(self._source.close)
            self._source = None
        if self.hub is not None:
            await self.hub.aclose()
        if self.core is not None:
            await self.core.aclose()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None

    async def __aenter__(self) -> RegistryProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def locator(self) -> str:
        host = self.config.listen[0]
        return f"{QUERY_SERVANT}@tcp -h {host} -p {self.tars_port}"


DEFAULT_NODE_TARS = ("127.0.0.1", DEFAULT_NODE_PORT)
DEFAULT_NODE_HTTP = ("127.0.0.1", 19380)


async def serve_http(
    app: Any, host: str, port: int, name: str, *, tls: TlsConfig | None = None
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve an ASGI app with uvicorn in this loop; returns once it listens (bounded).
    With ``tls``: HTTPS (and client certificates required when ``tls.client_auth``)."""
    kw: dict[str, Any] = {}
    if tls is not None:
        kw = {
            "ssl_certfile": str(tls.cert) if tls.cert else None,
            "ssl_keyfile": str(tls.key) if tls.key else None,
            "ssl_ca_certs": str(tls.ca) if tls.ca else None,
            "ssl_cert_reqs": ssl.CERT_REQUIRED if tls.client_auth else ssl.CERT_NONE,
        }
    server = uvicorn.Server(
        # no access log: one line per request is never an operator's INFO (cli/logs.py)
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            **kw,
        )
    )
    task = asyncio.create_task(server.serve(), name=name)
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                await task  # surfaces the bind error
                raise OSError(f"{name} did not start on {host}:{port}")
            await asyncio.sleep(0.01)
    return server, task, int(server.servers[0].sockets[0].getsockname()[1])


async def stop_http(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class NodeProcess:
    """A node agent plus its HTTP status/lookup API."""

    def __init__(
        self,
        config: NodeConfig,
        http: tuple[str, int] | None = DEFAULT_NODE_HTTP,
        *,
        http_tls: TlsConfig | None = None,
    ) -> None:
        self.config = config
        self.http_addr = http
        #: serve the HTTP status/lookup API over HTTPS with this certificate
        self.http_tls = http_tls
        self.agent = NodeAgent(config)
        self._http: tuple[uvicorn.Server, asyncio.Task[None]] | None = None
        self.http_port = 0

    @property
    def tars_port(self) -> int:
        return self.agent.port

    async def start(self) -> None:
        try:
            await self.agent.start()
            if self.http_addr is not None:
                server, task, self.http_port = await serve_http(
                    create_node_app(self.agent), *self.http_addr, "node-http", tls=self.http_tls
                )
                self._http = (server, task)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._http is not None:
            await stop_http(*self._http)
            self._http = None
        await self.agent.aclose()

    async def __aenter__(self) -> NodeProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def locator(self) -> str:
        return f"{NODE_SERVANT}@tcp -h {self.config.listen[0]} -p {self.tars_port}"


def client_locator(node: NodeProcess, registry_port: int, registry_host: str = "127.0.0.1") -> str:
    """The locator ``tarscascade up`` prints: the node first, the registry as a second
    replica of the same object. Every TARS client picks among a locator's endpoints as
    replicas of one object, so both answer QueryF as ``tars.tarsnode.ServerObj`` (the
    registry through its alias) with the same catalog code."""
    return f"{node.locator()}:tcp -h {registry_host} -p {registry_port}"
