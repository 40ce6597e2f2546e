"""Reading db_tars: the only module that talks to the TARS database (synchronous).

Every session is read-only twice over: the grant should be SELECT only, and the session
itself is ``READ ONLY`` (a broader grant still cannot write ``t_*``). The session time
zone is left at the server's default, so ``NOW(3)`` and the ``registry_timestamp``
comparisons use one clock, the database's (db_tars.md §6.3). Call from a worker thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from tarscascade.dbtars import sql
from tarscascade.dbtars.mapping import RawRow, RegistryInfoRow, group_priority, group_rule
from tarscascade.errors import StoreError
from tarscascade.model import GroupPriority, GroupRule
from tarscascade.store.engine import normalize_url

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60  # a full load of 100k rows takes about a second

Signature = tuple[int, int, int, int]


class DbTarsError(StoreError):
    """db_tars could not be read (down, missing table, no SELECT grant)."""


@dataclass(slots=True)
class SmallTables:
    registry_info: list[RegistryInfoRow]
    rules: list[GroupRule]
    priorities: list[GroupPriority]


#: ``(id, application, server_name)`` rows of t_server_conf, and of t_adapter_conf.
IdRows = tuple[list[Sequence[Any]], list[Sequence[Any]]]


@dataclass(slots=True)
class FullLoad:
    """Everything routing reads, in one consistent snapshot, with its clock and row ids."""

    now: dt.datetime
    routing: list[RawRow]
    small: SmallTables
    ids: IdRows


@dataclass(slots=True)
class GroupRead:
    """Some groups re-read whole: their routing rows and their row ids."""

    routing: list[RawRow]
    ids: IdRows


@dataclass(slots=True)
class SourceStats:
    queries: int = 0
    rows_read: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class DbTarsSource:
    """A pool of read-only sessions on db_tars."""

    def __init__(self, url: str, *, pool_size: int = 2) -> None:
        sa_url = normalize_url(url)
        if sa_url.get_backend_name() not in ("mysql", "mariadb"):
            raise DbTarsError(f"--tars-db must be a MySQL/MariaDB URL, got {url!r}")
        self.url = sa_url
        self.stats = SourceStats()
        self._engine = sa.create_engine(
            sa_url,
            pool_size=pool_size,
            max_overflow=2,
            pool_pre_ping=True,
            pool_recycle=3600,
            isolation_level="AUTOCOMMIT",  # each poll sees what is committed now
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S},
        )

        @event.listens_for(self._engine, "connect")
        def _read_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
            finally:
                cur.close()

    def __repr__(self) -> str:
        return f"<DbTarsSource {self.url.render_as_string(hide_password=True)}>"

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _conn(self, action: str) -> Iterator[sa.Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            self.stats.errors += 1
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise DbTarsError(f"db_tars {action} failed: {detail}") from exc

    def _query(
        self, conn: sa.Connection, kind: str, stmt: str, params: dict[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        # The DBAPI cursor itself: plain tuples, no per-row Row objects (100k rows a load).
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        try:
            cur.execute(stmt, params or None)
            rows: list[Sequence[Any]] = list(cur.fetchall())
        finally:
            cur.close()
        st = self.stats
        st.queries += 1
        st.rows_read += len(rows)
        st.by_kind[kind] = st.by_kind.get(kind, 0) + 1
        return rows

    # ------------------------------------------------------------------ reads

    def check(self) -> None:
        """Fail early and clearly when a table is missing or not readable."""
        with self._conn("check") as conn:
            for table in sql.TABLES:
                try:
                    conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").all()
                except sa.exc.DBAPIError as exc:
                    detail = str(exc.orig).splitlines()[0]
                    raise DbTarsError(
                        f"cannot read db_tars table {table} (grant SELECT on it): {detail}"
                    ) from exc

    def now(self) -> dt.datetime:
        with self._conn("clock") as conn:
            return _now(self._query(conn, "now", sql.NOW))

    def signature(self) -> Signature:
        with self._conn("signature") as conn:
            return _signature(self._query(conn, "signature", sql.SIGNATURE))

    def poll(self, since: dt.datetime) -> tuple[dt.datetime, list[tuple[str, str]]]:
        """The database's clock now, then the groups written at or after ``since``.

        The clock is read first: a row committed after it is found by the next poll,
        whose window starts before this clock.
        """
        with self._conn("poll") as conn:
            now = _now(self._query(conn, "now", sql.NOW))
            rows = self._query(conn, "changed", sql.CHANGED_GROUPS, {"since": since})
        return now, [(str(a or ""), str(s or "")) for a, s in rows]

    def read_groups(self, pairs: Sequence[tuple[str, str]]) -> GroupRead:
        """The load query's rows of these (application, server_name) groups, and the ids
        of every row of theirs in both tables (orphans included), in one snapshot."""
        out = GroupRead([], ([], []))
        if not pairs:
            return out
        with self._conn("group read") as conn:
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                step = sql.GROUPS_PER_QUERY
                for i in range(0, len(pairs), step):
                    chunk = pairs[i : i + step]
                    params: dict[str, Any] = {}
                    for j, (app, server) in enumerate(chunk):
                        params[f"a{j}"] = app
                        params[f"s{j}"] = server
                    n = len(chunk)
                    out.routing.extend(
                        self._query(conn, "group", sql.routing_for_groups(n), params)
                    )
                    for table, into in zip(
                        ("t_server_conf", "t_adapter_conf"), out.ids, strict=True
                    ):
                        into.extend(
                            self._query(conn, "group_ids", sql.ids_for_groups(table, n), params)
                        )
            finally:
                conn.exec_driver_sql("COMMIT")
        return out

    def ids(self) -> IdRows:
        """Every row id of both big tables, with its group (index-only scans)."""
        with self._conn("id scan") as conn:
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                return (
                    self._query(conn, "ids", sql.SERVER_IDS),
                    self._query(conn, "ids", sql.ADAPTER_IDS),
                )
            finally:
                conn.exec_driver_sql("COMMIT")

    def small_tables(self) -> SmallTables:
        with self._conn("small tables") as conn:
            return self._small(conn)

    def full_load(self) -> FullLoad:
        """Every routing row, the small tables, the clock and the signature, all at once."""
        with self._conn("full load") as conn:
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                now = _now(self._query(conn, "now", sql.NOW))
                routing = self._query(conn, "full", sql.ROUTING)
                small = self._small(conn)
                ids = (
                    self._query(conn, "ids", sql.SERVER_IDS),
                    self._query(conn, "ids", sql.ADAPTER_IDS),
                )
            finally:
                conn.exec_driver_sql("COMMIT")
        return FullLoad(now, routing, small, ids)

    def _small(self, conn: sa.Connection) -> SmallTables:
        info = [
            RegistryInfoRow(str(r[0] or ""), r[1], r[2], r[3], r[4])
            for r in self._query(conn, "registry_info", sql.REGISTRY_INFO)
        ]
        rules = [group_rule(*r) for r in self._query(conn, "rules", sql.GROUP_RULES)]
        prios = [group_priority(*r) for r in self._query(conn, "priorities", sql.GROUP_PRIORITIES)]
        return SmallTables(info, rules, prios)


def _now(rows: list[Sequence[Any]]) -> dt.datetime:
    value = rows[0][0]
    if not isinstance(value, dt.datetime):
        raise DbTarsError(f"NOW(3) returned {value!r}")
    return value


def _signature(rows: list[Sequence[Any]]) -> Signature:
    a, b, c, d = (int(v) for v in rows[0])
    return (a, b, c, d)


class Lease:
    """One importer per store: a ``GET_LOCK`` session lock on db_tars's server.

    The lock lives as long as one dedicated connection; losing the connection loses it,
    so :meth:`held` is asked before every write (a deposed importer then stops).
    """

    def __init__(self, source: DbTarsSource, name: str) -> None:
        self.name = name[:64]  # MySQL lock names are at most 64 characters
        self._engine = source.engine
        self._conn: sa.Connection | None = None

    def acquire(self) -> bool:
        """Try once, without waiting; True when this process holds the lease now."""
        if self._conn is not None:
            return self.held()
        try:
            conn = self._engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise DbTarsError(f"db_tars lease: {exc}") from exc
        try:
            got = conn.exec_driver_sql(sql.GET_LOCK, {"name": self.name}).scalar()
        except sa.exc.SQLAlchemyError as exc:
            conn.close()
            raise DbTarsError(f"db_tars lease: {exc}") from exc
        if got == 1:
            self._conn = conn
            return True
        conn.close()
        return False

    def held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            ok = conn.exec_driver_sql(sql.HOLDS_LOCK, {"name": self.name}).scalar() == 1
        except sa.exc.SQLAlchemyError:
            ok = False
        if not ok:
            self._drop()
        return ok

    def release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # closing releases it anyway
            conn.exec_driver_sql(sql.RELEASE_LOCK, {"name": self.name})
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.invalidate()  # never hand a lock-holding session back to the pool
                conn.close()
