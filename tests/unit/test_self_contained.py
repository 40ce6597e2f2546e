"""No test, benchmark, script or source file reads anything outside the repository.

A fresh clone has nothing beside it: data a test needs is copied under ``tests/data``.
This file holds examples of what the check refuses, so the scan leaves it out.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()
SCANNED = ("src", "tests", "bench", "scripts", "examples")
SUFFIXES = {".py", ".sh", ".js", ".toml", ".cfg", ".ini"}
SKIP_PARTS = {"node_modules", "__pycache__"}

#: a relative path that climbs out of a folder: a quoted string starting with ../
CLIMB = re.compile(r"""["'](?:\.\.[/\\])+""")
#: the team's folder beside the repository, however it is joined
SHARED = re.compile(r"""["']shared["']\s*/|shared/reference""")
#: Path(__file__).resolve().parents[N]
PARENTS = re.compile(r"parents\[(\d+)\]")
#: ROOT.parent: one step above the repository's root
ROOT_PARENT = re.compile(r"\b[A-Z_]*ROOT\.parent\b")


def scanned_files() -> list[Path]:
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT)
            if (
                path.is_file()
                and path.suffix in SUFFIXES
                and not SKIP_PARTS & set(rel.parts)
                and path != THIS
            ):
                out.append(path)
    return out


def line_violates(rel: PurePosixPath, line: str) -> bool:
    """True when ``line`` of the file at ``rel`` (relative to the root) names a path outside."""
    # for tests/unit/wire/x.py, parents[3] is the root and parents[4] is outside it
    outside = len(rel.parts)
    return bool(
        CLIMB.search(line)
        or SHARED.search(line)
        or ROOT_PARENT.search(line)
        or any(int(m.group(1)) >= outside for m in PARENTS.finditer(line))
    )


def test_the_scan_sees_the_tree() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert "src/tarscascade/__init__.py" in files
    assert "tests/unit/wire/test_vectors.py" in files


DEEP = PurePosixPath("tests/unit/wire/x.py")


@pytest.mark.parametrize(
    "line",
    [
        'VECTORS = Path(__file__).resolve().parents[4] / "x"',
        'DIR = REPO_ROOT.parent / "elsewhere"',
        "open('../shared/reference/vectors.json')",
        "open('../../x')",
        'base / "shared" / "reference"',
    ],
)
def test_the_check_catches_outside_paths(line: str) -> None:
    assert line_violates(DEEP, line)


@pytest.mark.parametrize(
    "line",
    [
        'ROOT = Path(__file__).resolve().parents[3] / "src"',
        'DATA = Path(__file__).parent / "data"',
        "x = '..'",
    ],
)
def test_inside_paths_pass(line: str) -> None:
    assert not line_violates(DEEP, line)


def test_no_file_reads_outside_the_repository() -> None:
    bad = []
    for path in scanned_files():
        rel = PurePosixPath(path.relative_to(ROOT).as_posix())
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if line_violates(rel, line):
                bad.append(f"{rel}:{lineno}: {line.strip()}")
    assert not bad, "paths outside the repository:\n" + "\n".join(bad)
