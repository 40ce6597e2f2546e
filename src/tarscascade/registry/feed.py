"""The registry's side of the cascade: its catalog, as it follows the store, feeds a hub.

* Every batch the core applies is published per category, from the category's version
  before the batch to its version after (remembered here, since the listener runs
  after the catalog moved).
* A full reload (trimmed change log, new epoch) resets every category at the hub.
* A subscribing node is registered as an alive ``nodes`` record when it is new, moved,
  or not alive; registrations arriving together are written in one batch. Heartbeats
  and acks keep it alive through the liveness rule.
* At start the hub's change logs are filled from the store's change log, so nodes
  that held data before a registry restart resume with deltas, not snapshots.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from tarscascade.cascade import FRESH, CascadeHub, Freshness, HubOptions, NodeInfo
from tarscascade.errors import ChangeLogTrimmedError, StoreError
from tarscascade.model import INCREMENTAL, Category, ChangeEvent, NodeRecord, State, Version
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.node_auth import NodeAuthority
from tarscascade.store import Patch, WriteOp
from tarscascade.transport.sockopts import DEFAULT_KEEPALIVE

log = logging.getLogger(__name__)


def token_check(token: str | None) -> Callable[[str, str], bool]:
    """The shared-token (bootstrap/dev) check: None (or "") = no authentication."""
    if not token:
        return NodeAuthority("open").authenticate
    return NodeAuthority("shared", shared_token=token).authenticate


class RegistryFeed:
    """Connects a :class:`RegistryCore` to a :class:`CascadeHub` (see the module doc)."""

    def __init__(self, core: RegistryCore) -> None:
        self.core = core
        self.hub: CascadeHub | None = None
        self._versions: dict[Category, Version] = core.catalog.versions()
        self._pending: dict[str, NodeInfo] = {}
        self._flushing = False
        self.registrations = 0

    def on_events(self, batch: Sequence[ChangeEvent]) -> None:
        hub = self.hub
        if hub is None:
            return
        by_cat: dict[Category, list[ChangeEvent]] = {}
        for ev in batch:
            by_cat.setdefault(ev.category, []).append(ev)
        for cat, events in by_cat.items():
            before, after = self._versions[cat], self.core.catalog.version(cat)
            self._versions[cat] = after
            hub.publish(cat, before, after, events)

    def on_reload(self) -> None:
        self._versions = self.core.catalog.versions()
        if self.hub is not None:
            self.hub.rekeyed()  # a restore brought another key: sessions take it anew
            for cat in Category:
                self.hub.reset(cat)

    def on_heartbeat(self, name: str) -> None:
        self.core.heartbeat(name)

    async def register(self, info: NodeInfo) -> None:
        """Write the node's record if needed; concurrent calls share one batched write."""
        self.core.heartbeat(info.name)
        self._pending[info.name] = info
        if self._flushing:
            return  # the caller already flushing picks this one up
        self._flushing = True
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                ops = [op for i in batch.values() if (op := self._registration(i)) is not None]
                if not ops:
                    continue
                try:
                    await self.core.write(ops)
                    self.registrations += len(ops)
                except StoreError as exc:
                    # The liveness rule revives known nodes anyway; a new one is
                    # registered at its next subscribe.
                    log.warning("could not register %d cascade nodes: %s", len(ops), exc)
        finally:
            self._flushing = False

    def _registration(self, info: NodeInfo) -> WriteOp | None:
        """A patch of the fields a subscription vouches for (address, alive, heartbeat),
        applied to the row as the database holds it: an admin's concurrent change to the
        node's setting state is never undone."""
        cur = self.core.catalog.get_node(info.name)
        if (
            cur is not None
            and (cur.host, cur.port) == (info.host, info.port)
            and cur.present_state == State.ACTIVE
        ):
            return None  # identical where it matters: no write, no push to every node
        now = self.core.options.clock()
        fields = {
            "host": info.host,
            "port": info.port,
            "present_state": State.ACTIVE,
            "last_heartbeat": now,
        }
        new = NodeRecord(info.name, info.host, info.port, State.ACTIVE, State.ACTIVE, now)
        return Patch(Category.NODES, info.name, fields, create=new)

    async def preload(self, max_events: int) -> int:
        """Fill the hub's change logs from the store's change log; returns events loaded."""
        hub, core = self.hub, self.core
        if hub is None or max_events <= 0:
            return 0
        since = max(0, core.revision - max_events)
        floor_needed = max(core.catalog.version(c).revision for c in INCREMENTAL)
        try:
            try:
                events = await asyncio.to_thread(core.store.changes_since, since, max_events)
            except ChangeLogTrimmedError as exc:
                since = exc.floor
                events = await asyncio.to_thread(core.store.changes_since, since, max_events)
        except StoreError as exc:
            log.warning("cascade change log not preloaded: %s", exc)
            return 0
        if len(events) == max_events and events[-1].revision < floor_needed:
            return 0  # not every change up to the logs' floors: resuming across it would lie
        loaded = 0
        for cat in INCREMENTAL:
            loaded += hub.preload_log(cat, [e for e in events if e.category == cat], since)
        log.info("cascade change log preloaded with %d events after revision %d", loaded, since)
        return loaded


