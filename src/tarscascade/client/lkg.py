"""The last-known-good endpoint file: a restarted process calls out while the node is down.

One JSON file per communicator (like TarsGo's ``<server>.tarsdat`` and TarsCpp's
AppCache): for each resolved object (keyed by object id, plus ``#set=`` when set routing
is on) its active and inactive endpoints as TARS endpoint strings, and the locator they
came from. Entries saved under a different locator are ignored. Writes are atomic (a temp
file in the same directory, fsync, ``os.replace``), so a crash never leaves half a file;
an unreadable file is reported and treated as empty.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarscascade.errors import EndpointSyntaxError
from tarscascade.wire.endpoint import Endpoint, format_endpoint, parse_endpoint

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True, slots=True)
class EndpointList:
    """An object's endpoints as last resolved; ``source`` says where they came from
    (``"locator"``, ``"lkg"``, ``"direct"``, or ``""`` when nothing is known)."""

    active: tuple[Endpoint, ...] = ()
    inactive: tuple[Endpoint, ...] = ()
    source: str = ""

    def same_endpoints(self, other: EndpointList) -> bool:
        return self.active == other.active and self.inactive == other.inactive


def lkg_key(object_id: str, set_division: str = "") -> str:
    return f"{object_id}#set={set_division}" if set_division else object_id


class LkgFile:
    def __init__(self, path: str | os.PathLike[str], locator: str) -> None:
        self.path = Path(path)
        self.locator = locator
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # saves run in worker threads
        self.writes = 0

    def load(self) -> dict[str, EndpointList]:
        """Read the file (missing: empty). Keeps its entries so later saves preserve them."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable last-known-good file %s: %s", self.path, exc)
            return {}
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            log.warning("ignoring last-known-good file %s: unknown format", self.path)
            return {}
        if doc.get("locator") != self.locator:
            log.warning(
                "ignoring last-known-good file %s: saved for locator %r, not %r",
                self.path,
                doc.get("locator"),
                self.locator,
            )
            return {}
        out: dict[str, EndpointList] = {}
        objects = doc.get("objects")
        for key, entry in (objects if isinstance(objects, dict) else {}).items():
            try:
                active = tuple(parse_endpoint(s) for s in entry["active"])
                inactive = tuple(parse_endpoint(s) for s in entry["inactive"])
            except (KeyError, TypeError, EndpointSyntaxError) as exc:
                log.warning("last-known-good %s: skipping %r: %s", self.path, key, exc)
                continue
            out[key] = EndpointList(active, inactive, "lkg")
            with self._lock:
                self._entries[key] = entry
        return out

    def save(self, key: str, endpoints: EndpointList) -> None:
        """Record ``key``'s list and rewrite the file atomically (blocking: run in a thread)."""
        entry = {
            "active": [format_endpoint(e) for e in endpoints.active],
            "inactive": [format_endpoint(e) for e in endpoints.inactive],
            "saved_at": time.time(),
        }
        with self._lock:
            self._entries[key] = entry
            doc = {"format": FORMAT, "locator": self.locator, "objects": self._entries}
            data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.writes += 1

    def __repr__(self) -> str:
        return f"<LkgFile {self.path} entries={len(self._entries)}>"
