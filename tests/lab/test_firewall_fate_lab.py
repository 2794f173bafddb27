"""The evaluator against the kernel: real `nft -j list ruleset` output, real packets.

A foreign rule set with the common forms (anonymous and named sets, a verdict map, jump and
return, reject, an ip6-only rule, a prerouting table at another priority) is loaded into a lab
host that listens on every port; for each port the evaluator's verdict for the client's address
must agree with what a real connection attempt from the client gets.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from test_firewall_helpers import probe

from ppsguard.firewall.fate import EntrySpace, interference

pytestmark = pytest.mark.lab

PORTS = (21, 22, 23, 25, 80, 81, 82, 84, 86, 8080)


def _ruleset(client: str) -> str:
    return f"""table inet other {{
	set blocked {{ type ipv4_addr; flags interval; elements = {{ 198.19.0.0/16, {client} }}; }}
	map ports {{ type inet_service : verdict;
		elements = {{ 22 : accept, 80 : jump web, 81 : jump web2 }}; }}
	chain web {{ ip saddr @blocked drop; return; }}
	chain web2 {{ ip saddr 198.19.0.0/24 drop; return; }}
	chain input {{
		type filter hook input priority -10; policy accept;
		iifname "lo" accept
		tcp dport {{ 21, 25 }} drop
		tcp dport 23 reject with tcp reset
		ip6 saddr 2001:db8::/64 tcp dport 82 drop
		tcp dport vmap @ports
		ct state new tcp dport 83-85 drop
	}}
}}
table ip early {{
	chain pre {{ type filter hook prerouting priority -300; policy accept; tcp dport 86 drop; }}
}}
"""


def test_evaluator_agrees_with_real_packets(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["fw", "client"])
    fw, client = lab["fw"], lab["client"]
    for port in PORTS:
        fw.listen(port, address="0.0.0.0")
    fw.nft(_ruleset(str(client.ipv4)))
    objects = json.loads(fw.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]
    source = int(ipaddress.ip_address(str(client.ipv4)))
    predicted: dict[int, str] = {}
    for port in PORTS:
        entry = EntrySpace(f"p{port}", "tcp", {4: ((source, source),)}, ((port, port),))
        effects = [e for _, e in interference(objects, [entry], own=("inet", "ppsguard"))]
        assert all(e.certainty == "all" for e in effects), effects
        predicted[port] = effects[0].verdict if effects else "pass"
    assert predicted == {
        21: "drop",
        22: "pass",
        23: "reject",
        25: "drop",
        80: "drop",
        81: "pass",
        82: "pass",
        84: "drop",
        86: "drop",
        8080: "pass",
    }
    real = {port: probe(client, fw.ipv4, port, "tcp")[0] for port in PORTS}
    expected = {"pass": "accepted", "drop": "timeout", "reject": "refused"}
    assert real == {port: expected[verdict] for port, verdict in predicted.items()}


def test_docker_style_published_port_is_named_not_noise(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """iptables-nft rules as Docker writes them: matches nft cannot express (`xt match
    addrtype`) are followed both ways, so only the entry whose port is published is concerned,
    and the DNAT target (which sends its packets past ppsguard's input chain) is named."""
    fw = lab_factory(["fw"])["fw"]
    for command in (
        "iptables -t nat -N DOCKER",
        "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "iptables -t nat -A DOCKER ! -i docker0 -p tcp --dport 8080 -j DNAT "
        "--to-destination 198.18.0.200:80",
        "iptables -N DOCKER-USER",
        "iptables -A FORWARD -j DOCKER-USER",
    ):
        fw.run(command.split())
    objects = json.loads(fw.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]
    anywhere = {4: ((0, 2**32 - 1),)}
    entries = [
        EntrySpace("web", "tcp", anywhere, ((80, 80),)),
        EntrySpace("published", "tcp", anywhere, ((8080, 8080),)),
    ]
    found = interference(objects, entries)
    assert [(entry, e.where, e.verdict, e.certainty) for entry, e in found] == [
        ("published", "ip nat chain PREROUTING -> DOCKER", "uncertain", "uncertain")
    ]
    assert "xt target DNAT" in found[0][1].rule
