"""The seed example, proven with real packets: examples/seed-building.yaml applied to a lab host.

From anywhere ftp/smtp/http connect; pop3 from IP1-IP3 (198.18.0.11-13) connects and each
attempt yields an NFLOG record carrying the entry id; pop3 from any other address is dropped
and logged; mysql is dropped and logged; every other port is dropped (silently: default_log off).
The same test runs for the nftables target and for the iptables target on both backends
(legacy and nf_tables), IPv4 and IPv6.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_firewall_helpers import LogCollector, pps, probe, ruleset

from ppsguard.lab.hosts import HostSpec

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
OPEN_TO_ALL = (21, 25, 80)
TARGETS = [
    pytest.param([], id="nftables"),
    pytest.param(["--target", "iptables", "--backend", "legacy"], id="iptables-legacy"),
    pytest.param(["--target", "iptables", "--backend", "nft"], id="iptables-nft"),
]


@pytest.mark.lab
@pytest.mark.parametrize("target", TARGETS)
def test_seed_building_does_what_the_seed_says(lab_factory, tmp_path, target: list[str]) -> None:
    lab = lab_factory(
        [
            HostSpec("fw", ipv4="198.18.0.1"),
            HostSpec("ip1", ipv4="198.18.0.11"),
            HostSpec("ip2", ipv4="198.18.0.12"),
            HostSpec("ip3", ipv4="198.18.0.13"),
            HostSpec("other", ipv4="198.18.0.50"),
        ]
    )
    fw = lab["fw"]
    for port in (*OPEN_TO_ALL, 110, 3306, 8080):
        fw.listen(port)
    done = pps(
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "0", *target],
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    with LogCollector(fw) as logs:
        for name in ("ip1", "ip2", "ip3"):
            client = lab[name]
            for port in OPEN_TO_ALL:
                assert probe(client, fw.ipv4, port, "tcp")[0] == "accepted", (name, port)
            outcome, sport = probe(client, fw.ipv4, 110, "tcp")
            assert outcome == "accepted", name
            assert logs.entries_for(sport, 110) == ["pop3"], (name, sport, logs.records)
            outcome, sport = probe(client, fw.ipv4, 3306, "tcp")
            assert outcome == "timeout", name
            assert logs.entries_for(sport, 3306) == ["mysql"], name
            outcome, sport = probe(client, fw.ipv4, 8080, "tcp")
            assert outcome == "timeout"
            assert logs.entries_for(sport, 8080) == []
        other = lab["other"]
        for address in (fw.ipv4, fw.ipv6):
            for port in OPEN_TO_ALL:
                assert probe(other, address, port, "tcp")[0] == "accepted", (address, port)
            outcome, sport = probe(other, address, 110, "tcp")
            assert outcome == "timeout", address
            assert logs.entries_for(sport, 110) == ["pop3-others"], address
            outcome, sport = probe(other, address, 3306, "tcp")
            assert outcome == "timeout"
            assert logs.entries_for(sport, 3306) == ["mysql"]
            outcome, sport = probe(other, address, 8080, "tcp")
            assert outcome == "timeout"
            assert logs.entries_for(sport, 8080) == []
            assert probe(other, address, 8080, "udp")[0] == "timeout"
    status = pps(["policy", "status", "--netns", fw.netns, "--json"], str(tmp_path))
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)  # compact when piped, indented on a terminal
    assert document["unchanged_since_apply"] is True
    assert document["state"] == "enforced"
    if target:
        assert document["target"] == "iptables" and document["backend"] == target[-1]
        assert document["chains"]["v4"]["jumps"] == [1] == document["chains"]["v6"]["jumps"]
        saved = fw.run([f"iptables-{target[-1]}-save"]).stdout
        assert saved.count("-j PPSGUARD-INPUT") == 1 and "table inet ppsguard" not in ruleset(fw)
    assert '"entry_id":"pop3"' in status.stdout.replace(" ", "")
