"""The cascade against etcd, each driven the way its own users drive it, on the same fan-out.

Both systems hold the same routing data (1,000 objects x 5 endpoints) and serve W consumers
that each keep a full replica on their own TCP connection; both get the same update stream.

* Cascade: a real ``tarscascade registry`` process (SQLite, durable commits: WAL,
  ``synchronous=FULL``; production defaults) and W ``CascadeClient`` replicas
  (``bench.cascade_nodes``: each its own catalog and connection: snapshot, then deltas).
  Writes come from this process through the **admin HTTP API**, as an operator's:
  ``PATCH /v1/objects/{id}/endpoints/{host}/{port}`` on a keep-alive connection; the
  answer (after the durable commit and the apply) carries the write's revision.
* etcd (3.4, Debian's ``etcd-server``, one member on loopback, default settings: its WAL
  fsync'd per write) through its **native gRPC API** (``bench.etcd_grpc``: stubs generated
  from ``bench/etcdpb/rpc.proto``): one key per endpoint, its value the same compact JSON
  row a cascade payload carries for it (both move the same data bytes). W watchers
  (``bench.etcd_watchers``, ``grpc.aio``, each its own channel and TCP connection) list
  the prefix (``KV.Range``) then watch it from the list's revision + 1 (``Watch.Watch``),
  as an informer does. The writer is this process (``KV.Put``, one key per update).
* Consumers run in child processes at a lower priority than the servers (``nice 5``), the
  same number of processes for both; **one probe consumer** in a process of its own, at
  normal priority, shows the server's delivery without the consumers' queueing (on this
  machine every process shares 2 cores; in production each node is its own host).
* The update stream: K single-endpoint updates (one endpoint's weight changes), paced
  (INTERVAL apart) and as a burst (each issued as soon as the previous one is answered),
  R rounds of each. Full: W = 100 and 1,000; quick: W = 10.

Reported per system and W (medians over rounds):

* write answered, issued -> answered p50/p99 (paced: the write path alone);
* propagation, per update the last consumer: from the write issued and from its answer,
  p50/p99; the probe's, from issued;
* server CPU per update (user + system, all threads, from outside with psutil; "net" =
  minus the idle rate over the window), per update per consumer (net / W), and the slope
  between the two W (the fan-out cost without the write's fixed cost);
* consumer CPU per applied event (the consumer processes' CPU / (updates x consumers));
* idle server CPU with the W consumers connected (cascade heartbeats, measured once
  their intervals have stretched to the registry's grant, ~60 s; etcd none);
* cold start: W fresh consumers all listed and watching (the slowest process's own
  clock, from its clients' start to the last synced), and the server's bytes sent per
  consumer (kernel counters of the new connections, ``ss``);
* reconnect storms: every consumer drops its connection at once and comes back
  **fresh** (no data: list again) or **resuming** (cascade: the versions it holds;
  etcd: a watch from its last revision + 1 without a list, as client-go does while its
  revision is in etcd's history): seconds until all are back, bytes per consumer;
* server RSS at the end.

Fairness notes: etcd is Go and multi-threaded, the cascade one Python process; both
consumers are Python asyncio (grpc.aio + orjson vs the cascade's TARS codec). The
cascade's write answer is taken after the registry applied (and pushed) the write; etcd's
after Raft and its fsync, while its watchers may already be notified (a consumer can see
a write before its put returns: "from answered" can be negative; read "from issued").
CPU times come in 10 ms ticks. Without etcd on PATH the benchmark is skipped.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.bench_cascade import (
    IDLE_RAMP_S,
    IDLE_WINDOW_S,
    NODE_NICE,
    Proc,
    Watchdog,
    base_records,
    pct,
    summary_ms,
)
from bench.common import cli, dig, sent_per_connection
from bench.etcd_grpc import PREFIX, Etcd, EtcdClient, etcd_key, etcd_value
from bench.registry_proc import Registry
from tarscascade.model import EndpointRecord
from tarscascade.store import SqlStore

BENCH_OBJ = "Bench.Propagation.Obj"
BENCH_HOST, BENCH_PORT = "10.200.0.1", 9000
SKIP = "SKIPPED: etcd-server not installed (apt-get install etcd-server)"

Writes = list[list[float]]  # [revision, t_issued, t_answered] per update


def dataset(objects: int) -> list[EndpointRecord]:
    return [*base_records(objects), EndpointRecord(BENCH_OBJ, BENCH_HOST, BENCH_PORT)]


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        c = psutil.Process(pid).cpu_times()
        total += c.user + c.system
    return total


class Consumers(Proc):
    """A consumer process of ``consumers`` replicas (cascade nodes or etcd watchers),
    started and not waited for: the processes of a cold start start together."""

    def __init__(self, cmd: list[str], consumers: int, dog: Watchdog) -> None:
        super().__init__(cmd, None, dog)
        self.consumers = consumers


def collect(procs: list[Consumers], writes: Writes, timeout: float) -> dict[int, list[float]]:
    """Seen times per revision from every consumer process, until each update reached
    every consumer (or the timeout)."""
    want = sum(p.consumers for p in procs)
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
        if all(len(t) >= want for t in seen.values()) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


@dataclasses.dataclass
class Plan:
    w: int
    procs: int
    k: int
    interval: float
    rounds: int
    idle_s: float


@dataclasses.dataclass
class Side:
    """One system with its consumers (the bulk ones and the probe), as seen from here."""

    name: str
    server_pid: int
    port: int  # the port consumers connect to (bytes sent, per connection)
    bulk: list[Consumers]
    probe: Consumers
    write: Callable[[], list[float]]
    w: int
    #: the cascade's registry log: sessions it dropped (etcd has no session liveness)
    log: Path | None = None
    #: how long after the cold start its idle share is measured: the cascade's heartbeats
    #: stretch while idle (3 s up to the 30 s the registry grants, ``IDLE_RAMP_S``);
    #: etcd's watchers are silent from the start
    idle_settle_s: float = 0.0
    _up_at: float = 0.0
    _dropped: int = 0

    @property
    def procs(self) -> list[Consumers]:
        return [*self.bulk, self.probe]

    def cold_start(self) -> dict[str, Any]:
        before = sent_per_connection(self.port)
        synced = []
        for p in self.procs:
            p.wait_ready("SYNCED ")
            synced.append(float(p.fields[0]))
        new = self.new_connections(before)
        self._up_at = time.monotonic()
        n = self.w + 1
        return {
            "all_synced_s": round(max(synced), 3),
            "per_process_synced_s": [round(s, 3) for s in synced],
            "connections": len(new),
            "bytes_per_consumer": round(sum(new.values()) / n),
            "consumer_process_rss_mb": [float(p.fields[1]) for p in self.procs],
        }

    def new_connections(self, before: dict[str, int]) -> dict[str, int]:
        """Bytes sent per connection to the consumers not in ``before`` (the new ones)."""
        return {k: v for k, v in sent_per_connection(self.port).items() if k not in before}

    def take_dropped(self) -> int:
        """Sessions the registry dropped (not heard from within their timeout) since
        the last call; etcd has no session liveness: 0."""
        if self.log is None:
            return 0
        total = self.log.read_text(errors="replace").count("dropping cascade session")
        new, self._dropped = total - self._dropped, total
        return new

    def settle(self, timeout: float = 180.0) -> dict[str, Any]:
        """Until every consumer is connected and none re-subscribed for 5 s: a cold start
        that overloads the consumer processes ends with sessions dropped and taken up
        again, and the stream is measured on the fleet once it is steady."""
        if self.log is None:
            return {"settled_s": 0.0, "sessions_dropped": 0}
        t0 = time.monotonic()
        last: tuple[int, int] | None = None
        since = t0
        while True:
            stats = [p.ask("stats") for p in self.procs]
            connected = sum(s["connected"] for s in stats)
            subs = sum(s["stats"]["subscribes"] + s["stats"]["resubscribes"] for s in stats)
            if (connected, subs) != last:
                last, since = (connected, subs), time.monotonic()
            elif connected == self.w + 1 and time.monotonic() - since >= 5.0:
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{self.name}: the fleet did not settle in {timeout:g} s")
            time.sleep(0.5)
        return {
            "settled_s": round(time.monotonic() - t0, 1),
            "sessions_dropped": self.take_dropped(),
        }

    def idle(self, seconds: float) -> dict[str, float]:
        time.sleep(max(0.0, self.idle_settle_s - (time.monotonic() - self._up_at)))
        pids = [p.p.pid for p in self.bulk]
        s0, c0, t0 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        time.sleep(seconds)
        s1, c1, t1 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        return {
            "seconds": round(t1 - t0, 2),
            "server_cpu_percent": round(100 * (s1 - s0) / (t1 - t0), 3),
            "consumers_cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 3),
        }

    def stream(self, k: int, interval: float, idle_rate: float) -> dict[str, Any]:
        pids = [p.p.pid for p in self.bulk]
        s0, c0, t0 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        writes = []
        for _ in range(k):
            writes.append(self.write())
            if interval:
                time.sleep(interval)
        probe_seen = collect([self.probe], writes, timeout=60.0)
        seen = collect(self.bulk, writes, timeout=60.0)
        s1, c1, t1 = cpu_s([self.server_pid]), cpu_s(pids), time.monotonic()
        for rev, times in probe_seen.items():
            seen[rev] += times
        n = self.w + 1
        complete = [w for w in writes if len(seen[int(w[0])]) >= n]
        if not complete:
            raise RuntimeError(f"{self.name}: no update reached all {n} consumers")
        return {
            "answered": [ack - iss for _, iss, ack in writes],
            "answered_to_all": [max(seen[int(r)]) - ack for r, _, ack in complete],
            "issued_to_all": [max(seen[int(r)]) - iss for r, iss, _ in complete],
            "issued_to_probe": [
                min(probe_seen[int(r)]) - iss for r, iss, _ in writes if probe_seen[int(r)]
            ],
            "all_delivered_s": max(max(t) for t in seen.values() if t) - writes[0][1],
            "updates": len(writes),
            "complete": len(complete),
            "window_s": t1 - t0,
            "writes_s": writes[-1][2] - writes[0][1],
            "server_cpu_s": s1 - s0,
            "consumers_cpu_s": c1 - c0,
            "idle_rate": idle_rate,
        }

    def storm(self, how: str) -> dict[str, Any]:
        """Every consumer drops its connection at once and comes back (``fresh`` or
        ``resume``): seconds until the slowest process has all of its back."""
        before = sent_per_connection(self.port)
        for p in self.procs:
            p.tell(f"reconnect {how}")
        answers = [p.answer() for p in self.procs]
        new = self.new_connections(before)
        return {
            "all_back_s": round(max(a["s"] for a in answers), 3),
            "keys_min": min(a["keys"] for a in answers),
            "connections": len(new),
            "bytes_per_consumer": round(sum(new.values()) / (self.w + 1)),
        }


def summarize(rounds: list[dict[str, Any]], w: int) -> dict[str, Any]:
    """Medians over rounds of per-round percentiles and CPU per update; pooled percentiles."""

    def med(f: Callable[[dict[str, Any]], float], nd: int = 3) -> float:
        return round(statistics.median(f(r) for r in rounds), nd)

    def ms(key: str, q: float) -> float:
        return med(lambda r: 1000 * pct(r[key], q), 2)

    def p50_p99(key: str) -> dict[str, float]:
        return {"p50": ms(key, 0.5), "p99": ms(key, 0.99)}

    net = med(lambda r: 1000 * (r["server_cpu_s"] - r["idle_rate"] * r["window_s"]) / r["updates"])
    return {
        "rounds": len(rounds),
        "updates_per_round": rounds[0]["updates"],
        "updates_reaching_every_consumer": sum(r["complete"] for r in rounds),
        "updates_total": sum(r["updates"] for r in rounds),
        "write_rate_per_s": med(lambda r: r["updates"] / max(r["writes_s"], 1e-9), 1),
        "write_answered_ms": p50_p99("answered"),
        "issued_to_all_ms": p50_p99("issued_to_all"),
        "answered_to_all_ms": p50_p99("answered_to_all"),
        "issued_to_probe_ms": p50_p99("issued_to_probe"),
        "issued_to_all_ms_pooled": summary_ms([v for r in rounds for v in r["issued_to_all"]]),
        "all_delivered_ms": med(lambda r: 1000 * r["all_delivered_s"], 1),
        "server_cpu_ms_per_update_gross": med(lambda r: 1000 * r["server_cpu_s"] / r["updates"]),
        "server_cpu_ms_per_update_net": net,
        "server_cpu_us_per_update_per_consumer": round(1000 * net / (w + 1), 2),
        "consumer_cpu_us_per_event": med(
            lambda r: 1e6 * r["consumers_cpu_s"] / (r["updates"] * w), 1
        ),
    }


def measure(side: Side, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"cold_start": side.cold_start()}
    out["cold_start"].update(side.settle())
    out["idle"] = idle = side.idle(plan.idle_s)
    rate = idle["server_cpu_percent"] / 100
    paced: list[dict[str, Any]] = []
    burst: list[dict[str, Any]] = []
    for _ in range(plan.rounds):
        paced.append(side.stream(plan.k, plan.interval, rate))
        burst.append(side.stream(plan.k, 0.0, rate))
    out["paced"] = {"interval_s": plan.interval, **summarize(paced, plan.w)}
    out["burst"] = summarize(burst, plan.w)
    out["server_rss_mb"] = round(psutil.Process(side.server_pid).memory_info().rss / 2**20, 1)
    out["sessions_dropped_in_streams"] = side.take_dropped()
    out["storm_fresh"] = side.storm("fresh")
    out["storm_fresh"].update(side.settle())
    out["storm_resume"] = side.storm("resume")
    out["storm_resume"]["sessions_dropped"] = side.take_dropped()
    return out


def consumers(plan: Plan, cmd: Callable[[int, str], list[str]], dog: Watchdog) -> list[Consumers]:
    """The bulk consumer processes (niced) and, last, the probe (one consumer, not niced),
    all started together (a cold start)."""
    per = plan.w // plan.procs
    procs = [
        Consumers([*NODE_NICE, *cmd(per, f"w{plan.w}-p{i}-")], per, dog) for i in range(plan.procs)
    ]
    procs.append(Consumers(cmd(1, f"w{plan.w}-probe-"), 1, dog))
    return procs


def cascade(tmp: str, plan: Plan, objects: int, dog: Watchdog) -> dict[str, Any]:
    db = f"sqlite:///{Path(tmp) / f'cascade-{plan.w}.db'}"
    store = SqlStore.open(db)
    store.bulk_load(dataset(objects))
    store.close()
    reg = Registry(f"w{plan.w}", db, tmp, dog)
    procs: list[Consumers] = []
    http = None
    try:
        reg.wait_ready()
        http = httpx.Client(base_url=reg.http, timeout=30.0)
        path = f"/v1/objects/{BENCH_OBJ}/endpoints/{BENCH_HOST}/{BENCH_PORT}"
        n = 0

        def write() -> list[float]:
            nonlocal n
            n += 1
            t0 = time.time()
            r = http.patch(path, json={"weight": n % 1000 + 1})  # type: ignore[union-attr]
            t1 = time.time()
            if r.status_code != 200:
                raise RuntimeError(f"PATCH {path}: {r.status_code} {r.text}")
            return [int(r.json()["revision"]), t0, t1]

        for _ in range(10):  # the HTTP connection and the write path warmed up
            write()

        def cmd(count: int, prefix: str) -> list[str]:
            return [sys.executable, "-m", "bench.cascade_nodes", "--port", str(reg.tars_port),
                    "--count", str(count), "--prefix", prefix, "--timeout", "180"]  # fmt: skip

        procs = consumers(plan, cmd, dog)
        side = Side(
            "cascade",
            reg.p.pid,
            reg.tars_port,
            procs[:-1],
            procs[-1],
            write,
            plan.w,
            reg.log,
            idle_settle_s=0.0 if plan.w <= 10 else IDLE_RAMP_S,
        )
        out = measure(side, plan)
        out["consumer_stats"] = procs[0].ask("stats")["stats"]
        out["registry_log"] = reg.log_summary()
        return out
    finally:
        for p in procs:
            p.stop()
        if http is not None:
            http.close()
        reg.stop()


def etcd(exe: str, tmp: str, plan: Plan, objects: int, dog: Watchdog) -> dict[str, Any]:
    server = Etcd(exe, tmp, str(plan.w), dog)
    client = EtcdClient(server.target)
    procs: list[Consumers] = []
    try:
        client.put_many([(etcd_key(r), etcd_value(r)) for r in dataset(objects)])
        n = 0

        def write() -> list[float]:
            nonlocal n
            n += 1
            rec = EndpointRecord(BENCH_OBJ, BENCH_HOST, BENCH_PORT, weight=n % 1000 + 1)
            rev, t0, t1 = client.put(etcd_key(rec), etcd_value(rec))
            return [rev, t0, t1]

        for _ in range(10):
            write()

        def cmd(count: int, prefix: str) -> list[str]:
            return [sys.executable, "-m", "bench.etcd_watchers", "--target", server.target,
                    "--count", str(count), "--prefix", PREFIX, "--timeout", "180"]  # fmt: skip

        procs = consumers(plan, cmd, dog)
        port = int(server.target.rsplit(":", 1)[1])
        side = Side("etcd", server.p.pid, port, procs[:-1], procs[-1], write, plan.w)
        out = measure(side, plan)
        out["server_threads"] = psutil.Process(server.p.pid).num_threads()
        return out
    finally:
        for p in procs:
            p.stop()
        client.close()
        server.stop()


def ratio(e: float, c: float) -> float | None:
    """e / c, or None when either is not positive (no meaningful ratio)."""
    return round(e / c, 2) if e > 0 and c > 0 else None


#: the figures compared, etcd / cascade: name, path into a side's results, unit
FIGURES: list[tuple[str, tuple[str, ...], str]] = [
    ("write answered p50", ("paced", "write_answered_ms", "p50"), "ms"),
    ("issued -> all p50", ("paced", "issued_to_all_ms", "p50"), "ms"),
    ("issued -> all p99", ("paced", "issued_to_all_ms", "p99"), "ms"),
    ("answered -> all p99", ("paced", "answered_to_all_ms", "p99"), "ms"),
    ("issued -> probe p99", ("paced", "issued_to_probe_ms", "p99"), "ms"),
    ("server CPU per update", ("paced", "server_cpu_ms_per_update_net"), "ms"),
    ("consumer CPU per event", ("paced", "consumer_cpu_us_per_event"), "us"),
    ("burst all delivered", ("burst", "all_delivered_ms"), "ms"),
    ("idle server CPU", ("idle", "server_cpu_percent"), "%"),
    ("cold start all synced", ("cold_start", "all_synced_s"), "s"),
    ("cold start bytes/consumer", ("cold_start", "bytes_per_consumer"), "B"),
    ("cold start sessions dropped", ("cold_start", "sessions_dropped"), "n"),
    ("storm fresh all back", ("storm_fresh", "all_back_s"), "s"),
    ("storm resume all back", ("storm_resume", "all_back_s"), "s"),
    ("server RSS", ("server_rss_mb",), "MB"),
]


def compare(c: dict[str, Any], e: dict[str, Any], w: int, lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path, unit in FIGURES:
        ev, cv = dig(e, path), dig(c, path)
        r = ratio(ev, cv)
        out[name] = r
        if r is None:
            how = "no ratio"
        elif r >= 1:
            how = f"cascade {r:g}x better"
        else:
            how = f"etcd {ratio(cv, ev):g}x better"
        lines.append(
            f"W={w:<5} {name:26} etcd {ev:10.3f} {unit:3} cascade {cv:10.3f} {unit:3} {how}"
        )
    return out


def plans(quick: bool) -> list[Plan]:
    if quick:
        return [Plan(w=10, procs=1, k=20, interval=0.02, rounds=1, idle_s=3.0)]
    return [
        # idle over 30 s: each cascade node heartbeats about once (30 s granted), whatever
        # the phases of a fleet started together
        Plan(w=100, procs=1, k=100, interval=0.05, rounds=3, idle_s=IDLE_WINDOW_S),
        Plan(w=1000, procs=2, k=60, interval=0.2, rounds=2, idle_s=IDLE_WINDOW_S),
    ]


def run(quick: bool) -> dict[str, Any]:
    exe = shutil.which("etcd")
    if exe is None:
        print(SKIP)
        return {"skipped": SKIP}
    version = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.splitlines()
    objects = 100 if quick else 1000
    dog = Watchdog(240.0 if quick else 1500.0, "etcd")
    lines: list[str] = []
    results: dict[str, Any] = {
        "etcd_version": version[0] if version else "",
        "endpoints": objects * 5 + 1,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="tc-bench-etcd-") as tmp:
            for plan in plans(quick):
                c = cascade(tmp, plan, objects, dog)
                e = etcd(exe, tmp, plan, objects, dog)
                results[f"consumers_{plan.w}"] = {
                    "consumers": plan.w,
                    "consumer_processes": plan.procs,
                    "plan": dataclasses.asdict(plan),
                    "cascade": c,
                    "etcd": e,
                    "ratio_etcd_over_cascade": compare(c, e, plan.w, lines),
                }
    except Exception:
        if dog.fired:
            raise RuntimeError("bench_etcd: time budget exceeded") from None
        raise
    finally:
        dog.cancel()
    done = [results[f"consumers_{plan.w}"] for plan in plans(quick)]
    if len(done) >= 2:  # the server's cost per consumer, per update: the slope between two W
        lo, hi = done[0], done[-1]
        slope: dict[str, float] = {}
        for system in ("cascade", "etcd"):
            key = "server_cpu_ms_per_update_net"
            d = hi[system]["paced"][key] - lo[system]["paced"][key]
            slope[system] = round(1000 * d / (hi["consumers"] - lo["consumers"]), 2)
            lines.append(
                f"{system:7} server CPU per update per extra consumer "
                f"(W={lo['consumers']}..{hi['consumers']}, paced): {slope[system]:g} us"
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
