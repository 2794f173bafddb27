"""Target and port specification parsing, the top-ports list, and the keyed permutation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.errors import UsageError
from ppsguard.model.net import Protocol
from ppsguard.scan.permutation import KeyedPermutation
from ppsguard.scan.ports import load_top_ports, parse_ports, parse_top_ports, top_ports
from ppsguard.scan.scope import ScopeGate
from ppsguard.scan.targets import parse_networks, parse_target, split_tokens


@pytest.mark.parametrize(
    ("token", "first", "last", "hostname"),
    [
        ("198.18.0.1", "198.18.0.1", "198.18.0.1", None),
        ("198.18.0.0/30", "198.18.0.0", "198.18.0.3", None),
        ("198.18.0.1-20", "198.18.0.1", "198.18.0.20", None),
        ("198.18.0.1-198.18.0.9", "198.18.0.1", "198.18.0.9", None),
        ("2001:db8::1", "2001:db8::1", "2001:db8::1", None),
        ("[2001:db8::1]", "2001:db8::1", "2001:db8::1", None),
        ("2001:db8::/126", "2001:db8::", "2001:db8::3", None),
        ("Lab-Host.example.", None, None, "lab-host.example"),
        ("localhost", None, None, "localhost"),
    ],
)
def test_parse_target(
    token: str, first: str | None, last: str | None, hostname: str | None
) -> None:
    spec = parse_target(token)
    assert spec.hostname == hostname
    if first is not None and last is not None:
        assert spec.first == ipaddress.ip_address(first)
        assert spec.last == ipaddress.ip_address(last)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "198.18.0.300",
        "198.18.0.20-1",
        "198.18.0.1-300",
        "bad host",
        "a..b",
        "1.2.3",
        "::g",
        "x" * 400,
        "2001:db8::1-198.18.0.1",
    ],
)
def test_bad_target_names_the_token(token: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_target(token)
    assert repr(token) in str(info.value) or token == ""


def test_expand_and_networks() -> None:
    hosts = ScopeGate().admit([parse_target("198.18.0.1-3")]).hosts()
    assert [str(a) for a, _ in hosts] == ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
    gate = ScopeGate(scope=parse_networks(["198.18.0.0/24", "2001:db8::/64"]))
    assert gate.inside(ipaddress.ip_address("198.18.0.7"))
    assert gate.inside(ipaddress.ip_address("2001:db8::7"))
    assert not gate.inside(ipaddress.ip_address("198.19.0.7"))
    with pytest.raises(UsageError):
        parse_networks(["some-host"])
    assert split_tokens("198.18.0.1, 198.18.0.2 # comment\n\n2001:db8::1\n") == [
        "198.18.0.1",
        "198.18.0.2",
        "2001:db8::1",
    ]


@pytest.mark.parametrize(
    ("spec", "tcp", "udp"),
    [
        ("22,80", (22, 80), ()),
        ("1000-1003", (1000, 1001, 1002, 1003), ()),
        ("T:22,U:53,161", (22,), (53, 161)),
        ("U:53,T:80-81", (80, 81), (53,)),
        ("-10", tuple(range(1, 11)), ()),
        ("65530-", tuple(range(65530, 65536)), ()),
    ],
)
def test_parse_ports(spec: str, tcp: tuple[int, ...], udp: tuple[int, ...]) -> None:
    parsed = parse_ports(spec)
    assert parsed.tcp == tcp
    assert parsed.udp == udp


def test_all_ports_and_default_protocol() -> None:
    assert len(parse_ports("-").tcp) == 65535
    assert parse_ports("53", default=Protocol.UDP).udp == (53,)
    both = parse_ports("53", both=True)
    assert both.tcp == both.udp == (53,)


@pytest.mark.parametrize("spec", ["", "70000", "80-22", "http", "22,,80", "S:22", "1-2-3", "-1x"])
def test_bad_ports_name_the_token(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_ports(spec)


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_port_parser_never_crashes(text: str) -> None:
    try:
        parsed = parse_ports(text)
    except UsageError:
        return
    assert all(0 <= p <= 65535 for p in parsed.tcp + parsed.udp)


def test_top_ports_list_is_ours_and_modern() -> None:
    ranked = load_top_ports()
    assert len(set(ranked[Protocol.TCP])) == len(ranked[Protocol.TCP])
    first_200 = set(ranked[Protocol.TCP][:200])
    assert {6379, 27017, 6443, 2379, 10250, 9200} <= first_200
    assert top_ports(10, Protocol.TCP)[:3] == tuple(sorted(ranked[Protocol.TCP][:10]))[:3]
    assert len(top_ports(1000, Protocol.TCP)) == 1000
    assert len(top_ports(100, Protocol.UDP)) == 100
    assert {53, 161, 123} <= set(top_ports(10, Protocol.UDP))
    with pytest.raises(UsageError):
        parse_top_ports("tcp = [0]")


@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=2**48))
@settings(max_examples=60, deadline=None)
def test_permutation_is_a_bijection(n: int, seed: int) -> None:
    perm = KeyedPermutation(n, seed)
    values = list(perm)
    assert sorted(values) == list(range(n))


def test_permutation_depends_on_seed_and_repeats() -> None:
    a, b = list(KeyedPermutation(5000, 1)), list(KeyedPermutation(5000, 2))
    assert a != b
    assert a == list(KeyedPermutation(5000, 1))
    assert list(KeyedPermutation(1 << 20, 7))[:5] == [
        KeyedPermutation(1 << 20, 7)[i] for i in range(5)
    ]
