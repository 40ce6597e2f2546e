"""Data files the tests read; everything a test loads lives inside the repository."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
#: QueryF frames captured from the real @tars/rpc client (see vectors/README.md)
VECTORS_DIR = DATA_DIR / "vectors"
