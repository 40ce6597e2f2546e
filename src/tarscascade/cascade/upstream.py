"""The upstream's shared sync state and decisions: change logs, snapshots, plans.

Everything a session needs to bring one downstream from the version it holds to the
source catalog's version: a delta from the change log, a *bookmark* (an empty delta)
when the downstream's digest proves its content is already current, or a snapshot.
Synchronous except for the snapshot cache; the hub and its sessions share one instance.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tarscascade.cascade.changelog import DEFAULT_LOG_EVENTS, ChangeLog
from tarscascade.cascade.frames import DEFAULT_CHUNK_BYTES, DEFAULT_DELTA_EVENTS, delta_frames
from tarscascade.cascade.snapshots import SnapshotCache
from tarscascade.catalog import Catalog
from tarscascade.model import INCREMENTAL, Category, Version
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import RESUME, SNAPSHOT, UP_TO_DATE

#: Sync order: small categories first, so a new node knows its groups and settings
#: before a large objects snapshot is under way.
SYNC_ORDER = (Category.SETTINGS, Category.GROUPS, Category.NODES, Category.OBJECTS)


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
    #: a session that takes no snapshot bytes for this long is dropped
    stall_timeout: float = 30.0
    #: how long a written snapshot may go unconfirmed by heartbeats before an older
    #: version there counts as lost again (and is repaired)
    snapshot_confirm_timeout: float = 120.0
    max_sessions: int = 100_000
    #: descendants one relay may report
    max_descendants: int = 100_000
    #: node states kept for disconnected nodes (oldest forgotten first)
    max_offline_nodes: int = 10_000
    max_frame: int = DEFAULT_MAX_FRAME


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
    heartbeats: int = 0
    acks: int = 0


class Upstream:
    """Source catalog + change logs + snapshot cache + the snapshot semaphore."""

    def __init__(self, catalog: Catalog, options: HubOptions) -> None:
        self.catalog = catalog
        self.options = options
        self.stats = HubStats()
        self.logs = {
            cat: ChangeLog(catalog.version(cat), options.log_events) for cat in INCREMENTAL
        }
        self.snapshots = SnapshotCache(catalog, options.chunk_bytes, options.max_frame)
        self.snapshot_slots = asyncio.Semaphore(options.max_concurrent_snapshots)

    def version(self, cat: Category) -> Version:
        return self.catalog.version(cat)

    def covers(self, cat: Category, version: Version) -> bool:
        # A log that is not at the catalog's version (a change bypassed publish) is no base
        # to resume from: snapshot instead.
        log = self.logs.get(cat)
        return log is not None and log.version == self.version(cat) and log.covers(version)

    def plan(self, cat: Category, held: Version | None, digest: int | None) -> int:
        """The plan for a downstream holding ``held`` (with ``digest``) of ``cat``."""
        hub_v = self.version(cat)
        if not hub_v.epoch:
            return RESUME  # nothing here yet: keep what you hold, data follows when we have it
        if held is None or held.epoch != hub_v.epoch:
            return SNAPSHOT  # nothing held, or another lineage: start again
        if digest == self.catalog.digest(cat):
            return UP_TO_DATE if held == hub_v else RESUME  # a bookmark moves the version
        if held != hub_v and self.covers(cat, held):
            return RESUME
        return SNAPSHOT

    def catch_up(self, cat: Category, sent: Version, digest: int | None) -> list[bytes] | None:
        """Frames taking a downstream from ``sent`` to now, [] if current, None: snapshot."""
        hub_v = self.version(cat)
        if sent == hub_v:
            return []
        if not hub_v.epoch:
            return []  # nothing to give; a reset will bring data
        if sent.epoch != hub_v.epoch:
            return None
        opts = self.options
        if digest is not None and digest == self.catalog.digest(cat):
            self.stats.bookmarks += 1
            return delta_frames(cat, sent, hub_v, [], opts.delta_events, opts.max_frame)
        if not self.covers(cat, sent):
            return None
        events = self.logs[cat].since(sent.revision)
        if not events:
            self.stats.bookmarks += 1
        return delta_frames(cat, sent, hub_v, events, opts.delta_events, opts.max_frame)
