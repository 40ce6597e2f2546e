"""The in-memory catalog the registry and the node agent share (architecture.md §3).

It holds every category's records, a ``Version(epoch, revision)`` and a content digest
per category, applies change events and whole-category snapshots, and tells listeners
(the encoded-response cache, watchers) which objects' answers may have changed.

An endpoint is *active* when its setting and present states are active and its node,
if the catalog knows that node, is alive; so a node going up or down changes the
answers of every object with an endpoint on it, which :class:`ObjectTable` indexes.

Single-threaded by design: the registry and the node call it from their event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, KeysView, Set
from typing import Any

from tarscascade.catalog.digests import Hasher, Scheme
from tarscascade.catalog.groups import EMPTY_GROUPS, GroupIndex
from tarscascade.catalog.tables import (
    Change,
    KeyedTable,
    ObjectSnapshot,
    ObjectTable,
    group_by_object,
)
from tarscascade.errors import TarsCascadeError
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Op,
    Record,
    Setting,
    State,
    Version,
)

#: Called after each apply/replace with the object ids whose answers may have changed,
#: or None when every object's may have (the IDC groups changed).
Listener = Callable[[Set[str] | None], None]

#: The version of a category the catalog holds nothing of yet.
NO_VERSION = Version("", 0)

_RECORD_TYPES: dict[str, tuple[type[Any], ...]] = {
    Category.OBJECTS: (EndpointRecord,),
    Category.NODES: (NodeRecord,),
    Category.GROUPS: (GroupRule, GroupPriority),
    Category.SETTINGS: (Setting,),
}


class CatalogError(TarsCascadeError, ValueError):
    """An event or snapshot that does not fit the catalog; nothing of it was applied."""


def is_node_alive(node: NodeRecord | None) -> bool:
    """A node the catalog does not know counts as alive: its endpoints' own state rules."""
    return node is None or (
        node.present_state == State.ACTIVE and node.setting_state == State.ACTIVE
    )


