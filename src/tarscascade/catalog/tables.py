"""The record tables behind the catalog: keyed records plus an incremental content digest.

Two shapes. :class:`KeyedTable` is a plain ``key -> record`` dict for the small
categories (nodes, groups, settings). :class:`ObjectTable` holds the endpoints nested
by object id, because every query and every invalidation works per object, and keeps
an index ``node name -> object ids`` so a node going down invalidates exactly the
objects with an endpoint on it.

The digest of a table is the sum of its hasher's record hashes mod 2**128 (v2, see
:mod:`~tarscascade.catalog.digests`), plus the legacy 64-bit sum once enabled, both
maintained on every put and delete; nothing here stores a per-record digest (it is
recomputed from the old record when that record leaves), which saves 1M ints at scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView, Mapping, Set
from itertools import chain
from typing import Generic, TypeVar

from tarscascade.catalog.digests import UNKEYED, Hasher
from tarscascade.model import (
    DIGEST_MOD,
    LEGACY_DIGEST_MOD,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Op,
    Record,
    Setting,
    endpoint_key,
    legacy_record_digest,
    split_endpoint_key,
)

R = TypeVar("R", bound=NodeRecord | GroupRule | GroupPriority | Setting)

#: One step of a diff: ``(PUT, key, record)`` or ``(DELETE, key, None)``.
Change = tuple[Op, str, Record | None]

HostPort = tuple[str, int]
Endpoints = dict[HostPort, EndpointRecord]

_NO_IDS: frozenset[str] = frozenset()


class _DigestSums:
    """A table's category digest kept as running sums of per-record hashes: the v2 sum
    under the table's key, and the legacy one once asked for (a protocol-2 peer)."""

    __slots__ = ("_hash", "_legacy", "_sum")

    _hash: Hasher
    _legacy: int | None
    _sum: int

    def _all_records(self) -> Iterable[Record]:
        raise NotImplementedError

    def rekey(self, hasher: Hasher) -> None:
        """Recompute the v2 sum under another key (O(n))."""
        self._hash = hasher
        self._sum = hasher.sum(self._all_records())

    def enable_legacy(self) -> None:
        """Keep the legacy sum from now on (a first O(n) pass)."""
        if self._legacy is None:
            self._legacy = sum(map(legacy_record_digest, self._all_records()))

    @property
    def digest(self) -> int:
        return self._sum % DIGEST_MOD

    @property
    def legacy_digest(self) -> int | None:
        return None if self._legacy is None else self._legacy % LEGACY_DIGEST_MOD

    @property
    def hasher(self) -> Hasher:
        return self._hash


class KeyedTable(_DigestSums, Generic[R]):
    """Records of one small category by key, with the category digest."""

    __slots__ = ("_by_key",)

    def __init__(
        self, records: Iterable[R] = (), hasher: Hasher = UNKEYED, *, legacy: bool = False
    ) -> None:
        self._by_key: dict[str, R] = {r.key: r for r in records}
        self._hash = hasher
        self._sum = hasher.sum(self._by_key.values())
        self._legacy: int | None = None
        if legacy:
            self.enable_legacy()

    def _all_records(self) -> Iterable[R]:
        return self._by_key.values()

    def get(self, key: str) -> R | None:
        return self._by_key.get(key)

    def put(self, record: R) -> tuple[bool, R | None]:
        """Insert or replace; returns ``(changed, old record)``."""
        key = record.key
        old = self._by_key.get(key)
        if old == record:
            return False, old
        self._by_key[key] = record
        h = self._hash
        self._sum += h(record) - (h(old) if old is not None else 0)
        if self._legacy is not None:
            lg = legacy_record_digest
            self._legacy += lg(record) - (lg(old) if old is not None else 0)
        return True, old

    def delete(self, key: str) -> R | None:
        """Remove by key; returns the removed record (None: nothing to remove)."""
        old = self._by_key.pop(key, None)
        if old is not None:
            self._sum -= self._hash(old)
            if self._legacy is not None:
                self._legacy -= legacy_record_digest(old)
        return old

    def keys(self) -> KeysView[str]:
        return self._by_key.keys()

    def values(self) -> Iterable[R]:
        return self._by_key.values()

    def same_content(self, other: KeyedTable[R]) -> bool:
        return self._by_key == other._by_key

    def diff(self, target: KeyedTable[R]) -> list[Change]:
        """The changes that turn this table's content into ``target``'s, sorted by key."""
        mine, theirs = self._by_key, target._by_key
        out: list[Change] = [(Op.DELETE, k, None) for k in mine.keys() - theirs.keys()]
        out += [(Op.PUT, k, r) for k, r in theirs.items() if mine.get(k) != r]
        out.sort(key=_change_key)
        return out

    def __len__(self) -> int:
        return len(self._by_key)


