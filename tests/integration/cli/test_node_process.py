"""`tarscascade agent` as a real process against `tarscascade registry`: sync, lookup,
the advertised address, stop; and the deprecated `tarscascade node` spelling."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

CLI = [sys.executable, "-m", "tarscascade.cli"]


def _lines(proc: subprocess.Popen[str], n: int) -> list[str]:
    assert proc.stdout is not None
    return [proc.stdout.readline() for _ in range(n)]  # blocks until printed (or EOF)


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as rsp:
        out: dict[str, object] = json.loads(rsp.read())
    return out


def test_node_process_syncs_from_the_registry_and_serves_lookups(tmp_path: Path) -> None:
    reg = subprocess.Popen(
        [
            *CLI,
            "registry",
            "--db",
            f"sqlite:///{tmp_path}/r.db",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    node = None
    log = LogLines(reg)
    try:
        r = _lines(reg, 2)
        tars_port = r[0].split()[2].rsplit(":", 1)[1]
        http = r[1].split()[-1]
        add = subprocess.run(
            [*CLI, "endpoint", "add", "A.B.Obj", "tcp -h 10.0.0.1 -p 1000", "--registry", http],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert add.returncode == 0, add.stderr
        node = subprocess.Popen(
            [
                *CLI,
                "agent",
                "--name",
                "n1",
                "--advertise",
                "10.9.8.7",
                "--upstream",
                f"127.0.0.1:{tars_port}",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--data-dir",
                str(tmp_path / "n"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        n = _lines(node, 2)
        assert n[0].startswith("node      TARS  127.0.0.1:"), n
        node_http = n[1].split()[-1]
        # a blocking lookup: returns as soon as the node holds the object (bounded by wait)
        deadline = time.monotonic() + 60
        while True:
            try:
                obj = _get(f"{node_http}/v1/objects/A.B.Obj?index=0&wait=20s")
                break
            except urllib.error.HTTPError as exc:  # 503 until the first sync lands
                if exc.code != 503 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # retry pacing for a not-yet-synced node, bounded above
        assert [e["port"] for e in obj["active"]] == [1000]  # type: ignore[union-attr]
        status = _get(f"{node_http}/status")
        assert status["stale"] is False
        # the registry records the advertised host with the port the agent bound
        node_port = n[0].split()[2].rsplit(":", 1)[1]
        listed = _get(f"{http}/v1/nodes/n1")
        assert listed["address"] == f"10.9.8.7:{node_port}", listed
        # the registry logs the join (its fleet log looks once a second: wait for it)
        log.wait_for("node_joined", "n1")
        node.send_signal(signal.SIGINT)
        assert node.wait(timeout=30) == 0
        assert (tmp_path / "n" / "replica.snapshot").exists()
        # the registry's log: JSON lines, one per fleet state change, none per request
        log.wait_for("node_left", "n1")
        lines = log.json()
        joined = [x for x in lines if x.get("event") == "node_joined"]
        assert len(joined) == 1, lines  # once, not once a second
        assert joined[0]["address"] == f"10.9.8.7:{node_port}"
        assert all({"ts", "level", "logger", "msg"} <= set(x) for x in lines)
        assert not [x for x in lines if "/v1/" in str(x["msg"])], lines  # no access log
    finally:
        for p in (node, reg):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class LogLines:
    """A process's stderr, read line by line in a thread (so a test can wait on it)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def json(self) -> list[dict[str, object]]:
        return [json.loads(x) for x in list(self.lines) if x.startswith("{")]

    def wait_for(self, event: str, node: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(x.get("event") == event and x.get("node") == node for x in self.json()):
            assert time.monotonic() < deadline, f"no {event} for {node}: {self.lines}"
            time.sleep(0.05)  # polling a log file, bounded by the deadline


def test_node_without_a_subcommand_still_runs_an_agent_with_a_note(tmp_path: Path) -> None:
    node = subprocess.Popen(
        [
            *(*CLI, "node", "--name", "old", "--upstream", "127.0.0.1:1"),
            *("--listen", "127.0.0.1:0", "--http", "off"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stderr is not None
        note = node.stderr.readline()
        assert "'tarscascade node' to run an agent is deprecated" in note
        assert "tarscascade agent" in note
        (line,) = _lines(node, 1)
        assert line.startswith("node      TARS  127.0.0.1:"), line
    finally:
        node.send_signal(signal.SIGINT)
        assert node.wait(timeout=30) == 0


def test_agent_refuses_a_wildcard_advertise_and_warns_without_one() -> None:
    p = subprocess.run(
        [*CLI, "agent", "--advertise", "0.0.0.0", "--upstream", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 2, p.stderr
    assert "--advertise" in p.stderr
