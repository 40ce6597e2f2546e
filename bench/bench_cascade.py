"""Cascade: propagation to 10, 100 and 1,000 nodes, drain waits, idle cost, 1M endpoints.

Processes: a registry (``bench.serve_cascade``: SQLite store, core, hub) and node
processes (``bench.cascade_nodes``: many CascadeClients, each with its own catalog and
TCP connection), all on this machine, timestamps by ``time.time()``.

Per fleet of 10, 100 and 1,000 nodes (quick: 10 and 50):

1. Propagation: endpoint updates, one write each, paced (20 ms apart; 100 ms at 1,000
   nodes) and in bursts (50 concurrent writes, serialized by the store); per update, the
   time from the registry having the write committed and applied (the moment it
   acknowledges the writer) to the last node applying it: p50/p99/max over the updates.
   Also per node-update, and from the write being issued (SQLite commit included).
2. Drain: update, then ``wait_acked`` until every connected node acknowledged it.
3. Idle: registry CPU % with the nodes connected and heartbeating every 3 s (±20 %).

At 1,000,000 endpoints (200,000 objects):

4. Snapshot: a new node subscribing until synced (first snapshot: encoded on demand;
   second: from the shared cached copy), and the node process's RSS.
5. Bytes on the wire per single-endpoint change per node (kernel counters, ``ss``).
6. A real node agent (``bench.serve_node``) synced from the registry: QueryF answers/s
   from its QueryObj for 100 hot objects (one pipelined connection; 50 connections).

Targets: paced p99 < 50 ms (issue 4, at 50 nodes; applied to 10 and 100), < 500 ms
(1,000 nodes); snapshot < 5 s, node RSS < 1 GB; node QueryF >= 20,000/s.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.bench_store import generate
from bench.bench_transport import scenario, start_server, stop
from bench.common import cli, median, socket_bytes, verdict
from tarscascade.model import EndpointRecord
from tarscascade.store import SqlStore

TARGET_P99_50_MS = 50.0
TARGET_P99_1000_MS = 500.0
TARGET_SNAPSHOT_S = 5.0
TARGET_NODE_RSS_MB = 1024.0
TARGET_NODE_QPS = 20_000  # the registry's QueryF target (issue 3), asked of a node too


class Watchdog:
    """Kills every child registered with it once a benchmark's time budget is spent, so no
    wait on a child's answer can block for ever (the blocked read then fails)."""

    def __init__(self, budget_s: float, name: str) -> None:
        self.name = name
        self.children: list[subprocess.Popen[Any]] = []
        self.fired = False
        self._timer = threading.Timer(budget_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, p: subprocess.Popen[Any]) -> None:
        self.children.append(p)

    def start(self, cmd: list[str], ready: str) -> Proc:
        """A :class:`Proc` watched from its spawn on (its READY wait included)."""
        return Proc(cmd, ready, self)

    def _fire(self) -> None:
        self.fired = True
        print(f"bench {self.name}: time budget exceeded, killing children", file=sys.stderr)
        for p in self.children:
            if p.poll() is None:
                p.kill()

    def cancel(self) -> None:
        self._timer.cancel()


class Proc:
    """A child speaking the READY/SYNCED + one-JSON-line-per-command protocol."""

    def __init__(self, cmd: list[str], ready: str | None, watchdog: Watchdog | None = None) -> None:
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if watchdog is not None:
            watchdog.add(self.p)
        self.fields: list[str] = []
        if ready is not None:
            self.wait_ready(ready)

    def wait_ready(self, ready: str) -> None:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line.startswith(ready):
            self.p.kill()
            self.p.wait()
            raise RuntimeError(f"{' '.join(self.cmd)} did not start: {line!r}")
        self.fields = line.split()[1:]

    def ask(self, command: str) -> Any:
        self.tell(command)
        return self.answer()

    def tell(self, command: str) -> None:
        """Send a command without waiting (several children then work on it together)."""
        assert self.p.stdin is not None
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()

    def answer(self) -> Any:
        """The answer to the command told."""
        assert self.p.stdout is not None
        return json.loads(self.p.stdout.readline())

    def stop(self) -> None:
        try:
            if self.p.stdin is not None:
                self.p.stdin.close()
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


