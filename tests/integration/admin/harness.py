"""A real registry core over a temporary SQLite file, and its admin app (shared by tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore
from tarscascade.store import SqlStore

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def running_core(tmp_path: Path) -> AsyncIterator[RegistryCore]:
    store = SqlStore.open(f"sqlite:///{tmp_path}/r.db")
    core = RegistryCore(store)
    try:
        await core.start()
        yield core
    finally:
        await core.aclose()
        store.close()


def admin_of(core: RegistryCore) -> RegistryAdmin:
    return RegistryAdmin(core)
