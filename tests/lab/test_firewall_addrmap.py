"""Many entries on one port, with real packets: the first-match address map decides exactly.

2,000 entries share tcp/2222, each allowing one address; among them `allow-c1` (logged) lists
c1, `allow-c2` lists c2, and an earlier deny entry `block-c2` (logged) lists c2 too. Applied with
`pps policy apply`, the port chain is one `ip saddr vmap` lookup; the kernel must still let c1 in
(logged as allow-c1), drop c2 (logged as block-c2, never allow-c2: first match wins) and drop
c3, which no entry lists (not logged: the default is silent). `pps policy status` then reports
the per-entry counters kept in the per-rule chains, and a second apply changes nothing.
"""

from __future__ import annotations

import json

import pytest
from test_firewall_helpers import LogCollector, pps, probe, ruleset

from ppsguard.lab.hosts import HostSpec

PORT = 2222
ENTRIES = 2000


def registry(c1: tuple[str, str], c2: str) -> str:
    lines = [
        "version: 1",
        "default: deny",
        "hosts:",
        "  fw:",
        "    denies:",
        "      - id: block-c2",
        f"        port: {PORT}/tcp",
        f"        from: [{c2}]",
        "        log: true",
        "    provides:",
    ]
    for index in range(ENTRIES):
        if index == ENTRIES // 2:
            lines += [
                "      - id: allow-c1",
                f"        port: {PORT}/tcp",
                f"        from: [{c1[0]}, {c1[1]}]",
                "        log: true",
                "      - id: allow-c2",
                f"        port: {PORT}/tcp",
                f"        from: [{c2}]",
            ]
        address = f"198.19.{(3 * index) // 250}.{1 + (3 * index) % 250}"
        lines += [
            f"      - id: s{index}",
            f"        port: {PORT}/tcp",
            f"        from: [{address}]",
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.lab
def test_many_sources_on_one_port_keep_first_match(lab_factory, tmp_path) -> None:
    lab = lab_factory(
        [
            HostSpec("fw", ipv4="198.18.0.1"),
            HostSpec("c1", ipv4="198.18.0.11"),
            HostSpec("c2", ipv4="198.18.0.12"),
            HostSpec("c3", ipv4="198.18.0.13"),
        ]
    )
    fw = lab["fw"]
    fw.listen(PORT)
    path = tmp_path / "many.yaml"
    path.write_text(registry((str(lab["c1"].ipv4), str(lab["c1"].ipv6)), str(lab["c2"].ipv4)))
    state = str(tmp_path / "state")
    apply = ["policy", "apply", str(path), "--netns", fw.netns, "--confirm-within", "0"]
    done = pps(apply, state)
    assert done.returncode == 0, done.stderr
    listing = ruleset(fw)
    assert "ip saddr vmap @saddr4_" in listing
    assert 'counter packets 0 bytes 0 accept comment "s0"' in listing
    with LogCollector(fw) as logs:
        for address in (fw.ipv4, fw.ipv6):
            outcome, sport = probe(lab["c1"], address, PORT, "tcp")
            assert outcome == "accepted", address
            assert logs.entries_for(sport, PORT) == ["allow-c1"], (address, logs.records)
        outcome, sport = probe(lab["c2"], fw.ipv4, PORT, "tcp")
        assert outcome == "timeout"
        assert logs.entries_for(sport, PORT) == ["block-c2"], logs.records
        outcome, sport = probe(lab["c3"], fw.ipv4, PORT, "tcp")
        assert outcome == "timeout"
        assert logs.entries_for(sport, PORT) == []
    status = pps(["policy", "status", "--netns", fw.netns, "--json"], state)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["unchanged_since_apply"] is True
    packets = {c["entry_id"]: c["packets"] for c in document["counters"]}
    assert packets["allow-c1"] >= 2  # one SYN over IPv4, one over IPv6
    assert packets["block-c2"] >= 1
    assert packets["allow-c2"] == 0
    assert packets["s0"] == 0
    assert packets["fw/default"] >= 1  # c3
    # idempotent: applying again leaves one identical table
    before = fw.run(["nft", "list", "table", "inet", "ppsguard"]).stdout
    again = pps(apply, state)
    assert again.returncode == 0, again.stderr
    after = fw.run(["nft", "list", "table", "inet", "ppsguard"]).stdout
    assert ruleset(fw).count("table inet ppsguard") == 1
    strip = [line for line in before.splitlines() if "counter packets" not in line]
    assert strip == [line for line in after.splitlines() if "counter packets" not in line]
