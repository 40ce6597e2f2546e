"""The store layer: records and an ordered change log in SQL (SQLite, MySQL, PostgreSQL).

Imports only ``tarscascade.model`` and ``tarscascade.errors``; synchronous by design
(the registry calls it through ``asyncio.to_thread``).
"""

from tarscascade.store.base import (
    Commit,
    Delete,
    Expect,
    Insert,
    Lineage,
    Patch,
    PatchCheck,
    Put,
    Served,
    Snapshot,
    Store,
    WriteOp,
    loses_too_much,
)
from tarscascade.store.credentials import CredentialTable, NodeCredential
from tarscascade.store.schema import SCHEMA_VERSION
from tarscascade.store.sql import CreatePolicy, SqlStore, open_store

__all__ = [
    "SCHEMA_VERSION",
    "Commit",
    "CreatePolicy",
    "CredentialTable",
    "Delete",
    "Expect",
    "Insert",
    "Lineage",
    "NodeCredential",
    "Patch",
    "PatchCheck",
    "Put",
    "Served",
    "Snapshot",
    "SqlStore",
    "Store",
    "WriteOp",
    "loses_too_much",
    "open_store",
]
