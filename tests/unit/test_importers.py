"""The importers read their samples as the tools mean them: each sample in tests/samples/import/
(written for these tests, annotated in its own comments) is imported, the draft is loaded by the
real registry loader and compiled, and each annotated attempt gets the original's verdict."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest

from ppsguard.errors import InputError
from ppsguard.importers.build import import_rules
from ppsguard.importers.draft import draft_text
from ppsguard.importers.rules import Imported
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate
from ppsguard.registry.load import parse_registry

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "import"
ALLOW, DENY, REJECT = Action.ALLOW, Action.DENY, Action.REJECT


def inputs(*names: str) -> list[tuple[str, str]]:
    return [(name, (SAMPLES / name).read_text()) for name in names]


def verdicts(imported: Imported, attempts: list[tuple[str, str, Action, bool]]) -> None:
    text = draft_text(imported, host="fw", today=dt.date(2026, 12, 2))
    policy = compile_host_policy(parse_registry(text, "draft.yaml"))
    for source, port_text, action, logged in attempts:
        port, protocol = port_text.split("/")
        decision = evaluate(policy, ipaddress.ip_address(source), int(port), Protocol(protocol))
        assert (decision.action, decision.log) == (action, logged), (source, port_text, text)


def origins(imported: Imported) -> set[str]:
    return {item.origin.rsplit(":", 1)[-1] for item in imported.unexpressed}


def test_iptables_hand_made_set_with_multiport_ipset_range_and_jumps() -> None:
    imported = import_rules(
        "iptables", inputs("hand-made.rules.v4", "hand-made.rules.v6", "admins.ipset")
    )
    # listed: icmp (12), interface eth1 (18), limit (19), the OUTPUT chain (26), nat (33),
    # and the IPv6 file's icmpv6 accept (8)
    assert {"8", "12", "18", "19", "26", "33"} <= origins(imported)
    assert len(imported.covered) == 5  # lo, established, invalid (v4); lo, established (v6)
    verdicts(
        imported,
        [
            ("198.18.0.5", "80/tcp", ALLOW, False),  # multiport into `web`
            ("198.18.0.66", "443/tcp", DENY, False),  # web's drop for one address
            ("198.18.0.5", "8010/tcp", ALLOW, False),  # multiport range 8000:8010
            ("198.18.0.5", "8011/tcp", DENY, False),  # the policy
            ("198.18.0.21", "22/tcp", ALLOW, False),  # iprange 198.18.0.20-23
            ("198.18.0.24", "22/tcp", REJECT, False),  # admin chain's reject
            ("198.18.0.30", "22/tcp", ALLOW, False),  # ipset admins
            ("198.18.0.34", "22/tcp", REJECT, False),  # ipset nomatch member
            ("198.18.0.35", "22/tcp", ALLOW, False),
            ("198.18.0.15", "53/udp", ALLOW, False),  # 198.18.0.0/28
            ("198.18.0.16", "53/udp", DENY, False),
            ("198.18.0.5", "3306/tcp", DENY, True),  # LOG then DROP: a logged deny
            ("198.18.0.5", "5002/udp", REJECT, False),
            ("198.18.0.5", "9000/tcp", DENY, False),  # -i eth1: not expressed
            ("2001:db8::5:0:0:9", "22/tcp", ALLOW, False),  # IPv6 file
            ("2001:db8::9", "22/tcp", DENY, False),
            ("2001:db8::9", "443/tcp", ALLOW, False),
            ("2001:db8::9", "8000/tcp", DENY, False),  # the v4 multiport is v4 only
        ],
    )


def test_iptables_named_ipset_becomes_a_network() -> None:
    imported = import_rules("iptables", inputs("hand-made.rules.v4", "admins.ipset"))
    text = draft_text(imported, host="fw", today=dt.date(2026, 12, 2))
    assert "admins:" in text and "- admins" in text
    assert "NOT EXPRESSED" in text and "hand-made.rules.v4:19: rate limit (-m limit)" in text


def test_nftables_named_sets_verdict_map_and_jump() -> None:
    imported = import_rules("nftables", inputs("named-sets.json"))
    reasons = " ".join(item.why for item in imported.unexpressed)
    assert "limit" in reasons and "ipv6-icmp" in reasons
    verdicts(
        imported,
        [
            ("198.18.0.5", "443/tcp", ALLOW, False),  # @webports
            ("198.18.1.7", "22/tcp", ALLOW, False),  # @admins (a prefix element)
            ("198.18.0.41", "22/tcp", ALLOW, False),  # @admins (a range element)
            ("198.18.0.42", "22/tcp", REJECT, False),
            ("198.18.0.5", "25/tcp", ALLOW, False),  # verdict map: accept
            ("198.18.0.5", "3306/tcp", DENY, False),  # verdict map: drop
            ("198.18.0.11", "110/tcp", ALLOW, False),  # verdict map: jump pop
            ("198.18.0.13", "110/tcp", DENY, False),  # pop's `ip saddr !=` drop
            ("2001:db8::13", "110/tcp", ALLOW, False),  # `ip saddr` holds only for IPv4
            ("2001:db8::9", "5005/udp", ALLOW, False),  # anonymous set with a range
            ("198.18.0.9", "5005/udp", DENY, False),
            ("198.18.0.9", "9090/tcp", DENY, True),  # log + drop in one rule
        ],
    )


def test_ufw_status_text() -> None:
    imported = import_rules("ufw", inputs("ufw-status-verbose.txt"))
    reasons = {item.origin.rsplit(":", 1)[-1]: item.why for item in imported.unexpressed}
    assert "application profile" in reasons["14"]  # OpenSSH
    assert "interface" in reasons["15"] and "direction OUT" in reasons["16"]
    assert "rate limit" in reasons["10"]  # LIMIT: allowed, the limit listed
    verdicts(
        imported,
        [
            ("198.18.0.5", "22/tcp", ALLOW, False),
            ("198.18.0.5", "443/tcp", ALLOW, False),
            ("198.18.0.5", "2222/tcp", ALLOW, False),
            ("198.18.0.66", "3306/tcp", DENY, False),
            ("198.18.0.5", "53/udp", ALLOW, False),  # no protocol: tcp and udp
            ("198.18.1.5", "53/tcp", DENY, False),
            ("198.18.0.5", "60005/udp", REJECT, False),
            ("2001:db8::5", "22/tcp", ALLOW, False),
            ("2001:db8::5", "80/tcp", DENY, False),  # the v6 list has only ssh
        ],
    )


def test_ufw_rule_files_with_their_default() -> None:
    imported = import_rules("ufw", inputs("ufw-user.rules", "ufw-default"))
    assert imported.default_origin == "ufw-default:3"
    assert any("rate limit (-m recent)" in item.why for item in imported.unexpressed)
    notes = {rule.note for rule in imported.rules}
    assert "ufw allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in" in notes
    verdicts(
        imported,
        [
            ("198.18.0.5", "22/tcp", ALLOW, False),
            ("198.18.0.5", "2222/tcp", ALLOW, False),  # limit-accept chain followed
            ("198.18.0.66", "3306/tcp", DENY, False),
            ("198.18.0.5", "3306/tcp", REJECT, False),  # DEFAULT_INPUT_POLICY="REJECT"
        ],
    )


@pytest.mark.parametrize("zone", ["zone-public.xml", "firewalld-zones.txt"])
def test_firewalld_zone_xml_and_list_all_zones_text(zone: str) -> None:
    imported = import_rules("firewalld", inputs(zone, "ssh.xml", "lab-web.xml"))
    assert imported.default.value == "reject"  # target default
    verdicts(
        imported,
        [
            ("198.18.0.77", "80/tcp", DENY, False),  # priority -5 drop beats the service
            ("198.18.0.66", "22/tcp", REJECT, True),  # deny rich rules before services
            ("198.18.0.5", "22/tcp", ALLOW, False),
            ("198.18.0.5", "443/tcp", ALLOW, False),  # service lab-web from its XML
            ("198.18.0.5", "3306/tcp", ALLOW, False),
            ("198.18.1.5", "3306/tcp", REJECT, False),
            ("198.18.1.5", "5003/udp", ALLOW, False),
        ],
    )


def test_firewalld_settings_it_cannot_say_are_listed() -> None:
    xml = import_rules("firewalld", inputs("zone-public.xml", "ssh.xml", "lab-web.xml"))
    assert any("masquerade" in item.text for item in xml.unexpressed)
    text = import_rules("firewalld", inputs("firewalld-zones.txt", "ssh.xml", "lab-web.xml"))
    whys = [f"{item.text} {item.why}" for item in text.unexpressed]
    assert any("interfaces: eth0" in w for w in whys)
    assert any("rate limit on accept (3/m)" in w for w in whys)
    assert any("zone block" in w for w in whys)


@pytest.mark.parametrize(
    ("source", "name", "text", "where"),
    [
        (
            "iptables",
            "bad.rules",
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport x -j ACCEPT\n",
            "bad.rules:3",
        ),
        ("iptables", "bad.rules", "-A INPUT -j ACCEPT\n", "bad.rules:1"),
        ("iptables", "bad.rules", "*filter\n-A NOPE -j ACCEPT\n", "bad.rules:2"),
        ("nftables", "bad.json", '{"nftables": [', "bad.json:1"),
        ("firewalld", "bad.xml", "<zone><service name='ssh'></zone>", "bad.xml:1"),
        (
            "ufw",
            "status.txt",
            "Status: active\n\nTo  Action  From\n--  ------  ----\n22  FOO IN  x\n",
            "status.txt:5",
        ),
    ],
)
def test_bad_input_is_one_error_naming_file_and_line(
    source: str, name: str, text: str, where: str
) -> None:
    with pytest.raises(InputError) as caught:
        import_rules(source, [(name, text)])
    assert str(caught.value).startswith(where)


CHAINS = """*filter
:INPUT DROP [0:0]
:web - [0:0]
:loop - [0:0]
-A INPUT -p tcp -m tcp --dport 80 -j web
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 81 -j loop
-A INPUT -p tcp -m tcp --dport 82 -g web
-I INPUT -s 198.18.0.99/32 -j REJECT
-A web -s 198.18.0.5/32 -j RETURN
-A web -s 198.18.0.0/24 -j DROP
-A loop -j loop
COMMIT
"""


def test_conditional_return_insert_goto_and_loops() -> None:
    imported = import_rules("iptables", [("chains.rules", CHAINS)])
    whys = {item.origin: item.why for item in imported.unexpressed}
    assert whys["chains.rules:8"] == "goto web"
    assert whys["chains.rules:12"] == "jump loop or too deep"
    verdicts(
        imported,
        [
            ("198.18.0.5", "80/tcp", ALLOW, False),  # RETURNed from `web`, then accepted
            ("198.18.0.6", "80/tcp", DENY, False),  # web's drop for the rest of the /24
            ("198.18.1.6", "80/tcp", ALLOW, False),
            ("198.18.0.99", "80/tcp", REJECT, False),  # -I puts it first
        ],
    )


def test_ufw_status_numbered_assumes_the_default_and_says_so() -> None:
    imported = import_rules("ufw", inputs("ufw-status-numbered.txt"))
    whys = {item.origin.rsplit(":", 1)[-1]: item.why for item in imported.unexpressed}
    assert "destination 2001:db8::1" in whys["8"]  # `to ADDRESS`: not expressed
    assert any("deny assumed" in item.why for item in imported.unexpressed)
    assert [rule.origin.rsplit(":", 1)[-1] for rule in imported.rules] == ["5", "6", "7", "9"]
    verdicts(
        imported,
        [
            ("198.18.0.66", "3306/tcp", DENY, False),
            ("198.18.0.7", "53/udp", ALLOW, False),
            ("2001:db8::7", "22/tcp", ALLOW, False),
            ("2001:db8::7", "443/tcp", DENY, False),
        ],
    )


def test_hostile_text_in_rules_is_made_visible_and_the_draft_still_loads() -> None:
    text = (
        "*filter\n:INPUT DROP [0:0]\n"
        '-A INPUT -p tcp --dport 22 -m comment --comment "x\x1b[31m\x85y: z #" -j ACCEPT\n'
        "-A INPUT -i \x1b[2Jeth1 -j ACCEPT\nCOMMIT\n"
    )
    imported = import_rules("iptables", [("evil\x1b.rules", text)])
    draft = draft_text(imported, host="fw", today=dt.date(2026, 12, 2))
    assert "\x1b" not in draft and "\x85" not in draft and "\\x1b" in draft
    parse_registry(draft, "draft.yaml")
