"""The encoded-response cache: wire layout, sharing, invalidation and bounds."""

from __future__ import annotations

import pytest

from tarscascade.catalog import QUERY_METHODS, Catalog, QueryAnswerer, QueryMethod
from tarscascade.catalog.encoded import ARG_LIST_TAG, GROUP_LIST_TAG
from tarscascade.model import Category, GroupRule, NodeRecord, State, Version
from tarscascade.wire.codec import decode_value
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST, EndpointF
from tests.data import VECTORS_DIR
from tests.unit.catalog.helpers import (
    EPOCH,
    OBJ,
    RULES,
    decode_answer,
    delete,
    ep,
    hosts,
    make_catalog,
    put,
)

OTHER = "Other.Server.Obj"


def catalog_and_answerer(**kw: int) -> tuple[Catalog, QueryAnswerer]:
    cat = make_catalog(
        [
            ep("10.1.1.10", enable_group=True, node_name="n1"),
            ep("10.2.1.10", enable_group=True, up=False),
            ep("10.9.0.1", set_id="app.sz.1"),
            ep("10.9.0.2", obj=OTHER, node_name="n2"),
        ]
    )
    return cat, QueryAnswerer(cat, **kw)


# --- wire layout ------------------------------------------------------------------------

LAYOUT_CASES = [
    # (method, arg, tag of the active list); tars-protocol.md §3.2 / vectors/README.md
    (QueryMethod.FIND_4ANY, "", GROUP_LIST_TAG),
    (QueryMethod.FIND_4ALL, "", GROUP_LIST_TAG),
    (QueryMethod.IN_SAME_GROUP, "", GROUP_LIST_TAG),
    (QueryMethod.IN_SAME_STATION, "sz", ARG_LIST_TAG),
    (QueryMethod.IN_SAME_SET, "app.sz.1", ARG_LIST_TAG),
]


@pytest.mark.parametrize(("method", "arg", "tag"), LAYOUT_CASES)
def test_answers_decode_with_the_codec(method: str, arg: str, tag: int) -> None:
    _, qa = catalog_and_answerer()
    ret, active, inactive = decode_answer(qa.answer(method, OBJ, "192.168.0.1", arg), tag)
    assert ret == 0
    assert active
    assert all(isinstance(e, EndpointF) for e in active)
    assert len(active) + len(inactive) <= 3


@pytest.mark.parametrize(("method", "arg", "tag"), LAYOUT_CASES)
def test_both_lists_are_written_even_for_an_unknown_object(method: str, arg: str, tag: int) -> None:
    """The Node client rejects a response without inactiveEp (require field, tag 3)."""
    _, qa = catalog_and_answerer()
    data = qa.answer(method, "No.Such.Obj", "10.1.1.5", arg)
    assert decode_answer(data, tag) == (0, [], [])
    assert bytes([(tag << 4) | 9, 0x0C, ((tag + 1) << 4) | 9, 0x0C]) in data


def test_find_object_by_id_is_a_bare_vector_at_tag_0() -> None:
    _, qa = catalog_and_answerer()
    data = qa.answer(QueryMethod.FIND_OBJECT_BY_ID, OBJ)
    endpoints: list[EndpointF] = decode_value(ENDPOINT_LIST, data, 0)
    assert hosts(endpoints) == ["10.1.1.10", "10.9.0.1"]
    assert qa.answer(QueryMethod.FIND_OBJECT_BY_ID, "nope") == bytes([0x09, 0x0C])


def test_failures_are_ret_minus_1_with_empty_lists() -> None:
    _, qa = catalog_and_answerer()
    for method, arg in [(QueryMethod.IN_SAME_STATION, "nowhere"), (QueryMethod.IN_SAME_SET, "x.y")]:
        assert decode_answer(qa.answer(method, OBJ, "", arg), ARG_LIST_TAG) == (-1, [], [])
    assert qa.size == 0  # constant answers are not cached


