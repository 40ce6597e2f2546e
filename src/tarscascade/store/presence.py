"""The registry tier's shared state: node sightings, named leases, drain waits.

Several registries on one database each hear from the nodes connected to them. They
share what they heard here, at a low rate, so that exactly one of them (the holder of
the ``liveness`` lease) judges every node by the newest sighting over all registries,
and so that a drain waiting on one registry learns what the nodes of the others hold.

Every time stored or compared here is on the **database's clock** (``now``): registries
on machines whose clocks disagree still agree on a sighting's age and a lease's expiry.
Callers pass ages ("heard 1.2 s ago"), never their own timestamps. SQLite has no server
clock, but also no second machine: the local clock is the database's there.

Synchronous and thread-safe like the rest of the store (call via ``asyncio.to_thread``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from tarscascade.errors import StoreError
from tarscascade.model import Version
from tarscascade.store.engine import begin_write, is_transient, upsert
from tarscascade.store.schema import drain_waits as _waits
from tarscascade.store.schema import leases as _leases
from tarscascade.store.schema import node_seen as _seen

T = TypeVar("T")

#: a transient failure (deadlock, serialization) is retried this many times in all
_ATTEMPTS = 3
#: rows written per statement (MySQL's packet and PostgreSQL's parameter limits)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Sighting:
    """A node one registry heard ``age`` seconds ago, holding ``objects`` (if known)."""

    node: str
    age: float
    objects: Version | None = None


@dataclass(frozen=True, slots=True)
class SeenRow:
    """A stored sighting, its age measured on the database's clock when read."""

    node: str
    registry_id: str
    age: float
    objects: Version | None


@dataclass(frozen=True, slots=True)
class LeaseState:
    held: bool  # the caller holds it now (acquired or renewed)
    holder: str  # who holds it ("" = nobody)
    expires_in: float  # seconds left on the holder's lease, on the database's clock


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _version(epoch: str, revision: Any) -> Version | None:
    return Version(epoch, int(revision)) if epoch else None


