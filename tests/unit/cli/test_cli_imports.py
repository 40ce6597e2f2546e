"""The CLI's start-up stays light: command modules import no server stack (the timing is
the benchmark's, ``python -m bench.bench_cli``; this guards the cause)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fastapi", "uvicorn", "sqlalchemy", "httpx", "rich", "pydantic", "asyncio", "starlette")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(out.split())


def test_building_the_command_tree_imports_no_server_stack() -> None:
    loaded = _modules_after(
        "from typer.main import get_command\nfrom tarscascade.cli.app import app\nget_command(app)"
    )
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY)
    ours = {m for m in loaded if m.startswith("tarscascade.")}
    assert all(m.startswith("tarscascade.cli") for m in ours), sorted(ours)


def test_version_answers_before_typer_is_imported() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tarscascade.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.startswith("tarscascade ")
    assert " typer" not in out.stderr  # importtime lists every module imported
