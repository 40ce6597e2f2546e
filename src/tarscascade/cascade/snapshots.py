"""Shared encoded snapshots: one encoding per (category, version), reused by every session.

A reconnect storm of a thousand nodes costs one encoding of the category, not a
thousand (the Consul snapshot-cache pattern). The latest snapshot of each category is
kept; a session may use it even when the category moved on since, as long as the
change log still covers its version (it then follows with a delta).

Large categories are encoded progressively by a builder task while the first sessions
already send the chunks done so far, so a node's decoding overlaps the encoding. The
records are listed in one synchronous step, so the snapshot matches its version and
digest. The chunk count is fixed up front from a sample of the records' encoded size;
should a chunk come out far larger than planned (very uneven records), that build is
abandoned and the category is encoded exactly instead (sessions simply start over).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from functools import partial

from tarscascade.cascade.frames import DEFAULT_CHUNK_BYTES, snapshot_frame, snapshot_payloads
from tarscascade.cascade.payload import compress_payload, encode_records
from tarscascade.catalog import Catalog
from tarscascade.catalog.digests import Scheme
from tarscascade.model import Category, Record, Version
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import ZLIB_ENCODING

log = logging.getLogger(__name__)

#: Records sampled to plan the chunks of a progressive build.
SAMPLE = 512
#: A progressive chunk larger than this many times the target abandons the build.
OVERSIZE = 4


class SnapshotFailed(Exception):
    """The build of a snapshot was abandoned; ask the cache again."""


class EncodedSnapshot:
    """A category at one version as ready-to-write push frames, possibly still growing."""

    def __init__(
        self,
        category: Category,
        version: Version,
        digest: int,
        count: int,
        total: int,
        legacy: int | None = None,
        *,
        compress: bool = False,
    ) -> None:
        self.category = category
        self.version = version
        #: the v2 digest, and the legacy one when the catalog kept it
        self.digest = digest
        self.legacy = legacy
        self.count = count
        self.total = total
        self.frames: list[bytes] = []
        #: with ``compress``, every chunk also with its payload zlib-compressed, for the
        #: downstreams that read it (built with the plain one: once per snapshot)
        self.compress = compress
        self.zframes: list[bytes] = []
        self.error: BaseException | None = None
        self._grown = asyncio.Event()

    def digest_for(self, scheme: Scheme) -> int | None:
        """The digest a downstream comparing ``scheme`` holds after this snapshot."""
        if scheme is Scheme.LEGACY:
            return self.legacy
        return self.digest if scheme is Scheme.V2 else None

    @property
    def complete(self) -> bool:
        return len(self.frames) == self.total

    @property
    def failed(self) -> bool:
        return self.error is not None

    def add(self, frame: bytes, zframe: bytes | None = None) -> None:
        self.frames.append(frame)
        if zframe is not None:
            self.zframes.append(zframe)
        self._wake()

    def add_payload(self, payload: bytes, max_frame: int, digest128: int | None) -> None:
        """The next chunk from its payload: the plain frame and, with ``compress``, the
        compressed one; ``digest128``: the v2 digest to send (None: not sent)."""
        seq = len(self.frames)

        def frame(body: bytes, encoding: str) -> bytes:
            return snapshot_frame(
                self.category,
                self.version,
                self.legacy,
                self.count,
                seq,
                self.total,
                body,
                max_frame,
                digest128=digest128,
                encoding=encoding,
            )

        zframe = frame(compress_payload(payload), ZLIB_ENCODING) if self.compress else None
        self.add(frame(payload, ""), zframe)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._wake()

    def _wake(self) -> None:
        # Replace, then set: current waiters wake, later ones wait for the next change.
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    async def frame(self, seq: int, compressed: bool = False) -> bytes:
        """Chunk ``seq`` (compressed when asked and built so), waiting for the builder
        if it is not encoded yet."""
        while len(self.frames) <= seq:
            if self.error is not None:
                raise SnapshotFailed(str(self.error)) from self.error
            await self._grown.wait()
        return self.zframes[seq] if compressed and self.compress else self.frames[seq]

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.frames))

    def __repr__(self) -> str:
        return (
            f"<EncodedSnapshot {self.category}@{self.version} {self.count} records,"
            f" {len(self.frames)}/{self.total} chunks, {self.nbytes} bytes>"
        )


def encode_snapshot(
    category: Category,
    version: Version,
    digest: int | None,
    records: Sequence[Record],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_frame: int = DEFAULT_MAX_FRAME,
    *,
    legacy: int | None = None,
    compress: bool = False,
) -> EncodedSnapshot:
    """A whole snapshot at once, chunks cut exactly (small categories, and the fallback).

    ``digest``: the v2 digest (None: not sent, as a protocol 2 upstream would);
    ``legacy``: the legacy one (None: not kept, sent as 0); ``compress``: also build
    the compressed chunks."""
    payloads = list(snapshot_payloads(records, chunk_bytes))
    snap = EncodedSnapshot(
        Category(category),
        version,
        digest or 0,
        len(records),
        len(payloads),
        legacy,
        compress=compress,
    )
    for payload in payloads:
        snap.add_payload(payload, max_frame, digest)
    return snap


class SnapshotCache:
    """Builds and keeps the latest :class:`EncodedSnapshot` of each category."""

    def __init__(
        self,
        catalog: Catalog,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        digest128: bool = True,
        compress: bool = True,
    ) -> None:
        self.catalog = catalog
        #: False: chunks carry no 128-bit digest (simulates a protocol 2 upstream)
        self.digest128 = digest128
        #: also build compressed chunks (for downstreams offering ``ZLIB_ENCODING``)
        self.compress = compress
        self.chunk_bytes = chunk_bytes
        self.max_frame = max_frame
        self._latest: dict[Category, EncodedSnapshot] = {}
        self._builders: set[asyncio.Task[None]] = set()
        self.builds = 0

    def invalidate(self, category: Category) -> None:
        """Forget the cached snapshot (the category was replaced: another lineage maybe)."""
        self._latest.pop(category, None)

    def current(self, category: Category) -> EncodedSnapshot:
        """The snapshot at the catalog's current version, built now (small categories)."""
        cat = Category(category)
        cached = self._latest.get(cat)
        if (
            cached is not None
            and cached.version == self.catalog.version(cat)
            and self._fits(cached)
        ):
            return cached
        snap = self._exact(cat)
        self._latest[cat] = snap
        return snap

    def get(
        self, category: Category, usable: Callable[[Version], bool] | None = None
    ) -> EncodedSnapshot:
        """A snapshot at the current version (maybe still being built), or the cached
        one when ``usable(its version)``. Its frames come through ``await frame(i)``."""
        cat = Category(category)
        cached = self._latest.get(cat)
        if cached is not None and not cached.failed and self._fits(cached):
            if cached.version == self.catalog.version(cat):
                return cached
            if usable is not None and usable(cached.version):
                return cached
        snap = self._start(cat, progressive=cached is None or not cached.failed)
        self._latest[cat] = snap
        return snap

    def _fits(self, snap: EncodedSnapshot) -> bool:
        """A snapshot built before the catalog kept the legacy digest does not serve
        the protocol 2 downstreams that made it keep it."""
        return snap.legacy is not None or not self.catalog.legacy_enabled

    def _digests(self, cat: Category) -> tuple[int, int | None]:
        c = self.catalog
        return c.digest(cat), c.legacy_digest(cat) if c.legacy_enabled else None

    def _exact(self, cat: Category) -> EncodedSnapshot:
        self.builds += 1
        records = list(self.catalog.records(cat))
        digest, legacy = self._digests(cat)
        return encode_snapshot(
            cat,
            self.catalog.version(cat),
            digest if self.digest128 else None,
            records,
            self.chunk_bytes,
            self.max_frame,
            legacy=legacy,
            compress=self.compress,
        )

    def _start(self, cat: Category, progressive: bool) -> EncodedSnapshot:
        if not progressive:
            return self._exact(cat)  # the previous progressive build was abandoned
        self.builds += 1
        # One synchronous step: the records, version and digest all belong together.
        version, (digest, legacy) = self.catalog.version(cat), self._digests(cat)
        records = list(self.catalog.records(cat))
        step = self._plan(records)
        total = max(1, math.ceil(len(records) / step))
        snap = EncodedSnapshot(
            cat, version, digest, len(records), total, legacy, compress=self.compress
        )
        task = asyncio.get_running_loop().create_task(
            self._build(snap, records, step), name=f"snapshot-build:{cat}"
        )
        self._builders.add(task)
        task.add_done_callback(partial(self._built, snap))
        return snap

    def _built(self, snap: EncodedSnapshot, task: asyncio.Task[None]) -> None:
        self._builders.discard(task)
        if not snap.complete and not snap.failed:  # cancelled, maybe before it even ran
            snap.fail(SnapshotFailed("build cancelled"))

    def _plan(self, records: Sequence[Record]) -> int:
        """Records per chunk, from the encoded size of a sample spread over them."""
        if not records:
            return 1
        sample = records[:: max(1, len(records) // SAMPLE)][:SAMPLE]
        per_record = max(1.0, len(encode_records(sample)) / len(sample))
        return max(1, int(self.chunk_bytes / per_record))

    async def _build(self, snap: EncodedSnapshot, records: list[Record], step: int) -> None:
        limit = OVERSIZE * self.chunk_bytes
        try:
            for seq in range(snap.total):
                payload = encode_records(records[seq * step : (seq + 1) * step])
                if len(payload) > limit and step > 1:
                    raise SnapshotFailed(f"chunk {seq} is {len(payload)} bytes, plan was {step}")
                snap.add_payload(payload, self.max_frame, snap.digest if self.digest128 else None)
                await asyncio.sleep(0)  # one chunk at a time: sessions send meanwhile
        except SnapshotFailed as exc:
            log.info("snapshot of %s to be rebuilt exactly: %s", snap.category, exc)
            snap.fail(exc)
        except Exception as exc:
            log.exception("snapshot of %s failed", snap.category)
            snap.fail(exc)

    async def aclose(self) -> None:
        """Cancel and await builds still running."""
        tasks = list(self._builders)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
