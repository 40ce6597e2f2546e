"""Relay -> registry traffic with many leaves under one relay (issue 13, item 4).

A registry (``serve_cascade``), one real node agent as the relay (``serve_node``) and N
leaf nodes subscribed to the relay (``cascade_nodes``), each in its own process. While
the registry takes single-endpoint writes at a steady rate, the kernel's byte counters
of the registry's port (``ss``) give what the relay sends upstream per second: its
acks (a floor, coalesced) and heartbeats (the full descendant list, every few seconds).
Before protocol 2 every leaf's ack made the relay send an ack listing every leaf.
Target: <= 100 KB/s with 1,000 leaves at 20 writes/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any

from bench.bench_cascade import Proc, nodes, registry
from bench.common import cli, socket_bytes, verdict

TARGET_BYTES_S = 100_000


def run(quick: bool) -> dict[str, Any]:
    leaves, writes, rate = (100, 40, 20.0) if quick else (1000, 200, 20.0)
    with tempfile.TemporaryDirectory(prefix="tc-relay-") as tmp:
        return measure(f"sqlite:///{tmp}/r.db", leaves, writes, rate, quick)


def measure(db: str, leaves: int, writes: int, rate: float, quick: bool) -> dict[str, Any]:
    reg = registry(db)
    try:
        reg_port = int(reg.fields[0])
        cmd = [sys.executable, "-m", "bench.serve_node", "--upstream", str(reg_port)]
        relay = Proc([*cmd, "--name", "relay"], "READY ")
        try:
            relay_port = int(relay.fields[0])
            leaf_proc = nodes(relay_port, leaves, "leaf")
            try:
                assert reg.ask("nodes 1 120")["ok"]
                b0, t0 = socket_bytes(reg_port), time.perf_counter()
                reg.ask(f"updates {writes} {1.0 / rate}")
                b1, t1 = socket_bytes(reg_port), time.perf_counter()
                up_bytes_s = (b1["received"] - b0["received"]) / (t1 - t0)
                down_bytes_s = (b1["sent"] - b0["sent"]) / (t1 - t0)
                stats = reg.ask("stats")
            finally:
                leaf_proc.stop()
        finally:
            relay.stop()
    finally:
        reg.stop()
    return {
        "leaves": leaves,
        "writes": writes,
        "writes_per_s": rate,
        "relay_to_registry_bytes_s": round(up_bytes_s),
        "registry_to_relay_bytes_s": round(down_bytes_s),
        "registry_acks": stats.get("hub", {}).get("acks"),
        "registry_heartbeats": stats.get("hub", {}).get("heartbeats"),
        "verdict": verdict(up_bytes_s, TARGET_BYTES_S) if not quick else "quick",
    }


def main(argv: list[str] | None = None) -> int:
    return cli("relay", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
