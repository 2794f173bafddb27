"""One test per rule of the Semantics section of docs/registry.md, named after it.

`test_every_semantics_rule_has_a_test` reads the section's `### rule` headings and fails when a
rule has no `test_semantics_<rule>` here; `test_semantics_catalog_table_is_current` fails when the
generated docs/registry-services.md no longer says what the loader does (regenerate with
PPSGUARD_UPDATE_GOLDEN=1). The kernel side of these rules (the compiled rules deciding real
packets the same way) is tested in tests/lab/test_firewall_differential.py.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from pathlib import Path

import pytest

from ppsguard.errors import InputError
from ppsguard.firewall.render import renderer
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate, explain
from ppsguard.registry.catalogdoc import catalog_markdown
from ppsguard.registry.load import parse_registry
from ppsguard.registry.naming import catalog_ports

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "registry.md"
CATALOG_DOC = ROOT / "docs" / "registry-services.md"
UPDATE = os.environ.get("PPSGUARD_UPDATE_GOLDEN") == "1"
ip = ipaddress.ip_address


def semantics_rules() -> list[str]:
    text = DOC.read_text()
    section = text.split("\n## Semantics\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^### ([a-z-]+)$", section, re.M)


def test_every_semantics_rule_has_a_test() -> None:
    rules = semantics_rules()
    assert len(rules) >= 8
    names = [name for name in dir(sys.modules[__name__]) if name.startswith("test_semantics_")]
    for rule in rules:
        prefix = "test_semantics_" + rule.replace("-", "_")
        assert any(name.startswith(prefix) for name in names), f"no test for rule {rule!r}"


def _decide(text: str, source: str, port: int, protocol: str = "tcp", host: str = "h") -> str:
    registry = parse_registry(text, "r.yaml")
    policy = compile_host_policy(registry, host)
    result = explain(registry, policy, source=ip(source), port=port, protocol=Protocol(protocol))
    return result.entry.id


ORDER = """
roles:
  first:
    provides: [{id: r1-allow, port: 80/tcp, from: anywhere}]
    denies: [{id: r1-deny, port: 81/tcp}]
  second:
    provides: [{id: r2-allow, port: [81/tcp, 82/tcp], from: anywhere}]
    denies: [{id: r2-deny, port: [80/tcp, 82/tcp]}]
hosts:
  h:
    roles: [second, first]
    provides: [{id: host-allow, port: [80/tcp, 83/tcp], from: anywhere}]
    denies: [{id: host-deny, port: 83/tcp, from: 198.18.0.0/24}]
"""


def test_semantics_evaluation_order() -> None:
    # host denies first, even over the host's own provides written later
    assert _decide(ORDER, "198.18.0.1", 83) == "host-deny"
    # role denies (in roles: order: second before first) beat every provides
    assert _decide(ORDER, "198.18.1.1", 80) == "r2-deny"
    assert _decide(ORDER, "198.18.1.1", 81) == "r1-deny"
    # host provides before role provides
    assert _decide(ORDER, "198.18.1.1", 83) == "host-allow"
    # nothing matches: the default
    assert _decide(ORDER, "198.18.1.1", 84) == "h/default"


def test_semantics_evaluation_order_uses_entries_are_not_inbound_rules() -> None:
    text = "hosts:\n  h:\n    uses: [{id: dns, port: 53/udp, to: 198.18.0.53}]\n"
    policy = compile_host_policy(parse_registry(text, "r.yaml"), "h")
    assert policy.rules == () and len(policy.outbound) == 1
    assert "dns" not in renderer("nftables").render(policy).files[0].text


SOURCES = """
networks:
  office: {addresses: [198.18.0.0/24, "2001:db8::/64"], except: [198.18.0.128/25]}
  staff: [office, 198.18.9.9]
hosts:
  h:
    provides:
      - {id: ssh, port: 22/tcp, from: staff, except: [198.18.0.7, "2001:db8::7"]}
      - {id: nobody, port: 23/tcp, from: office, except: office}
    denies:
      - {id: no-telnet, port: 2323/tcp}
