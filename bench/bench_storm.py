"""Reconnect storm: every node drops and reconnects at once (a network blip, a registry restart).

Processes, all on this machine, timestamps by ``time.time()``: a registry
(``bench.serve_cascade``: SQLite store preloaded with 200 objects / 1,000 endpoints, core,
hub), node processes (``bench.cascade_nodes``: many real CascadeClients, each with its own
catalog and TCP connection; full: 1,000 nodes in 2 processes, quick: 50 in 1), and between
them a failure-injection TCP proxy (``bench.storm_proxy``) that relays every node
connection to the registry and can cut them all at once. The registry and the nodes are
the product code with default options; only the network between them is faked.

A. Blip (shorter than the change-log window): with every node in sync, the proxy aborts
   every connection and refuses (accepts and aborts) new ones for 2 s; the registry takes
   50 writes meanwhile. Measured from the end of the cut: the time until every node is
   connected again and has acknowledged the registry's current objects version (the
   registry's ``nodes N`` wait, read as soon as it answers), and the time until the last
   node applied the last write (node clocks, from the apply hook); the hub's counters
   over the storm (full snapshots sent — target 0 —, catch-up resumes, deltas,
   subscribes), the registry's peak RSS (psutil, sampled every 20 ms from this process)
   and the reconnect attempts the proxy refused.
B. Registry restart: stop the registry — ``graceful`` (stdin closed: the hub ends its
   sessions, like the real registry on SIGTERM; ``serve_cascade`` has no signal handler,
   so a SIGTERM there would be the same as a kill) or ``kill`` (SIGKILL) —, write 20
   changes straight into the SQLite database with ``SqlStore`` while it is down, start a
   new registry on the same database, point the proxy at its port. Measured: the time
   from the new registry's READY line (and from the stop) until every node is connected
   and acked the current version, the time until the last node applied the last write,
   the new registry's counters (snapshots: expected 0, the restarted registry rebuilds
   its change logs from the store), its RSS at READY and peak RSS during the storm.
C. Outage beyond the change-log window (full mode only): cut, write 130,000 changes
   straight into the database (the registry tails them, like another registry's writes
   on a shared database; its objects log keeps 100,000 events, up to 125,000 before a
   trim), then open: every node must take an objects snapshot. Same figures.

Each storm also reports when the last node got through the proxy again (the reconnect
backoff's share of the time) and the time from then to all in sync (the registry's share).

What a proxy cut is and is not: connections are reset (RST) and reconnects fail fast, as
when a switch or the registry host drops them. A silent blip (packets lost, no reset)
shorter than the heartbeat timeouts would not drop the TCP connections at all, so there
would be no storm: not measured here.

Between storms the fleet stays connected for ``HEALTHY_AFTER_S`` + 1 s, so every node
starts the next storm with its reconnect backoff reset, as a long-connected node does.

Targets. Blip: 0 snapshots (issue 6); registry restart: 0 snapshots (docs/protocol.md,
"Failover and restarts": a restart resumes with deltas). Time to sync: no target is
written down; the nodes' reconnect backoff bounds it (defaults: first retry after
U(0, 0.2) s, then 0.2 s doubling to 10 s, each delay drawn in [50 %, 100 %]): an outage
of T s ends while a node may be waiting out a delay of up to ``backoff_bound(T)`` (2 s:
3.2 s). The target is that the storm adds at most 1 s to that: sync < bound + 1 s, from
the end of the cut (A, C) or the new registry's READY (B).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.bench_cascade import Proc, Watchdog, base_records
from bench.common import cli, median, verdict
from bench.serve_cascade import BENCH_OBJ
from tarscascade.cascade import ClientOptions
from tarscascade.cascade.downstream import HEALTHY_AFTER_S
from tarscascade.model import EndpointRecord
from tarscascade.store import Put, SqlStore
from tarscascade.transport import Backoff

BLIP_S = 2.0
BLIP_WRITES = 50
BLIP_WRITE_INTERVAL = 0.01
RESTART_WRITES = 20
#: > 1.25 x the hub's 100,000-event objects log (it trims in quarters)
BEYOND_WINDOW_WRITES = 130_000
WRITE_CHUNK = 10_000
SETTLE_S = HEALTHY_AFTER_S + 1.0
STORM_MARGIN_S = 1.0  # what the storm may add to the backoff bound
SYNC_TIMEOUT_S = 60.0
RSS_SAMPLE_S = 0.02


NOTES = [
    "sync_s: end of the cut (or the new registry's READY) to the registry's answer that every"
    " node is connected and acked its objects version; last_node_reconnected_s: when the last"
    " node got through the proxy (the backoff's share); sync_after_last_reconnect_s: the rest.",
    "deltas_sent is the hub's counter: it also counts live deltas for sessions whose"
    " connection had just been cut (push refused, session dropped), so it can exceed resumes.",
    "beyond_window runs in full mode only (130,000 writes take ~7-12 s).",
]


# ---------------------------------------------------------------------- processes


def kill(proc: Proc) -> None:
    if proc.p.poll() is None:
        proc.p.kill()
    proc.p.wait()


class RssPeak:
    """Samples a process's RSS every 20 ms in a thread; ``peak_mb`` once stopped."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self.samples += 1
            self._stop.wait(RSS_SAMPLE_S)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return round(self.peak / 2**20, 1)


