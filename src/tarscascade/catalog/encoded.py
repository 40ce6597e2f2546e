"""Encoded QueryF answers, cached: a hot query is a dictionary lookup, not a re-encode.

The servants (registry and node) hand :meth:`QueryAnswerer.answer` the function name,
the object id, the caller identity and the second string argument, and put the bytes
it returns into the response packet's ``sBuffer`` unchanged.

Cache layout: an LRU of objects, each holding its :class:`ObjectView` (built lazily)
and its encoded answers keyed by *selector*: the caller's IDC group for the group
rules (so every caller of one group shares one entry), the station, or the set id.
The catalog calls :meth:`QueryAnswerer.invalidate` with the objects that changed, or
with None when the IDC groups changed. Unknown object ids are answered from constants
and never cached, and both the number of entries and the answers per object are
bounded, so hostile ids, stations or set ids cannot grow memory without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence, Set
from enum import StrEnum
from typing import Final

from tarscascade.catalog.catalog import Catalog
from tarscascade.catalog.groups import NO_GROUP
from tarscascade.catalog.select import (
    NOT_FOUND,
    Answer,
    find_4any,
    find_in_same_group,
    find_in_same_station,
    find_object_by_id,
    select_set_members,
    set_members,
)
from tarscascade.catalog.view import ObjectView, build_view, parse_query_set
from tarscascade.wire.codec import write_int
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST, EndpointF


class QueryMethod(StrEnum):
    """The QueryF functions answered from the catalog (tars-protocol.md §3.2)."""

    FIND_OBJECT_BY_ID = "findObjectById"
    FIND_4ANY = "findObjectById4Any"
    FIND_4ALL = "findObjectById4All"
    IN_SAME_GROUP = "findObjectByIdInSameGroup"
    IN_SAME_STATION = "findObjectByIdInSameStation"
    IN_SAME_SET = "findObjectByIdInSameSet"


QUERY_METHODS: Final = frozenset(m.value for m in QueryMethod)

#: Out-parameter tags: after the int return at tag 0 and the string arguments.
GROUP_LIST_TAG: Final = 2  # 4Any, 4All, InSameGroup: (id) -> tags 2, 3
ARG_LIST_TAG: Final = 3  # InSameStation, InSameSet: (id, arg) -> tags 3, 4

DEFAULT_MAX_ENTRIES: Final = 200_000
DEFAULT_MAX_ANSWERS_PER_OBJECT: Final = 64

_write_list = ENDPOINT_LIST.write


def encode_answer(answer: Answer, active_tag: int) -> bytes:
    """``int ret`` at tag 0, then the active and inactive lists at ``active_tag`` and +1.

    Both lists are always written: the Node client's decoder requires them even empty.
    """
    ret, active, inactive = answer
    w = bytearray()
    write_int(w, 0, ret)
    _write_list(w, active_tag, active)
    _write_list(w, active_tag + 1, inactive)
    return bytes(w)


def encode_endpoints(endpoints: Sequence[EndpointF]) -> bytes:
    """``findObjectById``'s result: ``vector<EndpointF>`` at tag 0, no int return."""
    w = bytearray()
    _write_list(w, 0, endpoints)
    return bytes(w)


_NONE: tuple[EndpointF, ...] = ()
_EMPTY_ID = encode_endpoints(_NONE)
_EMPTY_GROUP = encode_answer((0, _NONE, _NONE), GROUP_LIST_TAG)
_EMPTY_ARG = encode_answer((0, _NONE, _NONE), ARG_LIST_TAG)
_FAILED_ARG = encode_answer((NOT_FOUND, _NONE, _NONE), ARG_LIST_TAG)

# Selectors of answers that do not depend on the caller.
_BY_ID: Final = ("id",)
_ANY: Final = ("any",)

Selector = tuple[str] | tuple[str, int] | tuple[str, str]


class _Entry:
    """One cached object: its view and its encoded answers by selector."""

    __slots__ = ("answers", "view")

    def __init__(self, view: ObjectView) -> None:
        self.view = view
        self.answers: dict[Selector, bytes] = {}


