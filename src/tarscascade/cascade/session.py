"""One downstream's subscription at the upstream: the I/O shell around its sync state.

The decisions live in :class:`~tarscascade.cascade.sync.SessionSync` (sans-IO); this
shell writes what it says to the connection, runs the worker task that sends
snapshots and catch-ups (with back-pressure: at most about one buffer ahead of the
peer), counts, and drops the session when its connection is gone or it falls too far
behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from tarscascade.cascade.frames import ACK_NOW_FRAME, ALL_CATEGORIES, BEAT_NOW_FRAME, resync_frame
from tarscascade.cascade.rules import Plan
from tarscascade.cascade.snapshots import EncodedSnapshot, SnapshotFailed
from tarscascade.cascade.states import Held
from tarscascade.cascade.sync import CatchUp, Context, Push, PushKind, SessionSync
from tarscascade.cascade.tracker import NodeState
from tarscascade.cascade.upstream import Upstream
from tarscascade.catalog.digests import Scheme
from tarscascade.model import INCREMENTAL, Category, ChangeEvent, Version
from tarscascade.transport.servant import Connection
from tarscascade.wire.idl.cascadef import PROTOCOL_VERSION

log = logging.getLogger(__name__)


class SessionGone(Exception):
    """The session's connection closed or was dropped; its worker stops."""


