"""The node's last-known-good replica on disk, written atomically, checked on load.

Layout: a magic line, one JSON header line (per category: version, digest, record
count, payload length), the category payloads back to back, then a BLAKE2b-256 of
everything before it. A write goes to a temporary file in the same directory, is
fsynced, then renamed over the old one, so a crash leaves either the old or the new
file, never a torn one. A file that fails any check is ignored (the node starts empty
and says why) rather than trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tarscascade.model import Category, Version

log = logging.getLogger(__name__)

MAGIC = b"TARSCASCADE-SNAPSHOT 1\n"
FILE_NAME = "replica.snapshot"
_DIGEST = 32


@dataclass(frozen=True, slots=True)
class CategoryImage:
    version: Version
    digest: int
    count: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReplicaImage:
    node_name: str
    written_at: float
    categories: Mapping[Category, CategoryImage]


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


def read_image(directory: Path) -> ReplicaImage:
    """Load and verify the snapshot; raises SnapshotError when it cannot be trusted."""
    path = directory / FILE_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot at {path}") from exc
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc}") from exc
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _DIGEST:
        raise SnapshotError(f"{path} is not a tarscascade snapshot")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        raise SnapshotError(f"{path} is torn or corrupted (checksum mismatch)")
    end = body.index(b"\n", len(MAGIC))
    try:
        header = json.loads(body[len(MAGIC) : end])
        pos = end + 1
        cats: dict[Category, CategoryImage] = {}
        for name, meta in header["categories"].items():
            n = int(meta["length"])
            cats[Category(name)] = CategoryImage(
                Version(str(meta["epoch"]), int(meta["revision"])),
                int(meta["digest"]),
                int(meta["count"]),
                body[pos : pos + n],
            )
            pos += n
        if pos != len(body):
            raise SnapshotError(f"{path}: payload lengths do not add up")
        return ReplicaImage(str(header["node"]), float(header["written_at"]), cats)
    except (KeyError, ValueError, TypeError) as exc:
        raise SnapshotError(f"{path}: bad header: {exc}") from exc


def age_seconds(image: ReplicaImage) -> float:
    return max(0.0, time.time() - image.written_at)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
