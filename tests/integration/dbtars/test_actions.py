"""Every operator action of db_tars.md §4, issued as TarsWeb / tarsAdminRegistry / tarsnode
issue it, produces exactly the expected change events, by the path that bounds it.

The importer runs tick by tick on a fake schedule clock (the database's clock is the
real one). "Seen on the next tick" means within the poll period P; "after S" means the
table signature caught it (a delete, a skewed insert), within S + a full load; and the
periodic full reconcile (F) is never needed for these actions.
"""

from __future__ import annotations

from typing import Any

import pytest

from tarscascade.model import Category, EndpointRecord, GroupPriority, GroupRule, Op
from tests.integration.dbtars.fleet import (
    APP,
    BULK,
    BULK_NODE,
    NODES,
    OBJ,
    SRV,
    deploy_fleet,
    key,
    summary,
)
from tests.integration.dbtars.writers import Adapter

pytestmark = pytest.mark.db

N1, N2, N3 = NODES


async def _ready(tars_db: Any, harness_factory: Any, **kw: Any) -> Any:
    w = tars_db.writer()
    deploy_fleet(w)
    h = await harness_factory(tars_db, **kw)
    first = await h.tick()
    assert len(first) == len(NODES) + len(BULK)  # the first import: every endpoint, once
    assert await h.tick() == []  # and nothing more while nothing changes
    return w, h


def _record(h: Any, k: str) -> EndpointRecord | None:
    oid, host, port = k.split("|")
    for r in h.reg.catalog.get_object(oid):
        if (r.host, r.port) == (host, int(port)):
            return r
    return None


async def test_deploy_and_start_are_seen_on_the_next_poll(
    tars_db: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db, harness_factory)
    full = h.imp.stats.full_loads
    w.deploy(APP, "New", "10.0.2.1", [Adapter("App.New.ObjAdapter", "App.New.Obj", 30000)])
    assert summary(await h.tick()) == [("put", key("10.0.2.1", 30000, "App.New.Obj"), "inactive")]
    w.start(APP, "New", "10.0.2.1")  # three writes: setting Active, Activating, Active
    assert summary(await h.tick()) == [("put", key("10.0.2.1", 30000, "App.New.Obj"), "active")]
    assert h.imp.stats.full_loads == full  # the fast path, not a reload
    rec = _record(h, key("10.0.2.1", 30000, "App.New.Obj"))
    assert rec is not None
    assert rec.timeout == 60000
    assert rec.node_name == "10.0.2.1"
    # the poll saw the insert's row ids: the signature is as expected, no id scan
    assert await h.tick(h.S) == []
    assert h.imp.stats.full_loads == full
    assert h.imp.stats.id_scans == 0


async def test_after_a_tick_that_wrote_the_next_polls_come_sooner(
    tars_db: Any, harness_factory: Any
) -> None:
    """A deploy is a burst (insert, then start): the tick that wrote the insert makes the
    next polls come every busy_interval for busy_linger, then back to P."""
    w, h = await _ready(tars_db, harness_factory)
    o = h.imp.options
    h.clock.t += o.busy_linger  # the first import's burst is over
    assert h.imp.next_wait() == o.poll_interval  # idle: every P
    w.deploy(APP, "Soon", "10.0.2.3", [Adapter("App.Soon.ObjAdapter", "App.Soon.Obj", 30002)])
    assert await h.imp.tick() is True  # h.tick() would move the schedule clock by P
    assert h.imp.next_wait() == o.busy_interval
    h.clock.t += o.busy_linger - 0.01
    assert h.imp.next_wait() == o.busy_interval
    assert await h.imp.tick() is False  # nothing new: the linger is not renewed
    h.clock.t += 0.02
    assert h.imp.next_wait() == o.poll_interval


