"""An owner for background tasks: every task it spawns is cancelled and awaited by ``aclose``.

Unlike an ``asyncio.TaskGroup`` held open across ``__aenter__``/``__aexit__``, a failing
child does not cancel whichever task happened to enter the group (a user's request
handler); it is logged instead. Children are expected to handle their own errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskOwner:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.name} is closed")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Cancel every task and wait for all of them to finish."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            # a cancellation of aclose itself propagates out of wait(); children's
            # outcomes are collected by _done
            await asyncio.wait(tasks)

    def __repr__(self) -> str:
        return f"<TaskOwner {self.name} tasks={len(self._tasks)}>"
