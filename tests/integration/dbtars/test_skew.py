"""Clocks, time zones, open transactions, restores and non-strict enums: all converge.

Each case names the path that catches it: the next poll (P), the table signature (S)
or the periodic full reconcile (F), never "eventually".
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pymysql
import pytest

from tests.integration.dbtars.fleet import APP, NODES, OBJ, SRV, deploy_fleet, key, summary
from tests.integration.dbtars.writers import Adapter

pytestmark = pytest.mark.db

N1, N2, N3 = NODES


async def _ready(db: Any, harness_factory: Any, **kw: Any) -> Any:
    w = db.writer()
    deploy_fleet(w)
    h = await harness_factory(db, **kw)
    await h.tick()
    assert await h.tick() == []
    return w, h


async def test_writer_clock_an_hour_behind(tars_db: Any, harness_factory: Any) -> None:
    """TarsWeb on a host whose clock is an hour late inserts with its own timestamp
    (Tars #543: the open-source registry never saw such a server until a restart)."""
    _w, h = await _ready(tars_db, harness_factory)
    late = tars_db.writer(clock_skew=-dt.timedelta(hours=1))
    late.deploy(APP, "Late", "10.0.3.1", [Adapter("App.Late.ObjAdapter", "App.Late.Obj", 31000)])
    assert await h.tick() == []  # outside the window
    assert summary(await h.tick(h.S)) == [
        ("put", key("10.0.3.1", 31000, "App.Late.Obj"), "inactive")
    ]


async def test_upsert_with_a_late_clock_is_caught_by_the_full_reconcile(
    tars_db_sql: Any, harness_factory: Any
) -> None:
    """An upsert of an existing row changes no id: only the full reconcile sees it."""
    _w, h = await _ready(tars_db_sql, harness_factory)
    late = tars_db_sql.writer(clock_skew=-dt.timedelta(hours=1))
    late.sql(
        "UPDATE t_adapter_conf SET endpoint=%s, registry_timestamp=%s WHERE node_name=%s AND"
        " server_name=%s",
        (f"tcp -h {N1} -t 60000 -p 10009 -e 0", late.web_now(), N1, SRV),
    )
    assert await h.tick() == []
    assert await h.tick(h.S) == []
    assert summary(await h.tick(h.F)) == [
        ("delete", key(N1), ""),
        ("put", key(N1, 10009), "active"),
    ]


@pytest.mark.parametrize("offset", ["-05:00", "+05:00"])
async def test_another_session_time_zone(offset: str, tars_db: Any, harness_factory: Any) -> None:
    """TarsWeb's session carries the web host's offset. On the TarsWeb shape
    (DATETIME(3)) its writes are stored in that zone: ahead is seen by the next poll,
    behind by the signature (an insert) or the full reconcile (an update)."""
    _w, h = await _ready(tars_db, harness_factory)
    web = tars_db.writer(time_zone=offset)
    web.deploy(APP, "Tz", "10.0.4.1", [Adapter("App.Tz.ObjAdapter", "App.Tz.Obj", 32000)])
    new = [("put", key("10.0.4.1", 32000, "App.Tz.Obj"), "inactive")]
    skewed_behind = tars_db.shape == "tarsweb" and offset.startswith("-")
    if skewed_behind:
        assert await h.tick() == []
        assert summary(await h.tick(h.S)) == new
    else:
        assert summary(await h.tick()) == new
    web.update_server_conf(web.server_id(APP, SRV, N1), ip_group_name="idc-b")
    changed = [("put", key(N1), "active")]
    if skewed_behind:
        assert await h.tick() == []
        assert await h.tick(h.S) == []
        assert summary(await h.tick(h.F)) == changed
    else:
        assert summary(await h.tick()) == changed


async def test_transaction_held_open_across_polls(tars_db: Any, harness_factory: Any) -> None:
    """Rows written at statement time, committed later: the window (W) covers the gap."""
    _w, h = await _ready(tars_db, harness_factory)
    slow = tars_db.writer()
    slow.begin_held()
    slow.stop(APP, SRV, N2)
    for _ in range(3):
        assert await h.tick() == []  # not committed yet
    slow.commit_held()
    assert summary(await h.tick()) == [("put", key(N2), "inactive")]


async def test_insert_committed_after_the_window_is_caught_by_the_signature(
    tars_db_sql: Any, harness_factory: Any
) -> None:
    _w, h = await _ready(tars_db_sql, harness_factory, window=1.0)
    slow = tars_db_sql.writer()
    slow.begin_held()
    slow.deploy(APP, "Slow", "10.0.5.1", [Adapter("App.Slow.ObjAdapter", "App.Slow.Obj", 33000)])
    t0 = slow.one("SELECT NOW(3)")
    deadline = time.monotonic() + 10
    # the importer's schedule clock stands still while the loop polls: however many
    # polls the database's 2.5 s take, no signature nor full reconcile comes due in it
    # (each poll used to advance it by P, and a run of exactly 293 polls put the full
    # reconcile, 300 s after the first, on the tick after the commit: it found the row)
    while _db_now(h) < t0 + dt.timedelta(seconds=2.5):
        assert await h.tick(0.0) == []  # not committed yet
        assert time.monotonic() < deadline  # the database clock moves on while it is open
    # one more poll, now that the window has passed the row's timestamp (on a loaded
    # machine the last poll of the loop may have run before that), with the signature
    # due too: so the next tick is a poll only
    assert await h.tick(h.S) == []
    slow.commit_held()
    assert await h.tick() == []  # its timestamp is older than the window now
    assert summary(await h.tick(h.S)) == [
        ("put", key("10.0.5.1", 33000, "App.Slow.Obj"), "inactive")
    ]


def _db_now(h: Any) -> dt.datetime:
    now: dt.datetime = h.source.now()
    return now


async def test_restored_rows(tars_db_sql: Any, harness_factory: Any) -> None:
    """A mysqldump-style restore: the rows come back with their old ids and timestamps."""
    w, h = await _ready(tars_db_sql, harness_factory)
    server = w.conn.cursor(pymysql.cursors.DictCursor)
    server.execute("SELECT * FROM t_server_conf WHERE node_name=%s", (N3,))
    s_rows = server.fetchall()
    server.execute("SELECT * FROM t_adapter_conf WHERE node_name=%s", (N3,))
    a_rows = server.fetchall()
    w.sql("DELETE FROM t_server_conf WHERE node_name=%s", (N3,))
    w.sql("DELETE FROM t_adapter_conf WHERE node_name=%s", (N3,))
    assert summary(await h.tick(h.S)) == [("delete", key(N3), "")]
    for table, rows in (("t_server_conf", s_rows), ("t_adapter_conf", a_rows)):
        for row in rows:
            cols = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            w.sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))
    assert await h.tick() == []  # old timestamps
    assert summary(await h.tick(h.S)) == [("put", key(N3), "active")]  # ids back: signature moved
    # an in-place restore of an old value with its old timestamp: the full reconcile
    w.sql(
        "UPDATE t_server_conf SET setting_state='inactive', registry_timestamp=%s WHERE id=%s",
        (s_rows[0]["registry_timestamp"], s_rows[0]["id"]),
    )
    assert await h.tick() == []
    assert await h.tick(h.S) == []
    assert summary(await h.tick(h.F)) == [("put", key(N3), "inactive")]


async def test_non_strict_present_state_error_value(tars_db_sql: Any, harness_factory: Any) -> None:
    """etos(Destroying) is no enum member: strict mode refuses it, non-strict stores ''."""
    _w, h = await _ready(tars_db_sql, harness_factory)
    strict = tars_db_sql.writer()
    with pytest.raises(pymysql.err.DataError):
        strict.update_server(N1, APP, SRV, "Destroying", 0)
    assert await h.tick() == []
    loose = tars_db_sql.writer(sql_mode="")
    loose.update_server(N1, APP, SRV, "Destroying", 0)
    assert loose.one("SELECT present_state FROM t_server_conf WHERE node_name=%s", (N1,)) == ""
    assert summary(await h.tick()) == [("put", key(N1), "inactive")]
    assert all(
        r.present_state.value == "inactive" for r in h.reg.catalog.get_object(OBJ) if r.host == N1
    )