class QueryAnswerer:
    """Answers QueryF calls from a :class:`Catalog` with cached encoded ``sBuffer`` bytes."""

    __slots__ = (
        "_catalog",
        "_entries",
        "_max_answers",
        "_max_entries",
        "_size",
        "hits",
        "misses",
    )

    def __init__(
        self,
        catalog: Catalog,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_answers_per_object: int = DEFAULT_MAX_ANSWERS_PER_OBJECT,
    ) -> None:
        if max_entries < 2 or max_answers_per_object < 1:
            raise ValueError("max_entries must be >= 2 and max_answers_per_object >= 1")
        self._catalog = catalog
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0  # views + answers held, the unit of max_entries
        self._max_entries = max_entries
        self._max_answers = max_answers_per_object
        self.hits = 0
        self.misses = 0
        catalog.add_listener(self.invalidate)

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def answer(self, method: str, object_id: str, caller: str = "", arg: str = "") -> bytes:
        """The encoded ``sBuffer`` answering ``method(object_id[, arg])`` for ``caller``.

        ``caller`` is the TARS caller identity (``context["node_name"]`` or the peer IP);
        ``arg`` is the station or the set id. Raises ValueError for another method.
        """
        if method == QueryMethod.FIND_OBJECT_BY_ID:
            entry = self._entry(object_id)
            if entry is None:
                return _EMPTY_ID
            return self._cached(entry, _BY_ID, method, caller, arg)
        if method in (QueryMethod.IN_SAME_GROUP, QueryMethod.FIND_4ALL):
            entry = self._entry(object_id)
            if entry is None:
                return _EMPTY_GROUP
            group = self._catalog.group_index().group_of(caller)
            selector: Selector = _ANY if group == NO_GROUP else ("group", group)
            return self._cached(entry, selector, method, caller, arg)
        if method == QueryMethod.FIND_4ANY:
            entry = self._entry(object_id)
            if entry is None:
                return _EMPTY_GROUP
            return self._cached(entry, _ANY, method, caller, arg)
        if method == QueryMethod.IN_SAME_STATION:
            if self._catalog.group_index().station_groups(arg) is None:
                return _FAILED_ARG  # TARS checks the station before the object
            entry = self._entry(object_id)
            if entry is None:
                return _EMPTY_ARG
            return self._cached(entry, ("station", arg), method, caller, arg)
        if method == QueryMethod.IN_SAME_SET:
            wanted = parse_query_set(arg)
            if wanted is None:
                return _FAILED_ARG
            entry = self._entry(object_id)
            if entry is None:
                return _EMPTY_ARG  # no set info for an unknown id: group logic, nothing found
            if set_members(entry.view, wanted) is None:
                # The set rule does not apply: the answer is the group rule's.
                group = self._catalog.group_index().group_of(caller)
                selector = ("setgroup", group)
            else:
                selector = ("set", str(wanted))
            return self._cached(entry, selector, method, caller, arg)
        raise ValueError(f"not a QueryF lookup method: {method!r}")

    def invalidate(self, object_ids: Set[str] | None) -> None:
        """Forget cached answers of these objects, or of every object when None."""
        entries = self._entries
        if object_ids is None:
            entries.clear()
            self._size = 0
            return
        # Walk the smaller side: a full resync may report every object as changed.
        if len(object_ids) >= len(entries):
            stale = [o for o in entries if o in object_ids]
        else:
            stale = [o for o in object_ids if o in entries]
        for oid in stale:
            self._size -= 1 + len(entries.pop(oid).answers)

    def close(self) -> None:
        """Stop following the catalog (for tests and shutdown)."""
        self._catalog.remove_listener(self.invalidate)
        self.invalidate(None)

    @property
    def size(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (
            f"<QueryAnswerer {len(self._entries)} objects, {self._size}/{self._max_entries}"
            f" entries, {self.hits} hits, {self.misses} misses>"
        )

    # ------------------------------------------------------------------ internals

    def _entry(self, object_id: str) -> _Entry | None:
        entry = self._entries.get(object_id)
        if entry is not None:
            self._entries.move_to_end(object_id)
            return entry
        records = self._catalog.get_object(object_id)
        if not records:
            return None
        self._make_room()
        entry = _Entry(build_view(records, self._catalog.group_index(), self._catalog.is_active))
        self._entries[object_id] = entry
        self._size += 1
        return entry

    def _cached(
        self, entry: _Entry, selector: Selector, method: str, caller: str, arg: str
    ) -> bytes:
        data = entry.answers.get(selector)
        if data is not None:
            self.hits += 1
            return data
        self.misses += 1
        data = self._compute(entry.view, method, caller, arg)
        if len(entry.answers) >= self._max_answers:
            # Many distinct stations or set ids for one object: start its answers afresh.
            self._size -= len(entry.answers)
            entry.answers.clear()
        self._make_room()
        entry.answers[selector] = data
        self._size += 1
        return data

    def _compute(self, view: ObjectView, method: str, caller: str, arg: str) -> bytes:
        if method == QueryMethod.FIND_OBJECT_BY_ID:
            return encode_endpoints(find_object_by_id(view))
        if method == QueryMethod.FIND_4ANY:
            return encode_answer(find_4any(view), GROUP_LIST_TAG)
        groups = self._catalog.group_index()
        if method == QueryMethod.IN_SAME_STATION:
            return encode_answer(find_in_same_station(view, groups, arg), ARG_LIST_TAG)
        caller_group = groups.group_of(caller)
        if method == QueryMethod.IN_SAME_SET:
            wanted = parse_query_set(arg)
            members = set_members(view, wanted) if wanted is not None else None
            if wanted is None or members is None:
                answer = find_in_same_group(view, groups, caller_group)
            else:
                answer = select_set_members(members, wanted)
            return encode_answer(answer, ARG_LIST_TAG)
        return encode_answer(find_in_same_group(view, groups, caller_group), GROUP_LIST_TAG)

    def _make_room(self) -> None:
        """Evict least recently used objects until one more entry fits.

        The object being answered was just moved to the end, so it goes last; it is
        never evicted while another object remains.
        """
        entries = self._entries
        while self._size >= self._max_entries and len(entries) > 1:
            _, old = entries.popitem(last=False)
            self._size -= 1 + len(old.answers)
