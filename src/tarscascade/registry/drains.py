"""Drains as jobs: one wait for the nodes' acknowledgements, watched live, kept after.

A drain writes the endpoint inactive (``RegistryAdmin.start_drain``) and then waits, in
a task owned here, until every node that may serve the endpoint acknowledged the objects
version that carries the change: every *registered* node alive anywhere in the tier
(``TierPresence.wait_set``: connected here, to a relay, or to another registry on the
database) and any node connected here. Registered nodes that are dead or unseen for a
node timeout are not waited for but named ``offline``: they may still serve the old list
to their host, which the caller must decide about (the CLI fails unless
``--allow-offline``). Acknowledgements come from this registry's hub as they arrive, and
from the other registries through the database (``TierPresence.acked_elsewhere``,
polled every :data:`ACK_POLL_S`). Anyone may watch it meanwhile (the CLI's progress bar,
the dashboard's drain panel: :meth:`DrainJob.progress`), and the last
:data:`KEPT_DRAINS` jobs stay listed with their result, so a page reloaded after a
drain still shows what happened. A watcher that goes away does not stop the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field

from tarscascade.cascade import CascadeHub
from tarscascade.model import Category, EndpointRecord, Version
from tarscascade.registry.presence import TierPresence, WaitSet

KEPT_DRAINS = 20
#: how often a drain looks for acknowledgements other registries wrote to the database
ACK_POLL_S = 0.1
#: a drain's wait row outlives its timeout by this much (then any registry may delete it)
WAIT_ROW_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class DrainResult:
    """An endpoint set inactive, and which nodes acknowledged the objects version with it."""

    version: Version  # the objects version that carries the endpoint inactive
    changed: bool  # False when it was inactive already (nothing written)
    record: EndpointRecord
    nodes: list[str]  # the nodes waited for (registered and alive, or connected here)
    missing: list[str]  # of those, the ones that did not acknowledge in time
    elapsed_s: float
    #: registered nodes not waited for: dead or unseen for a node timeout
    offline: list[str] = field(default_factory=list)

    @property
    def acked(self) -> list[str]:
        gone = set(self.missing)
        return [n for n in self.nodes if n not in gone]

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass(frozen=True, slots=True)
class DrainProgress:
    acked_count: int
    missing: list[str]  # still behind, sorted
    elapsed_s: float
    done: bool


@dataclass(eq=False)
class DrainJob:
    id: int
    version: Version
    changed: bool
    record: EndpointRecord
    nodes: list[str]
    timeout: float
    started_at: float  # unix seconds
    hub: CascadeHub | None
    offline: list[str] = field(default_factory=list)
    result: DrainResult | None = None
    #: nodes not known to have acknowledged yet (the wait removes them as they do)
    pending: set[str] = field(default_factory=set)
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _t0: float = field(default_factory=time.monotonic)

    def progress(self) -> DrainProgress:
        """Where the wait stands now: from the result once done, else from what every
        awaited node holds, its relay's floor included (the hub's waiter's rule)."""
        if self.result is not None:
            r = self.result
            return DrainProgress(len(r.nodes) - len(r.missing), r.missing, r.elapsed_s, True)
        missing = []
        if self.hub is not None:
            missing = sorted(self.hub.tracker.behind(Category.OBJECTS, self.version, self.pending))
        elapsed = time.monotonic() - self._t0
        return DrainProgress(len(self.nodes) - len(missing), missing, elapsed, False)

    async def wait(self) -> DrainResult:
        await self._done.wait()
        assert self.result is not None
        return self.result

    def _finish(self, elapsed: float, missing: list[str]) -> None:
        self.result = DrainResult(
            self.version, self.changed, self.record, self.nodes, missing, elapsed, self.offline
        )
        self._done.set()


class DrainBook:
    """The running and recent drains of one registry (bounded), and their tasks."""

    def __init__(
        self, hub: CascadeHub | None, kept: int = KEPT_DRAINS, tier: TierPresence | None = None
    ) -> None:
        self.hub = hub
        self.tier = tier
        self._jobs: deque[DrainJob] = deque(maxlen=kept)
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def prompt_acks(self, timeout: float) -> None:
        """The changes of the next ``timeout`` (and a grace) are acknowledged at once:
        a drain waits for them (else nodes acknowledge within ``HubOptions.lazy_ack``)."""
        if self.hub is not None:
            self.hub.prompt_acks_for(timeout + WAIT_ROW_GRACE_S)

    async def announce(self, version: Version, timeout: float) -> str | None:
        """Before the drain's write: the nodes are to acknowledge it at once, and the
        tier's registries are told that a drain waits, so they write their nodes'
        acknowledgements from its first one on."""
        if self.hub is None:
            return None
        self.prompt_acks(timeout)
        if self.tier is None:
            return None
        return await self.tier.open_wait(version, timeout + WAIT_ROW_GRACE_S)

    async def start(
        self,
        version: Version,
        changed: bool,
        record: EndpointRecord,
        timeout: float,
        wait_id: str | None = None,
    ) -> DrainJob:
        hub = self.hub
        if hub is None:  # no cascade: no node to wait for
            ws = WaitSet([], [])
        elif self.tier is not None:
            ws = await self.tier.wait_set()
        else:
            ws = WaitSet(sorted(hub.tracker.connected_names()), [])
        job = DrainJob(
            next(self._ids),
            version,
            changed,
            record,
            ws.nodes,
            timeout,
            time.time(),
            hub,
            offline=ws.offline,
            pending=set(ws.nodes),
        )
        self._jobs.append(job)
        self._spawn(job, self._wait(job, wait_id))
        return job

    async def _wait(self, job: DrainJob, wait_id: str | None) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + job.timeout
        hub, tier, version = self.hub, self.tier, job.version
        try:
            while job.pending and hub is not None:
                tracker = hub.tracker
                job.pending = tracker.behind(Category.OBJECTS, version, job.pending)
                if job.pending and tier is not None:
                    job.pending -= await tier.acked_elsewhere(job.pending, version)
                left = deadline - loop.time()
                if not job.pending or left <= 0:
                    break
                here = job.pending & tracker.connected_names()
                remote = job.pending - here
                slice_s = min(left, ACK_POLL_S) if remote and tier is not None else left
                if here:  # wakes as soon as the last of them acknowledges
                    await hub.wait_acked(Category.OBJECTS, version, here, slice_s)
                else:
                    await asyncio.sleep(slice_s)
        finally:
            if tier is not None:
                await tier.close_wait(wait_id)
        job._finish(loop.time() - start, sorted(job.pending))

    async def close_wait(self, wait_id: str | None) -> None:
        if self.tier is not None:
            await self.tier.close_wait(wait_id)

    def _spawn(self, job: DrainJob, waiting: Awaitable[None]) -> None:
        async def run() -> None:
            await waiting

        task = asyncio.create_task(run(), name=f"drain-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def jobs(self) -> list[DrainJob]:
        """Newest first."""
        return list(reversed(self._jobs))

    def get(self, job_id: int) -> DrainJob | None:
        return next((j for j in self._jobs if j.id == job_id), None)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["KEPT_DRAINS", "DrainBook", "DrainJob", "DrainProgress", "DrainResult"]
