"""The node's last-known-good replica image on disk, written atomically, checked on load.

Two layouts, both read:

* version 1 (:func:`write_image`): a magic line, one JSON header line (per category:
  version, digest, record count, payload length), the category payloads back to back;
* version 2 (:class:`ImageWriter`): a magic line, a JSON header line (the image's id,
  per category its version, digest and count when the image was started), then
  sections ``(category code u8, records u32, length u32, payload)`` written one slice
  at a time, an end marker, so a million records are encoded over many event-loop
  turns instead of in one stall. The image is completed by the journal that carries
  its id (``node/journal.py``): replaying it from the header's versions gives the
  replica exactly, even when slices encoded later already show some of those changes
  (replaying puts and deletes by key is idempotent).

Both end with a BLAKE2b-256 of everything before it. A write goes to a temporary file
in the same directory, is fsynced, then renamed over the old one, so a crash leaves
either the old or the new file, never a torn one. A file that fails any check is
ignored (the node starts empty and says why) rather than trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarscascade.model import Category, Version

log = logging.getLogger(__name__)

MAGIC = b"TARSCASCADE-SNAPSHOT 1\n"
MAGIC_V2 = b"TARSCASCADE-SNAPSHOT 2\n"
FILE_NAME = "replica.snapshot"
_DIGEST = 32
_SECTION = struct.Struct(">BII")
_END = 255
_CODES = {c: i for i, c in enumerate(Category)}
_BY_CODE = dict(enumerate(Category))


@dataclass(frozen=True, slots=True)
class CategoryImage:
    version: Version
    digest: int
    count: int
    payload: bytes
    #: the digest is the legacy 64-bit one (an image written before digest v2)
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaImage:
    node_name: str
    written_at: float
    categories: Mapping[Category, CategoryImage]
    #: names the journal that completes this image ("" for a version 1 image: none)
    image_id: str = ""
    #: hex id of the digest key its v2 digests are under ("": the empty key, or legacy)
    key_id: str = ""


class SnapshotError(Exception):
    """The file is missing, torn or not ours."""


def write_image(directory: Path, image: ReplicaImage) -> Path:
    """Write ``image`` atomically as ``directory/replica.snapshot``; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    header = {
        "node": image.node_name,
        "written_at": image.written_at,
        "categories": {
            c.value: {
                "epoch": ci.version.epoch,
                "revision": ci.version.revision,
                "digest": str(ci.digest),
                **({} if ci.legacy else {"digest_v": 2}),
                "count": ci.count,
                "length": len(ci.payload),
            }
            for c, ci in image.categories.items()
        },
    }
    h = hashlib.blake2b(digest_size=_DIGEST)
    final = directory / FILE_NAME
    fd, tmp = tempfile.mkstemp(prefix=".replica-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in (MAGIC, json.dumps(header).encode() + b"\n"):
                f.write(part)
                h.update(part)
            for ci in image.categories.values():
                f.write(ci.payload)
                h.update(ci.payload)
            f.write(h.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return final


class ImageWriter:
    """Writes a version 2 image section by section; :meth:`commit` puts it in place.

    Each call does blocking file I/O: run them in a thread. Nothing is visible under
    ``replica.snapshot`` until :meth:`commit`; :meth:`abort` leaves the old image.
    """

    def __init__(
        self,
        directory: Path,
        node_name: str,
        image_id: str,
        started: Mapping[Category, tuple[Version, int, int]],
        *,
        key_id: str = "",
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.bytes = 0
        self._hash = hashlib.blake2b(digest_size=_DIGEST)
        fd, self._tmp = tempfile.mkstemp(prefix=".replica-", dir=directory)
        self._file = os.fdopen(fd, "wb")
        header = {
            "node": node_name,
            "written_at": time.time(),
            "id": image_id,
            "key_id": key_id,
            "categories": {
                c.value: {
                    "epoch": v.epoch,
                    "revision": v.revision,
                    "digest": str(d),
                    "digest_v": 2,
                    "count": n,
                }
                for c, (v, d, n) in started.items()
            },
        }
        self._write(MAGIC_V2 + json.dumps(header).encode() + b"\n")

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.bytes += len(data)

    def section(self, category: Category, payload: bytes, count: int) -> None:
        self._write(_SECTION.pack(_CODES[category], count, len(payload)))
        self._write(payload)

    def commit(self) -> Path:
        try:
            self._write(_SECTION.pack(_END, 0, 0))
            self._file.write(self._hash.digest())
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            final = self.directory / FILE_NAME
            os.replace(self._tmp, final)
        except BaseException:
            self.abort()
            raise
        _fsync_dir(self.directory)
        return final

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


def join_payloads(payloads: list[bytes]) -> bytes:
    """One JSON array from several (the sections of one category)."""
    inner = [p[1:-1] for p in payloads if len(p) > 2]
    return b"[" + b",".join(inner) + b"]"


def read_image(directory: Path) -> ReplicaImage:
    """Load and verify the image; raises SnapshotError when it cannot be trusted."""
    path = directory / FILE_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot at {path}") from exc
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc}") from exc
    v2 = data.startswith(MAGIC_V2)
    if not (v2 or data.startswith(MAGIC)) or len(data) < len(MAGIC) + _DIGEST:
        raise SnapshotError(f"{path} is not a tarscascade snapshot")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        raise SnapshotError(f"{path} is torn or corrupted (checksum mismatch)")
    end = body.find(b"\n", len(MAGIC))
    if end < 0:
        raise SnapshotError(f"{path}: no header line")
    try:
        header = json.loads(body[len(MAGIC) : end])
        return (_read_v2 if v2 else _read_v1)(path, header, body, end + 1)
    except (KeyError, ValueError, TypeError, struct.error) as exc:
        raise SnapshotError(f"{path}: bad header: {exc}") from exc


def _read_v1(path: Path, header: dict[str, Any], body: bytes, pos: int) -> ReplicaImage:
    cats: dict[Category, CategoryImage] = {}
    for name, meta in header["categories"].items():
        n = int(meta["length"])
        cats[Category(name)] = CategoryImage(
            Version(str(meta["epoch"]), int(meta["revision"])),
            int(meta["digest"]),
            int(meta["count"]),
            body[pos : pos + n],
            meta.get("digest_v") != 2,
        )
        pos += n
    if pos != len(body):
        raise SnapshotError(f"{path}: payload lengths do not add up")
    return ReplicaImage(str(header["node"]), float(header["written_at"]), cats)


def _read_v2(path: Path, header: dict[str, Any], body: bytes, pos: int) -> ReplicaImage:
    payloads: dict[Category, list[bytes]] = {}
    counts: dict[Category, int] = {}
    while True:
        code, count, n = _SECTION.unpack_from(body, pos)
        pos += _SECTION.size
        if code == _END:
            break
        if code not in _BY_CODE or pos + n > len(body):
            raise SnapshotError(f"{path}: bad section at byte {pos}")
        cat = _BY_CODE[code]
        payloads.setdefault(cat, []).append(body[pos : pos + n])
        counts[cat] = counts.get(cat, 0) + count
        pos += n
    if pos != len(body):
        raise SnapshotError(f"{path}: bytes after the end marker")
    cats: dict[Category, CategoryImage] = {}
    for name, meta in header["categories"].items():
        cat = Category(name)
        cats[cat] = CategoryImage(
            Version(str(meta["epoch"]), int(meta["revision"])),
            int(meta["digest"]),
            counts.get(cat, 0),
            join_payloads(payloads.get(cat, [])),
            meta.get("digest_v") != 2,
        )
    return ReplicaImage(
        str(header["node"]),
        float(header["written_at"]),
        cats,
        image_id=str(header["id"]),
        key_id=str(header.get("key_id", "")),
    )


KEY_FILE = "digest.key"


def read_keys(directory: Path) -> list[bytes]:
    """The digest keys kept beside the image (``digest.key``: one hex key a line, the
    newest first); [] when there is none (a disk copy from before the file)."""
    try:
        text = (directory / KEY_FILE).read_text("ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{directory / KEY_FILE}: {exc}") from exc
    try:
        return [bytes.fromhex(line) for line in text.split()]
    except ValueError as exc:
        raise SnapshotError(f"{directory / KEY_FILE}: {exc}") from exc


def write_keys(directory: Path, keys: list[bytes]) -> None:
    """Write ``digest.key`` atomically, mode 0600 (the key is a secret of the tier)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".digest-", dir=directory)  # created 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write("".join(k.hex() + "\n" for k in keys))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / KEY_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def age_seconds(image: ReplicaImage) -> float:
    return max(0.0, time.time() - image.written_at)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
