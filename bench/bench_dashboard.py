"""The dashboard at 10,000 nodes: server time per page and per live update, bytes sent.

A registry (SQLite, empty catalog) whose cascade hub knows 10,000 nodes (a relay
reporting 9,999 descendants, some behind, some stale: what the tracker holds after a
real fleet subscribed). Measured in-process through the ASGI app (no network): the
fleet page, a tree page (100 rows of 10,000, and a search), and one live-update payload
(what ``/ui/events`` sends each second per open page). The tree is paginated server-side,
so the browser's work does not grow with the fleet; the server's does (one pass over the
nodes per render), which is the figure here. Quick: 1,000 nodes.

    .venv/bin/python -m bench.bench_dashboard [--quick]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import cli, median, verdict
from tarscascade.admin import create_registry_app
from tarscascade.admin.dashboard import views
from tarscascade.cascade.states import Held
from tarscascade.model import Category, Version
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.feed import attach_cascade
from tarscascade.store import SqlStore

TARGET_MS = 100.0  # a page or an update, server side


async def _run(n: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tc-bench-dash-") as tmp:
        store = SqlStore.open(f"sqlite:///{Path(tmp) / 'r.db'}")
        core = RegistryCore(store)
        await core.start()
        hub = await attach_cascade(core, token=None)
        try:
            now = time.time()
            versions = core.catalog.versions()
            hub.tracker.connected("relay-0", "10.0.0.1:19386")
            acks = {}
            for i in range(1, n):
                held = {c: Held(v, core.catalog.digest(c)) for c, v in versions.items()}
                if i % 50 == 0:  # behind: an older objects version
                    held[Category.OBJECTS] = Held(Version(versions[Category.OBJECTS].epoch, 0), 0)
                acks[f"node-{i:05}"] = held
            hub.tracker.record_descendants("relay-0", acks, heartbeat=True)
            hub.tracker.record("relay-0", {}, heartbeat=True)
            for st in hub.tracker.states()[:: max(1, n // 100)]:
                st.last_heartbeat = now - 60  # stale
            admin = RegistryAdmin(core, hub=hub)
            app = create_registry_app(admin, token=None)
            transport = httpx.ASGITransport(app=app)
            out: dict[str, Any] = {"nodes": len(hub.node_states())}
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for name, url in (
                    ("fleet_page", "/"),
                    ("tree_page", "/ui/tree?page=3"),
                    ("tree_search", "/ui/tree?q=node-0012"),
                ):
                    times, size = [], 0
                    for _ in range(runs):
                        await asyncio.sleep(views.ROWS_TTL_S)  # past the rows cache: cold
                        t0 = time.perf_counter()
                        r = await c.get(url)
                        times.append((time.perf_counter() - t0) * 1000)
                        assert r.status_code == 200, r.text[:200]
                        size = len(r.content)
                    ms = median(times)
                    target = verdict(ms, TARGET_MS)
                    out[name] = {"ms": round(ms, 1), "bytes": size, "target": target}
            board = views.Board(admin)
            times = []
            for _ in range(runs):  # a fresh computation each time (the cache shares it)
                t0 = time.perf_counter()
                rows = views.node_rows(admin)
                views.fleet(admin, board.sampler, rows)
                views.tree_page(rows, "", 1)
                times.append((time.perf_counter() - t0) * 1000)
            ms = median(times)
            out["live_update"] = {"ms": round(ms, 1), "target": verdict(ms, TARGET_MS)}
            return out
        finally:
            await hub.aclose()
            await core.aclose()
            store.close()


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(1_000 if quick else 10_000, 3 if quick else 7))


def main(argv: list[str] | None = None) -> int:
    return cli("dashboard", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
