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

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from tarscascade.errors import (
    ChangeLogTrimmedError,
    ConflictError,
    DatabaseFileReplacedError,
    DatabaseFileVanishedError,
    EpochChangedError,
    NoDatabaseError,
    RevisionRegressedError,
    StoreError,
)
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    Record,
)
from tarscascade.store import marker, notify, rows, schema, writes
from tarscascade.store.base import Commit, Lineage, Served, Snapshot, Store, WriteOp
from tarscascade.store.credentials import CredentialTable
from tarscascade.store.engine import (
    POOL_SIZE,
    begin_snapshot,
    begin_write,
    create_engine,
    is_transient,
    migration_lock,
    normalize_url,
)
from tarscascade.store.presence import PresenceTable

T = TypeVar("T")
log = logging.getLogger(__name__)

#: ``always``: create the schema when it is missing (tests, tools); ``fresh``: only where
#: no database ever was (a SQLite path with neither a file nor a lineage marker; never on
#: a server, which cannot tell); ``never``: the database must exist.
CreatePolicy = Literal["always", "fresh", "never"]

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
    """The registry's durable state; thread-safe, synchronous (call via ``to_thread``).

    Lineage is checked on every call, not assumed: a different epoch in the database
    raises ``EpochChangedError``, a revision below one this store already saw raises
    ``RevisionRegressedError`` (a restore), and for SQLite the file at the path must still
    be the one opened (``DatabaseFileVanishedError`` / ``DatabaseFileReplacedError``),
    checked before and after each write commits, so a write into a deleted file is never
    acknowledged.
    """

    def __init__(
        self,
        engine: sa.Engine,
        epoch: str,
        *,
        url: sa.URL | None = None,
        pool_size: int = POOL_SIZE,
    ) -> None:
        """Use ``SqlStore.open``; this takes an engine whose schema is already current."""
        self._engine = engine
        self._epoch = epoch
        self._closed = False
        self._url = url if url is not None else engine.url
        self._pool_size = pool_size
        self._path = _sqlite_path(self._url)
        self._file_id = _file_id(self._path) if self._path is not None else None
        self._wal_ids = self._sidecar_ids()
        self._lock = threading.Lock()
        self._high_water = 0  # the highest revision seen in this lineage

    @classmethod
    def open(
        cls, url: str, *, pool_size: int = POOL_SIZE, create: CreatePolicy = "always"
    ) -> SqlStore:
        """Connect, create or migrate the schema, and read the epoch.

        ``url``: ``sqlite:///path`` (or a bare path), ``mysql://`` / ``mariadb://``
        (PyMySQL, utf8mb4), ``postgresql://`` (psycopg 3), or any explicit SQLAlchemy URL.
        ``create``: see ``CreatePolicy``; refusing raises ``NoDatabaseError``.
        """
        sa_url = normalize_url(url)
        path = _sqlite_path(sa_url)
        if path is not None:
            if not path.exists():
                _may_create_file(path, create)
            # SQLite creates the file but not its directory (e.g. ./.tarscascade/).
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, pool_size=pool_size)
        try:
            epoch = _prepare_schema(engine, "always" if path is not None else create)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, epoch, url=sa_url, pool_size=pool_size)

    def reopen(self) -> None:
        """Connect afresh to whatever database is at the URL now (never creating one).

        For a replaced SQLite file, or to take a new epoch: the caller then compares the
        lineage with what it served (``resolve_lineage``) and reloads.
        """
        self._check_open()
        if self._path is not None and not self._path.exists():
            raise DatabaseFileVanishedError(self._vanished_message())
        # Close the old connections first: the last one to close checkpoints the old
        # file's -wal into it and deletes the -wal, which would otherwise be read as the
        # new file's (SQLite's WAL names a file by path, not by inode).
        self._engine.dispose()
        engine = create_engine(self._url, pool_size=self._pool_size)
        try:
            epoch = _prepare_schema(engine, "never")
        except BaseException:
            engine.dispose()
            raise
        with self._lock:
            old, self._engine = self._engine, engine
            self._epoch = epoch
            self._high_water = 0
            self._file_id = _file_id(self._path) if self._path is not None else None
            self._wal_ids = self._sidecar_ids()
        old.dispose()

    @property
    def epoch(self) -> str:
        return self._epoch

    @property
    def credentials(self) -> CredentialTable:
        """Node credentials (``tc_node_credentials``; outside the versioned records)."""
        return CredentialTable(self._engine)

    def listen_changes(self, on_change: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``on_change()`` (from a thread) whenever any process commits a write to
        this database; returns ``stop``. None where the database cannot notify (MySQL,
        SQLite): the registry's tail polls there."""
        if self.dialect != "postgresql":
            return None
        return notify.listen(self._engine.url, on_change)

    @property
    def presence(self) -> PresenceTable:
        """The registry tier's shared state (sightings, leases, drain waits; unversioned)."""
        return PresenceTable(self._engine)

    def digest_key(self) -> bytes:
        """The tier's digest key (``tc_digest_key``): one random secret per database,
        the same for every registry on it. Never logged, never in a record."""
        self._check_open()
        for retry in (True, False):
            try:
                with self._engine.begin() as conn:
                    return schema.ensure_digest_key(conn)
            except sa.exc.IntegrityError as exc:
                if not retry:
                    raise _translate("digest_key", exc) from exc
                # another registry made it meanwhile: read theirs
            except sa.exc.SQLAlchemyError as exc:
                raise _translate("digest_key", exc) from exc
        raise AssertionError("unreachable")

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
        self._drop_stale_sidecars()

    def _sidecar_ids(self) -> dict[Path, tuple[int, int] | None]:
        if self._path is None:
            return {}
        return {p: _file_id(p) for p in _sidecars(self._path)}

    def _drop_stale_sidecars(self) -> None:
        """After the file was replaced under us: remove the old file's -wal and -shm.

        SQLite does not checkpoint a moved database on close and leaves its -wal at the
        path, where the next process would apply it to the new file. Only the sidecars
        this store saw (same inode) are removed.
        """
        if self._path is None or _file_id(self._path) == self._file_id:
            return
        for path, seen in self._wal_ids.items():
            if seen is not None and _file_id(path) == seen:
                log.warning("removing %s: it belongs to the replaced database", path)
                path.unlink(missing_ok=True)

    @property
    def path(self) -> Path | None:
        """The SQLite database file; None for a server database."""
        return self._path

    # --- reads -----------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Every record, read in one consistent snapshot, with the revision it reflects."""
        self._check_open()
        seen = self._high_water
        with _errors("load"), begin_snapshot(self._engine) as conn:
            epoch, revision = conn.execute(sa.select(_meta.c.epoch, _meta.c.revision)).one()
            self._check_lineage(epoch, int(revision), seen)
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

            self._check_file()
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
        seen = self._high_water
        with _errors("current_revision"), self._engine.connect() as conn:
            epoch, revision = conn.execute(sa.select(_meta.c.epoch, _meta.c.revision)).one()
        self._check_lineage(epoch, int(revision), seen)
        self._check_file()
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
        seen = self._high_water
        with _errors("changes_since"), self._engine.connect() as conn:
            found = conn.execute(query).all()
            # The floor is read after the rows: a trim raises the floor in the transaction
            # that deletes rows, so rows missing from the first read imply a raised floor
            # in the second, even at READ COMMITTED.
            epoch, floor, current = conn.execute(
                sa.select(_meta.c.epoch, _meta.c.log_floor, _meta.c.revision)
            ).one()
        self._check_lineage(epoch, int(current), seen)
        self._check_file()
        if revision < floor:
            raise ChangeLogTrimmedError(revision, int(floor))
        try:
            return [rows.event_from_log_row(r) for r in found]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"unreadable change-log row after revision {revision}") from exc

    # --- writes ----------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> list[ChangeEvent]:
        """Apply the ops in one transaction; return their events, in order (see ``commit``)."""
        return self.commit(ops, missing_ok=missing_ok).events

    def commit(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> Commit:
        """Apply puts, inserts, patches and deletes in one transaction, all or nothing.

        A put always yields an event (even if the row already held that value); a patch
        that changes nothing yields none. A delete (or patch) of a missing row: with
        ``missing_ok`` it is skipped, otherwise the whole write is rolled back and
        ``NotFoundError`` names the missing keys. An insert of an existing key raises
        ``ConflictError``; a failed precondition ``PreconditionFailedError``.
        """
        prepared = [writes.prepare(op) for op in ops]  # invalid input fails before any SQL

        def body(conn: sa.Connection, lock: writes._Lock) -> Commit:
            if not prepared:
                return Commit([], lock.revision, [])
            events, records = writes.apply(conn, lock, prepared, missing_ok)
            return Commit(events, events[-1].revision if events else lock.revision, records)

        return self._write_transaction("write", body)

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
            "adopt", lambda c, lock: writes.adopt(c, lock.revision, list(keys))
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
            lambda c, lock: writes.bulk_load(
                c, lock.revision, lock.floor, records, log_changes, batch_size
            ),
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
            "trim_change_log",
            lambda c, lock: writes.trim(c, lock.revision, lock.floor, keep_revisions),
        )

    # --- lineage ---------------------------------------------------------------------

    def lineage(self) -> Lineage:
        """The current epoch's lineage record (synthesized when the database has none)."""
        self._check_open()
        with _errors("lineage"), self._engine.connect() as conn:
            (epoch,) = conn.execute(sa.select(_meta.c.epoch)).one()
            found = writes.read_lineage(conn, epoch)
        if found is None:
            return Lineage(epoch, 0.0, "unknown (no lineage record)", confirmed=True)
        return found

    def resolve_lineage(self, served: Served, reason: str, max_loss: float) -> Lineage:
        """Settle the database's lineage against what a registry served; return it.

        Called when the database no longer continues ``served`` (another epoch, or a
        revision below the served one). Under the write lock:

        * the same epoch at a lower revision (a restore) or an epoch with no lineage
          record (a hand-made or foreign database): a fresh epoch whose predecessor is
          ``served``, unconfirmed if it loses more than ``max_loss`` of its endpoints;
        * an epoch that descends from ``served.epoch`` (another registry or
          ``store new-epoch`` made it), or one an operator confirmed: taken as it is;
        * any other recorded epoch (another tarscascade database put in place): taken,
          but marked unconfirmed when it loses too much against ``served``.

        Never two new epochs for one change, so registries sharing a database converge.
        """

        def body(conn: sa.Connection, lock: writes._Lock) -> Lineage:
            found = writes.read_lineage(conn, lock.epoch)
            if lock.epoch == served.epoch:
                if lock.revision >= served.revision and found is not None:
                    return found
                return writes.new_epoch(conn, lock.revision, reason, served, max_loss, lock.epoch)
            if found is None:
                return writes.new_epoch(conn, lock.revision, reason, served, max_loss, lock.epoch)
            if found.confirmed_by or writes.descends_from(conn, lock.epoch, served.epoch):
                return found
            return writes.judge(conn, found, served, reason, max_loss)

        return self._lineage_transaction("resolve_lineage", body)

    def new_epoch(self, reason: str, previous: Served | None, max_loss: float) -> Lineage:
        """Start a new epoch on the database's current data (``store new-epoch``).

        ``previous``: what the fleet last had (a lineage marker), else the data as it is.
        Every registry reloads and every node takes a snapshot of the new epoch.
        """

        def body(conn: sa.Connection, lock: writes._Lock) -> Lineage:
            prev = previous
            if prev is None:
                count = conn.execute(sa.select(sa.func.count()).select_from(schema.endpoints))
                prev = Served(lock.epoch, lock.revision, int(count.scalar_one()))
            return writes.new_epoch(conn, lock.revision, reason, prev, max_loss, lock.epoch)

        return self._lineage_transaction("new_epoch", body)

    def confirm_epoch(self, by: str, epoch: str | None = None) -> Lineage:
        """Mark the current epoch confirmed (``epoch``, if given, must be the current one)."""

        def body(conn: sa.Connection, lock: writes._Lock) -> Lineage:
            if epoch is not None and epoch != lock.epoch:
                raise ConflictError(
                    f"the database's epoch is {lock.epoch}, not {epoch}: nothing confirmed"
                )
            return writes.confirm(conn, lock.epoch, by)

        return self._write_transaction("confirm_epoch", body, check_lineage=False)

    def _lineage_transaction(
        self, action: str, body: Callable[[sa.Connection, writes._Lock], Lineage]
    ) -> Lineage:
        found = self._write_transaction(action, body, check_lineage=False)
        with self._lock:
            if found.epoch != self._epoch:
                self._high_water = 0
            self._epoch = found.epoch
            self._high_water = max(self._high_water, found.base_revision)
        return found

    # --- the lineage marker (SQLite) --------------------------------------------------

    def last_served(self) -> Served | None:
        """What a registry last served from this SQLite file (its marker); None otherwise."""
        if self._path is None:
            return None
        return marker.read_marker(marker.marker_path(self._path))

    def note_served(self, served: Served) -> None:
        """Remember what the registry serves, beside the SQLite file (no-op on a server)."""
        if self._path is None or self._closed:
            return
        try:
            marker.write_marker(marker.marker_path(self._path), served)
        except OSError as exc:
            raise StoreError(f"cannot write the lineage marker beside {self._path}: {exc}") from exc

    def problem(self) -> str | None:
        """Why this store cannot be trusted now (a vanished or replaced file), else None."""
        try:
            self._check_file()
        except StoreError as exc:
            return str(exc)
        return None

    # --- plumbing --------------------------------------------------------------------

    def _write_transaction(
        self,
        action: str,
        body: Callable[[sa.Connection, writes._Lock], T],
        *,
        retry: bool = True,
        check_lineage: bool = True,
    ) -> T:
        """Run ``body(conn, lock)`` holding the revision counter's lock.

        Before anything is written the lineage is checked (epoch, no regression, the
        SQLite file); after the commit the file is checked again, so a write that went
        into a deleted or replaced file raises instead of being acknowledged.
        """
        self._check_open()
        attempt = 1
        while True:
            engine = self._engine
            seen = self._high_water
            try:
                with begin_write(engine) as conn:
                    # Lock the counter first: everything after runs one writer at a time.
                    epoch, revision, floor = conn.execute(writes.lock_counter()).one()
                    if check_lineage:
                        self._check_lineage(epoch, int(revision), seen)
                    self._check_file()
                    result = body(conn, writes._Lock(epoch, int(revision), int(floor)))
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(notify.NOTIFY_SQL)  # sent at commit
            except sa.exc.DBAPIError as exc:
                if retry and attempt < _WRITE_ATTEMPTS and is_transient(exc):
                    attempt += 1  # the server rolled everything back: safe to run again
                    continue
                raise _translate(action, exc) from exc
            except sa.exc.SQLAlchemyError as exc:
                raise _translate(action, exc) from exc
            self._check_file(committed=True)
            if isinstance(result, Commit):
                with self._lock:
                    if engine is self._engine:
                        self._high_water = max(self._high_water, result.revision)
            return result

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _check_lineage(self, epoch: str, revision: int, seen: int) -> None:
        """``seen``: the high-water mark taken before the read began. Only that one is
        compared: a read that began earlier may finish later than one that saw more."""
        if epoch != self._epoch:
            raise EpochChangedError(
                f"database epoch is now {epoch}, was {self._epoch}: it was replaced or "
                "restored; reopen the store and reload"
            )
        if revision < seen:
            raise RevisionRegressedError(
                f"the database is at revision {revision}, below revision {seen} already "
                f"seen in epoch {epoch}: it was restored from a backup or rolled back"
            )
        with self._lock:
            self._high_water = max(self._high_water, revision)

    def _check_file(self, *, committed: bool = False) -> None:
        if self._path is None:
            return
        found = _file_id(self._path)
        if found == self._file_id:
            return
        lost = " The write just committed went into it and is lost." if committed else ""
        if found is None:
            raise DatabaseFileVanishedError(self._vanished_message() + lost)
        raise DatabaseFileReplacedError(
            f"the database file {self._path} was replaced by another file while open: "
            f"writes are refused.{lost} SQLite cannot switch files under a running "
            "process; restart the registry to use the new file (it checks the new file's "
            "lineage), and restore a live registry with `tarscascade store restore`."
        )

    def _vanished_message(self) -> str:
        return (
            f"the database file {self._path} was deleted while open: writes are refused "
            "(they would go into the deleted file). Put the file back (see README: "
            "restore), or restart the registry with --init to start an empty database."
        )


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database).absolute()


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _may_create_file(path: Path, create: CreatePolicy) -> None:
    if create == "always":
        return
    sign = marker.marker_path(path)
    if create == "fresh" and not sign.exists():
        return
    if sign.exists():
        was = marker.read_marker(sign)
        what = (
            f" (it served epoch {was.epoch}, {was.endpoints} endpoints at revision {was.revision})"
            if was is not None
            else ""
        )
        raise NoDatabaseError(
            f"the database file {path} is missing, but a database was here{what}, says "
            f"{sign}. If it is lost, restore it from a backup (see README: restore); to "
            "start an empty database on purpose, start with --init."
        )
    raise NoDatabaseError(f"no database file {path}: start with --init to create one")


def _prepare_schema(engine: sa.Engine, create: CreatePolicy) -> str:
    """Create or migrate the schema under the migration lock; return the epoch."""
    with _errors("open"), migration_lock(engine) as conn:
        if create != "always" and schema.schema_version(conn) == 0:
            url = engine.url.render_as_string(hide_password=True)
            raise NoDatabaseError(
                f"no tarscascade schema in {url}: start the first registry with --init "
                "to create it (it never deletes anything)"
            )
        schema.migrate(conn)
        epoch = conn.execute(sa.select(_meta.c.epoch)).scalar_one()
    return str(epoch)


@contextmanager
def _errors(action: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise _translate(action, exc) from exc


def open_store(
    url: str, *, pool_size: int = POOL_SIZE, create: CreatePolicy = "always"
) -> SqlStore:
    """``SqlStore.open``."""
    return SqlStore.open(url, pool_size=pool_size, create=create)


def _conforms(store: SqlStore) -> Store:
    return store  # mypy checks here that SqlStore implements the Store protocol
