"""The registry loader: model contents, derived ids, order, includes, and error positions."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ppsguard.errors import InputError
from ppsguard.model.net import PortRange, Protocol
from ppsguard.model.registry import Action, BindScope, EntryKind
from ppsguard.policy.compile import compile_host_policy, select_host
from ppsguard.registry.load import load_registry, parse_registry
from ppsguard.registry.yamlsafe import MAX_BYTES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_seed_registry_model() -> None:
    reg = load_registry(EXAMPLES / "seed-building.yaml")
    (host,) = reg.hosts
    assert host.name == "building"
    assert [e.id for e in host.denies] == ["pop3-others", "mysql"]
    assert [e.id for e in host.provides] == ["ftp", "smtp", "http", "pop3"]
    pop3 = host.provides[3]
    assert pop3.sources == ("pop-clients",)
    assert pop3.log is True
    assert pop3.location.line == 46
    assert {(p.protocol, p.ports) for p in pop3.ports} == {(Protocol.TCP, PortRange(110, 110))}
    assert reg.default is Action.DENY
    assert reg.default_log is False


def test_seed_compiles_denies_first() -> None:
    policy = compile_host_policy(load_registry(EXAMPLES / "seed-building.yaml"))
    ids = [r.entry_id for r in policy.rules]
    assert ids.index("pop3-others") < ids.index("ftp")
    pop3 = next(r for r in policy.rules if r.entry_id == "pop3")
    assert pop3.sources == tuple(
        ipaddress.ip_network(a) for a in ("198.18.0.11/32", "198.18.0.12/31")
    )
    others = next(r for r in policy.rules if r.entry_id == "pop3-others")
    assert ipaddress.ip_network("::/0") in others.sources
    assert not any(ipaddress.ip_address("198.18.0.12") in n for n in others.sources)
    assert any(ipaddress.ip_address("198.18.0.14") in n for n in others.sources)


@pytest.mark.parametrize(
    ("text", "expected_id"),
    [
        ("hosts: {h: {provides: [{service: ssh, from: anywhere}]}}", "h/provides/ssh"),
        ("hosts: {h: {denies: [{port: 9/udp}]}}", "h/denies/9/udp"),
        ("roles: {r: {uses: [{service: domain, to: anywhere}]}}\nhosts: {h: {roles: [r]}}",
         "r/uses/domain"),
    ],
)  # fmt: skip
def test_derived_ids(text: str, expected_id: str) -> None:
    reg = parse_registry(text, "t.yaml")
    assert [e.id for e in reg.entries()] == [expected_id]


def test_roles_order_and_bind() -> None:
    text = """
roles:
  base:
    denies: [{id: no-telnet, service: telnet}]
    provides: [{id: ssh, service: ssh, from: anywhere}]
hosts:
  h:
    addresses: [198.18.0.5, "2001:db8::5"]
    roles: [base]
    provides:
      - {id: cups, port: 631/tcp, from: anywhere, bind: loopback}
      - {id: web, port: 8000-8002/tcp+udp, from: [198.18.0.0/24, "2001:db8::/64"], bind: 198.18.0.5}
"""
    reg = parse_registry(text, "t.yaml")
    policy = compile_host_policy(reg, "2001:db8::5")
    assert [r.entry_id for r in policy.rules] == ["no-telnet", "cups", "web", "web", "ssh"]
    cups = policy.rules[1]
    assert cups.sources == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    web = policy.rules[2:4]
    assert {r.protocol for r in web} == {Protocol.TCP, Protocol.UDP}
    assert web[0].ports == (PortRange(8000, 8002),)
    assert web[0].destinations == (ipaddress.ip_network("198.18.0.5/32"),)
    assert reg.host("h") is not None
    assert reg.hosts[0].provides[0].bind is not None
    assert reg.hosts[0].provides[0].bind.scope is BindScope.LOOPBACK
    assert reg.roles[0].denies[0].kind is EntryKind.DENIES


def test_network_nesting_and_exclusion() -> None:
    text = """
