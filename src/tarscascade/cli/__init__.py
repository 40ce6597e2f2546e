"""The command line: the composition root that wires every layer together.

``main`` answers ``tarscascade --version`` before typer and the command tree are even
imported (scripts call it in loops); ``app`` (the typer app) is imported on first use.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from tarscascade import __version__

        print(f"tarscascade {__version__}")
        return
    from tarscascade.cli.app import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":
        from tarscascade.cli.app import app

        return app
    raise AttributeError(name)
