"""The whole-rule-set evaluator, one table of rule forms (the lab test checks it against nft)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ppsguard.firewall.fate import EntrySpace, describe_rule, entry_spaces, interference
from ppsguard.firewall.legacy import legacy_objects
from ppsguard.firewall.live import parse_ruleset
from ppsguard.firewall.packets import intersect, normalize, subtract
from ppsguard.firewall.state import EnforcementState, judge
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import load_registry

ANY4 = ((0, 2**32 - 1),)
ANY6 = ((0, 2**128 - 1),)


def _ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def _entry(port: int, protocol: str = "tcp", v6: bool = True) -> EntrySpace:
    sources = {4: ANY4, 6: ANY6} if v6 else {4: ANY4}
    return EntrySpace("web", protocol, sources, ((port, port),))


def _match(protocol: str, field: str, right: Any, op: str = "==") -> dict[str, Any]:
    return {
        "match": {
            "op": op,
            "left": {"payload": {"protocol": protocol, "field": field}},
            "right": right,
        }
    }


def _doc(
    *rules: list[Any],
    family: str = "inet",
    policy: str = "accept",
    hook: str = "input",
    extra: list[Any] | None = None,
) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {"table": {"family": family, "name": "other"}},
        {
            "chain": {
                "family": family,
                "table": "other",
                "name": "in",
                "hook": hook,
                "prio": 0,
                "policy": policy,
                "type": "filter",
            }
        },
    ]
    objects.extend(extra or [])
    for handle, expr in enumerate(rules, start=1):
        objects.append(
            {
                "rule": {
                    "family": family,
                    "table": "other",
                    "chain": "in",
                    "handle": handle,
                    "expr": expr,
                }
            }
        )
    return objects


def _verdicts(objects: list[dict[str, Any]], entry: EntrySpace) -> set[tuple[int, str, str]]:
    return {(e.packets.version, e.verdict, e.certainty) for _, e in interference(objects, [entry])}


DROP = {"drop": None}
CASES = [
    (
        "port drop",
        _doc([_match("tcp", "dport", 80), DROP]),
        {(4, "drop", "all"), (6, "drop", "all")},
    ),
    ("other port", _doc([_match("tcp", "dport", 81), DROP]), set()),
    ("udp rule, tcp entry", _doc([_match("udp", "dport", 80), DROP]), set()),
    (
        "anonymous set",
        _doc([_match("tcp", "dport", {"set": [22, {"range": [70, 90]}]}), DROP]),
        {(4, "drop", "all"), (6, "drop", "all")},
    ),
    ("negated port", _doc([_match("tcp", "dport", 80, "!="), DROP]), set()),
    ("ip family only", _doc([_match("tcp", "dport", 80), DROP], family="ip"), {(4, "drop", "all")}),
    (
        "ip6 saddr prefix",
        _doc([_match("ip6", "saddr", {"prefix": {"addr": "2001:db8::", "len": 32}}), DROP]),
        {(6, "drop", "all")},
    ),
    ("policy drop", _doc(policy="drop"), {(4, "drop", "all"), (6, "drop", "all")}),
    (
        "policy drop, port accepted",
        _doc([_match("tcp", "dport", 80), {"accept": None}], policy="drop"),
        set(),
    ),
    (
        "established first",
        _doc(
            [
                {
                    "match": {
                        "op": "in",
                        "left": {"ct": {"key": "state"}},
                        "right": ["established", "related"],
                    }
                },
                {"accept": None},
            ],
            policy="drop",
        ),
        {(4, "drop", "all"), (6, "drop", "all")},
    ),
    (
        "ct state new drop",
        _doc([{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, DROP]),
        {(4, "drop", "all"), (6, "drop", "all")},
    ),
    (
        "loopback accept only",
        _doc(
            [
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}},
                {"accept": None},
            ],
            policy="drop",
        ),
        {(4, "drop", "all"), (6, "drop", "all")},
    ),
    (
        "limit: some",
        _doc([{"limit": {"rate": 10, "per": "second"}}, DROP]),
        {(4, "drop", "some"), (6, "drop", "some")},
    ),
    (
        "daddr: some",
        _doc([_match("ip", "daddr", "198.18.0.1"), _match("tcp", "dport", 80), DROP]),
        {(4, "drop", "some")},
    ),
    (
        "unknown statement",
        _doc([{"osf": {"key": "name"}}, DROP]),
        {
            (4, "uncertain", "uncertain"),
            (6, "uncertain", "uncertain"),
            (4, "drop", "uncertain"),
            (6, "drop", "uncertain"),
        },
    ),
    (
        "unknown match, then drop",
        _doc([{"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}}, DROP]),
        {(4, "drop", "uncertain"), (6, "drop", "uncertain")},
    ),
    (
        "unknown match, then accept: no effect",
        _doc(
            [
                {"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}},
                {"accept": None},
            ]
        ),
        set(),
    ),
    (
        "queue",
        _doc([_match("tcp", "dport", 80), {"queue": {"num": 1}}]),
        {(4, "queue", "all"), (6, "queue", "all")},
    ),
    ("output hook is not inbound", _doc([_match("tcp", "dport", 80), DROP], hook="output"), set()),
    ("forward hook is not inbound", _doc(policy="drop", hook="forward"), set()),
    (
        "vmap jump to a chain that drops a source set",
        _doc(
            [
                {
                    "vmap": {
                        "key": {"payload": {"protocol": "tcp", "field": "dport"}},
                        "data": "@ports",
                    }
                }
            ],
            extra=[
                {
                    "map": {
                        "family": "inet",
                        "table": "other",
                        "name": "ports",
                        "map": "verdict",
                        "elem": [[80, {"jump": {"target": "web"}}]],
                    }
                },
                {
                    "set": {
                        "family": "inet",
                        "table": "other",
                        "name": "bad",
                        "elem": [{"prefix": {"addr": "198.19.0.0", "len": 16}}],
                    }
                },
                {"chain": {"family": "inet", "table": "other", "name": "web"}},
                {
                    "rule": {
                        "family": "inet",
                        "table": "other",
                        "chain": "web",
                        "handle": 9,
                        "expr": [_match("ip", "saddr", "@bad"), DROP],
                    }
                },
            ],
        ),
        {(4, "drop", "all")},
    ),
]


@pytest.mark.parametrize(("name", "objects", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule_forms(
    name: str, objects: list[dict[str, Any]], expected: set[tuple[int, str, str]]
) -> None:
    assert _verdicts(objects, _entry(80)) == expected


def test_split_narrows_the_sources_exactly() -> None:
    objects = _doc(
        [_match("ip", "saddr", {"prefix": {"addr": "198.19.0.0", "len": 16}}), {"accept": None}],
        policy="drop",
    )
    ((entry_id, effect),) = interference(objects, [_entry(80, v6=False)])
    assert entry_id == "web" and effect.rule == "policy drop"
    assert effect.packets.sources == subtract(ANY4, ((_ip("198.19.0.0"), _ip("198.19.255.255")),))


def test_interval_helpers() -> None:
    assert normalize([(5, 9), (1, 3), (4, 4)]) == ((1, 9),)
    assert intersect(((1, 10),), ((5, 20),)) == ((5, 10),)
    assert subtract(((1, 10),), ((3, 4),)) == ((1, 2), (5, 10))


def test_describe_rule() -> None:
    rule = {"handle": 7, "expr": [_match("tcp", "dport", {"set": [21, 25]}), {"counter": {}}, DROP]}
    assert describe_rule(rule) == "tcp dport { 21, 25 } drop (handle 7)"


def test_legacy_rules_are_judged_too() -> None:
    save = """*filter
