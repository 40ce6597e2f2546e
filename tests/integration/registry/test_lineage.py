"""Reproductions of review findings 3, 4 and 11: the database's lineage is checked.

* the SQLite file deleted under a running registry (finding 3);
* a backup restored under a running registry: same epoch, lower revision (finding 4);
* the database replaced by another one (a new epoch) under a running registry (finding 11).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tarscascade.admin import create_registry_app
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.errors import StoreError
from tarscascade.model import EndpointRecord
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import Put, SqlStore, rows, schema
from tarscascade.testing import eventually

OBJ = "Test.HelloServer.HelloObj"
NEW = "New.Server.Obj"


def ep(port: int, obj: str = OBJ) -> EndpointRecord:
    return EndpointRecord(obj, "10.0.0.1", port)


def ports(core: RegistryCore, obj: str = OBJ) -> list[int]:
    return sorted(r.port for r in core.catalog.get_object(obj))


@pytest.fixture
async def sqlite_core(tmp_path: Path) -> AsyncIterator[RegistryCore]:
    store = await asyncio.to_thread(SqlStore.open, f"sqlite:///{tmp_path}/registry.db")
    core = RegistryCore(store, RegistryOptions(tail_interval=0.02, reload_interval=0))
    await core.start()
    try:
        yield core
    finally:
        await core.aclose()
        store.close()


def _backup(src: Path, dest: Path) -> None:
    """The SQLite online backup API, as an operator copies or restores a live database."""
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    a.close()
    b.close()


async def _run(core: RegistryCore) -> asyncio.Task[None]:
    return asyncio.create_task(core.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _health(core: RegistryCore) -> httpx.AsyncClient:
    app = create_registry_app(RegistryAdmin(core), token=None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


# ---------------------------------------------------------------------------- finding 3


async def test_writes_after_the_sqlite_file_was_deleted_are_refused(
    sqlite_core: RegistryCore, tmp_path: Path
) -> None:
    core = sqlite_core
    await core.write([Put(ep(1)), Put(ep(2))])
    os.unlink(tmp_path / "registry.db")
    with pytest.raises(StoreError, match=r"(?i)database file"):
        await core.write([Put(ep(3))])
    with pytest.raises(StoreError, match=r"(?i)database file"):
        await RegistryAdmin(core).add_endpoint(ep(4))
    assert ports(core) == [1, 2]  # still serving what it had
    async with _health(core) as c:
        r = await c.get("/healthz")
    assert r.status_code == 503, r.text
    assert "database file" in r.json()["error"]


async def test_a_replaced_sqlite_file_refuses_writes_until_a_restart_takes_it(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path}/registry.db"
    store = await asyncio.to_thread(SqlStore.open, db)
    core = RegistryCore(store, RegistryOptions(reload_interval=0))
    await core.start()
    try:
        await core.write([Put(ep(1)), Put(ep(2)), Put(ep(3))])
        served = core.version
        with SqlStore.open(f"sqlite:///{tmp_path}/other.db") as s:
            s.write([Put(ep(9))])
            other_epoch = s.epoch
        os.replace(tmp_path / "other.db", tmp_path / "registry.db")  # a new inode at the path
        with pytest.raises(StoreError, match="replaced"):
            await core.write([Put(ep(5))])
        assert ports(core) == [1, 2, 3]
        async with _health(core) as c:
            r = await c.get("/healthz")
        assert r.status_code == 503
        assert "replaced" in r.json()["error"]
    finally:
        await core.aclose()
        store.close()
    # the restart takes the new file, as a lineage change from what was served
    store = await asyncio.to_thread(SqlStore.open, db, create="never")
    core = RegistryCore(store)
    await core.start()
    try:
        assert ports(core) == [9]
        assert core.epoch == other_epoch  # another tarscascade database: taken as it is,
        assert core.lineage.previous_epoch == served.epoch  # judged against what was served
        assert core.lineage.previous_endpoints == 3
        assert not core.epoch_confirmed  # 3 endpoints served, 1 now: loses more than 50 %
    finally:
        await core.aclose()
        store.close()


async def test_a_restart_after_the_database_file_vanished_needs_init(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/registry.db"
    cfg = RegistryConfig(db=db, listen=("127.0.0.1", 0), http=None)
    async with RegistryProcess(cfg) as rp:
        assert rp.core is not None
        await rp.core.write([Put(ep(1)), Put(ep(2))])
    os.unlink(tmp_path / "registry.db")
    with pytest.raises(StoreError, match="--init"):
        async with RegistryProcess(cfg):
            pass
    assert not (tmp_path / "registry.db").exists()  # nothing was created


# ---------------------------------------------------------------------------- finding 4


async def test_a_backup_restored_under_a_running_registry_starts_a_new_epoch(
    sqlite_core: RegistryCore, tmp_path: Path
) -> None:
    core = sqlite_core
    path = tmp_path / "registry.db"
    await core.write([Put(ep(1)), Put(ep(2))])
    _backup(path, tmp_path / "backup.db")
    await core.write([Put(ep(3)), Put(ep(4)), Put(ep(5))])
    old = core.version
    _backup(tmp_path / "backup.db", path)  # restored in place: same epoch, revision 2
    res = await RegistryAdmin(core).add_endpoint(ep(1, NEW))
    assert ports(core) == [1, 2], "the catalog still serves what the restore removed"
    assert ports(core, NEW) == [1], "the acknowledged write is not served"
    assert core.epoch != old.epoch
    assert res.revision > old.revision  # revisions never go back, even across a restore
    snap = await asyncio.to_thread(core.store.load)
    assert snap.epoch == core.epoch
    assert sorted((e.object_id, e.port) for e in snap.endpoints) == [(NEW, 1), (OBJ, 1), (OBJ, 2)]


async def test_the_tail_detects_a_restore_without_any_write(
    sqlite_core: RegistryCore, tmp_path: Path
) -> None:
    core = sqlite_core
    path = tmp_path / "registry.db"
    await core.write([Put(ep(1))])
    _backup(path, tmp_path / "backup.db")
    await core.write([Put(ep(2))])
    old = core.epoch
    reloads = core.stats.full_reloads
    _backup(tmp_path / "backup.db", path)
    task = await _run(core)
    try:
        await eventually(lambda: core.epoch != old, timeout=10, what="a new epoch")
        assert ports(core) == [1]
        assert core.stats.full_reloads > reloads
    finally:
        await _stop(task)


async def test_a_restore_on_a_server_database_starts_a_new_epoch(
    db_url: str, raw: sa.Engine
) -> None:
    # Server databases: a restore = rows and counter put back as they were (a dump).
    store = await asyncio.to_thread(SqlStore.open, db_url)
    core = RegistryCore(store, RegistryOptions(tail_interval=0.02, reload_interval=0))
    await core.start()
    try:
        await core.write([Put(ep(1))])
        await core.write([Put(ep(2))])
        with raw.begin() as conn:  # what restoring the dump taken at revision 1 does
            conn.exec_driver_sql("DELETE FROM tc_endpoints WHERE port = 2")
            conn.exec_driver_sql("DELETE FROM tc_change_log WHERE revision > 1")
            conn.exec_driver_sql("UPDATE tc_meta SET revision = 1")
        old = core.version
        await core.write([Put(ep(3))])
        assert core.epoch != old.epoch
        assert ports(core) == [1, 3]
        assert core.revision > old.revision
    finally:
        await core.aclose()
        store.close()


# ---------------------------------------------------------------------------- finding 11


async def test_a_new_epoch_under_a_running_registry_is_loaded_and_served(
    db_url: str, raw: sa.Engine
) -> None:
    store = await asyncio.to_thread(SqlStore.open, db_url)
    core = RegistryCore(store, RegistryOptions(tail_interval=0.02, reload_interval=0))
    await core.start()
    task = await _run(core)
    try:
        await core.write([Put(ep(1))])
        old = core.epoch
        with raw.begin() as conn:  # another lineage: a replaced database
            conn.exec_driver_sql("DELETE FROM tc_endpoints")
            conn.execute(sa.insert(schema.endpoints).values(**rows.to_row(ep(8))[1]))
            conn.exec_driver_sql("UPDATE tc_meta SET epoch = 'a-replaced-database'")
        await eventually(lambda: core.epoch != old, timeout=10, what="the new lineage")
        assert ports(core) == [8]
        await core.write([Put(ep(9))])  # and writes work again
        assert ports(core) == [8, 9]
        async with _health(core) as c:
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await _stop(task)
        await core.aclose()
        store.close()


async def test_a_replaced_sqlite_file_is_followed_by_the_tail(
    sqlite_core: RegistryCore, tmp_path: Path
) -> None:
    core = sqlite_core
    await core.write([Put(ep(1))])
    old = core.epoch
    with SqlStore.open(f"sqlite:///{tmp_path}/other.db") as s:
        s.write([Put(ep(7))])
    _backup(tmp_path / "other.db", tmp_path / "registry.db")  # overwritten in place
    task = await _run(core)
    try:
        await eventually(lambda: core.epoch != old, timeout=10, what="the new lineage")
        assert ports(core) == [7]
    finally:
        await _stop(task)
