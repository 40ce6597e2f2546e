"""bulk_load(): batched inserts, logged or not, all-or-nothing."""

from __future__ import annotations

import pytest

from tarscascade.errors import ChangeLogTrimmedError, ConflictError
from tarscascade.model import Op
from tarscascade.store import Put, SqlStore
from tests.integration.store.store_samples import endpoint, every_type


def test_logged_bulk_load_gives_every_record_an_event(store: SqlStore) -> None:
    records = [endpoint(i, obj="Bulk.S.Obj") for i in range(25)] + every_type()
    revision = store.bulk_load(iter(records), batch_size=7)
    assert revision == len(records)
    events = store.changes_since(0, limit=1000)
    assert [e.revision for e in events] == list(range(1, len(records) + 1))
    assert [e.record for e in events] == records
    assert all(e.op is Op.PUT for e in events)
    snap = store.load()
    assert len(snap.endpoints) == 29
    assert snap.revision == revision


def test_unlogged_bulk_load_takes_one_revision_and_raises_the_log_floor(
    store: SqlStore,
) -> None:
    store.write([Put(endpoint(0))])
    revision = store.bulk_load((endpoint(i) for i in range(1, 101)), log_changes=False)
    assert revision == 2
    assert store.changes_since(2) == []
    with pytest.raises(ChangeLogTrimmedError):  # a tailer at 1 would miss 100 records
        store.changes_since(1)
    assert len(store.load().endpoints) == 101
    assert store.write([Put(endpoint(0, weight=3))])[0].revision == 3
    assert store.bulk_load([], log_changes=False) == 3  # nothing loaded, nothing bumped


def test_bulk_load_of_an_existing_key_conflicts_and_writes_nothing(store: SqlStore) -> None:
    store.write([Put(endpoint(5))])
    with pytest.raises(ConflictError):
        store.bulk_load([endpoint(i) for i in range(10)], batch_size=3)
    assert store.current_revision() == 1
    assert store.load().endpoints == [endpoint(5)]
