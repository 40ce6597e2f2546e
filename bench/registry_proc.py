"""A ``tarscascade registry`` process for benchmarks: started on loopback ports from the
OS, its TARS port and HTTP address read from what it prints, its log kept in a file."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench.bench_cascade import Watchdog


class Registry:
    """A ``tarscascade registry`` process; its log in ``log_dir``."""

    LINE = re.compile(r"^registry\s+(TARS|HTTP)\s+(\S+)")

    def __init__(
        self, name: str, db: str, log_dir: str, wd: Watchdog, extra: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.log = Path(log_dir) / f"registry-{name}-{secrets.token_hex(3)}.log"
        cmd = [sys.executable, "-m", "tarscascade.cli", "registry", "--db", db, "--init"]
        cmd += ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]
        cmd += extra
        with open(self.log, "ab") as log:
            self.p = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True
            )
        wd.add(self.p)
        self.tars_port = 0
        self.http = ""
        self.killed_at: float | None = None

    def wait_ready(self) -> None:
        """Read the addresses it prints (the watchdog bounds the wait)."""
        assert self.p.stdout is not None
        while not (self.tars_port and self.http):
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"registry {self.name} did not start:\n{self.log_tail()}")
            m = self.LINE.match(line)
            if m and m.group(1) == "TARS":
                self.tars_port = int(m.group(2).rsplit(":", 1)[1])
            elif m:
                self.http = m.group(2)

    def cpu_s(self) -> float:
        t = psutil.Process(self.p.pid).cpu_times()
        return float(t.user + t.system)

    def kill(self) -> float:
        """SIGKILL; returns the time it was sent."""
        t = time.time()
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.killed_at = t
        return t

    def terminate(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()

    def stop(self) -> None:
        self.terminate()
        try:
            self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        if self.p.stdout is not None:
            self.p.stdout.close()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def log_summary(self) -> dict[str, Any]:
        """Warnings and errors it logged, counted by message (numbers blanked)."""
        counts: Counter[str] = Counter()
        examples: dict[str, str] = {}
        levels: Counter[str] = Counter()
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            m = re.match(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (.*)$", line)
            if m:
                levels[m.group(1)] += 1
                key = re.sub(r"\d+", "N", m.group(2))[:200]
                counts[key] += 1
                examples.setdefault(key, line[:300])
        top = counts.most_common(8)
        return {
            "warnings": levels["WARNING"],
            "errors": levels["ERROR"] + levels["CRITICAL"],
            "messages": dict(top),
            "first_of_each": [examples[k] for k, _ in top],
        }
