"""Long-running commands: ``registry`` (and, with the node agent, ``node`` and ``up``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import typer

from tarscascade.cli.runtime import RegistryConfig, RegistryProcess, parse_hostport
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
    log_level: str = typer.Option("info", help="debug, info, warning, error."),
) -> None:
    """Run the registry in the foreground."""
    setup_logging(log_level)
    cfg = RegistryConfig(
        db=db,
        listen=_hostport(listen, 17890, "--listen"),
        http=None if http == "off" else _hostport(http, 17880, "--http"),
        token=admin_token or None,
        options=RegistryOptions(node_timeout=node_timeout, reload_interval=reload_interval),
    )
    try:
        asyncio.run(_run_registry(cfg))
    except (OSError, ValueError) as exc:
        typer.echo(f"tarscascade registry: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _run_registry(cfg: RegistryConfig) -> None:
    async with RegistryProcess(cfg) as rp:
        host = cfg.listen[0]
        typer.echo(f"registry  TARS  {host}:{rp.tars_port}  (tars.tarsregistry.QueryObj)")
        if cfg.http is not None:
            typer.echo(f"registry  HTTP  http://{cfg.http[0]}:{rp.http_port}")
        typer.echo(f"locator   {rp.locator()}")
        await wait_for_signal()
        typer.echo("stopping", err=True)
