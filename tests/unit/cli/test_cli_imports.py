"""The CLI's start-up stays light: command modules import no server stack (the timing is
the benchmark's, ``python -m bench.bench_cli``; this guards the cause)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tarscascade.cli.app import render_root_help
from tarscascade.cli.root_help import ROOT_HELP

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


def _help(columns: int) -> subprocess.CompletedProcess[str]:
    """``tarscascade --help`` through the console script, listing every import."""
    script = Path(sys.executable).with_name("tarscascade")
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPROFILEIMPORTTIME": "1"}
    return subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=True, timeout=60, env=env
    )


def test_the_cached_root_help_is_what_click_renders() -> None:
    # fails after a change to the command tree: run `make root-help`
    assert render_root_help() == ROOT_HELP


def test_help_answers_from_the_cache_before_typer_is_imported() -> None:
    out = _help(120)
    assert out.stdout == ROOT_HELP
    assert " typer" not in out.stderr


def test_a_narrow_terminal_gets_click_wrapping_not_the_cache() -> None:
    out = _help(60)
    assert out.stdout != ROOT_HELP
    assert " typer" in out.stderr
    assert max(map(len, out.stdout.splitlines())) <= 60
    assert "Commands:" in out.stdout
