"""What each store write does once it holds the revision counter's lock.

Each function gets the locked counter's values (``revision``, ``log_floor``), changes
rows and/or appends to the change log, and advances the counter through ``finish``.
They run inside ``SqlStore``'s write transaction: raising rolls everything back.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tarscascade.errors import (
    ConflictError,
    InvalidRecordError,
    NotFoundError,
    PreconditionFailedError,
)
from tarscascade.model import Category, ChangeEvent, Op, Record
from tarscascade.store import rows, schema
from tarscascade.store.base import (
    Delete,
    Expect,
    Insert,
    Lineage,
    Patch,
    Put,
    Served,
    WriteOp,
    loses_too_much,
)
from tarscascade.store.engine import upsert
from tarscascade.store.statements import cached, value_columns

_meta = schema.meta
_log = schema.change_log
_lineage = schema.lineage

#: a conditional write compares with at most this many revisions of the change log (a
#: range scan under the write lock); an older ``if_revision`` is refused: read again
MAX_EXPECT_SPAN = 50_000
_MAX_ANCESTORS = 1000  # how far back a lineage's chain of previous epochs is followed


@dataclass(frozen=True, slots=True)
class Prepared:
    """A write op resolved to its table, primary key and (for puts and inserts) row."""

    op: WriteOp
    rt: rows.RecordTable
    pk: tuple[Any, ...]
    pk_values: dict[str, Any]
    row: dict[str, Any] | None  # the row of a Put / Insert / Patch.create, else None


def prepare(op: WriteOp) -> Prepared:
    """Validate an op before any SQL runs (bad input fails the write, changing nothing)."""
    if isinstance(op, Put | Insert):
        rt, row = rows.to_row(op.record)
        pk_values = {c.name: row[c.name] for c in rt.table.primary_key.columns}
        return Prepared(op, rt, rows.pk_of(rt, row), pk_values, row)
    if isinstance(op, Delete):
        rt, pk_values = rows.identity(op.category, op.key)
        return Prepared(op, rt, tuple(pk_values.values()), pk_values, None)
    if isinstance(op, Patch):
        return _prepare_patch(op)
    raise InvalidRecordError(f"not a write op: {op!r}")


def _prepare_patch(op: Patch) -> Prepared:
    rt, pk_values = rows.identity(op.category, op.key)
    fields = {f.name for f in dataclasses.fields(rt.record_type)}
    unknown = sorted(set(op.changes) - fields)
    if unknown:
        raise InvalidRecordError(f"{rt.table.name} has no field {', '.join(unknown)}")
    keyed = sorted(set(op.changes) & set(pk_values))
    if keyed:
        raise InvalidRecordError(f"a patch cannot change the key field {', '.join(keyed)}")
    row = None
    if op.create is not None:
        created, row = rows.to_row(op.create)
        if created is not rt or op.create.key != op.key:
            raise InvalidRecordError(f"the record to create is not {op.key!r}")
    return Prepared(op, rt, tuple(pk_values.values()), pk_values, row)


def finish(conn: sa.Connection, events: list[ChangeEvent], revision: int) -> None:
    """Append the events to the change log and advance the counter to ``revision``."""
    if not events:
        return
    now = time.time()
    conn.execute(
        cached(("insert", _log), _log.insert),
        [
            {
                "revision": e.revision,
                "category": e.category.value,
                "op": e.op.value,
                "key": e.key,
                "payload": rows.encode_payload(e.record) if e.record is not None else None,
                "created_at": now,
            }
            for e in events
        ],
    )
    conn.execute(_advance_counter(), {"new_revision": revision})


def _flush_puts(
    conn: sa.Connection, pending: dict[rows.RecordTable, dict[tuple[Any, ...], dict[str, Any]]]
) -> None:
    for rt, by_key in pending.items():
        if by_key:
            # One row per key: PostgreSQL refuses to upsert a row twice in one statement.
            upsert(conn, rt.table, list(by_key.values()))
            by_key.clear()


@dataclass(slots=True)
class _Lock:
    """The locked counter's values, as the write transaction read them."""

    epoch: str
    revision: int
    floor: int


