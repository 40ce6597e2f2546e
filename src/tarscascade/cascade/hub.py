"""``CascadeHub``: the upstream side of the cascade (``tars.tarsregistry.CascadeObj``).

Serves downstream nodes from a source :class:`Catalog` — the registry's, or a relay
node's replica. The owner calls :meth:`publish` after each change it applied to the
source and :meth:`reset` after replacing a category wholesale; the hub keeps the change
logs, plans each subscriber's sync, pushes deltas and snapshots, records what every
node acknowledged, and answers "has every node got revision r yet?".

Request handlers are synchronous, so a subscribe reply is written before the session's
first push; the per-session worker tasks, the ``on_subscribe`` callbacks and the
sweeper (sessions not heard from expire) are owned by the hub: :meth:`aclose` cancels
and awaits them. Every answer carries this upstream's freshness, so a stale relay's
downstreams know they are stale too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tarscascade.auth import credential_equal, parse_proof
from tarscascade.cascade.changelog import ChangeLog
from tarscascade.cascade.frames import delta_frames, version_f
from tarscascade.cascade.freshness import FRESH, Freshness
from tarscascade.cascade.rules import GUARDED, Plan, guard_holds
from tarscascade.cascade.session import Session
from tarscascade.cascade.states import (
    COUNT_KEYS,
    BadRequestError,
    Held,
    check_name,
    parse_address,
    parse_counts,
    parse_descendant_addresses,
    parse_descendants,
    parse_floor,
    parse_held,
    states_of,
)
from tarscascade.cascade.sync import Context
from tarscascade.cascade.tracker import LATE_FACTOR, AckTracker, NodeState, NodeView, vouched_at
from tarscascade.cascade.upstream import HubOptions, HubStats, Upstream
from tarscascade.catalog import Catalog
from tarscascade.catalog.digests import Scheme
from tarscascade.errors import ServerError
from tarscascade.model import INCREMENTAL, Category, ChangeEvent, Version
from tarscascade.transport import Current, InterfaceServant
from tarscascade.transport.servant import Connection, MaybeAwaitable, Result
from tarscascade.wire.idl.cascadef import (
    AUTH_FAILED,
    BAD_REQUEST,
    CASCADE_F,
    CASCADE_SERVANT,
    DIGEST128_PROTOCOL,
    HEARTBEAT,
    NOT_SUBSCRIBED,
    OK,
    OLDEST_PROTOCOL,
    PROOF_INFO_KEY,
    ZLIB_ENCODING,
    AckReq,
    CategoryPlanF,
    HeartbeatReq,
    HeartbeatRsp,
    NodeAckF,
    SubscribeReq,
    SubscribeRsp,
)
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import TARS_VERSION, Ret

log = logging.getLogger(__name__)

__all__ = ["CascadeHub", "HubOptions", "HubStats", "NodeInfo", "NodeState"]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node that subscribed (or a relay reported): its name and the address its own
    TARS port listens on; ``via`` names the relay that reported it ("" = direct)."""

    name: str
    host: str
    port: int
    peer: tuple[str, int]
    via: str = ""


#: how often the hub looks for sessions not heard from (and for a change of freshness)
SWEEP_INTERVAL_S = 1.0


def _said(f: Freshness) -> tuple[bool, bool, str]:
    """What of a freshness a downstream must hear soon (the contact age always moves)."""
    return f.stale, f.from_disk, f.confirmed_epoch