@dataclass
class Fleet:
    wd: Watchdog
    db: str
    n: int
    reg: Proc
    proxy: Proc
    procs: list[Proc] = field(default_factory=list)
    writes: int = 0  # direct writes so far: each gets a new weight (equal content = bookmark)

    def start_registry(self) -> Proc:
        self.reg = self.wd.start(
            [sys.executable, "-m", "bench.serve_cascade", "--db", self.db], "READY "
        )
        return self.reg

    def stop(self) -> None:
        for p in [*self.procs, self.proxy, self.reg]:
            p.stop()

    def sync(self) -> dict[str, Any]:
        """Wait (bounded) until all N nodes are connected and acked the current version."""
        res: dict[str, Any] = self.reg.ask(f"nodes {self.n} {SYNC_TIMEOUT_S}")
        return res

    def clear_applied(self) -> None:
        for p in self.procs:
            p.ask("dump")

    def applied(self, rev: int, timeout: float = 5.0) -> list[float]:
        """Every node's apply time of objects revision ``rev`` (as far as they came)."""
        times: list[float] = []
        deadline = time.time() + timeout
        while True:
            for p in self.procs:
                times += p.ask("dump").get(str(rev), [])
            if len(times) >= self.n or time.time() > deadline:
                return times
            time.sleep(0.2)


def start_fleet(wd: Watchdog, tmp: str, n: int, n_procs: int) -> Fleet:
    db = f"sqlite:///{Path(tmp) / 'storm.db'}"
    store = SqlStore.open(db)
    store.bulk_load(base_records(200))
    store.close()
    started: list[Proc] = []
    try:
        started.append(
            wd.start([sys.executable, "-m", "bench.serve_cascade", "--db", db], "READY ")
        )
        cmd = [sys.executable, "-m", "bench.storm_proxy", "--upstream", started[0].fields[0]]
        started.append(wd.start(cmd, "READY "))
        fleet = Fleet(wd, db, n, started[0], started[1])
        per = n // n_procs
        for i in range(n_procs):
            cmd = [sys.executable, "-m", "bench.cascade_nodes", "--port", fleet.proxy.fields[0]]
            cmd += ["--count", str(per), "--prefix", f"storm-p{i}-n", "--timeout", "300"]
            started.append(wd.start(cmd, "SYNCED "))
            fleet.procs.append(started[-1])
        fleet.n = per * n_procs
        ok = fleet.sync()
        if not ok["ok"]:
            raise RuntimeError(f"fleet did not sync: {ok}")
    except BaseException:
        for p in reversed(started):
            kill(p)
        raise
    return fleet


