"""What the dashboard shows, computed from the registry (pure reads, no HTML).

The same numbers the admin API serves (``/v1/status``, ``/v1/nodes``): the pages never
compute a figure of their own that the API could contradict. A node's state is one of
``behind`` (connected, some category not at the registry's revision), ``stale``
(connected, but silent past its heartbeats: :func:`~tarscascade.cascade.is_silent`),
``offline`` (its session ended) and ``current``; the pages list them in that order, the
ones to look at first.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tarscascade.cascade import NodeState, heard_at, is_silent
from tarscascade.catalog.encoded import QueryMethod
from tarscascade.errors import DecodeError, EndpointSyntaxError
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op
from tarscascade.registry.admin_ops import RegistryAdmin, record_name
from tarscascade.wire.endpoint import Endpoint, format_endpoint
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.idl.queryf import (
    FIND_4ANY,
    FIND_IN_SAME_GROUP,
    FIND_IN_SAME_SET,
    FIND_IN_SAME_STATION,
)

STATE_ORDER = {"behind": 0, "stale": 1, "offline": 2, "current": 3}
TREE_PAGE = 100
ATTENTION_ROWS = 20
SAMPLES = 120  # one a second: the sparklines' two minutes
RECENT_CHANGES = 20
ROWS_TTL_S = 1.0
#: the rows are recomputed at most once per this many times their own cost, so open pages
#: never take more than ~5% of the event loop that also answers QueryF
ROWS_COST_FACTOR = 20


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    via: str  # the relay reporting it; "" for a direct session (a child of the registry)
    address: str
    state: str
    revision: int | None  # the objects revision it holds
    lag: dict[str, int | None]
    max_lag: int | None  # revisions behind, over every category (None: another epoch)
    heard_s: float | None  # seconds since its last heartbeat or ack
    children: int  # nodes it relays for


def node_state(st: NodeState | None, now: float, behind: bool) -> str:
    if st is None or not st.connected:
        return "offline"
    if behind:
        return "behind"
    return "stale" if is_silent(st, now) else "current"


def row_dict(r: NodeRow) -> dict[str, Any]:
    return {
        "name": r.name,
        "via": r.via,
        "address": r.address,
        "state": r.state,
        "revision": r.revision,
        "lag": r.lag,
        "max_lag": r.max_lag,
        "heard_s": r.heard_s,
        "children": r.children,
    }


def node_rows(admin: RegistryAdmin, now: float | None = None) -> list[NodeRow]:
    """Every node the registry knows (records and cascade), the ones to look at first.

    Reads the hub's tracker in place (one pass, no copies: at 10,000 nodes a copy per
    node was most of a page's time); the lag rule is the one ``/v1/nodes`` reports."""
    now = time.time() if now is None else now
    tracker = admin.hub.tracker if admin.hub is not None else None
    states = tracker.states() if tracker is not None else []
    cats = [(c, c.value, v) for c, v in admin.core.catalog.versions().items()]
    children: dict[str, int] = {}
    for relayed in states:
        if relayed.via:
            children[relayed.via] = children.get(relayed.via, 0) + 1
    rows = []
    seen = set()
    for st in states:
        seen.add(st.name)
        lag: dict[str, int | None] = {}
        worst, other_epoch = 0, False
        for c, name, v in cats:
            held = tracker.held(st, c) if tracker is not None else None  # relay floors too
            if held is None or held.epoch != v.epoch:
                lag[name], other_epoch = None, True
            else:
                n = v.revision - held.revision
                n = n if n > 0 else 0
                lag[name] = n
                worst = n if n > worst else worst
        objects = tracker.held(st, Category.OBJECTS) if tracker is not None else None
        heard = heard_at(st)
        rows.append(
            NodeRow(
                name=st.name,
                via=st.via,
                address=st.address,
                state=node_state(st, now, other_epoch or worst > 0),
                revision=objects.revision if objects else None,
                lag=lag,
                max_lag=None if other_epoch else worst,
                heard_s=round(max(0.0, now - heard), 1) if heard else None,
                children=children.get(st.name, 0),
            )
        )
    for record in admin.list_nodes():  # registered, never seen by this registry's cascade
        if record.name not in seen:
            rows.append(NodeRow(record.name, "", "", "offline", None, {}, None, None, 0))
    # the ones to look at first; within a state, each relay followed by its nodes
    rows.sort(
        key=lambda r: (STATE_ORDER[r.state], -(r.max_lag or 0), r.via or r.name, r.via, r.name)
    )
    return rows


class Board:
    """The dashboard's reads for one registry: node rows computed at most once per
    :data:`ROWS_TTL_S` however many pages watch, and the sparklines' samples."""

    def __init__(self, admin: RegistryAdmin) -> None:
        self.admin = admin
        self.sampler = Sampler(admin)
        self._rows: tuple[float, list[NodeRow]] | None = None
        self._ttl = ROWS_TTL_S

    def rows(self) -> list[NodeRow]:
        now = time.monotonic()
        if self._rows is None or now - self._rows[0] >= self._ttl:
            rows = node_rows(self.admin)
            cost = time.monotonic() - now
            self._ttl = max(ROWS_TTL_S, cost * ROWS_COST_FACTOR)
            self._rows = (now, rows)
        return self._rows[1]

    def fleet(self) -> dict[str, Any]:
        return fleet(self.admin, self.sampler, self.rows())

    def tree_page(self, query: str = "", page: int = 1) -> dict[str, Any]:
        return tree_page(self.rows(), query, page)


