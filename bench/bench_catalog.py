"""Catalog benchmark: full loads, digests, diffs, incremental applies and hot QueryF answers.

Targets (architecture: registry load < 20 s and < 1.5 GB RSS including the store read;
node snapshot apply < 5 s) at 1,000,000 endpoints = 200,000 objects x 5.

    .venv/bin/python bench/bench_catalog.py            # full: 1M endpoints, ~40 s
    .venv/bin/python bench/bench_catalog.py --quick    # 100k endpoints, < 10 s

Prints a summary and writes JSON to bench/results/catalog-<mode>-<time>.json (and -latest) with the
machine's details. Times are medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.common import save
from tarscascade.catalog import Catalog, ObjectSnapshot, QueryAnswerer, QueryMethod
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Op,
    State,
    Version,
    record_digest,
)

ENDPOINTS_PER_OBJECT = 5
NODES = 20_000


def make_endpoints(n_objects: int) -> list[EndpointRecord]:
    """Records as a store read makes them: fresh strings per row, not shared ones."""
    out = []
    for i in range(n_objects):
        for j in range(ENDPOINTS_PER_OBJECT):
            k = i * ENDPOINTS_PER_OBJECT + j
            out.append(
                EndpointRecord(
                    object_id="".join(("App", str(i % 997), ".Server", str(i), ".Obj")),
                    host=f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}",
                    port=10000 + j,
                    timeout=60000,
                    node_name=f"node{k % NODES}",
                    enable_group=(i % 3 == 0),
                    set_id="app.sz.1" if i % 10 == 0 else "",
                    present_state=State.ACTIVE if j else State.INACTIVE,
                )
            )
    return out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def groups() -> list[GroupRule | GroupPriority]:
    rules: list[GroupRule | GroupPriority] = [
        GroupRule(g, f"idc{g}", (f"10.{g}.*.*", *(f"10.{g}.{c}.*" for c in range(256))))
        for g in range(8)
    ]
    rules.append(GroupPriority(1, "p", tuple(range(8)), 1, "station-a"))
    return rules


def bench(n_objects: int, repeat: int, hot_calls: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    records = make_endpoints(n_objects)
    results["generate_records_s"] = round(time.perf_counter() - t0, 3)
    results["endpoints"] = len(records)
    results["objects"] = n_objects

    # 1. Full load into an empty catalog (registry start, node snapshot). The first run
    #    gives the RSS delta: the records already exist, so this is the catalog's own cost.
    gc.collect()
    before = rss()
    first = Catalog()
    t0 = time.perf_counter()
    first.replace_category(Category.OBJECTS, records, Version("e", 1))
    first_s = time.perf_counter() - t0
    results["replace_rss_delta_mb"] = round((rss() - before) / 2**20, 1)
    del first
    med, runs = timed(
        lambda: Catalog().replace_category(Category.OBJECTS, records, Version("e", 1)), repeat
    )
    results["replace_s"] = {
        "median": round(med, 3),
        "first": round(first_s, 3),
        "runs": [round(r, 3) for r in runs],
    }

    # 1b. The node's path: a snapshot arriving in chunks of 5,000 records, added between
    #     awaits, then one replace that only swaps. The longest chunk is how long the
    #     event loop is blocked at a time.
    def chunked() -> float:
        snap = ObjectSnapshot()
        longest = 0.0
        for start in range(0, len(records), 5000):
            t = time.perf_counter()
            snap.add(records[start : start + 5000])
            longest = max(longest, time.perf_counter() - t)
        t = time.perf_counter()
        Catalog().replace_category(Category.OBJECTS, snap, Version("e", 1))
        return max(longest, time.perf_counter() - t)

    longest: list[float] = []
    med, runs = timed(lambda: longest.append(chunked()), repeat)
    results["snapshot_chunked_s"] = {
        "median": round(med, 3),
        "longest_block_ms": round(statistics.median(longest) * 1e3, 1),
    }

    cat = Catalog()
    cat.replace_category(Category.GROUPS, groups(), Version("e", 1))
    nodes = [NodeRecord(f"node{i}") for i in range(NODES)]
    cat.replace_category(Category.NODES, nodes, Version("e", 1))
    cat.replace_category(Category.OBJECTS, records, Version("e", 2))
    results["rss_with_records_and_catalog_mb"] = round(rss() / 2**20, 1)

    # 2. Digests: the maintained one is O(1); a from-scratch recomputation for reference.
    med, _ = timed(lambda: sum(map(record_digest, records)) % 2**64, repeat)
    results["digest_recompute_s"] = round(med, 3)
    results["record_digest_us"] = round(med / len(records) * 1e6, 3)
    med, _ = timed(lambda: cat.digest(Category.OBJECTS), repeat)
    results["digest_maintained_s"] = med

    # 3. Replace over an identical catalog (resync that changes nothing) and a full diff.
    med, _ = timed(lambda: cat.replace_category(Category.OBJECTS, records, Version("e", 3)), 1)
    results["replace_identical_s"] = round(med, 3)
    med, _ = timed(lambda: cat.diff(Category.OBJECTS, records), 1)
    results["diff_identical_s"] = round(med, 3)

    # 4. Incremental apply: 20,000 puts of changed endpoints.
    n_ev = min(20_000, len(records))
    events = [
        ChangeEvent(100 + i, Category.OBJECTS, Op.PUT, r.key, _bump(r))
        for i, r in enumerate(records[:n_ev])
    ]
    med, _ = timed(lambda: cat.apply(events, "e"), 1)
    results["apply_events_per_s"] = round(n_ev / med)

    # 5. Answers: cold (build view + select + encode) and hot (cached bytes).
    answerer = QueryAnswerer(cat)
    ids = list(cat.object_ids())[:2000]
    callers = ["10.0.1.7", "10.1.2.3", "10.3.0.9", "192.168.1.1"]
    t0 = time.perf_counter()
    for oid in ids:
        answerer.answer(QueryMethod.IN_SAME_GROUP, oid, callers[0])
    results["cold_answers_per_s"] = round(len(ids) / (time.perf_counter() - t0))
    for oid in ids:
        for caller in callers:
            answerer.answer(QueryMethod.IN_SAME_GROUP, oid, caller)
    answer = answerer.answer
    method = QueryMethod.IN_SAME_GROUP.value
    work = [(ids[i % len(ids)], callers[i % len(callers)]) for i in range(hot_calls)]
    t0 = time.perf_counter()
    for oid, caller in work:
        answer(method, oid, caller)
    results["hot_answers_per_s"] = round(hot_calls / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    for oid, _caller in work:
        answer("findObjectById4Any", oid)
    results["hot_4any_answers_per_s"] = round(hot_calls / (time.perf_counter() - t0))
    results["answerer"] = repr(answerer)
    results["peak_rss_mb"] = round(rss() / 2**20, 1)
    return results


def _bump(r: EndpointRecord) -> EndpointRecord:
    return EndpointRecord(r.object_id, r.host, r.port, timeout=r.timeout + 1, node_name=r.node_name)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k endpoints, < 10 s")
    parser.add_argument("--objects", type=int, help="objects (x5 endpoints each)")
    parser.add_argument("--repeat", type=int, help="runs per timed step (median)")
    parser.add_argument("--out", type=Path, help="JSON output path")
    args = parser.parse_args(argv)
    n_objects = args.objects or (20_000 if args.quick else 200_000)
    repeat = args.repeat or 3
    hot_calls = 200_000 if args.quick else 1_000_000
    t0 = time.perf_counter()
    results = bench(n_objects, repeat, hot_calls)
    report = {
        "bench": "catalog",
        "mode": "quick" if args.quick else "full",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": results,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    save("catalog", report, args.quick)


if __name__ == "__main__":
    main()