:INPUT ACCEPT [0:0]
:X - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -s 198.19.0.0/16 -p tcp -m multiport --dports 80,8000:8100 -j X
-A INPUT -p tcp -m tcp --dport 22 -j DROP
-A INPUT -p tcp -m tcp --dport 443 -m recent --name x --set -j DROP
-A X -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""
    objects = legacy_objects(save)
    found = {
        (e.packets.ports, e.verdict, e.certainty, e.rule)
        for port in (22, 80, 443, 8050)
        for _, e in interference(objects, [_entry(port, v6=False)])
    }
    assert found == {
        (((22, 22),), "drop", "all", "-A INPUT -p tcp -m tcp --dport 22 -j DROP"),
        (((80, 80),), "reject", "all", "-A X -j REJECT --reject-with icmp-port-unreachable"),
        (((8050, 8050),), "reject", "all", "-A X -j REJECT --reject-with icmp-port-unreachable"),
        (
            ((443, 443),),
            "drop",
            "uncertain",
            "-A INPUT -p tcp -m tcp --dport 443 -m recent --name x --set -j DROP",
        ),
    }


def test_entry_spaces_from_a_policy_and_judge() -> None:
    policy = compile_host_policy(load_registry("examples/seed-building.yaml"))
    spaces = {s.entry_id: s for s in entry_spaces(policy.rules)}
    assert set(spaces) == {"ftp", "smtp", "http", "pop3"}
    assert spaces["pop3"].sources[4] == ((_ip("198.18.0.11"), _ip("198.18.0.13")),)
    objects = [
        {"table": {"family": "inet", "name": "ppsguard"}},
        *_doc([_match("tcp", "dport", 80), DROP]),
    ]
    effects = tuple(interference(objects, list(spaces.values())))
    assert {entry for entry, _ in effects} == {"http"}
    import json

    live = parse_ruleset(json.dumps({"nftables": objects}))
    assert (
        judge(live, recorded=live.owned_fingerprint, effects=effects).state
        is EnforcementState.OVERRIDDEN
    )
    assert judge(live, recorded=live.owned_fingerprint).state is EnforcementState.ENFORCED
    assert judge(live, recorded="something else").state is EnforcementState.CHANGED
    assert judge(parse_ruleset('{"nftables": []}'), recorded=None).state is EnforcementState.NONE
