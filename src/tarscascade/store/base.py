"""What the registry needs from a store, independent of SQL: ops, snapshots, the protocol.

Methods are synchronous and thread-safe; the registry calls them via ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Record,
    Setting,
    Version,
    category_of,
)


@dataclass(frozen=True, slots=True)
class Put:
    """Insert or replace a record (identified by its category and key)."""

    record: Record

    @property
    def category(self) -> Category:
        return category_of(self.record)

    @property
    def key(self) -> str:
        return self.record.key


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the record with this key; logged as a tombstone event."""

    category: Category
    key: str

    @classmethod
    def of(cls, record: Record) -> Delete:
        return cls(category_of(record), record.key)


WriteOp = Put | Delete


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every record in the store as of one revision."""

    epoch: str
    revision: int
    endpoints: list[EndpointRecord] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)
    group_rules: list[GroupRule] = field(default_factory=list)
    group_priorities: list[GroupPriority] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)

    @property
    def version(self) -> Version:
        return Version(self.epoch, self.revision)

    def records(self, category: Category) -> list[Record]:
        """The records of one category (``groups`` = rules, then priorities)."""
        if category is Category.OBJECTS:
            return list(self.endpoints)
        if category is Category.NODES:
            return list(self.nodes)
        if category is Category.GROUPS:
            return [*self.group_rules, *self.group_priorities]
        return list(self.settings)

    def __repr__(self) -> str:
        return (
            f"Snapshot({self.epoch}:{self.revision}, endpoints={len(self.endpoints)}, "
            f"nodes={len(self.nodes)}, group_rules={len(self.group_rules)}, "
            f"group_priorities={len(self.group_priorities)}, settings={len(self.settings)})"
        )


class Store(Protocol):
    """The registry's durable state: records plus an ordered change log.

    Revisions: one counter for the whole store; each change event takes the next value,
    so events in one ``write`` have consecutive revisions, and revisions become visible
    in order (a reader that sees revision r sees every revision below it).
    """

    @property
    def epoch(self) -> str: ...

    def load(self) -> Snapshot: ...

    def write(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> list[ChangeEvent]: ...

    def changes_since(self, revision: int, limit: int = ...) -> list[ChangeEvent]: ...

    def current_revision(self) -> int: ...

    def adopt(self, ops: Sequence[WriteOp]) -> list[ChangeEvent]: ...

    def bulk_load(self, records: Iterable[Record], *, log_changes: bool = True) -> int: ...

    def trim_change_log(self, keep_revisions: int) -> int: ...

    def close(self) -> None: ...