"""


@pytest.mark.parametrize(
    ("source", "entry"),
    [
        ("198.18.0.1", "ssh"),  # in office
        ("198.18.0.200", "h/default"),  # in office's own except
        ("198.18.0.7", "h/default"),  # in the entry's except
        ("198.18.9.9", "ssh"),  # staff's own member
        ("2001:db8::1", "ssh"),
        ("2001:db8::7", "h/default"),
        ("198.18.7.1", "h/default"),
    ],
)
def test_semantics_sources(source: str, entry: str) -> None:
    assert _decide(SOURCES, source, 22) == entry


def test_semantics_sources_empty_set_matches_nothing_and_denies_default_anywhere() -> None:
    registry = parse_registry(SOURCES, "r.yaml")
    policy = compile_host_policy(registry, "h")
    [nobody] = [r for r in policy.rules if r.entry_id == "nobody"]
    assert nobody.sources == ()
    assert "nobody" not in renderer("nftables").render(policy).files[0].text
    assert _decide(SOURCES, "2001:db8:ffff::1", 2323) == "no-telnet"  # denies: from anywhere


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("198.18.0.1/24", "host bits set"),
        ("fe80::1%eth0", "zone index"),
        ("::ffff:198.18.0.7", "IPv4-mapped"),
    ],
)
def test_semantics_sources_refused_forms(address: str, message: str) -> None:
    text = f'hosts:\n  h:\n    provides: [{{port: 22/tcp, from: "{address}"}}]\n'
    with pytest.raises(InputError, match=message):
        parse_registry(text, "r.yaml")


def test_semantics_ports_and_protocols() -> None:
    text = """
services:
  web: [8080-8081/tcp, 8443/tcp+udp]
hosts:
  h:
    provides:
      - {id: a, port: 22, from: anywhere}
      - {id: b, port: [53/udp, 53/tcp+udp, 1000-1002/sctp], from: anywhere}
      - {id: c, service: [web, mysql], from: anywhere}
      - {id: d, service: pop3, from: anywhere}
"""
    policy = compile_host_policy(parse_registry(text, "r.yaml"), "h")
    shown = {(r.entry_id, str(r.protocol)): ",".join(map(str, r.ports)) for r in policy.rules}
    assert shown == {
        ("a", "tcp"): "22",
        ("b", "udp"): "53",
        ("b", "tcp"): "53",
        ("b", "sctp"): "1000-1002",
        ("c", "tcp"): "3306,8080-8081,8443",
        ("c", "udp"): "3306,8443",
        ("d", "tcp"): "110",
    }
    assert [r.protocol for r in policy.rules if r.entry_id == "b"] == [
        Protocol.UDP,
        Protocol.TCP,
        Protocol.SCTP,
    ]
    decision = evaluate(policy, ip("198.18.0.1"), 8, Protocol.RAW)  # e.g. ICMP
    assert decision.rule is None


@pytest.mark.parametrize(
    "bad",
    ["70000/tcp", "20-10/tcp", "22/icmp", "٢٢/tcp", "２２/tcp", "22/tcp-udp"],
)
def test_semantics_ports_and_protocols_refused(bad: str) -> None:
    with pytest.raises(InputError):
        parse_registry(f"hosts:\n  h:\n    provides: [{{port: '{bad}', from: anywhere}}]\n", "r")


def test_semantics_ports_and_protocols_service_and_port_exclusive() -> None:
    text = "hosts:\n  h:\n    provides: [{service: ssh, port: 22/tcp, from: anywhere}]\n"
    with pytest.raises(InputError, match="either service: or port:"):
        parse_registry(text, "r.yaml")


def test_semantics_catalog_table_is_current() -> None:
    text = catalog_markdown()
    if UPDATE:
        CATALOG_DOC.write_text(text)
    assert CATALOG_DOC.read_text() == text, "run with PPSGUARD_UPDATE_GOLDEN=1 to regenerate"
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", text, re.M)
    assert len(rows) > 300
    for name, expansion in rows:  # the table says exactly what the loader compiles
        loaded = sorted(str(sp) for sp in catalog_ports(name) or ())
        assert loaded, name
        expanded = []
        for item in expansion.split(", "):
            ports, protocol = item.split("/")
            first, _, last = ports.partition("-")
            expanded += [f"{p}/{protocol}" for p in range(int(first), int(last or first) + 1)]
        assert sorted(expanded) == loaded, name


def test_semantics_default_inheritance() -> None:
    text = """
