"""Snapshot and delta payloads: records and events as compact positional JSON arrays.

A record is ``[code, field, field, ...]`` in the model's field order (docs/protocol.md,
"Payload encoding"): code 0 endpoint, 1 node, 2 group rule, 3 group priority, 4 setting;
states are their values (``"active"``/``"inactive"``), tuples are arrays. A snapshot
chunk is an array of records; a delta is an array of events
``[op, key, record-or-null, revision]`` with op ``"put"`` or ``"delete"``.

Pure and synchronous. Decoding checks every value's type and range, so a corrupt or
hostile payload raises :class:`PayloadError` (a :class:`DecodeError`) and never puts a
malformed record into a catalog.

Speed matters: a node takes a 1,000,000-endpoint snapshot through here. Endpoints are
checked and built in bulk (see :func:`_build_endpoints`); everything else goes through
the ordinary constructors.
"""

from __future__ import annotations

import dataclasses
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import starmap
from operator import attrgetter
from typing import Any

import orjson

from tarscascade.errors import DecodeError
from tarscascade.model import (
    STATE_BY_NAME,
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Op,
    Record,
    Setting,
)

__all__ = [
    "PayloadError",
    "decode_events",
    "decode_records",
    "encode_events",
    "encode_records",
    "split_records",
]


class PayloadError(DecodeError):
    """A snapshot or delta payload that is not what the protocol allows."""


_CODES: dict[type[Any], int] = {
    EndpointRecord: 0,
    NodeRecord: 1,
    GroupRule: 2,
    GroupPriority: 3,
    Setting: 4,
}
_TYPES: tuple[type[Any], ...] = (EndpointRecord, NodeRecord, GroupRule, GroupPriority, Setting)
_CATEGORY_CODES: dict[Category, frozenset[int]] = {
    Category.OBJECTS: frozenset({0}),
    Category.NODES: frozenset({1}),
    Category.GROUPS: frozenset({2, 3}),
    Category.SETTINGS: frozenset({4}),
}
_FIELDS: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _TYPES
}
_GETTERS = {cls: attrgetter(*names) for cls, names in _FIELDS.items()}
_STATES = STATE_BY_NAME
_OPS: dict[object, Op] = {o.value: o for o in Op}

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# --------------------------------------------------------------------------- encoding


def _row(record: Record) -> tuple[Any, ...]:
    cls = type(record)
    return (_CODES[cls], *_GETTERS[cls](record))


def encode_records(records: Iterable[Record]) -> bytes:
    """A snapshot payload: every record as a positional array (orjson writes enum values)."""
    try:
        return orjson.dumps(list(map(_row, records)))
    except (KeyError, TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"cannot encode records: {exc}") from exc


def split_records(
    records: Sequence[Record], target_bytes: int, *, probe: int = 512
) -> Iterator[tuple[bytes, int]]:
    """Encode ``records`` as payloads of about ``target_bytes`` each: ``(payload, count)``.

    The records per payload are estimated from a probe, so the caller can interleave
    other work between payloads (the hub yields to the event loop); a payload that comes
    out larger than twice the target is split again, so one odd batch of very long
    records cannot exceed the frame limit.
    """
    n = len(records)
    if n == 0:
        yield encode_records(()), 0
        return
    sample = encode_records(records[:probe])
    per_record = max(1.0, len(sample) / min(n, probe))
    step = max(1, int(target_bytes / per_record))
    pos = 0
    while pos < n:
        part = records[pos : pos + step]
        yield from _fit(part, target_bytes)
        pos += step


def _fit(part: Sequence[Record], target_bytes: int) -> Iterator[tuple[bytes, int]]:
    data = encode_records(part)
    if len(data) <= 2 * target_bytes or len(part) == 1:
        yield data, len(part)
        return
    half = len(part) // 2
    yield from _fit(part[:half], target_bytes)
    yield from _fit(part[half:], target_bytes)


def _event_row(ev: ChangeEvent) -> tuple[Any, ...]:
    rec = None if ev.record is None else _row(ev.record)
    return (ev.op.value, ev.key, rec, ev.revision)


def encode_events(events: Iterable[ChangeEvent]) -> bytes:
    """A delta payload: ``[op, key, record-or-null, revision]`` per event."""
    try:
        return orjson.dumps(list(map(_event_row, events)))
    except (KeyError, TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"cannot encode events: {exc}") from exc


# ------------------------------------------------------------------------ compression

