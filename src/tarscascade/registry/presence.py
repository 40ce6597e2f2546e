"""One registry's part in a tier of registries on one database: shared liveness, one
judge, and the acknowledgements a drain on another registry waits for.

* **Sightings.** Every node a registry hears from (its own sessions, and the
  descendants its relays list) is written to ``tc_node_seen`` as an age on the
  database's clock: a node new here at the next tick, then every ``sighting_interval``
  (``node_timeout / 3``). Nothing else is shared per heartbeat.
* **One judge.** Only the holder of the ``liveness`` lease (``tc_leases``, expiry on the
  database's clock) judges nodes, by the newest sighting over all registries merged into
  its own; the others do not compete while it renews. A judge that dies stops renewing:
  another takes over within ``lease_ttl`` + one liveness round. A judge that stops
  cleanly releases the lease at once.
* **Drains across the tier.** A drain records a wait in ``tc_drain_waits`` before it
  writes; while any wait is there, every registry writes the objects version its nodes
  hold as it moves (every ``ack_interval``), so the waiting registry sees the
  acknowledgements of nodes connected anywhere. A registry notices a new wait at the
  change that comes with it (the drain's write wakes it; a stream of writes, once per
  ``ack_interval``) or within ``wait_poll``.

Why the database and not registry-to-registry links: the tier already shares it, every
registry can reach it, it needs no membership or addresses, and its cost is a few rows
per second at most (a drain's acks are coalesced per ``ack_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tarscascade.cascade.states import is_at_least
from tarscascade.errors import StoreError
from tarscascade.model import Category, ChangeEvent, NodeRecord, State, Version
from tarscascade.store.presence import PresenceTable, Sighting

if TYPE_CHECKING:
    from tarscascade.cascade import CascadeHub
    from tarscascade.registry.core import RegistryCore

log = logging.getLogger(__name__)

LIVENESS_LEASE = "liveness"
#: the judge's lease: it renews every liveness round (2 s), so a stalled or dead judge
#: is replaced within this plus one round
DEFAULT_LEASE_TTL = 6.0
#: with liveness off (node_timeout 0) sightings are still shared this often
DEFAULT_SIGHTING_INTERVAL = 10.0
DEFAULT_ACK_INTERVAL = 0.1
#: a drain's wait is noticed at once through the drain's own write (it wakes every
#: registry's tail, then this loop); the poll only covers a drain that wrote nothing
DEFAULT_WAIT_POLL = 2.0
#: sightings of nodes not heard of for this long are deleted (removed, renamed nodes)
FORGET_AFTER_S = 7 * 24 * 3600.0
#: how long a node may go unseen (when liveness is off here) before a drain calls it offline
DEFAULT_OFFLINE_AFTER = 30.0


@dataclass(slots=True)
class TierOptions:
    #: how often a known node's sighting is refreshed in the database; None = timeout / 3
    sighting_interval: float | None = None
    lease_ttl: float = DEFAULT_LEASE_TTL
    #: while a drain waits somewhere: how often moved held versions are written
    ack_interval: float = DEFAULT_ACK_INTERVAL
    #: how often a registry looks for drain waits when it knows of none
    wait_poll: float = DEFAULT_WAIT_POLL


@dataclass(slots=True)
class TierStats:
    sightings_written: int = 0
    acks_written: int = 0
    judge_terms: int = 0  # times this registry became the judge
    failures: int = 0


@dataclass(frozen=True, slots=True)
class WaitSet:
    """Whom a drain waits for: registered nodes alive somewhere (and any node connected
    here), and the registered ones that are offline (dead, or unseen for a timeout)."""

    nodes: list[str]
    offline: list[str]


def registry_id() -> str:
    """A name for this registry process in the tier's tables: host, pid and a nonce."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def due_sightings(
    heard: dict[str, float],
    written: dict[str, tuple[float, float]],
    now: float,
    interval: float,
) -> list[str]:
    """Nodes whose sighting to write now: heard later than the sighting last written
    (``written``: the time it said, and when it was written) and either never written
    here or written at least ``interval`` ago. A vouched sighting is older than its
    write (``RegistryCore.vouch``), so the two times are kept apart. Pure."""
    out = []
    for node, at in heard.items():
        last = written.get(node)
        if last is None or (at > last[0] and now - last[1] >= interval):
            out.append(node)
    return out


