"""Administrative operations on the registry: validated reads and writes.

The HTTP API and anything else that administers the registry goes through here. Every
input is validated before anything is written; a bad request raises
:class:`ValidationError` (HTTP 400), a missing record :class:`NotFoundError` (404), a
duplicate or a failed precondition :class:`ConflictError` (409) — and changes nothing.

Writes never copy a record out of the catalog and write it back (the catalog may lag the
database): a change of some fields is a ``Patch`` of the row as the database holds it in
the write transaction, an add is an ``Insert`` (atomic add-if-absent), and any write may
carry an ``Expect`` (``?if_revision=`` / ``If-Match``) for optimistic concurrency.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Any

from tarscascade.cascade import CascadeHub
from tarscascade.errors import (
    ConflictError,
    EndpointSyntaxError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    ValidationError,
)
from tarscascade.model import (
    MAX_VERSION_LEN,
    Category,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Setting,
    State,
    Version,
    endpoint_key,
    node_name_error,
    record_fields,
    record_from_endpoint,
)
from tarscascade.registry.core import Committed, RegistryCore
from tarscascade.registry.drains import DrainBook, DrainJob, DrainResult
from tarscascade.store import Delete, Expect, Insert, Patch, Put, WriteOp
from tarscascade.wire.endpoint import parse_endpoint, validate_object_id

_SET_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# an adapter name is usually the object id + "Adapter": as long as an object id may be
_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")
_IP_PATTERN = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}|\*)$")
MAX_DRAIN_TIMEOUT = 600.0
_OWNED_POLL_S = 0.05  # drain in an owned mode: how often it looks for the owner's change
TYPED_WEIGHT_MAX = 100  # TARS caps weights at 100 when a weight type is set


@dataclass(frozen=True, slots=True)
class WriteResult:
    revision: int  # the store revision that contains the change
    record: Any = None
    #: False: committed (durable), but the catalog had not caught up when answering
    applied: bool = True
    changed: bool = True  # False when the write found nothing to change (no event)

    @classmethod
    def of(cls, done: Committed) -> WriteResult:
        record = done.records[0] if done.records else None
        return cls(done.revision, record, done.applied, bool(done.events))


def validate_set_id(set_id: str) -> str:
    """``name.area.group``; name and area not ``*``, group may be ``*`` (the wildcard group)."""
    if set_id == "":
        return ""
    parts = set_id.split(".")
    if len(parts) != 3 or not all(_SET_PART.fullmatch(p) or p == "*" for p in parts):
        raise ValidationError(f"set id must be name.area.group, got {set_id!r}")
    if "*" in parts[:2]:
        raise ValidationError(f"set name and area cannot be '*': {set_id!r}")
    return set_id


def validate_node_name(name: str) -> str:
    """A node name, by the one rule every interface applies (``model.is_node_name``)."""
    error = node_name_error(name)
    if error is not None:
        raise ValidationError(error)
    return name


def validate_name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name):  # match() + $ would take a trailing newline
        raise ValidationError(f"{what} must be 1-128 of [A-Za-z0-9_.:-], got {name!r}")
    return name


def validate_adapter_name(name: str) -> str:
    """An explicit TARS adapter name ("" = the default, ``<object id>Adapter``)."""
    if name and not _ADAPTER_NAME.fullmatch(name):
        raise ValidationError(f"adapter name must be 1-255 of [A-Za-z0-9_.:-], got {name!r}")
    if name == "AdminAdapter":
        raise ValidationError("AdminAdapter is every TARS server's admin port, not a servant's")
    return name


def validate_ip_pattern(p: str) -> str:
    """An IDC rule entry as TARS matches it: an exact IPv4 address or ``a.b.c.*``."""
    m = _IP_PATTERN.match(p)
    if not m or any(int(x) > 255 for x in m.groups() if x != "*"):
        raise ValidationError(f"IP rule entries are a.b.c.d or a.b.c.*, got {p!r}")
    return p


def _object_id(object_id: str) -> str:
    try:
        return validate_object_id(object_id)
    except EndpointSyntaxError as exc:
        raise ValidationError(str(exc)) from exc


def _host_port(host: str, port: int) -> tuple[str, int]:
    if not host or len(host) > 255 or any(c.isspace() for c in host):
        raise ValidationError(f"bad host {host!r}")
    if not 0 < port < 65536:
        raise ValidationError(f"port must be 1..65535, got {port}")
    return host, port


def endpoint_text(host: str, port: int, transport: str = "tcp") -> str:
    """An endpoint as users write it, ``tcp -h 10.0.0.1 -p 80`` (for messages)."""
    return f"{transport} -h {host} -p {port}"


def endpoint_name(object_id: str, host: str, port: int, transport: str = "tcp") -> str:
    return f'endpoint "{endpoint_text(host, port, transport)}" of {object_id}'


TRANSPORTS = {0: "udp", 1: "tcp", 2: "ssl"}


def record_name(r: EndpointRecord) -> str:
    return endpoint_name(r.object_id, r.host, r.port, TRANSPORTS.get(r.istcp, "tcp"))


class RegistryAdmin:
    """The registry's administrative surface.

    ``owner`` names the source that owns endpoints and IDC groups (``db_tars`` in db_tars
    mode): their writes are refused with :class:`ConflictError` (HTTP 409), since the
    importer would undo them; reads, drain waiting, nodes and settings keep working.
    """

    def __init__(
        self, core: RegistryCore, hub: CascadeHub | None = None, owner: str | None = None
    ) -> None:
        self.core = core
        self.hub = hub  # the cascade hub: node versions, lag, drain
        self.owner = owner
        self.drains = DrainBook(hub, tier=core.tier)

    def refuse_owned(self, what: str) -> None:
        if self.owner is not None:
            raise ConflictError(
                f"{self.owner} owns {what}: change them in TARS (TarsWeb, tarsAdminRegistry);"
                " this registry imports them read-only"
            )

    @property
    def catalog(self) -> Any:
        return self.core.catalog

    # ------------------------------------------------------------------ reads

    def status(self) -> dict[str, Any]:
        cat = self.core.catalog
        counts = cat.counts()
        cats = {}
        for c in Category:
            v = cat.version(c)
            cats[c.value] = {
                "version": {"epoch": v.epoch, "revision": v.revision},
                "digest": f"{cat.digest(c):032x}",
            }
        return {
            "epoch": self.core.epoch,
            "revision": self.core.revision,
            "epoch_confirmed": self.core.epoch_confirmed,
            "lineage": dataclasses.asdict(self.core.lineage),
            "categories": cats,
            "counts": counts,
            "stats": dataclasses.asdict(self.core.stats),
            "answer_cache": {
                "entries": self.core.answerer.size,
                "hits": self.core.answerer.hits,
                "misses": self.core.answerer.misses,
            },
            "tier": None
            if (tier := self.core.tier) is None
            else {
                "registry_id": tier.id,
                "judge": tier.is_judge,
                "judge_id": tier.judge,
                "drain_waits": len(tier.waits),
                "stats": dataclasses.asdict(tier.stats),
            },
        }

    async def tier_sightings(self) -> dict[str, float]:
        """Per node, the age of the newest sighting any registry of the tier shared ({}
        without the tier's tables or when the database cannot say)."""
        tier = self.core.tier
        if tier is None:
            return {}
        try:
            ages: dict[str, float] = await asyncio.to_thread(tier.table.newest)
        except StoreError:
            return {}
        return ages

    def endpoint_view(self, r: EndpointRecord) -> dict[str, Any]:
        d = record_fields(r)
        d["active"] = self.core.catalog.is_active(r)
        d["adapter"] = r.adapter  # the name keepAlive must use (adapter_name or its default)
        return d

    def get_object(self, object_id: str) -> list[EndpointRecord]:
        eps: tuple[EndpointRecord, ...] = self.core.catalog.get_object(object_id)
        if not eps:
            raise NotFoundError([object_id], f"object {object_id}")
        return list(eps)

    def get_endpoint(self, object_id: str, host: str, port: int) -> EndpointRecord:
        for r in self.core.catalog.get_object(object_id):
            if r.host == host and r.port == port:
                return r
        raise NotFoundError(
            [endpoint_key(object_id, host, port)], endpoint_name(object_id, host, port)
        )

    def list_nodes(self) -> list[NodeRecord]:
        nodes = [r for r in self.core.catalog.records(Category.NODES) if isinstance(r, NodeRecord)]
        return sorted(nodes, key=lambda n: n.name)

    def list_group_rules(self) -> list[GroupRule]:
        rs = [r for r in self.core.catalog.records(Category.GROUPS) if isinstance(r, GroupRule)]
        return sorted(rs, key=lambda r: r.group_id)

    def list_group_priorities(self) -> list[GroupPriority]:
        rs = self.core.catalog.records(Category.GROUPS)
        return sorted(
            (r for r in rs if isinstance(r, GroupPriority)), key=lambda r: (r.list_order, r.id)
        )

    def list_settings(self) -> list[Setting]:
        rs = [r for r in self.core.catalog.records(Category.SETTINGS) if isinstance(r, Setting)]
        return sorted(rs, key=lambda s: s.name)

    # ------------------------------------------------------------------ endpoint writes

    def build_endpoint(
        self,
        object_id: str,
        endpoint: str,
        *,
        node_name: str = "",
        set_id: str | None = None,
        enable_group: bool = False,
        ip_group_name: str = "",
        bak_flag: int = 0,
        setting_state: State = State.ACTIVE,
        present_state: State = State.ACTIVE,
        adapter_name: str = "",
    ) -> EndpointRecord:
        """An endpoint record from a TARS endpoint string plus options (validated)."""
        _object_id(object_id)
        try:
            ep = parse_endpoint(endpoint)
        except EndpointSyntaxError as exc:
            raise ValidationError(str(exc)) from exc
        _host_port(ep.host, ep.port)
        if node_name:
            validate_node_name(node_name)
        if ip_group_name:
            validate_name("IDC group name", ip_group_name)
        if bak_flag not in (0, 1):
            raise ValidationError(f"bak_flag must be 0 or 1, got {bak_flag}")
        sid = validate_set_id(ep.set_id if set_id is None else set_id)
        validate_adapter_name(adapter_name)
        return record_from_endpoint(
            object_id,
            ep,
            node_name=node_name,
            set_id=sid,
            enable_group=enable_group,
            ip_group_name=ip_group_name,
            bak_flag=bak_flag,
            setting_state=State(setting_state),
            present_state=State(present_state),
            adapter_name=adapter_name,
        )

    async def add_endpoint(
        self, record: EndpointRecord, *, replace: bool = False, expect: Expect | None = None
    ) -> WriteResult:
        """Add the endpoint, atomically: ``ConflictError`` if it exists, unless ``replace``."""
        self.refuse_owned("endpoints")
        if expect is not None and not replace:
            raise ValidationError("if_revision applies to a replace, not to an add")
        op = self.add_op(record, replace=replace, expect=expect)
        try:
            return await self._commit(op)
        except ConflictError as exc:
            if replace or isinstance(exc, PreconditionFailedError):
                raise
            raise ConflictError(
                f"{record_name(record)} exists already (replace: true overwrites it)"
            ) from exc

    def add_op(
        self, record: EndpointRecord, *, replace: bool = False, expect: Expect | None = None
    ) -> WriteOp:
        """The write that adds (or with ``replace`` overwrites) the endpoint, validated."""
        self._check_record(record)
        return Put(record, expect) if replace else Insert(record)

    async def update_endpoint(
        self,
        object_id: str,
        host: str,
        port: int,
        changes: dict[str, Any],
        *,
        expect: Expect | None = None,
    ) -> WriteResult:
        """Change the given fields of the endpoint as the database holds it (404 if absent)."""
        self.refuse_owned("endpoints")
        op = self.update_op(object_id, host, port, changes, expect=expect)
        return await self._commit(op, endpoint_name(object_id, host, port))

    def update_op(
        self,
        object_id: str,
        host: str,
        port: int,
        changes: dict[str, Any],
        *,
        expect: Expect | None = None,
    ) -> Patch:
        """The write that changes these fields of the endpoint, validated (the result as a
        whole is checked again in the write transaction, on the row as the database has it)."""
        _object_id(object_id)
        _host_port(host, port)
        allowed = {f.name for f in dataclasses.fields(EndpointRecord)} - {
            "object_id",
            "host",
            "port",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(f"cannot change {sorted(unknown)}")
        if not changes:
            raise ValidationError("nothing to change: give at least one field")

        def check(_before: object, after: object) -> None:
            assert isinstance(after, EndpointRecord)
            self._check_record(after)  # the result as a whole, as the database has it

        key = endpoint_key(object_id, host, port)
        return Patch(Category.OBJECTS, key, dict(changes), check=check, expect=expect)

    def _check_record(self, r: EndpointRecord) -> None:
        validate_set_id(r.set_id)
        if r.node_name:
            validate_node_name(r.node_name)
        if r.ip_group_name:
            validate_name("IDC group name", r.ip_group_name)
        if not isinstance(r.adapter_name, str):
            raise ValidationError(f"adapter_name must be a string, got {r.adapter_name!r}")
        validate_adapter_name(r.adapter_name)
        if not isinstance(r.tars_version, str) or len(r.tars_version) > MAX_VERSION_LEN:
            raise ValidationError(f"tars_version must be a string of at most {MAX_VERSION_LEN}")
        for name in ("istcp", "timeout", "grid", "qos", "weight", "weight_type", "auth_type"):
            v = getattr(r, name)
            if not isinstance(v, int) or isinstance(v, bool) or not -(2**31) <= v < 2**31:
                raise ValidationError(f"{name} must be a 32-bit integer, got {v!r}")
        if r.istcp not in (0, 1, 2):
            raise ValidationError(f"istcp must be 0 (udp), 1 (tcp) or 2 (ssl), got {r.istcp}")
        if r.bak_flag not in (0, 1):
            raise ValidationError(f"bak_flag must be 0 or 1, got {r.bak_flag}")
        if r.weight_type and not 0 <= r.weight <= TYPED_WEIGHT_MAX:
            raise ValidationError(
                f"with weight_type {r.weight_type} the weight must be 0..{TYPED_WEIGHT_MAX}"
            )
        for name in ("setting_state", "present_state"):
            if getattr(r, name) not in (State.ACTIVE, State.INACTIVE):
                raise ValidationError(f"{name} must be active or inactive")

    async def set_endpoint_state(
        self, object_id: str, host: str, port: int, state: State, *, expect: Expect | None = None
    ) -> WriteResult:
        return await self.update_endpoint(
            object_id, host, port, {"setting_state": State(state)}, expect=expect
        )

    async def drain(
        self,
        object_id: str,
        host: str,
        port: int,
        timeout: float = 30.0,
        *,
        force: bool = False,
    ) -> DrainResult:
        """Set the endpoint inactive, then wait until every node that may serve it
        acknowledged the objects version that has it so (at most ``timeout`` s): every
        registered node alive anywhere in the tier, and every node connected here
        (``DrainBook``); registered nodes that are offline are named, not waited for.

        When it is inactive already nothing is written and the wait is for the current
        objects version. A node that disconnects during the wait stays missing: it may
        still serve the old list. The object's last active endpoint is refused unless
        ``force``: TARS clients keep their previous list when an answer has no active
        endpoint, so they would go on calling it.
        """
        job = await self.start_drain(object_id, host, port, timeout, force=force)
        return await job.wait()

    async def start_drain(
        self,
        object_id: str,
        host: str,
        port: int,
        timeout: float = 30.0,
        *,
        force: bool = False,
    ) -> DrainJob:
        """:meth:`drain` without the wait: the job to watch (``job.progress()``) or await."""
        _object_id(object_id)
        _host_port(host, port)
        if not 0 <= timeout <= MAX_DRAIN_TIMEOUT:
            raise ValidationError(f"timeout must be 0..{MAX_DRAIN_TIMEOUT:g} s, got {timeout}")
        if self.owner is not None:
            self.drains.prompt_acks(timeout)  # the owner's change is the drain's
            await self.core.catch_up()
            record = self.get_endpoint(object_id, host, port)
            record, left = await self._owner_drained(record, timeout)
            version = self.core.catalog.version(Category.OBJECTS)
            return await self.drains.start(version, False, record, left)
        if not force:
            self._refuse_last_active(object_id, host, port)
        wait_id = await self.drains.announce(self.core.catalog.version(Category.OBJECTS), timeout)
        try:
            # A patch of setting_state as the database holds it: nothing else is touched
            res = await self.set_endpoint_state(object_id, host, port, State.INACTIVE)
        except BaseException:
            await self.drains.close_wait(wait_id)
            raise
        if res.changed:
            version = Version(self.core.epoch, res.revision)
        else:  # inactive already: the objects version the catalog serves has it so
            version = self.core.catalog.version(Category.OBJECTS)
        return await self.drains.start(version, res.changed, res.record, timeout, wait_id)

    def _refuse_last_active(self, object_id: str, host: str, port: int) -> None:
        catalog = self.core.catalog
        eps = catalog.get_object(object_id)
        target = [e for e in eps if (e.host, e.port) == (host, port)]
        if not target or not catalog.is_active(target[0]):
            return  # missing (the write says so) or inactive already: nothing is taken away
        if any(catalog.is_active(e) for e in eps if (e.host, e.port) != (host, port)):
            return
        raise ConflictError(
            f"{record_name(target[0])} is the object's last active endpoint: TARS clients"
            " keep their previous list when an answer has no active endpoint, so they would"
            " go on calling it. Drain it anyway with force (tarscascade drain --force), or"
            " add or activate another endpoint first"
        )

    async def aclose(self) -> None:
        """Stop the drains still waiting (their watchers get no result)."""
        await self.drains.aclose()

    async def _owner_drained(
        self, record: EndpointRecord, timeout: float
    ) -> tuple[EndpointRecord, float]:
        """Drain when the owner writes states: wait (within ``timeout``) for the owner to
        turn the endpoint inactive (traffic off or stop in TARS); then the job waits for
        every node. Returns the record and the time left."""
        deadline = time.monotonic() + timeout
        key = (record.object_id, record.host, record.port)
        while self.core.catalog.is_active(record):
            if time.monotonic() >= deadline:
                raise ConflictError(
                    f"{self.owner} owns endpoints: {record.host}:{record.port} of"
                    f" {record.object_id} is still active after {timeout:g} s; take its"
                    " traffic off (or stop it) in TARS, and drain waits for every node"
                )
            await asyncio.sleep(_OWNED_POLL_S)
            try:
                record = self.get_endpoint(*key)
            except NotFoundError:
                break  # removed in TARS (undeploy): drained once every node has that
        return record, max(0.0, deadline - time.monotonic())

    async def remove_endpoint(
        self, object_id: str, host: str, port: int, *, expect: Expect | None = None
    ) -> WriteResult:
        self.refuse_owned("endpoints")
        op = self.remove_op(object_id, host, port, expect=expect)
        return await self._commit(op, endpoint_name(object_id, host, port))

    def remove_op(
        self, object_id: str, host: str, port: int, *, expect: Expect | None = None
    ) -> Delete:
        """The write that removes the endpoint (404 at commit if it is absent)."""
        _object_id(object_id)
        _host_port(host, port)
        return Delete(Category.OBJECTS, endpoint_key(object_id, host, port), expect)

    # ------------------------------------------------------------------ other categories

    async def put_node(self, node: NodeRecord, *, expect: Expect | None = None) -> WriteResult:
        """Write the whole node record."""
        validate_node_name(node.name)
        return await self._commit(Put(node, expect))

    async def patch_node(
        self, name: str, fields: dict[str, Any], *, expect: Expect | None = None
    ) -> WriteResult:
        """Add the node, or change only the given fields of it (heartbeat state is kept)."""
        validate_node_name(name)
        allowed = {f.name for f in dataclasses.fields(NodeRecord)} - {"name"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValidationError(f"cannot change {sorted(unknown)}")
        try:
            created = NodeRecord(name, **fields)
        except TypeError as exc:
            raise ValidationError(str(exc)) from exc
        op = Patch(Category.NODES, name, dict(fields), create=created, expect=expect)
        return await self._commit(op, f"node {name}")

    async def remove_node(self, name: str, *, expect: Expect | None = None) -> WriteResult:
        return await self._delete(Category.NODES, name, f"node {name}", expect)

    async def put_group_rule(self, rule: GroupRule, *, expect: Expect | None = None) -> WriteResult:
        self.refuse_owned("IDC groups")
        if rule.group_id < 0:
            raise ValidationError("group_id must be >= 0")
        validate_name("group name", rule.group_name)
        for p in (*rule.allow_ip_rule, *rule.denny_ip_rule):
            validate_ip_pattern(p)
        return await self._commit(Put(rule, expect))

    async def remove_group_rule(
        self, group_id: int, *, expect: Expect | None = None
    ) -> WriteResult:
        self.refuse_owned("IDC groups")
        key = GroupRule(group_id, "x").key
        return await self._delete(Category.GROUPS, key, f"IDC group rule {group_id}", expect)

    async def put_group_priority(
        self, prio: GroupPriority, *, expect: Expect | None = None
    ) -> WriteResult:
        self.refuse_owned("IDC groups")
        if prio.id < 0:
            raise ValidationError("priority id must be >= 0")
        if prio.station:
            validate_name("station", prio.station)
        if not prio.group_list:
            raise ValidationError("group_list must name at least one group id")
        return await self._commit(Put(prio, expect))

    async def remove_group_priority(
        self, prio_id: int, *, expect: Expect | None = None
    ) -> WriteResult:
        self.refuse_owned("IDC groups")
        key = GroupPriority(prio_id).key
        return await self._delete(Category.GROUPS, key, f"group priority {prio_id}", expect)

    async def put_setting(
        self, name: str, value: str, *, expect: Expect | None = None
    ) -> WriteResult:
        validate_name("setting name", name)
        if len(value) > 4096:
            raise ValidationError("setting values are at most 4096 characters")
        return await self._commit(Put(Setting(name, value), expect))

    async def remove_setting(self, name: str, *, expect: Expect | None = None) -> WriteResult:
        return await self._delete(Category.SETTINGS, name, f"setting {name}", expect)

    # ------------------------------------------------------------------ helpers

    async def _commit(self, op: WriteOp, what: str | None = None) -> WriteResult:
        """One write; a missing record is a :class:`NotFoundError` naming it as users do
        (``what``), never by the store's internal key."""
        try:
            return WriteResult.of(await self.core.commit([op]))
        except NotFoundError as exc:
            if what is None:
                raise
            raise NotFoundError(exc.keys, what) from exc

    async def _delete(
        self, category: Category, key: str, what: str, expect: Expect | None
    ) -> WriteResult:
        return await self._commit(Delete(category, key, expect), what)
