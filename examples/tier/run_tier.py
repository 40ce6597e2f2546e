"""Start a registry tier on one machine: N registries on one database, M node agents
spread over them (each lists every registry, a different one first). Ctrl-C stops all.

    python examples/tier/run_tier.py --db postgresql://postgres@127.0.0.1/tc_tier --init
    python examples/tier/run_tier.py --db mysql://root@127.0.0.1/tc_tier --registries 3 --nodes 6

Prints one line per process (``registry i TARS … HTTP …`` / ``node nK TARS … first upstream
…``), then ``READY`` once every process is up. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "tarscascade.cli"]


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )


def _first_lines(proc: subprocess.Popen[str], n: int) -> list[str]:
    assert proc.stdout is not None
    lines = [proc.stdout.readline().rstrip() for _ in range(n)]
    if not all(lines):
        raise SystemExit(f"a process exited early: {' '.join(map(str, proc.args))}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--db",
        default=os.environ.get("TARSCASCADE_DB", ""),
        help="MySQL/MariaDB or PostgreSQL URL (or TARSCASCADE_DB)",
    )
    ap.add_argument("--init", action="store_true", help="create the schema if missing")
    ap.add_argument("--registries", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--node-timeout", type=float, default=10.0)
    ap.add_argument("--dir", type=Path, default=None, help="logs and node data (default: temp)")
    opts = ap.parse_args()
    if not opts.db:
        ap.error("give --db (or TARSCASCADE_DB): a MySQL/MariaDB or PostgreSQL database URL")
    work = opts.dir or Path(tempfile.mkdtemp(prefix="tc-tier-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARSCASCADE_")}
    env["TARSCASCADE_DB"] = opts.db  # never on a command line: `ps` would show a password
    env["PYTHONUNBUFFERED"] = "1"
    procs: list[subprocess.Popen[str]] = []

    def stop(*_: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        tars_ports: list[int] = []
        for i in range(opts.registries):
            args = ["registry", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]
            args += ["--node-timeout", str(opts.node_timeout)]
            if opts.init and i == 0:
                args.append("--init")
            p = _spawn(args, work / f"registry-{i}.log", env)
            procs.append(p)
            tars, http = _first_lines(p, 2)
            tars_ports.append(int(tars.split()[2].rsplit(":", 1)[1]))
            print(f"registry {i}  TARS 127.0.0.1:{tars_ports[-1]}  HTTP {http.split()[-1]}")
        for k in range(opts.nodes):
            first = k % opts.registries
            order = [tars_ports[(first + j) % opts.registries] for j in range(opts.registries)]
            upstream = ",".join(f"127.0.0.1:{port}" for port in order)
            args = ["agent", "--name", f"n{k}", "--upstream", upstream]
            args += ["--listen", "127.0.0.1:0", "--http", "off"]
            args += ["--data-dir", str(work / f"n{k}")]
            p = _spawn(args, work / f"n{k}.log", env)
            procs.append(p)
            tars_line = _first_lines(p, 1)[0]
            print(f"node n{k}  TARS {tars_line.split()[2]}  first upstream registry {first}")
        print(f"logs in {work}")
        print("READY", flush=True)
        while True:  # until Ctrl-C; a registry you kill meanwhile stays dead (try it)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
