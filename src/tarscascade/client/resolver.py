"""Resolving one servant object: the QueryF a TARS client would call, refreshed in a loop.

* Method (§4.1): ``findObjectByIdInSameSet(id, setId)`` when set routing is on,
  ``findObjectByIdInSameStation(id, station)`` when an IDC station is given, else
  ``findObjectByIdInSameGroup(id)`` (IDC grouping is decided by the server side).
* Refresh every ``refresh_interval`` (3 s by default, at least 1 s: the node is local),
  ±20 % at random each time so the resolvers of a process do not poll in lockstep;
  after a failed query, again after ``fail_interval``. A push from the node (see
  :mod:`~tarscascade.client.locator`) wakes the loop at once.
* Like every TARS client, the old list is kept when the answer fails, returns non-zero,
  or has no active endpoint.
* With a :class:`LkgFile`, the list starts from the last-known-good entry and every new
  list is saved, so a restarted process calls out even while the locator is down.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tarscascade.client.lkg import EndpointList, LkgFile
from tarscascade.client.locator import Answer, Query
from tarscascade.errors import EndpointSyntaxError, TarsCascadeError
from tarscascade.wire.endpoint import Endpoint, format_endpoint
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.idl.queryf import (
    FIND_IN_SAME_GROUP,
    FIND_IN_SAME_SET,
    FIND_IN_SAME_STATION,
)

log = logging.getLogger(__name__)

#: seconds between queries (the node is local, so clients can ask often)
DEFAULT_REFRESH_INTERVAL = 3.0
MIN_REFRESH_INTERVAL = 1.0
#: retry delay after a failed query (TarsCpp ``_failInterval``)
FAIL_INTERVAL = 2.0


class Finder(Protocol):
    async def find(self, object_id: str, query: Query) -> Answer: ...

    async def subscribe(self, object_id: str) -> None: ...


Listener = Callable[[EndpointList], None]


def check_set_division(value: str) -> str:
    """``name.area.group`` with name and area not ``*`` (TARS's rule), or ``""``."""
    if not value:
        return ""
    parts = value.split(".")
    if len(parts) != 3 or not all(parts) or "*" in (parts[0], parts[1]):
        raise ValueError(f"bad set division {value!r}: expected name.area.group")
    return value


def choose_query(set_division: str = "", station: str = "") -> Query:
    if set_division:
        return Query(FIND_IN_SAME_SET, check_set_division(set_division))
    if station:
        return Query(FIND_IN_SAME_STATION, station)
    return Query(FIND_IN_SAME_GROUP)


#: the transports this SDK calls; UDP and SSL endpoints are refused (README, Compatibility)
SUPPORTED_TRANSPORTS = frozenset({"tcp"})


def unsupported_transport(ep: Endpoint) -> str:
    """Why this SDK cannot call ``ep`` ("" when it can)."""
    if ep.transport in SUPPORTED_TRANSPORTS:
        return ""
    return f"{ep.transport} endpoints are not supported by the Python SDK (tcp only)"


def to_endpoints(
    object_id: str, eps: Sequence[EndpointF], unsupported: list[Endpoint] | None = None
) -> tuple[Endpoint, ...]:
    """Convert QueryF endpoints. Malformed entries are skipped with a warning; UDP and SSL
    ones are left out and collected in ``unsupported`` (the resolver reports them)."""
    out = []
    for ef in eps:
        try:
            ep = Endpoint.from_endpointf(ef)
        except EndpointSyntaxError as exc:
            log.warning("%s: skipping bad endpoint %s:%s: %s", object_id, ef.host, ef.port, exc)
            continue
        if unsupported_transport(ep):
            if unsupported is not None:
                unsupported.append(ep)
            continue
        out.append(ep)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ResolverOptions:
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    fail_interval: float = FAIL_INTERVAL
    subscribe: bool = False
    #: each wait is drawn from ±this fraction of the interval, so the resolvers of one
    #: process (and of many processes started together) do not refresh in lockstep
    refresh_jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.refresh_jitter < 1:
            raise ValueError("refresh_jitter must be in [0, 1)")
        if self.refresh_interval < MIN_REFRESH_INTERVAL:
            raise ValueError(
                f"refresh_interval {self.refresh_interval} s is below {MIN_REFRESH_INTERVAL} s"
            )
        if self.fail_interval <= 0:
            raise ValueError("fail_interval must be positive")


@dataclass(slots=True)
class ResolverStats:
    queries: int = 0
    failures: int = 0
    empty_answers: int = 0
    changes: int = 0
    pushes: int = 0


class Resolver:
    """Keeps ``endpoints`` current for one object; ``run()`` is the refresh loop."""

    def __init__(
        self,
        object_id: str,
        finder: Finder,
        query: Query,
        options: ResolverOptions | None = None,
        *,
        lkg: LkgFile | None = None,
        lkg_key: str = "",
        initial: EndpointList | None = None,
    ) -> None:
        self.object_id = object_id
        self.finder = finder
        self.query = query
        self.options = options or ResolverOptions()
        self.lkg = lkg
        self.lkg_key = lkg_key or object_id
        self.endpoints = initial or EndpointList()
        self.generation = 0
        self.last_error = ""
        #: endpoints of the last answer this SDK cannot call (UDP, SSL): refused, and named
        #: in the NoEndpointError a call gets when nothing else is left
        self.unsupported: tuple[Endpoint, ...] = ()
        self.stats = ResolverStats()
        self._listeners: list[Listener] = []
        self._saved = initial if initial is not None and initial.source == "lkg" else None
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._rng = random.Random()  # seeded from the OS: every resolver its own phase

    def add_listener(self, fn: Listener) -> None:
        """``fn(endpoints)`` whenever the list changes."""
        self._listeners.append(fn)

    @property
    def ready(self) -> bool:
        """True once the first query finished (answered or not)."""
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def notify(self) -> None:
        """A push said the object changed: query again now."""
        self.stats.pushes += 1
        self._wake.set()

    async def refresh(self) -> bool:
        """Query once; apply a usable answer. Returns False when the query failed."""
        self.stats.queries += 1
        try:
            answer = await self.finder.find(self.object_id, self.query)
        except TarsCascadeError as exc:
            self._failed(str(exc))
            return False
        if answer.ret != 0:
            self._failed(f"{self.query.method.name} returned {answer.ret} ({answer.source})")
            return False
        if self.last_error:
            log.info("%s: the locator answers again", self.object_id)
            self.last_error = ""
        refused: list[Endpoint] = []
        active = to_endpoints(self.object_id, answer.active, refused)
        inactive = to_endpoints(self.object_id, answer.inactive)
        self._refuse(tuple(refused))
        if not active:
            self.stats.empty_answers += 1  # TARS keeps the old list on an empty answer
            return True
        await self._apply(EndpointList(active, inactive, "locator"))
        return True

    def _refuse(self, refused: tuple[Endpoint, ...]) -> None:
        if refused and refused != self.unsupported:  # said once per change, not per refresh
            log.warning(
                "%s: leaving out %d endpoint(s) this SDK cannot call: %s (%s)",
                self.object_id,
                len(refused),
                ", ".join(format_endpoint(e) for e in refused),
                unsupported_transport(refused[0]),
            )
        self.unsupported = refused

    def _failed(self, error: str) -> None:
        self.stats.failures += 1
        # say it once per outage, not at every retry
        level = logging.DEBUG if self.last_error else logging.WARNING
        n = len(self.endpoints.active)
        log.log(level, "%s: keeping %d endpoints: %s", self.object_id, n, error)
        self.last_error = error

    async def _apply(self, new: EndpointList) -> None:
        old = self.endpoints
        self.endpoints = new
        if not new.same_endpoints(old):
            self.generation += 1
            self.stats.changes += 1
            log.debug(
                "%s: %d active, %d inactive", self.object_id, len(new.active), len(new.inactive)
            )
            for fn in self._listeners:
                try:
                    fn(new)
                except Exception:
                    log.exception("endpoint listener failed")
        if self.lkg is not None and (self._saved is None or not new.same_endpoints(self._saved)):
            try:
                await asyncio.to_thread(self.lkg.save, self.lkg_key, new)
                self._saved = new
            except OSError as exc:
                log.warning("cannot write last-known-good file: %s", exc)

    async def run(self) -> None:
        """Refresh until cancelled."""
        opts = self.options
        if opts.subscribe:
            await self.finder.subscribe(self.object_id)
        while True:
            try:
                ok = await self.refresh()
            except Exception:  # a bug must not stop resolution for good
                log.exception("%s: refresh failed", self.object_id)
                ok = False
            self._ready.set()
            delay = self.next_delay(ok)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    def next_delay(self, ok: bool) -> float:
        """Seconds until the next refresh: the interval (shorter after a failure), spread
        by the jitter, never below the minimum refresh interval after a success."""
        opts = self.options
        base = opts.refresh_interval if ok else min(opts.fail_interval, opts.refresh_interval)
        spread = 1.0 + opts.refresh_jitter * (2.0 * self._rng.random() - 1.0)
        delay = base * spread
        return max(MIN_REFRESH_INTERVAL, delay) if ok else delay

    def __repr__(self) -> str:
        e = self.endpoints
        return (
            f"<Resolver {self.object_id} {self.query.method.name} active={len(e.active)} "
            f"inactive={len(e.inactive)} source={e.source or 'none'} gen={self.generation}>"
        )


class StaticResolver:
    """A direct object string (``Obj@tcp -h ... -p ...``): a fixed list, no locator."""

    def __init__(self, object_id: str, endpoints: Sequence[Endpoint]) -> None:
        for ep in endpoints:
            why = unsupported_transport(ep)
            if why:
                raise EndpointSyntaxError(f"{object_id}@{format_endpoint(ep)}: {why}")
        self.object_id = object_id
        self.endpoints = EndpointList(tuple(endpoints), (), "direct")
        self.generation = 0
        self.ready = True
        self.last_error = ""
        self.unsupported: tuple[Endpoint, ...] = ()

    def add_listener(self, fn: Listener) -> None:
        pass

    async def wait_ready(self) -> None:
        return None

    def notify(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<StaticResolver {self.object_id} endpoints={len(self.endpoints.active)}>"