async def test_the_poll_runs_before_a_due_signature_check(
    tars_db: Any, harness_factory: Any
) -> None:
    """In a tick with the signature check due, a stop the poll sees is written before the
    id scan's delete (one the window cannot see): the poll does not wait behind the scan."""
    w, h = await _ready(tars_db, harness_factory)
    w.sql("DELETE FROM t_server_conf WHERE server_name=%s AND node_name=%s", (SRV, N1))
    w.sql("DELETE FROM t_adapter_conf WHERE server_name=%s AND node_name=%s", (SRV, N1))
    w.stop(APP, BULK[0], BULK_NODE)
    scans = h.imp.stats.id_scans
    events = await h.tick(h.S)
    bulk = next(e.key for e in events if e.op == Op.PUT)
    assert bulk.startswith(f"{APP}.{BULK[0]}.")
    assert [(e.op, e.key) for e in events] == [(Op.PUT, bulk), (Op.DELETE, key(N1))]
    assert h.imp.stats.id_scans == scans + 1  # the delete came from the scan


async def test_a_deploy_undone_before_the_signature_check_is_still_caught(
    tars_db: Any, harness_factory: Any
) -> None:
    """Insert seen by the poll, delete unseen: count and id sum are back where they were
    at the last full load, but not where the importer expects them."""
    w, h = await _ready(tars_db, harness_factory)
    w.deploy(APP, "Brief", "10.0.2.2", [Adapter("App.Brief.ObjAdapter", "App.Brief.Obj", 30001)])
    w.start(APP, "Brief", "10.0.2.2")
    assert summary(await h.tick()) == [("put", key("10.0.2.2", 30001, "App.Brief.Obj"), "active")]
    w.sql("DELETE FROM t_server_conf WHERE server_name='Brief'")
    w.sql("DELETE FROM t_adapter_conf WHERE server_name='Brief'")
    assert await h.tick() == []
    assert summary(await h.tick(h.S)) == [("delete", key("10.0.2.2", 30001, "App.Brief.Obj"), "")]