def test_answer_matches_the_captured_vector() -> None:
    """vectors/findObjectByIdInSameGroup: what the real client accepted, decoded alike."""
    cat = make_catalog([ep("127.0.0.1", 20011, obj="Test.HelloServer.HelloObj", timeout=60000)])
    qa = QueryAnswerer(cat)
    ours = qa.answer(QueryMethod.IN_SAME_GROUP, "Test.HelloServer.HelloObj", "192.0.2.2")
    theirs = bytes.fromhex(
        (VECTORS_DIR / "findObjectByIdInSameGroup.response.sbuffer.hex").read_text()
    )
    ret, active, inactive = decode_answer(ours, GROUP_LIST_TAG)
    v_ret, v_active, v_inactive = decode_answer(theirs, GROUP_LIST_TAG)
    # The vector leaves the optional fields out; compare the required ones.
    required = [(e.host, e.port, e.timeout, e.istcp, e.grid) for e in active]
    assert (ret, required, inactive) == (
        v_ret,
        [(e.host, e.port, e.timeout, e.istcp, e.grid) for e in v_active],
        v_inactive,
    )
    # We write the optionals as tars2cpp does: groups -1 when ungrouped, weight -1 unused.
    assert (active[0].groupworkid, active[0].grouprealid, active[0].weight) == (-1, -1, -1)


def test_unknown_method_is_refused() -> None:
    _, qa = catalog_and_answerer()
    assert "findObjectById" in QUERY_METHODS
    with pytest.raises(ValueError, match="registerQuery"):
        qa.answer("registerQuery", OBJ)


# --- sharing and invalidation -----------------------------------------------------------


def test_callers_of_one_group_share_one_cached_answer() -> None:
    _, qa = catalog_and_answerer()
    a = qa.answer(QueryMethod.IN_SAME_GROUP, OBJ, "10.1.1.5")
    b = qa.answer(QueryMethod.IN_SAME_GROUP, OBJ, "10.1.1.77")
    c = qa.answer(QueryMethod.FIND_4ALL, OBJ, "10.1.0.1")  # 4All is the same rule
    assert a is b is c
    assert hosts(decode_answer(a, GROUP_LIST_TAG)[1]) == ["10.1.1.10"]
    other = qa.answer(QueryMethod.IN_SAME_GROUP, OBJ, "10.2.1.5")
    assert other != a
    # Ungrouped callers get the 4Any bytes.
    assert qa.answer(QueryMethod.IN_SAME_GROUP, OBJ, "node-x") is qa.answer(
        QueryMethod.FIND_4ANY, OBJ
    )
    assert qa.hits >= 3


def test_a_change_to_an_object_changes_only_its_answers() -> None:
    cat, qa = catalog_and_answerer()
    mine = qa.answer(QueryMethod.FIND_4ANY, OBJ)
    theirs = qa.answer(QueryMethod.FIND_4ANY, OTHER)
    cat.apply([put(2, ep("10.9.0.3"))], EPOCH)
    assert hosts(decode_answer(qa.answer(QueryMethod.FIND_4ANY, OBJ), 2)[1]) == [
        "10.1.1.10",
        "10.9.0.1",
        "10.9.0.3",
    ]
    assert qa.answer(QueryMethod.FIND_4ANY, OBJ) != mine
    assert qa.answer(QueryMethod.FIND_4ANY, OTHER) is theirs


def test_deleting_the_last_endpoint_makes_the_object_unknown() -> None:
    cat, qa = catalog_and_answerer()
    qa.answer(QueryMethod.FIND_4ANY, OTHER)
    cat.apply([delete(2, Category.OBJECTS, ep("10.9.0.2", obj=OTHER).key)], EPOCH)
    assert decode_answer(qa.answer(QueryMethod.FIND_4ANY, OTHER), 2) == (0, [], [])


