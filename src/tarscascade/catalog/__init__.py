"""The in-memory catalog shared by the registry and the node agent.

Pure and synchronous (layer ``catalog``: imports only ``tarscascade.model``,
``tarscascade.errors`` and ``tarscascade.wire``). :class:`Catalog` holds the records,
versions and digests; :mod:`~tarscascade.catalog.select` holds the QueryF selection
rules; :class:`QueryAnswerer` serves encoded answers from a bounded cache.
"""

from tarscascade.catalog.catalog import NO_VERSION, Catalog, CatalogError, Listener
from tarscascade.catalog.encoded import QUERY_METHODS, QueryAnswerer, QueryMethod
from tarscascade.catalog.groups import NO_GROUP, GroupIndex
from tarscascade.catalog.tables import Change, ObjectSnapshot
from tarscascade.catalog.view import ObjectView, build_view

__all__ = [
    "NO_GROUP",
    "NO_VERSION",
    "QUERY_METHODS",
    "Catalog",
    "CatalogError",
    "Change",
    "GroupIndex",
    "Listener",
    "ObjectSnapshot",
    "ObjectView",
    "QueryAnswerer",
    "QueryMethod",
    "build_view",
]