class RegistryFreshness:
    """What the registry tells every node about itself: the source of the data, so fresh
    (contact age 0) unless its store cannot be trusted (a vanished database file, failing
    tail rounds: ``RegistryCore.health``), and which lineage is confirmed (the cascade's
    mass-change guard). Re-read at most every ``CACHE_S`` (it is asked at every heartbeat)."""

    CACHE_S = 1.0

    def __init__(self, core: RegistryCore) -> None:
        self.core = core
        self._at = -1e9
        self._last = FRESH

    def __call__(self) -> Freshness:
        now = time.monotonic()
        if now - self._at >= self.CACHE_S:
            self._at = now
            core = self.core
            self._last = Freshness(
                stale=core.health() is not None, confirmed_epoch=core.confirmed_epoch
            )
        return self._last


async def attach_cascade(
    core: RegistryCore,
    *,
    token: str | None = None,
    options: HubOptions | None = None,
    authority: NodeAuthority | None = None,
    keepalive_bound: float = DEFAULT_KEEPALIVE.detection_bound,
) -> CascadeHub:
    """A hub over the registry's catalog, fed by the core; add ``hub.servant`` to a server.

    Call after ``core.start()``. Without an ``authority``: the shared ``token`` (the
    bootstrap/dev mode), or no authentication when it is None. ``keepalive_bound``: how
    soon the hub's server drops a dead peer's connection (its keepalive's).
    """
    # the cascade's guard holds back exactly the lineages the registry starts unconfirmed;
    # idle nodes are granted long heartbeats where their connections keep them alive
    bound = keepalive_bound
    opts = dataclasses.replace(
        options or HubOptions(),
        guard_max_loss=core.options.max_epoch_loss,
        idle_heartbeat_grant=core.idle_heartbeat_grant(bound),
    )
    feed = RegistryFeed(core)
    if authority is None:
        authority = NodeAuthority("shared", shared_token=token) if token else NodeAuthority("open")
    hub = CascadeHub(
        core.catalog,
        authenticate=authority.authenticate,
        options=opts,
        on_subscribe=feed.register,
        on_heartbeat=feed.on_heartbeat,
        freshness=RegistryFreshness(core),
        authorize_descendants=authority.authorize_descendants,
        # a drain on another registry of the tier waits for these nodes' acks too
        prompt_acks=(lambda: bool(tier.waits)) if (tier := core.tier) is not None else None,
    )
    authority.add_revoked_listener(hub.end_session)
    feed.hub = hub
    core.vouch_source = lambda: hub.vouched(bound)
    if core.tier is not None:
        core.tier.hub = hub  # sightings and drain acks read what its tracker knows
    core.add_listener(feed.on_events)
    core.add_reload_listener(feed.on_reload)
    await feed.preload(opts.log_events)
    return hub