class Catalog:
    """Records, versions and digests of every category, plus the derived IDC group index."""

    __slots__ = (
        "_group_index",
        "_groups",
        "_hasher",
        "_legacy",
        "_listeners",
        "_nodes",
        "_objects",
        "_settings",
        "_versions",
    )

    def __init__(self, digest_key: bytes = b"") -> None:
        self._hasher = Hasher(digest_key)
        self._legacy = False
        self._objects = ObjectTable(self._hasher)
        self._nodes: KeyedTable[NodeRecord] = KeyedTable((), self._hasher)
        self._groups: KeyedTable[GroupRule | GroupPriority] = KeyedTable((), self._hasher)
        self._settings: KeyedTable[Setting] = KeyedTable((), self._hasher)
        self._versions: dict[Category, Version] = dict.fromkeys(Category, NO_VERSION)
        self._group_index: GroupIndex | None = EMPTY_GROUPS
        self._listeners: list[Listener] = []

    # ------------------------------------------------------------------ reads

    def version(self, category: Category) -> Version:
        return self._versions[Category(category)]

    def versions(self) -> dict[Category, Version]:
        return dict(self._versions)

    def digest(self, category: Category) -> int:
        """The v2 digest: the sum of the records' keyed 128-bit hashes mod 2**128; equal
        content under one key gives an equal digest (catalog/digests.py)."""
        return self._table(category).digest

    def legacy_digest(self, category: Category) -> int:
        """The protocol 1/2 digest (unkeyed 64-bit sum). The first call makes every table
        keep it from then on (O(n) once); see :meth:`enable_legacy`."""
        self.enable_legacy()
        d = self._table(category).legacy_digest
        assert d is not None
        return d

    def digest_as(self, scheme: Scheme, category: Category) -> int | None:
        """The digest a peer speaking ``scheme`` compares (None: nothing comparable)."""
        if scheme is Scheme.V2:
            return self.digest(category)
        if scheme is Scheme.LEGACY:
            return self.legacy_digest(category)
        return None

    def enable_legacy(self) -> None:
        """Keep the legacy digest of every category from now on (for older peers)."""
        if not self._legacy:
            self._legacy = True
            for t in self._tables():
                t.enable_legacy()

    @property
    def legacy_enabled(self) -> bool:
        return self._legacy

    @property
    def digest_key(self) -> bytes:
        return self._hasher.key

    @property
    def key_id(self) -> bytes:
        """The public id of the digest key (equal ids: comparable digests)."""
        return self._hasher.key_id

    @property
    def hasher(self) -> Hasher:
        return self._hasher

    def rekey(self, key: bytes) -> bool:
        """Key the v2 digests with ``key``, recomputing every sum (O(n)); False when the
        catalog already had that key."""
        if key == self._hasher.key:
            return False
        self._hasher = Hasher(key)
        for t in self._tables():
            t.rekey(self._hasher)
        return True

    def object_snapshot(self) -> ObjectSnapshot:
        """An empty objects snapshot hashing like this catalog (fill it, then replace)."""
        return ObjectSnapshot((), self._hasher, legacy=self._legacy)

    def _table(self, category: Category) -> ObjectTable | KeyedTable[Any]:
        cat = Category(category)
        if cat is Category.OBJECTS:
            return self._objects
        if cat is Category.NODES:
            return self._nodes
        if cat is Category.GROUPS:
            return self._groups
        return self._settings

    def _tables(self) -> tuple[ObjectTable | KeyedTable[Any], ...]:
        return (self._objects, self._nodes, self._groups, self._settings)

    def records(self, category: Category) -> Iterator[Record]:
        """Every record of a category, in no particular order (snapshots, anti-entropy)."""
        cat = Category(category)
        if cat is Category.OBJECTS:
            return iter(self._objects.records())
        if cat is Category.NODES:
            return iter(self._nodes.values())
        if cat is Category.GROUPS:
            return iter(self._groups.values())
        return iter(self._settings.values())

    def get_object(self, object_id: str) -> tuple[EndpointRecord, ...]:
        """An object's endpoint records in (host, port) order; empty when unknown."""
        eps = self._objects.get(object_id)
        if not eps:
            return ()
        return tuple(eps[hp] for hp in sorted(eps))

    def endpoints_unordered(self, object_id: str) -> Iterable[EndpointRecord]:
        """An object's endpoint records in no particular order (a copy: safe to keep)."""
        eps = self._objects.get(object_id)
        return tuple(eps.values()) if eps else ()

    def endpoints_of_node(self, node_name: str) -> list[EndpointRecord]:
        """Every endpoint record hosted on ``node_name`` (a node agent's own servers)."""
        return [
            r
            for oid in list(self._objects.objects_on_node(node_name))
            for r in self.get_object(oid)
            if r.node_name == node_name
        ]

    def object_counts(self, object_id: str) -> tuple[int, int]:
        """``(endpoints, active)`` of one object, without ordering its records."""
        eps = self._objects.get(object_id)
        if not eps:
            return 0, 0
        return len(eps), sum(1 for r in eps.values() if self.is_active(r))

    def has_object(self, object_id: str) -> bool:
        return self._objects.get(object_id) is not None

    def object_ids(self) -> KeysView[str]:
        """A live view: copy it before yielding to the event loop."""
        return self._objects.ids()

    def get_node(self, name: str) -> NodeRecord | None:
        return self._nodes.get(name)

    def get_setting(self, name: str) -> str | None:
        setting = self._settings.get(name)
        return setting.value if setting is not None else None

    def counts(self) -> dict[str, int]:
        return {
            "objects": len(self._objects),
            "endpoints": self._objects.endpoint_count,
            "nodes": len(self._nodes),
            "groups": len(self._groups),
            "settings": len(self._settings),
        }

    def group_index(self) -> GroupIndex:
        """The IDC group index, rebuilt on first use after the groups changed."""
        index = self._group_index
        if index is None:
            rules = [r for r in self._groups.values() if isinstance(r, GroupRule)]
            prios = [r for r in self._groups.values() if isinstance(r, GroupPriority)]
            index = self._group_index = GroupIndex(rules, prios)
        return index

    def is_active(self, record: EndpointRecord) -> bool:
        """The active rule: both states active, and the node (if known) alive."""
        if record.setting_state != State.ACTIVE or record.present_state != State.ACTIVE:
            return False
        return not record.node_name or is_node_alive(self._nodes.get(record.node_name))

    # ------------------------------------------------------------------ writes

    def apply(self, events: Iterable[ChangeEvent], epoch: str) -> set[str]:
        """Apply change events in order; returns the ids of the objects whose answers changed.

        Every event advances its category's version to ``Version(epoch, revision)``,
        including a deletion of an absent key or a put of an identical record (they are
        no-ops on the content). All events are checked before the first is applied.
        """
        batch = list(events)
        for ev in batch:
            _check_event(ev)
        affected: set[str] = set()
        groups_changed = False
        last_revision: dict[str, int] = {}
        for ev in batch:
            kind = ev.category
            if kind == Category.OBJECTS:
                self._apply_endpoint(ev, affected)
            elif kind == Category.NODES:
                self._apply_node(ev, affected)
            elif kind == Category.GROUPS:
                groups_changed |= _apply_small(self._groups, ev)
            else:
                _apply_small(self._settings, ev)
            last_revision[kind] = ev.revision
        for name, revision in last_revision.items():
            self._versions[Category(name)] = Version(epoch, revision)
        if groups_changed:
            self._group_index = None
            affected.update(self._objects.ids())
        self._notify(None if groups_changed else affected)
        return affected

    def replace_category(
        self, category: Category, records: Iterable[Record] | ObjectSnapshot, version: Version
    ) -> set[str]:
        """Replace a whole category atomically (a load or a snapshot); returns affected ids.

        For objects, ``records`` may be an :class:`ObjectSnapshot` filled chunk by chunk
        (the per-record work is then already done). Nothing changes if a record does not
        belong to the category.
        """
        cat = Category(category)
        everything = False
        if cat is Category.OBJECTS:
            if isinstance(records, ObjectSnapshot):
                table = records.take()
                if table.hasher.key != self._hasher.key:  # made before a rekey, or elsewhere
                    table.rekey(self._hasher)
                if self._legacy:
                    table.enable_legacy()
            else:
                try:
                    table = ObjectSnapshot(
                        records,  # type: ignore[arg-type]  # checked inside
                        self._hasher,
                        legacy=self._legacy,
                    ).take()
                except TypeError as exc:
                    raise CatalogError(f"objects snapshot: {exc}") from exc
            affected = self._objects.changed_ids(table)
            self._objects = table
        elif cat is Category.NODES:
            nodes = KeyedTable(_checked(records, cat), self._hasher, legacy=self._legacy)
            affected = set()
            old = self._nodes
            for name in old.keys() | nodes.keys():
                if is_node_alive(old.get(name)) != is_node_alive(nodes.get(name)):
                    affected.update(self._objects.objects_on_node(name))
            self._nodes = nodes
        elif cat is Category.GROUPS:
            groups: KeyedTable[GroupRule | GroupPriority] = KeyedTable(
                _checked(records, cat), self._hasher, legacy=self._legacy
            )
            everything = not groups.same_content(self._groups)
            self._groups = groups
            affected = set(self._objects.ids()) if everything else set()
            if everything:
                self._group_index = None
        else:
            self._settings = KeyedTable(_checked(records, cat), self._hasher, legacy=self._legacy)
            affected = set()
        self._versions[cat] = version
        self._notify(None if everything else affected)
        return affected

    def advance(self, category: Category, version: Version) -> None:
        """Set a category's version without touching its content (a *bookmark*).

        For a replica whose upstream proved, by digest, that the content it holds is the
        content at ``version`` (a registry restarted and renumbered, or no change of this
        category happened in between). No answer changes, so no listener is told.
        """
        self._versions[Category(category)] = version

    def diff(self, category: Category, records: Iterable[Record]) -> list[Change]:
        """The ``(op, key, record)`` steps that turn this category's content into ``records``.

        For anti-entropy: the registry reloads the store, diffs, and applies and pushes
        the result as ordinary events. Sorted by key, so the outcome is deterministic.
        """
        cat = Category(category)
        if cat is Category.OBJECTS:
            try:
                target = group_by_object(records)  # type: ignore[arg-type]  # checked inside
            except TypeError as exc:
                raise CatalogError(f"objects diff: {exc}") from exc
            return self._objects.diff(target)
        if cat is Category.NODES:
            return self._nodes.diff(KeyedTable(_checked(records, cat)))
        if cat is Category.GROUPS:
            return self._groups.diff(KeyedTable(_checked(records, cat)))
        return self._settings.diff(KeyedTable(_checked(records, cat)))

    def _apply_endpoint(self, ev: ChangeEvent, affected: set[str]) -> None:
        if ev.op == Op.PUT:
            record = ev.record
            assert isinstance(record, EndpointRecord)  # _check_event made sure
            if self._objects.put(record):
                affected.add(record.object_id)
        else:
            oid = self._objects.delete(ev.key)
            if oid is not None:
                affected.add(oid)

    def _apply_node(self, ev: ChangeEvent, affected: set[str]) -> None:
        if ev.op == Op.PUT:
            record = ev.record
            assert isinstance(record, NodeRecord)
            changed, old = self._nodes.put(record)
            # A re-registration that only moves last_heartbeat changes no answer.
            if changed and is_node_alive(old) != is_node_alive(record):
                affected.update(self._objects.objects_on_node(record.name))
        else:
            gone = self._nodes.delete(ev.key)
            if gone is not None and not is_node_alive(gone):
                affected.update(self._objects.objects_on_node(gone.name))

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _notify(self, affected: Set[str] | None) -> None:
        if affected is not None and not affected:
            return
        for listener in tuple(self._listeners):
            listener(affected)

    def __repr__(self) -> str:
        c = self.counts()
        versions = " ".join(f"{cat}={v}" for cat, v in self._versions.items())
        return (
            f"<Catalog {c['objects']} objects, {c['endpoints']} endpoints, {c['nodes']} nodes,"
            f" {c['groups']} group rows, {c['settings']} settings | {versions}>"
        )


