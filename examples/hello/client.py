"""Call ``Test.HelloServer.HelloObj.hello`` through the local node; one line per call,
naming the port that answered.

    python examples/hello/client.py --calls 10
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello_idl import HELLO_IFACE, OBJ

from tarscascade.client import DEFAULT_LOCATOR, Communicator
from tarscascade.errors import TarsCascadeError


async def run(args: argparse.Namespace) -> int:
    failures = 0
    locator = tuple(args.locator) if args.locator else DEFAULT_LOCATOR
    async with Communicator(locator=locator, subscribe=True) as comm:
        proxy = comm.proxy(OBJ, HELLO_IFACE)
        for i in range(1, args.calls + 1):
            try:
                res = await proxy.invoke_detailed("hello", [args.name], timeout=args.timeout)
                print(f"call {i}: port {res.endpoint.port}: {res.value}", flush=True)
            except TarsCascadeError as exc:
                failures += 1
                print(f"call {i}: failed: {type(exc).__name__}: {exc}", flush=True)
            if args.interval:
                await asyncio.sleep(args.interval)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--name", default="world")
    ap.add_argument("--interval", type=float, default=0.0, help="seconds between calls")
    ap.add_argument("--timeout", type=float, default=3.0, help="per-call timeout, seconds")
    ap.add_argument(
        "--locator",
        action="append",
        help="QueryF object string (repeat for fallbacks); default: the local node, then "
        "the registry",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
