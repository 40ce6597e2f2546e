"""``tc_node_credentials``: per-node secrets, stored as their SHA-256 node keys.

Kept beside the record tables but outside them: no change-log rows, no revision, never
in a snapshot, so no node (relays included) ever holds another node's key. Synchronous
and thread-safe like the rest of the store (call via ``asyncio.to_thread``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tarscascade.errors import StoreError
from tarscascade.store.engine import begin_write
from tarscascade.store.schema import node_credentials as _table


@dataclass(frozen=True, slots=True)
class NodeCredential:
    """A node's stored credential: never the secret, only its node key."""

    name: str
    key: bytes
    #: hosts its announcements may name (empty: its registered node address)
    hosts: tuple[str, ...] = ()
    created_at: float = 0.0


def _from_row(row: sa.Row[Any]) -> NodeCredential:
    name, key_hex, hosts, created = tuple(row)
    try:
        return NodeCredential(name, bytes.fromhex(key_hex), tuple(json.loads(hosts)), created)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"unreadable row in {_table.name} for {name!r}") from exc


class CredentialTable:
    """Reads and writes of node credentials over the store's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def load_all(self) -> list[NodeCredential]:
        try:
            with self._engine.connect() as conn:
                return [_from_row(r) for r in conn.execute(sa.select(*_table.columns))]
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"reading node credentials failed: {_first_line(exc)}") from exc

    def get(self, name: str) -> NodeCredential | None:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(sa.select(*_table.columns).where(_table.c.name == name)).first()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"reading node credentials failed: {_first_line(exc)}") from exc
        return None if row is None else _from_row(row)

    def put(self, cred: NodeCredential) -> NodeCredential:
        """Insert or replace (a new secret for a node revokes the old one)."""
        created = cred.created_at or time.time()
        values = {
            "key_hex": cred.key.hex(),
            "hosts": json.dumps(list(cred.hosts)),
            "created_at": created,
        }
        try:
            with begin_write(self._engine) as conn:
                conn.execute(_table.delete().where(_table.c.name == cred.name))
                conn.execute(_table.insert().values(name=cred.name, **values))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"writing a node credential failed: {_first_line(exc)}") from exc
        return NodeCredential(cred.name, cred.key, cred.hosts, created)

    def delete(self, name: str) -> bool:
        try:
            with begin_write(self._engine) as conn:
                n = conn.execute(_table.delete().where(_table.c.name == name)).rowcount
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"removing a node credential failed: {_first_line(exc)}") from exc
        return bool(n)


def _first_line(exc: sa.exc.SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
