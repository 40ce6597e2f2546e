"""SnapshotCache: shared, progressive builds; a badly planned build falls back to exact."""

from __future__ import annotations

import asyncio

import pytest

from tarscascade.cascade.replica import Outcome, Replica
from tarscascade.cascade.snapshots import SnapshotCache, SnapshotFailed
from tarscascade.catalog import Catalog
from tarscascade.model import Category, EndpointRecord, Version
from tarscascade.wire.rpc import ClientRpc, Push

V = Version("e", 9)


def catalog_of(records: list[EndpointRecord]) -> Catalog:
    cat = Catalog()
    cat.replace_category(Category.OBJECTS, records, V)
    return cat


async def take(cache: SnapshotCache, catalog: Catalog) -> Catalog:
    """Everything a session would send, applied to a fresh replica."""
    snap = cache.get(Category.OBJECTS)
    replica, out = Replica(Catalog()), None
    rpc = ClientRpc()
    for seq in range(snap.total):
        (push,) = rpc.receive_data(await snap.frame(seq))
        assert isinstance(push, Push)
        out = replica.handle(push.func, push.packet.sBuffer)
    assert out is not None
    assert out.outcome is Outcome.APPLIED
    return replica.catalog


async def test_a_progressive_build_is_shared_and_matches_the_catalog() -> None:
    records = [EndpointRecord(f"App.S{i}.Obj", "10.0.0.1", 1000 + i) for i in range(3000)]
    catalog = catalog_of(records)
    cache = SnapshotCache(catalog, chunk_bytes=8 * 1024)
    first = cache.get(Category.OBJECTS)
    assert not first.complete  # being built while sessions already send
    assert cache.get(Category.OBJECTS) is first  # one build for everybody
    replica = await take(cache, catalog)
    assert first.complete
    assert first.total > 10
    assert replica.digest(Category.OBJECTS) == catalog.digest(Category.OBJECTS)
    assert replica.version(Category.OBJECTS) == V
    assert cache.builds == 1
    await cache.aclose()


async def test_very_uneven_records_abandon_the_plan_for_an_exact_build() -> None:
    # The sample (every 8th of 4096 records) sees only short records; the others are long.
    records = [
        EndpointRecord(f"App.S{i}.Obj" + ("" if i % 8 == 0 else "x" * 1000), "10.0.0.1", 1000)
        for i in range(4096)
    ]
    catalog = catalog_of(records)
    cache = SnapshotCache(catalog, chunk_bytes=2048)
    planned = cache.get(Category.OBJECTS)

    async def send_all() -> None:
        for seq in range(planned.total):
            await planned.frame(seq)

    with pytest.raises(SnapshotFailed):
        await send_all()
    exact = cache.get(Category.OBJECTS)
    assert exact is not planned
    assert exact.complete
    replica = await take(cache, catalog)
    assert replica.digest(Category.OBJECTS) == catalog.digest(Category.OBJECTS)
    await cache.aclose()


async def test_closing_cancels_a_build_and_releases_its_waiters() -> None:
    records = [EndpointRecord(f"App.S{i}.Obj", "10.0.0.1", 1) for i in range(5000)]
    cache = SnapshotCache(catalog_of(records), chunk_bytes=1024)
    snap = cache.get(Category.OBJECTS)
    waiter = asyncio.ensure_future(snap.frame(snap.total - 1))
    await cache.aclose()
    with pytest.raises(SnapshotFailed):
        await waiter
