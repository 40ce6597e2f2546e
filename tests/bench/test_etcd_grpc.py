"""The etcd benchmark's gRPC plumbing against a real etcd: EtcdClient writes, the
bench.etcd_watchers informers list, watch, resume and re-list, one connection each."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.bench_cascade import Proc
from bench.etcd_grpc import PREFIX, Etcd, EtcdClient, etcd_key, etcd_value

from tarscascade.model import EndpointRecord

ETCD = shutil.which("etcd")
pytestmark = pytest.mark.skipif(
    ETCD is None, reason="etcd not on PATH (apt-get install etcd-server)"
)

WATCHERS = 3
DEADLINE_S = 20.0


def rec(i: int) -> EndpointRecord:
    return EndpointRecord("Test.Etcd.Obj", f"10.1.{i // 250}.{i % 250}", 9000 + i)


def put(client: EtcdClient, i: int) -> int:
    r = rec(i)
    revision, issued, acked = client.put(etcd_key(r), etcd_value(r))
    assert issued <= acked
    return revision


def wait_applied(proc: Proc, revisions: set[int]) -> dict[int, list[float]]:
    """Dumps until each revision was applied by every watcher (bounded by a deadline)."""
    seen: dict[int, list[float]] = {}
    deadline = time.monotonic() + DEADLINE_S
    while True:
        dump = proc.ask("dump")
        assert "error" not in dump, dump
        for rev, times in dump.items():
            seen.setdefault(int(rev), []).extend(times)
        if all(len(seen.get(r, [])) >= WATCHERS for r in revisions):
            return seen
        assert time.monotonic() < deadline, f"not applied by every watcher: {seen}"
        time.sleep(0.02)  # poll interval, not a wait for an outcome


def connections(pid: int, port: int) -> int:
    """Established TCP connections from process ``pid`` to ``port`` (``ss -tnp``)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return sum(1 for line in out.splitlines() if re.search(rf"pid={pid},", line))


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    assert ETCD is not None
    server = Etcd(ETCD, str(tmp_path), "test")
    try:
        yield server
    finally:
        server.stop()


def test_watchers_list_watch_resume_and_relist(etcd: Etcd) -> None:
    client = EtcdClient(etcd.target)
    proc: Proc | None = None
    try:
        loaded = client.put_many([(etcd_key(rec(i)), etcd_value(rec(i))) for i in range(20)])
        assert loaded > 1
        revision, items = client.range_prefix(PREFIX)
        assert revision == loaded
        assert len(items) == 20

        cmd = [sys.executable, "-m", "bench.etcd_watchers", "--target", etcd.target]
        cmd += ["--count", str(WATCHERS), "--prefix", PREFIX, "--timeout", "30"]
        proc = Proc(cmd, "SYNCED ")
        assert int(proc.fields[2]) == 20

        if shutil.which("ss") is not None:  # one TCP connection per watcher, none shared
            port = int(etcd.target.rsplit(":", 1)[1])
            assert connections(proc.p.pid, port) >= WATCHERS

        # a live event reaches every watcher, once each
        rev = put(client, 20)
        assert rev == loaded + 1
        assert len(wait_applied(proc, {rev})[rev]) == WATCHERS

        # resume: new connections, watch from the last revision seen + 1, no Range; puts
        # not yet delivered when the old connections close (racing the reconnect) and puts
        # after it arrive through the watch, none twice
        racing = {put(client, 21), put(client, 22)}
        resumed = proc.ask("reconnect resume")
        assert "error" not in resumed, resumed
        assert resumed["keys"] >= 21
        after = put(client, 23)
        seen = wait_applied(proc, racing | {after})
        assert all(len(seen[r]) == WATCHERS for r in racing | {after}), seen

        # fresh: new consumers list everything again, then watch on
        fresh = proc.ask("reconnect fresh")
        assert "error" not in fresh, fresh
        assert fresh["keys"] == 24
        assert fresh["s"] > 0
        last = put(client, 24)
        assert len(wait_applied(proc, {last})[last]) == WATCHERS

        proc.stop()  # stdin closed: every watcher cancelled, a clean exit
        assert proc.p.returncode == 0
    finally:
        if proc is not None:
            proc.stop()
        client.close()
