"""A Python TARS servant, ``Test.HelloServer.HelloObj`` with ``string hello(string name)``.

    python examples/hello/server.py --port 20001

It reports itself to the local node agent (``ServerF.keepAlive``), which registers the
endpoint and marks it active; stopping it (Ctrl-C, SIGTERM) marks it inactive. Against
``tarscascade up`` nothing else is needed. Prints ``READY <port>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello_idl import HELLO_IFACE, OBJ

from tarscascade.client import DEFAULT_NODE, ServantHost
from tarscascade.transport import Current, InterfaceServant


class Hello:
    def __init__(self) -> None:
        self.port = 0

    def hello(self, current: Current, name: str) -> str:
        return f"hello {name} from port {self.port}"


async def serve(args: argparse.Namespace) -> None:
    impl = Hello()
    host = ServantHost(
        [InterfaceServant(OBJ, HELLO_IFACE, impl)],
        host=args.host,
        port=args.port,
        node=None if args.no_node else args.node,
        keepalive_interval=args.keepalive,
        linger=args.linger,
    )
    async with host:
        impl.port = host.port
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, host.stop)
        print(f"READY {host.port}", flush=True)
        print(f"serving {OBJ} at {host.endpoint}", file=sys.stderr)
        await host.serve_forever()
    print("stopped", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--node", default=DEFAULT_NODE, help="the node agent's ServerF object")
    ap.add_argument("--no-node", action="store_true", help="do not report to a node")
    ap.add_argument("--keepalive", type=float, default=10.0, help="seconds between keepAlives")
    ap.add_argument("--linger", type=float, default=0.0, help="seconds to serve after stopping")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
