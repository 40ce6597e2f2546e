"""The routing data model shared by the store and the catalog (plain frozen values).

Nothing here does I/O. Records are what the store persists and the catalog indexes;
events are what a write produces and what the change log, the tailers and (later) the
cascade carry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Category(StrEnum):
    OBJECTS = "objects"  # endpoint records, keyed per endpoint; synced incrementally
    NODES = "nodes"  # node agents; synced incrementally
    GROUPS = "groups"  # IDC group rules, priorities, stations; synced whole
    SETTINGS = "settings"  # small shared settings; synced whole


INCREMENTAL = frozenset({Category.OBJECTS, Category.NODES})


class State(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


#: state names as stored, synced and shown -> State: the one mapping (exact names)
STATE_BY_NAME: Mapping[object, State] = {s.value: s for s in State}


def state_of_tars(text: str | None) -> State:
    """A state as TARS writes it: TARS's other present states (activating, destroyed,
    ...) and anything unknown are inactive, like TARS's own load query."""
    return State.ACTIVE if (text or "").strip().lower() == State.ACTIVE else State.INACTIVE


class Op(StrEnum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """``(epoch, revision)``: epoch names the data lineage, revision is the store's counter."""

    epoch: str
    revision: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.revision}"


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One endpoint of one servant object (a row of ``t_server_conf`` x ``t_adapter_conf``)."""

    object_id: str  # App.Server.Obj
    host: str
    port: int
    istcp: int = 1  # 0 udp, 1 tcp, 2 ssl
    timeout: int = 3000  # adapter idle timeout, ms (-t)
    node_name: str = ""
    set_id: str = ""  # name.area.group when set-enabled, else ""
    enable_group: bool = False
    ip_group_name: str = ""  # explicit IDC group name; else derived from host by rules
    grid: int = 0
    qos: int = 0
    weight: int = -1
    weight_type: int = 0
    auth_type: int = 0
    bak_flag: int = 0
    setting_state: State = State.ACTIVE
    present_state: State = State.ACTIVE
    #: the TARS adapter serving it (``t_adapter_conf.adapter_name``): keepAlive names
    #: adapters, not objects; "" means the TARS default, ``<object id>Adapter``
    adapter_name: str = ""
    #: the TARS version its server reported (``reportVersion``), "" when none did
    tars_version: str = ""

    @property
    def key(self) -> str:
        return endpoint_key(self.object_id, self.host, self.port)

    @property
    def adapter(self) -> str:
        """The adapter name keepAlive uses for it: explicit, else ``<object id>Adapter``."""
        return self.adapter_name or default_adapter_name(self.object_id)


#: t_server_conf.tars_version is a varchar(128), as is tc_endpoints.tars_version
MAX_VERSION_LEN = 128


class EndpointFields(Protocol):
    """What an endpoint string gives a record (``wire.endpoint.Endpoint`` has it all)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def istcp(self) -> int: ...
    @property
    def timeout(self) -> int: ...
    @property
    def set_id(self) -> str: ...
    @property
    def grid(self) -> int: ...
    @property
    def qos(self) -> int: ...
    @property
    def weight(self) -> int: ...
    @property
    def weight_type(self) -> int: ...
    @property
    def auth_type(self) -> int: ...


def record_from_endpoint(object_id: str, ep: EndpointFields, **fields: Any) -> EndpointRecord:
    """An endpoint record from a parsed TARS endpoint string plus the record-only fields
    (``set_id`` given here overrides the string's)."""
    return EndpointRecord(
        object_id=object_id,
        host=ep.host,
        port=ep.port,
        istcp=ep.istcp,
        timeout=ep.timeout,
        set_id=fields.pop("set_id", ep.set_id),
        grid=ep.grid,
        qos=ep.qos,
        weight=ep.weight,
        weight_type=ep.weight_type,
        auth_type=ep.auth_type,
        **fields,
    )


def default_adapter_name(object_id: str) -> str:
    """TARS's convention (TarsWeb, TarsGo/TarsCpp templates): ``App.Server.ObjAdapter``."""
    return object_id + ADAPTER_SUFFIX


ADAPTER_SUFFIX = "Adapter"


def endpoint_key(object_id: str, host: str, port: int) -> str:
    """The identity of an endpoint record within ``objects``."""
    return f"{object_id}|{host}|{port}"


def split_endpoint_key(key: str) -> tuple[str, str, int] | None:
    """``(object_id, host, port)`` from an :func:`endpoint_key`, None if it is not one.

    Split from the right: a host never contains ``|``, so an object id that does still
    round-trips.
    """
    rest, sep, port = key.rpartition("|")
    object_id, sep2, host = rest.rpartition("|")
    if not sep or not sep2 or not port.isdigit() or not port.isascii():
        return None
    return object_id, host, int(port)


