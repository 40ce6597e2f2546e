"""Property tests: the category digest depends on the content only, never on history."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from tarscascade.catalog import Catalog
from tarscascade.catalog.tables import ObjectSnapshot
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
    Version,
    record_digest,
    record_to_dict,
)

endpoints = st.builds(
    EndpointRecord,
    object_id=st.sampled_from(["A.S.Obj", "B.S.Obj", "C.S.Obj"]),
    host=st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    port=st.integers(1, 4),
    node_name=st.sampled_from(["", "n1", "n2"]),
    weight=st.integers(-1, 3),
    present_state=st.sampled_from(State),
)


def unique(records: list[EndpointRecord]) -> list[EndpointRecord]:
    return list({r.key: r for r in records}.values())


def load(records: list[EndpointRecord]) -> Catalog:
    cat = Catalog()
    cat.replace_category(Category.OBJECTS, records, Version("e", 1))
    return cat


@settings(max_examples=200)
@given(st.lists(endpoints, max_size=30), st.randoms(use_true_random=False))
def test_digest_is_the_same_in_any_order(records: list[EndpointRecord], rnd: object) -> None:
    records = unique(records)
    shuffled = records[:]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert load(records).digest(Category.OBJECTS) == load(shuffled).digest(Category.OBJECTS)


@settings(max_examples=200)
@given(st.lists(endpoints, max_size=30), st.lists(endpoints, max_size=30))
def test_any_event_history_digests_like_a_fresh_load(
    start: list[EndpointRecord], later: list[EndpointRecord]
) -> None:
    """Puts, replacements and deletions maintain the digest of exactly what is held."""
    cat = load(start)
    events = []
    for i, r in enumerate(later):
        if i % 3 == 2:
            events.append(ChangeEvent(i + 2, Category.OBJECTS, Op.DELETE, r.key, None))
        else:
            events.append(ChangeEvent(i + 2, Category.OBJECTS, Op.PUT, r.key, r))
    cat.apply(events, "e")
    held = list(cat.records(Category.OBJECTS))
    fresh = load(held)  # type: ignore[arg-type]
    assert cat.digest(Category.OBJECTS) == fresh.digest(Category.OBJECTS)
    assert cat.counts() == fresh.counts()
    chunked = Catalog()
    snap = ObjectSnapshot(held[: len(held) // 2])  # type: ignore[arg-type]
    snap.add(held[len(held) // 2 :])  # type: ignore[arg-type]
    chunked.replace_category(Category.OBJECTS, snap, Version("e", 9))
    assert chunked.digest(Category.OBJECTS) == fresh.digest(Category.OBJECTS)


@given(st.lists(endpoints, max_size=20), st.lists(endpoints, max_size=20))
def test_diff_turns_one_content_into_the_other(
    a: list[EndpointRecord], b: list[EndpointRecord]
) -> None:
    cat = load(a)
    changes = cat.diff(Category.OBJECTS, b)
    events = [
        ChangeEvent(i + 2, Category.OBJECTS, op, k, r) for i, (op, k, r) in enumerate(changes)
    ]
    cat.apply(events, "e")
    assert cat.digest(Category.OBJECTS) == load(b).digest(Category.OBJECTS)
    assert cat.diff(Category.OBJECTS, b) == []


def test_record_digest_is_the_same_in_another_process() -> None:
    """Replicas compare digests: no hash seed or process state may leak into them."""
    records: list[Record] = [
        EndpointRecord("A.S.Obj", "10.0.0.1", 1, enable_group=True, set_id="a.b.c"),
        NodeRecord("n1", last_heartbeat=1.5),
        GroupRule(1, "g", ("10.0.0.*", "10.0.1.1")),
        GroupPriority(2, "p", (1, 2), 3, "sz"),
        Setting("k", "v"),
    ]
    code = (
        "import json, sys\n"
        "from tarscascade.model import record_digest, record_from_dict\n"
        "print([record_digest(record_from_dict(d)) for d in json.load(sys.stdin)])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([record_to_dict(r) for r in records]),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout
    assert out.strip() == str([record_digest(r) for r in records])


def test_bool_and_int_flags_digest_alike() -> None:
    as_bool = EndpointRecord("A.S.Obj", "10.0.0.1", 1, enable_group=True)
    as_int = EndpointRecord("A.S.Obj", "10.0.0.1", 1, enable_group=1)  # type: ignore[arg-type]
    assert record_digest(as_bool) == record_digest(as_int)
