"""Applying pushes to a replica catalog: snapshot chunks and deltas, checked. Pure.

A snapshot is assembled off to the side (an :class:`ObjectSnapshot` for objects, a list
for the rest) and replaces its category atomically when the last chunk arrives, after
its record count and digest were checked; a half-received snapshot never serves. A
delta applies only on top of exactly the version it starts from. Versions never go
back within a lineage: a snapshot older than what the replica holds is refused
(:data:`OLDER`: the upstream is behind). Anything else that does not fit returns
:data:`RESYNC`; the caller re-subscribes.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from tarscascade.cascade.payload import (
    PayloadError,
    decode_events,
    decode_records,
    decompress_payload,
)
from tarscascade.catalog import Catalog, CatalogError, ObjectSnapshot
from tarscascade.catalog.digests import legacy_sum
from tarscascade.errors import DecodeError
from tarscascade.model import Category, ChangeEvent, Record, Version
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import (
    PUSH_DELTA,
    PUSH_RESYNC,
    PUSH_SNAPSHOT,
    ZLIB_ENCODING,
    DeltaF,
    ResyncF,
    SnapshotChunkF,
    VersionF,
    from_wire_digest,
    from_wire_digest128,
)
from tarscascade.wire.struct import decode_struct

log = logging.getLogger(__name__)

#: ``on_applied(category, version before (None: held nothing), version after, events)``;
#: events is None after a snapshot, [] after a bookmark.
AppliedHook = Callable[[Category, Version | None, Version, list[ChangeEvent] | None], None]

#: A snapshot of more chunks than this is refused (about 100 GiB at 1 MiB chunks).
MAX_CHUNKS = 100_000
#: Snapshots of fewer chunks are small: not worth pausing the garbage collector for.
PAUSE_GC_FROM_CHUNKS = 4


class Outcome(Enum):
    APPLIED = "applied"  # the catalog changed version: acknowledge
    PENDING = "pending"  # a snapshot chunk was taken, more follow
    IGNORED = "ignored"  # a duplicate or a leftover of an earlier subscription
    RESYNC = "resync"  # does not fit: re-subscribe
    OLDER = "older"  # would take the replica back in its lineage: refused, keep ours


@dataclass(slots=True)
class PushResult:
    """What handling one push from the upstream did to the replica."""

    outcome: Outcome
    category: Category | None = None
    snapshot: bool = False
    bookmark: bool = False  # a delta without events: the version moved, not the content
    reason: str = ""


class GcPause:
    """Keeps the cyclic garbage collector off while a large snapshot is being taken in.

    Taking a snapshot allocates millions of acyclic containers (records, indexes) that
    all survive; with the collector on, each generation-0 pass promotes them and full
    passes rescan the growing heap again and again — about a fifth of the time of a
    1M-endpoint snapshot. So the collector is paused from the first chunk to the last,
    and resumed when the snapshot completes or is dropped, however that happens: the
    pause belongs to the assembly, which releases it explicitly, and ``__del__`` covers
    any path that merely drops it (assemblies are acyclic: freed at once). Process-wide
    and counted, so several replicas in one process (tests, benchmarks) compose.
    """

    _holders = 0
    _resume = False

    __slots__ = ("_held",)

    def __init__(self) -> None:
        cls = GcPause
        if cls._holders == 0:
            cls._resume = gc.isenabled()
            gc.disable()
        cls._holders += 1
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        cls = GcPause
        cls._holders -= 1
        if cls._holders == 0 and cls._resume:
            gc.enable()

    def __del__(self) -> None:
        self.release()


@dataclass(slots=True)
class _Assembly:
    version: Version
    total: int
    count: int
    #: the announced legacy digest, and the 128-bit one (None: a protocol 2 upstream's
    #: snapshot, checked with the legacy digest)
    digest: int
    digest128: int | None
    next_seq: int
    objects: ObjectSnapshot | None
    records: list[Record]
    last_chunk: float
    pause: GcPause | None


def _version(v: VersionF) -> Version:
    return Version(v.epoch, v.revision)


class Replica:
    """Applies one upstream's pushes to ``catalog``."""

    def __init__(
        self,
        catalog: Catalog,
        on_applied: AppliedHook | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        freeze_gc: bool = False,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self.catalog = catalog
        self.on_applied = on_applied
        self.clock = clock
        self.freeze_gc = freeze_gc
        #: a compressed chunk inflates to at most this: what a plain chunk could be on
        #: the node's connection
        self.max_frame = max_frame
        #: False: the 128-bit digests of snapshot chunks are not read (the session
        #: compares legacy digests: this node speaks protocol 2, or its upstream does)
        self.digest128 = True
        #: the push being (or last) handled: how soon its upstream wants it acknowledged,
        #: seconds (0: at once). Set before ``on_applied`` runs, so a relay republishing
        #: the change asks its own downstreams alike.
        self.ack_within = 0.0
        self._assembly: dict[Category, _Assembly] = {}

    def reset(self) -> None:
        """Drop half-received snapshots (a new subscription or connection starts)."""
        for cat in list(self._assembly):
            self._drop(cat)

    def expire(self, max_age: float) -> list[Category]:
        """Drop snapshots that got no chunk for ``max_age`` seconds; returns their categories."""
        now = self.clock()
        stale = [c for c, a in self._assembly.items() if now - a.last_chunk > max_age]
        for cat in stale:
            self._drop(cat)
        return stale

    @property
    def receiving(self) -> list[Category]:
        return list(self._assembly)

    def _drop(self, cat: Category) -> _Assembly | None:
        asm = self._assembly.pop(cat, None)
        if asm is not None and asm.pause is not None:
            asm.pause.release()
        return asm

    def handle(self, func: str, body: bytes) -> PushResult:
        self.ack_within = 0.0
        try:
            if func == PUSH_SNAPSHOT:
                return self._chunk(decode_struct(SnapshotChunkF, body))
            if func == PUSH_DELTA:
                return self._delta(decode_struct(DeltaF, body))
            if func == PUSH_RESYNC:
                resync = decode_struct(ResyncF, body)
                return PushResult(Outcome.RESYNC, reason=f"upstream asked: {resync.reason}")
        except DecodeError as exc:
            return PushResult(Outcome.RESYNC, reason=f"undecodable {func}: {exc}")
        return PushResult(Outcome.IGNORED, reason=f"unknown push {func!r}")

    # ------------------------------------------------------------------ snapshots

    def _chunk(self, chunk: SnapshotChunkF) -> PushResult:
        try:
            cat = Category(chunk.category)
        except ValueError:
            return PushResult(
                Outcome.RESYNC, reason=f"snapshot of unknown category {chunk.category!r}"
            )
        version = _version(chunk.version)
        if not 0 < chunk.total <= MAX_CHUNKS or not 0 <= chunk.seq < chunk.total:
            self._drop(cat)
            return PushResult(Outcome.RESYNC, cat, reason=f"bad chunk {chunk.seq}/{chunk.total}")
        asm = self._assembly.get(cat)
        if chunk.seq == 0:
            self._drop(cat)
            try:
                digest128 = from_wire_digest128(chunk.digest128) if self.digest128 else None
            except ValueError as exc:
                return PushResult(Outcome.RESYNC, cat, reason=f"bad snapshot digest: {exc}")
            if digest128 is None:
                self.catalog.enable_legacy()  # an older upstream: it proves with that
            held = self.catalog.version(cat)
            if held.epoch and held.epoch == version.epoch and version.revision < held.revision:
                return PushResult(
                    Outcome.OLDER, cat, reason=f"snapshot at {version} is older than {held}"
                )
            asm = self._assembly[cat] = _Assembly(
                version,
                chunk.total,
                chunk.count,
                from_wire_digest(chunk.digest),
                digest128,
                0,
                self.catalog.object_snapshot() if cat is Category.OBJECTS else None,
                [],
                self.clock(),
                GcPause() if chunk.total >= PAUSE_GC_FROM_CHUNKS else None,
            )
        elif asm is None:
            return PushResult(Outcome.IGNORED, cat, reason="chunk of a snapshot we are not taking")
        elif (asm.version, asm.total, asm.next_seq) != (version, chunk.total, chunk.seq):
            self._drop(cat)
            return PushResult(Outcome.RESYNC, cat, reason="snapshot chunks out of order")
        try:
            records = decode_records(chunk_payload(chunk, self.max_frame), cat)
            if asm.objects is not None:
                asm.objects.add(records)  # type: ignore[arg-type]  # objects: endpoints
            else:
                asm.records.extend(records)
        except DecodeError as exc:
            self._drop(cat)
            return PushResult(Outcome.RESYNC, cat, reason=f"bad snapshot payload: {exc}")
        asm.next_seq += 1
        asm.last_chunk = self.clock()
        if asm.next_seq < asm.total:
            return PushResult(Outcome.PENDING, cat, snapshot=True)
        del self._assembly[cat]
        try:
            return self._replace(cat, asm)
        finally:
            # Only now: the collector's first pass over the new records (~0.5 s for a
            # million) then runs after the replica already serves them; or, when the
            # process opted in, never (everything alive moves to the permanent
            # generation, as a service does after loading its long-lived data).
            if asm.pause is not None:
                if self.freeze_gc:
                    gc.freeze()
                asm.pause.release()

    def _replace(self, cat: Category, asm: _Assembly) -> PushResult:
        hasher = self.catalog.hasher
        want = asm.digest if asm.digest128 is None else asm.digest128
        digest: int | None
        if asm.objects is not None:
            if asm.digest128 is None:
                digest = asm.objects.legacy_digest
            else:
                if asm.objects.hasher.key != hasher.key:
                    asm.objects.rekey(hasher)  # the catalog was rekeyed meanwhile
                digest = asm.objects.digest
            count = asm.objects.endpoint_count
        else:
            keys = {r.key for r in asm.records}
            count = len(keys)
            if asm.digest128 is None:
                digest = legacy_sum(asm.records)
            else:
                digest = hasher.sum(asm.records)
            if len(keys) != len(asm.records):
                count = -1  # duplicate keys: not the snapshot the upstream described
        if count != asm.count or digest != want:
            return PushResult(
                Outcome.RESYNC,
                cat,
                reason=f"snapshot {asm.version} has {count} records / digest {digest or 0:x},"
                f" announced {asm.count} / {want:x}",
            )
        before = self.catalog.version(cat)
        try:
            records = asm.objects if asm.objects is not None else asm.records
            self.catalog.replace_category(cat, records, asm.version)
        except CatalogError as exc:
            return PushResult(Outcome.RESYNC, cat, reason=f"snapshot refused: {exc}")
        self._applied(cat, before if before.epoch else None, asm.version, None)
        return PushResult(Outcome.APPLIED, cat, snapshot=True)

    # ------------------------------------------------------------------ deltas

    def _delta(self, delta: DeltaF) -> PushResult:
        try:
            cat = Category(delta.category)
        except ValueError:
            return PushResult(
                Outcome.RESYNC, reason=f"delta of unknown category {delta.category!r}"
            )
        from_, to = _version(delta.from_), _version(delta.to)
        held = self.catalog.version(cat)
        if to.epoch == held.epoch and held.epoch and to.revision <= held.revision:
            return PushResult(Outcome.IGNORED, cat, reason=f"already at {held}, delta to {to}")
        if from_ != held or to.epoch != from_.epoch:
            return PushResult(Outcome.RESYNC, cat, reason=f"delta {from_}->{to} but holding {held}")
        try:
            events = decode_events(delta.payload, cat)
        except DecodeError as exc:
            return PushResult(Outcome.RESYNC, cat, reason=f"bad delta payload: {exc}")
        if events and (events[0].revision <= from_.revision or events[-1].revision > to.revision):
            return PushResult(Outcome.RESYNC, cat, reason=f"delta {from_}->{to}: revisions outside")
        self.ack_within = max(0, delta.ackWithinMs) / 1000.0
        try:
            if events:
                self.catalog.apply(events, to.epoch)
            # A category's version can be past its last event (a registry that loaded
            # from the store numbers every category with the store's revision); and no
            # events at all is a bookmark: same content, newer version.
            if self.catalog.version(cat) != to:
                self.catalog.advance(cat, to)
        except CatalogError as exc:
            return PushResult(Outcome.RESYNC, cat, reason=f"delta refused: {exc}")
        self._applied(cat, from_, to, events)
        return PushResult(Outcome.APPLIED, cat, bookmark=not events)

    def _applied(
        self,
        cat: Category,
        before: Version | None,
        after: Version,
        events: list[ChangeEvent] | None,
    ) -> None:
        if self.on_applied is None:
            return
        try:
            self.on_applied(cat, before, after, events)
        except Exception:  # the replica is consistent either way; report the hook's bug
            log.exception("on_applied hook failed")


def chunk_payload(chunk: SnapshotChunkF, limit: int) -> bytes:
    """A chunk's records payload, inflated if it came compressed (to at most ``limit``
    bytes: what a plain frame could carry); PayloadError for an encoding this node never
    offered."""
    if not chunk.encoding:
        return chunk.payload
    if chunk.encoding == ZLIB_ENCODING:
        return decompress_payload(chunk.payload, limit)
    raise PayloadError(f"unknown payload encoding {chunk.encoding!r}")
