"""Payloads: round trips (tables and hypothesis) and hostile input that must be refused."""

from __future__ import annotations

import contextlib
import dataclasses

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tarscascade.cascade import payload
from tarscascade.cascade.payload import (
    PayloadError,
    decode_events,
    decode_records,
    encode_events,
    encode_records,
    split_records,
)
from tarscascade.errors import DecodeError
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
    category_of,
    legacy_record_digest,
    record_digest,
)

text = st.text(max_size=12)
i32 = st.integers(-(2**31), 2**31 - 1)
endpoints = st.builds(
    EndpointRecord,
    object_id=text,
    host=text,
    port=st.integers(0, 65535),
    istcp=i32,
    timeout=i32,
    node_name=text,
    set_id=text,
    enable_group=st.booleans(),
    ip_group_name=text,
    grid=i32,
    qos=i32,
    weight=i32,
    weight_type=i32,
    auth_type=i32,
    bak_flag=i32,
    setting_state=st.sampled_from(State),
    present_state=st.sampled_from(State),
    adapter_name=text,
    tars_version=text,
)
nodes = st.builds(
    NodeRecord,
    name=text,
    host=text,
    port=st.integers(0, 65535),
    setting_state=st.sampled_from(State),
    present_state=st.sampled_from(State),
    last_heartbeat=st.floats(0, 2e9, allow_nan=False),
)
rules = st.builds(
    GroupRule,
    group_id=i32,
    group_name=text,
    allow_ip_rule=st.lists(text, max_size=3).map(tuple),
    ip_order=text,
    denny_ip_rule=st.lists(text, max_size=3).map(tuple),
)
priorities = st.builds(
    GroupPriority,
    id=i32,
    name=text,
    group_list=st.lists(i32, max_size=4).map(tuple),
    list_order=i32,
    station=text,
)
settings_ = st.builds(Setting, name=text, value=text)

BY_CATEGORY = {
    Category.OBJECTS: endpoints,
    Category.NODES: nodes,
    Category.GROUPS: st.one_of(rules, priorities),
    Category.SETTINGS: settings_,
}


def same(a: Record, b: Record) -> bool:
    """Equal values *and* equal types field by field (bool stays bool, State stays State)."""
    if type(a) is not type(b) or a != b:
        return False
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if type(x) is not type(y):
            return False
    return record_digest(a) == record_digest(b)


@pytest.mark.parametrize("category", list(Category))
@settings(max_examples=60)
@given(data=st.data())
def test_records_round_trip_exactly(category: Category, data: st.DataObject) -> None:
    records = data.draw(st.lists(BY_CATEGORY[category], max_size=20))
    back = decode_records(encode_records(records), category)
    assert len(back) == len(records)
    assert all(same(a, b) for a, b in zip(records, back, strict=True))


@settings(max_examples=100)
@given(st.lists(st.one_of(endpoints, nodes), max_size=10), st.integers(0, 10**12))
def test_events_round_trip(records: list[Record], start: int) -> None:
    for cat in (Category.OBJECTS, Category.NODES):
        mine = [r for r in records if category_of(r) is cat]
        events = [ChangeEvent(start + i * 2 + 1, cat, Op.PUT, r.key, r) for i, r in enumerate(mine)]
        events.append(ChangeEvent(start + 999, cat, Op.DELETE, "gone|1.2.3.4|5", None))
        back = decode_events(encode_events(events), cat)
        assert back == events
        assert all(same(a.record, b.record) for a, b in zip(events, back, strict=True) if a.record)


def test_the_fast_endpoint_builder_makes_real_records() -> None:
    r = EndpointRecord("A.B.Obj", "10.0.0.1", 80, enable_group=True, present_state=State.INACTIVE)
    (back,) = decode_records(encode_records([r]), Category.OBJECTS)
    assert type(back) is EndpointRecord
    assert back == r
    assert hash(back) == hash(r)
    assert back.present_state is State.INACTIVE
    assert back.setting_state is State.ACTIVE
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.port = 81  # type: ignore[misc]


