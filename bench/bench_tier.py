"""Registry tier: three registries on one MariaDB or PostgreSQL database (issue 15).

Per backend, a fresh database on the local server (``CREATE DATABASE tc_bench_<random>``,
dropped after; a server that cannot be reached is reported ``{"skipped": reason}``),
seeded with ``SqlStore`` before the registries start. The registries are real
``tarscascade registry`` processes (``python -m tarscascade.cli registry --db URL --init
--listen 127.0.0.1:0 --http 127.0.0.1:0``, default options: node timeout 30 s, liveness
lease 6 s, tail 20 ms while changes flow doubling to 250 ms idle, PostgreSQL woken by
``NOTIFY``), started together. Nodes are ``bench.cascade_nodes`` processes (real
CascadeClients, each its own catalog and TCP connection; heartbeat 3 s). Every write is
an operator's: ``PATCH /v1/objects/Bench.Propagation.Obj/endpoints/10.200.0.1/9000``
(a new weight) on a registry's admin HTTP API, from this process, paced at 20 writes/s
on a fixed schedule. Timestamps are ``time.time()`` on this one machine.

1. Propagation between registries: registries A, B, C; 10 nodes subscribed only to B
   (and, as a baseline, 10 only to A). 200 writes through A (quick: 40). Per write: the
   time from the write being issued at A to the last node of B applying it, p50/p99/max;
   also from A's answer, per node, and the baseline to A's own nodes.
   Targets: p99 <= 50 ms on PostgreSQL, <= 150 ms on MariaDB (issue 15, item 3).
2. Idle: 90 more nodes on B (100 connected to it), no writes; each registry's process
   CPU (psutil ``cpu_times`` from outside, user + system) over 20 s (quick: 8 s), after
   a settle of ``IDLE_RAMP_S`` (the nodes' heartbeats stretch to the 30 s the registry
   grants). Target: B <= 1 % of a core. A and C (no nodes) are reported as well.
3. Failover: a fresh database and tier; 100 nodes (quick: 30) each listing all three
   registries, rotated so that each registry is first for a third of them; endpoints
   ``Tier.Node<i>.Obj`` bound to each node (``node_name``), so a node judged dead turns
   its endpoint inactive at every node. Once every node has been connected for 6 s
   (its reconnect backoff reset) the run starts: 20 writes/s through the writer W; 3 s
   in, the liveness judge (or, if none could be told, the third registry) is killed with
   SIGKILL; writes go on until the node timeout + the lease have passed since the kill
   (36 s; quick: 6 s, which does not cover the node timeout: see
   ``liveness_window_covers_node_timeout``). Reported: endpoints that turned inactive at
   any node (the nodes' catalogs' active rule, watched on every change; target 0); full
   snapshots received by the nodes after the kill (``ClientStats``; target 0); the time
   from the kill until every node applied the first write issued after it (the nodes
   that were on the killed registry fail over along their list; target: within the
   reconnect backoff after a healthy connection, U(0, 0.2 s), + 1 s as bench_storm
   allows); whether every node then holds W's objects version; node records whose
   ``present_state`` changed, from ``GET /v1/nodes`` of the third, surviving registry
   polled every 0.5 s (target none); how long until a survivor holds the judge's lease.

Every process is registered with a watchdog and stopped on the way out (SIGTERM for
registries, SIGKILL if they do not stop), errors included; each registry's log goes to a
temporary file, and its warnings and errors are summarized in the results.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import sqlalchemy as sa

from bench.bench_cascade import (
    IDLE_RAMP_S,
    NODE_NICE,
    Proc,
    Watchdog,
    base_records,
    collect,
    summary_ms,
)
from bench.common import cli, verdict
from bench.registry_proc import Registry
from bench.serve_cascade import BENCH_OBJ
from tarscascade.cascade import ClientOptions
from tarscascade.cascade.downstream import HEALTHY_AFTER_S
from tarscascade.model import EndpointRecord, Record
from tarscascade.registry.core import RegistryOptions
from tarscascade.registry.presence import DEFAULT_LEASE_TTL
from tarscascade.store import SqlStore
from tarscascade.store.engine import normalize_url

ADMIN_URLS = {
    "mariadb": os.environ.get("TC_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    "postgresql": os.environ.get("TC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
}
TARGET_P99_MS = {"postgresql": 50.0, "mariadb": 150.0}
TARGET_IDLE_CPU_PERCENT = 1.0
WRITE_RATE = 20.0
NODE_TIMEOUT_S = 30.0  # the CLI's default, passed explicitly
BENCH_HOST, BENCH_PORT = "10.200.0.1", 9000
WRITE_PATH = f"/v1/objects/{BENCH_OBJ}/endpoints/{BENCH_HOST}/{BENCH_PORT}"
PROP_NODES = 10
IDLE_NODES = 100
#: before the idle share is measured: the nodes' heartbeat intervals stretch to the
#: registry's grant (idle heartbeats, 30 s) first
SETTLE_S = IDLE_RAMP_S
KILL_AFTER_S = 3.0
#: the resync target's margin over the reconnect backoff (as bench_storm's)
RESYNC_MARGIN_S = 1.0
CONNECT_TIMEOUT_S = 5


NOTES = [
    "Writes are an operator's: HTTP PATCH on the writer's admin API from this process;"
    " 'issued' is taken before the request, 'answered' when its response arrived (the"
    " write committed and applied on the writer).",
    "first_write_issued_to_all_applied_ms is the first write after a quiet second: a"
    " polling tail (MariaDB) is then at its idle pace (up to 250 ms).",
    "Idle: cpu_percent_a/c_no_nodes are registries of the same tier with no node connected:"
    " the floor of a tier member (its change-log tail, drain-wait poll, lease and"
    " sightings rounds), without any heartbeat.",
    "Failover: the nodes of the killed registry fail over along their upstream list;"
    " resync_s is measured from the SIGKILL to every node having applied the first write"
    " issued after it. Quick mode observes 6 s after the kill, less than the node"
    " timeout: its liveness figure does not cover a late false death.",
]


# ---------------------------------------------------------------------- databases


def unreachable(backend: str) -> str | None:
    """Why the backend's server cannot be used, or None."""
    engine = sa.create_engine(
        normalize_url(ADMIN_URLS[backend]),
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        poolclass=sa.pool.NullPool,
    )
    try:
        engine.connect().close()
        return None
    except Exception as exc:  # no server, no driver, refused: skip the backend
        shown = engine.url.render_as_string(hide_password=True)
        return f"{backend} server unreachable at {shown}: {exc}".splitlines()[0][:300]
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A new database on the backend's server (as tests/conftest.py makes them), dropped
    after, whatever happened."""
    admin = normalize_url(ADMIN_URLS[backend])
    engine = sa.create_engine(
        admin,
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE cannot run in a transaction
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        poolclass=sa.pool.NullPool,
    )
    name = f"tc_bench_{secrets.token_hex(6)}"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            with engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        engine.dispose()


def seed(url: str, records: list[Record]) -> None:
    store = SqlStore.open(url)
    try:
        store.bulk_load(records)
    finally:
        store.close()


def bench_endpoint() -> EndpointRecord:
    return EndpointRecord(BENCH_OBJ, BENCH_HOST, BENCH_PORT)


def node_endpoints(prefix: str, n: int) -> list[Record]:
    """One endpoint per node, bound to it: a node judged dead turns it inactive."""
    return [
        EndpointRecord(
            f"Tier.Node{i}.Obj", f"10.77.{i // 250}.{i % 250 + 1}", 9000, node_name=f"{prefix}{i}"
        )
        for i in range(n)
    ]


# ---------------------------------------------------------------------- processes


def start_tier(db: str, log_dir: str, wd: Watchdog, names: str = "ABC") -> list[Registry]:
    """Start the registries together; every one listening, or none left running."""
    regs: list[Registry] = []
    try:
        for name in names:
            regs.append(Registry(name, db, log_dir, wd, ("--node-timeout", str(NODE_TIMEOUT_S))))
        for r in regs:
            r.wait_ready()
    except BaseException:
        stop_all(regs, [])
        raise
    return regs


def stop_all(regs: list[Registry], procs: list[Proc]) -> None:
    """Nodes first (stdin closed, killed if slow), then the registries (SIGTERM together)."""
    for p in procs:
        with contextlib.suppress(Exception):
            p.stop()
    for r in regs:
        with contextlib.suppress(Exception):
            r.terminate()
    for r in regs:
        with contextlib.suppress(Exception):
            r.stop()


def start_nodes(
    wd: Watchdog, ports: list[int], count: int, prefix: str, watch: bool = False
) -> Proc:
    cmd = [*NODE_NICE, sys.executable, "-m", "bench.cascade_nodes"]
    cmd += ["--upstreams", ",".join(map(str, ports)), "--count", str(count)]
    cmd += ["--prefix", prefix, "--timeout", "120"]
    if watch:
        cmd.append("--watch-active")
    return wd.start(cmd, "SYNCED ")


# ---------------------------------------------------------------------- writes


class Writer:
    """An operator's writes on one registry's admin HTTP API, one connection kept open."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.http = httpx.Client(base_url=reg.http, timeout=10.0)
        self.n = 0

    def write(self) -> list[float]:
        """One endpoint update; ``[revision, t_issued, t_answered]``."""
        self.n += 1
        t0 = time.time()
        r = self.http.patch(WRITE_PATH, json={"weight": self.n % 1000})
        t1 = time.time()
        r.raise_for_status()
        return [r.json()["revision"], t0, t1]

    def paced(
        self, seconds: float, rate: float, at: tuple[float, Registry] | None = None
    ) -> list[list[float]]:
        """Writes on a fixed schedule (``rate`` per second) for ``seconds``; with ``at``,
        that registry is SIGKILLed that many seconds in (before the write due then)."""
        writes: list[list[float]] = []
        start = time.time()
        k = max(1, round(seconds * rate))
        for i in range(k):
            due = start + i / rate
            if at is not None and at[1].killed_at is None and due >= start + at[0]:
                time.sleep(max(0.0, start + at[0] - time.time()))
                at[1].kill()
            time.sleep(max(0.0, due - time.time()))
            writes.append(self.write())
        return writes

    def close(self) -> None:
        self.http.close()


