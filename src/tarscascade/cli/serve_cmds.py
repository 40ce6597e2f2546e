"""Long-running commands: ``registry``, ``agent`` and ``up`` (both in one process).

``tarscascade node --name ... --upstream ...`` (the old spelling of ``agent``) still
runs an agent, with a deprecation note on stderr; ``tarscascade node`` is otherwise the
group that administers node records. The server stack (FastAPI, uvicorn, SQLAlchemy) is
imported only when one of these commands runs.
"""

from __future__ import annotations

import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tarscascade.cli.logs import LogFormat, setup_logging
from tarscascade.cli.registry_client import (
    TOKEN_ENV,
    TokenFileOpt,
    check_node_name,
    read_token,
    warn,
)
from tarscascade.cli.registry_config_cmds import node_app

if TYPE_CHECKING:
    from tarscascade.cli.runtime import NodeProcess, RegistryConfig
    from tarscascade.node.config import NodeConfig

app = typer.Typer(add_completion=False)

DEFAULT_REGISTRY_TARS = "127.0.0.1:17890"
DEFAULT_REGISTRY_HTTP = "127.0.0.1:17880"
DEFAULT_NODE_TARS = "127.0.0.1:19386"
DEFAULT_NODE_HTTP = "127.0.0.1:19380"
WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})

LogLevelOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")]
LogFormatOpt = Annotated[
    LogFormat, typer.Option("--log-format", help="text, or json: one object per line.")
]
ServeTokenOpt = Annotated[
    str,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        help="Token for admin writes and cascade subscriptions. Env: TARSCASCADE_TOKEN.",
        show_default=False,
    ),
]


InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure", help="Serve a TARS port beyond loopback with no credentials and no TLS."
    ),
]
UpPortOpt = Annotated[
    int | None,
    typer.Option(min=0, max=65535, help="Instead of the standard port; 0: any free one."),
]
TlsCertOpt = Annotated[
    Path | None, typer.Option("--tls-cert", help="TLS certificate chain (PEM).", metavar="PATH")
]
TlsKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-key", help="Its private key (PEM; default: in --tls-cert).", metavar="PATH"
    ),
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option("--tls-ca", help="CA bundle that signs the peers (PEM).", metavar="PATH"),
]


def _tls(cert: Path | None, key: Path | None, ca: Path | None, client_auth: bool) -> Any:
    """A ``TlsConfig`` from the --tls-* options (None: plain TCP)."""
    from tarscascade.transport import TlsConfig

    if cert is None and key is None and ca is None:
        if client_auth:
            raise typer.BadParameter("--tls-client-auth needs --tls-cert, --tls-key, --tls-ca")
        return None
    return TlsConfig(cert=cert, key=key or cert, ca=ca, client_auth=client_auth)


def _hostport(value: str, default_port: int, what: str) -> tuple[str, int]:
    from tarscascade.cli.runtime import parse_hostport

    try:
        return parse_hostport(value, default_port)
    except ValueError as exc:
        raise typer.BadParameter(f"{what}: {exc}") from exc


def stop_on_signal() -> Any:
    """An event set by SIGINT or SIGTERM (Ctrl-C stops cleanly, in stages). Installed
    before anything is printed: a signal sent as soon as the addresses appear is caught."""
    import asyncio
    import contextlib
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _run(command: str, main: Coroutine[Any, Any, None]) -> None:
    import asyncio

    from tarscascade.errors import StoreError

    try:
        asyncio.run(main)
    except (OSError, ValueError, StoreError) as exc:
        typer.echo(f"tarscascade {command}: {exc}", err=True)
        raise typer.Exit(1) from exc


# ---------------------------------------------------------------------------- registry