def test_endpoint_rows_from_before_the_adapter_fields_still_decode() -> None:
    """A peer that predates ``adapter_name``/``tars_version`` sends 18-value rows."""
    r = EndpointRecord("A.B.Obj", "10.0.0.1", 80, node_name="n1")
    legacy = orjson.loads(encode_records([r]))[0][:-2]
    assert len(legacy) == 18
    (back,) = decode_records(orjson.dumps([legacy, legacy]), Category.OBJECTS)[:1]
    assert same(back, r)
    assert back.adapter == "A.B.ObjAdapter"
    # a record without the new fields digests as it did before they existed (the value
    # the previous release computes for this record)
    assert legacy_record_digest(r) == 0x4F949281A1176299
    assert record_digest(r) != record_digest(dataclasses.replace(r, adapter_name="X"))
    assert record_digest(r) != record_digest(dataclasses.replace(r, tars_version="1"))
    with pytest.raises(PayloadError, match="different lengths"):
        decode_records(orjson.dumps([legacy, [*legacy, "x"]]), Category.OBJECTS)


def test_split_records_keeps_every_record_and_order() -> None:
    records = [EndpointRecord(f"App.S{i}.Obj", "10.0.0.1", 1000 + i) for i in range(3000)]
    parts = list(split_records(records, 16 * 1024))
    assert len(parts) > 5
    assert all(len(p) <= 2 * 16 * 1024 for p, _ in parts)
    back = [r for p, _ in parts for r in decode_records(p, Category.OBJECTS)]
    assert back == records
    assert sum(n for _, n in parts) == len(records)
    ((empty, n),) = split_records([], 1024)
    assert n == 0
    assert decode_records(empty, Category.OBJECTS) == []


EP = [0, "A.B.Obj", "h", 80, 1, 3000, "", "", False, "", 0, 0, -1, 0, 0, 0, "active", "active"]


def enc(value: object) -> bytes:
    return orjson.dumps(value)


HOSTILE_RECORDS = {
    "not json": b"\xff\xfe[",
    "truncated": b'[[0,"A"',
    "an object": b'{"a": 1}',
    "a string": b'"hello"',
    "rows not arrays": enc([1, 2, 3]),
    "row a dict": enc([{"0": 1}]),
    "row a string": enc(["abcdefghijklmnopq"]),
    "short row": enc([EP[:5]]),
    "long row": enc([[*EP, 1]]),
    "port as string": enc([[*EP[:3], "80", *EP[4:]]]),
    "port too big": enc([[*EP[:3], 70000, *EP[4:]]]),
    "negative port": enc([[*EP[:3], -1, *EP[4:]]]),
    "int32 overflow": enc([[*EP[:5], 2**31, *EP[6:]]]),
    "int as bool field": enc([[*EP[:8], 1, *EP[9:]]]),
    "float port": enc([[*EP[:3], 80.0, *EP[4:]]]),
    "unknown state": enc([[*EP[:16], "dead", "active"]]),
    "state as int": enc([[*EP[:16], 1, "active"]]),
    "null host": enc([[*EP[:2], None, *EP[3:]]]),
    "wrong code": enc([[1, *EP[1:]]]),
    "huge int": b'[[0,"A","h",99999999999999999999999]]',
    "deep nesting": b"[" * 5000 + b"]" * 5000,
    "lone surrogate": b'[[0,"\\ud800","h",80,1,3000,"","",false,"",0,0,-1,0,0,0,"active",'
    b'"active"]]',
}


