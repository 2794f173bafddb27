"""The commands end to end in a subprocess: explain, lint, schema, and the bad-registry corpus.

Each broken registry in tests/samples/bad-registries/ says what its error must contain with
`# expect:` lines; every one must give exactly one error line, exit 2, and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "samples" / "bad-registries"
SEED = ROOT / "examples" / "seed-building.yaml"


def pps(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "500", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    return [line.split("expect:", 1)[1].strip() for line in lines if line.startswith("# expect:")]


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_registry_one_clear_error(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    commands: list[tuple[str | Path, ...]] = [("registry", "validate", path)]
    if path.stem in ("unknown-network", "billion-laughs", "include-escape"):
        commands.append(("policy", "explain", path, "--from", "198.18.0.1", "--to-port", "22/tcp"))
        commands.append(("policy", "lint", path))
    for args in commands:
        result = pps(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert result.stdout == ""
        for text in expected:
            assert text in lines[0]


def test_hundred_megabyte_registry_refused(tmp_path: Path) -> None:
    big = tmp_path / "huge.yaml"
    with big.open("wb") as fh:
        fh.write(b"hosts:\n")
        fh.truncate(100 * 1024 * 1024)
    result = pps("registry", "validate", big)
    assert result.returncode == 2
    assert "larger than" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_explain_json_has_exactly_its_five_keys_and_its_schema() -> None:
    result = pps(
        "policy", "explain", SEED, "--from", "198.18.0.14", "--to-port", "110/tcp", "--json"
    )
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert value == {
        "schema": "ppsguard.explain",
        "version": 1,
        "verdict": "deny",
        "log": True,
        "entry": {"id": "pop3-others", "file": str(SEED), "line": 20},
        "reason": value["reason"],
        "unchecked": [],
    }
    assert "pop3" in value["reason"] and "except pop-clients" in value["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "not-an-ip", "--to-port", "110/tcp"), "--from needs"),
        (("--from", "198.18.0.1", "--to-port", "110/xyz"), "unknown protocol"),
        (("--from", "198.18.0.1", "--to-port", "1-5/tcp"), "one port"),
        (("--from", "198.18.0.1", "--to-port", "22/tcp", "--host", "nope"), "no host 'nope'"),
    ],
)
def test_explain_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = pps("policy", "explain", SEED, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_lint_json_exit_codes() -> None:
    seed = pps("policy", "lint", SEED, "--json")
    assert seed.returncode == 1  # ftp from anywhere is an error-level risk
    findings = json.loads(seed.stdout)["findings"]
    assert {"level", "code", "message", "entries", "location", "example"} <= set(findings[0])
    bastion = pps("policy", "lint", ROOT / "examples" / "bastion.yaml", "--json")
    assert bastion.returncode == 0, bastion.stdout


def test_schema_is_json_and_validates_examples() -> None:
    import datetime as dt

    import jsonschema
    import yaml

    result = pps("registry", "schema")
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)

    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.isoformat() if isinstance(value, dt.date) else value

    for path in (ROOT / "examples").rglob("*.yaml"):
        jsonschema.validate(plain(yaml.safe_load(path.read_text(encoding="utf-8"))), schema)


def test_validate_and_show() -> None:
    three = ROOT / "examples" / "web-three-tier.yaml"
    valid = pps("registry", "validate", three, "--json")
    assert valid.returncode == 0
    summary = json.loads(valid.stdout)
    assert summary["hosts"] == ["web1", "web2", "app1", "db1"]
    assert len(summary["files"]) == 2  # the include
    show = pps("registry", "show", three, "--host", "198.18.32.2", "--json")
    assert show.returncode == 0, show.stderr
    policy = json.loads(show.stdout)
    assert policy["host"] == "db1"
    assert policy["rules"][0]["entry_id"] == "db/no-mysql"
    table = pps("registry", "show", SEED)
    assert table.returncode == 0
    assert "pop3-others" in table.stdout and table.stderr == ""
