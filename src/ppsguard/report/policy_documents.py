"""The `ppsguard.lint` and `ppsguard.explain` documents (`pps policy lint|explain --json`).

    {"schema": "ppsguard.lint", "version": 1,
     "findings": [{"level": "error", "code": "risky-exposure", "message": "...", "host": "building",
                   "entries": ["ftp"],
                   "location": {"file": "examples/seed-building.yaml", "line": 12, "column": 5},
                   "example": {"source": "0.0.0.0", "port": 21, "protocol": "tcp",
                               "destination": null}}]}

    {"schema": "ppsguard.explain", "version": 1, "verdict": "deny", "log": true,
     "entry": {"id": "pop3-others", "file": "examples/seed-building.yaml", "line": 20},
     "reason": "198.18.0.14 -> 110/tcp: ..."}

Built from `policy.lint_findings.Finding` and `policy.evaluate.Explanation`, and read back into
them. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ppsguard.model.registry import SourceLocation
from ppsguard.policy.evaluate import EntryRef, Explanation
from ppsguard.policy.lint_findings import Finding, FindingLevel, PacketExample
from ppsguard.report.documents import loader, stamp

LINT_SCHEMA = "ppsguard.lint"
EXPLAIN_SCHEMA = "ppsguard.explain"


def lint_finding_document(f: Finding) -> dict[str, Any]:
    """One lint finding: level, code, message, host, entries, location, example packet."""
    example = f.example
    return {
        "level": f.level.value,
        "code": f.code,
        "message": f.message,
        "host": f.host,
        "entries": list(f.entries),
        "location": {"file": f.location.file, "line": f.location.line, "column": f.location.column},
        "example": None
        if example is None
        else {
            "source": example.source,
            "port": example.port,
            "protocol": example.protocol,
            "destination": example.destination,
        },
    }


def lint_document(findings: Iterable[Finding]) -> dict[str, Any]:
    """`pps policy lint --json`: the findings, in the order the linter gave them."""
    return {**stamp(LINT_SCHEMA), "findings": [lint_finding_document(f) for f in findings]}


@loader(LINT_SCHEMA)
def load_lint(value: Mapping[str, Any]) -> tuple[Finding, ...]:
    """Read a `ppsguard.lint` document back into lint findings (validated first)."""
    return tuple(_lint_finding(f) for f in value["findings"])


def _lint_finding(f: Mapping[str, Any]) -> Finding:
    at, example = f["location"], f["example"]
    return Finding(
        level=FindingLevel(f["level"]),
        code=f["code"],
        message=f["message"],
        host=f["host"],
        entries=tuple(f["entries"]),
        location=SourceLocation(at["file"], at["line"], at["column"]),
        example=None
        if example is None
        else PacketExample(
            example["source"], example["port"], example["protocol"], example["destination"]
        ),
    )


def explain_document(explanation: Explanation) -> dict[str, Any]:
    """`pps policy explain --json`: verdict, log, the deciding entry, the reason in words, and
    what the answer assumed instead of checking (`unchecked`: "bind" or "destination")."""
    entry = explanation.entry
    return {
        **stamp(EXPLAIN_SCHEMA),
        "verdict": explanation.verdict,
        "log": explanation.log,
        "entry": {"id": entry.id, "file": entry.file, "line": entry.line},
        "reason": explanation.reason,
        "unchecked": list(explanation.unchecked),
    }


@loader(EXPLAIN_SCHEMA)
def load_explain(value: Mapping[str, Any]) -> Explanation:
    """Read a `ppsguard.explain` document back into an `Explanation` (validated first)."""
    entry = value["entry"]
    return Explanation(
        verdict=value["verdict"],
        log=value["log"],
        entry=EntryRef(entry["id"], entry["file"], entry["line"]),
        reason=value["reason"],
        unchecked=tuple(value.get("unchecked", ())),
    )
