"""Wait for an observable state instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.005, what: str = ""
) -> None:
    """Return as soon as ``predicate()`` is truthy; raise AssertionError after ``timeout``.

    The timeout is a bound for a loaded machine, not an expectation of speed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s: {what or predicate}")
        await asyncio.sleep(interval)
