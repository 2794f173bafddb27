"""dump_registry on the examples: the re-parsed registry compiles to the same rules per host,
and the registry's core modules stay pure (no socket, subprocess or asyncio)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.model.registry import HostPolicy
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.dump import dump_registry
from ppsguard.registry.load import load_registry, parse_registry

ROOT = Path(__file__).resolve().parents[2]


def _rules(policy: HostPolicy) -> list[tuple[object, ...]]:
    """Rules without their source locations (the dumped file has other line numbers)."""
    return [
        (r.entry_id, r.kind, r.action, r.log, r.protocol, r.ports, r.sources, r.destinations)
        for r in policy.rules
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_round_trip(path: Path) -> None:
    original = load_registry(path)
    again = parse_registry(dump_registry(original), "dumped.yaml")
    assert [e.id for e in again.entries()] == [e.id for e in original.entries()]
    for host in original.hosts:
        a = compile_host_policy(original, host.name)
        b = compile_host_policy(again, host.name)
        assert _rules(a) == _rules(b)
        assert (a.default_action, a.default_log) == (b.default_action, b.default_log)


def test_core_modules_are_pure() -> None:
    modules = [
        "ppsguard.model.registry",
        "ppsguard.registry.load",
        "ppsguard.policy.compile",
        "ppsguard.policy.evaluate",
        "ppsguard.policy.bulk",
        "ppsguard.policy.lint",
        "ppsguard.policy.space",
        "ppsguard.registry.dump",
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(sorted({'socket', 'subprocess', 'asyncio'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
