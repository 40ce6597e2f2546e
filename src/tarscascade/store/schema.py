"""The store's tables and their migrations (SQLite, MySQL/MariaDB, PostgreSQL alike).

Column order in each record table is the field order of its model dataclass: ``load()``
builds records positionally from these columns, and a test pins the correspondence so a
new model field cannot be dropped silently (it needs a migration here).

Every name is prefixed ``tc_`` so the tables can live next to TARS's own ``t_*`` tables.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tarscascade.errors import SchemaVersionError

# MySQL: utf8mb4 so any Unicode fits, and a binary collation so keys compare exactly as on
# SQLite and PostgreSQL (the default collations would merge "App.a" and "App.A").
_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

# VARCHAR lengths: the endpoint key (object_id, host, port) must fit one InnoDB index
# (3072 bytes; utf8mb4 counts 4 bytes a character): (255 + 255) * 4 + 4 = 2044.
NAME_LEN = 255
SHORT_LEN = 128
STATE_LEN = 16
KEY_LEN = 600  # object_id|host|port

# TEXT holds 64 KiB on MySQL; settings and change-log payloads may be larger.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
RevisionInt = sa.BigInteger()
# The change log's key: on SQLite INTEGER PRIMARY KEY is the rowid itself (no extra index).
RevisionKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

meta = sa.Table(
    "tc_meta",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("epoch", sa.String(64), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    # The one monotonic revision counter: every change-log row takes the next value.
    sa.Column("revision", RevisionInt, nullable=False),
    # Every change after this revision is still in tc_change_log (trimmed or bulk-loaded
    # history below it is not), so a tailer further behind must reload.
    sa.Column("log_floor", RevisionInt, nullable=False),
    **_MYSQL,
)


def _endpoints_table(md: sa.MetaData, *, version: int) -> sa.Table:
    """``tc_endpoints`` as schema ``version`` has it (v1 is what migration 1 creates)."""
    later = (
        [
            # v2: the TARS adapter name ("" = <object id>Adapter), the reported TARS version
            sa.Column("adapter_name", sa.String(NAME_LEN), nullable=False, server_default=""),
            sa.Column("tars_version", sa.String(SHORT_LEN), nullable=False, server_default=""),
        ]
        if version >= 2
        else []
    )
    return sa.Table(
        "tc_endpoints",
        md,
        sa.Column("object_id", sa.String(NAME_LEN), nullable=False),
        sa.Column("host", sa.String(NAME_LEN), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("istcp", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Integer, nullable=False),
        sa.Column("node_name", sa.String(NAME_LEN), nullable=False),
        sa.Column("set_id", sa.String(SHORT_LEN), nullable=False),
        sa.Column("enable_group", sa.Boolean, nullable=False),
        sa.Column("ip_group_name", sa.String(SHORT_LEN), nullable=False),
        sa.Column("grid", sa.Integer, nullable=False),
        sa.Column("qos", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("weight_type", sa.Integer, nullable=False),
        sa.Column("auth_type", sa.Integer, nullable=False),
        sa.Column("bak_flag", sa.Integer, nullable=False),
        sa.Column("setting_state", sa.String(STATE_LEN), nullable=False),
        sa.Column("present_state", sa.String(STATE_LEN), nullable=False),
        *later,
        # The key is the primary key; its index leads with object_id, so it is also the
        # per-object index (a separate object_id index would only slow down writes).
        sa.PrimaryKeyConstraint("object_id", "host", "port", name="pk_tc_endpoints"),
        sa.Index("ix_tc_endpoints_node_name", "node_name"),
        **_MYSQL,
    )


endpoints = _endpoints_table(metadata, version=2)

nodes = sa.Table(
    "tc_nodes",
    metadata,
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    sa.Column("host", sa.String(NAME_LEN), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("setting_state", sa.String(STATE_LEN), nullable=False),
    sa.Column("present_state", sa.String(STATE_LEN), nullable=False),
    sa.Column("last_heartbeat", sa.Double, nullable=False),  # DOUBLE: exact float64
    **_MYSQL,
)

group_rules = sa.Table(
    "tc_group_rules",
    metadata,
    sa.Column("group_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("group_name", sa.String(SHORT_LEN), nullable=False),
    # IP pattern lists as JSON arrays: exact round trip, still editable by hand.
    sa.Column("allow_ip_rule", LongText, nullable=False),
    sa.Column("ip_order", sa.String(32), nullable=False),
    sa.Column("denny_ip_rule", LongText, nullable=False),
    **_MYSQL,
)

group_priorities = sa.Table(
    "tc_group_priorities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(SHORT_LEN), nullable=False),
    sa.Column("group_list", LongText, nullable=False),  # JSON array of group ids
    sa.Column("list_order", sa.Integer, nullable=False),
    sa.Column("station", sa.String(SHORT_LEN), nullable=False),
    **_MYSQL,
)

settings = sa.Table(
    "tc_settings",
    metadata,
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    sa.Column("value", LongText, nullable=False),
    **_MYSQL,
)

change_log = sa.Table(
    "tc_change_log",
    metadata,
    sa.Column("revision", RevisionKey, primary_key=True, autoincrement=False),
    sa.Column("category", sa.String(STATE_LEN), nullable=False),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("key", sa.String(KEY_LEN), nullable=False),
    sa.Column("payload", LongText, nullable=True),  # record_to_dict JSON; NULL = tombstone
    # Wall clock for people reading the log, never used for ordering (unix seconds).
    sa.Column("created_at", sa.Double, nullable=False),
    **_MYSQL,
)

lineage = sa.Table(
    "tc_lineage",
    metadata,
    # One row per epoch this database has had: where it came from (a new database, a
    # detected restore, `store new-epoch`), and whether the fleet may take it (confirmed).
    sa.Column("epoch", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("reason", sa.String(NAME_LEN), nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False),
    sa.Column("confirmed_at", sa.Double, nullable=True),
    sa.Column("confirmed_by", sa.String(NAME_LEN), nullable=False),
    sa.Column("previous_epoch", sa.String(64), nullable=False),
    sa.Column("previous_revision", RevisionInt, nullable=False),
    sa.Column("previous_endpoints", RevisionInt, nullable=True),  # NULL = unknown
    sa.Column("endpoints", RevisionInt, nullable=False),
    sa.Column("base_revision", RevisionInt, nullable=False),
    **_MYSQL,
)

RECORD_TABLES = (endpoints, nodes, group_rules, group_priorities, settings)

node_credentials = sa.Table(
    "tc_node_credentials",
    metadata,
    # Not a record table: never in the change log, never replicated to nodes (a relay
    # holding every node's key could forge proofs for all of them).
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    # SHA-256 of the node's secret (auth/secrets.py says why no slow KDF), hex
    sa.Column("key_hex", sa.String(64), nullable=False),
    # hosts the node may announce endpoints on ("" = its registered node address), JSON
    sa.Column("hosts", LongText, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    **_MYSQL,
)

# --- the registry tier: shared liveness, the judge's lease, drain waits (schema v5) ---
# Not record tables either: no change log, no revision, never replicated. Every time in
# them is on the database's clock (``store/presence.py``), so registries on machines
# whose clocks disagree still agree on ages.

node_seen = sa.Table(
    "tc_node_seen",
    metadata,
    # One row per (node, registry that heard it): the newest sighting over the rows of a
    # node is what the liveness judge goes by, whichever registry the node talks to.
    sa.Column("node", sa.String(NAME_LEN), nullable=False),
    sa.Column("registry_id", sa.String(SHORT_LEN), nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    # the objects version the node held when last written (drain waits read it)
    sa.Column("objects_epoch", sa.String(64), nullable=False),
    sa.Column("objects_revision", RevisionInt, nullable=False),
    sa.PrimaryKeyConstraint("node", "registry_id", name="pk_tc_node_seen"),
    **_MYSQL,
)

leases = sa.Table(
    "tc_leases",
    metadata,
    # A named lease (``liveness``: the one registry that judges nodes): held by
    # ``holder`` until ``expires_at`` unless renewed.
    sa.Column("name", sa.String(SHORT_LEN), primary_key=True),
    sa.Column("holder", sa.String(SHORT_LEN), nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Column("acquired_at", sa.Double, nullable=False),
    **_MYSQL,
)

drain_waits = sa.Table(
    "tc_drain_waits",
    metadata,
    # A drain waiting somewhere in the tier: while one is here, every registry writes
    # the objects version its nodes hold into tc_node_seen as it moves.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("registry_id", sa.String(SHORT_LEN), nullable=False),
    sa.Column("objects_epoch", sa.String(64), nullable=False),
    sa.Column("objects_revision", RevisionInt, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    **_MYSQL,
)

TIER_TABLES = (node_seen, leases, drain_waits)

# --- the tier's digest key (schema v6) ----------------------------------------------
# One random secret per database, made once: every registry on it keys its category
# digests with it (catalog/digests.py says why a digest needs a key the record writers
# do not know), and hands it to authenticated protocol 3 downstreams. Not a record
# table: never in the change log, never in a snapshot. A backup of the database carries
# it, so a restore brings back the key with the data.

DIGEST_KEY_BYTES = 32

digest_key = sa.Table(
    "tc_digest_key",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("key_hex", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    **_MYSQL,
)


# --- migrations -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _v1_metadata() -> sa.MetaData:
    """The tables as v1 created them (later migrations changed ``tc_endpoints``)."""
    v1 = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.name == lineage.name:
            continue  # v3
        if table.name == node_credentials.name:
            continue  # v4
        if table in TIER_TABLES:
            continue  # v5
        if table.name == digest_key.name:
            continue  # v6
        if table.name == endpoints.name:
            _endpoints_table(v1, version=1)
        else:
            table.to_metadata(v1)
    return v1


def _v1_create_tables(conn: sa.Connection) -> None:
    # Idempotent so a crash between DDL statements (MySQL commits each one) can rerun it.
    # v1 keeps creating the v1 schema (later columns come from their own migrations).
    _v1_metadata().create_all(conn, checkfirst=True)
    if conn.execute(sa.select(meta.c.id)).first() is None:
        conn.execute(
            meta.insert().values(
                id=1, epoch=uuid.uuid4().hex, schema_version=0, revision=0, log_floor=0
            )
        )


def _v2_adapter_and_version(conn: sa.Connection) -> None:
    # Idempotent (MySQL commits each ALTER): add only the columns still missing.
    have = {c["name"] for c in sa.inspect(conn).get_columns(endpoints.name)}
    for name in ("adapter_name", "tars_version"):
        if name not in have:
            col = endpoints.c[name]
            ddl = sa.schema.CreateColumn(col).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {endpoints.name} ADD COLUMN {ddl}"))


def _v3_lineage(conn: sa.Connection) -> None:
    # Idempotent like v1. The current epoch gets its row: confirmed, since nothing is
    # known about what it replaced (a registry that knows records its own, later).
    metadata.create_all(conn, tables=[lineage], checkfirst=True)
    epoch, revision = conn.execute(sa.select(meta.c.epoch, meta.c.revision)).one()
    if conn.execute(sa.select(lineage.c.epoch).where(lineage.c.epoch == epoch)).first():
        return
    count = conn.execute(sa.select(sa.func.count()).select_from(endpoints)).scalar_one()
    conn.execute(
        lineage.insert().values(
            epoch=epoch,
            created_at=time.time(),
            reason="new database" if int(revision) == 0 else "existing database (schema v3)",
            confirmed=True,
            confirmed_at=None,
            confirmed_by="",
            previous_epoch="",
            previous_revision=0,
            previous_endpoints=None,
            endpoints=int(count),
            base_revision=int(revision),
        )
    )


def _v4_node_credentials(conn: sa.Connection) -> None:
    # Idempotent like v1 (checkfirst): a crash after the CREATE reruns harmlessly.
    metadata.create_all(conn, tables=[node_credentials], checkfirst=True)


def _v5_tier(conn: sa.Connection) -> None:
    # Idempotent like v1 (checkfirst).
    metadata.create_all(conn, tables=list(TIER_TABLES), checkfirst=True)


def ensure_digest_key(conn: sa.Connection) -> bytes:
    """The tier's digest key, made now if the table has none (v6, or a row deleted by
    hand). Two makers racing: the loser's insert fails on the primary key and the
    caller reads again (``SqlStore.digest_key``)."""
    found = conn.execute(sa.select(digest_key.c.key_hex).where(digest_key.c.id == 1)).scalar()
    if found is not None:
        return bytes.fromhex(str(found))
    key = secrets.token_bytes(DIGEST_KEY_BYTES)
    conn.execute(digest_key.insert().values(id=1, key_hex=key.hex(), created_at=time.time()))
    return key


def _v6_digest_key(conn: sa.Connection) -> None:
    # Idempotent like v1 (checkfirst, and a key only where there is none).
    metadata.create_all(conn, tables=[digest_key], checkfirst=True)
    ensure_digest_key(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the tc_* tables", _v1_create_tables),
    Migration(2, "tc_endpoints: adapter_name, tars_version", _v2_adapter_and_version),
    Migration(3, "the lineage table (epochs, the confirmed marker)", _v3_lineage),
    Migration(4, "tc_node_credentials (per-node secrets, hashed)", _v4_node_credentials),
    Migration(5, "the registry tier: tc_node_seen, tc_leases, tc_drain_waits", _v5_tier),
    Migration(6, "tc_digest_key (the tier's secret digest key)", _v6_digest_key),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1)), "gap in migrations"


def schema_version(conn: sa.Connection) -> int:
    """The version recorded in the database; 0 when it has no (complete) tarscascade schema."""
    if not sa.inspect(conn).has_table(meta.name):
        return 0
    found = conn.execute(sa.select(meta.c.schema_version)).scalar()
    return int(found) if found is not None else 0


def migrate(conn: sa.Connection) -> int:
    """Bring the schema up to ``SCHEMA_VERSION``; the caller holds the migration lock.

    Raises ``SchemaVersionError`` for a database written by a newer tarscascade.
    """
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"database schema version {current} is newer than this tarscascade knows "
            f"({SCHEMA_VERSION}); upgrade tarscascade before opening it"
        )
    for migration in MIGRATIONS:
        if migration.version > current:
            migration.apply(conn)
            conn.execute(meta.update().values(schema_version=migration.version))
    return SCHEMA_VERSION
