"""The cascade against etcd: the same fan-out done the Kubernetes way, same data, same stream.

Both systems hold the same routing data (100 objects x 5 endpoints, ``base_records``) and
serve W consumers that each keep a full replica; both receive the same update stream.

* Cascade: a registry (``bench.serve_cascade``: SQLite store, core, hub) and W node
  replicas (``bench.cascade_nodes``: CascadeClients, each its own catalog and TCP
  connection: snapshot, then deltas). The writes are issued inside the registry
  (``updates K INTERVAL``), which reports per update the revision, the time issued and
  the time it had the write committed (SQLite WAL, ``synchronous=FULL``) and applied, the
  moment it acknowledges the writer.
* etcd (3.4, Debian's ``etcd-server``, started here on loopback with a temporary data
  dir, default settings: one member, an fsync of its WAL per write): one key per endpoint,
  ``/tars/objects/<obj>/<host>:<port>`` -> the endpoint's fields as JSON (one small
  object per item, as Kubernetes stores its objects). W watchers (``bench.etcd_watchers``)
  each with its own HTTP connection to etcd's v3 JSON gateway: list the prefix
  (``/v3/kv/range``) into a dict, then watch it from the list's revision + 1
  (``/v3/watch``) and apply each event to the dict, as an informer does. The writer is
  this process (``httpx``, ``/v3/kv/put``, one key per update); it records per update the
  time issued and the time the put was acknowledged, with the revision.
* The update stream: K single-endpoint updates (the weight of one endpoint of
  ``Bench.Propagation.Obj`` changes), paced (INTERVAL apart, long enough that the 2 cores
  are not saturated: 50 ms for W=100, 150 ms for W=500) and as a burst (back to back: each
  write issued as soon as the previous one is acknowledged, which saturates the machine).
  R rounds of each. Full: W=100 and W=500 (W=1,000 does not fit the time budget); quick:
  W=10, one round.
* Consumers run in the same number of child processes for both (1, or 2 for W >= 500),
  never in the server's or this process. Every process is on this machine's 2 cores:
  server, consumers and writer share them. Timestamps are ``time.time()``.

Reported per system, per W and mode (medians over the R rounds; "pooled" = over every
update of every round):

* propagation: write acknowledged -> seen by every consumer (per update, the last
  consumer) p50/p99/max, also per consumer-update and from the write being issued
  (which adds the durable commit: SQLite vs etcd's Raft + WAL fsync). The two "acknowledged"
  moments differ: the cascade's is taken inside the registry when the write is applied,
  just before it is pushed; etcd's when this process has the put's HTTP response, after
  etcd has already notified its watchers (so a per consumer-update figure can be
  negative). That favours etcd by about a loopback HTTP response; "issued -> all" has
  the same starting point for both (the writer issuing the write) but includes etcd's
  HTTP request, so read both;
* central-server CPU per update: the server process's CPU time (user + system, all its
  threads, read with psutil from outside) from the first write until every consumer has
  seen the last one, / K ("gross"); minus the server's idle CPU rate x that window
  ("net": the cost of the updates themselves). Idle CPU is measured over a few seconds
  with the W consumers connected (cascade: heartbeats every 3 s; etcd: none);
* the server's CPU per update per consumer, the slope of net CPU per update between the two
  W (full mode): the fan-out cost, without the fixed cost of the write itself;
* server RSS; consumers' CPU per update per consumer (their processes, same window);
* burst only: first write issued -> the last update seen by every consumer ("all
  delivered"), and updates delivered per second. In a burst each system's writer goes as
  fast as its writes are acknowledged, and the cascade's (in-process) writer is faster
  than etcd's (HTTP, Raft, fsync): more updates queue up at the consumers, so its
  per-update latencies can be larger even when the whole burst is delivered sooner.
  Compare bursts by "all delivered"; the per-update figures show the queueing;
* ratios etcd / cascade of p50, p99 and CPU per update ("cascade is X times faster").

No target except the ratios (reported, not judged). Fairness caveats: etcd is a durable
replicated (Raft) store written in Go, multi-threaded, and its writes come over HTTP+JSON
through its gRPC gateway (parse, loopback gRPC, JSON encode per watcher: counted in its
CPU), while the cascade's writes are issued inside the registry process (no request
parsing). Kubernetes talks gRPC to etcd, not the JSON gateway; the gateway adds CPU per
watcher event to etcd. Both consumers are Python asyncio (httpx + orjson vs the cascade's
TARS codec). "Seen by every consumer" is dominated by the consumer processes: one Python
process applies the update W/procs times in turn, so the last consumer of a process waits
for the others (the same for both systems; real nodes are on separate hosts). CPU times
come in 10 ms ticks: +-0.1-0.2 ms per update with K = 60-100 per round. Without
etcd on PATH the benchmark is skipped with a clear message.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from bench.bench_cascade import Proc, Watchdog, base_records, nodes, pct, registry, summary_ms
from bench.common import cli
from bench.etcd_watchers import b64
from tarscascade.model import EndpointRecord
from tarscascade.store import SqlStore

PREFIX = "/tars/objects/"
BENCH_OBJ = "Bench.Propagation.Obj"  # the object serve_cascade's updates change
OBJECTS = 100  # x 5 endpoints
#: hub counters recorded (subscribes = W and no resyncs/drops: no node reconnected)
HUB_COUNTERS = ("subscribes", "resubscribes", "snapshots_sent", "deltas_sent", "resumes")
HUB_COUNTERS += ("resyncs", "slow_dropped", "heartbeats")
SKIP = "SKIPPED: etcd-server not installed (apt-get install etcd-server)"

Writes = list[list[float]]  # [revision, t_issued, t_acknowledged] per update


def etcd_key(rec: EndpointRecord) -> str:
    return f"{PREFIX}{rec.object_id}/{rec.host}:{rec.port}"


def etcd_value(rec: EndpointRecord) -> str:
    return b64(orjson.dumps(dataclasses.asdict(rec)).decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Etcd:
    """A one-member etcd on loopback with its data (and log) in a temporary directory."""

    def __init__(self, exe: str, tmp: str, name: str, dog: Watchdog) -> None:
        data = Path(tmp) / f"etcd-{name}"
        self.log = Path(tmp) / f"etcd-{name}.log"
        last = ""
        for _ in range(3):  # a free port can be taken between probing and etcd binding it
            client, peer = free_port(), free_port()
            self.url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            shutil.rmtree(data, ignore_errors=True)
            cmd = [exe, "--name", "bench", "--data-dir", str(data)]
            cmd += ["--listen-client-urls", self.url, "--advertise-client-urls", self.url]
            cmd += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
            cmd += ["--initial-cluster", f"bench={peer_url}", "--logger", "zap"]
            cmd += ["--log-outputs", "stderr", "--log-level", "warn"]
            with open(self.log, "ab") as log:
                self.p = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            dog.add(self.p)
            try:
                self._wait_ready(20.0)
                return
            except RuntimeError as e:
                last = str(e)
                self.stop()
        raise RuntimeError(f"etcd did not start: {last}; see {self.log}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"exited with {self.p.returncode}")
            try:
                r = httpx.get(f"{self.url}/health", timeout=1.0)
                if r.status_code == 200 and r.json().get("health") == "true":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"not healthy after {timeout} s")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Writer:
    """This process's etcd client: bulk load, then one put per update."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10.0)
        self.n = 0

    def load(self, records: list[EndpointRecord]) -> int:
        rev = 0
        for i in range(0, len(records), 100):  # etcd allows 128 operations per txn
            ops = [
                {"request_put": {"key": b64(etcd_key(r)), "value": etcd_value(r)}}
                for r in records[i : i + 100]
            ]
            r = self.http.post("/v3/kv/txn", json={"success": ops})
            r.raise_for_status()
            rev = int(r.json()["header"]["revision"])
        return rev

    def update(self) -> list[float]:
        self.n += 1
        rec = EndpointRecord(BENCH_OBJ, "10.200.0.1", 9000, weight=self.n % 1000)
        body = {"key": b64(etcd_key(rec)), "value": etcd_value(rec)}
        t0 = time.time()
        r = self.http.post("/v3/kv/put", json=body)
        t1 = time.time()
        r.raise_for_status()
        return [int(r.json()["header"]["revision"]), t0, t1]

    def updates(self, k: int, interval: float) -> Writes:
        out = []
        for _ in range(k):
            out.append(self.update())
            if interval:
                time.sleep(interval)
        return out

    def close(self) -> None:
        self.http.close()


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        c = psutil.Process(pid).cpu_times()
        total += c.user + c.system
    return total