default: reject
default_log: true
hosts:
  a: {}
  b: {default: allow}
  c: {default_log: false}
  d: {default: deny, default_log: false}
"""
    registry = parse_registry(text, "r.yaml")
    got = {
        h.name: (
            compile_host_policy(registry, h.name).default_action,
            compile_host_policy(registry, h.name).default_log,
        )
        for h in registry.hosts
    }
    assert got == {
        "a": (Action.REJECT, True),
        "b": (Action.ALLOW, True),
        "c": (Action.REJECT, False),
        "d": (Action.DENY, False),
    }
    bare = compile_host_policy(parse_registry("hosts:\n  h: {}\n", "r.yaml"), "h")
    assert (bare.default_action, bare.default_log) == (Action.DENY, False)


def test_semantics_default_inheritance_included_defaults_ignored(tmp_path: Path) -> None:
    (tmp_path / "more.yaml").write_text("default: allow\ndefault_log: true\n")
    main = "include: [more.yaml]\nhosts:\n  h: {}\n"

    def read(_including: str, name: str, _at: object) -> tuple[str, str]:
        return name, (tmp_path / name).read_text()

    policy = compile_host_policy(parse_registry(main, "main.yaml", read_include=read), "h")
    assert (policy.default_action, policy.default_log) == (Action.DENY, False)


def test_semantics_derived_ids() -> None:
    text = """
roles:
  web:
    provides: [{service: http, from: anywhere}]
hosts:
  mail:
    roles: [web]
    provides:
      - {port: [110/tcp, 53/tcp+udp, 110/tcp], from: anywhere}
      - {service: [smtp, submission], from: anywhere}
      - {port: 22/tcp, from: anywhere}
      - {port: 22/tcp, from: 198.18.0.0/24}
      - {port: 22/tcp, from: 198.18.1.0/24}
    denies:
      - {service: telnet}
"""
    registry = parse_registry(text, "r.yaml")
    assert [e.id for e in registry.roles[0].provides] == ["web/provides/http"]
    assert [e.id for e in registry.hosts[0].provides] == [
        "mail/provides/110/tcp+53/tcp+53/udp",
        "mail/provides/smtp+submission",
        "mail/provides/22/tcp",
        "mail/provides/22/tcp@2",
        "mail/provides/22/tcp@3",
    ]
    assert [e.id for e in registry.hosts[0].denies] == ["mail/denies/telnet"]
    policy = compile_host_policy(registry, "mail")
    renderer("nftables").render(policy)  # every derived id is one the renderers accept
    renderer("iptables").render(policy)


@pytest.mark.parametrize("bad", ["has space", "a#b", "x" * 101, "ünï"])
def test_semantics_derived_ids_written_ids_checked(bad: str) -> None:
    text = f"hosts:\n  h:\n    provides: [{{id: '{bad}', port: 22/tcp, from: anywhere}}]\n"
    with pytest.raises(InputError, match="bad entry id"):
        parse_registry(text, "r.yaml")


BIND = """
hosts:
  h:
    addresses: [198.18.0.5, 198.18.0.6]
    provides:
      - {id: admin, port: 8443/tcp, from: anywhere, bind: 198.18.0.5}
      - {id: local, port: 6379/tcp, from: anywhere, bind: loopback}
      - {id: web, port: 80/tcp, from: anywhere, bind: any}
