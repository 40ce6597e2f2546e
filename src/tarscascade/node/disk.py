"""The node's disk copy: an image plus the journal of changes since, kept without stalls.

* Every applied delta (and every whole small category) becomes one journal record,
  appended and fsynced in batches every ``flush_interval``: bytes proportional to the
  changes, never to the replica (a 1M-endpoint replica is ~100 MB; one changed endpoint
  is a few hundred bytes).
* A new image is written when the journal has grown past a share of the image, or an
  objects snapshot replaced the replica: its records are encoded a slice at a time on
  the event loop (a few ms each) and written from a thread, so QueryF answers never
  wait behind a 100 MB encode. Changes during the write go to the new image's journal;
  the old image and journal stay valid until the new image is in place.
* A disk that fails (ENOSPC, EIO) is retried with a growing delay, said once in the log
  and shown in ``status()``; unwritten records are kept up to a bound, past which the
  next successful write is a new image.

At start :meth:`load` reads the image, replays its journal and checks every category's
digest against the last record's (a category that fails starts empty, and says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarscascade.cascade import decode_events, decode_records, encode_events, encode_records
from tarscascade.cascade.states import COUNT_KEYS
from tarscascade.catalog import NO_VERSION, Catalog
from tarscascade.catalog.digests import key_id, legacy_sum
from tarscascade.errors import DecodeError
from tarscascade.model import Category, ChangeEvent, Record, Version
from tarscascade.node.journal import (
    DELTA,
    WHOLE,
    JournalError,
    JournalFile,
    JournalRecord,
    encode_record,
    journal_path,
    read_journal,
    stale_journals,
)
from tarscascade.node.snapshot_file import (
    ImageWriter,
    ReplicaImage,
    SnapshotError,
    age_seconds,
    read_image,
    read_keys,
    write_keys,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DiskOptions:
    #: applied changes are coalesced this long before one append + fsync
    flush_interval: float = 0.2
    #: a new image is written once the journal passes both of these
    compact_min_bytes: int = 8 * 1024 * 1024
    compact_ratio: float = 0.5  # ... of the image's size
    #: records encoded per event-loop turn while an image is written
    slice_records: int = 1_000
    #: unwritten journal bytes kept while the disk fails; past it, the next write is an image
    max_pending_bytes: int = 64 * 1024 * 1024
    retry_initial: float = 1.0
    retry_max: float = 60.0


class _Aborted(Exception):
    """The replica was replaced while an image was being written: start it again."""


@dataclass(slots=True)
class DiskStats:
    appends: int = 0
    records: int = 0
    bytes_written: int = 0
    images: int = 0
    image_bytes: int = 0
    failures: int = 0
    #: journal records kept in memory and then dropped because the disk kept failing
    records_dropped: int = 0


class DiskCopy:
    def __init__(
        self,
        directory: Path,
        node_name: str,
        catalog: Catalog,
        options: DiskOptions | None = None,
    ) -> None:
        self.directory = directory
        self.node_name = node_name
        self.catalog = catalog
        self.options = options or DiskOptions()
        self.stats = DiskStats()
        self.image_id = ""
        self.journal: JournalFile | None = None
        self.needs_image = True
        self.error: str | None = None
        self.error_since: float | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: while an image is written: the new journal's records (changes since it started)
        self._next: list[bytes] | None = None
        self._aborted = False
        self._retry_delay = self.options.retry_initial
        self._wake = asyncio.Event()
        #: the digest key the image on disk is under (``digest.key`` keeps it)
        self._image_key: bytes | None = None

    # ------------------------------------------------------------------ status

    @property
    def journal_bytes(self) -> int:
        return self.journal.size if self.journal is not None else 0

    def status(self) -> dict[str, Any]:
        return {
            "image": self.image_id or None,
            "image_bytes": self.stats.image_bytes,
            "journal_bytes": self.journal_bytes,
            "pending_bytes": self._pending_bytes,
            "images_written": self.stats.images,
            "records_written": self.stats.records,
            "bytes_written": self.stats.bytes_written,
            "error": self.error,
            "error_for_s": None
            if self.error_since is None
            else round(time.monotonic() - self.error_since, 1),
        }

    # ------------------------------------------------------------------ loading

    async def load(self) -> float | None:
        """Fill the catalog from disk; returns the image's age in seconds, None if none."""
        try:
            image = await asyncio.to_thread(read_image, self.directory)
        except SnapshotError as exc:
            log.info("no last-known-good replica: %s", exc)
            return None
        if image.node_name != self.node_name:
            log.warning(
                "snapshot in %s belongs to node %r: ignored", self.directory, image.node_name
            )
            return None
        if not self._take_key(image):
            return None
        expected = await self._load_image(image)
        if image.image_id:
            await self._replay(image.image_id, expected)
        for cat, (digest, legacy) in expected.items():
            # a copy written before digest v2 carries the legacy digest: checked once
            # with it (not kept), and the next image is written with the v2 one
            have = legacy_sum(self.catalog.records(cat)) if legacy else self.catalog.digest(cat)
            if legacy:
                self.needs_image = True
            if have != digest:
                log.warning("disk copy of %s fails its digest: starting without it", cat)
                self.catalog.replace_category(cat, [], NO_VERSION)
        return age_seconds(image)

    def _take_key(self, image: ReplicaImage) -> bool:
        """Key the (still empty) catalog as the image's digests are: the key kept in
        ``digest.key`` whose id the image names (the empty key for an image from
        before the file). So a restarted node subscribes with its tier's key id and
        rekeys nothing. False: the image's key is not there (its digests cannot be
        checked: it is not used)."""
        try:
            keys = read_keys(self.directory)
        except SnapshotError as exc:
            log.warning("disk copy's digest key unreadable: starting without it (%s)", exc)
            return False
        want = image.key_id
        key = next((k for k in keys if key_id(k).hex() == want), None) if want else b""
        if key is None:
            log.warning("disk copy's digest key is not in %s: starting without it", self.directory)
            return False
        self.catalog.rekey(key)
        self._image_key = key
        return True

    def rekeyed(self) -> None:
        """The catalog took another digest key: the next write is an image under it
        (an image being written under the old one starts again)."""
        self.needs_image = True
        self._aborted = self._next is not None
        self._wake.set()

    async def _load_image(self, image: ReplicaImage) -> dict[Category, tuple[int, bool]]:
        expected = {}
        for cat, ci in image.categories.items():
            records = await asyncio.to_thread(decode_records, ci.payload, cat)
            self.catalog.replace_category(cat, records, ci.version)
            expected[cat] = (ci.digest, ci.legacy)
        return expected

    async def _replay(self, image_id: str, expected: dict[Category, tuple[int, bool]]) -> None:
        path = journal_path(self.directory, image_id)
        try:
            records, good, total = await asyncio.to_thread(read_journal, path, image_id)
        except JournalError as exc:
            log.warning("disk journal ignored: %s", exc)
            return
        if good < total:
            log.warning("disk journal %s: a torn tail of %d bytes left out", path, total - good)
        gaps: set[Category] = set()
        for rec in records:
            if rec.category in gaps:
                continue
            try:
                self._apply(rec)
            except (DecodeError, ValueError) as exc:
                log.warning("disk journal record of %s not applied: %s", rec.category, exc)
                gaps.add(rec.category)
                continue
            expected[rec.category] = (rec.digest, rec.legacy)
        self.journal = await asyncio.to_thread(JournalFile, path, image_id, good or None)
        self.image_id = image_id
        self.needs_image = bool(gaps)

    def _apply(self, rec: JournalRecord) -> None:
        cat = rec.category
        if rec.kind == WHOLE:
            self.catalog.replace_category(cat, decode_records(rec.payload, cat), rec.to)
            return
        if rec.kind != DELTA or self.catalog.version(cat) != rec.from_:
            raise ValueError(f"{rec.kind} {rec.from_}->{rec.to} on {self.catalog.version(cat)}")
        events = decode_events(rec.payload, cat)
        if events:
            self.catalog.apply(events, rec.to.epoch)
        if self.catalog.version(cat) != rec.to:
            self.catalog.advance(cat, rec.to)

    # ------------------------------------------------------------------ recording

    def applied(
        self,
        cat: Category,
        before: Version | None,
        after: Version,
        events: list[ChangeEvent] | None,
    ) -> None:
        """The replica applied a push (the node's ``on_applied``): record it."""
        if events is None or before is None:
            if cat is Category.OBJECTS:
                # a million records are no journal record: the next write is an image
                self.needs_image = True
                self._aborted = self._next is not None
                self._wake.set()
                return
            payload = encode_records(self.catalog.records(cat))
            digest = self.catalog.digest(cat)
            rec = JournalRecord(cat, WHOLE, before or NO_VERSION, after, digest, payload)
        else:
            rec = JournalRecord(
                cat, DELTA, before, after, self.catalog.digest(cat), encode_events(events)
            )
        data = encode_record(rec)
        if self._next is not None:
            self._next.append(data)
        else:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > self.options.max_pending_bytes:
                self.stats.records_dropped += len(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                self.needs_image = True
        self._wake.set()

    # ------------------------------------------------------------------ writing

    async def run(self) -> None:
        """Write what was recorded until cancelled."""
        opts = self.options
        while True:
            await self._wake.wait()
            await asyncio.sleep(opts.flush_interval)  # coalesce a burst of pushes
            self._wake.clear()
            try:
                await self.write_once()
            except OSError as exc:
                self._failed(exc)
                await asyncio.sleep(self._retry_delay)
                self._retry_delay = min(opts.retry_max, self._retry_delay * 2)
                self._wake.set()
            except _Aborted:
                self._wake.set()
            else:
                self._recovered()

    async def write_once(self) -> None:
        """Append what is pending, or write a new image when one is due."""
        if self.needs_image or self._compaction_due():
            await self._write_image()
        if self._pending and self.journal is not None:
            await self._append()

    def _compaction_due(self) -> bool:
        opts = self.options
        size = self.journal_bytes + self._pending_bytes
        return size > opts.compact_min_bytes and size > opts.compact_ratio * self.stats.image_bytes

    async def _append(self) -> None:
        assert self.journal is not None
        chunks, self._pending, self._pending_bytes = self._pending, [], 0
        try:
            written = await asyncio.to_thread(self.journal.append, chunks)
        except OSError:
            if self._next is None:  # keep them for the next try
                self._pending[:0] = chunks
                self._pending_bytes += sum(map(len, chunks))
            raise
        self.stats.appends += 1
        self.stats.records += len(chunks)
        self.stats.bytes_written += written

    async def _write_image(self) -> None:
        cat_ = self.catalog
        image_id = secrets.token_hex(8)
        counts = cat_.counts()
        key = cat_.digest_key
        started = {c: (cat_.version(c), cat_.digest(c), counts[COUNT_KEYS[c]]) for c in Category}
        self.needs_image = False
        self._aborted = False
        self._next = []
        writer = await asyncio.to_thread(
            ImageWriter,
            self.directory,
            self.node_name,
            image_id,
            started,
            key_id=key_id(key).hex() if key else "",
        )
        journal: JournalFile | None = None
        try:
            for c in Category:
                for payload, n in _slices(cat_, c, self.options.slice_records):
                    if self._aborted:
                        raise _Aborted
                    await asyncio.to_thread(writer.section, c, payload, n)
            if self._aborted:
                raise _Aborted
            journal = await asyncio.to_thread(
                JournalFile, journal_path(self.directory, image_id), image_id
            )
            if key and key != self._image_key:
                # the new key first, the old image's kept: a crash on either side of
                # the commit leaves the image on disk with its key
                old_key = [self._image_key] if self._image_key else []
                await asyncio.to_thread(write_keys, self.directory, [key, *old_key])
            await asyncio.to_thread(writer.commit)
        except BaseException:
            self.needs_image = True
            await asyncio.to_thread(writer.abort)
            if journal is not None:
                journal.close()
                with contextlib.suppress(OSError):
                    journal.path.unlink()
            self._next = None
            raise
        old, self.journal, self.image_id = self.journal, journal, image_id
        if key and self._image_key not in (None, key):
            with contextlib.suppress(OSError):  # the old key is no longer needed
                await asyncio.to_thread(write_keys, self.directory, [key])
        self._image_key = key
        if old is not None:
            old.close()
        self._pending, self._next = self._next, None
        self._pending_bytes = sum(map(len, self._pending))
        self.stats.images += 1
        self.stats.image_bytes = writer.bytes
        self.stats.bytes_written += writer.bytes
        for path in await asyncio.to_thread(stale_journals, self.directory, image_id):
            with contextlib.suppress(OSError):
                await asyncio.to_thread(path.unlink)

    def _failed(self, exc: OSError) -> None:
        self.stats.failures += 1
        if self.error is None:
            self.error_since = time.monotonic()
            log.warning(
                "cannot write the last-known-good replica in %s: %s (retrying, up to every %.0f s)",
                self.directory,
                exc,
                self.options.retry_max,
            )
        self.error = f"{type(exc).__name__}: {exc}"

    def _recovered(self) -> None:
        self._retry_delay = self.options.retry_initial
        if self.error is not None:
            log.info("the last-known-good replica is written again (%s)", self.directory)
            self.error = None
            self.error_since = None

    async def aclose(self) -> None:
        """Write what is pending (best effort) and close the journal."""
        with contextlib.suppress(OSError, _Aborted):
            if self.needs_image or self.journal is None:
                await self._write_image()
            if self._pending and self.journal is not None:
                await self._append()
        if self.journal is not None:
            self.journal.close()


def _slices(catalog: Catalog, cat: Category, size: int) -> Iterator[tuple[bytes, int]]:
    """A category's records as encoded payloads of about ``size`` records each.

    Objects are walked by id (a copy of the id list, taken at once); the catalog may
    change between slices, which the journal's replay makes good.
    """
    batch: list[Record] = []
    if cat is Category.OBJECTS:
        for oid in list(catalog.object_ids()):
            batch.extend(catalog.endpoints_unordered(oid))
            if len(batch) >= size:
                yield encode_records(batch), len(batch)
                batch = []
    else:
        batch = list(catalog.records(cat))  # small categories: one slice or a few
        while len(batch) > size:
            yield encode_records(batch[:size]), size
            batch = batch[size:]
    if batch:
        yield encode_records(batch), len(batch)
