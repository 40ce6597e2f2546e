"""Cascade: propagation to 50 and 1,000 nodes, drain waits, idle cost, a 1M-endpoint snapshot.

Processes: a registry (``bench.serve_cascade``: SQLite store, core, hub) and node
processes (``bench.cascade_nodes``: many CascadeClients, each with its own catalog and
TCP connection), all on this machine, timestamps by ``time.time()``.

1. Propagation: K endpoint updates, one write each; per update, the time from the
   registry having the write committed and applied (the moment it acknowledges the
   writer) to the last node applying it: p50/p99/max over the updates. Also per
   node-update, and from the write being issued (SQLite commit included).
2. Drain: update, then ``wait_acked`` until every connected node acknowledged it.
3. Idle: registry CPU % with 1,000 nodes connected and heartbeating every 3 s (±20 %).
4. Snapshot: a new node subscribing to a registry holding 1,000,000 endpoints (200,000
   objects) until synced (first snapshot: encoded on demand; second: from the shared
   cached copy), and the node process's RSS.

Targets: p99 < 50 ms (50 nodes), < 500 ms (1,000 nodes); snapshot < 5 s, node RSS < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.bench_store import generate
from bench.common import save, verdict
from tarscascade.model import EndpointRecord
from tarscascade.store import SqlStore

TARGET_P99_50_MS = 50.0
TARGET_P99_1000_MS = 500.0
TARGET_SNAPSHOT_S = 5.0
TARGET_NODE_RSS_MB = 1024.0


class Proc:
    """A child speaking the READY/SYNCED + one-JSON-line-per-command protocol."""

    def __init__(self, cmd: list[str], ready: str) -> None:
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line.startswith(ready):
            self.p.kill()
            raise RuntimeError(f"{cmd[2]} did not start: {line!r}")
        self.fields = line.split()[1:]

    def ask(self, command: str) -> Any:
        assert self.p.stdin is not None
        assert self.p.stdout is not None
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def stop(self) -> None:
        try:
            if self.p.stdin is not None:
                self.p.stdin.close()
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def registry(db: str) -> Proc:
    return Proc([sys.executable, "-m", "bench.serve_cascade", "--db", db], "READY ")


def nodes(port: int, count: int, prefix: str, timeout: float = 300.0) -> Proc:
    cmd = [sys.executable, "-m", "bench.cascade_nodes", "--port", str(port)]
    cmd += ["--count", str(count), "--prefix", prefix, "--timeout", str(timeout)]
    return Proc(cmd, "SYNCED ")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50": round(pct(ms, 0.5), 2), "p99": round(pct(ms, 0.99), 2), "max": round(max(ms), 2)}


def propagation(
    reg: Proc, procs: list[Proc], n_nodes: int, k: int, interval: float
) -> dict[str, Any]:
    writes = reg.ask(f"updates {k} {interval}")
    applied: dict[int, list[float]] = {rev: [] for rev, _, _ in writes}
    deadline = time.time() + 60
    while time.time() < deadline:
        for p in procs:
            for rev, times in p.ask("dump").items():
                if int(rev) in applied:
                    applied[int(rev)] += times
        if all(len(t) >= n_nodes for t in applied.values()):
            break
        time.sleep(0.2)
    complete = [w for w in writes if len(applied[w[0]]) >= n_nodes]
    all_nodes = [max(applied[rev]) - committed for rev, _, committed in complete]
    from_issue = [max(applied[rev]) - issued for rev, issued, _ in complete]
    per_node = [t - committed for rev, _, committed in complete for t in applied[rev]]
    return {
        "nodes": n_nodes,
        "updates": k,
        "updates_reaching_every_node": len(complete),
        "interval_s": interval,
        "commit_to_all_applied_ms": summary_ms(all_nodes),
        "commit_to_each_applied_ms": summary_ms(per_node),
        "write_issued_to_all_applied_ms": summary_ms(from_issue),
    }


def base_records(objects: int) -> list[EndpointRecord]:
    return [
        EndpointRecord(f"Base.S{i}.Obj", "10.9.0.1", 10000 + j)
        for i in range(objects)
        for j in range(5)
    ]


def fleet(tmp: str, name: str, n_nodes: int, n_procs: int) -> tuple[Proc, list[Proc], float]:
    db = f"sqlite:///{Path(tmp) / f'{name}.db'}"
    store = SqlStore.open(db)
    store.bulk_load(base_records(200))
    store.close()
    reg = registry(db)
    port = int(reg.fields[0])
    t0 = time.perf_counter()
    per = n_nodes // n_procs
    procs = [nodes(port, per, f"{name}-p{i}-n") for i in range(n_procs)]
    ok = reg.ask(f"nodes {per * n_procs} 300")
    assert ok["ok"], ok
    return reg, procs, time.perf_counter() - t0


def scenario_50(tmp: str, quick: bool) -> dict[str, Any]:
    n = 10 if quick else 50
    reg, procs, start_s = fleet(tmp, "fifty", n, 1)
    try:
        prop = propagation(reg, procs, n, 30 if quick else 200, 0.02)
        waits = reg.ask(f"drain {20 if quick else 100}")
        drain = {
            "waits": len(waits),
            "incomplete": sum(1 for _, missing in waits if missing),
            "wait_acked_ms": summary_ms([e for e, _ in waits]),
        }
        stats = reg.ask("stats")
    finally:
        for p in procs:
            p.stop()
        reg.stop()
    prop["target"] = verdict(prop["commit_to_all_applied_ms"]["p99"], TARGET_P99_50_MS)
    return {
        "fleet_start_s": round(start_s, 2),
        "propagation": prop,
        "drain": drain,
        "registry": stats,
    }


def scenario_1000(tmp: str, quick: bool) -> dict[str, Any]:
    n = 200 if quick else 1000
    reg, procs, start_s = fleet(tmp, "thousand", n, 2)
    try:
        node_rss = [psutil.Process(p.p.pid).memory_info().rss / 2**20 for p in procs]
        idle = reg.ask(f"idle {3 if quick else 15}")
        prop = propagation(reg, procs, n, 30 if quick else 150, 0.05 if quick else 0.1)
        stats = reg.ask("stats")
    finally:
        for p in procs:
            p.stop()
        reg.stop()
    prop["target"] = verdict(prop["commit_to_all_applied_ms"]["p99"], TARGET_P99_1000_MS)
    return {
        "fleet_start_s": round(start_s, 2),
        "node_process_rss_mb": [round(r, 1) for r in node_rss],
        "registry_idle": idle,
        "propagation": prop,
        "registry": stats,
    }


def scenario_snapshot(tmp: str, quick: bool) -> dict[str, Any]:
    objects = 10_000 if quick else 200_000
    db = f"sqlite:///{Path(tmp) / 'million.db'}"
    store = SqlStore.open(db)
    t0 = time.perf_counter()
    store.bulk_load(generate(objects), log_changes=False)
    load_s = time.perf_counter() - t0
    store.close()
    reg = registry(db)
    port = int(reg.fields[0])
    runs = []
    try:
        for i in range(2):  # first: encoded on demand; second: the shared cached copy
            p = nodes(port, 1, f"fresh{i}-")
            synced_s, rss, max_rss, replaced_s = (float(x) for x in p.fields)
            p.stop()
            runs.append(
                {
                    "objects_in_catalog_s": replaced_s,
                    "synced_s": synced_s,
                    "node_rss_mb": rss,
                    "node_max_rss_mb": max_rss,
                }
            )
        stats = reg.ask("stats")
    finally:
        reg.stop()
    first = runs[0]
    return {
        "endpoints": objects * 5,
        "bulk_load_s": round(load_s, 2),
        "first_node": first,
        "second_node_cached": runs[1],
        "registry_rss_mb": stats["rss_mb"],
        "target_time": verdict(first["synced_s"], TARGET_SNAPSHOT_S),
        "target_rss": verdict(first["node_max_rss_mb"], TARGET_NODE_RSS_MB),
    }


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tc-bench-cascade-") as tmp:
        return {
            "nodes_50": scenario_50(tmp, quick),
            "nodes_1000": scenario_1000(tmp, quick),
            "snapshot_1m": scenario_snapshot(tmp, quick),
        }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = ap.parse_args(argv)
    save("cascade", run(args.quick), args.quick)


if __name__ == "__main__":
    main()