class CascadeHub:
    def __init__(
        self,
        catalog: Catalog,
        *,
        authenticate: Callable[[str, str], bool],
        options: HubOptions | None = None,
        on_subscribe: Callable[[NodeInfo], Awaitable[None]] | None = None,
        on_heartbeat: Callable[[str], None] | None = None,
        freshness: Callable[[], Freshness] | None = None,
        clock: Callable[[], float] | None = None,
        authorize_descendants: Callable[[str, Sequence[NodeAckF]], Collection[str]] | None = None,
        prompt_acks: Callable[[], bool] | None = None,
        on_lost: Callable[[], object] | None = None,
    ) -> None:
        self.catalog = catalog
        self.options = options or HubOptions()
        self._up = Upstream(catalog, self.options)
        self._up.ack_within_ms = self._ack_within_ms
        self.stats: HubStats = self._up.stats
        self.tracker = AckTracker(self.options.max_offline_nodes)
        self._authenticate = authenticate
        #: (relay, its descendants' acks) -> the names believed (None: all of them)
        self._authorize_descendants = authorize_descendants
        self._on_subscribe = on_subscribe
        self._on_heartbeat = on_heartbeat
        #: a node this hub knew connected is gone (its session ended, or its relay no
        #: longer lists it): a relay reports it upward at once, as the upstream's
        #: liveness vouches for the nodes it lists (``vouched``)
        self._on_lost = on_lost
        self._freshness = freshness or (lambda: FRESH)
        self._clock = clock or time.monotonic
        #: besides its own (tracker waiters, ``prompt_acks_for``): whether changes are
        #: wanted acknowledged at once now (a drain elsewhere in the tier; a relay's
        #: upstream that wants its own change acknowledged at once)
        self._prompt_acks = prompt_acks
        self._prompt_until = -math.inf
        self._sweeper: asyncio.Task[None] | None = None
        #: sessions holding changes for their ack, and the one task timing the holds
        self._held: dict[Session, None] = {}
        self._holds_wanted = asyncio.Event()
        self._holder: asyncio.Task[None] | None = None
        self._sessions: dict[str, Session] = {}
        self._by_conn: dict[int, Session] = {}  # id(conn): registered once per connection
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: the key id the sessions' digests compare under (``rekeyed``)
        self._key_id = catalog.key_id
        self.servant = _HubServant(self)

    # ------------------------------------------------------------------ source changes

    def publish(
        self,
        category: Category,
        from_version: Version,
        to_version: Version,
        events: Sequence[ChangeEvent],
    ) -> None:
        """The source catalog applied ``events`` taking ``category`` from -> to: push them."""
        cat = Category(category)
        if to_version != self.catalog.version(cat) or from_version.epoch != to_version.epoch:
            log.error(
                "publish of %s %s->%s does not match the catalog: resetting",
                cat,
                from_version,
                to_version,
            )
            self.reset(cat)
            return
        if cat not in INCREMENTAL:
            snap = self._up.snapshots.current(cat)
            for s in list(self._sessions.values()):
                s.on_whole(snap)
            return
        self._up.logs[cat].append(from_version, to_version, events)
        frames: list[bytes] = []
        opts = self.options
        within_ms = self._ack_within_ms()

        def shared() -> list[bytes]:  # encoded once, on first use, for every session
            if not frames:
                frames.extend(
                    delta_frames(
                        cat,
                        from_version,
                        to_version,
                        events,
                        opts.delta_events,
                        opts.max_frame,
                        within_ms,
                    )
                )
            return frames

        digests: dict[Scheme, int | None] = {}

        def digest_as(scheme: Scheme) -> int | None:  # one look-up per scheme, not per session
            if scheme not in digests:
                digests[scheme] = self.catalog.digest_as(scheme, cat)
            return digests[scheme]

        held = self._held
        for s in list(self._sessions.values()):
            s.on_delta(cat, from_version, to_version, events, shared, digest_as)
            if s.sync.holding:
                held[s] = None
        if held:
            self._holds_wanted.set()
            if self._holder is None:
                self._holder = self._spawn(self._flush_holds(), "cascade-holds")
        if self._up.budget_check:
            self._up.budget_check = False
            self._enforce_budget()

    def prompt_acks_for(self, seconds: float) -> None:
        """Changes published in the next ``seconds`` are to be acknowledged at once (a
        drain calls this before its write: it waits for the acks)."""
        self._prompt_until = max(self._prompt_until, self._clock() + seconds)

    def _ack_within_ms(self) -> int:
        """How soon the downstreams should acknowledge the change published now: at once
        (0) while anyone waits for acks, else within ``lazy_ack``."""
        lazy = self.options.lazy_ack
        if lazy <= 0 or self.tracker.waiting or self._clock() < self._prompt_until:
            return 0
        if self._prompt_acks is not None and self._prompt_acks():
            return 0
        return int(lazy * 1000)

    async def _flush_holds(self) -> None:
        """Send the changes held for sessions whose ack did not come in time (one task
        for all sessions: a burst to 1,000 slow nodes is one timer, not 1,000)."""
        hold = self.options.coalesce_hold
        while not self._closed:
            await self._holds_wanted.wait()
            self._holds_wanted.clear()
            while self._held:
                now = self._clock()
                due = min(min(t.sync.holding.values(), default=now) for t in self._held)
                left = due + hold - now
                if left > 0:
                    await asyncio.sleep(left)
                    now = self._clock()
                for s in list(self._held):
                    s.flush_due(now)
                    if not s.sync.holding or s.closed:
                        del self._held[s]

    def _sessions_changed(self) -> None:
        self._up.fair_backlog = self.options.max_total_backlog_bytes / max(1, len(self._sessions))

    def _enforce_budget(self) -> None:
        """Keep every session's unsent bytes together within the global budget: drop the
        largest backlogs first (those nodes resync when they are back)."""
        limit = self.options.max_total_backlog_bytes
        sessions = list(self._sessions.values())
        total = sum(s.backlog for s in sessions)
        if total <= limit:
            return
        for s in sorted(sessions, key=lambda x: x.backlog, reverse=True):
            if total <= limit:
                break
            total -= s.backlog
            self.stats.budget_dropped += 1
            s.drop(f"over the upstream's total backlog budget ({limit} bytes)")

    def reset(self, category: Category) -> None:
        """The source replaced ``category`` wholesale: the log restarts at its version."""
        cat = Category(category)
        version = self.catalog.version(cat)
        log_ = self._up.logs.get(cat)
        if log_ is not None:
            log_.reset(version)
        self._up.snapshots.invalidate(cat)
        del version
        for s in list(self._sessions.values()):
            s.reset(cat)  # a bookmark if the content is equal, else a snapshot

    def replica_applied(
        self,
        category: Category,
        before: Version | None,
        after: Version,
        events: list[ChangeEvent] | None,
    ) -> None:
        """A relay's feed: pass as the ``on_applied`` of the client filling this catalog.

        A snapshot (``events`` None) resets the category here; a delta or a bookmark is
        published as it came.
        """
        if events is None or before is None:
            self.reset(category)
        else:
            self.publish(category, before, after, events)

    def preload_log(self, category: Category, events: Sequence[ChangeEvent], since: int) -> int:
        """Older history for a restarted upstream: ``events`` are every change of
        ``category`` in ``(since, x]`` with ``x`` at least the log's floor."""
        log_ = self._up.logs.get(Category(category))
        return 0 if log_ is None else log_.preload(events, since)

    def change_log(self, category: Category) -> ChangeLog | None:
        return self._up.logs.get(Category(category))

    # ------------------------------------------------------------------ views

    def node_states(self) -> dict[str, NodeState]:
        """Every known node (direct and reported by relays), with its lag per category
        (copies: safe to keep)."""
        versions = self.catalog.versions()
        out: dict[str, NodeState] = {}
        for st in self.tracker.states():
            held, lag = self._held_and_lag(st, versions)
            out[st.name] = replace(st, held=held, digests=dict(st.digests), lag=lag)
        return out

    def vouched(self, bound: float) -> list[tuple[str, float]]:
        """Every connected node (its own session here, or reported by a relay) with how
        many seconds ago it is known to have been alive (:func:`~tarscascade.cascade.
        tracker.vouched_at`; ``bound``: the keepalive's detection bound), for the
        liveness rule: an idle node granted long heartbeats stays alive on its
        connection (docs/protocol.md, *Idle heartbeats*)."""
        now = self.tracker.clock()
        out = []
        for st in self.tracker.states():
            at = vouched_at(st, now, bound)
            if at is not None:
                out.append((st.name, now - at))
        return out

    def fleet_view(self) -> dict[str, NodeView]:
        """:meth:`node_states` for the fleet log's rounds: only what it compares, none
        of the copies (a round over 1,000 nodes costs about a third as much)."""
        versions = self.catalog.versions()
        no_lag: dict[Category, int | None] = dict.fromkeys(versions, 0)
        out: dict[str, NodeView] = {}
        for st in self.tracker.states():
            if not st.via and st.held == versions:
                # current, by its own report (most nodes, most rounds): its dict, and one
                # lag of zeros for all of them (a view is read at once, never kept)
                held, lag = st.held, no_lag
            else:
                held, lag = self._held_and_lag(st, versions)
            out[st.name] = NodeView(
                st.connected,
                st.via,
                st.address,
                held,
                lag,
                st.last_heartbeat,
                st.last_ack,
                st.quiet_s,
            )
        return out

    def _held_and_lag(
        self, st: NodeState, versions: dict[Category, Version]
    ) -> tuple[dict[Category, Version], dict[Category, int | None]]:
        """What a node holds per category and how many revisions it is behind (None: on
        another epoch, or nothing held)."""
        lag: dict[Category, int | None] = {}
        held: dict[Category, Version] = {}
        tracker_held = self.tracker.held
        for cat, v in versions.items():
            h = tracker_held(st, cat)
            if h is not None:
                held[cat] = h
                lag[cat] = max(0, v.revision - h.revision) if h.epoch == v.epoch else None
            else:
                lag[cat] = None
        return held, lag

    def descendant_acks(self) -> list[NodeAckF]:
        """What this hub's connected nodes hold, for a relay's heartbeat upstream (with
        their addresses, so the registry has a record of every host)."""
        out = []
        tracker = self.tracker
        for st in tracker.states():
            if st.connected:
                held = {}
                for c in st.held:
                    v = tracker.held(st, c)
                    if v is not None:
                        held[c] = Held(v, st.digests.get(c, 0))
                out.append(
                    NodeAckF(
                        nodeName=st.name,
                        held=states_of(held),
                        address=st.address,
                        proof=st.proof,
                    )
                )
        return out

    def descendant_floor(self) -> dict[Category, Version]:
        """A version per category every connected downstream holds (for a relay's acks)."""
        return self.tracker.floor()

    def freshness(self) -> Freshness:
        """What this upstream says about itself in every answer."""
        return self._freshness()

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    async def wait_acked(
        self,
        category: Category,
        version: Version,
        nodes: Collection[str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[float, list[str]]:
        """Wait until every connected (or every given) node acked ``version`` or later.

        Returns ``(elapsed seconds, nodes still behind)`` — empty when all got there.
        Nodes behind are asked to acknowledge at once: a change published while nobody
        waited was sent with a lazy ``ackWithinMs``.
        """
        if self.options.lazy_ack > 0:
            tracker = self.tracker
            names = tracker.connected_names() if nodes is None else nodes
            self.ask_acks_now(tracker.behind(Category(category), version, names))
        return await self.tracker.wait(category, version, nodes, timeout)

    def ask_acks_now(self, names: Collection[str] | None = None) -> int:
        """Ask these nodes (default: every session here) to acknowledge what they hold
        now; for a node behind a relay, its relay (which asks its own downstreams).
        Returns the sessions asked."""
        if names is None:
            targets = list(self._sessions.values())
        else:
            found: dict[Session, None] = {}
            for name in names:
                s = self._sessions.get(name)
                if s is None and (st := self.tracker.get(name)) is not None and st.via:
                    s = self._sessions.get(st.via)
                if s is not None:
                    found[s] = None
            targets = list(found)
        for s in targets:
            s.ask_ack()
        return len(targets)

    # ------------------------------------------------------------------ requests

    def _context(self, held: dict[Category, Held], counts: dict[Category, int]) -> Context:
        fresh = self._freshness()
        up_v = self._up.version(GUARDED)
        hold = guard_holds(
            up_v.epoch,
            self.catalog.counts()[COUNT_KEYS[GUARDED]],
            held.get(GUARDED),
            counts.get(GUARDED, -1),
            confirmed_epoch=fresh.confirmed_epoch,
            max_loss=self.options.guard_max_loss,
        )
        return Context(hold_lineage=hold, stale=fresh.stale)

    def _plans(self, s: Session, plans: dict[Category, Plan]) -> list[CategoryPlanF]:
        out = []
        for cat in Category:
            p = plans[cat]
            if p is Plan.BEHIND:
                self.stats.behind_plans += 1
            elif p is Plan.HOLD:
                self.stats.held_plans += 1
            out.append(CategoryPlanF(str(cat), s.wire(p), version_f(self._up.version(cat))))
        return out

    def _subscribe(self, current: Current, req: SubscribeReq) -> tuple[int, SubscribeRsp]:
        try:
            name = check_name(req.nodeName)
            speaks = self.options.max_protocol
            if not OLDEST_PROTOCOL <= req.protocol <= speaks:
                raise BadRequestError(
                    f"protocol {req.protocol}, this upstream speaks {OLDEST_PROTOCOL}..{speaks}"
                )
            scheme = self._scheme(req)
            held, counts = parse_held(req.held, scheme), parse_counts(req.held)
            host, port = parse_address(req.address, current.peer[0])
            for what, ms in (("", req.heartbeatMs), ("idle ", req.idleHeartbeatMs)):
                if not 0 <= ms <= 3_600_000:
                    raise BadRequestError(f"{what}heartbeat interval {ms} ms")
        except BadRequestError as exc:
            self.stats.bad_requests += 1
            log.info("bad subscribe from %s:%s: %s", *current.peer, exc)
            return BAD_REQUEST, SubscribeRsp()
        # mutual TLS: the client certificate names the node (it wins over any token)
        cert = getattr(current.conn, "peer_cert_name", None)
        ok = (
            credential_equal(cert, name)
            if cert is not None
            else self._authenticate(name, req.token)
        )
        if not ok:
            self.stats.auth_failures += 1
            log.warning("cascade auth failed for %r from %s:%s", name, *current.peer)
            return AUTH_FAILED, SubscribeRsp()
        conn = current.conn
        old = self._sessions.get(name)
        if self._closed or (old is None and len(self._sessions) >= self.options.max_sessions):
            raise ServerError(Ret.OVERLOAD, "no more cascade sessions here")
        self.stats.subscribes += 1
        if old is not None:
            self.stats.resubscribes += 1
            self._end(old, abort=old.conn is not conn)  # one session per node name
        previous = self._by_conn.get(id(conn))
        if previous is not None and previous is not old:
            self._end(previous, abort=False)  # this connection now speaks for another name
        state = self.tracker.connected(name, f"{host}:{port}")
        # a proof (never a secret or the shared token) is passed up with this node
        state.proof = req.token if parse_proof(req.token) is not None else ""
        self.tracker.record(name, held, heartbeat=True)
        opts = self.options
        announced = req.heartbeatMs / 1000.0 or opts.default_heartbeat_interval
        granted = min(req.idleHeartbeatMs / 1000.0, opts.idle_heartbeat_grant)
        state.quiet_s = max(announced, granted)
        # missed heartbeats at the announced pace, plus the silence the grant adds: a
        # peer that vanished behind a proxy (no keepalive can see it) ends in bounded time
        timeout = opts.missed_heartbeats * announced * LATE_FACTOR + 1.0
        timeout += max(0.0, granted - announced) * LATE_FACTOR
        s = Session(
            self._up,
            name,
            conn,
            current.peer,
            state,
            self._dropped,
            protocol=req.protocol,
            scheme=scheme,
            compressed=ZLIB_ENCODING in req.encodings,
            heartbeat_timeout=timeout,
            clock=self._clock,
        )
        fresh = self._freshness()
        plan = self._plans(s, s.subscribe(held, self._context(held, counts)))
        self._sessions[name] = s
        self._sessions_changed()
        if id(conn) not in self._by_conn:
            self._by_conn[id(conn)] = s
            conn.add_close_callback(lambda c=conn: self._conn_closed(c))  # type: ignore[misc]
        else:
            self._by_conn[id(conn)] = s
        if not s.closed:
            s.task = self._spawn(s.run(), f"cascade-session:{name}")
        if self._sweeper is None:
            self._sweeper = self._spawn(self._sweep(), "cascade-sweeper")
        if self._on_subscribe is not None:
            self._spawn(
                self._on_subscribe(NodeInfo(name, host, port, current.peer)), "on-subscribe"
            )
        rsp = SubscribeRsp(plan=plan, freshness=fresh.to_wire())
        if granted > 0:
            rsp.idleHeartbeatMs = round(granted * 1000)
        if scheme is not Scheme.LEGACY:
            # the tier's digest key, to an authenticated downstream only (never logged)
            rsp.protocol, rsp.digestKey = speaks, self.catalog.digest_key
        return OK, rsp

    def _scheme(self, req: SubscribeReq) -> Scheme:
        """Which digests of this downstream compare with ours (docs/protocol.md,
        "Versions"): the legacy ones from a protocol 1/2 peer (or when we act as one),
        the 128-bit ones under the same key, none under another key (until it rekeys
        with the key this answer gives it)."""
        if min(req.protocol, self.options.max_protocol) < DIGEST128_PROTOCOL:
            self.catalog.enable_legacy()  # O(n) once; kept from then on
            return Scheme.LEGACY
        return Scheme.V2 if req.keyId == self.catalog.key_id else Scheme.NONE

    def _cached_heartbeat(self, current: Current) -> Result | None:
        """The answer to a heartbeat that says exactly what the session's previous one
        said, while nothing changed here since: the same answer, at the cost of a
        dictionary lookup and a bytes comparison (most heartbeats, once a fleet is idle).

        Only for a node without descendants (a relay's list moves the tracker) whose
        previous answer was "up to date" in every category, and only while this
        upstream's versions and freshness are what they were then.
        """
        s = self._by_conn.get(id(current.conn))
        if s is None or s.closed or s.cached_heartbeat is None:
            return None
        body, key, answer = s.cached_heartbeat
        if body != current.request.sBuffer or key != self._heartbeat_key(s):
            return None
        self.stats.heartbeats += 1
        self.stats.heartbeats_cached += 1
        s.heard()
        self.tracker.touch(s.name)
        if self._on_heartbeat is not None:
            try:
                self._on_heartbeat(s.name)
            except Exception:
                log.exception("on_heartbeat callback failed")
        return answer

    def _heartbeat_key(self, s: Session) -> tuple[object, ...] | None:
        """What a cached heartbeat answer depends on; None: do not cache."""
        if not s.sync.settled():
            return None
        cat = self.catalog
        return (cat.versions(), [s.sync.digest_of(c) for c in Category], self._freshness())

    def _session_of(self, current: Current, name: str) -> Session | None:
        s = self._sessions.get(name)
        if s is None or s.conn is not current.conn or s.closed:
            return None
        return s

    def _heartbeat(self, current: Current, req: HeartbeatReq) -> tuple[int, HeartbeatRsp]:
        s = self._session_of(current, req.nodeName)
        if s is None:
            return NOT_SUBSCRIBED, HeartbeatRsp()
        proof = req.info.get(PROOF_INFO_KEY, "")
        if proof and parse_proof(proof) is not None:
            s.state.proof = proof
        try:
            held, counts = parse_held(req.held, s.sync.scheme), parse_counts(req.held)
            if len(req.descendants) > self.options.max_descendants:
                raise BadRequestError(
                    f"{len(req.descendants)} descendants, at most {self.options.max_descendants}"
                )
            acks, refused = self._believed(s.name, req.descendants)
            descendants = parse_descendants(acks, self.options.max_descendants)
            addresses = parse_descendant_addresses(acks)
        except BadRequestError as exc:
            self.stats.bad_requests += 1
            log.info("bad heartbeat from %s: %s", s.name, exc)
            return BAD_REQUEST, HeartbeatRsp()
        if s.protocol > OLDEST_PROTOCOL:  # no held states: "holds what the relay holds"
            for name, h in descendants.items():
                if not h:
                    descendants[name] = held
        self.stats.heartbeats += 1
        self.stats.descendant_states += len(descendants)
        s.acked(held)
        self.tracker.record(s.name, held, heartbeat=True)
        forgotten = self.tracker.forgotten
        fresh = self.tracker.record_descendants(
            s.name,
            descendants,
            heartbeat=True,
            addresses=addresses,
            proofs={a.nodeName: a.proof for a in acks if a.proof},
        )
        if self.tracker.forgotten != forgotten:
            self._lost()
        plans = s.heartbeat(held, self._context(held, counts))
        plan = self._plans(s, plans)
        self._heard(s.name, descendants)
        if fresh and self._on_subscribe is not None:
            for name in fresh:
                self._register_descendant(s, name, addresses.get(name, ""))
        rsp = HeartbeatRsp(plan=plan, freshness=self._freshness().to_wire(), refused=refused)
        s.cached_heartbeat = None
        if not descendants and not refused and all(p is Plan.UP_TO_DATE for p in plans.values()):
            key = self._heartbeat_key(s)
            if key is not None:
                s.cached_heartbeat = (current.request.sBuffer, key, _encode_answer(HEARTBEAT, rsp))
        return OK, rsp

    def _believed(self, relay: str, acks: Sequence[NodeAckF]) -> tuple[list[NodeAckF], list[str]]:
        """The descendants of ``relay`` to record, and those refused. A name with its
        own session here is never the relay's to speak for (it would keep a node that
        left alive); the rest go through ``authorize_descendants``."""
        if not acks:
            return [], []
        own = [a for a in acks if a.nodeName not in self._sessions]
        if self._authorize_descendants is None:
            return own, []
        ok = self._authorize_descendants(relay, own)
        kept = [a for a in own if a.nodeName in ok]
        refused = [a.nodeName for a in own if a.nodeName not in ok]
        return kept, refused

    def rekeyed(self) -> bool:
        """Call after the catalog's digest key may have changed (a relay took its
        upstream's key, a registry reloaded a restored database). When it did, every
        session compares digests under the old key and every cached snapshot carries an
        old-key digest: the snapshots are dropped and the sessions end, so their nodes
        subscribe again and get the new key with their answer (comparable digests at
        once, instead of a repair round per category). False: the key is the same."""
        if self.catalog.key_id == self._key_id:
            return False
        self._key_id = self.catalog.key_id
        for cat in Category:
            self._up.snapshots.invalidate(cat)
        sessions = list(self._sessions.values())
        for s in sessions:
            self._end(s, abort=True)
        self.stats.rekey_ended += len(sessions)
        if sessions:
            log.info("digest key changed: %d downstream sessions end to take it", len(sessions))
        return True

    def end_session(self, name: str) -> bool:
        """End ``name``'s session (its credential was revoked); False when it has none."""
        s = self._sessions.get(name)
        if s is None:
            return False
        self._end(s, abort=True)
        return True

    def _register_descendant(self, relay: Session, name: str, address: str) -> None:
        """A node a relay reported for the first time (or at a new address): register it
        as if it had subscribed here, so liveness and drain know every host."""
        assert self._on_subscribe is not None
        try:
            host, port = parse_address(address, "")
        except BadRequestError:
            host, port = "", 0
        info = NodeInfo(name, host, port, relay.peer, via=relay.name)
        self._spawn(self._on_subscribe(info), "on-subscribe")

    def _ack(self, current: Current, req: AckReq) -> None:
        s = self._session_of(current, req.nodeName)
        if s is None:
            return
        try:
            held = parse_held(req.held, s.sync.scheme)
            acks = req.descendants
            if acks and len(acks) <= self.options.max_descendants:
                acks, _refused = self._believed(s.name, acks)
            descendants = parse_descendants(acks, self.options.max_descendants)
            floor = parse_floor(req.floor)
        except BadRequestError as exc:
            self.stats.bad_requests += 1
            log.info("bad ack from %s: %s", s.name, exc)
            return
        self.stats.acks += 1
        self.stats.descendant_states += len(descendants)
        s.heard()
        s.ack(held)
        self.tracker.record(s.name, held, heartbeat=False)
        if descendants:  # a protocol 1 relay lists them in acks too (no floor)
            self.tracker.record_descendants(s.name, descendants, heartbeat=False)
        if s.protocol > OLDEST_PROTOCOL:
            self.tracker.record_floor(s.name, floor)
        self._heard(s.name, descendants)

    async def _sweep(self) -> None:
        """End sessions not heard from for their heartbeat timeout (a peer gone without
        FIN or RST keeps its connection for ever otherwise); when this hub's freshness
        changed, ask every session to heartbeat (idle ones may be granted long
        intervals: they hear of it now, not up to one of them later)."""
        said = _said(self._freshness())
        while not self._closed:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now_said = _said(self._freshness())
            if now_said != said:
                said = now_said
                self.stats.beats_asked += 1
                for s in list(self._sessions.values()):
                    s.ask_heartbeat()
            now = self._clock()
            for s in list(self._sessions.values()):
                if s.expired(now):
                    self.stats.expired += 1
                    s.drop(
                        f"not heard from for {now - s.last_heard:.1f} s"
                        f" (timeout {s.heartbeat_timeout:.1f} s)",
                        level=logging.INFO,
                    )

    def _heard(self, name: str, descendants: dict[str, dict[Category, Held]]) -> None:
        if self._on_heartbeat is None:
            return
        for n in (name, *descendants):
            try:
                self._on_heartbeat(n)
            except Exception:
                log.exception("on_heartbeat callback failed")

    # ------------------------------------------------------------------ sessions

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cascade hub task %s failed", task.get_name(), exc_info=task.exception())

    def _end(self, s: Session, *, abort: bool) -> None:
        s.closed = True
        if s.task is not None:
            s.task.cancel()
        if self._sessions.get(s.name) is s:
            del self._sessions[s.name]
            self._sessions_changed()
            self.tracker.disconnected(s.name)
            if not self._closed:
                self._lost()
        if abort:
            s.conn.abort()

    def _lost(self) -> None:
        if self._on_lost is not None:
            try:
                self._on_lost()
            except Exception:
                log.exception("on_lost callback failed")

    def _dropped(self, s: Session, reason: str) -> None:
        self._end(s, abort=False)  # the session already closed its connection

    def _conn_closed(self, conn: Connection) -> None:
        s = self._by_conn.pop(id(conn), None)
        if s is not None:
            self._end(s, abort=False)

    async def aclose(self) -> None:
        """End every session (their connections close) and await every hub task."""
        self._closed = True
        for s in list(self._sessions.values()):
            self._end(s, abort=True)
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._up.snapshots.aclose()

    def __repr__(self) -> str:
        return (
            f"<CascadeHub {len(self._sessions)} sessions, {self.stats.snapshots_sent} snapshots,"
            f" {self.stats.deltas_sent} deltas sent>"
        )


def _encode_answer(method: Method, rsp: HeartbeatRsp) -> Result:
    return (Ret.SUCCESS, method.encode_result(OK, rsp), "")


class _HubServant(InterfaceServant):
    """CascadeObj: the IDL methods, and a short way for unchanged heartbeats."""

    def __init__(self, hub: CascadeHub) -> None:
        super().__init__(CASCADE_SERVANT, CASCADE_F, _CascadeImpl(hub))
        self._hub = hub

    def dispatch(self, current: Current) -> MaybeAwaitable:
        req = current.request
        if req.sFuncName == HEARTBEAT.name and req.iVersion == TARS_VERSION:
            cached = self._hub._cached_heartbeat(current)
            if cached is not None:
                return cached
        return super().dispatch(current)


class _CascadeImpl:
    """The CascadeF methods, bound by :class:`InterfaceServant` (kept off the hub's API)."""

    def __init__(self, hub: CascadeHub) -> None:
        self._hub = hub

    def subscribe(self, current: Current, req: SubscribeReq) -> tuple[int, SubscribeRsp]:
        return self._hub._subscribe(current, req)

    def heartbeat(self, current: Current, req: HeartbeatReq) -> tuple[int, HeartbeatRsp]:
        return self._hub._heartbeat(current, req)

    def ack(self, current: Current, req: AckReq) -> None:
        self._hub._ack(current, req)
