"""Who waits for which object: blocking HTTP lookups and pushed QueryF subscribers.

Each object carries an *index*: the revision of the last change that touched it (the
whole-category revision after a snapshot), except that an index never goes backwards
within one node process: a change whose revision is not above the last index given
out (a new lineage numbers from 1 again; a replica restored from disk) gets the last
index + 1. Like Consul's, the index resets only when the node restarts: a client
whose index is above the answer's must start again from the answer's. A blocking
lookup (``?index=N&wait=30s``) returns as soon as the object's index passes N. A TARS
client that called ``registerQuery`` on this connection is pushed
``tarscascade.objectChanged`` with the object id when the object changes, and
re-queries. Subscriptions are bounded per connection, per peer (its IP; a local
process's uid on Linux, so one local user cannot take every other's pushes away) and in
total; a connection that went away is dropped at the next push. A subscription refused
for a budget answers -1: that client polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol

from tarscascade.wire.idl.queryf import OBJECT_CHANGED, encode_object_changed

MAX_SUBSCRIPTIONS_PER_CONNECTION = 10_000
MAX_SUBSCRIPTIONS_PER_PEER = 100_000
MAX_SUBSCRIPTIONS = 1_000_000


class Pusher(Protocol):
    def push(self, func: str, body: bytes) -> bool: ...

    def add_close_callback(self, fn: Callable[[], None]) -> None: ...


class ObjectWatch:
    def __init__(
        self,
        *,
        per_connection: int = MAX_SUBSCRIPTIONS_PER_CONNECTION,
        per_peer: int = MAX_SUBSCRIPTIONS_PER_PEER,
        total: int = MAX_SUBSCRIPTIONS,
    ) -> None:
        self.per_connection = per_connection
        self.per_peer = per_peer
        self.total = total
        self.refused = 0
        self.index: dict[str, int] = {}
        self.floor = 0  # index of objects not in `index` (the last snapshot's revision)
        #: the highest index given out: the next change gets more
        self.last = 0
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subs: dict[str, set[Pusher]] = {}
        self._per_conn: dict[int, int] = {}
        self._per_peer: dict[str, int] = {}
        self._peer_of: dict[int, str] = {}
        self._total = 0
        self.pushes = 0

    def index_of(self, object_id: str) -> int:
        return self.index.get(object_id, self.floor)

    def changed(self, object_ids: Iterable[str] | None, revision: int) -> None:
        """Objects changed at ``revision``; None = every object (a snapshot)."""
        revision = self.last = max(revision, self.last + 1)
        if object_ids is None:
            self.index.clear()
            self.floor = revision
            targets: Iterable[str] = list(set(self._waiters) | set(self._subs))
        else:
            targets = list(object_ids)
            for oid in targets:
                self.index[oid] = revision
        for oid in targets:
            for fut in self._waiters.pop(oid, ()):
                if not fut.done():
                    fut.set_result(None)
            subs = self._subs.get(oid)
            if subs:
                body = encode_object_changed(oid)
                for p in list(subs):
                    if p.push(OBJECT_CHANGED, body):
                        self.pushes += 1
                    else:
                        self._drop(oid, p)

    async def wait(self, object_id: str, index: int, timeout: float) -> int:
        """Return the object's index once it passes ``index``, or after ``timeout``."""
        if self.index_of(object_id) > index or timeout <= 0:
            return self.index_of(object_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(object_id, set()).add(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(object_id)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[object_id]
        return self.index_of(object_id)

    def subscribe(self, object_id: str, pusher: Pusher, peer: str = "") -> bool:
        """Push ``object_id``'s changes to ``pusher``; False when a budget is spent (the
        connection's, ``peer``'s, or the total)."""
        subs = self._subs.setdefault(object_id, set())
        if pusher in subs:
            return True
        key = id(pusher)
        peer = self._peer_of.get(key, peer)
        if (
            self._per_conn.get(key, 0) >= self.per_connection
            or self._per_peer.get(peer, 0) >= self.per_peer
            or self._total >= self.total
        ):
            if not subs:
                del self._subs[object_id]
            self.refused += 1
            return False
        subs.add(pusher)
        if key not in self._per_conn:
            # first subscription of this connection: forget them all when it closes
            pusher.add_close_callback(lambda: self.drop_all(pusher))
            self._peer_of[key] = peer
        self._per_conn[key] = self._per_conn.get(key, 0) + 1
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        self._total += 1
        return True

    def drop_all(self, pusher: Pusher) -> None:
        """Forget every subscription of one connection (it closed)."""
        gone = [oid for oid, subs in self._subs.items() if pusher in subs]
        for oid in gone:
            self._drop(oid, pusher)

    def _drop(self, object_id: str, pusher: Pusher) -> None:
        subs = self._subs.get(object_id)
        if subs is None or pusher not in subs:
            return
        subs.discard(pusher)
        if not subs:
            del self._subs[object_id]
        key = id(pusher)
        left = self._per_conn.get(key, 1) - 1
        peer = self._peer_of.get(key, "")
        if left <= 0:
            self._per_conn.pop(key, None)
            self._peer_of.pop(key, None)
        else:
            self._per_conn[key] = left
        by_peer = self._per_peer.get(peer, 1) - 1
        if by_peer <= 0:
            self._per_peer.pop(peer, None)
        else:
            self._per_peer[peer] = by_peer
        self._total -= 1

    @property
    def subscriptions(self) -> int:
        return self._total

    @property
    def waiters(self) -> int:
        return sum(len(w) for w in self._waiters.values())
