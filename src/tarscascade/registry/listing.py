"""The object listing behind ``GET /v1/objects``: sorted, paginated, never a stall.

The registry's event loop also answers QueryF and runs the cascade, so the listing
must never walk the whole catalog in one step (200,000 objects take ~1 s to count and
encode). It is kept as sorted chunks of object ids with per-object counts, built once
in slices that yield to the loop between them, then kept current from the catalog's
change notifications: a write marks its objects dirty and the next page request
recounts just those (sliced too). A page is then a bisect plus ``limit`` rows.

Two costs hide outside the code and are designed away:

* **the cyclic garbage collector**: a collection walks every pointer of every tracked
  container it covers, and 200,000 pointers cost 5-8 ms (a cache miss each). So no
  step ever holds a long list: ids are copied from the catalog a run at a time, and
  the listing keeps them as tuples of at most ``2 * CHUNK`` and counts in ``array``
  (never tracked). A tuple of strings is untracked by the first collection that sees
  it, so it is walked once, not by every collection after; and the build asks for
  that young collection itself after each tuple (:func:`_walk_young`), else the
  first automatic one would find all 200 of them young at once;
* **one C call over everything**: even ``list(ids)`` of 200,000 takes ~5 ms.

A cursor is the last object id of the previous page, so paging stays correct across
writes: an object added behind the cursor is not seen, one removed ahead is skipped,
none is listed twice. Each page reports the objects revision it reflects.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import heapq
import itertools
import time
from array import array
from collections.abc import Iterator, KeysView, Set
from dataclasses import dataclass
from typing import Any

from tarscascade.model import Category

#: the longest the listing works before it yields to the event loop (QueryF waits that long)
SLICE_S = 0.001
#: ids copied and sorted per step while building (a sort is one C call: keep it short)
RUN = 1_000
#: ids per chunk of the kept listing; a chunk splits at twice this
CHUNK = 1_000
#: the budget is checked every this many objects counted
CHECK_EVERY = 64
#: past this many dirty objects a rebuild is cheaper than recounting one by one
REBUILD_AT = 50_000
#: writes that may restart a build's copy of the ids before it copies in one step
COPY_RESTARTS = 3
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


class _Budget:
    """Time left in the current slice; :meth:`pause` yields once it is spent."""

    def __init__(self) -> None:
        self.deadline = time.perf_counter() + SLICE_S

    async def pause(self) -> None:
        if time.perf_counter() > self.deadline:
            await asyncio.sleep(0)
            self.deadline = time.perf_counter() + SLICE_S


class ObjectListing:
    """Attach to a registry core's catalog; ask :meth:`page` from the event loop."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self._catalog: Any = None
        # sorted ids in chunks; per id ``endpoints << 32 | active`` in a parallel array
        self._chunks: list[tuple[str, ...]] = []
        self._counts: list[array[int]] = []
        self._lasts: list[str] = []  # the last id of each chunk, for bisect
        self._starts: list[int] | None = None  # global index of each chunk's first id
        self._dirty: set[str] | None = None  # None: rebuild from scratch
        self._notified = 0  # catalog notifications seen: a copy in progress checks it
        self._lock = asyncio.Lock()
        self.rebuilds = 0
        self.copy_restarts = 0

    def _changed(self, affected: Set[str] | None) -> None:
        self._notified += 1
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

    # ------------------------------------------------------------------ reads

    async def page(self, *, limit: int, cursor: str = "", prefix: str = "") -> ObjectPage:
        """Up to ``limit`` objects after ``cursor`` whose id starts with ``prefix``."""
        await self._refresh()
        # the refresh ran its last slice with no yield since: ids, rows, revision agree
        revision = self._catalog.version(Category.OBJECTS).revision
        lo = self._index(prefix)
        hi = self._index(prefix + "\U0010ffff") if prefix else self._total()
        start = max(lo, self._index(cursor, after=True)) if cursor else lo
        end = min(hi, start + max(1, min(limit, MAX_LIMIT)))
        rows = [_row(oid, packed) for oid, packed in self._slice(start, end)]
        next_cursor = rows[-1].object_id if end < hi and rows else None
        return ObjectPage(rows, next_cursor, hi - lo, revision)

    def _starts_now(self) -> list[int]:
        starts = self._starts
        if starts is None:
            starts = self._starts = [0, *itertools.accumulate(map(len, self._chunks))]
        return starts

    def _total(self) -> int:
        return self._starts_now()[-1]

    def _index(self, key: str, *, after: bool = False) -> int:
        """The global index of the first id ``>= key`` (``> key`` with ``after``)."""
        find = bisect.bisect_right if after else bisect.bisect_left
        i = find(self._lasts, key)  # the first chunk that holds such an id
        if i == len(self._chunks):
            return self._total()
        return self._starts_now()[i] + find(self._chunks[i], key)

    def _slice(self, start: int, end: int) -> Iterator[tuple[str, int]]:
        starts = self._starts_now()
        i = bisect.bisect_right(starts, start) - 1
        offset = start - starts[i] if start < starts[-1] else 0
        left = end - start
        while left > 0 and i < len(self._chunks):
            ids, counts = self._chunks[i], self._counts[i]
            take = min(left, len(ids) - offset)
            yield from zip(ids[offset : offset + take], counts[offset : offset + take], strict=True)
            left -= take
            i, offset = i + 1, 0

    # ------------------------------------------------------------------ upkeep

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
        budget = _Budget()
        runs = await self._sorted_runs(catalog.object_ids(), budget)
        chunks: list[tuple[str, ...]] = []
        merged = heapq.merge(*runs)
        while chunk := tuple(itertools.islice(merged, CHUNK)):
            chunks.append(chunk)
            _walk_young()
            await budget.pause()
        del runs, merged
        counts: list[array[int]] = []
        for chunk in chunks:
            packed = array("Q")
            for n, oid in enumerate(chunk):
                packed.append(_count(catalog, oid))
                if n % CHECK_EVERY == 0:
                    await budget.pause()
            counts.append(packed)
        # objects removed while counting are dropped by the recount of the dirty set
        self._chunks, self._counts = chunks, counts
        self._lasts = [c[-1] for c in chunks]
        self._starts = None

    async def _sorted_runs(self, ids: KeysView[str], budget: _Budget) -> list[tuple[str, ...]]:
        """The catalog's ids as sorted runs, copied a run at a time between slices.

        A live dict view survives a pause only if nothing wrote to the catalog
        meanwhile (a write may resize the dict under the iterator): the copy
        restarts then, and after :data:`COPY_RESTARTS` restarts copies in one step.
        """
        for _ in range(COPY_RESTARTS):
            seen = self._notified
            it = iter(ids)
            runs: list[tuple[str, ...]] = []
            while self._notified == seen:
                run = sorted(itertools.islice(it, RUN))
                if not run:
                    return runs
                runs.append(tuple(run))
                _walk_young()
                await budget.pause()
            self.copy_restarts += 1
        every = tuple(ids)  # written to all along: take one consistent copy
        return [tuple(sorted(every[i : i + RUN])) for i in range(0, len(every), RUN)]

    async def _recount(self) -> None:
        assert self._dirty is not None
        budget = _Budget()
        while self._dirty:
            batch = [self._dirty.pop() for _ in range(min(RUN, len(self._dirty)))]
            for n, oid in enumerate(batch):
                self._update(oid)
                if n % CHECK_EVERY == 0:
                    await budget.pause()

    def _update(self, oid: str) -> None:
        catalog = self._catalog
        row = _count(catalog, oid) if catalog.has_object(oid) else None
        chunks, counts, lasts = self._chunks, self._counts, self._lasts
        if not chunks:
            if row is not None:
                chunks.append((oid,))
                counts.append(array("Q", [row]))
                lasts.append(oid)
                self._starts = None
            return
        i = min(bisect.bisect_left(lasts, oid), len(chunks) - 1)
        ids = chunks[i]
        j = bisect.bisect_left(ids, oid)
        present = j < len(ids) and ids[j] == oid
        if row is None:
            if not present:
                return
            del counts[i][j]
            if len(ids) == 1:
                del chunks[i], counts[i], lasts[i]
            else:
                chunks[i] = ids = ids[:j] + ids[j + 1 :]
                lasts[i] = ids[-1]
        elif present:
            counts[i][j] = row
            return
        else:
            chunks[i] = ids = (*ids[:j], oid, *ids[j:])
            counts[i].insert(j, row)
            lasts[i] = ids[-1]
            if len(ids) > 2 * CHUNK:
                half = len(ids) // 2
                tail = counts[i][half:]
                del counts[i][half:]
                chunks[i : i + 1] = [ids[:half], ids[half:]]
                counts.insert(i + 1, tail)
                lasts[i : i + 1] = [ids[half - 1], ids[-1]]
        self._starts = None


def _walk_young() -> None:
    """Collect the youngest generation now: it holds one new tuple of ids, which the
    collector walks once and untracks (tens of microseconds, not milliseconds)."""
    gc.collect(0)


def _count(catalog: Any, oid: str) -> int:
    endpoints, active = catalog.object_counts(oid)
    return int(endpoints) << 32 | int(active)


def _row(oid: str, packed: int) -> ObjectRow:
    return ObjectRow(oid, packed >> 32, packed & 0xFFFFFFFF)
