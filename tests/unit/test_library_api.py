"""`import ppsguard`: the library's names, complete in `__all__`, loaded lazily, and working.

Like httpx's tests/test_exported_members.py: every public name of the package is in `__all__`
and every name in `__all__` resolves. `import ppsguard` itself must load nothing else (the `pps`
start-up depends on it).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import ppsguard
import ppsguard.api

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed-building.yaml"


def fresh(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout)


def test_import_ppsguard_loads_nothing_else() -> None:
    seen = fresh(
        "import json, sys, types, ppsguard; print(json.dumps(["
        "[n for n, v in vars(ppsguard).items()"
        " if not n.startswith('_') and not isinstance(v, types.ModuleType)],"
        "sorted(m for m in sys.modules if m.startswith('ppsguard'))]))"
    )
    assert seen == [[], ["ppsguard", "ppsguard.version"]]


def test_all_is_complete_and_every_name_resolves() -> None:
    names = fresh(
        "import json, types, ppsguard\n"
        "for name in ppsguard.__all__: getattr(ppsguard, name)\n"
        "print(json.dumps(sorted(n for n in dir(ppsguard) if not n.startswith('_')"
        " and not (isinstance(getattr(ppsguard, n), types.ModuleType) and n != 'scan'))))"
    )
    public = {n for n in ppsguard.__all__ if not n.startswith("_")}
    assert names == sorted(public)
    assert len(ppsguard.__all__) == len(set(ppsguard.__all__))
    assert "__version__" in ppsguard.__all__


def test_every_library_function_is_exported_from_its_home() -> None:
    import ppsguard.inventory.collect
    import ppsguard.registry.load
    import ppsguard.scan.engine

    own = {
        name
        for name, value in vars(ppsguard.api).items()
        if callable(value)
        and getattr(value, "__module__", "") == "ppsguard.api"
        and not name.startswith("_")
    }
    assert own | {"scan"} == set(ppsguard.api.__all__)
    assert set(ppsguard.api.__all__) <= set(ppsguard.__all__)
    for name in set(ppsguard.api.__all__) - {"scan"}:
        assert getattr(ppsguard, name) is getattr(ppsguard.api, name)
    home = sys.modules  # (ppsguard.inventory.collect is also a function's name there)
    assert ppsguard.collect_sockets is home["ppsguard.inventory.collect"].collect
    assert ppsguard.load_registry is home["ppsguard.registry.load"].load_registry
    assert ppsguard.ScanOptions is home["ppsguard.scan.engine"].ScanOptions


def test_loading_a_registry_does_not_load_the_scanner() -> None:
    loaded = fresh(
        "import json, sys, ppsguard; ppsguard.load_registry('examples/seed-building.yaml');"
        "ppsguard.explain('examples/seed-building.yaml', source='198.18.0.1', port=21);"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ppsguard.'))))"
    )
    assert isinstance(loaded, list) and "ppsguard.api" in loaded
    assert not [
        m
        for m in loaded
        if m.startswith(("ppsguard.scan.", "ppsguard.audit", "ppsguard.inventory"))
    ]


def test_scan_is_callable_whatever_python_found_first() -> None:
    import ppsguard.scan.engine  # the package attribute is now the scan package

    assert isinstance(ppsguard.scan, types.ModuleType) and callable(ppsguard.scan)
    assert inspect.iscoroutinefunction(ppsguard.scan_async)
    assert ppsguard.scan_async is ppsguard.scan.scan is ppsguard.scan.engine.scan
    options = ppsguard.ScanOptions(engine="connect", skip_discovery=True, confirm=False)
    blocking = ppsguard.scan(["127.0.0.1"], "1-3", options=options)
    assert sum(blocking.hosts[0].summary.values()) == 3
    from ppsguard import scan

    assert scan(["127.0.0.1"], "4", options=options).hosts[0].address is not None


def test_registry_or_path_everywhere() -> None:
    registry = ppsguard.load_registry(SEED)
    by_path = ppsguard.explain(SEED, source="198.18.0.50", port=110)
    by_registry = ppsguard.explain(registry, source="198.18.0.50", port=110, protocol="tcp")
    assert by_path == by_registry and by_path.verdict == "deny"
    assert ppsguard.compile_policy(SEED) == ppsguard.compile_policy(registry)
    for given in (registry, SEED, str(SEED)):
        run = ppsguard.audit_machine(given)
        assert run.report.host == "building" and run.report.registry == str(SEED)


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(ppsguard.UsageError, match="source needs an IPv4 or IPv6 address"):
        ppsguard.explain(SEED, source="not-an-address", port=22)
    with pytest.raises(ppsguard.InputError):
        ppsguard.load_registry(ROOT / "tests" / "samples" / "bad-registries" / "unknown-role.yaml")
    with pytest.raises(ppsguard.UsageError, match="unknown protocol"):
        ppsguard.explain(SEED, source="198.18.0.1", port=22, protocol="tpc")
    with pytest.raises(ppsguard.UsageError, match="unknown target"):
        ppsguard.compile_policy(SEED, target="pf")