#: a node's heartbeat interval grows from 3 s by half per quiet heartbeat up to the 30 s
#: a registry grants (idle heartbeats): the sum of the steps. The settled idle share is
#: measured once the fleet has been up this long
IDLE_RAMP_S = 65.0
#: the settled idle share's window: each node heartbeats about once in it (30 s granted),
#: whatever the phases of a fleet started together (10 s windows saw 10 to 45 a second)
IDLE_WINDOW_S = 30.0


def registry(db: str) -> Proc:
    return Proc([sys.executable, "-m", "bench.serve_cascade", "--db", db], "READY ")


#: node processes run at a lower priority than the registry (as etcd's consumers do in
#: bench_etcd): on 2 shared cores the registry's own work is then what is measured
NODE_NICE = ["nice", "-n", "5"]


def nodes(
    port: int, count: int, prefix: str, timeout: float = 300.0, ready: str | None = "SYNCED "
) -> Proc:
    """``count`` nodes in one process; waited for until synced unless ``ready`` is None."""
    cmd = [*NODE_NICE, sys.executable, "-m", "bench.cascade_nodes", "--port", str(port)]
    cmd += ["--count", str(count), "--prefix", prefix, "--timeout", str(timeout)]
    return Proc(cmd, ready)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50": round(pct(ms, 0.5), 2), "p99": round(pct(ms, 0.99), 2), "max": round(max(ms), 2)}


def collect(
    procs: list[Proc], writes: list[list[float]], n_nodes: int, timeout: float = 60.0
) -> dict[int, list[float]]:
    """Apply times per revision from every node process, until each update reached all."""
    applied: dict[int, list[float]] = {int(rev): [] for rev, _, _ in writes}
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in procs:
            for rev, times in p.ask("dump").items():
                if int(rev) in applied:
                    applied[int(rev)] += times
        if all(len(t) >= n_nodes for t in applied.values()):
            break
        time.sleep(0.2)
    return applied


def cpu_seconds(procs: list[Proc]) -> float:
    total = 0.0
    for p in procs:
        t = psutil.Process(p.p.pid).cpu_times()
        total += t.user + t.system
    return total