#: zlib level of compressed snapshot chunks: level 1 gets most of the gain (about 6x on
#: varied endpoints, 30x on uniform ones) at a third of level 6's cost, and the upstream
#: pays it once per cached snapshot
ZLIB_LEVEL = 1


def compress_payload(payload: bytes) -> bytes:
    return zlib.compress(payload, ZLIB_LEVEL)


def decompress_payload(data: bytes, limit: int) -> bytes:
    """A zlib-compressed payload; PayloadError when corrupt, truncated, followed by junk,
    or longer than ``limit`` bytes (what a plain frame could carry: no zip bomb)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise PayloadError(f"bad zlib payload: {exc}") from exc
    if len(out) > limit:
        raise PayloadError(f"payload inflates past {limit} bytes")
    if not d.eof or d.unused_data:
        raise PayloadError("truncated zlib payload" if not d.eof else "junk after zlib payload")
    return out


# --------------------------------------------------------------------------- decoding


def _load(payload: bytes) -> list[Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from exc
    if type(data) is not list:
        raise PayloadError(f"payload is a {type(data).__name__}, not an array")
    return data


def decode_records(payload: bytes, category: Category) -> list[Record]:
    """The records of a snapshot payload, all of ``category``; PayloadError otherwise."""
    rows = _load(payload)
    allowed = _CATEGORY_CODES[Category(category)]
    if category is Category.OBJECTS:
        return _build_endpoints(rows)  # type: ignore[return-value]  # list is invariant
    out: list[Record] = []
    for row in rows:
        rec = _build(row)
        if _CODES[type(rec)] not in allowed:
            raise PayloadError(f"a {type(rec).__name__} in a {category} payload")
        out.append(rec)
    return out


def decode_events(payload: bytes, category: Category) -> list[ChangeEvent]:
    """The events of a delta payload, all of ``category``, revisions strictly increasing."""
    cat = Category(category)
    allowed = _CATEGORY_CODES[cat]
    out: list[ChangeEvent] = []
    last = INT64_MIN
    for item in _load(payload):
        if type(item) is not list or len(item) != 4:
            raise PayloadError(f"an event is not [op, key, record, revision]: {item!r:.80}")
        op_v, key, rec_v, revision = item
        op = _OPS.get(op_v)
        if op is None or type(key) is not str or type(revision) is not int:
            raise PayloadError(f"malformed event {item!r:.80}")
        if not last < revision <= INT64_MAX:
            raise PayloadError(f"event revisions not increasing at {revision}")
        last = revision
        record: Record | None = None
        if op is Op.PUT:
            record = _build(rec_v)
            if _CODES[type(record)] not in allowed:
                raise PayloadError(f"a {type(record).__name__} in a {cat} delta")
            if record.key != key:
                raise PayloadError(f"event key {key!r:.80} is not its record's key")
        elif rec_v is not None:
            raise PayloadError("a delete event carries a record")
        out.append(ChangeEvent(revision, cat, op, key, record))
    return out


def _build(row: object) -> Record:
    """One record of any type from its positional array (the general, checked path)."""
    if type(row) is not list or not row or type(row[0]) is not int:
        raise PayloadError(f"a record is not [code, fields...]: {row!r:.80}")
    code = row[0]
    if code == 0:
        return _build_endpoints([row])[0]
    if not 0 < code < len(_TYPES):
        raise PayloadError(f"unknown record code {code}")
    builder: Callable[[list[Any]], Record] = _BUILDERS[code]
    try:
        return builder(row)
    except (TypeError, ValueError, KeyError) as exc:
        raise PayloadError(f"malformed {_TYPES[code].__name__}: {row!r:.80}") from exc


def _int(v: object, lo: int = INT32_MIN, hi: int = INT32_MAX) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise ValueError(f"{v!r:.40} is not an integer in [{lo}, {hi}]")
    return v


def _str(v: object) -> str:
    if type(v) is not str:
        raise ValueError(f"{v!r:.40} is not a string")
    return v


def _node(row: list[Any]) -> NodeRecord:
    _, name, host, port, setting, present, last = row
    if type(last) not in (int, float):
        raise ValueError("last_heartbeat is not a number")
    return NodeRecord(
        _str(name),
        _str(host),
        _int(port, 0, 65535),
        _STATES[setting],
        _STATES[present],
        float(last),
    )


def _rule(row: list[Any]) -> GroupRule:
    _, gid, name, allow, order, deny = row
    return GroupRule(
        _int(gid),
        _str(name),
        tuple(map(_str, allow)),
        _str(order),
        tuple(map(_str, deny)),
    )


def _priority(row: list[Any]) -> GroupPriority:
    _, pid, name, groups, order, station = row
    return GroupPriority(
        _int(pid), _str(name), tuple(map(_int, groups)), _int(order), _str(station)
    )


def _setting(row: list[Any]) -> Setting:
    _, name, value = row
    return Setting(_str(name), _str(value))


_BUILDERS: dict[int, Callable[[list[Any]], Record]] = {
    1: _node,
    2: _rule,
    3: _priority,
    4: _setting,
}

# --------------------------------------------------------------------------- endpoints, fast

#: The exact value types of an endpoint row: code, then the fields in model order.
_EP_ROW_TYPES = (int, str, str, int, int, int, str, str, bool, str, *(int,) * 6, str, str, str, str)
#: rows of a peer from before adapter_name and tars_version: those two default to ""
_EP_LEGACY_LEN = len(_EP_ROW_TYPES) - 2
_EP_LEGACY_PAD = ("", "")
if len(_EP_ROW_TYPES) != 1 + len(_FIELDS[EndpointRecord]):
    raise ImportError("EndpointRecord changed: update the cascade payload codec")
_PORT_COLUMN = 3
_STATE_COLUMNS = (16, 17)
if array("i").itemsize != 4 or array("H").itemsize != 2:  # true on every platform we run on
    raise ImportError("tarscascade.cascade.payload needs 32-bit 'i' and 16-bit 'H' arrays")


class _EndpointBuilder:
    """Builds ``EndpointRecord`` values about 5x faster than the dataclass constructor.

    The frozen dataclass ``__init__`` goes through ``object.__setattr__`` per field
    (~1.2 µs for 17 fields); a node taking a million-endpoint snapshot spends over a
    second there. This class has the very same slots, so its ``__init__`` stores them
    with plain slot writes and then re-labels the instance as an ``EndpointRecord`` (an
    assignment CPython allows between classes of identical layout). The result is
    indistinguishable from a normally built record; ``tests/unit/cascade`` checks that.
    Only :func:`_build_endpoints` uses it, after the row passed its type checks.
    """

    __slots__ = EndpointRecord.__slots__

    def __init__(
        self,
        _code: int,
        object_id: str,
        host: str,
        port: int,
        istcp: int,
        timeout: int,
        node_name: str,
        set_id: str,
        enable_group: bool,
        ip_group_name: str,
        grid: int,
        qos: int,
        weight: int,
        weight_type: int,
        auth_type: int,
        bak_flag: int,
        setting_state: str,
        present_state: str,
        adapter_name: str,
        tars_version: str,
    ) -> None:
        self.object_id = object_id
        self.host = host
        self.port = port
        self.istcp = istcp
        self.timeout = timeout
        self.node_name = node_name
        self.set_id = set_id
        self.enable_group = enable_group
        self.ip_group_name = ip_group_name
        self.grid = grid
        self.qos = qos
        self.weight = weight
        self.weight_type = weight_type
        self.auth_type = auth_type
        self.bak_flag = bak_flag
        self.setting_state = _STATES[setting_state]
        self.present_state = _STATES[present_state]
        self.adapter_name = adapter_name
        self.tars_version = tars_version
        self.__class__ = EndpointRecord  # type: ignore[assignment]  # same layout, see above


def _fast_builder_works() -> bool:
    """Whether this interpreter accepts the re-labelling (any CPython 3.11+ does)."""
    if _FIELDS[EndpointRecord] != tuple(_EndpointBuilder.__slots__):
        return False
    probe = ["x", "h", 1, 1, 3000, "n", "", True, "", 0, 0, -1, 0, 0, 0, "active", "inactive"]
    probe += ["x.a", "3.0"]
    try:
        rec: object = _EndpointBuilder(0, *probe)  # type: ignore[arg-type]
    except TypeError:
        return False
    return type(rec) is EndpointRecord and rec == _slow_endpoint([0, *probe])


def _slow_endpoint(row: list[Any]) -> EndpointRecord:
    return EndpointRecord(*row[1:16], _STATES[row[16]], _STATES[row[17]], *row[18:20])  # type: ignore[call-arg]


def _build_endpoints(rows: list[Any]) -> list[EndpointRecord]:
    """Check then build endpoint rows, column by column in C-level loops.

    About 0.4 µs a row: the checks run over whole columns (``str.join`` refuses
    non-strings, ``array`` refuses non-integers and out-of-range ones) instead of row by
    row. One leniency, for speed: a JSON ``true``/``false`` in an integer field passes
    as the equal Python bool; that is the same value, and the digest check still tells
    such a snapshot apart.
    """
    if not rows:
        return []
    if len(rows) <= _FEW_ROWS and _FAST:
        return [_endpoint_row(row) for row in rows]
    if set(map(type, rows)) != {list}:
        raise PayloadError("an objects payload holds something other than records")
    if len(rows[0]) == _EP_LEGACY_LEN:
        rows = [[*r, *_EP_LEGACY_PAD] if len(r) == _EP_LEGACY_LEN else r for r in rows]
    try:
        columns = list(zip(*rows, strict=True))
    except ValueError:
        raise PayloadError("endpoint records of different lengths") from None
    if len(columns) != len(_EP_ROW_TYPES):
        raise PayloadError(f"endpoint records of {len(columns)} values, not {len(_EP_ROW_TYPES)}")
    try:
        for i, kind in enumerate(_EP_ROW_TYPES):
            col = columns[i]
            if i == 0:
                if set(map(type, col)) != {int} or set(col) != {0}:
                    raise ValueError("a record other than an endpoint")
            elif i == _PORT_COLUMN:
                array("H", col)  # unsigned 16 bits: refuses non-ints and any other port
            elif i in _STATE_COLUMNS:
                if not set(col) <= _STATES.keys():
                    raise ValueError("unknown state")
            elif kind is str:
                "".join(col)  # raises TypeError on anything but strings
            elif kind is bool:
                if not set(map(type, col)) <= {bool}:
                    raise ValueError("enable_group is not a boolean")
            else:
                array("i", col)  # 32-bit signed: refuses floats, strings, big numbers
    except (TypeError, ValueError, OverflowError) as exc:
        field = "record code" if i == 0 else _FIELDS[EndpointRecord][i - 1]
        raise PayloadError(f"bad endpoint {field}: {exc}") from None
    build = _EndpointBuilder if _FAST else _slow_endpoint_star
    return list(starmap(build, rows))  # type: ignore[arg-type]


#: up to this many rows (a delta's), checking row by row beats the column-wise pass
_FEW_ROWS = 8
_INT32 = (INT32_MIN, INT32_MAX)
_EP_INT_COLUMNS = tuple(i for i, k in enumerate(_EP_ROW_TYPES) if k is int and i not in (0, 3))
_EP_STR_COLUMNS = tuple(i for i, k in enumerate(_EP_ROW_TYPES) if k is str and i not in (16, 17))


def _endpoint_row(row: object) -> EndpointRecord:
    """One endpoint row, checked exactly as :func:`_build_endpoints` checks a column
    (the same leniency: a bool passes in an integer field)."""
    if type(row) is not list:
        raise PayloadError("an objects payload holds something other than records")
    if len(row) == _EP_LEGACY_LEN:
        row = [*row, *_EP_LEGACY_PAD]
    if len(row) != len(_EP_ROW_TYPES):
        raise PayloadError(f"endpoint records of different lengths: {len(row)} values")
    if type(row[0]) is not int or row[0] != 0:
        raise PayloadError("bad endpoint record code: a record other than an endpoint")
    port = row[_PORT_COLUMN]
    if type(port) not in (int, bool) or not 0 <= port <= 65535:
        raise PayloadError(f"bad endpoint port: {port!r:.40}")
    lo, hi = _INT32
    for i in _EP_INT_COLUMNS:
        v = row[i]
        if type(v) not in (int, bool) or not lo <= v <= hi:
            raise PayloadError(f"bad endpoint {_FIELDS[EndpointRecord][i - 1]}: {v!r:.40}")
    for i in _EP_STR_COLUMNS:
        if type(row[i]) is not str:
            raise PayloadError(f"bad endpoint {_FIELDS[EndpointRecord][i - 1]}: not a string")
    if type(row[8]) is not bool:
        raise PayloadError("bad endpoint enable_group: enable_group is not a boolean")
    s16, s17 = row[16], row[17]
    if type(s16) is not str or type(s17) is not str or s16 not in _STATES or s17 not in _STATES:
        raise PayloadError("bad endpoint state: unknown state")
    return _EndpointBuilder(*row)  # type: ignore[return-value]  # re-labelled, see the class


def _slow_endpoint_star(*row: Any) -> EndpointRecord:
    return _slow_endpoint(list(row))


_FAST = _fast_builder_works()
