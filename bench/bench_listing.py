"""``GET /v1/objects`` at 1,000,000 endpoints: the worst QueryF latency on the registry's
event loop while the whole listing is paged through (target <= 10 ms), before and after.

The registry answers QueryF, runs the cascade and serves the admin API on one event loop.
A "QueryF" task asks the answer cache for an object every millisecond (what QueryObj does
per request) and records how late each answer is against its schedule. Meanwhile:

* before: the old route, one walk of the whole catalog plus JSON per request (issue 18);
* after: the paginated listing (``registry/listing.py``), cold (its first build) and then
  every page of 1,000 encoded as the route encodes it; three times each with a fresh
  listing: the median run is reported, and the verdict judges the worst of all six.

200,000 objects x 5 endpoints (quick: 20,000 x 5).

    .venv/bin/python -m bench.bench_listing [--quick]
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

from bench.bench_catalog import make_endpoints
from bench.common import cli, verdict
from tarscascade.admin.registry_api import listing_json
from tarscascade.catalog import Catalog, QueryAnswerer
from tarscascade.catalog.encoded import QueryMethod
from tarscascade.model import Category, Version
from tarscascade.registry.listing import ObjectListing

TARGET_MS = 10.0
PERIOD_S = 0.001
PAGE = 1_000
REPEATS = 3


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median worst lateness, with every run's worst beside it."""
    ordered = sorted(runs, key=lambda r: r["queryf_worst_late_ms"])
    return {
        **ordered[len(ordered) // 2],
        "worst_late_ms_each": [r["queryf_worst_late_ms"] for r in runs],
    }


class Core:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog


def old_list_objects(cat: Catalog) -> bytes:
    """The route before issue 18, as it was: every object, counted and encoded at once."""
    out = []
    for oid in sorted(cat.object_ids()):
        eps = cat.get_object(oid)
        active = sum(1 for e in eps if cat.is_active(e))
        out.append(
            {
                "object_id": oid,
                "endpoints": len(eps),
                "active": active,
                "inactive": len(eps) - active,
            }
        )
    return json.dumps({"objects": out}).encode()


async def _probe(answerer: QueryAnswerer, ids: list[str], lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time()
    i = 0
    while True:
        due += PERIOD_S
        await asyncio.sleep(max(0.0, due - loop.time()))
        answerer.answer(QueryMethod.FIND_4ANY, ids[i % len(ids)], "")
        lateness.append(max(0.0, loop.time() - due))
        due = max(due, loop.time())  # a stall is counted once, not as a backlog
        i += 1


class GcPauses:
    """The collector's pauses during a phase: how much of the lateness is not the code's."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._t0) * 1000)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def _measure(work: Any, answerer: QueryAnswerer, ids: list[str]) -> dict[str, Any]:
    lateness: list[float] = []
    probe = asyncio.create_task(_probe(answerer, ids, lateness))
    await asyncio.sleep(0.05)
    lateness.clear()
    t0 = time.perf_counter()
    with GcPauses() as gcp:
        pages = await work()
    took = time.perf_counter() - t0
    await asyncio.sleep(0.01)
    probe.cancel()
    worst = max(lateness) * 1000 if lateness else 0.0
    ordered = sorted(lateness)
    p99 = ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0
    return {
        "listing_s": round(took, 3),
        "requests": pages,
        "queryf_probes": len(lateness),
        "queryf_worst_late_ms": round(worst, 2),
        "queryf_p99_late_ms": round(p99, 3),
        "gc_worst_pause_ms": round(max(gcp.pauses, default=0.0), 2),
        "gc_pauses_over_5ms": sum(1 for p in gcp.pauses if p > 5),
    }


async def _run(objects: int) -> dict[str, Any]:
    catalog = Catalog()
    catalog.replace_category(Category.OBJECTS, make_endpoints(objects), Version("e", 1))
    gc.collect()
    gc.freeze()  # as the registry process does once its catalog is loaded (cli/runtime.py)
    answerer = QueryAnswerer(catalog)
    ids = sorted(catalog.object_ids())[:: max(1, objects // 1000)]
    for oid in ids:  # warm: the probe measures the loop, not cache misses
        answerer.answer(QueryMethod.FIND_4ANY, oid, "")

    async def before() -> int:
        old_list_objects(catalog)
        return 1

    listing = ObjectListing(Core(catalog))

    async def after() -> int:
        pages, cursor = 0, ""
        while True:
            page = await listing.page(limit=PAGE, cursor=cursor)
            listing_json(page)  # what the route sends
            pages += 1
            await asyncio.sleep(0)  # the next request arrives as a new event
            if page.next_cursor is None:
                return pages
            cursor = page.next_cursor

    out: dict[str, Any] = {"objects": objects, "endpoints": objects * 5, "repeats": REPEATS}
    out["before_one_request"] = await _measure(before, answerer, ids)
    colds, warms = [], []
    for _ in range(REPEATS):  # a fresh listing each time: its first build, then a re-listing
        listing.close()
        listing = ObjectListing(Core(catalog))
        colds.append(await _measure(after, answerer, ids))
        warms.append(await _measure(after, answerer, ids))
    out["after_cold"], out["after_warm"] = _median_run(colds), _median_run(warms)
    worst = max(r["queryf_worst_late_ms"] for r in colds + warms)
    out["worst_of_all_repeats_ms"] = worst
    out["target"] = verdict(worst, TARGET_MS)
    return out


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(20_000 if quick else 200_000))


def main(argv: list[str] | None = None) -> int:
    return cli("listing", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