def _check_expect(
    conn: sa.Connection,
    lock: _Lock,
    expect: Expect,
    category: Category,
    key: str,
    events: list[ChangeEvent],
) -> None:
    """Refuse the write unless ``key`` has no change after ``expect.revision``."""
    if expect.epoch is not None and expect.epoch != lock.epoch:
        raise PreconditionFailedError(
            f"{key}: the database is now in epoch {lock.epoch}, not {expect.epoch} "
            "(restored or replaced): read it again"
        )
    r = expect.revision
    if r < 0 or r > lock.revision:
        raise PreconditionFailedError(
            f"{key}: revision {r} is not one of this database (it is at {lock.revision})"
        )
    if r < lock.floor or lock.revision - r > MAX_EXPECT_SPAN:
        raise PreconditionFailedError(
            f"{key}: revision {r} is too old to compare with (the change log starts after "
            f"{max(lock.floor, lock.revision - MAX_EXPECT_SPAN)}): read it again"
        )
    if any(e.category is category and e.key == key for e in events):
        raise PreconditionFailedError(f"{key} is written twice in one conditional write")
    # A range scan of the log's primary key from r on: short for a recent read.
    changed = conn.execute(
        sa.select(_log.c.revision)
        .where(_log.c.revision > r, _log.c.category == category.value, _log.c.key == key)
        .order_by(_log.c.revision.desc())
        .limit(1)
    ).scalar()
    if changed is not None:
        raise PreconditionFailedError(
            f"{key} changed at revision {changed}, after revision {r}: read it again"
        )


# Statements by primary key (kept in the store's statement cache): keys bind as
# k_<column>, SET values as v_<column> (a bind parameter may not share a column's name in
# an UPDATE).


def _by_key(table: sa.Table) -> sa.ColumnElement[bool]:
    return sa.and_(*(c == sa.bindparam(f"k_{c.name}") for c in table.primary_key.columns))


def _build(table: sa.Table, kind: str) -> Any:
    if kind == "select":
        # FOR UPDATE: also against writers that bypass the counter lock
        return sa.select(*table.columns).where(_by_key(table)).with_for_update()
    if kind == "read":
        return sa.select(*table.columns).where(_by_key(table))
    if kind == "insert":
        return table.insert()
    if kind == "update":
        # every column but the key: a record's row always carries all of them
        values: dict[str, Any] = {n: sa.bindparam(f"v_{n}") for n in value_columns(table)}
        return table.update().where(_by_key(table)).values(values)
    assert kind == "delete", kind
    return table.delete().where(_by_key(table))


def _statement(table: sa.Table, kind: str) -> Any:
    return cached((kind, table), lambda: _build(table, kind))


def lock_counter() -> Any:
    """The counter's row, locked: every write reads it first (one writer at a time)."""
    return cached(
        ("lock", _meta),
        lambda: sa.select(_meta.c.epoch, _meta.c.revision, _meta.c.log_floor).with_for_update(),
    )


def _advance_counter() -> Any:
    return cached(
        ("advance", _meta),
        lambda: _meta.update().values(revision=sa.bindparam("new_revision")),
    )


def _key_params(pk_values: dict[str, Any]) -> dict[str, Any]:
    return {f"k_{name}": value for name, value in pk_values.items()}


def _current(conn: sa.Connection, p: Prepared) -> Record | None:
    found = conn.execute(_statement(p.rt.table, "select"), _key_params(p.pk_values)).first()
    return None if found is None else p.rt.from_row(found)


def _patched(p: Prepared, op: Patch, before: Record) -> Record:
    try:
        after: Record = dataclasses.replace(before, **op.changes)
    except TypeError as exc:
        raise InvalidRecordError(f"cannot patch {op.key!r}: {exc}") from exc
    return after


