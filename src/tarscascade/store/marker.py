"""The lineage marker: a small file beside a SQLite database, the registry's memory of it.

``registry.db`` gets ``registry.db.lineage.json`` in the same directory, holding what a
registry last served from it: epoch, revision, endpoint count. It outlives the database
file, which is the point:

* a database file missing where the marker says one was (deleted, a wrong path, a
  missing volume) is not silently recreated empty: that needs ``--init``;
* a database restored or replaced while no registry ran is noticed at the next start
  (a lower revision, or an epoch that does not descend from the marker's);
* the size of the lineage it replaces is known, for the mass-change guard.

Written atomically (temporary file, fsync, rename, fsync of the directory). It is advice,
not data: an unreadable marker still counts as "a database was here", and nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path

from tarscascade.store.base import Served

log = logging.getLogger(__name__)

MARKER_SUFFIX = ".lineage.json"
_FORMAT = 1


def marker_path(database: Path) -> Path:
    return database.with_name(database.name + MARKER_SUFFIX)


def read_marker(path: Path) -> Served | None:
    """The marker's content; None when absent or unreadable (``path.exists()`` tells which)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Served(str(data["epoch"]), int(data["revision"]), int(data["endpoints"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable lineage marker %s: %s", path, exc)
        return None


def write_marker(path: Path, served: Served) -> None:
    body = json.dumps(
        {
            "format": _FORMAT,
            "epoch": served.epoch,
            "revision": served.revision,
            "endpoints": served.endpoints,
            "written_at": time.time(),
            "note": "tarscascade: what a registry last served from the database beside me",
        },
        indent=1,
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