# ---------------------------------------------------------------------- figures


def backoff_bound(outage_s: float, opts: ClientOptions | None = None) -> float:
    """The longest reconnect delay a node can be waiting out when an outage of
    ``outage_s`` ends, from a healthy connection (ClientOptions defaults)."""
    o = opts or ClientOptions()
    b = Backoff(initial=o.reconnect_initial, maximum=o.reconnect_max)
    earliest = 0.0  # the first retry can come at once (U(0, initial))
    while True:
        base = min(b.maximum, b.initial * b.multiplier**b.attempts)
        b.next_delay()
        if earliest + base * (1 - b.jitter) >= outage_s or base >= b.maximum:
            return base
        earliest += base * (1 - b.jitter)


COUNTERS = ("snapshots_sent", "resumes", "bookmarks", "deltas_sent", "subscribes", "resyncs")


def hub_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    b, a = before["hub"], after["hub"]
    return {k: a[k] - b.get(k, 0) for k in (*COUNTERS, "slow_dropped")}


def proxy_delta(before: dict[str, Any], after: dict[str, Any], t0: float) -> dict[str, Any]:
    """Connection attempts the proxy refused / could not relay / relayed, and when (from
    ``t0``) the last node got through: the reconnect backoff's share of the sync time."""
    keys = ("refused", "upstream_failed", "relayed")
    out: dict[str, Any] = {f"connects_{k}": after[k] - before[k] for k in keys}
    out["last_node_reconnected_s"] = round(after["last_relayed_t"] - t0, 3)
    return out


def sync_figures(
    t0: float, t_sync: float, ok: dict[str, Any], proxy: dict[str, Any]
) -> dict[str, Any]:
    """``ok``: the registry's ``nodes`` answer (``missing``: connected but behind;
    ``connected``: how many were, when not all reconnected in time); ``proxy``: its
    counters after the storm."""
    return {
        "all_in_sync": bool(ok["ok"]),
        "answer": ok,
        "sync_s": round(t_sync - t0, 3),
        "sync_after_last_reconnect_s": round(t_sync - proxy["last_relayed_t"], 3),
    }


def write_direct(db: str, count: int, weight0: int) -> int:
    """``count`` endpoint updates straight into the database; returns the last revision."""
    store = SqlStore.open(db)
    try:
        rev = 0
        for i in range(count):
            rec = EndpointRecord(BENCH_OBJ, "10.200.0.1", 9000, weight=(weight0 + i) % 1000)
            rev = store.write([Put(rec)])[-1].revision
        return rev
    finally:
        store.close()


