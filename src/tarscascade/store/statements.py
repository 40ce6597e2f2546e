"""SQL statements built once per process and reused.

Building a SQLAlchemy expression and its cache key per row costs ~1 ms (py-spy, issue 17),
more than the database's own work for a one-row write. So every hot statement is built
with bind parameters the first time it is needed and kept here, in the one cache of
the store, under a key that names what it does and on which table.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

S = TypeVar("S")

_CACHE: dict[Hashable, Any] = {}


def cached(key: Hashable, build: Callable[[], S]) -> S:
    """The statement kept under ``key``; ``build`` makes it the first time."""
    stmt: S | None = _CACHE.get(key)
    if stmt is None:
        stmt = _CACHE[key] = build()
    return stmt
