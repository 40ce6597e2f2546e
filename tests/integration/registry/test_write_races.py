"""Reproductions of review findings 8 and 18: lost updates and acknowledged-then-503 writes.

Two registries on one database make the race deterministic: the second one's catalog has
not caught up with the first one's write, which is exactly the window a concurrent write
on one registry hits by chance (the review saw 1 run in 20).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tarscascade.errors import ConflictError, StoreError
from tarscascade.model import EndpointRecord, State
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.servants import ReportServant
from tarscascade.store import Put, SqlStore
from tarscascade.wire.idl.reportf import REPORT_STATES, EndpointStateF, ReportStatesReq

OBJ = "Test.HelloServer.HelloObj"
HOST = "10.0.0.1"


@pytest.fixture
async def cores(db_url: str) -> AsyncIterator[Callable[..., asyncio.Future[RegistryCore]]]:
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


async def _report(core: RegistryCore, node: str, port: int, state: str) -> int:
    servant = ReportServant(core, token="t")
    req = ReportStatesReq(node, "t", [EndpointStateF(OBJ, HOST, port, state)])
    ret, body, _ = await servant._apply(req)
    assert ret == 0
    (n,) = REPORT_STATES.decode_result(body)
    return int(n)


async def _stored(core: RegistryCore, port: int) -> EndpointRecord:
    snap = await asyncio.to_thread(core.store.load)
    (rec,) = [e for e in snap.endpoints if e.port == port]
    return rec


async def test_a_present_state_report_does_not_undo_a_drain(
    cores: Callable[..., RegistryCore],
) -> None:
    a = await cores()  # type: ignore[misc]
    b = await cores()  # type: ignore[misc]  # another registry; its catalog lags
    await a.write([Put(EndpointRecord(OBJ, HOST, 1, node_name="n1"))])
    await b.catch_up()
    drained = await RegistryAdmin(a).drain(OBJ, HOST, 1, timeout=0, force=True)  # its only one
    assert drained.changed
    # n1's report reaches b before b tailed the drain: it must change present_state only
    assert await _report(b, "n1", 1, "inactive") == 1
    rec = await _stored(a, 1)
    assert rec.setting_state is State.INACTIVE, "the report undid the drain"
    assert rec.present_state is State.INACTIVE
    await a.catch_up()
    await b.catch_up()
    for core in (a, b):
        (served,) = core.catalog.get_object(OBJ)
        assert (served.setting_state, served.present_state) == (State.INACTIVE, State.INACTIVE)


async def test_concurrent_weight_updates_and_state_changes_keep_both(
    cores: Callable[..., RegistryCore],
) -> None:
    a = await cores()  # type: ignore[misc]
    b = await cores()  # type: ignore[misc]
    await a.write([Put(EndpointRecord(OBJ, HOST, 1, node_name="n1", weight=10))])
    for round_ in range(20):
        state = State.INACTIVE if round_ % 2 == 0 else State.ACTIVE
        await asyncio.gather(
            RegistryAdmin(a).set_endpoint_state(OBJ, HOST, 1, state),
            RegistryAdmin(b).update_endpoint(OBJ, HOST, 1, {"weight": 20 + round_}),
        )
        rec = await _stored(a, 1)
        assert (rec.setting_state, rec.weight) == (state, 20 + round_), f"round {round_}"


async def test_liveness_does_not_undo_a_node_change_or_resurrect_a_removed_node(
    cores: Callable[..., RegistryCore],
) -> None:
    from tarscascade.model import NodeRecord

    clock = [1000.0]
    a = await cores()  # type: ignore[misc]
    b = await cores(node_timeout=5.0, clock=lambda: clock[0])  # type: ignore[misc]
    await a.write([Put(NodeRecord("n1", "10.0.0.9", 19386)), Put(NodeRecord("n2"))])
    await b.catch_up()
    b.started_at = 0.0  # long running: n1 and n2 were never heard from: dead
    await RegistryAdmin(a).put_node(NodeRecord("n1", "10.0.0.9", 19386, State.INACTIVE))
    await RegistryAdmin(a).remove_node("n2")
    assert await b.check_liveness() >= 1
    snap = await asyncio.to_thread(a.store.load)
    nodes = {n.name: n for n in snap.nodes}
    assert set(nodes) == {"n1"}, "liveness resurrected a removed node"
    assert nodes["n1"].setting_state is State.INACTIVE, "liveness undid the admin's change"
    assert nodes["n1"].present_state is State.INACTIVE


async def test_concurrent_adds_on_two_registries_one_wins(
    cores: Callable[..., RegistryCore],
) -> None:
    a = await cores()  # type: ignore[misc]
    b = await cores()  # type: ignore[misc]
    for port in range(1, 11):
        first = RegistryAdmin(a).build_endpoint(OBJ, f"tcp -h {HOST} -p {port}", node_name="n1")
        second = RegistryAdmin(b).build_endpoint(OBJ, f"tcp -h {HOST} -p {port}", node_name="n2")
        results = await asyncio.gather(
            RegistryAdmin(a).add_endpoint(first),
            RegistryAdmin(b).add_endpoint(second),
            return_exceptions=True,
        )
        ok = [r for r in results if not isinstance(r, BaseException)]
        assert len(ok) == 1, results
        assert sum(isinstance(r, ConflictError) for r in results) == 1, results
        assert await _stored(a, port) == ok[0].record


async def test_concurrent_adds_on_one_registry_one_wins(
    cores: Callable[..., RegistryCore],
) -> None:
    core = await cores()  # type: ignore[misc]
    admin = RegistryAdmin(core)
    records = [
        admin.build_endpoint(OBJ, f"tcp -h {HOST} -p 7 -w {w}", node_name=f"n{w}")
        for w in range(1, 9)
    ]
    results = await asyncio.gather(
        *(admin.add_endpoint(r) for r in records), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ConflictError)]
    assert len(ok) == 1, results
    assert len(refused) == len(records) - 1, results
    rec = await _stored(core, 7)
    assert rec == ok[0].record


async def test_a_committed_write_is_reported_as_succeeded_when_the_catch_up_fails(
    cores: Callable[..., RegistryCore], monkeypatch: pytest.MonkeyPatch
) -> None:
    core = await cores()  # type: ignore[misc]
    admin = RegistryAdmin(core)
    record = admin.build_endpoint(OBJ, f"tcp -h {HOST} -p 5")
    # another registry's write that core has not seen: core's next write cannot apply its
    # own events alone, it catches up from the change log (the read that fails here)
    other = await cores()  # type: ignore[misc]
    await RegistryAdmin(other).add_endpoint(admin.build_endpoint(OBJ, f"tcp -h {HOST} -p 6"))
    real = core.store.changes_since
    failures = [1]

    def flaky(revision: int, limit: int = 1000) -> object:
        if failures:
            failures.pop()
            raise StoreError("changes_since failed: the database went away for a moment")
        return real(revision, limit)

    monkeypatch.setattr(core.store, "changes_since", flaky)
    res = await admin.add_endpoint(record)  # committed, then the catch-up failed once
    assert res.revision > 0
    assert res.applied is False  # acknowledged as "committed, catching up"
    assert (await _stored(core, 5)) == record
    # the catalog catches up on the next round; a retry by the caller is not needed
    await core.catch_up()
    assert record in core.catalog.get_object(OBJ)
    assert {e.port for e in core.catalog.get_object(OBJ)} == {5, 6}
