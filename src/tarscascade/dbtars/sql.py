"""Every statement the importer sends to db_tars: SELECTs only, on six tables.

Columns are named (never ``*``): TarsWeb's Sequelize ``sync({alter: true})`` reshapes
the tables (db_tars.md §1.8), so only names the registry reads are relied on.
"""

from __future__ import annotations

#: The tables the SELECT grant must cover.
TABLES = (
    "t_server_conf",
    "t_adapter_conf",
    "t_registry_info",
    "t_server_group_rule",
    "t_group_priority",
)

#: TARS's load query (DbHandle loadObjectIdCache), as an inner join: a server row
#: without adapters yields nothing to route to, an adapter row without its server row
#: is never seen (TARS's RIGHT JOIN drops it too).
ROUTING = """SELECT a.servant, a.endpoint, s.enable_group, s.setting_state, s.present_state,
 s.flow_state, s.application, s.server_name, s.node_name, s.enable_set, s.set_name,
 s.set_area, s.set_group, s.ip_group_name, s.bak_flag, a.adapter_name, s.id, a.id,
 s.tars_version
 FROM t_adapter_conf a JOIN t_server_conf s
 ON a.application = s.application AND a.server_name = s.server_name
 AND a.node_name = s.node_name"""

#: The groups with a row written at or after a time (both tables have an index on it).
CHANGED_GROUPS = """SELECT application, server_name FROM t_server_conf
 WHERE registry_timestamp >= %(since)s
 UNION SELECT application, server_name FROM t_adapter_conf
 WHERE registry_timestamp >= %(since)s"""

#: The database's clock, in this session's (the server's default) time zone.
NOW = "SELECT NOW(3)"

#: A table signature: any delete, insert or REPLACE (a new id) changes it. The importer
#: compares it with the one its own id maps give (every id it knows, per table, kept
#: exact by the full loads, the id scans and the polls' group reads), so an insert a poll
#: saw followed by a delete it did not see is caught although count and id sum are back
#: where they were.
SIGNATURE = """SELECT (SELECT COUNT(*) FROM t_server_conf), (SELECT COALESCE(SUM(id), 0)
 FROM t_server_conf), (SELECT COUNT(*) FROM t_adapter_conf),
 (SELECT COALESCE(SUM(id), 0) FROM t_adapter_conf)"""

#: Every row id and its group (index-only scans of the unique keys): which groups a
#: signature change concerns, without a full load.
SERVER_IDS = "SELECT id, application, server_name FROM t_server_conf"
ADAPTER_IDS = "SELECT id, application, server_name FROM t_adapter_conf"


def ids_for_groups(table: str, n: int) -> str:
    """The ids of ``n`` groups' rows of one table (parameters a0, s0, a1, s1, ...)."""
    cond = " OR ".join(f"(application = %(a{i})s AND server_name = %(s{i})s)" for i in range(n))
    return f"SELECT id, application, server_name FROM {table} WHERE {cond}"


#: The framework's own servants, without the heartbeat columns (last_heartbeat,
#: modify_time, tars_version), so the every-13-s heartbeat upserts change nothing read.
REGISTRY_INFO = """SELECT locator_id, servant, endpoint, present_state, enable_group
 FROM t_registry_info ORDER BY locator_id, servant"""

GROUP_RULES = """SELECT group_id, group_name, allow_ip_rule, ip_order, denny_ip_rule
 FROM t_server_group_rule ORDER BY group_id"""

GROUP_PRIORITIES = """SELECT id, name, group_list, list_order, station
 FROM t_group_priority ORDER BY list_order, id"""

#: A group re-read: this many (application, server_name) pairs per statement.
GROUPS_PER_QUERY = 200


def routing_for_groups(n: int) -> str:
    """The load query restricted to ``n`` groups (parameters a0, s0, a1, s1, ...)."""
    cond = " OR ".join(f"(s.application = %(a{i})s AND s.server_name = %(s{i})s)" for i in range(n))
    return f"{ROUTING} WHERE {cond}"


#: The importer's lease: one importer per tarscascade store at a time (a session lock;
#: it needs no privilege and ends with the connection).
GET_LOCK = "SELECT GET_LOCK(%(name)s, 0)"
HOLDS_LOCK = "SELECT IS_USED_LOCK(%(name)s) = CONNECTION_ID()"
RELEASE_LOCK = "SELECT RELEASE_LOCK(%(name)s)"
