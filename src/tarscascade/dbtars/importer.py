"""The db_tars importer: keeps tarscascade's own store equal to what db_tars routes.

It is a writer into the store like the admin API, nothing more: it reads db_tars
(SELECT only), diffs what it read against the catalog, and writes the difference as
ordinary puts and deletes. So the change log, the catalog, the cascade push, several
registries following one store and drain all work as without db_tars.

Change detection, always on the database's clock (db_tars.md §6.3):

1. every ``poll_interval`` (P): the groups (application, server_name) with a row whose
   ``registry_timestamp`` is within ``window`` (W) before the previous poll's ``NOW(3)``
   are re-read whole and diffed, so a deleted node or adapter inside a group, or a
   renamed servant, is seen too; the small tables are read whole and compared. After
   a tick that wrote changes the poll comes every ``busy_interval`` for ``busy_linger``
   seconds (an operator action is a burst of statements);
2. after the poll, every ``signature_interval`` (S): a table signature (count and id sum of both big
   tables) against the one the importer's id maps give; any difference (a delete, a
   REPLACE, an insert with a skewed timestamp) triggers an id scan (index-only), and the
   groups whose row ids came or went are re-read and diffed, as the poll does;
3. every ``full_interval`` (F), at start and on taking the lease over: a full load and
   diff (it catches edits that restored an old timestamp, and whatever else was missed);
4. the mass-change guard (guard.py) holds a diff that would empty or gut the catalog.

Only the lease holder imports; the others follow the store's change log as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tarscascade.dbtars.guard import GuardPolicy, Impact, hold_reason, impact
from tarscascade.dbtars.index import (
    REGISTRY_INFO,
    IdMaps,
    ImportIndex,
    Keyed,
    group_source,
    keyed,
)
from tarscascade.dbtars.mapping import (
    COL_ADAPTER,
    COL_APPLICATION,
    COL_ENDPOINT,
    COL_SERVER,
    RawRow,
    RegistryInfoRow,
    RoutingRow,
    Skipped,
    group_key,
    is_active,
    record_of_registry_info,
    record_of_row,
)
from tarscascade.dbtars.source import DbTarsSource, FullLoad, GroupRead, Lease, SmallTables
from tarscascade.errors import StoreError
from tarscascade.model import Category, EndpointRecord, GroupPriority, GroupRule, split_endpoint_key
from tarscascade.registry.core import RegistryCore
from tarscascade.store import Delete, Put, WriteOp

log = logging.getLogger(__name__)

OWNER = "db_tars"
_SKIP_LOG_LIMIT = 10_000  # rows logged as skipped, at most (each once)


@dataclass(slots=True)
class ImportOptions:
    poll_interval: float = 1.0  # P
    #: after a tick that wrote changes, poll this often for ``busy_linger`` seconds: an
    #: operator action is a burst of statements (deploy, then start) and the second one
    #: should not wait a whole P behind the first
    busy_interval: float = 0.2
    busy_linger: float = 1.5
    window: float = 30.0  # W, seconds before the previous poll's clock
    signature_interval: float = 3.0  # S: ~30 ms of DB time per check at 100k rows
    full_interval: float = 300.0  # F
    write_batch: int = 10_000  # ops per store transaction
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    clock: Callable[[], float] = time.monotonic


@dataclass(slots=True)
class ImportStats:
    ticks: int = 0
    polls: int = 0
    groups_reread: int = 0
    full_loads: int = 0
    last_full_read_s: float = 0.0  # the SELECTs of the last full load
    last_full_load_s: float = 0.0  # read + map + diff + write of the last full load
    events_written: int = 0
    endpoints: int = 0
    duplicates: int = 0
    skipped_rows: int = 0
    guard_holds: int = 0
    guard_confirms: int = 0
    id_scans: int = 0
    takeovers: int = 0
    lease_losses: int = 0
    errors: int = 0


@dataclass(slots=True)
class Held:
    """A change the guard holds back, waiting for confirmation."""

    reason: str
    impact: Impact
    since: float  # unix time it was first held
    loads: int = 1  # consecutive evaluations that still showed it


class DbTarsImporter:
    """Import loop of one registry process; ``run()`` until cancelled, or ``tick()``."""

    def __init__(
        self,
        core: RegistryCore,
        source: DbTarsSource,
        lease: Lease | None,
        options: ImportOptions | None = None,
    ) -> None:
        self.core = core
        self.source = source
        self.lease = lease  # None: the only registry on this store, no election
        self.options = options or ImportOptions()
        self.stats = ImportStats()
        self.leader = False
        self.held: Held | None = None
        self.last_error = ""
        self._index = ImportIndex()
        self._last_now: dt.datetime | None = None
        self._ids = IdMaps()  # every row id known: the expected signature (sql.SIGNATURE)
        self._info_seen: tuple[RegistryInfoRow, ...] | None = None
        self._need_full = True
        self._confirm = False
        self._next_full = 0.0
        self._next_signature = 0.0
        self._busy_until = 0.0
        self._skipped_logged: set[tuple[Any, ...]] = set()
        self._memo: dict[tuple[Any, ...], Keyed] = {}
        self._wake = asyncio.Event()
        self._step = asyncio.Lock()  # one importer step at a time (they share the lease)
        self._synced = asyncio.Condition()
        self._sync_count = 0

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        while True:
            await self.tick()
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that lands as the event is set, and the loop would never end
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.next_wait()):
                    await self._wake.wait()

    def next_wait(self) -> float:
        """Seconds to the next tick: P, or the busy interval while a burst may go on."""
        o = self.options
        return o.busy_interval if o.clock() < self._busy_until else o.poll_interval

    async def tick(self) -> bool:
        """One step: lease, then a full load when one is due, else the fast path.
        Returns whether it wrote changes. One step at a time (an explicit
        :meth:`full_sync` waits for a tick, and the other way round)."""
        async with self._step:
            written = self.stats.events_written
            await self._tick()
            wrote = self.stats.events_written != written
            if wrote:
                self._busy_until = self.options.clock() + self.options.busy_linger
            return wrote

    async def _tick(self) -> None:
        self.stats.ticks += 1
        try:
            if not await self._lead():
                return
            await self.core.catch_up()
            now = self.options.clock()
            if self._need_full or self._confirm or now >= self._next_full:
                await self._full_sync()
                return
            if self.held is not None:  # re-evaluated on full loads only, every S
                if now >= self._next_signature:
                    await self._full_sync()
                return
            # the poll first: a state flip or a deploy with sane clocks does not wait
            # behind an id scan (hundreds of ms at 100k rows); the groups it re-reads
            # update the expected signature, so only what it could not see differs
            await self._fast_path()
            await self._small_tables()
            if now >= self._next_signature:
                self._next_signature = now + self.options.signature_interval
                if await asyncio.to_thread(self.source.signature) != self._ids.signature():
                    await self._id_diff()
        except StoreError as exc:
            # db_tars or the store failed: keep serving what the catalog has, reload later
            self._failed(exc)
            log.warning("db_tars import: %s", exc)
        except Exception as exc:  # a bug must not end the import loop: log, reload, go on
            self._failed(exc)
            log.exception("db_tars import failed")

    def _failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.last_error = str(exc)
        self._need_full = True

    async def _lead(self) -> bool:
        lease = self.lease
        if lease is None:
            self.leader = True
            return True
        if self.leader:
            if await asyncio.to_thread(lease.held):
                return True
            self.stats.lease_losses += 1
            log.warning("lost the db_tars importer lease %r: following the store", lease.name)
            self._step_down()
            return False
        if not await asyncio.to_thread(lease.acquire):
            return False
        self.leader = True
        self.stats.takeovers += 1
        self._need_full = True
        log.info("holding the db_tars importer lease %r: importing", lease.name)
        return True

    def _step_down(self) -> None:
        self.leader = False
        self._need_full = True
        self._index = ImportIndex()
        self._last_now = None
        self._ids = IdMaps()
        self._info_seen = None

    # ------------------------------------------------------------------ full load

    async def full_sync(self) -> int:
        """Full load and diff against the catalog; returns events written."""
        async with self._step:
            return await self._full_sync()

    async def _full_sync(self) -> int:
        t0 = time.perf_counter()
        load = await asyncio.to_thread(self.source.full_load)
        read_s = time.perf_counter() - t0
        # mapping 100k rows takes a while: off the event loop, which keeps answering
        index, skipped, ids = await asyncio.to_thread(self._build_index, load)
        catalog = self.core.catalog
        obj_changes = catalog.diff(Category.OBJECTS, index.records())
        lookup = _CatalogLookup(self.core)
        pairs = [
            (lookup.get(key), rec if isinstance(rec, EndpointRecord) else None)
            for _op, key, rec in obj_changes
        ]
        confirmed = self._confirm
        if not confirmed and not self._guard_allows(pairs, index.endpoint_count):
            self._need_full = False
            self._next_signature = self.options.clock() + self.options.signature_interval
            return 0
        ops: list[WriteOp] = [
            Put(want) if want is not None else Delete(Category.OBJECTS, key)
            for (_have, want), (_op, key, _r) in zip(pairs, obj_changes, strict=True)
        ]
        ops += self._group_ops(load.small)
        written = await self._write(ops)
        if confirmed:
            self.stats.guard_confirms += 1
            log.warning("db_tars import: held change confirmed and applied (%d events)", written)
        self.held = None
        self._confirm = False
        self._index = index
        self._last_now = load.now
        self._ids = ids
        self._info_seen = tuple(load.small.registry_info)
        self._need_full = False
        now = self.options.clock()
        self._next_full = now + self.options.full_interval
        self._next_signature = now + self.options.signature_interval
        st = self.stats
        st.full_loads += 1
        st.last_full_load_s = round(time.perf_counter() - t0, 6)
        st.last_full_read_s = round(read_s, 6)
        st.skipped_rows = skipped
        self._count(index)
        await self._synced_once()
        return written

    def _build_index(self, load: FullLoad) -> tuple[ImportIndex, int, IdMaps]:
        index = ImportIndex()
        old, self._memo = self._memo, {}
        self._memo.update((row, old[row]) for raw in load.routing if (row := tuple(raw)) in old)
        by_group = self._records_by_group(load.routing)
        skipped = sum(1 for _k, r in self._memo.values() if r is _SKIPPED)
        for key in sorted(by_group):
            index.replace(group_source(key), by_group[key])
        index.replace(REGISTRY_INFO, keyed(self._registry_records(load.small.registry_info)))
        return index, skipped, IdMaps(load.ids)

    def _guard_allows(
        self, pairs: Sequence[tuple[EndpointRecord | None, EndpointRecord | None]], target: int
    ) -> bool:
        policy = self.options.guard
        current = self.core.catalog.counts()["endpoints"]
        if len(pairs) < policy.min_changes and not (current and not target):
            return True  # too small to be held, the common case: no O(n) count
        active = sum(
            1
            for r in self.core.catalog.records(Category.OBJECTS)
            if isinstance(r, EndpointRecord) and is_active(r)
        )
        im = impact(current, active, target, pairs)
        reason = hold_reason(policy, im)
        if reason is None:
            return True
        held = self.held
        if held is None:
            self.held = Held(reason, im, time.time())
            self.stats.guard_holds += 1
            log.error(
                "db_tars import HELD (%s): the catalog keeps serving what it has; confirm "
                "with POST /v1/dbtars/confirm once the change is meant",
                reason,
            )
            held = self.held
        else:
            held.reason, held.impact = reason, im
            held.loads += 1
        after = policy.confirm_after_loads
        if after and held.loads >= after:
            log.warning("db_tars import: change seen on %d loads in a row, applying", held.loads)
            return True
        return False

    # ------------------------------------------------------------------ fast path

    async def _fast_path(self) -> None:
        if self._last_now is None:
            self._need_full = True
            return
        since = self._last_now - dt.timedelta(seconds=self.options.window)
        now_db, pairs = await asyncio.to_thread(self.source.poll, since)
        self.stats.polls += 1
        wanted: dict[tuple[str, str], tuple[str, str]] = {}
        for app, server in pairs:
            wanted.setdefault(group_key(app, server), (app, server))
        if wanted:
            read = await asyncio.to_thread(self.source.read_groups, list(wanted.values()))
            if not await self._apply_groups(wanted.keys(), read):
                return
        self._last_now = now_db

    async def _id_diff(self) -> bool:
        """The signature moved unseen: find the groups whose row ids came or went (a
        delete, a REPLACE, an insert with a late timestamp), re-read just those."""
        scan = await asyncio.to_thread(self.source.ids)
        self.stats.id_scans += 1
        fresh = await asyncio.to_thread(IdMaps, scan)
        groups = self._ids.changed_groups(fresh)
        self._ids = fresh
        read = await asyncio.to_thread(self.source.read_groups, sorted(groups))
        return await self._apply_groups(groups, read)

    async def _apply_groups(self, keys: Iterable[tuple[str, str]], read: GroupRead) -> bool:
        """Replace these groups by what a re-read found and write the difference."""
        wanted = set(keys)
        self.stats.groups_reread += len(wanted)
        by_group = self._records_by_group(read.routing)
        affected: set[str] = set()
        for key in wanted | by_group.keys():
            affected |= self._index.replace(group_source(key), by_group.get(key, []))
        self._ids.set_groups(wanted, read.ids)
        return await self._apply_keys(affected)

    async def _small_tables(self) -> None:
        small: SmallTables = await asyncio.to_thread(self.source.small_tables)
        info = tuple(small.registry_info)
        ops: list[WriteOp] = []
        if info != self._info_seen:
            affected = self._index.replace(REGISTRY_INFO, keyed(self._registry_records(info)))
            if not await self._apply_keys(affected):
                return
            self._info_seen = info
        ops = self._group_ops(small)
        if ops:
            await self._write(ops)

    async def _apply_keys(self, keys: Iterable[str]) -> bool:
        """Write the keys whose collapsed record differs from the catalog's; False if held."""
        lookup = _CatalogLookup(self.core)
        pairs: list[tuple[str, EndpointRecord | None, EndpointRecord | None]] = []
        for key in sorted(keys):
            want, have = self._index.record(key), lookup.get(key)
            if want != have:
                pairs.append((key, have, want))
        if not pairs:
            return True
        if not self._guard_allows([(h, w) for _k, h, w in pairs], self._index.endpoint_count):
            return False
        ops: list[WriteOp] = [
            Put(want) if want is not None else Delete(Category.OBJECTS, key)
            for key, _have, want in pairs
        ]
        await self._write(ops)
        self._count(self._index)
        return True

    def _group_ops(self, small: SmallTables) -> list[WriteOp]:
        target: list[GroupRule | GroupPriority] = [*small.rules, *small.priorities]
        return [
            Put(rec) if rec is not None else Delete(Category.GROUPS, key)
            for _op, key, rec in self.core.catalog.diff(Category.GROUPS, target)
        ]

    # ------------------------------------------------------------------ writes

    async def _write(self, ops: Sequence[WriteOp]) -> int:
        written = 0
        step = self.options.write_batch
        for i in range(0, len(ops), step):
            if self.lease is not None and not await asyncio.to_thread(self.lease.held):
                self.stats.lease_losses += 1
                self._step_down()
                raise StoreError("lost the db_tars importer lease before writing")
            events = await self.core.write(ops[i : i + step], missing_ok=True)
            written += len(events)
        self.stats.events_written += written
        return written

    # ------------------------------------------------------------------ mapping

    def _records_by_group(self, rows: Iterable[RawRow]) -> dict[tuple[str, str], list[Keyed]]:
        """Map rows to keyed records per group, each group's in a deterministic order.

        Mapping is memoised by the row itself: between two full loads nearly every row
        is unchanged, and parsing 100k endpoint strings again would cost seconds. The
        memo keeps only the rows of the latest full load (plus those polls saw since).
        """
        memo = self._memo
        keys: dict[tuple[Any, Any], tuple[str, str]] = {}
        by_group: dict[tuple[str, str], list[tuple[tuple[str, ...], Keyed]]] = {}
        for raw in rows:
            row = tuple(raw)
            item = memo.get(row)
            if item is None:
                item = memo[row] = self._map(row)
            rec = item[1]
            if rec is _SKIPPED:
                continue
            pair = (row[COL_APPLICATION], row[COL_SERVER])
            gk = keys.get(pair)
            if gk is None:
                gk = keys[pair] = group_key(*pair)
            order = (rec.node_name, row[COL_ADAPTER] or "", rec.object_id, row[COL_ENDPOINT] or "")
            by_group.setdefault(gk, []).append((order, item))
        out = {}
        for k, v in by_group.items():
            v.sort(key=_first)
            out[k] = [r for _o, r in v]
        return out

    def _map(self, row: tuple[Any, ...]) -> Keyed:
        r = RoutingRow(*row)
        try:
            rec = record_of_row(r)
        except Skipped as why:
            self._skipped((r.application, r.server_name, r.node_name, r.adapter_name), why)
            return ("", _SKIPPED)
        return (rec.key, rec)

    def _registry_records(self, rows: Iterable[RegistryInfoRow]) -> list[EndpointRecord]:
        out = []
        for row in rows:
            try:
                out.append(record_of_registry_info(row))
            except Skipped as why:
                self._skipped(("t_registry_info", row.locator_id, row.servant), why)
        return out

    def _skipped(self, ident: tuple[Any, ...], why: Skipped) -> None:
        if ident in self._skipped_logged or len(self._skipped_logged) >= _SKIP_LOG_LIMIT:
            return
        self._skipped_logged.add(ident)
        log.warning("db_tars row %s not served: %s", ident, why)

    def _count(self, index: ImportIndex) -> None:
        self.stats.endpoints = index.endpoint_count
        self.stats.duplicates = index.duplicates

    # ------------------------------------------------------------------ operator

    async def _synced_once(self) -> None:
        async with self._synced:
            self._sync_count += 1
            self._synced.notify_all()

    async def reload(self, timeout: float = 120.0) -> None:
        """Run a full load + diff now (after a restore, say); returns once it finished."""
        self._need_full = True
        await self._wait_sync(timeout)

    async def _wait_sync(self, timeout: float) -> None:
        self._wake.set()
        async with asyncio.timeout(timeout), self._synced:
            start = self._sync_count
            await self._synced.wait_for(lambda: self._sync_count > start)

    async def confirm(self, timeout: float = 60.0) -> bool:
        """Apply the held change at the next full load; True once applied (bounded wait).

        False when nothing is held. Raises ``TimeoutError`` when no full load finished.
        """
        if self.held is None:
            return False
        self._confirm = True
        await self._wait_sync(timeout)
        return True

    def status(self) -> dict[str, Any]:
        held = self.held
        return {
            "owner": OWNER,
            "source": str(self.source.url.render_as_string(hide_password=True)),
            "leader": self.leader,
            "lease": self.lease.name if self.lease is not None else None,
            "held": None
            if held is None
            else {
                "reason": held.reason,
                "since": held.since,
                "loads": held.loads,
                "impact": asdict(held.impact),
            },
            "db_clock": self._last_now.isoformat() if self._last_now else None,
            "expected_signature": list(self._ids.signature()),
            "last_error": self.last_error,
            "stats": asdict(self.stats),
            "source_stats": {
                "queries": self.source.stats.queries,
                "rows_read": self.source.stats.rows_read,
                "errors": self.source.stats.errors,
                "by_kind": dict(self.source.stats.by_kind),
            },
        }

    def metrics(self) -> dict[str, float]:
        """Flat numbers for Prometheus (``tarscascade_registry_dbtars_<name>``)."""
        out: dict[str, float] = {k: float(v) for k, v in asdict(self.stats).items()}
        out["leader"] = float(self.leader)
        out["held"] = float(self.held is not None)
        out["source_queries"] = float(self.source.stats.queries)
        out["source_rows_read"] = float(self.source.stats.rows_read)
        out["source_errors"] = float(self.source.stats.errors)
        return out

    async def aclose(self) -> None:
        if self.lease is not None:
            await asyncio.to_thread(self.lease.release)
        self.leader = False


#: The memo's marker for a row that yields no record.
_SKIPPED = EndpointRecord("", "", 0)


def _first(pair: tuple[tuple[str, ...], Keyed]) -> tuple[str, ...]:
    return pair[0]


class _CatalogLookup:
    """Catalog records by endpoint key, one object's endpoints fetched once per diff."""

    def __init__(self, core: RegistryCore) -> None:
        self._catalog = core.catalog
        self._objects: dict[str, dict[tuple[str, int], EndpointRecord]] = {}

    def get(self, key: str) -> EndpointRecord | None:
        parts = split_endpoint_key(key)
        if parts is None:
            return None
        oid, host, port = parts
        eps = self._objects.get(oid)
        if eps is None:
            eps = self._objects[oid] = {(r.host, r.port): r for r in self._catalog.get_object(oid)}
        return eps.get((host, port))
