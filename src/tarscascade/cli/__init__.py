"""The command line: the composition root that wires every layer together."""

from tarscascade.cli.app import app, main

__all__ = ["app", "main"]