networks:
  all: {addresses: [inner, "2001:db8::/126"], except: [198.18.0.2, "2001:db8::1"]}
  inner: [198.18.0.0/30]
hosts:
  h: {provides: [{port: 1/tcp, from: [all]}]}
"""
    rule = compile_host_policy(parse_registry(text, "t.yaml")).rules[0]
    expected = {
        "198.18.0.0/31", "198.18.0.3/32", "2001:db8::/128", "2001:db8::2/127",
    }  # fmt: skip
    assert {str(n) for n in rule.sources} == expected


def test_host_selection_errors() -> None:
    reg = parse_registry("hosts: {a: {}, b: {addresses: [198.18.0.9]}}", "t.yaml")
    assert select_host(reg, "198.18.0.9").name == "b"
    with pytest.raises(InputError, match="choose one with --host"):
        select_host(reg, None)
    with pytest.raises(InputError, match="did you mean 'a'"):
        select_host(reg, "aa")


def test_includes_resolve_relative_and_confined(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nets.yaml").write_text("networks: {lab: [198.18.0.0/24]}\n")
    main = tmp_path / "main.yaml"
    main.write_text("include: [sub/nets.yaml]\nhosts: {h: {provides: [{port: 1, from: lab}]}}\n")
    reg = load_registry(main)
    assert reg.network("lab") is not None
    assert len(reg.files) == 2
    (tmp_path / "sub" / "escape.yaml").write_text("include: [../../outside.yaml]\n")
    main.write_text("include: [sub/escape.yaml]\n")
    with pytest.raises(InputError, match="leaves the registry's folder") as info:
        load_registry(main)
    assert info.value.line == 1


def test_size_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(MAX_BYTES + 1)
    with pytest.raises(InputError, match="larger than"):
        load_registry(big)


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("hosts: {h: {provides: [{service: ssh, from: [ofice]}]}}\n"
         "networks: {office: [198.18.0.0/24]}",
         "did you mean 'office'", 1, 46),
        ("hosts:\n  h:\n    provides:\n      - {port: 22/tcp, from: anywhere, log: yes please}",
         "expected true or false", 4, 45),
        ("hosts:\n  h:\n    denies:\n      - {service: ssh, action: allow}", "cannot allow", 4, 32),
        ("hosts:\n  h:\n    denies:\n      - {service: ssh, action: drop}", "unknown value", 4, 32),
        ("default: permit\nhosts: {}", "unknown action", 1, 10),
        ("hosts: {h: {provides: [{port: 2000-1000/tcp, from: anywhere}]}}", "reversed", 1, 31),
        ("networks: {n: 198.18.0.0/33}\nhosts: {}", "bad address", 1, 15),
        ("", "empty", 1, 1),
        ("- a\n- b", "expected a registry document", 1, 1),
        ("hosts: {h: {addresses: [198.18.0.0/24]}}", "bad host address", 1, 25),
        ("x: !custom 1", "not allowed", 1, 4),
    ],
)  # fmt: skip
def test_errors_name_position(text: str, message: str, line: int, column: int) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_registry(text, "t.yaml")
    assert (info.value.file, info.value.line, info.value.column) == ("t.yaml", line, column)


def test_a_few_aliases_are_fine_and_merge_keys_are_not() -> None:
    text = """
networks:
  office: &office [198.18.10.0/24]
  also: *office
hosts: {h: {provides: [{port: 22/tcp, from: [office, also]}]}}
"""
    reg = parse_registry(text, "t.yaml")
    assert reg.network("also") is not None
    assert reg.network("also").members == ("198.18.10.0/24",)  # type: ignore[union-attr]
    with pytest.raises(InputError, match="merge keys"):
        parse_registry("a: &a {x: 1}\nb: {<<: *a}", "t.yaml")


def test_alias_bomb_refused_quickly() -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        levels.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(InputError, match="alias"):
        parse_registry("\n".join(levels), "bomb.yaml")