def test_a_node_going_down_moves_its_endpoints_to_inactive() -> None:
    cat, qa = catalog_and_answerer()
    before_other = qa.answer(QueryMethod.FIND_4ANY, OTHER)
    qa.answer(QueryMethod.FIND_4ANY, OBJ)
    cat.apply([put(2, NodeRecord("n1", present_state=State.INACTIVE))], EPOCH)
    _, active, inactive = decode_answer(qa.answer(QueryMethod.FIND_4ANY, OBJ), 2)
    assert (hosts(active), hosts(inactive)) == (["10.9.0.1"], ["10.1.1.10", "10.2.1.10"])
    assert qa.answer(QueryMethod.FIND_4ANY, OTHER) is before_other


def test_a_group_change_invalidates_everything() -> None:
    cat, qa = catalog_and_answerer()
    before = qa.answer(QueryMethod.IN_SAME_GROUP, OBJ, "10.9.0.50")  # ungrouped caller
    qa.answer(QueryMethod.FIND_4ANY, OTHER)
    assert qa.size > 0
    rules = [*RULES, GroupRule(9, "idc9", ("10.9.0.*",))]
    cat.replace_category(Category.GROUPS, rules, Version(EPOCH, 5))
    assert qa.size == 0
    after = qa.answer(QueryMethod.IN_SAME_GROUP, OBJ, "10.9.0.50")  # now group 9
    assert after != before


def test_set_answers_fall_back_per_caller_group() -> None:
    """InSameSet for a set name the object lacks is the group rule's answer, per group."""
    _, qa = catalog_and_answerer()
    g1 = qa.answer(QueryMethod.IN_SAME_SET, OBJ, "10.1.1.5", "zzz.sz.1")
    none = qa.answer(QueryMethod.IN_SAME_SET, OBJ, "1.2.3.4", "zzz.sz.1")
    assert hosts(decode_answer(g1, ARG_LIST_TAG)[1]) == ["10.1.1.10"]
    assert hosts(decode_answer(none, ARG_LIST_TAG)[1]) == ["10.1.1.10", "10.9.0.1"]
    exact = qa.answer(QueryMethod.IN_SAME_SET, OBJ, "10.1.1.5", "app.sz.1")
    assert hosts(decode_answer(exact, ARG_LIST_TAG)[1]) == ["10.9.0.1"]


# --- bounds -----------------------------------------------------------------------------


def test_unknown_ids_are_never_cached() -> None:
    _, qa = catalog_and_answerer()
    for i in range(1000):
        qa.answer(QueryMethod.IN_SAME_GROUP, f"Hostile.{i}.Obj", "10.1.1.5")
    assert qa.size == 0


def test_entries_are_bounded_least_recently_used_first() -> None:
    ids = [f"O{i}.S.Obj" for i in range(50)]
    cat = make_catalog([ep("10.9.0.1", obj=o) for o in ids])
    qa = QueryAnswerer(cat, max_entries=20)
    hot = qa.answer(QueryMethod.FIND_4ANY, ids[0])
    for oid in ids[1:]:
        qa.answer(QueryMethod.FIND_4ANY, oid)
        assert qa.answer(QueryMethod.FIND_4ANY, ids[0]) is hot  # kept: recently used
        assert qa.size <= 20
    assert "/20 entries" in repr(qa)


def test_answers_per_object_are_bounded() -> None:
    """Hostile set ids with a valid set name cannot grow one object's entry without bound."""
    _, qa = catalog_and_answerer(max_answers_per_object=8)
    for i in range(100):
        data = qa.answer(QueryMethod.IN_SAME_SET, OBJ, "", f"app.gz.{i}")
        assert decode_answer(data, ARG_LIST_TAG)[0] == -1
    assert qa.size <= 1 + 8


def test_close_detaches_from_the_catalog() -> None:
    cat, qa = catalog_and_answerer()
    qa.answer(QueryMethod.FIND_4ANY, OBJ)
    qa.close()
    assert qa.size == 0
    cat.apply([put(2, ep("10.9.0.3"))], EPOCH)  # no callback
