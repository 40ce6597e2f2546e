"""``examples/tier/run_tier.py`` works as its README says: three registries and nodes on
one database server, every node listed alive by any registry, a drain through one
registry acknowledged by all, and Ctrl-C stops every process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.cli.test_cli import ok, ok_json, run_cli
from tests.integration.cli.test_drain_cli import json_lines

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tier" / "run_tier.py"
NODES = 3


def _start(db_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARSCASCADE_")}
    env["TARSCASCADE_DB"] = db_url  # as the README says: no password on a command line
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--init", "--nodes", str(NODES), "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


async def test_the_tier_example(db_url: str, backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        pytest.skip("the example runs a tier on a database server")
    proc = _start(db_url, tmp_path)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while not lines or lines[-1] != "READY":
            assert time.monotonic() < deadline, lines
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, lines  # exited early
            lines.append(line.rstrip())
        https = [ln.split()[-1] for ln in lines if ln.startswith("registry ")]
        assert len(https) == 3, lines
        children = psutil.Process(proc.pid).children()
        assert len(children) == 3 + NODES

        async def all_alive(url: str) -> bool:
            nodes = ok_json(await run_cli("nodes", "--json", env={"TARSCASCADE_REGISTRY": url}))
            alive = [n for n in nodes["nodes"] if n["present_state"] == "active"]
            seen = [n for n in alive if n["connected"] or n["tier_seen_age_s"] is not None]
            return len(seen) == NODES

        for url in https:  # every registry lists every node alive, wherever it is connected
            deadline = time.monotonic() + 60
            while not await all_alive(url):
                assert time.monotonic() < deadline, f"nodes at {url}"
                await asyncio.sleep(0.5)
        env0 = {"TARSCASCADE_REGISTRY": https[0]}
        ok(await run_cli("endpoint", "add", "App.S.Obj", "tcp -h 10.0.0.1 -p 1", env=env0))
        ok(await run_cli("endpoint", "add", "App.S.Obj", "tcp -h 10.0.0.2 -p 1", env=env0))
        out = ok(await run_cli("drain", "App.S.Obj", "tcp -h 10.0.0.1 -p 1", "--json", env=env0))
        result = json_lines(out)[-1]
        assert result["complete"] is True
        assert result["nodes"] == [f"n{k}" for k in range(NODES)]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    assert proc.returncode == 0
    assert all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children)