# Node names: ONE rule, checked by every interface that takes one (the cascade's subscribe
# and reports, the admin API, the CLI, the node agent's own configuration), so a node that
# can register can also be drained, updated and removed (review finding 15).
#
# Allowed: what TARS uses as node names (host names, IPv4 and IPv6 addresses), i.e. 1 to
# 128 of ``[A-Za-z0-9_.:-]``, not starting with ``.`` or ``-``. Refused, and why:
# * ``@``: it separates the servant from its endpoints in TARS object strings
#   (``Obj@tcp -h ...``) and the user from the host in a URL authority;
# * ``/ ? # % &``, spaces, control characters, non-ASCII: they change what an admin API
#   path (``/v1/nodes/{name}``) means, or need encoding that proxies and logs undo;
# * ``|`` and ``\x1e``: separators of the catalog's record keys and canonical forms;
# * a leading ``.`` (``.`` and ``..`` are dot-segments that URL clients remove from a
#   path) and a leading ``-`` (read as an option by the CLI and in endpoint strings).
# A leading ``:`` stays allowed for IPv6 addresses such as ``::1``.
NODE_NAME_RULE = "1-128 of [A-Za-z0-9_.:-], not starting with '.' or '-'"
_NODE_NAME = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:-]{0,127}")


def is_node_name(name: object) -> bool:
    """Whether ``name`` is a valid node name (see :data:`NODE_NAME_RULE`)."""
    return isinstance(name, str) and _NODE_NAME.fullmatch(name) is not None


def node_name_error(name: object) -> str | None:
    """Why ``name`` is not a valid node name (one message for every interface), or None."""
    if is_node_name(name):
        return None
    return f"node name must be {NODE_NAME_RULE}, got {name!r:.140}"


@dataclass(frozen=True, slots=True)
class NodeRecord:
    name: str
    host: str = ""  # address the node agent was seen at
    port: int = 0
    setting_state: State = State.ACTIVE
    present_state: State = State.ACTIVE  # alive/dead, from heartbeats
    #: unix seconds the registry last registered the node alive (a subscription of a new,
    #: moved or dead node); 0 = never. Heartbeats do not move it: they are kept in memory
    #: (the hub's NodeState, liveness), not written per beat to every node's replica.
    #: (The stored column keeps this name until the store's schema changes.)
    last_heartbeat: float = 0.0

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class GroupRule:
    """An IDC group: IP patterns (exact or ``a.b.c.*``) mapping hosts to a group id."""

    group_id: int
    group_name: str
    allow_ip_rule: tuple[str, ...] = ()
    ip_order: str = "allow_denny"
    denny_ip_rule: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"rule|{self.group_id}"


@dataclass(frozen=True, slots=True)
class GroupPriority:
    """A row of ``t_group_priority``: an ordered list of groups, optionally a station."""

    id: int
    name: str = ""
    group_list: tuple[int, ...] = ()
    list_order: int = 0
    station: str = ""

    @property
    def key(self) -> str:
        return f"priority|{self.id}"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str

    @property
    def key(self) -> str:
        return self.name


Record = EndpointRecord | NodeRecord | GroupRule | GroupPriority | Setting

RECORD_TYPES: dict[str, type[Any]] = {
    "endpoint": EndpointRecord,
    "node": NodeRecord,
    "group_rule": GroupRule,
    "group_priority": GroupPriority,
    "setting": Setting,
}
_TYPE_NAMES = {v: k for k, v in RECORD_TYPES.items()}