def collect(procs: list[Proc], writes: Writes, n: int, timeout: float) -> dict[int, list[float]]:
    """Seen/applied times per revision from every consumer process, until each update
    reached all ``n`` consumers (or the timeout)."""
    seen: dict[int, list[float]] = {int(w[0]): [] for w in writes}
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            dump = p.ask("dump")
            if "error" in dump:
                raise RuntimeError(f"consumer process: {dump['error']}")
            for rev, times in dump.items():
                if int(rev) in seen:
                    seen[int(rev)] += times
        if all(len(t) >= n for t in seen.values()) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


@dataclasses.dataclass
class Side:
    """One system with its W consumers, as seen from here."""

    name: str
    server_pid: int
    consumers: list[Proc]
    n: int
    write: Callable[[int, float], Writes]

    def idle(self, seconds: float) -> dict[str, float]:
        pids = [p.p.pid for p in self.consumers]
        s0, c0, t0 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        time.sleep(seconds)
        s1, c1, t1 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        return {
            "seconds": round(t1 - t0, 2),
            "server_cpu_percent": round(100 * (s1 - s0) / (t1 - t0), 3),
            "consumers_cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 3),
        }

    def stream(self, k: int, interval: float, idle_rate: float) -> dict[str, Any]:
        pids = [p.p.pid for p in self.consumers]
        s0, c0, t0 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        writes = self.write(k, interval)
        seen = collect(self.consumers, writes, self.n, timeout=60.0)
        s1, c1, t1 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        complete = [w for w in writes if len(seen[int(w[0])]) >= self.n]
        if not complete:
            raise RuntimeError(f"{self.name}: no update reached all {self.n} consumers")
        return {
            "ack_to_all": [max(seen[int(r)]) - ack for r, _, ack in complete],
            "ack_to_each": [t - ack for r, _, ack in complete for t in seen[int(r)]],
            "issued_to_all": [max(seen[int(r)]) - iss for r, iss, _ in complete],
            # first write issued -> every update seen by every consumer
            "all_delivered_s": max(max(t) for t in seen.values() if t) - writes[0][1],
            "updates": len(writes),
            "complete": len(complete),
            "window_s": t1 - t0,
            "writes_s": writes[-1][2] - writes[0][1],
            "server_cpu_s": s1 - s0,
            "consumers_cpu_s": c1 - c0,
            "idle_rate": idle_rate,
        }


