"""Writers that issue the SQL shapes TarsWeb, tarsAdminRegistry and tarsnode issue.

Restated by us from db_tars.md §3-§4 (which cites the upstream lines): the statements'
shapes, the order of writes within an action, the etos() capitalisation of states
(``Active``: the enum matches case-insensitively), TarsWeb's explicit web-host
``registry_timestamp`` on inserts and its session time zone. Each method is one
operator action (or one background write) and commits like its upstream does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql


@dataclass(frozen=True, slots=True)
class Adapter:
    name: str  # adapter_name, e.g. App.Server.ObjAdapter
    servant: str  # App.Server.Obj
    port: int


class TarsWriters:
    """One writer session (think: one TarsWeb, tarsAdminRegistry or tarsnode process)."""

    def __init__(
        self,
        connect: Any,
        *,
        time_zone: str | None = None,
        sql_mode: str | None = None,
        clock_skew: dt.timedelta = dt.timedelta(0),
    ) -> None:
        self.conn: pymysql.connections.Connection[Any] = connect()
        self.conn.autocommit(True)
        with self.conn.cursor() as cur:
            if time_zone is not None:  # TarsWeb sets the web host's offset
                cur.execute("SET time_zone = %s", (time_zone,))
            if sql_mode is not None:
                cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
        self.clock_skew = clock_skew  # the web host's clock against the database's
        self._open = False

    def close(self) -> None:
        self.conn.close()

    def sql(self, stmt: str, args: Sequence[Any] | dict[str, Any] | None = None) -> int:
        with self.conn.cursor() as cur:
            return int(cur.execute(stmt, args))

    def one(self, stmt: str, args: Sequence[Any] | None = None) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(stmt, args)
            row = cur.fetchone()
        return row[0] if row else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; inside :meth:`held_open` it joins the open one instead."""
        if self._open:
            yield
            return
        self.conn.begin()
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def begin_held(self) -> None:
        """Open a transaction that every following action joins, until :meth:`commit_held`."""
        self.conn.begin()
        self._open = True

    def commit_held(self) -> None:
        self._open = False
        self.conn.commit()

    def web_now(self) -> dt.datetime:
        """The web host's clock, as TarsWeb's ``DataTypes.NOW`` default sends it."""
        db_now: dt.datetime = self.one("SELECT NOW(3)")
        return db_now + self.clock_skew

    # ------------------------------------------------------------------ TarsWeb

    def deploy(
        self,
        app: str,
        server: str,
        node: str,
        adapters: Sequence[Adapter],
        *,
        timeout_ms: int = 60000,
        auth: int = 0,
        enable_set: bool = False,
        set_parts: tuple[str, str, str] | None = None,
    ) -> list[int]:
        """ServerService.addServerConf: upsert the server row (states inactive), then its
        adapters, in one transaction, with the web host's ``registry_timestamp``.
        Returns the adapter ids."""
        ts = self.web_now()
        s_name, s_area, s_group = set_parts if set_parts else (None, None, None)
        ids = []
        with self.transaction():
            self.sql(
                "INSERT INTO t_server_conf (application, server_name, node_name, server_type,"
                " template_name, enable_set, set_name, set_area, set_group, setting_state,"
                " present_state, bak_flag, registry_timestamp, posttime, lastuser)"
                " VALUES (%s, %s, %s, 'tars_cpp', 'tars.default', %s, %s, %s, %s, 'inactive',"
                " 'inactive', 0, %s, %s, 'admin') ON DUPLICATE KEY UPDATE"
                " server_type=VALUES(server_type), enable_set=VALUES(enable_set),"
                " set_name=VALUES(set_name), set_area=VALUES(set_area),"
                " set_group=VALUES(set_group), registry_timestamp=VALUES(registry_timestamp)",
                (app, server, node, "Y" if enable_set else "N", s_name, s_area, s_group, ts, ts),
            )
            for a in adapters:
                endpoint = f"tcp -h {node} -t {timeout_ms} -p {a.port} -e {auth}"
                self.sql(
                    "INSERT INTO t_adapter_conf (application, server_name, node_name,"
                    " adapter_name, thread_num, endpoint, max_connections, servant, queuecap,"
                    " queuetimeout, protocol, registry_timestamp, posttime, lastuser)"
                    " VALUES (%s, %s, %s, %s, 5, %s, 100000, %s, 10000, 60000, 'tars', %s, %s,"
                    " 'admin') ON DUPLICATE KEY UPDATE endpoint=VALUES(endpoint),"
                    " servant=VALUES(servant), registry_timestamp=VALUES(registry_timestamp)",
                    (app, server, node, a.name, endpoint, a.servant, ts, ts),
                )
                ids.append(
                    int(
                        self.one(
                            "SELECT id FROM t_adapter_conf WHERE application=%s AND"
                            " server_name=%s AND node_name=%s AND adapter_name=%s",
                            (app, server, node, a.name),
                        )
                    )
                )
        return ids

    def expand(
        self, app: str, server: str, node: str, adapters: Sequence[Adapter], queuetimeout: int
    ) -> list[int]:
        """ExpandService: the deploy shapes, the endpoint's ``-t`` from queuetimeout."""
        return self.deploy(app, server, node, adapters, timeout_ms=queuetimeout)

    def traffic(self, app: str, server: str, nodes: Sequence[str], on: bool) -> None:
        """AdminService.updateServerFlowState -> DbProxy::updateServerFlowState."""
        marks = ", ".join(["%s"] * len(nodes))
        self.sql(
            "UPDATE t_server_conf SET flow_state=%s WHERE application=%s AND server_name=%s"
            f" AND node_name IN ({marks})",
            ("active" if on else "inactive", app, server, *nodes),
        )

    def server_id(self, app: str, server: str, node: str) -> int:
        return int(
            self.one(
                "SELECT id FROM t_server_conf WHERE application=%s AND server_name=%s AND"
                " node_name=%s",
                (app, server, node),
            )
        )

    def update_server_conf(self, server_id: int, **columns: Any) -> None:
        """ServerDao.updateServerConf: UPDATE by id (set, group, bak_flag, ip_group_name)."""
        sets = ", ".join(f"{c}=%s" for c in columns)
        self.sql(f"UPDATE t_server_conf SET {sets} WHERE id=%s", (*columns.values(), server_id))

    def update_adapter(self, adapter_id: int, **columns: Any) -> None:
        """AdapterDao.updateAdapterConf: UPDATE by id."""
        sets = ", ".join(f"{c}=%s" for c in columns)
        self.sql(f"UPDATE t_adapter_conf SET {sets} WHERE id=%s", (*columns.values(), adapter_id))

    def delete_adapter(self, adapter_id: int) -> None:
        """AdapterDao.deleteAdapterConf: destroy where id."""
        self.sql("DELETE FROM t_adapter_conf WHERE id=%s", (adapter_id,))

    def add_idc_rule(self, name: str, allow: str, deny: str = "") -> int:
        """IDCDao create."""
        self.sql(
            "INSERT INTO t_server_group_rule (ip_order, allow_ip_rule, denny_ip_rule, lastuser,"
            " group_name, group_name_cn) VALUES ('allow_denny', %s, %s, 'admin', %s, %s)",
            (allow, deny, name, name),
        )
        return int(self.one("SELECT LAST_INSERT_ID()"))

    def update_idc_rule(self, group_id: int, **columns: Any) -> None:
        sets = ", ".join(f"{c}=%s" for c in columns)
        self.sql(
            f"UPDATE t_server_group_rule SET {sets} WHERE group_id=%s",
            (*columns.values(), group_id),
        )

    def delete_idc_rule(self, group_id: int) -> None:
        self.sql("DELETE FROM t_server_group_rule WHERE group_id=%s", (group_id,))

    def add_priority(self, name: str, group_list: str, list_order: int, station: str = "") -> int:
        """Hand SQL on t_group_priority (no TarsWeb writer exists)."""
        self.sql(
            "INSERT INTO t_group_priority (name, group_list, list_order, station)"
            " VALUES (%s, %s, %s, %s)",
            (name, group_list, list_order, station),
        )
        return int(self.one("SELECT LAST_INSERT_ID()"))

    # ------------------------------------------------------------------ tarsAdminRegistry

    def set_setting_state(self, app: str, server: str, node: str, state: str) -> None:
        """DbProxy::updateServerState (``etos`` capitalisation: Active / Inactive)."""
        self.sql(
            "UPDATE t_server_conf SET setting_state=%s WHERE application=%s AND server_name=%s"
            " AND node_name=%s",
            (state, app, server, node),
        )

    def start(self, app: str, server: str, node: str, pid: int = 4242) -> None:
        """startServer_inner: setting_state Active, then tarsnode reports Activating, Active."""
        self.set_setting_state(app, server, node, "Active")
        self.update_server(node, app, server, "Activating", 0)
        self.update_server(node, app, server, "Active", pid)

    def stop(self, app: str, server: str, node: str) -> None:
        """stopServer_inner: setting_state Inactive first, then the node stops the process."""
        self.set_setting_state(app, server, node, "Inactive")
        self.update_server(node, app, server, "Deactivating", 0)
        self.update_server(node, app, server, "Inactive", 0)

    def restart(self, app: str, server: str, node: str, pid: int = 4343) -> None:
        """restartServer_inner: stop via the node, then setting_state and flow_state active."""
        self.update_server(node, app, server, "Deactivating", 0)
        self.update_server(node, app, server, "Inactive", 0)
        self.sql(
            "UPDATE t_server_conf SET setting_state='Active', flow_state='active' WHERE"
            " application=%s AND server_name=%s AND node_name=%s",
            (app, server, node),
        )
        self.update_server(node, app, server, "Activating", 0)
        self.update_server(node, app, server, "Active", pid)

    def undeploy(self, app: str, server: str, node: str) -> None:
        """undeploy_inner: stop, then DbProxy::undeploy deletes both rows."""
        self.stop(app, server, node)
        with self.transaction():
            self.sql(
                "DELETE FROM t_server_conf WHERE application=%s AND server_name=%s AND"
                " node_name=%s",
                (app, server, node),
            )
            self.sql(
                "DELETE FROM t_adapter_conf WHERE application=%s AND server_name=%s AND"
                " node_name=%s",
                (app, server, node),
            )

    def uninstall(self, app: str, server: str, node: str) -> None:
        """DbProxy::uninstallServer: bump the server's other rows, then delete."""
        self.sql(
            "UPDATE t_server_conf SET registry_timestamp=NOW() WHERE application=%s AND"
            " server_name=%s AND node_name<>%s",
            (app, server, node),
        )
        self.sql(
            "DELETE FROM t_server_conf WHERE application=%s AND server_name=%s AND node_name=%s",
            (app, server, node),
        )
        self.sql(
            "DELETE FROM t_adapter_conf WHERE application=%s AND server_name=%s AND node_name=%s",
            (app, server, node),
        )

    def register_admin_obj(self, locator: str, endpoint: str) -> None:
        """AdminRegistry DbProxy: REPLACE its AdminRegObj into t_registry_info."""
        self.sql(
            "REPLACE INTO t_registry_info (locator_id, servant, endpoint, last_heartbeat,"
            " present_state, tars_version) VALUES (%s, 'tars.tarsAdminRegistry.AdminRegObj',"
            " %s, NOW(), 'active', '3.0.0')",
            (locator, endpoint),
        )

    # ------------------------------------------------------------------ tarsregistry

    def registry_heartbeat(self, locator: str, servants: dict[str, str]) -> None:
        """The t_registry_info upsert every loadObjectsInterval1 (13 s)."""
        for servant, endpoint in servants.items():
            self.sql(
                "INSERT INTO t_registry_info (locator_id, servant, endpoint, last_heartbeat,"
                " present_state, tars_version) VALUES (%s, %s, %s, NOW(), 'active', '3.0.0')"
                " ON DUPLICATE KEY UPDATE endpoint=VALUES(endpoint), last_heartbeat=NOW(),"
                " present_state='active', tars_version=VALUES(tars_version)",
                (locator, servant, endpoint),
            )

    def check_node_timeout(self, seconds: int) -> int:
        """CheckNodeThread: nodes (and their servers) silent for ``seconds`` go inactive."""
        return self.sql(
            "UPDATE t_node_info node LEFT JOIN t_server_conf server USING (node_name)"
            " SET node.present_state='inactive', server.present_state='inactive',"
            " server.process_id=0 WHERE node.last_heartbeat < DATE_SUB(NOW(), INTERVAL %s SECOND)",
            (seconds,),
        )

    # ------------------------------------------------------------------ tarsnode

    def update_server(self, node: str, app: str, server: str, state: str, pid: int) -> None:
        """RegistryF.updateServer -> DbHandle: present_state and process_id."""
        self.sql(
            "UPDATE t_server_conf SET present_state=%s, process_id=%s WHERE application=%s AND"
            " server_name=%s AND node_name=%s",
            (state, pid, app, server, node),
        )

    def update_server_batch(self, rows: Sequence[tuple[str, str, str, str, int]]) -> None:
        """updateServerBatch, the one-statement CASE form: (node, app, server, state, pid)."""
        state_case = " ".join(
            "WHEN application=%s AND server_name=%s AND node_name=%s THEN %s" for _ in rows
        )
        pid_case = " ".join(
            "WHEN application=%s AND server_name=%s AND node_name=%s THEN %s" for _ in rows
        )
        where = " OR ".join("(application=%s AND server_name=%s AND node_name=%s)" for _ in rows)
        args: list[Any] = []
        for node, app, server, state, _pid in rows:
            args += [app, server, node, state]
        for node, app, server, _state, pid in rows:
            args += [app, server, node, pid]
        for node, app, server, _state, _pid in rows:
            args += [app, server, node]
        self.sql(
            f"UPDATE t_server_conf SET present_state = CASE {state_case} END,"
            f" process_id = CASE {pid_case} END WHERE {where}",
            args,
        )

    def register_node(self, node: str, ip: str, port: int = 19385) -> None:
        """registerNode: REPLACE INTO t_node_info, both states active, now() heartbeats."""
        self.sql(
            "REPLACE INTO t_node_info (node_name, node_obj, endpoint_ip, endpoint_port, data_dir,"
            " load_avg1, load_avg5, load_avg15, last_reg_time, last_heartbeat, setting_state,"
            " present_state, tars_version, template_name) VALUES (%s, %s, %s, %s,"
            " '/usr/local/app/tars/tarsnode/data', 0, 0, 0, NOW(), NOW(), 'active', 'active',"
            " '3.0.0', 'tars.tarsnode')",
            (node, f"tars.tarsnode.NodeObj@tcp -h {ip} -p {port} -t 60000", ip, port),
        )

    def keep_alive(self, node: str, load: float = 0.5) -> None:
        """keepAlive: heartbeat, present_state active and the load averages."""
        self.sql(
            "UPDATE t_node_info SET last_heartbeat=NOW(), present_state='active',"
            " load_avg1=%s, load_avg5=%s, load_avg15=%s WHERE node_name=%s",
            (load, load, load, node),
        )