"""


def test_semantics_bind_scope() -> None:
    registry = parse_registry(BIND, "r.yaml")
    policy = compile_host_policy(registry, "h")

    def entry(source: str, port: int, to: str | None) -> tuple[str, tuple[str, ...]]:
        result = explain(
            registry,
            policy,
            source=ip(source),
            port=port,
            protocol=Protocol.TCP,
            destination=ip(to) if to else None,
        )
        return result.entry.id, result.unchecked

    assert entry("198.18.0.9", 8443, "198.18.0.5") == ("admin", ())
    assert entry("198.18.0.9", 8443, "198.18.0.6") == ("h/default", ())
    assert entry("198.18.0.9", 8443, None) == ("admin", ("bind",))  # assumed, and said so
    assert entry("127.0.0.1", 6379, "127.0.0.1") == ("local", ())
    assert entry("198.18.0.9", 6379, None) == ("h/default", ())  # loopback sources only
    assert entry("198.18.0.9", 80, None) == ("web", ())  # bind: any checks nothing


def test_semantics_bind_scope_loopback_accepted_first_in_the_firewall() -> None:
    text = renderer("nftables").render(compile_host_policy(parse_registry(BIND, "r"), "h"))
    lines = [line.strip() for line in text.files[0].text.splitlines()]
    assert lines.index('iif "lo" accept') < lines.index("tcp dport vmap @tcp_ports")


REJECT = """
default: reject
hosts:
  h:
    denies:
      - {id: t, port: 23/tcp, action: reject}
      - {id: u, port: 69/udp, action: reject}
      - {id: s, port: 2905/sctp, action: reject}
      - {id: d, port: 24/tcp}
"""


def test_semantics_reject_and_drop() -> None:
    registry = parse_registry(REJECT, "r.yaml")
    policy = compile_host_policy(registry, "h")
    nft = renderer("nftables").render(policy).files[0].text
    assert 'counter reject with tcp reset comment "t"' in nft
    assert 'counter reject with icmpx type port-unreachable comment "u"' in nft
    assert 'counter reject with icmpx type admin-prohibited comment "s"' in nft
    assert 'counter drop comment "d"' in nft
    assert 'meta l4proto tcp counter reject with tcp reset comment "h/default"' in nft
    assert 'meta l4proto udp counter reject with icmpx type port-unreachable comment "h/def' in nft
    assert 'counter reject with icmpx type admin-prohibited comment "h/default"' in nft
    v4, v6 = (f.text for f in renderer("iptables").render(policy).files)
    assert "--reject-with icmp-port-unreachable" in v4
    assert "--reject-with icmp6-port-unreachable" in v6
    assert "--reject-with icmp-admin-prohibited" in v4


def test_semantics_reject_and_drop_same_word_for_entry_and_default() -> None:
    registry = parse_registry(REJECT, "r.yaml")
    policy = compile_host_policy(registry, "h")
    by_entry = explain(registry, policy, source=ip("198.18.0.1"), port=23, protocol=Protocol.TCP)
    by_default = explain(registry, policy, source=ip("198.18.0.1"), port=25, protocol=Protocol.TCP)
    dropped = explain(registry, policy, source=ip("198.18.0.1"), port=24, protocol=Protocol.TCP)
    assert by_entry.verdict == by_default.verdict == dropped.verdict == "deny"
    assert "rejected (not logged)" in by_entry.reason
    assert "rejected (not logged)" in by_default.reason
    assert "denied (not logged)" in dropped.reason
    assert "reject " not in by_default.reason.replace("rejected", "")


def test_semantics_log_rate_limit() -> None:
    text = """
default_log: true
hosts:
  h:
    provides:
      - {id: pop3, service: pop3, from: anywhere, log: true}
      - {id: quiet, port: 25/tcp, from: anywhere}
"""
    policy = compile_host_policy(parse_registry(text, "r.yaml"), "h")
    nft = renderer("nftables").render(policy).files[0].text
    limit = "limit rate 10/second burst 20 packets log group 5 prefix"
    assert f'{limit} "pps:pop3 " comment "pop3"' in nft
    assert f'{limit} "pps:h/default " comment "h/default"' in nft
    assert "pps:quiet" not in nft
    lines = [line.strip() for line in nft.splitlines()]
    log_at = next(i for i, line in enumerate(lines) if '"pps:pop3 "' in line)
    assert lines[log_at + 1] == 'counter accept comment "pop3"'  # logged, then decided
    v4 = renderer("iptables").render(policy).files[0].text
    assert "-m limit --limit 10/second --limit-burst 20 -j NFLOG --nflog-group 5" in v4
