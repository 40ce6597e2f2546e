"""The store layer: records and an ordered change log in SQL (SQLite, MySQL, PostgreSQL).

Imports only ``tarscascade.model`` and ``tarscascade.errors``; synchronous by design
(the registry calls it through ``asyncio.to_thread``).
"""

from tarscascade.store.base import Delete, Put, Snapshot, Store, WriteOp
from tarscascade.store.schema import SCHEMA_VERSION
from tarscascade.store.sql import SqlStore, open_store

__all__ = [
    "SCHEMA_VERSION",
    "Delete",
    "Put",
    "Snapshot",
    "SqlStore",
    "Store",
    "WriteOp",
    "open_store",
]
