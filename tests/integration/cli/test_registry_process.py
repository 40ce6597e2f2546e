"""`tarscascade registry` as a real process: starts, serves, refuses unsafe binds, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "tarscascade.cli"]


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "registry", "--db", f"sqlite:///{tmp_path}/r.db", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def test_registry_process_serves_and_stops_on_sigint(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]  # blocks until printed (or EOF)
        assert lines[0].startswith("registry  TARS  127.0.0.1:"), lines
        http = lines[1].split()[-1]
        tars_port = lines[0].split()[2].rsplit(":", 1)[1]
        assert (
            lines[2].strip()
            == f"locator   tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {tars_port}"
        )
        env = {**os.environ, "TARSCASCADE_REGISTRY": http}
        add = subprocess.run(
            [*CLI, "endpoint", "add", "A.B.Obj", "tcp -h 10.0.0.1 -p 1000"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert add.returncode == 0, add.stderr
        status = subprocess.run(
            [*CLI, "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert json.loads(status.stdout)["revision"] == 1
        resolve = subprocess.run(
            [*CLI, "resolve", "A.B.Obj", "--via", f"127.0.0.1:{tars_port}", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert resolve.returncode == 0, resolve.stderr
        assert "10.0.0.1" in resolve.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("http", ["0.0.0.0:0", "10.255.255.1:0"])
def test_registry_refuses_admin_writes_on_non_loopback_without_token(
    tmp_path: Path, http: str
) -> None:
    proc = _start(tmp_path, "--listen", "127.0.0.1:0", "--http", http)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "token" in err.lower()


@pytest.mark.parametrize("how", ["--admin-token", "--token-file"])
def test_the_registry_takes_its_token_by_the_old_name_or_from_a_file(
    tmp_path: Path, how: str
) -> None:
    secret = "s3cret-for-tests"
    (tmp_path / "tok").write_text(secret + "\n")
    # The one command line in the suite with a token on it: the deprecated --admin-token
    # must keep working (and say it is deprecated); the value is a throwaway.
    given = [how, secret if how == "--admin-token" else str(tmp_path / "tok")]
    proc = _start(tmp_path, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", *given)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        http = lines[1].split()[-1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARSCASCADE_")}
        env["TARSCASCADE_REGISTRY"] = http

        def setting(token: str | None = None) -> subprocess.CompletedProcess[str]:
            given = {"TARSCASCADE_TOKEN": token} if token else {}
            return subprocess.run(
                [*CLI, "setting", "set", "a", "1"],
                env=env | given,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        refused = setting()
        assert refused.returncode == 1
        assert "HTTP 401" in refused.stderr
        assert setting(secret).returncode == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
        deprecated = "--admin-token is deprecated: use --token" in err
        assert deprecated == (how == "--admin-token"), err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
