"""The mass-change guard holds what would gut the catalog, until it is confirmed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tarscascade.dbtars import GuardPolicy
from tests.integration.dbtars.fleet import APP, BULK, NODES, SRV, deploy_fleet, key, summary

pytestmark = pytest.mark.db

TOTAL = len(NODES) + len(BULK)


async def _ready(db: Any, harness_factory: Any, **kw: Any) -> Any:
    w = db.writer()
    deploy_fleet(w)
    h = await harness_factory(db, **kw)
    assert len(await h.tick()) == TOTAL
    return w, h


async def test_delete_from_t_adapter_conf_is_held_until_confirmed(
    tars_db_sql: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db_sql, harness_factory)
    digest = h.reg.catalog.digest("objects")
    w.sql("DELETE FROM t_adapter_conf")
    assert await h.tick(h.S) == []  # the signature moved; the full load is held
    held = h.imp.held
    assert held is not None
    assert "no endpoints" in held.reason
    assert h.imp.stats.guard_holds == 1
    for advance in (h.P, h.S, h.F, h.S):  # holds, and keeps re-checking
        assert await h.tick(advance) == []
    assert h.reg.catalog.digest("objects") == digest  # still serving everything
    assert h.reg.catalog.counts()["endpoints"] == TOTAL
    assert h.imp.status()["held"]["impact"]["deletes"] == TOTAL
    confirming = asyncio.create_task(h.imp.confirm(timeout=30))
    await asyncio.sleep(0)  # confirm() asks for the next full load and waits for it
    events = await h.tick()
    assert await confirming is True
    assert len(events) == TOTAL
    assert all(e.op.value == "delete" for e in events)
    assert h.imp.held is None
    assert h.imp.stats.guard_confirms == 1


async def test_an_emptied_database_is_held(tars_db_sql: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db_sql, harness_factory)
    for table in ("t_server_conf", "t_adapter_conf", "t_registry_info", "t_server_group_rule"):
        w.sql(f"DELETE FROM {table}")
    assert await h.tick(h.S) == []
    assert h.imp.held is not None
    assert "no endpoints" in h.imp.held.reason
    assert await h.tick(h.F) == []


async def test_a_held_change_that_is_undone_clears_the_hold(
    tars_db_sql: Any, harness_factory: Any
) -> None:
    """A TRUNCATE by mistake, then the backup restored: nothing was ever served empty."""
    w, h = await _ready(tars_db_sql, harness_factory)
    rows = w.conn.cursor()
    rows.execute("SELECT * FROM t_adapter_conf")
    saved = rows.fetchall()
    w.sql("DELETE FROM t_adapter_conf")
    assert await h.tick(h.S) == []
    assert h.imp.held is not None
    marks = ", ".join(["%s"] * len(saved[0]))
    for row in saved:
        w.sql(f"INSERT INTO t_adapter_conf VALUES ({marks})", row)
    assert await h.tick(h.S) == []  # the full load equals the catalog again: no event
    assert h.imp.held is None


async def test_mass_deactivation_is_held_on_the_poll_path(
    tars_db_sql: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db_sql, harness_factory)
    w.sql("UPDATE t_server_conf SET setting_state='inactive'")
    assert await h.tick() == []
    assert h.imp.held is not None
    assert "mass deactivation" in h.imp.held.reason
    assert await h.tick() == []  # polls do not apply anything while held


async def test_confirm_after_loads(tars_db_sql: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db_sql, harness_factory, guard=GuardPolicy(confirm_after_loads=3))
    w.sql("UPDATE t_server_conf SET setting_state='inactive'")
    assert await h.tick() == []  # seen once (the poll)
    assert await h.tick(h.S) == []  # twice (a full load)
    events = await h.tick(h.S)  # three times: applied
    assert len(events) == TOTAL
    assert h.imp.held is None


async def test_ordinary_changes_are_not_held(tars_db_sql: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db_sql, harness_factory)
    for n in NODES:  # every App.Srv endpoint down: 3 of 15, below min_changes
        w.stop(APP, SRV, n)
    assert sorted(summary(await h.tick())) == [("put", key(n), "inactive") for n in NODES]
    assert h.imp.held is None
