"""The pure layers (model, knowledge) never import socket, subprocess or asyncio."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ppsguard"
# Whole packages that are pure, and the pure cores of the I/O layers: parsers that take text or
# bytes, evaluators, analysers and renderers that take values and return values.
PURE_PACKAGES = ("model", "knowledge", "registry", "policy", "firewall/render", "report")
PURE_MODULES = (
    "inventory/procfs.py",
    "firewall/live.py",
    "scan/identify/classify.py",
    "scan/identify/escape.py",
    "scan/identify/handshakes.py",
    "scan/identify/signatures.py",
    "audit/advise.py",
    "audit/baseline.py",
    "audit/drift.py",
    "audit/views.py",
)
FORBIDDEN = {"socket", "subprocess", "asyncio"}


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def pure_files() -> list[Path]:
    packages = [path for package in PURE_PACKAGES for path in (SRC / package).rglob("*.py")]
    return sorted(packages + [SRC / module for module in PURE_MODULES])


def test_there_are_pure_files_to_check() -> None:
    files = {path.relative_to(SRC).as_posix() for path in pure_files()}
    assert "model/net.py" in files and "knowledge/ranges.py" in files


@pytest.mark.parametrize("path", pure_files(), ids=lambda path: path.relative_to(SRC).as_posix())
def test_pure_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = {name for name in imported_modules(tree) if name.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "source",
    ["import socket", "import asyncio.tasks", "from subprocess import run", "import os, socket"],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    names = imported_modules(ast.parse(source))
    assert any(name.split(".")[0] in FORBIDDEN for name in names)
