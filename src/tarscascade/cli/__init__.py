"""The command line: the composition root that wires every layer together.

``main`` answers ``tarscascade --version`` and ``tarscascade --help`` before typer and
the command tree are even imported (scripts and shells call them in loops; typer's
import alone is ~70 ms): ``--help`` prints ``root_help.ROOT_HELP``, the text click
renders at 80 columns or more, kept current by a test (``make root-help`` rewrites it).
``app`` (the typer app) is imported on first use.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["app", "main"]

PROG = "tarscascade"
#: click wraps help at min(terminal columns, 80) - 2: at 80 columns or more it is the same
HELP_COLUMNS = 80


def _columns() -> int:
    """The terminal width as shutil.get_terminal_size sees it (without importing shutil:
    that import alone costs more than this whole fast path)."""
    try:
        cols = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        cols = 0
    if cols > 0:
        return cols
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return HELP_COLUMNS  # shutil's fallback


def _cached_help_applies() -> bool:
    return (
        sys.argv[1:] == ["--help"]
        and os.path.basename(sys.argv[0]) == PROG
        and _columns() >= HELP_COLUMNS
    )


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from tarscascade import __version__

        print(f"{PROG} {__version__}")
        return
    if _cached_help_applies():
        from tarscascade.cli.root_help import ROOT_HELP

        sys.stdout.write(ROOT_HELP)
        return
    from tarscascade.cli.app import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":
        from tarscascade.cli.app import app

        return app
    raise AttributeError(name)
