"""Browser fixtures of the dashboard tests: one Chromium per module, a fresh page per test
that fails on any script error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.admin.chromium import CHROMIUM, FLAGS, PAGE_WAIT_MS


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
