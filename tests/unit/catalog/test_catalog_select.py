"""QueryF selection rules as tables of cases, each naming the TARS behaviour it reproduces.

Sources: TarsFramework ``RegistryServer/DbHandle.cpp`` / ``ObjectsCacheManager.cpp``
(findObjectByIdInGroupPriority, findObjectByIdInSameStation, findObjectByIdInSameSet,
loadObjectIdCache); tars-protocol.md §6.4-6.5.

Hosts: ``10.<g>.1.x`` is in IDC group g (1-4) by the rules in helpers.RULES; ``10.9.x.x``
is in no group. ``g=True`` enables grouping on the server (groupworkid = its group).
"""

from __future__ import annotations

from typing import Any

import pytest

from tarscascade.catalog.select import (
    find_4any,
    find_in_same_group,
    find_in_same_set,
    find_in_same_station,
    find_object_by_id,
)
from tarscascade.catalog.view import ObjectView, build_view, parse_query_set, parse_server_set
from tarscascade.model import EndpointRecord, NodeRecord, State
from tests.unit.catalog.helpers import OBJ, ep, hosts, make_catalog

UNGROUPED_CALLER = "192.168.7.7"


def view_of(*records: EndpointRecord, nodes: tuple[NodeRecord, ...] = ()) -> tuple[Any, Any]:
    cat = make_catalog(records, nodes=nodes)
    groups = cat.group_index()
    return build_view(cat.get_object(OBJ), groups, cat.is_active), groups


def g(host: str, **kw: Any) -> EndpointRecord:
    """A server with IDC grouping enabled."""
    return ep(host, enable_group=True, **kw)


# (case id, endpoints, caller, expected active, expected inactive)
GROUP_CASES: list[tuple[str, list[EndpointRecord], str, list[str], list[str]]] = [
    # Step 1: the caller's identity matches no rule (group -1) -> everything, like 4Any.
    (
        "ungrouped-caller-gets-4any",
        [g("10.1.1.10"), g("10.2.1.10", up=False), ep("10.9.0.1")],
        UNGROUPED_CALLER,
        ["10.1.1.10", "10.9.0.1"],
        ["10.2.1.10"],
    ),
    # Step 1: a node name (context node_name that is not an IP) is group -1 too.
    (
        "node-name-caller-is-ungrouped",
        [g("10.1.1.10"), g("10.2.1.10")],
        "node-a",
        ["10.1.1.10", "10.2.1.10"],
        [],
    ),
    # Step 2: grouped servers in the caller's group, active and inactive filtered alike.
    (
        "same-group-first",
        [g("10.1.1.10"), g("10.1.1.11", up=False), g("10.2.1.10"), ep("10.9.0.1")],
        "10.1.1.5",
        ["10.1.1.10"],
        ["10.1.1.11"],
    ),
    # getGroupId: an exact allow_ip_rule entry matches before any a.b.c.* entry.
    (
        "exact-ip-caller-rule",
        [g("10.1.1.10"), g("10.2.1.10")],
        "10.1.0.1",
        ["10.1.1.10"],
        [],
    ),
    # getGroupId: no exact entry and no 10.1.0.* entry -> -1 -> step 1.
    (
        "no-star-rule-means-ungrouped",
        [g("10.1.1.10"), g("10.2.1.10")],
        "10.1.0.2",
        ["10.1.1.10", "10.2.1.10"],
        [],
    ),
    # Step 3: priority walk in list_order: row "first" (1,2) comes before "second" (1,3),
    # and a row contributes every endpoint whose work group is in its list.
    (
        "priority-walk-first-row",
        [g("10.1.1.10", up=False), g("10.2.1.10"), g("10.3.1.10"), ep("10.9.0.1")],
        "10.1.1.5",
        ["10.2.1.10"],
        ["10.1.1.10"],
    ),
    # Step 3: a row without active endpoints is passed over; the inactive list is that of
    # the row that produced the active ones.
    (
        "priority-walk-next-row",
        [g("10.1.1.10", up=False), g("10.2.1.10", up=False), g("10.3.1.10"), ep("10.9.0.1")],
        "10.1.1.5",
        ["10.3.1.10"],
        ["10.1.1.10"],
    ),
    # Step 3: rows not containing the caller's group are skipped (group 2 is only in
    # "first"; group 3 endpoints are not considered for a group 2 caller).
    (
        "priority-rows-without-caller-skipped",
        [g("10.3.1.10"), ep("10.9.0.1")],
        "10.2.1.5",
        ["10.9.0.1"],
        [],
    ),
    # Step 4: no grouped endpoint found -> servers that did not enable grouping.
    (
        "fallback-to-ungrouped-servers",
        [g("10.2.1.10"), ep("10.9.0.1"), ep("10.9.0.2", up=False)],
        "10.4.1.5",
        ["10.9.0.1"],
        ["10.9.0.2"],
    ),
    # A server in group 1 by IP but without enable_group has groupworkid -1: it is a
    # step-4 endpoint, not a step-2 one ("grouping is decided by the server side").
    (
        "grouping-disabled-server-is-ungrouped",
        [ep("10.1.1.10"), g("10.4.1.10")],
        "10.1.1.5",
        ["10.1.1.10"],
        [],
    ),
    # Step 5: nothing active anywhere in the walk -> every endpoint.
    (
        "fallback-to-everything",
        [g("10.1.1.10", up=False), g("10.4.1.10"), ep("10.9.0.1", up=False)],
        "10.1.1.5",
        ["10.4.1.10"],
        ["10.1.1.10", "10.9.0.1"],
    ),
    # loadObjectIdCache: grouprealid comes from ip_group_name when set, not from the IP.
    (
        "ip-group-name-overrides-host",
        [g("10.9.0.1", ip_group_name="idc1"), g("10.1.1.10", ip_group_name="idc4")],
        "10.1.1.5",
        ["10.9.0.1"],
        [],
    ),
    # loadObjectIdCache: bak_flag 1 rows are skipped entirely, even as a last resort.
    (
        "standby-never-returned",
        [g("10.1.1.10", bak_flag=1), g("10.1.1.11", up=False)],
        "10.1.1.5",
        [],
        ["10.1.1.11"],
    ),
]