def apply(
    conn: sa.Connection,
    lock: _Lock,
    prepared: list[Prepared],
    missing_ok: bool,
) -> tuple[list[ChangeEvent], list[Record | None]]:
    """Every op in order; plain puts to one table are batched into one upsert.

    Ops that read the row (patches, inserts, preconditions) first flush the batch, so
    they see the earlier ops of the same write.
    """
    revision = lock.revision
    events: list[ChangeEvent] = []
    results: list[Record | None] = []
    pending: dict[rows.RecordTable, dict[tuple[Any, ...], dict[str, Any]]] = {}
    missing: list[str] = []

    def event(p: Prepared, op: Op, record: Record | None) -> None:
        nonlocal revision
        revision += 1
        events.append(ChangeEvent(revision, p.rt.category, op, p.op.key, record))

    for p in prepared:
        op = p.op
        expect = getattr(op, "expect", None)
        if isinstance(op, Put) and expect is None:
            assert p.row is not None
            pending.setdefault(p.rt, {})[p.pk] = p.row  # a later put of the key wins
            event(p, Op.PUT, op.record)
            results.append(op.record)
            continue
        _flush_puts(conn, pending)
        if expect is not None:
            _check_expect(conn, lock, expect, p.rt.category, op.key, events)
        if isinstance(op, Put):
            assert p.row is not None
            upsert(conn, p.rt.table, [p.row])
            event(p, Op.PUT, op.record)
            results.append(op.record)
        elif isinstance(op, Insert):
            if _current(conn, p) is not None:
                raise ConflictError(f"{p.rt.category.value} {op.key!r} exists")
            conn.execute(_statement(p.rt.table, "insert"), p.row or {})
            event(p, Op.PUT, op.record)
            results.append(op.record)
        elif isinstance(op, Delete):
            gone = conn.execute(_statement(p.rt.table, "delete"), _key_params(p.pk_values))
            if gone.rowcount == 0:
                missing.append(op.key)
            else:
                event(p, Op.DELETE, None)
            results.append(None)
        else:
            assert isinstance(op, Patch)
            before = _current(conn, p)
            if before is None:
                if op.create is None:
                    if not (op.missing_ok or missing_ok):
                        missing.append(op.key)
                    results.append(None)
                    continue
                if op.check is not None:
                    op.check(None, op.create)
                conn.execute(_statement(p.rt.table, "insert"), p.row or {})
                event(p, Op.PUT, op.create)
                results.append(op.create)
                continue
            after = _patched(p, op, before)
            if op.check is not None:
                op.check(before, after)
            if after == before:
                results.append(before)  # nothing to change: no event, no push
                continue
            _, row = rows.to_row(after)  # checked against the column limits again
            params = _key_params(p.pk_values)
            params.update((f"v_{n}", row[n]) for n in value_columns(p.rt.table))
            conn.execute(_statement(p.rt.table, "update"), params)
            event(p, Op.PUT, after)
            results.append(after)
    _flush_puts(conn, pending)
    if missing and not missing_ok:
        raise NotFoundError(missing)  # leaving the transaction rolls it all back
    finish(conn, events, revision)
    return events, results


def adopt(
    conn: sa.Connection, revision: int, keys: list[tuple[Category, str]]
) -> list[ChangeEvent]:
    """Log each key's current row (or its absence) without touching the rows."""
    events: list[ChangeEvent] = []
    for category, key in keys:
        rt, pk_values = rows.identity(category, key)
        found = conn.execute(_statement(rt.table, "read"), _key_params(pk_values)).first()
        revision += 1
        if found is None:
            events.append(ChangeEvent(revision, category, Op.DELETE, key, None))
        else:
            events.append(ChangeEvent(revision, category, Op.PUT, key, rt.from_row(found)))
    finish(conn, events, revision)
    return events


def bulk_load(
    conn: sa.Connection,
    revision: int,
    floor: int,
    records: Iterable[Record],
    log_changes: bool,
    batch_size: int,
) -> int:
    """Plain batched inserts of new records, optionally logged one revision each."""
    batches: dict[rows.RecordTable, list[dict[str, Any]]] = {}
    log_rows: list[dict[str, Any]] = []
    now = time.time()
    count = 0
    for record in records:
        rt, row = rows.to_row(record)
        batch = batches.setdefault(rt, [])
        batch.append(row)
        if len(batch) >= batch_size:
            conn.execute(rt.table.insert(), batch)
            batch.clear()
        count += 1
        if log_changes:
            revision += 1
            log_rows.append(
                {
                    "revision": revision,
                    "category": rt.category.value,
                    "op": Op.PUT.value,
                    "key": record.key,
                    "payload": rows.encode_payload(record),
                    "created_at": now,
                }
            )
            if len(log_rows) >= batch_size:
                conn.execute(_log.insert(), log_rows)
                log_rows.clear()
    for rt, batch in batches.items():
        if batch:
            conn.execute(rt.table.insert(), batch)
    if log_rows:
        conn.execute(_log.insert(), log_rows)
    if count and not log_changes:
        revision += 1  # one revision for the whole load, and no history below it
        floor = revision
    conn.execute(_meta.update().values(revision=revision, log_floor=floor))
    return revision