def get(url: str, path: str, client: httpx.Client | None = None) -> Any:
    r = (client or httpx).get(f"{url}{path}", timeout=10.0)
    r.raise_for_status()
    return r.json()


def wait_until(what: str, fn: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


# ---------------------------------------------------------------------- 1 + 2


def applied_summary(
    writes: list[list[float]], applied: dict[int, list[float]], n: int
) -> dict[str, Any]:
    complete = [w for w in writes if len(applied[int(w[0])]) >= n]
    issued = [max(applied[int(rev)]) - t0 for rev, t0, _ in complete]
    answered = [max(applied[int(rev)]) - t1 for rev, _, t1 in complete]
    each = [t - t0 for rev, t0, _ in complete for t in applied[int(rev)]]
    out: dict[str, Any] = {"nodes": n, "writes": len(writes), "reaching_every_node": len(complete)}
    if complete:
        out["issued_to_all_applied_ms"] = summary_ms(issued)
        # the first write after a quiet second: a polling tail is at its idle pace then
        out["first_write_issued_to_all_applied_ms"] = round(issued[0] * 1000, 2)
        out["answered_to_all_applied_ms"] = summary_ms(answered)
        out["issued_to_each_applied_ms"] = summary_ms(each)
    return out


def propagation_and_idle(
    backend: str, url: str, wd: Watchdog, tmp: str, quick: bool
) -> dict[str, Any]:
    seed(url, [*base_records(200), bench_endpoint()])
    regs = start_tier(url, tmp, wd)
    a, b, _ = regs
    procs: list[Proc] = []
    writer = Writer(a)
    try:
        procs.append(start_nodes(wd, [b.tars_port], PROP_NODES, "on-b-"))
        procs.append(start_nodes(wd, [a.tars_port], PROP_NODES, "on-a-"))
        time.sleep(1.0)  # the registrations' writes out of the way
        for p in procs:
            p.ask("dump")
        k = 40 if quick else 200
        writes = writer.paced(k / WRITE_RATE, WRITE_RATE)
        time.sleep(0.5)
        on_b = applied_summary(writes, collect([procs[0]], writes, PROP_NODES, 20.0), PROP_NODES)
        on_a = applied_summary(writes, collect([procs[1]], writes, PROP_NODES, 20.0), PROP_NODES)
        p99 = on_b.get("issued_to_all_applied_ms", {}).get("p99", math.inf)
        propagation = {
            "writes": k,
            "writes_per_s": WRITE_RATE,
            "nodes_on_b": on_b,
            "baseline_nodes_on_a": on_a,
            "target": verdict(p99, TARGET_P99_MS[backend] + 1e-9),
        }
        # 2. idle: 100 nodes on B
        procs[1].stop()
        procs.pop()
        more = IDLE_NODES - PROP_NODES
        procs.append(start_nodes(wd, [b.tars_port], more, "idle-b-"))
        connected = wait_until(
            f"{IDLE_NODES} nodes connected to B",
            lambda: (
                n
                if (n := sum(v["connected"] for v in get(b.http, "/v1/nodes")["nodes"]))
                >= IDLE_NODES
                else 0
            ),
            30.0,
        )
        time.sleep(3.0 if quick else SETTLE_S)
        window = 8.0 if quick else 20.0
        c0, t0 = [r.cpu_s() for r in regs], time.perf_counter()
        time.sleep(window)
        c1, t1 = [r.cpu_s() for r in regs], time.perf_counter()
        pct = [round(100 * (y - x) / (t1 - t0), 3) for x, y in zip(c0, c1, strict=True)]
        idle = {
            "window_s": round(t1 - t0, 2),
            "nodes_connected_to_b": connected,
            "cpu_percent_b_100_nodes": pct[1],
            "cpu_percent_a_no_nodes": pct[0],
            "cpu_percent_c_no_nodes": pct[2],
            "target": verdict(pct[1], TARGET_IDLE_CPU_PERCENT + 1e-9),
        }
        status = {r.name: get(r.http, "/v1/status")["tier"] for r in regs}
    finally:
        writer.close()
        stop_all(regs, procs)
    return {
        "propagation": propagation,
        "idle": idle,
        "tier_status": status,
        "registry_logs": {r.name: r.log_summary() for r in regs},
    }


# ---------------------------------------------------------------------- 3


class Monitor:
    """Polls the survivors every 0.5 s from a thread: who judges (``/v1/status``) and the
    observer's node records (``/v1/nodes``): every change of a fleet node's
    ``present_state`` (and records gone) with its time."""

    def __init__(self, survivors: list[Registry], observer: Registry, names: set[str]) -> None:
        self.survivors = survivors
        self.observer = observer
        self.names = names
        self.state: dict[str, str] = {}
        self.changes: list[list[Any]] = []
        self.judges: list[list[Any]] = []  # [t, registry, judge?] on every change
        self.errors: list[str] = []
        self.polls = 0
        #: the observer's view of its own nodes' objects lag (its revision - acked)
        self.lag_samples = 0
        self.lag_behind = 0
        self.lag_max = 0
        self._judge: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def baseline(self) -> None:
        with httpx.Client(timeout=10.0) as c:
            self._poll(c, record=False)

    def start(self) -> None:
        self._thread.start()

    def _poll(self, c: httpx.Client, record: bool = True) -> None:
        now = time.time()
        for r in self.survivors:
            judge = bool(get(r.http, "/v1/status", c)["tier"]["judge"])
            if self._judge.get(r.name) != judge:
                self._judge[r.name] = judge
                if record:
                    self.judges.append([now, r.name, judge])
        nodes = get(self.observer.http, "/v1/nodes", c)["nodes"]
        seen = {n["name"]: n for n in nodes if n["name"] in self.names and n["registered"]}
        for v in seen.values():
            lag = v["lag"].get("objects") if v["connected"] else None
            if record and lag is not None:
                self.lag_samples += 1
                self.lag_behind += lag != 0
                self.lag_max = max(self.lag_max, lag)
        for name in self.names:
            new = seen[name]["present_state"] if name in seen else "gone"
            old = self.state.get(name)
            if old != new:
                if record and old is not None:
                    self.changes.append([now, name, old, new])
                self.state[name] = new
        self.polls += 1

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as c:
            while not self._stop.wait(0.5):
                try:
                    self._poll(c)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    self.errors.append(f"{time.time():.3f} {exc!r}"[:200])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def judge_of(regs: list[Registry]) -> Registry | None:
    judges = [r for r in regs if get(r.http, "/v1/status")["tier"]["judge"]]
    return judges[0] if len(judges) == 1 else None


def failover(backend: str, url: str, wd: Watchdog, tmp: str, quick: bool) -> dict[str, Any]:
    n = 30 if quick else 100
    prefix = "tier-n"
    names = {f"{prefix}{i}" for i in range(n)}
    seed(url, [bench_endpoint(), *node_endpoints(prefix, n)])
    regs = start_tier(url, tmp, wd)
    procs: list[Proc] = []
    writer: Writer | None = None
    monitor: Monitor | None = None
    try:
        fleet = start_nodes(wd, [r.tars_port for r in regs], n, prefix, watch=True)
        procs.append(fleet)
        t_synced = time.time()
        judge = wait_until("one liveness judge", lambda: judge_of(regs), 20.0, 0.5)
        wait_until(
            "every node registered and alive",
            lambda: (
                sum(
                    1
                    for v in get(regs[0].http, "/v1/nodes")["nodes"]
                    if v["name"] in names and v["registered"] and v["present_state"] == "active"
                )
                >= n
            ),
            30.0,
        )
        # long-connected nodes: their reconnect backoff is reset (HEALTHY_AFTER_S)
        time.sleep(max(0.0, t_synced + HEALTHY_AFTER_S + 1.0 - time.time()))
        victim = judge or regs[2]
        survivors = [r for r in regs if r is not victim]
        w_reg, observer = survivors
        before = fleet.ask("stats")
        fleet.ask("dump")
        monitor = Monitor(survivors, observer, names)
        monitor.baseline()
        monitor.start()
        writer = Writer(w_reg)
        window = 6.0 if quick else NODE_TIMEOUT_S + DEFAULT_LEASE_TTL
        t_run = time.time()
        writes = writer.paced(KILL_AFTER_S + window, WRITE_RATE, at=(KILL_AFTER_S, victim))
        t_kill = victim.killed_at
        assert t_kill is not None
        # every node holds the writer's objects version (its answer to the last write)
        last_rev = int(writes[-1][0])
        t0 = time.time()
        in_sync = True
        try:
            wait_until(
                "every node holding the writer's version",
                lambda: fleet.ask("stats")["objects_revision_min"] >= last_rev,
                30.0,
            )
        except RuntimeError:
            in_sync = False
        final_sync_s = time.time() - t0
        time.sleep(1.0)  # one more poll of the records
        monitor.stop()
        after = fleet.ask("stats")
        applied = collect([fleet], writes, n, 10.0)
        writer_version = get(w_reg.http, "/v1/status")["categories"]["objects"]["version"]
        status = {r.name: get(r.http, "/v1/status")["tier"] for r in survivors}
    finally:
        if monitor is not None:
            monitor.stop()
        if writer is not None:
            writer.close()
        stop_all(regs, procs)
    post = [w for w in writes if w[1] > t_kill]
    first = post[0] if post else None
    got = applied.get(int(first[0]), []) if first else []
    resync_s = round(max(got) - t_kill, 3) if first and len(got) >= n else None
    inactive_after = [x for x in after["inactive"] if x[2] >= t_kill]
    snaps = after["stats"]["snapshots_received"] - before["stats"]["snapshots_received"]
    judge_after = [j for j in monitor.judges if j[2] and j[0] >= t_kill]
    bound = ClientOptions().reconnect_initial
    delta = {
        k: after["stats"][k] - before["stats"].get(k, 0)
        for k in (
            "connects",
            "failovers",
            "subscribes",
            "resubscribes",
            "snapshots_received",
            "deltas_received",
            "bookmarks_received",
            "resyncs",
            "behind_upstreams",
            "heartbeat_failures",
        )
    }
    return {
        "nodes": n,
        "registries": {r.name: r.tars_port for r in regs},
        "killed": victim.name,
        "killed_was_judge": judge is victim,
        "writer": w_reg.name,
        "observer": observer.name,
        "nodes_per_registry_before": before["upstream_ports"],
        "nodes_per_registry_after": after["upstream_ports"],
        "writes": len(writes),
        "writes_per_s": WRITE_RATE,
        "kill_after_s": round(t_kill - t_run, 2),
        "observed_after_kill_s": round(writes[-1][2] - t_kill, 2),
        "liveness_window_covers_node_timeout": window >= NODE_TIMEOUT_S + DEFAULT_LEASE_TTL,
        "endpoints_turned_inactive": len({x[1] for x in inactive_after}),
        "inactive_sightings_at_nodes": len(inactive_after),
        "inactive_examples": inactive_after[:5],
        "inactive_before_kill": len(after["inactive"]) - len(inactive_after),
        "snapshots_received_after_kill": snaps,
        "node_counters_over_the_run": delta,
        "resync_s": resync_s,
        "resync_definition": "kill -> every node applied the first write issued after it",
        "writes_after_kill_reaching_every_node": sum(
            1 for w in post if len(applied.get(int(w[0]), [])) >= n
        ),
        "writes_after_kill": len(post),
        "propagation_during_run": applied_summary(writes, applied, n),
        "all_in_sync_at_end": in_sync,
        "final_sync_wait_s": round(final_sync_s, 3),
        "writer_objects_version": writer_version,
        "nodes_objects_revision_min_max": [
            after["objects_revision_min"],
            after["objects_revision_max"],
        ],
        "liveness_changes": len(monitor.changes),
        "liveness_change_examples": [
            [round(t - t_kill, 2), name, old, new] for t, name, old, new in monitor.changes[:10]
        ],
        "judge_changes": [[round(t - t_kill, 2), who, j] for t, who, j in monitor.judges],
        "judge_failover_s": round(judge_after[0][0] - t_kill, 2) if judge_after else None,
        "monitor_polls": monitor.polls,
        "observer_view_of_its_nodes_objects_lag": {
            "samples": monitor.lag_samples,
            "behind": monitor.lag_behind,
            "max_revisions": monitor.lag_max,
        },
        "monitor_errors": monitor.errors[:5],
        "survivors_tier_status": status,
        "registry_logs": {r.name: r.log_summary() for r in regs},
        "targets": {
            "inactive": verdict(len({x[1] for x in inactive_after}), 1),
            "snapshots": verdict(snaps, 1),
            "liveness_changes": verdict(len(monitor.changes), 1),
            "resync": verdict(
                resync_s if resync_s is not None else math.inf, bound + RESYNC_MARGIN_S
            ),
        },
    }


# ---------------------------------------------------------------------- run


def backend_run(backend: str, wd: Watchdog, quick: bool) -> dict[str, Any]:
    reason = unreachable(backend)
    if reason is not None:
        print(f"bench tier: SKIPPED {backend}: {reason}", file=sys.stderr)
        return {"skipped": reason}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"tc-bench-tier-{backend}-") as tmp:
        with fresh_database(backend) as url:
            out.update(propagation_and_idle(backend, url, wd, tmp, quick))
        with fresh_database(backend) as url:
            out["failover"] = failover(backend, url, wd, tmp, quick)
    return out


