"""Golden models: each example registry parses (and compiles, per host) into the recorded JSON.

Regenerate after an intended change with PPSGUARD_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import load_registry
from ppsguard.report.jsonout import dumps_json, to_jsonable

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "registry"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.yaml"))


def _model(name: str) -> object:
    registry = load_registry(f"examples/{name}.yaml")
    return {
        "registry": to_jsonable(registry),
        "policies": {
            h.name: to_jsonable(compile_host_policy(registry, h.name)) for h in registry.hosts
        },
    }


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_golden(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # file names in the model are relative to the repository
    model = _model(name)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("PPSGUARD_UPDATE_GOLDEN") == "1":
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(dumps_json(model) + "\n", encoding="utf-8")
        tmp.replace(path)
    assert path.exists(), f"no golden file for {name}; run with PPSGUARD_UPDATE_GOLDEN=1"
    assert json.loads(dumps_json(model)) == json.loads(path.read_text(encoding="utf-8"))


def test_every_example_has_a_golden_file() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == EXAMPLES
