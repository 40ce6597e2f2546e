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

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tarscascade.dbtars.mapping import collapse, group_key
from tarscascade.model import EndpointRecord

#: ("a", application, server_name) for a load-query group (normalized, see group_key),
#: ("r", "", "") for t_registry_info. Sorted, adapter groups come first.
Source = tuple[str, str, str]
REGISTRY_INFO: Source = ("r", "", "")
#: A record with its key (computed once per distinct row: the importer memoises both).
Keyed = tuple[str, EndpointRecord]


def keyed(records: Iterable[EndpointRecord]) -> list[Keyed]:
    return [(r.key, r) for r in records]


def group_source(key: tuple[str, str]) -> Source:
    return ("a", key[0], key[1])


class ImportIndex:
    __slots__ = ("_by_source", "_copies", "_sources_of")

    def __init__(self) -> None:
        self._by_source: dict[Source, dict[str, list[EndpointRecord]]] = {}
        self._sources_of: dict[str, set[Source]] = {}
        self._copies = 0

    def replace(self, source: Source, records: Iterable[Keyed]) -> set[str]:
        """Make ``records``, ``(key, record)`` pairs in a deterministic order, the whole
        content of ``source``.

        Returns the keys whose collapsed record may differ now: every key the source
        produced before or produces now.
        """
        new: dict[str, list[EndpointRecord]] = {}
        for key, r in records:
            new.setdefault(key, []).append(r)
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
        if len(owners) == 1:  # the common case, kept cheap: 100k keys per full load
            (source,) = owners
            copies = self._by_source[source][key]
            if len(copies) == 1:
                return copies[0]
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


GroupKey = tuple[str, str]


class IdMaps:
    """Every row id of t_server_conf and t_adapter_conf the importer knows, by group.

    Kept exact: built from a full load's or an id scan's ids, and each group a poll
    re-reads gets its ids replaced by what the re-read found. Its :meth:`signature` is
    then what the table signature must be if nothing happened unseen.
    """

    __slots__ = ("_groups", "_tables")

    def __init__(
        self, rows: tuple[Iterable[Sequence[Any]], Iterable[Sequence[Any]]] = ((), ())
    ) -> None:
        self._tables: tuple[dict[int, GroupKey], dict[int, GroupKey]] = ({}, {})
        self._groups: dict[GroupKey, tuple[set[int], set[int]]] = {}
        for t, found in enumerate(rows):
            for row_id, app, server in found:
                self._add(t, int(row_id), group_key(app, server))

    def _add(self, table: int, row_id: int, key: GroupKey) -> None:
        self._tables[table][row_id] = key
        self._groups.setdefault(key, (set(), set()))[table].add(row_id)

    def set_groups(
        self,
        keys: Iterable[GroupKey],
        rows: tuple[Iterable[Sequence[Any]], Iterable[Sequence[Any]]],
    ) -> None:
        """Replace the ids of these groups (and of any group ``rows`` names) by ``rows``."""
        found = [[(int(i), group_key(a, s)) for i, a, s in part] for part in rows]
        for key in {*keys, *(k for part in found for _i, k in part)}:
            ids = self._groups.pop(key, None)
            if ids is not None:
                for t in (0, 1):
                    for row_id in ids[t]:
                        self._tables[t].pop(row_id, None)
        for t, part in enumerate(found):
            for row_id, key in part:
                self._add(t, row_id, key)

    def signature(self) -> tuple[int, int, int, int]:
        servers, adapters = self._tables
        return (len(servers), sum(servers), len(adapters), sum(adapters))

    def changed_groups(self, other: IdMaps) -> set[GroupKey]:
        """Groups with a row id in one map and not (or in another group) in the other."""
        out: set[GroupKey] = set()
        for mine, theirs in zip(self._tables, other._tables, strict=True):
            for row_id, key in mine.items():
                if theirs.get(row_id) != key:
                    out.add(key)
            for row_id, key in theirs.items():
                if mine.get(row_id) != key:
                    out.add(key)
        return out
