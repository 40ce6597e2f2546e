"""db_tars rows to tarscascade records (db_tars.md §2.2, §6.2); pure, no I/O.

One routing row is TARS's load-query row: ``t_adapter_conf`` joined to
``t_server_conf`` on (application, server_name, node_name). The rules, as
``loadObjectIdCache`` applies them:

* active <=> ``setting_state`` and ``present_state`` are ``active`` and ``flow_state``
  is not ``inactive``; any other present_state (``activating``, the non-strict enum error
  value ``''``, ...) is inactive. The catalog's active rule then sees both states active.
* ``set_id`` = ``set_name.set_area.set_group`` when ``enable_set`` is y (NULL parts
  are ''); an invalid set stays non-set in the catalog, which sends setId '' where TARS
  echoes the raw string (the one deliberate difference, README).
* weights, timeout, transport and auth from the endpoint string; grid and qos are 0
  because TARS never copies ``-g``/``-q`` into EndpointF.
* bak_flag rows are kept as records (the admin view shows them) and never served.

``t_registry_info`` rows are the framework's own servants (AdminRegObj lives only
there): both states from ``present_state``, no node, no set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tarscascade.errors import EndpointSyntaxError
from tarscascade.model import (
    EndpointRecord,
    GroupPriority,
    GroupRule,
    State,
    default_adapter_name,
    state_of_tars,
)
from tarscascade.wire.endpoint import parse_endpoint

#: Longest object id / host the store holds (tc_endpoints VARCHAR(255)).
MAX_NAME = 255
MAX_SHORT = 128  # set id, ip group name (VARCHAR(128))
_LIST_SEPARATORS = re.compile(r"[|,;]")


#: A load-query row as the driver returns it (``sql.ROUTING``'s columns, in order).
RawRow = Sequence[Any]
#: Positions in a :data:`RawRow` the importer reads without building a RoutingRow.
COL_ENDPOINT, COL_APPLICATION, COL_SERVER, COL_NODE, COL_ADAPTER = 1, 6, 7, 8, 15
COL_SERVER_ID, COL_ADAPTER_ID = 16, 17


@dataclass(frozen=True, slots=True)
class RoutingRow:
    """One row of the load query (``sql.ROUTING``), columns in its order."""

    servant: str | None
    endpoint: str | None
    enable_group: str | None
    setting_state: str | None
    present_state: str | None
    flow_state: str | None
    application: str | None
    server_name: str | None
    node_name: str | None
    enable_set: str | None
    set_name: str | None
    set_area: str | None
    set_group: str | None
    ip_group_name: str | None
    bak_flag: int | None
    adapter_name: str | None = None
    server_id: int = 0  # t_server_conf.id
    adapter_id: int = 0  # t_adapter_conf.id
    tars_version: str | None = None  # reportVersion's


@dataclass(frozen=True, slots=True)
class RegistryInfoRow:
    """The routing columns of ``t_registry_info`` (heartbeat columns left out on purpose)."""

    locator_id: str
    servant: str | None
    endpoint: str | None
    present_state: str | None
    enable_group: str | None


class Skipped(Exception):
    """A row that yields no record (why, for the one-time log line)."""


def _s(v: str | None) -> str:
    return v if v is not None else ""


def is_yes(flag: str | None) -> bool:
    """``enable_set`` / ``enable_group``: 'Y' or 'y' (TARS compares lowercased with 'y')."""
    return _s(flag).strip().lower() == "y"


def group_key(application: str | None, server_name: str | None) -> tuple[str, str]:
    """The (application, server_name) pair as db_tars compares it.

    db_tars tables use a case-insensitive, trailing-space-insensitive collation, so a
    re-read asked for ('app', 'x') also returns rows written as ('App', 'x '); the
    importer's index must call them one group.
    """
    return (_s(application).lower().rstrip(" "), _s(server_name).lower().rstrip(" "))


def _endpoint_record(
    servant: str | None,
    endpoint: str | None,
    *,
    node_name: str = "",
    set_id: str = "",
    enable_group: bool = False,
    ip_group_name: str = "",
    bak_flag: int = 0,
    setting_state: State,
    present_state: State,
    adapter_name: str = "",
    tars_version: str = "",
) -> EndpointRecord:
    object_id = _s(servant).strip()
    if not object_id:
        raise Skipped("empty servant")
    try:
        ep = parse_endpoint(_s(endpoint))
    except EndpointSyntaxError as exc:
        raise Skipped(f"unparsable endpoint: {exc}") from exc
    for what, value, limit in (
        ("servant", object_id, MAX_NAME),
        ("endpoint host", ep.host, MAX_NAME),
        ("node_name", node_name, MAX_NAME),
        ("set", set_id, MAX_SHORT),
        ("ip_group_name", ip_group_name, MAX_SHORT),
        ("adapter_name", adapter_name, MAX_NAME),
        ("tars_version", tars_version, MAX_SHORT),
    ):
        if len(value) > limit:
            raise Skipped(f"{what} longer than {limit} characters")
    return EndpointRecord(
        object_id=object_id,
        host=ep.host,
        port=ep.port,
        istcp=ep.istcp,
        timeout=ep.timeout,
        node_name=node_name,
        set_id=set_id,
        enable_group=enable_group,
        ip_group_name=ip_group_name,
        weight=ep.weight,
        weight_type=ep.weight_type,
        auth_type=ep.auth_type,
        bak_flag=bak_flag,
        setting_state=setting_state,
        present_state=present_state,
        # the TARS default (<object id>Adapter) is kept as "", as the admin API does
        adapter_name="" if adapter_name == default_adapter_name(object_id) else adapter_name,
        tars_version=tars_version,
    )


def record_of_row(row: RoutingRow) -> EndpointRecord:
    """The endpoint record of one load-query row; :class:`Skipped` when there is none."""
    active_flow = _s(row.flow_state).strip().lower() != "inactive"
    present = state_of_tars(row.present_state) if active_flow else State.INACTIVE
    set_id = ""
    if is_yes(row.enable_set):
        set_id = f"{_s(row.set_name)}.{_s(row.set_area)}.{_s(row.set_group)}"
    return _endpoint_record(
        row.servant,
        row.endpoint,
        node_name=_s(row.node_name).strip(),
        set_id=set_id,
        enable_group=is_yes(row.enable_group),
        ip_group_name=_s(row.ip_group_name).strip(),
        bak_flag=1 if row.bak_flag == 1 else 0,
        setting_state=state_of_tars(row.setting_state),
        present_state=present,
        adapter_name=_s(row.adapter_name).strip(),
        tars_version=_s(row.tars_version).strip(),
    )


def record_of_registry_info(row: RegistryInfoRow) -> EndpointRecord:
    """A framework servant from ``t_registry_info`` (TARS: present_state is both states)."""
    state = state_of_tars(row.present_state)
    return _endpoint_record(
        row.servant,
        row.endpoint,
        enable_group=is_yes(row.enable_group),
        setting_state=state,
        present_state=state,
    )


def _entries(text: str | None, separators: re.Pattern[str]) -> list[str]:
    return [p for p in separators.split(_s(text)) if p]


def group_rule(
    group_id: int,
    group_name: str | None,
    allow_ip_rule: str | None,
    ip_order: str | None,
    denny_ip_rule: str | None,
) -> GroupRule:
    """A ``t_server_group_rule`` row; allow/deny lists split on ``|``, empty parts dropped."""
    bar = re.compile(r"\|")
    return GroupRule(
        group_id=int(group_id),
        group_name=_s(group_name),
        allow_ip_rule=tuple(_entries(allow_ip_rule, bar)),
        ip_order=_s(ip_order) or "denny_allow",
        denny_ip_rule=tuple(_entries(denny_ip_rule, bar)),
    )


def group_priority(
    prio_id: int,
    name: str | None,
    group_list: str | None,
    list_order: int | None,
    station: str | None,
) -> GroupPriority:
    """A ``t_group_priority`` row; group ids split on any of ``|,;``, non-integers dropped."""
    ids: list[int] = []
    for part in _entries(group_list, _LIST_SEPARATORS):
        p = part.strip()
        if p.lstrip("-").isdigit() and p.isascii():
            ids.append(int(p))
    return GroupPriority(
        id=int(prio_id),
        name=_s(name),
        group_list=tuple(ids),
        list_order=int(list_order or 0),
        station=_s(station),
    )


def is_active(r: EndpointRecord) -> bool:
    return r.setting_state == State.ACTIVE and r.present_state == State.ACTIVE


def preference(r: EndpointRecord) -> tuple[int, int]:
    """Sort key among copies of one endpoint key: served before standby, active first."""
    return (r.bak_flag != 0, not is_active(r))


def collapse(copies: Iterable[EndpointRecord]) -> EndpointRecord:
    """One record for an endpoint key that several rows produce (TARS lists each copy).

    A served copy beats a standby one, an active copy an inactive one; among equals the
    first given wins (callers pass copies in a deterministic order).
    """
    best: EndpointRecord | None = None
    for r in copies:
        if best is None or preference(r) < preference(best):
            best = r
    if best is None:
        raise ValueError("no copies")
    return best
