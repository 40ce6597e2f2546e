"""Transport: small request/response round trips served by one TarsServer process.

A server process hosts a trivial servant; a separate load-generator process keeps
requests in flight over (a) one pipelined connection and (b) 50 connections. Reported:
replies/s, the server's CPU seconds in the window, and replies per server CPU-second
("per core"). Target (issue 2): >= 20,000 requests/s served by one process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psutil

from bench.common import cli, median, verdict

TARGET_RPS = 20_000


def start_server(cmd: list[str]) -> tuple[subprocess.Popen[str], list[str]]:
    """Start a benchmark server process; returns it and the fields of its READY line."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until READY (or EOF if it died)
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split()[1:]


def stop(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def scenario(
    port: int, pid: int, conns: int, depth: int, duration: float, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run the load generator against ``port``; sample the server's CPU meanwhile."""
    server = psutil.Process(pid)
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--port",
        str(port),
        "--connections",
        str(conns),
        "--depth",
        str(depth),
        "--duration",
        str(duration),
        "--warmup",
        "0.5",
        *extra,
    ]
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)  # skip the generator's warm-up window when sampling server CPU
    c0 = server.cpu_times()
    t0 = time.perf_counter()
    out, _ = load.communicate(timeout=duration + 60)
    t1 = time.perf_counter()
    c1 = server.cpu_times()
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    wall = t1 - t0
    res["server_cpu_share"] = cpu / wall if wall else 0.0
    res["replies_per_server_cpu_second"] = res["rps"] / res["server_cpu_share"] if cpu else 0.0
    return res


def run(quick: bool) -> dict[str, Any]:
    duration = 1.0 if quick else 3.0
    runs = 1 if quick else 5
    scenarios = {"one_connection_pipelined": (1, 100), "fifty_connections": (50, 8)}
    proc, ready = start_server([sys.executable, "-m", "bench.serve_hello", "--port", "0"])
    port = int(ready[0])
    try:
        out: dict[str, Any] = {}
        for name, (conns, depth) in scenarios.items():
            samples = [scenario(port, proc.pid, conns, depth, duration) for _ in range(runs)]
            rps = median([s["rps"] for s in samples])
            per_core = median([s["replies_per_server_cpu_second"] for s in samples])
            out[name] = {
                "connections": conns,
                "in_flight_per_connection": depth,
                "runs": runs,
                "rps_median": rps,
                "replies_per_server_cpu_second_median": per_core,
                "server_cpu_share_median": median([s["server_cpu_share"] for s in samples]),
                "target": verdict(rps, TARGET_RPS, lower_is_better=False),
                "samples": samples,
            }
        return out
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    return cli("transport", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
