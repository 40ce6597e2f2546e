"""SIGKILL a registry at random points of a write burst: nothing acknowledged is lost,
nothing is half-applied.

A forked writer (``crash_writer.py``) writes through the registry's own path (store,
core, admin operations) and records each acknowledged write; the test kills it after a
seeded random number of acknowledgements, so the kill lands anywhere in the next
writes (inside a transaction, between commit and answer, ...). Then the database is
opened as a restarting registry would: every acknowledged write is there, every
multi-row write is all or nothing, and rows, change log and counter agree.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tarscascade.model import State
from tarscascade.registry.core import RegistryCore
from tarscascade.store import SqlStore, schema
from tests.integration.registry.crash_writer import OBJ, trio

REPO = Path(__file__).resolve().parents[3]
TRIALS = {"sqlite": 100, "mariadb": 20, "postgresql": 20}
SEED = 1201
MAX_ACKS = 30
WAIT_S = 60.0


@pytest.fixture
def zygote() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.registry.crash_writer"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield proc  # type: ignore[misc]
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def _acks(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(int(a), int(b)) for a, b in (line.split() for line in lines if line.count(" ") == 1)]


def _trial(
    zygote: subprocess.Popen[str], url: str, acks_path: Path, kill_after: int
) -> list[tuple[int, int]]:
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    zygote.stdin.write(f"run {url} {acks_path}\n")
    zygote.stdin.flush()
    pid = int(zygote.stdout.readline())
    deadline = time.monotonic() + WAIT_S
    while len(_acks(acks_path)) < kill_after:  # an observable state: that many acks
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the writer did not acknowledge {kill_after} writes")
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    line = zygote.stdout.readline()
    assert line.startswith("exited"), line
    return _acks(acks_path)  # everything acknowledged before the kill


def _check(url: str, acks: list[tuple[int, int]]) -> bool:
    """Check the database after a kill; True when the write in flight had committed."""
    with SqlStore.open(url, create="never") as store:
        snap = store.load()
        log = store.changes_since(0, limit=100_000)
    by_port = {e.port: e for e in snap.endpoints if e.object_id == OBJ}
    assert snap.revision == (log[-1].revision if log else 0)
    # rows and change log agree: replaying the log gives the rows (nothing half-applied)
    replayed: dict[str, object] = {}
    for event in log:
        if event.record is None:
            replayed.pop(event.key, None)
        else:
            replayed[event.key] = event.record
    assert replayed == {r.key: r for r in snap.endpoints}
    done = {i for i, _ in acks}
    last = max(done, default=-1)
    assert done == set(range(last + 1))  # the writer is sequential
    in_flight = last + 1  # the only write that may or may not have committed
    for i in range(in_flight + 2):
        if i % 3 == 0:
            present = [p in by_port for p in trio(i)]
            assert len(set(present)) == 1, f"write {i} half-applied: {present}"
            if i <= last:
                assert all(present), f"acknowledged write {i} lost"
            if i > in_flight:
                assert not any(present), f"write {i} was never made"

    def allowed(kind: int) -> set[object]:
        acked = [i for i in done if i % 3 == kind]
        out = {value_of(kind, max(acked))} if acked else {value_of(kind, None)}
        if in_flight % 3 == kind:
            out.add(value_of(kind, in_flight))
        return out

    assert by_port[1].weight in allowed(1), "a weight write was lost"
    assert by_port[2].setting_state in allowed(2), "a state write was lost"
    revisions = [r for _, r in acks]
    assert revisions == sorted(revisions)
    assert all(r <= snap.revision for r in revisions)
    return snap.revision > (revisions[-1] if revisions else 0)


def value_of(kind: int, i: int | None) -> object:
    """What endpoint 1's weight (kind 1) or endpoint 2's setting state (kind 2) is after
    write ``i`` (None: before any)."""
    if kind == 1:
        return -1 if i is None else i
    if i is None:
        return State.ACTIVE
    return State.INACTIVE if i % 2 else State.ACTIVE


async def test_sigkill_during_a_write_burst_loses_no_acknowledged_write(
    zygote: subprocess.Popen[str], backend: str, db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    trials = TRIALS[backend]
    unacknowledged = 0
    for n in range(trials):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/crash-{n}.db"
        else:
            url = db_url
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            schema.metadata.drop_all(engine)
            engine.dispose()
        kill_after = rng.randint(1, MAX_ACKS)
        acks = await asyncio.to_thread(_trial, zygote, url, tmp_path / f"acks-{n}", kill_after)
        unacknowledged += await asyncio.to_thread(_check, url, acks)
    print(f"{trials} kills; the write in flight had committed in {unacknowledged}")

    # and a restarted registry serves it
    store = await asyncio.to_thread(SqlStore.open, url, create="never")
    core = RegistryCore(store)
    try:
        await core.start()
        assert len(core.catalog.get_object(OBJ)) >= 2
    finally:
        await core.aclose()
        store.close()
