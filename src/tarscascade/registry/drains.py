"""Drains as jobs: one wait for the nodes' acknowledgements, watched live, kept after.

A drain writes the endpoint inactive (``RegistryAdmin.start_drain``) and then waits, in
a task owned here, until every node connected when it began acknowledged the objects
version that carries the change. Anyone may watch it meanwhile (the CLI's progress bar,
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

KEPT_DRAINS = 20


@dataclass(frozen=True, slots=True)
class DrainResult:
    """An endpoint set inactive, and which nodes acknowledged the objects version with it."""

    version: Version  # the objects version that carries the endpoint inactive
    changed: bool  # False when it was inactive already (nothing written)
    record: EndpointRecord
    nodes: list[str]  # the nodes connected when the wait began: those waited for
    missing: list[str]  # of those, the ones that did not acknowledge in time
    elapsed_s: float

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
    result: DrainResult | None = None
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
            tracker = self.hub.tracker
            for name in self.nodes:
                st = tracker.get(name)
                if st is None or not tracker.satisfies(st, Category.OBJECTS, self.version):
                    missing.append(name)
        elapsed = time.monotonic() - self._t0
        return DrainProgress(len(self.nodes) - len(missing), missing, elapsed, False)

    async def wait(self) -> DrainResult:
        await self._done.wait()
        assert self.result is not None
        return self.result

    def _finish(self, elapsed: float, missing: list[str]) -> None:
        self.result = DrainResult(
            self.version, self.changed, self.record, self.nodes, missing, elapsed
        )
        self._done.set()


class DrainBook:
    """The running and recent drains of one registry (bounded), and their tasks."""

    def __init__(self, hub: CascadeHub | None, kept: int = KEPT_DRAINS) -> None:
        self.hub = hub
        self._jobs: deque[DrainJob] = deque(maxlen=kept)
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, version: Version, changed: bool, record: EndpointRecord, timeout: float
    ) -> DrainJob:
        hub = self.hub
        nodes = sorted(n for n, st in hub.node_states().items() if st.connected) if hub else []
        job = DrainJob(next(self._ids), version, changed, record, nodes, timeout, time.time(), hub)
        self._jobs.append(job)
        if hub is None or not nodes:
            job._finish(0.0, [])
            return job
        waiting = hub.wait_acked(Category.OBJECTS, version, nodes, timeout)
        self._spawn(job, waiting)
        return job

    def _spawn(self, job: DrainJob, waiting: Awaitable[tuple[float, list[str]]]) -> None:
        async def run() -> None:
            elapsed, missing = await waiting
            job._finish(elapsed, missing)

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
