"""Registry: time to serve 1,000,000 endpoints from SQLite, RSS, and QueryF answers/s.

1. 200,000 objects x 5 endpoints are bulk-loaded into a temporary SQLite file.
2. A registry process starts on it; the time from spawn to its READY line (store opened,
   everything loaded, QueryObj listening) and its RSS then are recorded.
3. A load-generator process asks findObjectByIdInSameGroup for 100 hot objects,
   pipelined on one connection and over 50 connections.
Targets (issue 3): start < 20 s, RSS < 1.5 GB, >= 20,000 QueryF answers/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.bench_store import generate
from bench.bench_transport import scenario, start_server, stop
from bench.common import cli, median, verdict
from tarscascade.store import SqlStore

TARGET_START_S = 20.0
TARGET_RSS_MB = 1536.0
TARGET_QPS = 20_000


def run(quick: bool) -> dict[str, Any]:
    objects = 20_000 if quick else 200_000
    starts = 1 if quick else 3
    duration = 1.0 if quick else 3.0
    with tempfile.TemporaryDirectory(prefix="tc-bench-registry-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'registry.db'}"
        store = SqlStore.open(db)
        t0 = time.perf_counter()
        store.bulk_load(generate(objects), log_changes=False)
        n = objects * 5
        bulk_s = time.perf_counter() - t0
        store.close()
        hot = [f"App{i % 997}.Server{i}.Obj{i % 3}" for i in range(0, objects, objects // 100)]
        start_s, rss, qps = [], [], {}
        proc = None
        for k in range(starts):
            t0 = time.perf_counter()
            proc, ready = start_server([sys.executable, "-m", "bench.serve_registry", "--db", db])
            start_s.append(time.perf_counter() - t0)
            rss.append(psutil.Process(proc.pid).memory_info().rss / 2**20)
            if k < starts - 1:
                stop(proc)
        assert proc is not None
        try:
            port = int(ready[0])
            extra = ("--query-objects", ",".join(hot), "--caller", "10.0.0.1")
            for name, (conns, depth) in {
                "one_connection_pipelined": (1, 100),
                "fifty_connections": (50, 8),
            }.items():
                runs = [
                    scenario(port, proc.pid, conns, depth, duration, extra)
                    for _ in range(1 if quick else 3)
                ]
                rps = median([r["rps"] for r in runs])
                qps[name] = {
                    "connections": conns,
                    "in_flight_per_connection": depth,
                    "answers_per_s_median": rps,
                    "answers_per_server_cpu_second_median": median(
                        [r["replies_per_server_cpu_second"] for r in runs]
                    ),
                    "target": verdict(rps, TARGET_QPS, lower_is_better=False),
                }
        finally:
            stop(proc)
    return {
        "objects": objects,
        "endpoints": n,
        "bulk_load_s": bulk_s,
        "start_to_serving_s_median": median(start_s),
        "start_target": verdict(median(start_s) * (200_000 / objects), TARGET_START_S),
        "rss_after_load_mb_median": median(rss),
        "rss_target": verdict(median(rss), TARGET_RSS_MB),
        "queryf": qps,
    }


def main(argv: list[str] | None = None) -> int:
    return cli("registry", run, __doc__, argv, quick_help="100,000 endpoints")


if __name__ == "__main__":
    raise SystemExit(main())