def _check_event(ev: ChangeEvent) -> None:
    types = _RECORD_TYPES.get(ev.category)
    if types is None:
        raise CatalogError(f"unknown category {ev.category!r} at revision {ev.revision}")
    if ev.op == Op.PUT:
        if not isinstance(ev.record, types):
            got = type(ev.record).__name__
            raise CatalogError(f"{ev.category} put at revision {ev.revision} carries a {got}")
        if ev.record.key != ev.key:
            raise CatalogError(
                f"event key {ev.key!r} is not its record's key {ev.record.key!r}"
                f" (revision {ev.revision})"
            )
    elif ev.op != Op.DELETE:
        raise CatalogError(f"unknown op {ev.op!r} at revision {ev.revision}")


def _apply_small(table: KeyedTable[Any], ev: ChangeEvent) -> bool:
    """Apply an event to a small category; True when its content changed."""
    if ev.op == Op.PUT:
        changed, _ = table.put(ev.record)
        return changed
    return table.delete(ev.key) is not None


def _checked(records: Iterable[Any] | ObjectSnapshot, category: Category) -> Iterator[Any]:
    if isinstance(records, ObjectSnapshot):
        raise CatalogError(f"an objects snapshot given for {category}")
    types = _RECORD_TYPES[category]
    for r in records:
        if not isinstance(r, types):
            raise CatalogError(f"{category} snapshot holds a {type(r).__name__}")
        yield r
