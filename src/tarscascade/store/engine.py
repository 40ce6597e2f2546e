"""Engines for the three backends: URL defaults, pooling, and how each one locks.

Everything dialect-specific lives here so that ``sql.py`` reads the same for SQLite,
MySQL/MariaDB and PostgreSQL:

* ``begin_write``: a transaction that writers serialize on. SQLite takes the database
  write lock up front (``BEGIN IMMEDIATE``); MySQL/PostgreSQL run READ COMMITTED and the
  caller locks the ``tc_meta`` row with ``SELECT ... FOR UPDATE``.
* ``begin_snapshot``: one consistent view across several SELECTs (``load()``).
* ``migration_lock``: one process at a time creates or migrates the schema.
* ``upsert``: insert-or-update by primary key, in each dialect's own syntax.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.pool import QueuePool

from tarscascade.errors import StoreError
from tarscascade.store.statements import cached, value_columns

POOL_SIZE = 4  # the registry reaches the store from a few worker threads, not hundreds
MAX_OVERFLOW = 4
POOL_RECYCLE_S = 3600  # below MySQL's default wait_timeout (8 h) with a wide margin
SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction
_WAL_RETRY_FIRST_S = 0.001  # the WAL switch's own retry (below): first pause, doubling
_WAL_RETRY_MAX_S = 0.05
MIGRATION_LOCK_TIMEOUT_S = 60
_MIGRATION_LOCK_NAME = "tarscascade.schema"
_PG_MIGRATION_LOCK_KEY = 0x7C_5C_A5_CA_DE  # any constant; advisory locks are keyed by bigint

_SQLITE_BEGIN = "tarscascade_sqlite_begin"  # execution option read by the begin hook

_DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


def normalize_url(url: str) -> sa.URL:
    """Parse a store URL; a bare path means a SQLite file. Plain schemes get our drivers."""
    if "://" not in url:
        return sa.URL.create("sqlite", database=url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r}") from exc
    parsed = parsed.set(drivername=_DRIVERS.get(parsed.drivername, parsed.drivername))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or "mode=memory" in db or parsed.query.get("mode") == "memory":
            # Each pooled connection would see its own empty database.
            raise StoreError("an in-memory SQLite database cannot be shared; use a file path")
    elif backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    elif backend not in ("mysql", "mariadb", "postgresql"):
        raise StoreError(f"unsupported database {backend!r}: use sqlite, mysql or postgresql")
    return parsed


def create_engine(url: sa.URL, *, pool_size: int = POOL_SIZE) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=MAX_OVERFLOW,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        _install_sqlite_hooks(engine)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=MAX_OVERFLOW,
        pool_pre_ping=True,  # a registry idles for hours; servers drop idle connections
        pool_recycle=POOL_RECYCLE_S,
        # Writers lock the tc_meta row and must then read what the previous writer
        # committed: READ COMMITTED on both servers (MySQL defaults to REPEATABLE READ).
        isolation_level="READ COMMITTED",
    )


def _install_sqlite_hooks(engine: sa.Engine) -> None:
    busy_ms = int(SQLITE_BUSY_TIMEOUT_S * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # sqlite3's legacy mode issues no BEGIN before SELECTs (so no snapshot across
        # statements) and only plain BEGIN before writes; we issue BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            # WAL: readers (load, tailers) never block the writer, nor it them.
            _switch_to_wal(cursor, SQLITE_BUSY_TIMEOUT_S)
            # FULL: a commit is on disk before write() returns (acknowledged = durable).
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _switch_to_wal(cursor: sqlite3.Cursor, timeout_s: float) -> None:
    """``PRAGMA journal_mode = WAL``, waiting out a concurrent first open.

    Connections opening a new file at the same moment race to switch it to WAL, and
    SQLite answers the loser "database is locked" at once, without the busy handler
    (seen: four threads opening one new file failed ~1 round in 30-100 under load).
    Retried like the busy handler would, for as long as it would.
    """
    deadline = time.monotonic() + timeout_s
    pause = _WAL_RETRY_FIRST_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _WAL_RETRY_MAX_S)


@contextmanager
def begin_write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction, committed when the block ends without an exception."""
    with engine.connect() as conn:
        # IMMEDIATE takes SQLite's write lock now: a deferred transaction that read first
        # could not upgrade while another writer holds it, and would fail instead of wait.
        conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
        with conn.begin():
            yield conn


@contextmanager
def begin_snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only transaction whose SELECTs all see one committed state."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            # SQLite: a deferred BEGIN already pins a WAL snapshot at the first read.
            conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        yield conn  # nothing to commit: closing the connection rolls back


@contextmanager
def migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction in which only this process creates or migrates the schema."""
    name = engine.dialect.name
    with engine.connect() as conn:
        if name == "sqlite":
            conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():
                yield conn
        elif name == "postgresql":
            with conn.begin():  # PostgreSQL DDL is transactional; the lock ends with it
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK_KEY)))
                yield conn
        else:
            # MySQL commits each DDL statement, so a transaction cannot hold the lock:
            # a named session lock does, and must be released before the pool reuses it.
            got = conn.execute(
                sa.select(sa.func.get_lock(_MIGRATION_LOCK_NAME, MIGRATION_LOCK_TIMEOUT_S))
            ).scalar()
            conn.commit()
            if got != 1:
                raise StoreError("timed out waiting for another process to migrate the schema")
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.execute(sa.select(sa.func.release_lock(_MIGRATION_LOCK_NAME)))
                conn.commit()


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` or update the existing rows with the same primary key."""
    dialect = conn.dialect.name
    stmt = cached(("upsert", dialect, table), lambda: _build_upsert(dialect, table))
    conn.execute(stmt, list(rows))


def _build_upsert(dialect: str, table: sa.Table) -> sa.Executable:
    keys = [c.name for c in table.primary_key.columns]
    values = value_columns(table)
    if dialect == "sqlite":
        lite = sqlite.insert(table)
        return lite.on_conflict_do_update(
            index_elements=keys, set_={c: lite.excluded[c] for c in values}
        )
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(
            index_elements=keys, set_={c: pg.excluded[c] for c in values}
        )
    my = mysql.insert(table)
    return my.on_duplicate_key_update({c: my.inserted[c] for c in values})


_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_TRANSIENT_MYSQL_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock


def is_transient(exc: sa.exc.DBAPIError) -> bool:
    """A failure the server rolled back in full, so the whole transaction may be retried.

    Lost connections are deliberately not transient: the commit may have happened.
    """
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _TRANSIENT_MYSQL_CODES
