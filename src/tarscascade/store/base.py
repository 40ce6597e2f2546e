"""What the registry needs from a store, independent of SQL: ops, snapshots, the protocol.

Methods are synchronous and thread-safe; the registry calls them via ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
class Expect:
    """A write's precondition (optimistic concurrency, like Kubernetes ``resourceVersion``).

    The write applies only if its record has not changed after ``revision`` (no change-log
    event for its key above it) and, when ``epoch`` is given, the database is still in that
    lineage. Otherwise ``PreconditionFailedError`` (HTTP 409) and nothing changes.
    """

    revision: int
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class Put:
    """Insert or replace a whole record (identified by its category and key)."""

    record: Record
    expect: Expect | None = None

    @property
    def category(self) -> Category:
        return category_of(self.record)

    @property
    def key(self) -> str:
        return self.record.key


@dataclass(frozen=True, slots=True)
class Insert:
    """Add a record that must not exist yet: ``ConflictError`` if it does (add-if-absent)."""

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
    expect: Expect | None = None

    @classmethod
    def of(cls, record: Record) -> Delete:
        return cls(category_of(record), record.key)


#: ``check(before, after)`` runs inside the write transaction on the row as it is then
#: (``before``, None when absent) and the record the patch makes of it; raising aborts the
#: whole write. It must be pure: a transaction retried after a deadlock runs it again.
PatchCheck = Callable[[Record | None, Record], None]


@dataclass(frozen=True, slots=True)
class Patch:
    """Change some fields of a record as the database holds it when the write runs.

    The row is read under the write lock, so a concurrent write to other fields is never
    undone (the lost update of a whole-record read-modify-write). A patch that changes
    nothing logs no event. When the row is absent: ``create`` is inserted if given, else
    the patch is skipped with ``missing_ok``, else the write fails with ``NotFoundError``.
    """

    category: Category
    key: str
    changes: Mapping[str, Any]
    create: Record | None = None
    check: PatchCheck | None = None
    missing_ok: bool = False
    expect: Expect | None = None


WriteOp = Put | Insert | Delete | Patch


@dataclass(frozen=True, slots=True)
class Commit:
    """What one committed write did."""

    events: list[ChangeEvent]
    #: the store revision after the write: it contains every op's effect (also when
    #: nothing changed and no event was logged)
    revision: int
    #: per op, the record as it is after the write (None: deleted, or absent and skipped)
    records: list[Record | None]


@dataclass(frozen=True, slots=True)
class Served:
    """What a registry served of a lineage: its memory when the database changes under it."""

    epoch: str
    revision: int
    endpoints: int


@dataclass(frozen=True, slots=True)
class Lineage:
    """One epoch's record in ``tc_lineage``: where it came from, whether it is confirmed.

    ``confirmed`` is False only when the epoch is known to replace a lineage that had more
    endpoints than it keeps, beyond the registry's threshold (``losses``): the fleet should
    keep the old data until an operator confirms (``tarscascade store confirm-epoch``).
    """

    epoch: str
    created_at: float
    reason: str
    confirmed: bool
    confirmed_at: float | None = None
    confirmed_by: str = ""
    previous_epoch: str = ""
    previous_revision: int = 0
    #: endpoints the previous lineage had (what the registry served), None when unknown
    previous_endpoints: int | None = None
    #: endpoints this lineage had when it began
    endpoints: int = 0
    #: the revision the epoch began at (every change-log row below it is another lineage's)
    base_revision: int = 0


def loses_too_much(previous: int | None, now: int, max_loss: float) -> bool:
    """True when ``now`` endpoints lose more than ``max_loss`` (a fraction) of ``previous``."""
    if not previous:
        return False  # nothing known, or nothing to lose
    return previous - now > max_loss * previous


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

    def commit(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> Commit: ...

    def changes_since(self, revision: int, limit: int = ...) -> list[ChangeEvent]: ...

    def current_revision(self) -> int: ...

    def adopt(self, ops: Sequence[WriteOp]) -> list[ChangeEvent]: ...

    def bulk_load(self, records: Iterable[Record], *, log_changes: bool = True) -> int: ...

    def trim_change_log(self, keep_revisions: int) -> int: ...

    def lineage(self) -> Lineage: ...

    def digest_key(self) -> bytes: ...

    def resolve_lineage(self, served: Served, reason: str, max_loss: float) -> Lineage: ...

    def new_epoch(self, reason: str, previous: Served | None, max_loss: float) -> Lineage: ...

    def confirm_epoch(self, by: str, epoch: str | None = None) -> Lineage: ...

    def reopen(self) -> None: ...

    def problem(self) -> str | None: ...

    def last_served(self) -> Served | None: ...

    def note_served(self, served: Served) -> None: ...

    def close(self) -> None: ...
