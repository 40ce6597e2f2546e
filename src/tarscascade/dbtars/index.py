"""What the importer last read from db_tars, by source, and the records it implies (pure).

A *source* is one (application, server_name) group of the load query, or
``t_registry_info`` as a whole. The importer re-reads a source whole and replaces it
here; ``replace`` answers which endpoint keys may have changed, including keys the
source no longer produces (a deleted node or adapter, a renamed servant), which is how
deletes inside a group are seen without a full load.

Several rows can produce one tarscascade key (object_id, host, port): the same servant
and address on two nodes, or a framework servant in both ``t_adapter_conf`` and
``t_registry_info``. TARS lists every copy; the catalog keys by address, so the copies
are collapsed (:func:`mapping.collapse`) and counted in :attr:`duplicates`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tarscascade.dbtars.mapping import collapse
from tarscascade.model import EndpointRecord

#: ("a", application, server_name) for a load-query group (normalized, see group_key),
#: ("r", "", "") for t_registry_info. Sorted, adapter groups come first.
Source = tuple[str, str, str]
REGISTRY_INFO: Source = ("r", "", "")


def group_source(key: tuple[str, str]) -> Source:
    return ("a", key[0], key[1])


class ImportIndex:
    __slots__ = ("_by_source", "_copies", "_sources_of")

    def __init__(self) -> None:
        self._by_source: dict[Source, dict[str, list[EndpointRecord]]] = {}
        self._sources_of: dict[str, set[Source]] = {}
        self._copies = 0

    def replace(self, source: Source, records: Iterable[EndpointRecord]) -> set[str]:
        """Make ``records`` (in a deterministic order) the whole content of ``source``.

        Returns the keys whose collapsed record may differ now: every key the source
        produced before or produces now.
        """
        new: dict[str, list[EndpointRecord]] = {}
        for r in records:
            new.setdefault(r.key, []).append(r)
        old = self._by_source.pop(source, {})
        for key, copies in old.items():
            self._copies -= len(copies)
            if key not in new:
                owners = self._sources_of[key]
                owners.discard(source)
                if not owners:
                    del self._sources_of[key]
        for key, copies in new.items():
            self._copies += len(copies)
            self._sources_of.setdefault(key, set()).add(source)
        if new:
            self._by_source[source] = new
        return old.keys() | new.keys()

    def record(self, key: str) -> EndpointRecord | None:
        """The collapsed record of a key, None when no source produces it."""
        owners = self._sources_of.get(key)
        if not owners:
            return None
        return collapse(c for s in sorted(owners) for c in self._by_source[s][key])

    def records(self) -> Iterator[EndpointRecord]:
        for key in self._sources_of:
            rec = self.record(key)
            if rec is not None:
                yield rec

    def sources(self) -> set[Source]:
        return set(self._by_source)

    @property
    def endpoint_count(self) -> int:
        return len(self._sources_of)

    @property
    def duplicates(self) -> int:
        """Rows collapsed into another row's record (TARS would list them twice)."""
        return self._copies - len(self._sources_of)
