"""First-match address maps: exact first-match owners, element syntax, and the rendered table."""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.firewall.live import parse_ruleset
from ppsguard.firewall.render.addrmap import first_match_intervals, interval_text
from ppsguard.firewall.render.nftables import NftablesRenderer
from ppsguard.model.net import IPNetwork, PortRange, Protocol
from ppsguard.model.registry import (
    ANY_SOURCES,
    Action,
    EntryKind,
    HostPolicy,
    Rule,
    SourceLocation,
)

AT = SourceLocation("r.yaml", 1, 1)
BASE = int(ipaddress.IPv4Address("198.18.0.0"))

networks4 = st.tuples(st.integers(0, 255), st.integers(24, 32)).map(
    lambda t: ipaddress.ip_network(f"{ipaddress.IPv4Address(BASE + t[0])}/{t[1]}", strict=False)
)
network_lists = st.lists(
    st.lists(networks4, min_size=1, max_size=3).map(
        lambda nets: tuple(ipaddress.collapse_addresses(nets))
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(network_lists, st.lists(st.integers(0, 300), min_size=1, max_size=30))
def test_intervals_give_every_address_to_its_first_matching_rule(
    sources: list[tuple[IPNetwork, ...]], offsets: list[int]
) -> None:
    intervals = first_match_intervals(sources)
    for before, after in itertools.pairwise(intervals):
        assert before[1] < after[0]  # sorted and disjoint: the kernel has one answer
        assert before[2] != after[2] or before[1] + 1 < after[0]  # merged when adjacent
    for offset in offsets:
        address = ipaddress.IPv4Address(BASE + offset)
        expected = next(
            (k for k, nets in enumerate(sources) if any(address in n for n in nets)), None
        )
        found = [owner for first, last, owner in intervals if first <= int(address) <= last]
        assert (found[0] if found else None) == expected


@pytest.mark.parametrize(
    ("first", "last", "version", "text"),
    [
        ("198.18.0.1", "198.18.0.1", 4, "198.18.0.1"),
        ("198.18.0.0", "198.18.0.255", 4, "198.18.0.0/24"),
        ("198.18.0.1", "198.18.0.2", 4, "198.18.0.1-198.18.0.2"),
        ("0.0.0.0", "255.255.255.255", 4, "0.0.0.0/0"),
        ("2001:db8::", "2001:db8::ffff", 6, "2001:db8::/112"),
        ("2001:db8::1", "2001:db8::3", 6, "2001:db8::1-2001:db8::3"),
    ],
)
def test_interval_text(first: str, last: str, version: int, text: str) -> None:
    low = int(ipaddress.ip_address(first))
    high = int(ipaddress.ip_address(last))
    assert interval_text(low, high, version) == text


def _source_rule(entry_id: str, source: str, action: Action = Action.ALLOW) -> Rule:
    return Rule(
        entry_id,
        EntryKind.PROVIDES,
        action,
        action is not Action.ALLOW,
        Protocol.TCP,
        (PortRange(22, 22),),
        (ipaddress.ip_network(source),),
        ANY_SOURCES,
        AT,
    )


def _many_on_one_port(count: int) -> HostPolicy:
    rules = tuple(
        _source_rule(f"e{i}", str(ipaddress.IPv4Address(BASE + 65536 + 3 * i)))
        for i in range(count)
    )
    return HostPolicy("h", (), rules, (), Action.DENY, False, None)


def test_many_entries_on_one_port_become_one_lookup() -> None:
    text = NftablesRenderer().render_table(_many_on_one_port(2000))
    port_chain = re.search(r"chain tcp_0 \{\n(.*?)\n\t\}", text, re.S)
    assert port_chain is not None
    assert port_chain.group(1).strip() == "ip saddr vmap @saddr4_0"
    assert text.count(" : jump rule_") == 2000
    # every entry keeps its own counter and comment, in its own chain
    for i in (0, 999, 1999):
        assert f'chain rule_{i} {{\n\t\tcounter accept comment "e{i}"\n\t}}' in text


def test_overlapping_runs_keep_first_match_and_log_prefix() -> None:
    rules = (
        _source_rule("deny-one", "198.18.0.12/32", Action.DENY),
        _source_rule("allow-net", "198.18.0.0/24"),
        _source_rule("reject-wider", "198.18.0.0/16", Action.REJECT),
        _source_rule("shadowed", "198.18.0.12/32"),
    )
    text = NftablesRenderer().render_table(HostPolicy("h", (), rules, (), Action.DENY, False, None))
    assert "198.18.0.0-198.18.0.11 : jump rule_1" in text
    assert "198.18.0.12 : jump rule_0" in text
    assert "198.18.0.13-198.18.0.255 : jump rule_1" in text
    assert "198.18.1.0-198.18.255.255 : jump rule_2" in text
    assert "198.18.0.0-198.18.0.255 : jump rule_2" not in text
    assert 'log group 5 prefix "pps:deny-one " comment "deny-one"' in text
    assert 'counter reject with tcp reset comment "reject-wider"' in text
    # a rule no address reaches still has its counter and comment (status shows it at 0)
    assert 'chain rule_3 {\n\t\tcounter accept comment "shadowed"' in text
    assert "jump rule_3" not in text


def test_mixed_families_and_destinations_split_runs() -> None:
    both = (ipaddress.ip_network("198.18.0.0/24"), ipaddress.ip_network("2001:db8::/64"))
    bound = (ipaddress.ip_network("198.18.0.1/32"),)
    rules = (
        Rule("a", EntryKind.PROVIDES, Action.ALLOW, False, Protocol.TCP, (PortRange(22, 22),),
             both, ANY_SOURCES, AT),
        Rule("b", EntryKind.PROVIDES, Action.DENY, False, Protocol.TCP, (PortRange(22, 22),),
             both, ANY_SOURCES, AT),
        Rule("c", EntryKind.PROVIDES, Action.ALLOW, False, Protocol.TCP, (PortRange(22, 22),),
             both, bound, AT),
    )  # fmt: skip
    text = NftablesRenderer().render_table(HostPolicy("h", (), rules, (), Action.DENY, False, None))
    chain = re.search(r"chain tcp_0 \{\n(.*?)\n\t\}", text, re.S)
    assert chain is not None
    assert [line.strip() for line in chain.group(1).splitlines()] == [
        "ip saddr vmap @saddr4_0",
        'ip saddr 198.18.0.0/24 ip daddr 198.18.0.1 counter accept comment "c"',
        "ip6 saddr vmap @saddr6_1",
    ]


def _root_nft() -> None:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")


def test_large_same_port_table_passes_nft_check() -> None:
    _root_nft()
    text = NftablesRenderer().render_table(_many_on_one_port(10_000))
    result = subprocess.run(
        ["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[:2000]


def test_live_reader_counts_per_entry_chains() -> None:
    listing = (
        '{"nftables": [{"table": {"family": "inet", "name": "ppsguard", "handle": 1}},'
        ' {"rule": {"family": "inet", "table": "ppsguard", "chain": "rule_0", "handle": 5,'
        ' "comment": "e0", "expr": [{"counter": {"packets": 7, "bytes": 420}}, {"accept": null}]}},'
        ' {"rule": {"family": "inet", "table": "ppsguard", "chain": "tcp_0", "handle": 6,'
        ' "expr": [{"vmap": {"key": {"payload": {"protocol": "ip", "field": "saddr"}},'
        ' "data": "@saddr4_0"}}]}}]}'
    )
    live = parse_ruleset(listing)
    counter = live.counter("e0")
    assert counter is not None
    assert (counter.packets, counter.bytes) == (7, 420)
