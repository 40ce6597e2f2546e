"""What a new user does first, end to end: ``tarscascade up`` (what ``make up`` runs), open
the printed URL in a real Chromium, watch a second node join on the page without a
reload, drain an endpoint from the page and see every node acknowledge it.

Everything is a real process over real TCP: the console script ``up`` (on ports from the
OS instead of the standard ones), a second ``tarscascade agent``, the CLI for the first
endpoints. Screenshots go beside the dashboard tests' (``up-join``, ``up-drain``).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.admin.chromium import needs_chromium, shot, text

SCRIPT = str(Path(sys.executable).with_name("tarscascade"))
OBJ = "Test.HelloServer.HelloObj"
LINE_WAIT_S = 60.0
#: `up` on ports from the OS instead of the standard ones (the only difference from `make up`)
ANY_PORTS = [f"--{x}-port=0" for x in ("registry", "http", "node", "node-http")]
pytestmark = [pytest.mark.slow, needs_chromium]


class Lines:
    """A process's stdout, line by line, read in a thread (so a wait is bounded)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        stream = proc.stdout
        threading.Thread(target=lambda: [self._q.put(x) for x in stream], daemon=True).start()

    def until(self, prefix: str) -> str:
        deadline = time.monotonic() + LINE_WAIT_S
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line starting {prefix!r}: {self.seen}") from None
            self.seen.append(line)
            if line.strip().startswith(prefix):
                return line.strip()


def _stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
    return proc.returncode


def _api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as rsp:
        return json.loads(rsp.read())


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    argv = [SCRIPT, "up", "--dir", str(tmp_path / ".tarscascade"), "--node-name", "host-a"]
    proc = subprocess.Popen(
        [*argv, *ANY_PORTS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc, Lines(proc)
    finally:
        assert _stop(proc) == 0  # Ctrl-C stops both cleanly


def test_up_then_a_node_joins_live_and_a_drain_from_the_page_reaches_every_node(
    up: tuple[subprocess.Popen[str], Lines], page: Any, tmp_path: Path
) -> None:
    _proc, out = up
    tars_port = out.until("registry  TARS").split()[2].rsplit(":", 1)[1]
    url = out.until("Open the dashboard:").split()[-1].rstrip("/")
    out.until("locator =")  # printed once the node has synced
    for port in (1001, 1002):
        argv = [SCRIPT, "endpoint", "add", OBJ, f"tcp -h 10.0.0.1 -p {port}", "--node", "host-a"]
        add = subprocess.run(
            [*argv, "--registry", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert add.returncode == 0, add.stderr

    page.goto(url + "/")
    page.wait_for_selector("#live.on")
    assert text(page, '[data-k="nodes.total"]') == "1"

    argv = [SCRIPT, "agent", "--name", "host-b", "--upstream", f"127.0.0.1:{tars_port}"]
    agent = subprocess.Popen(
        [*argv, "--listen", "127.0.0.1:0", "--http", "off", "--data-dir", str(tmp_path / "b")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # the page shows the new node without a reload (the SSE feed)
        page.wait_for_function(
            "() => document.querySelector('[data-k=\"nodes.total\"]').textContent.trim() === '2'"
        )
        page.wait_for_function(
            "() => document.querySelector('#count-current').textContent.trim() === '2'"
        )
        shot(page, "up-join")

        page.goto(url + f"/ui/objects/{OBJ}")
        page.locator('#endpoints tr[data-port="1001"] button.drain').click()
        page.wait_for_selector('#drain[data-done="complete"]')
        assert text(page, "#drain-count") == "2 / 2"
        shot(page, "up-drain")
        kept = _api(url + "/v1/drains")["drains"][0]
        assert kept["result"]["complete"] is True
        assert sorted(kept["result"]["acked"]) == ["host-a", "host-b"]
        ep = _api(url + f"/v1/objects/{OBJ}/endpoints/10.0.0.1/1001")
        assert ep["setting_state"] == "inactive"
    finally:
        assert _stop(agent) == 0
