"""Layers import downward only (architecture.md §4, conventions.md Part 2).

Parses every module under src/tarscascade and checks each ``tarscascade.*`` import
against the allowed table; ``wire`` may import only the standard library (and never
asyncio or socket).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tarscascade"

# layer -> layers it may import (besides itself). The base modules (errors, model) are
# importable by every layer; `testing` only by tests and the composition root.
BASE = {"errors", "model", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "transport": {"wire"},
    "store": set(),
    "catalog": {"wire"},
    "client": {"transport", "wire"},
    "auth": {"wire"},
    "cascade": {"auth", "catalog", "transport", "wire"},
    "registry": {"auth", "catalog", "cascade", "store", "transport", "wire"},
    "node": {"auth", "catalog", "cascade", "client", "transport", "wire"},
    # the db_tars importer: a writer into the registry's store, reading db_tars
    "dbtars": {"registry", "catalog", "store", "wire"},
    "admin": {"auth", "registry", "node", "cascade", "catalog", "store", "transport", "wire"},
    "cli": {
        "auth",
        "dbtars",
        "admin",
        "registry",
        "node",
        "cascade",
        "client",
        "catalog",
        "store",
        "transport",
        "wire",
    },
    "testing": set(),
    "errors": set(),
    "model": set(),
    "__init__": set(),
}
FORBIDDEN_IN_WIRE = {"asyncio", "socket", "selectors", "threading"}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    pkg = ["tarscascade", *path.relative_to(SRC).with_suffix("").parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                base = pkg[: len(pkg) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


MODULES = sorted(SRC.rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) > 10
    assert {_layer(m) for m in MODULES} >= {"wire", "transport", "cli"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_only(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"{layer} is not a known layer: add it to the table"
    allowed = ALLOWED[layer] | BASE | {layer}
    bad = []
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] != "tarscascade":
            continue
        target = parts[1] if len(parts) > 1 else "__init__"
        if target not in allowed:
            bad.append(f"line {line}: {name} ({layer} -> {target})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


# Inside the layers: the registry's admin surface (registry/admin_ops.py: validation,
# write results, drains for the admin API; registry/batch.py, built on it) sits on top of
# the registry, and the node's HTTP API sits on the node only. Errors live in errors.py,
# record builders in model.py.
ADMIN_SURFACE = "tarscascade.registry.admin_ops"
ADMIN_SURFACE_FILES = ("admin_ops.py", "batch.py")
NODE_SIDE_ADMIN = ("admin/node_api.py", "admin/node_metrics.py", "admin/http.py")


@pytest.mark.parametrize(
    "path",
    [m for m in MODULES if _layer(m) == "registry" and m.name not in ADMIN_SURFACE_FILES],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_the_registry_does_not_import_its_admin_surface(path: Path) -> None:
    surface = {ADMIN_SURFACE, *(f"tarscascade.registry.{f[:-3]}" for f in ADMIN_SURFACE_FILES)}
    bad = [f"line {line}: {name}" for line, name in _imports(path) if name in surface]
    assert not bad, "registry -> admin surface (move it to model or errors):\n" + "\n".join(bad)


@pytest.mark.parametrize("rel", NODE_SIDE_ADMIN)
def test_the_node_http_api_does_not_import_the_registry(rel: str) -> None:
    path = SRC / rel
    assert path.exists(), rel
    bad = [
        f"line {line}: {name}"
        for line, name in _imports(path)
        if name == "tarscascade.registry" or name.startswith("tarscascade.registry.")
    ]
    assert not bad, "node HTTP API -> registry:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "path",
    [m for m in MODULES if _layer(m) == "wire"],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_wire_uses_only_the_standard_library(path: Path) -> None:
    for line, name in _imports(path):
        top = name.split(".")[0]
        if top in ("tarscascade", "__future__"):
            if top == "tarscascade":
                assert name.split(".")[1] in ("wire", "errors"), f"line {line}: {name}"
            continue
        assert top in sys.stdlib_module_names, f"line {line}: third-party import {name}"
        assert top not in FORBIDDEN_IN_WIRE, f"line {line}: wire is sans-IO, imports {name}"


@pytest.mark.parametrize(
    "path",
    [m for m in MODULES if _layer(m) == "auth"],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_auth_uses_only_the_standard_library(path: Path) -> None:
    # credentials are checked by every layer: their rules must not pull any other in
    for line, name in _imports(path):
        top = name.split(".")[0]
        if top == "tarscascade":
            assert name.split(".")[1] in ("auth", "errors", "wire"), f"line {line}: {name}"
        elif top != "__future__":
            assert top in sys.stdlib_module_names, f"line {line}: third-party import {name}"


def test_the_codec_is_the_bottom_of_wire() -> None:
    # wire/struct.py generates code on top of wire/codec.py: the codec imports no other
    # wire module, so the two can never import each other
    path = SRC / "wire" / "codec.py"
    ours = [name for _, name in _imports(path) if name.startswith("tarscascade.")]
    assert ours == ["tarscascade.errors"], ours
