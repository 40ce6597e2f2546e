"""``CascadeClient``: the downstream reflector that keeps a replica catalog current.

List-then-watch, like a Kubernetes reflector: connect to the first reachable upstream
(in order, failing over with jittered backoff, also when the current one drops),
subscribe with the versions and digests the catalog holds, apply the pushed snapshots
and deltas (:class:`~tarscascade.cascade.replica.Replica`), acknowledge each applied
push one-way, and heartbeat every few seconds (jittered). A push that does not fit
makes it re-subscribe on the same connection, rate-limited by a backoff.

Versions never go back within a lineage: an upstream older than this replica answers
``BEHIND`` for those categories (or, if it is an old upstream, its older snapshot is
refused here). Then the client keeps serving its own replica, says it is stale, and
tries the next upstream; when every upstream is behind it stays with the first one and
waits for it to catch up. Every answer carries the upstream's freshness, from which
:meth:`freshness` derives this replica's (a relay passes it on to its downstreams).

One task (``run``) owns everything; per connection a TaskGroup runs the heartbeat, ack
and re-subscribe loops and ends when the connection does. :meth:`aclose` always closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tarscascade.cascade.freshness import Freshness
from tarscascade.cascade.progress import SyncProgress
from tarscascade.cascade.replica import AppliedHook, Outcome, Replica
from tarscascade.cascade.rules import DEFAULT_IDLE_HEARTBEAT
from tarscascade.cascade.states import floor_states, held_states
from tarscascade.catalog import Catalog
from tarscascade.errors import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    OverloadError,
    ServerError,
    TarsCascadeError,
)
from tarscascade.model import Category, Version
from tarscascade.transport import Backoff, Channel, ChannelOptions
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import (
    ACK,
    AUTH_FAILED,
    BAD_REQUEST,
    BEHIND,
    CASCADE_SERVANT,
    DIGEST128_PROTOCOL,
    HEARTBEAT,
    HOLD,
    NOT_SUBSCRIBED,
    OK,
    PROOF_INFO_KEY,
    PROTOCOL_VERSION,
    PUSH_ACK_NOW,
    PUSH_BEAT_NOW,
    RESUME,
    SUBSCRIBE,
    UP_TO_DATE,
    ZLIB_ENCODING,
    AckReq,
    CategoryPlanF,
    CategoryStateF,
    FreshnessF,
    HeartbeatReq,
    NodeAckF,
    SubscribeReq,
    SubscribeRsp,
    VersionF,
)
from tarscascade.wire.packets import STATUS_PUSH_FUNC, ResponsePacket

log = logging.getLogger(__name__)

#: A connection that served at least this long resets the reconnect backoff.
HEALTHY_AFTER_S = 5.0
#: After this many pushes of a category that did not fit, in a row, the client asks for
#: the category whole: whatever the disagreement, a snapshot ends it.
MAX_RESYNC_STREAK = 3


#: heartbeat answers' plans that let the interval grow (see ``_heartbeats``)
_SETTLED = frozenset({UP_TO_DATE})
_SETTLED_CHECKED = frozenset({UP_TO_DATE, RESUME})

#: pushes applied in one go from the backlog that came before a subscribe's answer
EARLY_SLICE = 64


@dataclass(slots=True)
class ClientOptions:
    heartbeat_interval: float = 3.0
    heartbeat_jitter: float = 0.2  # fraction: each interval is drawn from ±20 %
    #: while idle (every category up to date, nothing applied since the last heartbeat)
    #: the interval grows by half at each heartbeat up to this many times the base one,
    #: and drops back to the base at the first change — unless the upstream checks acks
    #: as it checks heartbeats (acks on demand), when changes keep the interval. The
    #: upstream is told the longest (subscribe's heartbeatMs), so its expiry of silent
    #: sessions stays right.
    heartbeat_idle_factor: float = 2.5
    #: the longest idle interval asked for (``SubscribeReq.idleHeartbeatMs``), used only
    #: as far as the upstream grants it: an upstream whose liveness does not wait for
    #: heartbeats (docs/protocol.md, *Idle heartbeats*); 0 = never ask
    heartbeat_idle_longest: float = DEFAULT_IDLE_HEARTBEAT
    connect_timeout: float = 3.0
    call_timeout: float = 10.0
    #: heartbeats in a row that may time out before the upstream counts as gone
    max_heartbeat_failures: int = 2
    reconnect_initial: float = 0.2
    reconnect_max: float = 10.0
    resubscribe_initial: float = 0.05
    resubscribe_max: float = 5.0
    max_frame: int = DEFAULT_MAX_FRAME
    #: a snapshot with no chunk for this long is dropped and asked again
    snapshot_stall_timeout: float = 60.0
    #: after a large snapshot, ``gc.freeze()`` the process (a node agent's choice: its
    #: replica is long-lived; saves the collector rescanning a million records)
    freeze_gc_after_snapshot: bool = False
    #: an ack waits this long for more news to go with it (many pushes applied, many
    #: descendants acknowledging) so a burst costs one ack, not one per push
    ack_coalesce: float = 0.01
    #: while staying with an upstream that is behind this replica, try the others again
    #: this often
    behind_retry: float = 10.0
    #: the protocol spoken (lower it to act as an older node: tests of rolling upgrades;
    #: below 3 the replica keeps and sends only the legacy digest's comparison)
    protocol: int = PROTOCOL_VERSION
    rng: random.Random = field(default_factory=random.Random)
    #: TLS to the upstreams (``TlsConfig.client_context()``; with a certificate: mutual)
    ssl: ssl.SSLContext | None = None


@dataclass(slots=True)
class ClientStats:
    connects: int = 0
    failovers: int = 0  # connected to another upstream than the previous one
    subscribes: int = 0
    resubscribes: int = 0
    refused: int = 0
    snapshots_received: int = 0
    snapshot_chunks_received: int = 0
    deltas_received: int = 0
    bookmarks_received: int = 0
    pushes_ignored: int = 0
    resyncs: int = 0  # pushes that did not fit, or the upstream asked
    heartbeats: int = 0
    heartbeat_failures: int = 0
    #: heartbeats whose answer did not come within the interval while the upstream kept
    #: sending (this node is behind reading its pushes): not failures, the next one goes
    heartbeats_late: int = 0
    acks_sent: int = 0
    #: acks not sent because nothing they would say had changed
    acks_skipped: int = 0
    #: upstreams left because they were behind this replica (or held a new lineage)
    behind_upstreams: int = 0
    #: snapshots refused because they were older than what this replica holds
    older_refused: int = 0
    #: the upstream's digest key was another than ours: every digest was recomputed
    rekeys: int = 0
    last_error: str = ""


class _Disconnected(Exception):
    """The connection is gone (or unusable): serve the next upstream."""


class _Refused(TarsCascadeError):
    """The upstream refused the subscription (credentials, bad request)."""


class _Behind(Exception):
    """The upstream is older than this replica: look for a newer one."""


def _reraise_unexpected(group: BaseExceptionGroup[BaseException]) -> None:
    """End of a connection's TaskGroup: a drop is normal; anything else goes up, unwrapped
    (so ``run`` tells a refusal from a bug)."""
    rest = group.subgroup(lambda e: not isinstance(e, _Disconnected | BaseExceptionGroup))
    while isinstance(rest, BaseExceptionGroup):
        first = rest.exceptions[0]
        if not isinstance(first, BaseExceptionGroup):
            raise first from group
        rest = first


def _states(held: list[CategoryStateF]) -> frozenset[tuple[str, str, int, int]]:
    return frozenset((h.category, h.version.epoch, h.version.revision, h.digest) for h in held)


def _compact(acks: list[NodeAckF], own: list[CategoryStateF]) -> list[NodeAckF]:
    """A descendant holding exactly what we hold is listed with no held states (protocol
    2: "as the sender"), so a heartbeat of 1,000 current leaves is names and addresses."""
    mine = _states(own)
    for ack in acks:
        if len(ack.held) == len(own) and _states(ack.held) == mine:
            ack.held = []
    return acks


class CascadeClient:
    def __init__(
        self,
        catalog: Catalog,
        upstreams: Sequence[tuple[str, int]],
        *,
        node_name: str,
        token: str = "",
        address: str = "",
        options: ClientOptions | None = None,
        on_applied: AppliedHook | None = None,
        descendants: Callable[[], list[NodeAckF]] | None = None,
        token_for: Callable[[tuple[str, int]], str] | None = None,
        proof_for: Callable[[tuple[str, int]], str] | None = None,
        on_refused: Callable[[list[str]], None] | None = None,
        on_rekey: Callable[[], None] | None = None,
    ) -> None:
        if not upstreams:
            raise ValueError("a cascade client needs at least one upstream")
        self.catalog = catalog
        self.upstreams = [(str(h), int(p)) for h, p in upstreams]
        self.node_name = node_name
        self.token = token
        #: the credential for one upstream (a node's secret for a registry, a proof for a
        #: relay: auth/identity.py); None = ``token`` everywhere
        self._token_for = token_for
        #: a fresh proof per heartbeat for an upstream that is a relay ("" = none)
        self._proof_for = proof_for
        #: the upstream refused to believe these descendants of ours (end their sessions)
        self._on_refused = on_refused
        #: the catalog was rekeyed with the upstream's digest key (a relay tells its own
        #: downstreams to subscribe again, and get that key)
        self.on_rekey = on_rekey
        self.address = address
        self.options = options or ClientOptions()
        self.stats = ClientStats()
        #: set once every category was received, or was already current
        self.synced = asyncio.Event()
        #: True while subscribed to an upstream
        self.connected = False
        self.upstream: tuple[str, int] | None = None
        #: the upstream's version per category, from its last subscribe or heartbeat answer
        self.upstream_versions: dict[Category, Version] = {}
        #: categories the upstream is older than this replica in (it keeps its own)
        self.ahead_of_upstream: set[Category] = set()
        #: categories whose new lineage the upstream's guard holds back (we keep ours)
        self.held_back: set[Category] = set()
        #: the upstream's own freshness, and when we last heard it (monotonic)
        self.upstream_freshness = Freshness(stale=True)
        self._heard_at: float | None = None
        #: the replica came from a disk copy no fresh upstream has confirmed yet
        self.from_disk = False
        #: when (monotonic) the replica was last seen fresh; None: never
        self._fresh_at: float | None = None
        self._replica = Replica(
            catalog,
            on_applied,
            freeze_gc=self.options.freeze_gc_after_snapshot,
            max_frame=self.options.max_frame,
        )
        self._descendants = descendants
        self._floor: Callable[[], dict[Category, Version]] | None = None
        self._on_ack_asked: Callable[[], object] | None = None
        #: pushes applied whose content only a heartbeat checks (an upstream older than
        #: acks on demand): the heartbeat interval grows only while this stands still
        self._applied_unchecked = 0
        #: this session's upstream checks acks' digests as heartbeats' (it asked for an
        #: ack's timing, which only such an upstream does)
        self._acks_checked = False
        #: how long this session's upstream lets us stay silent when idle (0 = its default)
        self._idle_granted = 0.0
        self._last_ack: tuple[dict[str, tuple[str, int, int]], tuple[object, ...]] | None = None
        self._rng = self.options.rng
        self._task: asyncio.Task[None] | None = None
        self._ack_wanted = asyncio.Event()
        #: when the next ack is due (monotonic; None: nothing to acknowledge)
        self._ack_due: float | None = None
        #: how soon the upstream wanted its last live change acknowledged, seconds
        self._upstream_within = 0.0
        self._resubscribe_wanted = asyncio.Event()
        #: pushes read while a subscribe's answer is still on its way to ``_subscribe``
        #: (the reader hands pushes over at once, the answer a loop turn later): applied
        #: once the answer is taken, so they are checked under the key it gives
        self._early_pushes: list[ResponsePacket] | None = None
        self._behind_found = asyncio.Event()
        self._heartbeat_wanted = asyncio.Event()
        self._progress = SyncProgress(catalog.version)
        #: re-subscribes per category since its last applied push (escalates to a snapshot)
        self._resync_streak: dict[Category, int] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run in a task this client owns (``aclose`` cancels and awaits it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"cascade-client:{self.node_name}"
            )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves: do not swallow that
        self.connected = False

    async def __aenter__(self) -> CascadeClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def request_ack(self) -> None:
        """Send an ack soon (a relay calls this when a descendant acknowledged): as soon
        as the upstream wanted its last change acknowledged."""
        self._want_ack(self._upstream_within)

    @property
    def upstream_wants_prompt_acks(self) -> bool:
        """The change being applied now is to be acknowledged at once (a relay asks its
        own downstreams alike when it republishes the change)."""
        return self._replica.ack_within <= 0

    def _want_ack(self, within: float, *, at_once: bool = False) -> None:
        """Acknowledge within ``within`` seconds (at least the ack coalescing; none when
        asked ``at_once``); a deadline earlier than the one pending replaces it."""
        wait = 0.0 if at_once else max(within, self.options.ack_coalesce)
        due = time.monotonic() + wait
        if self._ack_due is None or due < self._ack_due:
            self._ack_due = due
            self._ack_wanted.set()

    def request_heartbeat(self) -> None:
        """Heartbeat now (a relay calls this when a new node subscribed to it, so the
        upstream learns of every host at once)."""
        self._heartbeat_wanted.set()

    def set_descendant_floor(self, floor: Callable[[], dict[Category, Version]]) -> None:
        """A relay's acks carry this floor (a version all its descendants hold)."""
        self._floor = floor

    def set_on_ack_asked(self, hook: Callable[[], object]) -> None:
        """A relay passes its upstream's "acknowledge now" on to its own downstreams."""
        self._on_ack_asked = hook

    # ------------------------------------------------------------------ freshness

    @property
    def stale(self) -> bool:
        """The replica may be out of date: not subscribed, the upstream is itself stale,
        or it is older than this replica (or holds back a new lineage from it)."""
        return (
            not self.connected
            or self.upstream_freshness.stale
            or bool(self.ahead_of_upstream)
            or bool(self.held_back)
        )

    @property
    def in_sync(self) -> bool:
        """Subscribed to a fresh upstream and holding exactly what it holds."""
        if self.stale or not self.synced.is_set():
            return False
        return all(self.catalog.version(c) == self.upstream_versions.get(c) for c in Category)

    def stale_for(self) -> float:
        """Seconds this replica has been stale (0 while fresh; inf if never fresh)."""
        now = asyncio.get_running_loop().time()
        if not self.stale:
            self._fresh_at = now
            return 0.0
        return float("inf") if self._fresh_at is None else now - self._fresh_at

    def contact_age(self) -> float:
        """Seconds since this replica's data was last known current at the source."""
        if self._heard_at is None:
            return float("inf")
        elapsed = asyncio.get_running_loop().time() - self._heard_at
        return self.upstream_freshness.contact_age + max(0.0, elapsed)

    def freshness(self) -> Freshness:
        """What this replica says about itself to its own downstreams (as a relay)."""
        return Freshness(
            stale=self.stale or not self.synced.is_set(),
            contact_age=min(self.contact_age(), 86_400.0),
            from_disk=self.from_disk,
            confirmed_epoch=self.upstream_freshness.confirmed_epoch,
        )

    def _heard(self, f: FreshnessF) -> None:
        self.upstream_freshness = Freshness.from_wire(f)
        self._heard_at = asyncio.get_running_loop().time()

    def _note_plan(self, plan: Sequence[CategoryPlanF]) -> None:
        """Which categories this upstream is behind in / holds back (from its answer)."""
        was_held = bool(self.held_back)
        for p in plan:
            try:
                cat = Category(p.category)
            except ValueError:
                continue
            self.ahead_of_upstream.discard(cat)
            self.held_back.discard(cat)
            if p.action == BEHIND:
                self.ahead_of_upstream.add(cat)
            elif p.action == HOLD:
                self.held_back.add(cat)
        if self.held_back and not was_held:  # one line per state change, not per heartbeat
            log.warning(
                "cascade %s: the upstream's new lineage would take away most endpoints and is"
                " not confirmed: keeping the old one (%s)",
                self.node_name,
                ", ".join(sorted(self.held_back)),
                extra={"event": "guard_held", "node": self.node_name},
            )
        elif was_held and not self.held_back:
            log.info(
                "cascade %s: the held lineage was confirmed or withdrawn",
                self.node_name,
                extra={"event": "guard_released", "node": self.node_name},
            )
        if self.from_disk and self.synced.is_set() and not self.stale:
            self.from_disk = False  # a fresh upstream confirmed what we hold
        self.stale_for()  # note the moment if fresh

    @property
    def _behind(self) -> bool:
        return bool(self.ahead_of_upstream or self.held_back)

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Serve upstreams in order until cancelled.

        An upstream that is behind this replica is passed over while another one may be
        newer; when every reachable upstream was behind, the first of them is served
        (and the others tried again every ``behind_retry`` seconds).
        """
        opts = self.options
        backoff = Backoff(initial=opts.reconnect_initial, maximum=opts.reconnect_max, rng=self._rng)
        while True:
            healthy = False
            behind: list[tuple[str, int]] = []
            served = False
            for host, port in self.upstreams:
                outcome = await self._try(host, port, accept_behind=False)
                if outcome == "behind":
                    behind.append((host, port))
                    continue
                if outcome is None:
                    continue
                served, healthy = True, outcome == "healthy"
                break
            if not served and behind:
                host, port = behind[0]
                outcome = await self._try(host, port, accept_behind=True)
                served, healthy = outcome is not None, outcome == "healthy"
            if healthy:
                backoff.reset()
                delay = opts.reconnect_initial * self._rng.random()  # spread a herd
            else:
                delay = backoff.next_delay()
            await asyncio.sleep(delay)

    async def _try(self, host: str, port: int, *, accept_behind: bool) -> str | None:
        """Serve one upstream: None (unusable), "behind", "healthy" or "served"."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._serve(host, port, accept_behind=accept_behind)
        except _Behind:
            self.stats.behind_upstreams += 1
            log.info("cascade upstream %s:%s is behind %s", host, port, self.node_name)
            return "behind" if not accept_behind else "served"
        except _Refused as exc:
            self.stats.refused += 1
            self.stats.last_error = f"{host}:{port}: {exc}"
            log.warning("cascade upstream %s:%s refused %s: %s", host, port, self.node_name, exc)
            return None
        except (_Disconnected, TarsCascadeError, OSError) as exc:
            self.stats.last_error = f"{host}:{port}: {exc}"
            log.info("cascade upstream %s:%s: %s", host, port, exc)
            return None
        except Exception as exc:  # a bug: report it, keep the replica syncing
            self.stats.last_error = f"{host}:{port}: {exc!r}"
            log.exception("cascade session with %s:%s failed", host, port)
            return None
        return "healthy" if loop.time() - started >= HEALTHY_AFTER_S else "served"

    async def _serve(self, host: str, port: int, *, accept_behind: bool = True) -> None:
        """One connection: subscribe, then heartbeat/ack/re-subscribe until it drops."""
        opts = self.options
        channel = Channel(
            host,
            port,
            ChannelOptions(
                connect_timeout=opts.connect_timeout,
                call_timeout=opts.call_timeout,
                max_frame=opts.max_frame,
                ssl=opts.ssl,
            ),
            on_push=self._on_push,
        )
        self._behind_found.clear()
        try:
            await channel.connect()
            self.stats.connects += 1
            if self.upstream is not None and self.upstream != (host, port):
                self.stats.failovers += 1
            self.upstream = (host, port)
            early = await self._subscribe(channel, drain=False)
            self.connected = True
            if self._behind and not accept_behind and len(self.upstreams) > 1:
                raise _Behind
            try:
                async with asyncio.TaskGroup() as tg:
                    # the pushes that came before the answer, beside the heartbeats: a
                    # busy node's backlog must not keep its upstream from hearing it
                    tg.create_task(self._drain_early(early))
                    tg.create_task(self._heartbeats(channel))
                    tg.create_task(self._acks(channel))
                    tg.create_task(self._resubscriber(channel))
                    if len(self.upstreams) > 1:
                        tg.create_task(self._behind_watch(accept_behind))
                    await channel.wait_disconnected()
                    raise _Disconnected
            except BaseExceptionGroup as group:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Python 3.11's TaskGroup drops a cancellation that comes while it
                    # waits for its tasks after an error (the drop, raised in its body):
                    # we were cancelled (aclose), so do not go on reconnecting.
                    raise asyncio.CancelledError from group
                _reraise_unexpected(group)
        finally:
            self.connected = False
            self._early_pushes = None
            self._replica.reset()
            await channel.aclose()

    async def _behind_watch(self, accept_behind: bool) -> None:
        """Leave an upstream found behind this replica: at once while others may be
        newer, else every ``behind_retry`` seconds while it still is."""
        while True:
            if accept_behind:
                await asyncio.sleep(self.options.behind_retry)
                if self._behind:
                    raise _Behind
            else:
                await self._behind_found.wait()
                self._behind_found.clear()
                if self._behind:
                    raise _Behind

    async def _subscribe(self, channel: Channel, *, drain: bool = True) -> list[ResponsePacket]:
        """Subscribe on ``channel``; the pushes that came before the answer are applied
        (``drain``) or left to the caller's :meth:`_drain_early` (returned)."""
        self._replica.reset()  # leftovers of an earlier subscription never complete
        self._last_ack = None  # the (new) session has heard nothing from us yet
        self._acks_checked = False
        self._idle_granted = 0.0
        speaks = self.options.protocol
        if speaks < DIGEST128_PROTOCOL:
            self.catalog.enable_legacy()  # an old node always sends its 64-bit digest
        held = held_states(self.catalog)
        for st in held:
            if self._resync_streak.get(Category(st.category), 0) >= MAX_RESYNC_STREAK:
                # What we hold keeps not fitting what this upstream sends: ask it whole.
                st.version, st.digest, st.digest128 = VersionF(), 0, b""
        up = self.upstream
        token = self._token_for(up) if self._token_for is not None and up else self.token
        req = SubscribeReq(
            nodeName=self.node_name,
            token=token,
            held=held,
            address=self.address,
            protocol=speaks,
            heartbeatMs=round(self._longest_heartbeat() * 1000),
            idleHeartbeatMs=round(self.options.heartbeat_idle_longest * 1000),
            keyId=self.catalog.key_id if speaks >= DIGEST128_PROTOCOL else b"",
            encodings=[ZLIB_ENCODING],
        )
        mark = self._progress.mark()
        early: list[ResponsePacket] = []
        self._early_pushes = early
        try:
            await self._subscribe_call(channel, req, speaks, mark)
        except BaseException:
            if self._early_pushes is early:
                self._early_pushes = None
            raise
        if drain:
            await self._drain_early(early)
        return early

    async def _drain_early(self, early: list[ResponsePacket]) -> None:
        """Apply the pushes that came before the subscribe answer was taken, in the
        order they came, now under the answer's key. Pushes still arriving join the
        queue until it is empty. On a busy node the queue can be thousands of deltas:
        it yields to the loop every :data:`EARLY_SLICE` of them. A newer subscribe
        (its own queue) ends this one."""
        done = 0
        while self._early_pushes is early:
            if done == len(early):
                self._early_pushes = None  # no await since the check: nothing is lost
                return
            self._apply_push(early[done])
            done += 1
            if done == EARLY_SLICE:
                del early[:done]
                done = 0
                await asyncio.sleep(0)

    async def _subscribe_call(
        self, channel: Channel, req: SubscribeReq, speaks: int, mark: dict[Category, int]
    ) -> None:
        try:
            ret, rsp = await channel.call(CASCADE_SERVANT, SUBSCRIBE, req)
            if ret == BAD_REQUEST and speaks >= DIGEST128_PROTOCOL:
                # A protocol 2 upstream refuses protocol 3: speak 2 to it (the new
                # fields of the request are unknown tags it skips).
                req.protocol, req.keyId = DIGEST128_PROTOCOL - 1, b""
                ret, rsp = await channel.call(CASCADE_SERVANT, SUBSCRIBE, req)
        except (ConnectionClosedError, ConnectError) as exc:
            raise _Disconnected(f"lost while subscribing: {exc}") from exc
        self.stats.subscribes += 1
        if ret == AUTH_FAILED:
            raise _Refused("authentication failed")
        if ret != OK:
            raise _Refused(f"subscribe answered {ret}")
        self._digests_of_upstream(rsp)
        self._idle_granted = min(rsp.idleHeartbeatMs, 3_600_000) / 1000.0
        self._heard(rsp.freshness)
        self._note_versions(rsp.plan)
        if self._progress.plan(rsp.plan, mark):
            self.synced.set()
        self._note_plan(rsp.plan)

    def _digests_of_upstream(self, rsp: SubscribeRsp) -> None:
        """Digests as the upstream compares them, before any push is applied: its key
        (protocol 3: the sums are recomputed once, O(n), if ours was another), or the
        legacy sum (an older upstream: kept from now on, sent in every held state)."""
        both = rsp.protocol >= DIGEST128_PROTOCOL and self.options.protocol >= DIGEST128_PROTOCOL
        self._replica.digest128 = both  # a protocol 2 node ignores tag 7 of a chunk
        if both:
            if self.catalog.rekey(rsp.digestKey):
                self.stats.rekeys += 1
                if self.on_rekey is not None:
                    self.on_rekey()
        else:
            self.catalog.enable_legacy()

    def _note_versions(self, plan: Sequence[CategoryPlanF]) -> None:
        for p in plan:
            try:
                cat = Category(p.category)
            except ValueError:
                continue
            self.upstream_versions[cat] = Version(p.version.epoch, p.version.revision)

    # ------------------------------------------------------------------ pushes

    def _on_push(self, packet: ResponsePacket) -> None:
        if self._early_pushes is not None:
            self._early_pushes.append(packet)
            return
        self._apply_push(packet)

    def _apply_push(self, packet: ResponsePacket) -> None:
        func = packet.status.get(STATUS_PUSH_FUNC, "")
        if func == PUSH_ACK_NOW:
            # someone upstream waits for acks (or holds changes for this one's): these,
            # and a relay's floor, go at once, not after the usual coalescing
            self._upstream_within = 0.0
            self._acks_checked = True
            self._want_ack(0.0, at_once=True)
            if self._on_ack_asked is not None:
                self._on_ack_asked()
            return
        if func == PUSH_BEAT_NOW:
            self.request_heartbeat()  # the upstream's freshness changed: hear it now
            return
        result = self._replica.handle(func, packet.sBuffer)
        cat, stats = result.category, self.stats
        if result.outcome is Outcome.APPLIED and cat is not None:
            self._resync_streak.pop(cat, None)
            self.ahead_of_upstream.discard(cat)
            self.held_back.discard(cat)
            if result.snapshot:
                stats.snapshots_received += 1
                stats.snapshot_chunks_received += 1
            else:
                stats.deltas_received += 1
                stats.bookmarks_received += result.bookmark
            if self._progress.applied(cat, snapshot=result.snapshot):
                self.synced.set()
            within = self._replica.ack_within
            if not result.snapshot:
                self._upstream_within = within
                self._acks_checked |= within > 0
            if not self._acks_checked:
                self._applied_unchecked += 1  # an older upstream: let the heartbeat check
            self._want_ack(within)
        elif result.outcome is Outcome.PENDING:
            stats.snapshot_chunks_received += 1
        elif result.outcome is Outcome.IGNORED:
            stats.pushes_ignored += 1
        elif result.outcome is Outcome.OLDER and cat is not None:
            # an (older) upstream sent what would take us back: keep ours, look elsewhere
            stats.older_refused += 1
            self.ahead_of_upstream.add(cat)
            log.info("cascade %s: %s", self.node_name, result.reason)
            self._behind_found.set()
        elif result.outcome is Outcome.RESYNC:
            stats.resyncs += 1
            if cat is not None:
                self._resync_streak[cat] = self._resync_streak.get(cat, 0) + 1
            log.info("cascade %s: %s; re-subscribing", self.node_name, result.reason)
            self._resubscribe_wanted.set()

    # ------------------------------------------------------------------ loops

    def _descendant_acks(self) -> list[NodeAckF]:
        if self._descendants is None:
            return []
        try:
            return self._descendants()
        except Exception:
            log.exception("descendants callback failed")
            return []

    def _longest_heartbeat(self) -> float:
        """The longest interval between two heartbeats (the idle one), as announced."""
        opts = self.options
        return opts.heartbeat_interval * max(1.0, opts.heartbeat_idle_factor)

    def idle_heartbeat(self) -> float:
        """The longest interval between two heartbeats now: the announced one, or as
        long as the upstream granted (at most what was asked)."""
        asked = min(self._idle_granted, self.options.heartbeat_idle_longest)
        return max(self._longest_heartbeat(), asked)

    async def _heartbeats(self, channel: Channel) -> None:
        opts = self.options
        failures = 0
        interval = opts.heartbeat_interval
        while True:
            longest = self.idle_heartbeat()  # a re-subscribe may have changed the grant
            spread = 1.0 + opts.heartbeat_jitter * (2.0 * self._rng.random() - 1.0)
            applied = self._applied_unchecked
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval * spread):
                    await self._heartbeat_wanted.wait()
            wanted = self._heartbeat_wanted.is_set()
            self._heartbeat_wanted.clear()
            if self._replica.expire(opts.snapshot_stall_timeout):
                self._resubscribe_wanted.set()  # a snapshot stopped half-way
            held = held_states(self.catalog)
            up = self.upstream
            proof = self._proof_for(up) if self._proof_for is not None and up else ""
            req = HeartbeatReq(
                nodeName=self.node_name,
                held=held,
                descendants=_compact(self._descendant_acks(), held),
                info={PROOF_INFO_KEY: proof} if proof else {},
            )
            try:
                # Never wait longer than an interval for the answer, so the upstream
                # hears from us at least every two intervals however far behind our
                # reading is (the answer queues behind the pushes sent before it).
                timeout = min(opts.call_timeout, max(interval, opts.heartbeat_interval))
                ret, rsp = await channel.call(CASCADE_SERVANT, HEARTBEAT, req, timeout=timeout)
            except (ConnectionClosedError, ConnectError) as exc:
                raise _Disconnected from exc
            except (CallTimeoutError, OverloadError, ServerError) as exc:
                late = isinstance(exc, CallTimeoutError)
                if late and channel.received_within(opts.call_timeout):
                    self.stats.heartbeats_late += 1  # the upstream is there: we are slow
                    continue
                failures += 1
                interval = opts.heartbeat_interval
                self.stats.heartbeat_failures += 1
                if failures >= opts.max_heartbeat_failures:
                    log.warning("cascade upstream %s unresponsive: %s", self.upstream, exc)
                    raise _Disconnected from exc
                continue
            failures = 0
            self.stats.heartbeats += 1
            # pushes on their way (RESUME) are news an upstream that checks acks will
            # check when they are acknowledged: only an older one needs the heartbeat
            settled = _SETTLED_CHECKED if self._acks_checked else _SETTLED
            quiet = (
                ret == OK
                and not wanted
                and applied == self._applied_unchecked
                and all(p.action in settled for p in rsp.plan)
                and not self._replica.receiving
            )
            interval = min(longest, interval * 1.5) if quiet else opts.heartbeat_interval
            if ret == OK:
                if rsp.refused and self._on_refused is not None:
                    self._on_refused(list(rsp.refused))
                self._heard(rsp.freshness)
                self._note_versions(rsp.plan)
                if self._progress.replanned(rsp.plan):
                    self.synced.set()
                self._note_plan(rsp.plan)
                if self._behind:
                    self._behind_found.set()
            if ret == NOT_SUBSCRIBED:
                self._resubscribe_wanted.set()  # the upstream lost our session
            elif ret != OK:
                log.warning("cascade heartbeat answered %d", ret)

    async def _acks(self, channel: Channel) -> None:
        """One-way acks: what we hold and (a relay) the floor of what our descendants
        hold, sent only when that changed, when due: after a few ms of coalescing, or
        as late as the upstream asked (``DeltaF.ackWithinMs``: nobody waits for them)."""
        while True:
            await self._ack_wanted.wait()
            while True:  # sleep until due; an earlier deadline wakes and shortens it
                self._ack_wanted.clear()
                due = self._ack_due
                left = 0.0 if due is None else due - time.monotonic()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        await self._ack_wanted.wait()
                except TimeoutError:
                    break
            self._ack_due = None
            catalog = self.catalog
            states = {}
            for c in Category:
                v = catalog.version(c)
                states[str(c)] = (v.epoch, v.revision, catalog.digest(c))
            floor = floor_states(self._floor()) if self._floor is not None else []
            said = (states, tuple((f.category, f.version.epoch, f.version.revision) for f in floor))
            last = self._last_ack
            if last is not None and said == last:
                self.stats.acks_skipped += 1
                continue
            # Only the categories that moved: the upstream keeps what it was told of the
            # others (a quarter of the bytes and of its decoding, per push).
            held = [
                h
                for h in held_states(catalog)
                if last is None or last[0].get(h.category) != states[h.category]
            ]
            req = AckReq(nodeName=self.node_name, held=held, floor=floor)
            try:
                await channel.invoke(CASCADE_SERVANT, ACK.name, ACK.encode_args(req), oneway=True)
            except (ConnectionClosedError, ConnectError) as exc:
                raise _Disconnected from exc
            except (CallTimeoutError, OverloadError):
                continue  # the next push or heartbeat carries the same news
            self._last_ack = said
            self.stats.acks_sent += 1

    async def _resubscriber(self, channel: Channel) -> None:
        opts = self.options
        backoff = Backoff(
            initial=opts.resubscribe_initial, maximum=opts.resubscribe_max, rng=self._rng
        )
        loop = asyncio.get_running_loop()
        last = -1e9
        while True:
            await self._resubscribe_wanted.wait()
            # The first re-subscribe in a while goes at once; repeats back off, so an
            # upstream that keeps sending what does not fit is not hammered.
            if loop.time() - last > HEALTHY_AFTER_S * 6:
                backoff.reset()
            else:
                await asyncio.sleep(backoff.next_delay())
            self._resubscribe_wanted.clear()
            last = loop.time()
            self.stats.resubscribes += 1
            try:
                await self._subscribe(channel)
            except (CallTimeoutError, OverloadError, ServerError) as exc:
                log.info("cascade re-subscribe failed: %s", exc)
                self._resubscribe_wanted.set()

    def __repr__(self) -> str:
        where = f"{self.upstream[0]}:{self.upstream[1]}" if self.upstream else "-"
        state = "stale" if self.stale else "live"
        synced = "synced" if self.synced.is_set() else "syncing"
        return f"<CascadeClient {self.node_name} -> {where} {state} {synced}>"
