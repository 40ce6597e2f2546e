"""The blocking-query index never goes backwards within one node process."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tarscascade.node.watch import ObjectWatch


def test_an_index_follows_the_revision_while_it_grows() -> None:
    w = ObjectWatch()
    w.changed({"A"}, 10)
    assert w.index_of("A") == 10
    w.changed({"B"}, 12)
    assert (w.index_of("A"), w.index_of("B")) == (10, 12)


def test_a_new_lineage_numbering_from_one_does_not_take_the_index_back() -> None:
    w = ObjectWatch()
    w.changed({"A"}, 500)
    w.changed(None, 3)  # a snapshot of another lineage at revision 3
    assert w.index_of("A") == 501
    assert w.index_of("never-seen") == 501
    w.changed({"A"}, 4)
    assert w.index_of("A") == 502


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 1000)), max_size=50))
def test_indexes_only_grow(changes: list[tuple[bool, int]]) -> None:
    w = ObjectWatch()
    seen = 0
    for whole, revision in changes:
        w.changed(None if whole else {"A"}, revision)
        assert w.index_of("A") > seen
        seen = w.index_of("A")
