"""Catalog contents, versions, digests, affected objects, diff and snapshots."""

from __future__ import annotations

import random
from collections.abc import Set

import pytest

from tarscascade.catalog import NO_VERSION, Catalog, CatalogError
from tarscascade.catalog.tables import ObjectSnapshot
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupRule,
    NodeRecord,
    Op,
    Setting,
    State,
    Version,
    endpoint_key,
)
from tests.unit.catalog.helpers import EPOCH, OBJ, delete, ep, make_catalog, put

A, B, C = "A.S.Obj", "B.S.Obj", "C.S.Obj"


def sample() -> list[EndpointRecord]:
    return [
        ep("10.9.0.1", obj=A, node_name="n1"),
        ep("10.9.0.2", obj=A, node_name="n2"),
        ep("10.9.0.3", obj=B, node_name="n1"),
        ep("10.9.0.4", obj=C),
    ]


def loaded(records: list[EndpointRecord] | None = None) -> Catalog:
    cat = Catalog()
    cat.replace_category(
        Category.OBJECTS, sample() if records is None else records, Version("e", 5)
    )
    return cat


# --- versions -----------------------------------------------------------------------------


def test_new_catalog_holds_no_version() -> None:
    cat = Catalog()
    assert all(cat.version(c) == NO_VERSION for c in Category)
    assert cat.counts() == dict.fromkeys(("objects", "endpoints", "nodes", "groups", "settings"), 0)


def test_apply_moves_each_category_to_its_last_revision() -> None:
    cat = loaded()
    cat.apply(
        [put(6, ep("10.9.0.9", obj=A)), put(7, NodeRecord("n1")), put(8, ep("10.9.0.8", obj=B))],
        "e",
    )
    assert cat.version(Category.OBJECTS) == Version("e", 8)
    assert cat.version(Category.NODES) == Version("e", 7)
    assert cat.version(Category.GROUPS) == NO_VERSION


def test_no_op_events_still_advance_the_version() -> None:
    """A deletion of an absent key, or an identical put, changes nothing but the version."""
    cat = loaded()
    digest = cat.digest(Category.OBJECTS)
    affected = cat.apply(
        [
            delete(6, Category.OBJECTS, endpoint_key(A, "1.1.1.1", 1)),
            delete(7, Category.OBJECTS, "not an endpoint key"),
            put(8, sample()[0]),
            delete(9, Category.NODES, "ghost"),
        ],
        "e",
    )
    assert affected == set()
    assert cat.version(Category.OBJECTS) == Version("e", 8)
    assert cat.version(Category.NODES) == Version("e", 9)
    assert cat.digest(Category.OBJECTS) == digest


def test_replace_sets_the_given_version() -> None:
    cat = loaded()
    cat.replace_category(Category.SETTINGS, [Setting("interval", "3")], Version("f", 2))
    assert cat.version(Category.SETTINGS) == Version("f", 2)
    assert cat.get_setting("interval") == "3"
    assert cat.get_setting("other") is None


# --- digests ------------------------------------------------------------------------------


def test_digest_is_independent_of_order() -> None:
    records = sample()
    shuffled = records[:]
    random.Random(4).shuffle(shuffled)
    assert loaded(records).digest(Category.OBJECTS) == loaded(shuffled).digest(Category.OBJECTS)


def test_digest_differs_when_content_differs() -> None:
    changed = sample()
    changed[1] = ep("10.9.0.2", obj=A, node_name="n2", weight=50)
    assert loaded().digest(Category.OBJECTS) != loaded(changed).digest(Category.OBJECTS)
    assert loaded().digest(Category.OBJECTS) != loaded(sample()[:-1]).digest(Category.OBJECTS)


def test_delete_then_readd_restores_the_digest() -> None:
    cat = loaded()
    before = cat.digest(Category.OBJECTS)
    gone = sample()[2]
    cat.apply([delete(6, Category.OBJECTS, gone.key)], "e")
    assert cat.digest(Category.OBJECTS) != before
    cat.apply([put(7, gone)], "e")
    assert cat.digest(Category.OBJECTS) == before


def test_incremental_digest_equals_a_fresh_load() -> None:
    cat = loaded()
    events = [
        put(6, ep("10.9.0.1", obj=A, node_name="n3")),  # replace
        delete(7, Category.OBJECTS, sample()[3].key),  # delete
        put(8, ep("10.9.0.7", obj="D.S.Obj")),  # add
    ]
    cat.apply(events, "e")
    fresh = loaded(list(cat.records(Category.OBJECTS)))  # type: ignore[arg-type]
    assert cat.digest(Category.OBJECTS) == fresh.digest(Category.OBJECTS)
    assert cat.counts()["endpoints"] == 4
    assert cat.counts()["objects"] == 3


def test_small_category_digests() -> None:
    a, b = Catalog(), Catalog()
    rules = [GroupRule(1, "x", ("10.1.1.*",)), GroupRule(2, "y")]
    a.replace_category(Category.GROUPS, rules, Version("e", 1))
    b.apply([put(1, rules[1]), put(2, rules[0])], "e")
    assert a.digest(Category.GROUPS) == b.digest(Category.GROUPS) != 0
    b.apply([delete(3, Category.GROUPS, rules[0].key)], "e")
    assert a.digest(Category.GROUPS) != b.digest(Category.GROUPS)


