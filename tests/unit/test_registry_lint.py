"""Lint: union-semantics anomalies, risks, waivers and documentation, each with an example."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ppsguard.policy.lint import FindingLevel, lint_registry
from ppsguard.registry.load import load_registry, parse_registry

TODAY = dt.date(2026, 11, 26)
DOC = "purpose: p, owner: o"


def codes(text: str) -> dict[str, tuple[FindingLevel, tuple[str, ...], str | None]]:
    out = {}
    for f in lint_registry(parse_registry(text, "t.yaml"), today=TODAY):
        out[f.code] = (f.level, f.entries, str(f.example) if f.example else None)
    return out


def test_shadowed_by_union_of_two_earlier_entries() -> None:
    # neither 'low' nor 'high' alone covers 'all', but together they do: pairwise checks miss it
    text = f"""
hosts:
  h:
    denies:
      - {{id: low, port: 1000-1499/tcp, from: [198.18.0.0/24]}}
      - {{id: high, port: 1500-2000/tcp, from: [198.18.0.0/24]}}
    provides:
      - {{id: all, port: 1000-2000/tcp, from: [198.18.0.0/25], {DOC}}}
"""
    found = codes(text)
    level, entries, example = found["shadowed"]
    assert level is FindingLevel.ERROR
    assert entries == ("all", "low", "high")
    assert example == "198.18.0.0 -> 1000/tcp"


def test_redundant_and_correlated_and_generalisation() -> None:
    text = f"""
hosts:
  h:
    denies:
      - {{id: d1, port: 10-20/tcp, from: [198.18.0.0/24], log: true}}
      - {{id: d2, port: 15/tcp, from: [198.18.0.0/25], log: true}}
      - {{id: d3, port: 30-40/tcp, from: [198.18.1.0/24]}}
    provides:
      - {{id: a1, port: 35-50/tcp, from: [198.18.1.0/25], {DOC}}}
      - {{id: a2, port: 60/tcp, from: [198.18.2.0/25], {DOC}}}
      - {{id: a3, port: 55-65/tcp, from: [198.18.2.0/24], {DOC}}}
"""
    findings = lint_registry(parse_registry(text, "t.yaml"), today=TODAY)
    redundant = {f.entries for f in findings if f.code == "redundant"}
    assert redundant == {("d2", "d1"), ("a2", "a3")}  # d2 covered earlier, a2 covered later
    (correlated,) = [f for f in findings if f.code == "correlated"]
    assert correlated.entries == ("d3", "a1")
    assert str(correlated.example) == "198.18.1.0 -> 35/tcp"
    assert not [f for f in findings if f.code == "generalisation"]


def test_generalisation() -> None:
    text = f"""
hosts:
  h:
    denies: [{{id: narrow, port: 22/tcp, from: [198.18.0.7], log: true}}]
    provides: [{{id: broad, port: 22/tcp, from: anywhere, {DOC}}}]
"""
    assert codes(text)["generalisation"][1] == ("narrow", "broad")


def test_risks_waivers_and_documentation() -> None:
    text = """
hosts:
  h:
    provides:
      - {id: telnet, service: telnet, from: anywhere, purpose: legacy}
      - {id: db, service: mysql, from: anywhere, owner: dba, purpose: x,
         waiver: {reason: migration, expires: 2026-12-01}}
      - {id: old, service: ssh, from: [198.18.0.1], owner: o, purpose: x,
         waiver: {reason: r, expires: 2026-01-01}}
"""
    findings = lint_registry(parse_registry(text, "t.yaml"), today=TODAY)
    by = {(f.code, f.entries[0]): f for f in findings}
    telnet = [f for f in findings if f.code.startswith("risk-") and f.entries == ("telnet",)]
    assert telnet and telnet[0].level is FindingLevel.ERROR
    assert telnet[0].example is not None and telnet[0].example.port == 23
    db = [f for f in findings if f.code.startswith("risk-") and f.entries == ("db",)]
    assert db and all(f.level is FindingLevel.INFO for f in db)  # waived until 2026-12-01
    assert by[("waiver-expiring", "db")].level is FindingLevel.WARNING
    assert by[("waiver-expired", "old")].level is FindingLevel.ERROR
    assert by[("missing-owner", "telnet")].level is FindingLevel.WARNING


@pytest.mark.parametrize("name", ["bastion", "mail-server", "web-three-tier"])
def test_examples_have_no_errors(name: str) -> None:
    reg = load_registry(Path(__file__).resolve().parents[2] / "examples" / f"{name}.yaml")
    errors = [f for f in lint_registry(reg, today=TODAY) if f.level is FindingLevel.ERROR]
    assert errors == []


def test_seed_lint_flags_public_ftp() -> None:
    reg = load_registry(Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml")
    errors = [f for f in lint_registry(reg, today=TODAY) if f.level is FindingLevel.ERROR]
    assert [(f.code, f.entries) for f in errors] == [("risk-cleartext-ftp", ("ftp",))]


def test_contradictory_entries() -> None:
    text = f"""
hosts:
  h:
    denies: [{{id: no-ssh, service: ssh, from: [198.18.0.0/24]}}]
    provides: [{{id: ssh, service: ssh, from: [198.18.0.0/24], {DOC}}}]
"""
    level, entries, example = codes(text)["contradictory"]
    assert level is FindingLevel.ERROR
    assert entries == ("ssh", "no-ssh")
    assert example == "198.18.0.0 -> 22/tcp"