def summarize(rounds: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Medians over rounds of per-round percentiles and CPU per update; pooled percentiles."""

    def med(f: Callable[[dict[str, Any]], float], nd: int = 3) -> float:
        return round(statistics.median(f(r) for r in rounds), nd)

    def ms(key: str, q: float) -> float:
        return med(lambda r: 1000 * pct(r[key], q), 2)

    def pooled(key: str) -> dict[str, float]:
        return summary_ms([v for r in rounds for v in r[key]])

    return {
        "rounds": len(rounds),
        "updates_per_round": rounds[0]["updates"],
        "updates_reaching_every_consumer": sum(r["complete"] for r in rounds),
        "updates_total": sum(r["updates"] for r in rounds),
        "write_rate_per_s": med(lambda r: r["updates"] / max(r["writes_s"], 1e-9), 1),
        "ack_to_all_ms": {
            "p50": ms("ack_to_all", 0.5),
            "p99": ms("ack_to_all", 0.99),
            "max": round(1000 * max(max(r["ack_to_all"]) for r in rounds), 2),
            "per_round_p50": [round(1000 * pct(r["ack_to_all"], 0.5), 2) for r in rounds],
            "per_round_p99": [round(1000 * pct(r["ack_to_all"], 0.99), 2) for r in rounds],
        },
        "ack_to_all_ms_pooled": pooled("ack_to_all"),
        "ack_to_each_ms_pooled": pooled("ack_to_each"),
        "issued_to_all_ms": {"p50": ms("issued_to_all", 0.5), "p99": ms("issued_to_all", 0.99)},
        "all_delivered_ms": med(lambda r: 1000 * r["all_delivered_s"], 1),
        "delivered_updates_per_s": med(lambda r: r["updates"] / r["all_delivered_s"], 1),
        "server_cpu_ms_per_update_gross": med(lambda r: 1000 * r["server_cpu_s"] / r["updates"]),
        "server_cpu_ms_per_update_net": med(
            lambda r: 1000 * (r["server_cpu_s"] - r["idle_rate"] * r["window_s"]) / r["updates"]
        ),
        "consumer_cpu_us_per_update_per_consumer": med(
            lambda r: 1e6 * r["consumers_cpu_s"] / (r["updates"] * n), 1
        ),
    }


@dataclasses.dataclass
class Plan:
    w: int
    procs: int
    k: int
    interval: float
    rounds: int
    idle_s: float


def measure(side: Side, plan: Plan) -> dict[str, Any]:
    idle = side.idle(plan.idle_s)
    rate = idle["server_cpu_percent"] / 100
    paced: list[dict[str, Any]] = []
    burst: list[dict[str, Any]] = []
    for _ in range(plan.rounds):
        paced.append(side.stream(plan.k, plan.interval, rate))
        time.sleep(0.2)
        burst.append(side.stream(plan.k, 0.0, rate))
        time.sleep(0.2)
    return {
        "idle": idle,
        "paced": {"interval_s": plan.interval, **summarize(paced, plan.w)},
        "burst": summarize(burst, plan.w),
        "server_rss_mb": round(psutil.Process(side.server_pid).memory_info().rss / 2**20, 1),
        "consumer_process_rss_mb": [
            round(psutil.Process(p.p.pid).memory_info().rss / 2**20, 1) for p in side.consumers
        ],
    }


def cascade(tmp: str, plan: Plan, dog: Watchdog) -> dict[str, Any]:
    db = f"sqlite:///{Path(tmp) / f'cascade-{plan.w}.db'}"
    store = SqlStore.open(db)
    store.bulk_load(base_records(OBJECTS))
    store.close()
    reg = registry(db)
    dog.add(reg.p)
    procs: list[Proc] = []
    try:
        t0 = time.perf_counter()
        per = plan.w // plan.procs
        for i in range(plan.procs):
            procs.append(nodes(int(reg.fields[0]), per, f"w{plan.w}-p{i}-n", timeout=120))
            dog.add(procs[-1].p)
        ok = reg.ask(f"nodes {plan.w} 120")
        if not ok.get("ok"):
            raise RuntimeError(f"cascade nodes did not all connect: {ok}")
        start_s = time.perf_counter() - t0

        def write(k: int, interval: float) -> Writes:
            out: Writes = reg.ask(f"updates {k} {interval}")
            return out

        side = Side("cascade", reg.p.pid, procs, plan.w, write)
        out = {"consumers_ready_s": round(start_s, 2), **measure(side, plan)}
        stats = reg.ask("stats")
        out["hub"] = {k: v for k, v in stats["hub"].items() if k in HUB_COUNTERS}
        return out
    finally:
        for p in procs:
            p.stop()
        reg.stop()


def etcd(exe: str, tmp: str, plan: Plan, dog: Watchdog) -> dict[str, Any]:
    server = Etcd(exe, tmp, str(plan.w), dog)
    writer = Writer(server.url)
    procs: list[Proc] = []
    try:
        writer.load(base_records(OBJECTS))
        t0 = time.perf_counter()
        per = plan.w // plan.procs
        for _ in range(plan.procs):
            cmd = [sys.executable, "-m", "bench.etcd_watchers", "--url", server.url]
            cmd += ["--count", str(per), "--prefix", PREFIX, "--timeout", "120"]
            procs.append(Proc(cmd, "SYNCED "))
            dog.add(procs[-1].p)
            keys = int(procs[-1].fields[2])
            if keys != OBJECTS * 5:
                raise RuntimeError(f"etcd watchers listed {keys} keys, want {OBJECTS * 5}")
        start_s = time.perf_counter() - t0
        side = Side("etcd", server.p.pid, procs, plan.w, writer.updates)
        return {
            "consumers_ready_s": round(start_s, 2),
            **measure(side, plan),
            "server_threads": psutil.Process(server.p.pid).num_threads(),
        }
    finally:
        for p in procs:
            p.stop()
        writer.close()
        server.stop()


def ratio(e: float, c: float) -> float | None:
    """e / c, or None when either is not positive (no meaningful ratio)."""
    return round(e / c, 2) if e > 0 and c > 0 else None


#: name, summary key, sub-key (or None), unit: the figures compared etcd / cascade
FIGURES: list[tuple[str, str, str | None, str]] = [
    ("all_delivered", "all_delivered_ms", None, "ms"),
    ("ack_to_all_p50", "ack_to_all_ms", "p50", "ms"),
    ("ack_to_all_p99", "ack_to_all_ms", "p99", "ms"),
    ("issued_to_all_p50", "issued_to_all_ms", "p50", "ms"),
    ("issued_to_all_p99", "issued_to_all_ms", "p99", "ms"),
    ("server_cpu_per_update_gross", "server_cpu_ms_per_update_gross", None, "ms CPU"),
    ("server_cpu_per_update_net", "server_cpu_ms_per_update_net", None, "ms CPU"),
]


def compare(c: dict[str, Any], e: dict[str, Any], w: int, lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("paced", "burst"):
        ratios = {}
        for name, key, sub, unit in FIGURES:
            if name == "all_delivered" and mode != "burst":
                continue  # paced: that is the pacing
            ev, cv = e[mode][key], c[mode][key]
            if sub is not None:
                ev, cv = ev[sub], cv[sub]
            r = ratio(ev, cv)
            ratios[f"{name}_etcd_over_cascade"] = r
            better = "faster" if unit == "ms" else "cheaper"
            if r is None:
                how = "no ratio (a figure <= 0: etcd's watchers saw it before its put returned)"
            elif r >= 1:
                how = f"cascade is {r:g}x {better}"
            else:
                how = f"etcd is {ratio(cv, ev):g}x {better}"
            lines.append(
                f"W={w} {mode:5} {name:28} etcd {ev:9.3f} {unit:6} cascade {cv:9.3f} "
                f"{unit:6} -> {how}"
            )
        out[mode] = ratios
    return out


def scenario(exe: str, tmp: str, plan: Plan, dog: Watchdog, lines: list[str]) -> dict[str, Any]:
    c = cascade(tmp, plan, dog)
    e = etcd(exe, tmp, plan, dog)
    lines.append(
        f"W={plan.w} idle server CPU: etcd {e['idle']['server_cpu_percent']:.2f} %, "
        f"cascade {c['idle']['server_cpu_percent']:.2f} %; server RSS: etcd "
        f"{e['server_rss_mb']} MB, cascade {c['server_rss_mb']} MB"
    )
    return {
        "consumers": plan.w,
        "consumer_processes": plan.procs,
        "cascade": c,
        "etcd": e,
        "ratio_etcd_over_cascade": compare(c, e, plan.w, lines),
    }


def plans(quick: bool) -> list[Plan]:
    if quick:
        return [Plan(w=10, procs=1, k=30, interval=0.02, rounds=1, idle_s=3.0)]
    return [
        Plan(w=100, procs=1, k=100, interval=0.05, rounds=3, idle_s=6.0),
        Plan(w=500, procs=2, k=60, interval=0.15, rounds=3, idle_s=6.0),
    ]


def run(quick: bool) -> dict[str, Any]:
    exe = shutil.which("etcd")
    if exe is None:
        print(SKIP)
        return {"skipped": SKIP}
    version = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.splitlines()
    dog = Watchdog(120.0 if quick else 480.0, "etcd")
    lines: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tc-bench-etcd-") as tmp:
            results: dict[str, Any] = {
                "etcd_version": version[0] if version else "",
                "endpoints": OBJECTS * 5,
            }
            for plan in plans(quick):
                results[f"consumers_{plan.w}"] = scenario(exe, tmp, plan, dog, lines)
    except Exception:
        if dog.fired:
            raise RuntimeError("bench_etcd: time budget exceeded") from None
        raise
    finally:
        dog.cancel()
    done = [results[f"consumers_{plan.w}"] for plan in plans(quick)]
    if len(done) >= 2:  # the server's cost per consumer, per update: the slope between two W
        lo, hi = done[0], done[-1]
        slope: dict[str, Any] = {}
        for system in ("cascade", "etcd"):
            for mode in ("paced", "burst"):
                key = "server_cpu_ms_per_update_net"
                d = hi[system][mode][key] - lo[system][mode][key]
                us = round(1000 * d / (hi["consumers"] - lo["consumers"]), 2)
                slope[f"{system}_{mode}"] = us
                lines.append(
                    f"{system:7} {mode:5} server CPU per update per extra consumer "
                    f"(W={lo['consumers']}..{hi['consumers']}): {us:g} us"
                )
        results["server_cpu_us_per_update_per_consumer"] = slope
    for line in lines:
        print(line)
    results["summary"] = lines
    return results


def main(argv: list[str] | None = None) -> int:
    return cli("etcd", run, __doc__, argv, quick_help="small sizes, under a minute")


if __name__ == "__main__":
    raise SystemExit(main())