@app.command()
def registry(
    db: str = typer.Option(
        "sqlite:///.tarscascade/registry.db",
        envvar="TARSCASCADE_DB",
        help="Database URL (a password in it is better given through TARSCASCADE_DB: `ps`"
        " shows command lines).",
    ),
    listen: str = typer.Option(DEFAULT_REGISTRY_TARS, help="TARS port (QueryObj, CascadeObj)."),
    http: str = typer.Option(
        DEFAULT_REGISTRY_HTTP, help="Admin HTTP port and dashboard, or 'off'."
    ),
    token: ServeTokenOpt = "",
    token_file: TokenFileOpt = None,
    admin_token: str = typer.Option("", "--admin-token", hidden=True, help="Deprecated: --token."),
    node_auth: bool = typer.Option(
        False,
        "--node-auth",
        help="Per-node credentials (tarscascade node add): each node speaks only for itself;"
        " --token is then the admin token only.",
    ),
    insecure: InsecureOpt = False,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_client_auth: bool = typer.Option(
        False, "--tls-client-auth", help="Mutual TLS: a node's certificate names it."
    ),
    node_timeout: float = typer.Option(
        30.0, help="Seconds without heartbeat before a node is dead."
    ),
    idle_heartbeat: float = typer.Option(
        30.0,
        min=0.0,
        max=3600.0,
        help="Longest heartbeat interval granted to an idle node, which its connection keeps "
        "alive meanwhile (0 = nodes keep their own, 7.5 s).",
    ),
    reload_interval: float = typer.Option(60.0, help="Anti-entropy full reload period (0 = off)."),
    reload_budget: float = typer.Option(
        0.01, help="Share of the time anti-entropy may take: a slow reload spaces the next."
    ),
    tars_db: str = typer.Option(
        "",
        envvar="TARSCASCADE_TARS_DB",
        help="db_tars mode: import routing from this TARS database, mysql://user:pw@host/db_tars"
        " (a SELECT-only grant is enough); --db then keeps tarscascade's own tables.",
    ),
    tars_db_poll: float = typer.Option(1.0, help="db_tars: changed-rows poll period, seconds."),
    tars_db_signature: float = typer.Option(
        3.0, help="db_tars: table-signature period (catches deletes), seconds."
    ),
    tars_db_full: float = typer.Option(300.0, help="db_tars: full load + diff period, seconds."),
    tars_db_guard_ratio: float = typer.Option(
        0.5, help="db_tars: hold a load deleting or deactivating more than this share."
    ),
    tars_db_guard_after: int = typer.Option(
        0, help="db_tars: apply a held load after this many full loads agree (0 = confirm only)."
    ),
    init: bool = typer.Option(
        False,
        "--init",
        help="Allow creating the database: needed on MySQL/PostgreSQL the first time, and "
        "for SQLite where a database was before (it never deletes anything).",
    ),
    confirm_epoch: bool = typer.Option(
        False, "--confirm-epoch", help="Confirm the epoch the registry starts with."
    ),
    max_epoch_loss: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="A new epoch (a detected restore) that loses more than this fraction of the "
        "endpoints served before starts unconfirmed (default 0.5).",
    ),
    log_level: LogLevelOpt = "info",
    log_format: LogFormatOpt = LogFormat.TEXT,
) -> None:
    """Run the registry in the foreground."""
    from tarscascade.cli.runtime import RegistryConfig
    from tarscascade.dbtars import GuardPolicy, ImportOptions
    from tarscascade.registry.core import RegistryOptions

    setup_logging(log_level, log_format)
    if admin_token:
        warn("--admin-token is deprecated: use --token (the same on every command)")
    if not 0 < tars_db_poll <= 60 or tars_db_signature <= 0 or tars_db_full <= 0:
        raise typer.BadParameter("--tars-db-poll/-signature/-full must be positive (poll <= 60)")
    if not 0 < tars_db_guard_ratio <= 1 or tars_db_guard_after < 0:
        raise typer.BadParameter("--tars-db-guard-ratio is in (0, 1]; --tars-db-guard-after >= 0")
    guard = GuardPolicy(
        max_delete_ratio=tars_db_guard_ratio,
        max_deactivate_ratio=tars_db_guard_ratio,
        confirm_after_loads=tars_db_guard_after,
    )
    cfg = RegistryConfig(
        db=db,
        listen=_hostport(listen, 17890, "--listen"),
        http=None if http == "off" else _hostport(http, 17880, "--http"),
        token=read_token(token or admin_token, token_file),
        init=init,
        confirm_epoch=confirm_epoch,
        node_auth=node_auth,
        insecure=insecure,
        tls=_tls(tls_cert, tls_key, tls_ca, tls_client_auth),
        options=RegistryOptions(
            node_timeout=node_timeout,
            idle_heartbeat=idle_heartbeat,
            reload_interval=reload_interval,
            reload_budget=reload_budget,
        ),
        tars_db=tars_db or None,
        import_options=ImportOptions(
            poll_interval=tars_db_poll,
            signature_interval=tars_db_signature,
            full_interval=tars_db_full,
            guard=guard,
        ),
    )
    if max_epoch_loss is not None:
        cfg.options.max_epoch_loss = max_epoch_loss
    _run("registry", _run_registry(cfg))


