"""Change notifications between registries on one PostgreSQL database.

Every write transaction sends ``NOTIFY`` on :data:`CHANNEL` (delivered at commit, once
per transaction); each registry keeps one extra connection that ``LISTEN``\\s and wakes
its tail at once, so a write through one registry is applied on the others within a few
milliseconds instead of at their next poll. The poll stays as the safety net: a lost
notification (the listening connection dropped and was being reopened) costs at most
one poll interval.

MySQL/MariaDB and SQLite have no such mechanism; their tail paces itself instead
(``registry.core.TailPacer``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "tarscascade_changes"
NOTIFY_SQL = f"NOTIFY {CHANNEL}"
#: how long one wait for notifications lasts before the thread checks it should stop
_WAIT_S = 1.0
#: after a failed connection, wait this long before the next try (doubling, capped)
_RETRY_S = (0.5, 10.0)


def listen(url: sa.URL, on_change: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_change()`` (from a thread) at every notification; returns ``stop``."""
    import psycopg  # only PostgreSQL needs it

    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    stopping = threading.Event()

    def run() -> None:
        retry = _RETRY_S[0]
        while not stopping.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    on_change()  # anything committed while we were not listening
                    retry = _RETRY_S[0]
                    while not stopping.is_set():
                        for _ in conn.notifies(timeout=_WAIT_S, stop_after=1):
                            on_change()
            except Exception as exc:  # the poll covers us meanwhile
                log.warning("change notifications interrupted (%s); retrying", exc)
                stopping.wait(retry)
                retry = min(retry * 2, _RETRY_S[1])

    thread = threading.Thread(target=run, name="tc-listen", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=_WAIT_S * 2)

    return stop
