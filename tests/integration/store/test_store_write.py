"""write(): events, revisions, the change log, tombstones, atomicity, round trips."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tarscascade.errors import InvalidRecordError, NotFoundError, StoreError
from tarscascade.model import Category, ChangeEvent, NodeRecord, Op, Setting
from tarscascade.store import Delete, Put, SqlStore, schema
from tests.integration.store.store_samples import endpoint, every_type


def test_put_update_delete_produce_events_with_increasing_revisions(store: SqlStore) -> None:
    a = endpoint(1)
    a2 = endpoint(1, weight=50)
    created = store.write([Put(a)])
    updated = store.write([Put(a2)])
    deleted = store.write([Delete.of(a)])
    assert created == [ChangeEvent(1, Category.OBJECTS, Op.PUT, a.key, a)]
    assert updated == [ChangeEvent(2, Category.OBJECTS, Op.PUT, a.key, a2)]
    assert deleted == [ChangeEvent(3, Category.OBJECTS, Op.DELETE, a.key, None)]
    assert store.changes_since(0) == created + updated + deleted
    assert store.current_revision() == 3
    assert store.load().endpoints == []


def test_one_write_takes_consecutive_revisions(store: SqlStore) -> None:
    store.write([Put(endpoint(0))])
    events = store.write([Put(endpoint(i)) for i in range(1, 6)])
    assert [e.revision for e in events] == [2, 3, 4, 5, 6]
    assert store.current_revision() == 6
    assert store.write([]) == []
    assert store.current_revision() == 6


def test_deletes_are_logged_as_tombstones(store: SqlStore, raw: sa.Engine) -> None:
    store.write([Put(NodeRecord("n1")), Put(Setting("s", "v"))])
    store.write([Delete(Category.NODES, "n1"), Delete(Category.SETTINGS, "s")])
    log = schema.change_log
    with raw.connect() as conn:
        stored = conn.execute(
            sa.select(log.c.revision, log.c.op, log.c.key, log.c.payload).order_by(log.c.revision)
        ).all()
    assert [tuple(r) for r in stored[2:]] == [(3, "delete", "n1", None), (4, "delete", "s", None)]
    assert all(r.payload is not None for r in stored[:2])
    tail = store.changes_since(2)
    assert [(e.op, e.key, e.record) for e in tail] == [
        (Op.DELETE, "n1", None),
        (Op.DELETE, "s", None),
    ]


def test_a_missing_delete_rolls_the_whole_write_back(store: SqlStore) -> None:
    store.write([Put(endpoint(1))])
    gone = Delete.of(endpoint(9))
    with pytest.raises(NotFoundError) as caught:
        store.write([Put(endpoint(2)), Delete.of(endpoint(1)), gone])
    assert caught.value.keys == [gone.key]
    assert store.current_revision() == 1
    assert store.load().endpoints == [endpoint(1)]
    assert len(store.changes_since(0)) == 1


def test_missing_ok_skips_missing_deletes_without_an_event(store: SqlStore) -> None:
    store.write([Put(endpoint(1))])
    events = store.write([Delete.of(endpoint(9)), Delete.of(endpoint(1))], missing_ok=True)
    assert [(e.revision, e.key) for e in events] == [(2, endpoint(1).key)]


def test_ops_apply_in_order_within_one_write(store: SqlStore) -> None:
    a, b = endpoint(1), endpoint(2)
    events = store.write(
        [Put(a), Delete.of(a), Put(b), Put(endpoint(2, weight=7)), Put(endpoint(2, weight=8))]
    )
    assert [e.op for e in events] == [Op.PUT, Op.DELETE, Op.PUT, Op.PUT, Op.PUT]
    assert store.load().endpoints == [endpoint(2, weight=8)]


def test_load_round_trips_every_record_type_exactly(store: SqlStore) -> None:
    records = every_type()
    events = store.write([Put(r) for r in records])
    assert [e.record for e in events] == records
    snap = store.load()
    loaded = [
        *snap.endpoints,
        *snap.nodes,
        *snap.group_rules,
        *snap.group_priorities,
        *snap.settings,
    ]
    key = repr
    assert sorted(loaded, key=key) == sorted(records, key=key)
    assert snap.revision == len(records)
    assert snap.version.epoch == store.epoch
    assert [e.record for e in store.changes_since(0)] == records  # payloads round-trip too
    groups = snap.records(Category.GROUPS)
    assert len(groups) == 4


def test_keys_differing_only_in_case_are_distinct(store: SqlStore) -> None:
    store.write([Put(endpoint(1, obj="App.S.Obj")), Put(endpoint(1, obj="app.s.obj"))])
    assert len(store.load().endpoints) == 2


def test_invalid_records_are_refused_before_anything_is_written(store: SqlStore) -> None:
    with pytest.raises(InvalidRecordError):
        store.write([Put(endpoint(1)), Put(endpoint(2, node_name="n" * 300))])
    with pytest.raises(InvalidRecordError):
        store.write([Delete(Category.GROUPS, "rule|seven")])
    assert store.current_revision() == 0


def test_a_hand_edited_unreadable_row_fails_load_clearly(store: SqlStore, raw: sa.Engine) -> None:
    store.write([Put(every_type()[6])])  # a group rule
    with raw.begin() as conn:
        conn.execute(schema.group_rules.update().values(allow_ip_rule="not json"))
    with pytest.raises(StoreError, match="unreadable row in tc_group_rules"):
        store.load()


def test_something_that_is_not_an_op_is_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidRecordError):
        store.write([endpoint(1)])  # type: ignore[list-item]
