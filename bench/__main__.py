"""Run the benchmark suite: ``python -m bench [--quick] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

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
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    ap.add_argument("--only", nargs="*", choices=sorted(SUITE), help="run just these")
    args = ap.parse_args(argv)
    names = args.only or list(SUITE)
    for name in names:
        t0 = time.perf_counter()
        mod = importlib.import_module(SUITE[name])
        mod.main(["--quick"] if args.quick else [])
        print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
