"""Fixtures shared by the admin tests: a running registry core; a node agent (with its
registry process) and a client of its admin app; and for the dashboard tests one Chromium
per module, a fresh page per test that fails on any script error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarscascade.admin import create_node_app
from tarscascade.cli.runtime import RegistryProcess
from tarscascade.node.app import NodeAgent
from tarscascade.registry.core import RegistryCore
from tests.integration.admin.chromium import CHROMIUM, FLAGS, PAGE_WAIT_MS
from tests.integration.admin.harness import running_core
from tests.integration.admin.node_harness import asgi_client, cascade


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[RegistryCore]:
    async with running_core(tmp_path) as c:
        yield c


@pytest.fixture
async def node_app(
    tmp_path: Path,
) -> AsyncIterator[tuple[RegistryProcess, NodeAgent, httpx.AsyncClient]]:
    """A registry process, one node agent synced from it, and a client of the agent's app."""
    async with (
        cascade(tmp_path, ["node-a"]) as (rp, nodes),
        asgi_client(create_node_app(nodes[0])) as client,
    ):
        yield rp, nodes[0], client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    p.set_default_timeout(PAGE_WAIT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    ctx.close()
    assert not errors, errors  # no script error on any page
