"""One downstream's subscription at the upstream: what it was sent, and its sync worker.

Per category a session knows ``sent``: the version the downstream will hold once it
has applied everything written to it (TCP keeps pushes in order, and a downstream that
rejects a push re-subscribes, which replaces the session). Live changes go straight
out from ``on_delta`` / ``on_whole`` when ``sent`` is where they start; anything else
(initial sync, a gap, a resync) is a *job* for the worker task, which sends a delta
from the change log, a bookmark, or a snapshot followed by a catch-up delta. While a
category has a job, live changes of it skip the session: the worker catches up from
the log afterwards, so a delta never overtakes the snapshot it follows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial

from tarscascade.cascade.frames import ALL_CATEGORIES, delta_frames, resync_frame
from tarscascade.cascade.snapshots import EncodedSnapshot, SnapshotFailed
from tarscascade.cascade.states import Held
from tarscascade.cascade.tracker import NodeState
from tarscascade.cascade.upstream import SYNC_ORDER, Upstream
from tarscascade.catalog import NO_VERSION
from tarscascade.model import INCREMENTAL, Category, ChangeEvent, Version
from tarscascade.transport.servant import Connection
from tarscascade.wire.idl.cascadef import RESUME, SNAPSHOT, UP_TO_DATE

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
    ) -> None:
        self.upstream = upstream
        self.name = name
        self.conn = conn
        self.peer = peer
        self.state = state
        self._on_drop = on_drop
        self.sent: dict[Category, Version] = {}
        #: the digest the downstream has at ``sent`` (None: unknown)
        self.sent_digest: dict[Category, int | None] = {}
        #: categories the worker must sync -> whether only a snapshot will do
        self.jobs: dict[Category, bool] = {}
        self.busy: set[Category] = set()
        #: categories whose snapshot was written but not yet seen held by the downstream,
        #: and when (monotonic): until then an older version in a heartbeat is expected
        self.unconfirmed: dict[Category, float] = {}
        self.closed = False
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ scheduling

    def request(self, cat: Category, *, snapshot: bool = False) -> None:
        """Ask the worker to bring ``cat`` up to date (with a snapshot if ``snapshot``)."""
        self.jobs[cat] = self.jobs.get(cat, False) or snapshot
        self._wake.set()

    def expects(self, cat: Category) -> bool:
        """Whether the worker owns ``cat`` right now (live pushes must skip it)."""
        return cat in self.busy or cat in self.jobs

    def check(self, cat: Category, h: Held | None) -> int:
        """A heartbeat's plan for ``cat``: compare what the node holds with what it was
        sent, and repair what does not fit."""
        up = self.upstream
        if self.expects(cat):
            return SNAPSHOT if self.jobs.get(cat) else RESUME
        held = h.version if h else NO_VERSION
        digest = h.digest if h else None
        sent, sent_digest = self.sent.get(cat, NO_VERSION), self.sent_digest.get(cat)
        since = self.unconfirmed.get(cat)
        if since is not None:
            if held != sent and time.monotonic() - since < up.options.snapshot_confirm_timeout:
                # A heartbeat can overtake a snapshot still in the pipe or being applied
                # (a large one takes seconds): it is on its way, not lost. A downstream
                # that rejects it re-subscribes; one that stalls gives up on its own.
                return RESUME
            del self.unconfirmed[cat]
        if held == sent:
            if sent_digest is not None and digest != sent_digest:
                # Same version, other content: the replica was changed behind our back.
                up.stats.resyncs += 1
                self.request(cat, snapshot=True)
                return SNAPSHOT
            if sent == up.version(cat) or not up.version(cat).epoch:
                return UP_TO_DATE
        elif held.epoch == sent.epoch and held.revision < sent.revision:
            return RESUME  # our pushes are on their way
        # The node holds something we did not send it: start again from what it says.
        self.sent[cat], self.sent_digest[cat] = held, digest
        action = up.plan(cat, held if h else None, digest)
        if action != UP_TO_DATE:
            up.stats.resyncs += 1
            self.request(cat, snapshot=action == SNAPSHOT)
        return action

    # ------------------------------------------------------------------ live pushes

    def on_delta(
        self,
        cat: Category,
        from_: Version,
        to: Version,
        events: Sequence[ChangeEvent],
        shared: Callable[[], list[bytes]],
        digest: int,
    ) -> None:
        if self.closed or self.expects(cat):
            return
        sent = self.sent.get(cat)
        if sent == from_:
            frames = shared()
        elif sent is not None and sent.epoch == to.epoch and sent.revision >= to.revision:
            return  # it has this already (it came to us ahead of our source)
        elif sent is not None and sent.epoch == to.epoch and from_.revision < sent.revision:
            newer = [ev for ev in events if ev.revision > sent.revision]
            opts = self.upstream.options
            frames = delta_frames(cat, sent, to, newer, opts.delta_events, opts.max_frame)
        else:
            self.upstream.stats.resyncs += 1
            self.request(cat)
            return
        if not self._write(frames):
            return  # the connection is gone: nothing was sent
        self.sent[cat], self.sent_digest[cat] = to, digest
        self.upstream.stats.deltas_sent += len(frames)
        self.state.deltas_sent += len(frames)
        self._check_backlog()

    def on_whole(self, snap: EncodedSnapshot) -> None:
        """A changed small category (groups/settings): send it whole."""
        cat = snap.category
        if self.closed or self.expects(cat) or self.sent.get(cat) == snap.version:
            return
        if not self._write(snap.frames):
            return
        self.sent[cat], self.sent_digest[cat] = snap.version, snap.digest
        self.upstream.stats.whole_updates_sent += 1
        self._check_backlog()

    def _write(self, frames: Sequence[bytes]) -> bool:
        """Queue the frames; False (and the session dropped) when the connection is gone."""
        for frame in frames:
            if not self.conn.push_frame(frame):
                self.drop("connection closed", level=logging.INFO)
                return False
        return True

    def _check_backlog(self) -> None:
        if self.conn.write_buffer_size > self.upstream.options.max_backlog_bytes:
            self.upstream.stats.slow_dropped += 1
            self.drop("backlog over the limit")

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
                while self.jobs and not self.closed:
                    cat = next(c for c in SYNC_ORDER if c in self.jobs)
                    snapshot = self.jobs.pop(cat)
                    self.busy.add(cat)
                    try:
                        await self._sync(cat, snapshot)
                    finally:
                        self.busy.discard(cat)
        except SessionGone:
            return
        except Exception:  # a bug: make the node start over rather than wait forever
            log.exception("cascade session %s failed", self.name)
            self.drop("internal error")

    async def _sync(self, cat: Category, snapshot: bool) -> None:
        up = self.upstream
        while True:
            if not snapshot:
                frames = up.catch_up(cat, self.sent[cat], self.sent_digest.get(cat))
                if frames is not None:
                    if frames:  # [] = nothing to send (current, or we have nothing yet)
                        if not self._write(frames):
                            raise SessionGone
                        up.stats.resumes += 1
                        up.stats.deltas_sent += len(frames)
                        self.state.deltas_sent += len(frames)
                        self.sent[cat] = up.version(cat)
                        self.sent_digest[cat] = up.catalog.digest(cat)
                        self._check_backlog()
                    return
            if cat in INCREMENTAL:
                # An older cached snapshot will do when the log still covers its version.
                snap = up.snapshots.get(cat, partial(up.covers, cat))
            else:
                snap = up.snapshots.current(cat)
            async with up.snapshot_slots:
                try:
                    await self._send_snapshot(snap)
                except SnapshotFailed:
                    # The build was abandoned mid-way (the node drops the partial one
                    # when the next snapshot's chunk 0 arrives): start over.
                    snapshot = True
                    continue
            self.sent[cat], self.sent_digest[cat] = snap.version, snap.digest
            self.unconfirmed[cat] = time.monotonic()
            snapshot = False  # then catch up from the snapshot's version

    async def _send_snapshot(self, snap: EncodedSnapshot) -> None:
        up, conn = self.upstream, self.conn
        for seq in range(snap.total):
            frame = await snap.frame(seq)
            if self.closed or not conn.push_frame(frame):
                raise SessionGone
            up.stats.snapshot_chunks_sent += 1
            up.stats.snapshot_bytes_sent += len(frame)
            try:
                async with asyncio.timeout(up.options.stall_timeout):
                    await conn.drain()  # back-pressure: at most ~one buffer ahead of the peer
            except TimeoutError:
                up.stats.slow_dropped += 1
                self.drop(f"took no snapshot bytes for {up.options.stall_timeout} s")
                raise SessionGone from None
        up.stats.snapshots_sent += 1
        self.state.snapshots_sent += 1

    def __repr__(self) -> str:
        sent = " ".join(f"{c}={v}" for c, v in self.sent.items())
        return (
            f"<Session {self.name} {self.peer[0]}:{self.peer[1]} jobs={sorted(self.jobs)} {sent}>"
        )