# --- affected objects and listeners --------------------------------------------------------


class Recorder:
    def __init__(self, cat: Catalog) -> None:
        self.calls: list[Set[str] | None] = []
        cat.add_listener(self)

    def __call__(self, ids: Set[str] | None) -> None:
        self.calls.append(None if ids is None else set(ids))


def test_apply_reports_the_objects_that_changed() -> None:
    cat = loaded()
    rec = Recorder(cat)
    affected = cat.apply(
        [put(6, ep("10.9.0.9", obj=A)), delete(7, Category.OBJECTS, sample()[3].key)], "e"
    )
    assert affected == {A, C}
    assert rec.calls == [{A, C}]
    assert not cat.has_object(C)


def test_node_going_down_affects_the_objects_on_it() -> None:
    """An endpoint is active only while its node is alive: n1 hosts A and B."""
    cat = loaded()
    cat.apply([put(6, NodeRecord("n1"))], "e")  # unknown -> alive: no answer changes
    assert cat.apply([put(7, NodeRecord("n1", last_heartbeat=5.0))], "e") == set()
    down = NodeRecord("n1", present_state=State.INACTIVE)
    assert cat.apply([put(8, down)], "e") == {A, B}
    assert not cat.is_active(sample()[0])
    assert cat.is_active(sample()[1])
    # Deleting a dead node makes its endpoints' own state rule again.
    assert cat.apply([delete(9, Category.NODES, "n1")], "e") == {A, B}
    assert cat.is_active(sample()[0])


def test_node_index_follows_endpoints_that_move() -> None:
    cat = loaded()
    cat.apply([put(6, ep("10.9.0.3", obj=B, node_name="n2"))], "e")  # B leaves n1
    affected = cat.apply([put(7, NodeRecord("n1", present_state=State.INACTIVE))], "e")
    assert affected == {A}
    cat.apply([delete(8, Category.OBJECTS, sample()[0].key)], "e")  # A leaves n1 too
    assert cat.apply([put(9, NodeRecord("n1"))], "e") == set()


def test_replacing_nodes_affects_objects_whose_node_liveness_changed() -> None:
    cat = loaded()
    cat.replace_category(Category.NODES, [NodeRecord("n1"), NodeRecord("n2")], Version("e", 1))
    dead = NodeRecord("n2", present_state=State.INACTIVE)
    assert cat.replace_category(Category.NODES, [NodeRecord("n1"), dead], Version("e", 2)) == {A}


def test_group_change_affects_every_object_and_notifies_none() -> None:
    cat = loaded()
    rec = Recorder(cat)
    rule = GroupRule(1, "idc1", ("10.9.0.*",))
    assert cat.apply([put(6, rule)], "e") == {A, B, C}
    assert cat.group_index().group_of("10.9.0.77") == 1
    assert cat.replace_category(Category.GROUPS, [rule], Version("e", 7)) == set()  # same
    assert cat.replace_category(Category.GROUPS, [], Version("e", 8)) == {A, B, C}
    assert cat.group_index().group_of("10.9.0.77") == -1
    assert rec.calls == [None, None]


def test_replace_reports_only_changed_objects() -> None:
    cat = loaded()
    changed = sample()
    changed[2] = ep("10.9.0.3", obj=B, node_name="n1", weight=7)
    changed.append(ep("10.9.0.5", obj="D.S.Obj"))
    del changed[3]
    assert cat.replace_category(Category.OBJECTS, changed, Version("e", 9)) == {B, C, "D.S.Obj"}


def test_settings_changes_affect_no_object() -> None:
    cat = loaded()
    rec = Recorder(cat)
    assert cat.apply([put(6, Setting("a", "1"))], "e") == set()
    assert rec.calls == []


# --- reads ----------------------------------------------------------------------------------


def test_get_object_orders_by_host_and_port() -> None:
    cat = loaded([ep("10.0.0.2", 1), ep("10.0.0.1", 9), ep("10.0.0.1", 2)])
    assert [(r.host, r.port) for r in cat.get_object(OBJ)] == [
        ("10.0.0.1", 2),
        ("10.0.0.1", 9),
        ("10.0.0.2", 1),
    ]
    assert cat.get_object("nope") == ()
    assert set(cat.object_ids()) == {OBJ}
    assert "1 objects, 3 endpoints" in repr(cat)


