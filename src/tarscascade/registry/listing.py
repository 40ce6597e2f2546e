"""The object listing behind ``GET /v1/objects``: sorted, paginated, never a stall.

The registry's event loop also answers QueryF and runs the cascade, so the listing
must never walk the whole catalog in one step (200,000 objects take ~1 s to count and
encode). It is kept as a sorted list of object ids with per-object counts, built once
in slices that yield to the loop between them, then kept current from the catalog's
change notifications: a write marks its objects dirty and the next page request
recounts just those (sliced too). A page is then a bisect plus ``limit`` rows.

A cursor is the last object id of the previous page, so paging stays correct across
writes: an object added behind the cursor is not seen, one removed ahead is skipped,
none is listed twice. Each page reports the objects revision it reflects.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import time
from collections.abc import AsyncIterator, Iterable, Set
from dataclasses import dataclass
from typing import Any

from tarscascade.model import Category

#: the longest the listing works before it yields to the event loop (QueryF waits that long)
SLICE_S = 0.002
#: ids sorted per run before the runs are merged (a sort is one C call: keep it short)
RUN = 2_000
#: the budget is checked every this many items
CHECK_EVERY = 64
#: past this many dirty objects a rebuild is cheaper than recounting one by one
REBUILD_AT = 50_000
MAX_LIMIT = 1_000


@dataclass(frozen=True, slots=True)
class ObjectRow:
    object_id: str
    endpoints: int
    active: int

    @property
    def inactive(self) -> int:
        return self.endpoints - self.active


@dataclass(frozen=True, slots=True)
class ObjectPage:
    rows: list[ObjectRow]
    next_cursor: str | None
    total: int  # objects matching the prefix
    revision: int  # the objects revision the listing reflects


class ObjectListing:
    """Attach to a registry core's catalog; ask :meth:`page` from the event loop."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self._catalog: Any = None
        self._ids: list[str] = []
        # per id, endpoints << 32 | active, in a list parallel to _ids: ints are not
        # tracked by the garbage collector, and a list grows without a rehash (a dict of
        # 200,000 entries resizes in one ~10 ms step)
        self._packed: list[int] = []
        self._dirty: set[str] | None = None  # None: rebuild from scratch
        self._lock = asyncio.Lock()
        self.rebuilds = 0

    def _changed(self, affected: Set[str] | None) -> None:
        if affected is None or self._dirty is None:
            self._dirty = None
        else:
            self._dirty.update(affected)
            if len(self._dirty) > REBUILD_AT:
                self._dirty = None

    def _attach(self) -> None:
        catalog = self.core.catalog
        if catalog is self._catalog:
            return
        if self._catalog is not None:
            self._catalog.remove_listener(self._changed)
        catalog.add_listener(self._changed)
        self._catalog, self._dirty = catalog, None

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.remove_listener(self._changed)
            self._catalog = None

    async def page(self, *, limit: int, cursor: str = "", prefix: str = "") -> ObjectPage:
        """Up to ``limit`` objects after ``cursor`` whose id starts with ``prefix``."""
        await self._refresh()
        # the refresh ran its last slice with no yield since: ids, rows, revision agree
        revision = self._catalog.version(Category.OBJECTS).revision
        ids = self._ids
        lo = bisect.bisect_left(ids, prefix)
        hi = bisect.bisect_left(ids, prefix + "\U0010ffff") if prefix else len(ids)
        start = max(lo, bisect.bisect_right(ids, cursor)) if cursor else lo
        end = min(hi, start + max(1, min(limit, MAX_LIMIT)))
        packed = self._packed
        rows = [_row(ids[i], packed[i]) for i in range(start, end)]
        next_cursor = ids[end - 1] if end < hi and rows else None
        return ObjectPage(rows, next_cursor, hi - lo, revision)

    async def _refresh(self) -> None:
        async with self._lock:
            while True:
                self._attach()
                if self._dirty is None:
                    await self._rebuild()
                elif self._dirty:
                    await self._recount()
                # a write during the last await may have dirtied more: settle without yielding
                if self._catalog is self.core.catalog and self._dirty == set():
                    return

    async def _rebuild(self) -> None:
        self.rebuilds += 1
        self._dirty = set()  # changes from now on are caught by the listener
        catalog = self._catalog
        ids = list(catalog.object_ids())  # one C-speed copy; the view is live
        runs: list[list[str]] = []
        async for start in _sliced(range(0, len(ids), RUN), every=1):
            runs.append(sorted(ids[start : start + RUN]))
        merged: list[str] = []
        async for oid in _sliced(heapq.merge(*runs)):
            merged.append(oid)
        packed: list[int] = []
        async for oid in _sliced(merged):
            packed.append(_count(catalog, oid))
        # objects removed while counting are dropped by the recount of the dirty set
        self._ids, self._packed = merged, packed

    async def _recount(self) -> None:
        assert self._dirty is not None
        while self._dirty:
            batch = [self._dirty.pop() for _ in range(min(RUN, len(self._dirty)))]
            async for oid in _sliced(batch):
                self._update(oid)

    def _update(self, oid: str) -> None:
        row = _count(self._catalog, oid) if self._catalog.has_object(oid) else None
        ids = self._ids
        i = bisect.bisect_left(ids, oid)
        present = i < len(ids) and ids[i] == oid
        if row is None:
            if present:
                del ids[i]
                del self._packed[i]
        elif present:
            self._packed[i] = row
        else:
            ids.insert(i, oid)
            self._packed.insert(i, row)


def _count(catalog: Any, oid: str) -> int:
    eps = catalog.get_object(oid)
    return len(eps) << 32 | sum(1 for e in eps if catalog.is_active(e))


def _row(oid: str, packed: int) -> ObjectRow:
    return ObjectRow(oid, packed >> 32, packed & 0xFFFFFFFF)


async def _sliced(items: Iterable[Any], every: int = CHECK_EVERY) -> AsyncIterator[Any]:
    """``items``, yielding to the event loop whenever :data:`SLICE_S` of work has passed."""
    deadline = time.perf_counter() + SLICE_S
    for i, item in enumerate(items):
        yield item
        if i % every == 0 and time.perf_counter() > deadline:
            await asyncio.sleep(0)
            deadline = time.perf_counter() + SLICE_S
