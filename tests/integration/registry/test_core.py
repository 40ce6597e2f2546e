"""RegistryCore over real databases: writes, tailing another registry, anti-entropy, liveness."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
import sqlalchemy as sa

from tarscascade.model import Category, EndpointRecord, NodeRecord, State
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import Delete, Put, SqlStore, schema
from tarscascade.store.engine import normalize_url
from tarscascade.testing import eventually
from tarscascade.wire.idl.queryf import FIND_4ANY, FIND_IN_SAME_GROUP

OBJ = "Test.HelloServer.HelloObj"


def ep(port: int, node: str = "", **kw: object) -> EndpointRecord:
    return EndpointRecord(OBJ, "10.0.0.1", port, node_name=node, **kw)  # type: ignore[arg-type]


def answer(core: RegistryCore, method: str = "findObjectById4Any") -> tuple[list[int], list[int]]:
    data = core.answerer.answer(method, OBJ, "10.9.9.9")
    m = FIND_4ANY if method == "findObjectById4Any" else FIND_IN_SAME_GROUP
    _, active, inactive = m.decode_result(data)
    return [e.port for e in active], [e.port for e in inactive]


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def cores(
    db_url: str,
) -> AsyncIterator[Callable[..., asyncio.Future[RegistryCore]]]:
    opened: list[tuple[RegistryCore, SqlStore]] = []

    async def make(**opts: object) -> RegistryCore:
        store = await asyncio.to_thread(SqlStore.open, db_url)
        core = RegistryCore(store, RegistryOptions(**opts))  # type: ignore[arg-type]
        await core.start()
        opened.append((core, store))
        return core

    yield make  # type: ignore[misc]
    for core, store in opened:
        await core.aclose()
        store.close()


async def test_a_write_is_served_when_acknowledged(cores: Callable[..., RegistryCore]) -> None:
    core = await cores()  # type: ignore[misc]
    assert answer(core) == ([], [])
    events = await core.write([Put(ep(1001)), Put(ep(1002, setting_state=State.INACTIVE))])
    assert [e.revision for e in events] == [core.revision - 1, core.revision]
    assert answer(core) == ([1001], [1002])
    await core.write([Delete(Category.OBJECTS, ep(1001).key)])
    assert answer(core) == ([], [1002])


async def test_a_write_applies_its_own_events_unless_another_writer_came_between(
    cores: Callable[..., RegistryCore],
) -> None:
    """The registry applies a write's own events as committed (no change-log read back);
    when another registry's write came between, it reads the log instead, so nothing of
    the other write is skipped and the digests agree with a registry that loaded it all."""
    a = await cores()  # type: ignore[misc]
    b = await cores()  # type: ignore[misc]
    reads = 0
    real = a.store.changes_since

    def counted(*args: object, **kw: object) -> object:
        nonlocal reads
        reads += 1
        return real(*args, **kw)  # type: ignore[arg-type]

    a.store.changes_since = counted  # type: ignore[method-assign]
    await a.write([Put(ep(1)), Put(ep(2))])
    await a.write([Put(ep(2, weight=5))])
    assert (reads, a.stats.writes_applied_directly) == (0, 2)
    await b.write([Put(ep(3)), Delete(Category.OBJECTS, ep(1).key)])  # a has not seen it
    await a.write([Put(ep(4))])
    assert reads >= 1  # b's events came between: a caught up from the log
    assert a.stats.writes_applied_directly == 2
    assert answer(a) == ([2, 3, 4], [])
    c = await cores()  # type: ignore[misc]
    assert a.catalog.digest(Category.OBJECTS) == c.catalog.digest(Category.OBJECTS)
    assert a.version == c.version


async def test_a_restarted_registry_loads_what_was_acknowledged(
    cores: Callable[..., RegistryCore],
) -> None:
    a = await cores()  # type: ignore[misc]
    await a.write([Put(ep(1)), Put(ep(2))])
    await a.write([Delete(Category.OBJECTS, ep(1).key)])
    b = await cores()  # type: ignore[misc]  # a second process starting on the same database
    assert answer(b) == ([2], [])
    assert b.version == a.version
    for cat in Category:
        assert b.catalog.digest(cat) == a.catalog.digest(cat)


async def test_two_registries_on_one_database_follow_each_other(
    cores: Callable[..., RegistryCore],
) -> None:
    a = await cores(tail_interval=0.05)  # type: ignore[misc]
    b = await cores(tail_interval=0.05)  # type: ignore[misc]
    runner = asyncio.create_task(b.run())
    try:
        await a.write([Put(ep(7001))])
        await eventually(lambda: answer(b) == ([7001], []), timeout=10, what="b applied a's write")
        await b.write([Put(ep(7002, setting_state=State.INACTIVE))])
        await a.catch_up()
        assert answer(a) == ([7001], [7002])
        assert a.catalog.digest(Category.OBJECTS) == b.catalog.digest(Category.OBJECTS)
        assert a.version == b.version
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_rows_changed_behind_the_registry_become_change_events(
    cores: Callable[..., RegistryCore], db_url: str
) -> None:
    a = await cores()  # type: ignore[misc]
    b = await cores()  # type: ignore[misc]
    await a.write([Put(ep(1)), Put(ep(2)), Put(ep(3))])
    await b.catch_up()
    engine = sa.create_engine(normalize_url(db_url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE tc_endpoints SET setting_state = 'inactive' WHERE port = 2"
            )
            conn.exec_driver_sql("DELETE FROM tc_endpoints WHERE port = 3")
            conn.execute(
                schema.endpoints.insert().values(
                    object_id=OBJ,
                    host="10.0.0.1",
                    port=4,
                    istcp=1,
                    timeout=3000,
                    node_name="",
                    set_id="",
                    enable_group=False,
                    ip_group_name="",
                    grid=0,
                    qos=0,
                    weight=-1,
                    weight_type=0,
                    auth_type=0,
                    bak_flag=0,
                    setting_state="active",
                    present_state="active",
                )
            )
    finally:
        engine.dispose()
    before = a.revision
    assert answer(a) == ([1, 2, 3], [])  # nobody noticed yet: no change-log row
    adopted = await a.reconcile()
    assert adopted == 3
    assert answer(a) == ([1, 4], [2])
    assert a.revision == before + 3
    # the other registry gets the same corrections as ordinary events
    await b.catch_up()
    assert answer(b) == ([1, 4], [2])
    assert b.catalog.digest(Category.OBJECTS) == a.catalog.digest(Category.OBJECTS)
    assert await a.reconcile() == 0  # converged: nothing more to adopt


async def test_a_node_that_stops_heartbeating_turns_its_endpoints_inactive(
    cores: Callable[..., RegistryCore],
) -> None:
    clock = FakeClock()
    core = await cores(clock=clock, node_timeout=30)  # type: ignore[misc]
    await core.write(
        [
            Put(NodeRecord("node-a")),
            Put(NodeRecord("node-b")),
            Put(ep(1, "node-a")),
            Put(ep(2, "node-b")),
        ]
    )
    core.heartbeat("node-a")
    core.heartbeat("node-b")
    clock.t += 20
    core.heartbeat("node-a")
    assert await core.check_liveness() == 0
    clock.t += 15  # node-b silent for 35 s > 30 s
    assert await core.check_liveness() == 1
    assert answer(core) == ([1], [2])
    assert core.catalog.get_node("node-b").present_state is State.INACTIVE
    core.heartbeat("node-b")  # it comes back
    assert await core.check_liveness() == 1
    assert answer(core) == ([1, 2], [])


async def test_a_trimmed_change_log_makes_a_lagging_registry_reload(
    cores: Callable[..., RegistryCore],
) -> None:
    a = await cores()  # type: ignore[misc]
    b = await cores()  # type: ignore[misc]
    for i in range(5):
        await a.write([Put(ep(100 + i))])
    await asyncio.to_thread(a.store.trim_change_log, 1)
    reloads = b.stats.full_reloads
    await b.catch_up()
    assert b.stats.full_reloads == reloads + 1
    assert answer(b) == ([100, 101, 102, 103, 104], [])
    assert b.version == a.version


async def test_node_timeout_zero_turns_liveness_off(cores: Callable[..., RegistryCore]) -> None:
    """A registry sharing the database with the one that judges liveness must not judge."""
    clock = FakeClock()
    core = await cores(clock=clock, node_timeout=0)  # type: ignore[misc]
    await core.write([Put(NodeRecord("quiet")), Put(ep(1, "quiet"))])
    clock.t += 10_000
    assert await core.check_liveness() == 0
    assert answer(core) == ([1], [])


async def test_a_slow_anti_entropy_round_spaces_the_next(
    cores: Callable[..., RegistryCore],
) -> None:
    """100,000 endpoints take ~1 s to reload: every 60 s would be ~2 % of a core spent
    finding nothing. With a budget of 25 %, a round of 40 ms waits 160 ms, not 10."""
    core = await cores()
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def slow_round() -> None:
        starts.append(loop.time())
        await asyncio.sleep(0.04)

    task = asyncio.create_task(core._every(0.01, slow_round, "reconcile", 0.25))
    try:
        await eventually(lambda: len(starts) >= 3, timeout=10)
    finally:
        task.cancel()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.04 + 0.16 - 0.005  # the round, then took / budget
