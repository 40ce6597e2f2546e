"""A real registry process (store, core, cascade hub, TARS and HTTP ports) on its own event
loop in a background thread, for synchronous test drivers (schemathesis, Playwright)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from tarscascade.cli.runtime import RegistryConfig, RegistryProcess

T = TypeVar("T")
START_TIMEOUT = 60


class LoopThread:
    """An event loop in a daemon thread; ``run(coro)`` executes there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = START_TIMEOUT) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def inner() -> T:
            return fn()

        return self.run(inner())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@contextlib.contextmanager
def registry_in_thread(
    tmp_path: Path, token: str | None, **cfg: Any
) -> Iterator[tuple[LoopThread, RegistryProcess]]:
    lt = LoopThread()
    rp = RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/r.db",
            listen=("127.0.0.1", 0),
            http=("127.0.0.1", 0),
            token=token,
            **cfg,
        )
    )
    try:
        lt.run(rp.start())
        yield lt, rp
    finally:
        with contextlib.suppress(Exception):
            lt.run(rp.aclose())
        lt.stop()