@dataclass(eq=False)
class TierPresence:
    """See the module doc. ``hub`` is attached once the cascade runs."""

    core: RegistryCore
    table: PresenceTable
    options: TierOptions = field(default_factory=TierOptions)
    id: str = field(default_factory=registry_id)
    hub: CascadeHub | None = None
    stats: TierStats = field(default_factory=TierStats)
    judge: str = ""  # who judges, as of the last round ("" = unknown or nobody)
    #: drain waits in the tier as of the last look (objects versions)
    waits: list[Version] = field(default_factory=list)
    #: nodes this registry heard from itself (its sessions, its relays' lists) -> when;
    #: the core's liveness also holds what the judge merged from the others: not ours
    heard: dict[str, float] = field(default_factory=dict)
    #: node -> (the time its last sighting said, local time it was written)
    _written: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: when the lease this registry holds runs out (monotonic; 0 = it holds none)
    _judge_until: float = 0.0
    _acks_written: dict[str, Version | None] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # ------------------------------------------------------------------ options

    @property
    def sighting_interval(self) -> float:
        if self.options.sighting_interval is not None:
            return self.options.sighting_interval
        timeout = self.core.options.node_timeout
        return timeout / 3 if timeout > 0 else DEFAULT_SIGHTING_INTERVAL

    @property
    def sighting_lag(self) -> float:
        """How much older than this registry's own view the judge's can be: a sighting
        waits for its interval, then for the flush tick."""
        return self.sighting_interval + self._flush_tick()

    def _flush_tick(self) -> float:
        opts = self.options
        return opts.ack_interval if self.waits else min(opts.wait_poll, 1.0)

    @property
    def offline_after(self) -> float:
        timeout = self.core.options.node_timeout
        return timeout if timeout > 0 else DEFAULT_OFFLINE_AFTER

    # ------------------------------------------------------------------ events

    def on_events(self, batch: Sequence[ChangeEvent]) -> None:
        """A change to objects may be a drain's: look for waits now, not at the poll."""
        if any(ev.category is Category.OBJECTS for ev in batch):
            self._wake.set()

    # ------------------------------------------------------------------ judging

    @property
    def is_judge(self) -> bool:
        """Holds the liveness lease now: taken or renewed at the last round, and not run
        out since (a registry whose loop stalled past its lease stops calling itself the
        judge at once, not at its next round, as another may have taken over)."""
        return time.monotonic() < self._judge_until

    def give_up(self) -> None:
        """Stop judging without telling the database (as a process that dies does)."""
        self._judge_until = 0.0

    async def judge_round(self) -> bool:
        """Take or renew the liveness lease; as the judge, merge every registry's
        sightings into the core's liveness. Returns whether this registry judges."""
        opts = self.options
        asked = time.monotonic()  # the lease runs from no later than this
        was_judge = self.is_judge
        try:
            lease = await asyncio.to_thread(
                self.table.acquire, LIVENESS_LEASE, self.id, opts.lease_ttl
            )
        except StoreError as exc:
            self._failed("the liveness lease", exc)
            return False
        self.judge = lease.holder
        self._judge_until = asked + opts.lease_ttl if lease.held else 0.0
        if lease.held and not was_judge:
            self.stats.judge_terms += 1
            log.warning(
                "this registry (%s) judges node liveness for the tier",
                self.id,
                extra={"event": "judge_elected", "registry": self.id},
            )
        if not self.is_judge:
            return False
        try:
            # its own sightings are in the core's liveness already (and fresher)
            ages = await asyncio.to_thread(self.table.newest, self.id)
        except StoreError as exc:
            self._failed("node sightings", exc)
            return False  # judge on what we know at the next round, not on half of it
        now = self.core.options.clock()
        self.core.liveness.merge({node: now - age for node, age in ages.items()})
        return True

    # ------------------------------------------------------------------ sightings

    async def flush(self) -> int:
        """Write the sightings that are due, and while drains wait, moved held versions."""
        core = self.core
        now = core.options.clock()
        heard = self.heard
        names = due_sightings(heard, self._written, now, self.sighting_interval)
        acks = self._moved_acks() if self.waits else {}
        todo = set(names) | set(acks)
        if not todo:
            return 0
        tracker = self.hub.tracker if self.hub is not None else None
        rows = []
        said: dict[str, float] = {}  # heard may move while the rows are written
        for name in sorted(todo):
            at = heard.get(name)
            if at is None:
                continue  # never heard here: nothing to vouch for
            held = acks.get(name)
            if held is None and tracker is not None and (st := tracker.get(name)) is not None:
                held = tracker.held(st, Category.OBJECTS)
            rows.append(Sighting(name, max(0.0, now - at), held))
            said[name] = at
        if not rows:
            return 0
        await asyncio.to_thread(self.table.record, self.id, rows)
        for row in rows:
            self._written[row.node] = (said[row.node], now)
            self._acks_written[row.node] = row.objects
        self.stats.sightings_written += len(rows)
        self.stats.acks_written += len(acks)
        return len(rows)

    def _moved_acks(self) -> dict[str, Version | None]:
        """Connected nodes whose held objects version moved since last written."""
        if self.hub is None:
            return {}
        tracker = self.hub.tracker
        out: dict[str, Version | None] = {}
        for st in tracker.states():
            if not st.connected:
                continue
            held = tracker.held(st, Category.OBJECTS)
            if held != self._acks_written.get(st.name, None) or st.name not in self._acks_written:
                out[st.name] = held
        return out

    # ------------------------------------------------------------------ drains

    async def wait_set(self) -> WaitSet:
        """Registered nodes (setting state active) alive somewhere, plus every node
        connected here; the registered ones judged dead, or last seen longer than a node
        timeout ago, are offline."""
        core = self.core
        connected = self.hub.tracker.connected_names() if self.hub is not None else set()
        records: list[NodeRecord] = core.catalog.records(Category.NODES)  # type: ignore[assignment]
        registered = {n.name: n for n in records if n.setting_state is State.ACTIVE}
        try:
            # its own sightings are in the core's liveness already (and fresher)
            ages = await asyncio.to_thread(self.table.newest, self.id)
        except StoreError as exc:
            self._failed("node sightings", exc)
            ages = {}
        now = core.options.clock()
        offline = []
        for name, rec in registered.items():
            if name in connected:
                continue
            here = core.liveness.last_seen.get(name)
            age = min(ages.get(name, math.inf), now - here if here is not None else math.inf)
            # a registered node nobody has shared a sighting of yet (it has just connected
            # to another registry, whose next round writes it) is waited for, not offline:
            # only the judge's verdict or a sighting older than a timeout makes it offline
            unseen_long = age != math.inf and age > self.offline_after
            if rec.present_state is not State.ACTIVE or unseen_long:
                offline.append(name)
        nodes = (set(registered) - set(offline)) | connected
        return WaitSet(sorted(nodes), sorted(offline))

    async def open_wait(self, version: Version, ttl: float) -> str | None:
        """Tell the tier a drain waits (before its write); None if it could not."""
        wait_id = uuid.uuid4().hex
        try:
            await asyncio.to_thread(self.table.add_wait, wait_id, self.id, version, ttl)
        except StoreError as exc:
            self._failed("a drain wait", exc)
            return None
        self.waits = [*self.waits, version]
        self._wake.set()
        return wait_id

    async def close_wait(self, wait_id: str | None) -> None:
        if wait_id is None:
            return
        with contextlib.suppress(StoreError):
            await asyncio.to_thread(self.table.remove_wait, wait_id)

    async def acked_elsewhere(self, nodes: Collection[str], version: Version) -> set[str]:
        """Of ``nodes``, those some registry wrote as holding ``version`` or later."""
        if not nodes:
            return set()
        try:
            rows = await asyncio.to_thread(self.table.seen, nodes)
        except StoreError as exc:
            self._failed("node acknowledgements", exc)
            return set()
        return {r.node for r in rows if is_at_least(r.objects, version)}

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """Share sightings, watch for drain waits; until cancelled."""
        opts = self.options
        next_look = 0.0
        looked = -math.inf
        next_flush = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            try:
                if now >= next_look or self._wake.is_set():
                    # Writes wake this loop: a stream of them costs one look per
                    # ack_interval, not a query each (0.5 ms of CPU per write, issue 17).
                    # A drain elsewhere is noticed at most that much later.
                    early = looked + opts.ack_interval - now
                    if early > 0:
                        await asyncio.sleep(early)
                    self._wake.clear()
                    looked = loop.time()
                    before = self.waits
                    self.waits = await asyncio.to_thread(self.table.waits)
                    if self.waits and not before and self.hub is not None:
                        # a drain elsewhere waits: changes our nodes were sent before it
                        # (lazily acknowledged) are acknowledged now
                        self.hub.ask_acks_now()
                        next_flush = 0.0  # and written from now on
                    next_look = looked + (opts.ack_interval if self.waits else opts.wait_poll)
                # on its own tick, not at every write that woke the loop (O(nodes) each)
                now = loop.time()
                if now >= next_flush:
                    await self.flush()
                    next_flush = now + self._flush_tick()
            except StoreError as exc:
                self._failed("the tier's tables", exc)
            except Exception:
                log.exception("tier presence round failed")
            delay = self._flush_tick()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that lands as the event is set, and this loop would then never end
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def forget_old(self) -> int:
        n: int = await asyncio.to_thread(self.table.forget_older_than, FORGET_AFTER_S)
        return n

    async def aclose(self) -> None:
        """Give the judge's lease up, so another registry judges at once."""
        if self.is_judge:
            self._judge_until = 0.0
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.table.release, LIVENESS_LEASE, self.id)

    def _failed(self, what: str, exc: StoreError) -> None:
        self.stats.failures += 1
        log.warning("tier: %s: %s", what, exc)


__all__ = [
    "DEFAULT_LEASE_TTL",
    "LIVENESS_LEASE",
    "TierOptions",
    "TierPresence",
    "TierStats",
    "WaitSet",
    "due_sightings",
    "registry_id",
]
