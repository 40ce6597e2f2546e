"""Shared builders for the catalog tests: records, a seeded catalog, answer decoding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tarscascade.catalog import Catalog
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Op,
    Record,
    State,
    Version,
    category_of,
)
from tarscascade.wire.codec import INT32_K, decode_value
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST, EndpointF

OBJ = "App.Server.Obj"
EPOCH = "e1"

# Four IDC groups; group 1 also has an exact-IP entry. Caller/host naming: 10.<g>.1.x.
RULES = (
    GroupRule(1, "idc1", ("10.1.0.1", "10.1.1.*")),
    GroupRule(2, "idc2", ("10.2.1.*",)),
    GroupRule(3, "idc3", ("10.3.1.*",)),
    GroupRule(4, "idc4", ("10.4.1.*",)),
)
# list_order decides the walk, not the id: priority 20 is walked before priority 10.
PRIORITIES = (
    GroupPriority(10, "second", (1, 3), list_order=2, station="sh"),
    GroupPriority(20, "first", (1, 2), list_order=1, station="sz"),
    GroupPriority(30, "lonely", (4,), list_order=3, station="bj"),
)


def ep(host: str, port: int = 10000, obj: str = OBJ, **kw: Any) -> EndpointRecord:
    """An endpoint record; ``up=False`` is shorthand for present_state inactive."""
    up = kw.pop("up", True)
    if not up:
        kw["present_state"] = State.INACTIVE
    return EndpointRecord(object_id=obj, host=host, port=port, **kw)


def put(revision: int, record: Record) -> ChangeEvent:
    return ChangeEvent(revision, category_of(record), Op.PUT, record.key, record)


def delete(revision: int, category: Category, key: str) -> ChangeEvent:
    return ChangeEvent(revision, category, Op.DELETE, key, None)


def make_catalog(
    endpoints: Iterable[EndpointRecord] = (),
    *,
    nodes: Iterable[NodeRecord] = (),
    rules: Sequence[GroupRule] = RULES,
    priorities: Sequence[GroupPriority] = PRIORITIES,
) -> Catalog:
    cat = Catalog()
    cat.replace_category(Category.GROUPS, [*rules, *priorities], Version(EPOCH, 1))
    cat.replace_category(Category.NODES, list(nodes), Version(EPOCH, 1))
    cat.replace_category(Category.OBJECTS, list(endpoints), Version(EPOCH, 1))
    return cat


def hosts(eps: Sequence[EndpointF]) -> list[str]:
    return [f"{e.host}:{e.port}" if e.port != 10000 else e.host for e in eps]


def decode_answer(data: bytes, active_tag: int) -> tuple[int, list[EndpointF], list[EndpointF]]:
    """Decode a QueryF sBuffer the way a client does: both lists are required."""
    ret = decode_value(INT32_K, data, 0)
    active = decode_value(ENDPOINT_LIST, data, active_tag)
    inactive = decode_value(ENDPOINT_LIST, data, active_tag + 1)
    return ret, active, inactive