def settings() -> dict[str, Any]:
    o, c = RegistryOptions(), ClientOptions()
    return {
        "registries": 3,
        "registry": "python -m tarscascade.cli registry --db URL --init --listen 127.0.0.1:0"
        f" --http 127.0.0.1:0 --node-timeout {NODE_TIMEOUT_S:g}",
        "writes": f"PATCH {WRITE_PATH} (a new weight) on the admin HTTP API, from the"
        " benchmark process, one connection, paced on a fixed schedule",
        "writes_per_s": WRITE_RATE,
        "node_timeout_s": NODE_TIMEOUT_S,
        "lease_ttl_s": DEFAULT_LEASE_TTL,
        "liveness_interval_s": o.liveness_interval,
        "tail_fast_s": o.tail_fast,
        "tail_idle_s": o.tail_interval,
        "node_heartbeat_s": c.heartbeat_interval,
        "node_reconnect_initial_s": c.reconnect_initial,
        "healthy_after_s": HEALTHY_AFTER_S,
    }


def run(quick: bool) -> dict[str, Any]:
    wd = Watchdog(170.0 if quick else 420.0, "tier")
    results: dict[str, Any] = {"settings": settings(), "notes": NOTES}
    try:
        for backend in ("mariadb", "postgresql"):
            t0 = time.perf_counter()
            results[backend] = backend_run(backend, wd, quick)
            results[backend]["took_s"] = round(time.perf_counter() - t0, 1)
    except Exception:
        if wd.fired:
            raise TimeoutError("tier benchmark over its time budget: children killed") from None
        raise
    finally:
        wd.cancel()
    return results


def main(argv: list[str] | None = None) -> int:
    return cli("tier", run, __doc__, argv, quick_help="small sizes, about a minute")


if __name__ == "__main__":
    raise SystemExit(main())
