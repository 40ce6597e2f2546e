"""The tier's digest key lives in the database (``tc_digest_key``, schema v6): one per
database, made once, read by every registry on it, brought back by a restore."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tarscascade.catalog.digests import key_id
from tarscascade.model import EndpointRecord
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import Put, SqlStore, schema
from tarscascade.testing import eventually

OBJ = "Test.HelloServer.HelloObj"


def test_one_key_per_database_made_once(open_store: Callable[[], SqlStore], raw: sa.Engine) -> None:
    first, second = open_store(), open_store()
    key = first.digest_key()
    assert len(key) == schema.DIGEST_KEY_BYTES
    assert second.digest_key() == key  # every registry on the database reads the same
    first.close()
    assert open_store().digest_key() == key  # a restart keeps it
    with raw.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.digest_key)).scalar() == 1


def test_a_key_deleted_by_hand_is_made_again(store: SqlStore, raw: sa.Engine) -> None:
    old = store.digest_key()
    with raw.begin() as conn:
        conn.execute(schema.digest_key.delete())
    new = store.digest_key()
    assert len(new) == schema.DIGEST_KEY_BYTES
    assert new != old
    assert store.digest_key() == new


async def _core(db: str) -> RegistryCore:
    store = await asyncio.to_thread(SqlStore.open, db)
    core = RegistryCore(store, RegistryOptions(tail_interval=0.02, reload_interval=0))
    await core.start()
    return core


async def test_registries_on_one_database_share_the_key(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/a.db"
    one, two = await _core(db), await _core(db)
    other = await _core(f"sqlite:///{tmp_path}/b.db")
    try:
        assert one.catalog.key_id == two.catalog.key_id
        assert one.catalog.key_id == key_id(await asyncio.to_thread(one.store.digest_key))
        assert other.catalog.key_id != one.catalog.key_id  # a fresh database: another key
        assert one.catalog.digest_key != b""
        kid = one.catalog.key_id
    finally:
        for c in (one, two, other):
            c.store.close()
    again = await _core(db)  # a restart keeps it
    try:
        assert again.catalog.key_id == kid
    finally:
        again.store.close()


async def test_a_restore_brings_back_the_backups_key(tmp_path: Path) -> None:
    """The backup is of another database (another key): the running registry reloads
    the restored data and keys its catalog with the key that came with it."""
    db, elsewhere = f"sqlite:///{tmp_path}/live.db", tmp_path / "elsewhere.db"
    src = await asyncio.to_thread(SqlStore.open, f"sqlite:///{elsewhere}")
    src.write([Put(EndpointRecord(OBJ, "10.0.0.1", 1))])
    theirs = key_id(src.digest_key())
    src.close()
    core = await _core(db)
    loops = asyncio.create_task(core.run())
    try:
        assert core.catalog.key_id != theirs
        backup = tmp_path / "backup.db"
        for args in (["backup", "--db", f"sqlite:///{elsewhere}", str(backup)],
                     ["restore", "--db", db, str(backup), "--confirm"]):  # fmt: skip
            r = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "tarscascade.cli", "store", *args],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr
        await eventually(lambda: core.catalog.key_id == theirs, timeout=10, what="rekeyed")
        assert core.catalog.counts()["endpoints"] == 1
    finally:
        loops.cancel()
        await asyncio.gather(loops, return_exceptions=True)
        core.store.close()
