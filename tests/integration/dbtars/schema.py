"""Our own db_tars DDL, written from the schema facts in db_tars.md §1 (not upstream's file).

Two shapes:

* ``sql``: as ``db_tars.sql`` creates it (TIMESTAMP ... ON UPDATE CURRENT_TIMESTAMP,
  utf8, the case-insensitive default collation);
* ``tarsweb``: as TarsWeb's Sequelize ``sync({alter: true})`` leaves it (§1.8):
  ``registry_timestamp`` DATETIME(3) ... ON UPDATE CURRENT_TIMESTAMP(3) (stored in the
  writer session's time zone), ``t_node_info.endpoint_ip`` VARCHAR(16), ``modify_time``
  a plain DATETIME without auto-update, columns outside the model (``grid_flag``) gone.

Only the columns TARS's routing reads or writes, plus a few it does not, so that a
reader relying on column order or ``*`` would break here as on a real install.
"""

from __future__ import annotations

SHAPES = ("sql", "tarsweb")


def _regtime(shape: str) -> str:
    if shape == "tarsweb":
        return (
            "registry_timestamp DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
            " ON UPDATE CURRENT_TIMESTAMP(3)"
        )
    return (
        "registry_timestamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
        " ON UPDATE CURRENT_TIMESTAMP"
    )


