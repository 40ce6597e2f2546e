"""``tarscascade`` console script (typer).

Start-up time is part of the interface (``--version`` and ``--help`` are run by scripts
and shells' completion): the command modules import only typer and the standard
library at module level; the server stack, httpx, rich and the wire layer are imported
by the commands that use them (bench ``cli`` row, tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

import typer

from tarscascade import __version__
from tarscascade.cli import registry_cmds, serve_cmds
from tarscascade.cli.store_cmds import store_app

app = typer.Typer(
    name="tarscascade",
    help="TARS service registry with the IP-list cascade cache.",
    no_args_is_help=True,
    # click's plain help: rich's help formatter alone costs ~90 ms of imports per --help
    rich_markup_mode=None,
    # `tarscascade --install-completion` / `--show-completion` (bash, zsh, fish, PowerShell)
    add_completion=True,
)
app.add_typer(registry_cmds.app)  # endpoint, objects, status, resolve, ...: the admin API client
app.add_typer(serve_cmds.app)  # registry, agent, up: the long-running processes
app.add_typer(store_app, name="store")  # the database itself: backup, restore, epochs


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