def group_by_object(records: Iterable[EndpointRecord]) -> dict[str, Endpoints]:
    """Nest endpoint records by object id then ``(host, port)``; a later duplicate wins."""
    objects: dict[str, Endpoints] = {}
    get = objects.get
    for r in records:
        if type(r) is not EndpointRecord:
            raise TypeError(f"not an endpoint record: {type(r).__name__}")
        eps = get(r.object_id)
        if eps is None:
            eps = objects[r.object_id] = {}
        eps[(r.host, r.port)] = r
    return objects


class ObjectSnapshot:
    """An objects snapshot being received: add chunks as they arrive, then replace.

    All per-record work (nesting, digest, node index) happens in :meth:`add`, so a node
    receiving a snapshot in chunks spreads it between awaits, and the final
    ``Catalog.replace_category`` only compares and swaps. A snapshot that raised in
    ``add`` is spoiled: drop it.
    """

    __slots__ = ("_table",)

    def __init__(
        self,
        records: Iterable[EndpointRecord] = (),
        hasher: Hasher = UNKEYED,
        *,
        legacy: bool = False,
    ) -> None:
        self._table = ObjectTable(hasher, legacy=legacy)
        self.add(records)

    def add(self, records: Iterable[EndpointRecord]) -> None:
        """Add records; a record with the key of an earlier one replaces it."""
        t = self._table
        objects, by_node = t._objects, t._by_node
        get, node_get = objects.get, by_node.get
        digest = t._hash
        legacy = legacy_record_digest if t._legacy is not None else None
        total = ltotal = count = 0
        # The hot loop of every full load: one pass, locals only, no per-record helpers.
        for r in records:
            if type(r) is not EndpointRecord:  # the one check worth its cost: it guards the index
                raise TypeError(f"not an endpoint record: {type(r).__name__}")
            oid = r.object_id
            eps = get(oid)
            if eps is None:
                eps = objects[oid] = {}
            hp = (r.host, r.port)
            old = eps.get(hp)
            eps[hp] = r
            total += digest(r)
            if legacy is not None:
                ltotal += legacy(r) - (legacy(old) if old is not None else 0)
            if old is None:
                count += 1
            else:
                total -= digest(old)
                if old.node_name and old.node_name != r.node_name:
                    t._unlink(old.node_name, oid, eps)
            node = r.node_name
            if node:
                ids = node_get(node)
                if ids is None:
                    by_node[node] = {oid}
                else:
                    ids.add(oid)
        t._sum = (t._sum + total) % DIGEST_MOD
        if t._legacy is not None:
            t._legacy = (t._legacy + ltotal) % LEGACY_DIGEST_MOD
        t._count += count

    def take(self) -> ObjectTable:
        """The finished table; the snapshot is empty afterwards."""
        t = self._table
        self._table = ObjectTable(t._hash, legacy=t._legacy is not None)
        return t

    @property
    def endpoint_count(self) -> int:
        return self._table.endpoint_count

    @property
    def digest(self) -> int:
        """The digest the category will have once replaced (a receiver checks it first)."""
        return self._table.digest

    @property
    def legacy_digest(self) -> int | None:
        return self._table.legacy_digest

    @property
    def hasher(self) -> Hasher:
        return self._table.hasher

    def rekey(self, hasher: Hasher) -> None:
        self._table.rekey(hasher)

    def __repr__(self) -> str:
        t = self._table
        return f"<ObjectSnapshot {len(t)} objects, {t.endpoint_count} endpoints so far>"


