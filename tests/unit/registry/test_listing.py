"""The object listing: equal to a recount of the catalog after any sequence of writes,
pages that never repeat or skip across writes, and a build that yields to the loop."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.catalog.helpers import EPOCH, delete, ep, put

from tarscascade.catalog import Catalog
from tarscascade.model import Category, EndpointRecord, NodeRecord, State, Version
from tarscascade.registry import listing as listing_mod
from tarscascade.registry.listing import RUN, ObjectListing


@dataclass
class Core:
    catalog: Catalog = field(default_factory=Catalog)
    revision: int = 1

    def write(self, *records: EndpointRecord | NodeRecord) -> None:
        events = [put(self.revision + i, r) for i, r in enumerate(records)]
        self.revision += len(records)
        self.catalog.apply(events, EPOCH)

    def remove(self, r: EndpointRecord) -> None:
        self.catalog.apply([delete(self.revision, Category.OBJECTS, r.key)], EPOCH)
        self.revision += 1


def truth(cat: Catalog, prefix: str = "") -> list[tuple[str, int, int]]:
    out = []
    for oid in sorted(cat.object_ids()):
        if oid.startswith(prefix):
            eps = cat.get_object(oid)
            out.append((oid, len(eps), sum(cat.is_active(e) for e in eps)))
    return out


async def everything(listing: ObjectListing, limit: int = 7, prefix: str = "") -> list[tuple]:
    rows: list[tuple[str, int, int]] = []
    cursor = ""
    while True:
        page = await listing.page(limit=limit, cursor=cursor, prefix=prefix)
        rows += [(r.object_id, r.endpoints, r.active) for r in page.rows]
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


async def test_listing_follows_writes_and_node_liveness() -> None:
    core = Core()
    core.catalog.replace_category(
        Category.OBJECTS,
        [
            ep(f"10.0.0.{i % 7}", 1000 + i, obj=f"App.S{i:03}.Obj", node_name="n1")
            for i in range(50)
        ],
        Version(EPOCH, 1),
    )
    listing = ObjectListing(core)
    assert await everything(listing) == truth(core.catalog)
    assert listing.rebuilds == 1
    core.write(ep("10.0.1.1", 1, obj="App.S007.Obj"), ep("10.0.1.1", 1, obj="App.New.Obj"))
    core.remove(ep("10.0.0.3", 1003, obj="App.S003.Obj"))
    core.write(ep("10.0.0.4", 1004, obj="App.S004.Obj", setting_state=State.INACTIVE))
    assert await everything(listing) == truth(core.catalog)
    # a dead node turns its endpoints inactive in the counts
    core.write(NodeRecord("n1", present_state=State.INACTIVE))
    rows = await everything(listing)
    assert rows == truth(core.catalog)
    assert sum(r[2] for r in rows) == 2  # only the two endpoints without a node
    assert listing.rebuilds == 1  # all of that was incremental
    page = await listing.page(limit=5, prefix="App.S01")
    assert [r.object_id for r in page.rows] == [f"App.S01{i}.Obj" for i in range(5)]
    assert page.total == 10
    assert page.revision == core.catalog.version(Category.OBJECTS).revision


async def test_paging_across_writes_never_repeats_or_skips_a_survivor() -> None:
    core = Core()
    for i in range(40):
        core.write(ep("h", 1, obj=f"App.S{i:03}.Obj"))
    listing = ObjectListing(core)
    first = await listing.page(limit=10)
    assert first.next_cursor == "App.S009.Obj"
    core.remove(ep("h", 1, obj="App.S005.Obj"))  # behind the cursor
    core.remove(ep("h", 1, obj="App.S015.Obj"))  # ahead of it
    core.write(ep("h", 1, obj="App.S010a.Obj"))  # ahead of it: listed
    seen = [r.object_id for r in first.rows]
    cursor = first.next_cursor
    while cursor:
        page = await listing.page(limit=10, cursor=cursor)
        seen += [r.object_id for r in page.rows]
        cursor = page.next_cursor
    assert len(seen) == len(set(seen))
    assert "App.S015.Obj" not in seen
    assert "App.S010a.Obj" in seen
    assert set(seen) >= {f"App.S{i:03}.Obj" for i in range(40)} - {"App.S005.Obj", "App.S015.Obj"}


async def test_a_build_yields_to_the_loop_and_survives_writes_meanwhile() -> None:
    core = Core()
    n = RUN * 6
    core.catalog.replace_category(
        Category.OBJECTS, [ep("h", 1, obj=f"App.S{i:06}.Obj") for i in range(n)], Version(EPOCH, 1)
    )
    listing = ObjectListing(core)
    ticks = 0
    writes = 0

    async def meanwhile() -> None:  # what QueryF and the cascade would do between slices
        nonlocal ticks, writes
        while True:
            ticks += 1
            if ticks % 3 == 0:
                core.write(ep("h", 2, obj=f"App.T{writes:04}.Obj"))
                core.remove(ep("h", 1, obj=f"App.S{writes * 7:06}.Obj"))
                writes += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(meanwhile())
    try:
        page = await listing.page(limit=1)
    finally:
        task.cancel()
    assert ticks >= 5  # the loop ran between slices
    assert writes > 0
    assert page.total == len(core.catalog.object_ids())
    assert await everything(listing, limit=1000) == truth(core.catalog)


# -- the chunked store: splits, deletions and copies under writes --------------------


@settings(max_examples=60)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["put", "inactive", "remove", "page"]), st.integers(0, 59)),
        max_size=120,
    )
)
def test_any_sequence_of_writes_lists_exactly_the_catalog(ops: list[tuple[str, int]]) -> None:
    """Small chunks so that inserts split them and removals empty them."""

    async def run() -> None:
        core = Core()
        for i in range(0, 60, 2):
            core.write(ep("h", 1, obj=f"App.S{i:03}.Obj"))
        listing = ObjectListing(core)
        assert await everything(listing) == truth(core.catalog)
        for op, i in ops:
            oid = f"App.S{i:03}.Obj"
            if op == "put":
                core.write(ep("h", 1 + i % 3, obj=oid))
            elif op == "inactive":
                core.write(ep("h", 1, obj=oid, setting_state=State.INACTIVE))
            elif op == "remove":
                for port in (1, 2, 3):
                    if any(e.port == port for e in core.catalog.get_object(oid)):
                        core.remove(ep("h", port, obj=oid))
            else:
                assert await everything(listing, limit=4) == truth(core.catalog)
        assert await everything(listing, limit=3) == truth(core.catalog)
        assert await everything(listing, prefix="App.S01") == truth(core.catalog, "App.S01")
        assert listing.rebuilds == 1

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(listing_mod, "CHUNK", 4)
        mp.setattr(listing_mod, "RUN", 3)
        asyncio.run(run())


async def test_a_write_during_the_copy_restarts_it_and_the_listing_stays_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dict view cannot be trusted across a pause once the catalog was written: the copy
    starts over (and past COPY_RESTARTS takes one consistent copy), never skips an id."""
    monkeypatch.setattr(listing_mod, "RUN", 10)
    monkeypatch.setattr(listing_mod, "SLICE_S", 0.0)  # pause after every run
    core = Core()
    core.catalog.replace_category(
        Category.OBJECTS,
        [ep("h", 1, obj=f"App.S{i:05}.Obj") for i in range(500)],
        Version(EPOCH, 1),
    )
    listing = ObjectListing(core)
    written = 0

    async def writer(times: int) -> None:
        nonlocal written
        for _ in range(times):
            await asyncio.sleep(0)
            # an insert and a removal: the dict's size is unchanged, its layout is not
            core.write(ep("h", 1, obj=f"App.New{written:05}.Obj"))
            core.remove(ep("h", 1, obj=f"App.S{written * 3:05}.Obj"))
            written += 1

    task = asyncio.create_task(writer(2))
    assert await everything(listing, limit=1000) == truth(core.catalog)
    await task
    assert written == 2
    assert listing.copy_restarts >= 1
    assert listing.rebuilds == 1

    # writes on every pause: the copy gives up restarting and copies at once
    listing.close()
    listing = ObjectListing(core)
    task = asyncio.create_task(writer(1_000))
    try:
        page = await listing.page(limit=1000)
    finally:
        task.cancel()
    assert listing.copy_restarts == listing_mod.COPY_RESTARTS
    assert page.total == len(core.catalog.object_ids())
    assert await everything(listing, limit=1000) == truth(core.catalog)


