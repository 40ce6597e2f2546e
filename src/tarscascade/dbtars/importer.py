"""The db_tars importer: keeps tarscascade's own store equal to what db_tars routes.

It is a writer into the store like the admin API, nothing more: it reads db_tars
(SELECT only), diffs what it read against the catalog, and writes the difference as
ordinary puts and deletes. So the change log, the catalog, the cascade push, several
registries following one store and drain all work as without db_tars.

Change detection, always on the database's clock (db_tars.md §6.3):

1. every ``poll_interval`` (P): the groups (application, server_name) with a row whose
   ``registry_timestamp`` is within ``window`` (W) before the previous poll's ``NOW(3)``
   are re-read whole and diffed, so a deleted node or adapter inside a group, or a
   renamed servant, is seen too; the small tables are read whole and compared;
2. every ``signature_interval`` (S): a table signature (count and id sum of both big
   tables); any change (a delete, a REPLACE, an insert with a skewed timestamp) triggers
   a full load and diff;
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
from tarscascade.dbtars.index import REGISTRY_INFO, ImportIndex, group_source
from tarscascade.dbtars.mapping import (
    RegistryInfoRow,
    RoutingRow,
    Skipped,
    group_key,
    is_active,
    record_of_registry_info,
    record_of_row,
)
from tarscascade.dbtars.source import DbTarsSource, Lease, Signature, SmallTables
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
    window: float = 30.0  # W, seconds before the previous poll's clock
    signature_interval: float = 5.0  # S
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
        self._signature: Signature | None = None  # expected: see sql.SIGNATURE
        self._row_ids: dict[tuple[str, str], RowIds] = {}
        self._info_seen: tuple[RegistryInfoRow, ...] | None = None
        self._need_full = True
        self._confirm = False
        self._next_full = 0.0
        self._next_signature = 0.0
        self._skipped_logged: set[tuple[Any, ...]] = set()
        self._wake = asyncio.Event()
        self._synced = asyncio.Condition()
        self._sync_count = 0

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        while True:
            await self.tick()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.poll_interval)

    async def tick(self) -> None:
        """One step: lease, then a full load when one is due, else the fast path."""
        self.stats.ticks += 1
        try:
            if not await self._lead():
                return
            await self.core.catch_up()
            now = self.options.clock()
            if self._need_full or self._confirm or now >= self._next_full:
                await self.full_sync()
                return
            if self.held is not None:  # re-evaluated on full loads only, every S
                if now >= self._next_signature:
                    await self.full_sync()
                return
            if now >= self._next_signature:
                self._next_signature = now + self.options.signature_interval
                if await asyncio.to_thread(self.source.signature) != self._signature:
                    await self.full_sync()
                    return
            await self._fast_path()
            await self._small_tables()
        except StoreError as exc:
            # db_tars or the store failed: keep serving what the catalog has, reload later
            self.stats.errors += 1
            self.last_error = str(exc)
            self._need_full = True
            log.warning("db_tars import: %s", exc)

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
        self._signature = None
        self._row_ids = {}
        self._info_seen = None

    # ------------------------------------------------------------------ full load

    async def full_sync(self) -> int:
        """Full load and diff against the catalog; returns events written."""
        t0 = time.perf_counter()
        load = await asyncio.to_thread(self.source.full_load)
        read_s = time.perf_counter() - t0
        index = ImportIndex()
        by_group = self._records_by_group(load.routing)
        skipped = len(load.routing) - sum(len(v) for v in by_group.values())
        for key in sorted(by_group):
            index.replace(group_source(key), by_group[key])
        index.replace(REGISTRY_INFO, self._registry_records(load.small.registry_info))
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
        self._signature = load.signature
        self._row_ids = _row_ids(load.routing)
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
            rows = await asyncio.to_thread(self.source.read_groups, list(wanted.values()))
            self.stats.groups_reread += len(wanted)
            by_group = self._records_by_group(rows)
            ids = _row_ids(rows)
            affected: set[str] = set()
            for key in wanted.keys() | by_group.keys() | ids.keys():
                affected |= self._index.replace(group_source(key), by_group.get(key, []))
                self._expect(key, ids.get(key, _NO_IDS))
            if not await self._apply_keys(affected):
                return
        self._last_now = now_db

    async def _small_tables(self) -> None:
        small: SmallTables = await asyncio.to_thread(self.source.small_tables)
        info = tuple(small.registry_info)
        ops: list[WriteOp] = []
        if info != self._info_seen:
            affected = self._index.replace(REGISTRY_INFO, self._registry_records(info))
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

    def _records_by_group(
        self, rows: Iterable[RoutingRow]
    ) -> dict[tuple[str, str], list[EndpointRecord]]:
        by_group: dict[tuple[str, str], list[tuple[tuple[str, ...], EndpointRecord]]] = {}
        for row in rows:
            try:
                rec = record_of_row(row)
            except Skipped as why:
                self._skipped(
                    (row.application, row.server_name, row.node_name, row.adapter_name), why
                )
                continue
            order = (rec.node_name, row.adapter_name or "", rec.object_id, row.endpoint or "")
            by_group.setdefault(group_key(row.application, row.server_name), []).append(
                (order, rec)
            )
        return {k: [r for _o, r in sorted(v, key=lambda p: p[0])] for k, v in by_group.items()}

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

    async def confirm(self, timeout: float = 60.0) -> bool:
        """Apply the held change at the next full load; True once applied (bounded wait).

        False when nothing is held. Raises ``TimeoutError`` when no full load finished.
        """
        if self.held is None:
            return False
        self._confirm = True
        self._wake.set()
        async with asyncio.timeout(timeout), self._synced:
            start = self._sync_count
            await self._synced.wait_for(lambda: self._sync_count > start)
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
            "signature": list(self._signature) if self._signature else None,
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

    def _expect(self, key: tuple[str, str], ids: RowIds) -> None:
        """Move the expected signature by the row ids a re-read found come and go."""
        old = self._row_ids.pop(key, _NO_IDS)
        if ids != _NO_IDS:
            self._row_ids[key] = ids
        if self._signature is None or old == ids:
            return
        sc, ss, ac, asum = self._signature
        self._signature = (
            sc + len(ids[0]) - len(old[0]),
            ss + sum(ids[0]) - sum(old[0]),
            ac + len(ids[1]) - len(old[1]),
            asum + sum(ids[1]) - sum(old[1]),
        )


#: The t_server_conf and t_adapter_conf ids a group's rows came from.
RowIds = tuple[frozenset[int], frozenset[int]]
_NO_IDS: RowIds = (frozenset(), frozenset())


def _row_ids(rows: Iterable[RoutingRow]) -> dict[tuple[str, str], RowIds]:
    found: dict[tuple[str, str], tuple[set[int], set[int]]] = {}
    for row in rows:
        servers, adapters = found.setdefault(
            group_key(row.application, row.server_name), (set(), set())
        )
        servers.add(int(row.server_id))
        adapters.add(int(row.adapter_id))
    return {k: (frozenset(s), frozenset(a)) for k, (s, a) in found.items()}


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
