"""CLI start-up: wall time of ``tarscascade --version`` and ``--help`` (target <= 150 ms).

Each command runs as a fresh process (the console script of this venv), repeated; the
figure is the median, next to ``python -c pass`` measured in the same run (the floor
no CLI can go below). A subcommand's ``--help`` is reported too: typer 0.29 imports
pydantic to coerce its own help flag there, which no lazy import on our side avoids.

    .venv/bin/python -m bench.bench_cli [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import cli, median, verdict

TARGET_MS = 150.0
SCRIPT = Path(sys.executable).with_name("tarscascade")
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "tarscascade --version": [str(SCRIPT), "--version"],
    "tarscascade --help": [str(SCRIPT), "--help"],
    "tarscascade endpoint add --help": [str(SCRIPT), "endpoint", "add", "--help"],
}
TARGETED = ("tarscascade --version", "tarscascade --help")


def _once(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) * 1000


def run(quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 21
    for argv in COMMANDS.values():  # warm the page cache: the figure is start-up, not disk
        _once(argv)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved, so a burst of load hits every command alike
        for name, argv in COMMANDS.items():
            samples[name].append(_once(argv))
    floor = median(samples["python -c pass"])
    out: dict[str, Any] = {"runs": runs}
    for name, values in samples.items():
        ms = median(values)
        row: dict[str, Any] = {
            "median_ms": round(ms, 1),
            "min_ms": round(min(values), 1),
            "over_python_ms": round(ms - floor, 1),
        }
        if name in TARGETED:
            row["target"] = verdict(ms, TARGET_MS)
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    return cli("cli", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
