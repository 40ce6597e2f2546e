"""The node's append-only delta journal: what changed since its image was started.

Steady churn costs bytes proportional to the changes, not to the replica: each applied
delta (or whole small category) is one record, appended and fsynced in batches. The
journal belongs to one image (its header names the image's id); a new image starts a
new journal, and the old pair is deleted once the new image is in place.

Record: ``u32 length, u32 crc32, body``; the body is a JSON line (category, kind,
versions, the digest after it) followed by the payload (the delta's events, or the
category's records, in the cascade's payload encoding). Reading stops at the first
record that is torn or fails its checksum: a crash while appending loses only the tail,
which the node gets again from its upstream.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from tarscascade.model import Category, Version

MAGIC = b"TARSCASCADE-JOURNAL 1\n"
PREFIX = "replica.journal."
_HEAD = struct.Struct(">II")
#: a record larger than this is not ours (the frame limit bounds deltas far below)
MAX_RECORD = 256 * 1024 * 1024

DELTA = "delta"  # payload: events; applies on top of ``from_``
WHOLE = "whole"  # payload: every record of the category at ``to``


class JournalError(Exception):
    """A journal that does not belong to the image, or is not a journal."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    category: Category
    kind: str
    from_: Version
    to: Version
    digest: int  # the category's digest after the record
    payload: bytes
    #: the digest is the legacy 64-bit one (a record written before digest v2)
    legacy: bool = False


def journal_path(directory: Path, image_id: str) -> Path:
    return directory / f"{PREFIX}{image_id}"


def encode_record(rec: JournalRecord) -> bytes:
    head = orjson.dumps(
        {
            "c": rec.category.value,
            "k": rec.kind,
            "f": [rec.from_.epoch, rec.from_.revision],
            "t": [rec.to.epoch, rec.to.revision],
            "d": str(rec.digest),
            **({} if rec.legacy else {"s": 2}),
        }
    )
    body = head + b"\n" + rec.payload
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


def header(image_id: str) -> bytes:
    return MAGIC + orjson.dumps({"image": image_id}) + b"\n"


def read_journal(path: Path, image_id: str) -> tuple[list[JournalRecord], int, int]:
    """The records of ``path`` (which must belong to ``image_id``), the length of its
    good part and its whole length (they differ when a torn or damaged tail was left
    out). A missing file is an empty journal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, 0
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc}") from exc
    if not data.startswith(MAGIC):
        raise JournalError(f"{path} is not a tarscascade journal")
    end = data.find(b"\n", len(MAGIC))
    try:
        if end < 0 or orjson.loads(data[len(MAGIC) : end]).get("image") != image_id:
            raise JournalError(f"{path} belongs to another image")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise JournalError(f"{path}: bad header") from exc
    records: list[JournalRecord] = []
    good = end + 1
    for rec, pos in _records(data, good):
        if rec is None:
            break
        records.append(rec)
        good = pos
    return records, good, len(data)


def _records(data: bytes, pos: int) -> Iterator[tuple[JournalRecord | None, int]]:
    while pos + _HEAD.size <= len(data):
        n, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        body = data[start : start + n]
        if n > MAX_RECORD or len(body) != n or zlib.crc32(body) != crc:
            yield None, pos
            return
        nl = body.find(b"\n")
        try:
            head = orjson.loads(body[:nl])
            rec = JournalRecord(
                Category(head["c"]),
                str(head["k"]),
                Version(str(head["f"][0]), int(head["f"][1])),
                Version(str(head["t"][0]), int(head["t"][1])),
                int(head["d"]),
                body[nl + 1 :],
                head.get("s") != 2,
            )
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, IndexError):
            yield None, pos
            return
        pos = start + n
        yield rec, pos


class JournalFile:
    """An open journal: :meth:`append` writes and fsyncs (blocking: run it in a thread).

    ``good``: the length of the part known to be whole (a torn tail found when the file
    was read is cut off here). A failed append is cut off too, so the records appended
    after a disk-full stay readable.
    """

    def __init__(self, path: Path, image_id: str, good: int | None = None) -> None:
        self.path = path
        self.image_id = image_id
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.size = os.fstat(self._fd).st_size
            if good is not None and good < self.size:
                os.ftruncate(self._fd, good)
                self.size = good
            if self.size == 0:
                self.append([header(image_id)])
        except BaseException:
            os.close(self._fd)
            raise

    def append(self, chunks: list[bytes]) -> int:
        data = b"".join(chunks)
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def stale_journals(directory: Path, keep: str) -> list[Path]:
    """Journal files of other images (left over from earlier compactions)."""
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.name != PREFIX + keep]
