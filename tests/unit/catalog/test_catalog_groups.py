"""IDC group resolution (DbHandle::getGroupId, getGroupIdByName, loadGroupPriority)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tarscascade.catalog import groups as groups_module
from tarscascade.catalog.groups import GroupIndex, star_key
from tarscascade.model import GroupPriority, GroupRule

RULES = [
    GroupRule(1, "idc1", ("10.1.0.1", "10.1.1.*")),
    GroupRule(2, "idc2", ("10.2.1.*", "10.1.0.1")),  # duplicates rule 1's exact entry
    GroupRule(3, "idc3", ("", "10.3.1.*")),  # an empty entry (a trailing '|') is ignored
]


@pytest.mark.parametrize(
    ("caller", "group"),
    [
        ("10.1.1.7", 1),  # a.b.c.* entry
        ("10.2.1.250", 2),
        ("10.1.0.1", 2),  # exact entry; ORDER BY group_id, later rows overwrite: 2 wins
        ("10.1.0.2", -1),  # no exact entry, no 10.1.0.* entry
        ("010.001.001.9", 1),  # strto<unsigned> per part: 010 -> 10 (Ip2StarStr form)
        ("266.1.1.9", 1),  # one byte of each part is kept: 266 & 255 = 10 -> 10.1.1.*
        ("node-a", -1),  # a node name (context node_name) is not an IP
        ("10.1.1", -1),  # three parts: no a.b.c.* key
        ("", -1),
    ],
)
def test_group_of(caller: str, group: int) -> None:
    index = GroupIndex(RULES, ())
    assert index.group_of(caller) == group
    assert index.group_of(caller) == group  # the memoised answer is the same


def test_star_key() -> None:
    assert star_key("10.1.1.7") == "10.1.1.*"
    assert star_key("010.1.1.7") == "10.1.1.*"
    assert star_key("10.1.1.x") is None
    assert star_key("١٠.1.1.1") is None  # non-ASCII digits are not an IP


def test_group_by_name() -> None:
    index = GroupIndex(RULES, ())
    assert index.group_by_name("idc3") == 3
    assert index.group_by_name("nope") == -1


def test_priorities_walk_in_list_order_then_id() -> None:
    prios = [
        GroupPriority(5, group_list=(1,), list_order=2, station="a"),
        GroupPriority(9, group_list=(2, 3), list_order=1, station="b"),
        GroupPriority(7, group_list=(3,), list_order=2, station="b"),
    ]
    index = GroupIndex((), prios)
    assert [p.id for p in index.priorities] == [9, 5, 7]
    assert index.priorities[0].groups == frozenset({2, 3})
    # findObjectByIdInSameStation: the first row (in list order) with the station.
    assert index.station_groups("b") == frozenset({2, 3})
    assert index.station_groups("a") == frozenset({1})
    assert index.station_groups("c") is None
    assert "3 priorities" in repr(index)


def test_caller_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(groups_module, "_MEMO_LIMIT", 10)
    index = GroupIndex(RULES, ())
    for i in range(100):
        assert index.group_of(f"10.1.1.{i}") == 1
        assert len(index._memo) <= 10


def test_empty_index() -> None:
    index = GroupIndex((), ())
    assert index.is_empty
    assert index.group_of("10.1.1.1") == -1
    assert not GroupIndex(RULES, ()).is_empty


# --- the catalog layer stays pure ------------------------------------------------------

CATALOG = Path(__file__).resolve().parents[3] / "src" / "tarscascade" / "catalog"
ALLOWED_OURS = (
    "tarscascade.model",
    "tarscascade.errors",
    "tarscascade.wire",
    "tarscascade.catalog",
)
FORBIDDEN = {"asyncio", "socket", "selectors", "threading", "sqlalchemy"}


@pytest.mark.parametrize("path", sorted(CATALOG.glob("*.py")), ids=lambda p: p.name)
def test_catalog_imports_only_model_errors_wire_and_stdlib(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top == "tarscascade":
                assert name.startswith(ALLOWED_OURS), f"{path.name}: imports {name}"
            else:
                assert top in sys.stdlib_module_names or top == "__future__", name
                assert top not in FORBIDDEN, f"{path.name}: the catalog is pure, imports {name}"
