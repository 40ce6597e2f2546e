"""One downstream's sync state at the upstream, as a sans-IO state machine.

Per category the session knows ``sent``: the version the downstream will hold once it
has applied everything written to it (TCP keeps pushes in order, and a downstream that
rejects a push re-subscribes, which replaces the session), and the digest it has there.
Around that, a category is in one of these states:

``live``
    Changes go straight out as they are published, when they start at ``sent``.
``job``
    The worker must bring it up to date (a catch-up from the change log, or a
    snapshot). Live changes skip it; the worker catches up from the log afterwards.
``busy``
    The worker is sending a snapshot. Changes published meanwhile are *pinned* here
    (with the log's events since the snapshot's version), so the catch-up that follows
    never depends on the log still covering a long snapshot.
``behind``
    The downstream holds a newer version than the upstream (same lineage). Nothing is
    sent; the category goes back to work once the upstream reaches that version.
``held``
    The guard holds this upstream's lineage back from the downstream, which keeps its
    own; re-planned at every heartbeat (an operator may confirm the new lineage).
``holding``
    Live, but the downstream has not acknowledged what it was sent moments ago (less
    than ``coalesce_hold``: it is still applying, or its acks are on their way): new
    changes wait in the change log, and go out as one delta compacted by key when the
    ack comes (:meth:`acked`) or the hold times out (:meth:`flush`). A busy node gets
    one delta per burst, not one per commit; an idle one gets every change at once,
    and so does one whose acks are lazy (``HubOptions.lazy_ack``) once the hold passed.

Events in: :meth:`subscribe`, :meth:`heartbeat`, :meth:`acked`, :meth:`publish`,
:meth:`flush`, :meth:`whole`, :meth:`reset`, the worker's :meth:`take_job` / :meth:`catch_up` /
:meth:`snapshot_started` / :meth:`snapshot_written` / :meth:`job_done`.
Out: plans, and :class:`Push` es the I/O shell writes and then confirms with
:meth:`pushed` (a push that could not be written changes nothing here).
Every "what to do" decision is :func:`~tarscascade.cascade.rules.plan`'s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from tarscascade.cascade.frames import delta_frames
from tarscascade.cascade.rules import NEEDS_WORK, Plan, Source, plan
from tarscascade.cascade.states import Held
from tarscascade.cascade.upstream import SYNC_ORDER, Upstream
from tarscascade.catalog import NO_VERSION
from tarscascade.catalog.digests import Scheme
from tarscascade.model import INCREMENTAL, Category, ChangeEvent, Version


class PushKind(Enum):
    DELTA = "delta"  # a live change
    WHOLE = "whole"  # a small category sent whole after a change
    CATCH_UP = "catch-up"  # the worker's delta from the change log (or a bookmark)


@dataclass(frozen=True, slots=True)
class Push:
    """Frames to write; once written, the downstream will hold ``to`` (with ``digest``)."""

    category: Category
    frames: Sequence[bytes]
    to: Version
    digest: int | None
    kind: PushKind


class CatchUp(Enum):
    DONE = "done"  # nothing (more) to send
    SNAPSHOT = "snapshot"  # only a snapshot will do


@dataclass(slots=True)
class Context:
    """What the hub knows about the whole request: the lineage guard and freshness."""

    hold_lineage: bool = False
    stale: bool = False


@dataclass(slots=True)
class SessionSync:
    upstream: Upstream
    clock: Callable[[], float] = time.monotonic
    sent: dict[Category, Version] = field(default_factory=dict)
    #: the digest the downstream has at ``sent`` (None: unknown)
    sent_digest: dict[Category, int | None] = field(default_factory=dict)
    #: categories the worker must sync -> whether only a snapshot will do
    jobs: dict[Category, bool] = field(default_factory=dict)
    busy: set[Category] = field(default_factory=set)
    behind: set[Category] = field(default_factory=set)
    held: set[Category] = field(default_factory=set)
    #: categories whose snapshot was written but not yet seen held by the downstream,
    #: and when: until then an older version in a heartbeat is expected
    unconfirmed: dict[Category, float] = field(default_factory=dict)
    #: busy categories: the events after the snapshot's version, to send after it
    pinned: dict[Category, list[ChangeEvent]] = field(default_factory=dict)
    #: the last context a subscribe or heartbeat gave (publish re-plans with it)
    context: Context = field(default_factory=Context)
    #: what the downstream last said it holds (subscribe, heartbeats, acks)
    acked: dict[Category, Version] = field(default_factory=dict)
    #: the digests the downstream's can be compared with (negotiated at subscribe;
    #: NONE turns into V2 once the subscribe is answered: the downstream rekeys first)
    scheme: Scheme = Scheme.V2
    #: live categories whose changes wait for the downstream's ack, and since when
    holding: dict[Category, float] = field(default_factory=dict)
    #: when each category's last push was written
    pushed_at: dict[Category, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ plans

    def digest_of(self, cat: Category) -> int | None:
        return self.upstream.catalog.digest_as(self.scheme, cat)

    def _source(self, cat: Category) -> Source:
        up = self.upstream
        return Source(up.version(cat), self.digest_of(cat), lambda v: up.covers(cat, v))

    def _plan(self, cat: Category, h: Held | None) -> Plan:
        ctx = self.context
        return plan(self._source(cat), h, hold_lineage=ctx.hold_lineage, stale=ctx.stale)

    def _enter(self, cat: Category, p: Plan) -> None:
        """Put ``cat`` in the state plan ``p`` leads to (``sent`` is what the node holds)."""
        self.holding.pop(cat, None)
        self.behind.discard(cat)
        self.held.discard(cat)
        if p is Plan.BEHIND:
            self.behind.add(cat)
        elif p is Plan.HOLD:
            self.held.add(cat)
        elif p in NEEDS_WORK:
            self.request(cat, snapshot=p is Plan.SNAPSHOT)

    def subscribe(self, held: dict[Category, Held], context: Context) -> dict[Category, Plan]:
        """A (re-)subscription: start over from what the downstream says it holds."""
        self.context = context
        self.holding.clear()
        out = {}
        for cat in Category:
            h = held.get(cat)
            self.sent[cat] = self.acked[cat] = h.version if h else NO_VERSION
            self.sent_digest[cat] = h.digest if h else None
            out[cat] = p = self._plan(cat, h)
            self._enter(cat, p)
        if self.scheme is Scheme.NONE:
            self.scheme = Scheme.V2  # what it holds from now on is under our key
        return out

    def heartbeat(self, held: dict[Category, Held], context: Context) -> dict[Category, Plan]:
        self.context = context
        return {cat: self.check(cat, held.get(cat)) for cat in Category}

    def acked_versions(self, held: dict[Category, Held]) -> list[Push]:
        """An ack (or a heartbeat) said what the downstream holds: the held changes of
        each category it has caught up in, as one delta each."""
        out = []
        for cat, h in held.items():
            self.acked[cat] = h.version
            if cat in self.holding and h.version == self.sent.get(cat):
                push = self.flush(cat)
                if push is not None:
                    out.append(push)
        return out

    def check(self, cat: Category, h: Held | None) -> Plan:
        """A heartbeat's plan for ``cat``: compare what the node holds with what it was
        sent, and repair what does not fit."""
        up = self.upstream
        if self.expects(cat):
            return Plan.SNAPSHOT if self.jobs.get(cat) else Plan.RESUME
        if cat in self.holding:
            return Plan.RESUME  # changes are on their way (held for coalescing)
        if cat in self.behind or cat in self.held:
            return self._replan(cat, h)  # has the upstream caught up / was it confirmed?
        held = h.version if h else NO_VERSION
        digest = h.digest if h else None
        sent, sent_digest = self.sent.get(cat, NO_VERSION), self.sent_digest.get(cat)
        since = self.unconfirmed.get(cat)
        if since is not None:
            if held != sent and self.clock() - since < up.options.snapshot_confirm_timeout:
                # A heartbeat can overtake a snapshot still in the pipe or being applied
                # (a large one takes seconds): it is on its way, not lost. A downstream
                # that rejects it re-subscribes; one that stalls gives up on its own.
                return Plan.RESUME
            del self.unconfirmed[cat]
        if held == sent:
            if sent_digest is None and digest is not None and sent == up.version(cat):
                # Planned by versions alone (its digests were under another key at its
                # subscribe; it rekeyed before this): at our version it must hold ours.
                sent_digest = self.sent_digest[cat] = self.digest_of(cat)
            if self._resent_whole(cat, digest, sent_digest):
                return Plan.SNAPSHOT
            if sent == up.version(cat):
                return Plan.UP_TO_DATE
        elif held.epoch == sent.epoch and held.revision < sent.revision:
            return Plan.RESUME  # our pushes are on their way
        return self._replan(cat, h)

    def check_acked(self, held: dict[Category, Held]) -> None:
        """An ack's share of a heartbeat's check: a category held at the version it was
        sent, with another digest, is sent again whole (a job). (Acks are how changes
        are confirmed, so a replica gone wrong is caught at the change, not at the next
        heartbeat; the rest of a plan waits for that heartbeat.)"""
        for cat, h in held.items():
            if self.expects(cat) or cat in self.behind or cat in self.held:
                continue
            if h.version != self.sent.get(cat):
                continue  # still applying, or a heartbeat's re-plan will tell
            sent_digest = self.sent_digest.get(cat)
            if cat in self.unconfirmed:
                # a snapshot written at this version: held if the digest says so; if not,
                # this ack may predate it (one sent again at the same version, to repair
                # a replica): the snapshot's own timeout and the heartbeats judge
                if h.digest == sent_digest:
                    del self.unconfirmed[cat]
                continue
            self._resent_whole(cat, h.digest, sent_digest)

    def _resent_whole(self, cat: Category, digest: int | None, sent_digest: int | None) -> bool:
        """Same version, other content: the replica was changed behind our back."""
        if sent_digest is None or digest is None or digest == sent_digest:
            return False
        self.upstream.stats.resyncs += 1
        self.request(cat, snapshot=True)
        return True

    def _replan(self, cat: Category, h: Held | None) -> Plan:
        """The node holds something we did not send it: start again from what it says."""
        self.sent[cat] = h.version if h else NO_VERSION
        self.sent_digest[cat] = h.digest if h else None
        p = self._plan(cat, h)
        if p in NEEDS_WORK:
            self.upstream.stats.resyncs += 1
        self._enter(cat, p)
        return p

    # ------------------------------------------------------------------ scheduling

    def request(self, cat: Category, *, snapshot: bool = False) -> None:
        """Ask the worker to bring ``cat`` up to date (with a snapshot if ``snapshot``)."""
        self.holding.pop(cat, None)
        self.behind.discard(cat)
        self.held.discard(cat)
        self.jobs[cat] = self.jobs.get(cat, False) or snapshot

    def expects(self, cat: Category) -> bool:
        """Whether the worker owns ``cat`` right now (live pushes must skip it)."""
        return cat in self.busy or cat in self.jobs

    def reset(self, cat: Category) -> None:
        """The source replaced ``cat`` wholesale: bring the downstream to it again."""
        if cat in self.held:
            return  # still held back; the next heartbeat re-plans
        up = self.upstream
        if self.pinned.pop(cat, None) is not None or cat in self.busy:
            # what the worker is sending is of the replaced data: go again afterwards
            up.stats.resyncs += 1
            self.request(cat)
        elif self.sent.get(cat) != up.version(cat) or self.sent_digest.get(cat) != (
            self.digest_of(cat)
        ):
            up.stats.resyncs += 1
            self.request(cat)  # a bookmark if the content is equal, else a snapshot

    # ------------------------------------------------------------------ live changes

    def publish(
        self,
        cat: Category,
        from_: Version,
        to: Version,
        events: Sequence[ChangeEvent],
        shared: Callable[[], list[bytes]],
        digest_as: Callable[[Scheme], int | None] | None = None,
    ) -> Push | None:
        """The source moved ``cat`` from -> to with ``events``: what to send (if anything).
        ``digest_as``: the category's digest under a scheme, worked out once per change
        for every session (else this session's own look-up)."""
        pinned = self.pinned.get(cat)
        if pinned is not None:
            pinned.extend(events)
            return None
        if self.expects(cat) or cat in self.held:
            return None
        if cat in self.holding:
            self.upstream.stats.coalesced_changes += 1
            return None  # the events wait in the change log for the downstream's ack
        sent = self.sent.get(cat)
        if cat in self.behind:
            if sent is not None and to.epoch == sent.epoch and to.revision >= sent.revision:
                self.request(cat)  # caught up with the node: the worker takes it from here
            return None
        if sent == from_:
            hold = self.upstream.options.coalesce_hold
            now = self.clock()
            if (
                self.acked.get(cat, sent) != sent
                and now - self.pushed_at.get(cat, -math.inf) < hold
            ):
                # The previous push, written moments ago, is not acknowledged: the
                # downstream may still be applying it, so this goes with what follows
                # (its ack releases it: a lazy one is asked for now, ``Session``). Later
                # than the hold it goes out at once.
                self.holding[cat] = now
                self.upstream.stats.coalesced_changes += 1
                return None
            digest = digest_as(self.scheme) if digest_as is not None else self.digest_of(cat)
            return Push(cat, shared(), to, digest, PushKind.DELTA)
        if sent is not None and sent.epoch == to.epoch and sent.revision >= to.revision:
            return None  # it has this already (it came to us ahead of our source)
        if sent is not None and sent.epoch == to.epoch and from_.revision < sent.revision:
            newer = [ev for ev in events if ev.revision > sent.revision]
            up = self.upstream
            opts = up.options
            frames = delta_frames(
                cat, sent, to, newer, opts.delta_events, opts.max_frame, up.ack_within_ms()
            )
            return Push(cat, frames, to, self.digest_of(cat), PushKind.DELTA)
        self.upstream.stats.resyncs += 1
        self.request(cat)
        return None

    def flush(self, cat: Category) -> Push | None:
        """Send ``cat``'s held changes now (the ack came, or the hold timed out): one
        delta from ``sent`` to the current version, compacted by key."""
        if self.holding.pop(cat, None) is None:
            return None
        up = self.upstream
        sent = self.sent.get(cat, NO_VERSION)
        if sent == up.version(cat):
            return None
        if not up.covers(cat, sent):
            up.stats.resyncs += 1
            self.request(cat)  # the worker decides (a snapshot, if it must)
            return None
        up.stats.coalesced_deltas += 1
        frames = up.catch_up_frames(cat, sent)
        return Push(cat, frames, up.version(cat), self.digest_of(cat), PushKind.DELTA)

    def due(self, now: float) -> list[Category]:
        """Held categories whose hold has run out at ``now``."""
        hold = self.upstream.options.coalesce_hold
        return [c for c, t in self.holding.items() if now - t >= hold]

    def whole(
        self, cat: Category, version: Version, digest: int | None, frames: Sequence[bytes]
    ) -> Push | None:
        """A changed small category (groups/settings) to send whole, if it fits."""
        if self.expects(cat) or cat in self.held:
            return None
        sent = self.sent.get(cat)
        if sent == version:
            return None
        if sent is not None and sent.epoch == version.epoch and sent.revision > version.revision:
            return None  # the downstream is ahead: never send it back
        self.behind.discard(cat)
        return Push(cat, frames, version, digest, PushKind.WHOLE)

    def pushed(self, push: Push) -> None:
        """``push`` was written: the downstream will hold its version."""
        self.sent[push.category] = push.to
        self.sent_digest[push.category] = push.digest
        self.pushed_at[push.category] = self.clock()

    # ------------------------------------------------------------------ the worker

    def take_job(self) -> tuple[Category, bool] | None:
        """The next category to sync (small ones first) and whether it needs a snapshot."""
        for cat in SYNC_ORDER:
            if cat in self.jobs:
                snapshot = self.jobs.pop(cat)
                self.busy.add(cat)
                return cat, snapshot
        return None

    def job_done(self, cat: Category) -> None:
        self.busy.discard(cat)
        self.pinned.pop(cat, None)

    def catch_up(self, cat: Category) -> Push | CatchUp:
        """The delta taking the downstream from ``sent`` to now (or a bookmark)."""
        up = self.upstream
        sent, sent_digest = self.sent[cat], self.sent_digest.get(cat)
        now = up.version(cat)
        if not now.epoch:
            return CatchUp.DONE  # nothing to give: data follows when we have it
        if sent == now:
            if sent_digest is not None and sent_digest != self.digest_of(cat):
                return CatchUp.SNAPSHOT  # same version, other content
            return CatchUp.DONE
        if sent.epoch != now.epoch:
            return CatchUp.SNAPSHOT
        opts, digest = up.options, self.digest_of(cat)
        if sent_digest is not None and sent_digest == digest:
            if sent.revision > now.revision:
                return CatchUp.DONE  # ahead with equal content: adopt its version
            up.stats.bookmarks += 1
            frames = delta_frames(cat, sent, now, [], opts.delta_events, opts.max_frame)
            return Push(cat, frames, now, digest, PushKind.CATCH_UP)
        if sent.revision > now.revision:
            self.behind.add(cat)  # never send it back: wait until we catch up
            return CatchUp.DONE
        if not up.covers(cat, sent):
            return CatchUp.SNAPSHOT
        if not up.logs[cat].has_since(sent.revision):
            up.stats.bookmarks += 1
        return Push(cat, up.catch_up_frames(cat, sent), now, digest, PushKind.CATCH_UP)

    def acceptable_snapshot(self, cat: Category) -> Callable[[Version], bool]:
        """Which cached snapshot versions may be sent: never one older than what the
        downstream holds in the same lineage; for objects and nodes, one the change
        log still leads on from with a short tail (``short_tail``)."""
        sent = self.sent.get(cat, NO_VERSION)
        up = self.upstream

        def ok(v: Version) -> bool:
            if v.epoch == sent.epoch and v.revision < sent.revision:
                return False
            return cat not in INCREMENTAL or (up.covers(cat, v) and up.short_tail(cat, v))

        return ok

    def snapshot_started(self, cat: Category, version: Version) -> None:
        """The worker is about to send the snapshot at ``version``: from now on, pin.

        Pinned are the log's events after ``version`` and then every change published
        while the snapshot goes out, so what follows it never depends on the log still
        covering a snapshot that took long. Only for objects and nodes, and only when
        the log leads on from ``version`` (otherwise the catch-up decides afterwards).
        """
        up = self.upstream
        if cat in INCREMENTAL and up.covers(cat, version):
            self.pinned[cat] = up.logs[cat].since(version.revision)

    def snapshot_written(self, cat: Category, version: Version, digest: int | None) -> Push | None:
        """The snapshot at ``version`` was written; the delta of the pinned events that
        follows it, or None: let :meth:`catch_up` decide."""
        self.sent[cat], self.sent_digest[cat] = version, digest
        self.unconfirmed[cat] = self.clock()
        pinned = self.pinned.pop(cat, None)
        up = self.upstream
        now = up.version(cat)
        if pinned is None or now.epoch != version.epoch or now == version:
            return None
        if pinned and pinned[-1].revision > now.revision:
            return None  # the source was reset meanwhile: let the catch-up decide
        opts = up.options
        frames = delta_frames(cat, version, now, pinned, opts.delta_events, opts.max_frame)
        return Push(cat, frames, now, self.digest_of(cat), PushKind.CATCH_UP)

    def settled(self) -> bool:
        """Nothing under way: no job, snapshot, hold, or unconfirmed push in any category,
        and the downstream was sent exactly the upstream's version of each."""
        if self.jobs or self.busy or self.holding or self.unconfirmed or self.pinned:
            return False
        if self.behind or self.held:
            return False
        up = self.upstream
        return len(self.sent) == len(Category) and all(
            v == up.version(c) for c, v in self.sent.items()
        )

    def pinned_events(self) -> int:
        return sum(len(p) for p in self.pinned.values())
