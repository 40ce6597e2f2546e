"""adopt(): logging rows changed behind the store's back, without touching them."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from tarscascade.model import Category, ChangeEvent, Op, Record, Setting
from tarscascade.store import Delete, Put, SqlStore, WriteOp, rows, schema
from tests.integration.store.store_samples import endpoint


def _diff(catalog: dict[str, Record], fresh: list[Record]) -> list[WriteOp]:
    """What the registry's anti-entropy pass computes: reloaded rows vs its catalog."""
    by_key = {r.key: r for r in fresh}
    ops: list[WriteOp] = [Put(r) for k, r in by_key.items() if catalog.get(k) != r]
    ops += [Delete(Category.OBJECTS, k) for k in catalog if k not in by_key]
    return ops


def test_adopt_logs_behind_the_back_edits_as_ordinary_events(
    open_store: Callable[[], SqlStore], raw: sa.Engine
) -> None:
    store, other = open_store(), open_store()
    store.write([Put(endpoint(1)), Put(endpoint(2)), Put(endpoint(3))])
    catalog = {r.key: r for r in store.load().endpoints}
    ep = schema.endpoints
    with raw.begin() as conn:  # an operator edits the tables directly
        conn.execute(ep.update().where(ep.c.port == endpoint(1).port).values(weight=77))
        conn.execute(ep.delete().where(ep.c.port == endpoint(2).port))
        conn.execute(ep.insert().values(**_row(endpoint(4))))
    fresh = store.load()
    ops = _diff(catalog, list(fresh.endpoints))
    assert len(ops) == 3

    events = store.adopt(ops)

    assert [e.revision for e in events] == [4, 5, 6]
    assert {(e.op, e.key, e.record) for e in events} == {
        (Op.PUT, endpoint(1).key, endpoint(1, weight=77)),
        (Op.PUT, endpoint(4).key, endpoint(4)),
        (Op.DELETE, endpoint(2).key, None),
    }
    after = store.load()
    assert after.endpoints == fresh.endpoints  # rows untouched
    assert after.revision == 6
    assert other.changes_since(3) == events  # another registry tails the adoption


def test_adopt_logs_the_rows_current_state_not_a_stale_diff(store: SqlStore) -> None:
    store.write([Put(Setting("s", "old"))])
    # The diff saw "stale" but a write landed since: the log must end with the truth.
    store.write([Put(Setting("s", "current"))])
    events = store.adopt([Put(Setting("s", "stale")), Delete(Category.NODES, "never-existed")])
    assert events == [
        ChangeEvent(3, Category.SETTINGS, Op.PUT, "s", Setting("s", "current")),
        ChangeEvent(4, Category.NODES, Op.DELETE, "never-existed", None),
    ]
    assert store.adopt([]) == []


def _row(record: Record) -> dict[str, object]:
    return rows.to_row(record)[1]
