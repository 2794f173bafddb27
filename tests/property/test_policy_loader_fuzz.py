"""Hostile input never crashes the loader: random text and random YAML shaped like a registry
either load or raise InputError (with a position when the YAML parsed)."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.model.registry import SourceLocation
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import parse_registry
from ppsguard.registry.naming import parse_port_text

KEYS = [
    "version", "default", "default_log", "networks", "services", "roles", "hosts", "provides",
    "denies", "uses", "from", "to", "except", "service", "port", "ports", "addresses", "log",
    "bind", "waiver", "reason", "expires", "id", "action", "include", "h", "r", "net",
]  # fmt: skip
SCALARS = st.one_of(
    st.sampled_from(
        ["anywhere", "ssh", "pop3", "22/tcp", "1-9/udp", "198.18.0.0/24", "2001:db8::/64", "h",
         "r", "net", "deny", "allow", "reject", "loopback", "2027-01-01", "tcp+udp", "70000"]
    ),
    st.integers(-5, 70000),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)


def _load(text: str) -> None:
    try:
        registry = parse_registry(text, "fuzz.yaml")
        for host in registry.hosts:
            compile_host_policy(registry, host.name)
    except InputError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_registry_shaped_yaml_never_crashes(doc: dict[str, object]) -> None:
    _load(yaml.safe_dump(doc))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    _load(text)


@given(st.text(max_size=20))
def test_port_text_parses_or_explains(text: str) -> None:
    try:
        ports = parse_port_text(text, SourceLocation("t", 1, 1))
    except InputError as exc:
        assert exc.line == 1
    else:
        assert all(0 <= p.ports.first <= p.ports.last <= 65535 for p in ports)
