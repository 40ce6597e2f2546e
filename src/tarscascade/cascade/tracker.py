"""Which version every downstream node holds, and waiting until they all hold one.

Fed by heartbeats and one-way acks (the node's own, and those it relays for its
descendants). ``wait`` answers the drain question "has every node applied revision
r?" as soon as the last ack arrives: each waiter keeps the set of nodes still behind
and each ack only touches the waiters that wait for that node.

A relay's heartbeat lists every descendant; its acks carry only a *floor* per
category: a version every descendant holds at least. So an ack costs the same with
1,000 leaves as with one, and a node behind a relay holds the better of what it last
reported and its relay's floor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from tarscascade.cascade.states import Held, is_at_least
from tarscascade.model import Category, Version


@dataclass(slots=True)
class NodeState:
    """One downstream node as the upstream sees it."""

    name: str
    address: str = ""
    connected: bool = False
    #: the relay that reported this node; "" for a node with its own session here
    via: str = ""
    held: dict[Category, Version] = field(default_factory=dict)
    digests: dict[Category, int] = field(default_factory=dict)
    #: revisions behind the upstream per category; None when on another epoch
    lag: dict[Category, int | None] = field(default_factory=dict)
    last_heartbeat: float = 0.0  # unix seconds; 0 = never
    last_ack: float = 0.0
    #: the longest silence to expect between two heartbeats, s: what its session
    #: announced or was granted, or for a node a relay reports, the relay's (its times
    #: here are the relay's heartbeats); 0 = not known
    quiet_s: float = 0.0
    #: its latest proof for the relay it is connected to (passed upstream; "" = none)
    proof: str = ""
    snapshots_sent: int = 0
    deltas_sent: int = 0


class NodeView(NamedTuple):
    """What the fleet log compares every round, per node: the fields of
    :class:`NodeState` it reads, with what the node holds and its lag worked out, and
    nothing copied that it does not read (``CascadeHub.fleet_view``)."""

    connected: bool
    via: str
    address: str
    held: dict[Category, Version]
    lag: dict[Category, int | None]
    last_heartbeat: float
    last_ack: float
    quiet_s: float


#: a downstream's heartbeat interval is jittered by up to a fifth: one is late past a quarter
LATE_FACTOR = 1.25
#: a connected node not heard from for this long, or for two of its intervals when they
#: are longer, is stale (the fleet log's and the dashboard's word for a silent node)
STALE_AFTER_S = 15.0


def heard_at(st: NodeState | NodeView) -> float:
    """When the node was last heard from (heartbeat or ack); 0 = never."""
    return max(st.last_heartbeat, st.last_ack)


def is_silent(st: NodeState | NodeView, now: float) -> bool:
    """Connected, but not heard from for longer than its heartbeats allow."""
    heard = heard_at(st)
    return bool(heard) and now - heard > max(STALE_AFTER_S, 2.0 * st.quiet_s)


def vouched_at(st: NodeState | NodeView, now: float, bound: float) -> float | None:
    """When a connected node is known to have been alive, though it may be silent: a
    connection the kernel keeps open (its own here, or its relay's, which reports a lost
    descendant at once) proves its host answered within ``bound`` (the keepalive's
    ``detection_bound``), but never later than its next heartbeat was due, so a proxy
    that answers for a dead peer cannot keep it alive for more than one interval.
    None when it is not connected or never heard from."""
    heard = heard_at(st)
    if not st.connected or not heard:
        return None
    return min(now - bound, heard + st.quiet_s * LATE_FACTOR)


@dataclass(slots=True, eq=False)
class _Waiter:
    category: Category
    version: Version
    pending: set[str]
    done: asyncio.Future[None]


class AckTracker:
    def __init__(self, max_offline: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.max_offline = max_offline
        self.clock = clock
        self._nodes: dict[str, NodeState] = {}
        self._children: dict[str, set[str]] = {}
        self._offline: dict[str, None] = {}  # insertion-ordered: oldest first
        self._waiters: set[_Waiter] = set()
        #: per relay: a version per category that every one of its descendants holds
        self._floors: dict[str, dict[Category, Version]] = {}
        #: descendants forgotten so far (their relay stopped listing them, or ended)
        self.forgotten = 0

    # ------------------------------------------------------------------ updates

    def connected(self, name: str, address: str) -> NodeState:
        st = self._nodes.get(name)
        if st is None:
            st = self._nodes[name] = NodeState(name)
        st.address, st.connected, st.via = address, True, ""
        self._offline.pop(name, None)
        return st

    def disconnected(self, name: str) -> None:
        st = self._nodes.get(name)
        if st is None or st.via:
            return
        st.connected = False
        self._offline[name] = None
        self._floors.pop(name, None)
        for child in self._children.pop(name, ()):
            self._forget_child(name, child)
        while len(self._offline) > self.max_offline:
            old = next(iter(self._offline))
            del self._offline[old]
            self._nodes.pop(old, None)

    def record(self, name: str, held: dict[Category, Held], *, heartbeat: bool) -> None:
        st = self._nodes.get(name)
        if st is None:
            return
        self._store(st, held, heartbeat)

    def touch(self, name: str) -> None:
        """A heartbeat that repeated the node's previous one: only its time moves."""
        st = self._nodes.get(name)
        if st is not None:
            st.last_heartbeat = self.clock()

    def record_descendants(
        self,
        relay: str,
        acks: dict[str, dict[Category, Held]],
        *,
        heartbeat: bool,
        addresses: dict[str, str] | None = None,
        proofs: dict[str, str] | None = None,
    ) -> list[str]:
        """A relay's full list of its descendants; those it no longer lists are forgotten.

        Returns the names that are new here or changed address (to be registered).
        """
        before = self._children.get(relay, set())
        now: set[str] = set()
        fresh: list[str] = []
        addresses = addresses or {}
        proofs = proofs or {}
        reporter = self._nodes.get(relay)
        quiet = reporter.quiet_s if reporter is not None else 0.0  # its times are the relay's
        for name, held in acks.items():
            st = self._nodes.get(name)
            if st is not None and st.connected and not st.via:
                continue  # it has its own session here: that is the better source
            if st is None:
                st = self._nodes[name] = NodeState(name)
            address = addresses.get(name, st.address)
            if st.via != relay or address != st.address or not st.connected:
                fresh.append(name)
            st.via, st.connected, st.address = relay, True, address
            st.proof = proofs.get(name, st.proof)
            st.quiet_s = quiet
            self._offline.pop(name, None)
            now.add(name)
            self._store(st, held, heartbeat)
        for gone in before - now:
            self._forget_child(relay, gone)
        if now:
            self._children[relay] = now
        else:
            self._children.pop(relay, None)
        return fresh

    def record_floor(self, relay: str, floor: dict[Category, Version]) -> None:
        """A relay says every one of its descendants holds at least ``floor`` (empty: it
        has none; a category at NO_VERSION: some descendant holds none of it)."""
        if relay not in self._nodes:
            return
        self._floors[relay] = dict(floor)
        if not self._waiters:
            return
        relay_st = self._nodes[relay]
        children = self._children.get(relay, set())
        for w in list(self._waiters):
            if relay in w.pending and self.satisfies(relay_st, w.category, w.version):
                w.pending.discard(relay)
            v = floor.get(w.category)
            if v is not None and is_at_least(v, w.version):
                for name in [n for n in w.pending if n in children]:
                    w.pending.discard(name)
            if not w.pending and not w.done.done():
                w.done.set_result(None)

    def held(self, st: NodeState, cat: Category) -> Version | None:
        """What ``st`` holds of ``cat``: its own report, or its relay's floor if better."""
        own = st.held.get(cat)
        if not st.via:
            return own
        floor = self._floors.get(st.via, {}).get(cat)
        if floor is None or not floor.epoch:
            return own
        if own is None or (own.epoch == floor.epoch and own.revision < floor.revision):
            return floor
        return own

    def covered(self, st: NodeState, cat: Category) -> Version | None:
        """A version ``st`` and every node behind it (if it is a relay) hold at least."""
        own = self.held(st, cat)
        floor = self._floors.get(st.name)
        if not floor or own is None:
            return own
        low = floor.get(cat)
        if low is None or not low.epoch or low.epoch != own.epoch:
            return None
        return low if low.revision < own.revision else own

    def satisfies(self, st: NodeState, cat: Category, version: Version) -> bool:
        """Whether ``st`` (and, for a relay, all behind it) has ``version`` or later."""
        return is_at_least(self.covered(st, cat), version)

    def behind(self, cat: Category, version: Version, names: Iterable[str]) -> set[str]:
        """Of ``names``, those not known to hold ``version`` or later (unknown ones too)."""
        nodes = self._nodes
        return {
            n for n in names if (st := nodes.get(n)) is None or not self.satisfies(st, cat, version)
        }

    def floor(self) -> dict[Category, Version]:
        """Per category, a version every connected node here (and behind it) holds at
        least, for a relay's acks: empty when there is no node; NO_VERSION for a
        category some node holds none of (or of another lineage)."""
        nodes = [st for st in self._nodes.values() if st.connected]
        if not nodes:
            return {}
        out: dict[Category, Version] = {}
        for cat in Category:
            low: Version | None = None
            for st in nodes:
                v = self.covered(st, cat)
                if v is None or not v.epoch or (low is not None and v.epoch != low.epoch):
                    low = None
                    break
                if low is None or v.revision < low.revision:
                    low = v
            out[cat] = low if low is not None else Version("", 0)
        return out

    def _forget_child(self, relay: str, name: str) -> None:
        st = self._nodes.get(name)
        if st is not None and st.via == relay:
            del self._nodes[name]
            self.forgotten += 1

    def _store(self, st: NodeState, held: dict[Category, Held], heartbeat: bool) -> None:
        now = self.clock()
        if heartbeat:
            st.last_heartbeat = now
        else:
            st.last_ack = now
        for cat, h in held.items():
            st.held[cat] = h.version
            if h.digest is not None:
                st.digests[cat] = h.digest
        if self._waiters:
            self._check_waiters(st)

    def _check_waiters(self, st: NodeState) -> None:
        for w in list(self._waiters):
            if st.name in w.pending and self.satisfies(st, w.category, w.version):
                w.pending.discard(st.name)
                if not w.pending and not w.done.done():
                    w.done.set_result(None)

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> NodeState | None:
        return self._nodes.get(name)

    def states(self) -> list[NodeState]:
        return list(self._nodes.values())

    @property
    def waiting(self) -> bool:
        """Someone waits on :meth:`wait` now (a drain)."""
        return bool(self._waiters)

    def connected_names(self) -> set[str]:
        return {n for n, st in self._nodes.items() if st.connected}

    def descendants_of(self, relay: str) -> set[str]:
        return set(self._children.get(relay, ()))

    async def wait(
        self,
        category: Category,
        version: Version,
        nodes: Collection[str] | None,
        timeout: float,
    ) -> tuple[float, list[str]]:
        """Wait until every node (default: every connected one) holds >= ``version``.

        Returns ``(elapsed seconds, nodes still behind)``; the list is empty on success.
        A node that disconnects meanwhile stays pending: it may still serve the old data.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        cat = Category(category)
        pending = self.behind(cat, version, self.connected_names() if nodes is None else nodes)
        if pending:
            waiter = _Waiter(cat, version, pending, loop.create_future())
            self._waiters.add(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await waiter.done
            except TimeoutError:
                pass  # the caller gets the laggards
            finally:
                self._waiters.discard(waiter)
        return loop.time() - start, sorted(pending)