@pytest.mark.parametrize(
    ("endpoints", "caller", "active", "inactive"),
    [c[1:] for c in GROUP_CASES],
    ids=[c[0] for c in GROUP_CASES],
)
def test_find_in_same_group(
    endpoints: list[EndpointRecord], caller: str, active: list[str], inactive: list[str]
) -> None:
    view, groups = view_of(*endpoints)
    ret, got_active, got_inactive = find_in_same_group(view, groups, groups.group_of(caller))
    assert ret == 0
    assert hosts(got_active) == active
    assert hosts(got_inactive) == inactive


def test_unknown_object_answers_empty_with_ret_0() -> None:
    """findObjectById4Any / GroupPriority: an unknown id is two empty lists and ret 0."""
    _, groups = view_of()
    assert find_4any(None) == (0, (), ())
    assert find_in_same_group(None, groups, 1) == (0, (), ())
    assert list(find_object_by_id(None)) == []


def test_find_object_by_id_is_active_only_and_ungrouped() -> None:
    """QueryImp::findObjectById: vActiveEndpoints as they are, no IDC logic."""
    view, _ = view_of(g("10.1.1.10"), g("10.2.1.10", up=False), ep("10.9.0.1"))
    assert hosts(find_object_by_id(view)) == ["10.1.1.10", "10.9.0.1"]


def test_4any_ignores_groups_and_orders_by_host_port() -> None:
    """findObjectById4Any: every endpoint, unfiltered; (host, port) order for determinism."""
    view, _ = view_of(
        ep("10.9.0.2", 20), ep("10.9.0.1", 30), ep("10.9.0.1", 10), g("10.1.1.1", up=False)
    )
    ret, active, inactive = find_4any(view)
    assert ret == 0
    assert hosts(active) == ["10.9.0.1:10", "10.9.0.1:30", "10.9.0.2:20"]
    assert hosts(inactive) == ["10.1.1.1"]