class Session:
    def __init__(
        self,
        upstream: Upstream,
        name: str,
        conn: Connection,
        peer: tuple[str, int],
        state: NodeState,
        on_drop: Callable[[Session, str], None],
        *,
        protocol: int = PROTOCOL_VERSION,
        scheme: Scheme = Scheme.V2,
        compressed: bool = False,
        heartbeat_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.name = name
        self.conn = conn
        self.peer = peer
        self.state = state
        self.protocol = protocol
        #: the downstream reads compressed snapshot chunks
        self.compressed = compressed
        #: no heartbeat or ack for this long: the downstream is gone whatever TCP says
        self.heartbeat_timeout = heartbeat_timeout
        self.clock = clock
        self.last_heard = clock()
        self._on_drop = on_drop
        self.sync = SessionSync(upstream, clock, scheme=scheme)
        self.closed = False
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        #: (request body, what the answer depends on, the encoded answer) of the last
        #: heartbeat answered "up to date" everywhere (see CascadeHub._cached_heartbeat)
        self.cached_heartbeat: tuple[bytes, object, tuple[int, bytes, str]] | None = None

    # the sync state, as the hub and the tests look at it
    @property
    def sent(self) -> dict[Category, Version]:
        return self.sync.sent

    @property
    def sent_digest(self) -> dict[Category, int | None]:
        return self.sync.sent_digest

    @property
    def jobs(self) -> dict[Category, bool]:
        return self.sync.jobs

    @property
    def unconfirmed(self) -> dict[Category, float]:
        return self.sync.unconfirmed

    def wire(self, p: Plan) -> int:
        return p.wire(self.protocol)

    # ------------------------------------------------------------------ plans

    def subscribe(self, held: dict[Category, Held], context: Context) -> dict[Category, Plan]:
        plans = self.sync.subscribe(held, context)
        self._wake_if_jobs()
        return plans

    def heartbeat(self, held: dict[Category, Held], context: Context) -> dict[Category, Plan]:
        self.last_heard = self.clock()
        plans = self.sync.heartbeat(held, context)
        self._wake_if_jobs()
        return plans

    def check(self, cat: Category, h: Held | None) -> int:
        """A heartbeat's plan for one category, as sent on the wire."""
        p = self.sync.check(cat, h)
        self._wake_if_jobs()
        return self.wire(p)

    def heard(self) -> None:
        self.last_heard = self.clock()

    def ack(self, held: dict[Category, Held]) -> None:
        """An ack: checked (``SessionSync.check_acked``), then taken as ``acked``."""
        self.sync.check_acked(held)
        self._wake_if_jobs()
        self.acked(held)

    def acked(self, held: dict[Category, Held]) -> None:
        """The downstream said what it holds (ack or heartbeat): send the changes held
        for it while it was applying."""
        if self.sync.holding and not self.closed:
            for push in self.sync.acked_versions(held):
                if not self._send(push):
                    return
        else:
            acked = self.sync.acked
            for cat, h in held.items():
                acked[cat] = h.version

    def expired(self, now: float) -> bool:
        return self.heartbeat_timeout is not None and now - self.last_heard > self.heartbeat_timeout

    def request(self, cat: Category, *, snapshot: bool = False) -> None:
        self.sync.request(cat, snapshot=snapshot)
        self._wake.set()

    def reset(self, cat: Category) -> None:
        self.sync.reset(cat)
        self._wake_if_jobs()

    def _wake_if_jobs(self) -> None:
        if self.sync.jobs:
            self._wake.set()

    # ------------------------------------------------------------------ live pushes

    def on_delta(
        self,
        cat: Category,
        from_: Version,
        to: Version,
        events: Sequence[ChangeEvent],
        shared: Callable[[], list[bytes]],
        digest_as: Callable[[Scheme], int | None] | None = None,
    ) -> None:
        if self.closed:
            return
        holding = cat in self.sync.holding
        push = self.sync.publish(cat, from_, to, events, shared, digest_as)
        if push is not None:
            self._send(push)
        elif not holding and cat in self.sync.holding and self.upstream.ack_within_ms() > 0:
            # held for the ack of the push before, which was asked lazily: ask for it
            # now (a node done applying answers at once and the hold ends; a stream of
            # changes 20 ms apart is not held for the whole coalesce_hold)
            self.ask_ack()
        elif self.sync.pinned_events() > self.upstream.options.max_pinned_events:
            self.upstream.stats.slow_dropped += 1
            self.drop("too many changes pinned during its snapshot")
            return
        self._wake_if_jobs()

    def flush_due(self, now: float) -> None:
        """Holds that ran out without an ack: send what waited (the ack may be lost)."""
        if self.closed:
            return
        for cat in self.sync.due(now):
            push = self.sync.flush(cat)
            if push is not None and not self._send(push):
                return
        self._wake_if_jobs()

    def on_whole(self, snap: EncodedSnapshot) -> None:
        """A changed small category (groups/settings): send it whole."""
        if self.closed:
            return
        push = self.sync.whole(
            snap.category, snap.version, snap.digest_for(self.sync.scheme), snap.frames
        )
        if push is not None:
            self._send(push)

    def _send(self, push: Push) -> bool:
        """Write ``push``; False when the connection is gone (the session is dropped)."""
        for frame in push.frames:
            if not self.conn.push_frame(frame):
                self.drop("connection closed", level=logging.INFO)
                return False
        self.sync.pushed(push)
        stats = self.upstream.stats
        if push.kind is PushKind.WHOLE:
            stats.whole_updates_sent += 1
        else:
            stats.deltas_sent += len(push.frames)
            self.state.deltas_sent += len(push.frames)
            if push.kind is PushKind.CATCH_UP:
                stats.resumes += 1
        self._check_backlog()
        return True

    @property
    def backlog(self) -> int:
        """Bytes written to the connection that the peer has not taken yet."""
        return self.conn.write_buffer_size

    def _check_backlog(self) -> None:
        backlog, up = self.backlog, self.upstream
        if backlog > up.options.max_backlog_bytes:
            up.stats.slow_dropped += 1
            self.drop("backlog over the limit")
        elif backlog > up.fair_backlog:
            up.budget_check = True  # the hub checks the total at its next publish

    def ask_ack(self) -> None:
        """Ask the downstream to acknowledge what it holds now (an older one ignores it)."""
        if not self.closed:
            self.conn.push_frame(ACK_NOW_FRAME)

    def ask_heartbeat(self) -> None:
        """Ask the downstream to heartbeat now (an older one ignores it)."""
        if not self.closed:
            self.conn.push_frame(BEAT_NOW_FRAME)

    def drop(self, reason: str, level: int = logging.WARNING) -> None:
        """Tell the downstream to resync (best effort) and close its connection.

        ``level``: an ordinary disconnect found while writing is no warning."""
        if self.closed:
            return
        self.closed = True
        log.log(level, "dropping cascade session %s (%s:%s): %s", self.name, *self.peer, reason)
        self.conn.push_frame(resync_frame(ALL_CATEGORIES, reason))
        # abort, not close: the unsent backlog is what we are releasing
        self.conn.abort()
        self._on_drop(self, reason)

    # ------------------------------------------------------------------ worker

    async def run(self) -> None:
        """Serve jobs until cancelled or the connection is gone."""
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while not self.closed and (job := self.sync.take_job()) is not None:
                    cat, snapshot = job
                    try:
                        await self._sync(cat, snapshot, taken=True)
                    finally:
                        self.sync.job_done(cat)
        except SessionGone:
            return
        except Exception:  # a bug: make the node start over rather than wait forever
            log.exception("cascade session %s failed", self.name)
            self.drop("internal error")

    async def _sync(self, cat: Category, snapshot: bool, *, taken: bool = False) -> None:
        if not taken:  # called directly (tests): take the category as the worker does
            self.sync.jobs.pop(cat, None)
            self.sync.busy.add(cat)
            try:
                await self._sync(cat, snapshot, taken=True)
            finally:
                self.sync.job_done(cat)
            return
        up = self.upstream
        while True:
            if not snapshot:
                step = self.sync.catch_up(cat)
                if isinstance(step, Push):
                    if not self._send(step):
                        raise SessionGone
                    return
                if step is CatchUp.DONE:
                    return
            if cat in INCREMENTAL:
                # An older cached snapshot will do when the log still covers its version.
                snap = up.snapshots.get(cat, self.sync.acceptable_snapshot(cat))
            else:
                snap = up.snapshots.current(cat)
            async with up.snapshot_slots:
                self.sync.snapshot_started(cat, snap.version)
                try:
                    await self._send_snapshot(snap)
                except SnapshotFailed:
                    # The build was abandoned mid-way (the node drops the partial one
                    # when the next snapshot's chunk 0 arrives): start over.
                    self.sync.pinned.pop(cat, None)
                    snapshot = True
                    continue
            follow = self.sync.snapshot_written(
                cat, snap.version, snap.digest_for(self.sync.scheme)
            )
            if follow is not None:
                if not self._send(follow):
                    raise SessionGone
                return
            snapshot = False  # then catch up from the snapshot's version

    async def _send_snapshot(self, snap: EncodedSnapshot) -> None:
        up, conn = self.upstream, self.conn
        opts = up.options
        started = self.clock()
        sent_bytes = 0
        for seq in range(snap.total):
            frame = await snap.frame(seq, self.compressed)
            if self.closed or not conn.push_frame(frame):
                raise SessionGone
            if conn.write_buffer_size > up.fair_backlog:
                up.budget_check = True  # counted in the total budget, as live pushes are
            up.stats.snapshot_chunks_sent += 1
            up.stats.snapshot_bytes_sent += len(frame)
            sent_bytes += len(frame)
            try:
                async with asyncio.timeout(opts.stall_timeout):
                    await conn.drain()  # back-pressure: at most ~one buffer ahead of the peer
            except TimeoutError:
                up.stats.slow_dropped += 1
                self.drop(f"took no snapshot bytes for {opts.stall_timeout} s")
                raise SessionGone from None
            elapsed = self.clock() - started
            if elapsed > opts.snapshot_grace and sent_bytes < elapsed * opts.min_snapshot_rate:
                # A slot is shared: a reader this slow would hold it for ever.
                up.stats.slow_dropped += 1
                self.drop(
                    f"took {sent_bytes} snapshot bytes in {elapsed:.0f} s"
                    f" (under {opts.min_snapshot_rate} B/s)"
                )
                raise SessionGone
        up.stats.snapshots_sent += 1
        self.state.snapshots_sent += 1

    def __repr__(self) -> str:
        sent = " ".join(f"{c}={v}" for c, v in self.sent.items())
        return (
            f"<Session {self.name} {self.peer[0]}:{self.peer[1]} jobs={sorted(self.jobs)} {sent}>"
        )