async def _run_registry(cfg: RegistryConfig) -> None:
    from tarscascade.cli.runtime import RegistryProcess

    stop = stop_on_signal()
    async with RegistryProcess(cfg) as rp:
        host = cfg.listen[0]
        names = "tars.tarsregistry.QueryObj, tars.tarsnode.ServerObj alias"
        typer.echo(f"registry  TARS  {host}:{rp.tars_port}  ({names})")
        if cfg.http is not None:
            typer.echo(f"registry  HTTP  http://{cfg.http[0]}:{rp.http_port}")
        typer.echo(f"locator   {rp.locator()}")
        if rp.importer is not None:
            role = "importing" if rp.importer.leader else "following the importer"
            typer.echo(f"db_tars   {rp.importer.source.url.render_as_string()}  ({role})")
        await stop.wait()
        typer.echo("stopping", err=True)


# ---------------------------------------------------------------------------- agent


def _upstreams(value: str) -> tuple[list[tuple[str, int]], dict[tuple[str, int], str]]:
    """``HOST:PORT`` (a registry) or ``NAME@HOST:PORT`` (a relay named NAME: it gets
    proofs, never this node's secret), comma-separated, in order."""
    out: list[tuple[str, int]] = []
    relays: dict[tuple[str, int], str] = {}
    for v in (v.strip() for v in value.split(",")):
        if not v:
            continue
        name, at, addr = v.rpartition("@")
        hp = _hostport(addr if at else v, 17890, "--upstream")
        if at:
            if not name:
                raise typer.BadParameter(f"--upstream: {v!r} names no relay before '@'")
            relays[hp] = check_node_name(name)
        out.append(hp)
    if not out:
        raise typer.BadParameter("--upstream: at least one HOST:PORT")
    return out, relays


def advertised_address(advertise: str, listen: tuple[str, int]) -> str:
    """``--advertise HOST[:PORT]`` as the address the cascade records ("" = the listen
    address; the agent fills in its bound port when none is given)."""
    if not advertise:
        if listen[0] in WILDCARDS:
            warn(
                f"listening on {listen[0] or '*'} without --advertise: the registry and"
                " downstream nodes will be told that wildcard address; pass --advertise HOST"
            )
        return ""
    host, port = _hostport(advertise, listen[1], "--advertise")
    if host in WILDCARDS:
        raise typer.BadParameter("--advertise: give an address others can reach, not a wildcard")
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