def test_records_of_each_category() -> None:
    cat = make_catalog(sample(), nodes=[NodeRecord("n1")])
    assert sorted(r.key for r in cat.records(Category.OBJECTS)) == sorted(r.key for r in sample())
    assert [r.key for r in cat.records(Category.NODES)] == ["n1"]
    assert cat.get_node("n1") == NodeRecord("n1")
    assert len(list(cat.records(Category.GROUPS))) == 7
    assert list(cat.records(Category.SETTINGS)) == []


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        ChangeEvent(6, Category.OBJECTS, Op.PUT, "x", NodeRecord("x")),  # wrong type
        ChangeEvent(6, Category.NODES, Op.PUT, "n1", None),  # put without a record
        ChangeEvent(6, Category.NODES, Op.PUT, "other", NodeRecord("n1")),  # key mismatch
        ChangeEvent(6, "bogus", Op.PUT, "n1", NodeRecord("n1")),  # type: ignore[arg-type]
        ChangeEvent(6, Category.NODES, "upsert", "n1", NodeRecord("n1")),  # type: ignore[arg-type]
    ],
)
def test_a_bad_event_applies_nothing_of_its_batch(event: ChangeEvent) -> None:
    cat = loaded()
    digest, version = cat.digest(Category.OBJECTS), cat.version(Category.OBJECTS)
    with pytest.raises(CatalogError):
        cat.apply([put(6, ep("10.9.9.9", obj=A)), event], "e")
    assert (cat.digest(Category.OBJECTS), cat.version(Category.OBJECTS)) == (digest, version)


@pytest.mark.parametrize(
    ("category", "records"),
    [
        (Category.OBJECTS, [ep("10.0.0.1"), NodeRecord("n1")]),
        (Category.NODES, [NodeRecord("n1"), ep("10.0.0.1")]),
        (Category.SETTINGS, [GroupRule(1, "x")]),
        (Category.NODES, ObjectSnapshot([ep("10.0.0.1")])),
    ],
)
def test_a_bad_snapshot_changes_nothing(category: Category, records: object) -> None:
    cat = make_catalog(sample(), nodes=[NodeRecord("n1")])
    before = {c: (cat.digest(c), cat.version(c)) for c in Category}
    with pytest.raises(CatalogError):
        cat.replace_category(category, records, Version("x", 1))  # type: ignore[arg-type]
    assert {c: (cat.digest(c), cat.version(c)) for c in Category} == before


# --- diff and snapshots ----------------------------------------------------------------------


def test_diff_lists_puts_and_deletes_sorted_by_key() -> None:
    cat = loaded()
    target = sample()
    target[0] = ep("10.9.0.1", obj=A, node_name="n9")  # changed
    del target[2]  # B's only endpoint gone
    target.append(ep("10.9.0.6", obj="D.S.Obj"))  # new object
    changes = cat.diff(Category.OBJECTS, target)
    assert changes == [
        (Op.PUT, target[0].key, target[0]),
        (Op.DELETE, sample()[2].key, None),
        (Op.PUT, target[-1].key, target[-1]),
    ]
    events = [
        ChangeEvent(10 + i, Category.OBJECTS, op, k, r) for i, (op, k, r) in enumerate(changes)
    ]
    cat.apply(events, "e")
    assert cat.digest(Category.OBJECTS) == loaded(target).digest(Category.OBJECTS)
    assert cat.diff(Category.OBJECTS, target) == []


def test_diff_of_small_categories() -> None:
    cat = make_catalog(nodes=[NodeRecord("n1"), NodeRecord("n2")])
    n2 = NodeRecord("n2", present_state=State.INACTIVE)
    assert cat.diff(Category.NODES, [n2, NodeRecord("n3")]) == [
        (Op.DELETE, "n1", None),
        (Op.PUT, "n2", n2),
        (Op.PUT, "n3", NodeRecord("n3")),
    ]
    assert cat.diff(Category.SETTINGS, []) == []
    assert len(cat.diff(Category.GROUPS, [])) == 7


def test_chunked_snapshot_equals_a_one_shot_replace() -> None:
    records = [
        ep(f"10.9.{i // 250}.{i % 250}", obj=f"O{i % 17}", node_name=f"n{i % 5}")
        for i in range(600)
    ]
    snap = ObjectSnapshot()
    for start in range(0, len(records), 128):
        snap.add(records[start : start + 128])
    snap.add(records[:10])  # duplicates replace, they do not double-count
    assert snap.endpoint_count == 600
    chunked, whole = Catalog(), loaded(records)
    chunked.replace_category(Category.OBJECTS, snap, Version(EPOCH, 3))
    assert chunked.digest(Category.OBJECTS) == whole.digest(Category.OBJECTS)
    assert chunked.counts() == whole.counts()
    affected = chunked.apply([put(4, NodeRecord("n3", present_state=State.INACTIVE))], EPOCH)
    assert affected == {f"O{i % 17}" for i in range(600) if i % 5 == 3}


def test_snapshot_duplicate_that_moves_node_keeps_the_index_exact() -> None:
    snap = ObjectSnapshot([ep("10.0.0.1", node_name="n1"), ep("10.0.0.1", node_name="n2")])
    cat = Catalog()
    cat.replace_category(Category.OBJECTS, snap, Version("e", 1))
    assert cat.apply([put(2, NodeRecord("n1", present_state=State.INACTIVE))], "e") == set()
    assert cat.apply([put(3, NodeRecord("n2", present_state=State.INACTIVE))], "e") == {OBJ}