# --- active rule: endpoint states and node liveness -----------------------------------

NODE_CASES: list[tuple[str, dict[str, Any], tuple[NodeRecord, ...], bool]] = [
    # loadObjectIdCache: active iff setting_state and present_state are both active.
    ("both-active", {}, (), True),
    ("setting-inactive", {"setting_state": State.INACTIVE}, (), False),
    ("present-inactive", {"present_state": State.INACTIVE}, (), False),
    # checkNodeTimeout: a dead node's servers go inactive (here: derived from the node).
    ("node-dead", {"node_name": "n1"}, (NodeRecord("n1", present_state=State.INACTIVE),), False),
    (
        "node-disabled",
        {"node_name": "n1"},
        (NodeRecord("n1", setting_state=State.INACTIVE),),
        False,
    ),
    ("node-alive", {"node_name": "n1"}, (NodeRecord("n1"),), True),
    # A node the catalog has never heard of does not veto its endpoints.
    ("node-unknown", {"node_name": "n9"}, (NodeRecord("n1", present_state=State.INACTIVE),), True),
]


@pytest.mark.parametrize(
    ("fields", "nodes", "active"),
    [c[1:] for c in NODE_CASES],
    ids=[c[0] for c in NODE_CASES],
)
def test_active_rule(fields: dict[str, Any], nodes: tuple[NodeRecord, ...], active: bool) -> None:
    view, _ = view_of(ep("10.9.0.1", **fields), nodes=nodes)
    assert (len(view.active), len(view.inactive)) == ((1, 0) if active else (0, 1))


# --- findObjectByIdInSameStation ------------------------------------------------------

STATION_CASES: list[tuple[str, list[EndpointRecord], str, int, list[str], list[str]]] = [
    # The first priority row with the station gives the groups; matching is on the *real*
    # group, so servers without enable_group are included (ENUM_USE_REAL_GROUPID).
    (
        "station-by-real-group",
        [ep("10.1.1.10"), g("10.2.1.10", up=False), g("10.3.1.10"), ep("10.9.0.1")],
        "sz",
        0,
        ["10.1.1.10"],
        ["10.2.1.10"],
    ),
    ("other-station", [ep("10.1.1.10"), ep("10.3.1.10")], "sh", 0, ["10.1.1.10", "10.3.1.10"], []),
    # No t_group_priority row has the station -> -1.
    ("unknown-station", [ep("10.1.1.10")], "gz", -1, [], []),
    # Stations compare exactly; an empty station matches no row here.
    ("empty-station", [ep("10.1.1.10")], "", -1, [], []),
    ("station-without-endpoints", [ep("10.9.0.1")], "bj", 0, [], []),
]


@pytest.mark.parametrize(
    ("endpoints", "station", "ret", "active", "inactive"),
    [c[1:] for c in STATION_CASES],
    ids=[c[0] for c in STATION_CASES],
)
def test_find_in_same_station(
    endpoints: list[EndpointRecord], station: str, ret: int, active: list[str], inactive: list[str]
) -> None:
    view, groups = view_of(*endpoints)
    got = find_in_same_station(view, groups, station)
    assert (got[0], hosts(got[1]), hosts(got[2])) == (ret, active, inactive)


def test_station_checked_before_object() -> None:
    """findObjectByIdInSameStation: unknown station -1 even for an unknown id; known -> 0."""
    _, groups = view_of()
    assert find_in_same_station(None, groups, "nowhere")[0] == -1
    assert find_in_same_station(None, groups, "sz") == (0, (), ())


# --- findObjectByIdInSameSet ----------------------------------------------------------


def s(host: str, set_id: str, **kw: Any) -> EndpointRecord:
    return ep(host, set_id=set_id, **kw)


SET_SERVERS = [
    s("10.9.1.1", "app.sz.1"),
    s("10.9.1.2", "app.sz.1", up=False),
    s("10.9.2.1", "app.sz.2"),
    s("10.9.3.1", "app.sz.*"),
    s("10.9.4.1", "app.sh.1"),
    s("10.9.5.1", "other.sz.1"),
    ep("10.9.9.9"),  # not set-enabled
    g("10.1.1.9"),  # not set-enabled, grouped
]

