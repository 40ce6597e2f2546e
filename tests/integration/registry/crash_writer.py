"""A registry write burst to be killed: the child process of ``test_crash.py``.

Runs as a zygote (``python -m tests.integration.registry.crash_writer``): the imports are
paid once; each ``run URL ACKS`` line on stdin forks a writer that opens the database
like a registry (store + core + admin operations) and writes until it is killed,
appending ``i revision`` to the ACKS file after each write is acknowledged. The zygote
prints the writer's pid, reaps it, and prints ``exited STATUS``.

Write ``i`` is, by ``i % 3``: an insert of three endpoints in one write (ports 3i+100..
3i+102: all or none), a weight patch of endpoint 1 (weight = i), a setting-state patch
of endpoint 2 (inactive on odd i).
"""

from __future__ import annotations

import asyncio
import os
import sys

from tarscascade.model import EndpointRecord, State
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import Insert, Put, SqlStore

OBJ = "Crash.Test.Obj"
HOST = "10.0.0.1"


def ep(port: int, **kw: object) -> EndpointRecord:
    return EndpointRecord(OBJ, HOST, port, **kw)  # type: ignore[arg-type]


def trio(i: int) -> list[int]:
    return [3 * i + 100 + k for k in range(3)]


async def burst(url: str, acks_path: str) -> None:
    store = await asyncio.to_thread(SqlStore.open, url)
    core = RegistryCore(store, RegistryOptions(reload_interval=0))
    await core.start()
    admin = RegistryAdmin(core)
    if not core.catalog.get_object(OBJ):
        await core.write([Put(ep(1)), Put(ep(2))])
    fd = os.open(acks_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    i = 0
    while True:
        if i % 3 == 0:
            revision = (await core.commit([Insert(ep(p)) for p in trio(i)])).revision
        elif i % 3 == 1:
            revision = (await admin.update_endpoint(OBJ, HOST, 1, {"weight": i})).revision
        else:
            state = State.INACTIVE if i % 2 else State.ACTIVE
            revision = (await admin.set_endpoint_state(OBJ, HOST, 2, state)).revision
        os.write(fd, f"{i} {revision}\n".encode())  # after the acknowledgement only
        i += 1


def main() -> None:
    for line in sys.stdin:
        cmd, url, acks = line.split()
        assert cmd == "run"
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(burst(url, acks))
            finally:
                os._exit(1)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exited {status}", flush=True)


if __name__ == "__main__":
    main()
