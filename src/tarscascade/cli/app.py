"""``tarscascade`` console script (typer)."""

from __future__ import annotations

import typer

from tarscascade import __version__
from tarscascade.cli import registry_cmds, serve_cmds

app = typer.Typer(
    name="tarscascade",
    help="TARS service registry with the IP-list cascade cache.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(registry_cmds.app)  # endpoint, objects, status, resolve, ...: the admin API client
app.add_typer(serve_cmds.app)  # registry, node, up: the long-running processes


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tarscascade {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """TARS service registry with the IP-list cascade cache."""


def main() -> None:
    app()
