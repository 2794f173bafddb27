"""The nftables renderer's pure parts: port segmentation, refusals, and the table's shape."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.firewall.render import TARGETS, UnsupportedFeature, renderer
from ppsguard.firewall.render.base import entry_from_prefix, log_prefix
from ppsguard.firewall.render.iptables import port_groups
from ppsguard.firewall.render.nftables import NftablesRenderer, segments
from ppsguard.model.net import PortRange, Protocol
from ppsguard.model.registry import (
    ANY_SOURCES,
    Action,
    EntryKind,
    HostPolicy,
    Rule,
    SourceLocation,
)

AT = SourceLocation("r.yaml", 7, 3)


def rule(
    entry_id: str = "e",
    protocol: Protocol = Protocol.TCP,
    ports: tuple[PortRange, ...] = (PortRange(80, 80),),
    action: Action = Action.ALLOW,
    log: bool = False,
) -> Rule:
    return Rule(
        entry_id, EntryKind.PROVIDES, action, log, protocol, ports, ANY_SOURCES, ANY_SOURCES, AT
    )


def policy(*rules: Rule, host: str = "h") -> HostPolicy:
    return HostPolicy(host, (), rules, (), Action.DENY, False, None)


port_ranges = st.tuples(st.integers(0, 300), st.integers(0, 40)).map(
    lambda t: PortRange(t[0], min(65535, t[0] + t[1]))
)
rule_lists = st.lists(
    st.tuples(
        st.sampled_from([Protocol.TCP, Protocol.UDP]), st.lists(port_ranges, min_size=1, max_size=3)
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(rule_lists, st.lists(st.integers(0, 400), min_size=1, max_size=20))
def test_segments_keep_first_match_order(
    spec: list[tuple[Protocol, list[PortRange]]], probes: list[int]
) -> None:
    rules = tuple(
        rule(f"r{i}", proto, tuple(sorted(set(ports)))) for i, (proto, ports) in enumerate(spec)
    )
    for protocol in (Protocol.TCP, Protocol.UDP):
        cut = segments(rules, protocol)
        for a, b in itertools.pairwise(cut):
            assert a.ports.last < b.ports.first
        for port in probes:
            expected = tuple(
                i
                for i, r in enumerate(rules)
                if r.protocol == protocol and any(port in p for p in r.ports)
            )
            found = [s.rules for s in cut if port in s.ports]
            assert (found[0] if found else ()) == expected


def test_segments_cover_the_whole_port_space() -> None:
    cut = segments((rule(ports=(PortRange(0, 65535),)),), Protocol.TCP)
    assert [(s.ports.first, s.ports.last) for s in cut] == [(0, 65535)]


def test_targets_registry() -> None:
    assert set(TARGETS) == {"nftables", "iptables"}
    with pytest.raises(ValueError, match="unknown target"):
        renderer("pf")


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (rule(protocol=Protocol.RAW), "protocol raw"),
        (rule(entry_id='quote"inside'), "entry id"),
        (rule(entry_id="x" * 70, log=True), "log prefix"),
    ],
)
def test_refuses_what_it_cannot_express(target: str, bad: Rule, message: str) -> None:
    with pytest.raises(UnsupportedFeature, match=message) as caught:
        renderer(target).render(policy(bad))
    assert caught.value.location == "r.yaml:7:3"


def test_refuses_unsafe_host_name() -> None:
    with pytest.raises(UnsupportedFeature):
        NftablesRenderer().render(policy(rule(), host='bad"host'))


def test_table_shape() -> None:
    text = NftablesRenderer().render_table(
        policy(
            rule("web", ports=(PortRange(80, 80), PortRange(443, 443))),
            rule("dns", Protocol.UDP, (PortRange(53, 53),), Action.REJECT, log=True),
        )
    )
    assert text.count("table inet ppsguard {") == 1
    lines = [line.strip() for line in text.splitlines()]
    base = lines.index("type filter hook input priority filter; policy drop;")
    assert lines[base + 1] == "ct state established,related accept"
    assert 'iif "lo" accept' in lines
    assert "tcp dport vmap @tcp_ports" in lines
    assert 'counter accept comment "web"' in lines
    assert 'counter reject with icmpx type port-unreachable comment "dns"' in lines
    assert any('log group 5 prefix "pps:dns "' in line and "limit rate" in line for line in lines)
    assert lines[-3] == 'counter drop comment "h/default"'


def test_same_rule_text_for_many_entries_stays_flat() -> None:
    many = policy(*(rule(f"e{i}", ports=(PortRange(1000 + i, 1000 + i),)) for i in range(500)))
    text = NftablesRenderer().render_table(many)
    # one dispatch rule per protocol, whatever the number of entries
    assert text.count("dport vmap") == 1
    assert text.count("jump tcp_") == 500


def test_sources_become_named_sets() -> None:
    nets = tuple(ipaddress.ip_network(f"198.18.0.{i}/32") for i in (1, 3, 5))
    r = Rule(
        "s",
        EntryKind.PROVIDES,
        Action.ALLOW,
        False,
        Protocol.TCP,
        (PortRange(1, 1),),
        nets,
        ANY_SOURCES,
        AT,
    )
    text = NftablesRenderer().render_table(policy(r))
    assert "set addr4_0 {" in text
    assert 'ip saddr @addr4_0 counter accept comment "s"' in text


@pytest.mark.parametrize(
    ("ports", "groups"),
    [
        ((PortRange(0, 65535),), [None]),
        ((PortRange(22, 22), PortRange(80, 90)), ["22,80:90"]),
        (tuple(PortRange(p, p) for p in range(1, 17)), [",".join(map(str, range(1, 16))), "16"]),
    ],
)
def test_iptables_multiport_groups(ports: tuple[PortRange, ...], groups: list[str | None]) -> None:
    assert list(port_groups(ports)) == groups


@given(st.from_regex(r"[A-Za-z0-9_./-]{1,50}", fullmatch=True))
def test_log_prefix_round_trip(entry_id: str) -> None:
    assert entry_from_prefix(log_prefix(entry_id) + "\x00") == entry_id


def test_foreign_prefix_is_not_ours() -> None:
    assert entry_from_prefix("IN=eth0 ") is None


def test_renderers_and_live_parser_are_pure() -> None:
    """The renderers and the live parser take values and return text/values: no I/O imports."""
    import ast
    from pathlib import Path

    firewall_dir = Path(__file__).resolve().parents[2] / "src" / "ppsguard" / "firewall"
    files = [*sorted((firewall_dir / "render").glob("*.py")), firewall_dir / "live.py"]
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"socket", "subprocess", "asyncio"}, path
                assert name not in {"ppsguard.firewall.nft", "ppsguard.firewall.apply"}, path