@pytest.mark.parametrize("payload", HOSTILE_RECORDS.values(), ids=HOSTILE_RECORDS.keys())
def test_hostile_objects_payloads_are_refused_clearly(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_records(payload, Category.OBJECTS)


HOSTILE_SMALL = {
    "node with string port": (Category.NODES, enc([[1, "n", "h", "80", "active", "active", 0.0]])),
    "node short": (Category.NODES, enc([[1, "n"]])),
    "node bad state": (Category.NODES, enc([[1, "n", "h", 80, "up", "active", 0.0]])),
    "node heartbeat string": (Category.NODES, enc([[1, "n", "h", 80, "active", "active", "0"]])),
    "endpoint in nodes": (Category.NODES, enc([EP])),
    "setting in groups": (Category.GROUPS, enc([[4, "a", "b"]])),
    "rule with int patterns": (Category.GROUPS, enc([[2, 1, "g", [1, 2], "allow", []]])),
    "priority with str groups": (Category.GROUPS, enc([[3, 1, "p", ["x"], 0, ""]])),
    "unknown code": (Category.SETTINGS, enc([[9, "a", "b"]])),
    "negative code": (Category.SETTINGS, enc([[-1, "a", "b"]])),
    "code is a string": (Category.SETTINGS, enc([["4", "a", "b"]])),
    "setting value null": (Category.SETTINGS, enc([[4, "a", None]])),
    "empty row": (Category.SETTINGS, enc([[]])),
}


@pytest.mark.parametrize("case", HOSTILE_SMALL.values(), ids=HOSTILE_SMALL.keys())
def test_hostile_small_payloads_are_refused_clearly(case: tuple[Category, bytes]) -> None:
    category, payload = case
    with pytest.raises(PayloadError):
        decode_records(payload, category)


SETTING = [4, "a", "b"]
HOSTILE_EVENTS = {
    "not a list": enc({"op": "put"}),
    "event too short": enc([["put", "a", SETTING]]),
    "unknown op": enc([["upsert", "a", SETTING, 1]]),
    "revision string": enc([["put", "a", SETTING, "1"]]),
    "revisions not increasing": enc([["put", "a", SETTING, 2], ["put", "a", SETTING, 2]]),
    "key not the record's": enc([["put", "b", SETTING, 1]]),
    "delete with record": enc([["delete", "a", SETTING, 1]]),
    "put without record": enc([["put", "a", None, 1]]),
    "other category": enc([["put", "n", [1, "n", "h", 80, "active", "active", 0.0], 1]]),
    "key not a string": enc([["delete", 5, None, 1]]),
}


@pytest.mark.parametrize("payload", HOSTILE_EVENTS.values(), ids=HOSTILE_EVENTS.keys())
def test_hostile_delta_payloads_are_refused_clearly(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_events(payload, Category.SETTINGS)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoders(data: bytes) -> None:
    for cat in Category:
        with contextlib.suppress(DecodeError):
            decode_records(data, cat)
        with contextlib.suppress(DecodeError):
            decode_events(data, cat)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300)
@given(st.lists(st.lists(json_values, max_size=19), max_size=4))
def test_random_json_arrays_never_crash_the_decoders(rows: list[object]) -> None:
    data = orjson.dumps(rows)
    for cat in Category:
        with contextlib.suppress(DecodeError):
            decode_records(data, cat)


@settings(max_examples=300)
@given(st.integers(0, len(EP) - 1), json_values)
def test_an_endpoint_row_with_one_field_replaced_is_valid_or_refused(
    pos: int, value: object
) -> None:
    row = [*EP]
    row[pos] = value
    try:
        (rec,) = decode_records(orjson.dumps([row]), Category.OBJECTS)
    except DecodeError:
        return
    assert type(rec) is EndpointRecord
    want = EndpointRecord(*row[1:16], State(row[16]), State(row[17]))  # type: ignore[arg-type]
    # exact, except that a JSON true/false in an integer field passes as the equal bool
    assert rec == want
    for f in dataclasses.fields(rec):
        got, expected = type(getattr(rec, f.name)), type(getattr(want, f.name))
        assert got is expected or (got is bool and f.type == "int")


_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.sampled_from(["active", "inactive"]),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),  # what JSON (orjson) can carry
)


@given(column=st.integers(0, 19), value=_JSON_VALUES)
def test_a_few_rows_are_checked_exactly_like_many(column: int, value: object) -> None:
    """A delta's rows take the row-by-row check, a snapshot's the column-wise one: a
    mutated row is refused by both or built equal by both."""
    rec = EndpointRecord("A.B.Obj", "10.0.0.1", 1, adapter_name="a", tars_version="1")
    row = orjson.loads(encode_records([rec]))[0]
    row[column] = value
    results = []
    for rows in ([row], [row] * (payload._FEW_ROWS + 1)):
        try:
            results.append(payload._build_endpoints(orjson.loads(orjson.dumps(rows)))[0])
        except PayloadError:
            results.append(None)
    assert results[0] == results[1]
