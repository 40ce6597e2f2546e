"""The upstream's shared sync state: source catalog, change logs, snapshot cache, slots.

What every session reads to bring one downstream from the version it holds to the
source catalog's version (the decisions are in :mod:`~tarscascade.cascade.rules` and
:mod:`~tarscascade.cascade.sync`). The hub and its sessions share one instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tarscascade.cascade.changelog import DEFAULT_LOG_EVENTS, ChangeLog, compact
from tarscascade.cascade.frames import DEFAULT_CHUNK_BYTES, DEFAULT_DELTA_EVENTS, delta_frames
from tarscascade.cascade.rules import DEFAULT_GUARD_MAX_LOSS
from tarscascade.cascade.snapshots import SnapshotCache
from tarscascade.cascade.states import COUNT_KEYS
from tarscascade.catalog import Catalog
from tarscascade.model import INCREMENTAL, Category, Version
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import DIGEST128_PROTOCOL, PROTOCOL_VERSION

#: Sync order: small categories first, so a new node knows its groups and settings
#: before a large objects snapshot is under way.
#: a cached snapshot is reused with up to this many events after it, whatever its size
SHORT_TAIL_MIN = 1_000
SYNC_ORDER = (Category.SETTINGS, Category.GROUPS, Category.NODES, Category.OBJECTS)


#: see ``HubOptions.lazy_ack``: within the dashboard's refresh, well under a heartbeat
DEFAULT_LAZY_ACK = 1.0


@dataclass(slots=True)
class HubOptions:
    #: events kept per incremental category; an older version resumes with a snapshot
    log_events: int = DEFAULT_LOG_EVENTS
    #: snapshots being sent at once; the others wait their turn (admission control)
    max_concurrent_snapshots: int = 4
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    delta_events: int = DEFAULT_DELTA_EVENTS
    #: a session whose unsent bytes pass this is told to resync and dropped
    max_backlog_bytes: int = 64 * 1024 * 1024
    #: all sessions' unsent bytes together; past it the largest backlogs are dropped
    #: first (those nodes resync), so dead peers cannot pin the upstream's memory
    max_total_backlog_bytes: int = 512 * 1024 * 1024
    #: a session that takes no snapshot bytes for this long is dropped
    stall_timeout: float = 30.0
    #: after this long in a snapshot slot, a session must have taken at least
    #: ``min_snapshot_rate`` bytes per second on average, or it gives the slot up
    snapshot_grace: float = 30.0
    min_snapshot_rate: int = 64 * 1024
    #: changes a session keeps for the delta after its snapshot (past it, it is dropped:
    #: a node that slow cannot keep up with the change rate anyway)
    max_pinned_events: int = 1_000_000
    #: a session not heard from (heartbeat or ack) for this many of its heartbeat
    #: intervals is ended, whatever TCP says
    missed_heartbeats: int = 3
    #: the interval assumed for downstreams that do not say theirs (protocol 1)
    default_heartbeat_interval: float = 3.0
    #: how long an idle downstream that asks may stay silent between heartbeats (s;
    #: ``SubscribeRsp.idleHeartbeatMs``). Only for an owner whose liveness does not wait
    #: for heartbeats (``CascadeHub.vouched``: a registry; a relay, which reports a lost
    #: descendant at once); 0 = none granted: downstreams keep their own idle interval.
    #: A bare hub grants none; ``attach_cascade`` and the node agent give what holds
    idle_heartbeat_grant: float = 0.0
    #: the mass-change guard: a new lineage taking away more than this share of a
    #: downstream's endpoints is held back unless confirmed (>= 1: off)
    guard_max_loss: float = DEFAULT_GUARD_MAX_LOSS
    #: how long a written snapshot may go unconfirmed by heartbeats before an older
    #: version there counts as lost again (and is repaired)
    snapshot_confirm_timeout: float = 120.0
    max_sessions: int = 100_000
    #: descendants one relay may report
    max_descendants: int = 100_000
    #: node states kept for disconnected nodes (oldest forgotten first)
    max_offline_nodes: int = 10_000
    max_frame: int = DEFAULT_MAX_FRAME
    #: a live change for a downstream that has not acknowledged the previous push yet
    #: is held (at most this long) and sent with the changes after it as one delta,
    #: compacted by key, when its ack comes: a burst costs a busy node one apply, not
    #: one per commit (0: every change goes out as it comes)
    coalesce_hold: float = 0.05
    #: how soon a downstream acknowledges a live change when nobody waits for it (s):
    #: an ack per change per node was most of the upstream's cost per change (issue 17).
    #: At once while a drain waits here or in the tier (``CascadeHub.prompt_acks_for``,
    #: its ``prompt_acks``) or on this hub's tracker; 0 = always at once
    lazy_ack: float = DEFAULT_LAZY_ACK
    #: the newest protocol this upstream speaks (lower it to act as an older upstream:
    #: tests of rolling upgrades)
    max_protocol: int = PROTOCOL_VERSION
    #: also encode snapshot chunks zlib-compressed, for downstreams that read them (they
    #: say so in subscribe): a fraction of the bytes at a cold start, once per snapshot
    compress_snapshots: bool = True


@dataclass(slots=True)
class HubStats:
    subscribes: int = 0
    #: a subscribe from a node that already had a session (it asked for a resync)
    resubscribes: int = 0
    #: full snapshots sent by sessions (initial sync or resync), any category
    snapshots_sent: int = 0
    snapshot_chunks_sent: int = 0
    snapshot_bytes_sent: int = 0
    #: whole-category pushes of groups/settings after a change (their normal update)
    whole_updates_sent: int = 0
    deltas_sent: int = 0
    #: catch-up deltas from the change log (a node resuming, or a session that fell behind
    #: its live stream while a job ran) and bookmarks among them
    resumes: int = 0
    bookmarks: int = 0
    #: a heartbeat or publish found a session off track and re-planned a category
    resyncs: int = 0
    auth_failures: int = 0
    bad_requests: int = 0
    slow_dropped: int = 0
    #: sessions ended because they were not heard from (dead or cut-off peers)
    expired: int = 0
    #: sessions dropped to keep all sessions' backlogs within the global budget
    budget_dropped: int = 0
    #: plans that told a downstream it is ahead of this upstream / held a new lineage
    behind_plans: int = 0
    held_plans: int = 0
    heartbeats: int = 0
    acks: int = 0
    #: times this hub's freshness changed and every session was asked to heartbeat
    beats_asked: int = 0
    #: descendant entries received from relays (heartbeats list them all; acks none)
    descendant_states: int = 0
    #: live changes held for a downstream still applying the previous push, and the
    #: coalesced deltas that carried them
    coalesced_changes: int = 0
    coalesced_deltas: int = 0
    #: catch-up deltas encoded, and those served from the shared encoding of another
    #: session's catch-up from the same version
    catch_up_encodes: int = 0
    catch_up_shared: int = 0
    #: heartbeats answered from the session's cached answer (nothing changed since)
    heartbeats_cached: int = 0
    #: sessions ended because the catalog's digest key changed (they resubscribe for it)
    rekey_ended: int = 0


class Upstream:
    """Source catalog + change logs + snapshot cache + the snapshot semaphore."""

    def __init__(self, catalog: Catalog, options: HubOptions) -> None:
        self.catalog = catalog
        self.options = options
        self.stats = HubStats()
        self.logs = {
            cat: ChangeLog(catalog.version(cat), options.log_events) for cat in INCREMENTAL
        }
        self.snapshots = SnapshotCache(
            catalog,
            options.chunk_bytes,
            options.max_frame,
            digest128=options.max_protocol >= DIGEST128_PROTOCOL,
            compress=options.compress_snapshots,
        )
        self.snapshot_slots = asyncio.Semaphore(options.max_concurrent_snapshots)
        #: catch-up frames per (category, from, ackWithinMs) for the category's current
        #: version: sessions resuming (or flushing held changes) from one version share
        #: one encoding
        self._catch_ups: dict[tuple[Category, Version, int], tuple[Version, list[bytes]]] = {}
        #: every session's fair share of the total backlog budget (the hub keeps it): the
        #: total can pass the budget only if some session's backlog passes its share,
        #: so the O(sessions) check runs only after one did (``budget_check``)
        self.fair_backlog = float(options.max_total_backlog_bytes)
        self.budget_check = False
        #: how soon downstreams should acknowledge a change sent now, ms (0: at once);
        #: the hub decides (``CascadeHub._ack_within_ms``)
        self.ack_within_ms: Callable[[], int] = lambda: 0

    def version(self, cat: Category) -> Version:
        return self.catalog.version(cat)

    def covers(self, cat: Category, version: Version) -> bool:
        # A log that is not at the catalog's version (a change bypassed publish) is no base
        # to resume from: snapshot instead.
        log = self.logs.get(cat)
        return log is not None and log.version == self.version(cat) and log.covers(version)

    def short_tail(self, cat: Category, version: Version) -> bool:
        """Whether a snapshot at ``version`` plus the log's events since is still a cheap
        way to the current version: at most a quarter of the category's records (and at
        least :data:`SHORT_TAIL_MIN`). Past that a fresh snapshot is encoded, so a new node
        never gets a catch-up that grows with the log (issue 17)."""
        log = self.logs.get(cat)
        if log is None:
            return True
        records = self.catalog.counts()[COUNT_KEYS[cat]]
        return log.count_since(version.revision) <= max(SHORT_TAIL_MIN, records // 4)

    def catch_up_frames(self, cat: Category, since: Version) -> list[bytes]:
        """The delta frames taking a downstream at ``since`` to the category's version,
        its events compacted by key (check :meth:`covers` first). Encoded once per
        (``since``, current version) and shared by every session that asks."""
        now = self.version(cat)
        within = self.ack_within_ms()
        hit = self._catch_ups.get((cat, since, within))
        if hit is not None and hit[0] == now:
            self.stats.catch_up_shared += 1
            return hit[1]
        if len(self._catch_ups) > 64:  # older versions' entries are of no use any more
            self._catch_ups = {k: v for k, v in self._catch_ups.items() if v[0] == now}
        events = compact(self.logs[cat].since(since.revision))
        opts = self.options
        frames = delta_frames(cat, since, now, events, opts.delta_events, opts.max_frame, within)
        self._catch_ups[(cat, since, within)] = (now, frames)
        self.stats.catch_up_encodes += 1
        return frames