async def test_a_build_never_leaves_many_ids_for_one_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The collector walks every pointer of every young container: 200,000 young ids cost
    one 5-10 ms pause. At every pause of the build, the young ids stay within two runs."""
    monkeypatch.setattr(listing_mod, "RUN", 50)
    monkeypatch.setattr(listing_mod, "CHUNK", 50)
    monkeypatch.setattr(listing_mod, "SLICE_S", 0.0)
    n = 5_000
    core = Core()
    core.catalog.replace_category(
        Category.OBJECTS, [ep("h", 1, obj=f"App.S{i:05}.Obj") for i in range(n)], Version(EPOCH, 1)
    )
    gc.collect()
    listing = ObjectListing(core)
    worst = ticks = 0

    def young_ids() -> int:
        return sum(
            len(o)
            for o in gc.get_objects(generation=0)
            if isinstance(o, tuple | list) and o and isinstance(o[0], str) and o[0][:5] == "App.S"
        )

    async def watch() -> None:
        nonlocal worst, ticks
        while True:
            ticks += 1
            worst = max(worst, young_ids())
            await asyncio.sleep(0)

    task = asyncio.create_task(watch())
    try:
        await listing.page(limit=10)
    finally:
        task.cancel()
    assert ticks > n // 50  # it looked at least once per run copied
    assert worst <= 2 * 50
    assert listing.rebuilds == 1