async def test_expand_uses_queuetimeout_as_the_endpoint_timeout(
    tars_db: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.expand(APP, SRV, "10.0.0.4", [Adapter(f"{OBJ}Adapter", OBJ, 10001)], queuetimeout=5000)
    assert summary(await h.tick()) == [("put", key("10.0.0.4"), "inactive")]
    rec = _record(h, key("10.0.0.4"))
    assert rec is not None
    assert rec.timeout == 5000


async def test_stop_restart_and_traffic(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.stop(APP, SRV, N1)
    assert summary(await h.tick()) == [("put", key(N1), "inactive")]
    w.restart(APP, SRV, N1)
    assert summary(await h.tick()) == [("put", key(N1), "active")]
    w.traffic(APP, SRV, [N2, N3], on=False)
    assert summary(await h.tick()) == [
        ("put", key(N2), "inactive"),
        ("put", key(N3), "inactive"),
    ]
    rec = _record(h, key(N2))
    assert rec is not None
    assert rec.setting_state.value == "active"
    w.traffic(APP, SRV, [N2, N3], on=True)
    assert summary(await h.tick()) == [("put", key(N2), "active"), ("put", key(N3), "active")]


async def test_restart_seen_halfway(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.update_server(N1, APP, SRV, "Deactivating", 0)
    assert summary(await h.tick()) == [("put", key(N1), "inactive")]
    w.update_server(N1, APP, SRV, "Inactive", 0)
    assert await h.tick() == []  # inactive either way: no event
    w.sql(
        "UPDATE t_server_conf SET setting_state='Active', flow_state='active' WHERE"
        " application=%s AND server_name=%s AND node_name=%s",
        (APP, SRV, N1),
    )
    w.update_server(N1, APP, SRV, "Activating", 0)
    assert await h.tick() == []
    w.update_server(N1, APP, SRV, "Active", 99)
    assert summary(await h.tick()) == [("put", key(N1), "active")]


async def test_undeploy_is_seen_after_the_signature(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.stop(APP, SRV, N1)  # undeploy_inner stops first ...
    assert summary(await h.tick()) == [("put", key(N1), "inactive")]
    w.undeploy(APP, SRV, N1)  # ... then deletes both rows: the stop's bump dies with them
    assert await h.tick() == []  # no timestamp left behind: invisible to the window
    full, scans = h.imp.stats.full_loads, h.imp.stats.id_scans
    assert summary(await h.tick(h.S)) == [("delete", key(N1), "")]
    # the signature moved: an id scan found the group, re-read alone (no full load)
    assert (h.imp.stats.id_scans, h.imp.stats.full_loads) == (scans + 1, full)


async def test_undeploy_without_a_recent_write_is_seen_after_the_signature(
    tars_db: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.sql("DELETE FROM t_server_conf WHERE server_name=%s AND node_name=%s", (SRV, N1))
    w.sql("DELETE FROM t_adapter_conf WHERE server_name=%s AND node_name=%s", (SRV, N1))
    assert await h.tick() == []  # invisible to the window: no timestamp left behind
    full, scans = h.imp.stats.full_loads, h.imp.stats.id_scans
    assert summary(await h.tick(h.S)) == [("delete", key(N1), "")]
    assert (h.imp.stats.id_scans, h.imp.stats.full_loads) == (scans + 1, full)


async def test_whole_server_removal(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.sql("DELETE FROM t_server_conf WHERE server_name=%s", (SRV,))
    w.sql("DELETE FROM t_adapter_conf WHERE server_name=%s", (SRV,))
    assert await h.tick() == []
    assert sorted(summary(await h.tick(h.S))) == [("delete", key(n), "") for n in NODES]
    assert h.reg.catalog.get_object(OBJ) == ()


async def test_uninstall_bumps_siblings_so_the_poll_sees_it(
    tars_db: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db, harness_factory)
    w.uninstall(APP, SRV, N2)
    assert summary(await h.tick()) == [("delete", key(N2), "")]


async def test_adapter_delete_and_edit_by_id(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    ids = {
        n: w.one("SELECT id FROM t_adapter_conf WHERE node_name=%s AND server_name=%s", (n, SRV))
        for n in NODES
    }
    w.delete_adapter(ids[N1])  # AdapterDao: destroy where id, no timestamp bump
    assert await h.tick() == []
    assert summary(await h.tick(h.S)) == [("delete", key(N1), "")]
    w.update_adapter(ids[N2], endpoint=f"tcp -h {N2} -t 60000 -p 10002 -e 0")  # port edit
    assert summary(await h.tick()) == [("delete", key(N2), ""), ("put", key(N2, 10002), "active")]
    w.update_adapter(ids[N3], servant="App.Srv.Renamed")  # a renamed servant leaves no key
    assert summary(await h.tick()) == [
        ("delete", key(N3), ""),
        ("put", key(N3, obj="App.Srv.Renamed"), "active"),
    ]


async def test_server_conf_edits_sets_groups_bak_flag(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    sid = w.server_id(APP, SRV, N1)
    w.update_server_conf(sid, enable_set="Y", set_name="sz", set_area="a", set_group="1")
    assert summary(await h.tick()) == [("put", key(N1), "active")]
    assert (r := _record(h, key(N1))) is not None
    assert r.set_id == "sz.a.1"
    w.update_server_conf(sid, enable_set="N", set_name=None, set_area=None, set_group=None)
    assert summary(await h.tick()) == [("put", key(N1), "active")]
    assert (r := _record(h, key(N1))) is not None
    assert r.set_id == ""
    w.update_server_conf(sid, enable_group="Y", ip_group_name="idc-a")
    await h.tick()
    assert (r := _record(h, key(N1))) is not None
    assert r.enable_group
    assert r.ip_group_name == "idc-a"
    w.update_server_conf(sid, bak_flag=1)
    assert summary(await h.tick()) == [("put", key(N1), "active")]
    assert (r := _record(h, key(N1))) is not None
    assert r.bak_flag == 1
    view_hosts = [e.host for e in h.reg.answerer.catalog.get_object(OBJ) if e.bak_flag == 0]
    assert N1 not in view_hosts


async def test_idc_rules_and_priorities(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    gid = w.add_idc_rule("idc-a", "10.0.0.1|10.0.0.*|", "10.9.9.9")
    ev = await h.tick()
    assert [(e.category, e.op, e.key) for e in ev] == [(Category.GROUPS, Op.PUT, f"rule|{gid}")]
    rule = ev[0].record
    assert isinstance(rule, GroupRule)
    assert rule.allow_ip_rule == ("10.0.0.1", "10.0.0.*")
    assert rule.denny_ip_rule == ("10.9.9.9",)
    w.update_idc_rule(gid, allow_ip_rule="10.0.1.*")
    assert [e.key for e in await h.tick()] == [f"rule|{gid}"]
    pid = w.add_priority("p", f"{gid}|;7,x", 1, station="sz")  # hand SQL: odd separators
    ev = await h.tick()
    prio = ev[0].record
    assert isinstance(prio, GroupPriority)
    assert prio.group_list == (gid, 7)
    assert prio.station == "sz"
    w.sql("UPDATE t_group_priority SET station='gz' WHERE id=%s", (pid,))
    assert [e.key for e in await h.tick()] == [f"priority|{pid}"]
    w.sql("DELETE FROM t_group_priority WHERE id=%s", (pid,))
    w.delete_idc_rule(gid)
    ev = await h.tick()
    assert sorted((e.op, e.key) for e in ev) == [
        (Op.DELETE, f"priority|{pid}"),
        (Op.DELETE, f"rule|{gid}"),
    ]


async def test_heartbeat_churn_produces_zero_events(tars_db: Any, harness_factory: Any) -> None:
    w, h = await _ready(tars_db, harness_factory)
    for n in (*NODES, BULK_NODE):
        w.register_node(n, n)  # REPLACE INTO t_node_info
    w.registry_heartbeat(
        "10.0.0.9:17890", {"tars.tarsregistry.QueryObj": "tcp -h 10.0.0.9 -p 17890"}
    )
    w.register_admin_obj("10.0.0.9:12000", "tcp -h 10.0.0.9 -p 12000")
    ev = await h.tick()  # the framework's own servants appear once
    assert sorted(e.key for e in ev) == [
        "tars.tarsAdminRegistry.AdminRegObj|10.0.0.9|12000",
        "tars.tarsregistry.QueryObj|10.0.0.9|17890",
    ]
    for rounds, advance in enumerate(
        (h.P, h.P, h.S, h.P, h.F, h.P)
    ):  # polls, a signature, a full reconcile
        for n in (*NODES, BULK_NODE):
            w.keep_alive(n, load=0.1 * rounds)
        w.registry_heartbeat(
            "10.0.0.9:17890", {"tars.tarsregistry.QueryObj": "tcp -h 10.0.0.9 -p 17890"}
        )
        w.register_node(BULK_NODE, BULK_NODE)  # a tarsnode restarting: REPLACE again
        # updateServerBatch every 60 s, states unchanged: ON UPDATE does not even fire
        w.update_server_batch([(n, APP, SRV, "Active", 4242) for n in NODES])
        assert await h.tick(advance) == []
    assert h.imp.stats.full_loads >= 2


async def test_check_node_timeout_turns_a_dead_nodes_servers_inactive(
    tars_db: Any, harness_factory: Any
) -> None:
    w, h = await _ready(tars_db, harness_factory)
    for n in NODES:
        w.register_node(n, n)
    w.sql(
        "UPDATE t_node_info SET last_heartbeat = NOW() - INTERVAL 300 SECOND WHERE node_name=%s",
        (N3,),
    )
    assert w.check_node_timeout(250) >= 1
    assert summary(await h.tick()) == [("put", key(N3), "inactive")]
    w.keep_alive(N3)  # the node is back; tarsnode then reports its servers
    w.update_server_batch([(N3, APP, SRV, "Active", 5151)])
    assert summary(await h.tick()) == [("put", key(N3), "active")]