def write_many(db: str, count: int) -> int:
    """``count`` updates of the base endpoints, in transactions of 10,000."""
    store = SqlStore.open(db)
    try:
        rev, done = 0, 0
        while done < count:
            ops = [
                Put(
                    EndpointRecord(
                        f"Base.S{i % 200}.Obj", "10.9.0.1", 10000 + (i // 200) % 5, weight=i % 1000
                    )
                )
                for i in range(done, min(count, done + WRITE_CHUNK))
            ]
            rev = store.write(ops)[-1].revision
            done += len(ops)
        return rev
    finally:
        store.close()


# ---------------------------------------------------------------------- scenarios


def blip(fleet: Fleet) -> dict[str, Any]:
    reg, proxy = fleet.reg, fleet.proxy
    fleet.clear_applied()
    s0, p0 = reg.ask("stats"), proxy.ask("count")
    rss = RssPeak(reg.p.pid)
    cut = proxy.ask("cut 600")  # ended by "open" below
    writes = reg.ask(f"updates {BLIP_WRITES} {BLIP_WRITE_INTERVAL}")
    during = reg.ask("stats")
    time.sleep(max(0.0, cut["t_start"] + BLIP_S - time.time()))
    t_open = proxy.ask("open")["t"]
    ok = fleet.sync()
    t_sync = time.time()
    peak = rss.stop()
    s1, p1 = reg.ask("stats"), proxy.ask("count")
    last_rev = writes[-1][0]
    applied = fleet.applied(last_rev)
    outage = t_open - cut["t_start"]
    bound = backoff_bound(outage)
    out = {
        "connections_cut": cut["closed"],
        "sessions_during_cut": during["sessions"],
        "outage_s": round(outage, 3),
        "writes_during_cut": len(writes),
        "writes_took_s": round(writes[-1][2] - writes[0][1], 3),
        **sync_figures(t_open, t_sync, ok, p1),
        "last_write_applied_by": len(applied),
        "last_write_all_applied_s": round(max(applied) - t_open, 3) if applied else None,
        "backoff_bound_s": bound,
        "registry_rss_before_mb": round(s0["rss_mb"], 1),
        "registry_peak_rss_mb": peak,
        **hub_delta(s0, s1),
        **proxy_delta(p0, p1, t_open),
    }
    return out


def restart(fleet: Fleet, how: str) -> dict[str, Any]:
    fleet.clear_applied()
    p0 = fleet.proxy.ask("count")
    old = fleet.reg
    t_stop = time.time()
    if how == "graceful":
        old.stop()
    else:
        old.p.kill()
        old.p.wait()
    t_down = time.time()
    last_rev = write_direct(fleet.db, RESTART_WRITES, 500 + fleet.writes)
    fleet.writes += RESTART_WRITES
    reg = fleet.start_registry()
    t_ready = time.time()
    rss = RssPeak(reg.p.pid)
    fleet.proxy.ask(f"target {reg.fields[0]}")
    ok = fleet.sync()
    t_sync = time.time()
    peak = rss.stop()
    s1, p1 = reg.ask("stats"), fleet.proxy.ask("count")
    applied = fleet.applied(last_rev)
    outage = t_ready - t_stop
    bound = backoff_bound(outage)
    zero = {"hub": {}}
    return {
        "stop": how,
        "stop_took_s": round(t_down - t_stop, 3),
        "outage_s": round(outage, 3),
        "writes_while_down": RESTART_WRITES,
        **sync_figures(t_ready, t_sync, ok, p1),
        "sync_from_stop_s": round(t_sync - t_stop, 3),
        "last_write_applied_by": len(applied),
        "last_write_all_applied_s": round(max(applied) - t_ready, 3) if applied else None,
        "backoff_bound_s": bound,
        "registry_rss_at_ready_mb": float(reg.fields[1]),
        "registry_peak_rss_mb": peak,
        **hub_delta(zero, s1),
        **proxy_delta(p0, p1, t_ready),
    }


def beyond_window(fleet: Fleet) -> dict[str, Any]:
    reg, proxy = fleet.reg, fleet.proxy
    s0, p0 = reg.ask("stats"), proxy.ask("count")
    rss = RssPeak(reg.p.pid)
    cut = proxy.ask("cut 600")
    t0 = time.time()
    write_many(fleet.db, BEYOND_WINDOW_WRITES)
    t_written = time.time()
    reg.ask("updates 1 0")  # returns once the registry has applied (tailed) everything
    t_open = proxy.ask("open")["t"]
    ok = fleet.sync()
    t_sync = time.time()
    peak = rss.stop()
    s1, p1 = reg.ask("stats"), proxy.ask("count")
    outage = t_open - cut["t_start"]
    return {
        "connections_cut": cut["closed"],
        "writes_during_cut": BEYOND_WINDOW_WRITES,
        "writes_took_s": round(t_written - t0, 2),
        "outage_s": round(outage, 3),
        **sync_figures(t_open, t_sync, ok, p1),
        "backoff_bound_s": backoff_bound(outage),
        "registry_rss_before_mb": round(s0["rss_mb"], 1),
        "registry_peak_rss_mb": peak,
        **hub_delta(s0, s1),
        **proxy_delta(p0, p1, t_open),
    }


def summarize(runs: list[dict[str, Any]], snapshot_target: bool) -> dict[str, Any]:
    sync = [r["sync_s"] for r in runs]
    applied = [a for r in runs if (a := r.get("last_write_all_applied_s")) is not None]
    worst_bound = max(r["backoff_bound_s"] for r in runs)
    snaps = max(r["snapshots_sent"] for r in runs)
    out: dict[str, Any] = {
        "runs": len(runs),
        "all_in_sync_every_run": all(r["all_in_sync"] for r in runs),
        "sync_s_median": round(median(sync), 3),
        "sync_s_each": sync,
        "last_write_all_applied_s_median": round(median(applied), 3) if applied else None,
        "last_node_reconnected_s_median": median([r["last_node_reconnected_s"] for r in runs]),
        "sync_after_last_reconnect_s_median": median(
            [r["sync_after_last_reconnect_s"] for r in runs]
        ),
        "registry_peak_rss_mb_median": round(median([r["registry_peak_rss_mb"] for r in runs]), 1),
        "snapshots_sent_max": snaps,
        "resumes_median": median([r["resumes"] for r in runs]),
        "backoff_bound_s": worst_bound,
        "target_sync": verdict(median(sync), worst_bound + STORM_MARGIN_S),
    }
    if snapshot_target:
        out["target_snapshots"] = verdict(snaps, 1)  # i.e. zero
    return out


def settings() -> dict[str, Any]:
    o, b = ClientOptions(), Backoff()
    return {
        "reconnect_initial_s": o.reconnect_initial,
        "reconnect_max_s": o.reconnect_max,
        "reconnect_multiplier": b.multiplier,
        "reconnect_jitter": b.jitter,
        "backoff_reset_after_connected_s": HEALTHY_AFTER_S,
        "heartbeat_interval_s": 3.0,
        "connect_timeout_s": o.connect_timeout,
    }


def run(quick: bool) -> dict[str, Any]:
    n, n_procs = (50, 1) if quick else (1000, 2)
    blips, restarts = (1, 1) if quick else (3, 3)
    wd = Watchdog(150.0 if quick else 540.0, "storm")
    results: dict[str, Any] = {
        "nodes": n,
        "node_processes": n_procs,
        "client": settings(),
        "notes": NOTES,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="tc-bench-storm-") as tmp:
            t0 = time.perf_counter()
            fleet = start_fleet(wd, tmp, n, n_procs)
            results["fleet_start_s"] = round(time.perf_counter() - t0, 2)
            try:
                runs = []
                for _ in range(blips):
                    time.sleep(SETTLE_S)
                    runs.append(blip(fleet))
                results["blip"] = {
                    "cut_s": BLIP_S,
                    "writes": BLIP_WRITES,
                    **summarize(runs, True),
                    "each": runs,
                }
                for how in ("graceful", "kill"):
                    runs = []
                    for _ in range(restarts):
                        time.sleep(SETTLE_S)
                        runs.append(restart(fleet, how))
                    results[f"restart_{how}"] = {**summarize(runs, True), "each": runs}
                if not quick:
                    time.sleep(SETTLE_S)
                    run_c = beyond_window(fleet)
                    results["beyond_window"] = {
                        **run_c,
                        "target_sync": verdict(
                            run_c["sync_s"], run_c["backoff_bound_s"] + STORM_MARGIN_S
                        ),
                    }
            finally:
                fleet.stop()
    except Exception:
        if wd.fired:
            raise TimeoutError("storm benchmark over its time budget: children killed") from None
        raise
    finally:
        wd.cancel()
    return results


def main(argv: list[str] | None = None) -> int:
    return cli("storm", run, __doc__, argv, quick_help="50 nodes, one run each, under 40 s")


if __name__ == "__main__":
    raise SystemExit(main())
