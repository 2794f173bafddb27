"""Import rules: the pure core never reaches socket, subprocess or asyncio; no import cycles.

The import graph is read from the source with `ast`: every `import` and `from ... import`,
at module level or inside a function, relative or absolute, resolved to the ppsguard module it
names (`from ppsguard.audit import advise` is an edge to `ppsguard.audit.advise`, `from
ppsguard.audit.views import Listener` to `ppsguard.audit.views`). A parent package's
`__init__` is not an edge of its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ppsguard"
# Whole packages that are pure, and the pure cores of the I/O layers: parsers that take text or
# bytes, evaluators, analysers and renderers that take values and return values.
PURE_PACKAGES = (
    "model",
    "knowledge",
    "registry",
    "policy",
    "firewall/render",
    "report",
    "audit/rules",
)
PURE_MODULES = (
    "inventory/procfs.py",
    "inventory/records.py",
    "monitor/alerts.py",
    "monitor/attempts.py",
    "monitor/communityid.py",
    "monitor/ctnetlink.py",
    "monitor/detectors.py",
    "monitor/expectations.py",
    "monitor/nflog_wire.py",
    "monitor/records.py",
    "monitor/trw.py",
    "monitor/window.py",
    "firewall/live.py",
    "flows/audit.py",
    "flows/audit_batch.py",
    "flows/audit_columns.py",
    "flows/partial.py",
    "flows/scans.py",
    "flows/batch.py",
    "flows/capture.py",
    "flows/chunks.py",
    "flows/chunktable.py",
    "flows/columns.py",
    "flows/decode.py",
    "flows/logs.py",
    "flows/netlog.py",
    "flows/records.py",
    "flows/table.py",
    "firewall/fate.py",
    "firewall/packets.py",
    "firewall/legacy.py",
    "firewall/ipchains.py",
    "firewall/coexist.py",
    "scan/identify/classify.py",
    "scan/identify/escape.py",
    "scan/identify/families.py",
    "scan/identify/handshakes.py",
    "scan/identify/handshakes_more.py",
    "scan/identify/ports.py",
    "scan/identify/shake.py",
    "scan/identify/signatures.py",
    "scan/identify/merge.py",
    "scan/scope.py",
    "scan/targets.py",
    "scan/links.py",
    "scan/engines/discovery_packets.py",
    "audit/advise.py",
    "audit/baseline.py",
    "audit/context.py",
    "audit/doors.py",
    "audit/drift.py",
    "audit/init.py",
    "audit/views.py",
    "store/documents.py",
    "store/digest.py",
    "store/history.py",
    "store/diff.py",
    "harden/units.py",
    "harden/binds.py",
    "harden/plan.py",
    "importers/rules.py",
    "importers/ipset.py",
    "importers/iptables.py",
    "importers/chains.py",
    "importers/nftables.py",
    "importers/ufw.py",
    "importers/firewalld.py",
    "importers/draft.py",
    "importers/probes.py",
    "importers/build.py",
)
FORBIDDEN = {"socket", "subprocess", "asyncio"}

Graph = Mapping[str, frozenset[str]]


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def module_name(path: Path) -> str:
    """`src/ppsguard/audit/rules/__init__.py` -> `ppsguard.audit.rules`."""
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def internal_imports(tree: ast.AST, me: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The ppsguard modules `tree` (the module `me`) imports, anywhere in its body."""
    modules = set(known)

    def nearest(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [nearest(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = me if is_package else me.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else nearest(base)
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t and t != me)
    return found


@cache
def import_graph() -> Graph:
    paths = {module_name(path): path for path in SRC.rglob("*.py")}
    return {
        name: frozenset(
            internal_imports(
                ast.parse(path.read_text(encoding="utf-8"), filename=str(path)),
                name,
                path.name == "__init__.py",
                paths,
            )
        )
        for name, path in paths.items()
    }


def find_cycles(graph: Graph) -> list[list[str]]:
    """Every import cycle, as one closed path per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative Tarjan: (node, iterator over its successors)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_closed_path(graph, component) for component in components]


def _closed_path(graph: Graph, component: list[str]) -> list[str]:
    """A path a -> ... -> a inside one strongly connected component, for the message."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return [start, start]


def reachable(graph: Graph, start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def pure_files() -> list[Path]:
    packages = [path for package in PURE_PACKAGES for path in (SRC / package).rglob("*.py")]
    return sorted(packages + [SRC / module for module in PURE_MODULES])


def _io_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {name for name in imported_modules(tree) if name.split(".")[0] in FORBIDDEN}


def test_there_are_pure_files_to_check() -> None:
    files = {path.relative_to(SRC).as_posix() for path in pure_files()}
    assert "model/net.py" in files and "knowledge/ranges.py" in files
    assert "audit/rules/case.py" in files
    assert all(path.is_file() for path in pure_files())


@pytest.mark.parametrize("path", pure_files(), ids=lambda path: path.relative_to(SRC).as_posix())
def test_pure_module_imports_no_io(path: Path) -> None:
    bad = _io_imports(path)
    assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", pure_files(), ids=lambda path: path.relative_to(SRC).as_posix())
def test_pure_module_reaches_no_io_through_other_modules(path: Path) -> None:
    graph = import_graph()
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    through = sorted(
        f"{name} ({', '.join(sorted(_io_imports(files[name])))})"
        for name in reachable(graph, module_name(path))
        if _io_imports(files[name])
    )
    assert not through, f"{path.relative_to(SRC)} reaches I/O through {through}"


def test_there_are_no_import_cycles() -> None:
    graph = import_graph()
    assert "ppsguard.audit.rules.case" in graph["ppsguard.audit.rules.listeners"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "source",
    ["import socket", "import asyncio.tasks", "from subprocess import run", "import os, socket"],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    names = imported_modules(ast.parse(source))
    assert any(name.split(".")[0] in FORBIDDEN for name in names)


def test_graph_reads_every_kind_of_import() -> None:
    known = ["ppsguard.a", "ppsguard.a.b", "ppsguard.a.c", "ppsguard.d", "ppsguard.e"]
    source = (
        "import ppsguard.d\n"
        "from ppsguard.a import b\n"
        "from . import c\n"
        "def later():\n"
        "    from ppsguard.e import something\n"
    )
    found = internal_imports(ast.parse(source), "ppsguard.a.x", False, known)
    assert found == {"ppsguard.d", "ppsguard.a.b", "ppsguard.a.c", "ppsguard.e"}


def test_cycle_finder_reports_each_cycle_as_a_closed_path() -> None:
    graph = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a", "d"}),
        "d": frozenset(),
        "e": frozenset({"e"}),
    }
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": frozenset({"b"}), "b": frozenset()}) == []
