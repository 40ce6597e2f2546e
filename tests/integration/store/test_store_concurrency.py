"""Concurrent writers in several threads and stores: revisions stay unique and in order."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

from tarscascade.model import ChangeEvent
from tarscascade.store import Put, SqlStore
from tests.integration.store.store_samples import endpoint

STORES = 2
THREADS_PER_STORE = 2
WRITES_PER_THREAD = 20
EVENTS_PER_WRITE = 3


def test_concurrent_writers_never_duplicate_or_reorder_revisions(
    open_store: Callable[[], SqlStore],
) -> None:
    writers = [open_store() for _ in range(STORES)]
    tailer = open_store()
    results: list[list[ChangeEvent]] = []
    errors: list[BaseException] = []
    tail_gaps: list[tuple[int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(STORES * THREADS_PER_STORE + 1)
    done = threading.Event()

    def write(store: SqlStore, worker: int) -> None:
        start.wait()
        try:
            for n in range(WRITES_PER_THREAD):
                base = (worker * WRITES_PER_THREAD + n) * EVENTS_PER_WRITE
                events = store.write(
                    [Put(endpoint(base + k, weight=worker)) for k in range(EVENTS_PER_WRITE)]
                )
                with lock:
                    results.append(events)
        except BaseException as exc:
            errors.append(exc)

    def tail() -> None:
        # A reader polling like a registry tailing the log: revisions must arrive with no
        # gap, i.e. a revision is never visible before every lower one is.
        start.wait()
        seen = 0
        while True:
            finished = done.is_set()
            for event in tailer.changes_since(seen, limit=50):
                if event.revision != seen + 1:
                    tail_gaps.append((seen, event.revision))
                seen = event.revision
            if finished and not tailer.changes_since(seen):
                return

    threads = [
        threading.Thread(target=write, args=(writers[s], s * THREADS_PER_STORE + t))
        for s in range(STORES)
        for t in range(THREADS_PER_STORE)
    ]
    reader = threading.Thread(target=tail)
    for t in [*threads, reader]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()

    assert errors == []
    assert tail_gaps == []
    total = STORES * THREADS_PER_STORE * WRITES_PER_THREAD * EVENTS_PER_WRITE
    revisions = sorted(e.revision for events in results for e in events)
    assert revisions == list(range(1, total + 1))
    for events in results:  # each write's events are consecutive
        assert [e.revision for e in events] == list(
            range(events[0].revision, events[0].revision + EVENTS_PER_WRITE)
        )
    logged = tailer.changes_since(0, limit=total + 10)
    assert [e.revision for e in logged] == list(range(1, total + 1))
    assert sorted(logged, key=lambda e: e.revision) == sorted(
        (e for events in results for e in events), key=lambda e: e.revision
    )
    assert tailer.current_revision() == total


def _write_from_process(url: str, worker: int, writes: int) -> list[list[int]]:
    """Runs in a child process: one more 'registry' writing to the shared database."""
    store = SqlStore.open(url)
    try:
        revisions = []
        for n in range(writes):
            base = 100_000 * (worker + 1) + n * EVENTS_PER_WRITE
            events = store.write([Put(endpoint(base + k)) for k in range(EVENTS_PER_WRITE)])
            revisions.append([e.revision for e in events])
        return revisions
    finally:
        store.close()


def test_writers_in_separate_processes_serialize(
    db_url: str, open_store: Callable[[], SqlStore]
) -> None:
    store = open_store()  # creates the schema before the children race
    processes = 3
    writes = 15
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(_write_from_process, [(db_url, w, writes) for w in range(processes)])
    per_write = [revs for worker in results for revs in worker]
    total = processes * writes * EVENTS_PER_WRITE
    assert sorted(r for revs in per_write for r in revs) == list(range(1, total + 1))
    for worker in results:  # each process saw its own revisions rise
        flat = [r for revs in worker for r in revs]
        assert flat == sorted(flat)
    assert [e.revision for e in store.changes_since(0, limit=total)] == list(range(1, total + 1))
    assert len(store.load().endpoints) == total
