"""The node's disk copy at 1,000,000 endpoints: event-loop stalls and bytes per change.

In one process, a replica catalog of N endpoints and its :class:`DiskCopy`. A probe
coroutine wakes every millisecond and records how late it was: the worst lateness is
the worst extra wait a QueryF answer on that node would see. Measured while

* the disk copy writes a new image (slices encoded on the loop, written from a thread),
* the previous design ran: the whole replica encoded in one ``asyncio.to_thread`` call
  (``orjson`` holds the GIL, so the loop stalls anyway: review E3), as the baseline,
* nothing at all (the machine's own floor, in the same run),

and the journal's bytes per single-endpoint change. Target: worst stall <= 10 ms.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import cli, verdict
from tarscascade.cascade import encode_records
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Version
from tarscascade.node.disk import DiskCopy

TARGET_STALL_MS = 10.0
E = "bench"


def _host(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def replica(n: int) -> Catalog:
    cat = Catalog()
    records = [
        EndpointRecord(
            f"App{i % 997}.Srv{i % 50}.Obj{i % 5}",
            f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            10000 + i % 50000,
        )
        for i in range(n)
    ]
    cat.replace_category(Category.OBJECTS, records, Version(E, n))
    return cat


async def worst_stall(work: Any) -> tuple[float, float]:
    """(worst lateness of a 1 ms timer in ms, seconds the work took) while ``work`` runs."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal worst
        while not done.is_set():
            t = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - t - 0.001)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    await work
    took = time.perf_counter() - t0
    done.set()
    await task
    return worst * 1000, took


async def measure(n: int) -> dict[str, Any]:
    cat = replica(n)
    # as the node agent does after a snapshot (ClientOptions.freeze_gc_after_snapshot):
    # the long-lived replica moves out of the collector's way
    gc.collect()
    gc.freeze()
    idle_stall, _ = await worst_stall(asyncio.sleep(1.0))  # the machine's own floor
    with tempfile.TemporaryDirectory(prefix="tc-disk-") as tmp:
        disk = DiskCopy(Path(tmp), "bench", cat)
        image_stall, image_s = await worst_stall(disk.write_once())
        image_bytes = disk.stats.image_bytes
        records = list(cat.records(Category.OBJECTS))
        old_stall, old_s = await worst_stall(asyncio.to_thread(encode_records, records))
        before = disk.stats.bytes_written
        changes = 200
        for i in range(changes):
            v = cat.version(Category.OBJECTS)
            r = EndpointRecord(records[i].object_id, records[i].host, records[i].port, weight=i)
            ev = ChangeEvent(v.revision + 1, Category.OBJECTS, Op.PUT, r.key, r)
            cat.apply([ev], E)
            disk.applied(Category.OBJECTS, v, cat.version(Category.OBJECTS), [ev])
        append_stall, _ = await worst_stall(disk.write_once())
        per_change = (disk.stats.bytes_written - before) / changes
    return {
        "endpoints": n,
        "image_mb": round(image_bytes / 2**20, 1),
        "image_write_s": round(image_s, 2),
        "worst_stall_ms_image_write": round(image_stall, 1),
        "worst_stall_ms_idle": round(idle_stall, 1),
        "worst_stall_ms_whole_encode_baseline": round(old_stall, 1),
        "whole_encode_s_baseline": round(old_s, 2),
        "worst_stall_ms_journal_append": round(append_stall, 1),
        "journal_bytes_per_change": round(per_change),
        "verdict": verdict(image_stall, TARGET_STALL_MS),
    }


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(measure(50_000 if quick else 1_000_000))


def main(argv: list[str] | None = None) -> int:
    return cli("disk", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
