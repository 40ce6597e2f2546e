from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collector_resumed() -> Iterator[None]:
    """A replica pauses the garbage collector during a snapshot: never beyond it."""
    assert gc.isenabled()
    yield
    gc.collect()  # frees replicas a test dropped with half a snapshot
    assert gc.isenabled()