class ObjectTable(_DigestSums):
    """Endpoint records by object id and ``(host, port)``, indexed by node name."""

    __slots__ = ("_by_node", "_count", "_objects")

    def __init__(self, hasher: Hasher = UNKEYED, *, legacy: bool = False) -> None:
        self._objects: dict[str, Endpoints] = {}
        self._by_node: dict[str, set[str]] = {}
        self._count = 0
        self._hash = hasher
        self._sum = 0
        self._legacy: int | None = 0 if legacy else None

    def _all_records(self) -> Iterator[EndpointRecord]:
        return self.records()

    # -- reads

    def get(self, object_id: str) -> Mapping[HostPort, EndpointRecord] | None:
        return self._objects.get(object_id)

    def ids(self) -> KeysView[str]:
        return self._objects.keys()

    def objects_on_node(self, node_name: str) -> Set[str]:
        return self._by_node.get(node_name, _NO_IDS)

    def records(self) -> Iterator[EndpointRecord]:
        return chain.from_iterable(eps.values() for eps in self._objects.values())

    @property
    def endpoint_count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return len(self._objects)

    # -- writes

    def put(self, r: EndpointRecord) -> bool:
        """Insert or replace one endpoint; False when it was already there unchanged."""
        oid = r.object_id
        eps = self._objects.get(oid)
        if eps is None:
            eps = self._objects[oid] = {}
        hp = (r.host, r.port)
        old = eps.get(hp)
        if old == r:
            return False
        eps[hp] = r
        h = self._hash
        if self._legacy is not None:
            lg = legacy_record_digest
            self._legacy += lg(r) - (lg(old) if old is not None else 0)
        if old is None:
            self._count += 1
            self._sum += h(r)
        else:
            self._sum += h(r) - h(old)
            if old.node_name and old.node_name != r.node_name:
                self._unlink(old.node_name, oid, eps)
        if r.node_name:
            self._by_node.setdefault(r.node_name, set()).add(oid)
        return True

    def delete(self, key: str) -> str | None:
        """Remove the endpoint with this key; returns its object id, None if absent."""
        parts = split_endpoint_key(key)
        if parts is None:
            return None
        oid, host, port = parts
        eps = self._objects.get(oid)
        old = eps.pop((host, port), None) if eps is not None else None
        if eps is None or old is None:
            return None
        if not eps:
            del self._objects[oid]
        self._count -= 1
        self._sum -= self._hash(old)
        if self._legacy is not None:
            self._legacy -= legacy_record_digest(old)
        if old.node_name:
            self._unlink(old.node_name, oid, eps)
        return oid

    def _unlink(self, node: str, oid: str, eps: Endpoints) -> None:
        """Drop ``oid`` from the node's index unless another of its endpoints is there.

        A scan of one object's endpoints (a handful) keeps the index exact, so it cannot
        accumulate stale ids as endpoints move between nodes.
        """
        if any(r.node_name == node for r in eps.values()):
            return
        ids = self._by_node.get(node)
        if ids is not None:
            ids.discard(oid)
            if not ids:
                del self._by_node[node]

    # -- comparisons

    def changed_ids(self, other: ObjectTable) -> set[str]:
        """Object ids whose endpoints differ between the two tables."""
        a, b = self._objects, other._objects
        if not a:
            return set(b)
        if not b:
            return set(a)
        changed = {oid for oid, eps in a.items() if b.get(oid) != eps}
        changed.update(b.keys() - a.keys())
        return changed

    def diff(self, target: Mapping[str, Endpoints]) -> list[Change]:
        """The changes that turn this table into ``target`` (from :func:`group_by_object`)."""
        mine = self._objects
        out: list[Change] = []
        for oid in mine.keys() | target.keys():
            have = mine.get(oid, {})
            want = target.get(oid, {})
            if have == want:  # the common case, compared in C
                continue
            for host, port in have.keys() - want.keys():
                out.append((Op.DELETE, endpoint_key(oid, host, port), None))
            for hp, r in want.items():
                if have.get(hp) != r:
                    out.append((Op.PUT, endpoint_key(oid, hp[0], hp[1]), r))
        out.sort(key=_change_key)
        return out


def _change_key(change: Change) -> str:
    return change[1]
