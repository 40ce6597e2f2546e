"""Records <-> table rows, and change keys <-> primary keys. No I/O.

Each record type has one table; its columns are the dataclass fields in order, so a row
builds its record positionally (fast enough for a million endpoints) and a record
becomes a row dict by field name. Tuples are stored as JSON arrays, states as their text.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tarscascade.errors import InvalidRecordError
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Op,
    Record,
    Setting,
    State,
    record_from_dict,
    record_to_dict,
    split_endpoint_key,
)
from tarscascade.store import schema

_STATES = {s.value: s for s in State}
_INT32 = (-(2**31), 2**31 - 1)


def _state(text: str) -> State:
    # TARS's other present states (activating, destroyed, ...) may be written behind our
    # back; like TARS's own load query, anything but "active" is inactive.
    return _STATES.get(text, State.INACTIVE)


def _json_list(items: Iterable[Any]) -> str:
    return json.dumps(list(items), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class RecordTable:
    """How one record type is stored."""

    record_type: type[Any]
    category: Category
    table: sa.Table
    to_row: Callable[[Any], dict[str, Any]]
    from_row: Callable[[Sequence[Any]], Record]


def _endpoint_to_row(r: EndpointRecord) -> dict[str, Any]:
    return {
        "object_id": r.object_id,
        "host": r.host,
        "port": r.port,
        "istcp": r.istcp,
        "timeout": r.timeout,
        "node_name": r.node_name,
        "set_id": r.set_id,
        "enable_group": bool(r.enable_group),
        "ip_group_name": r.ip_group_name,
        "grid": r.grid,
        "qos": r.qos,
        "weight": r.weight,
        "weight_type": r.weight_type,
        "auth_type": r.auth_type,
        "bak_flag": r.bak_flag,
        "setting_state": r.setting_state.value,
        "present_state": r.present_state.value,
        "adapter_name": r.adapter_name,
        "tars_version": r.tars_version,
    }


def _endpoint_from_row(row: Sequence[Any]) -> EndpointRecord:
    r = row
    return EndpointRecord(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10], r[11], r[12],
        r[13], r[14], _state(r[15]), _state(r[16]), r[17], r[18],
    )  # fmt: skip


def _node_to_row(r: NodeRecord) -> dict[str, Any]:
    return {
        "name": r.name,
        "host": r.host,
        "port": r.port,
        "setting_state": r.setting_state.value,
        "present_state": r.present_state.value,
        "last_heartbeat": float(r.last_heartbeat),
    }


def _node_from_row(row: Sequence[Any]) -> NodeRecord:
    return NodeRecord(row[0], row[1], row[2], _state(row[3]), _state(row[4]), float(row[5]))


def _rule_to_row(r: GroupRule) -> dict[str, Any]:
    return {
        "group_id": r.group_id,
        "group_name": r.group_name,
        "allow_ip_rule": _json_list(r.allow_ip_rule),
        "ip_order": r.ip_order,
        "denny_ip_rule": _json_list(r.denny_ip_rule),
    }


def _rule_from_row(row: Sequence[Any]) -> GroupRule:
    return GroupRule(row[0], row[1], tuple(json.loads(row[2])), row[3], tuple(json.loads(row[4])))


def _priority_to_row(r: GroupPriority) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "group_list": _json_list(r.group_list),
        "list_order": r.list_order,
        "station": r.station,
    }


def _priority_from_row(row: Sequence[Any]) -> GroupPriority:
    return GroupPriority(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4])


def _setting_to_row(r: Setting) -> dict[str, Any]:
    return {"name": r.name, "value": r.value}


def _setting_from_row(row: Sequence[Any]) -> Setting:
    return Setting(row[0], row[1])


_O, _N, _G, _S = Category.OBJECTS, Category.NODES, Category.GROUPS, Category.SETTINGS
ENDPOINTS = RecordTable(EndpointRecord, _O, schema.endpoints, _endpoint_to_row, _endpoint_from_row)
NODES = RecordTable(NodeRecord, _N, schema.nodes, _node_to_row, _node_from_row)
GROUP_RULES = RecordTable(GroupRule, _G, schema.group_rules, _rule_to_row, _rule_from_row)
GROUP_PRIORITIES = RecordTable(
    GroupPriority, _G, schema.group_priorities, _priority_to_row, _priority_from_row
)
SETTINGS = RecordTable(Setting, _S, schema.settings, _setting_to_row, _setting_from_row)
RECORD_TABLES = (ENDPOINTS, NODES, GROUP_RULES, GROUP_PRIORITIES, SETTINGS)
_BY_TYPE: dict[type[Any], RecordTable] = {t.record_type: t for t in RECORD_TABLES}


def _limits(table: sa.Table) -> tuple[tuple[str, int], ...]:
    """(column, max length) for VARCHARs and (column, 0) for 32-bit integers."""
    out: list[tuple[str, int]] = []
    for column in table.columns:
        if isinstance(column.type, sa.String) and column.type.length:
            out.append((column.name, column.type.length))
        elif type(column.type) is sa.Integer:
            out.append((column.name, 0))
    return tuple(out)


_LIMITS = {t.table.name: _limits(t.table) for t in RECORD_TABLES}


def record_table(record: Record) -> RecordTable:
    try:
        return _BY_TYPE[type(record)]
    except KeyError:
        raise InvalidRecordError(f"not a storable record: {record!r}") from None


def to_row(record: Record) -> tuple[RecordTable, dict[str, Any]]:
    """The table and row for a record, checked against the column limits.

    MySQL and PostgreSQL reject an over-long string or an out-of-range integer while SQLite
    would store it; checking here makes all three behave alike.
    """
    rt = record_table(record)
    row = rt.to_row(record)
    for name, limit in _LIMITS[rt.table.name]:
        value = row[name]
        if limit:
            if not isinstance(value, str) or len(value) > limit:
                raise InvalidRecordError(
                    f"{rt.table.name}.{name} must be text of at most {limit} characters "
                    f"in {record.key!r}"
                )
        elif not isinstance(value, int) or not _INT32[0] <= value <= _INT32[1]:
            raise InvalidRecordError(
                f"{rt.table.name}.{name} = {value!r} is not a 32-bit integer in {record.key!r}"
            )
    return rt, row


def identity(category: Category, key: str) -> tuple[RecordTable, dict[str, Any]]:
    """The table and primary-key values a change key names (the inverse of ``record.key``)."""
    try:
        category = Category(category)
    except ValueError:
        raise InvalidRecordError(f"unknown category: {category!r}") from None
    if len(key) > schema.KEY_LEN:
        raise InvalidRecordError(f"{category} key longer than {schema.KEY_LEN}: {key[:80]!r}...")
    bad = InvalidRecordError(f"malformed {category} key: {key!r}")
    if category is Category.OBJECTS:
        parts = split_endpoint_key(key)
        if parts is None:
            raise bad
        object_id, host, port = parts
        return ENDPOINTS, {"object_id": object_id, "host": host, "port": port}
    if category is Category.NODES:
        return NODES, {"name": key}
    if category is Category.SETTINGS:
        return SETTINGS, {"name": key}
    kind, _, number = key.partition("|")
    if not (number.isascii() and number.lstrip("-").isdigit()):
        raise bad
    if kind == "rule":
        return GROUP_RULES, {"group_id": int(number)}
    if kind == "priority":
        return GROUP_PRIORITIES, {"id": int(number)}
    raise bad


def pk_of(rt: RecordTable, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in rt.table.primary_key.columns)


def encode_payload(record: Record) -> str:
    """A change-log payload: ``record_to_dict`` as compact JSON."""
    return json.dumps(record_to_dict(record), separators=(",", ":"), ensure_ascii=False)


def event_from_log_row(row: Sequence[Any]) -> ChangeEvent:
    """(revision, category, op, key, payload) from ``tc_change_log`` as an event."""
    revision, category, op, key, payload = row
    record = record_from_dict(json.loads(payload)) if payload is not None else None
    return ChangeEvent(int(revision), Category(category), Op(op), key, record)


def endpoints_from_rows(
    partitions: Iterable[Sequence[Sequence[Any]]], out: list[EndpointRecord]
) -> None:
    """The load hot path: a million rows become records in a few seconds.

    Strings that repeat across rows (object ids, hosts, node names) are shared rather than
    held once per row, which keeps a large snapshot's memory near the data's true size.
    """
    memo: dict[str, str] = {}
    share = memo.setdefault
    states = _STATES
    inactive = State.INACTIVE
    append = out.append
    record = EndpointRecord
    for part in partitions:
        for r in part:
            append(
                record(
                    share(r[0], r[0]), share(r[1], r[1]), r[2], r[3], r[4], share(r[5], r[5]),
                    r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
                    states.get(r[15], inactive), states.get(r[16], inactive),
                    share(r[17], r[17]), share(r[18], r[18]),
                )
            )  # fmt: skip


_gc_lock = threading.Lock()
_gc_pauses = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while building a large snapshot.

    Each of a million new records is a tracked container, so collections keep firing and
    the full ones walk every record built so far: measured, that doubles the load time.
    Nothing built here forms cycles, so deferring collection loses nothing. Counted, so
    overlapping loads in several threads re-enable it only when the last one ends.
    """
    global _gc_pauses
    with _gc_lock:
        if _gc_pauses == 0 and not gc.isenabled():
            was_disabled_outside = True
        else:
            was_disabled_outside = False
            _gc_pauses += 1
            gc.disable()
    try:
        yield
    finally:
        if not was_disabled_outside:
            with _gc_lock:
                _gc_pauses -= 1
                if _gc_pauses == 0:
                    gc.enable()
