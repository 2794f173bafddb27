"""The whole-rule-set evaluator never crashes on what nft or iptables-legacy-save may print, and
its interval arithmetic partitions exactly."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.firewall.fate import EntrySpace, interference
from ppsguard.firewall.legacy import legacy_objects
from ppsguard.firewall.packets import intersect, normalize, subtract

INTERVALS = st.lists(
    st.tuples(st.integers(0, 300), st.integers(0, 300)).map(lambda t: (min(t), max(t))),
    max_size=6,
).map(normalize)


def _points(intervals: tuple[tuple[int, int], ...]) -> set[int]:
    return {p for low, high in intervals for p in range(low, high + 1)}


@given(INTERVALS, INTERVALS)
def test_intersect_and_subtract_partition(left, right) -> None:  # type: ignore[no-untyped-def]
    assert _points(intersect(left, right)) == _points(left) & _points(right)
    assert _points(subtract(left, right)) == _points(left) - _points(right)


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.sampled_from(
        ["tcp", "udp", "ip", "ip6", "saddr", "dport", "daddr", "lo", "new", "@s", "@m", "web",
         "198.18.0.1", "2001:db8::1", "established", "accept", "x"]
    ),
)  # fmt: skip
KEYS = st.sampled_from(
    ["match", "op", "left", "right", "payload", "protocol", "field", "meta", "key", "ct",
     "set", "prefix", "addr", "len", "range", "vmap", "data", "jump", "goto", "target",
     "accept", "drop", "reject", "return", "xt", "type", "name", "limit", "elem"]
)  # fmt: skip
JSONISH = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(JSONISH, max_size=4), max_size=4), st.sampled_from(["accept", "drop"]))
def test_random_rules_never_crash(rules: list[list[Any]], policy: str) -> None:
    objects: list[dict[str, Any]] = [
        {"chain": {"family": "inet", "table": "t", "name": "c", "hook": "input", "policy": policy}},
        {"chain": {"family": "inet", "table": "t", "name": "web"}},
        {"set": {"family": "inet", "table": "t", "name": "s", "elem": [1, "198.18.0.1"]}},
        {"map": {"family": "inet", "table": "t", "name": "m", "elem": [[80, {"drop": None}]]}},
    ]
    for chain in ("c", "web"):
        objects.extend(
            {"rule": {"family": "inet", "table": "t", "chain": chain, "expr": expr}}
            for expr in rules
        )
    entry = EntrySpace("e", "tcp", {4: ((0, 2**32 - 1),), 6: ((0, 2**128 - 1),)}, ((80, 80),))
    for _, effect in interference(objects, [entry]):
        assert effect.certainty in {"all", "some", "uncertain"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=8))
def test_random_iptables_save_never_crashes(lines: list[str]) -> None:
    text = "*filter\n:INPUT DROP [0:0]\n" + "\n".join("-A INPUT " + line for line in lines)
    objects = legacy_objects(text)
    entry = EntrySpace("e", "tcp", {4: ((0, 2**32 - 1),)}, ((22, 22),))
    interference(objects, [entry])
