"""Admin API writes, as an operator or a deploy system issues them: latency and registry CPU.

A real ``tarscascade registry`` process (SQLite, durable commits: WAL, ``synchronous=FULL``)
with no node connected; the writer is an HTTP client on a keep-alive connection in this
process, one request at a time:

* single: an endpoint's weight changed by ``PATCH /v1/objects/{id}/endpoints/{host}/{port}``,
  issued -> answered (the answer comes once the write is committed and applied);
* batch: ``POST /v1/batch`` with 100 such changes: per request, and per endpoint written.

The registry's CPU (user + system, from /proc, all its threads) over each phase, divided
by the writes, is the server cost per write. Targets (issue 17): a single write
acknowledged in p50 <= 2 ms with <= 1.5 ms of registry CPU.

    .venv/bin/python -m bench.bench_writes [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import cli, verdict

TARGET_P50_MS = 2.0
TARGET_CPU_MS = 1.5
OBJ = "Bench.WriteServer.WriteObj"
BATCH = 100
SCRIPT = Path(sys.executable).with_name("tarscascade")
LOOPBACK_ANY_PORT = ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warning"]


def _registry(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(SCRIPT), "registry", "--db", f"sqlite:///{tmp / 'r.db'}", *LOOPBACK_ANY_PORT],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("registry  HTTP"):
            return proc, line.split()[2]
    proc.kill()
    raise RuntimeError("the registry did not print its HTTP address")


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def _ms(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {
        "p50": round(statistics.median(s) * 1000, 3),
        "p99": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 3),
        "n": len(s),
    }


def _phase(c: httpx.Client, pid: int, requests: list[tuple[str, str, Any]]) -> dict[str, Any]:
    took: list[float] = []
    cpu0 = _cpu_s(pid)
    for method, url, body in requests:
        t0 = time.perf_counter()
        r = c.request(method, url, json=body)
        took.append(time.perf_counter() - t0)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text}")
    return {"latency_ms": _ms(took), "cpu_s": _cpu_s(pid) - cpu0}


def _updates(b: int) -> list[dict[str, Any]]:
    return [
        {"op": "update", "object_id": OBJ, "host": "10.0.0.1", "port": p, "weight": w}
        for p in range(1, BATCH + 1)
        if (w := (b + p) % 90 + 1)
    ]


def run(quick: bool) -> dict[str, Any]:
    singles, batches = (60, 5) if quick else (600, 40)
    with tempfile.TemporaryDirectory(prefix="tc-bench-writes-") as tmp:
        proc, url = _registry(Path(tmp))
        try:
            with httpx.Client(base_url=url, timeout=30) as c:
                ops = [
                    {"op": "add", "object_id": OBJ, "endpoint": f"tcp -h 10.0.0.1 -p {p}"}
                    for p in range(1, BATCH + 1)
                ]
                c.post("/v1/batch", json={"ops": ops}).raise_for_status()
                ep = f"/v1/objects/{OBJ}/endpoints/10.0.0.1"
                warm = [("PATCH", f"{ep}/1", {"weight": w % 90 + 1}) for w in range(20)]
                _phase(c, proc.pid, warm)
                patches = [
                    ("PATCH", f"{ep}/{w % BATCH + 1}", {"weight": w % 90 + 1})
                    for w in range(singles)
                ]
                single = _phase(c, proc.pid, patches)
                batch_reqs = [("POST", "/v1/batch", {"ops": _updates(b)}) for b in range(batches)]
                batch = _phase(c, proc.pid, batch_reqs)
        finally:
            proc.terminate()
            proc.wait(30)
    cpu_single_ms = single["cpu_s"] / singles * 1000
    cpu_batch_ms = batch["cpu_s"] / (batches * BATCH) * 1000
    return {
        "single": {
            "writes": singles,
            "latency_ms": single["latency_ms"],
            "registry_cpu_ms_per_write": round(cpu_single_ms, 3),
        },
        "batch": {
            "requests": batches,
            "endpoints_per_request": BATCH,
            "latency_ms": batch["latency_ms"],
            "registry_cpu_ms_per_endpoint": round(cpu_batch_ms, 4),
            "latency_ms_per_endpoint": round(batch["latency_ms"]["p50"] / BATCH, 4),
        },
        "targets": {
            "single_p50": verdict(single["latency_ms"]["p50"], TARGET_P50_MS),
            "single_cpu": verdict(cpu_single_ms, TARGET_CPU_MS),
        },
    }


def main(argv: list[str] | None = None) -> int:
    return cli("writes", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
