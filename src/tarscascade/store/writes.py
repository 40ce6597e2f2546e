"""What each store write does once it holds the revision counter's lock.

Each function gets the locked counter's values (``revision``, ``log_floor``), changes
rows and/or appends to the change log, and advances the counter through ``finish``.
They run inside ``SqlStore``'s write transaction: raising rolls everything back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tarscascade.errors import InvalidRecordError, NotFoundError
from tarscascade.model import Category, ChangeEvent, Op, Record
from tarscascade.store import rows, schema
from tarscascade.store.base import Delete, Put, WriteOp
from tarscascade.store.engine import upsert

_meta = schema.meta
_log = schema.change_log


@dataclass(frozen=True, slots=True)
class Prepared:
    """A write op resolved to its table and row (put) or primary key (delete)."""

    op: WriteOp
    rt: rows.RecordTable
    pk: tuple[Any, ...]
    pk_values: dict[str, Any]
    row: dict[str, Any] | None  # None for a delete


def prepare(op: WriteOp) -> Prepared:
    if isinstance(op, Put):
        rt, row = rows.to_row(op.record)
        return Prepared(op, rt, rows.pk_of(rt, row), {}, row)
    if not isinstance(op, Delete):
        raise InvalidRecordError(f"not a Put or Delete: {op!r}")
    rt, pk_values = rows.identity(op.category, op.key)
    return Prepared(op, rt, tuple(pk_values.values()), pk_values, None)


def finish(conn: sa.Connection, events: list[ChangeEvent], revision: int) -> None:
    """Append the events to the change log and advance the counter to ``revision``."""
    if not events:
        return
    now = time.time()
    conn.execute(
        _log.insert(),
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
    conn.execute(_meta.update().values(revision=revision))


def _flush_puts(
    conn: sa.Connection, pending: dict[rows.RecordTable, dict[tuple[Any, ...], dict[str, Any]]]
) -> None:
    for rt, by_key in pending.items():
        if by_key:
            # One row per key: PostgreSQL refuses to upsert a row twice in one statement.
            upsert(conn, rt.table, list(by_key.values()))
            by_key.clear()


def apply(
    conn: sa.Connection, revision: int, prepared: list[Prepared], missing_ok: bool
) -> list[ChangeEvent]:
    """Puts and deletes in order; puts to one table are batched into one upsert."""
    events: list[ChangeEvent] = []
    pending: dict[rows.RecordTable, dict[tuple[Any, ...], dict[str, Any]]] = {}
    missing: list[str] = []
    for p in prepared:
        if isinstance(p.op, Put):
            assert p.row is not None
            pending.setdefault(p.rt, {})[p.pk] = p.row  # a later put of the key wins
            revision += 1
            events.append(ChangeEvent(revision, p.rt.category, Op.PUT, p.op.key, p.op.record))
            continue
        _flush_puts(conn, pending)  # a delete must see this batch's earlier puts
        gone = conn.execute(p.rt.table.delete().where(rows.key_filter(p.rt, p.pk_values)))
        if gone.rowcount == 0:
            missing.append(p.op.key)
            continue
        revision += 1
        events.append(ChangeEvent(revision, p.rt.category, Op.DELETE, p.op.key, None))
    _flush_puts(conn, pending)
    if missing and not missing_ok:
        raise NotFoundError(missing)  # leaving the transaction rolls it all back
    finish(conn, events, revision)
    return events


def adopt(
    conn: sa.Connection, revision: int, keys: list[tuple[Category, str]]
) -> list[ChangeEvent]:
    """Log each key's current row (or its absence) without touching the rows."""
    events: list[ChangeEvent] = []
    for category, key in keys:
        rt, pk_values = rows.identity(category, key)
        found = conn.execute(
            sa.select(*rt.table.columns).where(rows.key_filter(rt, pk_values))
        ).first()
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