def propagation(
    reg: Proc, procs: list[Proc], n_nodes: int, k: int, interval: float, burst: int = 0
) -> dict[str, Any]:
    """Paced (one write every ``interval``) or, with ``burst``, k // burst bursts of
    ``burst`` concurrent writes (a settle of 0.5 s between bursts).

    Also the registry's process CPU over the writes and the 0.5 s after them (their acks;
    heartbeats too, which the idle share measured before says how much of), per update
    and per update and node, and the node processes' CPU per node and update."""
    writes: list[list[float]] = []
    c0, n0 = reg.ask("cpu"), cpu_seconds(procs)
    if burst:
        for _ in range(max(1, k // burst)):
            writes += reg.ask(f"burst {burst}")
            time.sleep(0.5)
    else:
        writes = reg.ask(f"updates {k} {interval}")
        time.sleep(0.5)
    c1, n1 = reg.ask("cpu"), cpu_seconds(procs)
    cpu = c1["cpu_s"] - c0["cpu_s"]
    applied = collect(procs, writes, n_nodes)
    complete = [w for w in writes if len(applied[int(w[0])]) >= n_nodes]
    all_nodes = [max(applied[int(rev)]) - committed for rev, _, committed in complete]
    from_issue = [max(applied[int(rev)]) - issued for rev, issued, _ in complete]
    per_node = [t - committed for rev, _, committed in complete for t in applied[int(rev)]]
    return {
        "nodes": n_nodes,
        "updates": len(writes),
        "updates_reaching_every_node": len(complete),
        "mode": f"bursts of {burst} concurrent writes" if burst else f"paced, {interval} s apart",
        "commit_to_all_applied_ms": summary_ms(all_nodes),
        "commit_to_each_applied_ms": summary_ms(per_node),
        "write_issued_to_all_applied_ms": summary_ms(from_issue),
        "registry_cpu_per_update_ms": round(cpu / max(1, len(writes)) * 1000, 2),
        "registry_cpu_per_update_per_node_us": round(cpu / max(1, len(writes) * n_nodes) * 1e6, 1),
        "registry_cpu_window_s": round(c1["t"] - c0["t"], 2),
        "node_cpu_per_node_update_us": round((n1 - n0) / max(1, len(writes) * n_nodes) * 1e6, 1),
    }


def base_records(objects: int) -> list[EndpointRecord]:
    return [
        EndpointRecord(f"Base.S{i}.Obj", "10.9.0.1", 10000 + j)
        for i in range(objects)
        for j in range(5)
    ]


def fleet(
    tmp: str,
    name: str,
    n_nodes: int,
    n_procs: int,
    *,
    at_once: bool = False,
    base_objects: int = 200,
) -> tuple[Proc, list[Proc], float]:
    """A registry with ``base_objects`` x 5 endpoints and ``n_nodes`` nodes in ``n_procs``
    processes, started one after the other (each process's registrations then reach
    every node already there) or, with ``at_once``, together."""
    db = f"sqlite:///{Path(tmp) / f'{name}.db'}"
    store = SqlStore.open(db)
    store.bulk_load(base_records(base_objects))
    store.close()
    reg = registry(db)
    port = int(reg.fields[0])
    t0 = time.perf_counter()
    per = n_nodes // n_procs
    if at_once:
        procs = [nodes(port, per, f"{name}-p{i}-n", ready=None) for i in range(n_procs)]
        for p in procs:
            p.wait_ready("SYNCED ")
    else:
        procs = [nodes(port, per, f"{name}-p{i}-n") for i in range(n_procs)]
    ok = reg.ask(f"nodes {per * n_procs} 300")
    assert ok["ok"], ok
    return reg, procs, time.perf_counter() - t0


def scenario_fleet(tmp: str, n: int, n_procs: int, quick: bool) -> dict[str, Any]:
    """n nodes: paced and burst propagation, drain waits, idle registry cost."""
    reg, procs, start_s = fleet(tmp, f"fleet{n}", n, n_procs)
    up_at = time.perf_counter()
    target = TARGET_P99_1000_MS if n > 100 else TARGET_P99_50_MS
    try:
        node_rss = [psutil.Process(p.p.pid).memory_info().rss / 2**20 for p in procs]
        idle = reg.ask(f"idle {3 if quick else 10}")
        interval = 0.1 if n > 100 else 0.02
        paced = propagation(reg, procs, n, 30 if quick else 200, interval)
        burst = propagation(reg, procs, n, 40 if quick else 200, 0, burst=20 if quick else 50)
        waits = reg.ask(f"drain {10 if quick else 50}")
        # idle again, once the heartbeat intervals have grown to what the registry grants
        if not quick:
            time.sleep(max(0.0, IDLE_RAMP_S - (time.perf_counter() - up_at)))
        settled = reg.ask(f"idle {3 if quick else IDLE_WINDOW_S}")
        stats = reg.ask("stats")
    finally:
        for p in procs:
            p.stop()
        reg.stop()
    paced["target"] = verdict(paced["commit_to_all_applied_ms"]["p99"], target)
    return {
        "nodes": n,
        "node_processes": n_procs,
        "fleet_start_s": round(start_s, 2),
        "node_process_rss_mb": [round(r, 1) for r in node_rss],
        "registry_idle": idle,
        "registry_idle_settled": settled,
        "paced": paced,
        "burst": burst,
        "drain": {
            "waits": len(waits),
            "incomplete": sum(1 for _, missing in waits if missing),
            "wait_acked_ms": summary_ms([e for e, _ in waits]),
        },
        "registry": stats,
    }


def wire_bytes_per_change(reg: Proc, port: int, k: int) -> dict[str, Any]:
    """Kernel byte counters on the registry's cascade connections around k single-endpoint
    updates (paced 20 ms), per update and connected node; the window also holds the
    nodes' heartbeats (one per ~3 s per node), so this is an upper bound."""
    n = int(reg.ask("stats")["sessions"])
    before = socket_bytes(port)
    t0 = time.perf_counter()
    writes = reg.ask(f"updates {k} 0.02")
    done = reg.ask(f"nodes {n} 30")  # every node applied and acknowledged the last one
    window = time.perf_counter() - t0
    after = socket_bytes(port)
    per = max(1, k * n)
    return {
        "updates": len(writes),
        "nodes": n,
        "all_acked": done["ok"],
        "window_s": round(window, 2),
        "registry_to_node_bytes_per_change_per_node": round((after["sent"] - before["sent"]) / per),
        "node_to_registry_bytes_per_change_per_node": round(
            (after["received"] - before["received"]) / per
        ),
    }


def node_queryf(port: int, objects: int, quick: bool) -> dict[str, Any]:
    """A real node agent synced from the registry; QueryF load against its QueryObj."""
    proc, ready = start_server([sys.executable, "-m", "bench.serve_node", "--upstream", str(port)])
    try:
        node_port, synced_s, rss = int(ready[0]), float(ready[1]), float(ready[2])
        hot = [f"App{i % 997}.Server{i}.Obj{i % 3}" for i in range(0, objects, objects // 100)]
        extra = ("--query-objects", ",".join(hot), "--caller", "10.0.0.1")
        out: dict[str, Any] = {"node_synced_s": synced_s, "node_rss_mb": rss}
        for name, (conns, depth) in {
            "one_connection_pipelined": (1, 100),
            "fifty_connections": (50, 8),
        }.items():
            runs = [
                scenario(node_port, proc.pid, conns, depth, 1.0 if quick else 3.0, extra)
                for _ in range(1 if quick else 3)
            ]
            rps = median([r["rps"] for r in runs])
            out[name] = {
                "answers_per_s_median": round(rps),
                "target": verdict(rps, TARGET_NODE_QPS, lower_is_better=False),
            }
        return out
    finally:
        stop(proc)


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
            if i == 1:
                wire = wire_bytes_per_change(reg, port, 20 if quick else 100)
            p.stop()
            runs.append(
                {
                    "objects_in_catalog_s": replaced_s,
                    "synced_s": synced_s,
                    "node_rss_mb": rss,
                    "node_max_rss_mb": max_rss,
                }
            )
        queryf = node_queryf(port, objects, quick)
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
        "registry_hub": stats["hub"],
        "target_time": verdict(first["synced_s"], TARGET_SNAPSHOT_S),
        "target_rss": verdict(first["node_max_rss_mb"], TARGET_NODE_RSS_MB),
        "single_endpoint_change_on_the_wire": wire,
        "node_agent_queryf": queryf,
    }


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tc-bench-cascade-") as tmp:
        sizes = [(10, 1), (50, 1)] if quick else [(10, 1), (100, 1), (1000, 2)]
        out = {f"nodes_{n}": scenario_fleet(tmp, n, procs, quick) for n, procs in sizes}
        out["snapshot_1m"] = scenario_snapshot(tmp, quick)
        return out


def main(argv: list[str] | None = None) -> int:
    return cli("cascade", run, __doc__, argv, quick_help="small sizes, under a minute")


if __name__ == "__main__":
    raise SystemExit(main())
