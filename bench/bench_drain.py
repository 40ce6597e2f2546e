"""Drain: how fast do clients stop calling an endpoint set inactive at the registry?

Process A (this one): a registry (SQLite, temp dir), one node agent and two Python
servants hosted with :class:`~tarscascade.client.ServantHost` (registered by their own
keepAlives to the node). The servants timestamp every call with ``time.time()`` (wall
clock: comparable across processes on one machine), per client id (the ``hello``
argument).

Process(es) B (:mod:`bench.drain_clients`, started with :mod:`subprocess`): N clients,
each a :class:`~tarscascade.client.Communicator` with its own connections whose locator is
the node, each calling ``hello(client_id)`` every ``interval`` seconds in its own task.
Full: 2 processes of N/2 (N=100); quick: 1 process of 10.

Per repeat: ``t_ack`` = ``time.time()`` right after ``RegistryAdmin.drain`` returned
(what ``tarscascade drain`` runs: the endpoint set INACTIVE, then every connected node
acknowledged that version); also measured from the drain's start. Then wait (bounded)
until every client called the other servant after ``t_ack + MARGIN`` and nothing
reached the drained one for more than ``QUIET`` s. Drain latency = (last call time at
the drained servant among calls that arrived after ``t_ack``, or ``t_ack``) - ``t_ack``.
Then the endpoint is set ACTIVE again and every client must call it again before the
next repeat. Modes: push
(``subscribe=True``) and 3 s polling (``subscribe=False``). Reported: p50/p99/max per
mode. Target: push p99 < 200 ms.

Resolution: a client alternates between the two endpoints, so it calls the drained one
about every ``2 * interval``; its last call there is a lower bound of when it dropped the
endpoint, within ~``2 * interval`` (with many clients the max is close to the true one).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.common import cli, verdict
from bench.drain_clients import IFACE, OBJ
from tarscascade.cascade import ClientOptions
from tarscascade.catalog.announce import announce_setting
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.client import ServantHost
from tarscascade.model import State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Current, InterfaceServant
from tarscascade.wire.idl.serverf import NODE_SERVANT

ROOT = Path(__file__).resolve().parent.parent
TARGET_PUSH_P99_MS = 200.0
POLL_INTERVAL = 3.0
MARGIN = 0.2  # every client must call the other servant after t_ack + MARGIN
QUIET = 1.0  # ... and nothing may reach the drained servant for this long
FAST = ClientOptions(heartbeat_interval=0.5, reconnect_initial=0.05, reconnect_max=0.3)


class Stamped:
    """A Hello servant that remembers, per client, when (wall clock) it last answered it."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.last_any = 0.0
        self.calls = 0

    def hello(self, cur: Current, name: str) -> str:
        now = time.time()
        self.last[name] = now
        self.last_any = now
        self.calls += 1
        return name


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summary(ms: list[float]) -> dict[str, Any]:
    return {
        "repeats": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(pct(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "all_ms": [round(v, 1) for v in ms],
    }


@contextlib.asynccontextmanager
async def registry_and_node() -> AsyncIterator[tuple[RegistryProcess, NodeAgent]]:
    """A registry (SQLite in a temp dir) and one node agent synced from it."""
    with tempfile.TemporaryDirectory() as tmp:
        rp = RegistryProcess(
            RegistryConfig(
                db=f"sqlite:///{Path(tmp)}/registry.db",
                listen=("127.0.0.1", 0),
                http=None,
                options=RegistryOptions(tail_interval=0.1, reload_interval=0),
            )
        )
        node = NodeAgent(
            NodeConfig(
                name="bench-node",
                upstreams=[],
                listen=("127.0.0.1", 0),
                keepalive_timeout=30.0,
                report_interval=0.1,
                client_options=FAST,
            )
        )
        try:
            await rp.start()
            assert rp.core is not None  # the node may announce the benchmark's objects
            obj_app = OBJ.split(".")[0]
            await RegistryAdmin(rp.core).put_setting(announce_setting("bench-node"), f"{obj_app}.*")
            node.config.upstreams = [("127.0.0.1", rp.tars_port)]
            await node.start()
            assert node.client is not None
            await asyncio.wait_for(node.client.synced.wait(), 30)
            yield rp, node
        finally:
            await node.aclose()
            await rp.aclose()


async def start_clients(
    locator: str, prefix: str, split: list[int], interval: float, push: bool
) -> list[asyncio.subprocess.Process]:
    procs: list[asyncio.subprocess.Process] = []
    first = 0
    for count in split:
        cmd = [
            sys.executable,
            "-m",
            "bench.drain_clients",
            "--locator",
            locator,
            "--prefix",
            prefix,
            "--first",
            str(first),
            "--count",
            str(count),
            "--interval",
            str(interval),
            "--refresh",
            str(POLL_INTERVAL),
        ]
        if push:
            cmd.append("--subscribe")
        procs.append(
            await asyncio.create_subprocess_exec(
                *cmd,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        )
        first += count
    return procs


async def stop_clients(procs: list[asyncio.subprocess.Process]) -> None:
    for p in procs:
        if p.stdin is not None:
            with contextlib.suppress(Exception):
                p.stdin.close()
    for p in procs:
        try:
            await asyncio.wait_for(p.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            await p.wait()


async def wait_ready(procs: list[asyncio.subprocess.Process], timeout: float) -> None:
    for p in procs:
        assert p.stdout is not None
        line = await asyncio.wait_for(p.stdout.readline(), timeout)
        if line.strip() != b"READY":
            raise RuntimeError(f"client process {p.pid} not ready: {line!r}")


async def run_mode(
    *,
    admin: RegistryAdmin,
    node_port: int,
    drained: Stamped,
    other: Stamped,
    port: int,
    split: list[int],
    repeats: int,
    interval: float,
    push: bool,
) -> dict[str, Any]:
    locator = f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {node_port}"
    prefix = "push" if push else "poll"
    names = [f"{prefix}-{i}" for i in range(sum(split))]
    bound = 10.0 if push else POLL_INTERVAL + 10.0
    latencies: list[float] = []
    from_write: list[float] = []  # from the start of the drain (includes its own latency)
    late_calls: list[int] = []  # calls that reached the drained servant after t_ack
    commands: list[float] = []  # the drain command's own duration
    unacked = 0  # nodes that did not acknowledge within the drain's timeout
    procs = await start_clients(locator, prefix, split, interval, push)
    try:
        await wait_ready(procs, 60)
        # every client has called both servants
        await eventually(lambda: all(n in drained.last and n in other.last for n in names), bound)
        for _ in range(repeats):
            t_start = time.time()
            # what `tarscascade drain` runs: set inactive, wait for every node's ack
            res = await admin.drain(OBJ, "127.0.0.1", port, timeout=10.0)
            t_ack = time.time()
            commands.append((t_ack - t_start) * 1000)
            unacked += len(res.missing)
            calls_at_ack = drained.calls

            def drained_done(t: float = t_ack) -> bool:
                now = time.time()
                moved = all(other.last.get(n, 0.0) > t + MARGIN for n in names)
                return moved and now - max(t, drained.last_any) > QUIET

            await eventually(drained_done, bound + QUIET, 0.01)
            last = max((v for v in drained.last.values() if v > t_ack), default=t_ack)
            latencies.append((last - t_ack) * 1000)
            from_write.append((last - t_start) * 1000)
            late_calls.append(drained.calls - calls_at_ack)
            await admin.set_endpoint_state(OBJ, "127.0.0.1", port, State.ACTIVE)
            back = time.time()
            await eventually(lambda b=back: all(drained.last[n] > b for n in names), bound, 0.01)
    finally:
        await stop_clients(procs)
    out = summary(latencies)
    out["from_drain_start"] = summary(from_write)
    out["drain_command"] = summary(commands)
    out["nodes_missing_acks"] = unacked
    out["late_calls"] = late_calls
    return out


async def run_async(quick: bool) -> dict[str, Any]:
    split = [10] if quick else [50, 50]
    push_repeats = 3 if quick else 20
    poll_repeats = 1 if quick else 3
    interval = 0.02
    async with registry_and_node() as (rp, node):
        impls = [Stamped(), Stamped()]
        hosts: list[ServantHost] = []
        try:
            for impl in impls:
                h = ServantHost(
                    [InterfaceServant(OBJ, IFACE, impl)],
                    node=f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {node.port}",
                    keepalive_interval=5.0,
                )
                hosts.append(h)
                await h.start()
            assert rp.core is not None
            await eventually(lambda: len(node.catalog.get_object(OBJ)) == 2, 20)
            admin = RegistryAdmin(rp.core, hub=rp.hub)
            common: dict[str, Any] = {
                "admin": admin,
                "node_port": node.port,
                "drained": impls[0],
                "other": impls[1],
                "port": hosts[0].port,
                "split": split,
                "interval": interval,
            }
            push = await run_mode(**common, repeats=push_repeats, push=True)
            print(f"[drain] push: {push}", file=sys.stderr)
            poll = await run_mode(**common, repeats=poll_repeats, push=False)
            print(f"[drain] poll: {poll}", file=sys.stderr)
        finally:
            for h in hosts:
                await h.aclose()
    return {
        "clients": sum(split),
        "client_processes": len(split),
        "call_interval_s": interval,
        "push": push,
        "polling_3s": poll,
        "target_push_p99_ms": TARGET_PUSH_P99_MS,
        "verdict": f"push p99 {verdict(push['p99_ms'], TARGET_PUSH_P99_MS)}",
    }


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(run_async(quick))


def main(argv: list[str] | None = None) -> int:
    return cli("drain", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
