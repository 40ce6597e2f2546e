"""db_tars rows to records, the collapse of duplicates, and the guard's arithmetic (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tarscascade.dbtars.guard import GuardPolicy, hold_reason, impact
from tarscascade.dbtars.index import REGISTRY_INFO, ImportIndex, group_source, keyed
from tarscascade.dbtars.mapping import (
    RegistryInfoRow,
    RoutingRow,
    Skipped,
    group_key,
    group_priority,
    group_rule,
    record_of_registry_info,
    record_of_row,
)
from tarscascade.model import EndpointRecord, State

ROW = RoutingRow(
    servant="A.B.Obj",
    endpoint="tcp -h 10.0.0.1 -t 60000 -p 9000 -e 0",
    enable_group="N",
    setting_state="active",
    present_state="active",
    flow_state="active",
    application="A",
    server_name="B",
    node_name=" 10.0.0.1 ",
    enable_set="N",
    set_name=None,
    set_area=None,
    set_group=None,
    ip_group_name=None,
    bak_flag=0,
)


def test_a_plain_row() -> None:
    r = record_of_row(ROW)
    assert (r.object_id, r.host, r.port, r.timeout, r.istcp) == (
        "A.B.Obj",
        "10.0.0.1",
        9000,
        60000,
        1,
    )
    assert r.node_name == "10.0.0.1"  # trimmed
    assert (r.setting_state, r.present_state) == (State.ACTIVE, State.ACTIVE)
    assert (r.grid, r.qos, r.weight, r.set_id, r.ip_group_name) == (0, 0, -1, "", "")


@pytest.mark.parametrize(
    ("setting", "present", "flow", "active"),
    [
        ("active", "active", "active", True),
        ("Active", "ACTIVE", "active", True),
        ("inactive", "active", "active", False),
        ("active", "activating", "active", False),
        ("active", "", "active", False),  # the non-strict enum error value
        ("active", None, "active", False),
        ("active", "active", "inactive", False),  # traffic off
        ("active", "active", None, True),  # no flow_state column value: not 'inactive'
    ],
)
def test_the_active_rule(setting: str, present: str | None, flow: str | None, active: bool) -> None:
    r = record_of_row(replace(ROW, setting_state=setting, present_state=present, flow_state=flow))
    assert (r.setting_state == State.ACTIVE and r.present_state == State.ACTIVE) is active


def test_weights_grid_qos_and_auth_from_the_endpoint_string() -> None:
    r = record_of_row(replace(ROW, endpoint="tcp -h 10.0.0.1 -p 9 -g 3 -q 4 -w 250 -v 1 -e 1"))
    assert (r.grid, r.qos) == (0, 0)  # TARS never copies -g/-q into EndpointF
    assert (r.weight, r.weight_type, r.auth_type) == (100, 1, 1)  # typed weights cap at 100
    assert record_of_row(replace(ROW, endpoint="udp -h h -p 9 -w 7")).weight == 7


def test_sets_groups_and_bak_flag() -> None:
    r = record_of_row(replace(ROW, enable_set="y", set_name="sz", set_area="a", set_group="1"))
    assert r.set_id == "sz.a.1"
    assert record_of_row(replace(ROW, enable_set="Y", set_name="sz")).set_id == "sz.."  # invalid
    assert record_of_row(replace(ROW, set_name="sz", set_area="a", set_group="1")).set_id == ""
    g = record_of_row(replace(ROW, enable_group="y", ip_group_name=" idc "))
    assert g.enable_group
    assert g.ip_group_name == "idc"
    assert record_of_row(replace(ROW, bak_flag=1)).bak_flag == 1


@pytest.mark.parametrize(
    "change",
    [
        {"servant": ""},
        {"servant": None},
        {"endpoint": ""},
        {"endpoint": "tcp -h 10.0.0.1"},
        {"endpoint": "http -h 1 -p 2"},
        {"servant": "x" * 256},
    ],
)
def test_rows_that_yield_nothing(change: dict[str, object]) -> None:
    with pytest.raises(Skipped):
        record_of_row(replace(ROW, **change))  # type: ignore[arg-type]


def test_registry_info_rows() -> None:
    info = RegistryInfoRow(
        "10.0.0.9:17890", "tars.tarsregistry.QueryObj", "tcp -h 10.0.0.9 -p 17890", "inactive", "Y"
    )
    r = record_of_registry_info(info)
    assert (r.setting_state, r.present_state, r.node_name) == (State.INACTIVE, State.INACTIVE, "")
    assert r.enable_group


def test_group_rows() -> None:
    rule = group_rule(3, "idc", "10.0.0.1||10.0.1.*|", None, "")
    assert rule.allow_ip_rule == ("10.0.0.1", "10.0.1.*")
    assert rule.ip_order == "denny_allow"
    assert rule.denny_ip_rule == ()
    prio = group_priority(1, None, "3|4;;5,x, 6", None, "")
    assert prio.group_list == (3, 4, 5, 6)
    assert prio.list_order == 0


def test_group_keys_follow_the_case_insensitive_collation() -> None:
    assert group_key("App", "Srv ") == group_key("app", "srv")


def _ep(host: str = "h", *, active: bool = True, bak: int = 0, node: str = "n") -> EndpointRecord:
    state = State.ACTIVE if active else State.INACTIVE
    return EndpointRecord("A.B.Obj", host, 1, node_name=node, bak_flag=bak, present_state=state)


def test_duplicates_collapse_to_the_served_active_copy() -> None:
    idx = ImportIndex()
    g1, g2 = group_source(("a", "s1")), group_source(("a", "s2"))
    assert idx.replace(g1, keyed([_ep(active=False, node="n1")])) == {"A.B.Obj|h|1"}
    idx.replace(g2, keyed([_ep(node="n2"), _ep(bak=1, node="n3")]))
    idx.replace(REGISTRY_INFO, keyed([_ep(active=False, node="")]))
    rec = idx.record("A.B.Obj|h|1")
    assert rec is not None
    assert rec.node_name == "n2"
    assert idx.duplicates == 3
    assert idx.endpoint_count == 1
    # the active copy's group goes away: the next best copy is served
    assert idx.replace(g2, []) == {"A.B.Obj|h|1"}
    rec = idx.record("A.B.Obj|h|1")
    assert rec is not None
    assert rec.node_name == "n1"
    idx.replace(g1, [])
    idx.replace(REGISTRY_INFO, [])
    assert idx.record("A.B.Obj|h|1") is None
    assert idx.duplicates == 0
    assert idx.sources() == set()


def test_the_guard() -> None:
    policy = GuardPolicy(min_changes=2)
    cur = [_ep(f"h{i}") for i in range(10)]
    assert hold_reason(policy, impact(10, 10, 0, [(r, None) for r in cur])) is not None
    six = impact(10, 10, 4, [(r, None) for r in cur[:6]])
    assert "mass delete" in (hold_reason(policy, six) or "")
    four = impact(10, 10, 6, [(r, None) for r in cur[:4]])
    assert hold_reason(policy, four) is None
    down = impact(10, 10, 10, [(r, replace(r, present_state=State.INACTIVE)) for r in cur[:6]])
    assert "mass deactivation" in (hold_reason(policy, down) or "")
    assert hold_reason(GuardPolicy(enabled=False), impact(10, 10, 0, [])) is None
    assert hold_reason(policy, impact(0, 0, 0, [])) is None  # nothing to lose


def test_id_maps_give_the_expected_signature_and_the_changed_groups() -> None:
    from tarscascade.dbtars.index import IdMaps

    ids = IdMaps(
        ([(1, "A", "s"), (2, "A", "t")], [(10, "A", "s"), (11, "a", "S "), (12, "A", "t")])
    )
    assert ids.signature() == (2, 3, 3, 33)
    # a poll re-read group (a, s): one adapter row gone, one new
    ids.set_groups([("a", "s")], ([(1, "A", "s")], [(13, "A", "s")]))
    assert ids.signature() == (2, 3, 2, 25)
    scan = IdMaps(([(1, "A", "s")], [(13, "A", "s"), (12, "A", "t"), (14, "B", "u")]))
    assert ids.changed_groups(scan) == {("a", "t"), ("b", "u")}  # t lost row 2, u is new
    assert scan.changed_groups(scan) == set()


def test_adapter_name_and_tars_version() -> None:
    assert record_of_row(replace(ROW, adapter_name="A.B.ObjAdapter")).adapter_name == ""
    named = record_of_row(replace(ROW, adapter_name=" Custom ", tars_version="3.0.19"))
    assert named.adapter == "Custom"  # keepAlive on the node finds it by this name
    assert named.tars_version == "3.0.19"
