"""``tarscascade store ...`` as a subprocess: backup, restore under a running registry,
new-epoch, confirm-epoch, status."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tarscascade.model import EndpointRecord
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import Put, SqlStore
from tarscascade.testing import eventually

OBJ = "Test.HelloServer.HelloObj"


def ep(port: int) -> EndpointRecord:
    return EndpointRecord(OBJ, "10.0.0.1", port)


async def store_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tarscascade.cli", "store", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def status(db: str) -> dict[str, Any]:
    r = await store_cli("status", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


async def test_backup_and_restore_under_a_running_registry(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/registry.db"
    store = await asyncio.to_thread(SqlStore.open, db)
    core = RegistryCore(store, RegistryOptions(tail_interval=0.02, reload_interval=0))
    await core.start()
    loops = asyncio.create_task(core.run())
    try:
        await core.write([Put(ep(1))])
        backup = tmp_path / "backup.db"
        r = await store_cli("backup", "--db", db, str(backup))
        assert r.returncode == 0, r.stderr
        assert (await store_cli("backup", "--db", db, str(backup))).returncode == 2  # exists
        await core.write([Put(ep(2)), Put(ep(3))])
        served = core.version
        r = await store_cli("restore", "--db", db, str(backup), "--reason", "test")
        assert r.returncode == 0, r.stderr
        assert "confirmed  NO" in r.stdout  # 1 of 3 endpoints kept
        await eventually(lambda: core.epoch != served.epoch, timeout=20, what="new epoch")
        assert sorted(e.port for e in core.catalog.get_object(OBJ)) == [1]
        assert core.revision > served.revision
        assert not core.epoch_confirmed
        assert core.lineage.reason.startswith("store restore: test")
        # one new epoch, straight after the served one: the registry never saw the restored
        # data before its epoch (it would have started one of its own, "detected by a
        # registry", and the restore's would have come second)
        assert core.lineage.previous_epoch == served.epoch
        staged = await asyncio.to_thread(lambda: list(tmp_path.glob(".registry.db.restore-*")))
        assert not staged  # the staging copy is gone
        st = await status(db)
        assert st["epoch"] == core.epoch
        assert st["lineage"]["previous_endpoints"] == 3
        # confirm: refused for another epoch, accepted for this one, seen by the registry
        r = await store_cli("confirm-epoch", "--db", db, "--epoch", served.epoch)
        assert r.returncode == 1
        assert "nothing confirmed" in r.stderr
        r = await store_cli("confirm-epoch", "--db", db, "--epoch", core.epoch, "--by", "ops")
        assert r.returncode == 0, r.stderr
        await eventually(lambda: core.epoch_confirmed, timeout=20, what="confirmation")
        assert core.lineage.confirmed_by == "ops"
        await core.write([Put(ep(4))])  # and writes continue in the new lineage
        assert sorted(e.port for e in core.catalog.get_object(OBJ)) == [1, 4]
    finally:
        loops.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loops
        await core.aclose()
        store.close()


async def test_new_epoch_is_followed_by_running_registries(db_url: str) -> None:
    store = await asyncio.to_thread(SqlStore.open, db_url)
    core = RegistryCore(store, RegistryOptions(tail_interval=0.02, reload_interval=0))
    await core.start()
    loops = asyncio.create_task(core.run())
    try:
        await core.write([Put(ep(1)), Put(ep(2))])
        old = core.version
        r = await store_cli("new-epoch", "--db", db_url, "--reason", "planned", "--json")
        assert r.returncode == 0, r.stderr
        made = json.loads(r.stdout)
        assert made["confirmed"] is True  # nothing lost
        assert made["previous_epoch"] == old.epoch
        await eventually(lambda: core.epoch == made["epoch"], timeout=20, what="adopted")
        assert core.revision >= made["base_revision"] > old.revision
        assert sorted(e.port for e in core.catalog.get_object(OBJ)) == [1, 2]
        assert core.epoch_confirmed
    finally:
        loops.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loops
        await core.aclose()
        store.close()


async def test_store_commands_never_create_a_database(tmp_path: Path) -> None:
    r = await store_cli("status", "--db", f"sqlite:///{tmp_path}/none.db")
    assert r.returncode == 1
    assert "--init" in r.stderr
    assert not (tmp_path / "none.db").exists()
