from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.cascade.harness import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        yield c
    finally:
        await c.aclose()
    assert gc.isenabled(), "a replica left the garbage collector paused"
