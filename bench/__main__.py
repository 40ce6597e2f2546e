"""Run the benchmark suite: ``python -m bench [--quick] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench.common import save, verdict

FULL_BOUND_S = 30 * 60  # the whole suite, full mode, on the 2-core machine (issue 6)
QUICK_BOUND_S = 3 * 60

#: name -> module with ``run(quick) -> dict`` and a ``save`` call in ``main``
SUITE = {
    "codec": "bench.bench_codec",
    "catalog": "bench.bench_catalog",
    "store": "bench.bench_store",
    "transport": "bench.bench_transport",
    "registry": "bench.bench_registry",
    "client": "bench.bench_client",
    "cascade": "bench.bench_cascade",
    "drain": "bench.bench_drain",
    "seen": "bench.bench_seen",
    "etcd": "bench.bench_etcd",
    "storm": "bench.bench_storm",
    "load": "bench.bench_load",
    "relay": "bench.bench_relay",
    "disk": "bench.bench_disk",
    "chaos": "bench.bench_chaos",
    "dbtars": "bench.bench_dbtars",
    "cli": "bench.bench_cli",
    "writes": "bench.bench_writes",
    "listing": "bench.bench_listing",
    "dashboard": "bench.bench_dashboard",
    "tier": "bench.bench_tier",
    "capacity": "bench.bench_capacity",
    "tarsio": "bench.bench_tarsio",  # a peer codec (issue 17); SKIPPED without tarsio
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    ap.add_argument("--only", nargs="*", choices=sorted(SUITE), help="run just these")
    args = ap.parse_args(argv)
    names = args.only or list(SUITE)
    took: dict[str, float] = {}
    start = time.perf_counter()
    failed: list[str] = []
    for name in names:
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(SUITE[name])
            mod.main(["--quick"] if args.quick else [])
        except Exception:  # one broken benchmark must not cost the others' figures
            traceback.print_exc()
            failed.append(name)
        took[name] = round(time.perf_counter() - t0, 1)
        print(f"[bench] {name}: {took[name]:.1f} s", file=sys.stderr)
    total = time.perf_counter() - start
    bound = QUICK_BOUND_S if args.quick else FULL_BOUND_S
    line = f"[bench] {len(names)} benchmarks: {total:.0f} s, {verdict(total, bound)} s"
    print(line, file=sys.stderr)
    if failed:
        print(f"[bench] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    if not args.only:  # the whole suite: its run time is a figure too
        save("suite", {"seconds": took, "total_s": round(total, 1), "bound_s": bound}, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
