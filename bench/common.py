"""Shared benchmark plumbing: machine details, medians, JSON results."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "commit": commit,
    }


def free_port() -> int:
    """A loopback port free now (another process may take it before it is bound: start
    with a retry, as ``etcd_grpc.Etcd`` does)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dig(doc: dict[str, Any], path: tuple[str, ...]) -> float:
    """The number at ``path`` (keys, outermost first) in a benchmark's results."""
    value: Any = doc
    for key in path:
        value = value[key]
    return float(value)


def median(values: list[float]) -> float:
    return statistics.median(values)


def repeat(fn: Callable[[], float], runs: int) -> list[float]:
    return [fn() for _ in range(runs)]


def rss_mb(pid: int | None = None) -> float:
    return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    ok = value < target if lower_is_better else value >= target
    sign = "<" if lower_is_better else ">="
    return f"{'MET' if ok else 'MISSED'} (target {sign} {target:g})"


def save(name: str, results: dict[str, Any], quick: bool) -> Path:
    RESULTS.mkdir(exist_ok=True)
    doc = {"benchmark": name, "quick": quick, "machine": machine(), "results": results}
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"{name}{'-quick' if quick else ''}-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    latest = RESULTS / f"{name}{'-quick' if quick else ''}-latest.json"
    latest.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    print(f"saved {path}", file=sys.stderr)
    return path


def cli(
    name: str,
    run: Callable[[bool], dict[str, Any]],
    doc: str | None,
    argv: list[str] | None = None,
    quick_help: str = "small sizes: the smoke test",
) -> int:
    """A benchmark module's ``main``: ``--quick``, run, print and save the results."""
    ap = argparse.ArgumentParser(prog=f"python -m bench.bench_{name}", description=doc)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    args = ap.parse_args(argv)
    save(name, run(args.quick), args.quick)
    return 0


def _connections(port: int) -> dict[str, dict[str, int]]:
    """Kernel byte counters (``ss -tin``) per established TCP connection whose local port
    is ``port``, keyed by the peer's address: ``sent`` (acked by the peer), ``received``."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    conns: dict[str, dict[str, int]] = {}
    counters: dict[str, int] | None = None
    for line in out.splitlines():
        if line and not line[0].isspace():  # "Recv-Q Send-Q local peer", then its details
            counters = conns[line.split()[-1]] = {"sent": 0, "received": 0}
        elif counters is not None:
            for field in line.split():
                if field.startswith("bytes_acked:"):
                    counters["sent"] = int(field.split(":", 1)[1])
                elif field.startswith("bytes_received:"):
                    counters["received"] = int(field.split(":", 1)[1])
    return conns


def socket_bytes(port: int) -> dict[str, int]:
    """Kernel byte counters summed over the established TCP connections whose local port
    is ``port``: what the server sent and received on them, no overhead. Connections
    that closed in between are not counted, so keep them open."""
    conns = _connections(port).values()
    return {
        "sent": sum(c["sent"] for c in conns),
        "received": sum(c["received"] for c in conns),
        "connections": len(conns),
    }


def sent_per_connection(port: int) -> dict[str, int]:
    """Bytes sent (acked by the peer) per established TCP connection whose local port is
    ``port``, keyed by the peer's address: after a reconnect, the connections not seen
    before are the new ones."""
    return {peer: c["sent"] for peer, c in _connections(port).items()}


#: set to a folder to have benchmarks that support it record py-spy profiles there
PROFILE_ENV = "TARSCASCADE_BENCH_PROFILE"


def start_profile(pid: int, seconds: float, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy on ``pid`` for ``seconds`` when $TARSCASCADE_BENCH_PROFILE names a folder:
    collapsed stacks (``<folder>/<name>.txt``, one line per stack with its sample count)."""
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        return None
    out = Path(folder) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
    cmd += ["-r", "200", "-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