class PresenceTable:
    """Reads and writes of ``tc_node_seen``, ``tc_leases`` and ``tc_drain_waits``."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # ------------------------------------------------------------------ the clock

    def now(self, conn: sa.Connection) -> float:
        """The database's clock, unix seconds."""
        name = conn.dialect.name
        found: Any
        if name == "postgresql":
            found = conn.exec_driver_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").scalar()
        elif name in ("mysql", "mariadb"):
            found = conn.exec_driver_sql("SELECT UNIX_TIMESTAMP(NOW(6))").scalar()
        else:
            return time.time()
        if found is None:
            raise StoreError("the database returned no time")
        return float(found)

    # ------------------------------------------------------------------ sightings

    def record(self, registry_id: str, sightings: Iterable[Sighting]) -> int:
        """Upsert this registry's sightings; returns rows written."""
        items = sorted(sightings, key=lambda s: s.node)  # one lock order: no deadlocks
        if not items:
            return 0

        def body(conn: sa.Connection) -> None:
            now = self.now(conn)
            rows = [
                {
                    "node": s.node,
                    "registry_id": registry_id,
                    "last_seen": now - max(0.0, s.age),
                    "objects_epoch": s.objects.epoch if s.objects else "",
                    "objects_revision": s.objects.revision if s.objects else 0,
                }
                for s in items
            ]
            for i in range(0, len(rows), _CHUNK):
                upsert(conn, _seen, rows[i : i + _CHUNK])

        self._write("recording node sightings", body)
        return len(items)

    def seen(self, nodes: Collection[str] | None = None) -> list[SeenRow]:
        """Every stored sighting (of ``nodes`` only, when given), ages as of now."""
        cols = (
            _seen.c.node,
            _seen.c.registry_id,
            _seen.c.last_seen,
            _seen.c.objects_epoch,
            _seen.c.objects_revision,
        )
        try:
            with self._engine.connect() as conn:
                now = self.now(conn)
                out: list[SeenRow] = []
                if nodes is None:
                    batches: list[list[str] | None] = [None]
                else:
                    names = sorted(nodes)
                    batches = [names[i : i + _CHUNK] for i in range(0, len(names), _CHUNK)]
                for batch in batches:
                    query = sa.select(*cols)
                    if batch is not None:
                        query = query.where(_seen.c.node.in_(batch))
                    for node, reg, last, epoch, revision in conn.execute(query):
                        out.append(SeenRow(node, reg, now - float(last), _version(epoch, revision)))
                conn.rollback()
                return out
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"reading node sightings failed: {_first_line(exc)}") from exc

    def newest(self, besides: str = "") -> dict[str, float]:
        """Per node, the age of its newest sighting over every registry (``besides``:
        but this one: the judge knows its own, and alone it reads nothing back)."""
        try:
            with self._engine.connect() as conn:
                now = self.now(conn)
                query = sa.select(_seen.c.node, sa.func.max(_seen.c.last_seen))
                if besides:
                    query = query.where(_seen.c.registry_id != besides)
                query = query.group_by(_seen.c.node)
                out = {node: now - float(last) for node, last in conn.execute(query)}
                conn.rollback()
                return out
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"reading node sightings failed: {_first_line(exc)}") from exc

    def forget_older_than(self, age: float) -> int:
        """Delete sightings older than ``age`` seconds (nodes long gone); returns rows."""

        def body(conn: sa.Connection) -> int:
            cutoff = self.now(conn) - age
            return int(conn.execute(_seen.delete().where(_seen.c.last_seen < cutoff)).rowcount)

        return self._write("trimming node sightings", body)

    # ------------------------------------------------------------------ leases

    def acquire(self, name: str, holder: str, ttl: float) -> LeaseState:
        """Take or renew lease ``name`` for ``ttl`` seconds if it is free, expired or
        ours; otherwise report who holds it. One transaction with the row locked."""

        def body(conn: sa.Connection) -> LeaseState:
            now = self.now(conn)
            row = conn.execute(
                sa.select(_leases.c.holder, _leases.c.expires_at)
                .where(_leases.c.name == name)
                .with_for_update()
            ).first()
            if row is None:
                conn.execute(
                    _leases.insert().values(
                        name=name, holder=holder, expires_at=now + ttl, acquired_at=now
                    )
                )
                return LeaseState(True, holder, ttl)
            current, expires = str(row[0]), float(row[1])
            if current != holder and expires > now:
                return LeaseState(False, current, expires - now)
            values: dict[str, Any] = {"holder": holder, "expires_at": now + ttl}
            if current != holder:
                values["acquired_at"] = now
            conn.execute(_leases.update().where(_leases.c.name == name).values(**values))
            return LeaseState(True, holder, ttl)

        try:
            return self._write(f"taking the {name} lease", body)
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                # another registry inserted the first row at the same moment: it holds it
                return LeaseState(False, "", 0.0)
            raise

    def release(self, name: str, holder: str) -> bool:
        """Give lease ``name`` up if ``holder`` holds it (a clean stop: fast failover)."""

        def body(conn: sa.Connection) -> bool:
            stmt = _leases.delete().where(_leases.c.name == name, _leases.c.holder == holder)
            return bool(conn.execute(stmt).rowcount)

        return self._write(f"releasing the {name} lease", body)

    def holder(self, name: str) -> LeaseState:
        """Who holds lease ``name`` now ("" when nobody or it expired)."""
        try:
            with self._engine.connect() as conn:
                now = self.now(conn)
                row = conn.execute(
                    sa.select(_leases.c.holder, _leases.c.expires_at).where(_leases.c.name == name)
                ).first()
                conn.rollback()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"reading the {name} lease failed: {_first_line(exc)}") from exc
        if row is None or float(row[1]) <= now:
            return LeaseState(False, "", 0.0)
        return LeaseState(False, str(row[0]), float(row[1]) - now)

    # ------------------------------------------------------------------ drain waits

    def add_wait(self, wait_id: str, registry_id: str, version: Version, ttl: float) -> None:

        def body(conn: sa.Connection) -> None:
            now = self.now(conn)
            conn.execute(
                _waits.insert().values(
                    id=wait_id,
                    registry_id=registry_id,
                    objects_epoch=version.epoch,
                    objects_revision=version.revision,
                    expires_at=now + ttl,
                )
            )

        self._write("recording a drain wait", body)

    def remove_wait(self, wait_id: str) -> None:

        def body(conn: sa.Connection) -> None:
            now = self.now(conn)
            # expired ones (of registries that died waiting) go too
            gone = (_waits.c.id == wait_id) | (_waits.c.expires_at < now)
            conn.execute(_waits.delete().where(gone))

        self._write("removing a drain wait", body)

    def waits(self) -> list[Version]:
        """The objects versions drains are waiting for somewhere in the tier now."""
        try:
            with self._engine.connect() as conn:
                now = self.now(conn)
                rows = conn.execute(
                    sa.select(_waits.c.objects_epoch, _waits.c.objects_revision).where(
                        _waits.c.expires_at > now
                    )
                ).all()
                conn.rollback()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"reading drain waits failed: {_first_line(exc)}") from exc
        return [Version(e, int(r)) for e, r in rows]

    # ------------------------------------------------------------------ plumbing

    def _write(self, action: str, body: Callable[[sa.Connection], T]) -> T:
        """``body`` in a write transaction, rerun whole after a transient failure (the
        server rolled it back), so bodies are idempotent: upserts, conditional updates."""
        attempt = 1
        while True:
            try:
                with begin_write(self._engine) as conn:
                    return body(conn)
            except sa.exc.DBAPIError as exc:
                if attempt < _ATTEMPTS and is_transient(exc):
                    attempt += 1
                    continue
                raise StoreError(f"{action} failed: {_first_line(exc)}") from exc
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"{action} failed: {_first_line(exc)}") from exc