@app.command()
def agent(
    name: str = typer.Option(socket.gethostname(), help="This node's name (its endpoints' node)."),
    upstream: str = typer.Option(
        DEFAULT_REGISTRY_TARS,
        help="Registries (HOST:PORT) or relays (NAME@HOST:PORT: they get proofs, never the"
        " secret), comma-separated, in order.",
    ),
    listen: str = typer.Option(
        DEFAULT_NODE_TARS,
        help="TARS port for this host's servers (ServerObj, QueryObj; and CascadeObj,"
        " ReportObj unless --relay-listen).",
    ),
    advertise: str = typer.Option(
        "",
        metavar="HOST[:PORT]",
        help="Address the registry and downstream nodes should use to reach this node"
        " (default: the --listen address; needed when listening on 0.0.0.0).",
    ),
    http: str = typer.Option(DEFAULT_NODE_HTTP, help="Status page and HTTP API, or 'off'."),
    data_dir: Path | None = typer.Option(None, help="Where the last-known-good replica is kept."),
    token: ServeTokenOpt = "",
    token_file: TokenFileOpt = None,
    keepalive_timeout: float = typer.Option(
        30.0, help="Seconds without keepAlive before inactive."
    ),
    max_stale: float = typer.Option(
        60.0, help="/healthz answers 503 once the replica has been stale this long (s)."
    ),
    log_level: LogLevelOpt = "info",
    log_format: LogFormatOpt = LogFormat.TEXT,
    relay_listen: Annotated[
        str,
        typer.Option(
            "--relay-listen",
            metavar="HOST:PORT",
            help="A separate TARS port for downstream nodes (CascadeObj, ReportObj).",
        ),
    ] = "",
    insecure: InsecureOpt = False,
    serverf_any_peer: Annotated[
        bool,
        typer.Option(
            "--serverf-any-peer", help="Take keepAlive from other hosts too (not only local)."
        ),
    ] = False,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    tls_ca: TlsCaOpt = None,
    http_tls: Annotated[
        bool,
        typer.Option(
            "--http-tls",
            help="Serve the HTTP status API over HTTPS with --tls-cert/--tls-key.",
        ),
    ] = False,
) -> None:
    """Run a node agent in the foreground: a full replica, QueryF for the host, a relay."""
    from tarscascade.node.config import NodeConfig

    check_node_name(name)
    setup_logging(log_level, log_format)
    listen_addr = _hostport(listen, 19386, "--listen")
    relay_addr = _hostport(relay_listen, 19387, "--relay-listen") if relay_listen else None
    upstreams, relays = _upstreams(upstream)
    cfg = NodeConfig(
        name=name,
        upstreams=upstreams,
        relays=relays,
        listen=listen_addr,
        relay_listen=relay_addr,
        advertise=advertised_address(advertise, relay_addr or listen_addr),
        data_dir=data_dir,
        token=read_token(token, token_file) or "",
        keepalive_timeout=keepalive_timeout,
        max_stale=max_stale,
        insecure=insecure,
        serverf_any_peer=serverf_any_peer,
        tls=_tls(tls_cert, tls_key, tls_ca, False),
    )
    http_addr = None if http == "off" else _hostport(http, 19380, "--http")
    https = None
    if http_tls:
        if tls_cert is None:
            raise typer.BadParameter("--http-tls needs --tls-cert (and --tls-key)")
        from tarscascade.transport import TlsConfig

        https = TlsConfig(cert=tls_cert, key=tls_key or tls_cert)
    _run("agent", _run_node(cfg, http_addr, https))


@node_app.callback(invoke_without_command=True)
def node(
    ctx: typer.Context,
    name: str = typer.Option(socket.gethostname(), hidden=True),
    upstream: str = typer.Option(DEFAULT_REGISTRY_TARS, hidden=True),
    listen: str = typer.Option(DEFAULT_NODE_TARS, hidden=True),
    advertise: str = typer.Option("", hidden=True),
    http: str = typer.Option(DEFAULT_NODE_HTTP, hidden=True),
    data_dir: Path | None = typer.Option(None, hidden=True),
    token: str = typer.Option("", envvar=TOKEN_ENV, hidden=True),
    token_file: Path | None = typer.Option(None, hidden=True),
    keepalive_timeout: float = typer.Option(30.0, hidden=True),
    max_stale: float = typer.Option(60.0, hidden=True),
    log_level: str = typer.Option("info", hidden=True),
    log_format: LogFormat = typer.Option(LogFormat.TEXT, hidden=True),
) -> None:
    """Node records at the registry: ls, show, add, rm (run an agent: tarscascade agent)."""
    if ctx.invoked_subcommand is not None:
        return  # `node add` / `node rm` ...: admin commands, handled by the subcommand
    warn("'tarscascade node' to run an agent is deprecated: use 'tarscascade agent'")
    agent(
        name=name,
        upstream=upstream,
        listen=listen,
        advertise=advertise,
        http=http,
        data_dir=data_dir,
        token=token,
        token_file=token_file,
        keepalive_timeout=keepalive_timeout,
        max_stale=max_stale,
        log_level=log_level,
        log_format=log_format,
    )


async def _run_node(cfg: NodeConfig, http_addr: tuple[str, int] | None, https: Any = None) -> None:
    from tarscascade.cli.runtime import NodeProcess

    stop = stop_on_signal()
    async with NodeProcess(cfg, http_addr, http_tls=https) as np:
        _print_node(np, http_addr)
        await stop.wait()
        typer.echo("stopping", err=True)


async def _wait_synced(np: NodeProcess, timeout: float = 30.0) -> None:
    import asyncio

    client = np.agent.client
    if client is None:
        return
    try:
        await asyncio.wait_for(client.synced.wait(), timeout)
    except TimeoutError:
        typer.echo(f"warning: the node has not synced within {timeout:g} s", err=True)


