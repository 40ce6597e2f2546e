"""``SqlStore``: records and the change log in SQLite, MySQL/MariaDB or PostgreSQL.

Revisions. ``tc_meta.revision`` is the one counter. Every change event takes the next
value (one revision per event, so a ``write`` of n changes takes n consecutive
revisions and the change log's primary key is the revision). Every transaction that
assigns revisions first locks the counter (``SELECT ... FOR UPDATE``; on SQLite the
``BEGIN IMMEDIATE`` write lock) and holds it until commit, so writers in any number of
threads or processes serialize on it and their revisions commit in order: a reader that
sees revision r also sees every revision below r. That is what lets other registries
tail ``tc_change_log`` with ``changes_since`` and never miss a change.

Errors from the database are translated here (``StoreError`` and subclasses); records
the database could not hold are refused before any SQL runs (``InvalidRecordError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from tarscascade.errors import (
    ChangeLogTrimmedError,
    ConflictError,
    EpochChangedError,
    StoreError,
)
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    Record,
)
from tarscascade.store import rows, schema, writes
from tarscascade.store.base import Snapshot, Store, WriteOp
from tarscascade.store.engine import (
    POOL_SIZE,
    begin_snapshot,
    begin_write,
    create_engine,
    is_transient,
    migration_lock,
    normalize_url,
)

T = TypeVar("T")

DEFAULT_CHANGES_LIMIT = 1000
BULK_BATCH = 10_000  # rows per executemany: bounded memory, few round trips
_LOAD_BATCH = 20_000  # rows fetched per round trip when streaming a large table
_WRITE_ATTEMPTS = 3  # a deadlock or serialization failure is retried this many times
_meta = schema.meta
_log = schema.change_log


def _translate(action: str, exc: sa.exc.SQLAlchemyError) -> StoreError:
    # The DBAPI message only: SQLAlchemy's text repeats the statement and its parameters,
    # which for a bulk load would be megabytes.
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if isinstance(exc, sa.exc.IntegrityError):
        return ConflictError(f"{action}: {detail}")
    return StoreError(f"{action} failed: {detail}")


class SqlStore:
    """The registry's durable state; thread-safe, synchronous (call via ``to_thread``)."""

    def __init__(self, engine: sa.Engine, epoch: str) -> None:
        """Use ``SqlStore.open``; this takes an engine whose schema is already current."""
        self._engine = engine
        self._epoch = epoch
        self._closed = False

    @classmethod
    def open(cls, url: str, *, pool_size: int = POOL_SIZE) -> SqlStore:
        """Connect, create or migrate the schema, and read the epoch.

        ``url``: ``sqlite:///path`` (or a bare path), ``mysql://`` / ``mariadb://``
        (PyMySQL, utf8mb4), ``postgresql://`` (psycopg 3), or any explicit SQLAlchemy URL.
        """
        sa_url = normalize_url(url)
        if sa_url.get_backend_name() == "sqlite" and sa_url.database:
            # SQLite creates the file but not its directory (e.g. ./.tarscascade/).
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, pool_size=pool_size)
        try:
            with _errors("open"), migration_lock(engine) as conn:
                schema.migrate(conn)
                epoch = conn.execute(sa.select(_meta.c.epoch)).scalar_one()
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, str(epoch))

    @property
    def epoch(self) -> str:
        return self._epoch

    @property
    def dialect(self) -> str:
        """``sqlite``, ``mysql``, ``mariadb`` or ``postgresql``."""
        return self._engine.dialect.name

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        state = " closed" if self._closed else ""
        return f"<SqlStore {url} epoch={self._epoch}{state}>"

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._closed = True
        self._engine.dispose()

    # --- reads -----------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Every record, read in one consistent snapshot, with the revision it reflects."""
        self._check_open()
        with _errors("load"), begin_snapshot(self._engine) as conn:
            epoch, revision = conn.execute(sa.select(_meta.c.epoch, _meta.c.revision)).one()
            self._check_epoch(epoch)
            endpoints: list[EndpointRecord] = []
            stream = sa.select(*schema.endpoints.columns).execution_options(yield_per=_LOAD_BATCH)
            with rows.gc_paused():
                rows.endpoints_from_rows(conn.execute(stream).partitions(), endpoints)

            def small(rt: rows.RecordTable) -> list[Any]:
                out = []
                for r in conn.execute(sa.select(*rt.table.columns)):
                    try:
                        out.append(rt.from_row(r))
                    except (ValueError, TypeError) as exc:  # e.g. bad JSON edited by hand
                        raise StoreError(f"unreadable row in {rt.table}: {tuple(r)!r}") from exc
                return out

            return Snapshot(
                epoch=epoch,
                revision=int(revision),
                endpoints=endpoints,
                nodes=small(rows.NODES),
                group_rules=small(rows.GROUP_RULES),
                group_priorities=small(rows.GROUP_PRIORITIES),
                settings=small(rows.SETTINGS),
            )

    def current_revision(self) -> int:
        """The highest committed revision."""
        self._check_open()
        with _errors("current_revision"), self._engine.connect() as conn:
            epoch, revision = conn.execute(sa.select(_meta.c.epoch, _meta.c.revision)).one()
        self._check_epoch(epoch)
        return int(revision)

    def changes_since(self, revision: int, limit: int = DEFAULT_CHANGES_LIMIT) -> list[ChangeEvent]:
        """Up to ``limit`` events with revisions above ``revision``, in revision order.

        Raises ``ChangeLogTrimmedError`` when some of those changes are no longer in the
        log (trimmed, or bulk-loaded without logging): the caller must reload instead.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        self._check_open()
        query = (
            sa.select(_log.c.revision, _log.c.category, _log.c.op, _log.c.key, _log.c.payload)
            .where(_log.c.revision > revision)
            .order_by(_log.c.revision)
            .limit(limit)
        )
        with _errors("changes_since"), self._engine.connect() as conn:
            found = conn.execute(query).all()
            # The floor is read after the rows: a trim raises the floor in the transaction
            # that deletes rows, so rows missing from the first read imply a raised floor
            # in the second, even at READ COMMITTED.
            epoch, floor = conn.execute(sa.select(_meta.c.epoch, _meta.c.log_floor)).one()
        self._check_epoch(epoch)
        if revision < floor:
            raise ChangeLogTrimmedError(revision, int(floor))
        try:
            return [rows.event_from_log_row(r) for r in found]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"unreadable change-log row after revision {revision}") from exc

    # --- writes ----------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> list[ChangeEvent]:
        """Apply puts and deletes in one transaction; return their events, in order.

        A put always yields an event (even if the row already held that value). A delete
        of a missing row yields none: with ``missing_ok`` it is skipped, otherwise the
        whole write is rolled back and ``NotFoundError`` names the missing keys.
        """
        prepared = [writes.prepare(op) for op in ops]  # invalid input fails before any SQL
        if not prepared:
            return []
        return self._write_transaction(
            "write", lambda c, rev, _floor: writes.apply(c, rev, prepared, missing_ok)
        )

    def adopt(self, ops: Sequence[WriteOp]) -> list[ChangeEvent]:
        """Log changes made to the rows behind the store's back (anti-entropy).

        The registry diffs a full ``load()`` against its catalog and passes the
        differences as ops; the rows are not touched. Each op only names a key: the event
        logged is the row's state now, re-read under the revision lock (a put of the
        current row, or a tombstone if it is gone). So a write that raced with the diff
        can never be overtaken in the log by the stale value the diff saw.
        """
        keys: dict[tuple[Category, str], None] = {}
        for op in ops:
            rt, _ = rows.identity(op.category, op.key)  # validate before any SQL
            keys.setdefault((rt.category, op.key), None)
        if not keys:
            return []
        return self._write_transaction(
            "adopt", lambda c, rev, _floor: writes.adopt(c, rev, list(keys))
        )

    def bulk_load(
        self,
        records: Iterable[Record],
        *,
        log_changes: bool = True,
        batch_size: int = BULK_BATCH,
    ) -> int:
        """Insert many new records in one transaction (imports, benchmarks); return the revision.

        Plain inserts, batched: a record whose key already exists fails the whole load
        with ``ConflictError``. With ``log_changes`` each record gets a change-log row and
        its own revision, like ``write``. Without it the revision advances by one and the
        log floor moves up to it, so tailers behind it reload rather than miss the records.
        """
        self._check_open()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        return self._write_transaction(
            "bulk_load",
            lambda c, rev, floor: writes.bulk_load(c, rev, floor, records, log_changes, batch_size),
            retry=False,  # the records may be a one-shot iterator, already partly consumed
        )

    def trim_change_log(self, keep_revisions: int) -> int:
        """Delete log rows more than ``keep_revisions`` below the current revision.

        Returns how many rows were deleted. The log floor rises with the trim, so a tailer
        asking for trimmed changes gets ``ChangeLogTrimmedError`` and reloads.
        """
        if keep_revisions < 0:
            raise ValueError(f"keep_revisions must not be negative, not {keep_revisions}")
        return self._write_transaction(
            "trim_change_log", lambda c, rev, floor: writes.trim(c, rev, floor, keep_revisions)
        )

    # --- plumbing --------------------------------------------------------------------

    def _write_transaction(
        self, action: str, body: Callable[[sa.Connection, int, int], T], *, retry: bool = True
    ) -> T:
        """Run ``body(conn, revision, log_floor)`` holding the revision counter's lock."""
        self._check_open()
        attempt = 1
        while True:
            try:
                with begin_write(self._engine) as conn:
                    # Lock the counter first: everything after runs one writer at a time.
                    epoch, revision, floor = conn.execute(
                        sa.select(
                            _meta.c.epoch, _meta.c.revision, _meta.c.log_floor
                        ).with_for_update()
                    ).one()
                    self._check_epoch(epoch)
                    return body(conn, int(revision), int(floor))
            except sa.exc.DBAPIError as exc:
                if retry and attempt < _WRITE_ATTEMPTS and is_transient(exc):
                    attempt += 1  # the server rolled everything back: safe to run again
                    continue
                raise _translate(action, exc) from exc
            except sa.exc.SQLAlchemyError as exc:
                raise _translate(action, exc) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _check_epoch(self, epoch: str) -> None:
        if epoch != self._epoch:
            raise EpochChangedError(
                f"database epoch is now {epoch}, was {self._epoch}: it was replaced or "
                "restored; reopen the store and reload"
            )


@contextmanager
def _errors(action: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise _translate(action, exc) from exc


def open_store(url: str, *, pool_size: int = POOL_SIZE) -> SqlStore:
    """``SqlStore.open``."""
    return SqlStore.open(url, pool_size=pool_size)


def _conforms(store: SqlStore) -> Store:
    return store  # mypy checks here that SqlStore implements the Store protocol
