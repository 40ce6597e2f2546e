"""SQL statements built once per process and reused.

Building a SQLAlchemy expression and its cache key per row costs ~1 ms (py-spy, issue 17),
more than the database's own work for a one-row write. So every hot statement is built
with bind parameters the first time it is needed and kept here, in the one cache of
the store, under a key that names what it does and on which table.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import sqlalchemy as sa

S = TypeVar("S")

_CACHE: dict[Hashable, Any] = {}


def cached(key: Hashable, build: Callable[[], S]) -> S:
    """The statement kept under ``key``; ``build`` makes it the first time."""
    stmt: S | None = _CACHE.get(key)
    if stmt is None:
        stmt = _CACHE[key] = build()
    return stmt


def value_columns(table: sa.Table) -> tuple[str, ...]:
    """The names of ``table``'s columns outside its primary key (what an UPDATE sets),
    worked out once per table: an update binds them for every row."""
    return cached(
        ("value_columns", table), lambda: tuple(c.name for c in table.columns if not c.primary_key)
    )