def _print_node(np: NodeProcess, http_addr: tuple[str, int] | None) -> None:
    host = np.config.listen[0]
    ups = ",".join(f"{h}:{p}" for h, p in np.config.upstreams)
    typer.echo(f"node      TARS  {host}:{np.tars_port}  (tars.tarsnode.ServerObj, upstream {ups})")
    relay = np.config.relay_listen
    if relay is not None:
        typer.echo(f"node      RELAY {relay[0]}:{np.agent.relay_port}  (CascadeObj, ReportObj)")
    if http_addr is not None:
        scheme = "https" if np.http_tls is not None else "http"
        typer.echo(f"node      HTTP  {scheme}://{http_addr[0]}:{np.http_port}")


# ---------------------------------------------------------------------------- up


@app.command()
def up(
    directory: Path = typer.Option(Path(".tarscascade"), "--dir", help="State directory."),
    token: ServeTokenOpt = "",
    token_file: TokenFileOpt = None,
    node_name: str = typer.Option(socket.gethostname(), help="The local node's name."),
    init: bool = typer.Option(
        False, "--init", help="Allow creating the database where one was before."
    ),
    confirm_epoch: bool = typer.Option(
        False, "--confirm-epoch", help="Confirm the epoch the registry starts with."
    ),
    log_level: LogLevelOpt = "warning",
    log_format: LogFormatOpt = LogFormat.TEXT,
    registry_port: UpPortOpt = None,
    http_port: UpPortOpt = None,
    node_port: UpPortOpt = None,
    node_http_port: UpPortOpt = None,
) -> None:
    """Run a registry (SQLite under ./.tarscascade/) and one node agent in the foreground
    (the bootstrap/dev mode: loopback only, one shared token if any)."""
    from tarscascade.cli.runtime import DEFAULT_HTTP, DEFAULT_TARS, RegistryConfig
    from tarscascade.cli.runtime import DEFAULT_NODE_HTTP as NODE_HTTP
    from tarscascade.cli.runtime import DEFAULT_NODE_TARS as NODE_TARS

    check_node_name(node_name)
    setup_logging(log_level, log_format)
    secret = read_token(token, token_file)
    reg = RegistryConfig(
        db=f"sqlite:///{directory / 'registry.db'}",
        listen=_on_port(DEFAULT_TARS, registry_port),
        http=_on_port(DEFAULT_HTTP, http_port),
        token=secret,
        init=init,
        confirm_epoch=confirm_epoch,
    )
    node = (_on_port(NODE_TARS, node_port), _on_port(NODE_HTTP, node_http_port))
    _run("up", _run_up(reg, node, directory, node_name, secret or ""))


def _on_port(default: tuple[str, int], port: int | None) -> tuple[str, int]:
    return default if port is None else (default[0], port)


async def _run_up(
    reg: RegistryConfig,
    node: tuple[tuple[str, int], tuple[str, int]],
    directory: Path,
    node_name: str,
    token: str,
) -> None:
    from tarscascade.cli.runtime import NodeProcess, RegistryProcess, client_locator
    from tarscascade.node.config import NodeConfig

    stop = stop_on_signal()
    async with RegistryProcess(reg) as rp:
        cfg = NodeConfig(
            name=node_name,
            upstreams=[("127.0.0.1", rp.tars_port)],
            listen=node[0],
            data_dir=directory / "node",
            token=token,
        )
        async with NodeProcess(cfg, node[1]) as np:
            names = "QueryObj, ServerObj alias, CascadeObj"
            typer.echo(f"registry  TARS  127.0.0.1:{rp.tars_port}  ({names})")
            typer.echo(f"registry  HTTP  http://127.0.0.1:{rp.http_port}  (dashboard, /docs)")
            _print_node(np, node[1])
            typer.echo("")
            typer.echo(f"Open the dashboard: http://127.0.0.1:{rp.http_port}/")
            # a locator line is printed once the node serves data: a fresh client's first
            # call must not meet the "not synced yet" error
            await _wait_synced(np)
            typer.echo("Paste into a TARS client's config (tars.application.client):")
            typer.echo(f"  locator = {client_locator(np, rp.tars_port)}")
            typer.echo("Ctrl-C stops both.")
            await stop.wait()
            typer.echo("stopping", err=True)
