"""The live reader: `nft -j list ruleset` text -> LiveRuleset, fingerprints, hostile input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.firewall.live import fingerprint_owned, legacy_rule_lines, parse_ruleset

SAMPLE = (
    Path(__file__).resolve().parents[1] / "golden" / "nftables" / "live-seed.json"
).read_text()


def _mutate(text: str, change: Any) -> str:
    document = json.loads(text)
    for item in document["nftables"]:
        change(item)
    return json.dumps(document)


def test_sample_model() -> None:
    live = parse_ruleset(SAMPLE)
    assert ("inet", "ppsguard") in live.tables
    assert live.owned_present
    assert set(live.foreign_tables) == {("ip", "other"), ("inet", "harmless")}
    overriding = [(c.table, c.name) for c in live.overriding_chains]
    assert overriding == [("other", "pre")]
    owned = [c for c in live.base_chains if c.owned]
    assert [(c.hook, c.policy) for c in owned] == [("input", "drop")]
    mysql = live.counter("mysql")
    assert mysql is not None and mysql.rules == 4
    assert live.counter("building/default") is not None
    assert live.counter("nope") is None


def test_fingerprint_ignores_handles_and_counter_values() -> None:
    def bump(item: dict[str, Any]) -> None:
        for body in item.values():
            if isinstance(body, dict) and "handle" in body:
                body["handle"] += 1000
            for statement in body.get("expr", []) if isinstance(body, dict) else []:
                if isinstance(statement, dict) and "counter" in statement:
                    statement["counter"] = {"packets": 99, "bytes": 9999}

    assert fingerprint_owned(_mutate(SAMPLE, bump)) == fingerprint_owned(SAMPLE)


def test_fingerprint_sees_a_changed_rule_and_ignores_other_tables() -> None:
    def edit_owned(item: dict[str, Any]) -> None:
        rule = item.get("rule")
        if rule and rule.get("table") == "ppsguard" and rule.get("comment") == "ftp":
            rule["expr"][-1] = {"drop": None}

    def edit_foreign(item: dict[str, Any]) -> None:
        rule = item.get("rule")
        if rule and rule.get("table") == "other":
            rule["expr"][-1] = {"accept": None}

    assert fingerprint_owned(_mutate(SAMPLE, edit_owned)) != fingerprint_owned(SAMPLE)
    assert fingerprint_owned(_mutate(SAMPLE, edit_foreign)) == fingerprint_owned(SAMPLE)


def test_empty_ruleset() -> None:
    live = parse_ruleset('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}')
    assert live.empty and not live.owned_present and live.owned_fingerprint is None


@pytest.mark.parametrize("text", ["", "{", "[]", '{"nftables": 3}', "null"])
def test_bad_documents_are_input_errors(text: str) -> None:
    with pytest.raises(InputError):
        parse_ruleset(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "table",
                    "chain",
                    "rule",
                    "family",
                    "name",
                    "hook",
                    "expr",
                    "comment",
                    "counter",
                    "prio",
                    "policy",
                    "drop",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=6))
def test_hostile_json_never_crashes(items: list[Any]) -> None:
    text = json.dumps({"nftables": items})
    with contextlib.suppress(InputError):
        parse_ruleset(text)


def test_legacy_rule_lines() -> None:
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n"
    assert legacy_rule_lines(text) == ("-A INPUT -p tcp --dport 22 -j DROP",)