def tree_page(
    rows: list[NodeRow], query: str = "", page: int = 1, per_page: int = TREE_PAGE
) -> dict[str, Any]:
    """One page of the cascade tree: relays with their nodes, filtered by a substring."""
    q = query.strip().lower()
    if q:
        rows = [r for r in rows if q in r.name.lower() or q in r.address.lower()]
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(1, page), pages)
    shown = rows[(page - 1) * per_page : page * per_page]
    return {
        "rows": [row_dict(r) for r in shown],
        "total": len(rows),
        "page": page,
        "pages": pages,
        "query": query,
    }


class Sampler:
    """Once a second while someone watches: the store revision and the slowest node's lag,
    for the change-rate and lag sparklines (bounded ring)."""

    def __init__(self, admin: RegistryAdmin) -> None:
        self.admin = admin
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=SAMPLES + 1)

    def sample(self, slowest_lag: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.samples and now - self.samples[-1][0] < 0.9:
            return
        self.samples.append((now, self.admin.core.revision, slowest_lag))

    def change_rates(self) -> list[float]:
        s = list(self.samples)
        return [round((b[1] - a[1]) / (b[0] - a[0]), 2) for a, b in itertools.pairwise(s)]

    def lags(self) -> list[int]:
        return [x[2] for x in list(self.samples)[1:]]


def fleet(admin: RegistryAdmin, sampler: Sampler, rows: list[NodeRow]) -> dict[str, Any]:
    status = admin.status()
    counts = dict.fromkeys(STATE_ORDER, 0)
    for r in rows:
        counts[r.state] += 1
    connected = [r for r in rows if r.state != "offline"]
    holding = {c.value: sum(1 for r in connected if r.lag.get(c.value) == 0) for c in Category}
    slowest = max((r.max_lag or 0 for r in connected), default=0)
    sampler.sample(slowest)
    rates = sampler.change_rates()
    return {
        "registry": {
            "epoch": status["epoch"],
            "revision": status["revision"],
            "health": "serving" if admin.core.ready.is_set() else "loading",
            "categories": {
                name: {
                    "revision": c["version"]["revision"],
                    "digest": c["digest"],
                    "holding": holding[name],
                }
                for name, c in status["categories"].items()
            },
            "counts": status["counts"],
        },
        "nodes": {"total": len(rows), "connected": len(connected), **counts},
        "change_rate": rates[-1] if rates else 0.0,
        "slowest_lag": slowest,
        "series": {"changes": rates, "lag": sampler.lags()},
        "attention": [row_dict(r) for r in rows if r.state != "current"][:ATTENTION_ROWS],
    }


# ---------------------------------------------------------------------------- objects


def endpoint_text(ep: EndpointF) -> str:
    try:
        return format_endpoint(Endpoint.from_endpointf(ep))
    except EndpointSyntaxError:
        return f"{ep.host}:{ep.port}"


def client_view(
    admin: RegistryAdmin, object_id: str, *, caller: str = "", set_id: str = "", station: str = ""
) -> dict[str, Any]:
    """What a TARS client would get from QueryF: by set, by station, by its IDC group
    (the caller's IP), else findObjectById4Any — the registry's own encoded answer."""
    answerer = admin.core.answerer
    if set_id:
        method, name, arg = FIND_IN_SAME_SET, QueryMethod.IN_SAME_SET, set_id
    elif station:
        method, name, arg = FIND_IN_SAME_STATION, QueryMethod.IN_SAME_STATION, station
    elif caller:
        method, name, arg = FIND_IN_SAME_GROUP, QueryMethod.IN_SAME_GROUP, ""
    else:
        method, name, arg = FIND_4ANY, QueryMethod.FIND_4ANY, ""
    try:
        ret, active, inactive = method.decode_result(answerer.answer(name, object_id, caller, arg))
    except (ValueError, DecodeError) as exc:
        return {"function": method.name, "ret": None, "error": str(exc)}
    return {
        "function": method.name,
        "ret": ret,
        "active": [endpoint_text(e) for e in active],
        "inactive": [endpoint_text(e) for e in inactive],
    }


def recent_changes(admin: RegistryAdmin, object_id: str) -> list[dict[str, Any]]:
    """The object's changes still in the cascade's change log, newest first."""
    log = admin.hub.change_log(Category.OBJECTS) if admin.hub is not None else None
    if log is None:
        return []
    prefix = object_id + "|"  # endpoint keys start with the object id (model.endpoint_key)
    out: list[dict[str, Any]] = []
    events: list[ChangeEvent] = log.since(log.floor)
    for ev in reversed(events):
        if not ev.key.startswith(prefix):
            continue
        record = ev.record
        if isinstance(record, EndpointRecord):
            what = record_name(record)
            detail = f"{record.setting_state.value}/{record.present_state.value}"
        else:
            host, _, port = ev.key[len(prefix) :].rpartition("|")
            what, detail = f'endpoint "tcp -h {host} -p {port}"', ""
        out.append(
            {
                "revision": ev.revision,
                "op": "removed" if ev.op is Op.DELETE else "put",
                "what": what,
                "detail": detail,
            }
        )
        if len(out) >= RECENT_CHANGES:
            break
    return out
