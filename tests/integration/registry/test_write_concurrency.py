"""1,000 interleaved drains, present-state reports, weight updates, adds and removes on the
same endpoints, from several tasks on two registries sharing one database.

Every acknowledged write carries the revision it committed at. Replaying the writes that
changed something in that order, each as the field-level change it asked for, must give
exactly the change log's record at each revision and the final state of the database and
of both catalogs: no acknowledged field is lost, whatever the interleaving. A write that
found nothing to change must agree with the replayed state at its revision too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tarscascade.errors import ConflictError, NotFoundError
from tarscascade.model import EndpointRecord, State
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.servants import ReportServant
from tarscascade.store import Put, SqlStore
from tarscascade.wire.idl.reportf import REPORT_STATES, EndpointStateF, ReportStatesReq

OBJ = "Test.HelloServer.HelloObj"
HOST = "10.0.0.1"
NODE = "n1"
FIXED = range(1, 5)  # endpoints that always exist: drained, reported, re-weighted
SPARE = range(100, 104)  # endpoints added and removed
TASKS = 8
OPS = 1000
SEED = 20261201

Model = dict[int, EndpointRecord]


@dataclass(frozen=True)
class Done:
    revision: int
    port: int
    kind: str  # patch, add, remove; or the no-op checks: same, exists, absent
    changes: dict[str, Any] | None = None
    record: EndpointRecord | None = None


@pytest.fixture
async def two_registries(db_url: str) -> AsyncIterator[list[RegistryCore]]:
    opened: list[tuple[RegistryCore, SqlStore]] = []
    for _ in range(2):
        store = await asyncio.to_thread(SqlStore.open, db_url)
        core = RegistryCore(store, RegistryOptions(reload_interval=0))
        await core.start()
        opened.append((core, store))
    yield [c for c, _ in opened]
    for core, store in opened:
        await core.aclose()
        store.close()


def _record(port: int, **kw: Any) -> EndpointRecord:
    return EndpointRecord(OBJ, HOST, port, node_name=NODE, **kw)


async def _one(core: RegistryCore, rng: random.Random, weight: int) -> Done:
    admin = RegistryAdmin(core)
    kind = rng.choice(["drain", "undrain", "report", "weight", "add", "remove"])
    if kind in ("add", "remove"):
        port = rng.choice(SPARE)
        if kind == "add":
            try:
                res = await admin.add_endpoint(_record(port, weight=weight))
            except ConflictError:
                return Done(0, port, "exists")
            return Done(res.revision, port, "add", record=res.record)
        try:
            res = await admin.remove_endpoint(OBJ, HOST, port)
        except NotFoundError:
            return Done(0, port, "absent")
        return Done(res.revision, port, "remove")
    port = rng.choice(FIXED)
    if kind == "report":
        state = rng.choice(["active", "inactive"])
        servant = ReportServant(core, token="t")
        req = ReportStatesReq(NODE, "t", [EndpointStateF(OBJ, HOST, port, state)])
        ret, body, desc = await servant._apply(req)
        assert ret == 0
        (n,) = REPORT_STATES.decode_result(body)
        revision = int(desc.removeprefix("revision "))
        changes: dict[str, Any] = {"present_state": State(state)}
        return Done(revision, port, "patch" if n == 1 else "same", changes)
    if kind == "weight":
        changes = {"weight": weight}
        res = await admin.update_endpoint(OBJ, HOST, port, changes)
    elif kind == "drain":
        changes = {"setting_state": State.INACTIVE}
        # force: whether it is the last active one depends on the interleaving
        drained = await admin.drain(OBJ, HOST, port, timeout=0, force=True)
        if not drained.changed:  # its revision is not the write's: not compared below
            return Done(0, port, "inactive already")
        return Done(drained.version.revision, port, "patch", changes, drained.record)
    else:
        changes = {"setting_state": State.ACTIVE}
        res = await admin.set_endpoint_state(OBJ, HOST, port, State.ACTIVE)
    return Done(res.revision, port, "patch" if res.changed else "same", changes, res.record)


async def test_interleaved_writes_equal_a_serial_replay_in_commit_order(
    two_registries: list[RegistryCore],
) -> None:
    a, b = two_registries
    await a.write([Put(_record(p, weight=p)) for p in FIXED])
    await b.catch_up()
    start: Model = {p: _record(p, weight=p) for p in FIXED}
    start_revision = a.revision
    rng = random.Random(SEED)
    seeds = [rng.randrange(2**32) for _ in range(TASKS)]
    done: list[Done] = []

    async def worker(i: int) -> None:
        core = two_registries[i % 2]
        r = random.Random(seeds[i])
        for n in range(OPS // TASKS):
            done.append(await _one(core, r, weight=1000 + i * OPS + n))

    await asyncio.gather(*(worker(i) for i in range(TASKS)))
    assert len(done) == OPS

    effects = sorted(
        (d for d in done if d.kind in ("patch", "add", "remove")), key=lambda d: d.revision
    )
    revisions = [d.revision for d in effects]
    assert len(set(revisions)) == len(revisions), "two acknowledged writes share a revision"
    log = {
        e.revision: e
        for e in await asyncio.to_thread(a.store.changes_since, start_revision, 10 * OPS)
    }
    assert sorted(log) == revisions, "the change log holds exactly the acknowledged changes"

    model: Model = dict(start)
    for d in effects:
        if d.kind == "patch":
            assert d.changes is not None
            model[d.port] = dataclasses.replace(model[d.port], **d.changes)
        elif d.kind == "add":
            assert d.port not in model, f"add of {d.port} at {d.revision} over an existing one"
            assert d.record is not None
            model[d.port] = d.record
        else:
            assert d.port in model, f"remove of {d.port} at {d.revision} of nothing"
            del model[d.port]
        event = log[d.revision]
        assert event.record == model.get(d.port), f"revision {d.revision}: {d}"

    # the answers that changed nothing agree with the replayed state at their revision
    for d in done:
        if d.kind == "same":
            state = _state_at(start, effects, d.revision)
            assert d.changes is not None
            for field, value in d.changes.items():
                assert getattr(state[d.port], field) == value, d

    snap = await asyncio.to_thread(a.store.load)
    assert {e.port: e for e in snap.endpoints} == model
    for core in (a, b):
        await core.catch_up()
        assert {e.port: e for e in core.catalog.get_object(OBJ)} == model
    assert sum(d.kind == "patch" for d in done) > OPS // 4  # the test exercised the race


def _state_at(start: Model, effects: list[Done], revision: int) -> Model:
    model = dict(start)
    for d in effects:
        if d.revision > revision:
            break
        if d.kind == "patch":
            assert d.changes is not None
            model[d.port] = dataclasses.replace(model[d.port], **d.changes)
        elif d.kind == "add":
            assert d.record is not None
            model[d.port] = d.record
        else:
            model.pop(d.port, None)
    return model
