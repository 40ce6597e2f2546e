"""Capacity model: calibrated on 300 and 1,000 nodes, checked against 2,000.

The model (README, *Capacity model*) says what one registry (or relay) core costs:

* **idle**: ``share = N * h * c_hb`` — N nodes, each heartbeating ``h`` times a second
  when idle, each heartbeat costing the registry ``c_hb`` of CPU;
* **per write**: ``cpu = c_w + N * c_n`` — a fixed part (commit, apply, encode once) and a
  part per node (the push, its ack);
* **change -> last node** (paced writes): ``latency = d0 + N * c_l`` — the registry
  sends to its sessions one after the other on one core (``c_l``, the send, is a part of
  ``c_n``: the acks are handled as they come back); ``d0`` is what one node sees.

3,000 nodes do not settle on this machine (see ``measure``): the checks stop at 2,000.

Calibration: fleets of ``CAL_SMALL`` and ``CAL_LARGE`` nodes; two points give ``c_w`` and
``c_n``, ``d0`` and ``c_l``; ``c_hb`` and ``h`` come from the larger, measured after
``SETTLE_S`` (an idle node's heartbeat interval stretches to its longest first). Check: the same
figures measured at 2,000 nodes against the prediction, within ±30 %.
Processes as in ``bench_cascade`` (a registry; node processes of 1,000 CascadeClients
each at a lower priority), all on this machine: at 2,000 nodes the nodes' own work
shares the 2 cores with the registry, which the model does not know about — the check
says how far that goes.

    .venv/bin/python -m bench.bench_capacity [--quick]
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from bench.bench_cascade import IDLE_RAMP_S, fleet, propagation
from bench.common import cli

TOLERANCE = 0.30
#: below a few hundred nodes the per-message overheads are not yet shared by many
#: messages per wake-up: a model fitted on 10 and 300 nodes over-predicted 1,000 and
#: 2,000 by 1.2-2.6x (2026-12-07); fitted on 300 and 1,000, it predicts 2,000
CAL_SMALL, CAL_LARGE = 300, 1_000
#: 3,000 simulated nodes do not settle on this machine (see measure): 2,000 is the top
CHECKS = (2_000,)
PER_PROCESS = 1_000
BASE_OBJECTS = 20  # x 5 endpoints in every replica
IDLE_S = 20
#: an idle node's heartbeat interval stretches to the registry's grant first (30 s)
SETTLE_S = IDLE_RAMP_S
WRITES = 100
INTERVAL_S = 0.25  # paced: each write alone (the last node has it long before the next)


def measure(tmp: str, n: int, quick: bool) -> dict[str, Any]:
    # All at once, and a small replica: the simulated nodes share 2 cores with the
    # registry. Every node's registration is a nodes-category change that reaches every
    # node: N^2 node records at a cold start, 9,000,000 at 3,000 nodes, 3,000,000 per node
    # process. Those processes then answer no heartbeat for ~40 s, the registry drops
    # their sessions, they subscribe (and register) again, and the fleet never settles
    # (seen with 100 and with 1,000 endpoints per replica, all at once or in waves).
    n_procs = max(1, -(-n // PER_PROCESS))
    reg, procs, start_s = fleet(tmp, f"cap{n}", n, n_procs, at_once=True, base_objects=BASE_OBJECTS)
    try:
        time.sleep(2 if quick else SETTLE_S)
        idle = reg.ask(f"idle {3 if quick else IDLE_S}")
        paced = propagation(reg, procs, n, 20 if quick else WRITES, INTERVAL_S)
    finally:
        for p in procs:
            p.stop()
        reg.stop()
    # the CPU window of the writes also holds heartbeats: take the idle share out
    window = paced["registry_cpu_window_s"]
    writes = max(1, paced["updates"])
    per_update_s = paced["registry_cpu_per_update_ms"] / 1000
    hb_s = idle["cpu_percent"] / 100 * window / writes
    return {
        "nodes": n,
        "fleet_start_s": round(start_s, 1),
        "idle_cpu_share": round(idle["cpu_percent"] / 100, 5),
        "heartbeats_per_s": round(idle["heartbeats_per_s"], 1),
        "cpu_per_update_s": round(max(0.0, per_update_s - hb_s), 6),
        "latency_p50_s": paced["commit_to_all_applied_ms"]["p50"] / 1000,
        "latency_p99_s": paced["commit_to_all_applied_ms"]["p99"] / 1000,
        "node_cpu_per_node_update_us": paced["node_cpu_per_node_update_us"],
    }


def calibrate(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    dn = large["nodes"] - small["nodes"]
    c_n = max(1e-7, (large["cpu_per_update_s"] - small["cpu_per_update_s"]) / dn)
    c_w = max(0.0, small["cpu_per_update_s"] - small["nodes"] * c_n)
    c_l = max(0.0, (large["latency_p50_s"] - small["latency_p50_s"]) / dn)
    d0 = max(0.0, small["latency_p50_s"] - small["nodes"] * c_l)
    rate = large["heartbeats_per_s"]
    return {
        "c_n_us": round(c_n * 1e6, 2),  # registry CPU per update per node
        "c_w_ms": round(c_w * 1e3, 3),  # registry CPU per update, fixed
        "c_l_us": round(c_l * 1e6, 2),  # change -> last node, per node
        "d0_ms": round(d0 * 1e3, 3),  # change -> a lone node
        "c_hb_us": round(large["idle_cpu_share"] / rate * 1e6, 1) if rate else 0.0,
        "h_per_node_s": round(rate / large["nodes"], 4),  # idle heartbeats per node per s
    }


def predict(model: dict[str, float], n: int) -> dict[str, float]:
    c_n, c_w = model["c_n_us"] / 1e6, model["c_w_ms"] / 1e3
    return {
        "idle_cpu_share": n * model["h_per_node_s"] * model["c_hb_us"] / 1e6,
        "cpu_per_update_s": c_w + n * c_n,
        "latency_p50_s": model["d0_ms"] / 1e3 + n * model["c_l_us"] / 1e6,
    }


def check(predicted: dict[str, float], measured: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, want in predicted.items():
        got = measured[key]
        ratio = got / want if want else float("inf")
        ok = abs(ratio - 1) <= TOLERANCE
        out[key] = {
            "predicted": round(want, 6),
            "measured": got,
            "measured_over_predicted": round(ratio, 3),
            "verdict": "MET" if ok else f"MISSED (±{TOLERANCE:.0%})",
        }
    return out


def run(quick: bool) -> dict[str, Any]:
    checks = (100,) if quick else CHECKS
    with tempfile.TemporaryDirectory(prefix="tc-bench-capacity-") as tmp:
        small = measure(tmp, 10 if quick else CAL_SMALL, quick)
        large = measure(tmp, 50 if quick else CAL_LARGE, quick)
        model = calibrate(small, large)
        out: dict[str, Any] = {"calibration": [small, large], "model": model, "checks": {}}
        for n in checks:
            measured = measure(tmp, n, quick)
            out["checks"][str(n)] = {
                "measured": measured,
                "against_model": check(predict(model, n), measured),
            }
        return out


def main(argv: list[str] | None = None) -> int:
    return cli("capacity", run, __doc__, argv, quick_help="10, 50 and 100 nodes")


if __name__ == "__main__":
    raise SystemExit(main())
