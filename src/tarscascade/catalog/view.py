"""One object's endpoints as QueryF sees them: TARS's ``ObjectItem`` plus its set division.

``loadObjectIdCache`` (TarsFramework ``RegistryServer/DbHandle.cpp``) turns rows into
EndpointF values once per load; we do the same per object, lazily, the first time a
query needs it (the encoded-response cache then keeps the bytes). Building the views of
all objects eagerly would cost a million EndpointF objects the registry never sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tarscascade.catalog.groups import NO_GROUP, GroupIndex
from tarscascade.model import EndpointRecord
from tarscascade.wire.idl.endpointf import EndpointF

SET_WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class SetId:
    """A valid set division ``name.area.group``; ``group`` may be the wildcard ``*``."""

    name: str
    area: str
    group: str

    @property
    def set_area(self) -> str:
        return f"{self.name}.{self.area}"

    def __str__(self) -> str:
        return f"{self.name}.{self.area}.{self.group}"


def parse_server_set(set_id: str) -> SetId | None:
    """The set of a server (``set_name.set_area.set_group``), None when not set-enabled.

    ``loadObjectIdCache`` treats a row with an empty part, or ``*`` as name or area, as
    not set-enabled (it logs "set division invalid"). The group is the remainder after
    the second dot, as ``set_group`` is its own column in TARS.
    """
    if not set_id:
        return None
    parts = set_id.split(".", 2)
    if len(parts) != 3:
        return None
    name, area, group = parts
    if not name or not area or not group or name == SET_WILDCARD or area == SET_WILDCARD:
        return None
    return SetId(name, area, group)


def parse_query_set(set_id: str) -> SetId | None:
    """The caller's set for ``findObjectByIdInSameSet``, None when malformed (TARS: -1).

    TARS splits with ``TC_Common::sepstr(setId, ".")``, which drops empty parts, then
    wants exactly three parts with neither name nor area ``*``.
    """
    parts = [p for p in set_id.split(".") if p]
    if len(parts) != 3 or parts[0] == SET_WILDCARD or parts[1] == SET_WILDCARD:
        return None
    return SetId(parts[0], parts[1], parts[2])


@dataclass(frozen=True, slots=True)
class SetMember:
    """An entry of TARS's ``SetDivisionCache``: a set-enabled endpoint and its state."""

    set_id: str  # name.area.group
    set_area: str  # name.area
    active: bool
    endpoint: EndpointF


@dataclass(frozen=True, slots=True)
class ObjectView:
    """The active and inactive EndpointF lists of an object, and its set members by set name.

    Lists are in (host, port) order so a registry and a node answer byte-identically.
    """

    active: tuple[EndpointF, ...]
    inactive: tuple[EndpointF, ...]
    sets: Mapping[str, tuple[SetMember, ...]]


def endpoint_f(record: EndpointRecord, groups: GroupIndex, set_id: SetId | None) -> EndpointF:
    """The EndpointF ``loadObjectIdCache`` builds from one row."""
    ip_group_name = record.ip_group_name.strip()
    real = groups.group_by_name(ip_group_name) if ip_group_name else groups.group_of(record.host)
    return EndpointF(
        host=record.host,
        port=record.port,
        timeout=record.timeout,
        istcp=record.istcp,
        grid=record.grid,
        groupworkid=real if record.enable_group else NO_GROUP,
        grouprealid=real,
        setId=str(set_id) if set_id is not None else "",
        qos=record.qos,
        # Rows with bak_flag 1 never get here; TARS copies the column otherwise.
        bakFlag=record.bak_flag,
        weight=record.weight,
        weightType=record.weight_type,
        authType=record.auth_type,
        nodeName=record.node_name,
    )


def build_view(
    records: Iterable[EndpointRecord],
    groups: GroupIndex,
    is_active: Callable[[EndpointRecord], bool],
) -> ObjectView:
    """Build the view of one object from its endpoint records (any order)."""
    active: list[EndpointF] = []
    inactive: list[EndpointF] = []
    sets: dict[str, list[SetMember]] = {}
    for record in sorted(records, key=_host_port):
        if record.bak_flag == 1:  # a standby: the registry never returns it
            continue
        set_id = parse_server_set(record.set_id)
        ep = endpoint_f(record, groups, set_id)
        up = is_active(record)
        (active if up else inactive).append(ep)
        if set_id is not None:
            member = SetMember(str(set_id), set_id.set_area, up, ep)
            sets.setdefault(set_id.name, []).append(member)
    return ObjectView(
        tuple(active), tuple(inactive), {name: tuple(ms) for name, ms in sets.items()}
    )


def _host_port(record: EndpointRecord) -> tuple[str, int]:
    return (record.host, record.port)
