"""changes_since, several stores on one database, trimming the log."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tarscascade.errors import ChangeLogTrimmedError
from tarscascade.model import Op
from tarscascade.store import Delete, Put, SqlStore
from tests.integration.store.store_samples import endpoint


def test_changes_since_is_ordered_and_limited(store: SqlStore) -> None:
    for i in range(10):
        store.write([Put(endpoint(i))])
    assert [e.revision for e in store.changes_since(0, limit=4)] == [1, 2, 3, 4]
    assert [e.revision for e in store.changes_since(4, limit=4)] == [5, 6, 7, 8]
    assert [e.revision for e in store.changes_since(8)] == [9, 10]
    assert store.changes_since(10) == []
    assert store.changes_since(99) == []
    with pytest.raises(ValueError, match="limit"):
        store.changes_since(0, limit=0)


def test_two_registries_on_one_database_see_each_others_writes(
    open_store: Callable[[], SqlStore],
) -> None:
    one, two = open_store(), open_store()
    assert one.epoch == two.epoch
    written = one.write([Put(endpoint(1)), Put(endpoint(2))])
    assert two.changes_since(0) == written
    assert two.load().endpoints == one.load().endpoints
    deleted = two.write([Delete.of(endpoint(1))])
    assert one.changes_since(2) == deleted
    assert [e.revision for e in deleted] == [3]
    assert one.load().endpoints == [endpoint(2)]
    assert one.current_revision() == two.current_revision() == 3


def test_trim_keeps_the_newest_revisions_and_refuses_older_resumes(store: SqlStore) -> None:
    for i in range(10):
        store.write([Put(endpoint(i))])
    assert store.trim_change_log(keep_revisions=3) == 7
    assert [e.revision for e in store.changes_since(7)] == [8, 9, 10]
    with pytest.raises(ChangeLogTrimmedError) as caught:
        store.changes_since(6)
    assert (caught.value.since, caught.value.floor) == (6, 7)
    assert store.trim_change_log(keep_revisions=100) == 0  # never lowers the floor
    with pytest.raises(ChangeLogTrimmedError):
        store.changes_since(6)
    assert len(store.load().endpoints) == 10  # trimming never touches records
    event = store.write([Delete.of(endpoint(0))])[0]
    assert (event.revision, event.op) == (11, Op.DELETE)
    assert store.trim_change_log(keep_revisions=0) == 4
    assert store.changes_since(11) == []
    with pytest.raises(ValueError, match="keep_revisions"):
        store.trim_change_log(-1)