def trim(conn: sa.Connection, revision: int, floor: int, keep_revisions: int) -> int:
    """Raise the log floor and delete the log rows at or below it, in one transaction."""
    new_floor = max(floor, revision - keep_revisions)
    deleted = conn.execute(_log.delete().where(_log.c.revision <= new_floor)).rowcount
    conn.execute(_meta.update().values(log_floor=new_floor))
    return int(deleted)


# --- lineage ------------------------------------------------------------------------


def read_lineage(conn: sa.Connection, epoch: str) -> Lineage | None:
    found = conn.execute(sa.select(*_lineage.columns).where(_lineage.c.epoch == epoch)).first()
    if found is None:
        return None
    m = found._mapping
    prev = m["previous_endpoints"]
    return Lineage(
        epoch=m["epoch"],
        created_at=float(m["created_at"]),
        reason=m["reason"],
        confirmed=bool(m["confirmed"]),
        confirmed_at=None if m["confirmed_at"] is None else float(m["confirmed_at"]),
        confirmed_by=m["confirmed_by"],
        previous_epoch=m["previous_epoch"],
        previous_revision=int(m["previous_revision"]),
        previous_endpoints=None if prev is None else int(prev),
        endpoints=int(m["endpoints"]),
        base_revision=int(m["base_revision"]),
    )


def descends_from(conn: sa.Connection, epoch: str, ancestor: str) -> bool:
    """True when ``ancestor`` is on ``epoch``'s chain of previous epochs."""
    seen: set[str] = set()
    current = epoch
    while current and current not in seen and len(seen) < _MAX_ANCESTORS:
        seen.add(current)
        found = read_lineage(conn, current)
        if found is None:
            return False
        if found.previous_epoch == ancestor:
            return True
        current = found.previous_epoch
    return False


def new_epoch(
    conn: sa.Connection,
    revision: int,
    reason: str,
    previous: Served | None,
    max_loss: float,
    current_epoch: str,
) -> Lineage:
    """Give the database a fresh epoch; the caller holds the counter's lock.

    The counter jumps above anything the previous lineage served, and the log floor with
    it: no revision is ever reused across lineages, and a tailer behind it reloads.
    """
    base = max(revision, previous.revision if previous is not None else 0) + 1
    count = int(conn.execute(sa.select(sa.func.count()).select_from(schema.endpoints)).scalar_one())
    prev_endpoints = previous.endpoints if previous is not None else None
    lineage = Lineage(
        epoch=uuid.uuid4().hex,
        created_at=time.time(),
        reason=reason[: schema.NAME_LEN],
        confirmed=not loses_too_much(prev_endpoints, count, max_loss),
        previous_epoch=previous.epoch if previous is not None else current_epoch,
        previous_revision=previous.revision if previous is not None else revision,
        previous_endpoints=prev_endpoints,
        endpoints=count,
        base_revision=base,
    )
    conn.execute(_meta.update().values(epoch=lineage.epoch, revision=base, log_floor=base))
    conn.execute(_lineage.insert().values(**dataclasses.asdict(lineage)))
    return lineage


def judge(
    conn: sa.Connection, found: Lineage, served: Served, reason: str, max_loss: float
) -> Lineage:
    """An epoch taken over from elsewhere: held (unconfirmed) if it loses too much."""
    count = int(conn.execute(sa.select(sa.func.count()).select_from(schema.endpoints)).scalar_one())
    if not found.confirmed or not loses_too_much(served.endpoints, count, max_loss):
        return found
    held = dataclasses.replace(
        found,
        reason=f"{found.reason}; then {reason}"[: schema.NAME_LEN],
        confirmed=False,
        confirmed_at=None,
        previous_epoch=served.epoch,
        previous_revision=served.revision,
        previous_endpoints=served.endpoints,
    )
    values = dataclasses.asdict(held)
    del values["epoch"]
    conn.execute(_lineage.update().where(_lineage.c.epoch == found.epoch).values(**values))
    return held


def confirm(conn: sa.Connection, epoch: str, by: str) -> Lineage:
    found = read_lineage(conn, epoch)
    if found is None:
        raise NotFoundError([f"lineage record of epoch {epoch}"])
    if found.confirmed:
        return found
    now = time.time()
    conn.execute(
        _lineage.update()
        .where(_lineage.c.epoch == epoch)
        .values(confirmed=True, confirmed_at=now, confirmed_by=by[: schema.NAME_LEN])
    )
    return dataclasses.replace(found, confirmed=True, confirmed_at=now, confirmed_by=by)