SET_CASES: list[tuple[str, list[EndpointRecord], str, str, int, list[str], list[str]]] = [
    # Exact set group: its members only, active and inactive.
    ("exact-group", SET_SERVERS, "app.sz.1", UNGROUPED_CALLER, 0, ["10.9.1.1"], ["10.9.1.2"]),
    # Exact group has no member -> the area's wildcard group name.area.*.
    ("wildcard-group-fallback", SET_SERVERS, "app.sz.9", UNGROUPED_CALLER, 0, ["10.9.3.1"], []),
    # Exact and wildcard absent -> -1 (no fallback to other groups or non-set servers).
    ("no-group-no-wildcard", SET_SERVERS, "app.sh.9", UNGROUPED_CALLER, -1, [], []),
    # Unknown area for a known set name -> -1 as well.
    ("unknown-area", SET_SERVERS, "app.gz.1", UNGROUPED_CALLER, -1, [], []),
    # Caller group "*": every member of the area, wildcard group included.
    (
        "star-group-whole-area",
        SET_SERVERS,
        "app.sz.*",
        UNGROUPED_CALLER,
        0,
        ["10.9.1.1", "10.9.2.1", "10.9.3.1"],
        ["10.9.1.2"],
    ),
    ("star-group-empty-area", SET_SERVERS, "app.gz.*", UNGROUPED_CALLER, -1, [], []),
    # The exact group's members are all dead: they still count, no wildcard fallback.
    (
        "dead-members-count-as-present",
        [s("10.9.1.1", "app.sz.1", up=False), s("10.9.3.1", "app.sz.*")],
        "app.sz.1",
        UNGROUPED_CALLER,
        0,
        [],
        ["10.9.1.1"],
    ),
    # No set-enabled server with this set name -> IDC group logic, ret 0.
    (
        "unknown-set-name-falls-back-to-groups",
        SET_SERVERS,
        "nope.sz.1",
        "10.1.1.5",
        0,
        ["10.1.1.9"],
        [],
    ),
    # The servant has no set-enabled server at all -> IDC group logic (ungrouped: all).
    (
        "no-set-servers-falls-back",
        [ep("10.9.9.9"), ep("10.9.9.8", up=False)],
        "app.sz.1",
        UNGROUPED_CALLER,
        0,
        ["10.9.9.9"],
        ["10.9.9.8"],
    ),
    # sepstr(setId, ".") drops empty parts: "app..sz.1" is app.sz.1.
    (
        "empty-parts-dropped",
        SET_SERVERS,
        "app..sz.1.",
        UNGROUPED_CALLER,
        0,
        ["10.9.1.1"],
        ["10.9.1.2"],
    ),
    # Malformed caller set ids -> -1: not three parts, or name/area "*".
    ("two-parts", SET_SERVERS, "app.sz", UNGROUPED_CALLER, -1, [], []),
    ("four-parts", SET_SERVERS, "app.sz.1.2", UNGROUPED_CALLER, -1, [], []),
    ("star-name", SET_SERVERS, "*.sz.1", UNGROUPED_CALLER, -1, [], []),
    ("star-area", SET_SERVERS, "app.*.1", UNGROUPED_CALLER, -1, [], []),
    ("empty", SET_SERVERS, "", UNGROUPED_CALLER, -1, [], []),
    # loadObjectIdCache: a server set with "*" as name or area or an empty part is not a
    # set: such servers are reached only through the group logic.
    (
        "invalid-server-set-is-not-a-set",
        [s("10.9.1.1", "*.sz.1"), s("10.9.1.2", "app..1"), s("10.9.1.3", "app.sz.1")],
        "app.sz.1",
        UNGROUPED_CALLER,
        0,
        ["10.9.1.3"],
        [],
    ),
    # bak_flag 1 servers are not set members either.
    (
        "standby-set-member-skipped",
        [s("10.9.1.1", "app.sz.1", bak_flag=1), s("10.9.3.1", "app.sz.*")],
        "app.sz.1",
        UNGROUPED_CALLER,
        0,
        ["10.9.3.1"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("endpoints", "set_id", "caller", "ret", "active", "inactive"),
    [c[1:] for c in SET_CASES],
    ids=[c[0] for c in SET_CASES],
)
def test_find_in_same_set(
    endpoints: list[EndpointRecord],
    set_id: str,
    caller: str,
    ret: int,
    active: list[str],
    inactive: list[str],
) -> None:
    view, groups = view_of(*endpoints)
    got = find_in_same_set(view, groups, set_id, groups.group_of(caller))
    assert (got[0], hosts(got[1]), hosts(got[2])) == (ret, active, inactive)


def test_set_on_unknown_object_falls_back_to_empty_group_answer() -> None:
    _, groups = view_of()
    assert find_in_same_set(None, groups, "app.sz.1", 1) == (0, (), ())
    assert find_in_same_set(None, groups, "app.sz", 1)[0] == -1


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("app.sz.1", "app.sz.1"),
        ("app.sz.*", "app.sz.*"),
        ("app.sz.1.2", "app.sz.1.2"),  # the group is the rest (set_group is one column)
        ("app.sz", None),
        ("app..1", None),
        ("*.sz.1", None),
        ("app.*.1", None),
        ("", None),
    ],
)
def test_parse_server_set(text: str, parsed: str | None) -> None:
    got = parse_server_set(text)
    assert (str(got) if got else None) == parsed


