"""Verdicts on the seed building: the rule set of the seed, tuple by tuple, single and bulk."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest

from ppsguard.model.net import Protocol
from ppsguard.policy.bulk import ACTIONS_BY_CODE, PROTOCOL_CODES, BulkEvaluator
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate, explain
from ppsguard.registry.load import load_registry, parse_registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = load_registry(EXAMPLES / "seed-building.yaml")
POLICY = compile_host_policy(SEED)

# (source, port/proto, verdict, logged, deciding entry)
SEED_TABLE = [
    ("198.18.5.5", "21/tcp", "allow", False, "ftp"),
    ("2001:db8::7", "25/tcp", "allow", False, "smtp"),
    ("198.18.0.11", "80/tcp", "allow", False, "http"),
    ("198.18.0.11", "110/tcp", "allow", True, "pop3"),
    ("198.18.0.12", "110/tcp", "allow", True, "pop3"),
    ("198.18.0.13", "110/tcp", "allow", True, "pop3"),
    ("198.18.0.14", "110/tcp", "deny", True, "pop3-others"),
    ("198.18.0.10", "110/tcp", "deny", True, "pop3-others"),
    ("2001:db8::11", "110/tcp", "deny", True, "pop3-others"),
    ("198.18.0.11", "3306/tcp", "deny", True, "mysql"),
    ("198.18.9.9", "3306/tcp", "deny", True, "mysql"),
    ("198.18.0.11", "22/tcp", "deny", False, "building/default"),
    ("198.18.0.11", "21/udp", "deny", False, "building/default"),
    ("198.18.0.11", "65535/tcp", "deny", False, "building/default"),
]


@pytest.mark.parametrize(("source", "target", "verdict", "logged", "entry"), SEED_TABLE)
def test_seed_explain(source: str, target: str, verdict: str, logged: bool, entry: str) -> None:
    port, proto = target.split("/")
    result = explain(
        SEED, POLICY, source=ipaddress.ip_address(source), port=int(port), protocol=Protocol(proto)
    )
    assert (result.verdict, result.log, result.entry.id) == (verdict, logged, entry)
    assert result.entry.file.endswith("seed-building.yaml")
    assert source in result.reason


def test_seed_bulk_matches_table() -> None:
    bulk = BulkEvaluator(POLICY)
    sources = [ipaddress.ip_address(s) for s, *_ in SEED_TABLE]
    ports = [int(t.split("/")[0]) for _, t, *_ in SEED_TABLE]
    protos = [Protocol(t.split("/")[1]) for _, t, *_ in SEED_TABLE]
    result = bulk.evaluate(sources, ports, protos)
    for i, (_s, _t, verdict, logged, _e) in enumerate(SEED_TABLE):
        action = ACTIONS_BY_CODE[result.action[i]]
        assert ("allow" if action.value == "allow" else "deny") == verdict
        assert bool(result.log[i]) is logged


def test_reject_is_deny_with_reason() -> None:
    reg = parse_registry("hosts: {h: {denies: [{id: r, service: ssh, action: reject}]}}", "t.yaml")
    result = explain(
        reg,
        compile_host_policy(reg),
        source=ipaddress.ip_address("198.18.0.1"),
        port=22,
        protocol=Protocol.TCP,
    )
    assert result.verdict == "deny"
    assert "rejected" in result.reason


def test_destination_checked_only_when_given() -> None:
    text = "hosts: {h: {provides: [{id: a, port: 80, from: anywhere, bind: 198.18.0.5}]}}"
    policy = compile_host_policy(parse_registry(text, "t.yaml"))
    src = ipaddress.ip_address("198.18.0.1")
    assert evaluate(policy, src, 80, Protocol.TCP).index == 0
    assert evaluate(policy, src, 80, Protocol.TCP, ipaddress.ip_address("198.18.0.5")).index == 0
    assert evaluate(policy, src, 80, Protocol.TCP, ipaddress.ip_address("198.18.0.6")).index == -1
    bulk = BulkEvaluator(policy)
    v4 = [int(ipaddress.ip_address(a)) for a in ("198.18.0.5", "198.18.0.6")]
    res = bulk.evaluate_v4([int(src)] * 2, [80, 80], [PROTOCOL_CODES[Protocol.TCP]] * 2, v4)
    assert res.rule.tolist() == [0, -1]


def test_bulk_v4_arrays_and_invalid_codes() -> None:
    bulk = BulkEvaluator(POLICY)
    src = np.array([int(ipaddress.ip_address("198.18.0.11"))] * 4, dtype=np.uint32)
    res = bulk.evaluate_v4(src, [110, 110, 70000, 21], [0, 9, 0, 0])
    assert res.rule.tolist()[1:3] == [-1, -1]
    assert POLICY.rules[res.rule[0]].entry_id == "pop3"
    assert POLICY.rules[res.rule[3]].entry_id == "ftp"
