"""The registry core: the catalog kept in step with the store's change log.

Every change reaches the catalog the same way, whoever wrote it: a write goes to the
store (one transaction: rows + change-log rows + the revision counter), then
``catch_up`` reads the change log from the catalog's revision on and applies it in
order. So this registry's own writes, another registry's writes on a shared database,
and anti-entropy corrections are applied identically, in revision order, and a write
is acknowledged only once the catalog serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tarscascade.catalog import Catalog, QueryAnswerer
from tarscascade.errors import ChangeLogTrimmedError, StoreError
from tarscascade.model import Category, ChangeEvent, Op, Version
from tarscascade.registry.liveness import DEFAULT_NODE_TIMEOUT, Liveness
from tarscascade.store import Delete, Put, Snapshot, Store, WriteOp

log = logging.getLogger(__name__)

EventListener = Callable[[Sequence[ChangeEvent]], None]
CATEGORIES = tuple(Category)


@dataclass(slots=True)
class RegistryOptions:
    #: how often the change log is polled for other registries' writes (shared database)
    tail_interval: float = 0.25
    #: full reload + diff against the catalog (anti-entropy), seconds; 0 = off
    reload_interval: float = 60.0
    #: seconds without heartbeat before a node is dead; 0 turns the rule off on this registry
    node_timeout: float = DEFAULT_NODE_TIMEOUT
    liveness_interval: float = 2.0
    #: change-log rows kept in the database (older ones are trimmed)
    change_log_keep: int = 1_000_000
    trim_interval: float = 300.0
    catch_up_batch: int = 10_000
    clock: Callable[[], float] = field(default=time.time)


@dataclass(slots=True)
class RegistryStats:
    writes: int = 0
    events_applied: int = 0
    full_reloads: int = 0
    anti_entropy_events: int = 0
    liveness_events: int = 0
    tail_errors: int = 0


class RegistryCore:
    """Owns the catalog and the answer cache; ``run()`` drives the background loops."""

    def __init__(self, store: Store, options: RegistryOptions | None = None) -> None:
        self.store = store
        self.options = options or RegistryOptions()
        self.catalog = Catalog()
        self.answerer = QueryAnswerer(self.catalog)
        self.liveness = Liveness(self.options.node_timeout)
        self.stats = RegistryStats()
        self.epoch = ""
        self.revision = 0  # the store revision the catalog reflects
        self.started_at = 0.0
        self._apply_lock = asyncio.Lock()
        self._listeners: list[EventListener] = []
        self._reload_listeners: list[Callable[[], None]] = []
        self.ready = asyncio.Event()

    def add_listener(self, fn: EventListener) -> None:
        """``fn(events)`` after each batch is applied (the cascade hub subscribes here)."""
        self._listeners.append(fn)

    def add_reload_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` after a full reload replaced every category (no events were emitted:
        the cascade hub resets its change logs and resyncs nodes from here)."""
        self._reload_listeners.append(fn)

    @property
    def version(self) -> Version:
        return Version(self.epoch, self.revision)

    # ------------------------------------------------------------------ loading

    async def start(self) -> None:
        """Load everything from the store; the catalog then serves."""
        async with self._apply_lock:
            await self._reload_locked()
        self.started_at = self.options.clock()
        self.ready.set()

    async def _reload_locked(self) -> None:
        snap: Snapshot = await asyncio.to_thread(self.store.load)
        version = snap.version
        for cat in CATEGORIES:
            self.catalog.replace_category(cat, snap.records(cat), version)
        self.epoch, self.revision = snap.epoch, snap.revision
        self.stats.full_reloads += 1
        log.info("loaded %r", snap)
        for fn in self._reload_listeners:
            try:
                fn()
            except Exception:
                log.exception("reload listener failed")

    # ------------------------------------------------------------------ writes

    async def write(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> list[ChangeEvent]:
        """Write through the store, then apply; returns once the catalog serves the change."""
        events: list[ChangeEvent] = await asyncio.to_thread(
            self.store.write, list(ops), missing_ok=missing_ok
        )
        self.stats.writes += 1
        if events:
            await self.catch_up(events[-1].revision)
        return events

    async def catch_up(self, at_least: int = 0) -> int:
        """Apply the change log from the catalog's revision on; returns events applied."""
        async with self._apply_lock:
            if self.revision >= at_least > 0:
                return 0
            return await self._catch_up_locked()

    async def _catch_up_locked(self) -> int:
        applied = 0
        while True:
            try:
                batch: list[ChangeEvent] = await asyncio.to_thread(
                    self.store.changes_since, self.revision, self.options.catch_up_batch
                )
            except ChangeLogTrimmedError:
                log.warning("change log trimmed past revision %d: full reload", self.revision)
                await self._reload_locked()
                return applied
            if not batch:
                return applied
            self._apply(batch)
            applied += len(batch)
            if len(batch) < self.options.catch_up_batch:
                return applied

    def _apply(self, batch: list[ChangeEvent]) -> None:
        self.catalog.apply(batch, self.epoch)  # the answer cache follows via its listener
        self.revision = batch[-1].revision
        self.stats.events_applied += len(batch)
        for fn in self._listeners:
            try:
                fn(batch)
            except Exception:
                log.exception("event listener failed")

    # ------------------------------------------------------------------ anti-entropy

    async def reconcile(self) -> int:
        """Full reload diffed against the catalog (TARS's deletion-safe full load).

        Rows edited or deleted directly in the database have no change-log row; the
        difference is recorded through ``store.adopt`` as ordinary events (so other
        registries and every node see it) and applied. Returns events adopted.
        """
        async with self._apply_lock:
            await self._catch_up_locked()
            snap: Snapshot = await asyncio.to_thread(self.store.load)
            if snap.epoch != self.epoch:
                log.warning("store epoch changed %s -> %s: full reload", self.epoch, snap.epoch)
                await self._reload_locked()
                return 0
            if snap.revision > self.revision:
                await self._catch_up_locked()
            if snap.revision != self.revision:
                return 0  # written meanwhile; compare at the next round
            ops: list[WriteOp] = []
            for cat in CATEGORIES:
                for op, key, record in self.catalog.diff(cat, snap.records(cat)):
                    if op is Op.PUT and record is not None:
                        ops.append(Put(record))
                    else:
                        ops.append(Delete(cat, key))
            if not ops:
                return 0
            events: list[ChangeEvent] = await asyncio.to_thread(self.store.adopt, ops)
            log.warning("anti-entropy: %d rows changed behind the registry's back", len(events))
            self.stats.anti_entropy_events += len(events)
            await self._catch_up_locked()
            return len(events)

    # ------------------------------------------------------------------ liveness

    def heartbeat(self, node: str) -> None:
        self.liveness.heartbeat(node, self.options.clock())

    async def check_liveness(self) -> int:
        if self.options.node_timeout <= 0:
            return 0  # liveness off here (another registry on the same database judges)
        nodes = self.catalog.records(Category.NODES)
        changes = self.liveness.transitions(
            nodes,  # type: ignore[arg-type]
            self.options.clock(),
            self.started_at,
        )
        if not changes:
            return 0
        events = await self.write([Put(n) for n in changes])
        self.stats.liveness_events += len(events)
        return len(events)

    # ------------------------------------------------------------------ loops

    async def run(self) -> None:
        """Background loops until cancelled: tail, anti-entropy, liveness, trim."""
        opts = self.options
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._every(opts.tail_interval, self.catch_up, "tail"))
            if opts.reload_interval > 0:
                tg.create_task(self._every(opts.reload_interval, self.reconcile, "reconcile"))
            if opts.node_timeout > 0:
                tg.create_task(self._every(opts.liveness_interval, self.check_liveness, "liveness"))
            tg.create_task(self._every(opts.trim_interval, self._trim, "trim"))

    async def _trim(self) -> int:
        n: int = await asyncio.to_thread(self.store.trim_change_log, self.options.change_log_keep)
        return n

    async def _every(self, interval: float, fn: Callable[[], object], name: str) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except StoreError as exc:
                # the database is down or busy: keep serving from memory, retry next round
                self.stats.tail_errors += 1
                log.warning("%s: %s", name, exc)
            except Exception:
                log.exception("%s failed", name)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            self.answerer.close()
