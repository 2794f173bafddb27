"""Coexistence: other firewall managers' rule sets, loaded for real, named by status and audit.

A lab host gets chains shaped like those ufw (iptables-nft), Docker (iptables-legacy: a DNAT
publishing a port, DOCKER-USER), libvirt (LIBVIRT_INP), firewalld (its nftables table) and
kube-proxy (its nftables table, a node port DNAT) create, beside the seed building applied
with the iptables target. `pps policy status --registry` and `pps audit` must name each
manager and say what it does to the registry's ports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.audit import audit_machine

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
UFW = """*filter
:ufw-before-input - [0:0]
:ufw-user-input - [0:0]
:LIBVIRT_INP - [0:0]
-A INPUT -j ufw-before-input
-A INPUT -j LIBVIRT_INP
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -j ufw-user-input
-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT
-A ufw-user-input -p tcp -m multiport --dports 3306,8080 -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 80 -j DROP
-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT
COMMIT
"""
DOCKER = """*nat
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8443 -j DNAT --to-destination 198.18.9.2:443
COMMIT
*filter
:DOCKER-USER - [0:0]
-A DOCKER-USER -j RETURN
COMMIT
"""
NATIVE = """table inet firewalld {
	chain filter_IN_public_allow {
		tcp dport { 22, 9090 } accept
	}
}
table ip kube-proxy {
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 30080 dnat to 198.18.9.3:80
	}
}
"""
EXPECTED = [
    "ufw: table ip filter chain ufw-user-input (via iptables-nft) accepts tcp/22 which the "
    "registry denies",
    "ufw: table ip filter chain ufw-user-input (via iptables-nft) accepts tcp/3306,8080 which "
    "the registry denies",
    "ufw: table ip filter chain ufw-user-input (via iptables-nft) drops tcp/80 which the "
    "registry allows",
    "libvirt: table ip filter chain LIBVIRT_INP (via iptables-nft) accepts udp/53 which the "
    "registry denies",
    "firewalld: table inet firewalld chain filter_IN_public_allow accepts tcp/22,9090 which the "
    "registry denies",
    "docker: table ip nat chain DOCKER (via iptables-legacy) publishes tcp/8443 (DNAT: "
    "forwarded traffic never passes INPUT, so ppsguard's rules do not see it) which the "
    "registry denies",
    "kube-proxy: table ip kube-proxy chain nat-prerouting publishes tcp/30080 (DNAT: forwarded "
    "traffic never passes INPUT, so ppsguard's rules do not see it) which the registry denies",
]


def _pps(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {"PPSGUARD_STATE_DIR": str(state), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_status_and_audit_name_the_other_managers(lab_factory, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    monkeypatch.setenv("PPSGUARD_STATE_DIR", str(state))
    fw = lab_factory(["fw"])["fw"]
    applied = _pps(
        "policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "0",
        "--target", "iptables", "--backend", "nft", state=state,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    fw.run(["iptables-nft-restore", "--noflush"], input=UFW)
    fw.run(["iptables-legacy-restore", "--noflush"], input=DOCKER)
    fw.nft(NATIVE)

    status = _pps("policy", "status", "--netns", fw.netns, "--registry", str(SEED), state=state)
    lines = [line.strip() for line in status.stdout.splitlines()]
    assert lines[0].startswith("target iptables (nf_tables backend) chain PPSGUARD-INPUT: loaded")
    assert "other firewall managers:" in lines
    for expected in EXPECTED:
        assert expected in lines, (expected, status.stdout)
    for name in ("ufw", "libvirt", "firewalld", "docker", "kube-proxy"):
        assert any(line.startswith(f"{name}: present (") for line in lines), name
    document = json.loads(
        _pps(
            "policy", "status", "--netns", fw.netns, "--registry", str(SEED), "--json",
            state=state,
        ).stdout
    )  # fmt: skip
    assert set(EXPECTED) <= set(document["managers"])
    # our jump comes first in INPUT, so ufw's drop of 80 never sees what our chain accepts
    assert not [e for e in document["foreign_effects"] if e["where"].startswith("ip filter")]

    report = audit_machine(SEED, netns=fw.netns, scan=False, identify=False).report
    assert report.views["firewall"].endswith(
        "other managers: ufw, firewalld, docker, libvirt, kube-proxy"
    ), report.views
    titles = {f.title for f in report.findings if f.type.value == "firewall-not-enforcing"}
    assert set(EXPECTED) <= titles, titles
    audited = _pps("audit", str(SEED), "--netns", fw.netns, "--no-scan", state=state)
    assert "docker: table ip nat chain DOCKER (via iptables-legacy) publishes tcp/8443" in (
        audited.stdout
    ), audited.stdout
