"""A TARS server hosting Test.HelloServer.HelloObj (hello, add) for benchmarks.

Prints ``READY <port>`` once listening; exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tarscascade.transport import Current, InterfaceServant, TarsServer
from tarscascade.wire.codec import INT32_K, STRING
from tarscascade.wire.interface import Interface, Method, Param

OBJ = "Test.HelloServer.HelloObj"
HELLO = Method("hello", (Param("name", STRING),), STRING)
ADD = Method("add", (Param("a", INT32_K), Param("b", INT32_K)), INT32_K)
IFACE = Interface.of("Hello", HELLO, ADD)


class Impl:
    def hello(self, cur: Current, name: str) -> str:
        return "hello " + name

    def add(self, cur: Current, a: int, b: int) -> int:
        return a + b


async def serve(port: int) -> None:
    async with TarsServer([InterfaceServant(OBJ, IFACE, Impl())], port=port) as server:
        print(f"READY {server.port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