def ddl(shape: str) -> list[str]:
    assert shape in SHAPES, shape
    web = shape == "tarsweb"
    grid = "" if web else "grid_flag enum('NORMAL','GRID','NO_FLOW') NOT NULL DEFAULT 'NORMAL',"
    node_ip = "varchar(16)" if web else "varchar(50)"
    node_modify = (
        "modify_time DATETIME NULL"
        if web
        else "modify_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
    )
    return [
        f"""CREATE TABLE t_server_conf (
  id int NOT NULL AUTO_INCREMENT,
  application varchar(128) DEFAULT '',
  server_name varchar(128) DEFAULT '',
  node_group varchar(50) NOT NULL DEFAULT '',
  node_name varchar(50) NOT NULL DEFAULT '',
  {_regtime(shape)},
  base_path varchar(128) DEFAULT '',
  exe_path varchar(128) NOT NULL DEFAULT '',
  template_name varchar(128) NOT NULL DEFAULT '',
  bak_flag int NOT NULL DEFAULT 0,
  setting_state enum('active','inactive') NOT NULL DEFAULT 'inactive',
  present_state enum('active','inactive','activating','deactivating','destroyed')
    NOT NULL DEFAULT 'inactive',
  process_id int NOT NULL DEFAULT 0,
  patch_version varchar(128) NOT NULL DEFAULT '',
  patch_time datetime NULL,
  patch_user varchar(128) NOT NULL DEFAULT '',
  tars_version varchar(128) NOT NULL DEFAULT '',
  posttime datetime DEFAULT NULL,
  lastuser varchar(30) DEFAULT NULL,
  server_type enum('tars_cpp','not_tars','tars_java','tars_nodejs','tars_php','tars_go')
    DEFAULT NULL,
  enable_group char(1) DEFAULT 'N',
  enable_set char(1) NOT NULL DEFAULT 'N',
  set_name varchar(16) DEFAULT NULL,
  set_area varchar(16) DEFAULT NULL,
  set_group varchar(64) DEFAULT NULL,
  ip_group_name varchar(64) DEFAULT NULL,
  profile text,
  async_thread_num int DEFAULT 3,
  {grid}
  server_important_type enum('0','1','2','3','4','5') DEFAULT '0',
  flow_state enum('active','inactive') NOT NULL DEFAULT 'active',
  PRIMARY KEY (id),
  UNIQUE KEY application (application, server_name, node_name),
  KEY node_name (node_name),
  KEY index_i_3 (setting_state, server_type, application, server_name, node_name),
  KEY index_regtime (registry_timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        f"""CREATE TABLE t_adapter_conf (
  id int NOT NULL AUTO_INCREMENT,
  application varchar(50) DEFAULT '',
  server_name varchar(128) DEFAULT '',
  node_name varchar(50) DEFAULT '',
  adapter_name varchar(100) DEFAULT '',
  {_regtime(shape)},
  thread_num int DEFAULT 1,
  endpoint varchar(128) DEFAULT '',
  max_connections int DEFAULT 1000,
  allow_ip varchar(255) NOT NULL DEFAULT '',
  servant varchar(128) DEFAULT '',
  queuecap int DEFAULT NULL,
  queuetimeout int DEFAULT NULL,
  posttime datetime DEFAULT NULL,
  lastuser varchar(30) DEFAULT NULL,
  protocol varchar(64) DEFAULT 'tars',
  handlegroup varchar(64) DEFAULT '',
  PRIMARY KEY (id),
  UNIQUE KEY application (application, server_name, node_name, adapter_name),
  KEY adapter_conf_endpoint_index (endpoint),
  KEY index_regtime_1 (registry_timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        f"""CREATE TABLE t_node_info (
  id int NOT NULL AUTO_INCREMENT,
  node_name varchar(128) DEFAULT '',
  node_obj varchar(128) DEFAULT '',
  endpoint_ip {node_ip} DEFAULT '',
  endpoint_port int DEFAULT 0,
  data_dir varchar(128) DEFAULT '',
  load_avg1 float DEFAULT 0,
  load_avg5 float DEFAULT 0,
  load_avg15 float DEFAULT 0,
  last_reg_time datetime DEFAULT '1970-01-01 00:08:00',
  last_heartbeat datetime DEFAULT '1970-01-01 00:08:00',
  setting_state enum('active','inactive') DEFAULT 'inactive',
  present_state enum('active','inactive') DEFAULT 'inactive',
  tars_version varchar(128) NOT NULL DEFAULT '',
  template_name varchar(128) NOT NULL DEFAULT '',
  {node_modify},
  group_id int DEFAULT -1,
  label text,
  PRIMARY KEY (id),
  UNIQUE KEY node_name (node_name),
  KEY indx_node_info_1 (last_heartbeat)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        """CREATE TABLE t_registry_info (
  id int NOT NULL AUTO_INCREMENT,
  locator_id varchar(128) NOT NULL DEFAULT '',
  servant varchar(128) NOT NULL DEFAULT '',
  endpoint varchar(128) NOT NULL DEFAULT '',
  last_heartbeat datetime DEFAULT '1970-01-01 00:08:00',
  present_state enum('active','inactive') DEFAULT 'inactive',
  tars_version varchar(128) NOT NULL DEFAULT '',
  modify_time timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  enable_group char(1) DEFAULT 'N',
  PRIMARY KEY (id),
  UNIQUE KEY locator_id (locator_id, servant)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        """CREATE TABLE t_server_group_rule (
  group_id int unsigned NOT NULL AUTO_INCREMENT,
  ip_order enum('allow_denny','denny_allow') NOT NULL DEFAULT 'denny_allow',
  allow_ip_rule text,
  denny_ip_rule text,
  lastuser varchar(50) DEFAULT NULL,
  modify_time timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  group_name varchar(128) DEFAULT '',
  group_name_cn varchar(128) DEFAULT '',
  PRIMARY KEY (group_id),
  UNIQUE KEY group_name_index (group_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        """CREATE TABLE t_group_priority (
  id int NOT NULL AUTO_INCREMENT,
  name varchar(128) DEFAULT '',
  group_list text,
  list_order int DEFAULT 0,
  station varchar(128) NOT NULL DEFAULT '',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
        """CREATE TABLE t_server_group_relation (
  id int NOT NULL AUTO_INCREMENT,
  application varchar(90) NOT NULL DEFAULT '',
  server_group char(64) DEFAULT '',
  server_name varchar(50) DEFAULT '',
  create_time datetime DEFAULT NULL,
  creator varchar(30) DEFAULT '',
  PRIMARY KEY (id),
  KEY f_unique (application, server_group, server_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    ]
