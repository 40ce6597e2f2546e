"""Long-running commands: ``registry``, ``node`` and ``up`` (both in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path

import typer

from tarscascade.cli.registry_config_cmds import node_app
from tarscascade.cli.runtime import (
    DEFAULT_HTTP,
    DEFAULT_NODE_HTTP,
    DEFAULT_NODE_TARS,
    DEFAULT_TARS,
    NodeProcess,
    RegistryConfig,
    RegistryProcess,
    client_locator,
    parse_hostport,
)
from tarscascade.dbtars import GuardPolicy, ImportOptions
from tarscascade.errors import StoreError
from tarscascade.node.app import NodeConfig
from tarscascade.registry.core import RegistryOptions

app = typer.Typer(add_completion=False)


def _hostport(value: str, default_port: int, what: str) -> tuple[str, int]:
    try:
        return parse_hostport(value, default_port)
    except ValueError as exc:
        raise typer.BadParameter(f"{what}: {exc}") from exc


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM (Ctrl-C stops cleanly, in stages)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def registry(
    db: str = typer.Option("sqlite:///.tarscascade/registry.db", help="Database URL."),
    listen: str = typer.Option("127.0.0.1:17890", help="TARS port (QueryObj, CascadeObj)."),
    http: str = typer.Option("127.0.0.1:17880", help="Admin HTTP port, or 'off'."),
    admin_token: str = typer.Option(
        "", envvar="TARSCASCADE_TOKEN", help="Token for admin writes and node subscriptions."
    ),
    node_timeout: float = typer.Option(
        30.0, help="Seconds without heartbeat before a node is dead."
    ),
    reload_interval: float = typer.Option(60.0, help="Anti-entropy full reload period (0 = off)."),
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
    log_level: str = typer.Option("info", help="debug, info, warning, error."),
) -> None:
    """Run the registry in the foreground."""
    setup_logging(log_level)
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
        token=admin_token or None,
        options=RegistryOptions(node_timeout=node_timeout, reload_interval=reload_interval),
        tars_db=tars_db or None,
        import_options=ImportOptions(
            poll_interval=tars_db_poll,
            signature_interval=tars_db_signature,
            full_interval=tars_db_full,
            guard=guard,
        ),
    )
    try:
        asyncio.run(_run_registry(cfg))
    except (OSError, ValueError, StoreError) as exc:
        typer.echo(f"tarscascade registry: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _run_registry(cfg: RegistryConfig) -> None:
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
        await wait_for_signal()
        typer.echo("stopping", err=True)


def _upstreams(value: str) -> list[tuple[str, int]]:
    out = [_hostport(v, 17890, "--upstream") for v in value.split(",") if v.strip()]
    if not out:
        raise typer.BadParameter("--upstream: at least one HOST:PORT")
    return out


@node_app.callback(invoke_without_command=True)
def node(
    ctx: typer.Context,
    name: str = typer.Option(socket.gethostname(), help="This node's name (its endpoints' node)."),
    upstream: str = typer.Option(
        "127.0.0.1:17890", help="Registry or relay node(s), HOST:PORT[,HOST:PORT...], in order."
    ),
    listen: str = typer.Option(
        "127.0.0.1:19386", help="TARS port (ServerObj, QueryObj, CascadeObj)."
    ),
    http: str = typer.Option("127.0.0.1:19380", help="Status/lookup HTTP port, or 'off'."),
    data_dir: Path | None = typer.Option(None, help="Where the last-known-good replica is kept."),
    token: str = typer.Option("", envvar="TARSCASCADE_TOKEN", help="Cascade credentials."),
    keepalive_timeout: float = typer.Option(
        30.0, help="Seconds without keepAlive before inactive."
    ),
    max_stale: float = typer.Option(
        60.0, help="/healthz answers 503 once the replica has been stale this long (s)."
    ),
    log_level: str = typer.Option("info"),
) -> None:
    """Run a node agent in the foreground (or: node add NAME / node rm NAME)."""
    if ctx.invoked_subcommand is not None:
        return  # `node add` / `node rm`: admin commands, handled by the subcommand
    setup_logging(log_level)
    cfg = NodeConfig(
        name=name,
        upstreams=_upstreams(upstream),
        listen=_hostport(listen, 19386, "--listen"),
        data_dir=data_dir,
        token=token,
        keepalive_timeout=keepalive_timeout,
        max_stale=max_stale,
    )
    http_addr = None if http == "off" else _hostport(http, 19380, "--http")
    try:
        asyncio.run(_run_node(cfg, http_addr))
    except (OSError, ValueError) as exc:
        typer.echo(f"tarscascade node: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _run_node(cfg: NodeConfig, http_addr: tuple[str, int] | None) -> None:
    async with NodeProcess(cfg, http_addr) as np:
        _print_node(np, http_addr)
        await wait_for_signal()
        typer.echo("stopping", err=True)


async def _wait_synced(np: NodeProcess, timeout: float = 30.0) -> None:
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
    if http_addr is not None:
        typer.echo(f"node      HTTP  http://{http_addr[0]}:{np.http_port}")


@app.command()
def up(
    directory: Path = typer.Option(Path(".tarscascade"), "--dir", help="State directory."),
    token: str = typer.Option("", envvar="TARSCASCADE_TOKEN", help="Admin and cascade token."),
    node_name: str = typer.Option(socket.gethostname(), help="The local node's name."),
    log_level: str = typer.Option("warning"),
) -> None:
    """Run a registry (SQLite under ./.tarscascade/) and one node agent in the foreground."""
    setup_logging(log_level)
    reg = RegistryConfig(
        db=f"sqlite:///{directory / 'registry.db'}",
        listen=DEFAULT_TARS,
        http=DEFAULT_HTTP,
        token=token or None,
    )
    try:
        asyncio.run(_run_up(reg, directory, node_name, token))
    except (OSError, ValueError) as exc:
        typer.echo(f"tarscascade up: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _run_up(reg: RegistryConfig, directory: Path, node_name: str, token: str) -> None:
    async with RegistryProcess(reg) as rp:
        cfg = NodeConfig(
            name=node_name,
            upstreams=[("127.0.0.1", rp.tars_port)],
            listen=DEFAULT_NODE_TARS,
            data_dir=directory / "node",
            token=token,
        )
        async with NodeProcess(cfg, DEFAULT_NODE_HTTP) as np:
            names = "QueryObj, ServerObj alias, CascadeObj"
            typer.echo(f"registry  TARS  127.0.0.1:{rp.tars_port}  ({names})")
            typer.echo(f"registry  HTTP  http://127.0.0.1:{rp.http_port}  (admin API, /docs)")
            _print_node(np, DEFAULT_NODE_HTTP)
            typer.echo("")
            # a locator line is printed once the node serves data: a fresh client's first
            # call must not meet the "not synced yet" error
            await _wait_synced(np)
            typer.echo("Paste into a TARS client's config (tars.application.client):")
            typer.echo(f"  locator = {client_locator(np, rp.tars_port)}")
            typer.echo("Ctrl-C stops both.")
            await wait_for_signal()
            typer.echo("stopping", err=True)