def test_parse_query_set_drops_empty_parts() -> None:
    assert str(parse_query_set(".app.sz.1")) == "app.sz.1"
    assert parse_query_set("app.sz.1.2") is None


# --- EndpointF built from a record ----------------------------------------------------


def test_endpoint_f_carries_every_field() -> None:
    """loadObjectIdCache: EndpointF from the row; groupworkid = grouprealid iff enable_group."""
    record = ep(
        "10.2.1.7",
        port=20011,
        istcp=2,
        timeout=60000,
        node_name="n7",
        set_id="app.sz.1",
        enable_group=True,
        grid=3,
        qos=46,
        weight=80,
        weight_type=1,
        auth_type=1,
    )
    view, _ = view_of(record)
    (f,) = view.active
    assert (f.host, f.port, f.timeout, f.istcp, f.grid) == ("10.2.1.7", 20011, 60000, 2, 3)
    assert (f.groupworkid, f.grouprealid, f.setId, f.qos, f.bakFlag) == (2, 2, "app.sz.1", 46, 0)
    assert (f.weight, f.weightType, f.authType, f.nodeName) == (80, 1, 1, "n7")


@pytest.mark.parametrize(
    ("fields", "work", "real", "set_id"),
    [
        ({}, -1, 2, ""),  # grouping disabled: work group -1, real group from the IP
        ({"enable_group": True, "ip_group_name": " idc3 "}, 3, 3, ""),  # name, trimmed
        ({"enable_group": True, "ip_group_name": "nosuch"}, -1, -1, ""),  # unknown name
        ({"set_id": "*.sz.1"}, -1, 2, ""),  # invalid set: not set-enabled, no setId
    ],
)
def test_endpoint_f_groups_and_set(
    fields: dict[str, Any], work: int, real: int, set_id: str
) -> None:
    view, _ = view_of(ep("10.2.1.7", **fields))
    (f,) = view.active
    assert (f.groupworkid, f.grouprealid, f.setId) == (work, real, set_id)


def test_view_is_deterministic_whatever_the_record_order() -> None:
    records = [ep(f"10.9.0.{i}", 10000 + i % 3) for i in range(9)]
    cat_a = make_catalog(records)
    cat_b = make_catalog(reversed(records))
    views: list[ObjectView] = [
        build_view(c.get_object(OBJ), c.group_index(), c.is_active) for c in (cat_a, cat_b)
    ]
    assert views[0] == views[1]
