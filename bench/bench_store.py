"""Benchmark: how fast ``SqlStore.load()`` reads a large SQLite store, and how much memory.

Bulk-loads 1,000,000 endpoints (200,000 objects x 5) into a temporary SQLite file, then
times ``load()`` several times, each in a fresh process so the bulk load's memory and a
previous load's caches do not flatter the figures. Prints a summary and saves JSON with
the machine's details under ``bench/results/``.

    .venv/bin/python bench/bench_store.py            # 1,000,000 endpoints
    .venv/bin/python bench/bench_store.py --quick    # 100,000 endpoints

Targets: load well under 10 s and under 1 GB for a million endpoints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy

from bench.common import save
from tarscascade.model import EndpointRecord, State
from tarscascade.store import SqlStore

ENDPOINTS_PER_OBJECT = 5
FULL_OBJECTS = 200_000
QUICK_OBJECTS = 20_000
HOSTS = 20_000  # a realistic fleet: each host runs many servants
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_LOAD_S = 10.0
TARGET_RSS_BYTES = 1 << 30


def generate(objects: int) -> Iterator[EndpointRecord]:
    """Deterministic, varied endpoints: a tenth in sets, a fifth grouped, some inactive."""
    for i in range(objects):
        object_id = f"App{i % 997}.Server{i}.Obj{i % 3}"
        for j in range(ENDPOINTS_PER_OBJECT):
            h = (i * ENDPOINTS_PER_OBJECT + j) % HOSTS
            host = f"10.{h >> 16 & 255}.{h >> 8 & 255}.{h & 255}"
            yield EndpointRecord(
                object_id=object_id,
                host=host,
                port=10000 + (i % 50000),
                timeout=60000,
                node_name=host,
                set_id=f"app.sz.{j}" if i % 10 == 0 else "",
                enable_group=i % 5 == 0,
                weight=100 if j else -1,
                present_state=State.INACTIVE if (i + j) % 50 == 0 else State.ACTIVE,
            )


def measure_load(url: str) -> dict[str, Any]:
    """Run in a fresh process: open, load once, report time and memory."""
    proc = psutil.Process()
    store = SqlStore.open(url)
    rss_before = proc.memory_info().rss
    start, cpu_start = time.perf_counter(), time.process_time()
    snapshot = store.load()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_after = proc.memory_info().rss
    store.close()
    return {
        "load_s": seconds,
        # CPU time as well: on a shared machine wall time also counts other processes.
        "load_cpu_s": cpu,
        "loadavg_1m": os.getloadavg()[0],
        "endpoints": len(snapshot.endpoints),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "snapshot_rss_bytes": rss_after - rss_before,
        # Linux reports ru_maxrss in KiB: the process's peak, imports and all.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run(objects: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
        path = Path(tmp) / "store.db"
        url = f"sqlite:///{path}"
        with SqlStore.open(url) as store:
            start = time.perf_counter()
            revision = store.bulk_load(generate(objects), log_changes=False)
            bulk_s = time.perf_counter() - start
        db_bytes = path.stat().st_size
        spawn = mp.get_context("spawn")  # fresh interpreters: no memory from the bulk load
        runs = []
        for _ in range(repeats):
            with spawn.Pool(1) as pool:
                runs.append(pool.apply(measure_load, (url,)))
    total = objects * ENDPOINTS_PER_OBJECT
    median = {
        key: statistics.median(r[key] for r in runs)
        for key in (
            "load_s",
            "load_cpu_s",
            "loadavg_1m",
            "snapshot_rss_bytes",
            "rss_after_bytes",
            "peak_rss_bytes",
        )
    }
    return {
        "benchmark": "store.load (SQLite)",
        "endpoints": total,
        "objects": objects,
        "repeats": repeats,
        "bulk_load_s": bulk_s,
        "bulk_load_rows_per_s": total / bulk_s,
        "revision": revision,
        "db_file_bytes": db_bytes,
        "median": median,
        "load_endpoints_per_s": total / median["load_s"],
        "targets": {
            "load_s": TARGET_LOAD_S,
            "rss_bytes": TARGET_RSS_BYTES,
            "load_met": median["load_s"] < TARGET_LOAD_S,
            "rss_met": median["peak_rss_bytes"] < TARGET_RSS_BYTES,
        },
        "runs": runs,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 endpoints")
    parser.add_argument("--repeats", type=int, default=5, help="load() runs (median taken)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON")
    args = parser.parse_args(argv)
    objects = QUICK_OBJECTS if args.quick else FULL_OBJECTS
    result = run(objects, args.repeats)
    mib = 1 << 20
    med = result["median"]
    print(
        f"bulk_load: {result['endpoints']:,} endpoints in {result['bulk_load_s']:.1f} s "
        f"({result['bulk_load_rows_per_s']:,.0f}/s), file {result['db_file_bytes'] / mib:.0f} MiB"
    )
    print(
        f"load (median of {args.repeats}): {med['load_s']:.2f} s wall, {med['load_cpu_s']:.2f} s "
        f"CPU ({result['load_endpoints_per_s']:,.0f} endpoints/s, load average "
        f"{med['loadavg_1m']:.1f}); snapshot "
        f"{med['snapshot_rss_bytes'] / mib:.0f} MiB, "
        f"process peak {med['peak_rss_bytes'] / mib:.0f} MiB"
    )
    save("store", result, args.quick)


if __name__ == "__main__":
    main()
