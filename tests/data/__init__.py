"""Data files the tests read; everything a test loads lives inside the repository."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
#: QueryF frames captured from the real @tars/rpc client (see vectors/README.md)
VECTORS_DIR = DATA_DIR / "vectors"


def vector_bytes(name: str) -> bytes:
    """A ``*.hex`` vector file (one line of hex) as bytes."""
    return bytes.fromhex((VECTORS_DIR / name).read_text().strip())
