"""db_tars mode: serve an existing TARS installation's routing with no migration.

The importer reads TARS's ``db_tars`` with a SELECT-only grant and writes what it finds
into tarscascade's own store (``tc_*`` tables, ``--db``); everything downstream of the
store works unchanged. See README "Adopting tarscascade in an existing TARS installation".
"""

from tarscascade.dbtars.guard import GuardPolicy
from tarscascade.dbtars.importer import OWNER, DbTarsImporter, ImportOptions
from tarscascade.dbtars.source import DbTarsError, DbTarsSource, Lease

__all__ = [
    "OWNER",
    "DbTarsError",
    "DbTarsImporter",
    "DbTarsSource",
    "GuardPolicy",
    "ImportOptions",
    "Lease",
]
