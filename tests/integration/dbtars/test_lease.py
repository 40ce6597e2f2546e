"""Several registries on one db_tars: one importer at a time, failover keeps revisions.

Both registries share tarscascade's store (tc_* tables in their own MariaDB database);
the importer is elected with a GET_LOCK lease on db_tars's server.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import MYSQL_ADMIN_URL, _admin_engine
from tests.integration.dbtars.fleet import APP, BULK, NODES, SRV, deploy_fleet, key, summary

pytestmark = pytest.mark.db

N1 = NODES[0]


@pytest.fixture
def shared_store_url() -> Iterator[str]:
    import sqlalchemy as sa

    name = f"tc_store_{secrets.token_hex(5)}"
    engine = _admin_engine(MYSQL_ADMIN_URL)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(MYSQL_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()


async def test_one_importer_and_failover_keeps_revisions(
    tars_db_sql: Any, harness_factory: Any, shared_store_url: str
) -> None:
    w = tars_db_sql.writer()
    deploy_fleet(w)
    a = await harness_factory(tars_db_sql, shared_store_url)
    b = await harness_factory(tars_db_sql, shared_store_url)
    assert a.reg.epoch == b.reg.epoch  # one store, one lineage

    assert len(await a.tick()) == len(NODES) + len(BULK)
    assert a.imp.leader
    assert await b.tick() == []
    assert not b.imp.leader
    await b.reg.catch_up()
    assert b.reg.revision == a.reg.revision
    assert b.reg.catalog.digest("objects") == a.reg.catalog.digest("objects")

    w.stop(APP, SRV, N1)
    assert await b.tick() == []  # only the importer imports
    assert summary(await a.tick()) == [("put", key(N1), "inactive")]
    revision = a.reg.revision

    # a's lock session dies under it (a network cut, a DBA's KILL): b takes over
    holder = w.one("SELECT IS_USED_LOCK(%s)", (a.imp.lease.name,))
    w.sql(f"KILL {int(holder)}")
    assert await b.tick() == []  # takeover: full load + diff, nothing differs
    assert b.imp.leader
    assert b.imp.stats.takeovers == 1
    assert b.reg.revision == revision  # no new lineage, no renumbering
    assert await a.tick() == []
    assert not a.imp.leader
    assert a.imp.stats.lease_losses == 1

    w.start(APP, SRV, N1)
    assert await a.tick() == []
    assert summary(await b.tick()) == [("put", key(N1), "active")]
    assert b.reg.revision == revision + 1
    await a.reg.catch_up()  # a follows the change log like any registry
    assert a.reg.catalog.digest("objects") == b.reg.catalog.digest("objects")
    assert a.reg.epoch == b.reg.epoch


async def test_a_deposed_importer_does_not_write(
    tars_db_sql: Any, harness_factory: Any, shared_store_url: str
) -> None:
    """Between its diff and its write an importer checks the lease is still its own."""
    w = tars_db_sql.writer()
    deploy_fleet(w)
    a = await harness_factory(tars_db_sql, shared_store_url)
    await a.tick()
    revision = a.reg.revision
    w.stop(APP, SRV, N1)
    lease = a.imp.lease
    real_held = lease.held
    calls = 0

    def held_until_the_write() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_held()  # the tick's own check passes ...
        holder = w.one("SELECT IS_USED_LOCK(%s)", (lease.name,))
        w.sql(f"KILL {int(holder)}")  # ... and the lease is lost before the write
        return real_held()

    lease.held = held_until_the_write  # type: ignore[method-assign]
    assert await a.tick() == []
    assert a.reg.revision == revision
    assert not a.imp.leader
