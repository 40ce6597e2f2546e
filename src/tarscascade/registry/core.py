"""The registry core: the catalog kept in step with the store's change log.

Every change reaches the catalog the same way, whoever wrote it: a write goes to the
store (one transaction: rows + change-log rows + the revision counter), then
``catch_up`` reads the change log from the catalog's revision on and applies it in
order. So this registry's own writes, another registry's writes on a shared database,
and anti-entropy corrections are applied identically, in revision order. A write is
acknowledged once committed; normally the catalog serves it by then, and when catching
up failed the answer says so (``Committed.applied``) rather than calling it failed.

Lineage. What the catalog serves is remembered (epoch, revision, endpoint count); when
the database stops continuing it (another epoch, a lower revision, a replaced SQLite
file: the store raises ``EpochChangedError``), the core reopens the store, settles the
lineage (``store.resolve_lineage``: a fresh epoch for a restore, unconfirmed if it loses
too much), reloads in full and serves the new lineage; the hub turns the reload into
snapshots. ``epoch_confirmed`` tells the cascade whether the fleet may take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tarscascade.cascade.rules import DEFAULT_GUARD_MAX_LOSS, DEFAULT_IDLE_HEARTBEAT
from tarscascade.catalog import Catalog, QueryAnswerer
from tarscascade.errors import (
    ChangeLogTrimmedError,
    ConflictError,
    EpochChangedError,
    NotFoundError,
    StoreError,
)
from tarscascade.model import Category, ChangeEvent, Op, Record, Version
from tarscascade.registry.liveness import DEFAULT_NODE_TIMEOUT, Liveness, idle_grant
from tarscascade.registry.presence import DEFAULT_LEASE_TTL, TierOptions, TierPresence
from tarscascade.store import (
    Commit,
    Delete,
    Lineage,
    Patch,
    Put,
    Served,
    Snapshot,
    Store,
    WriteOp,
)

log = logging.getLogger(__name__)

EventListener = Callable[[Sequence[ChangeEvent]], None]
LineageListener = Callable[[Lineage], None]
CATEGORIES = tuple(Category)
#: one threshold for both guards: the registry's (a new epoch that loses more of the
#: endpoints starts unconfirmed) and the cascade's (nodes hold such a lineage back)
DEFAULT_MAX_EPOCH_LOSS = DEFAULT_GUARD_MAX_LOSS
DEFAULT_UNHEALTHY_AFTER = 5


@dataclass(slots=True)
class RegistryOptions:
    #: the longest pause between two polls of the change log for other registries'
    #: writes (shared database) while nothing changes; while changes flow the tail polls
    #: every ``tail_fast`` and backs off by doubling (see ``TailPacer``); a PostgreSQL
    #: notification wakes it at once
    tail_interval: float = 0.25
    tail_fast: float = 0.02
    #: the tail stays at ``tail_fast`` this long after the last change it found
    tail_linger: float = 1.0
    #: after this long without a change the tail polls every ``tail_deep`` only
    tail_deep_after: float = 30.0
    tail_deep: float = 1.0
    #: where the store notifies (PostgreSQL LISTEN), the poll is a safety net only
    tail_notified_idle: float = 2.0
    #: full reload + diff against the catalog (anti-entropy), seconds; 0 = off
    reload_interval: float = 60.0
    #: the share of time anti-entropy may take: after a reload that took T seconds the
    #: next one waits ``max(reload_interval, T / reload_budget)`` (100,000 endpoints load
    #: in ~1 s: every 60 s that is ~2 % of a core spent finding nothing, most of the time)
    reload_budget: float = 0.01
    #: seconds without heartbeat before a node is dead; 0 turns the rule off on this registry
    node_timeout: float = DEFAULT_NODE_TIMEOUT
    liveness_interval: float = 2.0
    #: how long an idle cascade node may stay silent between heartbeats (s): granted
    #: when its connection can vouch for it inside the node timeout (:meth:`RegistryCore.
    #: idle_heartbeat_grant`); 0 = nodes keep their own idle interval
    idle_heartbeat: float = DEFAULT_IDLE_HEARTBEAT
    #: the liveness judge's lease (a tier of registries: one judges at a time)
    lease_ttl: float = DEFAULT_LEASE_TTL
    #: change-log rows kept in the database (older ones are trimmed)
    change_log_keep: int = 1_000_000
    trim_interval: float = 300.0
    catch_up_batch: int = 10_000
    #: a new epoch the registry starts (a detected restore, a replaced database) is left
    #: unconfirmed when it loses more than this fraction of the endpoints served before
    max_epoch_loss: float = DEFAULT_MAX_EPOCH_LOSS
    #: /healthz answers 503 after this many consecutive store failures (tail, writes, ...)
    unhealthy_after: int = DEFAULT_UNHEALTHY_AFTER
    #: how often the SQLite lineage marker is refreshed, at most (when the revision moved)
    marker_interval: float = 5.0
    clock: Callable[[], float] = field(default=time.time)


@dataclass(slots=True)
class RegistryStats:
    writes: int = 0
    events_applied: int = 0
    full_reloads: int = 0
    anti_entropy_events: int = 0
    liveness_events: int = 0
    tail_errors: int = 0
    #: store operations that failed (database down, file gone, ...), writes included
    store_failures: int = 0
    #: writes committed whose catch-up failed: acknowledged as "committed, catching up"
    writes_unapplied: int = 0
    #: writes whose own events were applied as committed, no change-log read back
    writes_applied_directly: int = 0
    #: lineage changes followed (new epochs started or adopted)
    lineage_changes: int = 0


@dataclass(frozen=True, slots=True)
class Committed:
    """A write the store committed: it is durable, whatever ``applied`` says."""

    events: list[ChangeEvent]
    revision: int  # the store revision that contains the write's effect
    records: list[Record | None]  # per op, the record as it is after the write
    applied: bool  # False: committed, but the catalog had not caught up when answering

    @classmethod
    def of(cls, commit: Commit, applied: bool) -> Committed:
        return cls(commit.events, commit.revision, commit.records, applied)


@dataclass(slots=True)
class TailPacer:
    """How long the tail waits before its next poll (pure; the time is passed in).

    * ``fast`` while changes flow and for ``linger`` seconds after the last one: writes
      from another registry, steady or in bursts, are seen within ~``fast``;
    * then doubling up to ``idle``: the first write after a pause is seen within it;
    * after ``deep_after`` seconds without a change, ``deep``: an idle registry costs
      next to nothing (the first write after a long quiet waits at most that long).

    Where the store notifies (PostgreSQL), the poll is only a safety net and ``idle`` and
    ``deep`` are long: a notification wakes the tail at once.
    """

    fast: float
    idle: float
    linger: float = 1.0
    deep_after: float = 30.0
    deep: float = 1.0
    delay: float = 0.0
    last_change: float = float("-inf")

    def __post_init__(self) -> None:
        self.delay = self.idle

    def found(self, events: int, now: float) -> None:
        if events > 0:
            self.last_change = now
            self.delay = min(self.fast, self.idle)
            return
        quiet = now - self.last_change
        if quiet < self.linger:
            self.delay = min(self.fast, self.idle)
        elif quiet < self.deep_after:
            self.delay = min(self.idle, max(self.delay * 2, self.fast))
        else:
            self.delay = max(self.deep, self.idle)


def _client_error(exc: StoreError) -> bool:
    """Refusals caused by the request (missing, duplicate, stale): the store is fine."""
    return isinstance(exc, NotFoundError | ConflictError)


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
        #: the current epoch's lineage record: ``confirmed``, the previous lineage's size
        self.lineage = Lineage("", 0.0, "not loaded yet", confirmed=True)
        #: consecutive failed store operations, and the last one's message (health)
        self.failures = 0
        self.last_failure = ""
        self._apply_lock = asyncio.Lock()
        self._listeners: list[EventListener] = []
        self._reload_listeners: list[Callable[[], None]] = []
        self._lineage_listeners: list[LineageListener] = []
        self._noted: tuple[str, int] = ("", -1)
        self._noted_at = 0.0
        self.ready = asyncio.Event()
        #: the tier's shared liveness and drain acks (None for a store without the tables)
        self.tier: TierPresence | None = None
        #: the connected nodes a cascade hub vouches for, as (node, seconds ago) pairs
        #: (``CascadeHub.vouched``; set by ``attach_cascade``)
        self.vouch_source: Callable[[], list[tuple[str, float]]] | None = None
        table = getattr(store, "presence", None)
        if table is not None:
            self.tier = TierPresence(self, table, TierOptions(lease_ttl=self.options.lease_ttl))
            self.add_listener(self.tier.on_events)

    def add_listener(self, fn: EventListener) -> None:
        """``fn(events)`` after each batch is applied (the cascade hub subscribes here)."""
        self._listeners.append(fn)

    def add_reload_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` after a full reload replaced every category (no events were emitted:
        the cascade hub resets its change logs and resyncs nodes from here)."""
        self._reload_listeners.append(fn)

    def add_lineage_listener(self, fn: LineageListener) -> None:
        """``fn(lineage)`` after the registry moved to another epoch (after the reload
        listeners) and when the current epoch became confirmed."""
        self._lineage_listeners.append(fn)

    @property
    def version(self) -> Version:
        return Version(self.epoch, self.revision)

    @property
    def epoch_confirmed(self) -> bool:
        """False while the current epoch is held for an operator: it is known to lose more
        than ``max_epoch_loss`` of the endpoints the previous lineage had."""
        return self.lineage.confirmed

    @property
    def confirmed_epoch(self) -> str:
        """The current epoch when the fleet may take it without comparing sizes, else "".

        That is: an operator confirmed it, or the registry knew the lineage it replaces
        and judged the loss within ``max_epoch_loss``. A brand-new database whose
        predecessor is unknown is confirmed (``epoch_confirmed``) but not vouched for
        here: a node holding more than it brings should keep its data (issue 13's guard).
        """
        lin = self.lineage
        if lin.confirmed and (lin.confirmed_by or lin.previous_endpoints is not None):
            return self.epoch
        return ""

    @property
    def previous_endpoints(self) -> int | None:
        """How many endpoints the lineage before the current epoch had, when known."""
        return self.lineage.previous_endpoints

    def served(self) -> Served:
        """What the catalog serves now: the memory a lineage change is judged against."""
        return Served(self.epoch, self.revision, self.catalog.counts()["endpoints"])

    # ------------------------------------------------------------------ loading

    async def start(self) -> None:
        """Load everything from the store; the catalog then serves.

        With a SQLite lineage marker (what a registry last served from the file), a
        database that does not continue it (restored or replaced while no registry ran)
        is settled as a lineage change first.
        """
        async with self._apply_lock:
            served = await asyncio.to_thread(self.store.last_served)
            await self._reload_locked()
            if served is not None and (
                served.epoch != self.epoch or served.revision > self.revision
            ):
                await self._resolve_locked(
                    served,
                    f"at start: the database (epoch {self.epoch}, revision {self.revision}) "
                    f"does not continue what was served (epoch {served.epoch}, revision "
                    f"{served.revision})",
                )
            else:
                self.lineage = await asyncio.to_thread(self.store.lineage)
        self.started_at = self.options.clock()
        await self._note_served(force=True)
        self.ready.set()

    async def _reload_locked(self) -> None:
        snap: Snapshot = await asyncio.to_thread(self.store.load)
        # The tier's digest key, read with every load: a restore may bring back another
        # one (rekeyed before the records go in: the catalog is empty at start). The
        # reload listeners then find the key changed (the cascade hub ends its sessions).
        key: bytes = await asyncio.to_thread(self.store.digest_key)
        if self.catalog.rekey(key):
            log.info("catalog digests keyed with the tier's key (id %s)", self.catalog.key_id.hex())
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

    # ------------------------------------------------------------------ lineage

    async def _lineage_changed_locked(self, exc: EpochChangedError, failed_epoch: str) -> None:
        """The store says the database no longer continues what we serve: follow it."""
        if self.epoch != failed_epoch:
            return  # another task followed it meanwhile
        served = self.served()
        log.warning("the database's lineage changed: %s", exc)
        await asyncio.to_thread(self.store.reopen)
        await self._resolve_locked(served, f"detected by a registry: {exc}")

    async def _resolve_locked(self, served: Served, reason: str) -> None:
        lineage: Lineage = await asyncio.to_thread(
            self.store.resolve_lineage, served, reason, self.options.max_epoch_loss
        )
        if lineage.epoch != self.epoch or lineage.base_revision > self.revision:
            await self._reload_locked()
        self.lineage = lineage
        self.stats.lineage_changes += 1
        log.warning(
            "now serving epoch %s (%s): %d endpoints, previously %s; %s",
            lineage.epoch,
            lineage.reason,
            lineage.endpoints,
            lineage.previous_endpoints,
            "confirmed"
            if lineage.confirmed
            else "UNCONFIRMED: nodes keep their old lineage (the mass-change guard holds it) "
            "until `tarscascade store confirm-epoch` says the data is what it should be",
            extra={
                "event": "epoch_changed" if lineage.confirmed else "guard_held",
                "epoch": lineage.epoch,
                "endpoints": lineage.endpoints,
                "previous_endpoints": lineage.previous_endpoints,
            },
        )
        self._lineage_event(lineage)
        await self._note_served(force=True)

    def _lineage_event(self, lineage: Lineage) -> None:
        for fn in self._lineage_listeners:
            try:
                fn(lineage)
            except Exception:
                log.exception("lineage listener failed")

    async def confirm_epoch(self, by: str) -> Lineage:
        """Confirm the current epoch (an operator decided the fleet may take it)."""
        lineage: Lineage = await asyncio.to_thread(self.store.confirm_epoch, by, self.epoch)
        changed = lineage.confirmed != self.lineage.confirmed
        self.lineage = lineage
        if changed:
            log.warning("epoch %s confirmed by %s", lineage.epoch, by)
            self._lineage_event(lineage)
        return lineage

    async def _refresh_lineage(self) -> None:
        """While unconfirmed: notice a confirmation made elsewhere (the CLI, a peer)."""
        lineage: Lineage = await asyncio.to_thread(self.store.lineage)
        if lineage.epoch == self.epoch and lineage.confirmed and not self.lineage.confirmed:
            self.lineage = lineage
            log.warning("epoch %s confirmed by %s", lineage.epoch, lineage.confirmed_by)
            self._lineage_event(lineage)

    async def _note_served(self, *, force: bool = False) -> None:
        """Refresh the lineage marker (SQLite) when the revision moved; bounded rate."""
        now = self.options.clock()
        if self._noted == (self.epoch, self.revision):
            return
        if not force and now - self._noted_at < self.options.marker_interval:
            return
        served = self.served()
        try:
            await asyncio.to_thread(self.store.note_served, served)
        except StoreError as exc:
            log.warning("%s", exc)
            return
        self._noted, self._noted_at = (served.epoch, served.revision), now

    # ------------------------------------------------------------------ health

    def _failed(self, exc: StoreError) -> None:
        self.failures += 1
        self.stats.store_failures += 1
        self.last_failure = str(exc)

    def _succeeded(self) -> None:
        self.failures = 0

    def health(self) -> str | None:
        """None when the registry can be trusted, else why not (the /healthz body)."""
        if not self.ready.is_set():
            return "registry is starting: the catalog is not loaded yet"
        problem = self.store.problem()
        if problem is not None:
            return problem
        if self.failures >= self.options.unhealthy_after:
            return (
                f"{self.failures} consecutive store operations failed; the last: "
                f"{self.last_failure}"
            )
        return None

    # ------------------------------------------------------------------ writes

    async def write(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> list[ChangeEvent]:
        """``commit`` and return the events."""
        return (await self.commit(ops, missing_ok=missing_ok)).events

    async def commit(self, ops: Sequence[WriteOp], *, missing_ok: bool = False) -> Committed:
        """Write through the store, then apply; see ``Committed``.

        A write refused because the lineage changed (nothing was written) is retried
        once in the new lineage, after the core followed it.
        """
        ops = list(ops)
        attempt = 0
        while True:
            attempt += 1
            failed_epoch = self.epoch
            try:
                result: Commit = await asyncio.to_thread(
                    self.store.commit, ops, missing_ok=missing_ok
                )
                break
            except EpochChangedError as exc:
                self._failed(exc)
                if attempt > 1:
                    raise
                async with self._apply_lock:
                    await self._lineage_changed_locked(exc, failed_epoch)
            except StoreError as exc:
                if not _client_error(exc):
                    self._failed(exc)
                raise
        self._succeeded()
        self.stats.writes += 1
        if await self._apply_own(result):
            return Committed.of(result, applied=True)
        try:
            await self.catch_up(result.revision)
        except StoreError as exc:
            # Committed: durable, and served once the tail catches up. Say so, never 503.
            self.stats.writes_unapplied += 1
            log.warning(
                "write committed at revision %d, catalog catching up: %s", result.revision, exc
            )
            return Committed.of(result, applied=False)
        return Committed.of(result, applied=self.revision >= result.revision)

    async def _apply_own(self, result: Commit) -> bool:
        """Apply a write's own events, when they follow on from the catalog with nothing
        between (no other writer's events): no change-log read back (a thread hop and a
        transaction per write, issue 17). Otherwise the caller catches up from the log."""
        events = result.events
        async with self._apply_lock:
            if self.revision >= result.revision:
                return True  # applied already (a tail round, or nothing changed)
            if not events or events[0].revision != self.revision + 1:
                return False
            if events[-1].revision != result.revision:
                return False
            self._apply(list(events))
            self.stats.writes_applied_directly += 1
            return True

    async def catch_up(self, at_least: int = 0) -> int:
        """Apply the change log from the catalog's revision on; returns events applied."""
        async with self._apply_lock:
            if self.revision >= at_least > 0:
                return 0
            return await self._catch_up_locked()

    async def _catch_up_locked(self) -> int:
        applied = 0
        while True:
            failed_epoch = self.epoch
            try:
                batch: list[ChangeEvent] = await asyncio.to_thread(
                    self.store.changes_since, self.revision, self.options.catch_up_batch
                )
            except ChangeLogTrimmedError:
                log.warning("change log trimmed past revision %d: full reload", self.revision)
                await self._reload_locked()
                return applied
            except EpochChangedError as exc:
                await self._lineage_changed_locked(exc, failed_epoch)
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
            failed_epoch = self.epoch
            try:
                snap: Snapshot = await asyncio.to_thread(self.store.load)
            except EpochChangedError as exc:
                await self._lineage_changed_locked(exc, failed_epoch)
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
        self._heard(node, self.options.clock())

    def _heard(self, node: str, at: float) -> None:
        self.liveness.heartbeat(node, at)
        tier = self.tier
        if tier is not None and at > tier.heard.get(node, 0.0):
            tier.heard[node] = at  # shared with the tier at its next round

    def vouch(self) -> int:
        """Count connected nodes as heard as of when their connections prove them alive
        (``vouch_source``: node -> seconds ago), so an idle node granted heartbeats
        longer than the node timeout stays alive. Returns the nodes vouched for."""
        source = self.vouch_source
        if source is None:
            return 0
        now = self.options.clock()
        vouched = source()
        for node, ago in vouched:
            self._heard(node, now - ago)
        return len(vouched)

    def idle_heartbeat_grant(self, bound: float) -> float:
        """The idle heartbeat interval to grant nodes whose connections are found dead
        within ``bound`` seconds (:func:`~tarscascade.registry.liveness.idle_grant`)."""
        opts = self.options
        lag = 2 * opts.liveness_interval  # the vouching round, then the judging one
        if self.tier is not None:
            lag += self.tier.sighting_lag  # through the database to the tier's judge
        grant = idle_grant(opts.idle_heartbeat, opts.node_timeout, bound, lag)
        if opts.idle_heartbeat > 0 and not grant:
            log.info(
                "idle heartbeats not granted: a connection vouches for its node %.1f s"
                " late (keepalive %.1f s + rounds), not inside the node timeout (%.1f s)",
                bound + lag,
                bound,
                opts.node_timeout,
            )
        return grant

    async def _liveness(self) -> int:
        self.vouch()  # also with liveness off: the tier's sightings (drains) need them
        return await self.check_liveness()

    async def check_liveness(self) -> int:
        """One round of the liveness rule, if this registry is the tier's judge."""
        if self.options.node_timeout <= 0:
            return 0  # liveness off here
        if self.tier is not None and not await self.tier.judge_round():
            return 0  # another registry on the database judges (it holds the lease)
        nodes = self.catalog.records(Category.NODES)
        changes = self.liveness.transitions(
            nodes,  # type: ignore[arg-type]
            self.options.clock(),
            self.started_at,
        )
        if not changes:
            return 0
        # Patches of present_state only: never undo a concurrent change to the node's
        # other fields, never bring back a node removed meanwhile.
        ops: list[WriteOp] = [
            Patch(Category.NODES, n.name, {"present_state": n.present_state}, missing_ok=True)
            for n in changes
        ]
        events = await self.write(ops)
        self.stats.liveness_events += len(events)
        return len(events)

    # ------------------------------------------------------------------ loops

    async def run(self) -> None:
        """Background loops until cancelled: tail, anti-entropy, liveness, trim."""
        opts = self.options
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._tail_loop())
            if self.tier is not None:
                tg.create_task(self.tier.run())
            if opts.reload_interval > 0:
                tg.create_task(
                    self._every(
                        opts.reload_interval, self.reconcile, "reconcile", opts.reload_budget
                    )
                )
            if opts.node_timeout > 0 or self.tier is not None:
                tg.create_task(self._every(opts.liveness_interval, self._liveness, "liveness"))
            tg.create_task(self._every(opts.trim_interval, self._trim, "trim"))

    async def tail(self) -> int:
        """One round of the tail loop: catch up, and keep lineage and marker current."""
        applied = await self.catch_up()
        self._succeeded()
        if not self.lineage.confirmed:
            await self._refresh_lineage()
        await self._note_served()
        return applied

    async def _tail_loop(self) -> None:
        """``tail`` paced by what it finds (``TailPacer``), woken early by the store's
        change notifications where it has them (PostgreSQL ``LISTEN``)."""
        opts = self.options
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        listen = getattr(self.store, "listen_changes", None)
        stop = listen(lambda: loop.call_soon_threadsafe(wake.set)) if listen else None
        if stop is None:
            pacer = TailPacer(
                opts.tail_fast,
                opts.tail_interval,
                opts.tail_linger,
                opts.tail_deep_after,
                opts.tail_deep,
            )
        else:
            idle = max(opts.tail_interval, opts.tail_notified_idle)
            pacer = TailPacer(opts.tail_fast, idle, opts.tail_linger, opts.tail_deep_after, idle)
        try:
            while True:
                with contextlib.suppress(TimeoutError):  # not wait_for: see TierPresence.run
                    async with asyncio.timeout(pacer.delay):
                        await wake.wait()
                wake.clear()
                try:
                    pacer.found(await self.tail(), loop.time())
                except StoreError as exc:
                    pacer.found(0, loop.time())
                    self.stats.tail_errors += 1
                    self._failed(exc)
                    log.warning("tail: %s", exc)
                except Exception:
                    log.exception("tail failed")
        finally:
            if stop is not None:
                stop()

    async def _trim(self) -> int:
        n: int = await asyncio.to_thread(self.store.trim_change_log, self.options.change_log_keep)
        if self.tier is not None:
            n += await self.tier.forget_old()
        return n

    async def _every(
        self, interval: float, fn: Callable[[], object], name: str, budget: float = 0.0
    ) -> None:
        """``fn`` every ``interval``; with a ``budget``, spaced so that it takes at most
        that share of the time (a slow round pushes the next one further away)."""
        wait = interval
        while True:
            await asyncio.sleep(wait)
            t0 = time.perf_counter()
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except StoreError as exc:
                # the database is down or busy: keep serving from memory, retry next round
                self.stats.tail_errors += 1
                self._failed(exc)
                log.warning("%s: %s", name, exc)
            except Exception:
                log.exception("%s failed", name)
            wait = paced_wait(interval, time.perf_counter() - t0, budget)

    async def aclose(self) -> None:
        if self.tier is not None:
            await self.tier.aclose()
        if self.ready.is_set():
            with contextlib.suppress(Exception):
                await self._note_served(force=True)  # the marker is current when stopped
        with contextlib.suppress(Exception):
            self.answerer.close()


def paced_wait(interval: float, took: float, budget: float) -> float:
    """The pause before the next round of a periodic job that took ``took`` seconds:
    ``interval``, stretched so that the job takes at most ``budget`` of the time."""
    if budget <= 0:
        return interval
    return max(interval, took / budget)