def category_of(record: Record) -> Category:
    if isinstance(record, EndpointRecord):
        return Category.OBJECTS
    if isinstance(record, NodeRecord):
        return Category.NODES
    if isinstance(record, GroupRule | GroupPriority):
        return Category.GROUPS
    return Category.SETTINGS


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One change at one revision: a record put, or a record deleted (a tombstone)."""

    revision: int
    category: Category
    op: Op
    key: str
    record: Record | None  # None for deletions


_FIELD_NAMES = {t: tuple(f.name for f in dataclasses.fields(t)) for t in RECORD_TYPES.values()}


def record_fields(record: Record) -> dict[str, Any]:
    """Every field by name. Each is a plain value (tuples of them at most), so a shallow
    copy is what ``dataclasses.asdict`` gives, at a tenth of its cost (it deep-copies:
    0.05 ms an endpoint, twice per admin write, issue 17)."""
    return {name: getattr(record, name) for name in _FIELD_NAMES[type(record)]}


def record_to_dict(record: Record) -> dict[str, Any]:
    """A JSON-ready dict with a ``type`` tag (used by the change log and the admin API)."""
    d = record_fields(record)
    d["type"] = _TYPE_NAMES[type(record)]
    return d


def record_from_dict(d: dict[str, Any]) -> Record:
    d = dict(d)
    cls = RECORD_TYPES[d.pop("type")]
    for f in dataclasses.fields(cls):
        if f.name in d and isinstance(d[f.name], list):
            d[f.name] = tuple(d[f.name])
        if f.name in ("setting_state", "present_state") and f.name in d:
            d[f.name] = State(d[f.name])
    rec: Record = cls(**d)
    return rec


# Field separators for the canonical form: ASCII unit / record separators, which do not
# occur in object ids, hosts, node names or set ids, so distinct records do not collide.
_RS = "\x1e"


def _canon_endpoint(r: EndpointRecord) -> str:
    # enable_group prints as 0/1 (":d") so a record built with an int digests like a bool one.
    return (
        f"endpoint\x1f{r.object_id}\x1f{r.host}\x1f{r.port}\x1f{r.istcp}\x1f{r.timeout}"
        f"\x1f{r.node_name}\x1f{r.set_id}\x1f{r.enable_group:d}\x1f{r.ip_group_name}"
        f"\x1f{r.grid}\x1f{r.qos}\x1f{r.weight}\x1f{r.weight_type}\x1f{r.auth_type}"
        f"\x1f{r.bak_flag}\x1f{r.setting_state}\x1f{r.present_state}"
        # fields added later: written only when set, so a record without them keeps the
        # digest it had before they existed
        + (f"\x1f{r.adapter_name}\x1f{r.tars_version}" if r.adapter_name or r.tars_version else "")
    )


def _canon_node(r: NodeRecord) -> str:
    return (
        f"node\x1f{r.name}\x1f{r.host}\x1f{r.port}\x1f{r.setting_state}"
        f"\x1f{r.present_state}\x1f{r.last_heartbeat!r}"
    )


def _canon_rule(r: GroupRule) -> str:
    return (
        f"group_rule\x1f{r.group_id}\x1f{r.group_name}\x1f{_RS.join(r.allow_ip_rule)}"
        f"\x1f{r.ip_order}\x1f{_RS.join(r.denny_ip_rule)}"
    )


def _canon_priority(r: GroupPriority) -> str:
    groups = _RS.join(map(str, r.group_list))
    return f"group_priority\x1f{r.id}\x1f{r.name}\x1f{groups}\x1f{r.list_order}\x1f{r.station}"


def _canon_setting(r: Setting) -> str:
    return f"setting\x1f{r.name}\x1f{r.value}"


_CANON: dict[type[Any], Callable[[Any], str]] = {
    EndpointRecord: _canon_endpoint,
    NodeRecord: _canon_node,
    GroupRule: _canon_rule,
    GroupPriority: _canon_priority,
    Setting: _canon_setting,
}


def canonical_form(record: Record) -> str:
    """A deterministic text form of a record: type tag + every field, in declaration order.

    Built with one f-string per record type (about 1 µs) instead of ``asdict`` + JSON
    (about 15 µs): a node applies a million-endpoint snapshot, so this is a hot path.
    Independent of hash seeds and process, so replicas agree on it.
    """
    return _CANON[type(record)](record)


def canonical_bytes(record: Record) -> bytes:
    """:func:`canonical_form` as the bytes every digest hashes."""
    return _CANON[type(record)](record).encode("utf-8", "surrogateescape")


def record_digest(record: Record, key: bytes = b"") -> int:
    """The 128-bit hash of a record's canonical form under ``key`` (digest v2).

    A category digest is their sum mod :data:`DIGEST_MOD` (see
    :mod:`tarscascade.catalog.digests`, which also builds the keyed hasher once for the
    hot paths). Summing (rather than XOR) keeps the digest order-independent while still
    telling apart two replicas that differ by a duplicated pair of records.
    """
    h = _blake2b(canonical_bytes(record), digest_size=16, key=key)
    return _from_bytes(h.digest(), "big")


def legacy_record_digest(record: Record) -> int:
    """The unkeyed 64-bit hash of protocol 1 and 2 (summed mod :data:`LEGACY_DIGEST_MOD`)."""
    data = _CANON[type(record)](record).encode("utf-8", "surrogateescape")
    return _from_bytes(_blake2b(data, digest_size=8).digest(), "big")


_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes


#: a category digest (v2) is the sum of its records' 128-bit keyed hashes mod this
DIGEST_MOD = 2**128
#: the legacy digest (protocol <= 2) is the sum of unkeyed 64-bit hashes mod this
LEGACY_DIGEST_MOD = 2**64
